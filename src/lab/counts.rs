//! What the lab saw, counted on the server side.

use std::collections::HashMap;

use http::{Method, Uri};
use tokio::time::Instant;

/// A snapshot of what the lab saw, taken by [`Lab::counts`](super::Lab::counts).
///
/// The counts never go down and survive restarts. Two moments matter for a request:
///
/// * **received** (an *arrival*): its head was read (HTTP/1.1) or its `HEADERS` arrived
///   (HTTP/2), and it was given a rank and an action. A request that a forgotten connection
///   resets before reading it ([`Idle::Forget`](super::Idle::Forget),
///   [`Lab::forget_connections`](super::Lab::forget_connections)) is never received: it did
///   not reach the server.
/// * **executed**: its whole body was read (`Content-Length`, chunked, or up to the HTTP/2
///   `END_STREAM`) and its action is one where the server acts on it (see the table in
///   [`Fault`](super::Fault)). It counts at that moment, before the reply's delay and before
///   any byte of the response is written, so a request whose response is then reset or cut
///   still counts once. A request whose connection dies before its body is complete (a client
///   that gives up, a restart, a body over the 16 MiB limit) is never executed.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub(crate) connections: usize,
    pub(crate) requests_per_connection: Vec<usize>,
    pub(crate) received: usize,
    pub(crate) received_by_method: HashMap<Method, usize>,
    pub(crate) executed: usize,
    pub(crate) executed_by_method: HashMap<Method, usize>,
    pub(crate) arrivals: HashMap<String, usize>,
    pub(crate) executions: HashMap<String, usize>,
    pub(crate) rule_hits: Vec<u64>,
    pub(crate) accept_hits: Vec<u64>,
    pub(crate) idle_disconnects: usize,
    pub(crate) forgotten_resets: usize,
    pub(crate) body_bytes: u64,
    pub(crate) requests: Vec<RequestRecord>,
}

impl Counts {
    /// Connections accepted, including those a rule of
    /// [`LabBuilder::on_accept`](super::LabBuilder::on_accept) dropped at once.
    pub fn connections(&self) -> usize {
        self.connections
    }

    /// For each accepted connection, in the order of accept, how many requests were received on
    /// it (index 0 is the first connection).
    pub fn requests_per_connection(&self) -> &[usize] {
        &self.requests_per_connection
    }

    /// Requests received, executed or not.
    pub fn received(&self) -> usize {
        self.received
    }

    /// Requests with this method received, executed or not.
    pub fn received_by_method(&self, method: &Method) -> usize {
        self.received_by_method.get(method).copied().unwrap_or(0)
    }

    /// Requests executed.
    pub fn executed(&self) -> usize {
        self.executed
    }

    /// Requests with this method executed.
    pub fn executed_by_method(&self, method: &Method) -> usize {
        self.executed_by_method.get(method).copied().unwrap_or(0)
    }

    /// How many times a request carrying this request id was received, executed or not.
    pub fn arrivals(&self, request_id: &str) -> usize {
        self.arrivals.get(request_id).copied().unwrap_or(0)
    }

    /// How many times a request carrying this request id was executed.
    pub fn executions(&self, request_id: &str) -> usize {
        self.executions.get(request_id).copied().unwrap_or(0)
    }

    /// The request ids executed more than once, with their execution counts, sorted by id:
    /// empty when no request was executed twice.
    pub fn duplicates(&self) -> Vec<(String, usize)> {
        let mut duplicates: Vec<_> = self
            .executions
            .iter()
            .filter(|(_, count)| **count > 1)
            .map(|(id, count)| (id.clone(), *count))
            .collect();
        duplicates.sort();
        duplicates
    }

    /// How many times each request rule fired, in the order the rules were added.
    pub fn rule_hits(&self) -> &[u64] {
        &self.rule_hits
    }

    /// How many times each accept rule fired, in the order the rules were added.
    pub fn accept_hits(&self) -> &[u64] {
        &self.accept_hits
    }

    /// Connections reset or closed by the idle timeout ([`Idle::Reset`](super::Idle::Reset),
    /// [`Idle::Fin`](super::Idle::Fin)).
    pub fn idle_disconnects(&self) -> usize {
        self.idle_disconnects
    }

    /// Connections reset because a request started to arrive on a forgotten connection
    /// ([`Idle::Forget`](super::Idle::Forget),
    /// [`Lab::forget_connections`](super::Lab::forget_connections)).
    pub fn forgotten_resets(&self) -> usize {
        self.forgotten_resets
    }

    /// Response body bytes the lab sent, over all responses: written to the socket (HTTP/1.1),
    /// or handed to the stream (HTTP/2, where a connection that dies early may have sent
    /// fewer). What a client that resumes downloads costs the server.
    pub fn body_bytes(&self) -> u64 {
        self.body_bytes
    }

    /// Every request received, in arrival order.
    pub fn requests(&self) -> &[RequestRecord] {
        &self.requests
    }

    /// Counts a new connection; returns its rank, from 1.
    pub(crate) fn accept(&mut self) -> u64 {
        self.connections += 1;
        self.requests_per_connection.push(0);
        self.connections as u64
    }

    /// Counts a received request; returns its rank overall and on its connection, from 1.
    pub(crate) fn receive(
        &mut self,
        connection: u64,
        method: &Method,
        id: Option<&str>,
    ) -> (u64, u64) {
        self.received += 1;
        *self.received_by_method.entry(method.clone()).or_default() += 1;
        if let Some(id) = id {
            *self.arrivals.entry(id.to_owned()).or_default() += 1;
        }
        let on_connection = usize::try_from(connection - 1)
            .ok()
            .and_then(|index| self.requests_per_connection.get_mut(index))
            .map_or(0, |count| {
                *count += 1;
                *count
            });
        (self.received as u64, on_connection as u64)
    }

    /// Counts the execution of the request received `nth`.
    pub(crate) fn execute(&mut self, nth: u64) {
        let Some(record) = usize::try_from(nth - 1)
            .ok()
            .and_then(|index| self.requests.get_mut(index))
        else {
            return;
        };
        if record.executed {
            return;
        }
        record.executed = true;
        self.executed += 1;
        *self
            .executed_by_method
            .entry(record.method.clone())
            .or_default() += 1;
        if let Some(id) = &record.request_id {
            *self.executions.entry(id.clone()).or_default() += 1;
        }
    }
}

/// One request as the lab received it.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub(crate) nth: u64,
    pub(crate) connection: u64,
    pub(crate) nth_on_connection: u64,
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) request_id: Option<String>,
    pub(crate) arrived: Instant,
    pub(crate) rule: Option<usize>,
    pub(crate) executed: bool,
}

impl RequestRecord {
    /// Its rank among all requests received, from 1.
    pub fn nth(&self) -> u64 {
        self.nth
    }

    /// The rank of its connection, from 1.
    pub fn connection(&self) -> u64 {
        self.connection
    }

    /// Its rank on its connection, from 1.
    pub fn nth_on_connection(&self) -> u64 {
        self.nth_on_connection
    }

    /// Its method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// Its request target.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// Its request id, if it carried one.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// When its head arrived.
    pub fn arrived(&self) -> Instant {
        self.arrived
    }

    /// The index of the rule that chose its action (in the order the rules were added), or
    /// `None` for the default action.
    pub fn rule(&self) -> Option<usize> {
        self.rule
    }

    /// Whether it was executed (so far: a snapshot taken while its body is still arriving says
    /// `false`).
    pub fn executed(&self) -> bool {
        self.executed
    }
}
