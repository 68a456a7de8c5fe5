//! The RFC 9110 rules: which responses can be resumed, the range request that resumes one, and
//! whether its answer continues the same bytes.
//!
//! Everything here reads headers and nothing else, so that it can be checked on its own.

use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, DATE, ETAG, LAST_MODIFIED};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use super::history::NoResume;
use crate::hint::{parse_digits, parse_http_date, trim, unix_seconds};

/// A validator usable with `If-Range`: the value to send, and the header it came from.
#[derive(Debug, Clone)]
struct Validator {
    header: HeaderName,
    value: HeaderValue,
}

impl Validator {
    /// The response's validator for `If-Range` (RFC 9110 §13.1.5): a strong entity tag, or,
    /// when the response has no entity tag at all, a `Last-Modified` date that is strong in the
    /// sense of §8.8.2.2: at least one second before the response's `Date`.
    fn of(headers: &HeaderMap) -> Result<Self, NoResume> {
        if let Some(etag) = single(headers, &ETAG)? {
            // A weak tag cannot be compared strongly, and its presence forbids the date.
            return if is_strong_etag(etag.as_bytes()) {
                Ok(Self {
                    header: ETAG,
                    value: etag.clone(),
                })
            } else {
                Err(NoResume::NoValidator)
            };
        }
        let (Some(modified), Some(date)) =
            (single(headers, &LAST_MODIFIED)?, single(headers, &DATE)?)
        else {
            return Err(NoResume::NoValidator);
        };
        // Two-digit years (RFC 850 dates) are read relative to the present.
        let now = unix_seconds(std::time::SystemTime::now());
        match (
            parse_http_date(modified.as_bytes(), now),
            parse_http_date(date.as_bytes(), now),
        ) {
            (Some(modified_at), Some(date_at)) if date_at > modified_at => Ok(Self {
                header: LAST_MODIFIED,
                value: modified.clone(),
            }),
            _ => Err(NoResume::NoValidator),
        }
    }

    /// Whether an answer carries the same validator, in the same header: byte for byte, which
    /// is the strong comparison for an entity tag and the exact match §13.1.5 asks of a date.
    fn matches(&self, headers: &HeaderMap) -> bool {
        let mut values = headers.get_all(&self.header).iter();
        values.next() == Some(&self.value) && values.next().is_none()
    }
}

/// Whether `tag` is a strong entity tag: `"` *etagc `"` (RFC 9110 §8.8.3), no `W/` in front.
fn is_strong_etag(tag: &[u8]) -> bool {
    tag.len() >= 2
        && tag[0] == b'"'
        && tag[tag.len() - 1] == b'"'
        && tag[1..tag.len() - 1]
            .iter()
            .all(|&byte| byte == 0x21 || (0x23..=0x7e).contains(&byte) || byte >= 0x80)
}

/// The only value of `name`, if there is one; more than one field line is not understood.
fn single<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> Result<Option<&'a HeaderValue>, NoResume> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(if *name == CONTENT_ENCODING || *name == CONTENT_RANGE {
            NoResume::Unsupported
        } else {
            NoResume::NoValidator
        });
    }
    Ok(first)
}

/// `Content-Range: bytes first-last/complete` (or `/*`): the first and last offsets and the
/// complete length, if known. `None` for anything else (another unit, `bytes */n`, a range that
/// does not fit in its complete length).
fn content_range(value: &HeaderValue) -> Option<(u64, u64, Option<u64>)> {
    let value = trim(value.as_bytes());
    let rest = value.strip_prefix(b"bytes ")?;
    let slash = rest.iter().position(|&byte| byte == b'/')?;
    let (range, complete) = (&rest[..slash], &rest[slash + 1..]);
    let dash = range.iter().position(|&byte| byte == b'-')?;
    let first = parse_digits(&range[..dash])?;
    let last = parse_digits(&range[dash + 1..])?;
    let complete = match complete {
        b"*" => None,
        digits => Some(parse_digits(digits)?),
    };
    let fits = first <= last && complete.is_none_or(|complete| last < complete);
    fits.then_some((first, last, complete))
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    let mut values = headers.get_all(CONTENT_LENGTH).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    parse_digits(trim(first.as_bytes()))
}

