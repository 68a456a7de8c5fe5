use super::policy::StandardConnections;
use crate::diagnose::Collector;

/// Applies a fresh-connection strategy to a service: an attempt that follows a reset never goes
/// out on a stale connection, and connections are retired by age, idle time and use.
///
/// One layer, three strategies, chosen by the constructor, because clients hold their
/// connections in three different ways:
///
/// | constructor | strategy | for | service |
/// |---|---|---|---|
/// | [`new`](FreshConnectionLayer::new) | **pooled**: poisons connections in the client's own pool | hyper-util's legacy `Client` and clients built on it (feature `hyper-util`) | [`FreshConnection`](super::FreshConnection) |
/// | [`reconnect`](FreshConnectionLayer::reconnect) | **reconnect**: drops the connection service and makes a new one | single-connection services from any `MakeService`: hyper `client::conn`, a tonic `Endpoint` | [`Reconnect`](super::Reconnect) |
/// | [`detour`](FreshConnectionLayer::detour) | **detour**: sends an attempt that follows a reset to a second service that never reuses connections | clients that hide their pool, such as reqwest | [`Detour`](super::Detour) |
///
/// The [`ConnectionPolicy`](super::policy::ConnectionPolicy) (by default [`StandardConnections`])
/// says which failures condemn a connection and sets the limits; set it with
/// [`policy`](FreshConnectionLayer::policy).
#[derive(Debug, Clone)]
pub struct FreshConnectionLayer<K = Pooled, F = StandardConnections> {
    pub(super) strategy: K,
    pub(super) policy: F,
    /// Fed by the pooled strategy (see `FreshConnectionLayer::diagnose`).
    #[cfg_attr(not(feature = "hyper-util"), allow(dead_code))]
    pub(super) collector: Option<Collector>,
}

/// The pooled strategy: see [`FreshConnectionLayer::new`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Pooled {
    _priv: (),
}

/// The reconnect strategy and the target its `MakeService` connects to: see
/// [`FreshConnectionLayer::reconnect`].
#[derive(Debug, Clone)]
pub struct ReconnectTo<T> {
    pub(super) target: T,
}

/// The detour strategy and the service it detours to: see [`FreshConnectionLayer::detour`].
#[derive(Debug, Clone)]
pub struct DetourTo<D> {
    pub(super) detour: D,
}

#[cfg(feature = "hyper-util")]
impl FreshConnectionLayer {
    /// The pooled strategy with the [`StandardConnections`] policy, for hyper-util's legacy
    /// `Client` (and anything built on it).
    ///
    /// Each request's connection is captured (`capture_connection`); after a reset the
    /// connection is poisoned, so the pool drops it, and so are the idle connections to the same
    /// host that have been idle at least as long when the peer seems to have dropped idle
    /// connections (after a server restart they are all dead, and the pool would otherwise hand
    /// them out one failure at a time; see [`FreshConnection`](crate::FreshConnection) for how
    /// this is told from an isolated reset). The policy's age, idle and request limits are
    /// enforced the same way, by poisoning a connection before it can be checked out again.
    ///
    /// The same as [`pooled`](FreshConnectionLayer::pooled), under the name the recommended
    /// stack uses.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower::ServiceBuilder;
    /// use tower_reset::{BackoffLayer, FreshConnectionLayer, ResetRetryLayer};
    ///
    /// let stack = ServiceBuilder::new()
    ///     .layer(ResetRetryLayer::new())
    ///     .layer(BackoffLayer::new())
    ///     .layer(FreshConnectionLayer::new());
    /// # let _ = stack;
    /// ```
    pub fn new() -> Self {
        Self::pooled()
    }

    /// The pooled strategy with the [`StandardConnections`] policy: the explicit name of
    /// [`new`](FreshConnectionLayer::new), beside [`reconnect`](FreshConnectionLayer::reconnect)
    /// and [`detour`](FreshConnectionLayer::detour).
    ///
    /// It adds to hyper-util's pool what the pool lacks (its own `pool_idle_timeout` already
    /// bounds how long a connection sits idle): a maximum age and a maximum number of requests
    /// per connection, the retirement of a stale connection's idle siblings, learning a peer's
    /// idle timeout, and keeping requests that are not safe to repeat off connections likely to
    /// be stale (see [`FreshConnection`](crate::FreshConnection)).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_reset::fresh_connection::policy::StandardConnections;
    /// use tower_reset::FreshConnectionLayer;
    ///
    /// let policy = StandardConnections::builder()
    ///     .max_age(Duration::from_secs(300))
    ///     .build()?;
    /// let layer = FreshConnectionLayer::pooled().policy(policy);
    /// # let _ = layer;
    /// # Ok::<(), tower_reset::ConfigError>(())
    /// ```
    pub fn pooled() -> Self {
        Self {
            strategy: Pooled { _priv: () },
            policy: StandardConnections::new(),
            collector: None,
        }
    }
}

#[cfg(feature = "hyper-util")]
impl Default for FreshConnectionLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> FreshConnectionLayer<ReconnectTo<T>> {
    /// The reconnect strategy: the layer wraps a `MakeService` and keeps one connection service
    /// made for `target`, which it drops and makes anew after a reset or when the policy says
    /// it is too old, too idle or too used.
    pub fn reconnect(target: T) -> Self {
        Self {
            strategy: ReconnectTo { target },
            policy: StandardConnections::new(),
            collector: None,
        }
    }
}

impl<D> FreshConnectionLayer<DetourTo<D>> {
    /// The detour strategy: an attempt that follows a failure the policy condemns goes to
    /// `detour`, a service built never to reuse connections (for reqwest:
    /// `pool_max_idle_per_host(0)`), instead of the wrapped one, whose pool may still hold the
    /// stale connection.
    pub fn detour(detour: D) -> Self {
        Self {
            strategy: DetourTo { detour },
            policy: StandardConnections::new(),
            collector: None,
        }
    }
}

impl<K, F> FreshConnectionLayer<K, F> {
    /// The connection policy.
    ///
    /// Defaults to [`StandardConnections::new`]: resets condemn, idle siblings are retired,
    /// requests not safe to repeat are kept off connections likely to be stale, no limits.
    pub fn policy<G>(self, policy: G) -> FreshConnectionLayer<K, G> {
        FreshConnectionLayer {
            strategy: self.strategy,
            policy,
            collector: self.collector,
        }
    }
}

#[cfg(feature = "hyper-util")]
impl<F> FreshConnectionLayer<Pooled, F> {
    /// Feeds `collector` with every connection failure this layer sees, and the facts of its
    /// connection: reused or new, idle time, age, requests carried; plus a few counters per
    /// request (see [`diagnose`](crate::diagnose)). Read the diagnosis with
    /// [`Collector::report`].
    ///
    /// Defaults to no collector.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_reset::diagnose::Collector;
    /// use tower_reset::FreshConnectionLayer;
    ///
    /// let collector = Collector::new();
    /// let layer = FreshConnectionLayer::new().diagnose(collector.clone());
    /// # let _ = layer;
    /// println!("{}", collector.report());
    /// ```
    pub fn diagnose(mut self, collector: Collector) -> Self {
        self.collector = Some(collector);
        self
    }
}
