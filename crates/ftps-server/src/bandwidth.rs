//! Bandwidth limits: token buckets for uploads and downloads, server-wide, per user and per
//! session.

use serde::{Deserialize, Serialize};

/// The server's bandwidth limits (`[bandwidth]` of the configuration).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerBandwidth {}

/// A user's bandwidth limits (`[users.NAME.bandwidth]` of the users file); unset: the
/// server's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserBandwidth {}

impl UserBandwidth {
    /// Whether nothing is set (the users file then leaves the table out).
    pub fn is_empty(&self) -> bool {
        *self == UserBandwidth::default()
    }
}
