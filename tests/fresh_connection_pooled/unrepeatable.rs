//! Requests that are not safe to repeat (a `POST` without an `Idempotency-Key`) kept off
//! connections likely to be stale, against the reset lab in paused time: once a host has reset
//! a connection after some idle time, such a request does not reuse a connection idle about as
//! long, while `GET`s keep reusing them (and are retried when they fail); with no evidence,
//! nothing changes.
//!
//! The lab's `Idle::Forget` is checked when a request arrives (no timer), the hyper-util client
//! has no timer, every run is bounded in real time, and every request is sent
//! [`frozen`](crate::paused_io::frozen), so the clock moves only while the test sleeps: every
//! idle time is exactly the gap before the request.

use std::time::Duration;

use bytes::Bytes;
use http::Method;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{BoxError, Layer, Service, ServiceBuilder, ServiceExt};
use tower_reset::attempt::AttemptRequest;
use tower_reset::fresh_connection::policy::{ConnectionPolicy, StandardConnections};
use tower_reset::lab::{Idle, Lab};
use tower_reset::{FreshConnection, FreshConnectionLayer, ResetRetry};

use super::{attempts, client, retry, HttpClient};
use crate::forgetful_lab::forgetful;
use crate::paused_io::{bounded, frozen};

/// How each request of a run ended.
#[derive(Debug, Default)]
struct Outcomes {
    /// The numbers (from 0) of the `POST`s that failed.
    failed_posts: Vec<usize>,
    /// The numbers of the `GET`s that failed, even after their retries.
    failed_gets: Vec<usize>,
    /// The attempts of each request, by request number; 0 for a request that failed.
    attempts: Vec<u32>,
}

/// A request of a run: its method, and whether it carries an `Idempotency-Key`.
#[derive(Debug, Clone, Copy)]
enum Send {
    Get,
    Post,
    KeyedPost,
}

/// Sends `GET` and `POST` in turn (a `GET` first), `requests` of them, each `gap` after the
/// previous one ended, each read to its end; `post` says what the `POST`s are.
async fn alternate<S>(service: S, lab: &Lab, gap: Duration, requests: usize, post: Send) -> Outcomes
where
    S: Service<http::Request<Full<Bytes>>, Response = http::Response<hyper::body::Incoming>>
        + Clone,
    S::Error: Into<BoxError>,
{
    let sends: Vec<(Duration, Send)> = (0..requests)
        .map(|n| {
            let gap = if n == 0 { Duration::ZERO } else { gap };
            (gap, if n % 2 == 0 { Send::Get } else { post })
        })
        .collect();
    run(service, |_| lab.url("/"), &sends).await
}

/// Sends each request of `sends` after its gap, to the URL `url` gives for its number, each
/// read to its end.
async fn run<S>(service: S, url: impl Fn(usize) -> String, sends: &[(Duration, Send)]) -> Outcomes
where
    S: Service<http::Request<Full<Bytes>>, Response = http::Response<hyper::body::Incoming>>
        + Clone,
    S::Error: Into<BoxError>,
{
    bounded(async {
        let mut outcomes = Outcomes::default();
        for (n, (gap, send)) in sends.iter().enumerate() {
            tokio::time::sleep(*gap).await;
            let builder = http::Request::builder().uri(url(n));
            let builder = match send {
                Send::Get => builder.method(Method::GET),
                Send::Post => builder.method(Method::POST),
                Send::KeyedPost => builder
                    .method(Method::POST)
                    .header("idempotency-key", format!("order-{n}")),
            };
            let request = builder
                .body(Full::new(Bytes::from_static(b"order")))
                .expect("a valid request");
            let sent = frozen(async {
                let response = service.clone().oneshot(request).await.map_err(Into::into)?;
                let attempts = attempts(&response);
                response.into_body().collect().await?;
                Ok::<_, BoxError>(attempts)
            })
            .await;
            match (send, sent) {
                (_, Ok(attempts)) => outcomes.attempts.push(attempts),
                (Send::Get, Err(_)) => outcomes.failed_gets.push(n),
                (_, Err(_)) => outcomes.failed_posts.push(n),
            }
            if outcomes.attempts.len() == n {
                outcomes.attempts.push(0);
            }
        }
        outcomes
    })
    .await
}

/// `ResetRetry` (3 attempts) over the pooled strategy with `policy`, over a client that keeps
/// idle connections for ever.
fn stack<P>(policy: P) -> ResetRetry<FreshConnection<HttpClient, P>>
where
    P: ConnectionPolicy + Clone,
{
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(None)
        .build_http();
    ServiceBuilder::new()
        .layer(retry(3))
        .service(FreshConnectionLayer::new().policy(policy).layer(client))
}

/// [`stack`] with the standard policy.
fn standard() -> ResetRetry<FreshConnection<HttpClient, StandardConnections>> {
    stack(StandardConnections::new())
}

