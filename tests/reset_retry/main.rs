//! `ResetRetry`: mock tests (readiness discipline, decisions, limits), property tests, and
//! tests over real loopback sockets.

mod budget;
#[cfg(feature = "tracing")]
#[path = "../support/captured_events.rs"]
mod captured_events;
mod config;
#[path = "../support/error_chain.rs"]
mod error_chain;
#[cfg(feature = "tracing")]
mod events;
mod harness;
#[cfg(all(feature = "lab", feature = "hyper-util"))]
mod held;
mod mock;
mod property;
#[path = "../support/reset_server.rs"]
mod reset_server;
#[path = "../support/scripted_mock.rs"]
mod scripted_mock;
mod socket;
#[cfg(all(feature = "lab", feature = "hyper-util"))]
mod statuses;
mod stop_reasons;
#[cfg(all(feature = "lab", feature = "hyper-util"))]
mod stop_reasons_socket;
