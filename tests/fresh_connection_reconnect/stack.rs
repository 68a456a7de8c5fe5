//! `Reconnect` in a stack: under a tower `Buffer` (it is not `Clone`; the buffer shares its one
//! connection between clones), below `ResetRetry` and `Backoff`, over the scripted services.

use std::io;

use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use tower_reset::{BackoffLayer, FreshConnectionLayer, ResetRetryLayer};

use crate::scripted::{Answer, Req, Res, Script};

const TARGET: &str = "backend:80";

fn get() -> Req {
    http::Request::get("/").body(()).unwrap()
}

fn post() -> Req {
    http::Request::post("/pay").body(()).unwrap()
}

/// `ResetRetry` (standard, no budget) over a buffer over `Reconnect` over the script's maker.
fn stack(script: &Script) -> impl Service<Req, Response = Res, Error = BoxError> + Clone {
    ServiceBuilder::new()
        .layer(ResetRetryLayer::builder().no_budget().build().unwrap())
        .buffer(16)
        .layer(FreshConnectionLayer::reconnect(TARGET))
        .service(script.maker())
}

async fn send<S>(service: &mut S, request: Req) -> Result<Res, BoxError>
where
    S: Service<Req, Response = Res, Error = BoxError>,
{
    service.ready().await?.call(request).await
}

#[tokio::test]
async fn a_reset_get_is_retried_on_a_new_connection_which_is_then_kept() {
    let script = Script::new(vec![], vec![Answer::Fail(io::ErrorKind::ConnectionReset)]);
    let mut service = stack(&script);

    let response = send(&mut service, get()).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        script.served_by(),
        [0, 1],
        "the retry went on a new connection"
    );
    assert_eq!(script.connect_calls(), 2);

    for _ in 0..5 {
        assert_eq!(send(&mut service, get()).await.unwrap().status(), 200);
    }
    assert_eq!(script.served_by(), [0, 1, 1, 1, 1, 1, 1]);
    assert_eq!(script.connect_calls(), 2);
}

#[tokio::test]
async fn a_post_whose_connect_was_refused_is_retried_since_it_was_never_sent() {
    let script = Script::new(vec![Some(io::ErrorKind::ConnectionRefused)], vec![]);
    let mut service = stack(&script);

    let response = send(&mut service, post()).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(script.connect_calls(), 2);
    assert_eq!(script.methods(), [http::Method::POST], "sent exactly once");
}

#[tokio::test]
async fn a_reset_post_is_not_retried_but_the_next_request_gets_a_new_connection() {
    let script = Script::new(vec![], vec![Answer::Fail(io::ErrorKind::ConnectionReset)]);
    let mut service = stack(&script);

    let error = send(&mut service, post()).await.unwrap_err();
    let io = error
        .downcast_ref::<io::Error>()
        .expect("the io error itself");
    assert_eq!(io.kind(), io::ErrorKind::ConnectionReset);
    assert_eq!(script.served_by(), [0]);

    assert_eq!(send(&mut service, get()).await.unwrap().status(), 200);
    assert_eq!(script.served_by(), [0, 1]);
    assert_eq!(script.connect_calls(), 2);
}

#[tokio::test]
async fn under_a_buffer_a_connect_error_fails_one_request_and_the_service_lives_on() {
    let script = Script::new(vec![Some(io::ErrorKind::ConnectionRefused)], vec![]);
    let mut service = ServiceBuilder::new()
        .buffer(16)
        .layer(FreshConnectionLayer::reconnect(TARGET))
        .service(script.maker());

    let error = send(&mut service, get()).await.unwrap_err();
    let io = error
        .downcast_ref::<io::Error>()
        .expect("the io error itself");
    assert_eq!(io.kind(), io::ErrorKind::ConnectionRefused);

    // Had `poll_ready` returned the connect error, the buffer would have failed for good.
    for _ in 0..3 {
        assert_eq!(send(&mut service, get()).await.unwrap().status(), 200);
    }
    assert_eq!(script.connect_calls(), 2);
    assert_eq!(script.served_by(), [0, 0, 0]);
}

#[tokio::test(start_paused = true)]
async fn the_recommended_stack_reconnects_after_each_reset() {
    let reset = Answer::Fail(io::ErrorKind::ConnectionReset);
    let script = Script::new(vec![], vec![reset, reset]);
    let mut service = ServiceBuilder::new()
        .layer(ResetRetryLayer::builder().no_budget().build().unwrap())
        .layer(BackoffLayer::new())
        .buffer(16)
        .layer(FreshConnectionLayer::reconnect(TARGET))
        .service(script.maker());

    let response = send(&mut service, get()).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        script.served_by(),
        [0, 1, 2],
        "each attempt on a new connection"
    );
    assert_eq!(script.connect_calls(), 3);
}
