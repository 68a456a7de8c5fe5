//! Real HTTP/2 failures over loopback, seen through the hyper-util legacy client (prior
//! knowledge, `http2_only`): stream resets from an `h2::server`, and GOAWAY frames from a raw
//! server that writes frames by hand, so that *when* the GOAWAY goes out (after the request's
//! HEADERS arrived) and *which* last-stream-id it carries are both exact.

use std::net::SocketAddr;

use h2::Reason;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tower_reset::classify::{ClassifyError, FailureClass, StandardClassifier};

use crate::support::{accept, bounded, get, http2_client, io_kinds, links, listener, BOUND};

const CLASSIFIER: StandardClassifier = StandardClassifier::new();

/// An `h2::server` that answers the first request stream with `RST_STREAM(reason)`, and reports
/// the request's path.
async fn reset_stream_server(reason: Reason) -> (SocketAddr, oneshot::Receiver<String>) {
    let (listener, addr) = listener().await;
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let stream = accept(&listener).await;
        let mut conn = h2::server::handshake(stream).await.expect("h2 handshake");
        let (request, mut respond) = conn
            .accept()
            .await
            .expect("a request stream")
            .expect("a valid request");
        respond.send_reset(reason);
        let _ = tx.send(request.uri().path().to_owned());
        // Keep driving the connection so the frame is written, until the client goes away.
        let _ = tokio::time::timeout(BOUND, async {
            while let Some(Ok(_)) = conn.accept().await {}
        })
        .await;
    });
    (addr, rx)
}

const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const ACK: u8 = 0x1;

fn frame(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("small frame");
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream_id.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Reads one frame: (type, flags, stream id).
async fn read_frame(stream: &mut TcpStream) -> std::io::Result<(u8, u8, u32)> {
    let mut header = [0u8; 9];
    stream.read_exact(&mut header).await?;
    let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
    let id = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff;
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).await?;
    Ok((header[3], header[4], id))
}

/// A hand-written HTTP/2 server: it settles the connection preface, and when the first HEADERS
/// frame arrives sends `GOAWAY(last_stream_id, code)`, then optionally closes its side (FIN).
/// Reports the id of the stream it saw.
async fn goaway_server(
    last_stream_id: u32,
    code: Reason,
    then_close: bool,
) -> (SocketAddr, oneshot::Receiver<u32>) {
    let (listener, addr) = listener().await;
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let mut stream = accept(&listener).await;
        let mut preface = [0u8; 24];
        stream.read_exact(&mut preface).await.expect("preface");
        assert_eq!(&preface, PREFACE);
        stream
            .write_all(&frame(SETTINGS, 0, 0, &[]))
            .await
            .expect("SETTINGS");
        let mut tx = Some(tx);
        let _ = tokio::time::timeout(BOUND, async {
            // Until the client closes or resets the connection.
            while let Ok((kind, flags, id)) = read_frame(&mut stream).await {
                match kind {
                    SETTINGS if flags & ACK == 0 => {
                        stream.write_all(&frame(SETTINGS, ACK, 0, &[])).await?;
                    }
                    HEADERS if tx.is_some() => {
                        let mut payload = last_stream_id.to_be_bytes().to_vec();
                        payload.extend_from_slice(&u32::from(code).to_be_bytes());
                        stream.write_all(&frame(GOAWAY, 0, 0, &payload)).await?;
                        if then_close {
                            stream.shutdown().await?;
                        }
                        let _ = tx.take().expect("first HEADERS").send(id);
                    }
                    _ => {}
                }
            }
            Ok::<_, std::io::Error>(())
        })
        .await;
    });
    (addr, rx)
}

#[tokio::test]
async fn refused_stream_is_refused() {
    bounded("REFUSED_STREAM", async {
        let (addr, seen) = reset_stream_server(Reason::REFUSED_STREAM).await;
        let err = http2_client()
            .request(get(addr, "/refused"))
            .await
            .expect_err("the stream is refused");
        assert_eq!(seen.await.expect("server saw the request"), "/refused");

        let h2_errors = links::<h2::Error>(&err);
        assert_eq!(h2_errors.len(), 1, "{err:?}");
        let h2_err = h2_errors[0];
        assert!(h2_err.is_reset() && h2_err.is_remote(), "{h2_err:?}");
        assert_eq!(h2_err.reason(), Some(Reason::REFUSED_STREAM));
        assert_eq!(io_kinds(&err), [], "{err:?}");

        assert_eq!(
            CLASSIFIER.classify_error(h2_err),
            Some(FailureClass::Refused)
        );
        assert_eq!(CLASSIFIER.classify_chain(&err), Some(FailureClass::Refused));
        #[cfg(feature = "hyper-util")]
        assert_eq!(CLASSIFIER.classify_error(&err), Some(FailureClass::Refused));
    })
    .await;
}

