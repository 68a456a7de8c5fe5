//! Walking an error's chain in tests, to find the io error of a reset under the client's own
//! error types.

// Shared by several test binaries, each of which uses only a part.
#![allow(dead_code)]

use std::error::Error;
use std::io;

/// The links of `err`'s chain, outermost first: `source()`, except that an `io::Error` is
/// followed into the error it wraps (`get_ref()`), which its `source()` skips. At most 64
/// links, so that a cyclic chain stays finite.
pub(crate) fn chain<'a>(err: &'a (dyn Error + 'static)) -> Vec<&'a (dyn Error + 'static)> {
    std::iter::successors(Some(err), |&e| match e.downcast_ref::<io::Error>() {
        Some(io) => io.get_ref().map(|inner| inner as &(dyn Error + 'static)),
        None => e.source(),
    })
    .take(64)
    .collect()
}

/// The kinds of the `io::Error`s in `err`'s chain, including the one inside an `h2::Error`
/// (which has no `source()`: its own accessor reaches it).
pub(crate) fn io_kinds(err: &(dyn Error + 'static)) -> Vec<io::ErrorKind> {
    chain(err)
        .into_iter()
        .filter_map(|e| {
            e.downcast_ref::<io::Error>()
                .or_else(|| e.downcast_ref::<h2::Error>().and_then(h2::Error::get_io))
        })
        .map(io::Error::kind)
        .collect()
}
