//! Instructions per request through each layer, counted by callgrind: unlike wall-clock
//! time, the count is the same from run to run, whatever else the machine is doing.
//!
//! Run `benches/instructions.sh`, which builds this bench and runs every variant under
//! `valgrind --tool=callgrind`. Alone, `cargo bench --bench instructions -- <variant>` sends
//! the requests of one variant and prints nothing of interest.

#[path = "../tests/support/instant_service.rs"]
mod instant_service;

use std::hint::black_box;

use tower::{BoxError, Layer, Service, ServiceBuilder};
use tower_reset::diagnose::{Collector, DiagnoseLayer};
use tower_reset::reset_retry::policy::Never;
use tower_reset::{BackoffLayer, FreshConnectionLayer, ResetRetryLayer};

use crate::instant_service::{request, send, Answer, CloneGets, Request, Response};

/// Requests sent per run: enough that start-up is noise next to them.
const REQUESTS: usize = 100_000;

/// Requests per run of the body variants.
const BODY_REQUESTS: usize = 10_000;

/// Sends requests whose responses have a body of `frames` frames, and reads every frame.
fn run_bodies<S, B>(mut service: S, frames: usize)
where
    S: Service<Request, Response = http::Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body + Unpin,
    B::Error: std::fmt::Debug,
{
    for _ in 0..BODY_REQUESTS {
        let read = instant_service::send_and_read(&mut service, request(http::Method::GET, 8));
        assert_eq!(black_box(read), frames);
    }
}

fn run<S>(mut service: S, method: http::Method)
where
    S: Service<Request, Response = Response, Error = BoxError>,
{
    // The requests are built before the count starts (see instructions.sh: only `send` is
    // counted), so what differs between variants is the layers' own work.
    for _ in 0..REQUESTS {
        black_box(send(&mut service, request(method.clone(), 8)));
    }
}

fn main() {
    let variant = std::env::args()
        .skip(1)
        .find(|arg| !arg.starts_with('-'))
        .unwrap_or_default();
    let never = || ResetRetryLayer::builder().policy(Never).build().unwrap();
    let (post, get) = (http::Method::POST, http::Method::GET);
    match variant.as_str() {
        "post-bare" => run(Answer, post),
        "post-reset-retry" => run(never().layer(Answer), post),
        "post-backoff" => run(BackoffLayer::new().layer(Answer), post),
        "post-stack" => run(
            ServiceBuilder::new()
                .layer(never())
                .layer(BackoffLayer::new())
                .service(Answer),
            post,
        ),
        "post-fresh-connection" => run(FreshConnectionLayer::detour(Answer).layer(Answer), post),
        "post-full-stack" => run(
            ServiceBuilder::new()
                .layer(never())
                .layer(BackoffLayer::new())
                .layer(FreshConnectionLayer::detour(Answer))
                .service(Answer),
            post,
        ),
        "get-bare" => run(Answer, get),
        "get-tower-retry" => run(tower::retry::RetryLayer::new(CloneGets).layer(Answer), get),
        "get-reset-retry" => run(ResetRetryLayer::new().layer(Answer), get),
        "get-stack" => run(
            ServiceBuilder::new()
                .layer(ResetRetryLayer::new())
                .layer(BackoffLayer::new())
                .service(Answer),
            get,
        ),
        "get-full-stack" => run(
            ServiceBuilder::new()
                .layer(ResetRetryLayer::new())
                .layer(BackoffLayer::new())
                .layer(FreshConnectionLayer::detour(Answer))
                .service(Answer),
            get,
        ),
        // `body-bare-<frames>` and `body-resume-<frames>`: a GET whose body has that many frames.
        body if body.starts_with("body-") => {
            let frames: usize = body
                .rsplit('-')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(64);
            let answer = instant_service::Frames { frames };
            if body.starts_with("body-bare-") {
                run_bodies(answer, frames);
            } else {
                #[cfg(feature = "resume")]
                run_bodies(tower_reset::ResumeLayer::new().layer(answer), frames);
                #[cfg(not(feature = "resume"))]
                eprintln!("body-resume-* needs the `resume` feature");
            }
        }
        "get-diagnose" => run(DiagnoseLayer::new(Collector::new()).layer(Answer), get),
        // The pooled strategy over a service that reports no connection (no `HttpInfo`): its
        // own cost per request (a capture, the registry's lock), alone and with a collector.
        #[cfg(feature = "hyper-util")]
        "get-pooled" => run(FreshConnectionLayer::new().layer(Answer), get),
        #[cfg(feature = "hyper-util")]
        "get-pooled-diagnose" => run(
            FreshConnectionLayer::new()
                .diagnose(Collector::new())
                .layer(Answer),
            get,
        ),
        _ => eprintln!("usage: instructions <variant> (see benches/instructions.sh)"),
    }
}
