//! Rules: which request gets which action, and the counts that prove it.

use http::{HeaderName, HeaderValue, Method, StatusCode};
use tower_reset::lab::{Fault, Lab, Match, Reply};

use crate::paused_io;
use crate::support::{bounded, http1_client, request, send};

fn status(code: u16) -> Reply {
    Reply::new(StatusCode::from_u16(code).unwrap())
}

#[tokio::test]
async fn first_matching_rule_wins_in_order() {
    bounded(async {
        let lab = Lab::builder()
            .on(Match::nth(2), status(502))
            .on(Match::method(Method::DELETE), status(503))
            .on(Match::path("/teapot"), status(418))
            .on(
                Match::header(
                    HeaderName::from_static("x-request-id"),
                    HeaderValue::from_static("h"),
                ),
                status(409),
            )
            .on(Match::when(|r| r.uri().query() == Some("q=1")), status(400))
            .start()
            .await
            .unwrap();
        let client = http1_client();
        let mut got = Vec::new();
        for (method, path, id) in [
            (Method::GET, "/", "a"),       // 1: default
            (Method::DELETE, "/", "b"),    // 2: nth(2) before method
            (Method::DELETE, "/", "c"),    // 3: method
            (Method::GET, "/teapot", "d"), // 4: path
            (Method::GET, "/", "h"),       // 5: header
            (Method::GET, "/?q=1", "e"),   // 6: closure
        ] {
            let response = send(&client, request(method, &lab.url(path), id))
                .await
                .unwrap();
            got.push(response.status.as_u16());
        }
        assert_eq!(got, [200, 502, 503, 418, 409, 400]);
        let counts = lab.counts();
        assert_eq!(counts.rule_hits(), [1, 1, 1, 1, 1]);
        let rules: Vec<_> = counts.requests().iter().map(|r| r.rule()).collect();
        assert_eq!(rules, [None, Some(0), Some(1), Some(2), Some(3), Some(4)]);
        assert_eq!(counts.executed(), 6, "replies of any status are executed");
    })
    .await;
}

#[tokio::test]
async fn nth_on_connection_and_times() {
    bounded(async {
        let lab = Lab::builder()
            .on(
                Match::nth_on_connection(1).and(Match::connection(2)),
                status(503),
            )
            .on(Match::method(Method::POST).times(2), status(500))
            .start()
            .await
            .unwrap();
        let client = http1_client();
        let mut got = Vec::new();
        for id in ["1", "2", "3"] {
            got.push(
                send(&client, request(Method::POST, &lab.url("/"), id))
                    .await
                    .unwrap()
                    .status
                    .as_u16(),
            );
        }
        assert_eq!(got, [500, 500, 200], "times(2)");

        // A second client makes a second connection: its first request is a 503.
        let other = http1_client();
        let first = send(&other, request(Method::GET, &lab.url("/"), "4"))
            .await
            .unwrap();
        let second = send(&other, request(Method::GET, &lab.url("/"), "5"))
            .await
            .unwrap();
        assert_eq!((first.status.as_u16(), second.status.as_u16()), (503, 200));
        let counts = lab.counts();
        assert_eq!(counts.requests_per_connection(), [3, 2]);
        assert_eq!(counts.rule_hits(), [1, 2]);
    })
    .await;
}

/// The 1-in-20 rule of the soak test: seeded, so the same seed picks the same requests.
#[tokio::test]
async fn probability_is_seeded() {
    bounded(async {
        async fn picked(seed: u64) -> Vec<u64> {
            let lab = Lab::builder()
                .on(Match::any().probability(0.05), status(503))
                .seed(seed)
                .start()
                .await
                .unwrap();
            let client = http1_client();
            for n in 0..400 {
                send(&client, request(Method::GET, &lab.url("/"), &n.to_string()))
                    .await
                    .unwrap();
            }
            let counts = lab.counts();
            counts
                .requests()
                .iter()
                .filter(|r| r.rule() == Some(0))
                .map(|r| r.nth())
                .collect()
        }
        let first = picked(7).await;
        assert_eq!(first, picked(7).await, "same seed, same picks");
        assert_ne!(first, picked(8).await, "another seed, other picks");
        assert!(
            (8..=35).contains(&first.len()),
            "about 5% of 400: {}",
            first.len()
        );
    })
    .await;
}

