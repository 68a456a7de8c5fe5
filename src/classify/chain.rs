//! Walking an error's `source()` chain and reading each link.
//!
//! Every client wraps the socket error differently: hyper-util puts a `hyper::Error` inside its
//! own, hyper puts the `io::Error` inside that, tonic and reqwest add one or two more layers, and
//! h2 keeps its io error behind an accessor instead of `source()`. So each link is inspected on
//! its own, and the verdicts of all links are combined: the link that proves the request was
//! never processed wins over one that only says "the connection broke" (a connect error whose
//! cause is an `io::ErrorKind::ConnectionReset` is still a connect error).

use std::error::Error;
use std::io;

use super::FailureClass;

/// Chains deeper than this are cut short, so a cyclic `source()` cannot loop forever.
const MAX_DEPTH: usize = 32;

/// Classifies the whole chain that starts at `error`.
pub(super) fn classify(error: &(dyn Error + 'static)) -> Option<FailureClass> {
    let mut verdict: Option<FailureClass> = None;
    for class in links(error).filter_map(classify_link) {
        let combined = verdict.map_or(class, |seen| most_certain(seen, class));
        verdict = Some(combined);
        if combined == FailureClass::NeverSent {
            // Nothing can be more certain than "never sent".
            break;
        }
    }
    verdict
}

/// The links of the chain that starts at `error`, outermost first, at most [`MAX_DEPTH`] of
/// them.
pub(crate) fn links<'a>(
    error: &'a (dyn Error + 'static),
) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(error), |err| next_link(*err)).take(MAX_DEPTH)
}

/// The error below `err` in the chain.
///
/// `io::Error::source()` skips the error an `io::Error` wraps and returns *that* error's source,
/// so an `io::Error` directly inside another (`io::Error::other(io::Error::from(..))`) would never
/// be seen. For io errors, follow `get_ref()` instead.
fn next_link<'a>(err: &'a (dyn Error + 'static)) -> Option<&'a (dyn Error + 'static)> {
    match err.downcast_ref::<io::Error>() {
        Some(io) => io.get_ref().map(|inner| inner as &(dyn Error + 'static)),
        None => err.source(),
    }
}

/// Of two verdicts found in one chain, the one that knows more about whether the request was
/// processed: a link that proves "not processed" comes from a layer that saw the whole story.
fn most_certain(a: FailureClass, b: FailureClass) -> FailureClass {
    fn rank(class: FailureClass) -> u8 {
        match class {
            FailureClass::NeverSent => 0,
            FailureClass::Refused => 1,
            FailureClass::Rejected => 2,
            FailureClass::UnknownOutcome => 3,
            FailureClass::Unavailable => 4,
        }
    }
    if rank(a) <= rank(b) {
        a
    } else {
        b
    }
}

/// Classifies one link of the chain, without looking at its sources.
fn classify_link(err: &(dyn Error + 'static)) -> Option<FailureClass> {
    if let Some(io) = err.downcast_ref::<io::Error>() {
        return classify_io(io);
    }
    #[cfg(feature = "hyper-util")]
    if let Some(err) = err.downcast_ref::<hyper_util::client::legacy::Error>() {
        // The legacy client reports a failure to open the connection (refused, reset during
        // the handshake, TLS, DNS) as a connect error: the request never left.
        return err.is_connect().then_some(FailureClass::NeverSent);
    }
    #[cfg(feature = "tonic")]
    if err.is::<tonic::ConnectError>() {
        // tonic's channel wraps every failure to open the connection (refused, reset during the
        // TCP handshake, TLS, DNS, connect timeout) in a `ConnectError`: the request never left.
        return Some(FailureClass::NeverSent);
    }
    #[cfg(feature = "hyper")]
    if let Some(err) = err.downcast_ref::<hyper::Error>() {
        return classify_hyper(err);
    }
    #[cfg(feature = "h2")]
    if let Some(err) = err.downcast_ref::<h2::Error>() {
        return classify_h2(err);
    }
    #[cfg(feature = "reqwest")]
    if let Some(err) = err.downcast_ref::<reqwest::Error>() {
        return err.is_connect().then_some(FailureClass::NeverSent);
    }
    None
}

/// The io error kinds that mean "the connection died".
pub(super) fn classify_io(err: &io::Error) -> Option<FailureClass> {
    match err.kind() {
        // The peer refused the TCP handshake: nothing was sent.
        io::ErrorKind::ConnectionRefused => Some(FailureClass::NeverSent),
        // ECONNRESET (errno 104), ECONNABORTED, EPIPE, or EOF in the middle of a message: the
        // request may have been read and acted on.
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => Some(FailureClass::UnknownOutcome),
        _ => None,
    }
}

#[cfg(feature = "hyper")]
fn classify_hyper(err: &hyper::Error) -> Option<FailureClass> {
    if err.is_canceled() {
        // hyper cancels a request that was queued on a connection which closed before the
        // request was written, and hands the request back: it never left.
        Some(FailureClass::NeverSent)
    } else if err.is_incomplete_message() {
        // The peer closed the connection (FIN) after reading the request, before a complete
        // response: the server may have acted.
        Some(FailureClass::UnknownOutcome)
    } else {
        None
    }
}

#[cfg(feature = "h2")]
fn classify_h2(err: &h2::Error) -> Option<FailureClass> {
    // h2 errors have no `source()`: their io error sits behind an accessor.
    if let Some(io) = err.get_io() {
        return classify_io(io);
    }
    if !err.is_remote() {
        // Errors h2 itself detected (protocol violations) or the user caused are not resets.
        return None;
    }
    let reason = err.reason()?;
    if err.is_reset() {
        // RFC 9113 §8.7: REFUSED_STREAM means the stream was closed before any processing.
        return (reason == h2::Reason::REFUSED_STREAM).then_some(FailureClass::Refused);
    }
    if err.is_go_away() {
        // A graceful GOAWAY (NO_ERROR) fails only the streams above its last-stream-id, which
        // the server promises it did not process. A GOAWAY carrying an error may also reach
        // streams the server was working on, so its outcome is unknown.
        return Some(if reason == h2::Reason::NO_ERROR {
            FailureClass::Refused
        } else {
            FailureClass::UnknownOutcome
        });
    }
    None
}
