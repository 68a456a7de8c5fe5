//! The acceptance tests over loopback sockets, against the reset lab, for each client under the
//! contract stack: hyper-util's legacy client (HTTP/1.1 and HTTP/2) and reqwest.

use std::time::Duration;

use bytes::Bytes;
use http::header::{DATE, LAST_MODIFIED, RANGE};
use http::{HeaderValue, Method, Request, StatusCode};
use tower_reset::lab::{Fault, Match, Reply};
use tower_reset::resume::NoResume;
use tower_reset::ResumeLayer;

use crate::support::{
    constant, download, get, logged, range_log, reset_once, resource, stack, tagged, Kind, MIB,
};

/// The body of the acceptance test: 4 MiB.
const SIZE: usize = 4 * MIB;

/// Resets after 1, 2 and 3 MiB on three successive connections: the whole body, from about
/// 4 MiB sent by the server in all (≤ 4 MiB × 1.1), each resume asking for the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_reset_three_times_arrives_whole() {
    for kind in Kind::ALL {
        let body = resource(SIZE, 1);
        let (log, ranges) = range_log();
        let lab = kind
            .lab()
            .reply(tagged(body.clone(), "\"v1\""))
            .on(log, Fault::ok())
            .on(Match::any().times(3), Fault::ResetAfterBodyBytes(MIB))
            .start()
            .await
            .unwrap();
        let stack = stack(kind, ResumeLayer::new());
        let got = download(&stack, get(&lab)).await;

        got.assert_whole(&body);
        let history = got.history.expect("a history");
        assert_eq!(history.resumes(), 3, "{kind:?}");
        assert_eq!(history.bytes_skipped(), 0, "{kind:?}");
        assert_eq!(history.gave_up(), None, "{kind:?}");
        let counts = lab.counts();
        assert_eq!(counts.received(), 4, "{kind:?}");
        assert_eq!(
            counts.connections(),
            4,
            "{kind:?}: one connection per response"
        );
        let sent = counts.body_bytes();
        assert!(
            sent as f64 <= SIZE as f64 * 1.1,
            "{kind:?}: the server sent {sent} bytes for a {SIZE}-byte body"
        );
        let ranges = logged(&ranges);
        assert_eq!(ranges[0], None, "{kind:?}");
        for (resume, range) in ranges[1..].iter().enumerate() {
            let range = range.as_deref().expect("a resume asks for a range");
            let start: usize = range
                .strip_prefix("bytes=")
                .and_then(|rest| rest.strip_suffix('-'))
                .and_then(|start| start.parse().ok())
                .unwrap_or_else(|| panic!("{kind:?}: an open range from an offset: {range}"));
            // Each connection carried about 1 MiB (less what a reset threw away).
            let expected = (resume + 1) * MIB;
            assert!(
                start <= expected && start + 64 * 1024 >= expected,
                "{kind:?}: resume {} from {start}, expected about {expected}",
                resume + 1
            );
        }
        println!("{kind:?}: server sent {sent} body bytes, ranges {ranges:?}");
    }
}

/// A server that ignores ranges (no `.ranges()`): each resume gets the whole representation
/// again with the same `ETag`, the bytes already delivered are skipped, and the body is right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_ranges_is_resumed_by_skipping() {
    for kind in Kind::ALL {
        let body = resource(SIZE, 2);
        let whole = Reply::ok()
            .body(body.clone())
            .header(http::header::ETAG, HeaderValue::from_static("\"v1\""));
        let mut lab = kind.lab().reply(whole);
        for (nth, cut) in [(1, MIB), (2, 2 * MIB), (3, 3 * MIB)] {
            lab = lab.on(Match::nth(nth), Fault::ResetAfterBodyBytes(cut));
        }
        let lab = lab.start().await.unwrap();
        let stack = stack(kind, ResumeLayer::new());
        let got = download(&stack, get(&lab)).await;

        got.assert_whole(&body);
        let history = got.history.expect("a history");
        assert_eq!(history.resumes(), 3, "{kind:?}");
        // About 1 + 2 + 3 MiB were read twice.
        let skipped = history.bytes_skipped();
        assert!(
            skipped <= 6 * MIB as u64 && skipped + 3 * 64 * 1024 >= 6 * MIB as u64,
            "{kind:?}: skipped {skipped}"
        );
    }
}

/// The skip path is bounded: past `max_skip`, the body fails with its own error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skip_past_max_skip_is_refused() {
    let body = resource(SIZE, 3);
    let whole = Reply::ok()
        .body(body.clone())
        .header(http::header::ETAG, HeaderValue::from_static("\"v1\""));
    let lab = reset_once(Kind::HyperUtilH1, whole, 2 * MIB).await;
    let layer = ResumeLayer::builder().max_skip(MIB as u64).build().unwrap();
    let got = download(&stack(Kind::HyperUtilH1, layer), get(&lab)).await;
    got.assert_gave_up(&body, NoResume::SkipTooLarge, 1);
    assert_eq!(lab.counts().received(), 2);
}

/// The resource changes between the first response and the resume: the `If-Range` fails, the
/// server sends the new version whole, and the caller gets the original reset, with nothing
/// but bytes of the first version before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_resource_ends_with_the_original_error() {
    for kind in Kind::ALL {
        let v1 = resource(SIZE, 4);
        let v2 = resource(SIZE, 5);
        // With ranges (the `If-Range` fails: 200 with v2), and without (200 with v2 anyway).
        for v2_reply in [
            tagged(v2.clone(), "\"v2\""),
            Reply::ok()
                .body(v2.clone())
                .header(http::header::ETAG, HeaderValue::from_static("\"v2\"")),
            Reply::ok().body(v2.clone()).ranges(),
        ] {
            let lab = kind
                .lab()
                .reply(tagged(v1.clone(), "\"v1\""))
                .on(Match::nth(1), Fault::ResetAfterBodyBytes(MIB))
                .default_action(v2_reply)
                .start()
                .await
                .unwrap();
            let got = download(&stack(kind, ResumeLayer::new()), get(&lab)).await;
            got.assert_gave_up(&v1, NoResume::Changed, 1);
            assert_eq!(lab.counts().received(), 2, "{kind:?}");
        }
    }
}

