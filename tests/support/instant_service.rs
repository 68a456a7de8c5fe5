//! A service that answers at once and allocates nothing, and a way to send one request through
//! a stack over it without a runtime: what the allocation tests and the benchmarks measure the
//! layers against. Also the requests and the `tower::retry` policies the benchmarks compare with,
//! and a service whose responses have a body of many frames, for the layers that wrap bodies.

// Shared by the allocation tests and both benchmarks, each of which uses only a part.
#![allow(dead_code)]

use std::future::Future;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http_body::{Body, Frame};

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

/// `tower::retry` as a user would write it for "retry any error `retries` times": every
/// request is cloned before it is sent, and any error is retried at once.
#[derive(Debug, Clone)]
pub(crate) struct RetryAnyError {
    pub(crate) retries: u32,
}

impl<B: Clone, Res, E> tower::retry::Policy<http::Request<B>, Res, E> for RetryAnyError {
    type Future = std::future::Ready<()>;

    fn retry(
        &mut self,
        _: &mut http::Request<B>,
        result: &mut Result<Res, E>,
    ) -> Option<Self::Future> {
        (result.is_err() && self.retries > 0).then(|| {
            self.retries -= 1;
            std::future::ready(())
        })
    }

    fn clone_request(&mut self, request: &http::Request<B>) -> Option<http::Request<B>> {
        Some(request.clone())
    }
}

/// Answers every request at once with a `200` whose body is `frames` frames of one static
/// 16 KiB chunk, and whose `ETag` and `Content-Length` make it resumable. Allocates only its
/// response head.
#[derive(Clone)]
pub(crate) struct Frames {
    pub(crate) frames: usize,
}

/// The body of [`Frames`]: copies of one static chunk, allocating nothing.
pub(crate) struct Repeat {
    left: usize,
}

const CHUNK: &[u8] = &[7; 16 * 1024];

impl Body for Repeat {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        self.left -= 1;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(CHUNK)))))
    }
}

impl Service<Request> for Frames {
    type Response = http::Response<Repeat>;
    type Error = BoxError;
    type Future = std::future::Ready<Result<http::Response<Repeat>, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request) -> Self::Future {
        let mut response = http::Response::new(Repeat { left: self.frames });
        let headers = response.headers_mut();
        headers.insert(http::header::ETAG, http::HeaderValue::from_static("\"v1\""));
        headers.insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from(self.frames * CHUNK.len()),
        );
        std::future::ready(Ok(response))
    }
}

/// Polls ready, calls, and polls the response future, which must be ready at once: [`send`]
/// for any response type.
pub(crate) fn respond<S>(service: &mut S, request: Request) -> S::Response
where
    S: Service<Request>,
    S::Error: std::fmt::Debug,
{
    let mut cx = Context::from_waker(Waker::noop());
    assert!(service.poll_ready(&mut cx).is_ready(), "ready at once");
    let mut future = pin!(service.call(request));
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(response) => response.expect("the answer"),
        Poll::Pending => panic!("the response future should be ready at once"),
    }
}

/// Reads a body whose frames are all ready at once to its end; returns how many it had.
pub(crate) fn read_all<B: Body + Unpin>(body: &mut B) -> usize
where
    B::Error: std::fmt::Debug,
{
    let mut cx = Context::from_waker(Waker::noop());
    let mut frames = 0;
    while let Poll::Ready(Some(frame)) = Pin::new(&mut *body).poll_frame(&mut cx) {
        frame.expect("no body error");
        frames += 1;
    }
    frames
}

/// Sends a request and reads the whole body of its response; returns the number of frames.
pub(crate) fn send_and_read<S, B>(service: &mut S, request: Request) -> usize
where
    S: Service<Request, Response = http::Response<B>>,
    S::Error: std::fmt::Debug,
    B: Body + Unpin,
    B::Error: std::fmt::Debug,
{
    read_all(respond(service, request).body_mut())
}
