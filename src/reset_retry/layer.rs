use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tower::Layer;

use super::budget::{Budget, RetryBudget};
use super::policy::{CloneBody, StandardRetry};
use super::ResetRetry;
use crate::classify::StandardClassifier;
use crate::ConfigError;

/// The limits every retry must fit in, checked before the policy is asked.
#[derive(Clone)]
pub(crate) struct Limits {
    pub(crate) max_attempts: u32,
    pub(crate) deadline: Option<Duration>,
    pub(crate) budget: Option<Arc<dyn Budget>>,
}

impl Limits {
    pub(crate) fn standard() -> Self {
        Self {
            max_attempts: ResetRetryLayer::DEFAULT_MAX_ATTEMPTS,
            deadline: None,
            budget: Some(Arc::new(RetryBudget::default())),
        }
    }
}

impl fmt::Debug for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limits")
            .field("max_attempts", &self.max_attempts)
            .field("deadline", &self.deadline)
            .field("budget", &self.budget.is_some())
            .finish()
    }
}

/// Applies [`ResetRetry`] to a service: failed requests are sent again when, and only when, that
/// is safe.
///
/// `ResetRetryLayer::new()` gives the standard behaviour: the [`StandardRetry`] policy, the
/// [`StandardClassifier`], requests copied by [`CloneBody`], at most 3 attempts in total, and one
/// [`RetryBudget`] (20% of the load, or 10 retries per second when that is more, over 10 s)
/// shared by every service this layer makes. Use [`ResetRetryLayer::builder`] to change any of it.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower::ServiceBuilder;
/// use tower_reset::ResetRetryLayer;
///
/// # fn wrap<S>(client: S) -> Result<(), tower_reset::ConfigError> {
/// let retry = ResetRetryLayer::builder()
///     .max_attempts(4)
///     .deadline(Duration::from_secs(5))
///     .build()?;
/// let service = ServiceBuilder::new().layer(retry).service(client);
/// # let _ = service;
/// # Ok(())
/// # }
/// ```
pub struct ResetRetryLayer<P = StandardRetry, C = StandardClassifier, R = CloneBody> {
    policy: P,
    classifier: C,
    cloner: R,
    limits: Limits,
}

impl ResetRetryLayer {
    /// Default limit on attempts, the first included.
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

    /// The standard layer; see the type's documentation for what it does.
    pub fn new() -> Self {
        Self {
            policy: StandardRetry::new(),
            classifier: StandardClassifier::new(),
            cloner: CloneBody,
            limits: Limits::standard(),
        }
    }

    /// A builder that starts from the standard settings.
    pub fn builder() -> ResetRetryBuilder {
        ResetRetryBuilder {
            policy: StandardRetry::new(),
            classifier: StandardClassifier::new(),
            cloner: CloneBody,
            max_attempts: Self::DEFAULT_MAX_ATTEMPTS,
            deadline: None,
            budget: BudgetChoice::Default,
        }
    }
}

impl Default for ResetRetryLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<P, C, R> ResetRetryLayer<P, C, R> {
    /// The retry policy.
    pub fn policy(&self) -> &P {
        &self.policy
    }

    /// The classifier of errors and responses.
    pub fn classifier(&self) -> &C {
        &self.classifier
    }

    /// The most attempts a request may make, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.limits.max_attempts
    }

    /// The deadline counted from a request's first attempt, if one is set.
    pub fn deadline(&self) -> Option<Duration> {
        self.limits.deadline
    }
}

impl<P: Clone, C: Clone, R: Clone> Clone for ResetRetryLayer<P, C, R> {
    fn clone(&self) -> Self {
        Self {
            policy: self.policy.clone(),
            classifier: self.classifier.clone(),
            cloner: self.cloner.clone(),
            limits: self.limits.clone(),
        }
    }
}

impl<P: fmt::Debug, C: fmt::Debug, R: fmt::Debug> fmt::Debug for ResetRetryLayer<P, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResetRetryLayer")
            .field("policy", &self.policy)
            .field("classifier", &self.classifier)
            .field("cloner", &self.cloner)
            .field("limits", &self.limits)
            .finish()
    }
}

impl<S, P: Clone, C: Clone, R: Clone> Layer<S> for ResetRetryLayer<P, C, R> {
    type Service = ResetRetry<S, P, C, R>;

    fn layer(&self, inner: S) -> Self::Service {
        ResetRetry::from_parts(
            inner,
            self.policy.clone(),
            self.classifier.clone(),
            self.cloner.clone(),
            self.limits.clone(),
        )
    }
}

enum BudgetChoice {
    Default,
    None,
    Given(Arc<dyn Budget>),
}

/// The old name of [`ResetRetryBuilder`].
#[deprecated(since = "0.1.0", note = "renamed `ResetRetryBuilder`")]
pub type Builder<P = StandardRetry, C = StandardClassifier, R = CloneBody> =
    ResetRetryBuilder<P, C, R>;

