//! Range requests (RFC 9110 §14): a [`Reply`] that serves its body as a resource answers
//! `Range: bytes=…` with `206 Partial Content`, `416 Range Not Satisfiable`, or the whole body
//! when `If-Range` names another version.

use std::borrow::Cow;

use http::header::{ACCEPT_RANGES, CONTENT_RANGE, ETAG, IF_RANGE, LAST_MODIFIED, RANGE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use super::fault::Reply;

/// One range of a `Range: bytes=…` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spec {
    /// `first-` or `first-last`.
    From { first: u64, last: Option<u64> },
    /// `-length`: the last `length` bytes.
    Suffix(u64),
}

/// The single range of a `Range` header; `None` for anything else (other units, several
/// ranges, bad syntax), which a server may ignore.
fn parse(headers: &HeaderMap) -> Option<Spec> {
    let mut values = headers.get_all(RANGE).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let spec = value.to_str().ok()?.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let number = |text: &str| -> Option<u64> {
        (!text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()))
            .then(|| text.parse().ok())?
    };
    if first.is_empty() {
        return Some(Spec::Suffix(number(last)?));
    }
    let first = number(first)?;
    let last = if last.is_empty() {
        None
    } else {
        Some(number(last)?)
    };
    if last.is_some_and(|last| last < first) {
        return None;
    }
    Some(Spec::From { first, last })
}

/// Whether `If-Range` (absent: yes) names the reply's current version: an entity tag by strong
/// comparison, or a date by exact match with `Last-Modified` (RFC 9110 §13.1.5).
fn if_range_holds(reply: &Reply, headers: &HeaderMap) -> bool {
    let Some(condition) = headers.get(IF_RANGE) else {
        return true;
    };
    let bytes = condition.as_bytes();
    let current = |name| reply.headers.iter().find(|(header, _)| *header == name);
    if bytes.starts_with(b"\"") || bytes.starts_with(b"W/") {
        let strong = !bytes.starts_with(b"W/");
        return strong
            && current(ETAG)
                .is_some_and(|(_, tag)| !tag.as_bytes().starts_with(b"W/") && tag == condition);
    }
    current(LAST_MODIFIED).is_some_and(|(_, date)| date == condition)
}

