//! `ReplayBody` and `ReplayBodyLayer`: replay semantics of the body itself, retries through
//! `ResetRetry` over a scripted upstream, memory and allocations (counted), and real sockets.

mod body;
#[path = "../support/error_chain.rs"]
mod error_chain;
mod frames;
mod hyper_server;
mod memory;
#[path = "../../examples/axum_proxy/proxy.rs"]
mod proxy;
mod proxy_example;
mod readers;
#[path = "../support/reset_server.rs"]
mod reset_server;
mod retry;
mod slow_client;
mod socket;
mod trailers;
mod unsent;
mod upstream;
