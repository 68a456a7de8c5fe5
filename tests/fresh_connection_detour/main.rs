//! `FreshConnectionLayer::detour`: routing and readiness over the tower-test mock, and (feature
//! `reqwest`) a reqwest stack recovering from stale keep-alive connections over real sockets,
//! and (with `lab` too) keeping requests not safe to repeat off a pool likely to be stale.

#[cfg(feature = "tracing")]
#[path = "../support/captured_events.rs"]
mod captured_events;
#[cfg(feature = "tracing")]
mod events;
#[cfg(all(feature = "reqwest", feature = "lab"))]
#[path = "../support/forgetful_lab.rs"]
mod forgetful_lab;
mod mock;
#[cfg(all(feature = "reqwest", feature = "lab"))]
#[path = "../support/paused_io.rs"]
mod paused_io;
#[cfg(feature = "reqwest")]
mod server;
#[cfg(feature = "reqwest")]
mod socket;
#[cfg(all(feature = "reqwest", feature = "lab"))]
mod unrepeatable;
