//! `ResetRetry`: mock tests (readiness discipline, decisions, limits), property tests, and
//! tests over real loopback sockets.

mod config;
mod harness;
mod mock;
mod property;
#[path = "../support/reset_server.rs"]
mod reset_server;
#[path = "../support/scripted_mock.rs"]
mod scripted_mock;
mod socket;
