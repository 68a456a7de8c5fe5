//! Run the stack inside a [`reqwest_middleware::ClientWithMiddleware`].
//!
//! [`ResetRetryMiddleware`] is a reqwest-middleware [`Middleware`] that sends each request
//! through [`ResetRetry`](crate::ResetRetry) and [`Backoff`](crate::Backoff), over the rest of
//! the middleware chain. It retries what the rest of this crate retries, and nothing else:
//! unlike reqwest-retry, which retries any connection error for any method, a `POST` reset after
//! it was sent is returned, not sent twice.
//!
//! Put it where reqwest-retry's middleware would go. Middleware added after it runs once per
//! attempt.
//!
//! # What it can and cannot retry
//!
//! * Requests with a buffered body (`.body(String)`, `.json(..)`, `.form(..)`, no body) are
//!   retried when safe: each attempt sends `reqwest::Request::try_clone`, which shares the
//!   body's bytes rather than copying them. The layers see the request's head and the
//!   chain's `Extensions`: a [`HistoryObserver`](crate::attempt::HistoryObserver) added with
//!   `RequestBuilder::with_extension` receives the request's history, success or failure.
//! * Requests with a streaming body cannot be copied by reqwest: they pass through, sent once.
//! * Each attempt runs the rest of the chain with its own copy of the request's
//!   `Extensions`; changes the rest of the chain makes to them are not seen by middleware above
//!   this one.
//! * reqwest hides its connection pool, so the fresh-connection strategy does not apply here.
//!   If stale pooled connections are the problem, keep idle connections shorter than the
//!   server's idle timeout (`ClientBuilder::pool_idle_timeout`), or use
//!   [`HttpClient`](crate::reqwest::HttpClient) with the detour strategy.
//!
//! # Examples
//!
//! ```
//! use reqwest_middleware::ClientBuilder;
//! use tower_reset::reqwest_middleware::ResetRetryMiddleware;
//!
//! # async fn run() -> Result<(), reqwest_middleware::Error> {
//! let client = ClientBuilder::new(reqwest::Client::new())
//!     .with(ResetRetryMiddleware::new())
//!     .build();
//! let response = client.get("http://127.0.0.1:3000/").send().await?;
//! println!("{}", response.status());
//! # Ok(())
//! # }
//! ```

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Extensions;
use reqwest_middleware::{Middleware, Next};
use tower::{BoxError, Layer, ServiceExt};
use tower_service::Service;

use crate::backoff::policy::{Exponential, Schedule};
use crate::classify::{ClassifyError, ClassifyResponse, StandardClassifier};
use crate::reset_retry::policy::{RetryPolicy, StandardRetry};
use crate::{BackoffLayer, ResetRetryLayer};

/// A reqwest-middleware [`Middleware`] that runs [`ResetRetryLayer`] and [`BackoffLayer`] over
/// the rest of the chain; see the [module documentation](self).
///
/// # Examples
///
/// Learning why a request failed: hand a [`HistoryObserver`](crate::attempt::HistoryObserver)
/// to the request as an extension (`HistoryObserver::attach` takes an `http::Request`, which a
/// reqwest-middleware chain never sees).
///
/// ```
/// use reqwest_middleware::ClientBuilder;
/// use tower_reset::attempt::HistoryObserver;
/// use tower_reset::reqwest_middleware::ResetRetryMiddleware;
///
/// # async fn run() -> Result<(), reqwest_middleware::Error> {
/// let client = ClientBuilder::new(reqwest::Client::new())
///     .with(ResetRetryMiddleware::new())
///     .build();
/// let observer = HistoryObserver::default();
/// let result = client
///     .post("http://127.0.0.1:3000/orders")
///     .with_extension(observer.clone())
///     .send()
///     .await;
/// if let (Err(error), Some(history)) = (&result, observer.get()) {
///     eprintln!("{error}: {history}"); // "1 attempt (unknown_outcome); stopped: ..."
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ResetRetryMiddleware<P = StandardRetry, C = StandardClassifier, B = Exponential> {
    retry: ResetRetryLayer<P, C>,
    backoff: BackoffLayer<B>,
}

impl ResetRetryMiddleware {
    /// The standard layers: [`ResetRetryLayer::new`] and [`BackoffLayer::new`].
    pub fn new() -> Self {
        Self::from_layers(ResetRetryLayer::new(), BackoffLayer::new())
    }
}

impl Default for ResetRetryMiddleware {
    fn default() -> Self {
        Self::new()
    }
}

