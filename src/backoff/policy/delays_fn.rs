use std::fmt;
use std::time::Duration;

use super::Schedule;

/// A schedule from a closure that makes each request's delays from its seed.
///
/// An iterator that ends means "no more retries": the attempt that would need the next delay
/// is not sent, and the caller gets the last real failure.
///
/// # Examples
///
/// Fibonacci backoff, at most five steps:
///
/// ```
/// use std::time::Duration;
/// use tower_reset::backoff::policy::{delays_fn, Schedule};
///
/// let fibonacci = delays_fn(|_seed| {
///     let mut pair = (50u64, 50u64);
///     std::iter::from_fn(move || {
///         let next = pair.0;
///         pair = (pair.1, pair.0 + pair.1);
///         Some(Duration::from_millis(next))
///     })
///     .take(5)
/// });
/// let millis: Vec<u128> = fibonacci.delays(0).map(|d| d.as_millis()).collect();
/// assert_eq!(millis, vec![50, 50, 100, 150, 250]);
/// ```
pub fn delays_fn<F, I>(f: F) -> DelaysFn<F>
where
    F: Fn(u64) -> I,
    I: Iterator<Item = Duration>,
{
    DelaysFn { f }
}

/// A schedule from a closure; see [`delays_fn`].
#[derive(Clone, Copy)]
pub struct DelaysFn<F> {
    f: F,
}

impl<F, I> Schedule for DelaysFn<F>
where
    F: Fn(u64) -> I,
    I: Iterator<Item = Duration>,
{
    type Delays = I;
    fn delays(&self, seed: u64) -> I {
        (self.f)(seed)
    }
}

impl<F> fmt::Debug for DelaysFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DelaysFn")
            .field("f", &std::any::type_name::<F>())
            .finish()
    }
}
