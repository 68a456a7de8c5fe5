//! The fault matrix: every lab fault × {GET, PUT, POST, POST + key} × each client.
//!
//! For each cell, a lab of its own is scripted so that the fault meets the *first* attempt of
//! one request only (a retry can then succeed), the client sends that request through its full
//! stack, and the cell compares what happened with [`expected`]: a small function of fault ×
//! method × client that encodes the crate's rules from first principles. It compares what the
//! caller got, after how many attempts and with which class of failure first (from the stack's
//! `AttemptHistory`), and how many times the lab received and executed the request (server-side
//! counts, by request id). Every lab is also checked for a `POST` without a key executed twice,
//! whatever the expectation says.
//!
//! Where a race decides what the client can learn (a connection dropped at accept), a cell has
//! one expected verdict per class of failure, and the class the client recorded must be the
//! one that explains what it did: a `POST` retried only after a never-sent failure.
//!
//! The expectations are rendered as the table of `docs/fault-matrix.md`
//! (`fault_matrix_doc_is_up_to_date`), and each client's test checks its column of that file
//! against what it observed. `TOWER_RESET_MATRIX_TRACE=1` prints every cell's observation
//! (with `--nocapture`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;
use tokio::task::JoinSet;
use tower_reset::classify::FailureClass;
use tower_reset::lab::{
    ConnectionMatch, Disconnect, Fault as LabFault, Idle, Lab, LabBuilder, Match, Reply,
};

use crate::support::{Call, End, Method, Observed, Sender, REPLY_BODY, REQUEST_BOUND, REQUEST_ID};

/// The clients of the suite, in the order of the table's columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Client {
    HyperUtilH1,
    HyperUtilH2,
    Tonic,
    Reqwest,
    ReqwestMiddleware,
    Axum,
}

impl Client {
    pub(crate) const ALL: [Client; 6] = [
        Client::HyperUtilH1,
        Client::HyperUtilH2,
        Client::Tonic,
        Client::Reqwest,
        Client::ReqwestMiddleware,
        Client::Axum,
    ];

    /// Its column header.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Client::HyperUtilH1 => "hyper-util HTTP/1.1",
            Client::HyperUtilH2 => "hyper-util HTTP/2",
            Client::Tonic => "tonic",
            Client::Reqwest => "reqwest",
            Client::ReqwestMiddleware => "reqwest-middleware",
            Client::Axum => "axum app",
        }
    }

    /// Whether its stack has a `ResumeLayer` (tonic's requests are gRPC calls, and
    /// reqwest-middleware runs only the retry and backoff layers).
    pub(crate) fn resumes(self) -> bool {
        !matches!(self, Client::Tonic | Client::ReqwestMiddleware)
    }

    /// Whether it speaks HTTP/2 (to the lab).
    pub(crate) fn http2(self) -> bool {
        matches!(self, Client::HyperUtilH2 | Client::Tonic)
    }

    /// The lab's reply for this client.
    pub(crate) fn reply(self) -> Reply {
        match self {
            Client::Tonic => crate::tonic_channel::grpc_reply(),
            _ => crate::support::http_reply(),
        }
    }

    /// The client with its stack, aimed at `lab`.
    pub(crate) async fn sender(self, lab: &Lab) -> Box<dyn Sender> {
        match self {
            Client::HyperUtilH1 => Box::new(crate::hyper_util_h1::HyperUtil::new(lab, false)),
            Client::HyperUtilH2 => Box::new(crate::hyper_util_h1::HyperUtil::new(lab, true)),
            Client::Tonic => Box::new(crate::tonic_channel::Tonic::new(lab)),
            Client::Reqwest => Box::new(crate::reqwest_client::Reqwest::new(lab)),
            Client::ReqwestMiddleware => Box::new(
                crate::reqwest_middleware_client::ReqwestMiddleware::new(lab),
            ),
            Client::Axum => Box::new(crate::axum_app::Axum::start(lab).await),
        }
    }
}

/// The faults, in the order of the table's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Fault {
    ResetAtAccept,
    CloseAtAccept,
    ResetAfterHead,
    CloseAfterHead,
    ResetAfterRequest,
    CloseAfterRequest,
    ResetInHead,
    ResetInBody,
    CloseInBody,
    ResetInBodyResumable,
    ResetInBodyChanged,
    IdleReset,
    IdleForget,
    RestartWarm,
    RefusedWindow,
    GoAway,
    RefuseStream,
    SlowReply,
    SlicedReply,
}

/// The idle timeout of the idle faults: longer than any wait of a retry on a new connection
/// (the backoff), so that only the pooled connection goes stale, not the retry's.
const IDLE_TIMEOUT: Duration = Duration::from_millis(500);
/// How long the pooled connection then stays idle before the request: past the timeout.
const IDLE_WAIT: Duration = Duration::from_millis(700);
/// How long connections are refused in [`Fault::RefusedWindow`]: well inside the ride-out
/// window (2 s), which the retry waits for the server in.
const REFUSED_WINDOW: Duration = Duration::from_millis(100);
/// How long a client gets to notice what happened to its idle connections.
const SETTLE: Duration = Duration::from_millis(100);
/// The delay of [`Fault::SlowReply`].
const SLOW: Duration = Duration::from_millis(150);

impl Fault {
    pub(crate) const ALL: [Fault; 19] = [
        Fault::ResetAtAccept,
        Fault::CloseAtAccept,
        Fault::ResetAfterHead,
        Fault::CloseAfterHead,
        Fault::ResetAfterRequest,
        Fault::CloseAfterRequest,
        Fault::ResetInHead,
        Fault::ResetInBody,
        Fault::CloseInBody,
        Fault::ResetInBodyResumable,
        Fault::ResetInBodyChanged,
        Fault::IdleReset,
        Fault::IdleForget,
        Fault::RestartWarm,
        Fault::RefusedWindow,
        Fault::GoAway,
        Fault::RefuseStream,
        Fault::SlowReply,
        Fault::SlicedReply,
    ];

