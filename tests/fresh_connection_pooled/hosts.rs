//! Many hosts through one pooled strategy: a request looks at its own host's record only, the
//! host used least recently is the one forgotten when there are too many, and forgetting a host
//! does not retire its connections.
//!
//! Every name resolves to the one loopback server; it keeps a connection open only for the
//! hosts named `kept…`, so that thousands of hosts cost no more than a few open sockets.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Layer, ServiceExt};
use tower_reset::fresh_connection::policy::StandardConnections;
use tower_reset::{FreshConnection, FreshConnectionLayer};

use crate::loopback_resolver::Loopback;
use crate::server::{Config, Server};

type LoopbackClient = Client<HttpConnector<Loopback>, Full<Bytes>>;

/// More hosts than the registry remembers (4096).
const OTHER_HOSTS: usize = 4096 + 300;
const LIMIT: Duration = Duration::from_secs(120);

async fn keep_alive_for_kept_hosts() -> Server {
    Server::start(Config {
        keep_alive_for: Some("kept"),
        ..Config::default()
    })
    .await
}

fn pooled(policy: StandardConnections) -> FreshConnection<LoopbackClient> {
    let client =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new_with_resolver(Loopback));
    FreshConnectionLayer::new().policy(policy).layer(client)
}

async fn get(service: &FreshConnection<LoopbackClient>, server: &Server, host: &str) {
    let request = http::Request::get(format!("http://{host}:{}/", server.port()))
        .body(Full::default())
        .unwrap();
    let response = service.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200, "{host}");
}

/// How many requests each connection the server accepted carried.
fn per_connection(server: &Server) -> Vec<usize> {
    server.connections().iter().map(|c| c.requests).collect()
}

#[tokio::test]
async fn a_host_in_steady_use_keeps_its_record_while_thousands_of_others_come_and_go() {
    tokio::time::timeout(LIMIT, async {
        let server = keep_alive_for_kept_hosts().await;
        let policy = StandardConnections::builder()
            .max_requests(3)
            .build()
            .unwrap();
        let service = pooled(policy);
        let mut kept_requests = 0;
        for other in 0..OTHER_HOSTS {
            get(&service, &server, &format!("host-{other}.test")).await;
            if other % 8 == 0 {
                get(&service, &server, "kept.test").await;
                kept_requests += 1;
            }
            assert!(service.tracked_connections() <= 4096, "at {other}");
        }
        let per_connection = per_connection(&server);
        assert_eq!(
            per_connection.iter().sum::<usize>(),
            OTHER_HOSTS + kept_requests
        );
        // Had the kept host's record been forgotten on the way (as the first remembered, say),
        // its connection's count would have started again, and it would carry more than 3.
        assert_eq!(per_connection.iter().max(), Some(&3));
        assert_eq!(
            per_connection
                .iter()
                .filter(|&&requests| requests == 3)
                .count(),
            kept_requests / 3,
            "the kept host's connections carry 3 requests each"
        );
    })
    .await
    .expect("no hang");
}

#[tokio::test]
async fn a_host_pushed_out_by_others_is_forgotten_and_its_connection_not_retired() {
    tokio::time::timeout(LIMIT, async {
        let server = keep_alive_for_kept_hosts().await;
        let service = pooled(StandardConnections::new());
        get(&service, &server, "kept.test").await;
        assert_eq!(service.tracked_connections(), 1);
        for other in 0..OTHER_HOSTS {
            get(&service, &server, &format!("host-{other}.test")).await;
        }
        assert_eq!(
            service.tracked_connections(),
            4096,
            "the hosts used least recently, the kept one first, were forgotten"
        );
        get(&service, &server, "kept.test").await;
        let per_connection = per_connection(&server);
        assert_eq!(per_connection.len(), OTHER_HOSTS + 1);
        assert_eq!(
            per_connection[0], 2,
            "forgetting the kept host left its connection in the pool"
        );
    })
    .await
    .expect("no hang");
}

#[tokio::test]
async fn names_that_differ_in_case_are_one_host() {
    tokio::time::timeout(LIMIT, async {
        let server = keep_alive_for_kept_hosts().await;
        let policy = StandardConnections::builder()
            .max_requests(3)
            .build()
            .unwrap();
        let service = pooled(policy);
        for name in [
            "kept.test",
            "KEPT.test",
            "Kept.Test",
            "kept.TEST",
            "kEPT.test",
        ]
        .into_iter()
        .cycle()
        .take(10)
        {
            get(&service, &server, name).await;
        }
        // One pool key in hyper-util, so one count of requests per connection here.
        assert_eq!(per_connection(&server), vec![3, 3, 3, 1]);
    })
    .await
    .expect("no hang");
}
