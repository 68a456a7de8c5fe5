//! `ResetRetry`: mock tests (readiness discipline, decisions, limits), property tests, and
//! tests over real loopback sockets.

mod budget;
mod config;
#[path = "../support/error_chain.rs"]
mod error_chain;
mod harness;
mod mock;
mod property;
#[path = "../support/reset_server.rs"]
mod reset_server;
#[path = "../support/scripted_mock.rs"]
mod scripted_mock;
mod socket;
