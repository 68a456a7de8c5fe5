//! What the socket tests share: resources, labs that serve them, the three clients under the
//! contract stack, and a reader that hashes a body as it comes.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http::header::{ETAG, RANGE};
use http::{HeaderValue, Request, Response};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sha2::{Digest, Sha256};
use tower::util::BoxCloneSyncService;
use tower::{BoxError, ServiceBuilder, ServiceExt};
use tower_reset::backoff::policy::{Exponential, Jitter, Rng};
use tower_reset::lab::{Lab, LabBuilder, Match, Reply};
use tower_reset::resume::{NoResume, ResumeHistory, ResumeObserver};
use tower_reset::{BackoffLayer, FreshConnectionLayer, ResetRetryLayer, ResumeLayer};

pub(crate) const MIB: usize = 1024 * 1024;

/// No download of these tests may take longer (a hang fails the test instead).
pub(crate) const BOUND: std::time::Duration = std::time::Duration::from_secs(30);

/// `len` pseudo-random bytes (seeded), so that a body spliced at the wrong offset, or from
/// another version, cannot hash the same.
pub(crate) fn resource(len: usize, seed: u64) -> Bytes {
    let mut rng = Rng::new(seed);
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        bytes.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    bytes.truncate(len);
    Bytes::from(bytes)
}

pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// A `200` serving `body` with a strong `ETag` and range support.
pub(crate) fn tagged(body: Bytes, tag: &'static str) -> Reply {
    Reply::ok()
        .body(body)
        .header(ETAG, HeaderValue::from_static(tag))
        .ranges()
}

/// The clients the suite runs over, each under the contract stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    HyperUtilH1,
    HyperUtilH2,
    Reqwest,
}

impl Kind {
    pub(crate) const ALL: [Kind; 3] = [Kind::HyperUtilH1, Kind::HyperUtilH2, Kind::Reqwest];

    /// A lab builder speaking this client's protocol.
    pub(crate) fn lab(self) -> LabBuilder {
        match self {
            Kind::HyperUtilH2 => Lab::builder().http2(),
            _ => Lab::builder(),
        }
    }
}

/// A response whose body is boxed, its error a `BoxError`.
fn boxed<B>(response: Response<B>) -> Response<UnsyncBoxBody<Bytes, BoxError>>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    response.map(|body| body.map_err(Into::into).boxed_unsync())
}

/// A schedule of equal delays.
pub(crate) fn constant(delay: std::time::Duration) -> Exponential {
    Exponential::builder()
        .base(delay)
        .max(delay)
        .jitter(Jitter::None)
        .build()
        .expect("a valid schedule")
}

/// Any of the clients: the contract stack, its body boxed so that one type covers them all.
pub(crate) type Stack =
    BoxCloneSyncService<Request<Bytes>, Response<UnsyncBoxBody<Bytes, BoxError>>, BoxError>;

/// `ResumeLayer` → `ResetRetryLayer` → `BackoffLayer` → `FreshConnectionLayer` over the client of
/// `kind`, with `resume` as the resume layer.
pub(crate) fn stack(kind: Kind, resume: ResumeLayer) -> Stack {
    match kind {
        Kind::HyperUtilH1 | Kind::HyperUtilH2 => {
            let client = Client::builder(TokioExecutor::new())
                .http2_only(kind == Kind::HyperUtilH2)
                .build_http::<Full<Bytes>>();
            let stack = ServiceBuilder::new()
                .map_request(|request: Request<Bytes>| request.map(Full::new))
                .map_response(boxed)
                .layer(resume)
                .layer(ResetRetryLayer::new())
                .layer(BackoffLayer::new())
                .layer(FreshConnectionLayer::new())
                .service(client);
            BoxCloneSyncService::new(stack)
        }
        Kind::Reqwest => {
            let client = |builder: reqwest::ClientBuilder| {
                tower_reset::reqwest::HttpClient::new(
                    builder.no_proxy().build().expect("a reqwest client"),
                )
            };
            let pooled = client(reqwest::Client::builder());
            let fresh = client(reqwest::Client::builder().pool_max_idle_per_host(0));
            let stack = ServiceBuilder::new()
                .map_response(boxed)
                .layer(resume)
                .layer(ResetRetryLayer::new())
                .layer(BackoffLayer::new())
                .layer(FreshConnectionLayer::detour(fresh))
                .service(pooled);
            BoxCloneSyncService::new(stack)
        }
    }
}

