//! The detour strategy, for clients that hide their pool (reqwest). The documentation is on
//! [`Detour`], since this module is private.

mod future;
mod hosts;

pub use self::future::DetourFuture;

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::time::Instant;
use tower::Layer;
use tower_service::Service;

use self::future::Watch;
use self::hosts::Hosts;
use super::layer::{DetourTo, FreshConnectionLayer};
use super::policy::{ConnectionPolicy, StandardConnections};
use crate::attempt::{AttemptRecord, AttemptRequest};
use crate::classify::{ClassifyError, StandardClassifier};
use crate::trace::{self, event};

/// Sends an attempt that follows a reset to a second service that never reuses connections;
/// made by [`FreshConnectionLayer::detour`].
///
/// # When to use it
///
/// Some clients keep their connections where no middleware can reach them: a `reqwest::Client`
/// wraps hyper-util's pool but offers no way to capture or poison a connection, so the
/// pooled strategy (`FreshConnectionLayer::new`) cannot work, and it is not made by a
/// `MakeService`, so the [reconnect](FreshConnectionLayer::reconnect) strategy cannot either.
/// What remains is to *go around* the pool: build a second client that never keeps a connection
/// (for reqwest, `pool_max_idle_per_host(0)`), and send the attempt that follows a reset to it.
/// That attempt is certain to go out on a new connection, whatever the first client's pool
/// still holds.
///
/// A request goes to the detour service `D` when its [`AttemptRecord`] says the previous attempt
/// failed in a way the policy [condemns](ConnectionPolicy::condemns) (with the
/// [`StandardConnections`] policy: a reset or an unexpected close,
/// [`UnknownOutcome`](crate::classify::FailureClass::UnknownOutcome)), and so does a request not
/// safe to repeat when the primary's pool is likely stale (below). Every other request goes to
/// the primary service `S`: first attempts, and retries after a refused connection or an h2
/// refusal, so the primary keeps reusing its connections for everything else. Put it below
/// [`ResetRetryLayer`](crate::ResetRetryLayer), which writes the record.
///
/// # Requests not safe to repeat
///
/// A request that is not safe to repeat ([`ConnectionPolicy::is_safe_to_repeat`]: by default a
/// method that is not idempotent, without an `Idempotency-Key`) cannot be retried if its pooled
/// connection turns out to be stale. With [`ConnectionPolicy::protect_unrepeatable`] (the
/// default), such a request goes to the detour service, on a new connection, when the primary's
/// pooled connections to its host are likely stale.
///
/// reqwest does not say which connection a request used, nor how long it sat idle; what this
/// strategy sees is the host: the time since its last request through the primary got its
/// response (its *quiet time*), for which every connection in the primary's pool has been idle
/// (about: a connection whose response body was still streaming went back to the pool later).
/// A request through the primary that was alone (no other request to the host in flight, and
/// the last one that ended got its response, so its connection is the one the pool hands out)
/// and fails in a way the policy condemns after a quiet time `t` of at least 200 ms is evidence:
/// from then on a request not safe to repeat is detoured when the host has been quiet for half
/// of `t` or more (or for longer than the longest quiet time after which such a request
/// worked). Requests safe to repeat still go to the primary, and their successes contradict the
/// evidence as they do for the [pooled strategy](crate::FreshConnection). The evidence lasts 10
/// minutes after the last such failure. With no evidence nothing is detoured.
///
/// What it cannot do, since it sees the host and not the connections: while other requests to
/// the host are in flight or were just answered, the host is not quiet, and a request not safe
/// to repeat goes to the primary even when the pool also holds older connections that are
/// stale; requests that overlap give no evidence; a success on a connection the pool opened
/// anew (after the server closed the old one) counts as a reused connection that worked; and
/// the stale connections stay in the primary's pool, where requests safe to repeat meet them
/// (and are retried). For a precise account, use hyper-util's client with the pooled strategy.
///
/// # Limits
///
/// * The policy's age, idle and request limits, and the retirement of idle siblings, need the
///   pool: this strategy cannot enforce them. It consults [`ConnectionPolicy::condemns`],
///   [`protect_unrepeatable`](ConnectionPolicy::protect_unrepeatable) and
///   [`is_safe_to_repeat`](ConnectionPolicy::is_safe_to_repeat) only. Set the client's own
///   limits instead (reqwest: `pool_idle_timeout` below the server's idle timeout).
/// * Stale connections left in the primary's pool are still handed out to later first attempts:
///   each such request pays one failed attempt before its detour (a connection that failed is
///   not reused, so each stale connection fails once).
/// * Every detoured attempt opens a connection (a TCP handshake, and a TLS one for `https`).
///   That is the point, and it is paid only after a reset, or for a request not safe to repeat
///   while the evidence says the pool is likely stale.
///
/// # Readiness
///
/// [`poll_ready`](Service::poll_ready) polls the primary only: it is the service that takes
/// nearly every request. A detoured request is sent to a clone of the detour service, which the
/// response future polls ready before calling it; the primary keeps the readiness it was given
/// for the next request.
///
/// # Errors
///
/// The error type is the primary's, `S::Error`, and the detour's errors are converted into it
/// with `Into` (nothing to do when both services are the same client type, as with reqwest).
/// With `S::Error = BoxError`, the detour's errors are boxed as they are, so `downcast_ref`
/// finds the original; two services with unrelated error types can both be mapped to
/// [`BoxError`](tower::BoxError) with `map_err`.
///
/// # Examples
///
/// Any pair of services with the same request and response types can be used; a real stack
/// would use two clients, the detour one built never to keep a connection (for reqwest: two
/// `tower_reset::reqwest::HttpClient`s, with the [feature](crate#feature-flags) `reqwest`).
///
/// ```
/// use tower::{service_fn, BoxError, Service, ServiceBuilder, ServiceExt};
/// use tower_reset::{FreshConnectionLayer, ResetRetryLayer};
///
/// async fn pooled(request: http::Request<String>) -> Result<http::Response<String>, BoxError> {
///     // ... a client that keeps connections alive ...
///     # let _ = request;
///     Ok(http::Response::new("from the pool".to_owned()))
/// }
///
/// async fn fresh(request: http::Request<String>) -> Result<http::Response<String>, BoxError> {
///     // ... a client that opens a new connection for each request ...
///     # let _ = request;
///     Ok(http::Response::new("on a new connection".to_owned()))
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), BoxError> {
/// let mut service = ServiceBuilder::new()
///     .layer(ResetRetryLayer::new())
///     .layer(FreshConnectionLayer::detour(service_fn(fresh)))
///     .service(service_fn(pooled));
///
/// // A first attempt goes to the primary service.
/// let request = http::Request::get("http://127.0.0.1:3000/").body(String::new())?;
/// let response = service.ready().await?.call(request).await?;
/// assert_eq!(response.body(), "from the pool");
/// # Ok(())
/// # }
/// ```
pub struct Detour<S, D, F = StandardConnections> {
    inner: S,
    detour: D,
    shared: Arc<Shared<F>>,
}

/// What the clones of one detour service share.
struct Shared<F> {
    policy: F,
    /// The hosts' quiet times and evidence, kept when the policy protects requests that are
    /// not safe to repeat.
    hosts: Hosts,
}

impl<S, D, F> Detour<S, D, F> {
    /// The primary service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The primary service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The detour service, of which each detoured attempt gets a clone.
    pub fn detour_ref(&self) -> &D {
        &self.detour
    }

    /// The connection policy.
    pub fn policy(&self) -> &F {
        &self.shared.policy
    }

    /// Unwraps the primary service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, D: Clone, F: Clone> Layer<S> for FreshConnectionLayer<DetourTo<D>, F> {
    type Service = Detour<S, D, F>;

    /// Every service made by one call to `layer` keeps its own record of the hosts; clones of
    /// that service share it (as clones of a reqwest `Client` share its pool).
    fn layer(&self, inner: S) -> Self::Service {
        Detour {
            inner,
            detour: self.strategy.detour.clone(),
            shared: Arc::new(Shared {
                policy: self.policy.clone(),
                hosts: Hosts::default(),
            }),
        }
    }
}

impl<S, D, F, Req> Service<Req> for Detour<S, D, F>
where
    Req: AttemptRequest,
    S: Service<Req>,
    D: Service<Req, Response = S::Response> + Clone,
    D::Error: Into<S::Error>,
    F: ConnectionPolicy,
    StandardClassifier: ClassifyError<S::Error>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = DetourFuture<S::Future, D, Req, F>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let policy = &self.shared.policy;
        let record = AttemptRecord::of(&request);
        let condemned = record
            .previous_failure()
            .filter(|failure| policy.condemns(*failure));
        if let Some(failure) = condemned {
            event!(
                debug,
                target: trace::CONNECTION,
                failure = %failure,
                attempt = record.number(),
                "attempt detoured to a new connection"
            );
            // The primary was polled ready and is not called: it keeps its readiness for the
            // next request. The detour was never polled: the future polls this clone ready
            // before calling it.
            return DetourFuture::detour(self.detour.clone(), request);
        }
        let watch = if policy.protect_unrepeatable() {
            let now = Instant::now();
            let repeatable = policy.is_safe_to_repeat(&request);
            match self.shared.hosts.start(request.uri(), now, repeatable) {
                Some(start) => Some(Watch::new(self.shared.clone(), start)),
                None => {
                    event!(
                        debug,
                        target: trace::CONNECTION,
                        method = %request.method(),
                        uri = %request.uri(),
                        "request not safe to repeat detoured to a new connection: the pooled \
                         ones are likely stale"
                    );
                    // As above: the primary keeps its readiness.
                    return DetourFuture::detour(self.detour.clone(), request);
                }
            }
        } else {
            None
        };
        // `self.inner` was polled ready by the caller.
        DetourFuture::primary(self.inner.call(request), watch)
    }
}

impl<S: Clone, D: Clone, F> Clone for Detour<S, D, F> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            detour: self.detour.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S: fmt::Debug, D: fmt::Debug, F: fmt::Debug> fmt::Debug for Detour<S, D, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Detour")
            .field("inner", &self.inner)
            .field("detour", &self.detour)
            .field("policy", &self.shared.policy)
            .finish()
    }
}
