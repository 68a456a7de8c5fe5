use std::fmt;
use std::time::Duration;

use super::ConnectionPolicy;
use crate::attempt::AttemptRequest;
use crate::classify::FailureClass;
use crate::reset_retry::policy::Idempotent;
use crate::ConfigError;

/// The standard connection policy: a reset condemns its connection (and, when the peer seems to
/// have dropped idle connections, the idle siblings that have been idle as long), requests that
/// are not safe to repeat are kept off connections likely to be stale, plus the limits you set:
/// none until you set one.
///
/// # Examples
///
/// Keep connections below a load balancer's 60 s idle timeout, recycle them every 5 minutes so
/// that DNS changes are seen, and at most 1000 requests each:
///
/// ```
/// use std::time::Duration;
/// use tower_reset::fresh_connection::policy::StandardConnections;
///
/// let policy = StandardConnections::builder()
///     .max_idle(Duration::from_secs(50))
///     .max_age(Duration::from_secs(300))
///     .max_requests(1000)
///     .build()?;
/// # let _ = policy;
/// # Ok::<(), tower_reset::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StandardConnections {
    /// The failure classes that condemn a connection, one bit each ([`class_bit`]).
    condemned: u8,
    max_age: Option<Duration>,
    max_idle: Option<Duration>,
    max_requests: Option<u32>,
    evict_idle_siblings: bool,
    learn_idle_timeout: bool,
    protect_unrepeatable: bool,
    safe_to_repeat: SafeToRepeat,
}

/// How [`StandardConnections`] judges whether a request is safe to repeat: a function, compared
/// by address (two policies built with the same function are equal).
#[derive(Clone, Copy)]
struct SafeToRepeat(fn(&dyn AttemptRequest) -> bool);

/// The default judge: [`Idempotent::is_idempotent`].
fn idempotent(request: &dyn AttemptRequest) -> bool {
    Idempotent::is_idempotent(request)
}

impl PartialEq for SafeToRepeat {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::fn_addr_eq(self.0, other.0)
    }
}

impl Eq for SafeToRepeat {}

impl fmt::Debug for SafeToRepeat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let idempotent: fn(&dyn AttemptRequest) -> bool = idempotent;
        if *self == SafeToRepeat(idempotent) {
            f.write_str("Idempotent::is_idempotent")
        } else {
            f.write_str("a function of yours")
        }
    }
}

impl StandardConnections {
    /// The standard policy with no limits.
    pub const fn new() -> Self {
        Self {
            condemned: class_bit(FailureClass::UnknownOutcome),
            max_age: None,
            max_idle: None,
            max_requests: None,
            evict_idle_siblings: true,
            learn_idle_timeout: false,
            protect_unrepeatable: true,
            safe_to_repeat: SafeToRepeat(idempotent),
        }
    }

    /// A builder that starts from [`StandardConnections::new`].
    pub const fn builder() -> StandardConnectionsBuilder {
        StandardConnectionsBuilder {
            policy: Self::new(),
        }
    }
}

impl Default for StandardConnections {
    fn default() -> Self {
        Self::new()
    }
}

/// The bit of a failure class in [`StandardConnections`]'s set of condemning classes.
const fn class_bit(failure: FailureClass) -> u8 {
    match failure {
        FailureClass::NeverSent => 1,
        FailureClass::Refused => 1 << 1,
        FailureClass::UnknownOutcome => 1 << 2,
        FailureClass::Unavailable => 1 << 3,
        FailureClass::Rejected => 1 << 4,
    }
}

impl ConnectionPolicy for StandardConnections {
    fn condemns(&self, failure: FailureClass) -> bool {
        self.condemned & class_bit(failure) != 0
    }
    fn max_age(&self) -> Option<Duration> {
        self.max_age
    }
    fn max_idle(&self) -> Option<Duration> {
        self.max_idle
    }
    fn max_requests(&self) -> Option<u32> {
        self.max_requests
    }
    fn evict_idle_siblings(&self) -> bool {
        self.evict_idle_siblings
    }
    fn learn_idle_timeout(&self) -> bool {
        self.learn_idle_timeout
    }
    fn protect_unrepeatable(&self) -> bool {
        self.protect_unrepeatable
    }
    fn is_safe_to_repeat(&self, request: &dyn AttemptRequest) -> bool {
        (self.safe_to_repeat.0)(request)
    }
}

/// Builds a [`StandardConnections`] policy, checking its limits; see
/// [`StandardConnections::builder`].
#[derive(Debug, Clone, Copy)]
pub struct StandardConnectionsBuilder {
    policy: StandardConnections,
}