fn unprotected() -> StandardConnections {
    StandardConnections::builder()
        .protect_unrepeatable(false)
        .build()
        .expect("a valid policy")
}

const EVERY_2_S: Duration = Duration::from_secs(2);

/// The acceptance: against a peer that forgets connections idle over 1.5 s, one request
/// every 2 s, without the protection every `POST` meets a forgotten connection and fails (it
/// may have been processed, so it is not retried); with it, only the first stale failure
/// happens (request 1, a `POST`, before any evidence), and no `POST` fails after it. The
/// `GET`s keep reusing the connections the `POST`s left (stale: two attempts each) and are
/// retried.
#[tokio::test(start_paused = true)]
async fn posts_avoid_connections_idle_past_a_forgetful_peers_timeout() {
    let lab = forgetful().await;
    let without = alternate(stack(unprotected()), &lab, EVERY_2_S, 12, Send::Post).await;
    assert_eq!(without.failed_posts, [1, 3, 5, 7, 9, 11], "{without:?}");
    assert!(without.failed_gets.is_empty(), "{without:?}");
    assert_eq!(lab.counts().forgotten_resets(), 6);

    let lab = forgetful().await;
    let with = alternate(standard(), &lab, EVERY_2_S, 12, Send::Post).await;
    assert_eq!(
        with.failed_posts,
        [1],
        "only the first stale failure: {with:?}"
    );
    assert!(with.failed_gets.is_empty(), "{with:?}");
    // Request 2 found no connection left (request 1's was condemned); from request 4 on, each
    // GET reused the connection of the POST before it, stale, and was retried on a new one.
    // Each POST after request 1 went out on a new connection, at the first attempt.
    assert_eq!(
        with.attempts,
        [1, 0, 1, 1, 2, 1, 2, 1, 2, 1, 2, 1],
        "{with:?}"
    );
    assert_eq!(
        lab.counts().forgotten_resets(),
        5,
        "request 1 and the GETs 4 to 10"
    );
    assert_eq!(
        lab.counts().executed_by_method(&Method::POST),
        5,
        "the failed POST never reached the server, the others once each"
    );
}

/// A `POST` with an `Idempotency-Key` is safe to repeat: it is not protected, it reuses the
/// stale connection as a `GET` does, and the retry covers it.
#[tokio::test(start_paused = true)]
async fn a_post_with_an_idempotency_key_keeps_reusing_connections() {
    let lab = forgetful().await;
    let outcomes = alternate(standard(), &lab, EVERY_2_S, 6, Send::KeyedPost).await;
    assert!(outcomes.failed_posts.is_empty(), "{outcomes:?}");
    assert_eq!(
        outcomes.attempts,
        [1, 2, 2, 2, 2, 2],
        "every reused connection was stale: {outcomes:?}"
    );
    assert_eq!(lab.counts().forgotten_resets(), 5);
}

/// What the policy judges safe to repeat is not protected: with a judge that calls every
/// request safe, the `POST`s reuse the stale connections and fail (the retry policy, which
/// judges for itself, does not retry them). Say in both policies what your server deduplicates.
#[tokio::test(start_paused = true)]
async fn the_policy_judges_what_is_safe_to_repeat() {
    fn everything(_: &dyn AttemptRequest) -> bool {
        true
    }
    let policy = StandardConnections::builder()
        .safe_to_repeat(everything)
        .build()
        .expect("a valid policy");
    let lab = forgetful().await;
    let outcomes = alternate(stack(policy), &lab, EVERY_2_S, 6, Send::Post).await;
    assert_eq!(outcomes.failed_posts, [1, 3, 5], "{outcomes:?}");
}

/// Against a server that keeps its connections there is no evidence, and the protection costs
/// nothing: the stack opens exactly the connections the bare client opens (one), and no
/// request fails.
#[tokio::test(start_paused = true)]
async fn with_no_evidence_nothing_changes() {
    let bare_lab = Lab::builder().start().await.expect("the lab starts");
    let bare = alternate(client(), &bare_lab, EVERY_2_S, 12, Send::Post).await;
    let lab = Lab::builder().start().await.expect("the lab starts");
    let layered = alternate(standard(), &lab, EVERY_2_S, 12, Send::Post).await;
    assert!(
        bare.failed_posts.is_empty() && bare.failed_gets.is_empty(),
        "{bare:?}"
    );
    assert!(
        layered.failed_posts.is_empty() && layered.failed_gets.is_empty(),
        "{layered:?}"
    );
    assert_eq!(bare_lab.counts().connections(), 1);
    assert_eq!(lab.counts().connections(), bare_lab.counts().connections());
}

