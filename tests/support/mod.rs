//! Helpers shared by the integration tests (`tests/api`), the benches (`benches/common`) and
//! the Apache unit tests (`src/apache/tests`): one copy of each, included by `#[path]`.
#![allow(dead_code)]

pub mod archives;
pub mod certs;
pub mod fleet;

/// A port on 127.0.0.1 that was free a moment ago (racy: Apache cannot listen on port 0, so
/// callers retry with another when a start finds it taken).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .unwrap()
        .port()
}

/// The first `csrf_token` hidden field of a page.
pub fn csrf_in(html: &str) -> Option<String> {
    let key = "name=\"csrf_token\" value=\"";
    let start = html.find(key)? + key.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_owned())
}

/// True when `pid` no longer runs: gone, or a zombie (exited, not yet reaped: this machine's
/// PID 1 does not reap).
pub fn is_gone(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with(['Z', 'X'])
        })
        .unwrap_or(true)
}

/// Whether `pid`'s command line has `flag` immediately followed by `value` (e.g. `-f CONF`).
pub fn has_args(pid: i32, flag: &str, value: &str) -> bool {
    let args = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<&[u8]> = args.split(|b| *b == 0).collect();
    args.windows(2)
        .any(|w| w[0] == flag.as_bytes() && w[1] == value.as_bytes())
}

/// Running processes whose command line has `flag value`.
pub fn pids_with_args(flag: &str, value: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .filter(|pid| has_args(*pid, flag, value) && !is_gone(*pid))
                .collect()
        })
        .unwrap_or_default()
}
