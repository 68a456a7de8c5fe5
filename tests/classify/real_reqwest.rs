//! `reqwest::Error` from a real connection attempt.

use std::io::ErrorKind;

use tower_reset::classify::{ClassifyError, FailureClass, StandardClassifier};

use crate::support::{bounded, closed_port, h1_server, io_kinds, AfterHead};

const CLASSIFIER: StandardClassifier = StandardClassifier::new();

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("reqwest client")
}

#[tokio::test]
async fn connect_refused_is_never_sent() {
    bounded("reqwest connect refused", async {
        let addr = closed_port();
        let err = client()
            .get(format!("http://{addr}/"))
            .send()
            .await
            .expect_err("nothing listens there");
        assert!(err.is_connect(), "{err:?}");
        assert!(
            io_kinds(&err).contains(&ErrorKind::ConnectionRefused),
            "{err:?}"
        );
        assert_eq!(
            CLASSIFIER.classify_error(&err),
            Some(FailureClass::NeverSent)
        );
    })
    .await;
}

#[tokio::test]
async fn reset_after_the_request_head_is_unknown_outcome() {
    bounded("reqwest reset", async {
        let (addr, server) = h1_server(AfterHead::Reset).await;
        let err = client()
            .get(format!("http://{addr}/reset"))
            .send()
            .await
            .expect_err("the server resets");
        server.await.expect("server task");
        assert!(!err.is_connect(), "{err:?}");
        assert!(
            io_kinds(&err).contains(&ErrorKind::ConnectionReset),
            "{err:?}"
        );
        assert_eq!(
            CLASSIFIER.classify_error(&err),
            Some(FailureClass::UnknownOutcome)
        );
    })
    .await;
}
