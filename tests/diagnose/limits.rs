//! Per-connection limits the server enforces by cutting: a request limit (nginx's
//! `keepalive_requests` without its `Connection: close`), a maximum connection age, and a
//! request-size limit.

use tower_reset::diagnose::{Cause, Collector};
use tower_reset::lab::Match;

use crate::support::{
    after_gaps, bounded, causes, diagnosed, ms, random_gaps, request, resetting, send, size_limit,
};

#[tokio::test(start_paused = true)]
async fn a_request_limit_of_seven_is_named_exactly() {
    bounded(async {
        let lab = resetting(Match::nth_on_connection(8)).await;
        let collector = Collector::new();
        let service = diagnosed(&collector);
        let gaps = random_gaps(7, 48, 10, 300);
        assert_eq!(after_gaps(&service, &lab.url("/"), &gaps).await, 6);

        let report = collector.report();
        let [Cause::RequestLimit {
            failures, requests, ..
        }] = causes(&report)
        else {
            panic!("{report}");
        };
        assert_eq!((*failures, *requests), (6, 7), "{report}");
        let text = report.to_string();
        assert!(
            text.contains("closes a connection after 7 requests"),
            "{text}"
        );
        assert!(text.contains(".max_requests(7)"), "{text}");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_maximum_age_of_one_second_is_named_with_its_figure() {
    bounded(async {
        let lab = resetting(Match::connection_older_than(ms(1000))).await;
        let collector = Collector::new();
        let service = diagnosed(&collector);
        let gaps = random_gaps(11, 60, 50, 300);
        let failed = after_gaps(&service, &lab.url("/"), &gaps).await;
        assert!(failed >= 5, "{failed}");

        let report = collector.report();
        let causes = causes(&report);
        assert_eq!(causes.len(), 1, "{report}");
        let Cause::MaxAge {
            failures,
            shortest_failed_age,
            oldest_ok_age,
            suggested_max_age,
            ..
        } = causes[0]
        else {
            panic!("{report}");
        };
        assert_eq!(failures, failed as u64);
        assert!(
            (ms(1000)..ms(1150)).contains(&shortest_failed_age),
            "{report}"
        );
        assert!(oldest_ok_age.is_some_and(|ok| ok < ms(1000)), "{report}");
        assert_eq!(suggested_max_age, ms(800));
        let text = report.to_string();
        assert!(text.contains("connection age limit"), "{text}");
        assert!(
            text.contains(".max_age(Duration::from_millis(800))"),
            "{text}"
        );
    })
    .await;
}

// In real time: no timer matters here, and megabyte bodies fill the socket buffers, so the
// writer waits on the kernel's loopback, which paused time would take for idleness and skip
// straight to the bound.
#[tokio::test]
async fn resets_on_bodies_above_one_mebibyte_are_a_size_limit() {
    const MIB: usize = 1024 * 1024;
    bounded(async {
        let lab = resetting(Match::when(|request| {
            request
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|value| value.to_str().ok()?.parse::<usize>().ok())
                .is_some_and(|length| length > MIB)
        }))
        .await;
        let collector = Collector::new();
        let service = diagnosed(&collector);
        let url = lab.url("/upload");
        let sizes = random_gaps(5, 40, 64 * 1024, 2 * MIB as u64);
        let mut failed = 0;
        for size in &sizes {
            if send(&service, request(&url, *size as usize)).await.is_err() {
                failed += 1;
            }
        }
        let above = sizes.iter().filter(|size| **size > MIB as u64).count();
        assert_eq!(failed, above);

        let report = collector.report();
        let smallest_failed = *sizes
            .iter()
            .filter(|size| **size > MIB as u64)
            .min()
            .unwrap();
        let largest_ok = *sizes
            .iter()
            .filter(|size| **size <= MIB as u64)
            .max()
            .unwrap();
        assert_eq!(
            size_limit(&report),
            (above as u64, smallest_failed, Some(largest_ok)),
            "{report}"
        );
        assert!(
            report.to_string().contains("request size limit"),
            "{report}"
        );
    })
    .await;
}
