//! HTTP/1.1 over a raw socket, just enough to probe a server: a `GET`, its response read to
//! the end, and how the server ended the connection (`FIN` or `RST`), which a client library
//! would hide.

// Shared with the `diagnose` test target, which uses only a part.
#![allow(dead_code)]

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Longest response head read.
const MAX_HEAD: usize = 64 * 1024;
/// Longest response body read: probe a small resource.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// How the server ended a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// A clean close: the probe read end-of-file.
    Fin,
    /// A TCP reset: the probe read `ECONNRESET` (or could not write).
    Reset,
}

impl Ending {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Fin => "fin",
            Self::Reset => "rst",
        }
    }
}

/// A response, as far as the probe cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Response {
    pub(crate) status: u16,
    /// The server will close the connection after it (`Connection: close`, HTTP/1.0, or a
    /// body delimited by the close).
    pub(crate) closes: bool,
}

/// Why an exchange gave no response.
#[derive(Debug)]
pub(crate) enum ExchangeError {
    /// The server ended the connection before a whole response.
    Ended(Ending),
    /// What came back is not HTTP/1.x; the first bytes, escaped.
    NotHttp(String),
    /// Nothing complete within the time allowed.
    TimedOut,
    /// Any other socket error.
    Io(io::Error),
}

/// A `GET` for `path` on the host `host` (the `Host` header).
pub(crate) fn get(host: &str, path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nhost: {host}\r\nuser-agent: tower-reset-probe\r\naccept: */*\r\n\r\n")
        .into_bytes()
}

/// Writes `request` and reads the whole response, within `timeout`.
pub(crate) async fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    timeout: Duration,
) -> Result<Response, ExchangeError> {
    match tokio::time::timeout(timeout, exchange_unbounded(stream, request)).await {
        Ok(result) => result,
        Err(_) => Err(ExchangeError::TimedOut),
    }
}

async fn exchange_unbounded(
    stream: &mut TcpStream,
    request: &[u8],
) -> Result<Response, ExchangeError> {
    stream.write_all(request).await.map_err(ended)?;
    let mut buf = Vec::with_capacity(4096);
    // A 1xx response comes before the real one; each adds at least a line, and the head is
    // limited, so the loop is bounded.
    loop {
        let head_end = read_head(stream, &mut buf).await?;
        let head = parse_head(&buf[..head_end])?;
        buf.drain(..head_end);
        if (100..200).contains(&head.status) {
            continue;
        }
        let closes = head.closes;
        let delimited_by_close = match head.body {
            Body::None => false,
            Body::Length(length) => {
                if length > MAX_BODY {
                    return Err(ExchangeError::NotHttp(format!(
                        "a body of {length} bytes (probe a small resource)"
                    )));
                }
                fill(stream, &mut buf, length).await?;
                false
            }
            Body::Chunked => {
                read_chunked(stream, &mut buf).await?;
                false
            }
            Body::UntilClose => {
                read_to_close(stream, &mut buf).await?;
                true
            }
        };
        return Ok(Response {
            status: head.status,
            closes: closes || delimited_by_close,
        });
    }
}

/// Waits until the server ends the idle connection or `until` comes; `None` when it stayed
/// open.
pub(crate) async fn wait_for_close(stream: &mut TcpStream, until: Instant) -> Option<Ending> {
    let mut scratch = [0; 1024];
    let waited = tokio::time::timeout_at(until, async {
        // Bytes a server sends on an idle connection are ignored; each read waits for more.
        loop {
            match stream.read(&mut scratch).await {
                Ok(0) => return Ending::Fin,
                Ok(_) => continue,
                Err(_) => return Ending::Reset,
            }
        }
    })
    .await;
    waited.ok()
}

fn ended(error: io::Error) -> ExchangeError {
    match error.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => ExchangeError::Ended(Ending::Reset),
        io::ErrorKind::UnexpectedEof => ExchangeError::Ended(Ending::Fin),
        _ => ExchangeError::Io(error),
    }
}

/// Reads more into `buf`; end-of-file is an `Ended(Fin)`.
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), ExchangeError> {
    match stream.read_buf(buf).await {
        Ok(0) => Err(ExchangeError::Ended(Ending::Fin)),
        Ok(_) => Ok(()),
        Err(error) => Err(ended(error)),
    }
}

/// Reads until `buf` holds a whole head; returns its length, blank line included.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<usize, ExchangeError> {
    loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            return Ok(end + 4);
        }
        if !buf.is_empty() && !b"HTTP/1.".starts_with(&buf[..buf.len().min(7)]) {
            return Err(ExchangeError::NotHttp(escaped(buf)));
        }
        if buf.len() > MAX_HEAD {
            return Err(ExchangeError::NotHttp(
                "a response head over 64 KiB".to_owned(),
            ));
        }
        if let Err(error) = read_more(stream, buf).await {
            return Err(match error {
                // Something that is not HTTP, then a close.
                ExchangeError::Ended(_) if !buf.is_empty() => ExchangeError::NotHttp(escaped(buf)),
                error => error,
            });
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Body {
    None,
    Length(usize),
    Chunked,
    UntilClose,
}

#[derive(Debug)]
struct Head {
    status: u16,
    closes: bool,
    body: Body,
}

fn parse_head(head: &[u8]) -> Result<Head, ExchangeError> {
    let not_http = || ExchangeError::NotHttp(escaped(head));
    let text = std::str::from_utf8(head).map_err(|_| not_http())?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().ok_or_else(not_http)?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().ok_or_else(not_http)?;
    let status: u16 = parts
        .next()
        .and_then(|code| code.parse().ok())
        .ok_or_else(not_http)?;
    if !version.starts_with("HTTP/1.") {
        return Err(not_http());
    }
    let mut length = None;
    let mut chunked = false;
    let mut close = version == "HTTP/1.0";
    for line in lines.filter(|line| !line.is_empty()) {
        let (name, value) = line.split_once(':').ok_or_else(not_http)?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().map_err(|_| not_http())?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = has_token(value, "chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            if has_token(value, "close") {
                close = true;
            } else if has_token(value, "keep-alive") {
                close = false;
            }
        }
    }
    let body = if status == 204 || status == 304 || (100..200).contains(&status) {
        Body::None
    } else if chunked {
        Body::Chunked
    } else if let Some(length) = length {
        Body::Length(length)
    } else {
        Body::UntilClose
    };
    Ok(Head {
        status,
        closes: close,
        body,
    })
}

fn has_token(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

/// Reads until `buf` holds `len` bytes, then drops them.
async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>, len: usize) -> Result<(), ExchangeError> {
    while buf.len() < len {
        read_more(stream, buf).await?;
    }
    buf.drain(..len);
    Ok(())
}

async fn read_line(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<String, ExchangeError> {
    loop {
        if let Some(end) = find(buf, b"\r\n") {
            let line = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 2);
            return Ok(line);
        }
        if buf.len() > MAX_HEAD {
            return Err(ExchangeError::NotHttp(
                "a chunk line over 64 KiB".to_owned(),
            ));
        }
        read_more(stream, buf).await?;
    }
}

async fn read_chunked(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), ExchangeError> {
    let mut total = 0usize;
    loop {
        let line = read_line(stream, buf).await?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| ExchangeError::NotHttp(format!("a bad chunk size {line:?}")))?;
        if size == 0 {
            break;
        }
        total = total.saturating_add(size);
        if total > MAX_BODY {
            return Err(ExchangeError::NotHttp(
                "a body over 16 MiB (probe a small resource)".to_owned(),
            ));
        }
        fill(stream, buf, size + 2).await?;
    }
    // Trailers, up to the blank line.
    for _ in 0..128 {
        if read_line(stream, buf).await?.is_empty() {
            return Ok(());
        }
    }
    Err(ExchangeError::NotHttp("too many trailers".to_owned()))
}

async fn read_to_close(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), ExchangeError> {
    loop {
        match read_more(stream, buf).await {
            Ok(()) if buf.len() > MAX_BODY => {
                return Err(ExchangeError::NotHttp(
                    "a body over 16 MiB (probe a small resource)".to_owned(),
                ))
            }
            Ok(()) => {}
            Err(ExchangeError::Ended(_)) => return Ok(()),
            Err(error) => return Err(error),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// The first bytes of `bytes`, escaped, for an error message.
fn escaped(bytes: &[u8]) -> String {
    let shown: String = bytes
        .iter()
        .take(40)
        .flat_map(|byte| std::ascii::escape_default(*byte))
        .map(char::from)
        .collect();
    if bytes.len() > 40 {
        format!("\"{shown}…\"")
    } else {
        format!("\"{shown}\"")
    }
}
