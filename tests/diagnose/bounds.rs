//! The collector's bounds (hosts, failures kept), the generic layer, and the happy path's
//! cost in allocations.

use std::io;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{service_fn, BoxError, Layer, ServiceExt};
use tower_reset::diagnose::{Collector, DiagnoseLayer};
use tower_reset::lab::{Lab, Match};
use tower_reset::FreshConnectionLayer;

use crate::instant_service::{self, Answer};
use crate::paused_io::frozen;
use crate::support::{bounded, request, resetting, size_limit};

/// A service that fails every request with a connection reset, at once.
fn always_reset(
) -> impl tower::Service<http::Request<()>, Response = http::Response<()>, Error = BoxError> + Clone
{
    service_fn(|_: http::Request<()>| async {
        Err::<http::Response<()>, BoxError>(io::Error::from(io::ErrorKind::ConnectionReset).into())
    })
}

#[tokio::test]
async fn hosts_past_the_cap_share_one_entry() {
    let collector = Collector::new();
    let service = DiagnoseLayer::new(collector.clone()).layer(always_reset());
    for host in 0..100 {
        let request = http::Request::get(format!("http://host-{host}.test/"))
            .body(())
            .unwrap();
        service.clone().oneshot(request).await.unwrap_err();
    }
    let report = collector.report();
    let hosts = report.hosts();
    assert_eq!(hosts.len(), 65, "64 hosts, then one entry for the others");
    assert_eq!(hosts[0].host(), "http://host-0.test");
    assert_eq!(hosts[64].host(), "(other hosts)");
    assert_eq!((hosts[64].requests(), hosts[64].failures()), (36, 36));
    assert_eq!((report.requests(), report.failures()), (100, 100));
}

#[tokio::test]
async fn a_host_keeps_its_last_failures_and_exact_counts() {
    let collector = Collector::new();
    let mut service = DiagnoseLayer::new(collector.clone()).layer(always_reset());
    for _ in 0..1000 {
        let request = http::Request::get("http://one.test/").body(()).unwrap();
        (&mut service).oneshot(request).await.unwrap_err();
    }
    let report = collector.report();
    let host = &report.hosts()[0];
    assert_eq!(
        (host.requests(), host.failures(), host.recorded()),
        (1000, 1000, 128)
    );
    assert!(
        report.to_string().contains("; the last 128 analysed"),
        "{report}"
    );
}

/// Without the pooled strategy the layer sees no connection facts, but a size limit shows in
/// the `content-length` of the requests that fail.
#[tokio::test(start_paused = true)]
async fn the_generic_layer_names_a_size_limit_from_content_length() {
    bounded(async {
        let lab = resetting(Match::path("/large")).await;
        let collector = Collector::new();
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let service = DiagnoseLayer::new(collector.clone()).layer(client);
        for (path, size) in [("/small", 100_000), ("/large", 3_000_000)]
            .into_iter()
            .cycle()
            .take(10)
        {
            let mut request = request(&lab.url(path), size);
            request
                .headers_mut()
                .insert(http::header::CONTENT_LENGTH, size.into());
            // Megabyte bodies fill the socket buffers: the writer waits on the kernel, with
            // the clock held still.
            let sent = frozen(async {
                let response = service.clone().oneshot(request).await?;
                response.into_body().collect().await?;
                Ok::<_, BoxError>(())
            })
            .await;
            match sent {
                Ok(()) => assert_eq!(path, "/small"),
                Err(_) => assert_eq!(path, "/large"),
            }
        }
        let report = collector.report();
        assert_eq!(
            size_limit(&report),
            (5, 3_000_000, Some(100_000)),
            "{report}"
        );
    })
    .await;
}

/// The allocations `f` makes on this thread.
fn allocations<T>(f: impl FnOnce() -> T) -> (u64, T) {
    let mut value = None;
    let info = allocation_counter::measure(|| value = Some(f()));
    (info.count_total, value.expect("measure runs the closure"))
}

#[test]
fn the_generic_layer_allocates_nothing_on_the_happy_path() {
    let collector = Collector::new();
    let mut service = DiagnoseLayer::new(collector.clone()).layer(Answer);
    // The first request to a host makes its entry.
    instant_service::send(&mut service, instant_service::request(http::Method::GET, 8));
    let request = instant_service::request(http::Method::GET, 8);
    let (count, response) = allocations(|| instant_service::send(&mut service, request));
    assert_eq!(response.status(), 200);
    assert_eq!(count, 0);
    assert_eq!(collector.report().requests(), 2);
}

/// Allocations per request through the pooled strategy over a real hyper-util client and
/// the lab, both on this thread (a current-thread runtime), so both are counted: the total
/// for `requests` requests.
fn pooled_allocations(collector: Option<Collector>, requests: u64) -> u64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let lab = runtime.block_on(Lab::builder().start()).unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let layer = FreshConnectionLayer::new();
    let layer = match collector {
        Some(collector) => layer.diagnose(collector),
        None => layer,
    };
    let service = layer.layer(client);
    let url = lab.url("/");
    let send = |n: u64| {
        runtime.block_on(async {
            for _ in 0..n {
                let response = service.clone().oneshot(request(&url, 0)).await.unwrap();
                response.into_body().collect().await.unwrap();
            }
        })
    };
    // Warm up: the connection, the registry's entry, the collector's host.
    send(20);
    let (count, ()) = allocations(|| send(requests));
    count
}

#[test]
fn the_pooled_strategy_allocates_no_more_with_a_collector() {
    const REQUESTS: u64 = 200;
    let without = pooled_allocations(None, REQUESTS);
    let with = pooled_allocations(Some(Collector::new()), REQUESTS);
    println!(
        "allocations for {REQUESTS} requests (client and lab): {without} without a collector, \
         {with} with"
    );
    // Measured equal; the margin (one allocation in 20 requests) is for buffers of the client
    // and the lab that may grow at another moment. A collector that allocated per request
    // would add 200.
    assert!(with <= without + REQUESTS / 20, "{with} > {without}");
}
