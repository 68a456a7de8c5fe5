//! HTTP/1.1, written by hand over the socket so that each reset lands exactly where the script
//! says.
//!
//! One request at a time per connection (pipelined requests wait in the buffer). Request bodies
//! are read by `Content-Length` or chunked encoding; `Expect: 100-continue` is answered.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::connection::End;
use super::fault::{half, CutAt, Fault, Idle, Reply};
use super::Conn;

/// Longest request head read; a longer one gets `431` and a close.
const MAX_HEAD: usize = 64 * 1024;
/// Most headers in a request head.
const MAX_HEADERS: usize = 128;
/// Longest request body read; a longer one ends the connection.
pub(super) const MAX_BODY: usize = 16 * 1024 * 1024;
/// Most requests served on one connection; then it is closed.
const MAX_REQUESTS: u64 = 1 << 32;

/// Serves requests on one connection until it ends; returns how to end it.
pub(super) async fn serve(stream: &mut TcpStream, conn: &Conn) -> End {
    let mut buf = Vec::with_capacity(4 * 1024);
    let mut idle_since = Instant::now();
    for _ in 0..MAX_REQUESTS {
        // Wait for the first bytes of the next request, under the idle timeout.
        if buf.is_empty() {
            if let Some(end) = wait_for_request(stream, &mut buf, conn, idle_since).await {
                return end;
            }
        }
        let head = match read_head(stream, &mut buf).await {
            Ok(head) => head,
            Err(HeadError::Closed) => return End::Drop,
            Err(HeadError::Bad(status)) => {
                let _ = stream.write_all(status.as_bytes()).await;
                return End::FIN;
            }
        };
        let received = conn.receive(&head.method, &head.uri, head.version, &head.headers, true);
        buf.drain(..head.len);
        match received.action {
            Fault::ResetAfterHead | Fault::RefuseStream | Fault::GoAway => return End::RESET,
            Fault::CloseAfterHead => return End::FIN,
            _ => {}
        }
        if head.expect_continue
            && stream
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await
                .is_err()
        {
            return End::Drop;
        }
        if read_body(stream, &mut buf, head.body).await.is_err() {
            return End::Drop;
        }
        conn.execute(received.nth);

        let echo = conn.echo(&head.headers);
        let echo = echo.as_ref();
        let head_only = head.method == Method::HEAD;
        let result = match &received.action {
            Fault::Reply(reply) => {
                let reply = reply.for_request(&head.method, &head.headers);
                write_reply(stream, &reply, echo, head_only, conn).await
            }
            Fault::ResetAfterRequest => return End::RESET,
            Fault::CloseAfterRequest => return End::FIN,
            action => {
                let reply = conn.shared.reply.for_request(&head.method, &head.headers);
                // Every other action cuts the reply; those that end before the body were
                // handled above.
                let Some(cut) = action.cut(reply.body.len()) else {
                    return End::RESET;
                };
                let mut bytes = response_head(&reply, echo);
                let body = match cut.at {
                    CutAt::Head => {
                        bytes.truncate(half(bytes.len()));
                        &[][..]
                    }
                    CutAt::Body(n) => &reply.body[..n],
                };
                if stream.write_all(&bytes).await.is_ok()
                    && !body.is_empty()
                    && stream.write_all(body).await.is_ok()
                {
                    conn.count_body(body.len());
                }
                return End::Disconnect(cut.end);
            }
        };
        if result.is_err() {
            return End::Drop;
        }
        let closes = match &received.action {
            Fault::Reply(reply) => reply.closes(),
            _ => false,
        };
        if closes || !head.keep_alive {
            return End::FIN;
        }
        idle_since = Instant::now();
    }
    End::FIN
}

