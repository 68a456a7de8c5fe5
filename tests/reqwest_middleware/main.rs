//! `ResetRetryMiddleware` inside a reqwest-middleware client, over real loopback sockets, next
//! to reqwest-retry with its defaults.

#[path = "../support/error_chain.rs"]
mod error_chain;
#[path = "../support/reset_server.rs"]
mod reset_server;

use std::error::Error;
use std::io;
use std::time::Duration;

use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use reqwest_retry::policies::ExponentialBackoff;
use reqwest_retry::RetryTransientMiddleware;
use tower_reset::attempt::AttemptRecord;
use tower_reset::reqwest_middleware::ResetRetryMiddleware;

use crate::error_chain::io_kinds;
use crate::reset_server::{Behaviour, ResetServer};

const LIMIT: Duration = Duration::from_secs(10);

fn client() -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new())
        .with(ResetRetryMiddleware::new())
        .build()
}

/// Whether the io error of a reset is in `error`'s chain.
fn has_reset(error: &(dyn Error + 'static)) -> bool {
    io_kinds(error).contains(&io::ErrorKind::ConnectionReset)
}

async fn send(
    client: &ClientWithMiddleware,
    server: &ResetServer,
    method: reqwest::Method,
    id: &str,
    key: Option<&str>,
) -> reqwest_middleware::Result<reqwest::Response> {
    let mut request = client
        .request(method, server.url("/orders"))
        .header("x-request-id", id)
        .body("{\"amount\":42}");
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    tokio::time::timeout(LIMIT, request.send())
        .await
        .expect("the request ends")
}

#[tokio::test]
async fn a_get_reset_after_it_was_sent_is_retried() {
    let server = ResetServer::start(vec![Behaviour::ResetAfterHead]);
    let response = send(&client(), &server, reqwest::Method::GET, "get-1", None)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.url().path(),
        "/orders",
        "the response is reqwest's own"
    );
    assert_eq!(server.executed_id("get-1"), 2);
}

#[tokio::test]
async fn a_post_reset_after_it_was_sent_is_returned_not_repeated() {
    let server = ResetServer::start(vec![Behaviour::ResetAfterHead]);
    let error = send(&client(), &server, reqwest::Method::POST, "post-1", None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, reqwest_middleware::Error::Reqwest(_)),
        "reqwest's own error, not a wrapper: {error:?}"
    );
    assert!(has_reset(&error), "{error:?}");
    assert_eq!(server.executed_id("post-1"), 1);
}

#[tokio::test]
async fn a_post_with_an_idempotency_key_is_retried() {
    let server = ResetServer::start(vec![Behaviour::ResetAfterHead]);
    let response = send(
        &client(),
        &server,
        reqwest::Method::POST,
        "post-2",
        Some("k-2"),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(server.executed_id("post-2"), 2);
}

#[tokio::test]
async fn a_post_to_a_refusing_port_is_retried_once_it_listens() {
    // Nothing listens at first: the POST was never sent, so it is safe to send again.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(ResetRetryMiddleware::from_layers(
            tower_reset::ResetRetryLayer::builder()
                .max_attempts(10)
                .build()
                .unwrap(),
            tower_reset::BackoffLayer::new(),
        ))
        .build();
    let request = client
        .post(format!("http://{addr}/orders"))
        .header("x-request-id", "post-3")
        .body("{}");
    let sending = tokio::spawn(async move { request.send().await });
    tokio::time::sleep(Duration::from_millis(30)).await;
    let server = ResetServer::serve(socket.listen(16).unwrap(), vec![], reset_server::OK);
    let response = tokio::time::timeout(LIMIT, sending)
        .await
        .expect("the request ends")
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(server.executed_id("post-3"), 1);
}

#[tokio::test]
async fn middleware_further_down_sees_the_attempt_record() {
    #[derive(Clone, Default)]
    struct Seen(std::sync::Arc<std::sync::Mutex<Vec<Option<u32>>>>);

    #[async_trait::async_trait]
    impl reqwest_middleware::Middleware for Seen {
        async fn handle(
            &self,
            request: reqwest::Request,
            extensions: &mut http::Extensions,
            next: reqwest_middleware::Next<'_>,
        ) -> reqwest_middleware::Result<reqwest::Response> {
            let number = extensions.get::<AttemptRecord>().map(AttemptRecord::number);
            self.0.lock().unwrap().push(number);
            next.run(request, extensions).await
        }
    }

    let seen = Seen::default();
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(ResetRetryMiddleware::new())
        .with(seen.clone())
        .build();
    let server = ResetServer::start(vec![Behaviour::ResetAfterHead]);
    send(&client, &server, reqwest::Method::GET, "get-2", None)
        .await
        .unwrap();
    assert_eq!(*seen.0.lock().unwrap(), [None, Some(2)]);
}

