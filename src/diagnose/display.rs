//! How figures read in a report: durations, sizes, shares, and durations as Rust code.

use std::fmt;
use std::time::Duration;

/// A duration for a human: `850 ms`, `2.0 s`, `95 s`.
pub(crate) fn duration(duration: Duration) -> impl fmt::Display {
    Shown(move |f: &mut fmt::Formatter<'_>| {
        let millis = duration.as_millis();
        if millis < 1000 {
            write!(f, "{millis} ms")
        } else if millis < 100_000 {
            write!(f, "{:.1} s", duration.as_secs_f64())
        } else {
            write!(f, "{:.0} s", duration.as_secs_f64())
        }
    })
}

/// A duration as the Rust expression that makes it: `Duration::from_secs(4)`,
/// `Duration::from_millis(1600)`.
pub(crate) fn code_duration(duration: Duration) -> impl fmt::Display {
    Shown(move |f: &mut fmt::Formatter<'_>| {
        let millis = duration.as_millis();
        if millis.is_multiple_of(1000) {
            write!(f, "Duration::from_secs({})", millis / 1000)
        } else {
            write!(f, "Duration::from_millis({millis})")
        }
    })
}

/// A size for a human: `512 B`, `64.0 KiB`, `1.5 MiB`.
pub(crate) fn bytes(bytes: u64) -> impl fmt::Display {
    Shown(move |f: &mut fmt::Formatter<'_>| {
        const KIB: f64 = 1024.0;
        let value = bytes as f64;
        if bytes < 1024 {
            write!(f, "{bytes} B")
        } else if value < KIB * KIB {
            write!(f, "{:.1} KiB", value / KIB)
        } else if value < KIB * KIB * KIB {
            write!(f, "{:.1} MiB", value / (KIB * KIB))
        } else {
            write!(f, "{:.1} GiB", value / (KIB * KIB * KIB))
        }
    })
}

/// A share as a percentage: `0%`, `0.4%`, `38%`.
pub(crate) fn percent(share: f64) -> impl fmt::Display {
    Shown(move |f: &mut fmt::Formatter<'_>| {
        let percent = share * 100.0;
        if percent == 0.0 || percent >= 10.0 {
            write!(f, "{percent:.0}%")
        } else {
            write!(f, "{percent:.1}%")
        }
    })
}

/// Four fifths of `limit`, rounded down to two significant figures (at least 1 ms): a setting
/// safely below a limit that was measured.
pub(crate) fn below(limit: Duration) -> Duration {
    let target = limit.as_millis() * 4 / 5;
    let mut step = 1;
    while target / step >= 100 {
        step *= 10;
    }
    let millis = (target / step * step).max(1);
    Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
}

struct Shown<F>(F);

impl<F: Fn(&mut fmt::Formatter<'_>) -> fmt::Result> fmt::Display for Shown<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (self.0)(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_well() {
        assert_eq!(duration(Duration::from_millis(850)).to_string(), "850 ms");
        assert_eq!(duration(Duration::from_millis(2000)).to_string(), "2.0 s");
        assert_eq!(duration(Duration::from_secs(95)).to_string(), "95.0 s");
        assert_eq!(duration(Duration::from_secs(300)).to_string(), "300 s");
        assert_eq!(bytes(512).to_string(), "512 B");
        assert_eq!(bytes(1536 * 1024).to_string(), "1.5 MiB");
        assert_eq!(percent(0.0).to_string(), "0%");
        assert_eq!(percent(0.004).to_string(), "0.4%");
        assert_eq!(percent(0.381).to_string(), "38%");
        assert_eq!(
            code_duration(Duration::from_secs(4)).to_string(),
            "Duration::from_secs(4)"
        );
        assert_eq!(
            code_duration(Duration::from_millis(1600)).to_string(),
            "Duration::from_millis(1600)"
        );
    }

    #[test]
    fn settings_stay_below_the_limit() {
        assert_eq!(below(Duration::from_secs(2)), Duration::from_millis(1600));
        assert_eq!(
            below(Duration::from_millis(4900)),
            Duration::from_millis(3900)
        );
        assert_eq!(below(Duration::from_secs(90)), Duration::from_secs(72));
        assert_eq!(below(Duration::from_millis(1)), Duration::from_millis(1));
        for millis in [1, 7, 99, 250, 1001, 4999, 86_400_000] {
            let limit = Duration::from_millis(millis);
            assert!(below(limit) <= limit, "{limit:?}");
        }
    }
}
