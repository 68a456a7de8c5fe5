//! `Resume` over a scripted in-memory service: each call takes the next answer of a script
//! (status, headers, body chunks, and whether the body then fails), and every request is
//! recorded, with the instant it arrived. Exact where sockets are not: the answers that must
//! end a body (a range that does not fit, another encoding, `416`), the headers of a resume
//! request, and, in paused time, the backoff, the deadline and the budget.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, ETAG, IF_RANGE, RANGE,
};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::time::Instant;
use tower::{BoxError, Layer, Service, ServiceExt};
use tower_reset::attempt::HistoryObserver;
use tower_reset::reset_retry::{Budget, RetryBudget};
use tower_reset::resume::{NoResume, ResumeHistory, ResumeObserver};
use tower_reset::ResumeLayer;

use crate::support::constant;

/// A body of chunks that ends, or fails with an io error of this kind.
#[derive(Debug)]
pub(crate) struct ScriptBody {
    chunks: VecDeque<Bytes>,
    fail: Option<io::ErrorKind>,
}

impl Body for ScriptBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if let Some(chunk) = self.chunks.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        Poll::Ready(self.fail.take().map(|kind| Err(io::Error::from(kind))))
    }

    fn size_hint(&self) -> SizeHint {
        let len: usize = self.chunks.iter().map(Bytes::len).sum();
        if self.fail.is_some() {
            let mut hint = SizeHint::new();
            hint.set_lower(len as u64);
            hint
        } else {
            SizeHint::with_exact(len as u64)
        }
    }
}

/// One answer of the script.
pub(crate) struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    chunks: Vec<Bytes>,
    fail: Option<io::ErrorKind>,
}

impl Answer {
    /// A `200` whose body is `body` in chunks of `chunk` bytes, with these headers.
    pub(crate) fn ok(body: &Bytes, chunk: usize, headers: &[(HeaderName, &str)]) -> Self {
        Self::new(StatusCode::OK, body, chunk, headers)
    }

    pub(crate) fn new(
        status: StatusCode,
        body: &Bytes,
        chunk: usize,
        headers: &[(HeaderName, &str)],
    ) -> Self {
        let chunks = (0..body.len())
            .step_by(chunk.max(1))
            .map(|start| body.slice(start..(start + chunk).min(body.len())))
            .collect();
        Self {
            status,
            headers: headers
                .iter()
                .map(|(name, value)| (name.clone(), HeaderValue::from_str(value).unwrap()))
                .collect(),
            chunks,
            fail: None,
        }
    }

    /// The body fails with this io error after its chunks.
    pub(crate) fn then_fail(mut self, kind: io::ErrorKind) -> Self {
        self.fail = Some(kind);
        self
    }

    /// The body fails with a reset after its chunks.
    pub(crate) fn then_reset(self) -> Self {
        self.then_fail(io::ErrorKind::ConnectionReset)
    }
}

/// The scripted service. Clones share the script and the record.
#[derive(Clone, Default)]
pub(crate) struct Scripted {
    answers: Arc<Mutex<VecDeque<Result<Answer, io::ErrorKind>>>>,
    seen: Arc<Mutex<Vec<(Instant, HeaderMap, http::Extensions)>>>,
}

impl Scripted {
    pub(crate) fn new(answers: impl IntoIterator<Item = Answer>) -> Self {
        let scripted = Self::default();
        for answer in answers {
            scripted.push(Ok(answer));
        }
        scripted
    }

    pub(crate) fn push(&self, answer: Result<Answer, io::ErrorKind>) {
        lock(&self.answers).push_back(answer);
    }

    /// The headers of every request, in order.
    pub(crate) fn headers(&self) -> Vec<HeaderMap> {
        lock(&self.seen)
            .iter()
            .map(|(_, headers, _)| headers.clone())
            .collect()
    }

    /// When every request arrived.
    pub(crate) fn arrivals(&self) -> Vec<Instant> {
        lock(&self.seen).iter().map(|(at, _, _)| *at).collect()
    }

