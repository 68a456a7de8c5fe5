//! Errors while reconnecting, handled the tower way: a connect error fails the next call (not
//! `poll_ready`), and the `poll_ready` after it connects again.

use std::io;
use std::task::Poll;

use crate::fixture::*;

#[tokio::test]
async fn a_connect_error_fails_the_next_call_and_the_next_poll_ready_reconnects() {
    let mut fixture = Fixture::new();
    fixture.fail_next_connect(io::ErrorKind::ConnectionRefused);

    // `poll_ready` is ready: the readiness is there to deliver the connect error.
    assert!(matches!(fixture.poll_ready(), Poll::Ready(Ok(()))));
    assert_eq!(fixture.connects(), 1);
    assert!(!fixture.service.get_ref().is_connected());
    // It stays ready, and does not connect again, until the error is delivered.
    assert!(matches!(fixture.poll_ready(), Poll::Ready(Ok(()))));
    assert_eq!(fixture.connects(), 1);

    let error = fixture
        .service
        .call(http::Request::new(()))
        .await
        .unwrap_err();
    assert_eq!(io_kind(&error), io::ErrorKind::ConnectionRefused);
    assert_eq!(error.to_string(), "connect failed", "boxed as it is");
    assert!(fixture.connections.is_empty(), "no request was sent");

    assert_eq!(fixture.ok().await, 0, "the next poll_ready connects");
    assert_eq!(fixture.connects(), 2);
}

#[tokio::test]
async fn connect_errors_in_a_row_each_fail_one_call() {
    let mut fixture = Fixture::new();
    for _ in 0..3 {
        fixture.fail_next_connect(io::ErrorKind::ConnectionRefused);
    }
    for n in 1..=3 {
        fixture.ready().unwrap();
        let error = fixture
            .service
            .call(http::Request::new(()))
            .await
            .unwrap_err();
        assert_eq!(io_kind(&error), io::ErrorKind::ConnectionRefused);
        assert_eq!(fixture.connects(), n);
    }
    assert_eq!(fixture.ok().await, 0);
    assert_eq!(fixture.connects(), 4);
}

#[tokio::test]
async fn a_connect_error_after_a_reset_is_delivered_then_the_next_connect_is_used() {
    let mut fixture = Fixture::new();
    assert_eq!(fixture.ok().await, 0);
    let (_, result) = fixture.send(Fail(io::ErrorKind::ConnectionReset)).await;
    assert!(result.is_err());

    fixture.fail_next_connect(io::ErrorKind::ConnectionRefused);
    fixture.ready().unwrap();
    let error = fixture
        .service
        .call(http::Request::new(()))
        .await
        .unwrap_err();
    assert_eq!(io_kind(&error), io::ErrorKind::ConnectionRefused);

    assert_eq!(fixture.ok().await, 1);
    assert_eq!(fixture.connects(), 3);
}

#[tokio::test]
async fn a_new_connection_that_fails_poll_ready_fails_the_next_call_without_looping() {
    let mut fixture = Fixture::new();
    fixture.next_connection_not_ready(io::ErrorKind::ConnectionReset);

    assert!(matches!(fixture.poll_ready(), Poll::Ready(Ok(()))));
    assert_eq!(fixture.connects(), 1, "not retried within poll_ready");
    let error = fixture
        .service
        .call(http::Request::new(()))
        .await
        .unwrap_err();
    assert_eq!(io_kind(&error), io::ErrorKind::ConnectionReset);

    assert_eq!(fixture.ok().await, 1);
    assert_eq!(fixture.connects(), 2);
}

#[tokio::test]
async fn an_error_of_the_make_services_poll_ready_is_returned_by_poll_ready() {
    let mut fixture = Fixture::new();
    fixture.maker.send_error(io::Error::other("maker broken"));
    let Poll::Ready(Err(error)) = fixture.poll_ready() else {
        panic!("poll_ready fails");
    };
    assert_eq!(error.to_string(), "maker broken");
    assert_eq!(fixture.connects(), 0);

    // The mock's error was one-off: the next poll_ready connects.
    assert_eq!(fixture.ok().await, 0);
    assert_eq!(fixture.connects(), 1);
}
