//! gRPC status semantics: final connection failures reported as `UNAVAILABLE`, and
//! `UNAVAILABLE` answers retried after the server's `grpc-retry-pushback-ms`.

use std::error::Error;
use std::io;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;
use tonic::{Code, Status};
use tower::{service_fn, BoxError, Layer, ServiceExt};
use tower_reset::tonic::UnavailableStatusLayer;

use crate::echo::{path, EchoClient, EchoRequest};
use crate::proxy::{self, Conn};
use crate::server::{self, Counts};
use crate::support::{bounded, find, Options};

fn hello() -> EchoRequest {
    EchoRequest {
        payload: b"hello".to_vec(),
    }
}

/// A reset that is not retried reaches a generated client as `Unknown` without the layer, and
/// as `Unavailable` with it, the io error still reachable through `source()`.
#[tokio::test]
async fn a_final_reset_is_reported_as_unavailable_with_its_source() {
    bounded("UNAVAILABLE for a reset", async {
        for report in [false, true] {
            let (server_addr, counts) = server::spawn().await;
            let (addr, _) = proxy::spawn(server_addr, vec![Conn::ResetOnResponse]).await;
            let stack = Options::default().stack(addr);
            let status = if report {
                EchoClient::new(stack).echo(hello()).await
            } else {
                EchoClient::new(stack.into_inner()).echo(hello()).await
            }
            .expect_err("the reset surfaces");
            assert_eq!(counts.echo(), 1);

            let expected = if report {
                Code::Unavailable
            } else {
                Code::Unknown
            };
            assert_eq!(status.code(), expected, "report {report}: {status:?}");
            let source = status.source().expect("the original error is kept");
            assert!(
                source.is::<tonic::transport::Error>(),
                "the channel's error, not a copy: {source:?}"
            );
            let io = find::<io::Error>(&status).expect("the io error under the status");
            assert_eq!(io.kind(), io::ErrorKind::ConnectionReset);
            if report {
                assert!(
                    status
                        .message()
                        .starts_with("transport error: connection error"),
                    "{:?}",
                    status.message()
                );
            }
        }
    })
    .await;
}

/// Errors the classifier does not recognise pass through untouched, the same `Box`.
#[tokio::test]
async fn unrecognised_errors_pass_untouched() {
    bounded("unrecognised errors", async {
        let service =
            UnavailableStatusLayer::new().layer(service_fn(|_: http::Request<()>| async {
                Err::<http::Response<()>, BoxError>(Box::new(Status::not_found("no such echo")))
            }));
        let error = service
            .oneshot(http::Request::new(()))
            .await
            .expect_err("the inner error");
        let status = error.downcast_ref::<Status>().expect("the same Status");
        assert_eq!(status.code(), Code::NotFound);

        let timeout =
            UnavailableStatusLayer::new().layer(service_fn(|_: http::Request<()>| async {
                Err::<http::Response<()>, io::Error>(io::ErrorKind::TimedOut.into())
            }));
        let error = timeout
            .oneshot(http::Request::new(()))
            .await
            .expect_err("the inner error");
        let io = error
            .downcast_ref::<io::Error>()
            .expect("the same io error");
        assert_eq!(io.kind(), io::ErrorKind::TimedOut);
    })
    .await;
}

/// A server answers the first `Get` with a trailers-only `UNAVAILABLE` and
/// `grpc-retry-pushback-ms: 200`: with `unavailable_responses(true)` the stack waits at least
/// that long, then retries, and the second answer is the caller's.
#[tokio::test]
async fn unavailable_with_pushback_is_retried_after_the_pushback() {
    bounded("UNAVAILABLE + pushback", async {
        let counts = Counts::default();
        counts.unavailable_gets.store(1, Ordering::SeqCst);
        *counts.pushback_ms.lock().unwrap() = Some("200".to_owned());
        let (addr, counts) = server::spawn_with(counts).await;
        let mut client = Options::default()
            .idempotent(&[path::GET])
            .unavailable_responses()
            .client(addr);

        let start = Instant::now();
        let reply = client
            .get(hello())
            .await
            .expect("the retry succeeds")
            .into_inner();
        let elapsed = start.elapsed();
        assert_eq!(reply.served, 2);
        assert_eq!(counts.get(), 2);
        assert!(
            elapsed >= Duration::from_millis(200),
            "the pushback was honoured: {elapsed:?}"
        );
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    })
    .await;
}

/// A negative pushback means "do not retry": the caller gets the `UNAVAILABLE` at once.
#[tokio::test]
async fn a_negative_pushback_is_obeyed() {
    bounded("UNAVAILABLE + negative pushback", async {
        let counts = Counts::default();
        counts.unavailable_gets.store(1, Ordering::SeqCst);
        *counts.pushback_ms.lock().unwrap() = Some("-1".to_owned());
        let (addr, counts) = server::spawn_with(counts).await;
        let mut client = Options::default()
            .idempotent(&[path::GET])
            .unavailable_responses()
            .client(addr);

        let status = client.get(hello()).await.expect_err("not retried");
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(status.message(), "busy, come back later");
        assert_eq!(counts.get(), 1);
    })
    .await;
}

/// Without `unavailable_responses`, an `UNAVAILABLE` answer is an answer: not retried.
#[tokio::test]
async fn unavailable_answers_are_not_retried_by_default() {
    bounded("UNAVAILABLE, default classifier", async {
        let counts = Counts::default();
        counts.unavailable_gets.store(1, Ordering::SeqCst);
        let (addr, counts) = server::spawn_with(counts).await;
        let mut client = Options::default().idempotent(&[path::GET]).client(addr);

        let status = client.get(hello()).await.expect_err("not retried");
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(counts.get(), 1);
    })
    .await;
}