    pub(crate) fn calls(&self) -> usize {
        lock(&self.seen).len()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Service<Request<String>> for Scripted {
    type Response = Response<ScriptBody>;
    type Error = BoxError;
    type Future = std::future::Ready<Result<Response<ScriptBody>, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<String>) -> Self::Future {
        let (parts, _) = request.into_parts();
        lock(&self.seen).push((Instant::now(), parts.headers, parts.extensions));
        let answer = match lock(&self.answers).pop_front() {
            Some(Ok(answer)) => answer,
            Some(Err(kind)) => return std::future::ready(Err(io::Error::from(kind).into())),
            None => return std::future::ready(Err("the script has no more answers".into())),
        };
        let mut response = Response::new(ScriptBody {
            chunks: answer.chunks.into(),
            fail: answer.fail,
        });
        *response.status_mut() = answer.status;
        *response.headers_mut() = answer.headers;
        std::future::ready(Ok(response))
    }
}

/// `n` bytes counting up, so that every offset is visible in the data.
pub(crate) fn counting(n: usize) -> Bytes {
    (0..n).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into()
}

/// What reading a body through `layer` over `scripted` gave: the bytes, the error, the history.
pub(crate) async fn read(
    layer: &ResumeLayer,
    scripted: &Scripted,
    mut request: Request<String>,
) -> (Vec<u8>, Option<io::Error>, ResumeHistory) {
    let observer = ResumeObserver::attach(&mut request);
    let service = layer.layer(scripted.clone());
    let response = service.oneshot(request).await.expect("a response");
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    let mut error = None;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => bytes.extend_from_slice(&frame.into_data().unwrap()),
            Err(failure) => {
                error = Some(failure);
                break;
            }
        }
    }
    assert_eq!(
        observer.get(),
        Some(body.history()),
        "the observer and the body agree"
    );
    (bytes, error, body.history())
}

pub(crate) fn get() -> Request<String> {
    Request::get("http://example.com/file")
        .body(String::new())
        .unwrap()
}

const TAG: (HeaderName, &str) = (ETAG, "\"v1\"");

/// A `200` of `body` (with `Content-Length` and `ETag: "v1"`) that is reset after `cut` bytes.
fn cut_at(body: &Bytes, cut: usize, chunk: usize) -> Answer {
    let length = body.len().to_string();
    Answer::ok(&body.slice(..cut), chunk, &[TAG, (CONTENT_LENGTH, &length)]).then_reset()
}

/// A `206` of `body` from `from` to the end.
fn rest_from(body: &Bytes, from: usize, chunk: usize) -> Answer {
    let range = format!("bytes {from}-{}/{}", body.len() - 1, body.len());
    Answer::new(
        StatusCode::PARTIAL_CONTENT,
        &body.slice(from..),
        chunk,
        &[TAG, (CONTENT_RANGE, &range)],
    )
}

#[tokio::test]
async fn a_resume_asks_for_the_rest_and_keeps_the_other_headers() {
    let body = counting(10_000);
    let scripted = Scripted::new([cut_at(&body, 3_000, 1_000), rest_from(&body, 3_000, 700)]);
    let mut request = get();
    request
        .headers_mut()
        .insert(AUTHORIZATION, HeaderValue::from_static("Bearer t"));
    let _history = HistoryObserver::attach(&mut request);
    let (bytes, error, history) = read(&ResumeLayer::new(), &scripted, request).await;
    assert!(error.is_none());
    assert_eq!(bytes, body);
    assert_eq!(history.resumes(), 1);
    let headers = scripted.headers();
    assert_eq!(headers[0].get(RANGE), None);
    assert_eq!(headers[1][RANGE], "bytes=3000-");
    assert_eq!(headers[1][IF_RANGE], "\"v1\"");
    assert_eq!(headers[1][AUTHORIZATION], "Bearer t");
    // The resume is a new request for the layers below: the caller's observers stay with the
    // first one.
    let extensions = &lock(&scripted.seen)[1].2;
    assert!(extensions.get::<HistoryObserver>().is_none());
    assert!(extensions.get::<ResumeObserver>().is_none());
}

#[tokio::test]
async fn a_body_that_fails_again_resumes_from_where_it_stopped_again() {
    let body = counting(10_000);
    let second = {
        let range = format!("bytes 2000-9999/{}", body.len());
        Answer::new(
            StatusCode::PARTIAL_CONTENT,
            &body.slice(2_000..6_500),
            1_000,
            &[TAG, (CONTENT_RANGE, &range)],
        )
        .then_fail(io::ErrorKind::UnexpectedEof)
    };
    let scripted = Scripted::new([
        cut_at(&body, 2_000, 512),
        second,
        rest_from(&body, 6_500, 4096),
    ]);
    let (bytes, error, history) = read(&ResumeLayer::new(), &scripted, get()).await;
    assert!(error.is_none());
    assert_eq!(bytes, body);
    assert_eq!(history.resumes(), 2);
    assert_eq!(scripted.headers()[2][RANGE], "bytes=6500-");
}