/// Waits for the first bytes of a request (into `buf`), applying the idle timeout and the
/// forgotten-connection rule; `Some` when the connection must end.
async fn wait_for_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    conn: &Conn,
    idle_since: Instant,
) -> Option<End> {
    let read = match conn.shared.idle {
        Some((timeout, idle @ (Idle::Reset | Idle::Fin))) => {
            match tokio::time::timeout_at(idle_since + timeout, stream.read_buf(buf)).await {
                Ok(read) => read,
                Err(_) => {
                    conn.count_idle();
                    return Some(if idle == Idle::Reset {
                        End::RESET
                    } else {
                        End::FIN
                    });
                }
            }
        }
        _ => stream.read_buf(buf).await,
    };
    match read {
        Ok(0) | Err(_) => return Some(End::Drop),
        Ok(_) => {}
    }
    let stale = match conn.shared.idle {
        Some((timeout, Idle::Forget)) => idle_since.elapsed() > timeout,
        _ => false,
    };
    if stale || conn.forgotten() {
        conn.count_forgotten();
        return Some(End::RESET);
    }
    None
}

/// A parsed request head.
#[derive(Debug)]
struct Head {
    /// Its length in the buffer, blank line included.
    len: usize,
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
    body: BodyLength,
    keep_alive: bool,
    expect_continue: bool,
}

#[derive(Debug, Clone, Copy)]
enum BodyLength {
    Known(usize),
    Chunked,
}

#[derive(Debug)]
enum HeadError {
    /// End of file or an error before a whole head.
    Closed,
    /// A malformed head: this response is sent, then the connection closed.
    Bad(&'static str),
}

const BAD_REQUEST: &str =
    "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
const TOO_LARGE: &str =
    "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

/// Reads until `buf` starts with a whole request head, and parses it.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Head, HeadError> {
    // Each read adds at least one byte, and the head is limited: the loop is bounded.
    loop {
        if let Some(head) = parse_head(buf)? {
            return Ok(head);
        }
        if buf.len() > MAX_HEAD {
            return Err(HeadError::Bad(TOO_LARGE));
        }
        match stream.read_buf(buf).await {
            Ok(0) | Err(_) => return Err(HeadError::Closed),
            Ok(_) => {}
        }
    }
}

fn parse_head(buf: &[u8]) -> Result<Option<Head>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::Bad(TOO_LARGE)),
        Err(_) => return Err(HeadError::Bad(BAD_REQUEST)),
    };
    let bad = || HeadError::Bad(BAD_REQUEST);
    let method =
        Method::from_bytes(request.method.unwrap_or_default().as_bytes()).map_err(|_| bad())?;
    let uri: Uri = request
        .path
        .unwrap_or_default()
        .parse()
        .map_err(|_| bad())?;
    let version = match request.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let mut map = HeaderMap::with_capacity(request.headers.len());
    for header in request.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes()).map_err(|_| bad())?;
        let value = HeaderValue::from_bytes(header.value).map_err(|_| bad())?;
        map.append(name, value);
    }

    let chunked = map
        .get_all(http::header::TRANSFER_ENCODING)
        .iter()
        .any(|value| has_token(value, "chunked"));
    let body = if chunked {
        BodyLength::Chunked
    } else {
        let mut lengths = map.get_all(http::header::CONTENT_LENGTH).iter();
        match lengths.next() {
            None => BodyLength::Known(0),
            Some(first) => {
                if lengths.any(|other| other != first) {
                    return Err(bad());
                }
                let len: usize = first
                    .to_str()
                    .ok()
                    .and_then(|text| text.trim().parse().ok())
                    .ok_or_else(bad)?;
                BodyLength::Known(len)
            }
        }
    };
    let connection = map.get_all(http::header::CONNECTION);
    let keep_alive = if version == Version::HTTP_10 {
        connection
            .iter()
            .any(|value| has_token(value, "keep-alive"))
    } else {
        !connection.iter().any(|value| has_token(value, "close"))
    };
    let expect_continue = map
        .get(http::header::EXPECT)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    Ok(Some(Head {
        len,
        method,
        uri,
        version,
        headers: map,
        body,
        keep_alive,
        expect_continue,
    }))
}

