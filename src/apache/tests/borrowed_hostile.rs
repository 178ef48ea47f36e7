//! The hostile inputs of the directives helper branch (issue 13), run against the checker in use.
const HOSTILE: &[(&str, usize, &str)] = &[
    (
        "Header set X-A 1\nCustomLog \"|/bin/sh -c 'id > /tmp/x'\" combined",
        2,
        "pipe runs a program",
    ),
    (
        "Header set X-A 1\r\nInclude /etc/shadow",
        2,
        "reads another configuration file",
    ),
    (
        "Header set X-A 1\nIncludeOptional /etc/apache2/*.conf",
        2,
        "another configuration file",
    ),
    // A continuation joins lines before anything else: this is "Include /etc/shadow".
    (
        "Header set X-A 1\nInc\\\nlude /etc/shadow",
        2,
        "reads another configuration file",
    ),
    // A comment that continues would swallow the next line.
    ("# note \\\nInclude /etc/shadow", 1, "comment ends with \\"),
    // A Header continued into "Include" becomes a Header with too many words.
    (
        "Header set X-A 1 \\\nInclude /etc/shadow",
        1,
        "too many arguments",
    ),
    (
        "Header set X-A \"1\\\" \\\nInclude /etc/shadow",
        1,
        "never closed",
    ),
    (
        "ErrorDocument 404 /x\nHeader set X-Log ${APACHE_LOG_DIR}",
        2,
        "variable",
    ),
    ("Header set X-A $\\\n{APACHE_RUN_USER}", 1, "variable"),
    (
        "Header set X-A 1\n</VirtualHost>\n<VirtualHost *:80>",
        2,
        "VirtualHost",
    ),
    (
        "<VirtualHost *:80>\n</VirtualHost>",
        1,
        "already inside its VirtualHost",
    ),
    ("Header set X-A 1\n</Directory>", 2, "never opened"),
    (
        "<Files x>\n</Location>",
        2,
        "does not match <Files> opened on line 1",
    ),
    ("<Files x>\nRequire all denied", 1, "never closed"),
    (
        "Header set X-A \"a\0b\"",
        1,
        "not allowed in Apache's configuration",
    ),
    (
        "Header set X-A 1\nHeader set X-B \"a\u{2028}Include /etc/shadow\"",
        2,
        "\\u{2028}",
    ),
    ("Header set X-A \"a\u{2029}\"", 1, "not allowed"),
    ("Header set X-A \"a\u{85}\"", 1, "not allowed"),
    ("Header set X-A \"a\u{202e}\"", 1, "not allowed"),
    ("Header set X-A 1\rInclude /etc/shadow", 1, "not allowed"),
    ("\n\nHeader set X-A \"unterminated", 3, "never closed"),
    ("Header set X-A 'unterminated", 1, "never closed"),
    ("RewriteRule ^ \"/x [L]", 1, "never closed"),
    ("RewriteEngine On\nRewriteRule ^ http://x [P]", 2, "proxy"),
    (
        "RewriteRule ^/(.*) http://127.0.0.1:22/$1 [proxy,L]",
        1,
        "proxy",
    ),
    ("RewriteRule ^ - [H=cgi-script]", 1, "handler"),
    ("RewriteRule ^ - [T=application/x-httpd-cgi]", 1, "program"),
    ("RewriteRule ^ - [E=CUTOVER_RELEASE:x]", 1, "Cutover's"),
    (
        "RewriteRule ^ - [E=REDIRECT_CUTOVER_RELEASE:x]",
        1,
        "Cutover's",
    ),
    ("RewriteRule ^/x$ /etc/passwd", 1, "outside the site folder"),
    ("RewriteRule ^/x$ //etc/passwd", 1, "literal folder"),
    ("RewriteRule ^/(.*)$ /$1", 1, "literal folder"),
    (
        "RewriteRule ^/x$ %{HTTP:X-File}",
        1,
        "starts with a variable",
    ),
    (
        "RewriteRule ^/x$ /srv/sites/other/secret",
        1,
        "outside the site folder",
    ),
    (
        "RewriteRule ^/x(.*)$ /srv/sites/shop/$1",
        1,
        "back-references",
    ),
    ("RewriteRule ^/x$ /a/../../../etc/passwd", 1, ".."),
    ("RewriteRule ^/x$ ftp://example.org/", 1, "only http"),
    (
        "RewriteCond expr \"file('/etc/passwd') =~ /root/\"\nRewriteRule ^ - [F]",
        1,
        "file",
    ),
    (
        "RewriteRule ^ /x?%{ENV:CUTOVER_SECRET} [R]",
        1,
        "CUTOVER variable",
    ),
    ("RewriteEngine Off", 1, "live release"),
    ("RewriteMap m prg:/bin/sh", 1, "run programs"),
    ("RewriteMap m int:tolower", 1, "RewriteMap is not allowed"),
    ("SetHandler cgi-script", 1, "runs programs"),
    (
        "<Location /status>\nSetHandler server-status\n</Location>",
        2,
        "server-status",
    ),
    ("AddHandler cgi-script .cgi", 1, "runs programs"),
    ("Action my-type /cgi-bin/x", 1, "runs programs"),
    (
        "ScriptAlias /cgi-bin/ /usr/lib/cgi-bin/",
        1,
        "runs programs",
    ),
    (
        "AddType application/x-httpd-php .txt",
        1,
        "program or module",
    ),
    (
        "<Location />\nForceType application/x-httpd-cgi\n</Location>",
        2,
        "program or module",
    ),
    ("Alias /x /etc", 1, "outside the site folder"),
    ("Alias /x /srv/sites/shop/../other", 1, ".."),
    ("Alias /x /srv/sites/shopper", 1, "outside the site folder"),
    ("AliasMatch ^/x(.*) /srv/sites/shop$1", 1, "literal"),
    (
        "<Directory /etc>\nRequire all granted\n</Directory>",
        1,
        "outside the site folder",
    ),
    (
        "<Directory /srv/sites/shop/../other>\n</Directory>",
        1,
        "..",
    ),
    ("<Directory ~ \".*\">\n</Directory>", 1, "argument"),
    (
        "<DirectoryMatch \"^/srv/sites/shop/.*|^/etc\">\n</DirectoryMatch>",
        1,
        "only this site",
    ),
    (
        "<DirectoryMatch \"^/srv/sites/shop/[](]|/etc\">\n</DirectoryMatch>",
        1,
        "only this site",
    ),
    (
        "<DirectoryMatch \"^/srv/sites/shop\">\n</DirectoryMatch>",
        1,
        "only this site",
    ),
    (
        "<DirectoryMatch \"^/srv/sites/shop/\\Q(\\E|/etc\">\n</DirectoryMatch>",
        1,
        "only this site",
    ),
    ("<Proxy *>\n</Proxy>", 1, "other servers"),
    ("<IfDefine X>\n</IfDefine>", 1, "server's own set-up"),
    ("Define X", 1, "whole server"),
    ("UnDefine X", 1, "whole server"),
    (
        "LoadModule cgi_module /usr/lib/apache2/modules/mod_cgi.so",
        1,
        "loads code",
    ),
    ("LoadFile /lib/x.so", 1, "loads code"),
    ("ErrorLog /tmp/x", 1, "outside the site"),
    ("LogFormat \"%h\" common", 1, "pipe"),
    ("ProxyPass / http://127.0.0.1:22/", 1, "other servers"),
    ("ProxyPassMatch ^/(.*) http://x/$1", 1, "other servers"),
    ("Options +ExecCGI", 1, "Options field"),
    ("ExecCGI", 1, "not a directive a site may use"),
    ("AllowOverride All", 1, ".htaccess"),
    ("php_value memory_limit 1G", 1, "php.settings"),
    ("php_flag display_errors on", 1, "php.settings"),
    ("ContentDigest On", 1, "not a directive a site may use"),
    ("DocumentRoot /etc", 1, "site's settings"),
    (
        "SetEnv CUTOVER_RELEASE 20260101-000000-0000",
        1,
        "Cutover's",
    ),
    ("SetEnvIf Request_URI . CUTOVER_X=1", 1, "Cutover's"),
    ("BrowserMatch . REDIRECT_STATUS=200", 1, "Cutover's"),
    ("UnsetEnv cutover_release", 1, "Cutover's"),
    (
        "Header always unset X-Cutover-Release",
        1,
        "Cutover's own header",
    ),
    ("Header set X-A \"expr=%{file:/etc/passwd}\"", 1, "file"),
    ("ErrorDocument 404 \"%{file:/etc/shadow}\"", 1, "file"),
    (
        "<If \"filesize('/etc/passwd') -gt 0\">\n</If>",
        1,
        "filesize",
    ),
    (
        "<Location />\nRequire expr \"osenv('HOME') == ''\"\n</Location>",
        2,
        "osenv",
    ),
    ("Require all granted", 1, "inside a section"),
    ("AuthUserFile /etc/passwd", 1, "inside a section"),
    (
        "<Location />\nAuthUserFile /etc/passwd\n</Location>",
        2,
        "outside the site folder",
    ),
    (
        "<Location />\nAuthUserFile /srv/sites/shop/current/.htpasswd\n</Location>",
        2,
        "shared",
    ),
    (
        "<Location />\nAuthUserFile /srv/sites/shop/shared/users.txt\n</Location>",
        2,
        ".ht",
    ),
    (
        "<Location />\nAuthType Digest\n</Location>",
        2,
        "authentication type",
    ),
    (
        "<Location />\nRequire not ip 10.0.0.1\n</Location>",
        2,
        "RequireAll",
    ),
    (
        "<Location />\n<Directory /srv/sites/shop>\n</Directory>\n</Location>",
        2,
        "inside <Location>",
    ),
    ("<Else>\n</Else>", 1, "right after an <If>"),
    ("<Limit GET>\nHeader set X-A 1\n</Limit>", 2, "only Require"),
    (
        "AddOutputFilterByType INCLUDES text/html",
        1,
        "output filter",
    ),
    ("Header set X-A \"\" early", 1, "empty"),
    ("Redirect /a file:///etc/passwd", 1, "http"),
    ("< Files x>\n</Files>", 1, "not a section name"),
    ("<Files x\n</Files>", 1, "end with >"),
];

