//! The clients compared, each over a hyper-util legacy `Client` of its own (its own pool), and
//! the blocks of requests they send.

use std::fmt::Debug;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, USER_AGENT};
use http::{Method, Request, Response, Uri};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;
use tower::retry::{Retry, RetryLayer};
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use tower_reset::resume::Resume;
use tower_reset::{
    Backoff, BackoffLayer, FreshConnection, FreshConnectionLayer, ResetRetry, ResetRetryLayer,
    ResumeLayer,
};

use crate::instant_service::RetryAnyError;
use crate::loopback_resolver::Loopback;

type Hyper = Client<HttpConnector<Loopback>, Full<Bytes>>;

/// Which protocol the clients speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    Http1,
    Http2,
}

impl Protocol {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Http1 => "HTTP/1.1",
            Self::Http2 => "HTTP/2",
        }
    }
}

fn hyper_client(protocol: Protocol) -> Hyper {
    let mut connector = HttpConnector::new_with_resolver(Loopback);
    connector.set_nodelay(true);
    let mut builder = Client::builder(TokioExecutor::new());
    if protocol == Protocol::Http2 {
        builder.http2_only(true);
    }
    builder.build(connector)
}

/// The clients of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientKind {
    Bare,
    TowerRetry,
    ResetRetry,
    Backoff,
    ResetRetryBackoff,
    FreshConnection,
    Stack,
    ResumeStack,
}

impl ClientKind {
    pub(crate) const ALL: [Self; 8] = [
        Self::Bare,
        Self::TowerRetry,
        Self::ResetRetry,
        Self::Backoff,
        Self::ResetRetryBackoff,
        Self::FreshConnection,
        Self::Stack,
        Self::ResumeStack,
    ];

    /// The name in the table.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Bare => "hyper-util legacy `Client`",
            Self::TowerRetry => "`tower::retry` (any error, clones every request)",
            Self::ResetRetry => "`ResetRetryLayer::new()`",
            Self::Backoff => "`BackoffLayer::new()`",
            Self::ResetRetryBackoff => "`ResetRetryLayer` + `BackoffLayer`",
            Self::FreshConnection => "`FreshConnectionLayer::new()`",
            Self::Stack => "the three layers (recommended stack)",
            Self::ResumeStack => "`ResumeLayer` + the three layers",
        }
    }

    /// The name on the command line (`--clients`).
    pub(crate) fn key(self) -> &'static str {
        match self {
            Self::Bare => "bare",
            Self::TowerRetry => "tower-retry",
            Self::ResetRetry => "reset-retry",
            Self::Backoff => "backoff",
            Self::ResetRetryBackoff => "reset-retry-backoff",
            Self::FreshConnection => "fresh-connection",
            Self::Stack => "stack",
            Self::ResumeStack => "resume-stack",
        }
    }
}

/// One client of each kind, each over its own hyper-util `Client`.
pub(crate) struct Lineup {
    bare: Hyper,
    tower_retry: Retry<RetryAnyError, Hyper>,
    reset_retry: ResetRetry<Hyper>,
    backoff: Backoff<Hyper>,
    reset_retry_backoff: ResetRetry<Backoff<Hyper>>,
    fresh_connection: FreshConnection<Hyper>,
    stack: ResetRetry<Backoff<FreshConnection<Hyper>>>,
    resume_stack: Resume<ResetRetry<Backoff<FreshConnection<Hyper>>>>,
}

impl Lineup {
    pub(crate) fn new(protocol: Protocol) -> Self {
        let client = || hyper_client(protocol);
        let stack = || {
            ServiceBuilder::new()
                .layer(ResetRetryLayer::new())
                .layer(BackoffLayer::new())
                .layer(FreshConnectionLayer::new())
                .service(client())
        };
        Self {
            bare: client(),
            tower_retry: RetryLayer::new(RetryAnyError { retries: 3 }).layer(client()),
            reset_retry: ResetRetryLayer::new().layer(client()),
            backoff: BackoffLayer::new().layer(client()),
            reset_retry_backoff: ServiceBuilder::new()
                .layer(ResetRetryLayer::new())
                .layer(BackoffLayer::new())
                .service(client()),
            fresh_connection: FreshConnectionLayer::new().layer(client()),
            stack: stack(),
            resume_stack: ResumeLayer::new().layer(stack()),
        }
    }

    /// The size of the client's response future and of the client, in bytes: what is moved
    /// around for each request, and cloned.
    pub(crate) fn sizes(&self, kind: ClientKind) -> (usize, usize) {
        fn of<S: Service<Request<Full<Bytes>>>>(_: &S) -> (usize, usize) {
            (size_of::<S::Future>(), size_of::<S>())
        }
        match kind {
            ClientKind::Bare => of(&self.bare),
            ClientKind::TowerRetry => of(&self.tower_retry),
            ClientKind::ResetRetry => of(&self.reset_retry),
            ClientKind::Backoff => of(&self.backoff),
            ClientKind::ResetRetryBackoff => of(&self.reset_retry_backoff),
            ClientKind::FreshConnection => of(&self.fresh_connection),
            ClientKind::Stack => of(&self.stack),
            ClientKind::ResumeStack => of(&self.resume_stack),
        }
    }