/// Each answer that does not continue the same bytes ends the body with the original error,
/// after the bytes of the first response only.
#[tokio::test]
async fn answers_that_do_not_fit_end_the_body_with_its_error() {
    let body = counting(10_000);
    let len = body.len().to_string();
    let partial = StatusCode::PARTIAL_CONTENT;
    let elsewhere = format!("bytes 2500-9999/{len}");
    let right = format!("bytes 3000-9999/{len}");
    let longer = "bytes 3000-9999/20000".to_owned();
    let cases: Vec<(Answer, NoResume)> = vec![
        (
            Answer::new(
                partial,
                &body.slice(2_500..),
                1_000,
                &[TAG, (CONTENT_RANGE, &elsewhere)],
            ),
            NoResume::RangeMismatch,
        ),
        (
            Answer::new(
                partial,
                &body.slice(3_000..),
                1_000,
                &[TAG, (CONTENT_RANGE, &longer)],
            ),
            NoResume::RangeMismatch,
        ),
        (
            Answer::new(
                partial,
                &body.slice(3_000..),
                1_000,
                &[(ETAG, "\"v2\""), (CONTENT_RANGE, &right)],
            ),
            NoResume::Changed,
        ),
        (
            Answer::new(
                partial,
                &body.slice(3_000..),
                1_000,
                &[TAG, (CONTENT_RANGE, &right), (CONTENT_ENCODING, "gzip")],
            ),
            NoResume::EncodingChanged,
        ),
        (
            Answer::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                &Bytes::new(),
                1,
                &[TAG, (CONTENT_RANGE, &format!("bytes */{len}"))],
            ),
            NoResume::AnswerStatus,
        ),
        (
            Answer::new(StatusCode::SERVICE_UNAVAILABLE, &Bytes::new(), 1, &[]),
            NoResume::AnswerStatus,
        ),
        (
            Answer::ok(&counting(20_000), 1_000, &[(ETAG, "\"v2\"")]),
            NoResume::Changed,
        ),
        (Answer::ok(&body, 1_000, &[]), NoResume::Changed),
    ];
    for (answer, why) in cases {
        let scripted = Scripted::new([cut_at(&body, 3_000, 1_000), answer]);
        let (bytes, error, history) = read(&ResumeLayer::new(), &scripted, get()).await;
        assert_eq!(
            bytes,
            body[..3_000],
            "{why:?}: only the first response's bytes"
        );
        assert_eq!(
            error.expect("the body fails").kind(),
            io::ErrorKind::ConnectionReset
        );
        assert_eq!(history.gave_up(), Some(why));
        assert_eq!(history.resumes(), 1);
    }
}

#[tokio::test]
async fn the_same_encoding_is_resumed() {
    let body = counting(10_000);
    let len = body.len().to_string();
    let range = format!("bytes 3000-9999/{len}");
    let gzip = (CONTENT_ENCODING, "gzip");
    let first = Answer::ok(
        &body.slice(..3_000),
        1_000,
        &[TAG, gzip.clone(), (CONTENT_LENGTH, &len)],
    )
    .then_reset();
    let rest = Answer::new(
        StatusCode::PARTIAL_CONTENT,
        &body.slice(3_000..),
        1_000,
        &[TAG, gzip, (CONTENT_RANGE, &range)],
    );
    let scripted = Scripted::new([first, rest]);
    let (bytes, error, _) = read(&ResumeLayer::new(), &scripted, get()).await;
    assert!(error.is_none());
    assert_eq!(bytes, body);
}

/// A `200` with the same validator: the bytes already delivered are skipped, across chunk
/// boundaries, and the skip is counted; a `200` shorter than the skip ends the body.
#[tokio::test]
async fn a_whole_answer_is_skipped_up_to_where_the_body_stopped() {
    let body = counting(10_000);
    let scripted = Scripted::new([
        cut_at(&body, 3_500, 1_000),
        Answer::ok(&body, 1_000, &[TAG]),
    ]);
    let (bytes, error, history) = read(&ResumeLayer::new(), &scripted, get()).await;
    assert!(error.is_none());
    assert_eq!(bytes, body);
    assert_eq!(history.bytes_skipped(), 3_500);

    let short = body.slice(..2_000);
    let scripted = Scripted::new([
        cut_at(&body, 3_500, 1_000),
        Answer::ok(&short, 1_000, &[TAG]),
    ]);
    let (bytes, error, history) = read(&ResumeLayer::new(), &scripted, get()).await;
    assert_eq!(bytes, body[..3_500]);
    assert_eq!(error.unwrap().kind(), io::ErrorKind::ConnectionReset);
    assert_eq!(history.gave_up(), Some(NoResume::Changed));
}

