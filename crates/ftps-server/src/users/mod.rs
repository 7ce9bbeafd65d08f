//! The users file and password authentication.
//!
//! Users live in a TOML file, one table per user:
//!
//! ```toml
//! [users.alice]
//! password = "$argon2id$v=19$m=19456,t=2,p=1$..."  # PHC string, argon2id only
//! root = "/srv/ftp/alice"                          # absolute, or relative to this file's directory
//! access = "read-write"                            # or "read-only"; default "read-write"
//! data_session_reuse = "optional"                  # optional override of the server policy
//! ```
//!
//! * User names are 1-64 characters of `A-Z a-z 0-9 . _ @ -` and do not start with `-` or `.`.
//! * `password` is an argon2id hash in PHC string format (see [`hash_password`]). A user
//!   without a password exists but cannot log in.
//! * Unknown keys are an error, so a typo cannot silently weaken a user's settings.
//!
//! [`UserDb`] reads and edits the file (it is what `ftpsd user ...` uses); [`UserStore`] is
//! the server's shared view of it, which picks up changes on disk without a restart.
//! [`UserDb::save`] rewrites the whole file, so comments in a hand-edited file are not kept.
//!
//! The code is in three parts: `file` (the format: parsing, validation, atomic writing),
//! `password` (argon2id hashing and verification, generated passwords) and `store` (the
//! server's live view: reloads, logins, whether a session's login still holds).

mod database;
mod file;
mod limits;
mod password;
mod store;

use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::addresses::AddressRules;
use crate::bandwidth::UserBandwidth;
use crate::certid::{CertIdentity, CertificateMatch};
use crate::folders::Folders;
use crate::permissions::PathPermissions;
use crate::policy::{Access, SessionReuse};
use crate::quota::Quota;

pub use database::{import, UserSource};
pub use file::UserDb;
pub use limits::UserLimits;
pub use password::{generate_password, hash_password};
pub use store::{
    AuthenticatedUser, LoginFailed, MountedFolder, UserStore, DEFAULT_CREDENTIAL_CACHE,
};

/// Errors reading, validating, editing or writing the users file.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    /// The file (or its directory) could not be read or written.
    #[error("users file {}: {error}", path.display())]
    Io {
        /// The file the operation was on.
        path: PathBuf,
        /// The underlying error (part of the message, so deliberately not a `source`).
        error: io::Error,
    },
    /// The file is not valid TOML or does not match the expected format.
    #[error("users file {}: {message}", path.display())]
    Parse {
        /// The file that failed to parse.
        path: PathBuf,
        /// What is wrong, with a line and column where known.
        message: String,
    },
    /// The users could not be turned into TOML (for example a root that is not UTF-8).
    #[error("users file {}: cannot write: {message}", path.display())]
    Serialize {
        /// The file being written.
        path: PathBuf,
        /// What could not be serialized.
        message: String,
    },
    /// A user name that does not follow the naming rules.
    #[error(
        "invalid user name {0:?}: use 1-64 characters of A-Z a-z 0-9 . _ @ -, \
         not starting with - or ."
    )]
    InvalidName(String),
    /// A user with this name already exists.
    #[error("user {0:?} already exists")]
    Exists(String),
    /// No user has this name.
    #[error("no such user: {0:?}")]
    NotFound(String),
    /// An empty password was given; it would be trivially guessable.
    #[error("the password must not be empty")]
    EmptyPassword,
    /// A user's `password` is not an argon2id PHC string.
    #[error("users file {}: user {user:?}: password is not a valid argon2id hash", path.display())]
    BadHash {
        /// The file the user is in.
        path: PathBuf,
        /// The user whose hash is wrong.
        user: String,
    },
    /// Hashing a new password failed.
    #[error("hashing the password failed: {0}")]
    Hash(String),
    /// The user database failed.
    #[error(transparent)]
    Database(#[from] crate::database::DatabaseError),
    /// Both a users file and a database are configured.
    #[error("both users_file and [database] are set: users are in one or the other")]
    TwoSources,
}

