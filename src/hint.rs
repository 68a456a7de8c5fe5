//! Server hints: how long the server asked the client to wait before trying again.
//!
//! Two headers carry such a hint: HTTP's `Retry-After` (RFC 9110 §10.2.3), as delta-seconds or
//! as an HTTP-date, and gRPC's `grpc-retry-pushback-ms` (gRFC A6), in milliseconds, where a
//! negative value (or any value that is not a number) means "do not retry". Both come from
//! servers this crate does not control, so parsing is total: a malformed value is ignored, a huge
//! one saturates, a date in the past means "now", and nothing can panic or overflow.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;

/// What a server said about retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerHint {
    /// Wait at least this long before the next attempt.
    RetryAfter(Duration),
    /// Do not retry (gRPC pushback that is negative or not a number).
    DoNotRetry,
}

/// The longest wait a hint can express here: values above it saturate to it. Far above any cap
/// a client would accept, so a saturated hint is always "too long".
const MAX_HINT: Duration = Duration::from_secs(365 * 24 * 60 * 60);

impl ServerHint {
    /// Reads the hint in a response's headers, if any: `grpc-retry-pushback-ms` first (it is
    /// the more specific), then `Retry-After`. `now` is the wall-clock time to measure an
    /// HTTP-date against.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use http::HeaderMap;
    /// use tower_reset::hint::ServerHint;
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.insert("retry-after", "3".parse().unwrap());
    /// assert_eq!(
    ///     ServerHint::from_headers(&headers, SystemTime::now()),
    ///     Some(ServerHint::RetryAfter(Duration::from_secs(3)))
    /// );
    ///
    /// headers.insert("retry-after", "soon, I promise".parse().unwrap());
    /// assert_eq!(ServerHint::from_headers(&headers, SystemTime::now()), None);
    /// ```
    pub fn from_headers(headers: &HeaderMap, now: SystemTime) -> Option<Self> {
        if let Some(value) = headers.get("grpc-retry-pushback-ms") {
            return Some(parse_pushback(value.as_bytes()));
        }
        let value = headers.get(http::header::RETRY_AFTER)?;
        parse_retry_after(value.as_bytes(), now).map(ServerHint::RetryAfter)
    }
}

/// gRFC A6: "a non-negative integer: wait that many ms; anything else: do not retry".
fn parse_pushback(value: &[u8]) -> ServerHint {
    let value = trim(value);
    match parse_digits(value) {
        Some(ms) => ServerHint::RetryAfter(Duration::from_millis(ms).min(MAX_HINT)),
        None => ServerHint::DoNotRetry,
    }
}

/// `Retry-After: <delay-seconds>` or `Retry-After: <HTTP-date>`; `None` when malformed.
fn parse_retry_after(value: &[u8], now: SystemTime) -> Option<Duration> {
    let value = trim(value);
    if let Some(seconds) = parse_digits(value) {
        return Some(Duration::from_secs(seconds).min(MAX_HINT));
    }
    let date = parse_http_date(value)?;
    let at = UNIX_EPOCH.checked_add(Duration::from_secs(date))?;
    // A date in the past means "you may retry now".
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_HINT),
    )
}

pub(crate) fn trim(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &value[start..end]
}

