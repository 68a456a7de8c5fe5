//! Hand-built error chains: io error kinds, how deep the classifier looks, wrappers of every
//! shape, precedence between links, and chains that never end. No feature needed.

use std::error::Error;
use std::io::{self, ErrorKind};
use std::sync::mpsc;
use std::time::Duration;

use tower::BoxError;
use tower_reset::classify::{FailureClass, StandardClassifier};

use crate::support::{chain, io_kinds, wrap_n, Leaf, SelfCycle, Wrapper};

use FailureClass::{NeverSent, UnknownOutcome};

const CLASSIFIER: StandardClassifier = StandardClassifier::new();

fn classify(err: &(dyn Error + 'static)) -> Option<FailureClass> {
    CLASSIFIER.classify_chain(err)
}

/// Every io error kind the classifier knows, and a few it must ignore.
const KINDS: &[(ErrorKind, Option<FailureClass>)] = &[
    (ErrorKind::ConnectionReset, Some(UnknownOutcome)),
    (ErrorKind::ConnectionAborted, Some(UnknownOutcome)),
    (ErrorKind::BrokenPipe, Some(UnknownOutcome)),
    (ErrorKind::UnexpectedEof, Some(UnknownOutcome)),
    (ErrorKind::ConnectionRefused, Some(NeverSent)),
    (ErrorKind::TimedOut, None),
    (ErrorKind::PermissionDenied, None),
    (ErrorKind::Other, None),
    (ErrorKind::InvalidData, None),
    (ErrorKind::WouldBlock, None),
    (ErrorKind::Interrupted, None),
];

/// The kinds the classifier reports as something.
fn known_kinds() -> impl Iterator<Item = (ErrorKind, FailureClass)> {
    KINDS
        .iter()
        .filter_map(|&(kind, class)| class.map(|class| (kind, class)))
}

/// `err` inside `n` layers of `io::Error::other(Wrapper(..))`. Note that std's
/// `io::Error::source()` returns the *source of* the error it wraps, so each `Wrapper` is skipped
/// by the walk and only the io errors show: exactly what happens to wrapped errors in the wild.
fn io_wrap_n(err: impl Into<BoxError>, n: usize) -> BoxError {
    let mut err = err.into();
    for level in 0..n {
        err = Box::new(io::Error::other(Wrapper::new(level, err)));
    }
    err
}

/// Runs `f` on another thread and fails if it does not return within two seconds: a classifier
/// that loops forever on a cyclic chain fails the test instead of hanging it.
fn terminates<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(2))
        .expect("the classifier did not return: it loops on this chain")
}

#[test]
fn bare_io_error_kinds() {
    for &(kind, want) in KINDS {
        assert_eq!(classify(&io::Error::from(kind)), want, "{kind:?}");
        // A message (a "custom" io error) does not change the verdict: only the kind counts.
        let with_message = io::Error::new(kind, "some message");
        assert_eq!(classify(&with_message), want, "{kind:?} with a message");
    }
}

/// What real sockets return on Linux: errno values, mapped to kinds by std.
#[cfg(target_os = "linux")]
#[test]
fn raw_os_errors_on_linux() {
    const ECONNRESET: i32 = 104;
    const ECONNABORTED: i32 = 103;
    const EPIPE: i32 = 32;
    const ECONNREFUSED: i32 = 111;
    const ETIMEDOUT: i32 = 110;
    for (errno, want) in [
        (ECONNRESET, Some(UnknownOutcome)),
        (ECONNABORTED, Some(UnknownOutcome)),
        (EPIPE, Some(UnknownOutcome)),
        (ECONNREFUSED, Some(NeverSent)),
        (ETIMEDOUT, None),
    ] {
        let err = io::Error::from_raw_os_error(errno);
        assert_eq!(classify(&err), want, "errno {errno}: {err}");
    }
}

#[test]
fn errors_that_only_say_reset_in_words_are_none() {
    let string: BoxError = "connection reset by peer".into();
    assert_eq!(classify(&*string), None);
    let owned: BoxError = String::from("Connection refused (os error 111)").into();
    assert_eq!(classify(&*owned), None);
    assert_eq!(classify(&Leaf), None);
    assert_eq!(classify(&*wrap_n(Leaf, 3)), None);
    // An io error of kind Other whose payload says "reset" is still Other.
    let other = io::Error::other("connection reset by peer");
    assert_eq!(classify(&other), None);
}

