//! Each HTTP/1.1 fault, as a real client sees it, and the server-side counts it leaves.

use std::time::Duration;

use http::{Method, StatusCode};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tower_reset::classify::{FailureClass, StandardClassifier};
use tower_reset::lab::{ConnectionMatch, Disconnect, Fault, Lab, Match, Reply};

use crate::support::{
    bounded, http1_client, io_kinds, raw, read_response, read_to_end, request, send, Ending,
};

const CLASSIFIER: StandardClassifier = StandardClassifier::new();

/// A lab whose every request gets `action`.
async fn lab(action: Fault) -> Lab {
    Lab::builder()
        .default_action(action)
        .start()
        .await
        .expect("start the lab")
}

#[tokio::test]
async fn replies_ok_and_counts_exactly() {
    bounded(async {
        let lab = Lab::builder().start().await.unwrap();
        let client = http1_client();
        for id in ["a", "b"] {
            let got = send(&client, request(Method::POST, &lab.url("/charges"), id))
                .await
                .expect("a response");
            assert_eq!(got.status, StatusCode::OK);
            assert_eq!(got.headers["x-request-id"], id);
            assert_eq!(got.body.unwrap(), "ok");
        }
        send(&client, request(Method::GET, &lab.url("/"), "c"))
            .await
            .unwrap();

        let counts = lab.counts();
        assert_eq!(counts.connections(), 1, "keep-alive: one connection");
        assert_eq!(counts.requests_per_connection(), [3]);
        assert_eq!(counts.received(), 3);
        assert_eq!(counts.executed(), 3);
        assert_eq!(counts.executed_by_method(&Method::POST), 2);
        assert_eq!(counts.executed_by_method(&Method::GET), 1);
        assert_eq!(counts.received_by_method(&Method::PUT), 0);
        assert_eq!((counts.arrivals("a"), counts.executions("a")), (1, 1));
        assert_eq!(counts.executions("nope"), 0);
        assert!(counts.duplicates().is_empty());
        let records = counts.requests();
        assert_eq!(records.len(), 3);
        assert_eq!(records[1].nth(), 2);
        assert_eq!(records[1].nth_on_connection(), 2);
        assert_eq!(records[1].connection(), 1);
        assert_eq!(records[1].uri().path(), "/charges");
        assert_eq!(records[1].request_id(), Some("b"));
        assert!(records
            .iter()
            .all(|record| record.executed() && record.rule().is_none()));
    })
    .await;
}

#[tokio::test]
async fn reset_at_accept_is_never_sent() {
    bounded(async {
        let lab = Lab::builder()
            .on_accept(ConnectionMatch::nth(1), Disconnect::Reset)
            .start()
            .await
            .unwrap();
        // A raw socket reads the reset.
        let mut stream = TcpStream::connect(lab.addr()).await.unwrap();
        assert_eq!(
            read_to_end(&mut stream).await,
            (vec![], Ending::Error(std::io::ErrorKind::ConnectionReset))
        );

        // hyper-util: the reset arrives before (or while) the request is written.
        let lab = Lab::builder()
            .on_accept(ConnectionMatch::nth(1), Disconnect::Reset)
            .start()
            .await
            .unwrap();
        let err = send(&http1_client(), request(Method::POST, &lab.url("/"), "p"))
            .await
            .expect_err("the connection was reset at accept");
        let class = CLASSIFIER.classify_chain(&err);
        assert!(
            matches!(
                class,
                Some(FailureClass::NeverSent | FailureClass::UnknownOutcome)
            ),
            "{class:?}: {err:?}"
        );
        let counts = lab.counts();
        assert_eq!(
            (counts.connections(), counts.received(), counts.executed()),
            (1, 0, 0)
        );
        assert_eq!(counts.requests_per_connection(), [0]);
        assert_eq!(counts.accept_hits(), [1]);
    })
    .await;
}

#[tokio::test]
async fn fin_at_accept_is_end_of_file() {
    bounded(async {
        let lab = Lab::builder()
            .on_accept(ConnectionMatch::any(), Disconnect::Fin)
            .start()
            .await
            .unwrap();
        let mut stream = TcpStream::connect(lab.addr()).await.unwrap();
        assert_eq!(read_to_end(&mut stream).await, (vec![], Ending::Eof));
    })
    .await;
}

