//! The pooled strategy, for hyper-util's legacy `Client`.

mod registry;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll};

use hyper_util::client::legacy::connect::{
    capture_connection, CaptureConnection, Connected, HttpInfo,
};
use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower::Layer;
use tower_service::Service;

use self::registry::{ConnectionId, Registry};
use super::host_map::HostId;
use super::layer::{FreshConnectionLayer, Pooled};
use super::policy::{ConnectionPolicy, StandardConnections};
use crate::classify::{ClassifyError, StandardClassifier};
use crate::diagnose::{self, Collector, ConnectionUse, Recorder, Watch};
use crate::trace::{self, event};

/// Keeps hyper-util's pool free of stale connections; made by [`FreshConnectionLayer::new`].
///
/// See the [module documentation](super) for what it does and what it costs.
///
/// # Idle siblings
///
/// After a failure the policy condemns on a connection that had been idle in the pool, the idle
/// connections to the same host that have been idle at least as long are retired with it
/// ([`ConnectionPolicy::evict_idle_siblings`]) when the failure looks like the peer dropping idle
/// connections (a restart, a NAT or load balancer that forgot or timed out its connections),
/// that is when:
///
/// * no other request to the host was in flight when the failed connection went idle, and none
///   started or got its response since (nothing shows the peer still knows its old
///   connections);
/// * or the failed connection was already idle when the host's previous such failure happened,
///   and no connection as old has completed a request since;
/// * or the failed connection sat idle at least 200 ms and no reused connection is known to have
///   worked after about as long.
///
/// Otherwise (an isolated reset while other requests to the host keep working) only the failed
/// connection is retired, so that a reset costs one new connection, as without this layer.
///
/// # Learning the idle timeout
///
/// With [`ConnectionPolicy::learn_idle_timeout`], a reset after an idle time of at least 200 ms is
/// taken as evidence of an idle timeout below it, and a reused connection that worked after an idle
/// time `s` as evidence against any reset after up to `s` plus a quarter (which it cancels). A
/// limit is learned from two resets that nothing contradicts: half the shortest, or the longest
/// idle time known to work when that is longer. So one isolated reset teaches nothing. Once the
/// learned limit has retired 16 connections, one connection past it is left to be reused, which
/// tests the limit: if it works, the resets it contradicts are cancelled (the limit rises or goes),
/// and if it is reset, the limit stays.
///
/// # Requests not safe to repeat
///
/// A request that is not safe to repeat ([`ConnectionPolicy::is_safe_to_repeat`]: by default a
/// method that is not idempotent, without an `Idempotency-Key`) cannot be retried if its
/// connection turns out to be stale, since it may have been processed. So, with
/// [`ConnectionPolicy::protect_unrepeatable`] (the default), once a reused connection to the
/// host has been reset after sitting idle for a time `t` of at least 200 ms, such a request
/// does not get a connection idle for half of `t` or more (or, when it is longer, for the
/// longest idle time after which a reused connection is known to have worked, or more): those
/// connections are retired before it checks one out, and it goes out on a connection used more
/// recently, or on a new one. One reset is evidence enough here (learning waits for two, since
/// its limit applies to every request). Requests safe to repeat keep
/// reusing those connections: if one is stale they are retried, and if it works it contradicts
/// the evidence (as for learning, a success after an idle time `s` cancels the resets after up
/// to `s` plus a quarter). The evidence lasts 10 minutes after the host's last such reset, so
/// that an isolated reset does not cost such requests a new connection each for ever. With no
/// such reset nothing changes: no connection is retired, none is opened.
///
/// What it cannot do: hyper-util's pool cannot skip a connection for one request only, so the
/// connections retired for such a request are gone for the requests after it too (they were
/// likely stale). The registry counts a connection idle from its last response head, so the
/// connection of a request still in flight can be taken for an idle one and retired with them
/// (it closes once that request ends). And the first stale failure, the one that gives the
/// evidence, still happens.
///
/// With learning, the connection left past a learned limit to test it is only ever given to a
/// request safe to repeat.
///
/// # What it forgets
///
/// A connection idle for 5 minutes (or for the policy's [`max_idle`](ConnectionPolicy::max_idle),
/// when that is longer) is forgotten when the next request to its host starts (before that
/// request checks a connection out), so that the connections the pool has long dropped are not
/// tracked for ever. At most 4096 hosts and 4096 connections are tracked: past that, the host
/// used least recently is forgotten with its connections (or, when that host is the one a request
/// just used, its connection idle longest), so a host in steady use keeps its record however many
/// others come and go. A request finds its host's record by a hash of its scheme and authority
/// (names that differ only in ASCII case are one host, as in hyper-util's pool) and looks at that
/// host's connections only: its cost does not grow with the number of hosts. Forgetting a
/// connection does not retire it unless a limit of the policy says so, or the evidence says its
/// host's connections are likely stale after as long (see above; once forgotten, it could no
/// longer be kept from a request not safe to repeat): with no limit and no such evidence, a
/// connection idle for an hour is reused as the pool would reuse it without this layer (and as
/// long as hyper-util's own `pool_idle_timeout` allows). A forgotten connection that is used again
/// is tracked afresh: its [`max_age`](ConnectionPolicy::max_age) and
/// [`max_requests`](ConnectionPolicy::max_requests)
/// count from that request.
pub struct FreshConnection<S, F = StandardConnections> {
    inner: S,
    shared: Arc<Shared<F>>,
    recorder: Option<Recorder>,
}

