//! Continue a download whose connection broke part-way, with a range request, and never splice
//! two versions of the resource (feature `resume`, implied by `hyper`).
//!
//! # Why
//!
//! A connection that is reset or closed in the middle of a response *body* fails after the
//! service call returned: no retry layer sees it, and the caller must start again from byte
//! zero, or fail. For a large download (an artefact, a backup, an object, a model file) that is
//! the most expensive reset there is. HTTP has the fix (RFC 9110 §14): ask again for the bytes
//! from where the body stopped, `Range: bytes=N-`, on the condition that the resource is still
//! the same one, `If-Range: <validator>`. The server answers `206 Partial Content` with the
//! missing bytes, or, when the resource changed or it does not support ranges, the whole
//! representation with `200 OK`. Object-store clients do this for their own downloads; the
//! [`Resume`] service does it for any tower HTTP client.
//!
//! # What it does
//!
//! The request must be a `GET` that the layer can copy (see
//! [`ResumeBuilder::clone_requests`]), and the response a `200`, or a `206` with one
//! `Content-Range` (not `multipart/byteranges`), that carries a validator `If-Range` accepts
//! (RFC 9110 §13.1.5):
//!
//! * a **strong entity tag** (`ETag: "…"`; a weak `W/"…"` cannot be compared strongly), or
//! * when the response has no `ETag` at all, a **`Last-Modified`** date that is strong in the
//!   sense of §8.8.2.2: at least one second before the response's own `Date`, so that a second
//!   change within the same second cannot hide behind it. Without a `Date`, no resume.
//!
//! Any other response gets its body passed through untouched. A resumable body counts the bytes
//! it delivers. When it fails with an error the classifier recognises as a connection failure
//! (a reset, an end of file, an h2 `GOAWAY` or connection error: see [`crate::classify`]; over
//! HTTP/2, enable the `h2` feature so that h2's own errors are recognised), the
//! layer sends the request again through the inner service, with `Range: bytes=<next>-` (or
//! `bytes=<next>-<last>` when the caller itself asked for a range, whose end it keeps) and
//! `If-Range: <validator>`, and checks the answer:
//!
//! * a **`206`** with the same validator, the same `Content-Encoding`, and a `Content-Range` that
//!   starts exactly at the next byte, ends where the body ends and gives the same complete
//!   length: its bytes follow on, in the same body (the caller sees one body; frame boundaries
//!   may differ);
//! * a **`200`** with the same validator and the same `Content-Encoding` (a server that ignores
//!   ranges): the bytes the caller already has are read and thrown away, up to
//!   [`max_skip`](ResumeBuilder::max_skip), and the rest follows on. Not when the caller asked
//!   for a range: the layer does not cut a full representation down to one;
//! * **anything else**: another validator or none (the resource changed), `416`, a
//!   `Content-Range` that does not fit, another encoding, another status, a failed resume
//!   request. The layer gives up, and the caller gets the body's original error. So a body
//!   never carries bytes from two versions of the resource: every byte after a resume comes
//!   from an answer that proved, by its validator, to be the representation the first bytes
//!   came from.
//!
//! Every other header of the request is sent again as it was: `Authorization`, `Accept`,
//! `Accept-Encoding`, conditional headers (an `If-None-Match` that now matches gives a `304`,
//! which ends the body with its error). The resume request is a new request for the layers
//! below: it carries no [`AttemptRecord`](crate::attempt::AttemptRecord), and the caller's
//! [`HistoryObserver`](crate::attempt::HistoryObserver) is not handed on, so it keeps the story
//! of the first request.
//!
//! ## Content-Encoding
//!
//! A range counts the bytes of the representation *as sent*, compressed or not: a range of a
//! gzip response is a range of the gzip stream. The layer resumes only when the answer carries
//! exactly the same `Content-Encoding` as the first response (none, or the same value), so that
//! the offsets count the same bytes. This is only right when the layer sees the bytes as they
//! came over the wire: put a decompression layer (tower-http's `DecompressionLayer`) *above*
//! this one, never below it. reqwest, which decodes on its own when its `gzip`, `brotli`,
//! `deflate` or `zstd` features are on, asks for an encoding only when the request has no
//! `Range`: a resume then gets the identity representation, whose offsets are those of the
//! decoded bytes, and a server whose strong `ETag` differs between the two representations (as
//! it must) answers `200` with the other tag, so the body ends with its error rather than mixing
//! them.
//!
//! ## Limits
//!
//! A resume is a retry, and is bounded like one:
//!
//! * at most [`max_resumes`](ResumeBuilder::max_resumes) per body (default 3);
//! * a [budget](crate::reset_retry::Budget): by default one of the layer's own
//!   ([`RetryBudget::default`](crate::reset_retry::RetryBudget)), or the budget of the
//!   `ResetRetryLayer` below with [`ResumeBuilder::shared_budget`];
//! * an optional [`deadline`](ResumeBuilder::deadline), after which no resume starts;
//! * a backoff: the first resume goes at once (a new connection is the fix), later ones wait for
//!   the delays of a [`Schedule`] (default
//!   [`Exponential`]);
//! * at most [`max_skip`](ResumeBuilder::max_skip) bytes thrown away after a `200` (default 16
//!   MiB).
//!
//! What happened to a body is in its [`ResumeHistory`], from [`ResumeBody::history`] or a
//! [`ResumeObserver`] attached to the request: resumes made, bytes skipped, and why the layer
//! gave up ([`NoResume`]).
//!
//! ## Where it goes
//!
//! Outermost, above the stack, so that each resume request itself gets the stack's retries,
//! backoff and fresh connection:
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use hyper_util::client::legacy::connect::HttpConnector;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use tower::{Service, ServiceBuilder, ServiceExt};
//! use tower_reset::{BackoffLayer, FreshConnectionLayer, ResetRetryLayer, ResumeLayer};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let client: Client<HttpConnector, Full<Bytes>> =
//!     Client::builder(TokioExecutor::new()).build_http();
//! let mut service = ServiceBuilder::new()
//!     .layer(ResumeLayer::new()) // a body that breaks continues
//!     .layer(ResetRetryLayer::new()) // whether
//!     .layer(BackoffLayer::new()) // when
//!     .layer(FreshConnectionLayer::new()) // which connection
//!     .service(client);
//!
//! let request = http::Request::get("http://127.0.0.1:3000/big.tar").body(Full::default())?;
//! let response = service.ready().await?.call(request).await?;
//! // Read the body as usual: a reset in the middle is resumed, unseen.
//! let body = http_body_util::BodyExt::collect(response.into_body()).await?;
//! println!("{} bytes", body.to_bytes().len());
//! # Ok(())
//! # }
//! ```
//!
//! A request body that is not `Clone` (a stream) needs a
//! [`ReplayBodyLayer`](crate::replay::ReplayBodyLayer) above this layer.
//!
//! # Cost
//!
//! A request that is not a `GET`, or cannot be copied, goes straight to the inner service. A
//! `GET` is copied once before it is sent (the copy a resume is made from: what
//! [`ResetRetry`](crate::ResetRetry) copies too) and keeps a clone of the inner service. Its
//! body holds no buffer: a resume asks the server for the missing bytes instead of keeping any,
//! and a skip throws bytes away as they come. A body that never fails costs a few instructions
//! per frame and no allocation; the resume machinery (the timer, the request in flight) is
//! allocated only when a body fails.
//!
//! # What it cannot do
//!
//! It resumes `GET`s only: another method's response body is not safe to ask for twice. It
//! cannot resume a body whose server gives no strong validator: without one, the bytes of a
//! second answer could be those of a newer version. And a body that ends early *without* an
//! error (a server that closes a response delimited by the connection's end) is not seen as
//! broken.

