//! From one host's statistics to its probable causes.
//!
//! Each cause is a test on the recorded failures, and each failure is explained by one cause at
//! most, claimed in this order:
//!
//! 1. **the limits of a connection** — request count, idle time, age — and the **body size**:
//!    a limit shows as failures whose figure is at or above a threshold that no successful
//!    request reached (successes bound it from below: "reused fine after 1.9 s idle, reset
//!    after 2.0 s"). A limit pinned by successes close below it (within a factor of 2, or
//!    exactly for the request count) comes first; among those, the tightest;
//! 2. **overload**: the failure rate of requests by how many were in flight when they started
//!    rises (from exact counters, not from the kept failures);
//! 3. **restart**: bursts of failures, several connections within a second;
//! 4. what remains, by class: never sent (unreachable), refused streams, and cut connections.
//!
//! A cause is named only when it explains at least two failures and a fifth of those kept.

use std::collections::BTreeMap;
use std::time::Duration;

use super::cause::Cause;
use super::display::below;
use super::host::{bucket, bucket_bounds, ConnectionUse, HostSnapshot, Sample, BUCKETS};
use crate::classify::FailureClass;

/// Idle times and ages below this are no limit: a connection failing a few milliseconds after
/// its last use failed for another reason.
const MIN_TIME_LIMIT: Duration = Duration::from_millis(200);
/// Bodies below this are no size limit.
const MIN_SIZE_LIMIT: u64 = 1024;
/// A bucket of concurrency needs this many requests for its failure rate to count.
const MIN_BUCKET_REQUESTS: u64 = 20;
/// Failures closer than this to the previous one belong to the same burst.
const BURST_GAP: Duration = Duration::from_secs(1);
/// A burst lasts at most this long, unless requests were refused a connection in it (a
/// server that stays down): a longer run of failures is a steady stream, not an event.
const MAX_BURST: Duration = Duration::from_secs(5);
/// A burst has at least this many failures.
const MIN_BURST: usize = 3;
/// A cause must explain at least this many failures...
const MIN_EXPLAINED: usize = 2;
/// ... and at least this share of those kept (1 in 5).
const MIN_SHARE: usize = 5;

/// Makes a cause once it is known how many failures it explains.
type Make = Box<dyn FnOnce(u64) -> Cause>;

/// A limit that the failures suggest, before the failures are shared out.
struct Candidate {
    make: Make,
    explains: Vec<usize>,
    /// Pinned from below by successes.
    pinned: bool,
    /// The gap between the threshold and the successes below it, relative to the threshold:
    /// the smaller, the sharper the limit.
    gap: f64,
}

/// The probable causes of one host's failures, the most explaining first.
pub(crate) fn analyze(host: &HostSnapshot) -> Vec<Cause> {
    let samples = &host.samples;
    let mut free = vec![true; samples.len()];
    let mut causes = Vec::new();
    let mut keep = |make: Make, explains: &[usize], free: &mut Vec<bool>| {
        let claimed: Vec<usize> = explains.iter().copied().filter(|i| free[*i]).collect();
        if claimed.len() >= MIN_EXPLAINED && claimed.len() * MIN_SHARE >= samples.len() {
            for index in &claimed {
                free[*index] = false;
            }
            causes.push(make(claimed.len() as u64));
        }
    };

    let mut limits: Vec<Candidate> = [
        request_limit(host),
        idle_timeout(host),
        max_age(host),
        size_limit(host),
    ]
    .into_iter()
    .flatten()
    .collect();
    // Pinned limits first, the sharpest first; the sort is stable, so ties keep the order
    // above.
    limits.sort_by(|a, b| b.pinned.cmp(&a.pinned).then(a.gap.total_cmp(&b.gap)));
    for candidate in limits {
        keep(candidate.make, &candidate.explains, &mut free);
    }

    if let Some((make, from_bucket)) = overload(host) {
        let explains: Vec<usize> = (0..samples.len())
            .filter(|i| bucket(samples[*i].in_flight) >= from_bucket)
            .collect();
        keep(make, &explains, &mut free);
    }

    if let Some((make, explains)) = restart(samples, &free) {
        keep(make, &explains, &mut free);
    }

    let left = |class: fn(FailureClass) -> bool, free: &[bool]| -> Vec<usize> {
        (0..samples.len())
            .filter(|i| free[*i] && class(samples[*i].class))
            .collect()
    };
    let never_sent = left(|class| class == FailureClass::NeverSent, &free);
    keep(
        Box::new(|failures| Cause::Unreachable { failures }),
        &never_sent,
        &mut free,
    );
    let refused = left(|class| class == FailureClass::Refused, &free);
    keep(
        Box::new(|failures| Cause::StreamsRefused { failures }),
        &refused,
        &mut free,
    );
    let cut = left(|class| !class.is_unprocessed(), &free);
    let on_new_connections = cut
        .iter()
        .filter(|i| matches!(samples[**i].connection, ConnectionUse::New { .. }))
        .count() as u64;
    let after = common_elapsed(cut.iter().map(|i| &samples[*i]));
    keep(
        Box::new(move |failures| Cause::ProxyCut {
            failures,
            on_new_connections,
            after,
        }),
        &cut,
        &mut free,
    );

    causes.sort_by_key(|cause| std::cmp::Reverse(cause.failures()));
    causes
}

