//! The host a request goes to, as a number that costs a few instructions to compute.

use crate::attempt::AttemptRequest;
use crate::host_hash::host_hash;

/// A request's scheme and authority, hashed with the registry's seed ([`host_hash`]).
///
/// Every request computes its key before it is sent, so that a connection failure can be
/// charged to its host later, when the request is gone: hashing the few bytes of the scheme and
/// authority costs no allocation and no lock, where keeping a copy of them could allocate.
/// Requests without an authority (a tonic client's, whose channel adds it below) share one key:
/// the stack over one channel talks to one host. Names that differ only in case share one key.
///
/// Two hosts whose keys collide share their ride-out state; with 64-bit keys seeded per
/// registry that takes billions of hosts, and costs no more than a wait that the next probe
/// ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HostKey(u64);

impl HostKey {
    /// A key for no host, where there is no registry to look it up in.
    pub(crate) const UNKNOWN: HostKey = HostKey(0);

    /// The key of `request`'s host.
    #[inline]
    pub(crate) fn of<R: AttemptRequest + ?Sized>(request: &R, seed: u64) -> Self {
        HostKey(host_hash(seed, request.uri()))
    }

    /// The bit of this key in a 64-bit set of keys (its top six bits choose it).
    #[inline]
    pub(crate) fn bit(self) -> u64 {
        1 << (self.0 >> 58)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(uri: &str) -> HostKey {
        HostKey::of(&http::Request::get(uri).body(()).unwrap(), 7)
    }

    #[test]
    fn the_key_is_the_scheme_and_the_authority() {
        assert_eq!(key("http://a.example:80/x"), key("http://A.Example:80/y?z"));
        assert_ne!(key("http://a.example:80/"), key("https://a.example:80/"));
        assert_ne!(key("http://a.example:80/"), key("http://a.example:81/"));
        assert_eq!(key("/echo.Echo/Get"), key("/other"));
    }

    #[test]
    fn keys_spread_over_the_bits() {
        let bits: u64 = (0..4096)
            .map(|port| key(&format!("http://127.0.0.1:{port}/")).bit())
            .fold(0, |set, bit| set | bit);
        assert_eq!(bits, u64::MAX, "every bit is used by some port");
    }
}
