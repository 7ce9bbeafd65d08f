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

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::certid::{CertIdentity, CertificateMatch};
use crate::credcache::CredentialCache;
use crate::policy::{Access, SessionReuse};

/// Longest accepted user name, in characters.
const MAX_NAME_LEN: usize = 64;

/// Argon2id memory cost in KiB (OWASP recommendation).
const ARGON2_M_COST: u32 = 19_456;
/// Argon2id iterations.
const ARGON2_T_COST: u32 = 2;
/// Argon2id parallelism.
const ARGON2_P_COST: u32 = 1;

/// Length of a generated password.
const GENERATED_LEN: usize = 24;
/// Letters and digits without look-alikes (0/O/o, 1/l/I).
const GENERATED_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";

/// A valid argon2id hash with the same parameters as [`hash_password`] produces. Logins for
/// unknown users (or users without a password) verify against it, so they cost as much as
/// a real login and timing does not reveal which names exist.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// Comment written at the top of a saved users file.
const FILE_HEADER: &str = "# ftpsd users file. Passwords are argon2id hashes; \
manage entries with `ftpsd user`.\n\n";

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
}

/// One user's entry in the users file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    /// Argon2id PHC hash of the password; `None` means the user cannot log in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The user's root directory, absolute or relative to the users file's directory.
    pub root: PathBuf,
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

/// The on-disk layout: everything sits under `[users.NAME]`.
#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    #[serde(default)]
    users: BTreeMap<String, UserEntry>,
}

/// The parsed users file.
#[derive(Clone, Debug)]
pub struct UserDb {
    path: PathBuf,
    users: BTreeMap<String, UserEntry>,
}

impl UserDb {
    /// Reads and validates the users file: every name must be valid and every password
    /// a parseable argon2id PHC string.
    pub fn load(path: &Path) -> Result<UserDb, UsersError> {
        let text = fs::read_to_string(path).map_err(|source| io_error(path, source))?;
        Self::parse(path, &text)
    }

    /// Like [`UserDb::load`], but a missing file gives an empty database (which
    /// [`UserDb::save`] will create).
    pub fn load_or_empty(path: &Path) -> Result<UserDb, UsersError> {
        match fs::read_to_string(path) {
            Ok(text) => Self::parse(path, &text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(UserDb {
                path: path.to_path_buf(),
                users: BTreeMap::new(),
            }),
            Err(source) => Err(io_error(path, source)),
        }
    }

    /// Parses and validates users-file text as [`UserDb::load`] does; `path` is where it
    /// would be saved and what relative roots are resolved against.
    pub fn parse(path: &Path, text: &str) -> Result<UserDb, UsersError> {
        let file: UsersFile = toml::from_str(text).map_err(|e| UsersError::Parse {
            path: path.to_path_buf(),
            message: describe_toml_error(text, &e),
        })?;
        for (name, entry) in &file.users {
            validate_entry(path, name, entry)?;
        }
        Ok(UserDb {
            path: path.to_path_buf(),
            users: file.users,
        })
    }

    /// The file this database was loaded from and saves to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the database back atomically: a temporary file in the same directory is
    /// written, synced and renamed over the old one, so readers never see half a file.
    /// The file gets mode 0600 because it holds password hashes.
    pub fn save(&self) -> Result<(), UsersError> {
        let body = toml::to_string(&UsersFileRef { users: &self.users }).map_err(|e| {
            UsersError::Serialize {
                path: self.path.clone(),
                message: e.to_string(),
            }
        })?;
        let text = format!("{FILE_HEADER}{body}");
        write_atomically(&self.path, text.as_bytes()).map_err(|e| io_error(&self.path, e))
    }

    /// Adds a user with a freshly hashed password.
    pub fn add(
        &mut self,
        name: &str,
        root: PathBuf,
        access: Access,
        password: &str,
    ) -> Result<(), UsersError> {
        validate_name(name)?;
        if self.users.contains_key(name) {
            return Err(UsersError::Exists(name.to_owned()));
        }
        let hash = hash_password(password)?;
        let entry = UserEntry {
            password: Some(hash),
            root,
            access,
            data_session_reuse: None,
            login: LoginMethod::Password,
            certificate: None,
            allow_fxp: false,
        };
        self.users.insert(name.to_owned(), entry);
        Ok(())
    }

    /// Removes a user.
    pub fn remove(&mut self, name: &str) -> Result<(), UsersError> {
        match self.users.remove(name) {
            Some(_) => Ok(()),
            None => Err(UsersError::NotFound(name.to_owned())),
        }
    }

    /// Replaces a user's password with a fresh hash of `password`.
    pub fn set_password(&mut self, name: &str, password: &str) -> Result<(), UsersError> {
        let entry = self
            .users
            .get_mut(name)
            .ok_or_else(|| UsersError::NotFound(name.to_owned()))?;
        entry.password = Some(hash_password(password)?);
        Ok(())
    }

    /// Sets or clears a user's override of the server's data-session-reuse policy.
    pub fn set_session_reuse(
        &mut self,
        name: &str,
        reuse: Option<SessionReuse>,
    ) -> Result<(), UsersError> {
        let entry = self
            .users
            .get_mut(name)
            .ok_or_else(|| UsersError::NotFound(name.to_owned()))?;
        entry.data_session_reuse = reuse;
        Ok(())
    }

    /// The entry for `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<&UserEntry> {
        self.users.get(name)
    }