/// The smallest value above everything that worked (`ok`), if it is at least `min`, and the
/// failures at or above it.
fn threshold<T: Ord + Copy>(
    values: &[(usize, T)],
    ok: Option<T>,
    min: T,
) -> Option<(T, Vec<usize>)> {
    let threshold = values
        .iter()
        .map(|(_, value)| *value)
        .filter(|value| ok.is_none_or(|ok| *value > ok))
        .min()?;
    if threshold < min {
        return None;
    }
    let explains = values
        .iter()
        .filter(|(_, value)| *value >= threshold)
        .map(|(index, _)| *index)
        .collect();
    Some((threshold, explains))
}

/// The facts of the failures on reused connections, as `(index, figure)`.
fn reused<T>(
    host: &HostSnapshot,
    figure: impl Fn(&super::host::ConnectionFacts) -> T,
) -> Vec<(usize, T)> {
    host.samples
        .iter()
        .enumerate()
        .filter_map(|(index, sample)| {
            sample
                .connection
                .facts()
                .map(|facts| (index, figure(facts)))
        })
        .collect()
}

fn time_gap(threshold: Duration, ok: Option<Duration>) -> (bool, f64) {
    match ok {
        Some(ok) if ok * 2 >= threshold => (
            true,
            (threshold - ok).as_secs_f64() / threshold.as_secs_f64(),
        ),
        _ => (false, 1.0),
    }
}

fn idle_timeout(host: &HostSnapshot) -> Option<Candidate> {
    let (ok, learned) = (host.ok.longest_idle, host.learned_idle);
    let (threshold, explains) = threshold(&reused(host, |facts| facts.idle), ok, MIN_TIME_LIMIT)?;
    let (pinned, gap) = time_gap(threshold, ok);
    Some(Candidate {
        make: Box::new(move |failures| Cause::IdleTimeout {
            failures,
            shortest_failed_idle: threshold,
            longest_ok_idle: ok,
            suggested_max_idle: below(threshold),
            learned_idle_limit: learned,
        }),
        explains,
        pinned,
        gap,
    })
}

fn max_age(host: &HostSnapshot) -> Option<Candidate> {
    let ok = host.ok.oldest_age;
    let (threshold, explains) = threshold(&reused(host, |facts| facts.age), ok, MIN_TIME_LIMIT)?;
    let (pinned, gap) = time_gap(threshold, ok);
    Some(Candidate {
        make: Box::new(move |failures| Cause::MaxAge {
            failures,
            shortest_failed_age: threshold,
            oldest_ok_age: ok,
            suggested_max_age: below(threshold),
        }),
        explains,
        pinned,
        gap,
    })
}