    /// Its row header (without footnote marks).
    pub(crate) fn label(self) -> &'static str {
        match self {
            Fault::ResetAtAccept => "reset at accept",
            Fault::CloseAtAccept => "close (FIN) at accept",
            Fault::ResetAfterHead => "reset after the request head",
            Fault::CloseAfterHead => "close after the request head",
            Fault::ResetAfterRequest => "reset after the whole request",
            Fault::CloseAfterRequest => "close after the whole request",
            Fault::ResetInHead => "reset in the response head",
            Fault::ResetInBody => "reset in the response body",
            Fault::CloseInBody => "close in the response body",
            Fault::ResetInBodyResumable => "reset in the response body, resumable GET",
            Fault::ResetInBodyChanged => "reset in the response body, resource changed",
            Fault::IdleReset => "pooled connection reset while idle",
            Fault::IdleForget => "pooled connection forgotten (stale)",
            Fault::RestartWarm => "server restart, warm pool",
            Fault::RefusedWindow => "connection refused for 100 ms",
            Fault::GoAway => "HTTP/2 GOAWAY",
            Fault::RefuseStream => "HTTP/2 REFUSED_STREAM",
            Fault::SlowReply => "slow reply (150 ms)",
            Fault::SlicedReply => "sliced reply (4 pieces)",
        }
    }

    /// A short name for request ids.
    fn tag(self) -> String {
        format!("{self:?}").to_lowercase()
    }

    /// How the lab produces it (the docs' list of faults).
    fn how(self) -> &'static str {
        match self {
            Fault::ResetAtAccept => "`on_accept(ConnectionMatch::nth(1), Disconnect::Reset)`: the first connection is reset as soon as it is accepted, before anything is read",
            Fault::CloseAtAccept => "`on_accept(ConnectionMatch::nth(1), Disconnect::Fin)`: the same with a clean close",
            Fault::ResetAfterHead => "`Fault::ResetAfterHead`: reset once the request head is read; not executed",
            Fault::CloseAfterHead => "`Fault::CloseAfterHead`: closed once the request head is read; not executed",
            Fault::ResetAfterRequest => "`Fault::ResetAfterRequest`: the whole request is read (executed), then the connection is reset without an answer",
            Fault::CloseAfterRequest => "`Fault::CloseAfterRequest`: executed, then closed without an answer",
            Fault::ResetInHead => "`Fault::ResetInHead`: executed, half the response head written, then reset",
            Fault::ResetInBody => "`Fault::ResetInBody`: executed, the head and half the body written, then reset",
            Fault::CloseInBody => "`Fault::CloseInBody`: the same with a clean close",
            Fault::ResetInBodyResumable => "`Fault::ResetInBody` on a reply that serves ranges (`Reply::ranges`) with `ETag: \"v1\"`: a resume request gets `206` with the rest",
            Fault::ResetInBodyChanged => "the same, and every later request with the request's id gets another version (`ETag: \"v2\"`): a resume request gets `200` with it",
            Fault::IdleReset => "`idle_timeout(500 ms, Idle::Reset)`: a warm-up request pools a connection, which the lab resets once idle; the request goes 700 ms later",
            Fault::IdleForget => "`idle_timeout(500 ms, Idle::Forget)`: the pooled connection stays open and silent for 700 ms, and is reset when the request arrives on it, without being read (as a NAT or load balancer that forgot it)",
            Fault::RestartWarm => "a warm-up request pools a connection, then `Lab::restart()` resets it and listens again on the same port",
            Fault::RefusedWindow => "`Lab::stop()`, the request, then `Lab::resume()` 100 ms later: connections are refused meanwhile",
            Fault::GoAway => "`Fault::GoAway`: `GOAWAY(NO_ERROR)` with a last-stream-id below the request's stream; not executed",
            Fault::RefuseStream => "`Fault::RefuseStream`: `RST_STREAM(REFUSED_STREAM)`; not executed",
            Fault::SlowReply => "`Reply::delay`: the reply is written 150 ms after the request was read",
            Fault::SlicedReply => "`Reply::sliced(4, 20 ms)`: the body is written in 4 pieces, 20 ms apart",
        }
    }

    /// Whether the client must hold a pooled connection before the request.
    fn needs_warm_pool(self) -> bool {
        matches!(
            self,
            Fault::IdleReset | Fault::IdleForget | Fault::RestartWarm
        )
    }

    /// Scripts the lab so that the fault meets the first attempt of `call` only.
    fn script(self, lab: LabBuilder, call: &Call, reply: &Reply) -> LabBuilder {
        let first = Match::header(REQUEST_ID, call.id_value()).times(1);
        match self {
            Fault::ResetAtAccept => lab.on_accept(ConnectionMatch::nth(1), Disconnect::Reset),
            Fault::CloseAtAccept => lab.on_accept(ConnectionMatch::nth(1), Disconnect::Fin),
            Fault::ResetAfterHead => lab.on(first, LabFault::ResetAfterHead),
            Fault::CloseAfterHead => lab.on(first, LabFault::CloseAfterHead),
            Fault::ResetAfterRequest => lab.on(first, LabFault::ResetAfterRequest),
            Fault::CloseAfterRequest => lab.on(first, LabFault::CloseAfterRequest),
            Fault::ResetInHead => lab.on(first, LabFault::ResetInHead),
            Fault::ResetInBody => lab.on(first, LabFault::ResetInBody),
            Fault::CloseInBody => lab.on(first, LabFault::CloseInBody),
            Fault::ResetInBodyResumable => lab
                .reply(resumable(reply, "\"v1\""))
                .on(first, LabFault::ResetInBody),
            Fault::ResetInBodyChanged => lab
                .reply(resumable(reply, "\"v1\""))
                .on(first, LabFault::ResetInBody)
                .on(
                    Match::header(REQUEST_ID, call.id_value()),
                    resumable(reply, "\"v2\"").body(Bytes::from_static(CHANGED_BODY)),
                ),
            Fault::IdleReset => lab.idle_timeout(IDLE_TIMEOUT, Idle::Reset),
            Fault::IdleForget => lab.idle_timeout(IDLE_TIMEOUT, Idle::Forget),
            Fault::RestartWarm | Fault::RefusedWindow => lab,
            Fault::GoAway => lab.on(first, LabFault::GoAway),
            Fault::RefuseStream => lab.on(first, LabFault::RefuseStream),
            Fault::SlowReply => lab.on(first, reply.clone().delay(SLOW)),
            Fault::SlicedReply => lab.on(first, reply.clone().sliced(4, Duration::from_millis(20))),
        }
    }

    /// Sends `call` with the fault in place (the warm-up, if any, is done).
    async fn send(self, lab: &Lab, sender: &dyn Sender, call: Call) -> Observed {
        match self {
            Fault::IdleReset | Fault::IdleForget => {
                tokio::time::sleep(IDLE_WAIT).await;
                sender.send(call).await
            }
            Fault::RestartWarm => {
                lab.restart().await.expect("the lab restarts");
                tokio::time::sleep(SETTLE).await;
                sender.send(call).await
            }
            Fault::RefusedWindow => {
                lab.stop().await;
                let resume = async {
                    tokio::time::sleep(REFUSED_WINDOW).await;
                    lab.resume().await.expect("the lab listens again");
                };
                tokio::join!(sender.send(call), resume).0
            }
            _ => sender.send(call).await,
        }
    }

    /// Whether the server-side counts show that the fault happened.
    fn fired(self, counts: &tower_reset::lab::Counts) -> bool {
        match self {
            Fault::ResetAtAccept | Fault::CloseAtAccept => counts.accept_hits() == [1],
            Fault::IdleReset => counts.idle_disconnects() >= 1,
            Fault::IdleForget => counts.forgotten_resets() == 1,
            // The request went out on a connection made after the restart.
            Fault::RestartWarm => counts.connections() == 2,
            // Refused connections leave no trace on the server: the client's history shows them.
            Fault::RefusedWindow => true,
            // The changed version's rule fires only for a resume.
            Fault::ResetInBodyChanged => counts.rule_hits().first() == Some(&1),
            _ => counts.rule_hits() == [1],
        }
    }
}

