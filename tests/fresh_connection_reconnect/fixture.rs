//! A `Reconnect` over tower-test mocks, driven one step at a time.
//!
//! The `MakeService` is a mock whose every call (a connect) the fixture answers with a new mock
//! connection, or with the failure the test scheduled; it counts the connects. Each connection
//! is a mock too, and the fixture finds the one a request went to.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::task::Poll;

use tower::{BoxError, Layer, Service};
use tower_reset::fresh_connection::policy::{ConnectionPolicy, StandardConnections};
use tower_reset::fresh_connection::Reconnect;
use tower_reset::FreshConnectionLayer;
use tower_test::mock;

pub(crate) type Req = http::Request<()>;
pub(crate) type Res = http::Response<()>;
/// A connection: a mock service.
pub(crate) type Conn = mock::Mock<Req, Res>;
/// The `MakeService`: a mock from the target to a connection.
pub(crate) type Maker = mock::Mock<&'static str, Conn>;
pub(crate) type Future<F> = <Reconnect<Maker, &'static str, F> as Service<Req>>::Future;

/// More connects than this in one readiness is a reconnect loop: the fixture panics.
const MAX_CONNECTS_PER_READY: usize = 10;

/// What every connection is made for.
pub(crate) const TARGET: &str = "backend:80";

/// How a connection answers one request.
pub(crate) enum Answer {
    Respond(u16),
    Fail(io::ErrorKind),
    FailWith(BoxError),
}

pub(crate) use Answer::{Fail, Respond};

/// How the next connect ends, when it should not simply succeed.
enum Connect {
    /// The `MakeService`'s future fails with this io error.
    Fails(io::ErrorKind),
    /// The connection is made, but its first `poll_ready` fails with this io error.
    NotReady(io::ErrorKind),
}

/// An application error: not a connection failure.
#[derive(Debug)]
pub(crate) struct AppError;

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("application error")
    }
}

impl std::error::Error for AppError {}

/// A policy whose limits are all zero, which `StandardConnections`'s builder refuses.
#[derive(Debug, Clone)]
pub(crate) struct ZeroLimits;

impl ConnectionPolicy for ZeroLimits {
    fn max_age(&self) -> Option<std::time::Duration> {
        Some(std::time::Duration::ZERO)
    }
    fn max_idle(&self) -> Option<std::time::Duration> {
        Some(std::time::Duration::ZERO)
    }
    fn max_requests(&self) -> Option<u32> {
        Some(0)
    }
}

/// A policy that condemns no failure at all.
#[derive(Debug, Clone)]
pub(crate) struct CondemnsNothing;

impl ConnectionPolicy for CondemnsNothing {
    fn condemns(&self, _: tower_reset::classify::FailureClass) -> bool {
        false
    }
}

pub(crate) struct Fixture<F = StandardConnections> {
    pub(crate) service: mock::Spawn<Reconnect<Maker, &'static str, F>>,
    pub(crate) maker: mock::Handle<&'static str, Conn>,
    /// The handle of every connection made, in order.
    pub(crate) connections: Vec<mock::Handle<Req, Res>>,
    connects: usize,
    scheduled: VecDeque<Connect>,
}

impl Fixture {
    pub(crate) fn new() -> Self {
        Self::with_policy(StandardConnections::new())
    }
}

impl<F> Fixture<F>
where
    F: ConnectionPolicy + Clone,
{
    pub(crate) fn with_policy(policy: F) -> Self {
        let (maker, handle) = mock::pair();
        let service = FreshConnectionLayer::reconnect(TARGET)
            .policy(policy)
            .layer(maker);
        Self {
            service: mock::Spawn::new(service),
            maker: handle,
            connections: Vec::new(),
            connects: 0,
            scheduled: VecDeque::new(),
        }
    }

    /// The number of times the `MakeService` was called, failed connects included.
    pub(crate) fn connects(&self) -> usize {
        self.connects
    }

    /// The next connect fails with an io error of this kind.
    pub(crate) fn fail_next_connect(&mut self, kind: io::ErrorKind) {
        self.scheduled.push_back(Connect::Fails(kind));
    }

    /// The next connection made fails its first `poll_ready` with an io error of this kind.
    pub(crate) fn next_connection_not_ready(&mut self, kind: io::ErrorKind) {
        self.scheduled.push_back(Connect::NotReady(kind));
    }

    /// Polls the service ready once, answering the connects it starts.
    pub(crate) fn poll_ready(&mut self) -> Poll<Result<(), BoxError>> {
        for _ in 0..MAX_CONNECTS_PER_READY {
            let poll = self.service.poll_ready();
            if poll.is_ready() {
                return poll;
            }
            let Poll::Ready(Some((target, respond))) = self.maker.poll_request() else {
                return Poll::Pending;
            };
            assert_eq!(target, TARGET);
            self.connects += 1;
            match self.scheduled.pop_front() {
                Some(Connect::Fails(kind)) => {
                    respond.send_error(io::Error::new(kind, "connect failed"));
                }
                Some(Connect::NotReady(kind)) => {
                    let (conn, mut handle) = mock::pair();
                    handle.send_error(io::Error::new(kind, "closed at once"));
                    self.connections.push(handle);
                    respond.send_response(conn);
                }
                None => {
                    let (conn, handle) = mock::pair();
                    self.connections.push(handle);
                    respond.send_response(conn);
                }
            }
        }
        panic!("poll_ready made {MAX_CONNECTS_PER_READY} connections and is still not ready");
    }

    /// Polls the service ready, which must succeed at once (connects are answered at once).
    pub(crate) fn ready(&mut self) -> Result<(), BoxError> {
        match self.poll_ready() {
            Poll::Ready(result) => result,
            Poll::Pending => panic!("the service is not ready"),
        }
    }

    /// Sends a request on the service polled ready, without answering it.
    pub(crate) fn start(&mut self) -> Future<F> {
        self.ready().expect("ready");
        self.service.call(http::Request::new(()))
    }

    /// The connection (its index in [`Fixture::connections`]) that received a request, and the
    /// handle to answer it.
    pub(crate) fn received(&mut self) -> (usize, mock::SendResponse<Res>) {
        for (index, handle) in self.connections.iter_mut().enumerate() {
            if let Poll::Ready(Some((_, respond))) = handle.poll_request() {
                return (index, respond);
            }
        }
        panic!("no connection received a request");
    }

    /// Sends one request and answers it with `answer`: the connection it went to, and the
    /// result the caller sees.
    pub(crate) async fn send(&mut self, answer: Answer) -> (usize, Result<Res, BoxError>) {
        let future = self.start();
        let (connection, respond) = self.received();
        match answer {
            Respond(status) => {
                let mut response = http::Response::new(());
                *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
                respond.send_response(response);
            }
            Fail(kind) => respond.send_error(io::Error::new(kind, "failed")),
            Answer::FailWith(error) => respond.send_error(error),
        }
        (connection, future.await)
    }

    /// Sends a request answered `200` and returns the connection it went to.
    pub(crate) async fn ok(&mut self) -> usize {
        let (connection, result) = self.send(Respond(200)).await;
        assert_eq!(result.expect("a response").status(), 200);
        connection
    }
}

/// The io error inside a `BoxError`, which must be the error itself, not a wrapper.
pub(crate) fn io_kind(error: &BoxError) -> io::ErrorKind {
    error
        .downcast_ref::<io::Error>()
        .unwrap_or_else(|| panic!("expected an io::Error, got {error:?}"))
        .kind()
}
