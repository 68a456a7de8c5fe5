//! The host a request goes to, as the clients' pools key their connections.

use http::uri::{Authority, Scheme};
use http::Uri;

/// The pool a connection belongs to: hyper-util (and reqwest, built on it) keys its pool by
/// scheme and authority, compared without regard to ASCII case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Host {
    scheme: Option<Scheme>,
    authority: Option<Authority>,
}

impl Host {
    /// The host of `uri` (a copy of its scheme and authority, which shares their bytes).
    pub(super) fn of(uri: &Uri) -> Self {
        Self {
            scheme: uri.scheme().cloned(),
            authority: uri.authority().cloned(),
        }
    }

    /// Whether `uri` goes to this host: compared byte for byte first, and without regard to
    /// case only when that fails.
    #[inline]
    pub(super) fn is(&self, uri: &Uri) -> bool {
        let authority = match (&self.authority, uri.authority()) {
            (Some(ours), Some(theirs)) => ours.as_str() == theirs.as_str() || ours == theirs,
            (None, None) => true,
            _ => false,
        };
        authority && self.scheme.as_ref() == uri.scheme()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(uri: &str) -> Uri {
        uri.parse().unwrap()
    }

    #[test]
    fn a_host_is_its_scheme_and_authority_in_any_case() {
        let host = Host::of(&uri("http://Example.com:8080/a"));
        assert!(host.is(&uri("http://example.COM:8080/b?c")));
        assert!(host.is(&uri("HTTP://Example.com:8080/")));
        assert!(!host.is(&uri("https://example.com:8080/")));
        assert!(!host.is(&uri("http://example.com:8081/")));
        assert!(!host.is(&uri("/path")));
        assert!(Host::of(&uri("/path")).is(&uri("/other")));
    }
}
