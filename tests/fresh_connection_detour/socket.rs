//! A reqwest stack over real loopback sockets: `ResetRetry` over `Detour` over two
//! `HttpClient`s, the primary pooling its connections, the detour keeping none.
//!
//! The server makes its open connections stale (the next request on each is reset after being
//! read), as a restart or an idle timeout would; the client cannot know until it reuses one.

use std::future::Future;
use std::time::Duration;

use http::HeaderValue;
use http_body_util::BodyExt;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_reset::attempt::AttemptHistory;
use tower_reset::classify::{ClassifyError, FailureClass, StandardClassifier};
use tower_reset::reqwest::HttpClient;
use tower_reset::{FreshConnectionLayer, ResetRetryLayer};

use crate::server::{Seen, Server};

type Req = http::Request<String>;
type Res = http::Response<reqwest::Body>;

/// Every socket test ends within this, or fails.
async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(Duration::from_secs(5), test)
        .await
        .expect("the test took more than 5 s");
}

/// A reqwest client that tags its requests with `x-client: <name>`.
fn client(name: &'static str, builder: reqwest::ClientBuilder) -> HttpClient {
    let mut headers = http::HeaderMap::new();
    headers.insert("x-client", HeaderValue::from_static(name));
    let client = builder
        .no_proxy()
        .default_headers(headers)
        .build()
        .expect("reqwest client");
    HttpClient::new(client)
}

/// The client whose pool goes stale.
fn primary() -> HttpClient {
    client("primary", reqwest::Client::builder())
}

/// The client that never keeps a connection.
fn detour() -> HttpClient {
    client(
        "detour",
        reqwest::Client::builder().pool_max_idle_per_host(0),
    )
}

/// The recommended stack for reqwest.
fn stack(primary: HttpClient) -> impl Service<Req, Response = Res, Error = reqwest::Error> + Clone {
    ServiceBuilder::new()
        .layer(ResetRetryLayer::new())
        .layer(FreshConnectionLayer::detour(detour()))
        .service(primary)
}

/// What came back: the body, and the number of attempts it took.
#[derive(Debug)]
struct Answer {
    body: String,
    attempts: u32,
    failures: Vec<FailureClass>,
}

async fn send<S>(service: &mut S, request: Req) -> Result<Answer, reqwest::Error>
where
    S: Service<Req, Response = Res, Error = reqwest::Error>,
{
    let response = service.ready().await?.call(request).await?;
    assert_eq!(response.status(), 200);
    let (attempts, failures) = match response.extensions().get::<AttemptHistory>() {
        Some(history) => (history.attempts(), history.failures().to_vec()),
        None => (1, Vec::new()),
    };
    // Read the body to its end, so that the connection goes back to the pool.
    let body = response.into_body().collect().await?.to_bytes();
    Ok(Answer {
        body: String::from_utf8_lossy(&body).into_owned(),
        attempts,
        failures,
    })
}

fn get(server: &Server, path: &str) -> Req {
    http::Request::get(server.url(path))
        .body(String::new())
        .unwrap()
}

fn post(server: &Server, path: &str) -> Req {
    http::Request::post(server.url(path))
        .body("amount=42".to_owned())
        .unwrap()
}