/// `reply` serving ranges, with this `ETag`.
fn resumable(reply: &Reply, tag: &'static str) -> Reply {
    reply
        .clone()
        .header(http::header::ETAG, HeaderValue::from_static(tag))
        .ranges()
}

/// The body of the version a resource changes to in [`Fault::ResetInBodyChanged`].
const CHANGED_BODY: &[u8] = b"another version of the resource, of another length";

/// How far the first attempt got, as the client can tell: the class the crate's classifier
/// gives the failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Never sent: retried for any method.
    NeverSent,
    /// Refused by the protocol: retried for any method.
    Refused,
    /// Sent, outcome unknown: retried only for idempotent requests.
    Unknown,
}

impl Class {
    fn of(class: FailureClass) -> Option<Class> {
        match class {
            FailureClass::NeverSent => Some(Class::NeverSent),
            FailureClass::Refused => Some(Class::Refused),
            FailureClass::UnknownOutcome => Some(Class::Unknown),
            _ => None,
        }
    }
}

/// What the fault does to the first attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FirstAttempt {
    /// Nothing: the client got around it before the request went out.
    Unaffected,
    /// The response came, then its body failed.
    BodyCut,
    /// The response came, from a resource that serves ranges with a strong `ETag`, then its
    /// body failed; `changed`: a resume gets another version.
    BodyCutResumable { changed: bool },
    /// No response. `classes`: what the client may learn of it (more than one when a race
    /// decides); `received` and `executed`: what the lab did with this attempt.
    Failed {
        classes: &'static [Class],
        received: bool,
        executed: bool,
    },
}

/// What the fault does to the first attempt of a request sent by `client`; `None` when the
/// fault does not exist for it.
fn first_attempt(fault: Fault, client: Client) -> Option<FirstAttempt> {
    use FirstAttempt::{BodyCut, Failed, Unaffected};
    let failed = |classes, received, executed| {
        Some(Failed {
            classes,
            received,
            executed,
        })
    };
    match fault {
        // A race, on every client, between the client's first write and the server's RST or
        // FIN: the client either learns that the connection is gone before the request is
        // written (hyper's `Canceled`, a connect error: never sent), or after (a reset, an end
        // of file, h2's `BrokenPipe` under an open stream: unknown outcome) [^accept].
        Fault::ResetAtAccept | Fault::CloseAtAccept => {
            failed(&[Class::NeverSent, Class::Unknown], false, false)
        }
        Fault::ResetAfterHead | Fault::CloseAfterHead => failed(&[Class::Unknown], true, false),
        Fault::ResetAfterRequest | Fault::CloseAfterRequest | Fault::ResetInHead => {
            failed(&[Class::Unknown], true, true)
        }
        Fault::ResetInBody | Fault::CloseInBody => Some(BodyCut),
        // gRPC calls are POSTs: there is nothing to resume.
        Fault::ResetInBodyResumable | Fault::ResetInBodyChanged if client == Client::Tonic => None,
        Fault::ResetInBodyResumable => Some(FirstAttempt::BodyCutResumable { changed: false }),
        Fault::ResetInBodyChanged => Some(FirstAttempt::BodyCutResumable { changed: true }),
        // The client saw the connection go while it was idle, and dropped it.
        Fault::IdleReset | Fault::RestartWarm | Fault::SlowReply | Fault::SlicedReply => {
            Some(Unaffected)
        }
        // The client cannot know the connection is dead until the request is written on it.
        Fault::IdleForget => failed(&[Class::Unknown], false, false),
        Fault::RefusedWindow => failed(&[Class::NeverSent], false, false),
        Fault::GoAway | Fault::RefuseStream if client.http2() => {
            failed(&[Class::Refused], true, false)
        }
        Fault::GoAway | Fault::RefuseStream => None,
    }
}

