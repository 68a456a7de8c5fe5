//! Invalid schedule parameters are rejected when the schedule is built, with a `ConfigError`
//! that names the setting; the limits themselves are accepted.

use std::time::Duration;

use tower_reset::backoff::policy::{Exponential, ExponentialBuilder, Jitter};
use tower_reset::ConfigError;

use crate::harness::ms;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

fn rejected(builder: ExponentialBuilder) -> ConfigError {
    builder.build().expect_err("the schedule must be rejected")
}

#[test]
fn a_zero_base_is_rejected() {
    let err = rejected(Exponential::builder().base(Duration::ZERO));
    assert_eq!(err.setting(), "backoff base");
    assert!(err.to_string().contains("more than zero"), "{err}");
}

#[test]
fn a_max_below_the_base_or_above_a_day_is_rejected() {
    let err = rejected(Exponential::builder().base(ms(100)).max(ms(99)));
    assert_eq!(err.setting(), "backoff max");
    assert!(err.to_string().contains("99ms"), "{err}");

    let err = rejected(Exponential::builder().max(DAY + Duration::from_nanos(1)));
    assert_eq!(err.setting(), "backoff max");
    assert!(err.to_string().contains("one day"), "{err}");

    let err = rejected(Exponential::builder().base(DAY * 2).max(DAY * 3));
    assert_eq!(err.setting(), "backoff max");
}

#[test]
fn a_factor_that_is_not_a_finite_number_from_1_to_100_is_rejected() {
    for factor in [
        f64::NAN,
        -f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.999,
        0.0,
        -2.0,
        100.001,
        f64::MAX,
    ] {
        let err = rejected(Exponential::builder().factor(factor));
        assert_eq!(err.setting(), "backoff factor", "factor {factor}");
        assert!(err.to_string().contains("from 1 to 100"), "{err}");
    }
}

#[test]
fn the_limits_themselves_are_accepted() {
    for builder in [
        Exponential::builder().factor(1.0),
        Exponential::builder().factor(100.0),
        Exponential::builder().base(ms(100)).max(ms(100)),
        Exponential::builder().max(DAY),
        Exponential::builder().base(DAY).max(DAY),
        Exponential::builder().base(Duration::from_nanos(1)),
    ] {
        builder.build().expect("a valid schedule");
    }
    let built = Exponential::builder()
        .base(ms(7))
        .factor(3.5)
        .max(ms(900))
        .jitter(Jitter::Decorrelated)
        .build()
        .unwrap();
    assert_eq!(
        (built.base(), built.factor(), built.max(), built.jitter()),
        (ms(7), 3.5, ms(900), Jitter::Decorrelated)
    );
}
