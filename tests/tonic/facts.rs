//! What tonic does on its own: a generated client over a bare `Channel`, no layer of this crate.
//! These are the facts that the classifier and the docs of `tower_reset::tonic` rely on.
//!
//! This build enables tonic's `server` feature (the tests run a tonic server), which makes tonic
//! map h2 reasons to codes; a client-only build reports `Unknown` for the GOAWAY and the
//! REFUSED_STREAM below. The chains are the same in both builds.

use std::io;

use tonic::transport::Channel;
use tonic::Code;
use tower::ServiceExt;
use tower_reset::classify::{ClassifyError, FailureClass, StandardClassifier};

use crate::echo::{path, EchoClient, EchoRequest};
use crate::support::{bounded, channel, closed_port, describe, find};
use crate::{h2_server, proxy, server};

const CLASSIFIER: StandardClassifier = StandardClassifier::new();

fn hello() -> EchoRequest {
    EchoRequest {
        payload: b"hello".to_vec(),
    }
}

/// A unary call sent on `channel` without a generated client, so that the channel's own error
/// type is seen.
async fn raw_call(channel: Channel) -> tonic::transport::Error {
    let request = http::Request::post(format!("http://example{}", path::ECHO))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(tonic::body::Body::empty())
        .expect("a valid request");
    channel.oneshot(request).await.expect_err("the call fails")
}

/// A TCP reset after the server executed the call: `Unknown`, "transport error"; the io error
/// sits under tonic's and hyper's errors.
#[tokio::test]
async fn a_reset_is_unknown_with_the_io_error_in_the_chain() {
    bounded("reset", async {
        let (server_addr, counts) = server::spawn().await;
        let (addr, _) = proxy::spawn(server_addr, vec![proxy::Conn::ResetOnResponse]).await;
        let status = EchoClient::new(channel(addr))
            .echo(hello())
            .await
            .expect_err("reset");
        assert_eq!(counts.echo(), 1, "the server executed the call");
        assert_eq!(status.code(), Code::Unknown);
        assert_eq!(status.message(), "transport error");
        let chain = describe(&status);
        assert!(
            find::<tonic::transport::Error>(&status).is_some(),
            "{chain}"
        );
        assert!(find::<hyper::Error>(&status).is_some(), "{chain}");
        let io = find::<io::Error>(&status).expect(&chain);
        assert_eq!(io.kind(), io::ErrorKind::ConnectionReset);
        assert_eq!(
            CLASSIFIER.classify_error(&status),
            Some(FailureClass::UnknownOutcome)
        );
    })
    .await;
}

/// A refused connection: `Unavailable` (tonic's `ConnectError`), never sent; the channel's
/// error classifies the same.
#[tokio::test]
async fn a_refused_connection_is_unavailable_and_never_sent() {
    bounded("refused", async {
        let addr = closed_port();
        let status = EchoClient::new(channel(addr))
            .echo(hello())
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::Unavailable);
        let chain = describe(&status);
        assert!(find::<tonic::ConnectError>(&status).is_some(), "{chain}");
        let io = find::<io::Error>(&status).expect(&chain);
        assert_eq!(io.kind(), io::ErrorKind::ConnectionRefused);
        assert_eq!(
            CLASSIFIER.classify_error(&status),
            Some(FailureClass::NeverSent)
        );

        let error = raw_call(channel(addr)).await;
        assert_eq!(
            CLASSIFIER.classify_error(&error),
            Some(FailureClass::NeverSent),
            "{error:?}"
        );
    })
    .await;
}

/// A server that resets each connection as soon as it accepts it: hyper-util's connector reports
/// the reset, and tonic wraps it in a `ConnectError`: never sent, although the io error alone
/// would say "unknown outcome".
#[tokio::test]
async fn a_reset_at_accept_is_a_connect_error_and_never_sent() {
    bounded("reset at accept", async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local_addr");
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_zero_linger();
                drop(stream);
            }
        });
        let status = EchoClient::new(channel(addr))
            .echo(hello())
            .await
            .expect_err("reset at accept");
        let chain = describe(&status);
        assert_eq!(status.code(), Code::Unavailable, "{chain}");
        assert!(find::<tonic::ConnectError>(&status).is_some(), "{chain}");
        let io = find::<io::Error>(&status).expect(&chain);
        assert_eq!(io.kind(), io::ErrorKind::ConnectionReset, "{chain}");
        assert_eq!(
            CLASSIFIER.classify_error(&status),
            Some(FailureClass::NeverSent)
        );
    })
    .await;
}

/// `GOAWAY(0, NO_ERROR)` when the call arrives: a remote h2 GOAWAY under hyper's error; the
/// channel opens a new connection for the next call.
#[tokio::test]
async fn a_goaway_is_refused_and_the_next_call_gets_a_new_connection() {
    bounded("GOAWAY", async {
        let (addr, stats) = h2_server::spawn(vec![h2_server::Conn::GoAway]).await;
        let mut client = EchoClient::new(channel(addr));
        let status = client.echo(hello()).await.expect_err("sent away");
        let chain = describe(&status);
        // `Unknown` in a build without tonic's `server` feature.
        assert_eq!(status.code(), Code::Internal, "{chain}");
        let h2 = find::<h2::Error>(&status).expect(&chain);
        assert!(h2.is_go_away() && h2.is_remote(), "{chain}");
        assert_eq!(h2.reason(), Some(h2::Reason::NO_ERROR));
        assert_eq!(
            CLASSIFIER.classify_error(&status),
            Some(FailureClass::Refused)
        );
        assert_eq!(stats.answered(), 0);

        // tonic does not retry; the next call is answered on a new connection.
        client.echo(hello()).await.expect("a new connection");
        assert_eq!(stats.connections(), 2);
    })
    .await;
}

/// `RST_STREAM(REFUSED_STREAM)`: a remote h2 reset under hyper's error; the connection stays.
#[tokio::test]
async fn a_refused_stream_is_refused() {
    bounded("REFUSED_STREAM", async {
        let (addr, stats) = h2_server::spawn(vec![h2_server::Conn::RefuseFirstStream]).await;
        let mut client = EchoClient::new(channel(addr));
        let status = client.echo(hello()).await.expect_err("refused");
        let chain = describe(&status);
        // `Unknown` in a build without tonic's `server` feature.
        assert_eq!(status.code(), Code::Unavailable, "{chain}");
        let h2 = find::<h2::Error>(&status).expect(&chain);
        assert!(h2.is_reset() && h2.is_remote(), "{chain}");
        assert_eq!(h2.reason(), Some(h2::Reason::REFUSED_STREAM));
        assert_eq!(
            CLASSIFIER.classify_error(&status),
            Some(FailureClass::Refused)
        );

        client
            .echo(hello())
            .await
            .expect("the next stream is answered");
        assert_eq!(stats.connections(), 1);
    })
    .await;
}
