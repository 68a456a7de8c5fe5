// A tonic stack without `ReplayBodyLayer`: tonic's body is not `Clone`, so the retry layer
// cannot copy the call.
use tower::ServiceBuilder;
use tower_reset::{BackoffLayer, ResetRetryLayer};

fn main() {
    let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:50051").connect_lazy();
    let stack = ServiceBuilder::new()
        .layer(ResetRetryLayer::new())
        .layer(BackoffLayer::new())
        .service(channel);
    let _client = tonic::client::Grpc::new(stack).ready();
}
