//! A service that answers at once and allocates nothing, and a way to send one request through
//! a stack over it without a runtime: what the allocation tests and the benchmarks measure the
//! layers against. Also the requests and the `tower::retry` policy the benchmarks compare with.

// Shared by the allocation tests and both benchmarks, each of which uses only a part.
#![allow(dead_code)]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use tower::{BoxError, Service};

pub(crate) type Request = http::Request<String>;
pub(crate) type Response = http::Response<()>;

/// Answers every request at once with an empty `200`.
#[derive(Clone)]
pub(crate) struct Answer;

impl Service<Request> for Answer {
    type Response = Response;
    type Error = BoxError;
    type Future = std::future::Ready<Result<Response, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request) -> Self::Future {
        std::future::ready(Ok(http::Response::new(())))
    }
}

/// Polls ready, calls, and polls the response future, which must be ready at once.
pub(crate) fn send<S>(service: &mut S, request: Request) -> Response
where
    S: Service<Request, Response = Response, Error = BoxError>,
{
    let mut cx = Context::from_waker(Waker::noop());
    let Poll::Ready(Ok(())) = service.poll_ready(&mut cx) else {
        panic!("the service should be ready at once");
    };
    let mut future = pin!(service.call(request));
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(result) => result.expect("the answer"),
        Poll::Pending => panic!("the response future should be ready at once"),
    }
}

/// A request with `headers` headers besides the method and URI.
pub(crate) fn request(method: http::Method, headers: usize) -> Request {
    let mut builder = http::Request::builder()
        .method(method)
        .uri("http://example.com/v1/items");
    for i in 0..headers {
        builder = builder.header(format!("x-header-{i}"), "value");
    }
    builder.body("payload".to_owned()).unwrap()
}

/// `tower::retry` with the policy a user would write: clone GETs, retry errors.
#[derive(Clone)]
pub(crate) struct CloneGets;

impl tower::retry::Policy<Request, Response, BoxError> for CloneGets {
    type Future = std::future::Ready<()>;

    fn retry(
        &mut self,
        _: &mut Request,
        result: &mut Result<Response, BoxError>,
    ) -> Option<Self::Future> {
        result.is_err().then(|| std::future::ready(()))
    }

    fn clone_request(&mut self, request: &Request) -> Option<Request> {
        (request.method() == http::Method::GET).then(|| request.clone())
    }
}