/// Most failures on reused connections happened after the same number of requests, which no
/// successful request reached.
fn request_limit(host: &HostSnapshot) -> Option<Candidate> {
    let counts = reused(host, |facts| facts.requests);
    let mut by_count = BTreeMap::<u32, usize>::new();
    for (_, count) in &counts {
        *by_count.entry(*count).or_default() += 1;
    }
    // The most common count; the smallest on a tie.
    let (&limit, &hits) = by_count.iter().rev().max_by_key(|(_, hits)| **hits)?;
    if hits < MIN_EXPLAINED || hits * 5 < counts.len() * 4 || limit == 0 {
        return None;
    }
    if host.ok.most_requests.is_some_and(|most| most >= limit) {
        return None;
    }
    // Pinned when successes came right up to the limit.
    let pinned = host.ok.most_requests.is_some_and(|most| most + 1 == limit);
    Some(Candidate {
        make: Box::new(move |failures| Cause::RequestLimit {
            failures,
            requests: limit,
        }),
        explains: counts
            .iter()
            .filter(|(_, count)| *count == limit)
            .map(|(index, _)| *index)
            .collect(),
        pinned,
        // Exact when pinned; after any other limit when not (a limit of one request is also
        // what a peer that never allows reuse looks like).
        gap: if pinned { 0.0 } else { 1.5 },
    })
}

fn size_limit(host: &HostSnapshot) -> Option<Candidate> {
    let bodies: Vec<(usize, u64)> = host
        .samples
        .iter()
        .enumerate()
        .filter_map(|(index, sample)| sample.body.map(|body| (index, body)))
        .collect();
    let ok = host.ok.largest_body;
    let (threshold, explains) = threshold(&bodies, ok, MIN_SIZE_LIMIT)?;
    let (pinned, gap) = match ok {
        Some(ok) if ok.saturating_mul(4) >= threshold => {
            (true, (threshold - ok) as f64 / threshold as f64)
        }
        _ => (false, 1.0),
    };
    Some(Candidate {
        make: Box::new(move |failures| Cause::SizeLimit {
            failures,
            smallest_failed_body: threshold,
            largest_ok_body: ok,
        }),
        explains,
        pinned,
        gap,
    })
}

/// The failure rate by concurrency rises: the cause, and the first bucket of the rise.
fn overload(host: &HostSnapshot) -> Option<(Make, usize)> {
    let populated: Vec<usize> = (0..BUCKETS)
        .filter(|b| host.requests[*b] >= MIN_BUCKET_REQUESTS)
        .collect();
    let rate = |b: usize| host.failures_by_bucket[b] as f64 / host.requests[b] as f64;
    let &low = populated.first()?;
    let (high, high_rate) = populated
        .iter()
        .map(|b| (*b, rate(*b)))
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    let low_rate = rate(low);
    if high <= low || high_rate < 0.05 || high_rate < 3.0 * low_rate + 0.02 {
        return None;
    }
    let middle = (low_rate + high_rate) / 2.0;
    let from = populated
        .iter()
        .copied()
        .find(|b| *b > low && rate(*b) >= middle)?;
    let sum = |range: std::ops::Range<usize>| -> (u64, u64) {
        range.fold((0, 0), |(requests, failures), b| {
            (
                requests + host.requests[b],
                failures + host.failures_by_bucket[b],
            )
        })
    };
    let (calm_requests, calm_failures) = sum(0..from);
    let (rising_requests, rising_failures) = sum(from..BUCKETS);
    let calm_up_to = populated
        .iter()
        .copied()
        .rfind(|b| *b < from)
        .map_or(1, |b| bucket_bounds(b).1);
    let share = |failures: u64, requests: u64| failures as f64 / requests.max(1) as f64;
    let (calm_rate, rising_rate) = (
        share(calm_failures, calm_requests),
        share(rising_failures, rising_requests),
    );
    let rising_from = bucket_bounds(from).0;
    let make: Make = Box::new(move |failures| Cause::Overload {
        failures,
        calm_up_to,
        calm_rate,
        calm_requests,
        rising_from,
        rising_rate,
        rising_requests,
    });
    Some((make, from))
}

