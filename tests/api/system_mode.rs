//! System mode against a private Apache laid out as Debian lays out `/etc/apache2`
//! (`apache2.conf`, `envvars`, `ports.conf`, `mods-enabled/`, `sites-enabled/` with a default
//! site) and a private PHP-FPM laid out as `/etc/php/8.2/fpm` (`php-fpm.conf`, `pool.d/` with
//! its `www` pool): Cutover writes `cutover-<site>.conf` into each and drives them through
//! configured commands, as it would the host's own. A PHP site over HTTPS goes live, takes a
//! settings change and rolls back; the host's own site is untouched. Both servers are stopped
//! by their pids.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cutover::config::ApacheMode;
use serde_json::{json, Value};

use crate::archives::targz;
use crate::helpers::{apache_binary, free_port, spawn_app_with, TestApp};

const HOST: &str = "wiki.example.test";
const MODULES: &str = "/usr/lib/apache2/modules";

/// The "host": its Apache and PHP-FPM, stopped by their pid files when dropped.
struct Host {
    root: PathBuf,
    http: u16,
    https: u16,
}

impl Drop for Host {
    fn drop(&mut self) {
        for pid_file in ["apache2/run/apache2.pid", "php/run/php-fpm.pid"] {
            let Ok(text) = std::fs::read_to_string(self.root.join(pid_file)) else {
                continue;
            };
            let Ok(pid) = text.trim().parse::<i32>() else {
                continue;
            };
            let pid = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while nix::sys::signal::kill(pid, None).is_ok() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// `apache2` with the layout's envvars, as Debian's apache2ctl runs it.
fn apache_command(root: &Path, args: &str) -> Vec<String> {
    let a = root.join("apache2");
    let line = format!(
        ". {a}/envvars && exec {bin} -d {a} -f {a}/apache2.conf {args}",
        a = a.display(),
        bin = apache_binary().display()
    );
    vec!["sh".into(), "-c".into(), line]
}

fn php_fpm() -> PathBuf {
    cutover::php::find_binary().expect("php-fpm must be installed (the test command installs it)")
}

fn php_command(root: &Path, extra: &str) -> Vec<String> {
    let p = root.join("php");
    vec![
        "sh".into(),
        "-c".into(),
        format!(
            "exec {} --fpm-config {p}/php-fpm.conf -c {p}/php.ini {extra}",
            php_fpm().display(),
            p = p.display()
        ),
    ]
}

impl Host {
    fn new(root: &Path) -> Host {
        // Port 80 itself, as on a real host: its `<VirtualHost *:80>` default site is what
        // Cutover's vhost must join (a `*:*` vhost is never consulted on a port a `*:80` names).
        let (http, https) = (80, free_port());
        let a = root.join("apache2");
        let ad = a.display();
        let user = if nix::unistd::geteuid().is_root() {
            "export APACHE_RUN_USER=www-data\nexport APACHE_RUN_GROUP=www-data\n"
        } else {
            ""
        };
        write(&a.join("envvars"), &format!("{user}export APACHE_PID_FILE={ad}/run/apache2.pid\nexport APACHE_RUN_DIR={ad}/run\nexport APACHE_LOCK_DIR={ad}/lock\nexport APACHE_LOG_DIR={ad}/logs\nexport LANG=C\n"));
        let run_user = if user.is_empty() {
            ""
        } else {
            "User ${APACHE_RUN_USER}\nGroup ${APACHE_RUN_GROUP}\n"
        };
        write(
            &a.join("apache2.conf"),
            &format!("DefaultRuntimeDir ${{APACHE_RUN_DIR}}\nPidFile ${{APACHE_PID_FILE}}\nMutex file:${{APACHE_LOCK_DIR}} default\nTimeout 30\nKeepAlive On\n{run_user}HostnameLookups Off\nErrorLog ${{APACHE_LOG_DIR}}/error.log\nLogLevel warn\nIncludeOptional mods-enabled/*.load\nIncludeOptional mods-enabled/*.conf\nInclude ports.conf\n<Directory />\n    Options FollowSymLinks\n    AllowOverride None\n    Require all denied\n</Directory>\nAccessFileName .htaccess\n<FilesMatch \"^\\.ht\">\n    Require all denied\n</FilesMatch>\nLogFormat \"%h %l %u %t \\\"%r\\\" %>s %O\" combined\nIncludeOptional conf-enabled/*.conf\nIncludeOptional sites-enabled/*.conf\n"),
        );
        write(&a.join("ports.conf"), &format!("Listen 127.0.0.1:{http}\n<IfModule ssl_module>\n    Listen 127.0.0.1:{https}\n</IfModule>\n"));
        for m in [
            "mpm_event",
            "authz_core",
            "authz_host",
            "authn_core",
            "dir",
            "mime",
            "headers",
            "rewrite",
            "alias",
            "setenvif",
            "proxy",
            "proxy_fcgi",
            "socache_shmcb",
            "ssl",
            "env",
        ] {
            write(
                &a.join(format!("mods-enabled/{m}.load")),
                &format!("LoadModule {m}_module {MODULES}/mod_{m}.so\n"),
            );
        }
        write(
            &a.join("mods-enabled/mime.conf"),
            "TypesConfig /etc/mime.types\n",
        );
        write(
            &a.join("mods-enabled/dir.conf"),
            "DirectoryIndex index.html\n",
        );
        std::fs::create_dir_all(a.join("default")).unwrap();
        write(&a.join("default/index.html"), "the host's default site");
        write(
            &a.join("sites-enabled/000-default.conf"),
            &format!("<VirtualHost *:{http}>\n    ServerName default.example.test\n    DocumentRoot {ad}/default\n    <Directory {ad}/default>\n        Require all granted\n    </Directory>\n</VirtualHost>\n"),
        );
        for d in ["run", "lock", "logs", "conf-enabled"] {
            std::fs::create_dir_all(a.join(d)).unwrap();
        }
        let p = root.join("php");
        let pd = p.display();
        let owner = if user.is_empty() {
            String::new()
        } else {
            "user = www-data\ngroup = www-data\nlisten.owner = www-data\nlisten.group = www-data\n"
                .into()
        };
        write(&p.join("php-fpm.conf"), &format!("[global]\npid = {pd}/run/php-fpm.pid\nerror_log = {pd}/log/php-fpm.log\ninclude = {pd}/pool.d/*.conf\n"));
        write(
            &p.join("php.ini"),
            "expose_php = Off\ncgi.fix_pathinfo = 0\n",
        );
        write(
            &p.join("pool.d/www.conf"),
            &format!(
                "[www]\n{owner}listen = {pd}/run/www.sock\npm = ondemand\npm.max_children = 2\n"
            ),
        );
        for d in ["run", "log"] {
            std::fs::create_dir_all(p.join(d)).unwrap();
        }
        let host = Host {
            root: root.to_owned(),
            http,
            https,
        };
        let out = Command::new(&apache_command(root, "-k start")[0])
            .args(&apache_command(root, "-k start")[1..])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the host's Apache starts: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new("sh")
            .args(&php_command(root, "")[1..])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the host's PHP-FPM starts: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        while !(p.join("run/php-fpm.pid").exists() && a.join("run/apache2.pid").exists()) {
            assert!(
                Instant::now() < deadline,
                "the host's servers wrote their pid files"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        host
    }
}

async fn system_app(host: &Host) -> TestApp {
    let root = host.root.clone();
    let (http, https) = (host.http, host.https);
    spawn_app_with(move |s| {
        s.apache.mode = ApacheMode::System;
        s.apache.vhost_dir = Some(root.join("apache2/sites-enabled"));
        s.apache.configtest = apache_command(&root, "-t");
        s.apache.reload = apache_command(&root, "-k graceful");
        s.apache.vhosts_command = apache_command(&root, "-S");
        s.apache.check_url = format!("http://127.0.0.1:{http}");
        s.apache.tls_check_addr = format!("127.0.0.1:{https}");
        s.apache.tls_vhost_address = format!("*:{https}");
        s.apache.log_dir = root.join("apache2/logs");
        s.php.pool_dir = Some(root.join("php/pool.d"));
        s.php.socket_dir = root.join("php/run");
        s.php.test = php_command(&root, "-t");
        s.php.reload = vec![
            "sh".into(),
            "-c".into(),
            format!("kill -USR2 $(cat {}/php/run/php-fpm.pid)", root.display()),
        ];
    })
    .await
}

/// `scheme://host:port/` on 127.0.0.1, the CA trusted, redirects not followed.
async fn get(scheme: &str, host: &str, port: u16, ca: &Path) -> (u16, String) {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .redirect(reqwest::redirect::Policy::none())
        .resolve(host, std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .build()
        .unwrap();
    let res = client
        .get(format!("{scheme}://{host}:{port}/"))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn a_php_site_over_https_goes_live_on_a_debian_layout_apache_and_php_fpm() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let host = Host::new(dir.path());
    let app = system_app(&host).await;
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    crate::support::certs::make(&certs, &[("leaf", HOST)]);
    let c = |f: &str| certs.join(f).display().to_string();
    let token = app.admin_token().await;
    app.create_site(
        &token,
        json!({"name": "wiki", "server_name": HOST, "runtime": "php",
               "php": {"settings": {"memory_limit": "48M"}},
               "tls": {"certificate": c("leaf.pem"), "key": c("leaf.key"), "chain": c("ca.pem"), "redirect_http": true}}),
    )
    .await;
    let page = |m: &str| {
        format!("<?php echo 'release {m} memory ' . ini_get('memory_limit');").into_bytes()
    };
    let mut ids = Vec::new();
    for m in ["one", "two"] {
        let res = app
            .upload(
                &token,
                "wiki",
                "r.tgz",
                targz(&[("index.php", &page(m))]),
                m,
            )
            .await;
        assert_eq!(res.status(), 201);
        ids.push(
            res.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        let (status, body) = app.activate(&token, "wiki", ids.last().unwrap()).await;
        assert_eq!(status, 200, "{body}");
    }
    // Cutover's own files sit beside the host's, named so.
    assert!(dir
        .path()
        .join("apache2/sites-enabled/cutover-wiki.conf")
        .is_file());
    assert!(dir
        .path()
        .join("apache2/sites-enabled/000-default.conf")
        .is_file());
    let pool = std::fs::read_to_string(dir.path().join("php/pool.d/cutover-wiki.conf")).unwrap();
    assert!(
        pool.contains("php_admin_value[memory_limit] = 48M"),
        "{pool}"
    );
    assert!(dir.path().join("php/pool.d/www.conf").is_file());

    let ca = certs.join("ca.pem");
    let (status, body) = get("https", HOST, host.https, &ca).await;
    assert_eq!((status, body.as_str()), (200, "release two memory 48M"));
    let (status, _) = get("http", HOST, host.http, &ca).await;
    assert_eq!(status, 301, "port 80 redirects to HTTPS");
    let (status, body) = get("http", "default.example.test", host.http, &ca).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "the host's default site"),
        "the host's own site is untouched"
    );

    // Settings and rollback go through the same commands.
    let (status, body) = app
        .patch_site(
            &token,
            "wiki",
            json!({"php": {"settings": {"memory_limit": "64M"}}, "runtime": "php"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        get("https", HOST, host.https, &ca).await.1,
        "release two memory 64M"
    );
    let path = "/api/v1/sites/wiki/rollback";
    let (status, body) = app
        .api_send(reqwest::Method::POST, path, &token, None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        get("https", HOST, host.https, &ca).await.1,
        "release one memory 64M"
    );
    app.shutdown().await;
    drop(host);
}
