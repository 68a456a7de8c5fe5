//! Each HTTP/2 fault, as the `h2` client and hyper-util's HTTP/2 client see it.

use std::io::ErrorKind;
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use h2::Reason;
use http::{Method, StatusCode};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tower_reset::lab::{Fault, Idle, Lab, Match, Reply};

use crate::support::{bounded, http2_client, io_kinds, links, request, send};

/// A raw h2 client connection to the lab, and the task driving it.
async fn h2_connect(lab: &Lab) -> (SendRequest<Bytes>, JoinHandle<Result<(), h2::Error>>) {
    let tcp = TcpStream::connect(lab.addr()).await.unwrap();
    let (send, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    (send, tokio::spawn(connection))
}

/// Sends a bodiless request on `send`; returns the response head's result.
async fn h2_get(
    send: &mut SendRequest<Bytes>,
    path: &str,
    id: &str,
) -> Result<http::Response<h2::RecvStream>, h2::Error> {
    let request = http::Request::get(format!("http://lab{path}"))
        .header("x-request-id", id)
        .body(())
        .unwrap();
    let (response, _) = send.clone().ready().await?.send_request(request, true)?;
    response.await
}

async fn lab(action: Fault) -> Lab {
    Lab::builder()
        .http2()
        .default_action(action)
        .start()
        .await
        .unwrap()
}

#[tokio::test]
async fn replies_over_one_connection() {
    bounded(async {
        let lab = Lab::builder().http2().start().await.unwrap();
        let client = http2_client();
        for id in ["a", "b", "c"] {
            let got = send(&client, request(Method::POST, &lab.url("/"), id))
                .await
                .unwrap();
            assert_eq!(got.status, StatusCode::OK);
            assert_eq!(got.headers["x-request-id"], id);
            assert_eq!(got.body.unwrap(), "ok");
        }
        let counts = lab.counts();
        assert_eq!(counts.requests_per_connection(), [3]);
        assert_eq!(counts.executed_by_method(&Method::POST), 3);
        assert_eq!(counts.requests()[2].nth_on_connection(), 3);
    })
    .await;
}

#[tokio::test]
async fn refuse_stream_is_refused_stream_and_not_executed() {
    bounded(async {
        let lab = Lab::builder()
            .http2()
            .on(Match::nth(1), Fault::RefuseStream)
            .start()
            .await
            .unwrap();
        let client = http2_client();
        let err = send(&client, request(Method::POST, &lab.url("/"), "p1"))
            .await
            .unwrap_err();
        let h2_errors = links::<h2::Error>(&err);
        assert_eq!(h2_errors.len(), 1, "{err:?}");
        assert!(
            h2_errors[0].is_reset() && h2_errors[0].is_remote(),
            "{err:?}"
        );
        assert_eq!(h2_errors[0].reason(), Some(Reason::REFUSED_STREAM));
        // The connection stays: the retry goes over it.
        send(&client, request(Method::POST, &lab.url("/"), "p1"))
            .await
            .unwrap();
        let counts = lab.counts();
        assert_eq!(counts.connections(), 1);
        assert_eq!((counts.arrivals("p1"), counts.executions("p1")), (2, 1));
    })
    .await;
}

/// GOAWAY(NO_ERROR) with a last-stream-id below the request: it and later streams are refused,
/// an earlier stream in flight is served.
#[tokio::test]
async fn goaway_refuses_this_stream_and_later_ones() {
    bounded(async {
        let lab = Lab::builder()
            .http2()
            .on(
                Match::path("/slow"),
                Reply::ok().delay(Duration::from_millis(100)),
            )
            .on(Match::path("/goaway"), Fault::GoAway)
            .start()
            .await
            .unwrap();
        let (mut h2, connection) = h2_connect(&lab).await;
        let slow = tokio::spawn({
            let mut h2 = h2.clone();
            async move { h2_get(&mut h2, "/slow", "s").await }
        });
        // Let stream 1 arrive first.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let err = h2_get(&mut h2, "/goaway", "g")
            .await
            .expect_err("refused by GOAWAY");
        assert!(err.is_go_away() && err.is_remote(), "{err:?}");
        assert_eq!(err.reason(), Some(Reason::NO_ERROR));

        let slow = slow
            .await
            .unwrap()
            .expect("stream 1 is below the last-stream-id: served");
        assert_eq!(slow.status(), StatusCode::OK);
        // The connection ends once stream 1 is done.
        connection.await.unwrap().expect("a graceful end");
        let counts = lab.counts();
        assert_eq!(counts.received(), 2);
        assert_eq!((counts.executions("s"), counts.executions("g")), (1, 0));
        assert_eq!(counts.arrivals("g"), 1);
    })
    .await;
}

#[tokio::test]
async fn goaway_through_hyper_util() {
    bounded(async {
        let lab = Lab::builder()
            .http2()
            .on(Match::nth(2), Fault::GoAway)
            .start()
            .await
            .unwrap();
        let client = http2_client();
        send(&client, request(Method::POST, &lab.url("/"), "1"))
            .await
            .unwrap();
        let err = send(&client, request(Method::POST, &lab.url("/"), "2"))
            .await
            .unwrap_err();
        let h2_errors = links::<h2::Error>(&err);
        assert_eq!(h2_errors.len(), 1, "{err:?}");
        assert!(
            h2_errors[0].is_go_away() && h2_errors[0].is_remote(),
            "{err:?}"
        );
        assert_eq!(h2_errors[0].reason(), Some(Reason::NO_ERROR));
        // The next request opens a new connection.
        send(&client, request(Method::POST, &lab.url("/"), "2"))
            .await
            .unwrap();
        let counts = lab.counts();
        assert_eq!(counts.requests_per_connection(), [2, 1]);
        assert_eq!((counts.arrivals("2"), counts.executions("2")), (2, 1));
    })
    .await;
}

#[tokio::test]
async fn reset_after_head_resets_the_connection_and_is_not_executed() {
    bounded(async {
        let lab = lab(Fault::ResetAfterHead).await;
        let err = send(&http2_client(), request(Method::POST, &lab.url("/"), "p1"))
            .await
            .unwrap_err();
        assert!(
            io_kinds(&err).contains(&ErrorKind::ConnectionReset),
            "{err:?}"
        );
        let counts = lab.counts();
        assert_eq!((counts.arrivals("p1"), counts.executions("p1")), (1, 0));
    })
    .await;
}

#[tokio::test]
async fn reset_after_request_is_executed() {
    bounded(async {
        let lab = lab(Fault::ResetAfterRequest).await;
        let err = send(&http2_client(), request(Method::POST, &lab.url("/"), "p1"))
            .await
            .unwrap_err();
        assert!(
            io_kinds(&err).contains(&ErrorKind::ConnectionReset),
            "{err:?}"
        );
        assert_eq!(lab.counts().executions("p1"), 1);
    })
    .await;
}

#[tokio::test]
async fn close_after_head_ends_the_connection() {
    bounded(async {
        let lab = lab(Fault::CloseAfterHead).await;
        let err = send(&http2_client(), request(Method::POST, &lab.url("/"), "p1"))
            .await
            .unwrap_err();
        // h2 turns the end of file under an open stream into an io error of its own making:
        // `BrokenPipe`, "stream closed because of a broken pipe". Not `ConnectionReset`.
        assert_eq!(io_kinds(&err), [ErrorKind::BrokenPipe], "{err:?}");
        assert_eq!(lab.counts().executions("p1"), 0);
    })
    .await;
}

#[tokio::test]
async fn reset_in_head_fails_the_response() {
    bounded(async {
        let lab = lab(Fault::ResetInHead).await;
        let (mut h2, _connection) = h2_connect(&lab).await;
        let err = h2_get(&mut h2, "/", "g")
            .await
            .expect_err("half a HEADERS frame, then RST");
        assert!(err.is_io(), "{err:?}");
        assert_eq!(
            err.get_io().map(std::io::Error::kind),
            Some(ErrorKind::ConnectionReset)
        );
        assert_eq!(lab.counts().executions("g"), 1);
    })
    .await;
}

#[tokio::test]
async fn reset_in_body_fails_the_body_after_the_head() {
    bounded(async {
        let lab = Lab::builder()
            .http2()
            .reply(Reply::ok().body("0123456789"))
            .default_action(Fault::ResetInBody)
            .start()
            .await
            .unwrap();
        let (mut h2, _connection) = h2_connect(&lab).await;
        let response = h2_get(&mut h2, "/", "g").await.expect("the head arrives");
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = response.into_body();
        let first = body.data().await.expect("half the body").expect("data");
        assert_eq!(first, "01234");
        let err = body
            .data()
            .await
            .expect("an error")
            .expect_err("then the reset");
        assert_eq!(
            err.get_io().map(std::io::Error::kind),
            Some(ErrorKind::ConnectionReset),
            "{err:?}"
        );

        // hyper-util: the response succeeds, its body fails.
        let got = send(&http2_client(), request(Method::GET, &lab.url("/"), "h"))
            .await
            .unwrap();
        let err = got.body.expect_err("the body is cut");
        assert!(
            io_kinds(&err).contains(&ErrorKind::ConnectionReset),
            "{err:?}"
        );
        assert_eq!(lab.counts().executed(), 2);
    })
    .await;
}

#[tokio::test]
async fn close_in_body_ends_the_body_early() {
    bounded(async {
        let lab = lab(Fault::CloseInBody).await;
        let got = send(&http2_client(), request(Method::GET, &lab.url("/"), "h"))
            .await
            .unwrap();
        assert_eq!(got.status, StatusCode::OK);
        let err = got.body.expect_err("the body is cut");
        assert_eq!(
            io_kinds(&err),
            [ErrorKind::BrokenPipe],
            "h2's end of file: {err:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn sliced_replies_arrive_in_pieces() {
    bounded(async {
        let lab = Lab::builder()
            .http2()
            .reply(
                Reply::ok()
                    .body("abcdef")
                    .sliced(3, Duration::from_millis(10)),
            )
            .start()
            .await
            .unwrap();
        let (mut h2, _connection) = h2_connect(&lab).await;
        let mut body = h2_get(&mut h2, "/", "x").await.unwrap().into_body();
        let mut pieces = Vec::new();
        while let Some(piece) = body.data().await {
            pieces.push(piece.unwrap());
        }
        assert_eq!(pieces, ["ab", "cd", "ef"]);
    })
    .await;
}

/// What a gRPC reply needs: a framed body and `grpc-status` in the trailers.
#[tokio::test]
async fn trailers_follow_the_body() {
    bounded(async {
        let lab = Lab::builder()
            .http2()
            .reply(Reply::ok().body("x").trailer(
                http::HeaderName::from_static("grpc-status"),
                http::HeaderValue::from_static("0"),
            ))
            .start()
            .await
            .unwrap();
        let (mut h2, _connection) = h2_connect(&lab).await;
        let mut body = h2_get(&mut h2, "/", "x").await.unwrap().into_body();
        assert_eq!(body.data().await.unwrap().unwrap(), "x");
        assert!(body.data().await.is_none());
        let trailers = body.trailers().await.unwrap().expect("trailers");
        assert_eq!(trailers["grpc-status"], "0");
    })
    .await;
}

#[tokio::test]
async fn idle_timeout_resets_or_closes_idle_connections() {
    bounded(async {
        for (idle, reset) in [(Idle::Reset, true), (Idle::Fin, false)] {
            let lab = Lab::builder()
                .http2()
                .idle_timeout(Duration::from_millis(40), idle)
                .start()
                .await
                .unwrap();
            let (mut h2, connection) = h2_connect(&lab).await;
            h2_get(&mut h2, "/", "1").await.unwrap();
            let ended = connection.await.unwrap();
            if reset {
                let err = ended.expect_err("reset");
                assert_eq!(
                    err.get_io().map(std::io::Error::kind),
                    Some(ErrorKind::ConnectionReset),
                    "{err:?}"
                );
            } else {
                // GOAWAY(NO_ERROR), then FIN: a clean end.
                assert!(ended.is_ok(), "{ended:?}");
            }
            assert_eq!(lab.counts().idle_disconnects(), 1);
        }
    })
    .await;
}

#[tokio::test]
async fn restart_resets_h2_connections() {
    bounded(async {
        let lab = Lab::builder().http2().start().await.unwrap();
        let (mut h2, connection) = h2_connect(&lab).await;
        h2_get(&mut h2, "/", "1").await.unwrap();
        lab.restart().await.unwrap();
        let err = connection.await.unwrap().expect_err("reset by the restart");
        assert_eq!(
            err.get_io().map(std::io::Error::kind),
            Some(ErrorKind::ConnectionReset),
            "{err:?}"
        );
        let (mut h2, _connection) = h2_connect(&lab).await;
        h2_get(&mut h2, "/", "2").await.unwrap();
        assert_eq!(lab.counts().requests_per_connection(), [1, 1]);
    })
    .await;
}

/// h2 writes its preface without waiting for the server, so a connection reset at accept
/// reaches the request as h2's own `BrokenPipe`: the client cannot tell it was never sent,
/// though the lab proves it was not received.
#[tokio::test]
async fn reset_at_accept_reaches_the_request_as_a_broken_pipe() {
    bounded(async {
        let lab = Lab::builder()
            .http2()
            .on_accept(
                tower_reset::lab::ConnectionMatch::nth(1),
                tower_reset::lab::Disconnect::Reset,
            )
            .start()
            .await
            .unwrap();
        let err = send(&http2_client(), request(Method::POST, &lab.url("/"), "p1"))
            .await
            .unwrap_err();
        assert!(!err.is_connect(), "{err:?}");
        // Measured: always `BrokenPipe` on Linux; a read of the RST itself would say reset.
        let kinds = io_kinds(&err);
        assert!(
            matches!(
                kinds[..],
                [ErrorKind::BrokenPipe | ErrorKind::ConnectionReset]
            ),
            "{err:?}"
        );
        let counts = lab.counts();
        assert_eq!((counts.connections(), counts.received()), (1, 0));
    })
    .await;
}
