//! A hyper-util resolver that maps every name to 127.0.0.1, so that many hosts (each its own
//! pool key in hyper-util, its own record in the layers' per-host state) reach one loopback
//! server.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::iter::{once, Once};
use std::net::SocketAddr;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::Name;
use tower::Service;

/// Resolves every name to 127.0.0.1 (the port is the URI's).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Loopback;

impl Service<Name> for Loopback {
    type Response = Once<SocketAddr>;
    type Error = Infallible;
    type Future = Ready<Result<Once<SocketAddr>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Name) -> Self::Future {
        // The port is the URI's: hyper-util sets it on the address.
        ready(Ok(once(SocketAddr::from(([127, 0, 0, 1], 0)))))
    }
}
