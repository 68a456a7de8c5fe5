//! The reconnect strategy, for single-connection services made by a `MakeService`.
//!
//! The module is private: its user documentation is on [`Reconnect`], which is re-exported by
//! [`fresh_connection`](super).

mod future;

pub use self::future::ReconnectFuture;

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tower::{BoxError, Layer};
use tower_service::Service;

use self::future::Tracker;
use super::layer::{FreshConnectionLayer, ReconnectTo};
use super::policy::{ConnectionPolicy, StandardConnections};
use crate::classify::{ClassifyError, StandardClassifier};
use crate::trace::{self, event};

/// Keeps one connection made by a `MakeService`, and replaces it after a reset or when it is
/// too old, too idle or too used; made by [`FreshConnectionLayer::reconnect`].
///
/// Some clients are one connection: a hyper `client::conn` `SendRequest`, a `Channel` made by
/// a tonic `Endpoint`, a database or RPC session. Nothing replaces such a connection when it
/// goes bad: after a reset, requests keep failing on it until someone makes a new one.
/// `Reconnect` is that someone. It wraps the `MakeService` `M` (a [`Service`] from the target
/// `T`, such as an address, to a connection service) and keeps one connection made for the
/// target, which it drops and makes anew:
///
/// * after a failure that the [`ConnectionPolicy`] `F` [condemns](ConnectionPolicy::condemns) (by
///   default a reset or a close with an unknown outcome), as classified by the
///   [`StandardClassifier`];
/// * when the connection is past one of the policy's limits: [`max_age`](ConnectionPolicy::max_age)
///   (counted from when the connection was made), [`max_idle`](ConnectionPolicy::max_idle) (since
///   its last response; a connection with a request in flight is not idle) or
///   [`max_requests`](ConnectionPolicy::max_requests) (requests sent on it);
/// * when the connection says it is closed: its `poll_ready` fails after it carried requests,
///   as hyper's `SendRequest::poll_ready` does once the server closed the connection.
///
/// All of this happens in `poll_ready`, before the connection would be used; the first
/// connection is made by the first `poll_ready`. A request is only ever sent on the connection
/// that was just polled ready. Responses never condemn a connection (a `503` proves that the
/// connection works), and neither do failures that the classifier does not recognise (a
/// timeout, a TLS error, an application error) or whose class the policy does not condemn.
///
/// [`evict_idle_siblings`](ConnectionPolicy::evict_idle_siblings) and
/// [`learn_idle_timeout`](ConnectionPolicy::learn_idle_timeout) do not apply: a single connection
/// has no siblings, and no history of idle times to learn from. Nor does
/// [`protect_unrepeatable`](ConnectionPolicy::protect_unrepeatable): the connection is chosen in
/// `poll_ready`, before the request is known; set [`max_idle`](ConnectionPolicy::max_idle) below
/// the peer's idle timeout instead.
///
/// # Errors
///
/// As with tower's own `Reconnect`, the error is a [`BoxError`]: the connection's errors are
/// boxed as they are (`downcast_ref` finds the original error), and so are the
/// `MakeService`'s.
///
/// A failed connect is **not** returned by `poll_ready`. `poll_ready` returns ready, the next
/// call's future fails with the connect error, and the `poll_ready` after that connects again.
/// This lets a retry layer above see the connect error as a failed request (a refused
/// connection never carried the request, so [`ResetRetry`](crate::ResetRetry) may send any
/// request again), and keeps a tower `Buffer` above alive: a `Buffer` fails for good once its
/// service's `poll_ready` fails. A new connection whose `poll_ready` fails before it carried a
/// request is reported the same way. Only an error of the `MakeService`'s own `poll_ready` is
/// returned by `poll_ready`.
///
/// # With the other layers
///
/// `Reconnect` owns its connection, so it is not `Clone`, while
/// [`ResetRetry`](crate::ResetRetry) and [`Backoff`](crate::Backoff) need a `Clone` service
/// for their retries. Put a tower `Buffer` between them (tonic's `Channel` is a buffer over a
/// reconnecting service too): the buffer's clones share the one connection, and its worker
/// keeps the readiness discipline.
///
/// # Cost
///
/// One allocation per connection (the connecting future is boxed, so that `MakeService`s
/// written with `async` blocks need not be `Unpin`; the connection's shared state is
/// allocated), none per request: each request clones one `Arc`, updates three atomics and reads
/// the clock once, when it ends.
///
/// # Examples
///
/// ```
/// use std::convert::Infallible;
/// use std::time::Duration;
/// use tower::{service_fn, BoxError, Layer, Service, ServiceExt};
/// use tower_reset::fresh_connection::policy::StandardConnections;
/// use tower_reset::FreshConnectionLayer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), BoxError> {
/// // The `MakeService`: from a target to a connection service. With hyper, it would connect
/// // a `TcpStream`, run `client::conn::http1::handshake`, spawn the connection task and
/// // return a service that sends requests on the `SendRequest`.
/// let maker = service_fn(|target: &'static str| async move {
///     let connection = service_fn(move |request: String| async move {
///         Ok::<_, std::io::Error>(format!("{target} answered {request}"))
///     });
///     Ok::<_, Infallible>(connection)
/// });
///
/// let policy = StandardConnections::builder()
///     .max_age(Duration::from_secs(300))
///     .max_requests(1000)
///     .build()?;
/// let mut service = FreshConnectionLayer::reconnect("db-1")
///     .policy(policy)
///     .layer(maker);
///
/// let answer = service.ready().await?.call("ping".to_owned()).await?;
/// assert_eq!(answer, "db-1 answered ping");
/// assert!(service.is_connected());
/// # Ok(())
/// # }
/// ```
///
/// Under [`ResetRetry`](crate::ResetRetry), through a `Buffer` (tower's `buffer` feature):
///
/// ```
/// use std::convert::Infallible;
/// use tower::{service_fn, BoxError, Service, ServiceBuilder, ServiceExt};
/// use tower_reset::{FreshConnectionLayer, ResetRetryLayer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), BoxError> {
/// let maker = service_fn(|_target: &'static str| async move {
///     let connection = service_fn(|_request: http::Request<String>| async move {
///         Ok::<_, std::io::Error>(http::Response::new("hello".to_owned()))
///     });
///     Ok::<_, Infallible>(connection)
/// });
///
/// let mut service = ServiceBuilder::new()
///     .layer(ResetRetryLayer::new())
///     .buffer(1024)
///     .layer(FreshConnectionLayer::reconnect("backend:80"))
///     .service(maker);
///
/// let request = http::Request::get("/").body(String::new())?;
/// let response = service.ready().await?.call(request).await?;
/// assert_eq!(response.body(), "hello");
/// # Ok(())
/// # }
/// ```
pub struct Reconnect<M, T, F = StandardConnections>
where
    M: Service<T>,
{
    maker: M,
    target: T,
    policy: Arc<F>,
    state: State<M::Future, M::Response, F>,
    /// A connect error waiting for the next `call`; `poll_ready` returned ready to deliver it.
    error: Option<BoxError>,
}

