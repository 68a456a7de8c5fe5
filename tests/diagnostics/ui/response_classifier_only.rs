// A classifier that only implements `ClassifyResponse`: the retry layer needs `ClassifyError` too.
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Service, ServiceBuilder};
use tower_reset::classify::{ClassifyResponse, FailureClass};
use tower_reset::ResetRetryLayer;

#[derive(Clone)]
struct Teapots;

impl ClassifyResponse<http::Response<Incoming>> for Teapots {
    fn classify_response(&self, response: &http::Response<Incoming>) -> Option<FailureClass> {
        (response.status() == 418).then_some(FailureClass::Unavailable)
    }
}

fn assert_service<S: Service<http::Request<Full<Bytes>>>>(_: &S) {}

fn main() {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let retry = ResetRetryLayer::builder().classifier(Teapots).build().unwrap();
    let stack = ServiceBuilder::new().layer(retry).service(client);
    assert_service(&stack);
}
