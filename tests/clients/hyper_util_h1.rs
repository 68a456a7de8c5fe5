//! hyper-util's legacy `Client` speaking HTTP/1.1, under the recommended stack:
//! `ResumeLayer` → `ResetRetryLayer` → `BackoffLayer` → `FreshConnectionLayer::new()` (pooled).
//! Its body, `Full<Bytes>`, is `Clone`: no `ReplayBodyLayer` needed.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::util::BoxCloneSyncService;
use tower::{BoxError, ServiceBuilder, ServiceExt};
use tower_reset::attempt::HistoryObserver;
use tower_reset::lab::Lab;
use tower_reset::preset::HyperUtilLayer;
use tower_reset::resume::ResumeObserver;

use crate::matrix::Client as Column;
use crate::support::{
    backoff_layer, boxed, describe, resume_layer, retry_layer, BoxBody, BoxFuture, Call, End,
    Observed, Sender,
};

/// The full stack over a hyper-util client, as one cloneable service (its body boxed, so that
/// the soak's stack, without a resume layer, has the same type).
pub(crate) type Stack =
    BoxCloneSyncService<http::Request<Full<Bytes>>, http::Response<BoxBody>, BoxError>;

/// The recommended stack over a hyper-util legacy client; HTTP/2 with prior knowledge when
/// `http2`.
pub(crate) fn stack(http2: bool) -> Stack {
    let client = Client::builder(TokioExecutor::new())
        .http2_only(http2)
        .build_http::<Full<Bytes>>();
    // The hyper-util preset (whether, when, which connection), the matrix's own retry and
    // backoff settings in it, under a `ResumeLayer`.
    let stack = ServiceBuilder::new()
        .map_response(boxed)
        .layer(resume_layer()) // a body that breaks continues
        .layer(
            HyperUtilLayer::new()
                .retry(retry_layer())
                .backoff(backoff_layer()),
        )
        .service(client);
    BoxCloneSyncService::new(stack)
}

/// Sends `request` through `stack` and reads the whole response; the attempts come from the
/// stack's `AttemptHistory`.
pub(crate) async fn send(stack: Stack, mut request: http::Request<Full<Bytes>>) -> Observed {
    let observer = HistoryObserver::attach(&mut request);
    let resumes = ResumeObserver::attach(&mut request);
    let response = match stack.oneshot(request).await {
        Ok(response) => response,
        Err(error) => return Observed::new(End::Failed(describe(&*error)), observer.get()),
    };
    let status = response.status();
    let end = match response.into_body().collect().await {
        Ok(body) if status == http::StatusCode::OK => End::Ok(body.to_bytes()),
        Ok(_) => End::Failed(format!("status {status}")),
        Err(error) => End::BodyFailed(describe(&*error)),
    };
    Observed::new(end, observer.get()).resumed(resumes.get())
}

/// The hyper-util client aimed at a lab.
pub(crate) struct HyperUtil {
    stack: Stack,
    url: String,
}

impl HyperUtil {
    pub(crate) fn new(lab: &Lab, http2: bool) -> Self {
        Self {
            stack: stack(http2),
            url: lab.url("/matrix"),
        }
    }
}

impl Sender for HyperUtil {
    fn send(&self, call: Call) -> BoxFuture<'_, Observed> {
        let request = call.http_request(&self.url, Full::new(call.body()));
        Box::pin(send(self.stack.clone(), request))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_matrix() {
    crate::matrix::check_client(Column::HyperUtilH1).await;
}
