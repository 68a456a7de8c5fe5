//! Client-streaming calls through the stack: replayed after a reset while the whole stream fits
//! under the replay cap, sent once when it does not.

use tonic::Code;

use crate::echo::{path, CollectReply, EchoRequest};
use crate::proxy::{self, Conn};
use crate::server;
use crate::support::{bounded, Options};

const KIB: usize = 1024;

/// `count` messages of 1 KiB each.
fn messages(count: usize) -> impl tokio_stream::Stream<Item = EchoRequest> {
    tokio_stream::iter((0..count).map(|i| EchoRequest {
        payload: vec![i as u8; KIB],
    }))
}

/// 16 KiB streamed with a 64 KiB cap: the server reads it all, the proxy resets the connection
/// before the answer reaches the client, and the retry replays the stream.
#[tokio::test]
async fn a_client_stream_under_the_cap_succeeds_after_a_reset() {
    bounded("Collect 16 KiB", async {
        let (server_addr, counts) = server::spawn().await;
        let (addr, proxy) = proxy::spawn(server_addr, vec![Conn::ResetOnResponse]).await;
        let mut client = Options::default().idempotent(&[path::COLLECT]).client(addr);

        let reply = client
            .collect(messages(16))
            .await
            .expect("the replayed stream succeeds")
            .into_inner();
        assert_eq!(
            reply,
            CollectReply {
                messages: 16,
                bytes: 16 * KIB as u64
            },
            "the retry sent the whole stream again"
        );
        assert_eq!(counts.collect(), 2);
        assert_eq!((proxy.connections(), proxy.resets()), (2, 1));
    })
    .await;
}

/// 100 KiB streamed with a 64 KiB cap: the stream cannot be replayed, so the call fails once,
/// although `Collect` is declared idempotent and the failure is one it would retry.
#[tokio::test]
async fn a_client_stream_over_the_cap_fails_once_without_retry() {
    bounded("Collect 100 KiB", async {
        let (server_addr, counts) = server::spawn().await;
        let (addr, proxy) = proxy::spawn(server_addr, vec![Conn::ResetOnResponse]).await;
        let options = Options::default().idempotent(&[path::COLLECT]);
        assert_eq!(options.cap, 64 * KIB);
        let mut client = options.client(addr);

        let status = client
            .collect(messages(100))
            .await
            .expect_err("no replay past the cap");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert_eq!(counts.collect(), 1, "executed once");
        assert_eq!((proxy.connections(), proxy.resets()), (1, 1), "sent once");
    })
    .await;
}

/// The same 100 KiB stream under a 128 KiB cap is replayed: the cap alone stopped the retry
/// above.
#[tokio::test]
async fn the_same_client_stream_under_a_larger_cap_succeeds_after_a_reset() {
    bounded("Collect 100 KiB, cap 128 KiB", async {
        let (server_addr, counts) = server::spawn().await;
        let (addr, proxy) = proxy::spawn(server_addr, vec![Conn::ResetOnResponse]).await;
        let mut options = Options::default().idempotent(&[path::COLLECT]);
        options.cap = 128 * KIB;
        let mut client = options.client(addr);

        let reply = client
            .collect(messages(100))
            .await
            .expect("replayed")
            .into_inner();
        assert_eq!(reply.bytes, 100 * KIB as u64);
        assert_eq!(counts.collect(), 2);
        assert_eq!((proxy.connections(), proxy.resets()), (2, 1));
    })
    .await;
}
