//! The detour strategy keeps requests that are not safe to repeat off a reqwest pool likely to
//! be stale: against the reset lab that silently forgets connections idle over 1.5 s, one
//! request every 2 s, `GET` and `POST` in turn, in paused time. The lab checks its timeout when
//! a request arrives (no timer), each run is bounded in real time, and every request is sent
//! [`frozen`](crate::paused_io::frozen), so the clock moves only while the test sleeps.

use std::time::Duration;

use bytes::Bytes;
use http::Method;
use http_body_util::BodyExt;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use tower_reset::attempt::AttemptHistory;
use tower_reset::fresh_connection::policy::{ConnectionPolicy, StandardConnections};
use tower_reset::lab::Lab;
use tower_reset::reqwest::HttpClient;
use tower_reset::{FreshConnectionLayer, ResetRetryLayer};

use crate::forgetful_lab::forgetful;
use crate::paused_io::{bounded, frozen};

type Req = http::Request<Bytes>;
type Res = http::Response<reqwest::Body>;

/// How the requests of a run ended.
#[derive(Debug, Default)]
struct Outcomes {
    /// The numbers (from 0) of the requests that failed.
    failed: Vec<usize>,
    /// The attempts of each request, by request number; 0 for a request that failed.
    attempts: Vec<u32>,
}

/// `ResetRetry` (3 attempts) over the detour strategy with `policy`: the primary a reqwest
/// client that pools its connections, the detour one that keeps none.
fn stack<P>(policy: P) -> impl Service<Req, Response = Res, Error = reqwest::Error> + Clone
where
    P: ConnectionPolicy + Clone + Send + Sync + 'static,
{
    let client = |builder: reqwest::ClientBuilder| {
        HttpClient::new(builder.no_proxy().build().expect("a reqwest client"))
    };
    let retry = ResetRetryLayer::builder()
        .max_attempts(3)
        .no_budget()
        .build()
        .expect("a valid layer");
    ServiceBuilder::new()
        .layer(retry)
        .layer(
            FreshConnectionLayer::detour(client(
                reqwest::Client::builder().pool_max_idle_per_host(0),
            ))
            .policy(policy),
        )
        .service(client(reqwest::Client::builder()))
}

/// Sends `GET` and `POST` in turn (a `GET` first), one every 2 s, `requests` of them, to `lab`.
async fn alternate<S>(service: S, lab: &Lab, requests: usize) -> Outcomes
where
    S: Service<Req, Response = Res, Error = reqwest::Error> + Clone,
{
    bounded(async {
        let mut outcomes = Outcomes::default();
        for n in 0..requests {
            if n > 0 {
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            let method = if n % 2 == 0 {
                Method::GET
            } else {
                Method::POST
            };
            let request = http::Request::builder()
                .method(method)
                .uri(lab.url("/"))
                .body(Bytes::from_static(b"order"))
                .expect("a valid request");
            let sent = frozen(async {
                let response = service.clone().oneshot(request).await?;
                let attempts = response
                    .extensions()
                    .get::<AttemptHistory>()
                    .map_or(1, AttemptHistory::attempts);
                response.into_body().collect().await?;
                Ok::<_, BoxError>(attempts)
            })
            .await;
            match sent {
                Ok(attempts) => outcomes.attempts.push(attempts),
                Err(_) => {
                    outcomes.failed.push(n);
                    outcomes.attempts.push(0);
                }
            }
        }
        outcomes
    })
    .await
}

/// Without the protection every `POST` reuses a forgotten connection and fails; with it only
/// the first stale failure happens (request 1, before any evidence): each later `POST` finds
/// the host quiet for 2 s, past the 1 s where its connections are likely stale, and goes out
/// on the detour's new connection. The `GET`s still go to the pool (and are retried when their
/// connection was stale).
#[tokio::test(start_paused = true)]
async fn posts_take_a_new_connection_when_the_pool_is_likely_stale() {
    let unprotected = StandardConnections::builder()
        .protect_unrepeatable(false)
        .build()
        .expect("a valid policy");
    let lab = forgetful().await;
    let without = alternate(stack(unprotected), &lab, 12).await;
    assert_eq!(without.failed, [1, 3, 5, 7, 9, 11], "{without:?}");
    assert_eq!(lab.counts().forgotten_resets(), 6);

    let lab = forgetful().await;
    let with = alternate(stack(StandardConnections::new()), &lab, 12).await;
    assert_eq!(with.failed, [1], "only the first stale failure: {with:?}");
    // Request 2 found no pooled connection (request 1's was discarded); request 4 reused
    // request 2's, stale, and was detoured at its retry; and so on.
    assert_eq!(
        with.attempts,
        [1, 0, 1, 1, 2, 1, 1, 1, 2, 1, 1, 1],
        "{with:?}"
    );
    assert_eq!(lab.counts().forgotten_resets(), 3, "requests 1, 4 and 8");
    assert_eq!(
        lab.counts().executed_by_method(&Method::POST),
        5,
        "the failed POST never reached the server, the others once each"
    );
}

/// Against a server that keeps its connections there is no evidence: nothing is detoured, and
/// the stack opens the one connection the bare reqwest client opens.
#[tokio::test(start_paused = true)]
async fn with_no_evidence_nothing_is_detoured() {
    let bare = HttpClient::new(
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("a reqwest client"),
    );
    let bare_lab = Lab::builder().start().await.expect("the lab starts");
    let outcomes = alternate(bare, &bare_lab, 12).await;
    assert!(outcomes.failed.is_empty(), "{outcomes:?}");
    let lab = Lab::builder().start().await.expect("the lab starts");
    let outcomes = alternate(stack(StandardConnections::new()), &lab, 12).await;
    assert!(outcomes.failed.is_empty(), "{outcomes:?}");
    assert_eq!(bare_lab.counts().connections(), 1);
    assert_eq!(lab.counts().connections(), bare_lab.counts().connections());
}
