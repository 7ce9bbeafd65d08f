//! A user's own limits (`[users.NAME.limits]`), beside the server's `[limits]`.

use serde::{Deserialize, Serialize};

/// Per-user limits; unset: the server's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserLimits {}

impl UserLimits {
    /// Whether nothing is set (the users file then leaves the table out).
    pub fn is_empty(&self) -> bool {
        *self == UserLimits::default()
    }
}
