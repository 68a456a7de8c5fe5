use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tower::Layer;

use super::Resume;
use crate::backoff::policy::Exponential;
use crate::classify::StandardClassifier;
use crate::reset_retry::policy::CloneBody;
use crate::reset_retry::{Budget, RetryBudget};
use crate::ConfigError;

/// What every body of one layer shares: the classifier, the copier, the schedule and the
/// limits.
pub(super) struct Settings<C, R, K> {
    pub(super) classifier: C,
    pub(super) cloner: R,
    pub(super) schedule: K,
    pub(super) max_resumes: u32,
    pub(super) max_skip: u64,
    pub(super) deadline: Option<Duration>,
    pub(super) immediate_first_resume: bool,
    pub(super) seed: Option<u64>,
    pub(super) budget: Option<Arc<dyn Budget>>,
    /// Whether this layer deposits into the budget (its own), or only withdraws (shared with
    /// the `ResetRetryLayer` below, which deposits).
    pub(super) deposits: bool,
}

impl<C: fmt::Debug, R: fmt::Debug, K: fmt::Debug> fmt::Debug for Settings<C, R, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("classifier", &self.classifier)
            .field("cloner", &self.cloner)
            .field("schedule", &self.schedule)
            .field("max_resumes", &self.max_resumes)
            .field("max_skip", &self.max_skip)
            .field("deadline", &self.deadline)
            .field("immediate_first_resume", &self.immediate_first_resume)
            .field("seed", &self.seed)
            .field("budget", &self.budget.is_some())
            .field("deposits", &self.deposits)
            .finish()
    }
}

/// Applies [`Resume`] to a service: a `GET` whose response body fails part-way with a
/// connection failure continues with a range request; see the [module documentation](super).
///
/// `ResumeLayer::new()` gives the standard behaviour: failures recognised by the
/// [`StandardClassifier`], requests copied by [`CloneBody`], at most 3 resumes per body, the
/// first at once and the next ones after the delays of [`Exponential::default`], at most 16 MiB
/// skipped when a server answers with the whole representation, no deadline, and one
/// [`RetryBudget`] of its own (resumes may add 20% to the resumable bodies, or 10 per second,
/// over 10 s) shared by every service this layer makes. Use [`ResumeLayer::builder`] to change
/// any of it, and [`ResumeBuilder::shared_budget`] to spend the budget of the
/// [`ResetRetryLayer`](crate::ResetRetryLayer) below.
///
/// Put it outermost, above the stack, so that each resume request gets the stack's retries,
/// backoff and fresh connection:
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use hyper_util::client::legacy::connect::HttpConnector;
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
/// use tower::ServiceBuilder;
/// use tower_reset::{BackoffLayer, FreshConnectionLayer, ResetRetryLayer, ResumeLayer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let client: Client<HttpConnector, Full<Bytes>> =
///     Client::builder(TokioExecutor::new()).build_http();
/// let service = ServiceBuilder::new()
///     .layer(ResumeLayer::new()) // a body that breaks continues
///     .layer(ResetRetryLayer::new()) // whether
///     .layer(BackoffLayer::new()) // when
///     .layer(FreshConnectionLayer::new()) // which connection
///     .service(client);
/// # let _ = service;
/// # }
/// ```
pub struct ResumeLayer<C = StandardClassifier, R = CloneBody, K = Exponential> {
    settings: Arc<Settings<C, R, K>>,
}

impl ResumeLayer {
    /// Default limit on resumes per body.
    pub const DEFAULT_MAX_RESUMES: u32 = 3;
    /// Default limit on the bytes skipped when a server ignores the range: 16 MiB.
    pub const DEFAULT_MAX_SKIP: u64 = 16 * 1024 * 1024;

    /// The standard layer; see the type's documentation for what it does.
    pub fn new() -> Self {
        Self::builder()
            .build()
            .expect("the default settings are valid")
    }

    /// A builder that starts from the standard settings.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_reset::ResumeLayer;
    ///
    /// let layer = ResumeLayer::builder()
    ///     .max_resumes(5)
    ///     .max_skip(64 * 1024 * 1024)
    ///     .deadline(Duration::from_secs(600))
    ///     .build()?;
    /// # let _ = layer;
    /// # Ok::<(), tower_reset::ConfigError>(())
    /// ```
    pub fn builder() -> ResumeBuilder {
        ResumeBuilder {
            classifier: StandardClassifier::new(),
            cloner: CloneBody,
            schedule: Exponential::default(),
            max_resumes: Self::DEFAULT_MAX_RESUMES,
            max_skip: Self::DEFAULT_MAX_SKIP,
            deadline: None,
            immediate_first_resume: true,
            seed: None,
            budget: BudgetChoice::Own(None),
        }
    }
}