mod body;
pub mod future;
mod history;
mod layer;
mod representation;

pub use self::body::ResumeBody;
pub use self::future::ResponseFuture;
pub use self::history::{NoResume, ResumeHistory, ResumeObserver};
pub use self::layer::{ResumeBuilder, ResumeLayer};

use std::fmt;
use std::mem;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Method, Request, Response};
use tokio::time::Instant;
use tower_service::Service;

use self::body::Pending;
use self::layer::Settings;
use crate::backoff::policy::{Exponential, Schedule};
use crate::classify::{ClassifyError, StandardClassifier};
use crate::reset_retry::policy::{CloneBody, CloneRequest};

/// Resumes the response body of a `GET` whose connection fails part-way; see the
/// [module documentation](self).
///
/// Made by [`ResumeLayer`].
///
/// # Examples
///
/// ```
/// use tower_reset::resume::Resume;
///
/// # fn wrap<S>(client: S) {
/// let service = Resume::new(client);
/// # let _ = service;
/// # }
/// ```
pub struct Resume<S, C = StandardClassifier, R = CloneBody, K = Exponential> {
    inner: S,
    settings: Arc<Settings<C, R, K>>,
}

impl<S> Resume<S> {
    /// Wraps `inner` with the standard settings of [`ResumeLayer::new`], including a budget of
    /// its own.
    pub fn new(inner: S) -> Self {
        tower::Layer::layer(&ResumeLayer::new(), inner)
    }
}

impl<S, C, R, K> Resume<S, C, R, K> {
    fn from_settings(inner: S, settings: Arc<Settings<C, R, K>>) -> Self {
        Self { inner, settings }
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

impl<S, ReqBody, B, C, R, K> Service<Request<ReqBody>> for Resume<S, C, R, K>
where
    S: Service<Request<ReqBody>, Response = Response<B>> + Clone,
    B: http_body::Body,
    C: ClassifyError<B::Error>,
    R: CloneRequest<Request<ReqBody>>,
    K: Schedule,
{
    type Response = Response<ResumeBody<S, ReqBody, B, C, R, K>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody, C, R, K>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let observer = request.extensions().get::<ResumeObserver>().cloned();
        let copy = if request.method() == Method::GET {
            self.settings
                .cloner
                .clone_request(&request)
                .ok_or(NoResume::NotCopied)
        } else {
            Err(NoResume::NotGet)
        };
        let copy = match copy {
            Ok(copy) => copy,
            Err(why) => {
                if let Some(observer) = observer {
                    observer.record(ResumeHistory::unresumable(why));
                }
                return ResponseFuture::passthrough(self.inner.call(request), why);
            }
        };
        // `self.inner` was polled ready: it takes this request. A clone, not yet ready, takes its
        // place, and the ready one travels with the body for the resumes, which poll it ready
        // again before each call.
        let clone = self.inner.clone();
        let mut service = mem::replace(&mut self.inner, clone);
        let future = service.call(request);
        let deadline = self
            .settings
            .deadline
            .and_then(|deadline| Instant::now().checked_add(deadline));
        ResponseFuture::resumable(
            future,
            Pending {
                service,
                copy,
                settings: Arc::clone(&self.settings),
                deadline,
                observer,
            },
        )
    }
}

impl<S: Clone, C, R, K> Clone for Resume<S, C, R, K> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            settings: Arc::clone(&self.settings),
        }
    }
}

impl<S: fmt::Debug, C: fmt::Debug, R: fmt::Debug, K: fmt::Debug> fmt::Debug for Resume<S, C, R, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resume")
            .field("inner", &self.inner)
            .field("settings", &self.settings)
            .finish()
    }
}
