//! A 2 s idle timeout, in its three forms: the server resets idle connections, closes them
//! with a `FIN`, or (a NAT, a load balancer) silently forgets them and resets the next request.

use std::time::Duration;

use tower_reset::diagnose::{Cause, Collector, Report};
use tower_reset::lab::{Idle, Lab};

use tower_reset::fresh_connection::policy::StandardConnections;

use crate::paused_io::settle;
use crate::support::{after_gaps, bounded, causes, diagnosed, diagnosed_with, ms, Diagnosed};

/// The figures of the report's only cause, which must be an idle timeout: failures, shortest
/// idle that failed, longest that worked, suggested `max_idle`.
fn idle_timeout(report: &Report) -> (u64, Duration, Option<Duration>, Duration) {
    match causes(report) {
        [Cause::IdleTimeout {
            failures,
            shortest_failed_idle,
            longest_ok_idle,
            suggested_max_idle,
            ..
        }] => (
            *failures,
            *shortest_failed_idle,
            *longest_ok_idle,
            *suggested_max_idle,
        ),
        _ => panic!("{report}"),
    }
}

/// Twelve requests 400 ms apart first: one connection that lives long and is reused often,
/// so that age cannot pass for the cause.
const WARM: [u64; 12] = [400; 12];

/// A lab that ends connections idle for 2 s as `idle` says, and a diagnosed client that has
/// sent [`WARM`] to it.
async fn warmed(idle: Idle) -> (Lab, Collector, Diagnosed) {
    let lab = Lab::builder()
        .idle_timeout(ms(2000), idle)
        .start()
        .await
        .unwrap();
    let collector = Collector::new();
    let service = diagnosed(&collector);
    assert_eq!(after_gaps(&service, &lab.url("/"), &WARM).await, 0);
    (lab, collector, service)
}

/// A server that resets or closes idle connections at 2 s: a request that goes out just as
/// it does (here: exactly 2 s idle) fails, one at 1.9 s goes through, one after more than 2 s
/// finds that the pool already dropped the connection, and goes out on a new one.
async fn closes_at_two_seconds(idle: Idle) {
    bounded(async {
        let (lab, collector, service) = warmed(idle).await;
        let url = lab.url("/");
        let gaps = [
            1000, 1500, 1900, 2000, 500, 2000, 1200, 1800, 2000, 300, 3000, 1900, 2000,
        ];
        let mut failed = 0;
        for gap in gaps {
            if gap > 2000 {
                // The lab closes the connection at 2 s: the client sees it before time moves
                // on, as it would in real time.
                tokio::time::sleep(ms(2000)).await;
                settle(ms(50)).await;
                failed += after_gaps(&service, &url, &[gap - 2000]).await;
            } else {
                failed += after_gaps(&service, &url, &[gap]).await;
            }
        }
        assert_eq!(failed, 4, "each 2.0 s gap");
        assert_eq!(
            lab.counts().idle_disconnects(),
            5,
            "each 2.0 s gap, and the 3.0 s one"
        );

        let report = collector.report();
        assert_eq!(
            idle_timeout(&report),
            (4, ms(2000), Some(ms(1900)), ms(1600)),
            "{report}"
        );
        let text = report.to_string();
        assert!(
            text.contains("drops connections idle for between 1.9 s and 2.0 s"),
            "{text}"
        );
        assert!(
            text.contains(".max_idle(Duration::from_millis(1600))"),
            "{text}"
        );
        assert!(
            text.contains("pool_idle_timeout(Duration::from_millis(1600))"),
            "{text}"
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn an_idle_timeout_that_resets_is_named_with_its_figure() {
    closes_at_two_seconds(Idle::Reset).await;
}

#[tokio::test(start_paused = true)]
async fn an_idle_timeout_that_closes_is_named_with_its_figure() {
    closes_at_two_seconds(Idle::Fin).await;
}

/// A NAT that forgets connections idle more than 2 s: every request after a longer gap fails.
#[tokio::test(start_paused = true)]
async fn a_forgotten_idle_connection_is_named_with_its_figure() {
    bounded(async {
        let (lab, collector, service) = warmed(Idle::Forget).await;
        let url = lab.url("/");
        let gaps = [
            1000, 1500, 1900, 2500, 500, 2200, 1200, 1800, 3000, 300, 2100,
        ];
        assert_eq!(
            after_gaps(&service, &url, &gaps).await,
            4,
            "each gap over 2 s"
        );
        assert_eq!(lab.counts().forgotten_resets(), 4);

        let report = collector.report();
        assert_eq!(
            idle_timeout(&report),
            (4, ms(2100), Some(ms(1900)), ms(1600)),
            "{report}"
        );
        assert!(
            report
                .to_string()
                .contains("idle for between 1.9 s and 2.1 s"),
            "{report}"
        );
    })
    .await;
}

/// With `learn_idle_timeout`, the fix says what the pooled strategy learned: two requests after
/// 2.5 s fail (each on a connection reused after 2.5 s; the request after each failure goes out
/// on a new one), the limit learned is the longest idle time known to work (1.9 s), and the
/// last request, after 2.5 s, finds its connection retired by it (without learning: a third
/// failure).
#[tokio::test(start_paused = true)]
async fn the_fix_says_what_was_learned() {
    bounded(async {
        let lab = Lab::builder()
            .idle_timeout(ms(2000), Idle::Forget)
            .start()
            .await
            .unwrap();
        let collector = Collector::new();
        let learning = StandardConnections::builder()
            .learn_idle_timeout(true)
            .build()
            .unwrap();
        let service = diagnosed_with(&collector, learning);
        let url = lab.url("/");
        assert_eq!(after_gaps(&service, &url, &WARM).await, 0);
        let gaps = [1900, 2500, 2500, 2500, 2500, 100, 2500];
        assert_eq!(
            after_gaps(&service, &url, &gaps).await,
            2,
            "two, then learned"
        );

        let report = collector.report();
        let [Cause::IdleTimeout {
            learned_idle_limit, ..
        }] = causes(&report)
        else {
            panic!("{report}");
        };
        assert_eq!(*learned_idle_limit, Some(ms(1900)), "{report}");
        assert!(report.to_string().contains("; learned: 1.9 s"), "{report}");

        // Without learning, the fix says nothing of it.
        let (lab, collector, service) = warmed(Idle::Forget).await;
        assert_eq!(after_gaps(&service, &lab.url("/"), &gaps).await, 3);
        let report = collector.report();
        assert!(!report.to_string().contains("learned"), "{report}");
    })
    .await;
}
