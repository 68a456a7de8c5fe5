//! Configuration that makes no sense is rejected at construction, with a clear message.

use std::time::Duration;

use tower_reset::reset_retry::RetryBudget;
use tower_reset::ResetRetryLayer;

#[test]
fn zero_attempts_is_rejected() {
    let error = ResetRetryLayer::builder()
        .max_attempts(0)
        .build()
        .unwrap_err();
    assert_eq!(error.setting(), "max_attempts");
    assert_eq!(
        error.to_string(),
        "invalid `max_attempts`: must be at least 1 (the first attempt) and at most 100, got 0"
    );
}

#[test]
fn absurd_attempt_counts_are_rejected() {
    assert!(ResetRetryLayer::builder()
        .max_attempts(101)
        .build()
        .is_err());
    assert!(ResetRetryLayer::builder()
        .max_attempts(u32::MAX)
        .build()
        .is_err());
    assert!(ResetRetryLayer::builder().max_attempts(1).build().is_ok());
    assert!(ResetRetryLayer::builder().max_attempts(100).build().is_ok());
}

#[test]
fn a_zero_deadline_is_rejected() {
    let error = ResetRetryLayer::builder()
        .deadline(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(error.setting(), "deadline");
}

#[test]
fn budget_ratios_that_make_no_sense_are_rejected() {
    let window = Duration::from_secs(10);
    for ratio in [
        -0.01,
        -1.0,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1000.5,
    ] {
        let error = RetryBudget::new(ratio, 10, window).unwrap_err();
        assert_eq!(error.setting(), "budget ratio", "{ratio}");
        assert!(error.to_string().contains("finite number"), "{error}");
    }
    assert!(RetryBudget::new(0.0, 0, window).is_ok());
    assert!(RetryBudget::new(1000.0, 0, window).is_ok());
}

#[test]
fn budget_windows_that_make_no_sense_are_rejected() {
    for window in [
        Duration::ZERO,
        Duration::from_millis(999),
        Duration::from_secs(3601),
        Duration::MAX,
    ] {
        let error = RetryBudget::new(0.2, 10, window).unwrap_err();
        assert_eq!(error.setting(), "budget window", "{window:?}");
    }
}

#[test]
fn the_default_budget_has_the_documented_settings() {
    let budget = RetryBudget::default();
    assert_eq!(budget.ratio(), 0.2);
    assert_eq!(budget.min_per_second(), 10);
    assert_eq!(budget.window(), Duration::from_secs(10));
}
