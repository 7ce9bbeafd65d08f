//! Address rules: which client addresses may connect to the server (`[addresses]`) and
//! which may log in as a user (`[users.NAME.addresses]`).

use serde::{Deserialize, Serialize};

/// Allow and deny lists of client addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressRules {}

impl AddressRules {
    /// Whether no rule is set (the users file then leaves the table out).
    pub fn is_empty(&self) -> bool {
        *self == AddressRules::default()
    }
}
