//! The `probe` example against lab servers: idle timeouts of 1 s (closed with a `FIN`) and
//! 5 s (silently forgotten) within 15%, request limits of 7 (exact) and none, HTTP/2 with
//! prior knowledge; and clear errors for a closed port and a listener that is not HTTP.
//!
//! In paused time, bounded in real time. The probe's own waits and timeouts are timers that
//! run beside its requests, so its requests cannot be sent with the clock held still: a request
//! whose bytes the kernel delays can still see the clock move to the probe's next timer (never
//! to a far bound). The figures allow 15%; no run of 160 under load failed.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tower_reset::lab::{Idle, Lab, Match};

use crate::measure::{
    parse_duration, probe, Findings, IdleTimeout, LimitEnd, Options, ProbeError, Progress,
    RequestLimit, Target,
};
use crate::output;
use crate::support::{bounded, ms, resetting};
use crate::wire::Ending;

fn options(max_idle: Duration, max_requests: u32) -> Options {
    Options {
        max_idle,
        max_requests,
        ..Options::default()
    }
}

async fn run(url: &str, options: &Options) -> Result<Findings, ProbeError> {
    let target = Target::resolve(url).await?;
    probe(&target, options, &Progress::default()).await
}

/// `figure` is within 15% of `expected`.
fn close_to(figure: Duration, expected: Duration) -> bool {
    let (figure, expected) = (figure.as_secs_f64(), expected.as_secs_f64());
    (figure - expected).abs() <= expected * 0.15
}

