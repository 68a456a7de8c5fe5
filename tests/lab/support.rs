//! Clients, bounds and error-chain helpers shared by the lab tests.

use std::error::Error;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{self, Client};
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// No test may take longer than this.
pub(crate) const BOUND: Duration = Duration::from_secs(10);

/// Runs `test` under [`BOUND`], so that a bug fails the test instead of hanging it.
pub(crate) async fn bounded<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(BOUND, test)
        .await
        .expect("the test did not finish in time")
}

pub(crate) type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A hyper-util legacy client speaking HTTP/1.1.
pub(crate) fn http1_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A hyper-util legacy client speaking HTTP/2 with prior knowledge.
pub(crate) fn http2_client() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

/// A request with an `x-request-id`; a `POST` carries a small body.
pub(crate) fn request(method: Method, url: &str, id: &str) -> Request<Full<Bytes>> {
    let body = if method == Method::POST {
        Full::new(Bytes::from_static(b"{\"amount\":1}"))
    } else {
        Full::default()
    };
    Request::builder()
        .method(method)
        .uri(url)
        .header("x-request-id", id)
        .body(body)
        .expect("a valid request")
}

/// What a client got: the head, then the body or the error that cut it.
#[derive(Debug)]
pub(crate) struct Got {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Result<Bytes, hyper::Error>,
}

/// Sends `request` and reads the whole response.
pub(crate) async fn send(
    client: &HttpClient,
    request: Request<Full<Bytes>>,
) -> Result<Got, legacy::Error> {
    let response = client.request(request).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map(|collected| collected.to_bytes());
    Ok(Got {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

pub(crate) use crate::error_chain::{chain, io_kinds};

/// The links of `err`'s chain of type `T`.
pub(crate) fn links<'a, T: Error + 'static>(err: &'a (dyn Error + 'static)) -> Vec<&'a T> {
    chain(err)
        .into_iter()
        .filter_map(|e| e.downcast_ref::<T>())
        .collect()
}

/// How a raw connection ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// End of file: the server sent a `FIN`.
    Eof,
    /// A read error of this kind (`ConnectionReset` for an `RST`).
    Error(io::ErrorKind),
}

/// Reads until the server ends the connection; returns what was read and how it ended.
pub(crate) async fn read_to_end(stream: &mut TcpStream) -> (Vec<u8>, Ending) {
    let mut read = Vec::new();
    loop {
        match stream.read_buf(&mut read).await {
            Ok(0) => return (read, Ending::Eof),
            Ok(_) => {}
            Err(error) => return (read, Ending::Error(error.kind())),
        }
    }
}

/// Connects, writes `bytes`, and reads until the server ends the connection.
pub(crate) async fn raw(addr: SocketAddr, bytes: &[u8]) -> (Vec<u8>, Ending) {
    let mut stream = TcpStream::connect(addr).await.expect("connect to the lab");
    stream.write_all(bytes).await.expect("write the request");
    read_to_end(&mut stream).await
}

/// Reads one whole HTTP/1.1 response with a `content-length` from `stream`; returns its text.
pub(crate) async fn read_response(stream: &mut TcpStream) -> String {
    let mut read = Vec::new();
    loop {
        let text = String::from_utf8_lossy(&read).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|line| line.strip_prefix("content-length: "))
                .and_then(|value| value.trim().parse().ok())
                .unwrap_or(0);
            if read.len() >= end + 4 + length {
                return text;
            }
        }
        let n = stream.read_buf(&mut read).await.expect("read a response");
        assert_ne!(n, 0, "the connection ended inside a response: {text:?}");
    }
}