/// A caller's range answered by a `206` is not resumed from a `200`: the layer would have to
/// cut the whole representation.
#[tokio::test]
async fn a_range_is_not_resumed_from_a_whole_answer() {
    let body = counting(10_000);
    let first = Answer::new(
        StatusCode::PARTIAL_CONTENT,
        &body.slice(100..600),
        100,
        &[TAG, (CONTENT_RANGE, "bytes 100-1099/10000")],
    )
    .then_reset();
    let scripted = Scripted::new([first, Answer::ok(&body, 1_000, &[TAG])]);
    let mut request = get();
    request
        .headers_mut()
        .insert(RANGE, HeaderValue::from_static("bytes=100-1099"));
    let (bytes, _, history) = read(&ResumeLayer::new(), &scripted, request).await;
    assert_eq!(bytes, body[100..600]);
    assert_eq!(history.gave_up(), Some(NoResume::RangeIgnored));
    assert_eq!(scripted.headers()[1][RANGE], "bytes=600-1099");
}

/// Errors that a range request would not fix, a body with nothing left, and a resume request
/// that fails: the body's own error.
#[tokio::test]
async fn other_failures_are_passed_on() {
    let body = counting(10_000);
    let len = body.len().to_string();
    let bad = Answer::ok(&body.slice(..3_000), 1_000, &[TAG, (CONTENT_LENGTH, &len)])
        .then_fail(io::ErrorKind::InvalidData);
    let scripted = Scripted::new([bad]);
    let (_, error, history) = read(&ResumeLayer::new(), &scripted, get()).await;
    assert_eq!(error.unwrap().kind(), io::ErrorKind::InvalidData);
    assert_eq!(history.gave_up(), Some(NoResume::NotConnectionFailure));
    assert_eq!(scripted.calls(), 1);

    let scripted = Scripted::new([cut_at(&body, 10_000, 1_000)]);
    let (bytes, error, history) = read(&ResumeLayer::new(), &scripted, get()).await;
    assert_eq!(bytes, body);
    assert_eq!(error.unwrap().kind(), io::ErrorKind::ConnectionReset);
    assert_eq!(history.gave_up(), Some(NoResume::NothingLeft));
    assert_eq!(scripted.calls(), 1);

    let scripted = Scripted::new([cut_at(&body, 3_000, 1_000)]);
    scripted.push(Err(io::ErrorKind::ConnectionRefused));
    let (_, error, history) = read(&ResumeLayer::new(), &scripted, get()).await;
    assert_eq!(error.unwrap().kind(), io::ErrorKind::ConnectionReset);
    assert_eq!(history.gave_up(), Some(NoResume::ResumeFailed));
}

/// The first resume goes at once, the next ones after the schedule's delays; no resume waits
/// past the deadline.
#[tokio::test(start_paused = true)]
async fn resumes_back_off_and_stop_at_the_deadline() {
    let body = counting(10_000);
    let len = body.len();
    let piece = |from: usize, to: usize| {
        let range = format!("bytes {from}-{}/{len}", len - 1);
        Answer::new(
            StatusCode::PARTIAL_CONTENT,
            &body.slice(from..to),
            1_000,
            &[TAG, (CONTENT_RANGE, &range)],
        )
        .then_reset()
    };
    let script = || {
        Scripted::new([
            cut_at(&body, 1_000, 1_000),
            piece(1_000, 2_000),
            piece(2_000, 3_000),
            rest_from(&body, 3_000, 1_000),
        ])
    };
    let layer = ResumeLayer::builder()
        .schedule(constant(Duration::from_millis(100)))
        .build()
        .unwrap();
    let scripted = script();
    let (bytes, error, history) = read(&layer, &scripted, get()).await;
    assert!(error.is_none());
    assert_eq!(bytes, body);
    assert_eq!(history.resumes(), 3);
    let at = scripted.arrivals();
    let gaps: Vec<Duration> = at.windows(2).map(|pair| pair[1] - pair[0]).collect();
    assert_eq!(
        gaps,
        [
            Duration::ZERO,
            Duration::from_millis(100),
            Duration::from_millis(100)
        ]
    );

    // With a deadline of 150 ms, the third resume (at 200 ms) would start after it.
    let layer = ResumeLayer::builder()
        .schedule(constant(Duration::from_millis(100)))
        .deadline(Duration::from_millis(150))
        .build()
        .unwrap();
    let scripted = script();
    let started = Instant::now();
    let (bytes, error, history) = read(&layer, &scripted, get()).await;
    assert_eq!(bytes, body[..3_000]);
    assert_eq!(error.unwrap().kind(), io::ErrorKind::ConnectionReset);
    assert_eq!(history.resumes(), 2);
    assert_eq!(history.gave_up(), Some(NoResume::Deadline));
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(100),
        "no sleep past the deadline"
    );
}

