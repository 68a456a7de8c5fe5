//! Allocations on the happy path, counted by a global allocator.
//!
//! A request that can never be retried must cost nothing extra: no copy, no allocation. A
//! retryable request may cost exactly one copy of the request, and nothing more. The counts are
//! exact, so these are assertions, not measurements: they do not depend on the machine's speed.
//! (`allocation-counter` installs the counting global allocator: the crate itself forbids
//! `unsafe`, even in tests.)

#[path = "../support/instant_service.rs"]
mod instant_service;

use tower::{Layer, ServiceBuilder};
use tower_reset::fresh_connection::policy::StandardConnections;
use tower_reset::reset_retry::policy::Never;
use tower_reset::{BackoffLayer, FreshConnectionLayer, ResetRetryLayer};

use crate::instant_service::{send, Answer, Request};

/// The allocations `f` makes on this thread (counted by `allocation-counter`'s global
/// allocator), and its result.
fn allocations<T>(f: impl FnOnce() -> T) -> (u64, T) {
    let mut value = None;
    let info = allocation_counter::measure(|| value = Some(f()));
    (info.count_total, value.expect("measure runs the closure"))
}

fn request(method: http::Method) -> Request {
    http::Request::builder()
        .method(method)
        .uri("http://example.com/v1/items")
        .header("accept", "application/json")
        .header("user-agent", "tower-reset-test")
        .body("payload".to_owned())
        .unwrap()
}

#[test]
fn a_request_that_can_never_be_retried_allocates_nothing() {
    let mut bare = Answer;
    let mut retry = ResetRetryLayer::builder()
        .policy(Never)
        .build()
        .unwrap()
        .layer(Answer);
    let mut stack = ServiceBuilder::new()
        .layer(ResetRetryLayer::builder().policy(Never).build().unwrap())
        .layer(BackoffLayer::new())
        .service(Answer);
    // Warm up thread-locals and lazy statics outside the count.
    send(&mut bare, request(http::Method::POST));
    send(&mut retry, request(http::Method::POST));
    send(&mut stack, request(http::Method::POST));

    let post = request(http::Method::POST);
    let (base, _) = allocations(|| send(&mut bare, post));
    assert_eq!(base, 0, "the bare service allocates nothing");
    let post = request(http::Method::POST);
    let (with_retry, _) = allocations(|| send(&mut retry, post));
    assert_eq!(with_retry, 0, "ResetRetry adds no allocation");
    let post = request(http::Method::POST);
    let (with_stack, _) = allocations(|| send(&mut stack, post));
    assert_eq!(with_stack, 0, "ResetRetry + Backoff add no allocation");
}

#[test]
fn a_single_attempt_request_allocates_nothing() {
    let mut retry = ResetRetryLayer::builder()
        .max_attempts(1)
        .build()
        .unwrap()
        .layer(Answer);
    send(&mut retry, request(http::Method::GET));
    let get = request(http::Method::GET);
    let (count, _) = allocations(|| send(&mut retry, get));
    assert_eq!(count, 0);
}

#[test]
fn a_retryable_request_costs_one_copy_and_nothing_more() {
    let mut retry = ResetRetryLayer::new().layer(Answer);
    send(&mut retry, request(http::Method::GET));

    let template = request(http::Method::GET);
    let (one_clone, copy) = allocations(|| template.clone());
    drop(copy);
    assert!(
        one_clone > 0,
        "cloning a request with headers and a body allocates"
    );

    let get = request(http::Method::GET);
    let (count, response) = allocations(|| send(&mut retry, get));
    assert_eq!(response.status(), 200);
    assert_eq!(
        count, one_clone,
        "the only allocations are those of the one copy of the request"
    );
}

#[test]
fn the_stack_adds_nothing_to_the_one_copy() {
    let mut stack = ServiceBuilder::new()
        .layer(ResetRetryLayer::new())
        .layer(BackoffLayer::new())
        .service(Answer);
    send(&mut stack, request(http::Method::GET));

    let template = request(http::Method::GET);
    let (one_clone, copy) = allocations(|| template.clone());
    drop(copy);

    let get = request(http::Method::GET);
    let (count, _) = allocations(|| send(&mut stack, get));
    assert_eq!(count, one_clone);
}

/// The detour strategy allocates nothing for a request that goes through the primary, with the
/// record of hosts it keeps for `protect_unrepeatable` (on by default) or without it: the
/// record is made by the host's first request, and the copy of a request's scheme and
/// authority shares their bytes.
#[test]
fn the_detour_strategy_allocates_nothing_once_it_knows_the_host() {
    let unprotected = StandardConnections::builder()
        .protect_unrepeatable(false)
        .build()
        .unwrap();
    let mut off = FreshConnectionLayer::detour(Answer)
        .policy(unprotected)
        .layer(Answer);
    let mut on = FreshConnectionLayer::detour(Answer).layer(Answer);
    // The first request to a host makes its record.
    send(&mut on, request(http::Method::POST));
    for method in [http::Method::GET, http::Method::POST] {
        let sent = request(method.clone());
        let (count, response) = allocations(|| send(&mut off, sent));
        assert_eq!(response.status(), 200);
        assert_eq!(count, 0, "{method} without the protection");
        let sent = request(method.clone());
        let (count, response) = allocations(|| send(&mut on, sent));
        assert_eq!(response.status(), 200);
        assert_eq!(count, 0, "{method} with the protection");
    }
}
