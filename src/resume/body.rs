//! The resuming body: passes frames through, counts the bytes, and on a connection failure
//! sends the range request and carries on with its answer.

use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Buf;
use http::header::{IF_RANGE, RANGE};
use http::Request;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower_service::Service;

use super::history::{NoResume, ResumeHistory, ResumeObserver};
use super::layer::Settings;
use super::representation::{Continue, Representation};
use crate::attempt::{AttemptRecord, HistoryObserver};
use crate::backoff::policy::{Exponential, Schedule};
use crate::classify::{ClassifyError, StandardClassifier};
use crate::reset_retry::policy::{CloneBody, CloneRequest};
use crate::trace::event;

/// Frames a skipping body may throw away in one poll before it yields to other tasks.
const SKIPPED_FRAMES_PER_POLL: usize = 64;

/// What a resumable request keeps from the call until its response head arrives.
pub(super) struct Pending<S, ReqBody, C, R, K> {
    /// A clone of the inner service, polled ready again before each resume request.
    pub(super) service: S,
    /// The untouched copy each resume request is made from.
    pub(super) copy: Request<ReqBody>,
    pub(super) settings: Arc<Settings<C, R, K>>,
    /// No resume starts after it.
    pub(super) deadline: Option<Instant>,
    pub(super) observer: Option<ResumeObserver>,
}

/// Everything a resumable body needs to send a resume request and check its answer.
struct Resumer<S, ReqBody, C, R, K> {
    service: S,
    /// `None` once the last permitted resume took it.
    copy: Option<Request<ReqBody>>,
    settings: Arc<Settings<C, R, K>>,
    deadline: Option<Instant>,
    observer: Option<ResumeObserver>,
    representation: Representation,
    /// Bytes of the current body still to throw away (a `200` to a resume request).
    skip: u64,
    /// Drawn when the body first waits; the same for all its resumes.
    seed: Option<u64>,
}

/// A resume under way: waiting for the backoff, for the service, or for the answer.
enum Stage<F, Req> {
    Sleeping {
        sleep: Pin<Box<Sleep>>,
        request: Option<Req>,
    },
    Ready {
        request: Option<Req>,
    },
    Calling {
        // In a `Mutex` only so that the body is `Sync` whenever the future is `Send` (a client's
        // response future rarely is `Sync`); it is reached through `get_mut`, never locked.
        future: Mutex<Pin<Box<F>>>,
    },
}

pin_project! {
    /// The response body of [`Resume`](super::Resume): the inner service's body, continued by
    /// range requests when its connection fails part-way (see the
    /// [module documentation](super)).
    ///
    /// A body that cannot be resumed (not a `GET`, no validator, ...) passes its frames through
    /// untouched, and so does a resumable body until it fails: it only counts the bytes. Frame
    /// boundaries after a resume may differ from the server's; the bytes are the same.
    ///
    /// # Examples
    ///
    /// Read it frame by frame, and look at its [`history`](ResumeBody::history) at the end:
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::{BodyExt, Full};
    /// use tower::{service_fn, Layer, ServiceExt};
    /// use tower_reset::ResumeLayer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), tower::BoxError> {
    /// let server = service_fn(|_request: http::Request<String>| async {
    ///     let response = http::Response::builder()
    ///         .header("etag", "\"v1\"")
    ///         .body(Full::new(Bytes::from_static(b"hello")))?;
    ///     Ok::<_, tower::BoxError>(response)
    /// });
    /// let request = http::Request::get("http://example.com/").body(String::new())?;
    /// let response = ResumeLayer::new().layer(server).oneshot(request).await?;
    ///
    /// let mut body = response.into_body();
    /// let mut bytes = Vec::new();
    /// while let Some(frame) = body.frame().await {
    ///     if let Ok(data) = frame?.into_data() {
    ///         bytes.extend_from_slice(&data);
    ///     }
    /// }
    /// assert_eq!(bytes, b"hello");
    /// assert_eq!(body.history().resumes(), 0);
    /// assert_eq!(body.history().gave_up(), None); // resumable, and never needed to be
    /// # Ok(())
    /// # }
    /// ```
    #[project = ResumeBodyProj]
    pub struct ResumeBody<S, ReqBody, B, C = StandardClassifier, R = CloneBody, K = Exponential>
    where
        S: Service<Request<ReqBody>>,
        B: Body,
    {
        #[pin]
        body: B,
        // `None`: frames pass through (not resumable, or given up).
        resume: Option<Resumer<S, ReqBody, C, R, K>>,
        // A resume under way.
        stage: Option<Stage<S::Future, Request<ReqBody>>>,
        // The failure being resumed, handed to the caller if the resume does not work out; kept
        // until the new body has delivered past what it must skip.
        failure: Option<B::Error>,
        history: ResumeHistory,
        ended: bool,
    }
}

