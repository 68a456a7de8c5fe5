//! The stack over tonic: a real tonic server on loopback, a client generated without protoc, and
//! scripted HTTP/2 servers (the `h2` crate speaking minimal gRPC) for GOAWAY and REFUSED_STREAM.
//!
//! Every test talks over real loopback sockets in real time, each bounded by a timeout.

mod codegen;
#[path = "../../examples/tonic_client/echo.rs"]
mod echo;
#[path = "../support/error_chain.rs"]
mod error_chain;
mod facts;
mod h2_server;
#[path = "../../examples/tonic_client/proxy.rs"]
mod proxy;
mod refusals;
#[path = "../../examples/tonic_client/server.rs"]
mod server;
mod streaming;
mod support;
mod unary;
mod unavailable;
