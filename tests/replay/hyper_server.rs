//! Serving one loopback connection with a hyper service, over HTTP/1.1 or HTTP/2.

use std::error::Error;

use hyper::body::{Body, Incoming};
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

/// Serves the requests of `stream` with `service` (HTTP/2 with prior knowledge when `h2`),
/// until the connection ends.
pub(crate) async fn serve_connection<S, B>(stream: TcpStream, service: S, h2: bool)
where
    S: Service<http::Request<Incoming>, Response = http::Response<B>>,
    S::Error: Into<Box<dyn Error + Send + Sync>>,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn Error + Send + Sync>>,
{
    let io = TokioIo::new(stream);
    if h2 {
        let builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        let _ = builder.serve_connection(io, service).await;
    } else {
        let builder = hyper::server::conn::http1::Builder::new();
        let _ = builder.serve_connection(io, service).await;
    }
}