struct Shared<F> {
    policy: F,
    registry: Mutex<Registry>,
}

impl<S, F> FreshConnection<S, F> {
    fn with_policy(inner: S, policy: F, collector: Option<Collector>) -> Self {
        Self {
            inner,
            shared: Arc::new(Shared {
                policy,
                registry: Mutex::new(Registry::default()),
            }),
            recorder: collector.map(Recorder::new),
        }
    }

    /// The number of pooled connections currently tracked.
    pub fn tracked_connections(&self) -> usize {
        self.shared.registry().len()
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<F> Shared<F> {
    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        // The registry stays consistent whatever panicked while it was held: every update is a
        // single step on plain data.
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<S, F: Clone> Layer<S> for FreshConnectionLayer<Pooled, F> {
    type Service = FreshConnection<S, F>;

    /// Every service made by one call to `layer` has its own registry; clones of that service
    /// share it (as clones of a hyper-util `Client` share its pool).
    fn layer(&self, inner: S) -> Self::Service {
        FreshConnection::with_policy(inner, self.policy.clone(), self.collector.clone())
    }
}

impl<S, F, B, R> Service<http::Request<B>> for FreshConnection<S, F>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    B: http_body::Body,
    StandardClassifier: ClassifyError<S::Error>,
    F: ConnectionPolicy,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, F>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let started = Instant::now();
        let policy = &self.shared.policy;
        let repeatable = policy.is_safe_to_repeat(&request);
        let checkout = self.shared.registry().retire_before_checkout(
            request.uri(),
            started,
            policy,
            repeatable,
        );
        let retired = checkout.retired;
        if retired.for_unrepeatable > 0 {
            event!(
                debug,
                target: trace::CONNECTION,
                method = %request.method(),
                uri = %request.uri(),
                retired = retired.for_unrepeatable,
                stale_after_ms = retired.stale_after.map_or(0, |stale| stale.as_millis()),
                "idle connections retired before a request not safe to repeat"
            );
        }
        let capture = capture_connection(&mut request);
        let watch = self.recorder.as_mut().map(|recorder| {
            let body = http_body::Body::size_hint(request.body()).exact();
            recorder.start(
                request.uri(),
                body.or_else(|| diagnose::content_length(request.headers())),
            )
        });
        ResponseFuture {
            future: self.inner.call(request),
            tracking: Some(Tracking {
                shared: self.shared.clone(),
                capture,
                host: checkout.host,
                started,
                watch,
                ended: false,
            }),
        }
    }
}

struct Tracking<F> {
    shared: Arc<Shared<F>>,
    capture: CaptureConnection,
    /// Where the registry keeps the record of the request's host (`None`: it keeps none).
    host: Option<HostId>,
    started: Instant,
    watch: Option<Watch>,
    /// Whether the registry was told that the request ended.
    ended: bool,
}

impl<F> Drop for Tracking<F> {
    /// A request whose end the registry did not record (an error that condemns nothing, a
    /// connector without addresses, a response future dropped before it ended) still ends.
    fn drop(&mut self) {
        if let (false, Some(host)) = (self.ended, self.host) {
            self.shared.registry().ended(host);
        }
    }
}

pin_project! {
    /// The response future of [`FreshConnection`].
    pub struct ResponseFuture<Fut, F> {
        #[pin]
        future: Fut,
        tracking: Option<Tracking<F>>,
    }
}

impl<Fut, F, R, E> Future for ResponseFuture<Fut, F>
where
    Fut: Future<Output = Result<http::Response<R>, E>>,
    StandardClassifier: ClassifyError<E>,
    F: ConnectionPolicy,
{
    type Output = Fut::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.future.poll(cx));
        if let Some(tracking) = this.tracking.take() {
            tracking.record(&result);
        }
        Poll::Ready(result)
    }
}

