//! `Backoff`: exact schedules, the stack `ResetRetry` + `Backoff` over the tower-test mock in
//! paused time (delays, server hints, the deadline, cancellation, readiness), property tests,
//! riding out a host that refuses connections, and tests over real loopback sockets.

mod alone;
mod cancel;
mod config;
mod harness;
mod hints;
mod property;
#[path = "../support/reset_server.rs"]
mod reset_server;
mod ride_out;
mod ride_out_memory;
mod schedules;
#[path = "../support/scripted_mock.rs"]
mod scripted_mock;
mod socket;
mod stack;
