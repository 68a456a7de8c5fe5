//! `ResetRetry` + `Backoff` over a hyper-util legacy client and real loopback sockets, against
//! the scripted [`ResetServer`]. Real time: only lower bounds on the gaps are asserted.
//!
//! No feature is needed: `Backoff` boxes the client's error, and a `BoxError` is classified by
//! walking its `source()` chain, where the `io::Error` (`ConnectionReset`) is found.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{ServiceBuilder, ServiceExt};
use tower_reset::attempt::AttemptHistory;
use tower_reset::backoff::policy::{Exponential, Jitter};
use tower_reset::{BackoffLayer, ResetRetryLayer};

use crate::reset_server::{Behaviour, ResetServer};

#[tokio::test]
async fn resets_are_retried_at_once_then_with_growing_waits() {
    tokio::time::timeout(Duration::from_secs(10), async {
        let server = ResetServer::start(vec![Behaviour::ResetAfterHead; 3]);
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let schedule = Exponential::builder()
            .base(Duration::from_millis(50))
            .jitter(Jitter::None)
            .build()
            .unwrap();
        let service = ServiceBuilder::new()
            .layer(
                ResetRetryLayer::builder()
                    .no_budget()
                    .max_attempts(4)
                    .build()
                    .unwrap(),
            )
            .layer(BackoffLayer::new().schedule(schedule))
            .service(client);

        let request = http::Request::get(server.url("/"))
            .body(Full::default())
            .unwrap();
        let response = service.oneshot(request).await.expect("attempt 4 succeeds");
        assert_eq!(response.status(), 200);
        let history = response.extensions().get::<AttemptHistory>().cloned();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"ok");
        assert_eq!(history.map(|h| h.attempts()), Some(4));

        let arrivals = server.arrivals();
        assert_eq!(arrivals.len(), 4, "three resets, then the answer");
        assert_eq!(server.received("GET"), 4);
        assert_eq!(server.script_left(), 0);
        let gaps: Vec<Duration> = arrivals.windows(2).map(|w| w[1] - w[0]).collect();
        // Immediate after the first reset; then 50 ms, then 100 ms at least.
        assert!(gaps[0] < gaps[1], "{gaps:?}");
        assert!(gaps[1] >= Duration::from_millis(50), "{gaps:?}");
        assert!(gaps[2] >= Duration::from_millis(100), "{gaps:?}");
    })
    .await
    .expect("the test timed out");
}
