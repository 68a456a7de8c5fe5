//! A tonic channel and the generated `EchoClient` under the tonic preset (`GrpcLayer`, the stack
//! of the README's gRPC section): `UnavailableStatusLayer` → `ReplayBodyLayer` → `ResetRetryLayer`
//! with `IdempotentMethods` → `BackoffLayer` → `ChannelBodyLayer` → `fresh_channel(endpoint)`. The lab answers every call with a
//! well-formed gRPC reply (a framed `EchoReply`, `grpc-status: 0` in the trailers).
//!
//! gRPC has no methods and no `Idempotency-Key`: every call is a `POST`. The matrix maps its four
//! kinds of request onto calls as follows:
//!
//! | matrix | gRPC call |
//! |---|---|
//! | GET, PUT | `echo.Echo/Get`, declared idempotent (`IdempotentMethods`) |
//! | POST | `echo.Echo/Echo`, not declared idempotent |
//! | POST + key | `echo.Echo/Echo` with an `idempotency-key` metadata entry |

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderName, HeaderValue};
use prost::Message;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tower::{Layer, Service};
use tower_reset::attempt::HistoryObserver;
use tower_reset::lab::{ConnectionMatch, Disconnect, Fault, Lab, Match, Reply};
use tower_reset::preset::{GrpcLayer, GrpcStack};
use tower_reset::tonic::{fresh_channel, FreshChannel, IdempotentMethods};

use crate::echo::{path, EchoClient, EchoReply, EchoRequest};
use crate::matrix::Client as Column;
use crate::support::{backoff_layer, BoxFuture, Call, End, Method, Observed, Sender, REPLY_BODY};

/// The stack of the README's gRPC section: the tonic preset over `fresh_channel`.
type Stack = GrpcStack<FreshChannel>;

/// The lab's reply: a framed `EchoReply` carrying [`REPLY_BODY`], then `grpc-status: 0`.
pub(crate) fn grpc_reply() -> Reply {
    let message = EchoReply {
        payload: REPLY_BODY.to_vec(),
        served: 1,
    }
    .encode_to_vec();
    let mut body = Vec::with_capacity(5 + message.len());
    body.push(0); // not compressed
    body.extend_from_slice(&u32::try_from(message.len()).expect("small").to_be_bytes());
    body.extend_from_slice(&message);
    Reply::ok()
        .body(body)
        .header(CONTENT_TYPE, HeaderValue::from_static("application/grpc"))
        .trailer(
            HeaderName::from_static("grpc-status"),
            HeaderValue::from_static("0"),
        )
}

/// The same stack over a bare `Channel`.
type ChannelStack = GrpcStack<Channel>;

fn endpoint(lab: &Lab) -> Endpoint {
    Endpoint::from_shared(format!("http://{}", lab.addr())).expect("a valid URI")
}

/// The layers of the stack over `channel`.
fn stack_over<C>(channel: C) -> GrpcStack<C> {
    let retry = tower_reset::ResetRetryLayer::builder()
        // `rpc Get` is declared `idempotency_level = IDEMPOTENT`.
        .policy(IdempotentMethods::new([path::GET]))
        .build()
        .expect("valid settings");
    GrpcLayer::new(retry)
        .backoff(backoff_layer())
        .layer(channel)
}

fn stack(lab: &Lab) -> Stack {
    // Which connection: a new one after a failure.
    stack_over(fresh_channel(endpoint(lab)))
}

/// Set, in a request's extensions, once the stack has returned the call's response head: an
/// error after that came from the response body.
#[derive(Debug, Clone, Default)]
struct HeadSeen(Arc<AtomicBool>);

/// A probe between the generated client and the stack: marks [`HeadSeen`].
#[derive(Debug, Clone)]
struct SeeHead<S> {
    inner: S,
}

struct SeeHeadLayer;

impl<S> Layer<S> for SeeHeadLayer {
    type Service = SeeHead<S>;

    fn layer(&self, inner: S) -> SeeHead<S> {
        SeeHead { inner }
    }
}

impl<S, B> Service<http::Request<B>> for SeeHead<S>
where
    S: Service<http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let seen = request.extensions().get::<HeadSeen>().cloned();
        let future = self.inner.call(request);
        Box::pin(async move {
            let result = future.await;
            if let (Ok(_), Some(seen)) = (&result, seen) {
                seen.0.store(true, Ordering::SeqCst);
            }
            result
        })
    }
}

/// The generated client over the stack, aimed at a lab.
pub(crate) struct Tonic<S = Stack> {
    client: EchoClient<SeeHead<S>>,
}

impl Tonic {
    pub(crate) fn new(lab: &Lab) -> Self {
        Self {
            client: EchoClient::new(SeeHeadLayer.layer(stack(lab))),
        }
    }
}

impl Tonic<ChannelStack> {
    /// The same stack over a bare `Channel` (`Endpoint::connect_lazy`) in place of
    /// `fresh_channel`.
    pub(crate) fn over_channel(lab: &Lab) -> Self {
        let channel = endpoint(lab).connect_lazy();
        Self {
            client: EchoClient::new(SeeHeadLayer.layer(stack_over(channel))),
        }
    }
}

/// `Sender` for the client over each of the two stacks (their types differ, the calls do not).
macro_rules! tonic_sender {
    ($stack:ty) => {
        impl Sender for Tonic<$stack> {
            fn send(&self, call: Call) -> BoxFuture<'_, Observed> {
                send_call(self.client.clone(), call)
            }
        }
    };
}

