//! `tower_reset::diagnose`: over the reset lab, each way a server loses connections (an idle
//! timeout that resets, closes or silently forgets; a request limit; a maximum age; a restart;
//! a request-size limit; overload) makes a report that names that cause with its figure, and a
//! healthy server makes "no connection failures". Also the collector's bounds, its cost, and
//! the `probe` example's measurements.
//!
//! Time is paused (`start_paused`): the lab's timers and the client's run on the same virtual
//! clock over real loopback sockets, so that idle times and ages are exact and a 2 s idle
//! timeout costs no wall-clock time. So that the clock cannot jump while the kernel moves the
//! bytes (see `paused_io`), every scenario is bounded in real time, not by a timer, and the
//! requests that need no timer are sent with the clock held still (`after_gaps`).

#[path = "../support/instant_service.rs"]
mod instant_service;
#[path = "../support/paused_io.rs"]
mod paused_io;

// The `probe` example's measuring modules, tested here against lab servers.
#[path = "../../examples/probe/measure.rs"]
mod measure;
#[path = "../../examples/probe/output.rs"]
mod output;
#[path = "../../examples/probe/wire.rs"]
mod wire;

mod bounds;
mod events;
mod idle;
mod limits;
mod probe;
mod support;