/// One user's entry in the users file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    /// Argon2id PHC hash of the password; `None` means the user cannot log in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The user's root directory, absolute or relative to the users file's directory; for
    /// a user whose files are in an S3 store, the key prefix inside the store.
    pub root: PathBuf,
    /// The store of the user's files: the name of a `[storage.s3.NAME]` of the
    /// configuration. Unset: the server's `storage.default`, or else the local `root`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    /// What the user may do inside the root.
    #[serde(default)]
    pub access: Access,
    /// Overrides the server's data-connection session reuse policy for this user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_session_reuse: Option<SessionReuse>,
    /// How the user proves who they are.
    #[serde(default, skip_serializing_if = "LoginMethod::is_default")]
    pub login: LoginMethod,
    /// The client certificate that identifies this user (for the certificate methods).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateMatch>,
    /// Allow PORT/EPRT to another host than the client's (site-to-site transfer, FXP).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_fxp: bool,
    /// The user's own limits (`[users.NAME.limits]`).
    #[serde(default, skip_serializing_if = "UserLimits::is_empty")]
    pub limits: UserLimits,
    /// The user's bandwidth limits (`[users.NAME.bandwidth]`).
    #[serde(default, skip_serializing_if = "UserBandwidth::is_empty")]
    pub bandwidth: UserBandwidth,
    /// What the user may do where (`[users.NAME.permissions]`); paths no rule covers get
    /// what `access` gives.
    #[serde(default, skip_serializing_if = "PathPermissions::is_empty")]
    pub permissions: PathPermissions,
    /// The addresses the user may log in from (`[users.NAME.addresses]`).
    #[serde(default, skip_serializing_if = "AddressRules::is_empty")]
    pub addresses: AddressRules,
    /// How much the user's files may hold (`[users.NAME.quota]`); unset values: the
    /// server's `[quota]`.
    #[serde(default, skip_serializing_if = "Quota::is_empty")]
    pub quota: Quota,
    /// Other directories mounted into the user's tree (`[users.NAME.folders."/PATH"]`).
    #[serde(default, skip_serializing_if = "Folders::is_empty")]
    pub folders: Folders,
}

/// One user's entry as `ftpsd user show` prints it: the users file's TOML for that user,
/// with the password hash replaced by whether one is set.
pub fn show_entry(name: &str, entry: &UserEntry) -> Result<String, toml::ser::Error> {
    let mut shown = entry.clone();
    let has_password = shown.password.take().is_some();
    let mut users = std::collections::BTreeMap::new();
    users.insert(name.to_string(), shown);
    let mut text = toml::to_string(&ShownUsers { users })?;
    text.push_str(if has_password {
        "# password: set\n"
    } else {
        "# password: none (no password login)\n"
    });
    Ok(text)
}

/// The `[users.NAME]` wrapper [`show_entry`] serializes.
#[derive(Serialize)]
struct ShownUsers {
    users: std::collections::BTreeMap<String, UserEntry>,
}

impl UserEntry {
    /// Whether a correct password logs this user in, given the client certificate.
    fn password_login_allowed(&self, certificate: Option<&CertIdentity>) -> bool {
        let cert_matches =
            || certificate.is_some_and(|c| self.certificate.as_ref().is_some_and(|m| m.matches(c)));
        match self.login {
            LoginMethod::Password => true,
            LoginMethod::CertificateAndPassword => cert_matches(),
            // Certificate-only users log in at USER; a password never suffices.
            LoginMethod::Certificate => false,
        }
    }
}

/// How a user logs in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoginMethod {
    /// `USER` + `PASS`.
    #[default]
    Password,
    /// A client certificate matching `certificate`; `USER` alone logs in (232, RFC 4217
    /// §12.2).
    Certificate,
    /// Both the certificate and the password.
    CertificateAndPassword,
}

impl LoginMethod {
    fn is_default(&self) -> bool {
        *self == LoginMethod::Password
    }
}

/// What the tests of the submodules share.
#[cfg(test)]
mod fixtures {
    use std::path::PathBuf;

    use tempfile::TempDir;

    use super::{Access, UserDb};

    /// Where a test keeps its users file.
    pub(super) fn users_path(dir: &TempDir) -> PathBuf {
        dir.path().join("users.toml")
    }

    /// A saved database with one read-write user `alice` whose password is `secret`.
    pub(super) fn db_with_alice(dir: &TempDir) -> UserDb {
        let mut db = UserDb::load_or_empty(&users_path(dir)).unwrap();
        db.add("alice", "/srv/alice".into(), Access::ReadWrite, "secret")
            .unwrap();
        db.save().unwrap();
        db
    }
}