/// Builds a [`ResetRetryLayer`], checking every limit; see [`ResetRetryLayer::builder`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tower_reset::classify::{RetryStatuses, StandardClassifier};
/// use tower_reset::reset_retry::RetryBudget;
/// use tower_reset::ResetRetryLayer;
///
/// let layer = ResetRetryLayer::builder()
///     .max_attempts(4) // the first attempt and up to 3 retries
///     .deadline(Duration::from_secs(10))
///     .budget(RetryBudget::new(0.1, 5, Duration::from_secs(10))?)
///     .classifier(StandardClassifier::new().statuses(RetryStatuses::standard()))
///     .build()?;
/// # let _ = layer;
/// # Ok::<(), tower_reset::ConfigError>(())
/// ```
pub struct ResetRetryBuilder<P = StandardRetry, C = StandardClassifier, R = CloneBody> {
    policy: P,
    classifier: C,
    cloner: R,
    max_attempts: u32,
    deadline: Option<Duration>,
    budget: BudgetChoice,
}

impl<P, C, R> ResetRetryBuilder<P, C, R> {
    /// The policy that decides which failures may be retried.
    ///
    /// Defaults to [`StandardRetry`].
    pub fn policy<Q>(self, policy: Q) -> ResetRetryBuilder<Q, C, R> {
        ResetRetryBuilder {
            policy,
            classifier: self.classifier,
            cloner: self.cloner,
            max_attempts: self.max_attempts,
            deadline: self.deadline,
            budget: self.budget,
        }
    }

    /// The classifier that recognises connection failures in errors and responses.
    ///
    /// Defaults to [`StandardClassifier::new`] (errors only).
    pub fn classifier<D>(self, classifier: D) -> ResetRetryBuilder<P, D, R> {
        ResetRetryBuilder {
            policy: self.policy,
            classifier,
            cloner: self.cloner,
            max_attempts: self.max_attempts,
            deadline: self.deadline,
            budget: self.budget,
        }
    }

    /// How the copy of a request is made for a retry.
    ///
    /// Defaults to [`CloneBody`], which clones `http::Request<B>` with a `Clone` body.
    pub fn clone_requests<Q>(self, cloner: Q) -> ResetRetryBuilder<P, C, Q> {
        ResetRetryBuilder {
            policy: self.policy,
            classifier: self.classifier,
            cloner,
            max_attempts: self.max_attempts,
            deadline: self.deadline,
            budget: self.budget,
        }
    }

    /// The most attempts one request may make, **the first included**: 1 disables retries, and
    /// the default 3 means the first attempt and up to 2 retries (reqwest-retry's
    /// `build_with_max_retries(3)` is `max_attempts(4)`).
    ///
    /// A retry that a host refused while [`BackoffLayer`](crate::BackoffLayer) rode it out (it
    /// refuses connections: see [`RideOut`](crate::backoff::RideOut)) does not count, and
    /// spends no budget: it cost the server nothing, and the request waits for the host instead,
    /// for at most the ride-out window ([`AttemptSummary::counted`] says which did not count).
    ///
    /// [`AttemptSummary::counted`]: crate::attempt::AttemptSummary::counted
    ///
    /// Must be from 1 to 100. Defaults to 3.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// A total deadline, counted from the first attempt: no attempt starts after it. An attempt
    /// already under way is not cut short (put a timeout inside the stack for that).
    ///
    /// Must be more than zero. Defaults to no deadline.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The retry budget shared by every service of the layer. Pass an `Arc` to share one budget
    /// between several layers.
    ///
    /// Defaults to [`RetryBudget::default`].
    pub fn budget<B: Budget + 'static>(mut self, budget: B) -> Self {
        self.budget = BudgetChoice::Given(Arc::new(budget));
        self
    }

    /// No retry budget: only the attempt limit and the deadline bound retries. Under a total
    /// outage every request is then sent `max_attempts` times.
    pub fn no_budget(mut self) -> Self {
        self.budget = BudgetChoice::None;
        self
    }

    /// Checks the settings and builds the layer.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the setting when `max_attempts` is 0 or above 100, or the
    /// deadline is zero.
    pub fn build(self) -> Result<ResetRetryLayer<P, C, R>, ConfigError> {
        if !(1..=100).contains(&self.max_attempts) {
            return Err(ConfigError::new(
                "max_attempts",
                format!(
                    "must be at least 1 (the first attempt) and at most 100, got {}",
                    self.max_attempts
                ),
            ));
        }
        if self.deadline == Some(Duration::ZERO) {
            return Err(ConfigError::new(
                "deadline",
                "must be more than zero; leave it unset for no deadline",
            ));
        }
        let budget = match self.budget {
            BudgetChoice::Default => Some(Arc::new(RetryBudget::default()) as Arc<dyn Budget>),
            BudgetChoice::None => None,
            BudgetChoice::Given(budget) => Some(budget),
        };
        Ok(ResetRetryLayer {
            policy: self.policy,
            classifier: self.classifier,
            cloner: self.cloner,
            limits: Limits {
                max_attempts: self.max_attempts,
                deadline: self.deadline,
                budget,
            },
        })
    }
}

impl<P: fmt::Debug, C: fmt::Debug, R: fmt::Debug> fmt::Debug for ResetRetryBuilder<P, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResetRetryBuilder")
            .field("policy", &self.policy)
            .field("classifier", &self.classifier)
            .field("cloner", &self.cloner)
            .field("max_attempts", &self.max_attempts)
            .field("deadline", &self.deadline)
            .finish()
    }
}
