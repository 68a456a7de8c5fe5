//! The reset lab (`tower_reset::lab`): every fault it scripts, as real clients see it over
//! loopback sockets, and the exact server-side counts it keeps.

#[path = "../support/error_chain.rs"]
mod error_chain;
mod events;
mod http1;
mod http2;
#[path = "../support/paused_io.rs"]
mod paused_io;
mod script;
mod support;