tonic_sender!(Stack);
tonic_sender!(ChannelStack);

/// `call` through `client`, as `Get` (GET, PUT) or `Echo` (POST).
fn send_call<S>(mut client: EchoClient<SeeHead<S>>, call: Call) -> BoxFuture<'static, Observed>
where
    S: Service<http::Request<tonic::body::Body>, Response = http::Response<tonic::body::Body>>
        + Send
        + 'static,
    S::Error: Into<tower::BoxError>,
    S::Future: Send + 'static,
{
    Box::pin(async move {
        let mut request = tonic::Request::new(EchoRequest {
            payload: call.body().to_vec(),
        });
        let id = MetadataValue::try_from(call.id.as_str()).expect("an ASCII id");
        request.metadata_mut().insert("x-request-id", id.clone());
        if call.idempotency_key().is_some() {
            request.metadata_mut().insert("idempotency-key", id);
        }
        let observer = HistoryObserver::default();
        let seen = HeadSeen::default();
        request.extensions_mut().insert(observer.clone());
        request.extensions_mut().insert(seen.clone());
        let result = match call.method {
            Method::Get | Method::Put => client.get(request).await,
            Method::Post | Method::PostWithKey => client.echo(request).await,
        };
        let end = match result {
            Ok(reply) => End::Ok(Bytes::from(reply.into_inner().payload)),
            Err(status) if seen.0.load(Ordering::SeqCst) => End::BodyFailed(format!("{status:?}")),
            Err(status) => End::Failed(format!("{status:?}")),
        };
        Observed::new(end, observer.get())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_matrix() {
    crate::matrix::check_client(Column::Tonic).await;
}

/// A connection failure the tonic stack must get over with one more attempt, on a new
/// connection.
#[derive(Debug, Clone, Copy)]
enum Broken {
    /// The lab resets its first connection as it accepts it.
    ResetAtAccept,
    /// The lab closes its first connection (FIN) as it accepts it.
    FinAtAccept,
    /// After a first call, the lab resets the connection once it has read the second.
    ResetAfterRequest,
    /// After a first call, the lab closes the connection once it has read the second.
    CloseAfterRequest,
    /// After a first call, the lab sends `GOAWAY(NO_ERROR)` below the second call's stream.
    GoAway,
    /// After a first call, the lab forgets the connection (a NAT that dropped it): the second
    /// call is reset unread.
    Forgotten,
}

impl Broken {
    const ALL: [Broken; 6] = [
        Broken::ResetAtAccept,
        Broken::FinAtAccept,
        Broken::ResetAfterRequest,
        Broken::CloseAfterRequest,
        Broken::GoAway,
        Broken::Forgotten,
    ];

    fn warm(self) -> bool {
        !matches!(self, Broken::ResetAtAccept | Broken::FinAtAccept)
    }

    async fn lab(self) -> Lab {
        let lab = Lab::builder().http2().reply(grpc_reply());
        let lab = match self {
            Broken::ResetAtAccept => lab.on_accept(ConnectionMatch::nth(1), Disconnect::Reset),
            Broken::FinAtAccept => lab.on_accept(ConnectionMatch::nth(1), Disconnect::Fin),
            Broken::ResetAfterRequest => lab.on(Match::nth(2), Fault::ResetAfterRequest),
            Broken::CloseAfterRequest => lab.on(Match::nth(2), Fault::CloseAfterRequest),
            Broken::GoAway => lab.on(Match::nth(2), Fault::GoAway),
            Broken::Forgotten => lab,
        };
        lab.start().await.expect("start a lab")
    }
}

/// Every connection failure costs the idempotent call at most one more attempt, and that
/// attempt goes out on a new connection: the lab's per-connection counts show the call that
/// succeeded alone on a second connection. (At accept, the connected channel may also see the
/// connection go before it sends, and reconnect by itself: then one attempt does.) Each case
/// runs 20 times, since the channel's own view of its connection races the retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retry_after_a_connection_failure_goes_out_on_a_new_connection() {
    let mut problems = Vec::new();
    for broken in Broken::ALL {
        for round in 0..20 {
            let lab = broken.lab().await;
            let tonic = Tonic::new(&lab);
            let observed = tokio::time::timeout(crate::support::REQUEST_BOUND, async {
                if broken.warm() {
                    let warm = tonic
                        .send(Call::new(Method::Get, format!("warm-{round}")))
                        .await;
                    assert!(matches!(warm.end, End::Ok(_)), "{broken:?}: {warm:?}");
                    if matches!(broken, Broken::Forgotten) {
                        lab.forget_connections();
                    }
                }
                tonic
                    .send(Call::new(Method::Get, format!("get-{round}")))
                    .await
            })
            .await
            .expect("no hang");
            let counts = lab.counts();
            let per_connection = counts.requests_per_connection().to_vec();
            let on_new_connection = per_connection.len() == 2 && per_connection[1] == 1;
            let attempts_ok = observed.attempts == 2 || (!broken.warm() && observed.attempts == 1);
            if !matches!(observed.end, End::Ok(_)) || !attempts_ok || !on_new_connection {
                problems.push(format!(
                    "{broken:?} round {round}: {:?} after {} attempts ({:?}), requests per \
                     connection {per_connection:?}",
                    observed.end, observed.attempts, observed.failures
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
