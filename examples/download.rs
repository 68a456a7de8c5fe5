//! A 4 MiB download that survives three connection resets, over real sockets.
//!
//! A server on 127.0.0.1 (`tower_reset::lab`) serves a 4 MiB file with a strong `ETag` and
//! range support, as a file or object server does, and resets the connection of each of the
//! first three responses after 1 MiB of its body: at 1, 2 and 3 MiB into the file.
//!
//! The same download goes through a bare hyper-util client, then through the stack with
//! `ResumeLayer` on top (`ResumeLayer`, `ResetRetryLayer`, `BackoffLayer`,
//! `FreshConnectionLayer`, all defaults), each against a fresh server. The bare client fails at
//! the first reset. The stack asks for the rest each time (`Range: bytes=N-` with
//! `If-Range: "v1"`), and the body arrives whole: the SHA-256 is the file's, and the server sent
//! about 4 MiB in all, not 1 + 2 + 3 + 4.
//!
//! Run it with `cargo run --example download --features lab,hyper-util`.

use std::error::Error;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use http::header::ETAG;
use http::{HeaderValue, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sha2::{Digest, Sha256};
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use tower_reset::backoff::policy::Rng;
use tower_reset::lab::{Fault, Lab, Match, Reply};
use tower_reset::resume::ResumeObserver;
use tower_reset::{BackoffLayer, FreshConnectionLayer, ResetRetryLayer, ResumeLayer};

const MIB: usize = 1024 * 1024;
const SIZE: usize = 4 * MIB;

/// The file: pseudo-random bytes, so that a body spliced at the wrong offset cannot hash the same.
fn file() -> Bytes {
    let mut rng = Rng::new(7);
    let bytes: Vec<u8> = (0..SIZE / 8)
        .flat_map(|_| rng.next_u64().to_le_bytes())
        .collect();
    Bytes::from(bytes)
}

/// A server for `file` that resets each of the first three responses after 1 MiB of its body.
async fn server(file: &Bytes) -> std::io::Result<Lab> {
    let reply = Reply::ok()
        .body(file.clone())
        .header(ETAG, HeaderValue::from_static("\"v1\""))
        .ranges();
    Lab::builder()
        .reply(reply)
        .on(Match::any().times(3), Fault::ResetAfterBodyBytes(MIB))
        .start()
        .await
}

/// What one download got.
struct Outcome {
    bytes: usize,
    digest: [u8; 32],
    error: Option<String>,
}

/// Sends `request` through `service` and reads the body, hashing it as it comes.
async fn download<S, B>(mut service: S, request: Request<Full<Bytes>>) -> Result<Outcome, BoxError>
where
    S: Service<Request<Full<Bytes>>, Response = http::Response<B>>,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Error,
{
    let response = service
        .ready()
        .await
        .map_err(Into::into)?
        .call(request)
        .await
        .map_err(Into::into)?;
    let mut body = response.into_body();
    let (mut hasher, mut bytes, mut error) = (Sha256::new(), 0, None);
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    hasher.update(&data);
                    bytes += data.len();
                }
            }
            Err(failure) => {
                error = Some(failure.to_string());
                break;
            }
        }
    }
    Ok(Outcome {
        bytes,
        digest: hasher.finalize().into(),
        error,
    })
}

fn hex(digest: &[u8]) -> String {
    digest[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[tokio::main]
async fn main() -> Result<ExitCode, BoxError> {
    let file = file();
    let expected: [u8; 32] = Sha256::digest(&file).into();
    println!(
        "A {} MiB file, SHA-256 {}…; the server resets after 1, 2 and 3 MiB.\n",
        SIZE / MIB,
        hex(&expected)
    );
    println!(
        "| client | bytes received | SHA-256 | resumes | body bytes the server sent | outcome |"
    );
    println!("|---|---|---|---|---|---|");

    // A bare hyper-util client: the first reset ends the download.
    let lab = server(&file).await?;
    let bare = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = Request::get(lab.url("/file.bin")).body(Full::default())?;
    let outcome = download(bare, request).await?;
    println!(
        "| hyper-util | {} | {}… | — | {} | {} |",
        outcome.bytes,
        hex(&outcome.digest),
        lab.counts().body_bytes(),
        outcome.error.as_deref().unwrap_or("whole")
    );

    // The stack with ResumeLayer on top.
    let lab = server(&file).await?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let stack = ServiceBuilder::new()
        .layer(ResumeLayer::new()) // a body that breaks continues
        .layer(ResetRetryLayer::new()) // whether
        .layer(BackoffLayer::new()) // when
        .layer(FreshConnectionLayer::new()) // which connection
        .service(client);
    let mut request = Request::get(lab.url("/file.bin")).body(Full::default())?;
    let observer = ResumeObserver::attach(&mut request);
    let outcome = tokio::time::timeout(Duration::from_secs(30), download(stack, request)).await??;
    let resumes = observer.get().map_or(0, |history| history.resumes());
    let sent = lab.counts().body_bytes();
    let whole = outcome.error.is_none() && outcome.digest == expected;
    println!(
        "| ResumeLayer + the stack | {} | {}… | {resumes} | {sent} | {} |",
        outcome.bytes,
        hex(&outcome.digest),
        outcome
            .error
            .as_deref()
            .unwrap_or(if whole { "whole" } else { "WRONG BYTES" })
    );
    println!(
        "\nThe stack sent {} requests; each resume asked for the rest with `Range` and `If-Range`.",
        lab.counts().received()
    );
    Ok(if whole && sent as f64 <= SIZE as f64 * 1.1 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