impl<F: ConnectionPolicy> Tracking<F> {
    fn record<R, E>(mut self, result: &Result<http::Response<R>, E>)
    where
        StandardClassifier: ClassifyError<E>,
    {
        let now = Instant::now();
        let policy = &self.shared.policy;
        match result {
            Ok(response) => {
                let Some(info) = response.extensions().get::<HttpInfo>() else {
                    // A connector that does not report its addresses: nothing to track by.
                    if let Some(watch) = self.watch.take() {
                        watch.succeeded(None);
                    }
                    return;
                };
                let id = ConnectionId {
                    local: info.local_addr(),
                    remote: info.remote_addr(),
                };
                let wants_learned = self.watch.is_some() && policy.learn_idle_timeout();
                let (facts, learned) = match self.host {
                    Some(host) => {
                        self.ended = true;
                        let mut registry = self.shared.registry();
                        let facts = self
                            .watch
                            .as_ref()
                            .and_then(|_| registry.facts(host, id, self.started));
                        registry.completed(host, id, &self.capture, self.started, now, policy);
                        let learned = wants_learned.then(|| registry.learned_idle(host, policy));
                        (facts, learned)
                    }
                    None => (None, wants_learned.then_some(None)),
                };
                if let Some(watch) = self.watch.take() {
                    if let Some(learned) = learned {
                        watch.learned(learned);
                    }
                    watch.succeeded(facts);
                }
            }
            Err(error) => {
                let class = StandardClassifier::new().classify_error(error);
                let failure = class.filter(|class| policy.condemns(*class));
                let id = {
                    let metadata = self.capture.connection_metadata();
                    metadata.as_ref().map(|connected| {
                        if failure.is_some() {
                            connected.poison();
                        }
                        connection_id(connected)
                    })
                };
                // The connection's facts, read before the registry lets go of it.
                let diagnosis = match (class, self.watch.take()) {
                    (Some(class), Some(watch)) => Some((class, watch, self.connection_use(id))),
                    _ => None,
                };
                // Without a connection (the request never got one) there is none to condemn.
                if let (Some(failure), Some(id)) = (failure, id) {
                    let retired = self.host.map_or(0, |host| {
                        self.ended = true;
                        self.shared
                            .registry()
                            .condemned(id, host, self.started, policy)
                    });
                    event!(
                        info,
                        target: trace::CONNECTION,
                        %failure,
                        idle_siblings_retired = retired,
                        "connection condemned and poisoned"
                    );
                }
                if let Some((class, watch, connection)) = diagnosis {
                    if policy.learn_idle_timeout() {
                        let learned = self
                            .host
                            .and_then(|host| self.shared.registry().learned_idle(host, policy));
                        watch.learned(learned);
                    }
                    watch.failed(class, connection);
                }
            }
        }
    }
}

impl<F> Tracking<F> {
    /// Which connection a failed request was on, for the diagnosis: `id` is `None` when the
    /// request got no connection, `Some(None)` when the connector reports no addresses.
    fn connection_use(&self, id: Option<Option<ConnectionId>>) -> ConnectionUse {
        let Some(id) = id else {
            return ConnectionUse::NoConnection;
        };
        let port = id.map(|id| id.local.port());
        let facts = match (id, self.host) {
            (Some(id), Some(host)) => self.shared.registry().facts(host, id, self.started),
            _ => None,
        };
        match facts {
            Some(facts) => ConnectionUse::Reused { port, facts },
            None => ConnectionUse::New { port },
        }
    }
}

/// The addresses of a captured connection, when its connector reports them.
fn connection_id(connected: &Connected) -> Option<ConnectionId> {
    let mut extensions = http::Extensions::new();
    connected.get_extras(&mut extensions);
    let info = extensions.get::<HttpInfo>()?;
    Some(ConnectionId {
        local: info.local_addr(),
        remote: info.remote_addr(),
    })
}

impl<S: Clone, F> Clone for FreshConnection<S, F> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
            recorder: self.recorder.clone(),
        }
    }
}

impl<S: fmt::Debug, F: fmt::Debug> fmt::Debug for FreshConnection<S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FreshConnection")
            .field("inner", &self.inner)
            .field("policy", &self.shared.policy)
            .field("tracked_connections", &self.tracked_connections())
            .field("diagnose", &self.recorder.is_some())
            .finish()
    }
}

impl<Fut, F> fmt::Debug for ResponseFuture<Fut, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("tracking", &self.tracking.is_some())
            .finish()
    }
}
