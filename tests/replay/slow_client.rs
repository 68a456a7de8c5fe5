//! Heap held by the README's proxy pattern while a client uploads slowly: a hyper server hands
//! each request's `Incoming` to `ReplayBodyLayer` → `ResetRetryLayer` → hyper-util's client,
//! which streams it to an upstream that reads it all but has not answered yet. Every segment the
//! client sends is a read of its own on the proxy (the client waits for the upstream to have it
//! before sending the next), so the body comes in as many small chunks, each cut from a read
//! buffer of hyper's. Counted by `allocation-counter`, against the same proxy without the stack.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::{BoxError, Service, ServiceBuilder};
use tower_reset::replay::{ReplayBody, ReplayBodyLayer, DEFAULT_CAP};
use tower_reset::ResetRetryLayer;

use crate::hyper_server::serve_connection;
use crate::memory::measure;

/// What the proxy may hold beyond the bare proxy and the cap.
const SLACK: u64 = 16 * 1024;
const LIMIT: Duration = Duration::from_secs(120);

/// An upstream that reads one request (head, then `len` body bytes) and never answers;
/// `delivered` counts the body bytes it has read.
async fn upstream(listener: TcpListener, delivered: watch::Sender<usize>) {
    let (mut stream, _) = listener.accept().await.unwrap();
    let mut buffer = vec![0; 64 * 1024];
    let mut head = Some(Vec::new());
    let mut body = 0;
    loop {
        let read = stream.read(&mut buffer).await.unwrap();
        assert_ne!(read, 0, "the proxy closed the upstream connection");
        match &mut head {
            None => body += read,
            Some(bytes) => {
                bytes.extend_from_slice(&buffer[..read]);
                let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                body += bytes.len() - (end + 4);
                head = None;
            }
        }
        delivered.send_replace(body);
    }
}

/// Whether the proxy runs the stack (`ReplayBodyLayer` → `ResetRetryLayer` → client) or
/// forwards `Incoming` to the client as it is.
#[derive(Clone, Copy, Debug)]
enum Proxy {
    Bare,
    Replay,
}

/// Serves one connection on `listener` (HTTP/2 when `h2`), forwarding its requests to
/// `upstream` through `proxy`.
async fn proxy(listener: TcpListener, upstream: SocketAddr, proxy: Proxy, h2: bool) {
    let (stream, _) = listener.accept().await.unwrap();
    let uri: http::Uri = format!("http://{upstream}/upload").parse().unwrap();
    let to_upstream = move |mut request: http::Request<Incoming>| {
        *request.uri_mut() = uri.clone();
        // Upstream over HTTP/1.1, whatever the client spoke.
        *request.version_mut() = http::Version::HTTP_11;
        request
    };
    match proxy {
        Proxy::Bare => {
            let client = Client::builder(TokioExecutor::new()).build_http::<Incoming>();
            let service = ServiceBuilder::new()
                .map_request(to_upstream)
                .service(client);
            serve(stream, service, h2).await;
        }
        Proxy::Replay => {
            let client = Client::builder(TokioExecutor::new()).build_http::<ReplayBody<Incoming>>();
            let service = ServiceBuilder::new()
                .map_request(to_upstream)
                .layer(ReplayBodyLayer::new())
                .layer(ResetRetryLayer::new())
                .service(client);
            serve(stream, service, h2).await;
        }
    }
}

async fn serve<S>(stream: TcpStream, service: S, h2: bool)
where
    S: Service<http::Request<Incoming>, Response = http::Response<Incoming>>
        + Clone
        + Send
        + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    serve_connection(stream, TowerToHyperService::new(service), h2).await;
}

/// The heap a proxy holds once `client` has uploaded through it.
#[derive(Clone, Copy, Debug)]
struct Heap {
    /// Allocated since the proxy started and not freed when the upstream has the whole upload
    /// (and has not answered).
    held: u64,
    /// The most allocated at any moment until then.
    peak: u64,
}

/// Starts an upstream and a proxy on a fresh runtime and runs `client`, which gets the
/// proxy's address and the upstream's count of body bytes and returns once the upstream has
/// the whole upload (with whatever keeps its connection open); counts the heap from the first
/// byte to that moment, the proxy's tasks still running.
fn heap<F, Fut, K>(proxy_kind: Proxy, h2: bool, client: F) -> Heap
where
    F: FnOnce(SocketAddr, watch::Receiver<usize>) -> Fut,
    Fut: Future<Output = K>,
{
    let (info, connection) = measure(async move {
        let upstream_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream_addr = upstream_listener.local_addr().unwrap();
        let (delivered, watching) = watch::channel(0);
        tokio::spawn(upstream(upstream_listener, delivered));
        let proxy_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_addr = proxy_listener.local_addr().unwrap();
        tokio::spawn(proxy(proxy_listener, upstream_addr, proxy_kind, h2));
        tokio::time::timeout(LIMIT, client(proxy_addr, watching))
            .await
            .expect("the upload reaches the upstream")
    });
    // The runtime, its tasks and the client's connection go after the count.
    drop(connection);
    Heap {
        held: u64::try_from(info.bytes_current).unwrap_or(0),
        peak: info.bytes_max,
    }
}

