//! Server events: restarts, outages, idle timeouts, forgotten connections, and dropping the lab.

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tower_reset::classify::{FailureClass, StandardClassifier};
use tower_reset::lab::{Idle, Lab};

use crate::support::{
    bounded, http1_client, io_kinds, read_response, read_to_end, request, send, Ending,
};

const CLASSIFIER: StandardClassifier = StandardClassifier::new();
const GET: &[u8] = b"GET / HTTP/1.1\r\nhost: lab\r\n\r\n";

/// A raw keep-alive connection that already had one request answered.
async fn warm(lab: &Lab) -> TcpStream {
    let mut stream = TcpStream::connect(lab.addr()).await.unwrap();
    stream.write_all(GET).await.unwrap();
    read_response(&mut stream).await;
    stream
}

#[tokio::test]
async fn restart_resets_live_connections_and_keeps_the_port() {
    bounded(async {
        let lab = Lab::builder().start().await.unwrap();
        let addr = lab.addr();
        let mut idle = warm(&lab).await;
        lab.restart().await.unwrap();
        assert_eq!(lab.addr(), addr);
        assert!(lab.is_listening().await);
        assert_eq!(
            read_to_end(&mut idle).await,
            (vec![], Ending::Error(ErrorKind::ConnectionReset))
        );
        // Same port, new connection.
        let mut fresh = TcpStream::connect(addr).await.unwrap();
        fresh.write_all(GET).await.unwrap();
        assert!(read_response(&mut fresh)
            .await
            .starts_with("HTTP/1.1 200 OK"));
        let counts = lab.counts();
        assert_eq!(counts.connections(), 2, "the counts survive the restart");
        assert_eq!(counts.requests_per_connection(), [1, 1]);
    })
    .await;
}

#[tokio::test]
async fn stop_refuses_and_resume_comes_back_on_the_same_port() {
    bounded(async {
        let lab = Lab::builder().start().await.unwrap();
        let client = http1_client();
        send(&client, request(Method::GET, &lab.url("/"), "1"))
            .await
            .unwrap();
        lab.stop().await;
        assert!(!lab.is_listening().await);
        let refused = TcpStream::connect(lab.addr()).await.unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
        // hyper-util: a connect error, never sent.
        let err = send(&client, request(Method::POST, &lab.url("/"), "2"))
            .await
            .unwrap_err();
        assert!(err.is_connect(), "{err:?}");
        assert_eq!(
            CLASSIFIER.classify_chain(&err),
            Some(FailureClass::NeverSent)
        );

        lab.resume().await.unwrap();
        lab.resume().await.unwrap(); // listening already: nothing to do
        let got = send(&client, request(Method::POST, &lab.url("/"), "3"))
            .await
            .unwrap();
        assert_eq!(got.status, StatusCode::OK);
        let counts = lab.counts();
        assert_eq!((counts.received(), counts.connections()), (2, 2));
    })
    .await;
}

#[tokio::test]
async fn refuse_keeps_live_connections() {
    bounded(async {
        let lab = Lab::builder().start().await.unwrap();
        let mut live = warm(&lab).await;
        lab.refuse().await;
        assert_eq!(
            TcpStream::connect(lab.addr()).await.unwrap_err().kind(),
            ErrorKind::ConnectionRefused
        );
        live.write_all(GET).await.unwrap();
        assert!(read_response(&mut live)
            .await
            .starts_with("HTTP/1.1 200 OK"));
        lab.reset_connections().await;
        assert_eq!(
            read_to_end(&mut live).await.1,
            Ending::Error(ErrorKind::ConnectionReset)
        );
    })
    .await;
}

