//! Server hints through the stack: `503` responses to GET requests carrying `Retry-After` or
//! `grpc-retry-pushback-ms`, well-formed and malformed, in paused time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderValue;
use tower::ServiceBuilder;
use tower_reset::attempt::HistoryObserver;
use tower_reset::backoff::policy::{Constant, Schedule, Zero};
use tower_reset::classify::StandardClassifier;
use tower_reset::{BackoffLayer, ResetRetryLayer};

use crate::harness::*;
use crate::stack::stack;

const RETRY_AFTER: &str = "retry-after";
const PUSHBACK: &str = "grpc-retry-pushback-ms";

fn secs(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

/// A `503` with one header, then a `200`, through `retry_unavailable(3)` over `schedule`; the
/// run must take exactly two attempts.
async fn one_hinted_retry<B: Schedule + Clone + Send + Sync + 'static>(
    schedule: B,
    name: &str,
    hint: HeaderValue,
) -> Run {
    let run = send(
        &stack(retry_unavailable(3), schedule),
        get("/"),
        vec![unavailable(&[(name, hint.clone())]), status(200)],
    )
    .await;
    assert_eq!(run.attempts.len(), 2, "{name}: {hint:?} is retried");
    assert_eq!(run.status(), 200);
    run
}

/// A `503` with these headers through `layer`: the request must end with that `503`, after
/// one attempt and no wait.
async fn not_retried<L>(layer: &L, headers: &[(&str, HeaderValue)])
where
    L: tower::Layer<Mock>,
    L::Service: tower::Service<Req, Response = Res, Error = tower::BoxError> + Send + 'static,
    <L::Service as tower::Service<Req>>::Future: Send,
{
    let mut request = get("/");
    let observer = HistoryObserver::attach(&mut request);
    let run = send(layer, request, vec![unavailable(headers)]).await;
    assert_eq!(run.attempts.len(), 1, "{headers:?}: no retry");
    assert_eq!(run.status(), 503, "{headers:?}: the 503 itself");
    for (name, value) in headers {
        assert_eq!(
            run.response().headers().get(*name),
            Some(value),
            "the response the server sent, headers included"
        );
    }
    assert_eq!(run.elapsed(), Duration::ZERO, "{headers:?}: no wait");
    let history = observer.get().expect("the history is recorded");
    assert_eq!(history.attempts(), 1, "{headers:?}");
}

// ----- well-formed hints -----

#[tokio::test(start_paused = true)]
async fn retry_after_seconds_is_a_minimum_wait() {
    // The hint is longer than the scheduled 10 ms: it wins.
    let run = one_hinted_retry(exponential(10, 80), RETRY_AFTER, value("3")).await;
    assert_eq!(run.gaps(), vec![secs(3)]);

    // The scheduled delay is longer than the hint: the schedule wins.
    let run = one_hinted_retry(Constant::new(secs(5)), RETRY_AFTER, value("3")).await;
    assert_eq!(run.gaps(), vec![secs(5)]);

    // Zero: the schedule alone.
    let run = one_hinted_retry(exponential(10, 80), RETRY_AFTER, value("0")).await;
    assert_eq!(run.gaps(), vec![ms(10)]);
}

#[tokio::test(start_paused = true)]
async fn each_hint_applies_to_the_retry_after_its_response_only() {
    let layer = stack(retry_unavailable(4), exponential(10, 80));
    let script = vec![
        unavailable(&[(RETRY_AFTER, value("1"))]),
        unavailable(&[(RETRY_AFTER, value("2"))]),
        unavailable(&[]),
        status(200),
    ];
    let run = send(&layer, get("/"), script).await;
    assert_eq!(run.status(), 200);
    // 1 s (hint), 2 s (hint), then the schedule's third step, 40 ms: no hint carried over.
    assert_eq!(run.gaps(), vec![secs(1), secs(2), ms(40)]);
}

/// `SystemTime` as an IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`.
fn imf_fixdate(time: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = time
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let (days, second_of_day) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 (a Thursday).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[((days + 4) % 7) as usize],
        MONTHS[(month - 1) as usize],
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
    )
}

