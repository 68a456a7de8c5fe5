//! What the probe prints: the findings in words, the recommended client settings, and one
//! JSON object (with `--json`, the last line of standard output).

// Shared with the `diagnose` test target, which uses only a part.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::time::Duration;

use super::measure::{Findings, IdleTimeout, LimitEnd, RequestLimit};
use super::wire::Ending;

/// The client settings the findings call for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recommended {
    /// Below the idle timeout, when there is one.
    pub(crate) max_idle: Option<Duration>,
    /// The server's request limit, when it cuts connections at it.
    pub(crate) max_requests: Option<u32>,
}

pub(crate) fn recommended(findings: &Findings) -> Recommended {
    Recommended {
        max_idle: findings.idle.and_then(|idle| idle.safe()).map(below),
        max_requests: match findings.requests {
            Some(RequestLimit::After {
                requests,
                how: LimitEnd::Cut(_),
            }) if requests > 0 => Some(requests),
            _ => None,
        },
    }
}

/// Four fifths of `limit`, rounded down to two significant figures (at least 1 ms).
fn below(limit: Duration) -> Duration {
    let target = limit.as_millis() * 4 / 5;
    let mut step = 1;
    while target / step >= 100 {
        step *= 10;
    }
    Duration::from_millis(((target / step * step).max(1)) as u64)
}

fn seconds(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{} ms", duration.as_millis())
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

fn code(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis.is_multiple_of(1000) {
        format!("Duration::from_secs({})", millis / 1000)
    } else {
        format!("Duration::from_millis({millis})")
    }
}

fn ending_words(how: Ending) -> &'static str {
    match how {
        Ending::Fin => "closed (FIN) without an answer",
        Ending::Reset => "reset (RST)",
    }
}

/// The findings and the recommended settings, for a human.
pub(crate) fn text(findings: &Findings) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "tower-reset probe of {} (took {})",
        findings.url,
        seconds(findings.elapsed)
    );
    let row = |out: &mut String, name: &str, value: String| {
        let _ = writeln!(out, "  {name:<29} {value}");
    };
    row(
        &mut out,
        "HTTP/1.1:",
        if findings.http1 { "yes" } else { "no" }.to_owned(),
    );
    if let Some(idle) = findings.idle {
        let value = match idle {
            IdleTimeout::Closes { after, how } => format!(
                "{}: the server {} idle connections; a request sent just then fails",
                seconds(after),
                match how {
                    Ending::Fin => "closes (FIN)",
                    Ending::Reset => "resets (RST)",
                }
            ),
            IdleTimeout::Forgets {
                worked,
                failed,
                how,
            } => format!(
                "between {} and {}: idle connections are dropped silently (a NAT, a firewall \
                 or a load balancer?), and the next request on one is {}",
                seconds(worked),
                seconds(failed),
                ending_words(how)
            ),
            IdleTimeout::NoneUpTo(max) => format!("none up to {} (--max-idle)", seconds(max)),
            IdleTimeout::NoKeepAlive => {
                "no keep-alive: the server closes every connection after one response".to_owned()
            }
        };
        row(&mut out, "idle timeout:", value);
    }
    if let Some(requests) = findings.requests {
        let value = match requests {
            RequestLimit::After {
                requests,
                how: LimitEnd::ConnectionClose,
            } => format!("{requests}: the last response says `Connection: close` (graceful)"),
            RequestLimit::After {
                requests,
                how: LimitEnd::Cut(how),
            } => format!("{requests}: the next request is {}", ending_words(how)),
            RequestLimit::NoneUpTo {
                requests,
                out_of_time: false,
            } => format!("no limit up to {requests} (--max-requests)"),
            RequestLimit::NoneUpTo {
                requests,
                out_of_time: true,
            } => format!("no limit in {requests} requests (stopped: out of time)"),
        };
        row(&mut out, "requests per connection:", value);
    }
    let http2 = match findings.http2 {
        None => "no".to_owned(),
        Some(http2) => match http2.max_concurrent_streams {
            Some(streams) => format!("yes, at most {streams} concurrent streams"),
            None => "yes, no stream limit".to_owned(),
        },
    };
    row(&mut out, "HTTP/2 with prior knowledge:", http2);

    let recommended = recommended(findings);
    out.push_str("recommended client settings:\n");
    if recommended
        == (Recommended {
            max_idle: None,
            max_requests: None,
        })
    {
        out.push_str("  none needed: the defaults are fine\n");
        return out;
    }
    let mut policy = String::from("fresh_connection::policy::StandardConnections::builder()");
    if let Some(max_idle) = recommended.max_idle {
        let _ = write!(policy, ".max_idle({})", code(max_idle));
    }
    if let Some(max_requests) = recommended.max_requests {
        let _ = write!(policy, ".max_requests({max_requests})");
    }
    policy.push_str(".build()?");
    row(&mut out, "tower-reset:", policy);
    match recommended.max_idle {
        Some(max_idle) => row(
            &mut out,
            "hyper-util:",
            format!(
                "Client::builder(TokioExecutor::new()).pool_idle_timeout({})",
                code(max_idle)
            ),
        ),
        None => row(&mut out, "hyper-util:", "no setting needed".to_owned()),
    }
    if recommended.max_requests.is_some() {
        out.push_str(
            "  (hyper-util has no request limit per connection: `FreshConnectionLayer` with that \
             policy enforces it)\n",
        );
    }
    out
}

