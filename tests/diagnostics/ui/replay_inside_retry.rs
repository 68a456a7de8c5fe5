// `ReplayBodyLayer` below `ResetRetryLayer`: the retry layer sees hyper's `Incoming` body, which
// it cannot copy.
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Service, ServiceBuilder};
use tower_reset::replay::{ReplayBody, ReplayBodyLayer};
use tower_reset::ResetRetryLayer;

fn assert_service<S: Service<http::Request<Incoming>>>(_: &S) {}

fn main() {
    let client = Client::builder(TokioExecutor::new()).build_http::<ReplayBody<Incoming>>();
    let upstream = ServiceBuilder::new()
        .layer(ResetRetryLayer::new())
        .layer(ReplayBodyLayer::new())
        .service(client);
    assert_service(&upstream);
}