/// Other stream resets say nothing about whether the request was processed, and are not
/// connection failures: the classifier leaves them alone.
#[tokio::test]
async fn other_stream_resets_are_none() {
    for reason in [
        Reason::CANCEL,
        Reason::INTERNAL_ERROR,
        Reason::ENHANCE_YOUR_CALM,
    ] {
        bounded("RST_STREAM", async {
            let (addr, seen) = reset_stream_server(reason).await;
            let err = http2_client()
                .request(get(addr, "/reset"))
                .await
                .expect_err("the stream is reset");
            seen.await.expect("server saw the request");
            let h2_errors = links::<h2::Error>(&err);
            assert_eq!(h2_errors.len(), 1, "{err:?}");
            assert!(h2_errors[0].is_reset() && h2_errors[0].is_remote());
            assert_eq!(h2_errors[0].reason(), Some(reason));
            assert_eq!(CLASSIFIER.classify_chain(&err), None, "{reason:?}");
        })
        .await;
    }
}

/// RFC 9113 §6.8: streams above the last-stream-id of a GOAWAY were not processed.
#[tokio::test]
async fn graceful_goaway_above_the_stream_is_refused() {
    bounded("GOAWAY(0, NO_ERROR)", async {
        let (addr, seen) = goaway_server(0, Reason::NO_ERROR, false).await;
        let err = http2_client()
            .request(get(addr, "/goaway"))
            .await
            .expect_err("the stream is above last-stream-id");
        assert_eq!(seen.await.expect("server saw HEADERS"), 1);

        let h2_errors = links::<h2::Error>(&err);
        assert_eq!(h2_errors.len(), 1, "{err:?}");
        assert!(h2_errors[0].is_go_away() && h2_errors[0].is_remote());
        assert_eq!(h2_errors[0].reason(), Some(Reason::NO_ERROR));
        assert_eq!(CLASSIFIER.classify_chain(&err), Some(FailureClass::Refused));
    })
    .await;
}

/// A graceful GOAWAY that *covers* the stream (last-stream-id 1), followed by a close with no
/// response: the server may have processed it, and the classifier must not call it refused.
#[tokio::test]
async fn graceful_goaway_covering_the_stream_then_close_is_unknown_outcome() {
    bounded("GOAWAY(1, NO_ERROR) + FIN", async {
        let (addr, seen) = goaway_server(1, Reason::NO_ERROR, true).await;
        let err = http2_client()
            .request(get(addr, "/covered"))
            .await
            .expect_err("the connection closes without a response");
        assert_eq!(seen.await.expect("server saw HEADERS"), 1);
        // h2 fails the stream with its own "broken pipe" io error at EOF, and hyper surfaces it
        // as an io error: no GOAWAY is visible in the chain.
        assert_eq!(io_kinds(&err), [std::io::ErrorKind::BrokenPipe], "{err:?}");
        assert!(links::<h2::Error>(&err).is_empty(), "{err:?}");
        assert_eq!(
            CLASSIFIER.classify_chain(&err),
            Some(FailureClass::UnknownOutcome),
            "{err:?}"
        );
    })
    .await;
}

/// A GOAWAY carrying an error code: the classifier does not trust it to mean "not processed",
/// whether or not the stream is above its last-stream-id. (RFC 9113 §6.8 would allow `Refused`
/// above it, but h2's error does not say where the stream stood: conservative, not unsafe.)
#[tokio::test]
async fn error_goaway_is_unknown_outcome() {
    for (last_stream_id, then_close) in [(0, false), (0, true), (1, true)] {
        bounded("GOAWAY(INTERNAL_ERROR)", async {
            let (addr, seen) =
                goaway_server(last_stream_id, Reason::INTERNAL_ERROR, then_close).await;
            let err = http2_client()
                .request(get(addr, "/error"))
                .await
                .expect_err("the connection goes away");
            assert_eq!(seen.await.expect("server saw HEADERS"), 1);
            if last_stream_id == 0 {
                // Above last-stream-id: the stream fails with the GOAWAY itself. (With
                // last-stream-id 1 it fails at EOF with a broken pipe instead.)
                let h2_errors = links::<h2::Error>(&err);
                assert_eq!(h2_errors.len(), 1, "{err:?}");
                assert!(h2_errors[0].is_go_away() && h2_errors[0].is_remote());
                assert_eq!(h2_errors[0].reason(), Some(Reason::INTERNAL_ERROR));
            }
            assert_eq!(
                CLASSIFIER.classify_chain(&err),
                Some(FailureClass::UnknownOutcome),
                "last_stream_id {last_stream_id}, close {then_close}: {err:?}"
            );
        })
        .await;
    }
}

/// An h2 error the local side made (not received from the peer) is not a refusal.
#[test]
fn local_h2_errors_are_none() {
    for reason in [Reason::REFUSED_STREAM, Reason::NO_ERROR, Reason::CANCEL] {
        let err = h2::Error::from(reason);
        assert!(!err.is_remote());
        assert_eq!(CLASSIFIER.classify_error(&err), None, "{reason:?}");
    }
}