    /// All user names, in sorted order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }

    /// The entry's root as a path usable from the current directory: a relative root is
    /// taken relative to the users file's directory.
    pub fn resolve_root(&self, entry: &UserEntry) -> PathBuf {
        if entry.root.is_absolute() {
            return entry.root.clone();
        }
        let base = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let joined = base.join(&entry.root);
        // Absolute so it stays right even if the process later changes directory.
        std::path::absolute(&joined).unwrap_or(joined)
    }
}

/// Borrowing twin of [`UsersFile`] so saving does not clone the map.
#[derive(Serialize)]
struct UsersFileRef<'a> {
    users: &'a BTreeMap<String, UserEntry>,
}

/// Hashes a password with argon2id (m=19456 KiB, t=2, p=1, as OWASP recommends) and a
/// random salt, returning the PHC string to store in the users file.
pub fn hash_password(password: &str) -> Result<String, UsersError> {
    if password.is_empty() {
        return Err(UsersError::EmptyPassword);
    }
    let argon2 = argon2_instance().map_err(|e| UsersError::Hash(e.to_string()))?;
    let salt = SaltString::generate(&mut OsRng);
    argon2
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| UsersError::Hash(e.to_string()))
}

/// Generates a random 24-character password from letters and digits that cannot be
/// mistaken for each other (about 138 bits of entropy), using the OS random source.
pub fn generate_password() -> String {
    (0..GENERATED_LEN)
        .map(|_| {
            let i = OsRng.gen_range(0..GENERATED_ALPHABET.len());
            char::from(GENERATED_ALPHABET[i])
        })
        .collect()
}

fn argon2_instance() -> Result<Argon2<'static>, argon2::Error> {
    let params = Params::new(ARGON2_M_COST, ARGON2_T_COST, ARGON2_P_COST, None)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Checks a user name against the naming rules.
fn validate_name(name: &str) -> Result<(), UsersError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-');
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with(['-', '.'])
        && name.chars().all(allowed);
    if ok {
        Ok(())
    } else {
        Err(UsersError::InvalidName(name.to_owned()))
    }
}

