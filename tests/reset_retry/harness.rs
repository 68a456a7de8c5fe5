//! Drives a `ResetRetry` over the tower-test mock, answering each attempt from a script.
//!
//! The mock panics when `call` comes without a successful `poll_ready` on the same instance, so
//! every test here also proves the layer's readiness discipline.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tower::{BoxError, Layer, Service, ServiceExt};
use tower_reset::reset_retry::policy::CloneRequest;
use tower_test::mock;

pub(crate) type Req = http::Request<String>;
pub(crate) type Res = http::Response<()>;
pub(crate) type Mock = mock::Mock<Req, Res>;

/// What the mock does with one attempt.
pub(crate) enum Answer {
    Respond(u16),
    RespondWith(Res),
    Fail(io::ErrorKind, &'static str),
    FailWith(BoxError),
}

pub(crate) use Answer::{Fail, Respond};

/// One whole request: the result and every attempt the mock received.
pub(crate) struct Run {
    pub(crate) result: Result<Res, BoxError>,
    pub(crate) attempts: Vec<Req>,
}

impl Run {
    pub(crate) fn status(&self) -> u16 {
        self.result.as_ref().expect("a response").status().as_u16()
    }

    /// The io error the request failed with.
    pub(crate) fn io_error(&self) -> &io::Error {
        let Err(error) = &self.result else {
            panic!(
                "expected an error, got {:?}",
                self.result.as_ref().map(|r| r.status())
            );
        };
        error
            .downcast_ref::<io::Error>()
            .expect("the io error itself, not a wrapper")
    }
}

/// Sends `request` through `layer` over a fresh mock, answering attempts from `script` in
/// order. An attempt beyond the script fails the test.
pub(crate) async fn run<L>(layer: &L, request: Req, script: Vec<Answer>) -> Run
where
    L: Layer<Mock>,
    L::Service: Service<Req, Response = Res, Error = BoxError> + Send + 'static,
    <L::Service as Service<Req>>::Future: Send,
{
    let (mock, handle) = mock::pair::<Req, Res>();
    let service = layer.layer(mock);
    run_on(service, handle, request, script).await
}

/// Like [`run`], on a service already built over `handle`'s mock.
pub(crate) async fn run_on<S>(
    service: S,
    mut handle: mock::Handle<Req, Res>,
    request: Req,
    script: Vec<Answer>,
) -> Run
where
    S: Service<Req, Response = Res, Error = BoxError> + Send + 'static,
    S::Future: Send,
{
    let mut call = tokio::spawn(service.oneshot(request));
    let mut script = script.into_iter();
    let mut attempts = Vec::new();
    loop {
        tokio::select! {
            result = &mut call => {
                return Run { result: result.expect("the call does not panic"), attempts };
            }
            Some((request, respond)) = handle.next_request() => {
                let answer = script.next().unwrap_or_else(|| {
                    panic!("unexpected attempt {}: the script is exhausted", attempts.len() + 1)
                });
                attempts.push(request);
                match answer {
                    Answer::Respond(status) => respond.send_response(
                        http::Response::builder().status(status).body(()).unwrap(),
                    ),
                    Answer::RespondWith(response) => respond.send_response(response),
                    Answer::Fail(kind, message) => respond.send_error(io::Error::new(kind, message)),
                    Answer::FailWith(error) => respond.send_error(error),
                }
            }
        }
    }
}

pub(crate) fn get(path: &str) -> Req {
    http::Request::get(path).body(String::new()).unwrap()
}

pub(crate) fn post(path: &str) -> Req {
    http::Request::post(path)
        .body("payload".to_owned())
        .unwrap()
}

pub(crate) const RESET: io::ErrorKind = io::ErrorKind::ConnectionReset;
pub(crate) const REFUSED: io::ErrorKind = io::ErrorKind::ConnectionRefused;

/// A `CloneRequest` that counts the copies it makes.
#[derive(Clone, Default)]
pub(crate) struct CountingClone(pub(crate) Arc<AtomicUsize>);

impl CountingClone {
    pub(crate) fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl CloneRequest<Req> for CountingClone {
    fn clone_request(&self, request: &Req) -> Option<Req> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Some(request.clone())
    }
}