impl<S, ReqBody, B, C, R, K> ResumeBody<S, ReqBody, B, C, R, K>
where
    S: Service<Request<ReqBody>>,
    B: Body,
{
    /// A body that is never resumed, for this reason.
    pub(super) fn passthrough(body: B, why: NoResume) -> Self {
        Self {
            body,
            resume: None,
            stage: None,
            failure: None,
            history: ResumeHistory::unresumable(why),
            ended: false,
        }
    }

    /// A body that is resumed if it fails.
    pub(super) fn resumable(
        body: B,
        pending: Pending<S, ReqBody, C, R, K>,
        representation: Representation,
    ) -> Self {
        let history = ResumeHistory::default();
        if let Some(observer) = &pending.observer {
            observer.record(history);
        }
        Self {
            body,
            resume: Some(Resumer {
                service: pending.service,
                copy: Some(pending.copy),
                settings: pending.settings,
                deadline: pending.deadline,
                observer: pending.observer,
                representation,
                skip: 0,
                seed: None,
            }),
            stage: None,
            failure: None,
            history,
            ended: false,
        }
    }

    /// What the layer did with this body so far: resumes made, bytes skipped, and why it gave
    /// up, if it did.
    pub fn history(&self) -> ResumeHistory {
        self.history
    }
}

impl<S, ReqBody, C, R, K> Resumer<S, ReqBody, C, R, K>
where
    S: Service<Request<ReqBody>>,
    R: CloneRequest<Request<ReqBody>>,
    K: Schedule,
{
    /// Decides about a failure of the body: the resume to start, or why there is none.
    #[allow(clippy::type_complexity)]
    fn start<E>(
        &mut self,
        error: &E,
        history: &ResumeHistory,
    ) -> Result<Stage<S::Future, Request<ReqBody>>, NoResume>
    where
        C: ClassifyError<E>,
    {
        let settings = Arc::clone(&self.settings);
        if settings.classifier.classify_error(error).is_none() {
            return Err(NoResume::NotConnectionFailure);
        }
        if history.resumes >= settings.max_resumes {
            return Err(NoResume::MaxResumes);
        }
        if self.representation.is_complete() {
            return Err(NoResume::NothingLeft);
        }
        let number = history.resumes + 1;
        let delay = self.delay(number).ok_or(NoResume::ScheduleEnded)?;
        if let Some(deadline) = self.deadline {
            let in_time = Instant::now()
                .checked_add(delay)
                .is_some_and(|end| end <= deadline);
            if !in_time {
                return Err(NoResume::Deadline);
            }
        }
        let copy = self.copy.as_ref().ok_or(NoResume::NotCopied)?;
        if !settings.cloner.can_replay(copy, true) {
            return Err(NoResume::NotCopied);
        }
        if let Some(budget) = &settings.budget {
            if !budget.try_withdraw() {
                return Err(NoResume::Budget);
            }
        }
        // Keep the copy while more resumes may follow; the last one takes it.
        let mut request = if number < settings.max_resumes {
            match settings.cloner.clone_request(copy) {
                Some(request) => request,
                None => self.copy.take().ok_or(NoResume::NotCopied)?,
            }
        } else {
            self.copy.take().ok_or(NoResume::NotCopied)?
        };
        let headers = request.headers_mut();
        headers.insert(RANGE, self.representation.range());
        headers.insert(IF_RANGE, self.representation.if_range());
        // A new request for the stack below, not a retry of the first one: its attempts are its
        // own, and the caller's observers keep the first request's story.
        let extensions = request.extensions_mut();
        extensions.remove::<AttemptRecord>();
        extensions.remove::<HistoryObserver>();
        extensions.remove::<ResumeObserver>();
        event!(
            info,
            resume = number,
            offset = self.representation.next,
            "resuming a response body after a connection failure"
        );
        Ok(if delay.is_zero() {
            Stage::Ready {
                request: Some(request),
            }
        } else {
            Stage::Sleeping {
                sleep: Box::pin(tokio::time::sleep(delay)),
                request: Some(request),
            }
        })
    }

    /// The wait before resume `number` (from 1); `None` when the schedule has run out.
    fn delay(&mut self, number: u32) -> Option<Duration> {
        let index = if self.settings.immediate_first_resume {
            if number <= 1 {
                return Some(Duration::ZERO);
            }
            number - 2
        } else {
            number - 1
        };
        let seed = *self.seed.get_or_insert_with(|| {
            self.settings
                .seed
                .unwrap_or_else(|| RandomState::new().hash_one(number))
        });
        self.settings.schedule.delays(seed).nth(index as usize)
    }
}

