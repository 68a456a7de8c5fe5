//! A connector (a `Service<Uri>`, such as hyper-util's `HttpConnector`) that records when each
//! connection attempt started: how tests count the connects a client makes.

// Shared by several test binaries, each of which uses only a part.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http::Uri;
use tokio::time::Instant;
use tower::Service;

/// `inner`, recording the instant of every call (every connection attempt).
#[derive(Clone, Debug)]
pub(crate) struct CountingConnector<C> {
    inner: C,
    attempts: Arc<Mutex<Vec<Instant>>>,
}

impl<C> CountingConnector<C> {
    pub(crate) fn new(inner: C) -> Self {
        Self {
            inner,
            attempts: Arc::default(),
        }
    }

    /// A handle on the attempts, which clones of this connector share.
    pub(crate) fn attempts(&self) -> ConnectAttempts {
        ConnectAttempts(Arc::clone(&self.attempts))
    }
}

/// The connection attempts of a [`CountingConnector`] and its clones.
#[derive(Clone, Debug)]
pub(crate) struct ConnectAttempts(Arc<Mutex<Vec<Instant>>>);

impl ConnectAttempts {
    /// How many attempts were made.
    pub(crate) fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// How many attempts started in `[from, to)`.
    pub(crate) fn between(&self, from: Instant, to: Instant) -> usize {
        let attempts = self.0.lock().unwrap();
        attempts
            .iter()
            .filter(|at| **at >= from && **at < to)
            .count()
    }
}

impl<C: Service<Uri>> Service<Uri> for CountingConnector<C> {
    type Response = C::Response;
    type Error = C::Error;
    type Future = C::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        self.attempts.lock().unwrap().push(Instant::now());
        self.inner.call(uri)
    }
}
