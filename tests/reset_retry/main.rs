//! `ResetRetry`: mock tests (readiness discipline, decisions, limits), property tests, and
//! tests over real loopback sockets.

mod config;
mod harness;
mod mock;
mod property;