/// The evidence of a stale connection lasts 10 minutes: a `POST` 590 s after the previous one
/// is still protected, one more than 10 minutes after the failure is not (and renews it).
#[tokio::test(start_paused = true)]
async fn the_evidence_lasts_ten_minutes() {
    let lab = forgetful().await;
    let sends = [
        (Duration::ZERO, Send::Post),
        (EVERY_2_S, Send::Post),
        (EVERY_2_S, Send::Post),
        (Duration::from_secs(590), Send::Post),
        (Duration::from_secs(610), Send::Post),
        (EVERY_2_S, Send::Post),
    ];
    let outcomes = run(standard(), |_| lab.url("/"), &sends).await;
    assert_eq!(outcomes.failed_posts, [1, 4], "{outcomes:?}");
}

/// A connection that the registry forgets (idle 5 minutes) while its host's connections are
/// likely stale is retired as well, even by a request to another host: once forgotten, it could
/// no longer be kept from a `POST`.
#[tokio::test(start_paused = true)]
async fn a_connection_forgotten_while_likely_stale_is_retired() {
    let stale = forgetful().await;
    let other = Lab::builder().start().await.expect("the lab starts");
    let sends = [
        (Duration::ZERO, Send::Post),
        // Fails: the evidence.
        (EVERY_2_S, Send::Post),
        // A new connection, which then sits idle past the registry's memory.
        (EVERY_2_S, Send::Get),
        // To the other host: forgets that connection, and retires it.
        (Duration::from_secs(400), Send::Get),
        (Duration::ZERO, Send::Post),
    ];
    let url = |n| {
        if n == 3 {
            other.url("/")
        } else {
            stale.url("/")
        }
    };
    let outcomes = run(standard(), url, &sends).await;
    assert_eq!(outcomes.failed_posts, [1], "{outcomes:?}");
    assert_eq!(stale.counts().forgotten_resets(), 1);
}

/// With a learned limit, the connection left to be reused past it (to test it) is never given
/// to a request that is not safe to repeat: the peer forgets connections idle over 300 ms, the
/// limit is learned from two resets, and once it has retired 16 connections the test of the
/// limit is due; the `POST`s that come then still get new connections, and the next `GET` is
/// the one that tests it (before: the first `POST` did, and failed).
#[tokio::test(start_paused = true)]
async fn only_a_request_safe_to_repeat_tests_a_learned_limit() {
    let lab = Lab::builder()
        .idle_timeout(Duration::from_millis(300), Idle::Forget)
        .start()
        .await
        .expect("the lab starts");
    let policy = StandardConnections::builder()
        .learn_idle_timeout(true)
        // Without the protection, so that only the rule for the test of the limit applies.
        .protect_unrepeatable(false)
        .build()
        .expect("a valid policy");
    let gap = Duration::from_millis(500);
    // A first GET, two that are reset (the limit is learned), 16 retired by the limit.
    let mut sends = vec![(Duration::ZERO, Send::Get)];
    sends.extend([(gap, Send::Get); 18]);
    sends.extend([(gap, Send::Post); 4]);
    sends.push((gap, Send::Get));
    let outcomes = run(stack(policy), |_| lab.url("/"), &sends).await;
    assert!(outcomes.failed_posts.is_empty(), "{outcomes:?}");
    assert_eq!(
        lab.counts().forgotten_resets(),
        3,
        "the two that taught the limit, and the GET that tested it"
    );
    assert_eq!(outcomes.attempts.last(), Some(&2), "{outcomes:?}");
}

/// The pooled strategy's events (feature `tracing`), under the target
/// `tower_reset::fresh_connection`: the condemned connection, and the connections retired
/// before a `POST`, with their fields.
#[cfg(feature = "tracing")]
#[test]
fn the_connections_retired_for_a_post_are_logged() {
    use tracing::Level;

    use crate::captured_events::Capture;

    let capture = Capture::default();
    capture.run(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let lab = forgetful().await;
            let outcomes = alternate(standard(), &lab, EVERY_2_S, 4, Send::Post).await;
            assert_eq!(outcomes.failed_posts, [1], "{outcomes:?}");
        });
    });
    let events = capture.with_target("tower_reset::fresh_connection");
    let messages: Vec<_> = events.iter().map(|event| event.field("message")).collect();
    assert_eq!(
        messages,
        [
            Some("connection condemned and poisoned"),
            Some("idle connections retired before a request not safe to repeat"),
        ],
        "{events:?}"
    );
    let (condemned, retired) = (&events[0], &events[1]);
    assert_eq!(condemned.level, Level::INFO);
    assert_eq!(condemned.field("failure"), Some("unknown_outcome"));
    assert_eq!(condemned.field("idle_siblings_retired"), Some("0"));
    assert_eq!(retired.level, Level::DEBUG);
    assert_eq!(retired.field("method"), Some("POST"));
    assert_eq!(retired.field("retired"), Some("1"));
    assert_eq!(retired.field("stale_after_ms"), Some("1000"));
}
