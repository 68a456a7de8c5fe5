//! `tracing` events when the `tracing` feature is on, nothing at all when it is off.
//!
//! Every event has a target of its own, so that a subscriber can choose per event what it
//! wants to see (`RUST_LOG=tower_reset::give_up=info,tower_reset::retry=off`). The events are
//! listed, with their levels and fields, in the crate documentation.

/// A retry went out (after any backoff).
#[cfg(feature = "tracing")]
pub(crate) const RETRY: &str = "tower_reset::retry";
/// A request ended on a connection failure it could not retry.
#[cfg(feature = "tracing")]
pub(crate) const GIVE_UP: &str = "tower_reset::give_up";
/// The backoff held an attempt back, or abandoned it.
pub(crate) const BACKOFF: &str = "tower_reset::backoff";
/// A fresh-connection strategy condemned, retired, replaced or detoured around a connection.
pub(crate) const CONNECTION: &str = "tower_reset::fresh_connection";
/// The diagnosis recorded a connection failure.
pub(crate) const DIAGNOSE: &str = "tower_reset::diagnose";

/// Warns, once per process, that a retry went out after a server's `Retry-After` that no layer
/// waited for.
#[cfg(feature = "tracing")]
pub(crate) fn warn_unheeded_hint() {
    use std::sync::atomic::{AtomicBool, Ordering};
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            target: RETRY,
            "a retry went out after the server's Retry-After without waiting for it: no \
             BackoffLayer below ResetRetryLayer (is it outside? see tower_reset::preset)"
        );
    }
}

/// Emits a `tracing` event at the given level and target (`target: trace::RETRY`, say; the
/// target is `tower_reset` when none is given).
///
/// Without the feature the event compiles to nothing, yet its fields still count as used: they
/// sit in an `if false` block the compiler removes. So a value computed only to be logged needs
/// no `let _ = value;` to keep the build without `tracing` free of warnings. Fields take the
/// forms used here: `name`, `%name`, `?name`, `name = expr`, `name = %expr`, `name = ?expr`,
/// and the message comes last (with format arguments if it has any).
macro_rules! event {
    (@fields $message:literal) => {};
    (@fields $message:literal, $($arg:expr),+ $(,)?) => {
        if false { $(let _ = &$arg;)+ }
    };
    (@fields $name:ident = %$value:expr, $($rest:tt)+) => {
        if false { let _ = &$value; }
        $crate::trace::event!(@fields $($rest)+);
    };
    (@fields $name:ident = ?$value:expr, $($rest:tt)+) => {
        if false { let _ = &$value; }
        $crate::trace::event!(@fields $($rest)+);
    };
    (@fields $name:ident = $value:expr, $($rest:tt)+) => {
        if false { let _ = &$value; }
        $crate::trace::event!(@fields $($rest)+);
    };
    (@fields %$value:ident, $($rest:tt)+) => {
        if false { let _ = &$value; }
        $crate::trace::event!(@fields $($rest)+);
    };
    (@fields ?$value:ident, $($rest:tt)+) => {
        if false { let _ = &$value; }
        $crate::trace::event!(@fields $($rest)+);
    };
    (@fields $value:ident, $($rest:tt)+) => {
        if false { let _ = &$value; }
        $crate::trace::event!(@fields $($rest)+);
    };
    ($level:ident, target: $target:expr, $($arg:tt)+) => {
        #[cfg(feature = "tracing")]
        {
            ::tracing::$level!(target: $target, $($arg)+);
        }
        #[cfg(not(feature = "tracing"))]
        {
            let _ = $target;
            $crate::trace::event!(@fields $($arg)+);
        }
    };
    ($level:ident, $($arg:tt)+) => {
        $crate::trace::event!($level, target: "tower_reset", $($arg)+)
    };
}

pub(crate) use event;
