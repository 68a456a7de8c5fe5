//! The client under diagnosis, the requests it sends, and the bound that turns a hang into a
//! failure.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{BoxError, Layer, ServiceExt};
use tower_reset::backoff::policy::Rng;
use tower_reset::diagnose::{Cause, Collector, Report};
use tower_reset::fresh_connection::policy::StandardConnections;
use tower_reset::lab::{Fault, Lab, Match};
use tower_reset::{FreshConnection, FreshConnectionLayer};

pub(crate) use crate::paused_io::bounded;
use crate::paused_io::frozen;

pub(crate) type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// The client under diagnosis: hyper-util under the pooled strategy, with no retry, so that
/// every failure the server causes reaches the collector once.
pub(crate) type Diagnosed = FreshConnection<HttpClient, StandardConnections>;

/// A hyper-util client under `FreshConnectionLayer::new().diagnose(collector)`.
pub(crate) fn diagnosed(collector: &Collector) -> Diagnosed {
    diagnosed_with(collector, StandardConnections::new())
}

/// The same, with the connection policy `policy`.
pub(crate) fn diagnosed_with(collector: &Collector, policy: StandardConnections) -> Diagnosed {
    let client = Client::builder(TokioExecutor::new()).build_http();
    FreshConnectionLayer::new()
        .policy(policy)
        .diagnose(collector.clone())
        .layer(client)
}

/// A request with a body of `body` bytes (a `POST` when it has one, else a `GET`).
pub(crate) fn request(url: &str, body: usize) -> http::Request<Full<Bytes>> {
    let method = if body == 0 {
        http::Method::GET
    } else {
        http::Method::POST
    };
    http::Request::builder()
        .method(method)
        .uri(url)
        .body(Full::new(Bytes::from(vec![b'x'; body])))
        .expect("a valid request")
}

/// Sends `request` and reads the whole response; `Err` when it failed.
pub(crate) async fn send(
    service: &Diagnosed,
    request: http::Request<Full<Bytes>>,
) -> Result<(), BoxError> {
    let response = service.clone().oneshot(request).await?;
    response.into_body().collect().await?;
    Ok(())
}

/// Sends a `GET` after each gap (in milliseconds); returns how many failed. Each request is
/// sent [`frozen`]: the server must answer it without a timer (no delay).
pub(crate) async fn after_gaps(service: &Diagnosed, url: &str, gaps: &[u64]) -> usize {
    let mut failed = 0;
    for gap in gaps {
        tokio::time::sleep(Duration::from_millis(*gap)).await;
        if frozen(send(service, request(url, 0))).await.is_err() {
            failed += 1;
        }
    }
    failed
}

/// `count` seeded gaps between `low` and `high` milliseconds.
pub(crate) fn random_gaps(seed: u64, count: usize, low: u64, high: u64) -> Vec<u64> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|_| low + rng.next_u64() % (high - low + 1))
        .collect()
}

/// A lab that resets the requests `when` matches as soon as their head is read.
pub(crate) async fn resetting(when: Match) -> Lab {
    Lab::builder()
        .on(when, Fault::ResetAfterHead)
        .start()
        .await
        .expect("the lab starts")
}

/// The figures of the report's only cause, which must be a size limit: failures, smallest
/// failed body, largest body that went through.
pub(crate) fn size_limit(report: &Report) -> (u64, u64, Option<u64>) {
    match causes(report) {
        [Cause::SizeLimit {
            failures,
            smallest_failed_body,
            largest_ok_body,
            ..
        }] => (*failures, *smallest_failed_body, *largest_ok_body),
        _ => panic!("{report}"),
    }
}

/// The report's only host's causes, after checking that there is one host.
pub(crate) fn causes(report: &Report) -> &[Cause] {
    assert_eq!(report.hosts().len(), 1, "{report}");
    report.hosts()[0].causes()
}

/// Milliseconds.
pub(crate) fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}
