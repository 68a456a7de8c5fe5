//! Real HTTP/1.1 failures over loopback: hyper and the hyper-util legacy client against servers
//! that refuse, reset or close at a precise moment.

use std::io::ErrorKind;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower::BoxError;
use tower_reset::classify::{ClassifyError, FailureClass, StandardClassifier};

use crate::support::{accept, bounded, get, io_kinds, links, listener};

const CLASSIFIER: StandardClassifier = StandardClassifier::new();

/// The request was never written: hyper hands it back as canceled. Made deterministic by
/// waiting for the connection task to end (the server closed at once) before sending.
#[tokio::test]
async fn request_on_a_closed_connection_is_canceled_and_never_sent() {
    bounded("canceled", async {
        let (listener, addr) = listener().await;
        let server = tokio::spawn(async move {
            let stream = accept(&listener).await;
            drop(stream); // FIN before anything was read
        });
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
                .await
                .expect("handshake");
        server.await.expect("server task");
        // The connection sees the FIN and ends before any request was given to it. (hyper 1.12
        // ends even this idle connection with `IncompleteMessage`; no request is involved.)
        let _ = conn.await;

        let err = sender
            .send_request(get(addr, "/never"))
            .await
            .expect_err("the connection is gone");
        assert!(err.is_canceled(), "{err:?}");
        assert_eq!(
            CLASSIFIER.classify_error(&err),
            Some(FailureClass::NeverSent)
        );
        let boxed: BoxError = err.into();
        assert_eq!(
            CLASSIFIER.classify_error(&boxed),
            Some(FailureClass::NeverSent)
        );
    })
    .await;
}

#[cfg(feature = "hyper-util")]
mod legacy_client {
    use std::error::Error;
    use std::io::ErrorKind;

    use bytes::Bytes;
    use http_body_util::Full;
    use hyper_util::client::legacy::{Client, Error as LegacyError};
    use hyper_util::rt::TokioExecutor;
    use tower::BoxError;
    use tower_reset::classify::{ClassifyError, FailureClass};

    use super::{io_kinds, links, CLASSIFIER};
    use crate::support::{bounded, closed_port, get, h1_server, http1_client, AfterHead};

    #[tokio::test]
    async fn connect_refused_is_never_sent() {
        bounded("connect refused", async {
            let addr = closed_port();
            let err = http1_client()
                .request(get(addr, "/"))
                .await
                .expect_err("nothing listens there");
            assert!(err.is_connect(), "{err:?}");
            assert!(
                io_kinds(&err).contains(&ErrorKind::ConnectionRefused),
                "{err:?}"
            );
            assert_eq!(
                CLASSIFIER.classify_error(&err),
                Some(FailureClass::NeverSent)
            );
            // As a tower stack sees it.
            let boxed: BoxError = err.into();
            assert_eq!(
                CLASSIFIER.classify_error(&boxed),
                Some(FailureClass::NeverSent)
            );
        })
        .await;
    }

    #[tokio::test]
    async fn reset_after_the_request_head_is_unknown_outcome() {
        bounded("reset after head", async {
            let (addr, server) = h1_server(AfterHead::Reset).await;
            let err = http1_client()
                .request(get(addr, "/reset"))
                .await
                .expect_err("the server resets");
            let head = server.await.expect("server task");
            assert!(
                head.starts_with(b"GET /reset HTTP/1.1\r\n"),
                "the server read the request"
            );

            assert!(!err.is_connect(), "{err:?}");
            assert!(
                io_kinds(&err).contains(&ErrorKind::ConnectionReset),
                "{err:?}"
            );
            assert_eq!(
                CLASSIFIER.classify_error(&err),
                Some(FailureClass::UnknownOutcome)
            );
            let boxed: BoxError = err.into();
            assert_eq!(
                CLASSIFIER.classify_error(&boxed),
                Some(FailureClass::UnknownOutcome)
            );
        })
        .await;
    }

    #[tokio::test]
    async fn fin_after_the_request_head_is_an_incomplete_message() {
        bounded("FIN after head", async {
            let (addr, server) = h1_server(AfterHead::Fin).await;
            let err = http1_client()
                .request(get(addr, "/fin"))
                .await
                .expect_err("the server closes without answering");
            let head = server.await.expect("server task");
            assert!(
                head.starts_with(b"GET /fin HTTP/1.1\r\n"),
                "the server read the request"
            );

            assert!(!err.is_connect(), "{err:?}");
            let hyper_errors = links::<hyper::Error>(&err);
            assert!(
                hyper_errors.iter().any(|e| e.is_incomplete_message()),
                "{err:?}"
            );
            // No io error at all: only hyper's own accessor tells what happened.
            assert_eq!(io_kinds(&err), [], "{err:?}");
            assert_eq!(
                CLASSIFIER.classify_error(&err),
                Some(FailureClass::UnknownOutcome)
            );
        })
        .await;
    }

    /// A POST whose body is still being written when the server resets: the error may surface
    /// as a reset or a broken pipe, and either way the request was (partly) sent.
    #[tokio::test]
    async fn reset_during_a_large_body_is_unknown_outcome() {
        bounded("reset during body", async {
            let (addr, server) = h1_server(AfterHead::Reset).await;
            let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
            let body = Bytes::from(vec![b'x'; 8 << 20]);
            let request = http::Request::post(format!("http://{addr}/upload"))
                .body(Full::new(body))
                .expect("valid request");
            let err: LegacyError = client
                .request(request)
                .await
                .expect_err("the server resets");
            let head = server.await.expect("server task");
            assert!(head.starts_with(b"POST /upload HTTP/1.1\r\n"));

            assert!(!err.is_connect(), "{err:?}");
            let kinds = io_kinds(&err);
            assert!(
                kinds.contains(&ErrorKind::ConnectionReset)
                    || kinds.contains(&ErrorKind::BrokenPipe),
                "{err:?}"
            );
            assert_eq!(
                CLASSIFIER.classify_error(&err),
                Some(FailureClass::UnknownOutcome)
            );
            let source: &(dyn Error + 'static) = &err;
            assert_eq!(
                CLASSIFIER.classify_chain(source),
                Some(FailureClass::UnknownOutcome)
            );
        })
        .await;
    }
}

/// hyper's own error, without hyper-util around it, from a reset after the request head.
#[tokio::test]
async fn hyper_conn_reset_after_the_request_head_is_unknown_outcome() {
    use crate::support::{h1_server, AfterHead};

    bounded("hyper conn reset", async {
        let (addr, server) = h1_server(AfterHead::Reset).await;
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
                .await
                .expect("handshake");
        let conn = tokio::spawn(conn);
        let err: hyper::Error = sender
            .send_request(get(addr, "/conn"))
            .await
            .expect_err("the server resets");
        server.await.expect("server task");
        let _ = conn.await;

        assert!(
            !err.is_canceled() && !err.is_incomplete_message(),
            "{err:?}"
        );
        assert_eq!(io_kinds(&err), [ErrorKind::ConnectionReset], "{err:?}");
        assert_eq!(links::<hyper::Error>(&err).len(), 1);
        assert_eq!(
            CLASSIFIER.classify_error(&err),
            Some(FailureClass::UnknownOutcome)
        );
    })
    .await;
}
