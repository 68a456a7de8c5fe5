//! The policy's limits: a connection past `max_requests`, `max_age` or `max_idle` is replaced
//! at the next `poll_ready`, before it would be used. Time is paused and moved by hand.

use std::io;
use std::time::Duration;

use tokio::time::advance;
use tower_reset::fresh_connection::policy::StandardConnections;

use crate::fixture::*;

#[tokio::test(start_paused = true)]
async fn max_requests_makes_one_new_connection_after_n_calls() {
    let policy = StandardConnections::builder()
        .max_requests(3)
        .build()
        .unwrap();
    let mut fixture = Fixture::with_policy(policy);
    let mut served = Vec::new();
    for _ in 0..7 {
        served.push(fixture.ok().await);
    }
    assert_eq!(served, [0, 0, 0, 1, 1, 1, 2]);
    assert_eq!(fixture.connects(), 3);
}

#[tokio::test(start_paused = true)]
async fn failed_requests_count_against_max_requests() {
    let policy = StandardConnections::builder()
        .max_requests(2)
        .build()
        .unwrap();
    let mut fixture = Fixture::with_policy(policy);
    let (connection, result) = fixture.send(Fail(io::ErrorKind::TimedOut)).await;
    assert_eq!(connection, 0);
    assert!(result.is_err());
    assert_eq!(fixture.ok().await, 0);
    assert_eq!(fixture.ok().await, 1);
    assert_eq!(fixture.connects(), 2);
}

#[tokio::test(start_paused = true)]
async fn max_age_counts_from_when_the_connection_was_made() {
    let policy = StandardConnections::builder()
        .max_age(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut fixture = Fixture::with_policy(policy);
    assert_eq!(fixture.ok().await, 0);
    // Regular use does not make it younger.
    for _ in 0..5 {
        advance(Duration::from_secs(10)).await;
        assert_eq!(fixture.ok().await, 0);
    }
    advance(Duration::from_secs(9)).await;
    assert_eq!(fixture.ok().await, 0, "59 s old: still in use");
    advance(Duration::from_secs(1)).await;
    assert_eq!(fixture.ok().await, 1, "60 s old: replaced");
    assert_eq!(fixture.connects(), 2);

    // The new connection's age counts from when it was made.
    advance(Duration::from_secs(59)).await;
    assert_eq!(fixture.ok().await, 1);
    advance(Duration::from_secs(1)).await;
    assert_eq!(fixture.ok().await, 2);
    assert_eq!(fixture.connects(), 3);
}

#[tokio::test(start_paused = true)]
async fn max_idle_counts_from_the_last_response() {
    let policy = StandardConnections::builder()
        .max_idle(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut fixture = Fixture::with_policy(policy);
    assert_eq!(fixture.ok().await, 0);
    // Used every 9 s, it is never idle for 10 s, however old it gets.
    for _ in 0..5 {
        advance(Duration::from_secs(9)).await;
        assert_eq!(fixture.ok().await, 0);
    }
    advance(Duration::from_secs(10)).await;
    assert_eq!(fixture.ok().await, 1, "idle for 10 s: replaced");
    assert_eq!(fixture.connects(), 2);
}

#[tokio::test(start_paused = true)]
async fn max_idle_applies_to_a_connection_that_never_carried_a_request() {
    let policy = StandardConnections::builder()
        .max_idle(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut fixture = Fixture::with_policy(policy);
    fixture.ready().unwrap();
    assert_eq!(fixture.connects(), 1);
    advance(Duration::from_secs(10)).await;
    assert_eq!(fixture.ok().await, 1);
    assert_eq!(fixture.connects(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_connection_with_a_request_in_flight_is_not_idle() {
    let policy = StandardConnections::builder()
        .max_idle(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut fixture = Fixture::with_policy(policy);
    let slow = fixture.start();
    let (_, respond) = fixture.received();
    advance(Duration::from_secs(30)).await;
    // A second request while the first is still in flight: same connection.
    assert_eq!(fixture.ok().await, 0);

    respond.send_response(http::Response::new(()));
    assert!(slow.await.is_ok());
    advance(Duration::from_secs(9)).await;
    assert_eq!(fixture.ok().await, 0, "idle 9 s since the last response");
    advance(Duration::from_secs(10)).await;
    assert_eq!(fixture.ok().await, 1);
    assert_eq!(fixture.connects(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_response_future_ends_its_request() {
    let policy = StandardConnections::builder()
        .max_idle(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut fixture = Fixture::with_policy(policy);
    let abandoned = fixture.start();
    let _ = fixture.received();
    advance(Duration::from_secs(5)).await;
    drop(abandoned);
    advance(Duration::from_secs(9)).await;
    assert_eq!(
        fixture.ok().await,
        0,
        "idle 9 s since the request was dropped"
    );
    advance(Duration::from_secs(10)).await;
    assert_eq!(fixture.ok().await, 1);
}

#[tokio::test(start_paused = true)]
async fn limits_are_checked_before_the_connection_is_used_not_after() {
    let policy = StandardConnections::builder()
        .max_age(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut fixture = Fixture::with_policy(policy);
    assert_eq!(fixture.ok().await, 0);
    fixture.ready().unwrap();
    // Readiness was granted to the first connection; it ages past the limit before the call.
    advance(Duration::from_secs(61)).await;
    let future = fixture.service.call(http::Request::new(()));
    let (connection, respond) = fixture.received();
    assert_eq!(
        connection, 0,
        "the connection polled ready is the one called"
    );
    respond.send_response(http::Response::new(()));
    assert!(future.await.is_ok());
    // The next poll_ready replaces it.
    assert_eq!(fixture.ok().await, 1);
}

#[tokio::test(start_paused = true)]
async fn zero_limits_give_each_request_a_new_connection_without_a_reconnect_loop() {
    let mut fixture = Fixture::with_policy(ZeroLimits);
    let mut served = Vec::new();
    for _ in 0..3 {
        served.push(fixture.ok().await);
    }
    assert_eq!(served, [0, 1, 2]);
    assert_eq!(fixture.connects(), 3);
}

/// Code written against the old names of the policy items still compiles and gets the same
/// policy.
#[test]
#[allow(deprecated)]
fn the_old_policy_names_still_work() {
    use tower_reset::fresh_connection::policy::{Policy, Standard, StandardBuilder};

    fn max_requests<P: Policy>(policy: &P) -> Option<u32> {
        policy.max_requests()
    }
    let builder: StandardBuilder = Standard::builder().max_requests(2);
    let policy: Standard = builder.build().unwrap();
    assert_eq!(max_requests(&policy), Some(2));
    assert_eq!(
        policy,
        StandardConnections::builder()
            .max_requests(2)
            .build()
            .unwrap()
    );
}
