//! HTTP/2 (prior knowledge), served by the `h2` crate over a [`TapIo`].
//!
//! The connection task accepts streams and picks each one's action at once, in stream order,
//! so that a `GOAWAY` decided for stream `n` refuses every later stream before any of them can
//! be executed. Each stream is then handled in its own task; a handler that must end the whole
//! connection (a reset or a close) tells the connection task, which owns the socket.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use h2::server::SendResponse;
use h2::{Reason, RecvStream};
use http::{HeaderName, HeaderValue, Method, Version};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::connection::End;
use super::fault::{CutAt, Fault, Idle, Reply};
use super::http1::MAX_BODY;
use super::tap::{Tap, TapIo};
use super::{Conn, Received};

/// A client that does not finish the HTTP/2 preface and `SETTINGS` in this time is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a handler waits for its frames to reach the kernel before it acts anyway.
const TAP_WAIT: Duration = Duration::from_secs(2);
/// How long an idle connection being closed gets to finish its graceful shutdown.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// Concurrent streams a client may open on one connection.
const MAX_CONCURRENT_STREAMS: u32 = 256;

/// Serves one HTTP/2 connection until it ends; returns how to end it.
pub(super) async fn serve(slot: Arc<Mutex<Option<TcpStream>>>, conn: &Conn) -> End {
    let tap = Arc::new(Tap::default());
    let handshake = h2::server::Builder::new()
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .handshake::<_, Bytes>(TapIo::new(slot, Arc::clone(&tap)));
    let Ok(Ok(mut h2)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await else {
        return End::Drop;
    };
    let (commands, mut command) = mpsc::unbounded_channel();
    let mut streams = JoinSet::new();
    let mut idle_since = Instant::now();
    let idle = conn.shared.idle;

    // Every turn waits for an event from the client, a handler or the clock, and the number of
    // streams on a connection is bounded by the protocol (2^30 client streams).
    loop {
        let idle_deadline = match idle {
            Some((timeout, Idle::Reset | Idle::Fin)) if streams.is_empty() => {
                Some(idle_since + timeout)
            }
            _ => None,
        };
        tokio::select! {
            accepted = h2.accept() => {
                let Some(Ok((request, respond))) = accepted else {
                    // The client left, or every stream is done after a GOAWAY.
                    return End::FIN;
                };
                let stale = matches!(idle, Some((timeout, Idle::Forget))
                    if streams.is_empty() && idle_since.elapsed() > timeout);
                if stale || conn.forgotten() {
                    conn.count_forgotten();
                    return End::RESET;
                }
                let id = u32::from(respond.stream_id());
                let cutoff = tap.lock().cutoff;
                let refused = cutoff.is_some_and(|cutoff| id > cutoff);
                let (parts, body) = request.into_parts();
                let received =
                    conn.receive(&parts.method, &parts.uri, Version::HTTP_2, &parts.headers, !refused);
                let goaway = refused || received.action == Fault::GoAway;
                if goaway && cutoff.is_none() {
                    // This stream and every later one are refused; earlier ones go on.
                    tap.lock().cutoff = Some(id.saturating_sub(2));
                    h2.graceful_shutdown();
                }
                let handler = Handler {
                    id,
                    conn: conn.clone(),
                    tap: Arc::clone(&tap),
                    commands: commands.clone(),
                    echo: conn.echo(&parts.headers),
                    head_only: parts.method == Method::HEAD,
                    method: parts.method,
                    headers: parts.headers,
                };
                streams.spawn(handler.run(body, respond, received, goaway));
            }
            Some(_) = streams.join_next(), if !streams.is_empty() => {
                if streams.is_empty() {
                    idle_since = Instant::now();
                }
            }
            Some(end) = command.recv() => return end,
            () = sleep_until(idle_deadline), if idle_deadline.is_some() => {
                conn.count_idle();
                if matches!(idle, Some((_, Idle::Fin))) {
                    h2.graceful_shutdown();
                    let _ = tokio::time::timeout(
                        CLOSE_WAIT,
                        std::future::poll_fn(|cx| h2.poll_closed(cx)),
                    )
                    .await;
                    return End::FIN;
                }
                return End::RESET;
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Handles one stream.
#[derive(Debug)]
struct Handler {
    id: u32,
    conn: Conn,
    tap: Arc<Tap>,
    /// Tells the connection task to end the connection (it aborts this handler).
    commands: mpsc::UnboundedSender<End>,
    echo: Option<(HeaderName, HeaderValue)>,
    head_only: bool,
    /// The request's method and headers, which a reply that serves ranges answers.
    method: Method,
    headers: http::HeaderMap,
}

impl Handler {
    async fn run(
        self,
        mut body: RecvStream,
        mut respond: SendResponse<Bytes>,
        received: Received,
        goaway: bool,
    ) {
        if goaway {
            // The RST_STREAM must follow the GOAWAY, so that the client learns from the GOAWAY.
            self.wait(|tap| tap.goaway_sent).await;
            respond.send_reset(Reason::REFUSED_STREAM);
            return;
        }
        match received.action {
            Fault::RefuseStream => return respond.send_reset(Reason::REFUSED_STREAM),
            Fault::ResetAfterHead => return self.end(End::RESET).await,
            Fault::CloseAfterHead => return self.end(End::FIN).await,
            _ => {}
        }
        if !read_body(&mut body).await {
            respond.send_reset(Reason::CANCEL);
            return;
        }
        self.conn.execute(received.nth);

        match received.action {
            Fault::Reply(reply) => {
                let reply = reply.for_request(&self.method, &self.headers);
                let _ = self.send(&mut respond, &reply).await;
            }
            Fault::ResetAfterRequest => self.end(End::RESET).await,
            Fault::CloseAfterRequest => self.end(End::FIN).await,
            // Handled above, before the body was read.
            Fault::ResetAfterHead | Fault::CloseAfterHead | Fault::RefuseStream | Fault::GoAway => {
            }
            // Every other action cuts the lab's reply.
            action => {
                let reply = self
                    .conn
                    .shared
                    .reply
                    .for_request(&self.method, &self.headers);
                let Some(cut) = action.cut(reply.body.len()) else {
                    return self.end(End::RESET).await;
                };
                let id = self.id;
                let stream = match cut.at {
                    CutAt::Body(n) => {
                        self.tap.watch_data(id);
                        let part = reply.body.slice(..n);
                        let stream = respond
                            .send_response(self.head(&reply), false)
                            .and_then(|mut stream| stream.send_data(part, false).map(|()| stream));
                        if stream.is_ok() {
                            self.conn.count_body(n);
                            self.wait(|tap| tap.data_sent.get(&id).is_some_and(|sent| *sent >= n))
                                .await;
                        }
                        stream
                    }
                    CutAt::Head => {
                        self.tap.cut_headers(id);
                        let stream = respond.send_response(self.head(&reply), false);
                        if stream.is_ok() {
                            self.wait(|tap| tap.cut_sent.contains(&id)).await;
                        }
                        stream
                    }
                };
                self.end(End::Disconnect(cut.end)).await;
                drop(stream);
            }
        }
    }

    /// Writes a reply: the delay, the head, then the body in its pieces.
    async fn send(
        &self,
        respond: &mut SendResponse<Bytes>,
        reply: &Reply,
    ) -> Result<(), h2::Error> {
        if !reply.delay.is_zero() {
            tokio::time::sleep(reply.delay).await;
        }
        let pieces = if self.head_only || reply.body.is_empty() {
            Vec::new()
        } else {
            reply.pieces()
        };
        let trailers = !reply.trailers.is_empty();
        let mut stream = respond.send_response(self.head(reply), pieces.is_empty() && !trailers)?;
        let last = pieces.len().saturating_sub(1);
        for (index, piece) in pieces.into_iter().enumerate() {
            if index > 0 && !reply.pause.is_zero() {
                tokio::time::sleep(reply.pause).await;
            }
            let len = piece.len();
            stream.send_data(piece, index == last && !trailers)?;
            self.conn.count_body(len);
        }
        if trailers {
            let mut map = http::HeaderMap::with_capacity(reply.trailers.len());
            for (name, value) in &reply.trailers {
                map.append(name.clone(), value.clone());
            }
            stream.send_trailers(map)?;
        }
        Ok(())
    }

    /// The response head of `reply`, without the headers HTTP/2 forbids.
    fn head(&self, reply: &Reply) -> http::Response<()> {
        let mut response = http::Response::new(());
        *response.status_mut() = reply.status;
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_LENGTH,
            HeaderValue::from(reply.body.len()),
        );
        if let Some((name, value)) = &self.echo {
            headers.insert(name.clone(), value.clone());
        }
        for (name, value) in &reply.headers {
            if !is_connection_specific(name) {
                headers.append(name.clone(), value.clone());
            }
        }
        response
    }

    /// Waits (bounded) until the output has reached the point `done` describes.
    async fn wait(&self, done: impl Fn(&super::tap::TapState) -> bool) {
        let _ = tokio::time::timeout(TAP_WAIT, self.tap.wait(done)).await;
    }

    /// Asks the connection task to end the connection, and waits for it to abort this handler.
    ///
    /// The handler must not end by itself: dropping its stream handles would make `h2` send
    /// `RST_STREAM(CANCEL)`, which the client could read before the connection-level reset or
    /// close that the script asked for.
    async fn end(&self, end: End) {
        if self.commands.send(end).is_ok() {
            std::future::pending::<()>().await;
        }
    }
}

/// Reads the request body to its end; `false` when it fails or is too long.
async fn read_body(body: &mut RecvStream) -> bool {
    let mut total = 0usize;
    // Each turn waits for a frame from the client; the total is limited.
    while let Some(chunk) = body.data().await {
        let Ok(chunk) = chunk else {
            return false;
        };
        total = total.saturating_add(chunk.len());
        if total > MAX_BODY {
            return false;
        }
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    true
}

/// Headers that HTTP/2 forbids (RFC 9113 §8.2.2); `h2` refuses a response that has them.
fn is_connection_specific(name: &HeaderName) -> bool {
    use http::header;
    name == header::CONNECTION
        || name == header::TRANSFER_ENCODING
        || name == header::UPGRADE
        || name == header::TE
        || name == "keep-alive"
        || name == "proxy-connection"
}