    /// Sends `requests` requests to `target` through the client `kind`, `in_flight` at a time,
    /// each read to its end; returns how long they took.
    pub(crate) async fn block(
        &self,
        kind: ClientKind,
        target: &Arc<Target>,
        requests: usize,
        in_flight: usize,
    ) -> Duration {
        let target = Arc::clone(target);
        match kind {
            ClientKind::Bare => block(&self.bare, target, requests, in_flight).await,
            ClientKind::TowerRetry => block(&self.tower_retry, target, requests, in_flight).await,
            ClientKind::ResetRetry => block(&self.reset_retry, target, requests, in_flight).await,
            ClientKind::Backoff => block(&self.backoff, target, requests, in_flight).await,
            ClientKind::ResetRetryBackoff => {
                block(&self.reset_retry_backoff, target, requests, in_flight).await
            }
            ClientKind::FreshConnection => {
                block(&self.fresh_connection, target, requests, in_flight).await
            }
            ClientKind::Stack => block(&self.stack, target, requests, in_flight).await,
            ClientKind::ResumeStack => block(&self.resume_stack, target, requests, in_flight).await,
        }
    }
}

/// What the requests of a workload look like, and where they go.
#[derive(Debug)]
pub(crate) struct Target {
    method: Method,
    /// One per host; request `i` goes to host `i % uris.len()`.
    uris: Vec<Uri>,
    body: Bytes,
    /// The number of the next request, across blocks: requests visit the hosts in turn.
    next: AtomicUsize,
}

impl Target {
    /// `hosts` hosts, all served by the server at `port`, named `h<n>.test`.
    pub(crate) fn new(method: Method, hosts: usize, port: u16) -> Self {
        let uris = (0..hosts)
            .map(|host| {
                format!("http://h{host}.test:{port}/v1/items")
                    .parse()
                    .expect("a valid URI")
            })
            .collect();
        let body = if method == Method::POST {
            Bytes::from_static(
                br#"{"item":{"name":"benchmark","quantity":1,"note":"tower-reset"}}"#,
            )
        } else {
            Bytes::new()
        };
        Self {
            method,
            uris,
            body,
            next: AtomicUsize::new(0),
        }
    }

    /// The same workload for another client: it starts again at the first host.
    pub(crate) fn fresh(&self) -> Self {
        Self {
            method: self.method.clone(),
            uris: self.uris.clone(),
            body: self.body.clone(),
            next: AtomicUsize::new(0),
        }
    }

    pub(crate) fn hosts(&self) -> usize {
        self.uris.len()
    }

    /// The next request: two headers besides those hyper adds, three for a POST.
    fn request(&self) -> Request<Full<Bytes>> {
        let index = self.next.fetch_add(1, Ordering::Relaxed);
        let mut builder = Request::builder()
            .method(self.method.clone())
            .uri(self.uris[index % self.uris.len()].clone())
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, "tower-reset-bench/1");
        if self.method == Method::POST {
            builder = builder.header(CONTENT_TYPE, "application/json");
        }
        builder
            .body(Full::new(self.body.clone()))
            .expect("a valid request")
    }
}

/// Sends `requests` requests through `service`, `in_flight` at a time: one lane, in this task,
/// when sequential; otherwise one task per lane, each with a clone of the service, taking the
/// requests one after another until none is left.
async fn block<S, B>(
    service: &S,
    target: Arc<Target>,
    requests: usize,
    in_flight: usize,
) -> Duration
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Debug,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Debug,
{
    let started = Instant::now();
    let left = Arc::new(AtomicUsize::new(requests));
    if in_flight <= 1 {
        lane(service.clone(), target, left).await;
    } else {
        let mut lanes = tokio::task::JoinSet::new();
        for _ in 0..in_flight {
            lanes.spawn(lane(
                service.clone(),
                Arc::clone(&target),
                Arc::clone(&left),
            ));
        }
        while let Some(lane) = lanes.join_next().await {
            lane.expect("a lane of requests");
        }
    }
    started.elapsed()
}

async fn lane<S, B>(mut service: S, target: Arc<Target>, left: Arc<AtomicUsize>)
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>>,
    S::Error: Debug,
    B: Body,
    B::Error: Debug,
{
    while left
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
            left.checked_sub(1)
        })
        .is_ok()
    {
        let request = target.request();
        let response = service
            .ready()
            .await
            .expect("the client is ready")
            .call(request)
            .await
            .expect("the healthy server answers");
        assert!(response.status().is_success(), "{}", response.status());
        let body = response
            .into_body()
            .collect()
            .await
            .expect("the whole body");
        black_box(body);
    }
}