/// A response without a validator is not resumed: one request, the original error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_validator_no_resume() {
    for kind in Kind::ALL {
        let body = resource(SIZE, 6);
        let weak = Reply::ok()
            .body(body.clone())
            .header(http::header::ETAG, HeaderValue::from_static("W/\"v1\""))
            .ranges();
        for reply in [Reply::ok().body(body.clone()).ranges(), weak] {
            let lab = reset_once(kind, reply, MIB).await;
            let got = download(&stack(kind, ResumeLayer::new()), get(&lab)).await;
            got.assert_gave_up(&body, NoResume::NoValidator, 0);
            assert_eq!(lab.counts().received(), 1, "{kind:?}");
        }
    }
}

/// A `Last-Modified` date a second or more before the response's `Date` is a validator: the
/// body is resumed with `If-Range: <date>`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strong_last_modified_date_is_a_validator() {
    for kind in Kind::ALL {
        let body = resource(SIZE, 7);
        let dated = Reply::ok()
            .body(body.clone())
            .header(
                LAST_MODIFIED,
                HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
            )
            .header(
                DATE,
                HeaderValue::from_static("Mon, 07 Nov 1994 08:49:37 GMT"),
            )
            .ranges();
        let lab = reset_once(kind, dated, MIB).await;
        let got = download(&stack(kind, ResumeLayer::new()), get(&lab)).await;
        got.assert_whole(&body);
        assert_eq!(got.history.expect("a history").resumes(), 1, "{kind:?}");
    }
}

/// A `PUT` or a `POST` is never resumed, even from a resource that could be.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_methods_are_never_resumed() {
    for kind in Kind::ALL {
        for method in [Method::POST, Method::PUT] {
            let body = resource(SIZE, 8);
            let lab = reset_once(kind, tagged(body.clone(), "\"v1\""), MIB).await;
            let request = Request::builder()
                .method(method.clone())
                .uri(lab.url("/file"))
                .body(Bytes::from_static(b"{}"))
                .unwrap();
            let got = download(&stack(kind, ResumeLayer::new()), request).await;
            got.assert_gave_up(&body, NoResume::NotGet, 0);
            let counts = lab.counts();
            assert_eq!(counts.received(), 1, "{kind:?} {method}");
            assert_eq!(counts.executed_by_method(&method), 1, "{kind:?} {method}");
        }
    }
}

/// The caller's own range is kept: the resume asks for the rest of it, up to its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_request_is_resumed_up_to_its_end() {
    for kind in Kind::ALL {
        let body = resource(SIZE, 9);
        let (log, ranges) = range_log();
        let lab = kind
            .lab()
            .reply(tagged(body.clone(), "\"v1\""))
            .on(log, Fault::ok())
            .on(Match::nth(1), Fault::ResetAfterBodyBytes(MIB))
            .start()
            .await
            .unwrap();
        let mut request = get(&lab);
        request
            .headers_mut()
            .insert(RANGE, HeaderValue::from_static("bytes=1000-2999999"));
        let got = download(&stack(kind, ResumeLayer::new()), request).await;
        assert_eq!(got.status, StatusCode::PARTIAL_CONTENT);
        got.assert_whole(&body[1000..=2_999_999]);
        let ranges = logged(&ranges);
        assert_eq!(ranges.len(), 2, "{kind:?}");
        let resumed = ranges[1].as_deref().expect("a range");
        assert!(
            resumed.starts_with("bytes=") && resumed.ends_with("-2999999"),
            "{kind:?}: {resumed}"
        );
    }
}

/// At most `max_resumes` resumes: a body that fails every time ends with its error after them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_resumes_holds() {
    for kind in Kind::ALL {
        let body = resource(SIZE, 10);
        let lab = kind
            .lab()
            .reply(tagged(body.clone(), "\"v1\""))
            .default_action(Fault::ResetAfterBodyBytes(256 * 1024))
            .start()
            .await
            .unwrap();
        let layer = ResumeLayer::builder()
            .max_resumes(2)
            .schedule(constant(Duration::from_millis(1)))
            .build()
            .unwrap();
        let got = download(&stack(kind, layer), get(&lab)).await;
        got.assert_gave_up(&body, NoResume::MaxResumes, 2);
        assert_eq!(lab.counts().received(), 3, "{kind:?}");
    }
}

/// No resume waits past the deadline: the second resume would (its backoff is 10 s), so the
/// body fails at once with its error instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_holds() {
    for kind in Kind::ALL {
        let body = resource(SIZE, 11);
        let lab = kind
            .lab()
            .reply(tagged(body.clone(), "\"v1\""))
            .default_action(Fault::ResetAfterBodyBytes(256 * 1024))
            .start()
            .await
            .unwrap();
        let layer = ResumeLayer::builder()
            .deadline(Duration::from_secs(5))
            .schedule(constant(Duration::from_secs(10)))
            .build()
            .unwrap();
        let started = tokio::time::Instant::now();
        let got = download(&stack(kind, layer), get(&lab)).await;
        got.assert_gave_up(&body, NoResume::Deadline, 1);
        assert_eq!(lab.counts().received(), 2, "{kind:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{kind:?}: gave up without sleeping"
        );
    }
}
