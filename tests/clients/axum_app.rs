//! An axum app whose one handler calls the lab upstream through the hyper-util stack kept in its
//! `State` (as `examples/axum_proxy` does): `ReplayBodyLayer` (the incoming body is a stream) →
//! `ResumeLayer` → `ResetRetryLayer` → `BackoffLayer` → `FreshConnectionLayer::new()`. The
//! handler streams the upstream body to its own client (resumed, if it breaks), answers `502`
//! when the upstream call fails, and says in `x-upstream-attempts` how many attempts it made; the
//! resumes of the upstream body are kept, by request id, for the test to read once the body is
//! over. The matrix's requests reach the app from a plain hyper-util client, over loopback.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower::util::BoxCloneSyncService;
use tower::{BoxError, ServiceBuilder, ServiceExt};
use tower_reset::attempt::HistoryObserver;
use tower_reset::classify::FailureClass;
use tower_reset::lab::Lab;
use tower_reset::replay::{ReplayBody, ReplayBodyLayer};
use tower_reset::resume::ResumeObserver;
use tower_reset::FreshConnectionLayer;

use crate::matrix::Client as Column;
use crate::support::{
    backoff_layer, boxed, describe, resume_layer, retry_layer, BoxBody, BoxFuture, Call, End,
    Observed, Sender, REQUEST_ID,
};

/// How many attempts the upstream call made, on every answer of the app.
const UPSTREAM_ATTEMPTS: HeaderName = HeaderName::from_static("x-upstream-attempts");
/// The class of each failed upstream attempt, comma-separated.
const UPSTREAM_FAILURES: HeaderName = HeaderName::from_static("x-upstream-failures");

type Upstream = BoxCloneSyncService<Request, http::Response<BoxBody>, BoxError>;

/// The `ResumeObserver` of each upstream call, by request id.
type Resumes = Arc<Mutex<HashMap<String, ResumeObserver>>>;

/// What every handler shares: the upstream client (clones share its pool and retry budget),
/// where it sends requests, and the resumes of each upstream body.
#[derive(Clone)]
struct AppState {
    upstream: Upstream,
    base: String,
    resumes: Resumes,
}

fn upstream() -> Upstream {
    let client: Client<HttpConnector, ReplayBody<Body>> =
        Client::builder(TokioExecutor::new()).build_http();
    let stack = ServiceBuilder::new()
        .map_response(boxed)
        .layer(ReplayBodyLayer::new()) // the body, replayable
        .layer(resume_layer()) // a body that breaks continues
        .layer(retry_layer()) // whether
        .layer(backoff_layer()) // when
        .layer(FreshConnectionLayer::new()) // which connection
        .service(client);
    BoxCloneSyncService::new(stack)
}

fn router(base: String, resumes: Resumes) -> Router {
    Router::new().fallback(forward).with_state(AppState {
        upstream: upstream(),
        base,
        resumes,
    })
}

async fn forward(State(app): State<AppState>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |path| path.as_str());
    parts.uri = match format!("{}{path}", app.base).parse::<Uri>() {
        Ok(uri) => uri,
        Err(_) => return (StatusCode::BAD_REQUEST, "bad path").into_response(),
    };
    parts.headers.remove(http::header::HOST);
    let mut request = Request::from_parts(parts, body);
    let observer = HistoryObserver::attach(&mut request);
    let resumes = ResumeObserver::attach(&mut request);
    if let Some(id) = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|id| id.to_str().ok())
    {
        lock(&app.resumes).insert(id.to_owned(), resumes);
    }
    let mut response = match app.upstream.oneshot(request).await {
        Ok(response) => response.map(Body::new).into_response(),
        Err(error) => (
            StatusCode::BAD_GATEWAY,
            format!("upstream failed: {}", describe(&*error)),
        )
            .into_response(),
    };
    if let Some(history) = observer.get() {
        let headers = response.headers_mut();
        headers.insert(UPSTREAM_ATTEMPTS, HeaderValue::from(history.attempts()));
        let failures: Vec<&str> = history
            .failures()
            .iter()
            .map(|class| class.as_str())
            .collect();
        if let Ok(failures) = HeaderValue::from_str(&failures.join(",")) {
            headers.insert(UPSTREAM_FAILURES, failures);
        }
    }
    response
}

/// The history the app reported in its headers.
fn history(headers: &http::HeaderMap) -> (u32, Vec<FailureClass>) {
    let attempts = headers
        .get(&UPSTREAM_ATTEMPTS)
        .and_then(|value| value.to_str().ok()?.parse().ok())
        .unwrap_or(0);
    let known = [
        FailureClass::NeverSent,
        FailureClass::Refused,
        FailureClass::UnknownOutcome,
        FailureClass::Unavailable,
    ];
    let failures = headers
        .get(&UPSTREAM_FAILURES)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .split(',')
        .filter_map(|name| known.into_iter().find(|class| class.as_str() == name))
        .collect();
    (attempts, failures)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The app, serving on loopback until dropped, and a plain client to it.
pub(crate) struct Axum {
    server: JoinHandle<()>,
    client: Client<HttpConnector, Full<Bytes>>,
    url: String,
    resumes: Resumes,
}

impl Axum {
    pub(crate) async fn start(lab: &Lab) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the app");
        let addr = listener.local_addr().expect("the app's address");
        let resumes = Resumes::default();
        let app = router(format!("http://{}", lab.addr()), Arc::clone(&resumes));
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("the app serves");
        });
        Self {
            server,
            client: Client::builder(TokioExecutor::new()).build_http(),
            url: format!("http://{addr}/matrix"),
            resumes,
        }
    }
}

impl Drop for Axum {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Sender for Axum {
    fn send(&self, call: Call) -> BoxFuture<'_, Observed> {
        let request = call.http_request(&self.url, Full::new(call.body()));
        Box::pin(async move {
            let response = match self.client.request(request).await {
                Ok(response) => response,
                Err(error) => {
                    // The app itself failed: not a cell outcome the matrix expects.
                    return Observed::new(
                        End::Failed(format!("the app failed: {}", describe(&error))),
                        None,
                    );
                }
            };
            let (attempts, failures) = history(response.headers());
            let status = response.status();
            let end = match response.into_body().collect().await {
                Ok(body) if status == StatusCode::OK => End::Ok(body.to_bytes()),
                Ok(body) => End::Failed(format!(
                    "status {status}: {}",
                    String::from_utf8_lossy(&body.to_bytes())
                )),
                Err(error) => End::BodyFailed(describe(&error)),
            };
            let resumes = lock(&self.resumes)
                .get(&call.id)
                .and_then(ResumeObserver::get)
                .map_or(0, |history| history.resumes());
            Observed {
                end,
                attempts,
                failures,
                resumes,
                // The app's history header says nothing of waits.
                waited: std::time::Duration::ZERO,
                stop: None,
            }
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_matrix() {
    crate::matrix::check_client(Column::Axum).await;
}