impl Reply {
    /// This reply as the answer to a request with `method` and `headers`: itself, or, for a
    /// reply that serves ranges (see [`Reply::ranges`]), a `206`, a `416`, or itself when the
    /// request asks for no range, for several, or names another version in `If-Range`.
    pub(crate) fn for_request(&self, method: &Method, headers: &HeaderMap) -> Cow<'_, Reply> {
        if !self.ranges || self.status != StatusCode::OK {
            return Cow::Borrowed(self);
        }
        let mut reply = self.clone();
        reply
            .headers
            .push((ACCEPT_RANGES, HeaderValue::from_static("bytes")));
        if *method != Method::GET {
            return Cow::Owned(reply);
        }
        let Some(spec) = parse(headers) else {
            return Cow::Owned(reply);
        };
        if !if_range_holds(self, headers) {
            return Cow::Owned(reply);
        }
        let len = self.body.len() as u64;
        let range = match spec {
            Spec::From { first, last } if first < len => {
                Some((first, last.map_or(len - 1, |last| last.min(len - 1))))
            }
            Spec::Suffix(suffix) if suffix > 0 && len > 0 => Some((len - suffix.min(len), len - 1)),
            _ => None,
        };
        match range {
            Some((first, last)) => {
                reply.status = StatusCode::PARTIAL_CONTENT;
                reply.body = self.body.slice(first as usize..=last as usize);
                reply.headers.push((
                    CONTENT_RANGE,
                    HeaderValue::from_str(&format!("bytes {first}-{last}/{len}"))
                        .expect("digits make a valid header value"),
                ));
            }
            None => {
                reply.status = StatusCode::RANGE_NOT_SATISFIABLE;
                reply.body = bytes::Bytes::new();
                reply.headers.push((
                    CONTENT_RANGE,
                    HeaderValue::from_str(&format!("bytes */{len}"))
                        .expect("digits make a valid header value"),
                ));
            }
        }
        Cow::Owned(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pairs: &[(http::HeaderName, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (name.clone(), HeaderValue::from_static(value)))
            .collect()
    }

    fn resource() -> Reply {
        Reply::ok()
            .body("0123456789")
            .header(ETAG, HeaderValue::from_static("\"v1\""))
            .ranges()
    }

    fn answer(
        headers: &[(http::HeaderName, &'static str)],
    ) -> (StatusCode, String, Option<String>) {
        let reply = resource();
        let answer = reply.for_request(&Method::GET, &request(headers));
        let range = answer
            .headers
            .iter()
            .find(|(name, _)| name == CONTENT_RANGE)
            .map(|(_, value)| value.to_str().unwrap().to_owned());
        (
            answer.status,
            String::from_utf8(answer.body.to_vec()).unwrap(),
            range,
        )
    }

    #[test]
    fn ranges_are_served() {
        assert_eq!(
            answer(&[(RANGE, "bytes=3-")]),
            (
                StatusCode::PARTIAL_CONTENT,
                "3456789".into(),
                Some("bytes 3-9/10".into())
            )
        );
        assert_eq!(
            answer(&[(RANGE, "bytes=2-4")]),
            (
                StatusCode::PARTIAL_CONTENT,
                "234".into(),
                Some("bytes 2-4/10".into())
            )
        );
        assert_eq!(
            answer(&[(RANGE, "bytes=8-100")]),
            (
                StatusCode::PARTIAL_CONTENT,
                "89".into(),
                Some("bytes 8-9/10".into())
            )
        );
        assert_eq!(
            answer(&[(RANGE, "bytes=-3")]),
            (
                StatusCode::PARTIAL_CONTENT,
                "789".into(),
                Some("bytes 7-9/10".into())
            )
        );
        assert_eq!(
            answer(&[(RANGE, "bytes=10-")]),
            (
                StatusCode::RANGE_NOT_SATISFIABLE,
                String::new(),
                Some("bytes */10".into())
            )
        );
    }

    #[test]
    fn other_requests_get_the_whole_body() {
        let whole = (StatusCode::OK, "0123456789".to_owned(), None);
        assert_eq!(answer(&[]), whole);
        assert_eq!(answer(&[(RANGE, "bytes=0-1,4-5")]), whole);
        assert_eq!(answer(&[(RANGE, "items=0-1")]), whole);
        assert_eq!(answer(&[(RANGE, "bytes=5-2")]), whole);
        assert_eq!(answer(&[(RANGE, "bytes=3-"), (IF_RANGE, "\"v0\"")]), whole);
        assert_eq!(
            answer(&[(RANGE, "bytes=3-"), (IF_RANGE, "W/\"v1\"")]),
            whole
        );
        assert_eq!(
            answer(&[(RANGE, "bytes=3-"), (IF_RANGE, "\"v1\"")]).0,
            StatusCode::PARTIAL_CONTENT
        );
    }

    #[test]
    fn a_date_must_match_exactly() {
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        let reply = Reply::ok()
            .body("0123456789")
            .header(LAST_MODIFIED, HeaderValue::from_static(date))
            .ranges();
        let headers = request(&[(RANGE, "bytes=3-"), (IF_RANGE, date)]);
        assert_eq!(
            reply.for_request(&Method::GET, &headers).status,
            StatusCode::PARTIAL_CONTENT
        );
        let headers = request(&[
            (RANGE, "bytes=3-"),
            (IF_RANGE, "Sun, 06 Nov 1994 08:49:38 GMT"),
        ]);
        assert_eq!(
            reply.for_request(&Method::GET, &headers).status,
            StatusCode::OK
        );
    }

    #[test]
    fn a_reply_without_ranges_ignores_them() {
        let reply = Reply::ok().body("0123456789");
        let headers = request(&[(RANGE, "bytes=3-")]);
        let answer = reply.for_request(&Method::GET, &headers);
        assert!(matches!(answer, Cow::Borrowed(_)));
        assert_eq!(answer.status, StatusCode::OK);
    }
}
