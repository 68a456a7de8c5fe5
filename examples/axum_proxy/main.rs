//! An axum proxy that forwards request bodies as they stream in, through the tower-reset
//! stack, to an upstream that resets connections.
//!
//! The upstream (the reset lab, `tower_reset::lab`) resets the connection of the first request it
//! receives after reading it in full, so the proxy cannot know whether it acted on it. Three
//! streamed uploads go through the proxy, each meeting one reset:
//!
//! * `PUT` is idempotent: the proxy replays the body it kept and the client gets `200`;
//! * `POST` may not be repeated: the client gets `502` and the upstream ran it once;
//! * `POST` with an `Idempotency-Key`: the upstream deduplicates it, so it is replayed.
//!
//! Run it with `cargo run --example axum_proxy --features lab,hyper-util`.

mod proxy;

use std::error::Error;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tower_reset::lab::{Fault, Lab, Match};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    for (method, key) in [("PUT", None), ("POST", None), ("POST", Some("order-42"))] {
        // A fresh upstream for each upload: it resets the first request after reading (and
        // executing) it, then answers `200`.
        let upstream = Lab::builder()
            .on(Match::nth(1), Fault::ResetAfterRequest)
            .start()
            .await?;
        let base = format!("http://{}/", upstream.addr()).parse()?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move { axum::serve(listener, proxy::router(base)).await });

        let status = upload(&format!("http://{addr}/files/report"), method, key).await?;
        let label = match key {
            Some(_) => format!("{method} with Idempotency-Key"),
            None => method.to_owned(),
        };
        let executed = upstream.counts().executed_by_method(&method.parse()?);
        println!("{label:<28} -> {status}  (the upstream executed it {executed} time(s))");
        server.abort();
    }
    Ok(())
}

/// Streams an 11-byte body in three chunks to the proxy.
async fn upload(
    url: &str,
    method: &str,
    key: Option<&str>,
) -> Result<http::StatusCode, Box<dyn Error + Send + Sync>> {
    let chunks = ["hello", " ", "world"]
        .map(|chunk| Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(chunk.as_bytes()))));
    let body = StreamBody::new(tokio_stream::iter(chunks));
    let mut request = http::Request::builder()
        .method(method)
        .uri(url)
        .header("content-length", "11");
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let client = Client::builder(TokioExecutor::new()).build_http();
    let response = client.request(request.body(body)?).await?;
    let status = response.status();
    let _ = response.into_body().collect().await?;
    Ok(status)
}
