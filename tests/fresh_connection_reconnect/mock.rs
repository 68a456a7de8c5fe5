//! What condemns a connection, and what does not, step by step over tower-test mocks.

use std::io;
use std::task::Poll;

use tower::BoxError;

use crate::fixture::*;

#[tokio::test]
async fn the_first_poll_ready_connects_once_and_requests_reuse_the_connection() {
    let mut fixture = Fixture::new();
    assert_eq!(fixture.connects(), 0, "connecting is lazy");
    for _ in 0..5 {
        assert_eq!(fixture.ok().await, 0);
    }
    assert_eq!(fixture.connects(), 1);
    assert!(fixture.service.get_ref().is_connected());
}

#[tokio::test]
async fn a_reset_makes_exactly_one_new_connection_at_the_next_poll_ready() {
    let mut fixture = Fixture::new();
    assert_eq!(fixture.ok().await, 0);

    let (connection, result) = fixture.send(Fail(io::ErrorKind::ConnectionReset)).await;
    assert_eq!(connection, 0);
    // The connection's error is returned as it is.
    assert_eq!(
        io_kind(&result.unwrap_err()),
        io::ErrorKind::ConnectionReset
    );
    assert_eq!(fixture.connects(), 1, "nothing happens before poll_ready");

    assert_eq!(
        fixture.ok().await,
        1,
        "the next request goes on a new connection"
    );
    assert_eq!(fixture.connects(), 2);
    for _ in 0..5 {
        assert_eq!(fixture.ok().await, 1);
    }
    assert_eq!(fixture.connects(), 2, "the new connection is kept");
}

#[tokio::test]
async fn every_failure_with_an_unknown_outcome_makes_one_new_connection() {
    let mut fixture = Fixture::new();
    let kinds = [
        io::ErrorKind::ConnectionReset,
        io::ErrorKind::ConnectionReset,
        io::ErrorKind::BrokenPipe,
        io::ErrorKind::ConnectionAborted,
        io::ErrorKind::UnexpectedEof,
    ];
    for (n, kind) in kinds.into_iter().enumerate() {
        let (connection, result) = fixture.send(Fail(kind)).await;
        assert_eq!(connection, n, "{kind:?} went on connection {n}");
        assert_eq!(io_kind(&result.unwrap_err()), kind);
        assert_eq!(fixture.connects(), n + 1);
    }
    assert_eq!(fixture.ok().await, kinds.len());
    assert_eq!(fixture.connects(), kinds.len() + 1);
}

#[tokio::test]
async fn failures_that_are_not_resets_keep_the_connection() {
    let mut fixture = Fixture::new();
    assert_eq!(fixture.ok().await, 0);

    // A timeout: not a connection failure.
    let (_, result) = fixture.send(Fail(io::ErrorKind::TimedOut)).await;
    assert_eq!(io_kind(&result.unwrap_err()), io::ErrorKind::TimedOut);
    // An application error, returned as it is.
    let (_, result) = fixture.send(Answer::FailWith(Box::new(AppError))).await;
    assert!(result.unwrap_err().downcast_ref::<AppError>().is_some());
    // A 503 is an answer: it proves the connection works.
    let (_, result) = fixture.send(Respond(503)).await;
    assert_eq!(result.unwrap().status(), 503);
    // Refused: a class the standard policy does not condemn (nothing was sent on it).
    let (_, result) = fixture.send(Fail(io::ErrorKind::ConnectionRefused)).await;
    assert_eq!(
        io_kind(&result.unwrap_err()),
        io::ErrorKind::ConnectionRefused
    );

    assert_eq!(fixture.ok().await, 0, "still the first connection");
    assert_eq!(fixture.connects(), 1);
}

#[tokio::test]
async fn a_policy_that_condemns_nothing_keeps_the_connection_after_a_reset() {
    let mut fixture = Fixture::with_policy(CondemnsNothing);
    assert_eq!(fixture.ok().await, 0);
    let (_, result) = fixture.send(Fail(io::ErrorKind::ConnectionReset)).await;
    assert!(result.is_err());
    assert_eq!(fixture.ok().await, 0);
    assert_eq!(fixture.connects(), 1);
}