/// A budget that counts what it is asked.
#[derive(Debug, Default)]
struct Counting {
    deposits: AtomicUsize,
    withdrawals: AtomicUsize,
}

impl Budget for Counting {
    fn deposit(&self) {
        self.deposits.fetch_add(1, Ordering::Relaxed);
    }
    fn try_withdraw(&self) -> bool {
        self.withdrawals.fetch_add(1, Ordering::Relaxed);
        true
    }
}

/// The layer's own budget is filled by every resumable body and spent by every resume; a
/// shared one is only spent; an empty one refuses the resume.
#[tokio::test]
async fn resumes_spend_the_budget() {
    let body = counting(10_000);
    let script = || Scripted::new([cut_at(&body, 3_000, 1_000), rest_from(&body, 3_000, 1_000)]);

    let own = Arc::new(Counting::default());
    let layer = ResumeLayer::builder()
        .budget(Arc::clone(&own))
        .build()
        .unwrap();
    read(&layer, &script(), get()).await;
    assert_eq!(own.deposits.load(Ordering::Relaxed), 1);
    assert_eq!(own.withdrawals.load(Ordering::Relaxed), 1);

    let shared = Arc::new(Counting::default());
    let layer = ResumeLayer::builder()
        .shared_budget(Arc::clone(&shared))
        .build()
        .unwrap();
    read(&layer, &script(), get()).await;
    assert_eq!(
        shared.deposits.load(Ordering::Relaxed),
        0,
        "the retry layer deposits"
    );
    assert_eq!(shared.withdrawals.load(Ordering::Relaxed), 1);

    let empty = RetryBudget::new(0.0, 0, Duration::from_secs(10)).unwrap();
    let layer = ResumeLayer::builder().budget(empty).build().unwrap();
    let scripted = script();
    let (bytes, error, history) = read(&layer, &scripted, get()).await;
    assert_eq!(bytes, body[..3_000]);
    assert!(error.is_some());
    assert_eq!(history.gave_up(), Some(NoResume::Budget));
    assert_eq!(scripted.calls(), 1);
}

/// The size of the body is known across a resume: what the caller has not had yet.
#[tokio::test]
async fn the_size_hint_is_what_is_left() {
    let body = counting(10_000);
    let scripted = Scripted::new([cut_at(&body, 3_000, 3_000), rest_from(&body, 3_000, 1_000)]);
    let service = ResumeLayer::new().layer(scripted.clone());
    let mut body_stream = service.oneshot(get()).await.unwrap().into_body();
    let first = body_stream
        .frame()
        .await
        .unwrap()
        .unwrap()
        .into_data()
        .unwrap();
    assert_eq!(first.len(), 3_000);
    // The next poll meets the reset and resumes.
    let second = body_stream
        .frame()
        .await
        .unwrap()
        .unwrap()
        .into_data()
        .unwrap();
    assert_eq!(second.len(), 1_000);
    assert_eq!(body_stream.size_hint().exact(), Some(6_000));
    assert!(!body_stream.is_end_stream());
}

/// Requests that cannot be resumed say why, from the start.
#[tokio::test]
async fn what_cannot_be_resumed_says_why() {
    let body = counting(100);
    let cases: Vec<(Answer, NoResume)> = vec![
        (
            Answer::new(StatusCode::NOT_FOUND, &body, 100, &[TAG]),
            NoResume::Status,
        ),
        (Answer::ok(&body, 100, &[]), NoResume::NoValidator),
        (
            Answer::ok(&body, 100, &[(ETAG, "W/\"v1\"")]),
            NoResume::NoValidator,
        ),
        (
            Answer::new(StatusCode::PARTIAL_CONTENT, &body, 100, &[TAG]),
            NoResume::Unsupported,
        ),
    ];
    for (answer, why) in cases {
        let (_, _, history) = read(&ResumeLayer::new(), &Scripted::new([answer]), get()).await;
        assert_eq!(history.gave_up(), Some(why));
    }
    let mut head = get();
    *head.method_mut() = http::Method::HEAD;
    let (_, _, history) = read(
        &ResumeLayer::new(),
        &Scripted::new([Answer::ok(&body, 100, &[TAG])]),
        head,
    )
    .await;
    assert_eq!(history.gave_up(), Some(NoResume::NotGet));
}