/// What the caller gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The response, at the first attempt.
    FirstTry,
    /// The response, after a retry.
    Retried,
    /// The error of the first attempt, without a retry.
    Surfaced,
    /// A response whose body then failed, at the first attempt.
    BodyError,
    /// A response whose body failed, was resumed with a range request, and arrived whole.
    Resumed,
    /// Anything else (a failure after retries, a wrong body, a missing history): never
    /// expected.
    Other(String),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::FirstTry => f.write_str("first try"),
            Outcome::Retried => f.write_str("retried"),
            Outcome::Surfaced => f.write_str("surfaced"),
            Outcome::BodyError => f.write_str("body error"),
            Outcome::Resumed => f.write_str("resumed"),
            Outcome::Other(what) => f.write_str(what),
        }
    }
}

/// One possible result of a cell: what the caller gets, how many times the lab received and
/// executed the request, and the class of the first attempt's failure (`None`: it did not
/// fail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub(crate) outcome: Outcome,
    pub(crate) arrivals: usize,
    pub(crate) executions: usize,
    first_failure: Option<Class>,
}

impl Verdict {
    /// Its text in the table.
    fn text(&self) -> String {
        format!("{} ({}×)", self.outcome, self.executions)
    }
}

/// What a cell may give: one verdict, or one per class when a race decides what the client
/// learns; none when the fault does not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expected {
    pub(crate) verdicts: Vec<Verdict>,
}

impl Expected {
    /// The text of its cell in the table.
    pub(crate) fn cell(&self) -> String {
        if self.verdicts.is_empty() {
            return "n/a".to_owned();
        }
        let mut texts: Vec<String> = self.verdicts.iter().map(Verdict::text).collect();
        texts.dedup();
        texts.join(" or ")
    }

    /// Whether `verdict` is one of the expected ones.
    fn allows(&self, verdict: &Verdict) -> bool {
        self.verdicts.contains(verdict)
    }
}

/// The expected verdicts of a cell, from the crate's rules: a failure the client can prove was
/// never sent or refused is retried for any method; a failure with an unknown outcome is retried
/// for GET, PUT and POST with an `Idempotency-Key`, and surfaced for a POST; a failure in the
/// response body happens after the stack returned, out of reach of a retry: only a `ResumeLayer`
/// continues it, for a GET of a resource with a validator, and never with another version.
pub(crate) fn expected(fault: Fault, method: Method, client: Client) -> Expected {
    let verdict = |outcome, arrivals, executions, first_failure| Verdict {
        outcome,
        arrivals,
        executions,
        first_failure,
    };
    let verdicts = match first_attempt(fault, client) {
        None => Vec::new(),
        Some(FirstAttempt::Unaffected) => vec![verdict(Outcome::FirstTry, 1, 1, None)],
        Some(FirstAttempt::BodyCut) => vec![verdict(Outcome::BodyError, 1, 1, None)],
        Some(FirstAttempt::BodyCutResumable { changed }) => {
            if method == Method::Get && client.resumes() {
                // The resume request is received and executed too; with another version, it is
                // answered, and the body still ends with the reset.
                let outcome = if changed {
                    Outcome::BodyError
                } else {
                    Outcome::Resumed
                };
                vec![verdict(outcome, 2, 2, None)]
            } else {
                vec![verdict(Outcome::BodyError, 1, 1, None)]
            }
        }
        Some(FirstAttempt::Failed {
            classes,
            received,
            executed,
        }) => {
            let (arrivals, executions) = (usize::from(received), usize::from(executed));
            classes
                .iter()
                .map(|&class| {
                    if class != Class::Unknown || method.is_idempotent() {
                        verdict(Outcome::Retried, arrivals + 1, executions + 1, Some(class))
                    } else {
                        verdict(Outcome::Surfaced, arrivals, executions, Some(class))
                    }
                })
                .collect()
        }
    };
    let mut verdicts = verdicts;
    if client == Client::Tonic && matches!(fault, Fault::ResetAtAccept | Fault::CloseAtAccept) {
        // The stack's channel is connected before the call goes out: it may see the connection
        // go first, and reconnect by itself [^accept].
        verdicts.push(verdict(Outcome::FirstTry, 1, 1, None));
    }
    Expected { verdicts }
}

/// What one cell observed.
#[derive(Debug)]
struct Run {
    fault: Fault,
    method: Method,
    id: String,
    /// `Err`: the cell could not run (a timeout, a failed warm-up).
    observed: Result<Observed, String>,
    counts: Option<tower_reset::lab::Counts>,
}

impl Run {
    fn verdict(&self) -> Verdict {
        let (arrivals, executions) = self.counts.as_ref().map_or((0, 0), |counts| {
            (counts.arrivals(&self.id), counts.executions(&self.id))
        });
        let (outcome, first_failure) = match &self.observed {
            Err(why) => (Outcome::Other(why.clone()), None),
            Ok(observed) => {
                let outcome = match (&observed.end, observed.attempts) {
                    (End::Ok(body), _) if body.as_ref() != REPLY_BODY => {
                        Outcome::Other(format!("wrong body {body:?}"))
                    }
                    (End::Ok(_), 1) if observed.resumes > 0 => Outcome::Resumed,
                    (End::Ok(_), 1) => Outcome::FirstTry,
                    (End::Ok(_), n) if n > 1 => Outcome::Retried,
                    (End::Failed(_), 1) => Outcome::Surfaced,
                    (End::BodyFailed(_), 1) => Outcome::BodyError,
                    (end, attempts) => Outcome::Other(format!("{end:?} after {attempts} attempts")),
                };
                let first_failure = observed
                    .failures
                    .first()
                    .and_then(|&class| Class::of(class));
                (outcome, first_failure)
            }
        };
        Verdict {
            outcome,
            arrivals,
            executions,
            first_failure,
        }
    }
}

