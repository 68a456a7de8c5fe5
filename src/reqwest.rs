//! Run the stack over a [`reqwest::Client`].
//!
//! The layers of this crate work on [`http::Request`]s: they read the method and headers to
//! decide whether a retry is safe, and they pass the
//! [`AttemptRecord`](crate::attempt::AttemptRecord) in the request extensions. A
//! `reqwest::Client` is a tower `Service<reqwest::Request>`, and a `reqwest::Request` keeps its
//! extensions private, so the stack cannot sit on top of it as it is. [`HttpClient`] converts at
//! the bottom: it takes an `http::Request<B>` for any body that converts into a
//! [`reqwest::Body`] (`String`, `Vec<u8>`, `Bytes`, `&'static str`: all `Clone`, so
//! [`ResetRetry`](crate::ResetRetry) can copy them for a retry), and answers with an
//! `http::Response<reqwest::Body>`.
//!
//! reqwest hides its connection pool, so the fresh-connection strategy for it is the
//! [detour](crate::fresh_connection::Detour): a second client that never keeps a connection
//! carries the attempts that follow a reset.
//!
//! # Examples
//!
//! ```
//! use tower::{Service, ServiceBuilder, ServiceExt};
//! use tower_reset::reqwest::HttpClient;
//! use tower_reset::{FreshConnectionLayer, ResetRetryLayer};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let pooled = HttpClient::new(reqwest::Client::builder().build()?);
//! // Keeps no idle connection: every request it sends goes out on a new one.
//! let fresh = HttpClient::new(reqwest::Client::builder().pool_max_idle_per_host(0).build()?);
//!
//! let mut service = ServiceBuilder::new()
//!     .layer(ResetRetryLayer::new())
//!     .layer(FreshConnectionLayer::detour(fresh))
//!     .service(pooled);
//!
//! let request = http::Request::get("http://127.0.0.1:3000/").body(String::new())?;
//! // `HttpClient` takes any body type: say which one this service is used with.
//! let response = ServiceExt::<http::Request<String>>::ready(&mut service)
//!     .await?
//!     .call(request)
//!     .await?;
//! println!("{}", response.status());
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tower_service::Service;

/// The future of a request sent by `reqwest::Client` (reqwest does not export its name).
type Pending = <::reqwest::Client as Service<::reqwest::Request>>::Future;

/// A [`reqwest::Client`] as a `Service<http::Request<B>>`, so that the layers of this crate can
/// run over it.
///
/// Each request is converted with reqwest's own `TryFrom<http::Request<B>>` (method, URI,
/// headers, version, extensions and body are kept) and each response with
/// `From<reqwest::Response> for http::Response<reqwest::Body>` (status, headers, extensions and
/// body are kept; the final URL after redirects is not).
///
/// # Request bodies
///
/// Any body that converts into a [`reqwest::Body`] is accepted, so one `HttpClient` serves
/// `http::Request<String>`, `http::Request<Bytes>` and others alike. To be retried, a request
/// must be copied before it is sent: [`ResetRetry`](crate::ResetRetry)'s default copies bodies
/// that are `Clone`, which all of these are (a `reqwest::Body` is not). The price of accepting
/// any body is that `ready()` cannot guess the request type before the request is seen: name it
/// where nothing else does, as in `ServiceExt::<http::Request<String>>::ready(&mut service)`.
///
/// # Errors
///
/// [`reqwest::Error`], the client's own: a request whose URI is not an absolute URL fails with a
/// builder error (`is_builder()`), without being sent; every other error is the one the client
/// returned, untouched, so the [`StandardClassifier`](crate::classify::StandardClassifier)
/// finds the `io::Error` of a reset in its chain.
///
/// # Examples
///
/// ```
/// use tower::ServiceExt;
/// use tower_reset::reqwest::HttpClient;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// let client = HttpClient::new(reqwest::Client::builder().build()?);
///
/// // A relative URI cannot be sent: the error says so before anything goes out.
/// let request = http::Request::get("/relative").body(String::new())?;
/// let error = client.oneshot(request).await.unwrap_err();
/// assert!(error.is_builder());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: ::reqwest::Client,
}

impl HttpClient {
    /// Wraps `client`.
    pub fn new(client: ::reqwest::Client) -> Self {
        Self { client }
    }

    /// The wrapped client.
    pub fn get_ref(&self) -> &::reqwest::Client {
        &self.client
    }

    /// Unwraps the client.
    pub fn into_inner(self) -> ::reqwest::Client {
        self.client
    }
}

impl From<::reqwest::Client> for HttpClient {
    fn from(client: ::reqwest::Client) -> Self {
        Self::new(client)
    }
}

impl<B> Service<http::Request<B>> for HttpClient
where
    B: Into<::reqwest::Body>,
{
    type Response = http::Response<::reqwest::Body>;
    type Error = ::reqwest::Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Service::<::reqwest::Request>::poll_ready(&mut self.client, cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let state = match ::reqwest::Request::try_from(request) {
            // `self.client` was polled ready by the caller.
            Ok(request) => State::Sending {
                future: self.client.call(request),
            },
            Err(error) => State::Failed { error: Some(error) },
        };
        ResponseFuture { state }
    }
}

pin_project! {
    /// The response future of [`HttpClient`].
    pub struct ResponseFuture {
        #[pin]
        state: State,
    }
}

pin_project! {
    #[project = StateProj]
    enum State {
        Sending { #[pin] future: Pending },
        // The request could not be converted; `None` once the error was returned.
        Failed { error: Option<::reqwest::Error> },
    }
}

impl Future for ResponseFuture {
    type Output = Result<http::Response<::reqwest::Body>, ::reqwest::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Sending { future } => future.poll(cx).map_ok(http::Response::from),
            StateProj::Failed { error } => match error.take() {
                Some(error) => Poll::Ready(Err(error)),
                // Polled again after completion.
                None => Poll::Pending,
            },
        }
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Sending { .. } => "sending",
            State::Failed { .. } => "failed",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
