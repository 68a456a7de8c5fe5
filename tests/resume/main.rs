//! The resume suite: `ResumeLayer` over real loopback sockets against the reset lab, for
//! hyper-util's legacy client (HTTP/1.1 and HTTP/2) and reqwest, each under the contract stack;
//! over an in-memory service for what sockets cannot time exactly; and the memory it holds.
//!
//! * `socket`: the acceptance tests (a 4 MiB body reset three times arrives whole; a server
//!   without ranges; a resource that changes; no validator; other methods; the limits);
//! * `scripted`: exact answers (mismatched ranges, encodings, 416) and paused-time limits over
//!   a scripted in-memory service;
//! * `memory`: with the counting allocator, what a resumed body holds and what a body that
//!   never fails costs;
//! * `contract`: the contract stack compiles over `Client<HttpConnector, Full<Bytes>>`.

#[path = "../support/error_chain.rs"]
mod error_chain;
#[path = "../support/instant_service.rs"]
mod instant_service;

mod contract;
mod memory;
mod scripted;
mod socket;
mod support;