/// Sends a `len`-byte PUT over HTTP/1.1 in `segment`-byte writes, each once the upstream has
/// the one before.
async fn send_in_segments(
    proxy: SocketAddr,
    mut delivered: watch::Receiver<usize>,
    len: usize,
    segment: usize,
) -> TcpStream {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let head = format!("PUT /upload HTTP/1.1\r\nhost: proxy\r\ncontent-length: {len}\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let payload = vec![b'p'; segment];
    let mut sent = 0;
    while sent < len {
        let n = segment.min(len - sent);
        stream.write_all(&payload[..n]).await.unwrap();
        sent += n;
        delivered.wait_for(|&got| got >= sent).await.unwrap();
    }
    stream
}

/// One-byte DATA frames sent before waiting for the upstream to have them: h2 ends a connection
/// that buffers too many small frames unread (`ENHANCE_YOUR_CALM`), as it should.
const FRAMES_IN_FLIGHT: usize = 500;

/// Sends a `frames`-byte PUT over HTTP/2 as that many one-byte DATA frames.
async fn send_one_byte_frames(
    proxy: SocketAddr,
    mut delivered: watch::Receiver<usize>,
    frames: usize,
) -> impl Sized {
    let stream = TcpStream::connect(proxy).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (client, connection) = h2::client::handshake(stream).await.unwrap();
    let connection = tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let request = http::Request::put("http://proxy/upload")
        .header("content-length", frames)
        .body(())
        .unwrap();
    let (_response, mut body) = client.send_request(request, false).unwrap();
    for n in 1..=frames {
        body.send_data(Bytes::from_static(b"p"), n == frames)
            .unwrap();
        if n % FRAMES_IN_FLIGHT == 0 || n == frames {
            delivered.wait_for(|&got| got >= n).await.unwrap();
        }
    }
    (client, body, connection)
}

/// Checks that the stack holds at most the cap and [`SLACK`] more than the bare proxy.
fn assert_bounded(case: &str, bare: Heap, replay: Heap) {
    let extra = replay.held.saturating_sub(bare.held);
    println!(
        "{case}: held bare {} B, with ReplayBody {} B, extra {extra} B (cap {DEFAULT_CAP} B); \
         peak bare {} B, with ReplayBody {} B",
        bare.held, replay.held, bare.peak, replay.peak
    );
    assert!(
        extra <= DEFAULT_CAP as u64 + SLACK,
        "{case}: the stack held {extra} B more than the bare proxy"
    );
}

fn upload_in_segments(segment: usize) {
    let len = DEFAULT_CAP;
    let bare = heap(Proxy::Bare, false, |proxy, delivered| {
        send_in_segments(proxy, delivered, len, segment)
    });
    let replay = heap(Proxy::Replay, false, |proxy, delivered| {
        send_in_segments(proxy, delivered, len, segment)
    });
    assert_bounded(&format!("64 KiB in {segment}-byte segments"), bare, replay);
}

#[test]
fn a_64_kib_upload_in_1_byte_segments_holds_at_most_the_cap() {
    upload_in_segments(1);
}

#[test]
fn a_64_kib_upload_in_16_byte_segments_holds_at_most_the_cap() {
    upload_in_segments(16);
}

#[test]
fn a_64_kib_upload_in_100_byte_segments_holds_at_most_the_cap() {
    upload_in_segments(100);
}

#[test]
fn a_64_kib_upload_in_1400_byte_segments_holds_at_most_the_cap() {
    upload_in_segments(1400);
}

#[test]
fn a_64_kib_upload_in_8_kib_segments_holds_at_most_the_cap() {
    upload_in_segments(8 * 1024);
}

#[test]
fn a_64_kib_upload_in_one_write_holds_at_most_the_cap() {
    // hyper reads it in growing buffers, as chunks of 8, 16 and 32 KiB.
    upload_in_segments(64 * 1024);
}

#[test]
fn sixty_thousand_one_byte_h2_frames_hold_at_most_the_cap() {
    let frames = 60_000;
    let bare = heap(Proxy::Bare, true, |proxy, delivered| {
        send_one_byte_frames(proxy, delivered, frames)
    });
    let replay = heap(Proxy::Replay, true, |proxy, delivered| {
        send_one_byte_frames(proxy, delivered, frames)
    });
    assert_bounded("60,000 one-byte HTTP/2 DATA frames", bare, replay);
}
