//! Every `ClassifyError` impl of `StandardClassifier` gives the same verdict for the same chain,
//! the forwarding impls work, and `FailureClass` names itself.

use std::collections::HashSet;
use std::error::Error;
use std::io::{self, ErrorKind};

use tower::BoxError;
use tower_reset::classify::{ClassifyError, FailureClass, StandardClassifier};

use crate::support::{wrap_n, Leaf, Wrapper};

use FailureClass::{NeverSent, Refused, Unavailable, UnknownOutcome};

/// A way to build a fresh error, and the verdict it must get.
type Case = (fn() -> Wrapper, Option<FailureClass>);

/// One error of each verdict, behind two wrappers, as a fresh `Wrapper` each time.
fn cases() -> Vec<Case> {
    vec![
        (
            || Wrapper::new(0, wrap_n(io::Error::from(ErrorKind::ConnectionReset), 2)),
            Some(UnknownOutcome),
        ),
        (
            || Wrapper::new(0, wrap_n(io::Error::from(ErrorKind::ConnectionRefused), 2)),
            Some(NeverSent),
        ),
        (
            || Wrapper::new(0, wrap_n(io::Error::from(ErrorKind::TimedOut), 2)),
            None,
        ),
        (|| Wrapper::new(0, Leaf), None),
    ]
}

/// Goes through a generic bound, as a layer does.
fn through_bound<C, E>(classifier: C, error: &E) -> Option<FailureClass>
where
    C: ClassifyError<E>,
    E: ?Sized,
{
    classifier.classify_error(error)
}

#[test]
fn every_error_impl_agrees() {
    let c = StandardClassifier::new();
    for (make, want) in cases() {
        let boxed: BoxError = Box::new(make());
        assert_eq!(c.classify_error(&boxed), want, "BoxError");

        let send: Box<dyn Error + Send> = Box::new(make());
        assert_eq!(c.classify_error(&send), want, "Box<dyn Error + Send>");

        let plain: Box<dyn Error> = Box::new(make());
        assert_eq!(c.classify_error(&plain), want, "Box<dyn Error>");

        let wrapper = make();
        let dyn_error: &(dyn Error + 'static) = &wrapper;
        assert_eq!(c.classify_error(dyn_error), want, "dyn Error");

        let dyn_sync: &(dyn Error + Send + Sync + 'static) = &wrapper;
        assert_eq!(c.classify_error(dyn_sync), want, "dyn Error + Send + Sync");

        assert_eq!(c.classify_chain(&wrapper), want, "classify_chain");

        // Forwarding impls for references, and use through a generic bound.
        let by_ref: &StandardClassifier = &c;
        let by_ref_ref: &&StandardClassifier = &by_ref;
        assert_eq!(through_bound(by_ref, &boxed), want, "&StandardClassifier");
        assert_eq!(
            through_bound(by_ref_ref, dyn_error),
            want,
            "&&StandardClassifier"
        );
        assert_eq!(through_bound(c, &boxed), want, "by value");
    }
}

#[test]
fn io_error_impl() {
    let c = StandardClassifier::new();
    let reset = io::Error::from(ErrorKind::ConnectionReset);
    assert_eq!(
        ClassifyError::<io::Error>::classify_error(&c, &reset),
        Some(UnknownOutcome)
    );
    let refused = io::Error::new(ErrorKind::ConnectionRefused, "nobody home");
    assert_eq!(through_bound(c, &refused), Some(NeverSent));
    let wrapping = io::Error::other(Wrapper::new(0, wrap_n(refused, 3)));
    assert_eq!(c.classify_error(&wrapping), Some(NeverSent));
    assert_eq!(
        c.classify_error(&io::Error::from(ErrorKind::TimedOut)),
        None
    );
}

#[test]
fn classifier_constructors() {
    assert_eq!(StandardClassifier::new(), StandardClassifier::default());
    assert_ne!(
        StandardClassifier::new(),
        StandardClassifier::new().unavailable_responses(true)
    );
    assert_eq!(
        StandardClassifier::new(),
        StandardClassifier::new()
            .unavailable_responses(true)
            .unavailable_responses(false)
    );
    // Usable in constants.
    const C: StandardClassifier = StandardClassifier::new().unavailable_responses(true);
    assert_eq!(C, StandardClassifier::new().unavailable_responses(true));
}

#[test]
fn failure_class_is_unprocessed() {
    assert!(NeverSent.is_unprocessed());
    assert!(Refused.is_unprocessed());
    assert!(!UnknownOutcome.is_unprocessed());
    assert!(!Unavailable.is_unprocessed());
}

#[test]
fn failure_class_names() {
    let all = [
        (NeverSent, "never_sent"),
        (Refused, "refused"),
        (UnknownOutcome, "unknown_outcome"),
        (Unavailable, "unavailable"),
    ];
    for (class, name) in all {
        assert_eq!(class.as_str(), name);
        assert_eq!(class.to_string(), name);
        assert_eq!(format!("{class}"), name);
    }
    let distinct: HashSet<FailureClass> = all.iter().map(|&(class, _)| class).collect();
    assert_eq!(distinct.len(), 4);
    // `as_str` is usable in constants (for metric labels).
    const NAME: &str = FailureClass::NeverSent.as_str();
    assert_eq!(NAME, "never_sent");
}
