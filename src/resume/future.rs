//! The response future of [`Resume`](super::Resume).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::body::{Pending, ResumeBody};
use super::history::NoResume;
use super::representation::Representation;
use crate::backoff::policy::Exponential;
use crate::classify::StandardClassifier;
use crate::reset_retry::policy::CloneBody;

pin_project! {
    /// The response future of [`Resume`](super::Resume): the inner service's response, its body
    /// wrapped in a [`ResumeBody`].
    ///
    /// The inner service's error is returned as it is: a failure before the response head is
    /// the business of the [`ResetRetryLayer`](crate::ResetRetryLayer) below.
    ///
    /// # Examples
    ///
    /// It is what `call` returns; nothing to build by hand:
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::Full;
    /// use tower::util::BoxService;
    /// use tower_reset::resume::ResponseFuture;
    ///
    /// type Inner = BoxService<http::Request<String>, http::Response<Full<Bytes>>, tower::BoxError>;
    /// fn is_a_future<F: std::future::Future>() {}
    /// is_a_future::<ResponseFuture<Inner, String>>();
    /// ```
    pub struct ResponseFuture<S, ReqBody, C = StandardClassifier, R = CloneBody, K = Exponential>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        future: S::Future,
        // `None`: the body is passed through, for the reason `why`.
        pending: Option<Pending<S, ReqBody, C, R, K>>,
        why: NoResume,
    }
}

impl<S, ReqBody, C, R, K> ResponseFuture<S, ReqBody, C, R, K>
where
    S: Service<Request<ReqBody>>,
{
    pub(super) fn passthrough(future: S::Future, why: NoResume) -> Self {
        Self {
            future,
            pending: None,
            why,
        }
    }

    pub(super) fn resumable(future: S::Future, pending: Pending<S, ReqBody, C, R, K>) -> Self {
        Self {
            future,
            pending: Some(pending),
            why: NoResume::NotGet,
        }
    }
}

impl<S, ReqBody, B, C, R, K> Future for ResponseFuture<S, ReqBody, C, R, K>
where
    S: Service<Request<ReqBody>, Response = Response<B>>,
    B: http_body::Body,
{
    type Output = Result<Response<ResumeBody<S, ReqBody, B, C, R, K>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.future.poll(cx))?;
        let Some(pending) = this.pending.take() else {
            let why = *this.why;
            return Poll::Ready(Ok(response.map(|body| ResumeBody::passthrough(body, why))));
        };
        let representation = match Representation::of(response.status(), response.headers()) {
            Ok(representation) => representation,
            Err(why) => {
                if let Some(observer) = &pending.observer {
                    observer.record(super::history::ResumeHistory::unresumable(why));
                }
                return Poll::Ready(Ok(response.map(|body| ResumeBody::passthrough(body, why))));
            }
        };
        if pending.settings.deposits {
            if let Some(budget) = &pending.settings.budget {
                budget.deposit();
            }
        }
        Poll::Ready(Ok(
            response.map(|body| ResumeBody::resumable(body, pending, representation))
        ))
    }
}

impl<S, ReqBody, C, R, K> fmt::Debug for ResponseFuture<S, ReqBody, C, R, K>
where
    S: Service<Request<ReqBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("resumable", &self.pending.is_some())
            .finish()
    }
}