/// Runs one cell: a lab of its own, the client, the fault, the request.
async fn run_cell(client: Client, fault: Fault, method: Method) -> Run {
    let id = format!("{}-{}", method.tag(), fault.tag());
    let mut run = Run {
        fault,
        method,
        id: id.clone(),
        observed: Err("not run".to_owned()),
        counts: None,
    };
    if first_attempt(fault, client).is_none() {
        run.observed = Err("n/a".to_owned());
        return run;
    }
    let call = Call::new(method, id);
    let reply = client.reply();
    let mut lab = Lab::builder().reply(reply.clone());
    if client.http2() {
        lab = lab.http2();
    }
    let lab = fault
        .script(lab, &call, &reply)
        .start()
        .await
        .expect("start a lab");
    let sender = client.sender(&lab).await;
    let cell = async {
        if fault.needs_warm_pool() {
            let warm = sender
                .send(Call::new(Method::Get, format!("warm-{}", call.id)))
                .await;
            if !matches!(warm.end, End::Ok(_)) {
                return Err(format!("the warm-up failed: {warm:?}"));
            }
            // Let the pool take the connection back.
            tokio::time::sleep(SETTLE).await;
        }
        Ok(fault.send(&lab, &*sender, call).await)
    };
    run.observed = match tokio::time::timeout(REQUEST_BOUND, cell).await {
        Ok(observed) => observed,
        Err(_) => Err(format!("no answer within {REQUEST_BOUND:?}: a hang")),
    };
    let counts = lab.counts();
    if std::env::var_os("TOWER_RESET_MATRIX_TRACE").is_some() {
        println!(
            "cell {} × {} × {}: {:?}",
            client.label(),
            fault.label(),
            method.label(),
            run.observed
        );
    }
    if !fault.fired(&counts) {
        run.observed = Err(format!(
            "the fault did not happen (counts: {:?})",
            summary(&counts)
        ));
    }
    run.counts = Some(counts);
    run
}

fn summary(counts: &tower_reset::lab::Counts) -> String {
    format!(
        "connections {}, received {}, executed {}, rule hits {:?}, accept hits {:?}, idle {}, forgotten {}",
        counts.connections(),
        counts.received(),
        counts.executed(),
        counts.rule_hits(),
        counts.accept_hits(),
        counts.idle_disconnects(),
        counts.forgotten_resets()
    )
}

/// How many cells of one client run at once (each with its own lab).
const CONCURRENT_CELLS: usize = 24;

/// Runs every cell of `client`'s column, some at once.
async fn run_column(client: Client) -> Vec<Run> {
    let mut cells = Vec::new();
    for fault in Fault::ALL {
        for method in Method::ALL {
            cells.push((fault, method));
        }
    }
    let mut running = JoinSet::new();
    let mut runs = Vec::new();
    for (fault, method) in cells {
        if running.len() >= CONCURRENT_CELLS {
            runs.push(
                running
                    .join_next()
                    .await
                    .expect("a cell")
                    .expect("no panic"),
            );
        }
        running.spawn(run_cell(client, fault, method));
    }
    while let Some(run) = running.join_next().await {
        runs.push(run.expect("no panic"));
    }
    runs.sort_by_key(|run| (run.fault, run.method));
    runs
}

/// What the whole suite proves about `POST`s without a key: sent, executed, executed twice.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    pub(crate) bare_posts: usize,
    pub(crate) executions: usize,
    pub(crate) duplicates: Vec<String>,
}

/// Every test of the suite adds to it; each asserts its own part.
pub(crate) static LEDGER: Mutex<Ledger> = Mutex::new(Ledger {
    bare_posts: 0,
    executions: 0,
    duplicates: Vec::new(),
});

/// Records what `counts` says about `POST`s without a key, and returns the ids executed twice.
pub(crate) fn record_bare_posts(what: &str, counts: &tower_reset::lab::Counts) -> Vec<String> {
    let mut ids: Vec<&str> = counts
        .requests()
        .iter()
        .filter_map(|record| record.request_id())
        .filter(|id| Method::is_bare_post_id(id))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let duplicates: Vec<String> = counts
        .duplicates()
        .into_iter()
        .filter(|(id, _)| Method::is_bare_post_id(id))
        .map(|(id, count)| format!("{what}: {id} executed {count} times"))
        .collect();
    let mut ledger = LEDGER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    ledger.bare_posts += ids.len();
    ledger.executions += ids.iter().map(|id| counts.executions(id)).sum::<usize>();
    ledger.duplicates.extend(duplicates.iter().cloned());
    duplicates
}

/// Prints the tally of the whole run so far, and fails if any test of the suite has seen a
/// `POST` without a key executed twice.
pub(crate) fn check_ledger() {
    let ledger = LEDGER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    println!(
        "POST without a key, whole suite so far: {} sent, {} executions, {} executed twice",
        ledger.bare_posts,
        ledger.executions,
        ledger.duplicates.len()
    );
    assert!(
        ledger.duplicates.is_empty(),
        "POSTs without a key executed twice: {:?}",
        ledger.duplicates
    );
}