impl<S, ReqBody, C, R, K> Resumer<S, ReqBody, C, R, K>
where
    S: Service<Request<ReqBody>>,
{
    /// Drives a resume under way to the answer's body, or to why there is none.
    fn poll_stage<B>(
        &mut self,
        stage: &mut Stage<S::Future, Request<ReqBody>>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(B, Continue), NoResume>>
    where
        S: Service<Request<ReqBody>, Response = http::Response<B>>,
    {
        loop {
            match stage {
                Stage::Sleeping { sleep, request } => {
                    ready!(sleep.as_mut().poll(cx));
                    *stage = Stage::Ready {
                        request: request.take(),
                    };
                }
                Stage::Ready { request } => {
                    if ready!(self.service.poll_ready(cx)).is_err() {
                        return Poll::Ready(Err(NoResume::ResumeFailed));
                    }
                    let Some(request) = request.take() else {
                        return Poll::Ready(Err(NoResume::ResumeFailed));
                    };
                    // The service was just polled ready: it takes the request.
                    *stage = Stage::Calling {
                        future: Mutex::new(Box::pin(self.service.call(request))),
                    };
                }
                Stage::Calling { future } => {
                    let future = future.get_mut().unwrap_or_else(PoisonError::into_inner);
                    let Ok(response) = ready!(future.as_mut().poll(cx)) else {
                        return Poll::Ready(Err(NoResume::ResumeFailed));
                    };
                    let (head, body) = response.into_parts();
                    let max_skip = self.settings.max_skip;
                    let verdict = self
                        .representation
                        .check(head.status, &head.headers, max_skip);
                    return Poll::Ready(verdict.map(|how| (body, how)));
                }
            }
        }
    }

    fn record(&self, history: ResumeHistory) {
        if let Some(observer) = &self.observer {
            observer.record(history);
        }
    }
}

impl<S, ReqBody, B, C, R, K> Body for ResumeBody<S, ReqBody, B, C, R, K>
where
    S: Service<Request<ReqBody>, Response = http::Response<B>>,
    B: Body,
    C: ClassifyError<B::Error>,
    R: CloneRequest<Request<ReqBody>>,
    K: Schedule,
{
    type Data = B::Data;
    type Error = B::Error;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let Some(resume) = this.resume.as_mut() else {
            if *this.ended {
                return Poll::Ready(None);
            }
            return this.body.poll_frame(cx);
        };
        if this.stage.is_some() || resume.skip > 0 {
            return Self::poll_resuming(this, cx, None);
        }
        // The path of every frame of a body that does not fail: the inner body's answer goes
        // back as it is, its data counted on the way.
        let answer = this.body.as_mut().poll_frame(cx);
        match &answer {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    resume.representation.next += data.remaining() as u64;
                }
                answer
            }
            Poll::Pending => answer,
            // The body ended or failed.
            Poll::Ready(_) => Self::poll_resuming(this, cx, Some(answer)),
        }
    }

    fn is_end_stream(&self) -> bool {
        if self.ended {
            return true;
        }
        match &self.resume {
            None => self.body.is_end_stream(),
            Some(resume) => self.stage.is_none() && resume.skip == 0 && self.body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        let Some(resume) = &self.resume else {
            return if self.ended {
                SizeHint::with_exact(0)
            } else {
                self.body.size_hint()
            };
        };
        if self.stage.is_some() {
            return resume
                .representation
                .remaining()
                .map_or_else(SizeHint::default, SizeHint::with_exact);
        }
        let inner = self.body.size_hint();
        if resume.skip == 0 {
            return inner;
        }
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower().saturating_sub(resume.skip));
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper.saturating_sub(resume.skip));
        }
        hint
    }
}

