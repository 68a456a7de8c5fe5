//! A `MakeService` and connections that answer from a script on their own, for stacks whose
//! inner services run in other tasks (a `Buffer`'s worker). Both panic on a `call` that did not
//! follow a successful `poll_ready`, as the tower-test mock does.

use std::collections::VecDeque;
use std::future::{ready, Ready};
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tower::{BoxError, Service};

pub(crate) type Req = http::Request<()>;
pub(crate) type Res = http::Response<()>;

/// How a connection answers one request.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Answer {
    Respond(u16),
    Fail(io::ErrorKind),
}

/// The script shared by the maker and all its connections, and what they saw.
#[derive(Debug, Clone, Default)]
pub(crate) struct Script {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    /// The outcome of each connect in order: `Some(kind)` fails with that io error. Connects
    /// beyond the script succeed.
    connects: VecDeque<Option<io::ErrorKind>>,
    /// The answer to each request in order, on whatever connection; `200` beyond the script.
    answers: VecDeque<Answer>,
    connect_calls: usize,
    connections_made: usize,
    /// The connection each request went to, in order.
    served_by: Vec<usize>,
    /// The method of each request, in order.
    methods: Vec<http::Method>,
}

impl Script {
    pub(crate) fn new(connects: Vec<Option<io::ErrorKind>>, answers: Vec<Answer>) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                connects: connects.into(),
                answers: answers.into(),
                ..State::default()
            })),
        }
    }

    /// A `MakeService` following this script.
    pub(crate) fn maker(&self) -> Maker {
        Maker {
            script: self.clone(),
            ready: false,
        }
    }

    /// Calls of the `MakeService`, failed connects included.
    pub(crate) fn connect_calls(&self) -> usize {
        self.lock().connect_calls
    }

    /// The connection each request went to, in order.
    pub(crate) fn served_by(&self) -> Vec<usize> {
        self.lock().served_by.clone()
    }

    /// The method of each request received, in order.
    pub(crate) fn methods(&self) -> Vec<http::Method> {
        self.lock().methods.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The scripted `MakeService`: always ready, connects at once.
#[derive(Debug)]
pub(crate) struct Maker {
    script: Script,
    ready: bool,
}

impl Service<&'static str> for Maker {
    type Response = Connection;
    type Error = io::Error;
    type Future = Ready<Result<Connection, io::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.ready = true;
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _target: &'static str) -> Self::Future {
        assert!(
            std::mem::take(&mut self.ready),
            "maker called without poll_ready"
        );
        let mut state = self.script.lock();
        state.connect_calls += 1;
        if let Some(Some(kind)) = state.connects.pop_front() {
            return ready(Err(io::Error::new(kind, "connect failed")));
        }
        let id = state.connections_made;
        state.connections_made += 1;
        ready(Ok(Connection {
            id,
            script: self.script.clone(),
            ready: false,
        }))
    }
}

/// A scripted connection: always ready, answers at once.
#[derive(Debug)]
pub(crate) struct Connection {
    id: usize,
    script: Script,
    ready: bool,
}

impl Service<Req> for Connection {
    type Response = Res;
    type Error = BoxError;
    type Future = Ready<Result<Res, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.ready = true;
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Req) -> Self::Future {
        assert!(
            std::mem::take(&mut self.ready),
            "connection called without poll_ready"
        );
        let mut state = self.script.lock();
        state.served_by.push(self.id);
        state.methods.push(request.method().clone());
        match state.answers.pop_front().unwrap_or(Answer::Respond(200)) {
            Answer::Respond(status) => {
                let mut response = http::Response::new(());
                *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
                ready(Ok(response))
            }
            Answer::Fail(kind) => ready(Err(io::Error::new(kind, "failed").into())),
        }
    }
}