fn number<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "null".to_owned(), |value| value.to_string())
}

fn string(value: Option<&str>) -> String {
    value.map_or_else(
        || "null".to_owned(),
        |value| format!("\"{}\"", escape(value)),
    )
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// The findings as one line of JSON. `idle_timeout_ms` and `max_requests_per_connection` are
/// numbers, or `null` when there is none up to `--max-idle` and `--max-requests`.
pub(crate) fn json(findings: &Findings) -> String {
    let millis = |duration: Duration| duration.as_millis();
    let idle = findings.idle;
    let (low, high) = match idle {
        Some(IdleTimeout::Closes { after, .. }) => (Some(after), Some(after)),
        Some(IdleTimeout::Forgets { worked, failed, .. }) => (Some(worked), Some(failed)),
        _ => (None, None),
    };
    let idle_close = match idle {
        Some(IdleTimeout::Closes { how, .. }) => Some(how.as_str()),
        Some(IdleTimeout::Forgets { .. }) => Some("silent"),
        _ => None,
    };
    let (limit, limit_close) = match findings.requests {
        Some(RequestLimit::After { requests, how }) => (
            Some(requests),
            Some(match how {
                LimitEnd::ConnectionClose => "connection_close",
                LimitEnd::Cut(how) => how.as_str(),
            }),
        ),
        _ => (None, None),
    };
    let recommended = recommended(findings);
    format!(
        "{{\"url\":{},\"http1\":{},\"keep_alive\":{},\"idle_timeout_ms\":{},\
         \"idle_timeout_low_ms\":{},\"idle_timeout_high_ms\":{},\"idle_close\":{},\
         \"max_requests_per_connection\":{},\"request_limit_close\":{},\
         \"http2_prior_knowledge\":{},\"http2_max_concurrent_streams\":{},\
         \"recommended_max_idle_ms\":{},\"recommended_max_requests\":{},\"elapsed_ms\":{}}}",
        string(Some(&findings.url)),
        findings.http1,
        findings.http1 && idle != Some(IdleTimeout::NoKeepAlive),
        number(idle.and_then(|idle| idle.figure()).map(millis)),
        number(low.map(millis)),
        number(high.map(millis)),
        string(idle_close),
        number(limit),
        string(limit_close),
        findings.http2.is_some(),
        number(
            findings
                .http2
                .and_then(|http2| http2.max_concurrent_streams)
        ),
        number(recommended.max_idle.map(millis)),
        number(recommended.max_requests),
        millis(findings.elapsed),
    )
}
