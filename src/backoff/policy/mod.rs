//! Backoff schedules: how long to wait before each retry.
//!
//! A [`Schedule`] turns a seed into an iterator of delays, one per backoff step. The
//! [`Backoff`](super::Backoff) service picks the step for each attempt from its
//! [`AttemptRecord`](crate::attempt::AttemptRecord), so the schedule itself holds no per-request
//! state: the same seed always gives the same delays, which is what makes tests exact.
//!
//! Built in, each a named type:
//!
//! * [`Exponential`]: `base × factor^k`, capped, with [`Jitter`] none, full, equal or
//!   decorrelated. The default.
//! * [`Constant`]: the same delay every time.
//! * [`Zero`]: no delay at all.
//! * [`delays_fn`]: a closure from the seed to any iterator of delays; an iterator that ends
//!   means "no more retries".

mod constant;
mod delays_fn;
mod exponential;
mod rng;
mod zero;

pub use self::constant::Constant;
pub use self::delays_fn::{delays_fn, DelaysFn};
pub use self::exponential::{Exponential, ExponentialBuilder, ExponentialDelays, Jitter};
pub use self::rng::Rng;
pub use self::zero::Zero;

use std::time::Duration;

/// A schedule of backoff delays.
pub trait Schedule {
    /// The delays of one request, in order: the first is the wait before the first backoff.
    type Delays: Iterator<Item = Duration>;

    /// The delays for a request whose randomness is fixed by `seed`.
    fn delays(&self, seed: u64) -> Self::Delays;
}

impl<S: Schedule + ?Sized> Schedule for &S {
    type Delays = S::Delays;
    fn delays(&self, seed: u64) -> Self::Delays {
        (**self).delays(seed)
    }
}

impl<S: Schedule + ?Sized> Schedule for std::sync::Arc<S> {
    type Delays = S::Delays;
    fn delays(&self, seed: u64) -> Self::Delays {
        (**self).delays(seed)
    }
}
