//! Walking an error's `source()` chain and reading each link.
//!
//! Every client wraps the socket error differently: hyper-util puts a `hyper::Error` inside its
//! own, hyper puts the `io::Error` inside that, tonic and reqwest add one or two more layers, and
//! h2 keeps its io error behind an accessor instead of `source()`. So each link is inspected on
//! its own, and the verdicts of all links are combined: the link that proves the request was
//! never processed wins over one that only says "the connection broke" (a connect error whose
//! cause is an `io::ErrorKind::ConnectionReset` is still a connect error).
//!
//! One kind of link overrules all the others: a failure that will happen again on the next
//! attempt, whatever connection it gets. A connect error says the request never left, but when
//! its cause is a name that does not resolve, a certificate that does not verify or a URL the
//! connector cannot serve, another attempt fails the same way, so the chain is not a failure
//! this crate retries (`None`).

use std::error::Error;
use std::io;

use super::FailureClass;

/// Chains deeper than this are cut short, so a cyclic `source()` cannot loop forever.
const MAX_DEPTH: usize = 32;

/// Classifies the whole chain that starts at `error`.
pub(super) fn classify(error: &(dyn Error + 'static)) -> Option<FailureClass> {
    let mut verdict: Option<FailureClass> = None;
    for link in links(error) {
        match read_link(link) {
            Reading::Class(class) => {
                verdict = Some(verdict.map_or(class, |seen| most_certain(seen, class)));
            }
            Reading::Permanent => return None,
            Reading::Silent => {}
        }
    }
    verdict
}

/// What one link of a chain says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// How far the request got.
    Class(FailureClass),
    /// The failure will happen again on any connection: the whole chain is not retried.
    Permanent,
    /// Nothing this crate knows.
    Silent,
}

impl From<Option<FailureClass>> for Reading {
    fn from(class: Option<FailureClass>) -> Self {
        class.map_or(Reading::Silent, Reading::Class)
    }
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

/// Reads one link of the chain, without looking at its sources.
fn read_link(err: &(dyn Error + 'static)) -> Reading {
    if let Some(io) = err.downcast_ref::<io::Error>() {
        return read_io(io);
    }
    #[cfg(feature = "hyper-util")]
    if let Some(err) = err.downcast_ref::<hyper_util::client::legacy::Error>() {
        // The legacy client reports a failure to open the connection (refused, reset during
        // the handshake, timed out, and also DNS, TLS and URL failures, which a deeper link
        // marks permanent) as a connect error: the request never left.
        return err.is_connect().then_some(FailureClass::NeverSent).into();
    }
    #[cfg(feature = "tonic")]
    if err.is::<tonic::ConnectError>() {
        // tonic's channel wraps every failure to open the connection (refused, reset during the
        // TCP handshake, connect timeout, and DNS or TLS, which a deeper link marks permanent)
        // in a `ConnectError`: the request never left.
        return Reading::Class(FailureClass::NeverSent);
    }
    #[cfg(feature = "hyper")]
    if let Some(err) = err.downcast_ref::<hyper::Error>() {
        return classify_hyper(err).into();
    }
    #[cfg(feature = "h2")]
    if let Some(err) = err.downcast_ref::<h2::Error>() {
        return classify_h2(err).into();
    }
    #[cfg(feature = "reqwest")]
    if let Some(err) = err.downcast_ref::<reqwest::Error>() {
        return err.is_connect().then_some(FailureClass::NeverSent).into();
    }
    if is_permanent_connect_error(err) {
        return Reading::Permanent;
    }
    Reading::Silent
}

/// Whether `err` is hyper-util's `HttpConnector` saying that the name did not resolve or that
/// it cannot serve the URL (https without TLS, no host): its error type is private, and says so
/// in exactly these words. hyper-util's connect errors are also inside tonic's and reqwest's.
fn is_permanent_connect_error(err: &(dyn Error + 'static)) -> bool {
    /// Compares what is written to it with the start of the known messages, without allocating.
    struct Prefix {
        written: [u8; 16],
        len: usize,
    }
    impl std::fmt::Write for Prefix {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            let room = self.written.len() - self.len;
            let take = s.len().min(room);
            self.written[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
            self.len += take;
            // Enough has been read once the buffer is full: stop the formatting.
            if take < s.len() {
                Err(std::fmt::Error)
            } else {
                Ok(())
            }
        }
    }
    let mut prefix = Prefix {
        written: [0; 16],
        len: 0,
    };
    let _ = std::fmt::write(&mut prefix, format_args!("{err}"));
    let written = &prefix.written[..prefix.len];
    // hyper-util: "dns error"; "invalid URL, scheme is not http", "… scheme is missing",
    // "… host is missing".
    written == b"dns error" || written.starts_with(b"invalid URL, ")
}

/// The io error kinds that mean "the connection died", and those that mean "this peer cannot be
/// spoken to".
fn read_io(err: &io::Error) -> Reading {
    match err.kind() {
        // Data that makes no sense (a TLS handshake that failed: rustls reports a certificate
        // that does not verify, or a fatal alert, as `InvalidData`), or an address or argument
        // the system rejects: the next attempt fails the same way.
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput => Reading::Permanent,
        _ => classify_io(err).into(),
    }
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