/// Bursts among the free failures: runs in which each failure follows the previous one
/// within a second, of at least three failures on at least two connections (or with refusals,
/// or from a layer that does not see connections), lasting 5 s at most unless requests were
/// refused a connection.
fn restart(samples: &[Sample], free: &[bool]) -> Option<(Make, Vec<usize>)> {
    let mut order: Vec<usize> = (0..samples.len()).filter(|i| free[*i]).collect();
    order.sort_by_key(|i| samples[*i].at);
    let bursts: Vec<&[usize]> = order
        .chunk_by(|a, b| samples[*b].at.saturating_sub(samples[*a].at) <= BURST_GAP)
        .filter(|run| is_burst(samples, run))
        .collect();
    let largest = bursts.iter().max_by_key(|burst| burst.len())?;
    let explains: Vec<usize> = bursts
        .iter()
        .flat_map(|burst| burst.iter().copied())
        .collect();
    let mut ports: Vec<u16> = explains
        .iter()
        .filter_map(|i| samples[*i].connection.port())
        .collect();
    ports.sort_unstable();
    ports.dedup();
    let times = largest.iter().map(|i| samples[*i].at);
    let (first, last) = (times.clone().min()?, times.max()?);
    let (bursts, largest, connections) = (
        bursts.len() as u64,
        largest.len() as u64,
        ports.len() as u64,
    );
    let refused = explains
        .iter()
        .filter(|i| samples[**i].connection == ConnectionUse::NoConnection)
        .count() as u64;
    let make: Make = Box::new(move |failures| Cause::Restart {
        failures,
        bursts,
        at: first,
        within: last - first,
        largest,
        connections,
        refused,
    });
    Some((make, explains))
}

fn is_burst(samples: &[Sample], group: &[usize]) -> bool {
    if group.len() < MIN_BURST {
        return false;
    }
    let refused = group
        .iter()
        .any(|i| samples[*i].connection == ConnectionUse::NoConnection);
    let lasted = samples[group[group.len() - 1]].at - samples[group[0]].at;
    if lasted > MAX_BURST && !refused {
        return false;
    }
    let mut ports: Vec<u16> = group
        .iter()
        .filter_map(|i| samples[*i].connection.port())
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports.len() >= 2
        || group.iter().any(|i| {
            matches!(
                samples[*i].connection,
                ConnectionUse::NoConnection | ConnectionUse::Unknown
            )
        })
}

