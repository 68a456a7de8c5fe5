//! Helpers for the `ResetRetry` tests, over the shared scripted mock
//! (`tests/support/scripted_mock.rs`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tower_reset::reset_retry::policy::CloneRequest;

pub(crate) use crate::scripted_mock::Answer::{self, Fail};
pub(crate) use crate::scripted_mock::{get, run, status, Mock, Req, Res, REFUSED, RESET};

pub(crate) fn post(path: &str) -> Req {
    http::Request::post(path)
        .body("payload".to_owned())
        .unwrap()
}

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
