//! `reqwest::Client` under the recommended stack for it: `ResumeLayer` → `ResetRetryLayer` →
//! `BackoffLayer` → `FreshConnectionLayer::detour(..)` over `tower_reset::reqwest::HttpClient`,
//! the detour being a second client that keeps no idle connection (reqwest hides its pool).

use bytes::Bytes;
use http_body_util::BodyExt;
use tower::util::BoxCloneSyncService;
use tower::{BoxError, ServiceBuilder, ServiceExt};
use tower_reset::attempt::HistoryObserver;
use tower_reset::lab::Lab;
use tower_reset::preset::ReqwestLayer;
use tower_reset::reqwest::HttpClient;
use tower_reset::resume::ResumeObserver;

use crate::matrix::Client as Column;
use crate::support::{
    backoff_layer, boxed, describe, resume_layer, retry_layer, BoxBody, BoxFuture, Call, End,
    Observed, Sender,
};

type Stack = BoxCloneSyncService<http::Request<Bytes>, http::Response<BoxBody>, BoxError>;

fn reqwest_client(builder: reqwest::ClientBuilder) -> HttpClient {
    HttpClient::new(builder.no_proxy().build().expect("a reqwest client"))
}

/// The stack: the pooled client, and the detour that never reuses a connection.
fn stack() -> Stack {
    let pooled = reqwest_client(reqwest::Client::builder());
    let fresh = reqwest_client(reqwest::Client::builder().pool_max_idle_per_host(0));
    // The reqwest preset (whether, when, which connection: the detour), with the matrix's
    // retry and backoff settings, under a `ResumeLayer`.
    let stack = ServiceBuilder::new()
        .map_response(boxed)
        .layer(resume_layer()) // a body that breaks continues
        .layer(
            ReqwestLayer::new(fresh)
                .retry(retry_layer())
                .backoff(backoff_layer()),
        )
        .service(pooled);
    BoxCloneSyncService::new(stack)
}

/// A reqwest client aimed at a lab.
pub(crate) struct Reqwest {
    stack: Stack,
    url: String,
}

impl Reqwest {
    pub(crate) fn new(lab: &Lab) -> Self {
        Self {
            stack: stack(),
            url: lab.url("/matrix"),
        }
    }
}

impl Sender for Reqwest {
    fn send(&self, call: Call) -> BoxFuture<'_, Observed> {
        let mut request = call.http_request(&self.url, call.body());
        let observer = HistoryObserver::attach(&mut request);
        let resumes = ResumeObserver::attach(&mut request);
        let stack = self.stack.clone();
        Box::pin(async move {
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
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_matrix() {
    crate::matrix::check_client(Column::Reqwest).await;
}
