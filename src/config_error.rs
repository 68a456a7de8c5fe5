//! The error for configuration that makes no sense.

use std::fmt;

/// Configuration that was rejected when a layer, policy or budget was built.
///
/// Every limit is checked at construction, so that nothing can fail (or panic) later on the
/// request path. The message names the setting, the value given and what is allowed.
///
/// # Examples
///
/// ```
/// use tower_reset::ResetRetryLayer;
///
/// let err = ResetRetryLayer::builder().max_attempts(0).build().unwrap_err();
/// assert_eq!(err.setting(), "max_attempts");
/// assert!(err.to_string().contains("at least 1"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    setting: &'static str,
    message: String,
}

impl ConfigError {
    pub(crate) fn new(setting: &'static str, message: impl Into<String>) -> Self {
        Self {
            setting,
            message: message.into(),
        }
    }

    /// The name of the rejected setting, such as `"max_attempts"`.
    pub fn setting(&self) -> &'static str {
        self.setting
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid `{}`: {}", self.setting, self.message)
    }
}

impl std::error::Error for ConfigError {}