enum State<Fut, S, F> {
    /// No connection: the next `poll_ready` makes one.
    Idle,
    /// The `MakeService` was called; boxed so that `Reconnect` need not be pinned.
    Connecting(Pin<Box<Fut>>),
    Connected(Connection<S, F>),
}

/// A connection service and what is known about it.
struct Connection<S, F> {
    service: S,
    /// Shared with the response futures of the requests it carried.
    health: Arc<Health<F>>,
    /// The requests it was given.
    requests: u32,
}

/// The state of one connection that its response futures update.
pub(super) struct Health<F> {
    policy: Arc<F>,
    /// When the connection was made.
    made: Instant,
    /// Set by a response future whose failure the policy condemns.
    condemned: AtomicBool,
    /// Requests sent on the connection whose response future has not ended.
    in_flight: AtomicUsize,
    /// When the last request ended, in nanoseconds after `made`; 0 before the first.
    last_done: AtomicU64,
}

impl<M, T> Reconnect<M, T>
where
    M: Service<T>,
{
    /// Wraps the `MakeService` `maker`, which will be called with `target` for each connection,
    /// with the [`StandardConnections`] policy. The first connection is made by the first
    /// `poll_ready`.
    pub fn new(maker: M, target: T) -> Self {
        Self::with_policy(maker, target, StandardConnections::new())
    }
}

