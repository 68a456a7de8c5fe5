//! The cost of the layers when nothing fails, side by side with the bare service and with
//! `tower::retry::Retry`; and the retry budget under contention, next to tower's `TpsBudget`.
//!
//! Run with `cargo bench --bench overhead`. The inner service answers at once and allocates
//! nothing, so what is measured is the layers' own work: polling, the decision to keep a copy,
//! the copy itself, and the budget deposit.

#[path = "../tests/support/instant_service.rs"]
mod instant_service;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use tower::retry::budget::{Budget as _, TpsBudget};
use tower::{BoxError, Layer, Service, ServiceBuilder};
use tower_reset::reset_retry::policy::Never;
use tower_reset::reset_retry::{Budget as _, RetryBudget};
use tower_reset::{BackoffLayer, ResetRetryLayer};

use crate::instant_service::{request, send, Answer, CloneGets, Request, Response};

fn bench_service<S>(
    c: &mut Criterion,
    group: &str,
    name: &str,
    mut service: S,
    method: http::Method,
    headers: usize,
) where
    S: Service<Request, Response = Response, Error = BoxError>,
{
    c.benchmark_group(group).bench_function(name, |b| {
        b.iter_batched(
            || request(method.clone(), headers),
            |request| black_box(send(&mut service, request)),
            BatchSize::SmallInput,
        )
    });
}

fn happy_path(c: &mut Criterion) {
    // A request that can never be retried (the policy says so): the fast path.
    let never = || ResetRetryLayer::builder().policy(Never).build().unwrap();
    bench_service(
        c,
        "never retried (POST, 8 headers)",
        "bare",
        Answer,
        http::Method::POST,
        8,
    );
    bench_service(
        c,
        "never retried (POST, 8 headers)",
        "ResetRetry",
        never().layer(Answer),
        http::Method::POST,
        8,
    );
    bench_service(
        c,
        "never retried (POST, 8 headers)",
        "Backoff",
        BackoffLayer::new().layer(Answer),
        http::Method::POST,
        8,
    );
    let stack = ServiceBuilder::new()
        .layer(never())
        .layer(BackoffLayer::new())
        .service(Answer);
    bench_service(
        c,
        "never retried (POST, 8 headers)",
        "ResetRetry + Backoff",
        stack,
        http::Method::POST,
        8,
    );

    // A retryable GET: one copy of the request is kept.
    for headers in [8, 32] {
        let group = format!("retryable GET, {headers} headers");
        bench_service(c, &group, "bare", Answer, http::Method::GET, headers);
        bench_service(
            c,
            &group,
            "tower::retry (cloning policy)",
            tower::retry::RetryLayer::new(CloneGets).layer(Answer),
            http::Method::GET,
            headers,
        );
        bench_service(
            c,
            &group,
            "ResetRetry",
            ResetRetryLayer::new().layer(Answer),
            http::Method::GET,
            headers,
        );
        let stack = ServiceBuilder::new()
            .layer(ResetRetryLayer::new())
            .layer(BackoffLayer::new())
            .service(Answer);
        bench_service(
            c,
            &group,
            "ResetRetry + Backoff",
            stack,
            http::Method::GET,
            headers,
        );
    }
}

/// Two threads, each depositing and withdrawing `iters` times; the time per operation pair.
fn contended<B: Send + Sync + 'static>(budget: Arc<B>, iters: u64, op: fn(&B)) -> Duration {
    let start = std::sync::Barrier::new(2);
    let start = Arc::new(start);
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (budget, start) = (budget.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let began = tokio::time::Instant::now();
                for _ in 0..iters {
                    op(&budget);
                }
                began.elapsed()
            })
        })
        .collect();
    let total: Duration = threads.into_iter().map(|t| t.join().unwrap()).sum();
    total / 2
}

fn budget(c: &mut Criterion) {
    let mut group = c.benchmark_group("budget, 2 threads contending (deposit + withdraw)");
    group.bench_function("tower TpsBudget", |b| {
        let budget = Arc::new(TpsBudget::new(Duration::from_secs(10), 10, 0.2));
        b.iter_custom(|iters| {
            contended(budget.clone(), iters, |budget| {
                budget.deposit();
                black_box(budget.withdraw());
            })
        })
    });
    group.finish();

    // The hot path: every retryable request deposits; only failures withdraw.
    let mut group = c.benchmark_group("budget, 2 threads contending (deposit only)");
    group.bench_function("tower TpsBudget", |b| {
        let budget = Arc::new(TpsBudget::new(Duration::from_secs(10), 10, 0.2));
        b.iter_custom(|iters| contended(budget.clone(), iters, |budget| budget.deposit()))
    });
    group.bench_function("RetryBudget", |b| {
        let budget = Arc::new(RetryBudget::default());
        b.iter_custom(|iters| contended(budget.clone(), iters, |budget| budget.deposit()))
    });
    group.finish();

    let mut group = c.benchmark_group("budget, 2 threads contending (deposit + withdraw)");
    group.bench_function("RetryBudget", |b| {
        let budget = Arc::new(RetryBudget::default());
        b.iter_custom(|iters| {
            contended(budget.clone(), iters, |budget| {
                budget.deposit();
                black_box(budget.try_withdraw());
            })
        })
    });
    group.finish();
}

criterion_group!(benches, happy_path, budget);
criterion_main!(benches);
