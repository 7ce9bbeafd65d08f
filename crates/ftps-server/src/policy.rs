//! Small policy types shared by the configuration, the users file and sessions.

use serde::{Deserialize, Serialize};

/// What a user may do inside their root directory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// List and download only.
    ReadOnly,
    /// List, download, upload, rename and delete.
    #[default]
    ReadWrite,
}

impl Access {
    /// Whether this access level allows changing the file system.
    pub fn can_write(self) -> bool {
        matches!(self, Access::ReadWrite)
    }
}

/// Whether a data connection's TLS session must resume the control connection's session.
///
/// `Required` binds every data connection to its control session (the defence against
/// data-connection stealing); `Optional` is for clients that cannot resume, such as an
/// unmodified Python `ftplib`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SessionReuse {
    /// A data connection that does not resume this control session is refused with 522.
    #[default]
    Required,
    /// Resumption is accepted but not demanded.
    Optional,
}