/// A non-empty run of ASCII digits, saturating at `u64::MAX`.
pub(crate) fn parse_digits(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// Seconds since the Unix epoch of an HTTP-date in any of the three formats RFC 9110 §5.6.7
/// requires recipients to accept:
///
/// * IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`
/// * RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT`
/// * asctime: `Sun Nov  6 08:49:37 1994`
pub(crate) fn parse_http_date(value: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(value).ok()?;
    let (day, month, year, time) = if let Some((_, rest)) = text.split_once(", ") {
        if rest.len() == 24 && rest.as_bytes()[2] == b' ' {
            // IMF-fixdate: "06 Nov 1994 08:49:37 GMT"
            let mut parts = rest.split(' ');
            let day = parts.next()?;
            let month = parts.next()?;
            let year = parts.next()?;
            let time = parts.next()?;
            (parts.next()? == "GMT" && parts.next().is_none()).then_some(())?;
            (day, month, year.parse::<u64>().ok()?, time)
        } else {
            // RFC 850: "06-Nov-94 08:49:37 GMT"
            let (date, rest) = rest.split_once(' ')?;
            let (time, zone) = rest.split_once(' ')?;
            (zone == "GMT").then_some(())?;
            let mut parts = date.split('-');
            let day = parts.next()?;
            let month = parts.next()?;
            let year = parts.next()?;
            parts.next().is_none().then_some(())?;
            (year.len() == 2).then_some(())?;
            let year: u64 = year.parse().ok()?;
            // RFC 9110: a two-digit year more than 50 years in the future is in the past century.
            let year = if year < 70 { 2000 + year } else { 1900 + year };
            (day, month, year, time)
        }
    } else {
        // asctime: "Sun Nov  6 08:49:37 1994"
        let mut parts = text.split_ascii_whitespace();
        let _weekday = parts.next()?;
        let month = parts.next()?;
        let day = parts.next()?;
        let time = parts.next()?;
        let year = parts.next()?;
        parts.next().is_none().then_some(())?;
        (day, month, year.parse::<u64>().ok()?, time)
    };

    let day: u64 = (day.len() <= 2).then(|| day.parse().ok())??;
    let month = month_number(month)?;
    let (hour, minute, second) = parse_time(time)?;
    if !(1..=days_in_month(year, month)).contains(&day) || !(1900..=9999).contains(&year) {
        return None;
    }
    let days = days_since_epoch(year, month, day)?;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

fn parse_time(time: &str) -> Option<(u64, u64, u64)> {
    let bytes = time.as_bytes();
    if bytes.len() != 8 || bytes[2] != b':' || bytes[5] != b':' {
        return None;
    }
    let field = |range: std::ops::Range<usize>| parse_digits(&bytes[range]);
    let (hour, minute, second) = (field(0..2)?, field(3..5)?, field(6..8)?);
    // 60 allows a leap second.
    (hour < 24 && minute < 60 && second <= 60).then_some((hour, minute, second))
}

fn month_number(month: &str) -> Option<u64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    MONTHS
        .iter()
        .position(|m| *m == month)
        .map(|i| i as u64 + 1)
}

fn is_leap(year: u64) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given date; `None` before the epoch.
fn days_since_epoch(year: u64, month: u64, day: u64) -> Option<u64> {
    let years = year.checked_sub(1970)?;
    let leap_days = (1970..year).filter(|&y| is_leap(y)).count() as u64;
    let month_days: u64 = (1..month).map(|m| days_in_month(year, m)).sum();
    Some(years * 365 + leap_days + month_days + day - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1994-11-06 08:49:37 UTC, the example of RFC 9110.
    const RFC_EXAMPLE: u64 = 784_111_777;

    #[test]
    fn all_three_date_formats_parse() {
        assert_eq!(
            parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(RFC_EXAMPLE)
        );
        assert_eq!(
            parse_http_date(b"Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(RFC_EXAMPLE)
        );
        assert_eq!(
            parse_http_date(b"Sun Nov  6 08:49:37 1994"),
            Some(RFC_EXAMPLE)
        );
    }

    #[test]
    fn leap_years_and_the_epoch() {
        assert_eq!(parse_http_date(b"Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date(b"Tue, 29 Feb 2000 00:00:00 GMT"),
            Some(951_782_400)
        );
        assert_eq!(parse_http_date(b"Thu, 29 Feb 2001 00:00:00 GMT"), None);
        assert_eq!(
            parse_http_date(b"Sat, 01 Jan 2000 00:00:00 GMT"),
            Some(946_684_800)
        );
    }

    #[test]
    fn malformed_dates_are_rejected() {
        for bad in [
            &b""[..],
            b"yesterday",
            b"Sun, 06 Nov 1994 08:49:37 PST",
            b"Sun, 32 Nov 1994 08:49:37 GMT",
            b"Sun, 06 Foo 1994 08:49:37 GMT",
            b"Sun, 06 Nov 1994 25:49:37 GMT",
            b"Sun, 06 Nov 1994 08:49 GMT",
            b"Sun, 06 Nov 99999999999999999999 08:49:37 GMT",
            b"Sun, 06 Nov 1969 08:49:37 GMT",
            b"Sun, 06 Nov 1994 08:49:37 GMT trailing",
            b"Sun, \xff\xfe",
        ] {
            assert_eq!(
                parse_http_date(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
