//! Blocking work (argon2, extraction, fsync, renames) on tokio's blocking pool, inside the
//! caller's tracing span, so its log lines keep the request id and the site.

/// Runs `f` on the blocking pool in the current span.
pub fn spawn<F, T>(f: F) -> tokio::task::JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f))
}
