//! `Detour` over two tower-test mocks: which attempt goes where, readiness, errors.
//!
//! The mock panics when `call` comes without a successful `poll_ready` on the same instance (and
//! a clone starts unready), so every detoured request here also proves that the detour's clone
//! is polled ready before it is called.

use std::fmt;
use std::io;
use std::time::Duration;

use tower::{BoxError, Layer, Service, ServiceBuilder, ServiceExt};
use tower_reset::attempt::{AttemptHistory, AttemptRecord};
use tower_reset::classify::FailureClass;
use tower_reset::fresh_connection::policy::ConnectionPolicy;
use tower_reset::fresh_connection::Detour;
use tower_reset::{FreshConnectionLayer, ResetRetryLayer};
use tower_test::mock;

type Req = http::Request<String>;
type Res = http::Response<String>;
type Mock = mock::Mock<Req, Res>;
type Handle = mock::Handle<Req, Res>;

/// Every test ends within this much (virtual) time, or fails: a request that never reaches the
/// mock it was expected at must fail the test, not hang it. Time is paused, so a stuck test
/// fails at once.
async fn bounded<F: std::future::Future<Output = ()>>(test: F) {
    tokio::time::timeout(Duration::from_secs(60), test)
        .await
        .expect("stuck: a request never reached the expected mock");
}

const PRIMARY: &str = "primary";
const DETOUR: &str = "detour";

/// A detour over two fresh mocks, with the standard policy.
fn detour() -> (Detour<Mock, Mock>, Handle, Handle) {
    let (primary, primary_handle) = mock::pair::<Req, Res>();
    let (detour, detour_handle) = mock::pair::<Req, Res>();
    let service = FreshConnectionLayer::detour(detour).layer(primary);
    (service, primary_handle, detour_handle)
}

fn get(record: Option<AttemptRecord>) -> Req {
    let mut request = http::Request::get("http://example.com/")
        .body(String::new())
        .unwrap();
    if let Some(record) = record {
        request.extensions_mut().insert(record);
    }
    request
}

