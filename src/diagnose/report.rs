//! The report: per host, the failures and their probable causes.

use std::fmt;
use std::time::Duration;

use super::analyze::analyze;
use super::cause::Cause;
use super::display::duration;
use super::host::{class_index, HostSnapshot, CLASSES};
use crate::classify::FailureClass;

/// What a [`Collector`](super::Collector) saw: per host, the connection failures and their
/// probable causes, with the evidence and the fix.
///
/// Its `Display` is meant for a log: one line when nothing failed
/// (`tower-reset diagnosis: no connection failures (…)`), otherwise a line per host with
/// failures, and under it each probable [`Cause`] in three lines. The same facts are fields:
/// [`hosts`](Report::hosts), and in each [`HostReport`] the counts and the causes.
///
/// # Examples
///
/// ```
/// use tower_reset::diagnose::Collector;
///
/// let collector = Collector::new();
/// let report = collector.report();
/// if !report.is_healthy() {
///     eprintln!("{report}");
/// }
/// assert_eq!(report.failures(), 0);
/// ```
#[derive(Debug, Clone)]
pub struct Report {
    over: Duration,
    hosts: Vec<HostReport>,
}

/// One host's part of a [`Report`].
///
/// # Examples
///
/// ```
/// use tower_reset::classify::FailureClass;
/// use tower_reset::diagnose::Collector;
///
/// let report = Collector::new().report();
/// for host in report.hosts() {
///     println!(
///         "{}: {} of {} requests failed, {} after they were sent",
///         host.host(),
///         host.failures(),
///         host.requests(),
///         host.failures_of(FailureClass::UnknownOutcome),
///     );
/// }
/// ```
#[derive(Debug, Clone)]
pub struct HostReport {
    host: String,
    requests: u64,
    failures: u64,
    by_class: [u64; CLASSES.len()],
    recorded: u64,
    causes: Vec<Cause>,
}

impl Report {
    pub(crate) fn new(over: Duration, snapshots: Vec<HostSnapshot>) -> Self {
        let hosts = snapshots
            .into_iter()
            .map(|snapshot| HostReport {
                causes: analyze(&snapshot),
                host: snapshot.host,
                requests: snapshot.requests.iter().sum(),
                failures: snapshot.failures,
                by_class: snapshot.by_class,
                recorded: snapshot.samples.len() as u64,
            })
            .collect();
        Self { over, hosts }
    }

    /// The hosts seen, in the order of their first request.
    pub fn hosts(&self) -> &[HostReport] {
        &self.hosts
    }

    /// Every host's probable causes, host after host.
    pub fn causes(&self) -> impl Iterator<Item = &Cause> {
        self.hosts.iter().flat_map(|host| host.causes.iter())
    }

    /// Connection failures, over all hosts.
    pub fn failures(&self) -> u64 {
        self.hosts.iter().map(|host| host.failures).sum()
    }

    /// Requests started, over all hosts.
    pub fn requests(&self) -> u64 {
        self.hosts.iter().map(|host| host.requests).sum()
    }

    /// Whether no connection failure was seen.
    pub fn is_healthy(&self) -> bool {
        self.failures() == 0
    }

    /// The time the report covers: since the collector was made.
    pub fn over(&self) -> Duration {
        self.over
    }
}

impl HostReport {
    /// `scheme://authority`, or `(other hosts)` for the hosts past the collector's cap.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Requests started to this host.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Connection failures (those the [`StandardClassifier`](crate::classify::StandardClassifier)
    /// recognises; a timeout or a `4xx` is not one).
    pub fn failures(&self) -> u64 {
        self.failures
    }

    /// Connection failures of this class.
    pub fn failures_of(&self, class: FailureClass) -> u64 {
        self.by_class[class_index(class)]
    }

    /// The failures kept for the analysis: the most recent, at most 128.
    pub fn recorded(&self) -> u64 {
        self.recorded
    }

    /// The probable causes, the one that explains the most failures first.
    pub fn causes(&self) -> &[Cause] {
        &self.causes
    }

    /// Recorded failures that no cause explains.
    pub fn unexplained(&self) -> u64 {
        self.recorded
            .saturating_sub(self.causes.iter().map(Cause::failures).sum())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hosts = self.hosts.len();
        let plural = if hosts == 1 { "" } else { "s" };
        if self.is_healthy() {
            return match self.requests() {
                0 => {
                    f.write_str("tower-reset diagnosis: no connection failures (no requests seen)")
                }
                requests => write!(
                    f,
                    "tower-reset diagnosis: no connection failures ({requests} requests to \
                     {hosts} host{plural} in {})",
                    duration(self.over)
                ),
            };
        }
        write!(
            f,
            "tower-reset diagnosis: {} connection failures in {} requests to {hosts} \
             host{plural} in {}",
            self.failures(),
            self.requests(),
            duration(self.over)
        )?;
        let (healthy, failing): (Vec<_>, Vec<_>) =
            self.hosts.iter().partition(|host| host.failures == 0);
        for host in failing {
            write!(f, "\n{host}")?;
        }
        if !healthy.is_empty() {
            let requests: u64 = healthy.iter().map(|host| host.requests).sum();
            write!(
                f,
                "\nno connection failures on {} other host{} ({requests} requests)",
                healthy.len(),
                if healthy.len() == 1 { "" } else { "s" }
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for HostReport {
    /// A line of counts, then each cause indented; a last line for what no cause explains.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} connection failures in {} requests (",
            self.host, self.failures, self.requests
        )?;
        let mut first = true;
        for class in CLASSES {
            let count = self.failures_of(class);
            if count > 0 {
                let separator = if first { "" } else { ", " };
                write!(f, "{separator}{count} {}", class_words(class))?;
                first = false;
            }
        }
        f.write_str(")")?;
        if self.recorded < self.failures {
            write!(f, "; the last {} analysed", self.recorded)?;
        }
        for cause in &self.causes {
            f.write_str("\n")?;
            cause.write_indented(f, "  ")?;
        }
        let unexplained = self.unexplained();
        if unexplained > 0 {
            if self.causes.is_empty() {
                write!(
                    f,
                    "\n  no probable cause yet: too few failures ({unexplained}) or no pattern"
                )?;
            } else {
                write!(f, "\n  {unexplained} failures fit no pattern")?;
            }
        }
        Ok(())
    }
}

fn class_words(class: FailureClass) -> &'static str {
    match class {
        FailureClass::NeverSent => "never sent",
        FailureClass::Refused => "refused",
        FailureClass::UnknownOutcome => "unknown outcome",
        FailureClass::Unavailable => "unavailable",
        FailureClass::Rejected => "rejected",
    }
}