#[tokio::test]
async fn restart_after_refuses_during_the_window() {
    bounded(async {
        let lab = Arc::new(Lab::builder().start().await.unwrap());
        let restart = tokio::spawn({
            let lab = Arc::clone(&lab);
            async move { lab.restart_after(Duration::from_millis(150)).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            TcpStream::connect(lab.addr()).await.unwrap_err().kind(),
            ErrorKind::ConnectionRefused,
            "inside the window"
        );
        restart.await.unwrap().unwrap();
        TcpStream::connect(lab.addr())
            .await
            .expect("after the window");
    })
    .await;
}

#[tokio::test]
async fn idle_timeout_resets_idle_connections() {
    bounded(async {
        let lab = Lab::builder()
            .idle_timeout(Duration::from_millis(40), Idle::Reset)
            .start()
            .await
            .unwrap();
        let mut stream = warm(&lab).await;
        assert_eq!(
            read_to_end(&mut stream).await,
            (vec![], Ending::Error(ErrorKind::ConnectionReset))
        );
        assert_eq!(lab.counts().idle_disconnects(), 1);

        // A connection kept busy for longer than the timeout, with short gaps, is not idle.
        let lab = Lab::builder()
            .idle_timeout(Duration::from_millis(300), Idle::Reset)
            .start()
            .await
            .unwrap();
        let mut busy = warm(&lab).await;
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            busy.write_all(GET).await.unwrap();
            read_response(&mut busy).await;
        }
        assert_eq!(lab.counts().requests_per_connection(), [5]);
        assert_eq!(lab.counts().idle_disconnects(), 0);
    })
    .await;
}

#[tokio::test]
async fn idle_timeout_can_close_with_a_fin() {
    bounded(async {
        let lab = Lab::builder()
            .idle_timeout(Duration::from_millis(30), Idle::Fin)
            .start()
            .await
            .unwrap();
        let mut stream = warm(&lab).await;
        assert_eq!(read_to_end(&mut stream).await, (vec![], Ending::Eof));
        assert_eq!(lab.counts().idle_disconnects(), 1);
    })
    .await;
}

/// The stale keep-alive connection: silent while idle, reset by the next request, which the
/// server never sees. hyper-util reuses it and loses the request.
#[tokio::test]
async fn idle_forget_makes_a_stale_pooled_connection() {
    bounded(async {
        let lab = Lab::builder()
            .idle_timeout(Duration::from_millis(30), Idle::Forget)
            .start()
            .await
            .unwrap();
        let client = http1_client();
        send(&client, request(Method::GET, &lab.url("/"), "1"))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;
        let err = send(&client, request(Method::GET, &lab.url("/"), "2"))
            .await
            .expect_err("the pooled connection is stale");
        assert!(
            io_kinds(&err).contains(&ErrorKind::ConnectionReset),
            "{err:?}"
        );
        send(&client, request(Method::GET, &lab.url("/"), "3"))
            .await
            .expect("a fresh connection");
        let counts = lab.counts();
        assert_eq!(counts.forgotten_resets(), 1);
        assert_eq!(
            counts.arrivals("2"),
            0,
            "the lost request never reached the server"
        );
        assert_eq!(counts.requests_per_connection(), [1, 1]);
        assert_eq!(counts.idle_disconnects(), 0);
    })
    .await;
}

#[tokio::test]
async fn forget_connections_strands_every_pooled_connection() {
    bounded(async {
        let lab = Lab::builder().start().await.unwrap();
        let client = http1_client();
        // Three pooled connections: three requests at once.
        let mut warmups = Vec::new();
        for n in 0..3 {
            let client = client.clone();
            let url = lab.url("/");
            warmups.push(tokio::spawn(async move {
                send(&client, request(Method::GET, &url, &n.to_string())).await
            }));
        }
        // Hold them concurrent long enough: the lab answers at once, so wait for all three.
        for warmup in warmups {
            warmup.await.unwrap().unwrap();
        }
        let pooled = lab.counts().connections();
        lab.forget_connections();
        let mut failures = 0;
        for n in 0..pooled {
            if send(
                &client,
                request(Method::GET, &lab.url("/"), &format!("after-{n}")),
            )
            .await
            .is_err()
            {
                failures += 1;
            }
        }
        let counts = lab.counts();
        assert_eq!(counts.forgotten_resets(), failures);
        assert!(failures >= 1, "at least one stale connection was reused");
    })
    .await;
}

#[tokio::test]
async fn dropping_the_lab_ends_everything() {
    bounded(async {
        let lab = Lab::builder().start().await.unwrap();
        let addr = lab.addr();
        let mut live = warm(&lab).await;
        drop(lab);
        let (_, ending) = read_to_end(&mut live).await;
        assert!(matches!(ending, Ending::Eof | Ending::Error(_)));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            TcpStream::connect(addr).await.unwrap_err().kind(),
            ErrorKind::ConnectionRefused
        );
    })
    .await;
}