#[test]
fn the_date_formatter_of_these_tests_is_right() {
    let rfc_example = UNIX_EPOCH + secs(784_111_777);
    assert_eq!(imf_fixdate(rfc_example), "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(imf_fixdate(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(
        imf_fixdate(UNIX_EPOCH + secs(951_782_400)),
        "Tue, 29 Feb 2000 00:00:00 GMT"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_as_an_http_date_is_measured_against_the_wall_clock() {
    // The wall clock is not paused, and the date has whole seconds: the wait is within
    // (n - 1, n] seconds of the moment the date was written.
    let n = 5;
    let date = imf_fixdate(SystemTime::now() + secs(n));
    let run = one_hinted_retry(exponential(10, 80), RETRY_AFTER, value(&date)).await;
    let gap = run.gaps()[0];
    assert!(
        secs(n - 1) <= gap && gap <= secs(n),
        "Retry-After: {date} gave a wait of {gap:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_dates_in_the_older_formats_are_honoured() {
    let n = 5;
    let at = SystemTime::now() + secs(n);
    let imf = imf_fixdate(at);
    // "Sun, 06 Nov 1994 08:49:37 GMT" -> RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT" and asctime
    // "Sun Nov  6 08:49:37 1994".
    let (weekday, rest) = imf.split_once(", ").unwrap();
    let parts: Vec<&str> = rest.split(' ').collect();
    let (day, month, year, time) = (parts[0], parts[1], parts[2], parts[3]);
    let long_weekday = match weekday {
        "Mon" => "Monday",
        "Tue" => "Tuesday",
        "Wed" => "Wednesday",
        "Thu" => "Thursday",
        "Fri" => "Friday",
        "Sat" => "Saturday",
        _ => "Sunday",
    };
    let rfc850 = format!("{long_weekday}, {day}-{month}-{} {time} GMT", &year[2..]);
    let day_number: u32 = day.parse().unwrap();
    let asctime = format!("{weekday} {month} {day_number:>2} {time} {year}");
    for date in [rfc850, asctime] {
        let run = one_hinted_retry(exponential(10, 80), RETRY_AFTER, value(&date)).await;
        let gap = run.gaps()[0];
        assert!(
            secs(n - 1) <= gap && gap <= secs(n),
            "Retry-After: {date} gave a wait of {gap:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn grpc_pushback_is_a_minimum_wait_in_milliseconds() {
    let run = one_hinted_retry(exponential(10, 80), PUSHBACK, value("250")).await;
    assert_eq!(run.gaps(), vec![ms(250)]);
    let run = one_hinted_retry(exponential(10, 80), PUSHBACK, value("5")).await;
    assert_eq!(run.gaps(), vec![ms(10)], "the schedule is longer");
}

#[tokio::test(start_paused = true)]
async fn grpc_pushback_wins_over_retry_after() {
    let layer = stack(retry_unavailable(3), exponential(10, 80));
    let script = vec![
        unavailable(&[(RETRY_AFTER, value("5")), (PUSHBACK, value("250"))]),
        status(200),
    ];
    let run = send(&layer, get("/"), script).await;
    assert_eq!(run.gaps(), vec![ms(250)]);
}

#[tokio::test(start_paused = true)]
async fn a_negative_pushback_means_no_retry_and_the_503_is_returned() {
    let layer = stack(retry_unavailable(3), exponential(10, 80));
    not_retried(&layer, &[(PUSHBACK, value("-1"))]).await;
    not_retried(&layer, &[(PUSHBACK, value("-250"))]).await;
}

#[tokio::test(start_paused = true)]
async fn a_hint_above_max_hint_means_no_retry_not_a_shorter_wait() {
    // Default max_hint: 10 s.
    let layer = stack(retry_unavailable(3), exponential(10, 80));
    not_retried(&layer, &[(RETRY_AFTER, value("11"))]).await;
    not_retried(&layer, &[(PUSHBACK, value("10001"))]).await;

    // A hint equal to max_hint is honoured in full; one second more is refused.
    let layer = ServiceBuilder::new().layer(retry_unavailable(3)).layer(
        BackoffLayer::new()
            .schedule(exponential(10, 80))
            .max_hint(secs(3))
            .seed(42),
    );
    let run = send(
        &layer,
        get("/"),
        vec![unavailable(&[(RETRY_AFTER, value("3"))]), status(200)],
    )
    .await;
    assert_eq!(run.gaps(), vec![secs(3)]);
    not_retried(&layer, &[(RETRY_AFTER, value("4"))]).await;
    not_retried(&layer, &[(PUSHBACK, value("3001"))]).await;
}

#[tokio::test(start_paused = true)]
async fn a_hint_past_the_deadline_means_no_retry() {
    let retry = ResetRetryLayer::builder()
        .no_budget()
        .max_attempts(3)
        .deadline(secs(2))
        .classifier(StandardClassifier::new().unavailable_responses(true))
        .build()
        .unwrap();
    let layer = stack(retry, exponential(10, 80));
    not_retried(&layer, &[(RETRY_AFTER, value("3"))]).await;
    not_retried(&layer, &[(PUSHBACK, value("2001"))]).await;
}

#[tokio::test(start_paused = true)]
async fn hints_on_responses_that_are_not_failures_are_ignored() {
    // Without `unavailable_responses` a 503 is an answer, not a failure: no retry, no wait, even
    // with a hint in it.
    let layer = stack(retry(3), exponential(10, 80));
    not_retried(&layer, &[(RETRY_AFTER, value("1"))]).await;
    // A 200 with a hint is a success.
    let layer = stack(retry_unavailable(3), exponential(10, 80));
    let run = send(
        &layer,
        get("/"),
        vec![Answer::Respond(
            http::Response::builder()
                .status(200)
                .header(PUSHBACK, "-1")
                .body(())
                .unwrap(),
        )],
    )
    .await;
    assert_eq!(run.status(), 200);
    assert_eq!(run.attempts.len(), 1);
}

// ----- malformed hints -----

#[tokio::test(start_paused = true)]
async fn a_malformed_retry_after_is_ignored_and_the_schedule_applies() {
    let malformed = [
        value("garbage"),
        value(""),
        value("-5"),
        value("1.5"),
        value("+3"),
        value("3 seconds"),
        value("0x10"),
        // February 30th, and other impossible dates.
        value("Mon, 30 Feb 2026 10:00:00 GMT"),
        value("Thu, 29 Feb 2001 00:00:00 GMT"),
        value("Sun, 06 Nov 1994 25:49:37 GMT"),
        value("Sun, 06 Nov 1994 08:49:37 PST"),
        // Not UTF-8.
        HeaderValue::from_bytes(b"\xff\xfe\xfd").unwrap(),
        HeaderValue::from_bytes(b"Sun, 06 Nov \xe9 08:49:37 GMT").unwrap(),
    ];
    for hint in malformed {
        let run = one_hinted_retry(Constant::new(ms(40)), RETRY_AFTER, hint.clone()).await;
        assert_eq!(run.gaps(), vec![ms(40)], "Retry-After: {hint:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_date_in_the_past_means_now() {
    for date in [
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Thu, 01 Jan 1970 00:00:00 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
    ] {
        // The scheduled delay applies...
        let run = one_hinted_retry(Constant::new(ms(40)), RETRY_AFTER, value(date)).await;
        assert_eq!(run.gaps(), vec![ms(40)], "Retry-After: {date}");
        // ...and with no schedule the retry goes out at once.
        let run = one_hinted_retry(Zero, RETRY_AFTER, value(date)).await;
        assert_eq!(run.gaps(), vec![Duration::ZERO], "Retry-After: {date}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_huge_retry_after_saturates_and_means_no_retry() {
    // Digits beyond u64 saturate (to a year) rather than overflow or wrap to a short wait: far
    // above any max_hint, so the request is not retried.
    let layer = stack(retry_unavailable(3), exponential(10, 80));
    for huge in [
        "99999999999999999999999",
        "18446744073709551616",
        "18446744073709551615",
    ] {
        not_retried(&layer, &[(RETRY_AFTER, value(huge))]).await;
        not_retried(&layer, &[(PUSHBACK, value(huge))]).await;
    }
    // A date far in the future is too long as well.
    not_retried(
        &layer,
        &[(RETRY_AFTER, value("Fri, 31 Dec 9999 23:59:59 GMT"))],
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_pushback_that_is_not_a_number_means_no_retry() {
    // gRFC A6: anything but a non-negative integer means "do not retry".
    let layer = stack(retry_unavailable(3), exponential(10, 80));
    for pushback in [
        value("abc"),
        value(""),
        value("1.5"),
        value("+250"),
        HeaderValue::from_bytes(b"\xff25").unwrap(),
    ] {
        not_retried(&layer, &[(PUSHBACK, pushback)]).await;
    }
}

/// RFC 9110 §5.6.7 at the edges, read at a fixed "now" (2026-01-01): a date before 1970 is in
/// the past and means "now"; the two-digit year `72` of the RFC 850 format is 2072, 46 years
/// ahead (a wait beyond any cap), and `99` is 1999, since 2099 would be more than 50 years ahead.
#[test]
fn http_dates_before_1970_and_two_digit_years_follow_rfc_9110() {
    use tower_reset::hint::ServerHint;
    let now = UNIX_EPOCH + secs(1_767_225_600);
    let hint = |date: &str| {
        let mut headers = http::HeaderMap::new();
        headers.insert(RETRY_AFTER, value(date));
        ServerHint::from_headers(&headers, now)
    };
    for date in [
        "Mon, 01 Jan 1900 00:00:00 GMT",
        "Wed, 31 Dec 1969 23:59:59 GMT",
        "Sun Jul 20 20:17:40 1969",
        "Sunday, 06-Nov-99 08:49:37 GMT",
    ] {
        assert_eq!(
            hint(date),
            Some(ServerHint::RetryAfter(Duration::ZERO)),
            "Retry-After: {date}"
        );
    }
    let Some(ServerHint::RetryAfter(wait)) = hint("Sunday, 06-Nov-72 08:49:37 GMT") else {
        panic!("a date in 2072 is a hint");
    };
    assert!(
        wait >= secs(365 * 24 * 3600),
        "2072 is decades ahead: {wait:?}"
    );
    assert_eq!(
        hint("Sunday, 01-Jan-26 00:01:00 GMT"),
        Some(ServerHint::RetryAfter(secs(60)))
    );
}