#[tokio::test(start_paused = true)]
async fn an_idle_timeout_of_one_second_closed_with_a_fin() {
    bounded(async {
        let lab = Lab::builder()
            .idle_timeout(ms(1000), Idle::Fin)
            .start()
            .await
            .unwrap();
        let findings = run(&lab.url("/"), &options(ms(10_000), 50)).await.unwrap();
        let Some(IdleTimeout::Closes { after, how }) = findings.idle else {
            panic!("{findings:?}");
        };
        assert!(close_to(after, ms(1000)), "{findings:?}");
        assert_eq!(how, Ending::Fin);
        assert_eq!(
            findings.requests,
            Some(RequestLimit::NoneUpTo {
                requests: 50,
                out_of_time: false
            })
        );
        assert!(findings.http1);
        assert_eq!(findings.http2, None);
        assert_eq!(output::recommended(&findings).max_idle, Some(ms(800)));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn an_idle_timeout_of_five_seconds_silently_forgotten() {
    bounded(async {
        let lab = Lab::builder()
            .idle_timeout(ms(5000), Idle::Forget)
            .start()
            .await
            .unwrap();
        let findings = run(&lab.url("/"), &options(ms(90_000), 20)).await.unwrap();
        let Some(
            idle @ IdleTimeout::Forgets {
                worked,
                failed,
                how,
            },
        ) = findings.idle
        else {
            panic!("{findings:?}");
        };
        assert!(close_to(idle.figure().unwrap(), ms(5000)), "{findings:?}");
        assert!(worked <= ms(5000) && failed > ms(5000), "{findings:?}");
        assert_eq!(how, Ending::Reset);
        // Two rounds: the first stops at its first failure (5.1 s), the second below it.
        assert!(findings.elapsed < ms(11_000), "{findings:?}");
    })
    .await;
}

/// Every way to end idle connections, at 1 s and at 5 s: the figure is within 15%.
#[tokio::test(start_paused = true)]
async fn every_kind_of_idle_timeout_is_measured_within_fifteen_percent() {
    bounded(async {
        for idle in [Idle::Fin, Idle::Reset, Idle::Forget] {
            for timeout in [ms(1000), ms(5000)] {
                let lab = Lab::builder()
                    .idle_timeout(timeout, idle)
                    .start()
                    .await
                    .unwrap();
                let findings = run(&lab.url("/"), &options(ms(30_000), 5)).await.unwrap();
                let figure = findings.idle.and_then(|idle| idle.figure());
                assert!(
                    figure.is_some_and(|figure| close_to(figure, timeout)),
                    "{idle:?} {timeout:?}: {findings:?}"
                );
            }
        }
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_request_limit_of_seven_is_exact() {
    bounded(async {
        let lab = resetting(Match::nth_on_connection(8)).await;
        let findings = run(&lab.url("/"), &options(ms(2000), 1000)).await.unwrap();
        assert_eq!(
            findings.requests,
            Some(RequestLimit::After {
                requests: 7,
                how: LimitEnd::Cut(Ending::Reset)
            }),
            "{findings:?}"
        );
        assert_eq!(findings.idle, Some(IdleTimeout::NoneUpTo(ms(2000))));
        assert_eq!(output::recommended(&findings).max_requests, Some(7));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn no_request_limit_up_to_max_requests() {
    bounded(async {
        let lab = Lab::builder().start().await.unwrap();
        let findings = run(&lab.url("/"), &options(ms(1000), 300)).await.unwrap();
        assert_eq!(
            findings.requests,
            Some(RequestLimit::NoneUpTo {
                requests: 300,
                out_of_time: false
            })
        );
        assert_eq!(
            lab.counts().requests_per_connection().iter().max(),
            Some(&300)
        );
        let json = output::json(&findings);
        assert!(json.contains("\"idle_timeout_ms\":null,"), "{json}");
        assert!(
            json.contains("\"max_requests_per_connection\":null,"),
            "{json}"
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn http2_with_prior_knowledge_and_its_stream_limit() {
    bounded(async {
        let lab = Lab::builder().http2().start().await.unwrap();
        let findings = run(&lab.url("/"), &options(ms(1000), 10)).await.unwrap();
        assert!(!findings.http1, "the lab speaks HTTP/2 only");
        assert_eq!((findings.idle, findings.requests), (None, None));
        let http2 = findings.http2.expect("h2c");
        assert_eq!(http2.max_concurrent_streams, Some(256));
    })
    .await;
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    // A port that was just free: bind, note it, close.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let error = run(&format!("http://{addr}/"), &Options::default())
        .await
        .unwrap_err();
    assert!(matches!(error, ProbeError::Unreachable(..)), "{error:?}");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("cannot connect to {addr}")),
        "{message}"
    );
    assert!(message.contains("is the server running"), "{message}");
}

#[tokio::test]
async fn a_listener_that_is_not_http_is_named() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        // Every connection (the HTTP/1.1 try, then the HTTP/2 one) hears an SSH banner.
        for _ in 0..2 {
            let (mut stream, _) = listener.accept().await.unwrap();
            let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.6\r\n").await;
            let _ = stream.shutdown().await;
        }
    });
    let error = run(&format!("http://{addr}/"), &Options::default())
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, ProbeError::NotHttp(..)), "{error:?}");
    assert!(
        message.contains("does not speak HTTP/1.1, nor HTTP/2 with prior knowledge"),
        "{message}"
    );
    assert!(message.contains("SSH-2.0-OpenSSH_9.6"), "{message}");
    server.await.unwrap();
}

#[tokio::test]
async fn urls_it_cannot_probe_are_refused_with_a_reason() {
    let https = Target::resolve("https://example.com/").await.unwrap_err();
    assert!(
        https.to_string().contains("https is not supported"),
        "{https}"
    );
    let bare = Target::resolve("example.com").await.unwrap_err();
    assert!(bare.to_string().contains("not an http:// URL"), "{bare}");
}

#[test]
fn durations_parse_as_the_flags_take_them() {
    assert_eq!(parse_duration("90s"), Some(ms(90_000)));
    assert_eq!(parse_duration("1500ms"), Some(ms(1500)));
    assert_eq!(parse_duration("2m"), Some(ms(120_000)));
    assert_eq!(parse_duration("2.5"), Some(ms(2500)));
    assert_eq!(parse_duration("0s"), None);
    assert_eq!(parse_duration("soon"), None);
}

/// The contract: one JSON object, with `idle_timeout_ms` and `max_requests_per_connection`.
#[test]
fn the_json_object_carries_the_contract_keys() {
    let findings = Findings {
        url: "http://example.test/\"quoted\"".to_owned(),
        http1: true,
        idle: Some(IdleTimeout::Closes {
            after: ms(5003),
            how: Ending::Fin,
        }),
        requests: Some(RequestLimit::After {
            requests: 7,
            how: LimitEnd::Cut(Ending::Reset),
        }),
        http2: None,
        elapsed: ms(5210),
    };
    let json = output::json(&findings);
    assert!(json.starts_with('{') && json.ends_with('}') && !json.contains('\n'));
    for pair in [
        "\"url\":\"http://example.test/\\\"quoted\\\"\"",
        "\"idle_timeout_ms\":5003,",
        "\"idle_close\":\"fin\",",
        "\"max_requests_per_connection\":7,",
        "\"request_limit_close\":\"rst\",",
        "\"recommended_max_idle_ms\":4000,",
        "\"recommended_max_requests\":7,",
        "\"http2_prior_knowledge\":false,",
    ] {
        assert!(json.contains(pair), "{pair} in {json}");
    }
    let text = output::text(&findings);
    assert!(
        text.contains(
            "fresh_connection::policy::StandardConnections::builder().max_idle(Duration::from_secs(4)).max_requests(7)"
        ),
        "{text}"
    );
    assert!(
        text.contains("pool_idle_timeout(Duration::from_secs(4))"),
        "{text}"
    );
}
