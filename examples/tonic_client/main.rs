//! The stack over a tonic `Channel` and a generated client, against an in-process tonic server
//! behind a proxy that resets connections at the worst moment: after the server executed the
//! call, before the answer reaches the client.
//!
//! Four calls go out, through a bare channel first and then through the stack:
//!
//! * `Get`, declared idempotent: tonic alone reports the reset as `Unknown`; the stack retries
//!   it on a new connection and it succeeds;
//! * `Echo`, not declared idempotent: the stack does not send it twice, and reports the reset as
//!   `UNAVAILABLE`, as the gRPC spec asks of transport errors;
//! * `Collect`, client streaming, 16 KiB: replayed after the reset;
//! * `Collect`, 100 KiB: over the 64 KiB replay cap, sent once.
//!
//! Run it with `cargo run --example tonic_client --features tonic`.

// The service (generated without protoc, see `echo.rs`), its server and the resetting proxy; the
// socket tests in `tests/tonic` use them too.
mod echo;
#[allow(dead_code)]
mod proxy;
#[allow(dead_code)]
mod server;

use std::net::SocketAddr;
use std::process::ExitCode;

use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tower_reset::attempt::AttemptHistory;
use tower_reset::preset::{grpc_channel, GrpcChannel};

use echo::{path, EchoClient, EchoRequest};
use proxy::Conn;

fn endpoint(addr: SocketAddr) -> Endpoint {
    Endpoint::from_shared(format!("http://{addr}")).expect("a valid URI")
}

fn channel(addr: SocketAddr) -> Channel {
    endpoint(addr).connect_lazy()
}

/// A proxy in front of the server whose first connection is reset after the server answered.
async fn resetting_proxy(server: SocketAddr) -> SocketAddr {
    proxy::spawn(server, vec![Conn::ResetOnResponse]).await.0
}

fn request(bytes: usize) -> EchoRequest {
    EchoRequest {
        payload: vec![b'x'; bytes],
    }
}

fn stream(kib: usize) -> impl tokio_stream::Stream<Item = EchoRequest> {
    tokio_stream::iter((0..kib).map(|_| request(1024)))
}

fn attempts<T>(response: &tonic::Response<T>) -> u32 {
    response
        .extensions()
        .get::<AttemptHistory>()
        .map_or(1, AttemptHistory::attempts)
}

fn show_error(status: &Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}

#[tokio::main]
async fn main() -> ExitCode {
    let (server_addr, counts) = server::spawn().await;
    let mut ok = true;
    let mut check = |what: &str, holds: bool| {
        if !holds {
            println!("    UNEXPECTED: {what}");
            ok = false;
        }
    };

    println!("tonic alone (a generated client over a bare Channel):");
    let mut bare = EchoClient::new(channel(resetting_proxy(server_addr).await));
    match bare.get(request(5)).await {
        Ok(_) => check("the bare call fails", false),
        Err(status) => {
            println!("  {:<16} -> {}", "Get", show_error(&status));
            check(
                "tonic reports a reset as Unknown",
                status.code() == Code::Unknown,
            );
        }
    }

    // The tonic preset: the stack over a channel that gets a new connection after a failure,
    // with `Get` and `Collect` declared idempotent (as the proto says).
    let stack = |addr| -> EchoClient<GrpcChannel> {
        EchoClient::new(grpc_channel(endpoint(addr), [path::GET, path::COLLECT]))
    };

    println!("with the tower-reset stack:");
    let before = counts.get();
    let mut client = stack(resetting_proxy(server_addr).await);
    match client.get(request(5)).await {
        Ok(response) => {
            let n = attempts(&response);
            println!(
                "  {:<16} -> OK after {n} attempts (executed {} times: it is declared idempotent)",
                "Get",
                counts.get() - before
            );
            check("Get took two attempts", n == 2);
        }
        Err(status) => check(&format!("Get succeeds: {}", show_error(&status)), false),
    }

    let before = counts.echo();
    let mut client = stack(resetting_proxy(server_addr).await);
    match client.echo(request(5)).await {
        Ok(_) => check("Echo through the reset fails", false),
        Err(status) => {
            println!(
                "  {:<16} -> {} (executed {} time, not sent again)",
                "Echo",
                show_error(&status),
                counts.echo() - before
            );
            check(
                "the stack reports UNAVAILABLE",
                status.code() == Code::Unavailable,
            );
            check("Echo executed once", counts.echo() - before == 1);
        }
    }

    let mut client = stack(resetting_proxy(server_addr).await);
    match client.collect(stream(16)).await {
        Ok(response) => {
            let n = attempts(&response);
            let reply = response.into_inner();
            println!(
                "  {:<16} -> OK after {n} attempts, {} messages, {} bytes",
                "Collect 16 KiB", reply.messages, reply.bytes
            );
            check("the stream was replayed whole", reply.bytes == 16 * 1024);
        }
        Err(status) => check(&format!("Collect 16 KiB: {}", show_error(&status)), false),
    }

    let before = counts.collect();
    let mut client = stack(resetting_proxy(server_addr).await);
    match client.collect(stream(100)).await {
        Ok(_) => check("Collect 100 KiB fails", false),
        Err(status) => {
            println!(
                "  {:<16} -> {} (over the 64 KiB replay cap: sent {} time)",
                "Collect 100 KiB",
                show_error(&status),
                counts.collect() - before
            );
            check("sent once", counts.collect() - before == 1);
        }
    }

    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
