//! A real tonic server for the `echo.Echo` service on loopback, counting what it served.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status, Streaming};

use crate::echo::{CollectReply, Echo, EchoReply, EchoRequest, EchoServer};

/// How many calls of each method the server executed (handler entered), and how it answers.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) echo: AtomicU64,
    pub(crate) get: AtomicU64,
    pub(crate) collect: AtomicU64,
    /// The first this many `Get` calls answer `UNAVAILABLE` (trailers-only), with
    /// `grpc-retry-pushback-ms: pushback_ms` when that is set.
    pub(crate) unavailable_gets: AtomicU64,
    pub(crate) pushback_ms: std::sync::Mutex<Option<String>>,
}

impl Counts {
    pub(crate) fn echo(&self) -> u64 {
        self.echo.load(Ordering::SeqCst)
    }
    pub(crate) fn get(&self) -> u64 {
        self.get.load(Ordering::SeqCst)
    }
    pub(crate) fn collect(&self) -> u64 {
        self.collect.load(Ordering::SeqCst)
    }
}

#[derive(Debug, Clone)]
struct EchoService {
    counts: Arc<Counts>,
}

#[tonic::async_trait]
impl Echo for EchoService {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        let served = self.counts.echo.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(Response::new(EchoReply {
            payload: request.into_inner().payload,
            served,
        }))
    }

    async fn get(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        let served = self.counts.get.fetch_add(1, Ordering::SeqCst) + 1;
        if served <= self.counts.unavailable_gets.load(Ordering::SeqCst) {
            let mut status = Status::unavailable("busy, come back later");
            let pushback = self
                .counts
                .pushback_ms
                .lock()
                .expect("not poisoned")
                .clone();
            if let Some(ms) = pushback {
                status.metadata_mut().insert(
                    "grpc-retry-pushback-ms",
                    ms.parse().expect("an ASCII value"),
                );
            }
            return Err(status);
        }
        Ok(Response::new(EchoReply {
            payload: request.into_inner().payload,
            served,
        }))
    }

    async fn collect(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<CollectReply>, Status> {
        self.counts.collect.fetch_add(1, Ordering::SeqCst);
        let mut stream = request.into_inner();
        let mut reply = CollectReply::default();
        while let Some(message) = stream.message().await? {
            reply.messages += 1;
            reply.bytes += message.payload.len() as u64;
        }
        Ok(Response::new(reply))
    }
}

/// A tonic server for `echo.Echo` on an ephemeral loopback port, running until the test's
/// runtime ends.
pub(crate) async fn spawn() -> (SocketAddr, Arc<Counts>) {
    spawn_with(Counts::default()).await
}

/// Like [`spawn`], with counts (and answers) set up beforehand.
pub(crate) async fn spawn_with(counts: Counts) -> (SocketAddr, Arc<Counts>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    let counts = Arc::new(counts);
    let service = EchoServer::new(EchoService {
        counts: counts.clone(),
    });
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await
            .expect("the tonic server runs");
    });
    (addr, counts)
}
