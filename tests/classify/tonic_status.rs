//! `tonic::Status`: the gRPC code says little (a TCP reset becomes `Unknown`), the chain says it
//! all.

use std::error::Error;
use std::io::{self, ErrorKind};

use tonic::{Code, Status};
use tower_reset::classify::{ClassifyError, FailureClass, StandardClassifier};

use crate::support::Wrapper;

const CLASSIFIER: StandardClassifier = StandardClassifier::new();

#[test]
fn reset_inside_a_status_is_unknown_outcome() {
    let status = Status::from_error(Box::new(io::Error::from(ErrorKind::ConnectionReset)));
    assert_eq!(status.code(), Code::Unknown);
    assert!(status.source().is_some());
    assert_eq!(
        CLASSIFIER.classify_error(&status),
        Some(FailureClass::UnknownOutcome)
    );
}

#[test]
fn refusal_deep_inside_a_status_is_never_sent() {
    let status = Status::from_error(Box::new(Wrapper::new(
        0,
        Wrapper::new(1, io::Error::from(ErrorKind::ConnectionRefused)),
    )));
    assert_eq!(status.code(), Code::Unknown);
    assert_eq!(
        CLASSIFIER.classify_error(&status),
        Some(FailureClass::NeverSent)
    );
}

#[test]
fn codes_without_a_source_are_none() {
    for status in [
        Status::unavailable("x"),
        Status::unknown("connection reset by peer"),
        Status::internal("boom"),
        Status::cancelled("gone"),
    ] {
        assert!(status.source().is_none());
        assert_eq!(CLASSIFIER.classify_error(&status), None, "{status:?}");
    }
}

#[test]
fn a_status_inside_a_status_chain_is_walked() {
    // A Status found in the chain is lifted to the top, and the original error kept as source.
    let inner = Status::from_error(Box::new(io::Error::from(ErrorKind::BrokenPipe)));
    let outer = Status::from_error(Box::new(Wrapper::new(0, inner)));
    assert_eq!(outer.code(), Code::Unknown);
    assert_eq!(
        CLASSIFIER.classify_error(&outer),
        Some(FailureClass::UnknownOutcome)
    );
}

/// tonic's channel wraps every failure to open a connection in a `tonic::ConnectError` (and
/// reports it as `Unavailable`): the call never left, whatever the io error under it says. A
/// server that resets connections as it accepts them gives exactly this, with a
/// `ConnectionReset` inside (see `tests/tonic/facts.rs`).
#[test]
fn a_connect_error_is_never_sent_whatever_its_cause() {
    for kind in [
        ErrorKind::ConnectionReset,
        ErrorKind::ConnectionRefused,
        ErrorKind::TimedOut,
    ] {
        let connect = tonic::ConnectError(Box::new(Wrapper::new(0, io::Error::from(kind))));
        let status = Status::from_error(Box::new(connect));
        assert_eq!(status.code(), Code::Unavailable, "{kind:?}");
        assert_eq!(
            CLASSIFIER.classify_error(&status),
            Some(FailureClass::NeverSent),
            "{kind:?}"
        );
    }
}

/// `tonic::transport::Error`, the error type of a `Channel`, is classified through its chain
/// (it cannot be built outside tonic: the real one is in `tests/tonic/facts.rs`).
#[test]
fn the_channel_error_type_is_classified() {
    fn classifies<E>()
    where
        StandardClassifier: ClassifyError<E>,
    {
    }
    classifies::<tonic::transport::Error>();
}
