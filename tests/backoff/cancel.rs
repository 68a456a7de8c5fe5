//! Cancellation and readiness: dropping the response future during a backoff sleep leaves
//! nothing behind, and a sleeping attempt holds no readiness of the inner service.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tower::limit::ConcurrencyLimit;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use tower_reset::backoff::policy::Constant;
use tower_reset::BackoffLayer;
use tower_test::mock;

use crate::harness::*;

/// A service that holds a share of `marker` in each of its clones, so that a test can count
/// the clones alive.
#[derive(Clone)]
struct Marked<S> {
    inner: S,
    /// Held for its count only.
    _marker: Arc<()>,
}

impl<S: Service<Req>> Service<Req> for Marked<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        self.inner.call(request)
    }
}

/// Polls `future` once.
async fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    poll_fn(|cx| Poll::Ready(Pin::new(&mut *future).poll(cx))).await
}

/// The next attempt at the mock. Fails the test, rather than hanging it, when none arrives
/// within a (paused) minute while nothing drives the request.
async fn next_attempt(handle: &mut mock::Handle<Req, Res>) -> (Req, mock::SendResponse<Res>) {
    tokio::time::timeout(Duration::from_secs(60), handle.next_request())
        .await
        .expect("no attempt reached the mock")
        .expect("the mock is alive")
}

const DELAY: Duration = Duration::from_millis(100);

/// A stack over a marked mock, and a request driven until its third attempt sleeps: attempt 1
/// reset, attempt 2 (immediate) reset, attempt 3 waits [`DELAY`].
struct Sleeping<S, F> {
    service: S,
    future: Pin<Box<F>>,
    handle: mock::Handle<Req, Res>,
    marker: Arc<()>,
    /// Clones of the marker alive before the call.
    before: usize,
    /// When the sleep started.
    slept_at: Instant,
}

async fn sleeping() -> Sleeping<
    impl Service<Req, Response = Res, Error = BoxError>,
    impl Future<Output = Result<Res, BoxError>>,
> {
    let (mock, mut handle) = mock::pair::<Req, Res>();
    let marker = Arc::new(());
    let mut service = ServiceBuilder::new()
        .layer(retry(5))
        .layer(BackoffLayer::new().schedule(Constant::new(DELAY)))
        .service(Marked {
            inner: mock,
            _marker: Arc::clone(&marker),
        });
    let before = Arc::strong_count(&marker);

    service.ready().await.unwrap();
    let mut future = Box::pin(service.call(get("/")));
    for _ in 0..2 {
        let (_, respond) = next_attempt(&mut handle).await;
        respond.send_error(std::io::Error::from(RESET));
        assert!(poll_once(&mut future).await.is_pending());
    }
    Sleeping {
        service,
        future,
        handle,
        marker,
        before,
        slept_at: Instant::now(),
    }
}

#[tokio::test(start_paused = true)]
async fn the_sleeping_attempt_goes_out_when_the_delay_is_over() {
    // The control for the test below: kept, the future does send the attempt after the delay.
    let Sleeping {
        future,
        mut handle,
        slept_at,
        ..
    } = sleeping().await;
    let (result, arrived) = tokio::join!(future, async {
        let (_, respond) = handle.next_request().await.expect("attempt 3");
        let arrived = Instant::now();
        respond.send_response(http::Response::new(()));
        arrived
    });
    assert_eq!(result.unwrap().status(), 200);
    assert_eq!(arrived - slept_at, DELAY);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_future_during_the_sleep_cancels_it_and_releases_the_service() {
    let Sleeping {
        service,
        future,
        mut handle,
        marker,
        before,
        ..
    } = sleeping().await;
    assert!(
        Arc::strong_count(&marker) > before,
        "the sleeping future holds a clone of the inner service"
    );

    drop(future);
    assert_eq!(
        Arc::strong_count(&marker),
        before,
        "every clone the future held is released"
    );

    tokio::time::advance(DELAY * 10).await;
    let late = tokio::time::timeout(Duration::from_secs(60), handle.next_request()).await;
    assert!(
        late.is_err(),
        "an attempt was sent after the response future was dropped"
    );
    // The service holds the last clone.
    drop(service);
    assert_eq!(Arc::strong_count(&marker), 1);
}

#[tokio::test(start_paused = true)]
async fn a_sleeping_attempt_holds_no_readiness() {
    let (mock, mut handle) = mock::pair::<Req, Res>();
    let service = ServiceBuilder::new()
        .layer(retry(3))
        .layer(
            BackoffLayer::new()
                .schedule(Constant::new(DELAY))
                .immediate_first_retry(false),
        )
        .service(ConcurrencyLimit::new(mock, 1));
    let mut first = service.clone();
    let mut second = service.clone();

    first.ready().await.unwrap();
    let mut a = Box::pin(first.call(get("/a")));
    let (_, respond) = next_attempt(&mut handle).await;
    respond.send_error(std::io::Error::from(RESET));
    assert!(poll_once(&mut a).await.is_pending(), "A sleeps");
    let slept_at = Instant::now();

    // The only permit is free while A sleeps: B gets it, and reaches the server at once.
    let ready = tokio::time::timeout(DELAY / 2, second.ready())
        .await
        .expect("the sleeping attempt holds the only permit")
        .unwrap();
    let b = ready.call(get("/b"));
    let (request, respond) = next_attempt(&mut handle).await;
    assert_eq!(request.uri(), "/b");
    assert_eq!(Instant::now(), slept_at, "B did not wait for A's delay");
    respond.send_response(http::Response::new(()));
    assert_eq!(b.await.unwrap().status(), 200);

    // A's retry still goes out when its own delay is over.
    let (result, arrived) = tokio::join!(a, async {
        let (request, respond) = handle.next_request().await.unwrap();
        assert_eq!(request.uri(), "/a");
        let arrived = Instant::now();
        respond.send_response(http::Response::new(()));
        arrived
    });
    assert_eq!(result.unwrap().status(), 200);
    assert_eq!(arrived - slept_at, DELAY);
}