impl Default for ResumeLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<C, R, K> Clone for ResumeLayer<C, R, K> {
    fn clone(&self) -> Self {
        Self {
            settings: Arc::clone(&self.settings),
        }
    }
}

impl<C: fmt::Debug, R: fmt::Debug, K: fmt::Debug> fmt::Debug for ResumeLayer<C, R, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResumeLayer")
            .field("settings", &self.settings)
            .finish()
    }
}

impl<S, C, R, K> Layer<S> for ResumeLayer<C, R, K> {
    type Service = Resume<S, C, R, K>;

    fn layer(&self, inner: S) -> Self::Service {
        Resume::from_settings(inner, Arc::clone(&self.settings))
    }
}

enum BudgetChoice {
    /// This layer deposits and withdraws; `None`: a new default budget.
    Own(Option<Arc<dyn Budget>>),
    /// This layer only withdraws.
    Shared(Arc<dyn Budget>),
    None,
}

/// Builds a [`ResumeLayer`], checking every limit; see [`ResumeLayer::builder`].
///
/// # Examples
///
/// One budget for the retries and the resumes of a stack:
///
/// ```
/// use std::sync::Arc;
/// use tower_reset::reset_retry::RetryBudget;
/// use tower_reset::{ResetRetryLayer, ResumeLayer};
///
/// let budget = Arc::new(RetryBudget::default());
/// let retry = ResetRetryLayer::builder().budget(Arc::clone(&budget)).build()?;
/// let resume = ResumeLayer::builder().shared_budget(budget).build()?;
/// # let _ = (retry, resume);
/// # Ok::<(), tower_reset::ConfigError>(())
/// ```
pub struct ResumeBuilder<C = StandardClassifier, R = CloneBody, K = Exponential> {
    classifier: C,
    cloner: R,
    schedule: K,
    max_resumes: u32,
    max_skip: u64,
    deadline: Option<Duration>,
    immediate_first_resume: bool,
    seed: Option<u64>,
    budget: BudgetChoice,
}

impl<C, R, K> ResumeBuilder<C, R, K> {
    /// The classifier that tells a connection failure of the body (resumed) from any other
    /// error (passed on): it must classify the response body's error type.
    ///
    /// Defaults to [`StandardClassifier::new`].
    pub fn classifier<D>(self, classifier: D) -> ResumeBuilder<D, R, K> {
        ResumeBuilder {
            classifier,
            cloner: self.cloner,
            schedule: self.schedule,
            max_resumes: self.max_resumes,
            max_skip: self.max_skip,
            deadline: self.deadline,
            immediate_first_resume: self.immediate_first_resume,
            seed: self.seed,
            budget: self.budget,
        }
    }

    /// How the copy of a request is made, from which each resume request is made; a request
    /// that cannot be copied is never resumed.
    ///
    /// Defaults to [`CloneBody`], which clones `http::Request<B>` with a `Clone` body (and
    /// copies a [`ReplayBody`](crate::replay::ReplayBody) request).
    pub fn clone_requests<Q>(self, cloner: Q) -> ResumeBuilder<C, Q, K> {
        ResumeBuilder {
            classifier: self.classifier,
            cloner,
            schedule: self.schedule,
            max_resumes: self.max_resumes,
            max_skip: self.max_skip,
            deadline: self.deadline,
            immediate_first_resume: self.immediate_first_resume,
            seed: self.seed,
            budget: self.budget,
        }
    }

    /// The delays between resumes (see [`immediate_first_resume`](Self::immediate_first_resume)).
    ///
    /// Defaults to [`Exponential::default`]: 50 ms doubling to 2 s, full jitter.
    pub fn schedule<L>(self, schedule: L) -> ResumeBuilder<C, R, L> {
        ResumeBuilder {
            classifier: self.classifier,
            cloner: self.cloner,
            schedule,
            max_resumes: self.max_resumes,
            max_skip: self.max_skip,
            deadline: self.deadline,
            immediate_first_resume: self.immediate_first_resume,
            seed: self.seed,
            budget: self.budget,
        }
    }

