//! `tracing` events when the `tracing` feature is on, nothing at all when it is off.

/// Emits a `tracing` event at the given level; compiles to nothing without the feature.
macro_rules! event {
    ($level:ident, $($arg:tt)+) => {
        #[cfg(feature = "tracing")]
        {
            ::tracing::$level!(target: "tower_reset", $($arg)+);
        }
    };
}

pub(crate) use event;
