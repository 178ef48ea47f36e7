//! A minimal HTTP/1.1 client over raw TCP, for load against Apache.
//!
//! Why not reqwest or hyper: to count torn responses we must see exactly what came over the
//! wire — the headers as Apache sent them, whether the body stopped short of its
//! Content-Length, and whether an idle keep-alive connection was closed under us before any
//! byte of the answer — with no client library retrying, decoding or hiding a short read.
//! Requests are written by hand; Apache's static-file answers (and its error pages) carry a
//! Content-Length, or chunked (PHP's answers), which is all we need to parse.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A response as received.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header names lower-cased, values trimmed.
    pub headers: Vec<(String, String)>,
    /// The body bytes received.
    pub body: Vec<u8>,
    /// The announced length, if any.
    pub content_length: Option<usize>,
    /// The connection ended before `content_length` bytes of body arrived.
    pub truncated: bool,
}

impl Response {
    /// A header's value (name in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why no response came.
#[derive(Debug)]
pub enum Failure {
    /// The TCP connection could not be made.
    Connect(String),
    /// A reused keep-alive connection was closed (EOF or reset) before any byte of the
    /// answer: the server closed it while idle. HTTP clients retry this (RFC 9112 §9.3.1).
    ClosedIdle,
    /// The connection broke otherwise (EOF/reset on a fresh connection, inside headers…).
    Broken(String),
    /// The answer did not come in time.
    Timeout,
}

impl Failure {
    /// A short label for counting.
    pub fn kind(&self) -> String {
        match self {
            Failure::Connect(e) => format!("connect: {e}"),
            Failure::ClosedIdle => "idle keep-alive closed".into(),
            Failure::Broken(e) => format!("broken: {e}"),
            Failure::Timeout => "timeout".into(),
        }
    }
}

/// One client connection: kept alive between requests, or one per request.
pub struct Conn {
    addr: SocketAddr,
    host: String,
    keep_alive: bool,
    stream: Option<TcpStream>,
    /// Requests answered on the current connection.
    served: u32,
    /// How long one request may take.
    pub timeout: Duration,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Conn {
    /// A client for `Host: host` at `addr`.
    pub fn new(addr: SocketAddr, host: &str, keep_alive: bool) -> Self {
        Self {
            addr,
            host: host.to_owned(),
            keep_alive,
            stream: None,
            served: 0,
            timeout: Duration::from_secs(10),
        }
    }

    /// GET `path`.
    pub async fn get(&mut self, path: &str) -> Result<Response, Failure> {
        match tokio::time::timeout(self.timeout, self.exchange(path)).await {
            Ok(r) => r,
            Err(_) => {
                self.stream = None;
                Err(Failure::Timeout)
            }
        }
    }

    async fn exchange(&mut self, path: &str) -> Result<Response, Failure> {
        let reused = self.stream.is_some();
        if self.stream.is_none() {
            let s = TcpStream::connect(self.addr)
                .await
                .map_err(|e| Failure::Connect(e.kind().to_string()))?;
            let _ = s.set_nodelay(true);
            self.stream = Some(s);
            self.served = 0;
        }
        let connection = if self.keep_alive {
            "keep-alive"
        } else {
            "close"
        };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: cutover-bench\r\nAccept: */*\r\nConnection: {connection}\r\n\r\n",
            self.host
        );
        let result = self.exchange_on_stream(request.as_bytes(), reused).await;
        match &result {
            Ok((_, close)) if !*close && self.keep_alive => self.served += 1,
            _ => self.stream = None,
        }
        result.map(|(r, _)| r)
    }

    /// Sends and reads one answer; also says whether the connection must be closed after.
    async fn exchange_on_stream(
        &mut self,
        request: &[u8],
        reused: bool,
    ) -> Result<(Response, bool), Failure> {
        let stream = self.stream.as_mut().unwrap();
        let idle_or = |e: String| {
            if reused {
                Failure::ClosedIdle
            } else {
                Failure::Broken(e)
            }
        };
        if let Err(e) = stream.write_all(request).await {
            return Err(idle_or(format!("write: {}", e.kind())));
        }
        let mut buf: Vec<u8> = Vec::with_capacity(8192);
        let mut chunk = vec![0u8; 64 * 1024];
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i;
            }
            match stream.read(&mut chunk).await {
                Ok(0) if buf.is_empty() => return Err(idle_or("EOF before the answer".into())),
                Ok(0) => return Err(Failure::Broken("EOF inside the headers".into())),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if buf.is_empty() => return Err(idle_or(format!("read: {}", e.kind()))),
                Err(e) => return Err(Failure::Broken(format!("read in headers: {}", e.kind()))),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Failure::Broken(format!("bad status line {status_line:?}")))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| {
                let (n, v) = l.split_once(':')?;
                Some((n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            })
            .collect();
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let content_length = get("content-length").and_then(|v| v.parse::<usize>().ok());
        let close = get("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let mut body = buf[head_end + 4..].to_vec();
        let mut truncated = false;
        let chunked = get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        if chunked {
            let raw = std::mem::take(&mut body);
            match read_chunked(stream, raw, &mut chunk).await {
                Some(decoded) => body = decoded,
                None => truncated = true,
            }
        }
        match content_length {
            _ if chunked => {}
            Some(len) => {
                while body.len() < len {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => {
                            truncated = true;
                            break;
                        }
                        Ok(n) => body.extend_from_slice(&chunk[..n]),
                    }
                }
            }
            None => loop {
                // No length: the body ends with the connection.
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => body.extend_from_slice(&chunk[..n]),
                }
            },
        }
        let must_close =
            close || truncated || (content_length.is_none() && !chunked) || !self.keep_alive;
        Ok((
            Response {
                status,
                headers,
                body,
                content_length,
                truncated,
            },
            must_close,
        ))
    }
}

/// A chunked body, from what has arrived (`pending`) and the rest of the stream; `None` when
/// the connection ends first or a chunk header is not hexadecimal.
async fn read_chunked(
    stream: &mut tokio::net::TcpStream,
    mut pending: Vec<u8>,
    buf: &mut [u8],
) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(i) = find(&pending, b"\r\n") {
                break i;
            }
            pending.extend_from_slice(more(stream, buf).await?);
        };
        let size_text = String::from_utf8_lossy(&pending[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        pending.drain(..line_end + 2);
        while pending.len() < size + 2 {
            pending.extend_from_slice(more(stream, buf).await?);
        }
        if size == 0 {
            // No trailers are sent by Apache here: the final CRLF ends the body.
            return Some(body);
        }
        body.extend_from_slice(&pending[..size]);
        pending.drain(..size + 2);
    }
}

/// The next bytes of the stream, or `None` at its end.
async fn more<'b>(stream: &mut tokio::net::TcpStream, buf: &'b mut [u8]) -> Option<&'b [u8]> {
    match stream.read(buf).await {
        Ok(0) | Err(_) => None,
        Ok(n) => Some(&buf[..n]),
    }
}