#[tokio::test]
async fn reset_after_head_is_a_reset_and_not_executed() {
    bounded(async {
        let lab = lab(Fault::ResetAfterHead).await;
        let err = send(
            &http1_client(),
            request(Method::POST, &lab.url("/charges"), "p1"),
        )
        .await
        .expect_err("reset");
        assert!(
            io_kinds(&err).contains(&std::io::ErrorKind::ConnectionReset),
            "{err:?}"
        );
        assert_eq!(
            CLASSIFIER.classify_chain(&err),
            Some(FailureClass::UnknownOutcome)
        );
        let counts = lab.counts();
        assert_eq!((counts.received(), counts.executed()), (1, 0));
        assert_eq!((counts.arrivals("p1"), counts.executions("p1")), (1, 0));
        assert!(!counts.requests()[0].executed());
    })
    .await;
}

#[tokio::test]
async fn close_after_head_is_an_incomplete_message_and_not_executed() {
    bounded(async {
        let lab = lab(Fault::CloseAfterHead).await;
        let err = send(
            &http1_client(),
            request(Method::POST, &lab.url("/charges"), "p1"),
        )
        .await
        .expect_err("closed");
        let hyper_err = crate::support::links::<hyper::Error>(&err);
        assert!(
            hyper_err.iter().any(|e| e.is_incomplete_message()),
            "{err:?}"
        );
        assert_eq!(io_kinds(&err), [], "a FIN, not a reset: {err:?}");
        assert_eq!(
            CLASSIFIER.classify_chain(&err),
            Some(FailureClass::UnknownOutcome)
        );
        let counts = lab.counts();
        assert_eq!((counts.received(), counts.executed()), (1, 0));
        assert_eq!(counts.arrivals("p1"), 1);
    })
    .await;
}

#[tokio::test]
async fn reset_after_request_is_a_reset_and_executed() {
    bounded(async {
        let lab = lab(Fault::ResetAfterRequest).await;
        let err = send(
            &http1_client(),
            request(Method::POST, &lab.url("/charges"), "p1"),
        )
        .await
        .expect_err("reset");
        assert!(
            io_kinds(&err).contains(&std::io::ErrorKind::ConnectionReset),
            "{err:?}"
        );
        assert_eq!(
            CLASSIFIER.classify_chain(&err),
            Some(FailureClass::UnknownOutcome)
        );
        let counts = lab.counts();
        assert_eq!((counts.received(), counts.executed()), (1, 1));
        assert_eq!(counts.executions("p1"), 1);
        assert_eq!(counts.executed_by_method(&Method::POST), 1);
    })
    .await;
}

#[tokio::test]
async fn close_after_request_is_an_incomplete_message_and_executed() {
    bounded(async {
        let lab = lab(Fault::CloseAfterRequest).await;
        let err = send(&http1_client(), request(Method::POST, &lab.url("/"), "p1"))
            .await
            .expect_err("closed");
        let hyper_err = crate::support::links::<hyper::Error>(&err);
        assert!(
            hyper_err.iter().any(|e| e.is_incomplete_message()),
            "{err:?}"
        );
        assert_eq!(lab.counts().executions("p1"), 1);
    })
    .await;
}

#[tokio::test]
async fn reset_in_head_fails_the_response_and_is_executed() {
    bounded(async {
        let lab = lab(Fault::ResetInHead).await;
        // A raw socket sees half a head, then the reset.
        let (read, ending) = raw(lab.addr(), b"GET / HTTP/1.1\r\nhost: lab\r\n\r\n").await;
        assert_eq!(ending, Ending::Error(std::io::ErrorKind::ConnectionReset));
        assert!(
            !read.is_empty() && read.starts_with(b"HTTP/1.1 20"),
            "{read:?}"
        );
        assert!(
            !read.windows(4).any(|w| w == b"\r\n\r\n"),
            "half a head: {read:?}"
        );

        let err = send(&http1_client(), request(Method::POST, &lab.url("/"), "p1"))
            .await
            .expect_err("reset");
        assert!(
            io_kinds(&err).contains(&std::io::ErrorKind::ConnectionReset),
            "{err:?}"
        );
        assert_eq!(
            CLASSIFIER.classify_chain(&err),
            Some(FailureClass::UnknownOutcome)
        );
        let counts = lab.counts();
        assert_eq!((counts.received(), counts.executed()), (2, 2));
        assert_eq!(counts.executions("p1"), 1);
    })
    .await;
}

