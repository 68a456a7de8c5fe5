//! The head of a request kept for a retry, in memory of its own.
//!
//! hyper's server parses a request's header values, authority and path out of the buffer it
//! read the head into, and shares them with it: a clone of such a head holds the whole read
//! buffer (8 KiB or more) for as long as the clone lives, that is for the whole request when
//! [`ResetRetry`](crate::ResetRetry) keeps a copy for a retry. So the copy of a request whose
//! body is a [`ReplayBody`](super::ReplayBody) (the body of a proxied request) gets its header
//! values and URI copied into one buffer of their own, the size of what they hold.

use bytes::{BufMut, Bytes, BytesMut};
use http::header::HeaderValue;
use http::uri::{Authority, PathAndQuery, Uri};
use http::{HeaderMap, Request};

/// A copy of `request`'s head (method, URI, version, headers, extensions) around `body`, its
/// header values and URI in one buffer that shares nothing with `request`'s.
pub(crate) fn owned_copy<B, C>(request: &Request<B>, body: C) -> Request<C> {
    let headers = request.headers();
    let uri = request.uri();
    let authority = uri.authority().map_or("", Authority::as_str);
    let path = uri.path_and_query().map_or("", PathAndQuery::as_str);
    let values: usize = headers.values().map(HeaderValue::len).sum();
    let mut buffer = BytesMut::with_capacity(values + authority.len() + path.len());
    for value in headers.values() {
        buffer.put_slice(value.as_bytes());
    }
    buffer.put_slice(authority.as_bytes());
    buffer.put_slice(path.as_bytes());
    let mut buffer = buffer.freeze();

    let mut copy = Request::new(body);
    *copy.method_mut() = request.method().clone();
    *copy.version_mut() = request.version();
    *copy.extensions_mut() = request.extensions().clone();
    *copy.headers_mut() = copy_headers(headers, &mut buffer);
    *copy.uri_mut() = copy_uri(uri, buffer);
    copy
}

/// `headers`, each value cut from the front of `buffer` (which starts with them, in order).
fn copy_headers(headers: &HeaderMap, buffer: &mut Bytes) -> HeaderMap {
    let mut copy = HeaderMap::with_capacity(headers.keys_len());
    for (name, value) in headers {
        let bytes = buffer.split_to(value.len());
        // The bytes of a valid value are valid: the fallback (a shared clone) never runs.
        let mut owned = HeaderValue::from_maybe_shared(bytes).unwrap_or_else(|_| value.clone());
        owned.set_sensitive(value.is_sensitive());
        copy.append(name.clone(), owned);
    }
    copy
}

/// `uri`, its authority and path cut from `buffer` (which holds them, in order).
fn copy_uri(uri: &Uri, mut buffer: Bytes) -> Uri {
    let mut parts = http::uri::Parts::default();
    parts.scheme = uri.scheme().cloned();
    if let Some(authority) = uri.authority() {
        let bytes = buffer.split_to(authority.as_str().len());
        parts.authority =
            Some(Authority::from_maybe_shared(bytes).unwrap_or_else(|_| authority.clone()));
    }
    if let Some(path) = uri.path_and_query() {
        parts.path_and_query =
            Some(PathAndQuery::from_maybe_shared(buffer).unwrap_or_else(|_| path.clone()));
    }
    Uri::from_parts(parts).unwrap_or_else(|_| uri.clone())
}