/// Inputs of that table this checker lets through, and why each is harmless here: Apache's
/// configtest refuses it before anything changes, or it stays inside the site.
const HARMLESS: &[(&str, &str)] = &[
    (
        "# note \\\nInclude /etc/shadow",
        "one comment line in Apache too: the Include is inert",
    ),
    (
        "Header set X-A 1 \\\nInclude /etc/shadow",
        "one Header line with a stray word: configtest refuses it",
    ),
    (
        "BrowserMatch . REDIRECT_STATUS=200",
        "PHP runs through PHP-FPM, not CGI: the variable means nothing",
    ),
    (
        "Require all granted",
        "at the vhost's top it is overridden by every section after it",
    ),
    (
        "<Location />\nAuthUserFile /srv/sites/shop/current/.htpasswd\n</Location>",
        "a file of the site; .ht* files are never served",
    ),
    (
        "<Location />\nAuthUserFile /srv/sites/shop/shared/users.txt\n</Location>",
        "a file of the site",
    ),
    (
        "<Location />\nAuthType Digest\n</Location>",
        "mod_auth_digest is not loaded: configtest refuses it",
    ),
    (
        "<Location />\nRequire not ip 10.0.0.1\n</Location>",
        "a negation alone: configtest refuses it",
    ),
    (
        "<Location />\n<Directory /srv/sites/shop>\n</Directory>\n</Location>",
        "configtest refuses <Directory> inside <Location>",
    ),
    (
        "<Else>\n</Else>",
        "an <Else> without <If>: configtest refuses it",
    ),
    (
        "<Limit GET>\nHeader set X-A 1\n</Limit>",
        "Header is not allowed in <Limit>: configtest refuses it",
    ),
    (
        "Header set X-A \"\" early",
        "an early header of the site's own",
    ),
    (
        "<Files x\n</Files>",
        "a section opening without >: configtest refuses it",
    ),
];

#[test]
fn every_borrowed_hostile_input_is_refused_or_harmless() {
    let site = std::path::Path::new("/srv/sites/shop");
    let accepted: Vec<&str> = HOSTILE
        .iter()
        .map(|(input, _, _)| *input)
        .filter(|input| crate::sites::config::directives_ok(input, site).is_ok())
        .collect();
    let harmless: Vec<&str> = HARMLESS.iter().map(|(i, _)| *i).collect();
    assert_eq!(
        accepted, harmless,
        "accepted inputs that are not known to be harmless"
    );
}
