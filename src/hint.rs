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
///
/// # Examples
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use tower_reset::hint::ServerHint;
///
/// let response = http::Response::builder()
///     .status(503)
///     .header("grpc-retry-pushback-ms", "250")
///     .body(())
///     .unwrap();
/// match ServerHint::from_headers(response.headers(), SystemTime::now()) {
///     Some(ServerHint::RetryAfter(wait)) => assert_eq!(wait, Duration::from_millis(250)),
///     other => panic!("{other:?}"),
/// }
/// ```
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
    let date = parse_http_date(value, unix_seconds(now))?;
    let at = if date >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(date.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(date.unsigned_abs()))
    };
    let Some(at) = at else {
        // A date the platform's clock cannot even hold: far in the past, or far in the future.
        return Some(if date < 0 { Duration::ZERO } else { MAX_HINT });
    };
    // A date in the past means "you may retry now".
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_HINT),
    )
}

/// Whole seconds from the Unix epoch to `time`, negative before it (rounded towards the epoch).
pub(crate) fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
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

/// Seconds since the Unix epoch (negative before it) of an HTTP-date in any of the three formats
/// RFC 9110 §5.6.7 requires recipients to accept; `now` (seconds since the epoch) places the
/// two-digit year of the RFC 850 format:
///
/// * IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`
/// * RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT`
/// * asctime: `Sun Nov  6 08:49:37 1994`
pub(crate) fn parse_http_date(value: &[u8], now: i64) -> Option<i64> {
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
            (day, month, Year::Full(year), time)
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
            (day, month, Year::TwoDigit(year), time)
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
        (day, month, Year::Full(year), time)
    };

    let day = (day.len() <= 2).then(|| parse_digits(day.as_bytes()))?? as i64;
    let month = month_number(month)?;
    let (hour, minute, second) = parse_time(time)?;
    let year = match year {
        Year::Full(year) => (year.len() == 4).then(|| parse_digits(year.as_bytes()))?? as i64,
        Year::TwoDigit(year) => {
            let last_two = (year.len() == 2).then(|| parse_digits(year.as_bytes()))?? as i64;
            full_year(last_two, (month, day, hour, minute, second), now)
        }
    };
    if !(1..=days_in_month(year, month)).contains(&day) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// The year of a date, as written.
