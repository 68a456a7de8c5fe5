use std::time::Duration;

use super::{Rng, Schedule};
use crate::ConfigError;

/// How randomness spreads the delays of many clients that failed at the same moment.
///
/// Without jitter, every client that lost its connection in one server restart retries at the
/// same instants, in waves. The modes are those of "Exponential Backoff And Jitter" (AWS
/// Architecture Blog, 2015); with `d = min(max, base × factor^k)`:
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Jitter {
    /// Exactly `d`.
    None,
    /// Uniform in `[0, d]`: the fewest total attempts under contention. The default.
    #[default]
    Full,
    /// Uniform in `[d/2, d]`: never much shorter than the exponential delay.
    Equal,
    /// Uniform in `[base, min(3 × previous, max)]`: each delay grows from the last one actually
    /// slept rather than from the attempt number (`factor` is not used). Unlike the AWS formula,
    /// which draws first and caps after, the range itself is capped, so delays near `max` are
    /// spread instead of piling up on it.
    Decorrelated,
}

/// Exponential backoff: `base × factor^k` before backoff step `k`, capped at `max`, with
/// [`Jitter`].
///
/// The defaults, `base` 50 ms, `factor` 2, `max` 2 s and full jitter, suit a client talking to a
/// server that answers in milliseconds: by the fourth step the wait is 400 ms at most, long
/// enough for an overloaded server to shed its queue, and no wait ever exceeds 2 s, so an
/// interactive request still fails or succeeds quickly. Raise `max` for batch work.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_reset::backoff::policy::{Exponential, Jitter, Schedule};
///
/// let schedule = Exponential::builder()
///     .base(Duration::from_millis(100))
///     .max(Duration::from_secs(1))
///     .jitter(Jitter::None)
///     .build()?;
/// let millis: Vec<u128> = schedule.delays(0).take(5).map(|d| d.as_millis()).collect();
/// assert_eq!(millis, vec![100, 200, 400, 800, 1000]);
/// # Ok::<(), tower_reset::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exponential {
    base: Duration,
    factor: f64,
    max: Duration,
    jitter: Jitter,
}

impl Exponential {
    /// Default first delay: 50 ms.
    pub const DEFAULT_BASE: Duration = Duration::from_millis(50);
    /// Default growth factor: 2.
    pub const DEFAULT_FACTOR: f64 = 2.0;
    /// Default cap: 2 s.
    pub const DEFAULT_MAX: Duration = Duration::from_secs(2);

    /// A builder that starts from the defaults.
    pub fn builder() -> ExponentialBuilder {
        ExponentialBuilder {
            base: Self::DEFAULT_BASE,
            factor: Self::DEFAULT_FACTOR,
            max: Self::DEFAULT_MAX,
            jitter: Jitter::Full,
        }
    }

    /// The first delay, before jitter.
    pub fn base(&self) -> Duration {
        self.base
    }

    /// The growth factor.
    pub fn factor(&self) -> f64 {
        self.factor
    }

    /// The longest delay.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The jitter mode.
    pub fn jitter(&self) -> Jitter {
        self.jitter
    }
}

impl Default for Exponential {
    fn default() -> Self {
        Self::builder().build().expect("the defaults are valid")
    }
}

/// Builds an [`Exponential`] schedule, checking its parameters; see [`Exponential::builder`].
#[derive(Debug, Clone, Copy)]
pub struct ExponentialBuilder {
    base: Duration,
    factor: f64,
    max: Duration,
    jitter: Jitter,
}

impl ExponentialBuilder {
    /// The delay of the first backoff step, before jitter. Must be more than zero.
    ///
    /// Defaults to 50 ms.
    pub const fn base(mut self, base: Duration) -> Self {
        self.base = base;
        self
    }

    /// How much each step grows. Must be a finite number from 1 to 100.
    ///
    /// Defaults to 2.
    pub const fn factor(mut self, factor: f64) -> Self {
        self.factor = factor;
        self
    }

    /// The longest delay. Must be at least `base`, and at most one day.
    ///
    /// Defaults to 2 s.
    pub const fn max(mut self, max: Duration) -> Self {
        self.max = max;
        self
    }

    /// How the delays are randomised.
    ///
    /// Defaults to [`Jitter::Full`].
    pub const fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// Checks the parameters and builds the schedule.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] when `base` is zero, `max` is below `base` or above one day, or `factor`
    /// is not a finite number from 1 to 100.
    pub fn build(self) -> Result<Exponential, ConfigError> {
        if self.base.is_zero() {
            return Err(ConfigError::new(
                "backoff base",
                "must be more than zero; use the `Zero` schedule for no delay",
            ));
        }
        if self.max < self.base {
            return Err(ConfigError::new(
                "backoff max",
                format!(
                    "must be at least the base ({:?}), got {:?}",
                    self.base, self.max
                ),
            ));
        }
        if self.max > Duration::from_secs(24 * 60 * 60) {
            return Err(ConfigError::new(
                "backoff max",
                format!("must be at most one day, got {:?}", self.max),
            ));
        }
        if !self.factor.is_finite() || !(1.0..=100.0).contains(&self.factor) {
            return Err(ConfigError::new(
                "backoff factor",
                format!("must be a finite number from 1 to 100, got {}", self.factor),
            ));
        }
        Ok(Exponential {
            base: self.base,
            factor: self.factor,
            max: self.max,
            jitter: self.jitter,
        })
    }
}

impl Schedule for Exponential {
    type Delays = ExponentialDelays;

    fn delays(&self, seed: u64) -> ExponentialDelays {
        ExponentialDelays {
            schedule: *self,
            next: self.base.as_secs_f64(),
            previous: self.base.as_secs_f64(),
            rng: Rng::new(seed),
        }
    }
}

/// The delays of one request under an [`Exponential`] schedule. Never ends.
#[derive(Debug, Clone)]
pub struct ExponentialDelays {
    schedule: Exponential,
    /// The un-jittered delay of the next step, in seconds, already capped.
    next: f64,
    /// The last delay handed out, in seconds (for decorrelated jitter).
    previous: f64,
    rng: Rng,
}

impl Iterator for ExponentialDelays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let Exponential {
            base,
            factor,
            max,
            jitter,
        } = self.schedule;
        let (base, max) = (base.as_secs_f64(), max.as_secs_f64());
        let step = self.next;
        self.next = (step * factor).min(max);
        let delay = match jitter {
            Jitter::None => step,
            Jitter::Full => step * self.rng.next_f64(),
            Jitter::Equal => step / 2.0 + step / 2.0 * self.rng.next_f64(),
            Jitter::Decorrelated => {
                let upper = (self.previous * 3.0).min(max);
                base + (upper - base) * self.rng.next_f64()
            }
        };
        // All values are finite and within [0, max] by construction; the clamp keeps
        // floating-point rounding from ever leaving the bounds.
        let delay = delay.clamp(0.0, max);
        self.previous = delay;
        Some(Duration::from_secs_f64(delay))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}