impl<M, T, F> Reconnect<M, T, F>
where
    M: Service<T>,
{
    fn with_policy(maker: M, target: T, policy: F) -> Self {
        Self {
            maker,
            target,
            policy: Arc::new(policy),
            state: State::Idle,
            error: None,
        }
    }

    /// Returns `true` when a connection is made and not yet dropped (it may still be retired by
    /// the next `poll_ready`).
    pub fn is_connected(&self) -> bool {
        matches!(self.state, State::Connected(_))
    }

    /// The target connections are made for.
    pub fn target(&self) -> &T {
        &self.target
    }

    /// The `MakeService`.
    pub fn get_ref(&self) -> &M {
        &self.maker
    }

    /// The `MakeService`, mutably.
    pub fn get_mut(&mut self) -> &mut M {
        &mut self.maker
    }

    /// Unwraps the `MakeService`, dropping the connection.
    pub fn into_inner(self) -> M {
        self.maker
    }
}

impl<M, T, F> Layer<M> for FreshConnectionLayer<ReconnectTo<T>, F>
where
    M: Service<T>,
    T: Clone,
    F: Clone,
{
    type Service = Reconnect<M, T, F>;

    /// Each service made by this layer makes and keeps its own connection.
    fn layer(&self, maker: M) -> Self::Service {
        Reconnect::with_policy(maker, self.strategy.target.clone(), self.policy.clone())
    }
}

impl<M, T, F, S, Req> Service<Req> for Reconnect<M, T, F>
where
    M: Service<T, Response = S>,
    M::Error: Into<BoxError>,
    S: Service<Req>,
    S::Error: Into<BoxError>,
    StandardClassifier: ClassifyError<S::Error>,
    T: Clone,
    F: ConnectionPolicy,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ReconnectFuture<S::Future, F>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.error.is_some() {
            // Ready was granted to deliver a connect error through `call`; it stays granted.
            return Poll::Ready(Ok(()));
        }
        // A connection made during this very call is as fresh as can be: it is never retired by
        // a limit (a policy with a zero limit would otherwise reconnect forever, here).
        let mut made_now = false;
        loop {
            match &mut self.state {
                State::Idle => {
                    ready!(self.maker.poll_ready(cx)).map_err(Into::<BoxError>::into)?;
                    // The maker was polled ready just above: it is the one called.
                    let connecting = self.maker.call(self.target.clone());
                    self.state = State::Connecting(Box::pin(connecting));
                }
                State::Connecting(connecting) => match ready!(connecting.as_mut().poll(cx)) {
                    Ok(service) => {
                        event!(debug, target: trace::CONNECTION, "connection made");
                        made_now = true;
                        self.state = State::Connected(Connection::new(service, &self.policy));
                    }
                    Err(error) => {
                        let error = error.into();
                        event!(debug, target: trace::CONNECTION, %error, "connect failed; the next call returns the error");
                        self.state = State::Idle;
                        self.error = Some(error);
                        return Poll::Ready(Ok(()));
                    }
                },
                State::Connected(connection) => {
                    if !made_now {
                        if let Some(reason) = connection.retirement(&*self.policy) {
                            event!(debug, target: trace::CONNECTION, reason, "connection retired; reconnecting");
                            self.state = State::Idle;
                            continue;
                        }
                    }
                    match connection.service.poll_ready(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Ok(())) => return Poll::Ready(Ok(())),
                        Poll::Ready(Err(error)) => {
                            let unused = connection.requests == 0;
                            self.state = State::Idle;
                            if unused {
                                // A new connection that fails before carrying anything failed
                                // to connect: reported like a connect error, and not retried
                                // here, so that a peer that closes every connection at once
                                // cannot keep this loop spinning.
                                let error = error.into();
                                event!(debug, target: trace::CONNECTION, %error, "new connection failed before its first request");
                                self.error = Some(error);
                                return Poll::Ready(Ok(()));
                            }
                            // A used connection that reports itself closed went stale: what
                            // reconnecting is for. Its error is not the caller's business.
                            let error: BoxError = error.into();
                            event!(debug, target: trace::CONNECTION, %error, "connection closed; reconnecting");
                        }
                    }
                }
            }
        }
    }

    fn call(&mut self, request: Req) -> Self::Future {
        if let Some(error) = self.error.take() {
            return ReconnectFuture::failed(error);
        }
        let State::Connected(connection) = &mut self.state else {
            return ReconnectFuture::failed(NotReady.into());
        };
        connection.requests = connection.requests.saturating_add(1);
        let tracker = Tracker::start(connection.health.clone());
        // `poll_ready` returned ready after polling this very connection ready (a connection
        // replaced since would have had to be polled ready again first), so it may be called.
        let future = connection.service.call(request);
        ReconnectFuture::called(future, tracker)
    }
}