impl<S, ReqBody, B, C, R, K> ResumeBody<S, ReqBody, B, C, R, K>
where
    S: Service<Request<ReqBody>, Response = http::Response<B>>,
    B: Body,
    C: ClassifyError<B::Error>,
    R: CloneRequest<Request<ReqBody>>,
    K: Schedule,
{
    /// Ends the body with `error`, or the failure being resumed (the error the caller would
    /// have had without the layer), for the reason `why`.
    #[allow(clippy::type_complexity)]
    fn give_up(
        this: &mut ResumeBodyProj<'_, S, ReqBody, B, C, R, K>,
        why: NoResume,
        error: Option<B::Error>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        event!(debug, %why, "the response body is not resumed");
        let failure = error.or_else(|| this.failure.take());
        this.history.gave_up = Some(why);
        if let Some(resume) = this.resume.take() {
            resume.record(*this.history);
        }
        *this.ended = true;
        Poll::Ready(failure.map(Err))
    }

    /// Everything but the path of a frame of a body that does not fail: the end of the body, a
    /// failure and its resume, and the frames of a resumed body. `polled`: what the inner body
    /// already answered.
    #[cold]
    #[inline(never)]
    #[allow(clippy::type_complexity)]
    fn poll_resuming(
        mut this: ResumeBodyProj<'_, S, ReqBody, B, C, R, K>,
        cx: &mut Context<'_>,
        mut polled: Option<Poll<Option<Result<Frame<B::Data>, B::Error>>>>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let Some(resume) = this.resume.as_mut() else {
            return polled.unwrap_or(Poll::Ready(None));
        };
        let mut skipped_frames = 0;
        loop {
            if let Some(stage) = this.stage.as_mut() {
                let outcome = ready!(resume.poll_stage(stage, cx));
                *this.stage = None;
                match outcome {
                    Ok((body, how)) => {
                        this.body.set(body);
                        resume.skip = match how {
                            Continue::Partial => 0,
                            Continue::Skip(bytes) => bytes,
                        };
                        if resume.skip == 0 {
                            *this.failure = None;
                        }
                        resume.record(*this.history);
                    }
                    Err(why) => return Self::give_up(&mut this, why, None),
                }
            }

            let answer = match polled.take() {
                Some(answer) => answer,
                None => this.body.as_mut().poll_frame(cx),
            };
            let frame = match ready!(answer) {
                Some(Ok(frame)) => frame,
                Some(Err(error)) => match resume.start(&error, this.history) {
                    Ok(stage) => {
                        this.history.resumes += 1;
                        *this.stage = Some(stage);
                        *this.failure = Some(error);
                        continue;
                    }
                    Err(why) => return Self::give_up(&mut this, why, Some(error)),
                },
                None => {
                    if resume.skip > 0 {
                        // A `200` shorter than what was already delivered: not the same bytes.
                        return Self::give_up(&mut this, NoResume::Changed, None);
                    }
                    resume.record(*this.history);
                    *this.resume = None;
                    *this.ended = true;
                    return Poll::Ready(None);
                }
            };

            if resume.skip == 0 {
                // A frame of a body that was resumed.
                if let Some(data) = frame.data_ref() {
                    resume.representation.next += data.remaining() as u64;
                }
                return Poll::Ready(Some(Ok(frame)));
            }

            // Skipping what the caller already has, from a `200` that started over.
            let mut data = match frame.into_data() {
                Ok(data) => data,
                Err(_trailers) => return Self::give_up(&mut this, NoResume::Changed, None),
            };
            let len = data.remaining() as u64;
            let skip = len.min(resume.skip);
            resume.skip -= skip;
            this.history.bytes_skipped += skip;
            if resume.skip == 0 {
                *this.failure = None;
                resume.record(*this.history);
            }
            if skip < len {
                data.advance(skip as usize);
                resume.representation.next += len - skip;
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            skipped_frames += 1;
            if skipped_frames >= SKIPPED_FRAMES_PER_POLL {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    }
}

impl<S, ReqBody, B, C, R, K> fmt::Debug for ResumeBody<S, ReqBody, B, C, R, K>
where
    S: Service<Request<ReqBody>>,
    B: Body + fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResumeBody")
            .field("body", &self.body)
            .field("resumable", &self.resume.is_some())
            .field("resuming", &self.stage.is_some())
            .field("history", &self.history)
            .finish()
    }
}
