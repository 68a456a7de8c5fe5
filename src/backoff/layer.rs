use std::time::Duration;

use tower::Layer;

use super::policy::Exponential;
use super::Backoff;

/// Applies [`Backoff`] to a service: each retry waits before it goes out.
///
/// `BackoffLayer::new()` gives the standard behaviour: an [`Exponential`] schedule (50 ms
/// doubling to 2 s, full jitter), the first retry after a connection failure sent at once, and
/// server hints honoured up to 10 s. Place it inside [`ResetRetryLayer`](crate::ResetRetryLayer),
/// which gives each retry the [`AttemptRecord`](crate::attempt::AttemptRecord) this layer reads.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower::ServiceBuilder;
/// use tower_reset::backoff::policy::{Exponential, Jitter};
/// use tower_reset::{BackoffLayer, ResetRetryLayer};
///
/// # fn wrap<S>(client: S) -> Result<(), tower_reset::ConfigError> {
/// let schedule = Exponential::builder()
///     .base(Duration::from_millis(100))
///     .max(Duration::from_secs(5))
///     .jitter(Jitter::Equal)
///     .build()?;
/// let service = ServiceBuilder::new()
///     .layer(ResetRetryLayer::new())
///     .layer(BackoffLayer::new().schedule(schedule).max_hint(Duration::from_secs(30)))
///     .service(client);
/// # let _ = service;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct BackoffLayer<B = Exponential> {
    pub(super) schedule: B,
    pub(super) immediate_first_retry: bool,
    pub(super) max_hint: Duration,
    pub(super) seed: Option<u64>,
}

impl BackoffLayer {
    /// Default longest server hint honoured: 10 s.
    pub const DEFAULT_MAX_HINT: Duration = Duration::from_secs(10);

    /// The standard layer; see the type's documentation for what it does.
    pub fn new() -> Self {
        Self {
            schedule: Exponential::default(),
            immediate_first_retry: true,
            max_hint: Self::DEFAULT_MAX_HINT,
            seed: None,
        }
    }
}

impl Default for BackoffLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<B> BackoffLayer<B> {
    /// The schedule of delays.
    ///
    /// Defaults to [`Exponential::default`].
    pub fn schedule<C>(self, schedule: C) -> BackoffLayer<C> {
        BackoffLayer {
            schedule,
            immediate_first_retry: self.immediate_first_retry,
            max_hint: self.max_hint,
            seed: self.seed,
        }
    }

    /// Whether the first retry after a connection failure (never sent, refused, or reset with an
    /// unknown outcome) goes out at once. The usual cause is a stale pooled connection, which a
    /// fresh connection fixes: waiting would only add latency. Later retries, and retries after
    /// an "unavailable" answer, follow the schedule.
    ///
    /// Defaults to `true`.
    pub fn immediate_first_retry(mut self, immediate: bool) -> Self {
        self.immediate_first_retry = immediate;
        self
    }

    /// The longest wait a server may ask for with `Retry-After` or `grpc-retry-pushback-ms`.
    /// A longer hint means no retry at all, not a shorter wait: the server said it will not be
    /// ready sooner.
    ///
    /// Defaults to 10 s.
    pub fn max_hint(mut self, max_hint: Duration) -> Self {
        self.max_hint = max_hint;
        self
    }

    /// A fixed seed for the jitter, the same for every request, so that delays are exact and
    /// repeatable (for tests). Without it, each request's jitter comes from the random seed in its
    /// [`AttemptRecord`](crate::attempt::AttemptRecord), so that clients that failed together do
    /// not retry together.
    ///
    /// Defaults to none.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }
}

impl<S, B: Clone> Layer<S> for BackoffLayer<B> {
    type Service = Backoff<S, B>;

    fn layer(&self, inner: S) -> Self::Service {
        Backoff::from_layer(inner, self.clone())
    }
}
