//! `tracing` events when the `tracing` feature is on, nothing at all when it is off.

/// Emits a `tracing` event at the given level.
///
/// Without the feature the event compiles to nothing, yet its fields still count as used: they
/// sit in an `if false` block the compiler removes. So a value computed only to be logged needs
/// no `let _ = value;` to keep the build without `tracing` free of warnings. Fields take the
/// forms used here: `name`, `%name`, `?name`, `name = expr`, `name = %expr`, `name = ?expr`,
/// and the message comes last.
macro_rules! event {
    (@fields $message:literal) => {};
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
    ($level:ident, $($arg:tt)+) => {
        #[cfg(feature = "tracing")]
        {
            ::tracing::$level!(target: "tower_reset", $($arg)+);
        }
        #[cfg(not(feature = "tracing"))]
        {
            $crate::trace::event!(@fields $($arg)+);
        }
    };
}

pub(crate) use event;