/// The time in flight that at least three failures share (within a quarter), if it is a
/// second or more: a timeout on the way.
fn common_elapsed<'a>(samples: impl Iterator<Item = &'a Sample>) -> Option<Duration> {
    let elapsed: Vec<Duration> = samples.map(|sample| sample.elapsed).collect();
    let min = *elapsed.iter().min()?;
    let max = *elapsed.iter().max()?;
    (elapsed.len() >= 3 && min >= Duration::from_secs(1) && max <= min + min / 4).then_some(min)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::host::{ConnectionFacts, OkBounds};

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    fn reused(port: u16, idle: u64, age: u64, requests: u32) -> ConnectionUse {
        ConnectionUse::Reused {
            port: Some(port),
            facts: ConnectionFacts {
                idle: ms(idle),
                age: ms(age),
                requests,
            },
        }
    }

    fn failure(at: u64, connection: ConnectionUse) -> Sample {
        Sample {
            at: ms(at),
            class: FailureClass::UnknownOutcome,
            connection,
            body: Some(0),
            in_flight: 1,
            elapsed: ms(1),
        }
    }

    fn host(samples: Vec<Sample>, ok: OkBounds, requests: u64) -> HostSnapshot {
        let mut host = HostSnapshot {
            host: "http://test".to_owned(),
            failures: samples.len() as u64,
            ok,
            samples,
            ..HostSnapshot::default()
        };
        host.requests[0] = requests;
        for sample in &host.samples {
            host.failures_by_bucket[bucket(sample.in_flight)] += 1;
        }
        host
    }

    #[test]
    fn an_idle_timeout_is_pinned_between_the_idle_times_that_worked_and_failed() {
        let samples = (0..5)
            .map(|i| {
                failure(
                    i * 10_000,
                    reused(100 + i as u16, 2000 + i * 300, 60_000, 3 + i as u32),
                )
            })
            .collect();
        let ok = OkBounds {
            longest_idle: Some(ms(1900)),
            oldest_age: Some(ms(120_000)),
            most_requests: Some(40),
            largest_body: Some(0),
        };
        let causes = analyze(&host(samples, ok, 100));
        assert_eq!(
            causes,
            [Cause::IdleTimeout {
                failures: 5,
                shortest_failed_idle: ms(2000),
                longest_ok_idle: Some(ms(1900)),
                suggested_max_idle: ms(1600),
                learned_idle_limit: None,
            }]
        );
    }

    #[test]
    fn a_request_limit_is_exact() {
        let samples = (0..4)
            .map(|i| failure(i * 100, reused(100 + i as u16, 5, 30 + i * 7, 7)))
            .collect();
        let ok = OkBounds {
            longest_idle: Some(ms(50)),
            oldest_age: Some(ms(90)),
            most_requests: Some(6),
            largest_body: Some(0),
        };
        let causes = analyze(&host(samples, ok, 32));
        assert_eq!(
            causes,
            [Cause::RequestLimit {
                failures: 4,
                requests: 7
            }]
        );
    }

    #[test]
    fn a_burst_on_several_connections_is_a_restart() {
        let mut samples: Vec<Sample> = (0..4)
            .map(|i| {
                failure(
                    5000 + i,
                    ConnectionUse::New {
                        port: Some(200 + i as u16),
                    },
                )
            })
            .collect();
        samples.push(Sample {
            class: FailureClass::NeverSent,
            ..failure(5200, ConnectionUse::NoConnection)
        });
        let causes = analyze(&host(samples, OkBounds::default(), 50));
        assert_eq!(
            causes,
            [Cause::Restart {
                failures: 5,
                bursts: 1,
                at: ms(5000),
                within: ms(200),
                largest: 5,
                connections: 4,
                refused: 1,
            }]
        );
    }

    #[test]
    fn a_steady_stream_of_failures_is_no_restart() {
        // One failure every half second for 20 s, on new connections: no event, no pattern.
        let samples = (0..40)
            .map(|i| {
                failure(
                    i * 500,
                    ConnectionUse::New {
                        port: Some(200 + i as u16),
                    },
                )
            })
            .collect();
        let causes = analyze(&host(samples, OkBounds::default(), 400));
        assert_eq!(
            causes.iter().map(Cause::name).collect::<Vec<_>>(),
            ["proxy_cut"],
            "{causes:?}"
        );
    }

    #[test]
    fn failures_rising_with_concurrency_are_overload() {
        let samples: Vec<Sample> = (0..30u32)
            .map(|i| Sample {
                in_flight: 9 + (i % 8),
                ..failure(
                    u64::from(i) * 1500,
                    ConnectionUse::New {
                        port: Some(300 + i as u16),
                    },
                )
            })
            .collect();
        let mut host = host(samples, OkBounds::default(), 0);
        host.requests = [200, 200, 200, 0, 100, 0, 0];
        let causes = analyze(&host);
        assert_eq!(causes.len(), 1, "{causes:?}");
        let Cause::Overload {
            failures,
            calm_up_to,
            rising_from,
            rising_requests,
            ..
        } = causes[0]
        else {
            panic!("{causes:?}");
        };
        assert_eq!(
            (failures, calm_up_to, rising_from, rising_requests),
            (30, 4, 9, 100)
        );
    }

    #[test]
    fn large_bodies_that_fail_are_a_size_limit() {
        let samples = (0..6)
            .map(|i| Sample {
                body: Some(1_100_000 + i * 50_000),
                ..failure(
                    i * 3000,
                    ConnectionUse::New {
                        port: Some(400 + i as u16),
                    },
                )
            })
            .collect();
        let ok = OkBounds {
            largest_body: Some(1_000_000),
            ..OkBounds::default()
        };
        let causes = analyze(&host(samples, ok, 40));
        assert_eq!(
            causes,
            [Cause::SizeLimit {
                failures: 6,
                smallest_failed_body: 1_100_000,
                largest_ok_body: Some(1_000_000),
            }]
        );
    }

    #[test]
    fn cuts_with_no_pattern_are_a_proxy_and_a_shared_time_in_flight_is_a_timeout() {
        let samples = (0..4)
            .map(|i| Sample {
                elapsed: ms(30_000 + i * 100),
                ..failure(i * 60_000, ConnectionUse::New { port: Some(500) })
            })
            .collect();
        let causes = analyze(&host(samples, OkBounds::default(), 40));
        assert_eq!(
            causes,
            [Cause::ProxyCut {
                failures: 4,
                on_new_connections: 4,
                after: Some(ms(30_000)),
            }]
        );
    }

    #[test]
    fn one_failure_names_no_cause() {
        let samples = vec![failure(0, reused(1, 5000, 5000, 1))];
        assert!(analyze(&host(samples, OkBounds::default(), 10)).is_empty());
    }
}
