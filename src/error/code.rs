//! Every stable error code of the API's `error.code` (and the go-live report's `code`), in one
//! list. Codes are snake_case and never renamed (scripts match on them); a new failure gets a
//! new constant here. `Code` can only be made from this list, so a misspelt code is a compile
//! error, and the HTTP status follows the error's variant, never its code.

use serde::Serialize;

/// A stable error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Code(&'static str);

impl Code {
    /// The code as the API writes it.
    pub const fn as_str(self) -> &'static str {
        self.0
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

macro_rules! codes {
    ($($name:ident = $text:literal),* $(,)?) => {
        $(
            #[doc = concat!("`", $text, "`")]
            pub const $name: Code = Code($text);
        )*
        /// Every code, for the test that checks they are unique snake_case.
        pub const ALL: &[Code] = &[$($name),*];
    };
}

codes! {
    ABSOLUTE_PATH = "absolute_path",
    ACCESS_DENIED = "access_denied",
    ALREADY_LIVE = "already_live",
    APACHE_CANNOT_READ = "apache_cannot_read",
    APACHE_DIED = "apache_died",
    APACHE_UNAVAILABLE = "apache_unavailable",
    BACKSLASH = "backslash",
    BAD_FORM = "bad_form",
    BAD_JSON = "bad_json",
    BAD_PATH = "bad_path",
    BAD_REQUEST = "bad_request",
    BAD_UPLOAD = "bad_upload",
    BODY_TIMEOUT = "body_timeout",
    BUSY = "busy",
    CANNOT_DISABLE_SELF = "cannot_disable_self",
    CHANGED_MEANWHILE = "changed_meanwhile",
    COMPRESSION_RATIO = "compression_ratio",
    CONFIG_REFUSED = "config_refused",
    CONFIG_WRITE_FAILED = "config_write_failed",
    CONFIGTEST_FAILED = "configtest_failed",
    CONTROL_CHARACTER = "control_character",
    CORRUPT_ARCHIVE = "corrupt_archive",
    CROSS_SITE_REQUEST = "cross_site_request",
    CSRF_FAILED = "csrf_failed",
    CSRF_REFUSED = "csrf_refused",
    DESTINATION_EXISTS = "destination_exists",
    DISK_FULL = "disk_full",
    DRIVE_LETTER = "drive_letter",
    DUPLICATE_ENTRY = "duplicate_entry",
    DUPLICATE_RELEASE = "duplicate_release",
    EMPTY_ARCHIVE = "empty_archive",
    ENCRYPTED = "encrypted",
    FILE_TOO_LARGE = "file_too_large",
    FORBIDDEN = "forbidden",
    HARD_LINK = "hard_link",
    HEADERS_TOO_LARGE = "headers_too_large",
    HEALTH_CHECK_FAILED = "health_check_failed",
    HOST_IN_USE = "host_in_use",
    HOST_EXISTS = "host_exists",
    HOST_FAILED = "host_failed",
    HOST_KEY_CHANGED = "host_key_changed",
    HOST_KEY_MISMATCH = "host_key_mismatch",
    HOST_NOT_STAGED = "host_not_staged",
    HOST_UNCONFIRMED = "host_unconfirmed",
    HOST_UNREACHABLE = "host_unreachable",
    HOSTS_UNSUPPORTED = "hosts_unsupported",
    INVALID_HOST = "invalid_host",
    INTERNAL = "internal",
    INVALID_ALIAS = "invalid_alias",
    INVALID_ALLOW_OVERRIDE = "invalid_allow_override",
    INVALID_DIRECTIVES = "invalid_directives",
    INVALID_DIRECTORY_INDEX = "invalid_directory_index",
    INVALID_EXPIRY = "invalid_expiry",
    INVALID_HEALTH_PATH = "invalid_health_path",
    INVALID_KEEP = "invalid_keep",
    INVALID_LABEL = "invalid_label",
    INVALID_OPTIONS = "invalid_options",
    INVALID_PHP_SETTING = "invalid_php_setting",
    INVALID_ROLE = "invalid_role",
    INVALID_RUNTIME = "invalid_runtime",
    INVALID_SERVER_NAME = "invalid_server_name",
    INVALID_SHARED_PATH = "invalid_shared_path",
    INVALID_SITE_NAME = "invalid_site_name",
    INVALID_STEPS = "invalid_steps",
    INVALID_SWITCH = "invalid_switch",
    INVALID_TIME = "invalid_time",
    INVALID_TLS = "invalid_tls",
    INVALID_USER_NAME = "invalid_user_name",
    IO_ERROR = "io_error",
    LAST_ADMIN = "last_admin",
    METHOD_NOT_ALLOWED = "method_not_allowed",
    NAME_TOO_LONG = "name_too_long",
    NON_UTF8_NAME = "non_utf8_name",
    NOT_A_SESSION = "not_a_session",
    NOT_AVAILABLE = "not_available",
    NOT_FOUND = "not_found",
    NOT_USABLE = "not_usable",
    NOTHING_TO_ROLL_BACK_TO = "nothing_to_roll_back_to",
    PARENT_PATH = "parent_path",
    PASSWORDS_DIFFER = "passwords_differ",
    PHP_REFUSED = "php_refused",
    PHP_UNAVAILABLE = "php_unavailable",
    PATH_CONFLICT = "path_conflict",
    PATH_TOO_DEEP = "path_too_deep",
    RECORD_FAILED = "record_failed",
    RELEASE_INCOMPLETE = "release_incomplete",
    RELEASE_LIVE = "release_live",
    RELOAD_FAILED = "reload_failed",
    SAME_PASSWORD = "same_password",
    SHARED_PATH_CONFLICT = "shared_path_conflict",
    SITE_EXISTS = "site_exists",
    SPARSE_FILE = "sparse_file",
    SPECIAL_FILE = "special_file",
    STEP_FAILED = "step_failed",
    SWITCH_FAILED = "switch_failed",
    SYMLINK = "symlink",
    TLS_REFUSED = "tls_refused",
    TOO_LARGE = "too_large",
    TOO_MANY_ATTEMPTS = "too_many_attempts",
    TOO_MANY_ENTRIES = "too_many_entries",
    UNAUTHORIZED = "unauthorized",
    UNKNOWN_FIELD = "unknown_field",
    UNPACKED_TOO_LARGE = "unpacked_too_large",
    UNSUPPORTED_COMPRESSION = "unsupported_compression",
    UNSUPPORTED_ENTRY = "unsupported_entry",
    UNSUPPORTED_FORMAT = "unsupported_format",
    URI_TOO_LONG = "uri_too_long",
    USER_DISABLED = "user_disabled",
    USER_EXISTS = "user_exists",
    WEAK_PASSWORD = "weak_password",
    WRONG_CREDENTIALS = "wrong_credentials",
    WRONG_PASSWORD = "wrong_password",
}

#[cfg(test)]
mod tests {
    use crate::error::code::ALL;

    #[test]
    fn codes_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for c in ALL {
            let s = c.as_str();
            assert!(seen.insert(s), "{s} twice");
            assert!(
                s.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_'),
                "{s}"
            );
            assert!(
                !s.starts_with('_') && !s.ends_with('_') && !s.contains("__"),
                "{s}"
            );
        }
    }
}
