//! reqwest-middleware's `ClientWithMiddleware` with `ResetRetryMiddleware` (the retry and
//! backoff layers of this suite) over a plain `reqwest::Client`. reqwest hides its pool, so there
//! is no fresh-connection layer: a connection that failed is dropped by hyper-util's pool, and
//! the retry takes another.

use tower_reset::attempt::HistoryObserver;
use tower_reset::lab::Lab;
use tower_reset::reqwest_middleware::ResetRetryMiddleware;

use crate::matrix::Client as Column;
use crate::support::{
    backoff_layer, describe, retry_layer, BoxFuture, Call, End, Observed, Sender, IDEMPOTENCY_KEY,
    REQUEST_ID,
};

/// A reqwest-middleware client aimed at a lab.
pub(crate) struct ReqwestMiddleware {
    client: reqwest_middleware::ClientWithMiddleware,
    url: String,
}

impl ReqwestMiddleware {
    pub(crate) fn new(lab: &Lab) -> Self {
        let reqwest = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("a reqwest client");
        let client = reqwest_middleware::ClientBuilder::new(reqwest)
            .with(ResetRetryMiddleware::from_layers(
                retry_layer(),
                backoff_layer(),
            ))
            .build();
        Self {
            client,
            url: lab.url("/matrix"),
        }
    }
}

impl Sender for ReqwestMiddleware {
    fn send(&self, call: Call) -> BoxFuture<'_, Observed> {
        Box::pin(async move {
            // The observer travels in reqwest-middleware's extensions, which the stack sees.
            let observer = HistoryObserver::default();
            let mut request = self
                .client
                .request(call.method.http(), &self.url)
                .header(REQUEST_ID, call.id_value())
                .with_extension(observer.clone());
            if let Some(key) = call.idempotency_key() {
                request = request.header(IDEMPOTENCY_KEY, key);
            }
            if call.method != crate::support::Method::Get {
                request = request.body(call.body());
            }
            let response = match request.send().await {
                Ok(response) => response,
                Err(error) => return Observed::new(End::Failed(describe(&error)), observer.get()),
            };
            let status = response.status();
            let end = match response.bytes().await {
                Ok(body) if status == http::StatusCode::OK => End::Ok(body),
                Ok(_) => End::Failed(format!("status {status}")),
                Err(error) => End::BodyFailed(describe(&error)),
            };
            Observed::new(end, observer.get())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_matrix() {
    crate::matrix::check_client(Column::ReqwestMiddleware).await;
}
