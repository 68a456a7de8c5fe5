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
    #[inline]
    pub(crate) fn of<R: AttemptRequest + ?Sized>(request: &R, seed: u64) -> Self {
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("");
        let authority = uri.authority().map_or("", |authority| authority.as_str());
        let hash = add(seed ^ K2, scheme.as_bytes());
        HostKey(fold(add(hash, authority.as_bytes()), K2))
    }

    /// The bit of this key in a 64-bit set of keys (its top six bits choose it).
    #[inline]
    pub(crate) fn bit(self) -> u64 {
        1 << (self.0 >> 58)
    }
}

/// Mixes `bytes` and their length into `hash`: a host name fits in the two reads of the short
/// path (foldhash's), longer ones go sixteen bytes at a time.
#[inline]
fn add(hash: u64, bytes: &[u8]) -> u64 {
    let len = bytes.len();
    let (a, b) = if len <= 16 {
        short(bytes)
    } else {
        let mut hash = hash;
        let mut chunks = bytes.chunks_exact(16);
        for chunk in &mut chunks {
            hash = fold(read8(chunk, 0) ^ hash, read8(chunk, 8) ^ K1);
        }
        // The last sixteen bytes (overlapping the chunks when the length is not a multiple).
        let tail = &bytes[len - 16..];
        return fold(read8(tail, 0) ^ hash, read8(tail, 8) ^ K1 ^ len as u64);
    };
    fold(a ^ hash, b ^ K1 ^ len as u64)
}

/// Up to sixteen bytes as two words, every byte in at least one of them.
#[inline]
fn short(bytes: &[u8]) -> (u64, u64) {
    let len = bytes.len();
    if len >= 8 {
        (read8(bytes, 0), read8(bytes, len - 8))
    } else if len >= 4 {
        (read4(bytes, 0), read4(bytes, len - 4))
    } else if len > 0 {
        let (first, middle, last) = (bytes[0], bytes[len / 2], bytes[len - 1]);
        (
            u64::from(first) | u64::from(middle) << 8 | u64::from(last) << 16,
            0,
        )
    } else {
        (0, 0)
    }
}

#[inline]
fn read8(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

#[inline]
fn read4(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u64::from(u32::from_le_bytes(word))
}

/// The folded multiply: the two halves of the 128-bit product, xored.
#[inline]
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
    fn long_and_short_names_differ_in_every_byte() {
        let names = [
            "a",
            "ab",
            "abc",
            "abcd",
            "abcde",
            "abcdefgh",
            "abcdefghi",
            "abcdefghijklmnop",
            "abcdefghijklmnopq",
            "abcdefghijklmnopqrstuvwxyz0123456789",
        ];
        for name in names {
            let base = key(&format!("http://{name}/"));
            for at in 0..name.len() {
                let mut changed = name.as_bytes().to_vec();
                changed[at] = if changed[at] == b'x' { b'y' } else { b'x' };
                let changed = String::from_utf8(changed).unwrap();
                assert_ne!(key(&format!("http://{changed}/")), base, "{name} at {at}");
            }
        }
    }

    #[test]
    fn keys_spread_over_the_bits() {
        let bits: u64 = (0..4096)
            .map(|port| key(&format!("http://127.0.0.1:{port}/")).bit())
            .fold(0, |set, bit| set | bit);
        assert_eq!(bits, u64::MAX, "every bit is used by some port");
    }
}
