//! Helpers shared by the tonic tests.

use std::error::Error;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use tower::ServiceBuilder;
use tower_reset::backoff::Backoff;
use tower_reset::classify::StandardClassifier;
use tower_reset::replay::{ReplayBodyLayer, ReplayBodyService};
use tower_reset::tonic::{
    fresh_channel, ChannelBody, ChannelBodyLayer, FreshChannel, IdempotentMethods,
    UnavailableStatus, UnavailableStatusLayer,
};
use tower_reset::{BackoffLayer, ResetRetry, ResetRetryLayer};

use crate::echo::EchoClient;

/// No test may take longer than this: a bug fails it instead of hanging it.
pub(crate) const BOUND: Duration = Duration::from_secs(10);

/// Awaits `fut`, failing the test if it takes longer than [`BOUND`].
pub(crate) async fn bounded<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(BOUND, fut).await {
        Ok(out) => out,
        Err(_) => panic!("{what}: no answer within {BOUND:?}"),
    }
}

/// A channel to `addr` that connects on first use.
pub(crate) fn channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("a valid URI")
        .connect_lazy()
}

/// A loopback address on which nothing listens: bound, read, and released at once.
pub(crate) fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local_addr");
    drop(listener);
    addr
}

use crate::error_chain::chain;

/// The first link of `err`'s chain of type `T`.
pub(crate) fn find<'a, T: Error + 'static>(err: &'a (dyn Error + 'static)) -> Option<&'a T> {
    chain(err)
        .into_iter()
        .find_map(|link| link.downcast_ref::<T>())
}

/// The chain, one `Debug` per link, for failure messages.
pub(crate) fn describe(err: &(dyn Error + 'static)) -> String {
    chain(err)
        .iter()
        .map(|link| format!("{link:?}"))
        .collect::<Vec<_>>()
        .join("\n  caused by: ")
}

/// The stack of the module documentation of `tower_reset::tonic`, over a fresh channel.
pub(crate) type Stack = UnavailableStatus<
    ReplayBodyService<ResetRetry<Backoff<ChannelBody<FreshChannel>>, IdempotentMethods>>,
>;

/// How a test sets up the stack.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// Methods declared idempotent.
    pub(crate) idempotent: Vec<&'static str>,
    /// `StandardClassifier::unavailable_responses`.
    pub(crate) unavailable_responses: bool,
    /// The replay cap.
    pub(crate) cap: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            idempotent: Vec::new(),
            unavailable_responses: false,
            cap: tower_reset::replay::DEFAULT_CAP,
        }
    }
}

impl Options {
    pub(crate) fn idempotent(mut self, methods: &[&'static str]) -> Self {
        self.idempotent = methods.to_vec();
        self
    }

    pub(crate) fn unavailable_responses(mut self) -> Self {
        self.unavailable_responses = true;
        self
    }

    /// The stack over a fresh channel to `addr`.
    pub(crate) fn stack(&self, addr: SocketAddr) -> Stack {
        let classifier =
            StandardClassifier::new().unavailable_responses(self.unavailable_responses);
        let retry = ResetRetryLayer::builder()
            .policy(IdempotentMethods::new(&self.idempotent))
            .classifier(classifier)
            .build()
            .expect("valid settings");
        ServiceBuilder::new()
            .layer(UnavailableStatusLayer::new().classifier(classifier))
            .layer(ReplayBodyLayer::new().cap(self.cap))
            .layer(retry)
            .layer(BackoffLayer::new())
            .layer(ChannelBodyLayer::new())
            .service(fresh_channel(
                Endpoint::from_shared(format!("http://{addr}")).expect("a valid URI"),
            ))
    }

    /// A generated client over [`Options::stack`].
    pub(crate) fn client(&self, addr: SocketAddr) -> EchoClient<Stack> {
        EchoClient::new(self.stack(addr))
    }
}