#[test]
fn io_error_found_through_custom_wrappers() {
    for (kind, want) in known_kinds() {
        for depth in [1, 3, 10] {
            let err = wrap_n(io::Error::from(kind), depth);
            // The io error really sits at index `depth` of the chain.
            let links = chain(&*err);
            assert_eq!(links.len(), depth + 1);
            assert!(links[depth].downcast_ref::<io::Error>().is_some());
            assert_eq!(classify(&*err), Some(want), "{kind:?} at depth {depth}");
        }
    }
    // Kinds the classifier ignores stay ignored however deep.
    for kind in [
        ErrorKind::TimedOut,
        ErrorKind::PermissionDenied,
        ErrorKind::Other,
    ] {
        assert_eq!(classify(&*wrap_n(io::Error::from(kind), 3)), None);
    }
}

#[test]
fn io_error_found_inside_box_dyn_error() {
    for (kind, want) in known_kinds() {
        // The shape a tower stack produces: a BoxError holding a BoxError holding the io error.
        let boxed: BoxError = Box::new(io::Error::from(kind));
        let twice: BoxError = Box::new(Wrapper::new(0, boxed));
        assert_eq!(classify(&*twice), Some(want), "{kind:?}");
        for depth in [1, 3, 10] {
            let err: BoxError = Box::new(Wrapper::new(0, wrap_n(io::Error::from(kind), depth)));
            assert_eq!(classify(&*err), Some(want), "{kind:?} at depth {depth}");
        }
    }
}

#[test]
fn io_error_found_inside_io_error_new_wrappers() {
    for (kind, want) in known_kinds() {
        for depth in [1, 3, 10] {
            let err = io_wrap_n(io::Error::from(kind), depth);
            let mut expected_kinds = vec![ErrorKind::Other; depth];
            expected_kinds.push(kind);
            assert_eq!(io_kinds(&*err), expected_kinds);
            assert_eq!(classify(&*err), Some(want), "{kind:?} at depth {depth}");
        }
    }
    // The outer io error's own kind is ignored when it means nothing (a timeout around a reset is
    // still a reset), and wins when it is "refused".
    let timeout_around_reset = io::Error::new(
        ErrorKind::TimedOut,
        Wrapper::new(0, io::Error::from(ErrorKind::ConnectionReset)),
    );
    assert_eq!(classify(&timeout_around_reset), Some(UnknownOutcome));
}

/// std's `io::Error::source()` returns the source *of* the error it wraps, not the wrapped error
/// itself, so an `io::Error` put directly inside another (`io::Error::other(io_err)`,
/// `io::Error::new(kind, io_err)`, a common idiom) is invisible to a walk that only follows
/// `source()`. The classifier follows `get_ref()` for io errors.
#[test]
fn io_error_wrapped_directly_in_io_error() {
    let reset = io::Error::other(io::Error::from(ErrorKind::ConnectionReset));
    assert!(
        reset.source().is_none(),
        "std hides the inner io error from source()"
    );
    let inner = reset.get_ref().and_then(|e| e.downcast_ref::<io::Error>());
    assert_eq!(inner.map(io::Error::kind), Some(ErrorKind::ConnectionReset));
    assert_eq!(classify(&reset), Some(UnknownOutcome));

    let refused_under_reset = io::Error::new(
        ErrorKind::ConnectionReset,
        io::Error::from(ErrorKind::ConnectionRefused),
    );
    assert_eq!(classify(&refused_under_reset), Some(NeverSent));
}

