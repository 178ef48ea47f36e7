//! The extra-directives checker: the hostile table is refused line by line; what passes is
//! re-rendered and accepted by a real Apache's configtest.

use std::path::Path;

use crate::apache::directives::Directives;

const SITE: &str = "/srv/sites/shop";

fn refused(text: &str) -> (usize, String) {
    let e = Directives::parse(text, Path::new(SITE)).expect_err(text);
    (e.line, e.message)
}

#[test]
fn hostile_directives_are_refused_with_their_line() {
    let table: &[(&str, usize, &str)] = &[
        (
            "Header set X-A 1\nCustomLog \"|/bin/sh -c 'id > /tmp/x'\" combined",
            2,
            "runs a program",
        ),
        (
            "Header set X-A 1\r\nInclude /etc/shadow",
            1,
            "control character",
        ),
        ("# a comment \\\nInclude /etc/shadow", 0, ""),
        (
            "Header set X-A \\\n1\nInclude /etc/shadow",
            3,
            "another configuration file",
        ),
        ("Header set X-Log ${APACHE_LOG_DIR}", 1, "server variable"),
        ("</VirtualHost>", 1, "never opened"),
        ("</Directory>", 1, "never opened"),
        ("Header set X-A 1\u{0}", 1, "control character"),
        ("Header set X-A 1\u{2028}Include /etc/passwd", 1, "U+2028"),
        ("Header set X-A \"never closed", 1, "never closed"),
        ("RewriteRule ^ http://127.0.0.1:22/ [P]", 1, "proxy"),
        ("RewriteMap m prg:/bin/sh", 1, "runs programs"),
        ("SetHandler cgi-script", 1, "handler"),
        ("AddHandler cgi-script .cgi", 1, "handler"),
        ("Alias /x /etc", 1, "own folders"),
        (
            "<Directory /etc>\nRequire all granted\n</Directory>",
            1,
            "inside the site",
        ),
        ("Define X", 1, "variables"),
        (
            "LoadModule cgi_module /usr/lib/apache2/modules/mod_cgi.so",
            1,
            "loads code",
        ),
        ("ErrorLog /tmp/x", 1, "writes a file"),
        ("ProxyPass / http://127.0.0.1:22/", 1, "other servers"),
        ("<VirtualHost *:80>", 1, "own VirtualHost"),
        (
            "Require expr file('/etc/passwd') =~ /root/",
            1,
            "reads a file",
        ),
        ("SetEnv CUTOVER_RELEASE x", 1, "Cutover's own"),
        ("AuthUserFile /etc/passwd", 1, "inside the site"),
        ("<Location /a>\nHeader set X 1", 1, "never closed"),
        ("<Location /a>\n</Files>", 2, "open one is <location>"),
        ("php_value memory_limit 1G", 1, "php.settings"),
        ("Options +ExecCGI", 1, "options field"),
        ("FooBar 1", 1, "not a directive"),
    ];
    for (text, line, why) in table {
        match Directives::parse(text, Path::new(SITE)) {
            // A comment continued onto the next line swallows it, as Apache does: inert.
            Ok(d) if *line == 0 => assert!(d.is_empty(), "{text:?}: {}", d.render("")),
            Ok(d) => panic!("{text:?} passed: {}", d.render("")),
            Err(e) => {
                assert_eq!(e.line, *line, "{text:?}: {}", e.message);
                assert!(e.message.contains(why), "{text:?}: {}", e.message);
            }
        }
    }
    assert!(refused(&"Header set X 1\n".repeat(501)).1.contains("500"));
    assert!(refused(&"x".repeat(9000)).1.contains("8000"));
}

/// What a team commonly adds, accepted as it is meant.
pub(crate) const GOOD: &str = r#"
# Security headers
Header always set X-Frame-Options "SAMEORIGIN"
Header set X-Test "passed through"
Redirect permanent /old /new
RedirectMatch 301 ^/blog/(.*)$ https://blog.example.org/$1
RewriteEngine On
RewriteRule ^/moved$ /index.html [R=302,L]
ErrorDocument 404 /404.html
ExpiresActive On
ExpiresByType image/png "access plus 1 month"
AddType application/wasm .wasm
AddDefaultCharset utf-8
<FilesMatch "\.(bak|sql)$">
    Require all denied
</FilesMatch>
<Location /admin>
    AuthType Basic
    AuthName "Staff only"
    AuthUserFile /srv/sites/shop/shared/.htpasswd
    Require valid-user
</Location>
<If "%{HTTP_HOST} == 'old.example.org'">
    Redirect permanent / https://www.example.org/
</If>
"#;

#[test]
fn ordinary_directives_pass_and_are_re_rendered_from_their_words() {
    let d = Directives::parse(GOOD, Path::new(SITE)).expect("good directives");
    let text = d.render("    ");
    assert!(
        text.contains("    Header set X-Test \"passed through\"\n"),
        "{text}"
    );
    assert!(text.contains("        Require all denied\n"), "{text}");
    assert!(!text.contains('#'), "comments are not copied: {text}");
    // Each section of the site's combines its access rules with Cutover's (so a Require in a
    // <Location> can narrow access, never lift the refusal of PHP source).
    assert!(
        text.contains("    <Location /admin>\n        AuthMerging And\n"),
        "{text}"
    );
    // Re-parsing the rendering (without Cutover's own lines) gives the same rendering.
    let typed: String = text
        .lines()
        .filter(|l| l.trim() != "AuthMerging And")
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        Directives::parse(&typed, Path::new(SITE))
            .unwrap()
            .render("    "),
        text
    );
}