    /// The most resume requests one body may send.
    ///
    /// Must be from 1 to 100. Defaults to 3.
    pub fn max_resumes(mut self, resumes: u32) -> Self {
        self.max_resumes = resumes;
        self
    }

    /// The most bytes a resume may read and throw away when the server answers the range
    /// request with the whole representation (`200` with the same validator: a server that
    /// does not support ranges). Skipping costs as much as downloading those bytes again;
    /// past this limit the body fails instead. 0 turns the skip off.
    ///
    /// Defaults to 16 MiB.
    pub fn max_skip(mut self, bytes: u64) -> Self {
        self.max_skip = bytes;
        self
    }

    /// A deadline, counted from the request: no resume starts after it, and no backoff that
    /// would end after it is slept. A body being read is not cut short.
    ///
    /// Must be more than zero. Defaults to no deadline.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Whether the first resume of a body goes out at once: the usual cause is a connection
    /// that died, which a new connection fixes. Later resumes wait for the schedule's delays.
    /// With `false`, every resume waits, the first for the schedule's first delay.
    ///
    /// Defaults to `true`.
    pub fn immediate_first_resume(mut self, immediate: bool) -> Self {
        self.immediate_first_resume = immediate;
        self
    }

    /// A fixed seed for the schedule's jitter, the same for every body, so that delays are
    /// exact (for tests). Without it each body draws a random seed when it first waits.
    ///
    /// Defaults to none.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The budget resumes spend from, of this layer's own: every resumable body deposits into
    /// it, and every resume withdraws. Pass an `Arc` to share it between several resume layers.
    ///
    /// Defaults to a [`RetryBudget::default`] of its own.
    pub fn budget<B: Budget + 'static>(mut self, budget: B) -> Self {
        self.budget = BudgetChoice::Own(Some(Arc::new(budget)));
        self
    }

    /// Resumes spend from the budget of the [`ResetRetryLayer`](crate::ResetRetryLayer) below
    /// (pass the same `Arc`): a resume is a retry. This layer then deposits nothing, since that
    /// layer deposits every request it sends, resume requests included.
    pub fn shared_budget<B: Budget + 'static>(mut self, budget: B) -> Self {
        self.budget = BudgetChoice::Shared(Arc::new(budget));
        self
    }

    /// No budget: only `max_resumes` and the deadline bound resumes.
    pub fn no_budget(mut self) -> Self {
        self.budget = BudgetChoice::None;
        self
    }

    /// Checks the settings and builds the layer.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the setting when `max_resumes` is 0 or above 100, or the
    /// deadline is zero.
    pub fn build(self) -> Result<ResumeLayer<C, R, K>, ConfigError> {
        if !(1..=100).contains(&self.max_resumes) {
            return Err(ConfigError::new(
                "max_resumes",
                format!(
                    "must be from 1 to 100 (leave the layer out for none), got {}",
                    self.max_resumes
                ),
            ));
        }
        if self.deadline == Some(Duration::ZERO) {
            return Err(ConfigError::new(
                "deadline",
                "must be more than zero; leave it unset for no deadline",
            ));
        }
        let (budget, deposits) = match self.budget {
            BudgetChoice::Own(budget) => (
                Some(budget.unwrap_or_else(|| Arc::new(RetryBudget::default()))),
                true,
            ),
            BudgetChoice::Shared(budget) => (Some(budget), false),
            BudgetChoice::None => (None, false),
        };
        Ok(ResumeLayer {
            settings: Arc::new(Settings {
                classifier: self.classifier,
                cloner: self.cloner,
                schedule: self.schedule,
                max_resumes: self.max_resumes,
                max_skip: self.max_skip,
                deadline: self.deadline,
                immediate_first_resume: self.immediate_first_resume,
                seed: self.seed,
                budget,
                deposits,
            }),
        })
    }
}

impl<C: fmt::Debug, R: fmt::Debug, K: fmt::Debug> fmt::Debug for ResumeBuilder<C, R, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResumeBuilder")
            .field("classifier", &self.classifier)
            .field("cloner", &self.cloner)
            .field("schedule", &self.schedule)
            .field("max_resumes", &self.max_resumes)
            .field("max_skip", &self.max_skip)
            .field("deadline", &self.deadline)
            .field("immediate_first_resume", &self.immediate_first_resume)
            .field("seed", &self.seed)
            .finish()
    }
}
