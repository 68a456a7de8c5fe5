//! A request's host (scheme and authority) as a number that costs a few instructions to compute.
//!
//! The layers that keep a record per host (`Backoff`'s ride-out, `FreshConnection`'s registries)
//! key it by this hash, computed once per request: hashing the few bytes of the scheme and the
//! authority costs no allocation and no lock, where keeping a copy of them could allocate, and
//! where `http`'s own `Hash` of an `Authority` lower-cases and feeds the hasher one byte at a
//! time. ASCII case is folded, as `http` compares authorities (and as hyper-util's pool keys its
//! connections): `Example.com` and `example.com` hash alike.
//!
//! The hash is a folded multiply (the two halves of a 128-bit product, xored) seeded per record,
//! with foldhash's short path: a host name fits in its two reads, longer ones go sixteen bytes
//! at a time.

use http::Uri;

/// Multipliers of the folded-multiply hash (the fractional parts of π and e).
const K1: u64 = 0x243F_6A88_85A3_08D3;
const K2: u64 = 0xB7E1_5162_8AED_2A6B;

/// Bit 5 of every byte: set, it makes ASCII letters lower case (and leaves digits, `.`, `-`
/// and `:` as they are). Other bytes it changes are not valid in an authority, so only names
/// that differ in case hash alike for it.
const FOLD: u64 = 0x2020_2020_2020_2020;

/// The hash of `uri`'s scheme and authority with `seed`; a URI without them (a path alone, as
/// tonic's requests have above its channel) hashes as the empty scheme and authority.
#[inline]
pub(crate) fn host_hash(seed: u64, uri: &Uri) -> u64 {
    let scheme = uri.scheme_str().unwrap_or("");
    let authority = uri.authority().map_or("", |authority| authority.as_str());
    let hash = add(seed ^ K2, scheme.as_bytes());
    fold(add(hash, authority.as_bytes()), K2)
}

/// Mixes `bytes` (case folded) and their length into `hash`.
///
/// The length is mixed in after the multiply: xored into one of its operands, a difference of
/// length could cancel a difference of the bytes (`host-122.test` and `host-1222.test` end in
/// words that differ by 1 ^ 2 = 3, as do their lengths, 13 ^ 14), and the two reads of the
/// short path are the same for `aaaaaaaaa` and `aaaaaaaaaa`.
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
        return fold(read8(tail, 0) ^ hash, read8(tail, 8) ^ K1) ^ len as u64;
    };
    fold(a ^ hash, b ^ K1) ^ len as u64
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
        let word = u64::from(first) | u64::from(middle) << 8 | u64::from(last) << 16;
        (word | (FOLD & 0xFF_FFFF), 0)
    } else {
        (0, 0)
    }
}

#[inline]
fn read8(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word) | FOLD
}

#[inline]
fn read4(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u64::from(u32::from_le_bytes(word)) | (FOLD & 0xFFFF_FFFF)
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

    fn hash(uri: &str) -> u64 {
        host_hash(7, &uri.parse().unwrap())
    }

    #[test]
    fn the_hash_is_of_the_scheme_and_the_authority() {
        assert_eq!(
            hash("http://a.example:80/x"),
            hash("http://a.example:80/y?z")
        );
        assert_ne!(hash("http://a.example:80/"), hash("https://a.example:80/"));
        assert_ne!(hash("http://a.example:80/"), hash("http://a.example:81/"));
        assert_ne!(hash("http://a.example/"), hash("http://b.example/"));
        assert_eq!(hash("/echo.Echo/Get"), hash("/other"));
        assert_ne!(hash("/echo.Echo/Get"), hash("http://a.example/"));
        assert_ne!(
            host_hash(7, &"http://a/".parse().unwrap()),
            host_hash(8, &"http://a/".parse().unwrap())
        );
    }

    #[test]
    fn names_that_differ_in_case_hash_alike() {
        for (a, b) in [
            ("http://A/", "http://a/"),
            ("http://Ab.c/", "http://aB.C/"),
            ("http://EXAMPLE.com:8080/", "http://example.COM:8080/"),
            ("HTTPS://www.Example.org/", "https://WWW.example.ORG/"),
            (
                "http://A-Long-Name.Of-A-Service.Example.com:443/",
                "http://a-long-name.of-a-service.example.COM:443/",
            ),
        ] {
            assert_eq!(hash(a), hash(b), "{a} and {b}");
        }
    }

    #[test]
    fn names_whose_bytes_and_lengths_differ_alike_hash_apart() {
        // Their last words differ by 1 ^ 2 = 3, and their lengths by 13 ^ 14 = 3.
        assert_ne!(
            hash("http://host-122.test/"),
            hash("http://host-1222.test/")
        );
        // The same two reads, of different lengths.
        assert_ne!(hash("http://aaaaaaaaa/"), hash("http://aaaaaaaaaa/"));
        assert_ne!(hash("http://aaaaa/"), hash("http://aaaaaa/"));
        assert_ne!(
            hash("http://aaaaaaaaaaaaaaaaa/"),
            hash("http://aaaaaaaaaaaaaaaaaa/")
        );
    }

    #[test]
    fn thousands_of_numbered_hosts_hash_apart() {
        let mut seen = std::collections::HashMap::new();
        for shape in [
            "http://host-{}.test/",
            "http://{}.example:8080/",
            "http://10.0.{}/",
        ] {
            for n in 0..20_000 {
                let uri = shape.replace("{}", &n.to_string());
                if let Some(earlier) = seen.insert(hash(&uri), uri.clone()) {
                    panic!("{earlier} and {uri} hash alike");
                }
            }
        }
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
            let base = hash(&format!("http://{name}/"));
            for at in 0..name.len() {
                let mut changed = name.as_bytes().to_vec();
                changed[at] = if changed[at] == b'x' { b'y' } else { b'x' };
                let changed = String::from_utf8(changed).unwrap();
                assert_ne!(hash(&format!("http://{changed}/")), base, "{name} at {at}");
            }
        }
    }
}