/// What a download got.
#[derive(Debug)]
pub(crate) struct Download {
    /// The status of the first response.
    pub(crate) status: http::StatusCode,
    /// Every byte delivered, in order.
    pub(crate) bytes: Vec<u8>,
    /// The body's error, if it failed.
    pub(crate) error: Option<BoxError>,
    /// What the resume layer did, from a `ResumeObserver`.
    pub(crate) history: Option<ResumeHistory>,
}

impl Download {
    /// The body arrived whole, and is `expected`.
    pub(crate) fn assert_whole(&self, expected: &[u8]) {
        assert!(
            self.error.is_none(),
            "the body failed: {:?} ({:?})",
            self.error,
            self.history
        );
        assert_eq!(self.bytes.len(), expected.len(), "length");
        assert_eq!(sha256(&self.bytes), sha256(expected), "SHA-256");
    }

    /// The body failed with a reset, after `resumes` resumes, because of `why`, and delivered
    /// nothing but a prefix of `expected`.
    pub(crate) fn assert_gave_up(&self, expected: &[u8], why: NoResume, resumes: u32) {
        self.assert_reset_after_prefix_of(expected);
        let history = self.history.expect("a history");
        assert_eq!(history.gave_up(), Some(why), "{history:?}");
        assert_eq!(history.resumes(), resumes, "{history:?}");
    }

    /// The body failed with the reset of the first connection, and what it delivered before
    /// is a prefix of `expected`.
    pub(crate) fn assert_reset_after_prefix_of(&self, expected: &[u8]) {
        let error = self.error.as_ref().expect("the body fails");
        let kinds = crate::error_chain::io_kinds(&**error);
        // Over HTTP/2 the reset reaches the stream as `ConnectionReset`, or, now and then, as
        // h2's own `BrokenPipe` ("stream closed because of a broken pipe"), with which h2
        // closes the streams of a connection that ended (its end of file, or the connection
        // dropped) before the io error reached them: seen once in a full run of the suite.
        assert!(
            kinds.contains(&std::io::ErrorKind::ConnectionReset)
                || kinds == [std::io::ErrorKind::BrokenPipe],
            "the original error, a reset: {error:?} ({kinds:?})"
        );
        assert!(self.bytes.len() <= expected.len());
        assert_eq!(
            sha256(&self.bytes),
            sha256(&expected[..self.bytes.len()]),
            "a prefix of the first version, nothing else"
        );
    }
}

/// Sends `request` through `stack` and reads the body to its end or its error.
pub(crate) async fn download(stack: &Stack, mut request: Request<Bytes>) -> Download {
    let observer = ResumeObserver::attach(&mut request);
    let read = async {
        let response = stack
            .clone()
            .oneshot(request)
            .await
            .expect("a response head");
        let status = response.status();
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        let mut error = None;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => {
                    if let Ok(data) = frame.into_data() {
                        bytes.extend_from_slice(&data);
                    }
                }
                Err(failure) => {
                    error = Some(failure);
                    break;
                }
            }
        }
        Download {
            status,
            bytes,
            error,
            history: None,
        }
    };
    let mut download = tokio::time::timeout(BOUND, read)
        .await
        .expect("the download ends in time");
    download.history = observer.get();
    download
}

/// A lab of `kind`'s protocol serving `reply`, whose first response is reset after `cut` bytes
/// of its body.
pub(crate) async fn reset_once(kind: Kind, reply: Reply, cut: usize) -> Lab {
    kind.lab()
        .reply(reply)
        .on(
            Match::nth(1),
            tower_reset::lab::Fault::ResetAfterBodyBytes(cut),
        )
        .start()
        .await
        .expect("start a lab")
}

/// A `GET` of `lab`'s `/file`.
pub(crate) fn get(lab: &Lab) -> Request<Bytes> {
    Request::get(lab.url("/file"))
        .body(Bytes::new())
        .expect("a valid request")
}

/// The `Range` header of every request the lab receives, in order, recorded by a rule that
/// never matches (add it first).
pub(crate) fn range_log() -> (Match, Arc<Mutex<Vec<Option<String>>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let writer = Arc::clone(&log);
    let rule = Match::when(move |request| {
        let range = request
            .headers()
            .get(RANGE)
            .map(|value| value.to_str().unwrap_or("?").to_owned());
        writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(range);
        false
    });
    (rule, log)
}

pub(crate) fn logged(log: &Mutex<Vec<Option<String>>>) -> Vec<Option<String>> {
    log.lock().unwrap_or_else(PoisonError::into_inner).clone()
}
