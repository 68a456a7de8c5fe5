//! Which requests and connections a rule applies to, and the script that picks an action.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri, Version};

use super::fault::{Disconnect, Fault};
use crate::backoff::policy::Rng;

/// What a [`Match`] can look at: one request, as the lab saw its head.
///
/// Passed to the closures of [`Match::when`].
#[derive(Debug)]
pub struct RequestInfo<'a> {
    pub(crate) method: &'a Method,
    pub(crate) uri: &'a Uri,
    pub(crate) version: Version,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) request_id: Option<&'a str>,
    pub(crate) nth: u64,
    pub(crate) nth_on_connection: u64,
    pub(crate) connection: u64,
    pub(crate) connection_age: Duration,
}

impl RequestInfo<'_> {
    /// The method.
    pub fn method(&self) -> &Method {
        self.method
    }

    /// The request target (HTTP/1.1: usually only the path and query).
    pub fn uri(&self) -> &Uri {
        self.uri
    }

    /// `HTTP_11` or `HTTP_2` (or `HTTP_10` for an old HTTP/1.0 client).
    pub fn version(&self) -> Version {
        self.version
    }

    /// The request headers.
    pub fn headers(&self) -> &HeaderMap {
        self.headers
    }

    /// The value of the request id header, when present and valid UTF-8.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id
    }

    /// This request's rank among all the requests the lab received, from 1.
    pub fn nth(&self) -> u64 {
        self.nth
    }

    /// This request's rank among the requests received on its connection, from 1.
    pub fn nth_on_connection(&self) -> u64 {
        self.nth_on_connection
    }

    /// The rank of its connection among all the connections the lab accepted, from 1.
    pub fn connection(&self) -> u64 {
        self.connection
    }

    /// How long ago its connection was accepted, when its head arrived.
    pub fn connection_age(&self) -> Duration {
        self.connection_age
    }
}

type Predicate = Arc<dyn Fn(&RequestInfo<'_>) -> bool + Send + Sync>;

#[derive(Clone)]
enum Test {
    Nth(u64),
    NthOnConnection(u64),
    Connection(u64),
    ConnectionOlderThan(Duration),
    Method(Method),
    Path(String),
    Header(HeaderName, Option<HeaderValue>),
    When(Predicate),
}

impl Test {
    fn matches(&self, request: &RequestInfo<'_>) -> bool {
        match self {
            Self::Nth(nth) => request.nth == *nth,
            Self::NthOnConnection(nth) => request.nth_on_connection == *nth,
            Self::Connection(nth) => request.connection == *nth,
            Self::ConnectionOlderThan(age) => request.connection_age >= *age,
            Self::Method(method) => request.method == method,
            Self::Path(path) => request.uri.path() == path,
            Self::Header(name, None) => request.headers.contains_key(name),
            Self::Header(name, Some(value)) => {
                request.headers.get_all(name).iter().any(|v| v == value)
            }
            Self::When(predicate) => predicate(request),
        }
    }
}

impl fmt::Debug for Test {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Nth(nth) => f.debug_tuple("Nth").field(nth).finish(),
            Self::NthOnConnection(nth) => f.debug_tuple("NthOnConnection").field(nth).finish(),
            Self::Connection(nth) => f.debug_tuple("Connection").field(nth).finish(),
            Self::ConnectionOlderThan(age) => {
                f.debug_tuple("ConnectionOlderThan").field(age).finish()
            }
            Self::Method(method) => f.debug_tuple("Method").field(method).finish(),
            Self::Path(path) => f.debug_tuple("Path").field(path).finish(),
            Self::Header(name, value) => f.debug_tuple("Header").field(name).field(value).finish(),
            Self::When(_) => f.write_str("When(..)"),
        }
    }
}

/// Which requests a rule applies to: every test must pass, then the optional probability draw.
///
/// Rules are tried in the order they were added to the [`LabBuilder`](super::LabBuilder); the
/// first one that matches picks the request's [`Fault`]. Ranks ("the nth request") count from
/// 1 in the order the request heads arrive, which is only deterministic when the client sends
/// one request at a time.
///
/// # Examples
///
/// ```
/// use http::Method;
/// use tower_reset::lab::Match;
///
/// // The second request the lab receives.
/// let second = Match::nth(2);
/// // The first request on every connection.
/// let first_on_each = Match::nth_on_connection(1);
/// // POSTs to /charges, the first two times only.
/// let charges = Match::method(Method::POST).and(Match::path("/charges")).times(2);
/// // 5% of all requests, drawn from the lab's seeded generator.
/// let some = Match::any().probability(0.05);
/// // Anything a closure can decide.
/// let tagged = Match::when(|request| request.request_id().is_some_and(|id| id.ends_with("-7")));
/// # let _ = (second, first_on_each, charges, some, tagged);
/// ```
#[derive(Debug, Clone)]
pub struct Match {
    tests: Vec<Test>,
    probability: Option<f64>,
    times: Option<u64>,
}