#[tokio::test]
async fn a_streaming_body_passes_through_once() {
    let server = ResetServer::start(vec![Behaviour::ResetAfterHead]);
    let stream = tokio_stream::iter([Ok::<_, io::Error>(hyper::body::Frame::data(
        bytes::Bytes::from_static(b"12345"),
    ))]);
    let error = tokio::time::timeout(
        LIMIT,
        client()
            .put(server.url("/blob"))
            .header("x-request-id", "put-1")
            .header("content-length", "5")
            .body(reqwest::Body::wrap(http_body_util::StreamBody::new(stream)))
            .send(),
    )
    .await
    .expect("the request ends")
    .unwrap_err();
    assert!(has_reset(&error), "{error:?}");
    assert_eq!(
        server.executed_id("put-1"),
        1,
        "reqwest cannot copy a stream: even a PUT is sent once"
    );
}

/// The comparison: reqwest-retry with its defaults treats a reset as transient and sends the
/// POST again, so the server runs it twice.
#[tokio::test]
async fn reqwest_retry_sends_a_reset_post_twice() {
    let server = ResetServer::start(vec![Behaviour::ResetAfterHead]);
    let policy = ExponentialBackoff::builder().build_with_max_retries(3);
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(RetryTransientMiddleware::new_with_policy(policy))
        .build();
    let response = send(&client, &server, reqwest::Method::POST, "post-4", None)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        server.executed_id("post-4"),
        2,
        "reqwest-retry repeated a POST the server had already received in full"
    );
}

/// The layers see reqwest-middleware's extensions: a `HistoryObserver` added with
/// `with_extension` learns the history of a request, a failed one included.
#[tokio::test]
async fn a_history_observer_in_the_extensions_receives_the_history() {
    use tower_reset::attempt::HistoryObserver;
    use tower_reset::classify::FailureClass;

    let server = ResetServer::start(vec![Behaviour::ResetAfterHead, Behaviour::ResetAfterHead]);
    let client = client();

    let observer = HistoryObserver::default();
    let error = tokio::time::timeout(
        LIMIT,
        client
            .post(server.url("/orders"))
            .header("x-request-id", "post-4")
            .body("{}")
            .with_extension(observer.clone())
            .send(),
    )
    .await
    .expect("the request ends")
    .unwrap_err();
    assert!(has_reset(&error), "{error:?}");
    let history = observer.get().expect("the failed POST's history");
    assert_eq!(history.attempts(), 1);
    assert_eq!(history.failures(), [FailureClass::UnknownOutcome]);

    let observer = HistoryObserver::default();
    let response = tokio::time::timeout(
        LIMIT,
        client
            .get(server.url("/orders"))
            .header("x-request-id", "get-3")
            .with_extension(observer.clone())
            .send(),
    )
    .await
    .expect("the request ends")
    .unwrap();
    assert_eq!(response.status(), 200);
    let history = observer.get().expect("the GET's history");
    assert_eq!(history.attempts(), 2);
    assert_eq!(history.failures(), [FailureClass::UnknownOutcome]);
}

/// A policy reads the extensions the request carries in the middleware chain.
#[tokio::test]
async fn a_policy_sees_the_extensions_of_the_chain() {
    use tower_reset::reset_retry::policy::{retry_if, Attempt, PolicyExt, StandardRetry};

    /// Set on requests the server deduplicates.
    #[derive(Clone)]
    struct Deduplicated;

    let policy = StandardRetry::new().or(retry_if(|attempt: &Attempt<'_>| {
        attempt.extensions().get::<Deduplicated>().is_some()
    }));
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(ResetRetryMiddleware::from_layers(
            tower_reset::ResetRetryLayer::builder()
                .policy(policy)
                .build()
                .unwrap(),
            tower_reset::BackoffLayer::new(),
        ))
        .build();
    let server = ResetServer::start(vec![Behaviour::ResetAfterHead]);
    let response = tokio::time::timeout(
        LIMIT,
        client
            .post(server.url("/orders"))
            .header("x-request-id", "post-5")
            .body("{}")
            .with_extension(Deduplicated)
            .send(),
    )
    .await
    .expect("the request ends")
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(server.executed_id("post-5"), 2);
}
