//! The host a request goes to, as the clients' pools key their connections.

use http::uri::{Authority, Scheme};

/// The pool a connection belongs to: hyper-util (and reqwest, built on it) keys its pool by
/// scheme and authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Host {
    scheme: Option<Scheme>,
    authority: Option<Authority>,
}

impl Host {
    pub(super) fn of(uri: &http::Uri) -> Self {
        Self {
            scheme: uri.scheme().cloned(),
            authority: uri.authority().cloned(),
        }
    }
}