impl<P, C, B> ResetRetryMiddleware<P, C, B> {
    /// Layers configured by you, say `ResetRetryLayer::builder().max_attempts(5).build()?`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_reset::classify::{RetryStatuses, StandardClassifier};
    /// use tower_reset::reqwest_middleware::ResetRetryMiddleware;
    /// use tower_reset::{BackoffLayer, ResetRetryLayer};
    ///
    /// let retry = ResetRetryLayer::builder()
    ///     .max_attempts(4) // reqwest-retry's "3 retries"
    ///     .classifier(StandardClassifier::new().statuses(RetryStatuses::standard()))
    ///     .build()?;
    /// let backoff = BackoffLayer::new().max_hint(Duration::from_secs(30));
    /// let middleware = ResetRetryMiddleware::from_layers(retry, backoff);
    /// # let _ = middleware;
    /// # Ok::<(), tower_reset::ConfigError>(())
    /// ```
    pub fn from_layers(retry: ResetRetryLayer<P, C>, backoff: BackoffLayer<B>) -> Self {
        Self { retry, backoff }
    }
}

impl<P, C, B> Middleware for ResetRetryMiddleware<P, C, B>
where
    P: RetryPolicy + Clone + Send + Sync + 'static,
    C: ClassifyError<BoxError>
        + ClassifyResponse<reqwest::Response>
        + Clone
        + Send
        + Sync
        + 'static,
    B: Schedule + Clone + Send + Sync + 'static,
{
    fn handle<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        request: reqwest::Request,
        extensions: &'life1 mut Extensions,
        next: Next<'life2>,
    ) -> Pin<
        Box<
            dyn Future<Output = reqwest_middleware::Result<reqwest::Response>>
                + Send
                + 'async_trait,
        >,
    >
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            let Some(head) = head(&request, extensions) else {
                // A streaming body: reqwest cannot copy it, so it is sent once, as it is.
                return next.run(request, extensions).await;
            };
            let rest = RestOfChain {
                next,
                request: Arc::new(request),
            };
            let stack = self.retry.layer(self.backoff.layer(rest));
            stack.oneshot(head).await.map_err(from_box)
        })
    }
}

/// The head of the request, which is what the layers read (with the chain's extensions, where
/// a [`HistoryObserver`](crate::attempt::HistoryObserver) or anything a policy reads may be),
/// or `None` when the request cannot be copied (its body is a stream) or its URL is not a valid
/// URI.
fn head(request: &reqwest::Request, extensions: &Extensions) -> Option<http::Request<()>> {
    if request.body().is_some_and(|body| body.as_bytes().is_none()) {
        return None;
    }
    let mut head = http::Request::new(());
    *head.method_mut() = request.method().clone();
    *head.uri_mut() = request.url().as_str().parse().ok()?;
    *head.version_mut() = request.version();
    *head.headers_mut() = request.headers().clone();
    *head.extensions_mut() = extensions.clone();
    Some(head)
}

/// The stack's error as reqwest-middleware's: the chain's own error when it is one (always, but
/// for errors a layer made itself), else wrapped.
fn from_box(error: BoxError) -> reqwest_middleware::Error {
    match error.downcast::<reqwest_middleware::Error>() {
        Ok(error) => *error,
        Err(error) => reqwest_middleware::Error::middleware(StackError(error)),
    }
}

/// An error made by a layer of the stack, not by the rest of the chain.
#[derive(Debug)]
struct StackError(BoxError);

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl StdError for StackError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source()
    }
}

/// The rest of the middleware chain as a tower service: each attempt runs it once, with a copy
/// of the original request and the extensions of the head it was handed.
#[derive(Clone)]
struct RestOfChain<'a> {
    next: Next<'a>,
    request: Arc<reqwest::Request>,
}

impl<'a> Service<http::Request<()>> for RestOfChain<'a> {
    type Response = reqwest::Response;
    type Error = reqwest_middleware::Error;
    type Future =
        Pin<Box<dyn Future<Output = reqwest_middleware::Result<reqwest::Response>> + Send + 'a>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, head: http::Request<()>) -> Self::Future {
        let next = self.next.clone();
        // The head carries the chain's extensions, and on a retry the attempt record, for
        // middleware further down.
        let mut extensions = head.into_parts().0.extensions;
        let request = self.request.try_clone();
        Box::pin(async move {
            match request {
                Some(request) => next.run(request, &mut extensions).await,
                // Checked before the first attempt: a request with a buffered body copies.
                None => Err(reqwest_middleware::Error::middleware(StackError(
                    "the request could not be copied".into(),
                ))),
            }
        })
    }
}

impl fmt::Debug for RestOfChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestOfChain")
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}