enum Year<'a> {
    /// Four digits (IMF-fixdate, asctime).
    Full(&'a str),
    /// Two digits (RFC 850).
    TwoDigit(&'a str),
}

/// The year ending in `last_two` digits for a date on `rest` = (month, day, hour, minute,
/// second) of it, seen at `now`: RFC 9110 §5.6.7 reads a two-digit year that appears to be more
/// than 50 years in the future as the most recent year in the past with the same last two
/// digits.
fn full_year(last_two: i64, rest: (i64, i64, i64, i64, i64), now: i64) -> i64 {
    let (days, second_of_day) = (now.div_euclid(86_400), now.rem_euclid(86_400));
    let (this_year, this_month, this_day) = civil_from_days(days);
    let horizon = (
        this_year + 50,
        this_month,
        this_day,
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60,
    );
    let (month, day, hour, minute, second) = rest;
    // The latest year with these digits that is not more than 50 years ahead.
    let mut year = this_year - this_year.rem_euclid(100) + 100 + last_two;
    while (year, month, day, hour, minute, second) > horizon {
        year -= 100;
    }
    year
}
fn parse_time(time: &str) -> Option<(i64, i64, i64)> {
    let bytes = time.as_bytes();
    if bytes.len() != 8 || bytes[2] != b':' || bytes[5] != b':' {
        return None;
    }
    let field = |range: std::ops::Range<usize>| parse_digits(&bytes[range]).map(|n| n as i64);
    let (hour, minute, second) = (field(0..2)?, field(3..5)?, field(6..8)?);
    // 60 allows a leap second.
    (hour < 24 && minute < 60 && second <= 60).then_some((hour, minute, second))
}

fn month_number(month: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    MONTHS
        .iter()
        .position(|m| *m == month)
        .map(|i| i as i64 + 1)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar, negative before it
/// (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date `days` after 1970-01-01, as (year, month, day); the inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1994-11-06 08:49:37 UTC, the example of RFC 9110.
    const RFC_EXAMPLE: i64 = 784_111_777;
    /// 2026-01-01 00:00:00 UTC, a fixed "now".
    const NEW_YEAR_2026: i64 = 1_767_225_600;

    fn parse(value: &[u8]) -> Option<i64> {
        parse_http_date(value, NEW_YEAR_2026)
    }

    #[test]
    fn all_three_date_formats_parse() {
        assert_eq!(parse(b"Sun, 06 Nov 1994 08:49:37 GMT"), Some(RFC_EXAMPLE));
        assert_eq!(parse(b"Sunday, 06-Nov-94 08:49:37 GMT"), Some(RFC_EXAMPLE));
        assert_eq!(parse(b"Sun Nov  6 08:49:37 1994"), Some(RFC_EXAMPLE));
    }

    #[test]
    fn leap_years_and_the_epoch() {
        assert_eq!(parse(b"Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse(b"Tue, 29 Feb 2000 00:00:00 GMT"), Some(951_782_400));
        assert_eq!(parse(b"Thu, 29 Feb 2001 00:00:00 GMT"), None);
        assert_eq!(parse(b"Sat, 01 Jan 2000 00:00:00 GMT"), Some(946_684_800));
        assert_eq!(parse(b"Thu, 01 Jan 2026 00:00:00 GMT"), Some(NEW_YEAR_2026));
    }

    #[test]
    fn dates_before_1970_parse_to_negative_seconds() {
        assert_eq!(parse(b"Wed, 31 Dec 1969 23:59:59 GMT"), Some(-1));
        assert_eq!(
            parse(b"Mon, 01 Jan 1900 00:00:00 GMT"),
            Some(-2_208_988_800)
        );
        assert_eq!(
            parse(b"Sat, 01 Jan 0000 00:00:00 GMT"),
            Some(-62_167_219_200)
        );
        assert_eq!(
            parse(b"Thu, 29 Feb 1900 00:00:00 GMT"),
            None,
            "not a leap year"
        );
    }

    #[test]
    fn the_calendar_round_trips() {
        for days in (-800_000..3_000_000).step_by(997) {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(days_from_civil(year, month, day), days);
            assert!((1..=days_in_month(year, month)).contains(&day));
        }
        assert_eq!(civil_from_days(NEW_YEAR_2026 / 86_400), (2026, 1, 1));
    }

    /// RFC 9110 §5.6.7: a two-digit year more than 50 years ahead of now is in the past.
    #[test]
    fn two_digit_years_slide_with_the_clock() {
        let year_of = |value: &[u8], now: i64| {
            let seconds = parse_http_date(value, now).unwrap();
            civil_from_days(seconds.div_euclid(86_400)).0
        };
        // Seen on 2026-01-01: up to 2075, and 2076 until 1 January.
        assert_eq!(
            year_of(b"Sunday, 06-Nov-94 08:49:37 GMT", NEW_YEAR_2026),
            1994
        );
        assert_eq!(
            year_of(b"Sunday, 06-Nov-72 08:49:37 GMT", NEW_YEAR_2026),
            2072
        );
        assert_eq!(
            year_of(b"Sunday, 06-Nov-26 08:49:37 GMT", NEW_YEAR_2026),
            2026
        );
        assert_eq!(
            year_of(b"Sunday, 06-Nov-75 08:49:37 GMT", NEW_YEAR_2026),
            2075
        );
        assert_eq!(
            year_of(b"Sunday, 01-Jan-76 00:00:00 GMT", NEW_YEAR_2026),
            2076
        );
        assert_eq!(
            year_of(b"Sunday, 01-Jan-76 00:00:01 GMT", NEW_YEAR_2026),
            1976
        );
        assert_eq!(
            year_of(b"Sunday, 06-Nov-99 08:49:37 GMT", NEW_YEAR_2026),
            1999
        );
        assert_eq!(
            year_of(b"Sunday, 06-Nov-00 08:49:37 GMT", NEW_YEAR_2026),
            2000
        );
        // Seen in 1990 and in 2080: the window moves.
        let in_1990 = days_from_civil(1990, 6, 1) * 86_400;
        assert_eq!(year_of(b"Sunday, 06-Nov-30 08:49:37 GMT", in_1990), 2030);
        assert_eq!(year_of(b"Sunday, 06-Nov-45 08:49:37 GMT", in_1990), 1945);
        let in_2080 = days_from_civil(2080, 6, 1) * 86_400;
        assert_eq!(year_of(b"Sunday, 06-Nov-10 08:49:37 GMT", in_2080), 2110);
        assert_eq!(year_of(b"Sunday, 06-Nov-94 08:49:37 GMT", in_2080), 2094);
    }

    #[test]
    fn a_date_in_the_past_means_now_whatever_its_century() {
        let now = UNIX_EPOCH + Duration::from_secs(NEW_YEAR_2026 as u64);
        for date in [
            &b"Sun, 06 Nov 1994 08:49:37 GMT"[..],
            b"Thu, 01 Jan 1970 00:00:00 GMT",
            b"Wed, 31 Dec 1969 23:59:59 GMT",
            b"Mon, 01 Jan 1900 00:00:00 GMT",
            b"Sat, 01 Jan 0000 00:00:00 GMT",
            b"Sunday, 01-Jan-76 00:00:01 GMT",
            b"Mon Jan  1 00:00:00 1900",
        ] {
            assert_eq!(
                parse_retry_after(date, now),
                Some(Duration::ZERO),
                "{}",
                String::from_utf8_lossy(date)
            );
        }
        assert_eq!(
            parse_retry_after(b"Thu, 01 Jan 2026 00:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after(b"Fri, 31 Dec 9999 23:59:59 GMT", now),
            Some(MAX_HINT)
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
            b"Sun, 06 Nov 1994 08:49:37 GMT trailing",
            b"Sunday, 06-Nov-1994 08:49:37 GMT",
            b"Sun Nov  6 08:49:37 19940",
            b"Sun Nov  6 08:49:37 94",
            b"Sun, 00 Nov 1994 08:49:37 GMT",
            b"Sun, +6 Nov 1994 08:49:37 GMT",
            b"Sun, \xff\xfe",
        ] {
            assert_eq!(parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
