//! `Reconnect`, the reconnect strategy of `FreshConnectionLayer`: step by step over tower-test
//! mocks (what condemns a connection and what does not, the limits in paused time, connect
//! errors, readiness), in a stack with `ResetRetry` and a `Buffer` over scripted services, and
//! over real loopback sockets with hyper's `client::conn`.
//!
//! The mocks (tower-test's and the scripted ones) panic when `call` comes without a successful
//! `poll_ready` on the same instance, so every test also checks the readiness discipline.

mod errors;
mod fixture;
mod limits;
mod mock;
#[path = "../support/reset_server.rs"]
mod reset_server;
mod scripted;
mod socket;
mod stack;
