//! The preset for tonic: a channel to one `Endpoint`, and the clients generated for it.

use tonic::transport::Endpoint;
use tower::Layer;

use crate::backoff::policy::Exponential;
use crate::classify::StandardClassifier;
use crate::replay::{ReplayBodyLayer, ReplayBodyService};
use crate::tonic::{
    fresh_channel, ChannelBody, ChannelBodyLayer, FreshChannel, IdempotentMethods,
    UnavailableStatus, UnavailableStatusLayer,
};
use crate::{Backoff, BackoffLayer, ResetRetry, ResetRetryLayer};

/// The recommended stack for tonic, in the right order (see [`crate::tonic`] for why each
/// piece is there): [`UnavailableStatusLayer`] (final connection failures as `UNAVAILABLE`),
/// [`ReplayBodyLayer`] (keep what was sent, up to 64 KiB), [`ResetRetryLayer`] with
/// [`IdempotentMethods`] and trailers-only `UNAVAILABLE` answers retried (whether),
/// [`BackoffLayer`] (when), [`ChannelBodyLayer`] (back to `tonic::body::Body`).
///
/// Put it over [`fresh_channel`], as [`grpc_channel`] does, so that a retry goes out on a new
/// connection. The service it makes is a [`GrpcStack`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tonic::transport::Endpoint;
/// use tower::Layer;
/// use tower_reset::classify::StandardClassifier;
/// use tower_reset::preset::{GrpcLayer, GrpcStack};
/// use tower_reset::tonic::{fresh_channel, FreshChannel, IdempotentMethods};
/// use tower_reset::ResetRetryLayer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), tower_reset::ConfigError> {
/// let retry = ResetRetryLayer::builder()
///     .policy(IdempotentMethods::new(["/echo.Echo/Get"]))
///     .classifier(StandardClassifier::new().unavailable_responses(true))
///     .deadline(Duration::from_secs(2))
///     .build()?;
/// let endpoint = Endpoint::from_static("http://127.0.0.1:50051");
/// let channel: GrpcStack<FreshChannel> = GrpcLayer::new(retry).layer(fresh_channel(endpoint));
/// // `EchoClient::new(channel)`
/// # let _ = channel;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct GrpcLayer<P = IdempotentMethods, C = StandardClassifier, B = Exponential> {
    retry: ResetRetryLayer<P, C>,
    backoff: BackoffLayer<B>,
    replay: ReplayBodyLayer,
    status: UnavailableStatusLayer<C>,
}

/// The service [`GrpcLayer`] makes over `S`.
pub type GrpcStack<S, P = IdempotentMethods, C = StandardClassifier, B = Exponential> =
    UnavailableStatus<ReplayBodyService<ResetRetry<Backoff<ChannelBody<S>, B>, P, C>>, C>;

/// The recommended tonic stack over [`fresh_channel`], as [`grpc_channel`] makes it: hand it to
/// a generated client (`EchoClient<GrpcChannel>`), store that in a struct.
pub type GrpcChannel = GrpcStack<FreshChannel>;

impl<P> GrpcLayer<P> {
    /// The stack with `retry` as its retry layer (build it with the policy of your methods,
    /// usually [`IdempotentMethods`]) and the other layers' defaults; the classifier of the
    /// `UNAVAILABLE` mapping is `retry`'s own.
    pub fn new<C: Clone>(retry: ResetRetryLayer<P, C>) -> GrpcLayer<P, C> {
        let status = UnavailableStatusLayer::new().classifier(retry.classifier().clone());
        GrpcLayer {
            retry,
            backoff: BackoffLayer::new(),
            replay: ReplayBodyLayer::new(),
            status,
        }
    }
}

impl<P, C, B> GrpcLayer<P, C, B> {
    /// The backoff layer. Defaults to `BackoffLayer::new()`.
    pub fn backoff<A>(self, backoff: BackoffLayer<A>) -> GrpcLayer<P, C, A> {
        GrpcLayer {
            retry: self.retry,
            backoff,
            replay: self.replay,
            status: self.status,
        }
    }

    /// The most bytes of each call kept to send it again (a longer client stream is sent once).
    /// Defaults to 64 KiB.
    pub fn replay_cap(mut self, cap: usize) -> Self {
        self.replay = self.replay.cap(cap);
        self
    }
}

impl<S, P: Clone, C: Clone, B: Clone> Layer<S> for GrpcLayer<P, C, B> {
    type Service = GrpcStack<S, P, C, B>;

    fn layer(&self, inner: S) -> Self::Service {
        let channel = ChannelBodyLayer::new().layer(inner);
        let retried = self.retry.layer(self.backoff.layer(channel));
        self.status.layer(self.replay.layer(retried))
    }
}

/// A tonic channel to `endpoint` under the recommended stack: [`GrpcLayer`] over
/// [`fresh_channel`]`(endpoint)`, retrying the failures the server certainly did not process
/// for every method, and the others for the `idempotent` methods
/// (`"/package.Service/Method"`, those your proto marks `idempotency_level = IDEMPOTENT`),
/// trailers-only `UNAVAILABLE` answers included.
///
/// Like `Endpoint::connect_lazy`, it connects on the first call, and must be called inside a
/// tokio runtime.
///
/// # Examples
///
/// ```
/// use tonic::transport::Endpoint;
/// use tower_reset::preset::{grpc_channel, GrpcChannel};
///
/// struct Clients {
///     // With a generated client: `echo: EchoClient<GrpcChannel>`.
///     echo: tonic::client::Grpc<GrpcChannel>,
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let channel = grpc_channel(
///     Endpoint::from_static("http://127.0.0.1:50051"),
///     ["/echo.Echo/Get"],
/// );
/// let clients = Clients { echo: tonic::client::Grpc::new(channel) };
/// # let _ = clients.echo;
/// # }
/// ```
pub fn grpc_channel<I>(endpoint: Endpoint, idempotent: I) -> GrpcChannel
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    let retry = ResetRetryLayer::builder()
        .policy(IdempotentMethods::new(idempotent))
        .classifier(StandardClassifier::new().unavailable_responses(true))
        .build()
        .expect("the default limits are valid");
    GrpcLayer::new(retry).layer(fresh_channel(endpoint))
}
