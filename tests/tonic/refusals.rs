//! HTTP/2 refusals (`RST_STREAM(REFUSED_STREAM)`, `GOAWAY` above the stream) promise that the
//! server did not process the call: the stack retries them for every method, transparently.

use tonic::Code;

use crate::echo::EchoRequest;
use crate::h2_server::{self, Conn};
use crate::support::{bounded, find, Options};

fn hello() -> EchoRequest {
    EchoRequest {
        payload: b"hello".to_vec(),
    }
}

/// The first stream is refused; the retry is answered. `Echo` is not declared idempotent:
/// refusals need no declaration. The retry goes out on a new connection: a refused stream is of
/// the class of a `GOAWAY` (refused), and the stack's `fresh_channel` replaces its connection
/// after either (a handshake more after a refusal, which is rare).
#[tokio::test]
async fn a_refused_stream_is_retried_transparently() {
    bounded("REFUSED_STREAM", async {
        let (addr, stats) = h2_server::spawn(vec![Conn::RefuseFirstStream]).await;
        let mut client = Options::default().client(addr);

        let reply = client
            .echo(hello())
            .await
            .expect("the retry is answered")
            .into_inner();
        assert_eq!(reply.payload, b"hello");
        assert_eq!(stats.refused(), 1);
        assert_eq!(stats.answered(), 1);
        assert_eq!(stats.streams(), 2);
        assert_eq!(stats.connections(), 2, "a new connection for the retry");
    })
    .await;
}

/// The server sends `GOAWAY(last-stream-id 0)` when the call arrives; the channel opens a new
/// connection for the retry, which is answered.
#[tokio::test]
async fn a_goaway_is_retried_transparently() {
    bounded("GOAWAY", async {
        let (addr, stats) = h2_server::spawn(vec![Conn::GoAway]).await;
        let mut client = Options::default().client(addr);

        let reply = client
            .echo(hello())
            .await
            .expect("the retry is answered")
            .into_inner();
        assert_eq!(reply.payload, b"hello");
        assert_eq!(stats.refused(), 1);
        assert_eq!(stats.answered(), 1);
        assert_eq!(stats.connections(), 2, "the retry needs a new connection");
    })
    .await;
}

/// A server that sends every call away: the retries stop at the attempt limit (3 in all) and
/// the caller gets the last refusal, as `UNAVAILABLE`.
#[tokio::test]
async fn refusals_stop_at_the_attempt_limit() {
    bounded("GOAWAY x4", async {
        let (addr, stats) = h2_server::spawn(vec![Conn::GoAway; 4]).await;
        let mut client = Options::default().client(addr);

        let status = client
            .echo(hello())
            .await
            .expect_err("every attempt is sent away");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        let h2 = find::<h2::Error>(&status).expect("the GOAWAY under the status");
        assert!(h2.is_go_away() && h2.is_remote(), "{h2:?}");
        assert_eq!(stats.refused(), 3);
        assert_eq!(stats.answered(), 0);
        assert_eq!(stats.connections(), 3);
    })
    .await;
}
