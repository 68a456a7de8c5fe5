//! Tests of `tower_reset::classify`: hand-built error chains, responses, and real errors that
//! hyper, hyper-util, h2, tonic and reqwest produce over loopback sockets (behind the features
//! of the same names).

mod impls;
mod io_chains;
mod responses;
mod support;

#[cfg(feature = "hyper-util")]
mod connect_failures;
#[cfg(feature = "hyper-util")]
#[path = "../support/counting_connector.rs"]
mod counting_connector;

#[cfg(feature = "hyper")]
mod real_http1;

#[cfg(feature = "h2")]
mod real_h2;

#[cfg(feature = "tonic")]
mod tonic_status;

#[cfg(feature = "reqwest")]
mod real_reqwest;
