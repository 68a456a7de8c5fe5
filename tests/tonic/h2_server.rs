//! gRPC servers that refuse work the way HTTP/2 lets them, written with the `h2` crate directly
//! (and, for the GOAWAY, frame by frame, so that it goes out exactly when the request's HEADERS
//! arrived, with last-stream-id 0). They speak just enough gRPC to answer `echo.Echo` calls:
//! each message is a 5-byte prefix (compressed flag, big-endian length) and the protobuf bytes,
//! and the status travels in `grpc-status` trailers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use h2::Reason;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::echo::{EchoReply, EchoRequest};

/// What the server does with one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Conn {
    /// Answers every call.
    Answer,
    /// Refuses the first stream with `RST_STREAM(REFUSED_STREAM)`, answers the ones after it.
    RefuseFirstStream,
    /// Sends `GOAWAY(last-stream-id 0, NO_ERROR)` when the first request's HEADERS arrive: the
    /// server promises it did not process the stream. The connection stays open until the client
    /// closes it.
    GoAway,
}

/// What the server saw.
#[derive(Debug, Default)]
pub(crate) struct H2Stats {
    connections: AtomicUsize,
    /// Request streams that reached the server, refused ones included.
    streams: AtomicUsize,
    /// Calls answered with a message and `grpc-status: 0`.
    answered: AtomicUsize,
    /// Streams refused or sent away.
    refused: AtomicUsize,
}

impl H2Stats {
    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
    pub(crate) fn streams(&self) -> usize {
        self.streams.load(Ordering::SeqCst)
    }
    pub(crate) fn answered(&self) -> usize {
        self.answered.load(Ordering::SeqCst)
    }
    pub(crate) fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }
}

/// A server on an ephemeral loopback port: connection `i` is handled by `script[i]`, later ones
/// are answered.
pub(crate) async fn spawn(script: Vec<Conn>) -> (SocketAddr, Arc<H2Stats>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    let stats = Arc::new(H2Stats::default());
    let task_stats = stats.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let _ = stream.set_nodelay(true);
            let index = task_stats.connections.fetch_add(1, Ordering::SeqCst);
            let conn = script.get(index).copied().unwrap_or(Conn::Answer);
            let stats = task_stats.clone();
            tokio::spawn(async move {
                match conn {
                    Conn::GoAway => go_away(stream, &stats).await,
                    Conn::Answer => serve(stream, false, &stats).await,
                    Conn::RefuseFirstStream => serve(stream, true, &stats).await,
                }
            });
        }
    });
    (addr, stats)
}

/// Serves gRPC calls with the `h2` crate, refusing the first stream if told to.
async fn serve(stream: TcpStream, refuse_first: bool, stats: &H2Stats) {
    let Ok(mut conn) = h2::server::handshake(stream).await else {
        return;
    };
    let mut refuse = refuse_first;
    while let Some(Ok((request, mut respond))) = conn.accept().await {
        stats.streams.fetch_add(1, Ordering::SeqCst);
        if std::mem::take(&mut refuse) {
            respond.send_reset(Reason::REFUSED_STREAM);
            stats.refused.fetch_add(1, Ordering::SeqCst);
            continue;
        }
        let served = stats.answered.fetch_add(1, Ordering::SeqCst) as u64 + 1;
        tokio::spawn(async move {
            let _ = answer(request, respond, served).await;
        });
    }
}

/// Reads the unary request and answers it with its payload and `grpc-status: 0`.
async fn answer(
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    served: u64,
) -> Result<(), h2::Error> {
    let mut body = request.into_body();
    let mut received = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        received.extend_from_slice(&chunk);
    }
    // One message: 5-byte prefix, then an `EchoRequest`.
    let payload = if received.len() >= 5 {
        EchoRequest::decode(&received[5..])
            .map(|request| request.payload)
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let reply = EchoReply { payload, served }.encode_to_vec();
    let mut message = BytesMut::with_capacity(5 + reply.len());
    message.put_u8(0);
    message.put_u32(u32::try_from(reply.len()).expect("a small message"));
    message.put_slice(&reply);

    let response = http::Response::builder()
        .header("content-type", "application/grpc")
        .body(())
        .expect("a valid response");
    let mut send = respond.send_response(response, false)?;
    send.send_data(message.freeze(), false)?;
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    send.send_trailers(trailers)
}

const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const ACK: u8 = 0x1;

fn frame(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("a small frame");
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream_id.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Reads one frame: (type, flags).
async fn read_frame(stream: &mut TcpStream) -> std::io::Result<(u8, u8)> {
    let mut header = [0u8; 9];
    stream.read_exact(&mut header).await?;
    let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).await?;
    Ok((header[3], header[4]))
}

/// Settles the connection preface, answers `GOAWAY(0, NO_ERROR)` to the first HEADERS, then
/// reads (and ignores) what the client sends until it closes the connection.
async fn go_away(mut stream: TcpStream, stats: &H2Stats) {
    let run = async {
        let mut preface = [0u8; 24];
        stream.read_exact(&mut preface).await?;
        assert_eq!(&preface, PREFACE);
        stream.write_all(&frame(SETTINGS, 0, 0, &[])).await?;
        let mut sent = false;
        loop {
            let (kind, flags) = read_frame(&mut stream).await?;
            match kind {
                SETTINGS if flags & ACK == 0 => {
                    stream.write_all(&frame(SETTINGS, ACK, 0, &[])).await?;
                }
                HEADERS if !sent => {
                    sent = true;
                    stats.streams.fetch_add(1, Ordering::SeqCst);
                    stats.refused.fetch_add(1, Ordering::SeqCst);
                    let mut payload = 0u32.to_be_bytes().to_vec();
                    payload.extend_from_slice(&u32::from(Reason::NO_ERROR).to_be_bytes());
                    stream.write_all(&frame(GOAWAY, 0, 0, &payload)).await?;
                }
                _ => {}
            }
        }
    };
    let _: std::io::Result<()> = run.await;
}
