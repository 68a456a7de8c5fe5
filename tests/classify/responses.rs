//! Response classification: off by default; with `unavailable_responses(true)`, a 503 or a gRPC
//! `UNAVAILABLE` status in the headers, and nothing else.

use http::{Response, StatusCode};
use tower_reset::classify::{ClassifyResponse, FailureClass, StandardClassifier};

fn response(status: u16, grpc_status: Option<&'static str>) -> Response<()> {
    let mut builder = Response::builder().status(status);
    if let Some(code) = grpc_status {
        builder = builder
            .header("content-type", "application/grpc")
            .header("grpc-status", code);
    }
    builder.body(()).expect("valid response")
}

#[test]
fn off_by_default() {
    let c = StandardClassifier::new();
    assert_eq!(c.classify_response(&response(503, None)), None);
    assert_eq!(c.classify_response(&response(200, Some("14"))), None);
    assert_eq!(c.classify_response(&response(503, Some("14"))), None);
    let off = StandardClassifier::new()
        .unavailable_responses(true)
        .unavailable_responses(false);
    assert_eq!(off.classify_response(&response(503, None)), None);
}

#[test]
fn unavailable_when_enabled() {
    let c = StandardClassifier::new().unavailable_responses(true);
    let unavailable = Some(FailureClass::Unavailable);
    assert_eq!(c.classify_response(&response(503, None)), unavailable);
    assert_eq!(c.classify_response(&response(200, Some("14"))), unavailable);
    // The HTTP status alone is enough, whatever the gRPC status says.
    assert_eq!(c.classify_response(&response(503, Some("0"))), unavailable);

    let retry_after = Response::builder()
        .status(StatusCode::SERVICE_UNAVAILABLE)
        .header("retry-after", "3")
        .body(String::from("busy"))
        .expect("valid response");
    assert_eq!(c.classify_response(&retry_after), unavailable);
}

#[test]
fn ordinary_responses_are_none_when_enabled() {
    let c = StandardClassifier::new().unavailable_responses(true);
    for status in [200, 204, 400, 404, 429, 500, 502, 504] {
        assert_eq!(
            c.classify_response(&response(status, None)),
            None,
            "{status}"
        );
    }
    // gRPC statuses other than exactly "14".
    for code in ["0", "1", "4", "13", "140", "014", "1 4", "141"] {
        assert_eq!(
            c.classify_response(&response(200, Some(code))),
            None,
            "grpc-status {code}"
        );
    }
}

#[test]
fn through_a_reference() {
    let c = StandardClassifier::new().unavailable_responses(true);
    let by_ref = &c;
    assert_eq!(
        by_ref.classify_response(&response(503, None)),
        Some(FailureClass::Unavailable)
    );
}