/// What to do with the answer to a resume request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Continue {
    /// A `206` that starts where the body stopped: its bytes follow on.
    Partial,
    /// A `200` with the same validator: the server ignores ranges; skip this many bytes.
    Skip(u64),
}

/// A resumable body, as its response head described it, and how far it got.
#[derive(Debug, Clone)]
pub(super) struct Representation {
    validator: Validator,
    /// The `Content-Encoding` of the response, whose bytes the offsets count.
    encoding: Option<HeaderValue>,
    /// The offset in the representation of the next byte the caller gets.
    pub(super) next: u64,
    /// One past the offset of the body's last byte, when known.
    end: Option<u64>,
    /// The representation's complete length, when known.
    complete: Option<u64>,
    /// Whether the body is a range (the response was a `206`).
    partial: bool,
}

impl Representation {
    /// The representation a response delivers, if the body can be resumed.
    pub(super) fn of(status: StatusCode, headers: &HeaderMap) -> Result<Self, NoResume> {
        let (next, end, complete, partial) = match status {
            StatusCode::OK => {
                let complete = content_length(headers);
                (0, complete, complete, false)
            }
            StatusCode::PARTIAL_CONTENT => {
                let range = single(headers, &CONTENT_RANGE)?.ok_or(NoResume::Unsupported)?;
                let (first, last, complete) = content_range(range).ok_or(NoResume::Unsupported)?;
                (first, Some(last + 1), complete, true)
            }
            _ => return Err(NoResume::Status),
        };
        let validator = Validator::of(headers)?;
        let encoding = single(headers, &CONTENT_ENCODING)?.cloned();
        Ok(Self {
            validator,
            encoding,
            next,
            end,
            complete,
            partial,
        })
    }

    /// Whether every byte of the body has been delivered.
    pub(super) fn is_complete(&self) -> bool {
        self.end.is_some_and(|end| self.next >= end)
    }

    /// Bytes left to deliver, when known.
    pub(super) fn remaining(&self) -> Option<u64> {
        self.end.map(|end| end.saturating_sub(self.next))
    }

    /// The `Range` of the resume request: from the next byte to the end of the range the caller
    /// asked for, or to the end of the representation.
    pub(super) fn range(&self) -> HeaderValue {
        let range = match self.end {
            Some(end) if self.partial => format!("bytes={}-{}", self.next, end - 1),
            _ => format!("bytes={}-", self.next),
        };
        HeaderValue::from_str(&range).expect("digits and ASCII make a valid header value")
    }

    /// The `If-Range` of the resume request.
    pub(super) fn if_range(&self) -> HeaderValue {
        self.validator.value.clone()
    }

