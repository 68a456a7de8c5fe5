//! Helpers for the backoff tests, over the shared scripted mock (`tests/support/scripted_mock.rs`).
//!
//! (Tokio's timer has a resolution of one millisecond and rounds deadlines up: a delay of
//! 12.3 ms is slept as 13 ms. Whole-millisecond delays are therefore exact; see [`ceil_ms`] for
//! the others.)

use std::time::Duration;

use http::HeaderValue;
use tower_reset::backoff::policy::{Exponential, Jitter};
use tower_reset::classify::StandardClassifier;
use tower_reset::ResetRetryLayer;

pub(crate) use crate::scripted_mock::run as send;
pub(crate) use crate::scripted_mock::{
    fail, get, run_on, status, Answer, Mock, Req, Res, Run, REFUSED, RESET,
};

/// The attempt gets a `503` with these headers.
pub(crate) fn unavailable(headers: &[(&str, HeaderValue)]) -> Answer {
    let mut response = http::Response::builder().status(503);
    for (name, value) in headers {
        response = response.header(*name, value.clone());
    }
    Answer::Respond(response.body(()).expect("valid response"))
}

/// A header value from a string.
pub(crate) fn value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).expect("a valid header value")
}

/// `ResetRetry` with no budget and at most `max_attempts` attempts.
pub(crate) fn retry(max_attempts: u32) -> ResetRetryLayer {
    ResetRetryLayer::builder()
        .no_budget()
        .max_attempts(max_attempts)
        .build()
        .expect("valid retry settings")
}

/// Like [`retry`], and `503` responses are failures of class `Unavailable`.
pub(crate) fn retry_unavailable(max_attempts: u32) -> ResetRetryLayer {
    ResetRetryLayer::builder()
        .no_budget()
        .max_attempts(max_attempts)
        .classifier(StandardClassifier::new().unavailable_responses(true))
        .build()
        .expect("valid retry settings")
}

pub(crate) fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// An exponential schedule without jitter: `base`, doubling, capped at `max` (in ms).
pub(crate) fn exponential(base: u64, max: u64) -> Exponential {
    Exponential::builder()
        .base(ms(base))
        .max(ms(max))
        .jitter(Jitter::None)
        .build()
        .expect("valid schedule")
}

/// How long tokio sleeps for `delay` in paused time, from a whole millisecond: its timer rounds
/// deadlines up to the next millisecond.
pub(crate) fn ceil_ms(delay: Duration) -> Duration {
    let nanos = delay.as_nanos().div_ceil(1_000_000) * 1_000_000;
    Duration::from_nanos(u64::try_from(nanos).expect("a delay below 584 years"))
}