/// Runs `client`'s column of the matrix and checks every cell against [`expected`] and against
/// the checked-in `docs/fault-matrix.md`; fails with every mismatch at once.
pub(crate) async fn check_client(client: Client) {
    let started = tokio::time::Instant::now();
    let runs = tokio::time::timeout(Duration::from_secs(60), run_column(client))
        .await
        .expect("the column ends within 60 s");
    let mut problems = Vec::new();
    let mut column = BTreeMap::new();
    for run in &runs {
        let want = expected(run.fault, run.method, client);
        if want.verdicts.is_empty() {
            column.insert((run.fault, run.method), want.cell());
            continue;
        }
        let got = run.verdict();
        if want.allows(&got) {
            column.insert((run.fault, run.method), want.cell());
        } else {
            let verdicts: Vec<String> = want
                .verdicts
                .iter()
                .map(|verdict| format!("{verdict:?}"))
                .collect();
            problems.push(format!(
                "{} × {} × {}: expected {}, got {got:?}\n    observed: {:?}\n    lab: {}",
                client.label(),
                run.fault.label(),
                run.method.label(),
                verdicts.join(" or "),
                run.observed,
                run.counts.as_ref().map_or_else(|| "-".to_owned(), summary),
            ));
            column.insert((run.fault, run.method), got.text());
        }
        if let Some(counts) = &run.counts {
            let label = format!(
                "{} × {} × {}",
                client.label(),
                run.fault.label(),
                run.method.label()
            );
            problems.extend(record_bare_posts(&label, counts));
        }
    }
    if !bless() {
        problems.extend(check_doc_column(client, &column));
    }
    let elapsed = started.elapsed();
    println!(
        "{}: {} cells in {:.2?}, {} mismatches",
        client.label(),
        runs.len(),
        elapsed,
        problems.len()
    );
    check_ledger();
    assert!(
        problems.is_empty(),
        "{}: {} problem(s):\n  {}",
        client.label(),
        problems.len(),
        problems.join("\n  ")
    );
}

/// Whether `TOWER_RESET_BLESS=1` asks for the docs to be rewritten rather than checked.
fn bless() -> bool {
    std::env::var_os("TOWER_RESET_BLESS").is_some_and(|value| value == "1")
}

fn doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/fault-matrix.md")
}

/// The cells of the checked-in table: (fault label, method label, client label) → cell.
fn doc_cells(doc: &str) -> BTreeMap<(String, String, String), String> {
    let mut cells = BTreeMap::new();
    let mut fault = String::new();
    let mut headers: Vec<String> = Vec::new();
    for line in doc.lines() {
        let Some(row) = line.strip_prefix('|') else {
            continue;
        };
        let columns: Vec<String> = row
            .trim_end()
            .trim_end_matches('|')
            .split('|')
            .map(|cell| cell.trim().to_owned())
            .collect();
        if columns.first().is_some_and(|first| first == "fault") {
            headers = columns;
            continue;
        }
        if headers.is_empty() || columns.len() != headers.len() || columns[0].starts_with("---") {
            continue;
        }
        if !columns[0].is_empty() {
            // Drop footnote marks: "reset at accept [^accept]".
            fault = columns[0]
                .split(" [^")
                .next()
                .unwrap_or_default()
                .to_owned();
        }
        for (header, cell) in headers.iter().zip(&columns).skip(2) {
            cells.insert(
                (fault.clone(), columns[1].clone(), header.clone()),
                cell.clone(),
            );
        }
    }
    cells
}

/// Compares what `client` observed with its column of `docs/fault-matrix.md`.
fn check_doc_column(client: Client, column: &BTreeMap<(Fault, Method), String>) -> Vec<String> {
    let doc = match std::fs::read_to_string(doc_path()) {
        Ok(doc) => doc,
        Err(error) => return vec![format!("cannot read docs/fault-matrix.md: {error}")],
    };
    let cells = doc_cells(&doc);
    let mut problems = Vec::new();
    for ((fault, method), observed) in column {
        let key = (
            fault.label().to_owned(),
            method.label().to_owned(),
            client.label().to_owned(),
        );
        match cells.get(&key) {
            Some(documented) if documented == observed => {}
            documented => problems.push(format!(
                "docs/fault-matrix.md, {} × {}: documents {documented:?}, observed {observed:?} \
                 (`TOWER_RESET_BLESS=1 cargo test --all-features --test clients` rewrites it)",
                fault.label(),
                method.label(),
            )),
        }
    }
    problems
}

/// Footnotes of the table, by fault.
fn footnote(fault: Fault) -> Option<&'static str> {
    match fault {
        Fault::ResetAtAccept | Fault::CloseAtAccept => Some("accept"),
        Fault::ResetInBody | Fault::CloseInBody => Some("body"),
        Fault::ResetInBodyResumable | Fault::ResetInBodyChanged => Some("resume"),
        Fault::IdleForget => Some("forget"),
        Fault::IdleReset | Fault::RestartWarm => Some("noticed"),
        Fault::RefusedWindow => Some("refused"),
        Fault::GoAway | Fault::RefuseStream => Some("h2-only"),
        _ => None,
    }
}

const DOC_HEAD: &str = "\
# The fault matrix

<!-- Generated by the `clients` test target (tests/clients/matrix.rs). Do not edit by hand:
     `TOWER_RESET_BLESS=1 cargo test --all-features --test clients` rewrites it. -->

What happens to one request when a server fails at each point where a connection can fail,
for four kinds of request and six clients, each client under its full recommended stack, over
real loopback sockets. The server is the reset lab (`tower_reset::lab`, feature `lab`), scripted
so that the fault meets the first attempt of the request only: a retry, if the stack makes one,
can succeed.

Each cell says what the caller got, and in parentheses how many times the lab *executed* the
request (read it in full; counted on the server side, by request id):

* **first try**: the fault never reached the request, which succeeded at its first attempt;
* **retried**: the first attempt failed, the stack sent the request again, and the caller got
  the response;
* **surfaced**: the first attempt failed, and the stack returned its error without sending the
  request again;