impl<S, F: ConnectionPolicy> Connection<S, F> {
    fn new(service: S, policy: &Arc<F>) -> Self {
        Self {
            service,
            health: Arc::new(Health {
                policy: policy.clone(),
                made: Instant::now(),
                condemned: AtomicBool::new(false),
                in_flight: AtomicUsize::new(0),
                last_done: AtomicU64::new(0),
            }),
            requests: 0,
        }
    }

    /// Why this connection must not carry another request, if it must not.
    fn retirement(&self, policy: &F) -> Option<&'static str> {
        let health = &*self.health;
        if health.condemned.load(Ordering::Acquire) {
            return Some("condemned");
        }
        if policy
            .max_requests()
            .is_some_and(|max| self.requests >= max)
        {
            return Some("max_requests");
        }
        let (max_age, max_idle) = (policy.max_age(), policy.max_idle());
        if max_age.is_none() && max_idle.is_none() {
            return None;
        }
        let now = Instant::now();
        if max_age.is_some_and(|max| now.saturating_duration_since(health.made) >= max) {
            return Some("max_age");
        }
        if max_idle.is_some_and(|max| health.idle(now).is_some_and(|idle| idle >= max)) {
            return Some("max_idle");
        }
        None
    }
}

impl<F> Health<F> {
    /// How long the connection has been idle at `now`; `None` while a request is in flight.
    fn idle(&self, now: Instant) -> Option<Duration> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let last_done = Duration::from_nanos(self.last_done.load(Ordering::Acquire));
        let idle_since = self.made.checked_add(last_done).unwrap_or(self.made);
        Some(now.saturating_duration_since(idle_since))
    }

    /// A request was sent on the connection.
    pub(super) fn started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    /// A request sent on the connection ended (or its future was dropped), at `now`.
    pub(super) fn ended(&self, now: Instant) {
        let since_made = now.saturating_duration_since(self.made).as_nanos();
        let since_made = u64::try_from(since_made).unwrap_or(u64::MAX);
        self.last_done.fetch_max(since_made, Ordering::AcqRel);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// Marks the connection condemned: the next `poll_ready` drops it.
    pub(super) fn condemn(&self) {
        self.condemned.store(true, Ordering::Release);
    }

    pub(super) fn policy(&self) -> &F {
        &self.policy
    }
}

/// The error of a `call` that came without a successful `poll_ready` first.
#[derive(Debug)]
struct NotReady;

impl fmt::Display for NotReady {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Reconnect::call without a connection: poll_ready must return ready first")
    }
}

impl Error for NotReady {}

impl<M, T, F> fmt::Debug for Reconnect<M, T, F>
where
    M: Service<T> + fmt::Debug,
    T: fmt::Debug,
    F: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reconnect")
            .field("maker", &self.maker)
            .field("target", &self.target)
            .field("policy", &self.policy)
            .field("state", &self.state)
            .field("error", &self.error)
            .finish()
    }
}

impl<Fut, S, F> fmt::Debug for State<Fut, S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            State::Idle => f.write_str("Idle"),
            State::Connecting(_) => f.write_str("Connecting"),
            State::Connected(connection) => f
                .debug_struct("Connected")
                .field("requests", &connection.requests)
                .field(
                    "in_flight",
                    &connection.health.in_flight.load(Ordering::Relaxed),
                )
                .field(
                    "condemned",
                    &connection.health.condemned.load(Ordering::Relaxed),
                )
                .finish(),
        }
    }
}
