//! The contract: `ResumeLayer::new()` on top of the three layers, in this order, over a
//! hyper-util legacy `Client<HttpConnector, Full<Bytes>>`, compiles and resumes.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_reset::lab::{Fault, Lab, Match};
use tower_reset::{BackoffLayer, FreshConnectionLayer, ResetRetryLayer, ResumeLayer};

use crate::support::{resource, sha256, tagged, MIB};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_stack_resumes_over_the_legacy_client() {
    let body = resource(2 * MIB, 20);
    let lab = Lab::builder()
        .reply(tagged(body.clone(), "\"v1\""))
        .on(Match::nth(1), Fault::ResetAfterBodyBytes(MIB))
        .start()
        .await
        .unwrap();

    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut service = ServiceBuilder::new()
        .layer(ResumeLayer::new())
        .layer(ResetRetryLayer::new())
        .layer(BackoffLayer::new())
        .layer(FreshConnectionLayer::new())
        .service(client);

    let request = http::Request::get(lab.url("/file"))
        .body(Full::default())
        .unwrap();
    let response = service.ready().await.unwrap().call(request).await.unwrap();
    // The body can go anywhere a body goes: boxed with `BodyExt::boxed`, into a server's
    // response, across threads.
    fn send_sync<T: Send + Sync + 'static>(_: &T) {}
    send_sync(response.body());
    let mut body_stream = response.into_body();
    let mut got = Vec::new();
    while let Some(frame) = body_stream.frame().await {
        if let Ok(data) = frame.expect("no error: the reset is resumed").into_data() {
            got.extend_from_slice(&data);
        }
    }
    assert_eq!(sha256(&got), sha256(&body));
    assert_eq!(body_stream.history().resumes(), 1);
    assert_eq!(lab.counts().received(), 2);
}
