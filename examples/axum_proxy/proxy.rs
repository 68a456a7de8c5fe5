//! The proxy itself: an axum router whose one handler forwards every request, body streaming,
//! to an upstream through the tower-reset stack. Shared by the example and its test.

// The test uses the router; the example also prints the upstream's counts.
#![allow(dead_code)]

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Layer, ServiceExt};
use tower_reset::classify::StandardClassifier;
use tower_reset::preset::{HyperUtilLayer, ProxyClient};
use tower_reset::replay::ReplayBodyLayer;
use tower_reset::ResetRetryLayer;

/// What every handler shares: the upstream client (cloned per request: clones share the pool and
/// the retry budget) and where to send requests.
#[derive(Clone)]
pub(crate) struct Proxy {
    upstream: ProxyClient<Body>,
    base: Uri,
}

/// The hyper-util stack for a proxy, failures recognised by `classifier`. The request body, a
/// stream the client is still sending, is wrapped in a `ReplayBody`: up to 64 KiB of it is
/// kept, so that a retry can send it again. With the standard classifier, this is
/// `tower_reset::preset::proxy_client()`.
pub(crate) fn upstream(classifier: StandardClassifier) -> ProxyClient<Body> {
    let retry = ResetRetryLayer::builder()
        .classifier(classifier)
        .build()
        .expect("the default limits are valid");
    let client = Client::builder(TokioExecutor::new()).build_http();
    ReplayBodyLayer::new().layer(HyperUtilLayer::new().retry(retry).layer(client))
}

/// A router that forwards every request to `base` (`http://host:port`), retrying connection
/// failures.
pub(crate) fn router(base: Uri) -> Router {
    router_with(base, StandardClassifier::new())
}

/// A router that forwards every request to `base`, retrying what `classifier` recognises (with
/// `unavailable_responses(true)`, an upstream `503` too).
pub(crate) fn router_with(base: Uri, classifier: StandardClassifier) -> Router {
    Router::new().fallback(forward).with_state(Proxy {
        upstream: upstream(classifier),
        base,
    })
}

async fn forward(State(proxy): State<Proxy>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |path| path.as_str());
    parts.uri = match format!("{}{}", proxy.base, path.trim_start_matches('/')).parse() {
        Ok(uri) => uri,
        Err(_) => return (StatusCode::BAD_REQUEST, "bad path").into_response(),
    };
    // The upstream's own host, not the proxy's.
    parts.headers.remove(http::header::HOST);
    let request = Request::from_parts(parts, body);
    match proxy.upstream.oneshot(request).await {
        Ok(response) => response.map(Body::new).into_response(),
        // A POST whose connection reset after it was sent ends here: the upstream may have
        // acted on it, so it is not sent again; the client decides what to do.
        Err(error) => {
            (StatusCode::BAD_GATEWAY, format!("upstream failed: {error}")).into_response()
        }
    }
}
