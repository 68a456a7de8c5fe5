//! A tonic `Channel` and the generated `EchoClient` under the stack of the README's gRPC
//! section: `UnavailableStatusLayer` → `ReplayBodyLayer` → `ResetRetryLayer` with
//! `IdempotentMethods` → `BackoffLayer` → `ChannelBodyLayer`. The lab answers every call with a
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
use tower::{Layer, Service, ServiceBuilder};
use tower_reset::attempt::HistoryObserver;
use tower_reset::backoff::Backoff;
use tower_reset::lab::{Lab, Reply};
use tower_reset::replay::{ReplayBodyLayer, ReplayBodyService};
use tower_reset::tonic::{
    ChannelBody, ChannelBodyLayer, IdempotentMethods, UnavailableStatus, UnavailableStatusLayer,
};
use tower_reset::ResetRetry;

use crate::echo::{path, EchoClient, EchoReply, EchoRequest};
use crate::matrix::Client as Column;
use crate::support::{backoff_layer, BoxFuture, Call, End, Method, Observed, Sender, REPLY_BODY};

/// The stack of the README's gRPC section, over a channel.
type Stack = UnavailableStatus<
    ReplayBodyService<ResetRetry<Backoff<ChannelBody<Channel>>, IdempotentMethods>>,
>;

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

fn stack(lab: &Lab) -> Stack {
    let channel = Endpoint::from_shared(format!("http://{}", lab.addr()))
        .expect("a valid URI")
        .connect_lazy();
    let retry = tower_reset::ResetRetryLayer::builder()
        // `rpc Get` is declared `idempotency_level = IDEMPOTENT`.
        .policy(IdempotentMethods::new([path::GET]))
        .build()
        .expect("valid settings");
    ServiceBuilder::new()
        .layer(UnavailableStatusLayer::new()) // final connection failures: UNAVAILABLE
        .layer(ReplayBodyLayer::new()) // keep what was sent, up to 64 KiB
        .layer(retry) // whether
        .layer(backoff_layer()) // when
        .layer(ChannelBodyLayer::new()) // back to `tonic::body::Body`
        .service(channel)
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
pub(crate) struct Tonic {
    client: EchoClient<SeeHead<Stack>>,
}

impl Tonic {
    pub(crate) fn new(lab: &Lab) -> Self {
        Self {
            client: EchoClient::new(SeeHeadLayer.layer(stack(lab))),
        }
    }
}

impl Sender for Tonic {
    fn send(&self, call: Call) -> BoxFuture<'_, Observed> {
        let mut client = self.client.clone();
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
                Err(status) if seen.0.load(Ordering::SeqCst) => {
                    End::BodyFailed(format!("{status:?}"))
                }
                Err(status) => End::Failed(format!("{status:?}")),
            };
            Observed::new(end, observer.get())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_matrix() {
    crate::matrix::check_client(Column::Tonic).await;
}