#[tokio::test]
async fn duplicates_name_the_ids_executed_twice() {
    bounded(async {
        let lab = Lab::builder()
            .on(Match::nth(1), Fault::ResetAfterRequest)
            .on(Match::nth(3), Fault::ResetAfterHead)
            .start()
            .await
            .unwrap();
        let client = http1_client();
        // A client that (wrongly) retries a POST whose first attempt was executed.
        assert!(send(&client, request(Method::POST, &lab.url("/"), "pay-1"))
            .await
            .is_err());
        send(&client, request(Method::POST, &lab.url("/"), "pay-1"))
            .await
            .unwrap();
        // One that retries a POST whose first attempt was not executed: no duplicate.
        assert!(send(&client, request(Method::POST, &lab.url("/"), "pay-2"))
            .await
            .is_err());
        send(&client, request(Method::POST, &lab.url("/"), "pay-2"))
            .await
            .unwrap();

        let counts = lab.counts();
        assert_eq!(counts.duplicates(), [("pay-1".to_owned(), 2)]);
        assert_eq!(lab.duplicates(), counts.duplicates());
        assert_eq!(
            (counts.arrivals("pay-2"), counts.executions("pay-2")),
            (2, 1)
        );
        assert_eq!(counts.connections(), 3, "each reset costs a connection");
        assert_eq!(counts.requests_per_connection(), [1, 2, 1]);
    })
    .await;
}

#[tokio::test]
async fn a_custom_request_id_header() {
    bounded(async {
        let lab = Lab::builder()
            .request_id_header(HeaderName::from_static("idempotency-key"))
            .echo_request_id(false)
            .start()
            .await
            .unwrap();
        let mut req = request(Method::POST, &lab.url("/"), "ignored");
        req.headers_mut()
            .insert("idempotency-key", HeaderValue::from_static("k1"));
        let got = send(&http1_client(), req).await.unwrap();
        assert!(!got.headers.contains_key("idempotency-key"));
        let counts = lab.counts();
        assert_eq!(
            (counts.executions("k1"), counts.executions("ignored")),
            (1, 0)
        );
    })
    .await;
}

#[tokio::test]
async fn a_wrong_script_is_refused_at_start() {
    let err = Lab::builder()
        .on(Match::any(), Fault::RefuseStream)
        .start()
        .await
        .expect_err("REFUSED_STREAM needs HTTP/2");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let err = Lab::builder()
        .http2()
        .on(Match::any().probability(1.5), Fault::GoAway)
        .start()
        .await
        .expect_err("a probability above 1");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(Lab::builder()
        .http2()
        .default_action(Fault::GoAway)
        .start()
        .await
        .is_ok());
}

/// A server that cuts connections past a maximum age: requests on a connection accepted 100 ms
/// ago or more get the rule's action, on a newer connection they do not.
/// In paused time, so that the ages are exact: bounded in real time, and each request sent
/// with the clock held still (see `paused_io`).
#[tokio::test(start_paused = true)]
async fn connection_older_than_picks_requests_by_the_age_of_their_connection() {
    paused_io::bounded(async {
        let lab = Lab::builder()
            .on(
                Match::connection_older_than(std::time::Duration::from_millis(100)),
                status(410),
            )
            .on(
                Match::when(|r| r.connection_age() >= std::time::Duration::from_millis(50)),
                status(299),
            )
            .start()
            .await
            .unwrap();
        let client = http1_client();
        let mut got = Vec::new();
        for (wait, id) in [(0, "a"), (60, "b"), (60, "c")] {
            tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
            let response =
                paused_io::frozen(send(&client, request(Method::GET, &lab.url("/"), id)))
                    .await
                    .unwrap();
            got.push(response.status.as_u16());
        }
        assert_eq!(
            got,
            [200, 299, 410],
            "at 0, 60 and 120 ms on one connection"
        );
        assert_eq!(lab.counts().requests_per_connection(), [3]);
    })
    .await;
}
