//! `FreshConnectionLayer::detour`: routing and readiness over the tower-test mock, and (feature
//! `reqwest`) a reqwest stack recovering from stale keep-alive connections over real sockets.

mod mock;
#[cfg(feature = "reqwest")]
mod server;
#[cfg(feature = "reqwest")]
mod socket;