impl Match {
    fn test(test: Test) -> Self {
        Self {
            tests: vec![test],
            probability: None,
            times: None,
        }
    }

    /// Every request.
    pub fn any() -> Self {
        Self {
            tests: Vec::new(),
            probability: None,
            times: None,
        }
    }

    /// The `nth` request the lab receives (from 1, in arrival order, over all connections and
    /// restarts).
    pub fn nth(nth: u64) -> Self {
        Self::test(Test::Nth(nth))
    }

    /// The `nth` request on each connection (from 1): `nth_on_connection(1)` is the first request
    /// of every connection.
    pub fn nth_on_connection(nth: u64) -> Self {
        Self::test(Test::NthOnConnection(nth))
    }

    /// Every request on the `nth` connection the lab accepts (from 1).
    pub fn connection(nth: u64) -> Self {
        Self::test(Test::Connection(nth))
    }

    /// Requests on connections accepted at least `age` ago: with
    /// [`Fault::ResetAfterHead`](super::Fault::ResetAfterHead), a server or proxy that cuts
    /// connections past a maximum age (as a load balancer's connection lifetime, or gRPC's
    /// `max_connection_age` without its graceful `GOAWAY`).
    pub fn connection_older_than(age: Duration) -> Self {
        Self::test(Test::ConnectionOlderThan(age))
    }

    /// Requests with this method.
    pub fn method(method: Method) -> Self {
        Self::test(Test::Method(method))
    }

    /// Requests whose path (without the query) is exactly `path`.
    pub fn path(path: impl Into<String>) -> Self {
        Self::test(Test::Path(path.into()))
    }

    /// Requests carrying this header with this value.
    pub fn header(name: HeaderName, value: HeaderValue) -> Self {
        Self::test(Test::Header(name, Some(value)))
    }

    /// Requests carrying this header, whatever its value.
    pub fn has_header(name: HeaderName) -> Self {
        Self::test(Test::Header(name, None))
    }

    /// Requests for which `predicate` returns `true`.
    pub fn when<F>(predicate: F) -> Self
    where
        F: Fn(&RequestInfo<'_>) -> bool + Send + Sync + 'static,
    {
        Self::test(Test::When(Arc::new(predicate)))
    }

    /// Requests that match both `self` and `other` (probabilities multiply; the smaller limit of
    /// [`times`](Match::times) wins).
    pub fn and(mut self, other: Match) -> Self {
        self.tests.extend(other.tests);
        self.probability = match (self.probability, other.probability) {
            (Some(a), Some(b)) => Some(a * b),
            (a, b) => a.or(b),
        };
        self.times = match (self.times, other.times) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self
    }

    /// Of the requests that pass the tests, only a fraction `p` (from 0 to 1), drawn from the
    /// lab's generator (see [`LabBuilder::seed`](super::LabBuilder::seed)). The draw is made only
    /// for requests that passed every other test. Defaults to 1.
    pub fn probability(mut self, p: f64) -> Self {
        self.probability = Some(p);
        self
    }

    /// The rule fires at most `n` times; later requests fall through to the next rules.
    /// Defaults to no limit.
    pub fn times(mut self, n: u64) -> Self {
        self.times = Some(n);
        self
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        check_probability(self.probability)
    }
}

/// Which connections an accept rule applies to (see
/// [`LabBuilder::on_accept`](super::LabBuilder::on_accept)).
///
/// # Examples
///
/// ```
/// use tower_reset::lab::ConnectionMatch;
///
/// let first = ConnectionMatch::nth(1);
/// let first_three = ConnectionMatch::any().times(3);
/// let some = ConnectionMatch::any().probability(0.1);
/// # let _ = (first, first_three, some);
/// ```
#[derive(Debug, Clone)]
pub struct ConnectionMatch {
    nth: Option<u64>,
    probability: Option<f64>,
    times: Option<u64>,
}

impl ConnectionMatch {
    /// Every connection.
    pub fn any() -> Self {
        Self {
            nth: None,
            probability: None,
            times: None,
        }
    }