    /// Whether the answer to a resume request continues this body, and how; learns the complete
    /// length from a `206` when the first response did not give it.
    pub(super) fn check(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
        max_skip: u64,
    ) -> Result<Continue, NoResume> {
        if status != StatusCode::PARTIAL_CONTENT && status != StatusCode::OK {
            return Err(NoResume::AnswerStatus);
        }
        if !self.validator.matches(headers) {
            return Err(NoResume::Changed);
        }
        let mut encodings = headers.get_all(CONTENT_ENCODING).iter();
        if encodings.next() != self.encoding.as_ref() || encodings.next().is_some() {
            return Err(NoResume::EncodingChanged);
        }
        if status == StatusCode::OK {
            if self.partial {
                return Err(NoResume::RangeIgnored);
            }
            if let (Some(complete), Some(length)) = (self.complete, content_length(headers)) {
                if complete != length {
                    return Err(NoResume::Changed);
                }
            }
            if self.next > max_skip {
                return Err(NoResume::SkipTooLarge);
            }
            return Ok(Continue::Skip(self.next));
        }
        let range = match single(headers, &CONTENT_RANGE) {
            Ok(Some(range)) => range,
            _ => return Err(NoResume::RangeMismatch),
        };
        let Some((first, last, complete)) = content_range(range) else {
            return Err(NoResume::RangeMismatch);
        };
        let fits_start = first == self.next;
        let fits_complete = self.complete.is_none() || complete == self.complete;
        // Without a known end, the answer must run to the end of a known complete length:
        // anything shorter could end the body early without anyone noticing.
        let end = self.end.or(complete);
        let fits_end = end == Some(last + 1);
        if !(fits_start && fits_complete && fits_end) {
            return Err(NoResume::RangeMismatch);
        }
        self.end = end;
        self.complete = self.complete.or(complete);
        Ok(Continue::Partial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                )
            })
            .collect()
    }

    #[test]
    fn strong_and_weak_entity_tags() {
        assert!(is_strong_etag(b"\"v1\""));
        assert!(is_strong_etag(b"\"\""));
        assert!(!is_strong_etag(b"W/\"v1\""));
        assert!(!is_strong_etag(b"v1"));
        assert!(!is_strong_etag(b"\"a\"b\""));
        assert!(!is_strong_etag(b"\""));
    }

    #[test]
    fn content_ranges() {
        let range = |value| content_range(&HeaderValue::from_static(value));
        assert_eq!(range("bytes 0-9/10"), Some((0, 9, Some(10))));
        assert_eq!(range("bytes 5-9/*"), Some((5, 9, None)));
        assert_eq!(range("bytes 5-10/10"), None);
        assert_eq!(range("bytes 9-5/10"), None);
        assert_eq!(range("bytes */10"), None);
        assert_eq!(range("items 0-9/10"), None);
        assert_eq!(range("bytes 0-9/ten"), None);
    }

    #[test]
    fn a_weak_tag_forbids_the_date() {
        let map = headers(&[
            ("etag", "W/\"v1\""),
            ("last-modified", "Sun, 06 Nov 1994 08:49:37 GMT"),
            ("date", "Sun, 06 Nov 1994 09:00:00 GMT"),
        ]);
        assert_eq!(
            Representation::of(StatusCode::OK, &map).unwrap_err(),
            NoResume::NoValidator
        );
    }

    #[test]
    fn a_date_is_strong_only_a_second_before_the_response() {
        let strong = headers(&[
            ("last-modified", "Sun, 06 Nov 1994 08:49:37 GMT"),
            ("date", "Sun, 06 Nov 1994 08:49:38 GMT"),
        ]);
        assert!(Representation::of(StatusCode::OK, &strong).is_ok());
        let same_second = headers(&[
            ("last-modified", "Sun, 06 Nov 1994 08:49:37 GMT"),
            ("date", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ]);
        assert_eq!(
            Representation::of(StatusCode::OK, &same_second).unwrap_err(),
            NoResume::NoValidator
        );
        let no_date = headers(&[("last-modified", "Sun, 06 Nov 1994 08:49:37 GMT")]);
        assert_eq!(
            Representation::of(StatusCode::OK, &no_date).unwrap_err(),
            NoResume::NoValidator
        );
    }

    #[test]
    fn the_resume_range_keeps_the_end_of_a_range() {
        let map = headers(&[("etag", "\"v1\""), ("content-range", "bytes 100-199/1000")]);
        let mut body = Representation::of(StatusCode::PARTIAL_CONTENT, &map).unwrap();
        assert_eq!(body.next, 100);
        body.next += 40;
        assert_eq!(body.range(), "bytes=140-199");
        assert_eq!(body.remaining(), Some(60));

        let map = headers(&[("etag", "\"v1\""), ("content-length", "1000")]);
        let mut body = Representation::of(StatusCode::OK, &map).unwrap();
        body.next = 400;
        assert_eq!(body.range(), "bytes=400-");
        assert_eq!(body.if_range(), "\"v1\"");
    }

    #[test]
    fn answers_are_checked() {
        let first = headers(&[("etag", "\"v1\""), ("content-length", "1000")]);
        let resumable = || {
            let mut body = Representation::of(StatusCode::OK, &first).unwrap();
            body.next = 400;
            body
        };
        let partial = StatusCode::PARTIAL_CONTENT;
        let fits = headers(&[("etag", "\"v1\""), ("content-range", "bytes 400-999/1000")]);
        assert_eq!(resumable().check(partial, &fits, 0), Ok(Continue::Partial));

        type Case = (
            StatusCode,
            &'static [(&'static str, &'static str)],
            NoResume,
        );
        let cases: [Case; 7] = [
            (
                partial,
                &[("etag", "\"v2\""), ("content-range", "bytes 400-999/1000")],
                NoResume::Changed,
            ),
            (
                partial,
                &[("content-range", "bytes 400-999/1000")],
                NoResume::Changed,
            ),
            (
                partial,
                &[("etag", "\"v1\""), ("content-range", "bytes 300-999/1000")],
                NoResume::RangeMismatch,
            ),
            (
                partial,
                &[("etag", "\"v1\""), ("content-range", "bytes 400-999/2000")],
                NoResume::RangeMismatch,
            ),
            (
                partial,
                &[
                    ("etag", "\"v1\""),
                    ("content-range", "bytes 400-999/1000"),
                    ("content-encoding", "gzip"),
                ],
                NoResume::EncodingChanged,
            ),
            (
                StatusCode::RANGE_NOT_SATISFIABLE,
                &[("etag", "\"v1\""), ("content-range", "bytes */1000")],
                NoResume::AnswerStatus,
            ),
            (
                StatusCode::OK,
                &[("etag", "\"v1\""), ("content-length", "1200")],
                NoResume::Changed,
            ),
        ];
        for (status, pairs, why) in cases {
            let map: HeaderMap = pairs
                .iter()
                .map(|(name, value)| {
                    (
                        HeaderName::from_bytes(name.as_bytes()).unwrap(),
                        HeaderValue::from_str(value).unwrap(),
                    )
                })
                .collect();
            assert_eq!(
                resumable().check(status, &map, u64::MAX),
                Err(why),
                "{pairs:?}"
            );
        }

        let full = headers(&[("etag", "\"v1\""), ("content-length", "1000")]);
        assert_eq!(
            resumable().check(StatusCode::OK, &full, 400),
            Ok(Continue::Skip(400))
        );
        assert_eq!(
            resumable().check(StatusCode::OK, &full, 399),
            Err(NoResume::SkipTooLarge)
        );
    }

    #[test]
    fn an_unknown_length_is_learned_from_a_complete_range() {
        let first = headers(&[("etag", "\"v1\"")]);
        let mut body = Representation::of(StatusCode::OK, &first).unwrap();
        body.next = 10;
        let open = headers(&[("etag", "\"v1\""), ("content-range", "bytes 10-19/*")]);
        assert_eq!(
            body.clone().check(StatusCode::PARTIAL_CONTENT, &open, 0),
            Err(NoResume::RangeMismatch)
        );
        let short = headers(&[("etag", "\"v1\""), ("content-range", "bytes 10-19/100")]);
        assert_eq!(
            body.clone().check(StatusCode::PARTIAL_CONTENT, &short, 0),
            Err(NoResume::RangeMismatch)
        );
        let whole = headers(&[("etag", "\"v1\""), ("content-range", "bytes 10-99/100")]);
        assert_eq!(
            body.check(StatusCode::PARTIAL_CONTENT, &whole, 0),
            Ok(Continue::Partial)
        );
        assert_eq!(body.remaining(), Some(90));
    }
}