/// Checks one entry read from `path`.
fn validate_entry(path: &Path, name: &str, entry: &UserEntry) -> Result<(), UsersError> {
    if let Err(e) = validate_name(name) {
        return Err(UsersError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        });
    }
    if entry.root.as_os_str().is_empty() {
        return Err(UsersError::Parse {
            path: path.to_path_buf(),
            message: format!("user {name:?}: root must not be empty"),
        });
    }
    let has_cert = entry.certificate.as_ref().is_some_and(|m| m.is_set());
    if entry.login != LoginMethod::Password && !has_cert {
        return Err(UsersError::Parse {
            path: path.to_path_buf(),
            message: format!(
                "user {name:?}: a certificate login needs `certificate = {{ cn = ..., san = ... or sha256 = ... }}`"
            ),
        });
    }
    match &entry.password {
        Some(hash) if !is_argon2id_hash(hash) => Err(UsersError::BadHash {
            path: path.to_path_buf(),
            user: name.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Whether `hash` is a complete argon2id PHC string with usable parameters.
fn is_argon2id_hash(hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let version_ok = match parsed.version {
        Some(v) => Version::try_from(v).is_ok(),
        None => true,
    };
    parsed.algorithm == Algorithm::Argon2id.ident()
        && version_ok
        && parsed.salt.is_some()
        && parsed.hash.is_some()
        && Params::try_from(&parsed).is_ok()
}

/// Checks `password` against a PHC string; any malformed input is simply a mismatch.
fn verify_hash(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// Turns a TOML error into one line with a line and column, without the multi-line
/// snippet the default `Display` prints.
fn describe_toml_error(text: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim();
    let Some(span) = err.span() else {
        return message.to_owned();
    };
    let before = text.get(..span.start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("line {line}, column {column}: {message}")
}

fn io_error(path: &Path, source: io::Error) -> UsersError {
    UsersError::Io {
        path: path.to_path_buf(),
        error: source,
    }
}

/// Writes `contents` to `path` via a synced temporary file in the same directory and a
/// rename, then syncs the directory so the rename itself survives a crash.
fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(file_name);
    temp_name.push(format!(".tmp-{:016x}", OsRng.gen::<u64>()));
    let temp = dir.join(temp_name);

    let result = write_and_sync(&temp, contents).and_then(|()| fs::rename(&temp, path));
    if result.is_err() {
        // Best effort: don't leave a stray temporary file behind.
        let _ = fs::remove_file(&temp);
        return result;
    }
    sync_dir(dir)
}

fn write_and_sync(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Created 0600 from the start, so the hashes are never readable by others.
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// A logged-in user as the session sees it.
#[derive(Clone, Debug)]
pub struct AuthenticatedUser {
    /// The user name.
    pub name: String,
    /// The resolved root directory (see [`UserDb::resolve_root`]).
    pub root: PathBuf,
    /// What the user may do inside the root.
    pub access: Access,
    /// The user's override of the data-connection session reuse policy, if any.
    pub data_session_reuse: Option<SessionReuse>,
    /// Whether the user may send PORT/EPRT to third-party hosts (FXP).
    pub allow_fxp: bool,
    /// The credentials the login was checked against; a reload that changes them (or
    /// removes the user) ends the session.
    credentials: Credentials,
}

/// What a login proved, as the users file said at the time.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Credentials {
    password: Option<String>,
    login: LoginMethod,
    certificate: Option<CertificateMatch>,
}

impl Credentials {
    fn of(entry: &UserEntry) -> Credentials {
        Credentials {
            password: entry.password.clone(),
            login: entry.login,
            certificate: entry.certificate.clone(),
        }
    }
}

fn authenticated(db: &UserDb, name: &str, entry: &UserEntry) -> AuthenticatedUser {
    AuthenticatedUser {
        name: name.to_owned(),
        root: db.resolve_root(entry),
        access: entry.access,
        data_session_reuse: entry.data_session_reuse,
        allow_fxp: entry.allow_fxp,
        credentials: Credentials::of(entry),
    }
}

/// How long a verified login is remembered by default.
pub const DEFAULT_CREDENTIAL_CACHE: Duration = Duration::from_secs(600);

/// A failed login. It deliberately says nothing about why, so callers cannot leak it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("login failed")]
pub struct LoginFailed;

/// What identifies one version of the users file on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    /// Every save renames a new file into place, so the inode changes even when the
    /// size and (coarse) mtime do not.
    #[cfg(unix)]
    inode: u64,
}

impl FileStamp {
    fn of(path: &Path) -> Option<FileStamp> {
        let meta = fs::metadata(path).ok()?;
        Some(FileStamp {
            modified: meta.modified().ok(),
            len: meta.len(),
            #[cfg(unix)]
            inode: std::os::unix::fs::MetadataExt::ino(&meta),
        })
    }
}

struct StoreState {
    db: Arc<UserDb>,
    /// The file as last seen; `None` if it could not be examined.
    stamp: Option<FileStamp>,
}

struct StoreInner {
    path: PathBuf,
    state: Mutex<StoreState>,
    /// Bounds concurrent argon2 runs: each needs ~19 MiB, and a login flood should
    /// queue rather than exhaust memory.
    hashing: Semaphore,
    /// Recently verified logins (see `crate::credcache`).
    verified: CredentialCache,
    /// Counts the loads of the file, so that sessions notice a reload.
    generation: tokio::sync::watch::Sender<u64>,
}

/// Shared, reloadable view of the users file used by the server.
#[derive(Clone)]
pub struct UserStore {
    inner: Arc<StoreInner>,
}

impl UserStore {
    /// Loads the users file; unlike [`UserDb::load_or_empty`], a missing file is an
    /// error, since a server with a mistyped users path would accept no one.
    pub fn open(path: &Path) -> Result<UserStore, UsersError> {
        Self::open_with_cache(path, DEFAULT_CREDENTIAL_CACHE)
    }

    /// Like [`UserStore::open`], with successful logins remembered for `cache_ttl` (zero:
    /// every login runs argon2).
    pub fn open_with_cache(path: &Path, cache_ttl: Duration) -> Result<UserStore, UsersError> {
        let stamp = FileStamp::of(path);
        let db = UserDb::load(path)?;
        let permits = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(UserStore {
            inner: Arc::new(StoreInner {
                path: path.to_path_buf(),
                state: Mutex::new(StoreState {
                    db: Arc::new(db),
                    stamp,
                }),
                hashing: Semaphore::new(permits),
                verified: CredentialCache::new(cache_ttl),
                generation: tokio::sync::watch::Sender::new(0),
            }),
        })
    }

    /// Changes whenever the users file has been loaded again.
    pub fn reloads(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.generation.subscribe()
    }

    /// Whether a session logged in as `user` may go on under the current file: the user
    /// still exists and its password, login method and certificate are unchanged.
    pub fn still_valid(&self, user: &AuthenticatedUser) -> bool {
        self.snapshot()
            .get(&user.name)
            .is_some_and(|entry| Credentials::of(entry) == user.credentials)
    }

    fn loaded(&self) {
        self.inner.generation.send_modify(|g| *g += 1);
    }

    /// Verify a login. Runs argon2 on a blocking thread. An unknown user, a user without
    /// a password, an empty password and a wrong password all return `Err(LoginFailed)`
    /// after doing the same work (unknown users are checked against a fixed dummy hash
    /// with the same parameters), so timing doesn't reveal which names exist.
    ///
    /// Before verifying, the file is reloaded if it changed on disk since the last load,
    /// so `ftpsd user add` takes effect without a restart. If that reload fails, the old
    /// contents stay in use and a warning is logged.
    pub async fn authenticate(
        &self,
        name: &str,
        password: &str,
        certificate: Option<&CertIdentity>,
    ) -> Result<AuthenticatedUser, LoginFailed> {
        if let Some(user) = self.recently_verified(name, password, certificate) {
            return Ok(user);
        }
        let _permit = self
            .inner
            .hashing
            .acquire()
            .await
            .map_err(|_| LoginFailed)?;
        let store = self.clone();
        let name = name.to_owned();
        let password = password.to_owned();
        let certificate = certificate.cloned();
        tokio::task::spawn_blocking(move || {
            store.authenticate_blocking(&name, &password, certificate.as_ref())
        })
        .await
        .map_err(|_| LoginFailed)?
    }

    /// Logs in a user whose login method is `certificate` by their client certificate alone.
    /// No password hash is checked, so this costs nothing; any other user fails.
    pub fn authenticate_certificate(
        &self,
        name: &str,
        certificate: &CertIdentity,
    ) -> Result<AuthenticatedUser, LoginFailed> {
        self.reload_if_changed();
        let db = self.snapshot();
        match db.get(name) {
            Some(entry)
                if entry.login == LoginMethod::Certificate
                    && entry
                        .certificate
                        .as_ref()
                        .is_some_and(|m| m.matches(certificate)) =>
            {
                Ok(authenticated(&db, name, entry))
            }
            _ => Err(LoginFailed),
        }
    }

    /// The fast path for a returning user: the same name, password and stored hash were
    /// verified by argon2 within the cache lifetime. The login method is checked as usual.
    fn recently_verified(
        &self,
        name: &str,
        password: &str,
        certificate: Option<&CertIdentity>,
    ) -> Option<AuthenticatedUser> {
        if password.is_empty() {
            return None;
        }
        self.reload_if_changed();
        let db = self.snapshot();
        let entry = db.get(name)?;
        let stored = entry.password.as_deref()?;
        if !self.inner.verified.contains(name, password, stored) {
            return None;
        }
        entry
            .password_login_allowed(certificate)
            .then(|| authenticated(&db, name, entry))
    }

    fn authenticate_blocking(
        &self,
        name: &str,
        password: &str,
        certificate: Option<&CertIdentity>,
    ) -> Result<AuthenticatedUser, LoginFailed> {
        self.reload_if_changed();
        let db = self.snapshot();
        let entry = db.get(name);
        let stored = entry.and_then(|e| e.password.as_deref());
        // Always run one verification, whatever the outcome will be.
        let matches = verify_hash(password, stored.unwrap_or(DUMMY_HASH));
        let Some(entry) = entry else {
            return Err(LoginFailed);
        };
        let method_ok = entry.password_login_allowed(certificate);
        if matches && stored.is_some() && !password.is_empty() && method_ok {
            if let Some(stored) = stored {
                self.inner.verified.insert(name, password, stored);
            }
            Ok(authenticated(&db, name, entry))
        } else {
            Err(LoginFailed)
        }
    }

    /// Re-reads the users file now. On error the previous contents stay in use.
    /// This does blocking file I/O.
    pub fn reload(&self) -> Result<(), UsersError> {
        let stamp = FileStamp::of(&self.inner.path);
        let db = UserDb::load(&self.inner.path)?;
        let mut state = self.lock();
        state.db = Arc::new(db);
        state.stamp = stamp;
        drop(state);
        self.loaded();
        Ok(())
    }

    /// The current contents of the users file.
    pub fn snapshot(&self) -> Arc<UserDb> {
        Arc::clone(&self.lock().db)
    }

    /// Reloads if the file's stamp differs from the last one seen.
    fn reload_if_changed(&self) {
        let path = &self.inner.path;
        // Stamp before reading: a change during the read shows up as a new stamp next time.
        let stamp = FileStamp::of(path);
        let mut state = self.lock();
        if state.stamp == stamp {
            return;
        }
        match UserDb::load(path) {
            Ok(db) => {
                state.db = Arc::new(db);
                tracing::info!(path = %path.display(), "reloaded users file");
                self.loaded();
            }
            Err(e) => {
                tracing::warn!(error = %e, "users file changed but could not be reloaded; keeping the previous users");
            }
        }
        // Remember the stamp even on failure so a broken file is reported once, not on
        // every login.
        state.stamp = stamp;
    }

    fn lock(&self) -> MutexGuard<'_, StoreState> {
        // The state is replaced whole, so it is consistent even after a panic elsewhere.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
impl UserStore {
    async fn authenticate_pw(
        &self,
        name: &str,
        password: &str,
    ) -> Result<AuthenticatedUser, LoginFailed> {
        self.authenticate(name, password, None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tempfile::TempDir;

    fn users_path(dir: &TempDir) -> PathBuf {
        dir.path().join("users.toml")
    }

    /// A saved database with one read-write user `alice` whose password is `secret`.
    fn db_with_alice(dir: &TempDir) -> UserDb {
        let mut db = UserDb::load_or_empty(&users_path(dir)).unwrap();
        db.add("alice", "/srv/alice".into(), Access::ReadWrite, "secret")
            .unwrap();
        db.save().unwrap();
        db
    }

    #[test]
    fn add_save_load_round_trip() {
        let dir = TempDir::new().unwrap();
        let path = users_path(&dir);
        let mut db = UserDb::load_or_empty(&path).unwrap();
        assert_eq!(db.names().count(), 0);
        db.add("alice", "/srv/alice".into(), Access::ReadWrite, "pw1")
            .unwrap();
        db.add("bob@example.com", "bob".into(), Access::ReadOnly, "pw2")
            .unwrap();
        db.save().unwrap();

        let loaded = UserDb::load(&path).unwrap();
        assert_eq!(
            loaded.names().collect::<Vec<_>>(),
            ["alice", "bob@example.com"]
        );
        let bob = loaded.get("bob@example.com").unwrap();
        assert_eq!(bob.root, Path::new("bob"));
        assert_eq!(bob.access, Access::ReadOnly);
        assert_eq!(bob.data_session_reuse, None);
        let hash = bob.password.as_deref().unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_hash("pw2", hash));
    }

    #[test]
    fn full_format_parses_with_defaults() {
        let dir = TempDir::new().unwrap();
        let path = users_path(&dir);
        let hash = hash_password("pw").unwrap();
        let text = format!(
            "[users.alice]\npassword = \"{hash}\"\nroot = \"/srv/a\"\n\
             data_session_reuse = \"optional\"\n\n\
             [users.carol]\nroot = \"c\"\naccess = \"read-only\"\n"
        );
        fs::write(&path, text).unwrap();
        let db = UserDb::load(&path).unwrap();
        let alice = db.get("alice").unwrap();
        assert_eq!(alice.access, Access::ReadWrite);
        assert_eq!(alice.data_session_reuse, Some(SessionReuse::Optional));
        assert!(db.get("carol").unwrap().password.is_none());
    }

    #[test]
    fn duplicate_add_is_refused() {
        let dir = TempDir::new().unwrap();
        let mut db = db_with_alice(&dir);
        let err = db
            .add("alice", "/x".into(), Access::ReadOnly, "other")
            .unwrap_err();
        assert!(
            matches!(err, UsersError::Exists(ref n) if n == "alice"),
            "{err}"
        );
    }

    #[test]
    fn remove_and_set_password() {
        let dir = TempDir::new().unwrap();
        let mut db = db_with_alice(&dir);
        let old = db.get("alice").unwrap().password.clone().unwrap();
        db.set_password("alice", "new").unwrap();
        let new = db.get("alice").unwrap().password.clone().unwrap();
        assert_ne!(old, new);
        assert!(verify_hash("new", &new));

        assert!(matches!(
            db.set_password("nobody", "x"),
            Err(UsersError::NotFound(_))
        ));
        db.remove("alice").unwrap();
        assert!(db.get("alice").is_none());
        assert!(matches!(db.remove("alice"), Err(UsersError::NotFound(_))));
    }

    #[test]
    fn name_rules() {
        for good in ["a", "alice", "Bob_2", "x.y", "me@example.com", "a-b", "_x"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        let too_long = "a".repeat(65);
        for bad in ["", "-a", ".a", "a b", "a/b", "é", "a:b", too_long.as_str()] {
            assert!(
                matches!(validate_name(bad), Err(UsersError::InvalidName(_))),
                "{bad:?}"
            );
        }
        assert!(validate_name(&"a".repeat(64)).is_ok());

        let dir = TempDir::new().unwrap();
        let mut db = UserDb::load_or_empty(&users_path(&dir)).unwrap();
        assert!(matches!(
            db.add("../x", "/x".into(), Access::ReadOnly, "pw"),
            Err(UsersError::InvalidName(_))
        ));
    }

    #[test]
    fn invalid_name_in_file_is_a_parse_error() {
        let dir = TempDir::new().unwrap();
        let path = users_path(&dir);
        fs::write(&path, "[users.\"-bad\"]\nroot = \"/x\"\n").unwrap();
        let err = UserDb::load(&path).unwrap_err();
        assert!(matches!(err, UsersError::Parse { .. }), "{err}");
        assert!(err.to_string().contains("-bad"), "{err}");
    }

    #[test]
    fn empty_password_is_refused() {
        let dir = TempDir::new().unwrap();
        let mut db = db_with_alice(&dir);
        assert!(matches!(
            db.add("bob", "/b".into(), Access::ReadWrite, ""),
            Err(UsersError::EmptyPassword)
        ));
        assert!(matches!(
            db.set_password("alice", ""),
            Err(UsersError::EmptyPassword)
        ));
        assert!(matches!(hash_password(""), Err(UsersError::EmptyPassword)));
    }

    #[test]
    fn unknown_key_is_a_parse_error_naming_the_file() {
        let dir = TempDir::new().unwrap();
        let path = users_path(&dir);
        fs::write(
            &path,
            "[users.alice]\nroot = \"/x\"\nacess = \"read-only\"\n",
        )
        .unwrap();
        let err = UserDb::load(&path).unwrap_err();
        assert!(matches!(err, UsersError::Parse { .. }), "{err}");
        let shown = err.to_string();
        assert!(shown.contains(&path.display().to_string()), "{shown}");
        assert!(shown.contains("acess"), "{shown}");
        assert!(!shown.contains('\n'), "{shown}");

        fs::write(&path, "[server]\nport = 21\n").unwrap();
        assert!(matches!(UserDb::load(&path), Err(UsersError::Parse { .. })));
    }

    #[test]
    fn non_argon2id_hashes_are_rejected() {
        let dir = TempDir::new().unwrap();
        let path = users_path(&dir);
        let argon2i = "$argon2i$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        for bad in [
            "hunter2",
            "$2b$12$abcdefghijklmnopqrstuu1234567890123456789012345678901",
            argon2i,
            "$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA",
        ] {
            fs::write(
                &path,
                format!("[users.alice]\npassword = '{bad}'\nroot = \"/x\"\n"),
            )
            .unwrap();
            let err = UserDb::load(&path).unwrap_err();
            assert!(
                matches!(err, UsersError::BadHash { ref user, .. } if user == "alice"),
                "{bad}: {err}"
            );
            assert!(!err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn dummy_hash_matches_real_parameters() {
        assert!(is_argon2id_hash(DUMMY_HASH));
        let real = hash_password("pw").unwrap();
        let params = |h: &str| {
            let parsed = PasswordHash::new(h).unwrap();
            (parsed.version, parsed.params.to_string())
        };
        assert_eq!(params(DUMMY_HASH), params(&real));
    }

    #[test]
    fn generated_passwords() {
        let a = generate_password();
        let b = generate_password();
        assert_eq!(a.len(), GENERATED_LEN);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| GENERATED_ALPHABET.contains(&c)));
    }

    #[test]
    fn missing_file() {
        let dir = TempDir::new().unwrap();
        let path = users_path(&dir);
        assert!(matches!(UserDb::load(&path), Err(UsersError::Io { .. })));
        assert!(UserDb::load_or_empty(&path).is_ok());
        assert!(UserStore::open(&path).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn saved_file_has_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new().unwrap();
        let path = users_path(&dir);
        // An existing, more open file is replaced, not reused.
        fs::write(&path, "").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        db_with_alice(&dir);
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // No temporary files are left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn relative_roots_resolve_against_the_file_directory() {
        let dir = TempDir::new().unwrap();
        let mut db = db_with_alice(&dir);
        db.add("bob", "ftp/bob".into(), Access::ReadOnly, "pw")
            .unwrap();
        let bob = db.get("bob").unwrap();
        assert_eq!(db.resolve_root(bob), dir.path().join("ftp/bob"));
        let alice = db.get("alice").unwrap();
        assert_eq!(db.resolve_root(alice), Path::new("/srv/alice"));
    }

    #[tokio::test]
    async fn authenticate_outcomes() {
        let dir = TempDir::new().unwrap();
        let mut db = db_with_alice(&dir);
        db.add("bob", "bob".into(), Access::ReadOnly, "pw").unwrap();
        db.save().unwrap();
        fs::write(
            users_path(&dir),
            fs::read_to_string(users_path(&dir)).unwrap() + "\n[users.nopass]\nroot = \"/n\"\n",
        )
        .unwrap();
        let store = UserStore::open(&users_path(&dir)).unwrap();

        let alice = store.authenticate_pw("alice", "secret").await.unwrap();
        assert_eq!(alice.name, "alice");
        assert_eq!(alice.root, Path::new("/srv/alice"));
        assert_eq!(alice.access, Access::ReadWrite);
        let bob = store.authenticate_pw("bob", "pw").await.unwrap();
        assert_eq!(bob.root, dir.path().join("bob"));
        assert_eq!(bob.access, Access::ReadOnly);

        assert_eq!(
            store.authenticate_pw("alice", "wrong").await.unwrap_err(),
            LoginFailed
        );
        assert!(store.authenticate_pw("alice", "").await.is_err());
        assert!(store.authenticate_pw("mallory", "secret").await.is_err());
        assert!(store.authenticate_pw("nopass", "").await.is_err());
        assert!(store.authenticate_pw("nopass", "x").await.is_err());
        assert!(store.authenticate_pw("", "").await.is_err());
    }

    #[tokio::test]
    async fn returning_users_skip_argon2_until_the_password_changes() {
        let dir = TempDir::new().unwrap();
        let path = users_path(&dir);
        db_with_alice(&dir);
        let store = UserStore::open(&path).unwrap();
        assert!(store.recently_verified("alice", "secret", None).is_none());
        store.authenticate_pw("alice", "secret").await.unwrap();
        assert!(store.recently_verified("alice", "secret", None).is_some());
        assert!(store.recently_verified("alice", "wrong", None).is_none());
        // A failed login is never cached.
        assert!(store.authenticate_pw("alice", "wrong").await.is_err());
        assert!(store.recently_verified("alice", "wrong", None).is_none());
        // A new password (a new stored hash) retires the old entry at once.
        let mut db = UserDb::load(&path).unwrap();
        db.set_password("alice", "changed").unwrap();
        db.save().unwrap();
        assert!(store.authenticate_pw("alice", "secret").await.is_err());
        assert!(store.authenticate_pw("alice", "changed").await.is_ok());
        // Disabled cache: never a fast path.
        let uncached = UserStore::open_with_cache(&path, Duration::ZERO).unwrap();
        uncached.authenticate_pw("alice", "changed").await.unwrap();
        assert!(uncached
            .recently_verified("alice", "changed", None)
            .is_none());
    }

    #[tokio::test]
    async fn reloads_when_the_file_changes() {
        let dir = TempDir::new().unwrap();
        let path = users_path(&dir);
        db_with_alice(&dir);
        let store = UserStore::open(&path).unwrap();
        assert!(store.authenticate_pw("bob", "pw").await.is_err());

        // What `ftpsd user add` does while the server runs.
        let mut db = UserDb::load(&path).unwrap();
        db.add("bob", "/b".into(), Access::ReadOnly, "pw").unwrap();
        db.set_password("alice", "changed").unwrap();
        db.save().unwrap();
        assert!(store.authenticate_pw("bob", "pw").await.is_ok());
        assert!(store.authenticate_pw("alice", "changed").await.is_ok());
        assert!(store.authenticate_pw("alice", "secret").await.is_err());

        // A broken file keeps the previous users.
        fs::write(&path, "this is not toml [").unwrap();
        assert!(store.authenticate_pw("bob", "pw").await.is_ok());
        assert!(matches!(store.reload(), Err(UsersError::Parse { .. })));
        assert!(store.authenticate_pw("bob", "pw").await.is_ok());

        // A fixed file is picked up again.
        db.remove("bob").unwrap();
        db.save().unwrap();
        assert!(store.authenticate_pw("bob", "pw").await.is_err());
        assert!(store.authenticate_pw("alice", "changed").await.is_ok());
    }
}