* **body error**: the response came, then its body failed: out of reach of a `Service`-level
  retry;
* **resumed**: the response came, its body failed, and the stack's `ResumeLayer` fetched the
  rest with a range request: the caller got the whole body;
* **n/a**: the fault does not exist in HTTP/1.1, or, for the resumable rows, in gRPC.

Every cell follows from one rule. A failure the client can prove was never sent (connection
refused, closed before the request was written) or refused by the protocol (`REFUSED_STREAM`,
`GOAWAY`) is retried for any method. A failure whose outcome is unknown (reset or closed after
the request was written) is retried for GET, PUT and a POST with an `Idempotency-Key`, and
surfaced for a POST: a **POST without a key is never executed twice**, and the tests check the
counts of every lab for it, in every cell and in the soak test.

This table is not written by hand: `tests/clients/matrix.rs` computes each cell from that rule
(its `expected` function), each client's test runs its column over sockets and fails on any
difference, and a test checks that this file is that table.

";

const DOC_TAIL: &str = "
[^accept]: A race, on every client, between the client writing its request and the server's
    RST or FIN reaching it. When the client learns first that the connection is gone (hyper's
    `Canceled`, a connect error), the request was never sent, and it is retried whatever its
    method. When the request was already written (a `ConnectionReset` or an end of file under
    it, h2's `BrokenPipe`), the client cannot tell that the server received nothing, so a POST
    is surfaced, although the lab proves it received nothing. Both happen on loopback, on every
    client, more or less often with the load; the tests accept either, and check that a POST
    is only ever retried after a never-sent failure. The tonic stack's channel is connected
    before the call is sent, so it may also see the connection go first and reconnect by
    itself: the call then succeeds at its first try.

[^body]: The stack has returned the response when the body fails: the error reaches the caller
    while it reads the body. Retrying it would need the whole response buffered. The lab's reply
    here has no validator, so the `ResumeLayer` of the stacks that have one cannot resume it.

[^resume]: The same reset, from a resource that serves ranges with a strong `ETag`. A GET
    through a stack with a `ResumeLayer` (hyper-util, reqwest, the axum app's upstream) asks for
    the rest with `Range` and `If-Range`: the lab executes that request too (2×), and the caller
    gets the whole body. When the resource changed, the `If-Range` fails, the lab answers `200`
    with the other version, and the caller gets the original body error, never a body made of
    two versions. Other methods are never resumed; reqwest-middleware runs only the retry and
    backoff layers, and gRPC calls are POSTs (n/a).

[^forget]: The stale keep-alive connection: the client cannot know it is dead until the request
    is written on it, and the reset that follows could come from a server that read it. The lab
    proves it did not (0 executions), but the client cannot, so a POST is surfaced. The retries
    go out on a fresh connection (`FreshConnectionLayer` poisons the stale one; reqwest and
    reqwest-middleware rely on hyper-util dropping a connection that failed).

[^noticed]: The client saw the connection go while it sat in the pool, and dropped it: the
    request goes out on a new connection and never meets the fault.

[^refused]: Never sent. The refusal marks the host as down (`backoff::RideOut`): the retry
    waits for it behind one probe at a time (after 12 to 25 ms, then doubling); the probes the
    host refuses do not count as attempts, and the one that finds it listening again carries
    the request.

[^h2-only]: `GOAWAY` and `REFUSED_STREAM` are HTTP/2 frames: the HTTP/1.1 clients (and the axum
    app's HTTP/1.1 upstream) cannot meet them.

## The faults

";

const DOC_CLIENTS: &str = "
## The clients and their stacks

* **hyper-util HTTP/1.1** and **HTTP/2**: the legacy `Client` (HTTP/2 with `http2_only`),
  under `ResumeLayer` → `ResetRetryLayer` → `BackoffLayer` → `FreshConnectionLayer::new()`; its
  body, `Full<Bytes>`, is `Clone`.
* **tonic**: a `Channel` and the generated `EchoClient`, under the README's gRPC stack:
  `UnavailableStatusLayer` → `ReplayBodyLayer` → `ResetRetryLayer` with `IdempotentMethods` →
  `BackoffLayer` → `ChannelBodyLayer`. gRPC has no methods and no `Idempotency-Key` header, so
  the matrix maps its requests onto calls: GET and PUT call `echo.Echo/Get`, declared idempotent
  (listed in `IdempotentMethods`); POST calls `echo.Echo/Echo`, not declared; POST + key calls
  `echo.Echo/Echo` with an `idempotency-key` metadata entry.
* **reqwest**: `tower_reset::reqwest::HttpClient` under `ResumeLayer` → `ResetRetryLayer` →
  `BackoffLayer` → `FreshConnectionLayer::detour(..)`, the detour a second client that keeps no
  idle connection.
* **reqwest-middleware**: `ResetRetryMiddleware` in a `ClientWithMiddleware` (no
  fresh-connection layer: reqwest hides its pool).
* **axum app**: an axum router whose handler forwards the request to the lab through the
  hyper-util stack kept in its `State`, with `ReplayBodyLayer` in front (the incoming body is a
  stream); it streams the upstream body back and answers `502` when the upstream call fails. The
  cell is what the app's own client gets; the attempts and resumes are the upstream call's.

Every stack uses `ResumeLayer::new()` where it has one, `ResetRetryLayer::new()` (3 attempts,
the default budget) and a `BackoffLayer` whose schedule has no jitter (first delay 250 ms), so
that the refused window is timed exactly.
";

/// The whole of `docs/fault-matrix.md`, from [`expected`].
pub(crate) fn render_doc() -> String {
    let mut doc = String::from(DOC_HEAD);
    doc.push_str("| fault | request |");
    for client in Client::ALL {
        doc.push_str(&format!(" {} |", client.label()));
    }
    doc.push_str("\n|---|---|");
    for _ in Client::ALL {
        doc.push_str("---|");
    }
    doc.push('\n');
    for fault in Fault::ALL {
        for (index, method) in Method::ALL.into_iter().enumerate() {
            let label = if index > 0 {
                String::new()
            } else {
                match footnote(fault) {
                    Some(note) => format!("{} [^{note}]", fault.label()),
                    None => fault.label().to_owned(),
                }
            };
            doc.push_str(&format!("| {label} | {} |", method.label()));
            for client in Client::ALL {
                doc.push_str(&format!(" {} |", expected(fault, method, client).cell()));
            }
            doc.push('\n');
        }
    }
    doc.push_str(DOC_TAIL);
    for fault in Fault::ALL {
        doc.push_str(&format!("* **{}**: {}.\n", fault.label(), fault.how()));
    }
    doc.push_str(DOC_CLIENTS);
    doc
}

/// A line diff of `old` and `new`, changed lines with two lines of context.
fn diff(old: &str, new: &str) -> String {
    let old: Vec<&str> = old.lines().collect();
    let new: Vec<&str> = new.lines().collect();
    // Longest common subsequence, by dynamic programming (the file has a few hundred lines).
    let mut lcs = vec![vec![0u32; new.len() + 1]; old.len() + 1];
    for i in (0..old.len()).rev() {
        for j in (0..new.len()).rev() {
            lcs[i][j] = if old[i] == new[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut lines = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        if i < old.len() && j < new.len() && old[i] == new[j] {
            lines.push((' ', old[i]));
            i += 1;
            j += 1;
        } else if i < old.len() && (j == new.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            lines.push(('-', old[i]));
            i += 1;
        } else {
            lines.push(('+', new[j]));
            j += 1;
        }
    }
    let changed: Vec<usize> = (0..lines.len()).filter(|&k| lines[k].0 != ' ').collect();
    let mut out = String::new();
    let mut last = None;
    for (k, (mark, line)) in lines.iter().enumerate() {
        let near = changed.iter().any(|&c| c.abs_diff(k) <= 2);
        if !near {
            continue;
        }
        if last.is_some_and(|last: usize| k > last + 1) {
            out.push_str("  ...\n");
        }
        out.push_str(&format!("{mark} {line}\n"));
        last = Some(k);
    }
    out
}

/// `docs/fault-matrix.md` is the table [`expected`] gives (which the client tests assert).
#[test]
fn fault_matrix_doc_is_up_to_date() {
    let rendered = render_doc();
    let path = doc_path();
    if bless() {
        std::fs::write(&path, &rendered).expect("write docs/fault-matrix.md");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == rendered,
        "docs/fault-matrix.md is not the table the tests assert; \
         `TOWER_RESET_BLESS=1 cargo test --all-features --test clients` rewrites it.\n\
         - checked in, + expected:\n{}",
        diff(&checked_in, &rendered)
    );
}

/// The parser of the checked-in table reads back what the renderer wrote.
#[test]
fn the_doc_table_parses_back() {
    let cells = doc_cells(&render_doc());
    assert_eq!(
        cells.len(),
        Fault::ALL.len() * Method::ALL.len() * Client::ALL.len()
    );
    let key = |fault: Fault, method: Method, client: Client| {
        (
            fault.label().to_owned(),
            method.label().to_owned(),
            client.label().to_owned(),
        )
    };
    assert_eq!(
        cells[&key(Fault::ResetAfterRequest, Method::Post, Client::Tonic)],
        "surfaced (1×)"
    );
    assert_eq!(
        cells[&key(Fault::GoAway, Method::Get, Client::Reqwest)],
        "n/a"
    );
    assert_eq!(
        cells[&key(Fault::ResetAtAccept, Method::Post, Client::HyperUtilH1)],
        "retried (1×) or surfaced (0×)"
    );
}

/// The rule, checked on its own: no expectation lets a POST without a key run twice; a
/// POST is retried only after a failure the client knows was never processed; and every
/// idempotent request is retried after any failure before the response (unless no attempt
/// failed).
#[test]
fn no_expectation_runs_a_bare_post_twice() {
    for client in Client::ALL {
        for fault in Fault::ALL {
            for post in expected(fault, Method::Post, client).verdicts {
                assert!(post.executions <= 1, "{fault:?} × {client:?}: {post:?}");
                if post.outcome == Outcome::Retried {
                    assert!(
                        matches!(post.first_failure, Some(Class::NeverSent | Class::Refused)),
                        "{fault:?} × {client:?}: {post:?}"
                    );
                }
            }
            if let Some(FirstAttempt::Failed { .. }) = first_attempt(fault, client) {
                for method in [Method::Get, Method::Put, Method::PostWithKey] {
                    for verdict in expected(fault, method, client).verdicts {
                        // Or, for a client that reconnects by itself before it sends, the first
                        // try succeeds.
                        assert!(
                            verdict.outcome == Outcome::Retried
                                || (verdict.outcome == Outcome::FirstTry
                                    && verdict.first_failure.is_none()),
                            "{fault:?} × {method:?} × {client:?}: {verdict:?}"
                        );
                    }
                }
            }
        }
    }
}

/// The diff names the changed lines.
#[test]
fn the_diff_shows_what_changed() {
    let diff = diff("a\nb\nc\n", "a\nB\nc\n");
    assert_eq!(diff, "  a\n- b\n+ B\n  c\n");
}

/// A header value for ids, checked once here so that cells cannot fail on it.
#[test]
fn every_cell_id_is_a_valid_header_value() {
    for fault in Fault::ALL {
        for method in Method::ALL {
            let id = format!("{}-{}", method.tag(), fault.tag());
            assert!(HeaderValue::from_str(&id).is_ok(), "{id}");
            assert_eq!(Method::is_bare_post_id(&id), method == Method::Post, "{id}");
        }
    }
}
