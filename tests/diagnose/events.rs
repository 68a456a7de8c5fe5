//! Failures that are events rather than limits: a restart, overload; and no failure at all.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tower_reset::diagnose::{Cause, Collector};
use tower_reset::lab::{Fault, Lab, Match, Reply};

use crate::paused_io::{frozen, until};
use crate::support::{after_gaps, bounded, causes, diagnosed, ms, random_gaps, request, send};

/// Four slow requests in flight when the server restarts, then two refused during the 300 ms
/// it is down: one burst, named a restart.
#[tokio::test(start_paused = true)]
async fn a_restart_is_a_burst() {
    bounded(async {
        let lab = Arc::new(
            Lab::builder()
                .on(Match::path("/slow"), Reply::ok().delay(ms(500)))
                .start()
                .await
                .unwrap(),
        );
        let collector = Collector::new();
        let service = diagnosed(&collector);
        let url = lab.url("/");
        assert_eq!(after_gaps(&service, &url, &[100; 20]).await, 0);

        let slow: Vec<_> = (0..4)
            .map(|_| {
                let service = service.clone();
                let url = lab.url("/slow");
                tokio::spawn(async move { send(&service, request(&url, 0)).await })
            })
            .collect();
        // All four in the lab, waiting out their delay, before time moves on.
        until(|| lab.counts().received() == 24).await;
        tokio::time::sleep(ms(100)).await;
        let restart = tokio::spawn({
            let lab = Arc::clone(&lab);
            async move { lab.restart_after(ms(300)).await }
        });
        tokio::time::sleep(ms(100)).await;
        assert_eq!(after_gaps(&service, &url, &[0, 50]).await, 2, "refused");
        // Reset by the restart: they end without a timer.
        frozen(async {
            for call in slow {
                call.await.unwrap().expect_err("reset by the restart");
            }
        })
        .await;
        restart.await.unwrap().unwrap();
        assert_eq!(after_gaps(&service, &url, &[100; 10]).await, 0);

        let report = collector.report();
        let Cause::Restart {
            failures,
            bursts,
            largest,
            connections,
            refused,
            within,
            ..
        } = causes(&report)[0]
        else {
            panic!("{report}");
        };
        assert_eq!(
            (failures, bursts, largest, connections, refused),
            (6, 1, 6, 4, 2),
            "{report}"
        );
        assert!(within <= ms(300), "{report}");
        assert_eq!(causes(&report).len(), 1, "{report}");
        assert!(
            report.to_string().contains("restart: the server restarted"),
            "{report}"
        );
    })
    .await;
}

/// The server takes 20 ms per request and resets 40% of those that arrive while more than
/// eight are in flight: the failure rate rises with concurrency. Clients think for 0 to 10 ms
/// between requests, so that they do not move in step.
#[tokio::test(start_paused = true)]
async fn failures_rising_with_concurrency_are_overload() {
    bounded(async {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&in_flight);
        let lab = Lab::builder()
            .on(
                Match::when(move |_| seen.load(Ordering::SeqCst) > 8).probability(0.4),
                Fault::ResetAfterHead,
            )
            .reply(Reply::ok().delay(ms(20)))
            .seed(3)
            .start()
            .await
            .unwrap();
        let collector = Collector::new();
        let service = diagnosed(&collector);
        let mut failed = 0;
        for concurrency in [1, 2, 4, 8, 16] {
            let tasks: Vec<_> = (0..concurrency)
                .map(|task| {
                    let (service, url, in_flight) =
                        (service.clone(), lab.url("/"), Arc::clone(&in_flight));
                    let thinking = random_gaps(task, 10, 0, 10);
                    tokio::spawn(async move {
                        let mut failed = 0;
                        for think in thinking {
                            tokio::time::sleep(ms(think)).await;
                            in_flight.fetch_add(1, Ordering::SeqCst);
                            failed += usize::from(send(&service, request(&url, 0)).await.is_err());
                            in_flight.fetch_sub(1, Ordering::SeqCst);
                        }
                        failed
                    })
                })
                .collect();
            for task in tasks {
                failed += task.await.unwrap();
            }
        }
        assert!(failed >= 20, "{failed}");

        let report = collector.report();
        let Cause::Overload {
            failures,
            calm_up_to,
            calm_rate,
            rising_from,
            rising_rate,
            ..
        } = causes(&report)[0]
        else {
            panic!("{report}");
        };
        assert!(failures as usize * 10 >= failed * 8, "{report}");
        assert_eq!((calm_up_to, rising_from), (8, 9), "{report}");
        assert!(calm_rate < 0.05 && rising_rate > 0.25, "{report}");
        assert!(
            report.to_string().contains("overload: failures rise"),
            "{report}"
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_healthy_server_has_no_connection_failures() {
    bounded(async {
        let lab = Lab::builder().start().await.unwrap();
        let collector = Collector::new();
        let service = diagnosed(&collector);
        assert_eq!(after_gaps(&service, &lab.url("/"), &[300; 30]).await, 0);

        let report = collector.report();
        assert!(report.is_healthy());
        assert_eq!((report.requests(), report.failures()), (30, 0));
        assert_eq!(
            report.to_string(),
            "tower-reset diagnosis: no connection failures (30 requests to 1 host in 9.0 s)"
        );
    })
    .await;
}