/// Whether a comma-separated header value contains `token` (case-insensitive).
fn has_token(value: &HeaderValue, token: &str) -> bool {
    value
        .as_bytes()
        .split(|byte| *byte == b',')
        .any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// Reads (and discards) the request body that follows the head, from `buf` then the socket.
async fn read_body(stream: &mut TcpStream, buf: &mut Vec<u8>, body: BodyLength) -> io::Result<()> {
    match body {
        BodyLength::Known(len) => {
            if len > MAX_BODY {
                return Err(io::ErrorKind::InvalidData.into());
            }
            fill(stream, buf, len).await?;
            buf.drain(..len);
            Ok(())
        }
        BodyLength::Chunked => read_chunked(stream, buf).await,
    }
}

/// Reads a chunked body: chunks, the last (empty) chunk, the trailers and the blank line.
async fn read_chunked(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
    let invalid = || io::Error::from(io::ErrorKind::InvalidData);
    let mut total = 0usize;
    // Each chunk is at least one byte, and the total is limited: the loop is bounded.
    loop {
        let line = read_line(stream, buf).await?;
        let size = httparse::parse_chunk_size(&buf[..line]).map_err(|_| invalid())?;
        let size = match size {
            httparse::Status::Complete((_, size)) => {
                usize::try_from(size).map_err(|_| invalid())?
            }
            httparse::Status::Partial => return Err(invalid()),
        };
        buf.drain(..line);
        if size == 0 {
            break;
        }
        total = total.saturating_add(size);
        if total > MAX_BODY {
            return Err(invalid());
        }
        fill(stream, buf, size + 2).await?;
        if &buf[size..size + 2] != b"\r\n" {
            return Err(invalid());
        }
        buf.drain(..size + 2);
    }
    // Trailers, up to the blank line; bounded by the head limit.
    let mut trailers = 0;
    loop {
        let line = read_line(stream, buf).await?;
        buf.drain(..line);
        if line == 2 {
            return Ok(());
        }
        trailers += line;
        if trailers > MAX_HEAD {
            return Err(invalid());
        }
    }
}

/// Reads until `buf` holds a whole line; returns its length, `\r\n` included.
async fn read_line(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut searched = 0;
    loop {
        if let Some(end) = buf[searched..].windows(2).position(|w| w == b"\r\n") {
            return Ok(searched + end + 2);
        }
        searched = buf.len().saturating_sub(1);
        if buf.len() > MAX_HEAD {
            return Err(io::ErrorKind::InvalidData.into());
        }
        if stream.read_buf(buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// Reads until `buf` holds at least `len` bytes.
async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>, len: usize) -> io::Result<()> {
    buf.reserve(len.saturating_sub(buf.len()));
    while buf.len() < len {
        if stream.read_buf(buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(())
}

/// The status line and headers of `reply`, blank line included.
fn response_head(reply: &Reply, echo: Option<&(HeaderName, HeaderValue)>) -> Vec<u8> {
    let status = reply.status;
    let mut head = Vec::with_capacity(128);
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    head.extend_from_slice(b"\r\ncontent-length: ");
    head.extend_from_slice(reply.body.len().to_string().as_bytes());
    head.extend_from_slice(b"\r\n");
    let mut header = |name: &HeaderName, value: &HeaderValue| {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    };
    if let Some((name, value)) = echo {
        header(name, value);
    }
    for (name, value) in &reply.headers {
        header(name, value);
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// Writes a reply: the delay, the head, then the body in its pieces.
async fn write_reply(
    stream: &mut TcpStream,
    reply: &Reply,
    echo: Option<&(HeaderName, HeaderValue)>,
    head_only: bool,
    conn: &Conn,
) -> io::Result<()> {
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut head = response_head(reply, echo);
    let pieces: Vec<Bytes> = if head_only {
        Vec::new()
    } else {
        reply.pieces()
    };
    let mut pieces = pieces.into_iter();
    // The head goes out with the first piece, in one write.
    let first = pieces.next().map_or(0, |first| {
        head.extend_from_slice(&first);
        first.len()
    });
    stream.write_all(&head).await?;
    conn.count_body(first);
    for piece in pieces {
        pause(reply.pause).await;
        stream.write_all(&piece).await?;
        conn.count_body(piece.len());
    }
    Ok(())
}

async fn pause(pause: Duration) {
    if !pause.is_zero() {
        tokio::time::sleep(pause).await;
    }
}
