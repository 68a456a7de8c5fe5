//! The `tracing` events of the detour strategy (feature `tracing`), under the target
//! `tower_reset::fresh_connection`, with their fields.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tower::{service_fn, BoxError, Layer, ServiceExt};
use tower_reset::attempt::AttemptRecord;
use tower_reset::classify::FailureClass;
use tower_reset::FreshConnectionLayer;
use tracing::Level;

use crate::captured_events::Capture;

type Req = http::Request<String>;
type Res = http::Response<String>;

const TARGET: &str = "tower_reset::fresh_connection";

fn post() -> Req {
    http::Request::post("http://example.com/orders")
        .body("order".to_owned())
        .unwrap()
}

#[test]
fn detours_are_logged_under_the_fresh_connection_target() {
    let capture = Capture::default();
    capture.run(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            // The primary's second request meets a stale connection.
            let calls = Arc::new(AtomicUsize::new(0));
            let primary = service_fn(move |_: Req| {
                let call = calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    if call == 1 {
                        Err::<Res, BoxError>(io::Error::from(io::ErrorKind::ConnectionReset).into())
                    } else {
                        Ok(http::Response::new("primary".to_owned()))
                    }
                }
            });
            let detour = service_fn(|_: Req| async {
                Ok::<_, BoxError>(http::Response::new("detour".to_owned()))
            });
            let service = FreshConnectionLayer::detour(detour).layer(primary);
            let body = |response: Result<Res, BoxError>| response.map(|r| r.into_body()).ok();

            assert_eq!(
                body(service.clone().oneshot(post()).await).as_deref(),
                Some("primary")
            );
            tokio::time::advance(Duration::from_secs(2)).await;
            assert_eq!(body(service.clone().oneshot(post()).await), None, "reset");
            tokio::time::advance(Duration::from_secs(2)).await;
            // Quiet 4 s, after a reset after 2 s: the POST takes a new connection.
            assert_eq!(
                body(service.clone().oneshot(post()).await).as_deref(),
                Some("detour")
            );
            // A retry after a reset, whatever its method.
            let mut retry = post();
            retry
                .extensions_mut()
                .insert(AttemptRecord::retry(2, FailureClass::UnknownOutcome));
            assert_eq!(
                body(service.clone().oneshot(retry).await).as_deref(),
                Some("detour")
            );
        });
    });
    let events = capture.with_target(TARGET);
    assert_eq!(events.len(), 2, "{events:?}");
    let unrepeatable = &events[0];
    assert_eq!(unrepeatable.level, Level::DEBUG);
    assert_eq!(unrepeatable.field("method"), Some("POST"));
    assert_eq!(unrepeatable.field("uri"), Some("http://example.com/orders"));
    assert!(
        unrepeatable
            .field("message")
            .unwrap()
            .contains("not safe to repeat"),
        "{unrepeatable:?}"
    );
    let retry = &events[1];
    assert_eq!(retry.level, Level::DEBUG);
    assert_eq!(retry.field("failure"), Some("unknown_outcome"));
    assert_eq!(retry.field("attempt"), Some("2"));
}