#[tokio::test]
async fn reset_in_body_fails_the_body_after_a_response() {
    bounded(async {
        let body = "0123456789".repeat(10);
        let lab = Lab::builder()
            .reply(Reply::ok().body(body.clone()))
            .default_action(Fault::ResetInBody)
            .start()
            .await
            .unwrap();
        let got = send(&http1_client(), request(Method::POST, &lab.url("/"), "p1"))
            .await
            .expect("the head arrives: the Service call succeeds");
        assert_eq!(got.status, StatusCode::OK);
        let err = got.body.expect_err("the body is cut by a reset");
        assert!(
            io_kinds(&err).contains(&std::io::ErrorKind::ConnectionReset),
            "{err:?}"
        );
        assert_eq!(lab.counts().executions("p1"), 1);

        // A raw socket reads the head and half the body, then the reset.
        let (read, ending) = raw(lab.addr(), b"GET / HTTP/1.1\r\nhost: lab\r\n\r\n").await;
        assert_eq!(ending, Ending::Error(std::io::ErrorKind::ConnectionReset));
        let text = String::from_utf8(read).unwrap();
        assert!(
            text.ends_with(&format!("\r\n\r\n{}", &body[..50])),
            "{text:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn close_in_body_ends_the_body_early() {
    bounded(async {
        let lab = lab(Fault::CloseInBody).await;
        let got = send(&http1_client(), request(Method::GET, &lab.url("/"), "g1"))
            .await
            .expect("the head arrives");
        let err = got.body.expect_err("the body ends early");
        // Not `is_incomplete_message()`: hyper reports a body error wrapping `UnexpectedEof`.
        assert!(!err.is_incomplete_message(), "{err:?}");
        assert_eq!(
            io_kinds(&err),
            [std::io::ErrorKind::UnexpectedEof],
            "{err:?}"
        );
        assert_eq!(
            CLASSIFIER.classify_chain(&err),
            Some(FailureClass::UnknownOutcome)
        );
        let (read, ending) = raw(lab.addr(), b"GET / HTTP/1.1\r\nhost: lab\r\n\r\n").await;
        assert_eq!(ending, Ending::Eof);
        assert!(String::from_utf8(read).unwrap().ends_with("\r\n\r\no"));
        assert_eq!(lab.counts().executed(), 2);
    })
    .await;
}

#[tokio::test]
async fn slow_and_sliced_replies() {
    bounded(async {
        let lab = Lab::builder()
            .on(
                Match::path("/slow"),
                Reply::ok().delay(Duration::from_millis(60)),
            )
            .on(
                Match::path("/sliced"),
                Reply::ok()
                    .body("abcdefgh")
                    .sliced(4, Duration::from_millis(20)),
            )
            .start()
            .await
            .unwrap();
        let client = http1_client();
        let start = Instant::now();
        let got = send(&client, request(Method::GET, &lab.url("/slow"), "s"))
            .await
            .unwrap();
        assert!(start.elapsed() >= Duration::from_millis(60));
        assert_eq!(got.body.unwrap(), "ok");
        // The slow request counts as executed before its delay.
        let start = Instant::now();
        let got = send(&client, request(Method::GET, &lab.url("/sliced"), "t"))
            .await
            .unwrap();
        assert!(
            start.elapsed() >= Duration::from_millis(60),
            "3 pauses of 20 ms"
        );
        assert_eq!(got.body.unwrap(), "abcdefgh");
        assert_eq!(lab.counts().rule_hits(), [1, 1]);
    })
    .await;
}

#[tokio::test]
async fn a_reply_with_connection_close_is_followed_by_a_fin() {
    bounded(async {
        let lab = Lab::builder()
            .reply(Reply::ok().header(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            ))
            .start()
            .await
            .unwrap();
        let (read, ending) = raw(lab.addr(), b"GET / HTTP/1.1\r\nhost: lab\r\n\r\n").await;
        assert_eq!(ending, Ending::Eof);
        assert!(String::from_utf8(read).unwrap().ends_with("\r\n\r\nok"));
    })
    .await;
}

#[tokio::test]
async fn chunked_bodies_are_read_before_execution() {
    bounded(async {
        let lab = Lab::builder().start().await.unwrap();
        let mut stream = TcpStream::connect(lab.addr()).await.unwrap();
        stream
            .write_all(
                b"POST /up HTTP/1.1\r\nhost: lab\r\nx-request-id: c1\r\ntransfer-encoding: chunked\r\n\r\n\
                  5;ext=1\r\nhello\r\n",
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let counts = lab.counts();
        assert_eq!((counts.arrivals("c1"), counts.executions("c1")), (1, 0), "body not complete");
        stream
            .write_all(b"6\r\n world\r\n0\r\ntrailer: x\r\n\r\n")
            .await
            .unwrap();
        let response = read_response(&mut stream).await;
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(response.contains("x-request-id: c1\r\n"), "{response}");
        assert_eq!(lab.counts().executions("c1"), 1);

        // A body the client never finishes is never executed.
        let mut stream = TcpStream::connect(lab.addr()).await.unwrap();
        stream
            .write_all(b"POST /up HTTP/1.1\r\nhost: lab\r\nx-request-id: c2\r\ncontent-length: 10\r\n\r\nhalf")
            .await
            .unwrap();
        drop(stream);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let counts = lab.counts();
        assert_eq!((counts.arrivals("c2"), counts.executions("c2")), (1, 0));
    })
    .await;
}

#[tokio::test]
async fn expect_continue_is_answered() {
    bounded(async {
        let lab = Lab::builder().start().await.unwrap();
        let mut stream = TcpStream::connect(lab.addr()).await.unwrap();
        stream
            .write_all(
                b"PUT / HTTP/1.1\r\nhost: lab\r\nexpect: 100-continue\r\ncontent-length: 2\r\n\r\n",
            )
            .await
            .unwrap();
        let mut continue_line = [0; 25];
        tokio::io::AsyncReadExt::read_exact(&mut stream, &mut continue_line)
            .await
            .unwrap();
        assert_eq!(&continue_line, b"HTTP/1.1 100 Continue\r\n\r\n");
        stream.write_all(b"hi").await.unwrap();
        assert!(read_response(&mut stream)
            .await
            .starts_with("HTTP/1.1 200 OK"));
        assert_eq!(lab.counts().executed_by_method(&Method::PUT), 1);
    })
    .await;
}

#[tokio::test]
async fn bad_requests_get_an_error_and_the_lab_goes_on() {
    bounded(async {
        let lab = Lab::builder().start().await.unwrap();
        let (read, ending) = raw(lab.addr(), b"\x00\x01garbage\r\n\r\n").await;
        assert!(read.starts_with(b"HTTP/1.1 400 "), "{read:?}");
        assert_eq!(ending, Ending::Eof);

        let (read, _) = raw(
            lab.addr(),
            b"GET / HTTP/1.1\r\ncontent-length: nope\r\n\r\n",
        )
        .await;
        assert!(read.starts_with(b"HTTP/1.1 400 "), "{read:?}");

        let mut huge = b"GET / HTTP/1.1\r\nx: ".to_vec();
        huge.resize(100 * 1024, b'a');
        let mut stream = TcpStream::connect(lab.addr()).await.unwrap();
        // The lab may stop reading (and close) before all of it is written.
        let _ = stream.write_all(&huge).await;
        let (read, _) = read_to_end(&mut stream).await;
        assert!(read.starts_with(b"HTTP/1.1 431 "), "{read:?}");

        let (read, _) = raw(
            lab.addr(),
            b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        )
        .await;
        assert!(
            read.is_empty(),
            "a broken chunk ends the connection: {read:?}"
        );

        let got = send(
            &http1_client(),
            request(Method::GET, &lab.url("/"), "after"),
        )
        .await
        .unwrap();
        assert_eq!(got.status, StatusCode::OK);
        let counts = lab.counts();
        assert_eq!(
            counts.received(),
            2,
            "the chunked POST and the GET had valid heads"
        );
        assert_eq!(counts.executed(), 1);
    })
    .await;
}