#[test]
fn refused_wins_over_reset_in_either_order() {
    let refused_outer = io::Error::new(
        ErrorKind::ConnectionRefused,
        Wrapper::new(0, io::Error::from(ErrorKind::ConnectionReset)),
    );
    assert_eq!(
        io_kinds(&refused_outer),
        [ErrorKind::ConnectionRefused, ErrorKind::ConnectionReset]
    );
    assert_eq!(classify(&refused_outer), Some(NeverSent));

    let reset_outer = io::Error::new(
        ErrorKind::ConnectionReset,
        Wrapper::new(0, io::Error::from(ErrorKind::ConnectionRefused)),
    );
    assert_eq!(
        io_kinds(&reset_outer),
        [ErrorKind::ConnectionReset, ErrorKind::ConnectionRefused]
    );
    assert_eq!(classify(&reset_outer), Some(NeverSent));

    // The same with the two far apart, behind custom wrappers and boxes.
    for (outer, inner) in [
        (ErrorKind::ConnectionRefused, ErrorKind::BrokenPipe),
        (ErrorKind::UnexpectedEof, ErrorKind::ConnectionRefused),
    ] {
        let err = wrap_n(
            io::Error::new(outer, Wrapper::new(0, wrap_n(io::Error::from(inner), 6))),
            4,
        );
        assert_eq!(io_kinds(&*err), [outer, inner]);
        assert_eq!(classify(&*err), Some(NeverSent), "{outer:?} then {inner:?}");
    }
}

// Depth: `chain::classify` inspects at most MAX_DEPTH = 32 links, the outermost error being
// link 0 (`for _ in 0..MAX_DEPTH` following `source()`, or `get_ref()` for io errors), so an error wrapped in 31 layers
// (index 31) is the deepest one seen, and one wrapped in 32 layers or more is not.

#[test]
fn depth_limit_is_32_links() {
    let reset = || io::Error::from(ErrorKind::ConnectionReset);
    assert_eq!(classify(&*wrap_n(reset(), 5)), Some(UnknownOutcome));
    assert_eq!(classify(&*wrap_n(reset(), 31)), Some(UnknownOutcome));
    assert_eq!(classify(&*wrap_n(reset(), 32)), None);
    assert_eq!(classify(&*wrap_n(reset(), 100)), None);
}

#[test]
fn depth_limit_cuts_a_deep_refusal_but_keeps_a_shallow_reset() {
    // Wrappers at indices 0 and 1, the reset at 2, wrappers at 3..=30 (the io error's own
    // wrapper among them), the refusal at 31: both are seen, and the refusal wins.
    let err = wrap_n(
        io::Error::new(
            ErrorKind::ConnectionReset,
            Wrapper::new(0, wrap_n(io::Error::from(ErrorKind::ConnectionRefused), 27)),
        ),
        2,
    );
    assert_eq!(chain(&*err).len(), 32);
    assert_eq!(classify(&*err), Some(NeverSent));

    // One level deeper: the refusal at index 32 is cut, the reset remains.
    let err = wrap_n(
        io::Error::new(
            ErrorKind::ConnectionReset,
            Wrapper::new(0, wrap_n(io::Error::from(ErrorKind::ConnectionRefused), 28)),
        ),
        2,
    );
    assert_eq!(chain(&*err).len(), 33);
    assert_eq!(classify(&*err), Some(UnknownOutcome));
}

#[test]
fn a_thousand_levels_terminate() {
    let verdict = terminates(|| {
        let err = wrap_n(io::Error::from(ErrorKind::ConnectionReset), 1000);
        assert_eq!(
            chain(&*err).len(),
            256,
            "the helper's own walk is capped at 256"
        );
        classify(&*err)
    });
    // Beyond the 32-link horizon: nothing is found, and nothing hangs.
    assert_eq!(verdict, None);
}

#[test]
fn cyclic_chains_terminate() {
    assert_eq!(terminates(|| classify(&SelfCycle)), None);
    assert_eq!(terminates(|| classify(&*wrap_n(SelfCycle, 3))), None);
    // A verdict found before the cycle survives it.
    let reset_then_cycle = || {
        let err = io::Error::new(ErrorKind::ConnectionReset, Wrapper::new(0, SelfCycle));
        classify(&err)
    };
    assert_eq!(terminates(reset_then_cycle), Some(UnknownOutcome));
    let refused_then_cycle = || {
        let err = wrap_n(
            io::Error::new(ErrorKind::ConnectionRefused, Wrapper::new(0, SelfCycle)),
            2,
        );
        classify(&*err)
    };
    assert_eq!(terminates(refused_then_cycle), Some(NeverSent));
}