impl StandardConnectionsBuilder {
    /// Also condemns the connection a failure of this class happened on. Defaults to
    /// [`FailureClass::UnknownOutcome`] only (a reset or an unexpected close).
    ///
    /// A single-connection service whose connection may die between two requests without
    /// saying so at once (a tonic `Channel`: see [`crate::tonic`]) wants a new connection after
    /// *any* connection failure: condemn [`NeverSent`](FailureClass::NeverSent) (a request
    /// cancelled on a connection that was closing) and [`Refused`](FailureClass::Refused) (a
    /// `GOAWAY`) as well.
    ///
    /// # Examples
    ///
    /// ```
    /// use tower_reset::classify::FailureClass;
    /// use tower_reset::fresh_connection::policy::{ConnectionPolicy, StandardConnections};
    ///
    /// let policy = StandardConnections::builder()
    ///     .condemn(FailureClass::NeverSent)
    ///     .condemn(FailureClass::Refused)
    ///     .build()?;
    /// assert!(policy.condemns(FailureClass::Refused));
    /// assert!(policy.condemns(FailureClass::UnknownOutcome));
    /// assert!(!policy.condemns(FailureClass::Unavailable));
    /// # Ok::<(), tower_reset::ConfigError>(())
    /// ```
    pub const fn condemn(mut self, failure: FailureClass) -> Self {
        self.policy.condemned |= class_bit(failure);
        self
    }

    /// The longest a connection may live. Must be more than zero. Defaults to no limit.
    pub const fn max_age(mut self, max_age: Duration) -> Self {
        self.policy.max_age = Some(max_age);
        self
    }

    /// The longest a connection may sit idle and still be reused; set it below the idle timeout
    /// of the server or of the proxies in between. Must be more than zero. Defaults to no limit.
    pub const fn max_idle(mut self, max_idle: Duration) -> Self {
        self.policy.max_idle = Some(max_idle);
        self
    }

    /// The most requests a connection may carry. Must be at least 1. Defaults to no limit.
    pub const fn max_requests(mut self, max_requests: u32) -> Self {
        self.policy.max_requests = Some(max_requests);
        self
    }

    /// Whether a reset also retires idle connections to the same host idle at least as long,
    /// when the peer seems to have dropped idle connections (see
    /// [`ConnectionPolicy::evict_idle_siblings`]). Defaults to `true`.
    pub const fn evict_idle_siblings(mut self, evict: bool) -> Self {
        self.policy.evict_idle_siblings = evict;
        self
    }

    /// Whether to learn the peer's idle timeout from repeated resets (see
    /// [`ConnectionPolicy::learn_idle_timeout`]). Defaults to `false`.
    pub const fn learn_idle_timeout(mut self, learn: bool) -> Self {
        self.policy.learn_idle_timeout = learn;
        self
    }

    /// Whether a request that is not safe to repeat is kept off connections likely to be stale
    /// (see [`ConnectionPolicy::protect_unrepeatable`]). Defaults to `true`.
    pub const fn protect_unrepeatable(mut self, protect: bool) -> Self {
        self.policy.protect_unrepeatable = protect;
        self
    }

    /// How to judge whether a request is safe to repeat (see
    /// [`ConnectionPolicy::is_safe_to_repeat`]). Defaults to [`Idempotent::is_idempotent`].
    ///
    /// # Examples
    ///
    /// Your server deduplicates `POST /v1/charges` by its `x-charge-key`, and your retry policy
    /// retries them: such a request needs no protection from stale connections either.
    ///
    /// ```
    /// use tower_reset::attempt::AttemptRequest;
    /// use tower_reset::fresh_connection::policy::{ConnectionPolicy, StandardConnections};
    /// use tower_reset::reset_retry::policy::Idempotent;
    ///
    /// fn deduplicated(request: &dyn AttemptRequest) -> bool {
    ///     Idempotent::is_idempotent(request) || request.headers().contains_key("x-charge-key")
    /// }
    ///
    /// let policy = StandardConnections::builder()
    ///     .safe_to_repeat(deduplicated)
    ///     .build()?;
    /// let charge = http::Request::post("/v1/charges")
    ///     .header("x-charge-key", "c-1")
    ///     .body(())?;
    /// assert!(policy.is_safe_to_repeat(&charge));
    /// assert!(!policy.is_safe_to_repeat(&http::Request::post("/v1/orders").body(())?));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub const fn safe_to_repeat(mut self, judge: fn(&dyn AttemptRequest) -> bool) -> Self {
        self.policy.safe_to_repeat = SafeToRepeat(judge);
        self
    }

    /// Checks the limits and builds the policy.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] when a duration is zero or `max_requests` is 0.
    pub fn build(self) -> Result<StandardConnections, ConfigError> {
        if self.policy.max_age == Some(Duration::ZERO) {
            return Err(ConfigError::new(
                "max_age",
                "must be more than zero; leave it unset for no limit",
            ));
        }
        if self.policy.max_idle == Some(Duration::ZERO) {
            return Err(ConfigError::new(
                "max_idle",
                "must be more than zero; leave it unset for no limit",
            ));
        }
        if self.policy.max_requests == Some(0) {
            return Err(ConfigError::new(
                "max_requests",
                "must be at least 1; leave it unset for no limit",
            ));
        }
        Ok(self.policy)
    }
}