/// Sends one request through `service` and answers it from whichever mock receives it with
/// that mock's name; returns the name, the request as the mock saw it, and the response body.
/// The other mock must receive nothing.
async fn route<S>(
    mut service: S,
    mut primary: Handle,
    mut detour: Handle,
    request: Req,
) -> (&'static str, Req)
where
    S: Service<Req, Response = Res, Error = BoxError> + Send + 'static,
    S::Future: Send + 'static,
{
    let future = service.ready().await.unwrap().call(request);
    let task = tokio::spawn(future);
    let (name, received) = tokio::select! {
        Some((received, send)) = primary.next_request() => {
            send.send_response(http::Response::new(PRIMARY.to_owned()));
            (PRIMARY, received)
        }
        Some((received, send)) = detour.next_request() => {
            send.send_response(http::Response::new(DETOUR.to_owned()));
            (DETOUR, received)
        }
    };
    let response = task.await.expect("no panic").expect("a response");
    assert_eq!(
        response.body(),
        name,
        "the response comes from the mock that was called"
    );
    // Every clone of both mocks is gone now: a request sent to the other one would be queued.
    drop(service);
    let other = if name == PRIMARY {
        &mut detour
    } else {
        &mut primary
    };
    assert!(
        other.next_request().await.is_none(),
        "both mocks were called"
    );
    (name, received)
}

#[tokio::test(start_paused = true)]
async fn a_first_attempt_goes_to_the_primary() {
    bounded(async {
        let (service, primary, detour) = detour();
        let (name, _) = route(service, primary, detour, get(None)).await;
        assert_eq!(name, PRIMARY);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn an_explicit_first_record_goes_to_the_primary() {
    bounded(async {
        let (service, primary, detour) = detour();
        let (name, _) = route(service, primary, detour, get(Some(AttemptRecord::FIRST))).await;
        assert_eq!(name, PRIMARY);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn retries_after_failures_the_policy_does_not_condemn_go_to_the_primary() {
    bounded(async {
        for failure in [
            FailureClass::NeverSent,
            FailureClass::Refused,
            FailureClass::Unavailable,
        ] {
            let (service, primary, detour) = detour();
            let record = AttemptRecord::retry(2, failure);
            let (name, _) = route(service, primary, detour, get(Some(record))).await;
            assert_eq!(name, PRIMARY, "after {failure}");
        }
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_an_unknown_outcome_goes_to_the_detour_with_its_record() {
    bounded(async {
        let (service, primary, detour) = detour();
        let record = AttemptRecord::retry(2, FailureClass::UnknownOutcome)
            .with_first_failure(FailureClass::NeverSent);
        let (name, received) = route(service, primary, detour, get(Some(record.clone()))).await;
        assert_eq!(name, DETOUR);
        assert_eq!(received.uri(), "http://example.com/");
        assert_eq!(received.extensions().get::<AttemptRecord>(), Some(&record));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn routing_follows_the_previous_failure_not_the_first() {
    bounded(async {
        let (service, primary, detour) = detour();
        let record = AttemptRecord::retry(3, FailureClass::NeverSent)
            .with_first_failure(FailureClass::UnknownOutcome);
        let (name, _) = route(service, primary, detour, get(Some(record))).await;
        assert_eq!(name, PRIMARY);
    })
    .await;
}

/// Condemns refused connections only: the opposite of the standard policy.
#[derive(Debug, Clone)]
struct CondemnNeverSent;

impl ConnectionPolicy for CondemnNeverSent {
    fn condemns(&self, failure: FailureClass) -> bool {
        failure == FailureClass::NeverSent
    }
}

#[tokio::test(start_paused = true)]
async fn the_policy_decides_which_failures_take_the_detour() {
    bounded(async {
        for (failure, expected) in [
            (FailureClass::NeverSent, DETOUR),
            (FailureClass::UnknownOutcome, PRIMARY),
        ] {
            let (primary, primary_handle) = mock::pair::<Req, Res>();
            let (detour, detour_handle) = mock::pair::<Req, Res>();
            let service = FreshConnectionLayer::detour(detour)
                .policy(CondemnNeverSent)
                .layer(primary);
            let record = AttemptRecord::retry(2, failure);
            let (name, _) = route(service, primary_handle, detour_handle, get(Some(record))).await;
            assert_eq!(name, expected, "after {failure}");
        }
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn readiness_is_the_primary_s_alone() {
    bounded(async {
        let (mut service, mut primary, mut detour) = detour();

        // The detour has no capacity: the service is still ready, since the primary is.
        detour.allow(0);
        tokio::time::timeout(Duration::from_secs(1), service.ready())
            .await
            .expect("ready without the detour")
            .unwrap();

        // The primary has no capacity: the service is not ready.
        let (mut service2, mut primary2, _detour2) = self::detour();
        primary2.allow(0);
        assert!(
            tokio::time::timeout(Duration::from_secs(1), service2.ready())
                .await
                .is_err(),
            "ready although the primary is not"
        );
        primary2.allow(1);
        service2.ready().await.unwrap();

        // Nothing was sent to either.
        assert!(primary.poll_request().is_pending());
        assert!(detour.poll_request().is_pending());
        assert!(primary2.poll_request().is_pending());
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_detoured_request_waits_for_the_detour_to_be_ready() {
    bounded(async {
        let (mut service, mut primary, mut detour) = detour();
        detour.allow(0);
        let record = AttemptRecord::retry(2, FailureClass::UnknownOutcome);
        let future = service.ready().await.unwrap().call(get(Some(record)));
        let task = tokio::spawn(future);

        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!task.is_finished());
        assert!(
            detour.poll_request().is_pending(),
            "called before it was ready"
        );

        detour.allow(1);
        let (_, send) = detour.next_request().await.expect("the detoured request");
        send.send_response(http::Response::new(DETOUR.to_owned()));
        let response = task.await.expect("no panic").expect("a response");
        assert_eq!(response.body(), DETOUR);
        assert!(primary.poll_request().is_pending());
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn the_primary_keeps_its_readiness_when_a_request_is_detoured() {
    bounded(async {
        let (mut service, mut primary, mut detour) = detour();
        let record = AttemptRecord::retry(2, FailureClass::UnknownOutcome);
        let detoured = service.ready().await.unwrap().call(get(Some(record)));
        let detoured = tokio::spawn(detoured);
        let (_, send) = detour.next_request().await.unwrap();
        send.send_response(http::Response::new(DETOUR.to_owned()));
        detoured.await.unwrap().unwrap();

        // No capacity left: only the readiness the primary was given before the detour can take
        // the next first attempt (a fresh clone of the primary would wait forever).
        primary.allow(0);
        let first = tokio::time::timeout(Duration::from_secs(1), service.ready())
            .await
            .expect("still ready")
            .unwrap()
            .call(get(None));
        let (_, send) = primary.next_request().await.unwrap();
        send.send_response(http::Response::new(PRIMARY.to_owned()));
        assert_eq!(first.await.unwrap().body(), PRIMARY);
    })
    .await;
}

#[derive(Debug)]
struct DetourError;

impl fmt::Display for DetourError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("detour failed")
    }
}

impl std::error::Error for DetourError {}

#[tokio::test(start_paused = true)]
async fn a_primary_error_comes_back_untouched() {
    bounded(async {
        let (mut service, mut primary, _detour) = detour();
        let future = service.ready().await.unwrap().call(get(None));
        let (_, send) = primary.next_request().await.unwrap();
        send.send_error(io::Error::new(io::ErrorKind::ConnectionReset, "stale"));
        let error = future.await.unwrap_err();
        let io = error
            .downcast_ref::<io::Error>()
            .expect("the io error itself");
        assert_eq!(io.kind(), io::ErrorKind::ConnectionReset);
        assert_eq!(io.to_string(), "stale");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_detour_error_comes_back_untouched() {
    bounded(async {
        let (mut service, _primary, mut detour) = detour();
        let record = AttemptRecord::retry(2, FailureClass::UnknownOutcome);
        let future = tokio::spawn(service.ready().await.unwrap().call(get(Some(record))));
        let (_, send) = detour.next_request().await.unwrap();
        send.send_error(DetourError);
        let error = future.await.unwrap().unwrap_err();
        assert!(error.downcast_ref::<DetourError>().is_some(), "{error:?}");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_detour_that_fails_to_become_ready_fails_the_request_and_is_not_called() {
    bounded(async {
        let (mut service, _primary, mut detour) = detour();
        detour.send_error(DetourError);
        let record = AttemptRecord::retry(2, FailureClass::UnknownOutcome);
        let error = service
            .ready()
            .await
            .unwrap()
            .call(get(Some(record)))
            .await
            .unwrap_err();
        assert!(error.downcast_ref::<DetourError>().is_some(), "{error:?}");
        drop(service);
        assert!(detour.next_request().await.is_none());
    })
    .await;
}

/// `ResetRetry` over `Detour`: the retry of a reset GET takes the detour, and the record
/// `ResetRetry` wrote is what routes it.
#[tokio::test(start_paused = true)]
async fn under_reset_retry_the_retry_of_a_reset_takes_the_detour() {
    bounded(async {
        let (primary, mut primary_handle) = mock::pair::<Req, Res>();
        let (detour, mut detour_handle) = mock::pair::<Req, Res>();
        let mut service = ServiceBuilder::new()
            .layer(ResetRetryLayer::builder().no_budget().build().unwrap())
            .layer(FreshConnectionLayer::detour(detour))
            .service(primary);

        let task = tokio::spawn(service.ready().await.unwrap().call(get(None)));
        let (first, send) = primary_handle.next_request().await.unwrap();
        assert!(first.extensions().get::<AttemptRecord>().is_none());
        send.send_error(io::Error::from(io::ErrorKind::ConnectionReset));

        let (retry, send) = detour_handle.next_request().await.unwrap();
        let record = retry.extensions().get::<AttemptRecord>().unwrap();
        assert_eq!(record.number(), 2);
        assert_eq!(
            record.previous_failure(),
            Some(FailureClass::UnknownOutcome)
        );
        send.send_response(http::Response::new(DETOUR.to_owned()));

        let response = task.await.unwrap().unwrap();
        assert_eq!(response.body(), DETOUR);
        let history = response.extensions().get::<AttemptHistory>().unwrap();
        assert_eq!(history.attempts(), 2);
        assert_eq!(history.failures(), &[FailureClass::UnknownOutcome]);
        drop(service);
        assert!(primary_handle.next_request().await.is_none());
    })
    .await;
}

/// A POST whose outcome is unknown is not retried, so it never reaches the detour.
#[tokio::test(start_paused = true)]
async fn under_reset_retry_a_reset_post_is_not_detoured() {
    bounded(async {
        let (primary, mut primary_handle) = mock::pair::<Req, Res>();
        let (detour, mut detour_handle) = mock::pair::<Req, Res>();
        let mut service = ServiceBuilder::new()
            .layer(ResetRetryLayer::builder().no_budget().build().unwrap())
            .layer(FreshConnectionLayer::detour(detour))
            .service(primary);

        let post = http::Request::post("http://example.com/pay")
            .body("42".to_owned())
            .unwrap();
        let task = tokio::spawn(service.ready().await.unwrap().call(post));
        let (_, send) = primary_handle.next_request().await.unwrap();
        send.send_error(io::Error::from(io::ErrorKind::ConnectionReset));
        let error = task.await.unwrap().unwrap_err();
        assert_eq!(
            error.downcast_ref::<io::Error>().unwrap().kind(),
            io::ErrorKind::ConnectionReset
        );
        drop(service);
        assert!(detour_handle.next_request().await.is_none());
        assert!(primary_handle.next_request().await.is_none());
    })
    .await;
}

#[test]
fn debug_shows_both_services_and_the_policy() {
    let (service, _primary, _detour) = detour();
    let debug = format!("{service:?}");
    assert!(debug.starts_with("Detour {"), "{debug}");
    assert!(debug.contains("policy: StandardConnections"), "{debug}");
}