#[tokio::test]
async fn a_reset_of_a_request_started_earlier_condemns_the_connection_too() {
    let mut fixture = Fixture::new();
    // Two requests in flight on the same connection (the mock takes any number).
    let first = fixture.start();
    let (_, respond_first) = fixture.received();
    let second = fixture.start();
    let (_, respond_second) = fixture.received();

    respond_second.send_response(http::Response::new(()));
    assert!(second.await.is_ok());
    respond_first.send_error(io::Error::from(io::ErrorKind::ConnectionReset));
    assert!(first.await.is_err());

    assert_eq!(fixture.ok().await, 1);
    assert_eq!(fixture.connects(), 2);
}

#[tokio::test]
async fn a_used_connection_that_reports_itself_closed_is_replaced_without_an_error() {
    let mut fixture = Fixture::new();
    assert_eq!(fixture.ok().await, 0);
    // The peer closed the connection while it was idle: its `poll_ready` now fails (as hyper's
    // `SendRequest::poll_ready` does).
    fixture.connections[0].send_error(io::Error::from(io::ErrorKind::ConnectionReset));

    assert!(matches!(fixture.poll_ready(), Poll::Ready(Ok(()))));
    assert_eq!(fixture.connects(), 2);
    assert_eq!(fixture.ok().await, 1);
}

#[tokio::test]
async fn poll_ready_is_pending_while_connecting_and_nothing_is_called_meanwhile() {
    let mut fixture = Fixture::new();
    assert!(fixture.service.poll_ready().is_pending());
    // The connect is under way and unanswered.
    let Poll::Ready(Some((target, respond))) = fixture.maker.poll_request() else {
        panic!("the maker was called");
    };
    assert_eq!(target, TARGET);
    assert!(fixture.service.poll_ready().is_pending());
    assert!(
        fixture.maker.poll_request().is_pending(),
        "one connect at a time"
    );
    assert!(!fixture.service.get_ref().is_connected());

    let (connection, handle) = tower_test::mock::pair();
    fixture.connections.push(handle);
    respond.send_response(connection);
    assert!(fixture.service.is_woken(), "the connect wakes the task");
    assert!(matches!(fixture.service.poll_ready(), Poll::Ready(Ok(()))));
    assert!(fixture.service.get_ref().is_connected());
}

#[tokio::test]
async fn poll_ready_waits_for_the_connection_to_be_ready() {
    let mut fixture = Fixture::new();
    assert_eq!(fixture.ok().await, 0);
    // The connection has no capacity: `poll_ready` must wait for it, not call it.
    fixture.connections[0].allow(0);
    assert!(fixture.poll_ready().is_pending());
    fixture.connections[0].allow(1);
    assert!(fixture.service.is_woken());
    assert_eq!(fixture.ok().await, 0);
    assert_eq!(fixture.connects(), 1);
}

#[tokio::test]
async fn a_call_without_poll_ready_fails_instead_of_panicking() {
    let mut fixture = Fixture::new();
    let error: BoxError = fixture
        .service
        .call(http::Request::new(()))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("poll_ready"), "{error}");
    assert_eq!(fixture.connects(), 0);
    // The service still works.
    assert_eq!(fixture.ok().await, 0);
}

#[test]
fn reconnect_and_its_future_are_debug() {
    let mut fixture = Fixture::new();
    let idle = format!("{:?}", fixture.service.get_ref());
    assert!(
        idle.contains("Reconnect") && idle.contains("Idle"),
        "{idle}"
    );
    let future = fixture.start();
    let connected = format!("{:?}", fixture.service.get_ref());
    assert!(
        connected.contains("Connected") && connected.contains("requests: 1"),
        "{connected}"
    );
    assert!(format!("{future:?}").contains("ReconnectFuture"));
}