    /// The `nth` connection the lab accepts (from 1, over restarts).
    pub fn nth(nth: u64) -> Self {
        Self {
            nth: Some(nth),
            ..Self::any()
        }
    }

    /// Only a fraction `p` (from 0 to 1), drawn from the lab's generator. Defaults to 1.
    pub fn probability(mut self, p: f64) -> Self {
        self.probability = Some(p);
        self
    }

    /// The rule fires at most `n` times. Defaults to no limit.
    pub fn times(mut self, n: u64) -> Self {
        self.times = Some(n);
        self
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        check_probability(self.probability)
    }
}

fn check_probability(p: Option<f64>) -> Result<(), String> {
    match p {
        Some(p) if !(0.0..=1.0).contains(&p) => {
            Err(format!("a probability must be between 0 and 1, not {p}"))
        }
        _ => Ok(()),
    }
}

#[derive(Debug)]
struct Rule {
    when: Match,
    action: Fault,
    hits: u64,
}

#[derive(Debug)]
struct AcceptRule {
    when: ConnectionMatch,
    disconnect: Disconnect,
    hits: u64,
}

/// The rules in order, their hit counts, the default action and the generator.
#[derive(Debug)]
pub(crate) struct Script {
    rules: Vec<Rule>,
    accept_rules: Vec<AcceptRule>,
    default: Fault,
    rng: Rng,
}

impl Script {
    pub(crate) fn new(seed: u64, default: Fault) -> Self {
        Self {
            rules: Vec::new(),
            accept_rules: Vec::new(),
            default,
            rng: Rng::new(seed),
        }
    }

    pub(crate) fn push(&mut self, when: Match, action: Fault) {
        self.rules.push(Rule {
            when,
            action,
            hits: 0,
        });
    }

    pub(crate) fn push_accept(&mut self, when: ConnectionMatch, disconnect: Disconnect) {
        self.accept_rules.push(AcceptRule {
            when,
            disconnect,
            hits: 0,
        });
    }

    pub(crate) fn check(&self, http2: bool) -> Result<(), String> {
        for rule in &self.rules {
            rule.when.check()?;
            if !http2 && rule.action.is_http2_only() {
                return Err(format!(
                    "{:?} needs HTTP/2, but the lab serves HTTP/1.1",
                    rule.action
                ));
            }
        }
        if !http2 && self.default.is_http2_only() {
            return Err(format!(
                "{:?} needs HTTP/2, but the lab serves HTTP/1.1",
                self.default
            ));
        }
        for rule in &self.accept_rules {
            rule.when.check()?;
        }
        Ok(())
    }

    /// Whether any action cuts a body after a number of bytes.
    pub(crate) fn cuts_after_bytes(&self) -> bool {
        self.default.cuts_after_bytes()
            || self.rules.iter().any(|rule| rule.action.cuts_after_bytes())
    }

    /// The action for this request, and the index of the rule that chose it (`None`: default).
    pub(crate) fn choose(&mut self, request: &RequestInfo<'_>) -> (Option<usize>, Fault) {
        for (index, rule) in self.rules.iter_mut().enumerate() {
            let when = &rule.when;
            if when.times.is_some_and(|times| rule.hits >= times)
                || !when.tests.iter().all(|test| test.matches(request))
                || !chance(&mut self.rng, when.probability)
            {
                continue;
            }
            rule.hits += 1;
            return (Some(index), rule.action.clone());
        }
        (None, self.default.clone())
    }

    /// What to do with the `nth` connection right after accepting it (`None`: serve it).
    pub(crate) fn at_accept(&mut self, nth: u64) -> Option<Disconnect> {
        for rule in &mut self.accept_rules {
            let when = &rule.when;
            if when.times.is_some_and(|times| rule.hits >= times)
                || when.nth.is_some_and(|wanted| wanted != nth)
                || !chance(&mut self.rng, when.probability)
            {
                continue;
            }
            rule.hits += 1;
            return Some(rule.disconnect);
        }
        None
    }

    /// How many times each request rule fired, in the order they were added.
    pub(crate) fn hits(&self) -> Vec<u64> {
        self.rules.iter().map(|rule| rule.hits).collect()
    }

    /// How many times each accept rule fired, in the order they were added.
    pub(crate) fn accept_hits(&self) -> Vec<u64> {
        self.accept_rules.iter().map(|rule| rule.hits).collect()
    }
}

/// `true` with probability `p` (always when `None`); draws from `rng` only when `p` is given.
fn chance(rng: &mut Rng, p: Option<f64>) -> bool {
    p.is_none_or(|p| rng.next_f64() < p)
}
