use std::sync::Arc;
use std::time::Duration;

use tower::Layer;

use super::policy::Exponential;
use super::ride_out::Registry;
use super::{Backoff, RideOut, RideOutStatus};

/// Applies [`Backoff`] to a service: each retry waits before it goes out.
///
/// `BackoffLayer::new()` gives the standard behaviour: an [`Exponential`] schedule (50 ms
/// doubling to 2 s, full jitter), the first retry after a connection failure sent at once,
/// server hints honoured up to 10 s, and requests to a host that refuses connections held for
/// up to 2 s behind one probe ([`RideOut::new`]). Place it inside
/// [`ResetRetryLayer`](crate::ResetRetryLayer), which gives each retry the
/// [`AttemptRecord`](crate::attempt::AttemptRecord) this layer reads.
///
/// Every service the layer makes, and every clone of the layer, shares one record of the hosts
/// that refuse connections (see [`RideOut`]); a layer made by another call to `new` has its
/// own.
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
    /// The hosts that refuse connections, and the ride-out settings; `None` when riding out is
    /// off. (Behind the `Arc`, so that the service `ResetRetry` clones for each retryable
    /// request stays small.)
    pub(super) registry: Option<Arc<Registry>>,
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
            registry: registry(RideOut::new(), None),
        }
    }
}

/// A record of the hosts that refuse connections, unless riding out is off.
fn registry(ride_out: RideOut, seed: Option<u64>) -> Option<Arc<Registry>> {
    (!ride_out.is_off()).then(|| Arc::new(Registry::new(ride_out, seed)))
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
            registry: self.registry,
        }
    }

    /// Whether the first retry after a connection failure (never sent, refused, or reset with an
    /// unknown outcome) goes out at once. The usual cause is a stale pooled connection, which a
    /// fresh connection fixes: waiting would only add latency. Later retries, and retries after
    /// an "unavailable" answer, follow the schedule. After a connection *refused* (nothing
    /// listens), the retry waits for the host instead, unless riding out is off (see
    /// [`ride_out`](Self::ride_out)).
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
    /// The seed also fixes the jitter of the ride-out's probes and releases (see
    /// [`ride_out`](Self::ride_out)).
    ///
    /// Defaults to none.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self.registry = registry(self.ride_out_settings(), self.seed);
        self
    }

    /// How requests to a host that refuses connections wait for it: for how long, behind which
    /// probes, how many, released how (see [`RideOut`]). [`RideOut::off`] turns it off: such
    /// requests then fail, or are retried, as any never-sent request.
    ///
    /// The layer gets a new, empty record of the hosts that refuse connections, shared by the
    /// services it makes from now on.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_reset::backoff::RideOut;
    /// use tower_reset::BackoffLayer;
    ///
    /// # fn main() -> Result<(), tower_reset::ConfigError> {
    /// let layer = BackoffLayer::new()
    ///     .ride_out(RideOut::builder().window(Duration::from_millis(500)).build()?);
    /// assert_eq!(layer.ride_out_settings().window(), Duration::from_millis(500));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Defaults to [`RideOut::new`]: a 2 s window.
    pub fn ride_out(mut self, ride_out: RideOut) -> Self {
        self.registry = registry(ride_out, self.seed);
        self
    }

    /// The ride-out settings.
    pub fn ride_out_settings(&self) -> RideOut {
        self.registry
            .as_ref()
            .map_or_else(RideOut::off, |registry| registry.config())
    }

    /// How many hosts refuse connections and how many requests wait for them now, over every
    /// service this layer made (and its clones).
    pub fn ride_out_status(&self) -> RideOutStatus {
        self.registry
            .as_ref()
            .map_or_else(RideOutStatus::default, |registry| registry.status())
    }
}

impl<S, B: Clone> Layer<S> for BackoffLayer<B> {
    type Service = Backoff<S, B>;

    fn layer(&self, inner: S) -> Self::Service {
        Backoff::from_layer(inner, self.clone())
    }
}