/// Sends one GET through `service` to open a connection, and lets the client put it back in
/// its pool (hyper returns an HTTP/1 connection to the pool from a task of its own, once the
/// body was read).
async fn warm_one<S>(service: &mut S, server: &Server)
where
    S: Service<Req, Response = Res, Error = reqwest::Error>,
{
    let warm = send(service, get(server, "/warm")).await.expect("warm-up");
    assert_eq!(warm.body, "conn=0");
    settle().await;
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

fn seen(
    connection: usize,
    rank: usize,
    method: &str,
    path: &str,
    client: &str,
    reset: bool,
) -> Seen {
    Seen {
        connection,
        rank,
        method: method.to_owned(),
        path: path.to_owned(),
        client: client.to_owned(),
        reset,
    }
}

/// The acceptance test: a GET on a stale pooled connection is reset, and its retry goes out on
/// a new connection, through the detour client.
#[tokio::test]
async fn a_get_on_a_stale_connection_is_retried_on_a_new_connection() {
    bounded(async {
        let server = Server::start().await;
        let mut service = stack(primary());
        warm_one(&mut service, &server).await;
        server.make_connections_stale();

        let answer = send(&mut service, get(&server, "/stale"))
            .await
            .expect("the retry succeeds");

        assert_eq!(answer.attempts, 2, "{answer:?}");
        assert_eq!(answer.failures, [FailureClass::UnknownOutcome]);
        assert_eq!(answer.body, "conn=1", "answered on a new connection");
        assert_eq!(server.connections(), 2);
        assert_eq!(server.requests_per_connection(), [2, 1]);
        assert_eq!(
            server.seen_for("/stale"),
            [
                // The first attempt reused the warm connection, which was stale.
                seen(0, 2, "GET", "/stale", "primary", true),
                // The retry: first request of a new connection, opened by the detour client.
                seen(1, 1, "GET", "/stale", "detour", false),
            ]
        );

        // Later first attempts still go to the primary's pool.
        settle().await;
        let after = send(&mut service, get(&server, "/after")).await.unwrap();
        assert_eq!(after.attempts, 1);
        assert_eq!(
            server.seen_for("/after"),
            [seen(2, 1, "GET", "/after", "primary", false)],
            "the primary had no live connection left, so it opened one"
        );
    })
    .await;
}

/// Opens two connections in the primary's pool: two concurrent requests, held by the server
/// until both connections are open.
async fn warm_two<S>(service: &mut S, server: &Server)
where
    S: Service<Req, Response = Res, Error = reqwest::Error> + Clone,
{
    let mut other = service.clone();
    let path = "/wait-for-connections/2";
    let (a, b) = tokio::join!(
        send(service, get(server, path)),
        send(&mut other, get(server, path))
    );
    let mut bodies = [a.expect("warm-up a").body, b.expect("warm-up b").body];
    bodies.sort();
    assert_eq!(bodies, ["conn=0", "conn=1"]);
    server.wait_for_connections(2).await;
    settle().await;
}

/// After a restart every pooled connection is stale. Without the detour, the retry takes the
/// next stale connection from the pool and fails the same way; with it, one failure is all it
/// costs.
#[tokio::test]
async fn with_several_stale_connections_the_detour_saves_an_attempt() {
    bounded(async {
        // With the detour.
        let server = Server::start().await;
        let mut service = stack(primary());
        warm_two(&mut service, &server).await;
        server.make_connections_stale();

        let answer = send(&mut service, get(&server, "/stale")).await.unwrap();
        assert_eq!(answer.attempts, 2, "{answer:?}");
        assert_eq!(answer.body, "conn=2");
        let stale = server.seen_for("/stale");
        assert_eq!(stale.len(), 2, "{stale:?}");
        assert!(stale[0].connection < 2 && stale[0].reset && stale[0].client == "primary");
        assert_eq!(stale[1], seen(2, 1, "GET", "/stale", "detour", false));

        // Without it (the control): the retry walks into the other stale connection.
        let server = Server::start().await;
        let mut service = ServiceBuilder::new()
            .layer(ResetRetryLayer::new())
            .service(primary());
        warm_two(&mut service, &server).await;
        server.make_connections_stale();

        let answer = send(&mut service, get(&server, "/stale")).await.unwrap();
        assert_eq!(answer.attempts, 3, "{answer:?}");
        assert_eq!(
            answer.failures,
            [FailureClass::UnknownOutcome, FailureClass::UnknownOutcome]
        );
        let stale = server.seen_for("/stale");
        assert_eq!(stale.len(), 3, "{stale:?}");
        assert!(stale[0].reset && stale[1].reset && !stale[2].reset);
        assert_ne!(stale[0].connection, stale[1].connection);
        assert_eq!(stale[2].connection, 2);
    })
    .await;
}

/// A POST without an idempotency key whose connection was reset may have been processed: it
/// is not retried, so the server executes it once, and the caller gets reqwest's error.
#[tokio::test]
async fn a_post_on_a_stale_connection_is_not_retried() {
    bounded(async {
        let server = Server::start().await;
        let mut service = stack(primary());
        warm_one(&mut service, &server).await;
        server.make_connections_stale();

        let error = send(&mut service, post(&server, "/pay"))
            .await
            .expect_err("the reset reaches the caller");
        assert_eq!(
            StandardClassifier::new().classify_error(&error),
            Some(FailureClass::UnknownOutcome),
            "{error:?}"
        );
        assert_eq!(
            server.seen_for("/pay"),
            [seen(0, 2, "POST", "/pay", "primary", true)],
            "executed once, never detoured"
        );
        assert_eq!(server.connections(), 1);
    })
    .await;
}

/// The same POST with an `Idempotency-Key` is safe to repeat: it is retried through the detour.
#[tokio::test]
async fn a_post_with_an_idempotency_key_is_retried_through_the_detour() {
    bounded(async {
        let server = Server::start().await;
        let mut service = stack(primary());
        warm_one(&mut service, &server).await;
        server.make_connections_stale();

        let mut request = post(&server, "/pay");
        request
            .headers_mut()
            .insert("idempotency-key", HeaderValue::from_static("order-7"));
        let answer = send(&mut service, request)
            .await
            .expect("the retry succeeds");
        assert_eq!(answer.attempts, 2);
        assert_eq!(
            server.seen_for("/pay"),
            [
                seen(0, 2, "POST", "/pay", "primary", true),
                seen(1, 1, "POST", "/pay", "detour", false),
            ]
        );
    })
    .await;
}

/// `HttpClient` alone: an `http::Request` in, an `http::Response` out, with the headers of both.
#[tokio::test]
async fn http_client_converts_requests_and_responses() {
    bounded(async {
        let server = Server::start().await;
        let mut client = primary();
        let response = ServiceExt::<Req>::ready(&mut client)
            .await
            .unwrap()
            .call(get(&server, "/plain"))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-length"], "6");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"conn=0");
        assert_eq!(
            server.seen(),
            [seen(0, 1, "GET", "/plain", "primary", false)]
        );

        // A relative URI cannot be sent: a builder error, and nothing reaches the server.
        let relative = http::Request::get("/relative").body(String::new()).unwrap();
        let error = ServiceExt::<Req>::ready(&mut client)
            .await
            .unwrap()
            .call(relative)
            .await
            .unwrap_err();
        assert!(error.is_builder(), "{error:?}");
        assert_eq!(server.seen().len(), 1);
    })
    .await;
}
