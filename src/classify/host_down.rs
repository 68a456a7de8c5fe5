//! Telling "nothing answers at that address" apart from the other connection failures.

use std::error::Error;
use std::io;

use super::chain;

/// Whether `error` shows that **nothing answers at the host's address**: somewhere in its
/// `source()` chain is an `io::Error` of kind `ConnectionRefused`, `HostUnreachable` or
/// `NetworkUnreachable`.
///
/// Those kinds come only from a connect that failed before anything was written: the server is
/// not there (not listening while it restarts, a host or route that is gone), and the next
/// connection will most likely fail the same way until it comes back. That is a different
/// failure from the two other kinds of connection failure, which call for other fixes:
///
/// * a **stale connection** (a pooled keep-alive connection reset, or closed before the request
///   was written): the server is there, and a fresh connection at once is the fix;
/// * an **overloaded server** (a reset during the handshake, a connect timeout, a `503`): the
///   server is there and struggling, and backing off is the fix.
///
/// [`BackoffLayer`](crate::BackoffLayer) uses it to hold requests for a host that refuses
/// connections, behind one probe, instead of letting each of them fail (see
/// [`RideOut`](crate::backoff::RideOut)). The chain is walked as the classifier walks it, so
/// the io error is found inside hyper-util's, tonic's and reqwest's connect errors.
///
/// # Examples
///
/// ```
/// use std::io;
/// use tower_reset::classify::is_host_down;
///
/// let refused: tower::BoxError = Box::new(io::Error::from(io::ErrorKind::ConnectionRefused));
/// assert!(is_host_down(&*refused));
///
/// let reset = io::Error::from(io::ErrorKind::ConnectionReset); // a stale connection
/// assert!(!is_host_down(&reset));
///
/// let timed_out = io::Error::from(io::ErrorKind::TimedOut); // there, maybe overloaded
/// assert!(!is_host_down(&timed_out));
/// ```
pub fn is_host_down(error: &(dyn Error + 'static)) -> bool {
    chain::links(error).any(|link| {
        link.downcast_ref::<io::Error>()
            .is_some_and(|io| is_host_down_kind(io.kind()))
    })
}

/// The io error kinds that say nothing answers at the address.
fn is_host_down_kind(kind: io::ErrorKind) -> bool {
    matches!(
        kind,
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapper(io::Error);
    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("wrapper")
        }
    }
    impl Error for Wrapper {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn refused_and_unreachable_anywhere_in_the_chain_mean_down() {
        for kind in [
            io::ErrorKind::ConnectionRefused,
            io::ErrorKind::HostUnreachable,
            io::ErrorKind::NetworkUnreachable,
        ] {
            assert!(is_host_down(&Wrapper(kind.into())), "{kind:?}");
            let inner = io::Error::other(Wrapper(kind.into()));
            assert!(is_host_down(&Wrapper(inner)), "{kind:?} deeper");
        }
    }

    #[test]
    fn stale_and_overloaded_failures_do_not() {
        for kind in [
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::ConnectionAborted,
            io::ErrorKind::BrokenPipe,
            io::ErrorKind::UnexpectedEof,
            io::ErrorKind::TimedOut,
            io::ErrorKind::Other,
        ] {
            assert!(!is_host_down(&Wrapper(kind.into())), "{kind:?}");
        }
    }
}
