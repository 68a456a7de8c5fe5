//! The host a request goes to, as a number that costs a few instructions to compute.

use crate::attempt::AttemptRequest;

/// A request's scheme and authority, hashed with the registry's seed.
///
/// Every request computes its key before it is sent, so that a connection failure can be
/// charged to its host later, when the request is gone: hashing the few bytes of the scheme and
/// authority costs no allocation and no lock, where keeping a copy of them could allocate.
/// Requests without an authority (a tonic client's, whose channel adds it below) share one key:
/// the stack over one channel talks to one host.
///
/// Two hosts whose keys collide share their ride-out state; with 64-bit keys seeded per
/// registry that takes billions of hosts, and costs no more than a wait that the next probe
/// ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HostKey(u64);

/// Multipliers of the folded-multiply hash (the fractional parts of π and e).
const K1: u64 = 0x243F_6A88_85A3_08D3;
const K2: u64 = 0xB7E1_5162_8AED_2A6B;

impl HostKey {
    /// A key for no host, where there is no registry to look it up in.
    pub(crate) const UNKNOWN: HostKey = HostKey(0);

    /// The key of `request`'s host.
    pub(crate) fn of<R: AttemptRequest + ?Sized>(request: &R, seed: u64) -> Self {
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("");
        let authority = uri.authority().map_or("", |authority| authority.as_str());
        let mut hash = fold(seed ^ scheme.len() as u64, K1);
        hash = add_bytes(hash, scheme.as_bytes());
        hash = fold(hash ^ authority.len() as u64, K2);
        hash = add_bytes(hash, authority.as_bytes());
        HostKey(fold(hash, K2))
    }

    /// The bit of this key in a 64-bit set of keys (its top six bits choose it).
    pub(crate) fn bit(self) -> u64 {
        1 << (self.0 >> 58)
    }
}

/// Mixes `bytes` into `hash`, eight at a time.
fn add_bytes(mut hash: u64, bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        hash = fold(hash ^ u64::from_le_bytes(word), K1);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut word = [0; 8];
        word[..rest.len()].copy_from_slice(rest);
        hash = fold(hash ^ u64::from_le_bytes(word), K1);
    }
    hash
}

/// The folded multiply: the two halves of the 128-bit product, xored.
fn fold(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(uri: &str) -> HostKey {
        HostKey::of(&http::Request::get(uri).body(()).unwrap(), 7)
    }

    #[test]
    fn the_key_is_the_scheme_and_the_authority() {
        assert_eq!(key("http://a.example:80/x"), key("http://a.example:80/y?z"));
        assert_ne!(key("http://a.example:80/"), key("https://a.example:80/"));
        assert_ne!(key("http://a.example:80/"), key("http://a.example:81/"));
        assert_ne!(key("http://a.example/"), key("http://b.example/"));
        assert_eq!(key("/echo.Echo/Get"), key("/other"));
        assert_ne!(key("/echo.Echo/Get"), key("http://a.example/"));
    }

    #[test]
    fn keys_spread_over_the_bits() {
        let bits: u64 = (0..4096)
            .map(|port| key(&format!("http://127.0.0.1:{port}/")).bit())
            .fold(0, |set, bit| set | bit);
        assert_eq!(bits, u64::MAX, "every bit is used by some port");
    }
}
