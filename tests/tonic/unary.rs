//! Unary calls through the stack, reset by a proxy after the server executed them.

use std::io;

use tonic::Code;
use tower_reset::attempt::{AttemptHistory, HistoryObserver, StopReason};
use tower_reset::classify::FailureClass;

use crate::echo::{path, EchoRequest};
use crate::proxy::{self, Conn};
use crate::server;
use crate::support::{bounded, find, Options};

fn hello() -> EchoRequest {
    EchoRequest {
        payload: b"hello".to_vec(),
    }
}

/// `Get` is declared idempotent: its first attempt is executed, then reset before the answer
/// reaches the client; the retry goes out on a new connection and succeeds.
#[tokio::test]
async fn an_idempotent_call_whose_first_attempt_is_reset_succeeds() {
    bounded("Get through a reset", async {
        let (server_addr, counts) = server::spawn().await;
        let (addr, proxy) = proxy::spawn(server_addr, vec![Conn::ResetOnResponse]).await;
        let mut client = Options::default().idempotent(&[path::GET]).client(addr);

        let response = client.get(hello()).await.expect("the retry succeeds");
        let history = response
            .extensions()
            .get::<AttemptHistory>()
            .expect("a call that took two attempts says so")
            .clone();
        let reply = response.into_inner();
        assert_eq!(reply.payload, b"hello");
        assert_eq!(reply.served, 2, "the reset attempt was executed too");
        assert_eq!(counts.get(), 2);
        assert_eq!((proxy.connections(), proxy.resets()), (2, 1));
        assert_eq!(history.attempts(), 2);
        assert_eq!(history.failures(), [FailureClass::UnknownOutcome]);
    })
    .await;
}

/// `Echo` is not declared idempotent: the reset surfaces at once, the call was executed once
/// and never sent again.
#[tokio::test]
async fn a_call_not_declared_idempotent_is_not_retried_after_a_reset() {
    bounded("Echo through a reset", async {
        let (server_addr, counts) = server::spawn().await;
        let (addr, proxy) = proxy::spawn(server_addr, vec![Conn::ResetOnResponse]).await;
        let mut client = Options::default().idempotent(&[path::GET]).client(addr);

        let status = client.echo(hello()).await.expect_err("the reset surfaces");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        let io = find::<io::Error>(&status).expect("the io error under the status");
        assert_eq!(io.kind(), io::ErrorKind::ConnectionReset);
        assert_eq!(counts.echo(), 1, "executed once");
        assert_eq!((proxy.connections(), proxy.resets()), (1, 1), "sent once");

        // The channel recovers: the next call goes out on a new connection.
        let reply = client
            .echo(hello())
            .await
            .expect("a new connection")
            .into_inner();
        assert_eq!(reply.served, 2);
        assert_eq!(proxy.connections(), 2);
    })
    .await;
}

/// Nothing fails: one attempt, one connection, no history on the response.
#[tokio::test]
async fn a_call_that_does_not_fail_is_sent_once() {
    bounded("Echo, no failure", async {
        let (server_addr, counts) = server::spawn().await;
        let (addr, proxy) = proxy::spawn(server_addr, vec![]).await;
        let mut client = Options::default().idempotent(&[path::GET]).client(addr);
        for expected in 1..=3 {
            let response = client.echo(hello()).await.expect("no failure");
            assert!(response.extensions().get::<AttemptHistory>().is_none());
            assert_eq!(response.into_inner().served, expected);
        }
        assert_eq!(counts.echo(), 3);
        assert_eq!(proxy.connections(), 1);
    })
    .await;
}

/// A failed call's history, through a generated client: a `HistoryObserver` put in the
/// `tonic::Request`'s extensions reaches the stack (tonic hands them on to the HTTP request).
#[tokio::test]
async fn the_history_of_a_failed_call_reaches_an_observer_in_the_tonic_request() {
    bounded("Echo through a reset, observed", async {
        let (server_addr, _counts) = server::spawn().await;
        let (addr, _proxy) = proxy::spawn(server_addr, vec![Conn::ResetOnResponse]).await;
        let mut client = Options::default().idempotent(&[path::GET]).client(addr);

        let observer = HistoryObserver::default();
        let mut request = tonic::Request::new(hello());
        request.extensions_mut().insert(observer.clone());
        let status = client.echo(request).await.expect_err("the reset surfaces");
        assert_eq!(status.code(), Code::Unavailable);
        let history = observer.get().expect("the stack recorded the history");
        assert_eq!(history.attempts(), 1);
        assert_eq!(history.failures(), [FailureClass::UnknownOutcome]);
        assert_eq!(history.stop_reason(), StopReason::NotSafeToRepeat);
    })
    .await;
}
