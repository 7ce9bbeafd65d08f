//! The server's live view of a users file: reloaded when the file changes on disk, and
//! the logins checked against it.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use tokio::sync::Semaphore;

use super::password::{verify_hash, DUMMY_HASH};
use super::{LoginMethod, UserDb, UserEntry, UsersError};
use crate::certid::{CertIdentity, CertificateMatch};
use crate::credcache::CredentialCache;
use crate::database::{Database, DatabaseConfig};
use crate::policy::{Access, SessionReuse};

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
    /// The S3 store of the user's files, as the users file names it (unset: the server's
    /// default storage).
    pub storage: Option<String>,
    /// The `root` as the users file writes it: the key prefix in an S3 store.
    pub key_prefix: String,
    /// What the user may do where, as the users file said at login.
    pub permissions: std::sync::Arc<crate::permissions::PathPermissions>,
    /// The user's own quota setting (unset values: the server's).
    pub quota: crate::quota::Quota,
    /// The virtual folders mounted into the user's tree.
    pub folders: Vec<MountedFolder>,
    /// Whether this is an anonymous login (not a user of the users file).
    pub anonymous: bool,
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
        storage: entry.storage.clone(),
        key_prefix: entry.root.to_string_lossy().into_owned(),
        permissions: std::sync::Arc::new(entry.permissions.clone()),
        quota: entry.quota,
        folders: entry
            .folders
            .iter()
            .map(|(at, folder)| MountedFolder {
                at: crate::storage::VirtualPath::root().join(at),
                root: db.resolve_path(&folder.path),
                key_prefix: folder.path.to_string_lossy().into_owned(),
                storage: folder.storage.clone(),
                access: folder.access.unwrap_or(entry.access),
            })
            .collect(),
        anonymous: false,
        credentials: Credentials::of(entry),
    }
}

impl AuthenticatedUser {
    /// An anonymous login: read-only in `root` (a directory, or the key prefix in
    /// `storage`), with the rules `permissions`.
    pub fn anonymous(
        root: PathBuf,
        storage: Option<String>,
        permissions: crate::permissions::PathPermissions,
        quota: crate::quota::Quota,
    ) -> AuthenticatedUser {
        AuthenticatedUser {
            name: "anonymous".to_owned(),
            key_prefix: root.to_string_lossy().into_owned(),
            root,
            access: Access::ReadOnly,
            data_session_reuse: None,
            allow_fxp: false,
            storage,
            permissions: std::sync::Arc::new(permissions),
            quota,
            folders: Vec::new(),
            anonymous: true,
            credentials: Credentials {
                password: None,
                login: LoginMethod::Password,
                certificate: None,
            },
        }
    }
}

/// A virtual folder of a logged-in user (see [`crate::folders`]).
#[derive(Clone, Debug)]
pub struct MountedFolder {
    /// The mount point.
    pub at: crate::storage::VirtualPath,
    /// The resolved directory, for a folder on this machine.
    pub root: PathBuf,
    /// The `path` as the users file writes it: the key prefix in an S3 store.
    pub key_prefix: String,
    /// The store named by the folder, if any.
    pub storage: Option<String>,
    /// What the user may do in it.
    pub access: Access,
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
    /// Set when the users are in a database rather than in the file `path`.
    database: Option<DatabaseBacking>,
    state: Mutex<StoreState>,
    /// Bounds concurrent argon2 runs: each needs ~19 MiB, and a login flood should
    /// queue rather than exhaust memory.
    hashing: Semaphore,
    /// Recently verified logins (see `crate::credcache`).
    verified: CredentialCache,
    /// Counts the loads of the file, so that sessions notice a reload.
    generation: tokio::sync::watch::Sender<u64>,
}

/// The database a store follows.
struct DatabaseBacking {
    database: Database,
    config: DatabaseConfig,
    /// What relative paths are resolved against.
    base: PathBuf,
    /// The revision the store's users are current to; held while applying changes.
    revision: tokio::sync::Mutex<i64>,
    /// Wakes the poller early (a reload was asked for).
    wake: Arc<tokio::sync::Notify>,
}

/// Shared, reloadable view of the users (file or database) used by the server.
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
        Ok(UserStore::with(path, None, db, stamp, cache_ttl))
    }

    fn with(
        path: &Path,
        database: Option<DatabaseBacking>,
        db: UserDb,
        stamp: Option<FileStamp>,
        cache_ttl: Duration,
    ) -> UserStore {
        let permits = std::thread::available_parallelism().map_or(1, |n| n.get());
        UserStore {
            inner: Arc::new(StoreInner {
                path: path.to_path_buf(),
                database,
                state: Mutex::new(StoreState {
                    db: Arc::new(db),
                    stamp,
                }),
                hashing: Semaphore::new(permits),
                verified: CredentialCache::new(cache_ttl),
                generation: tokio::sync::watch::Sender::new(0),
            }),
        }
    }

    /// The users of the database `config` (tables created if missing), followed from then
    /// on: every `poll_seconds` the users changed since are applied, so that every node of
    /// a fleet sees an added, changed or removed user within seconds. Must be called
    /// within a tokio runtime, which runs the poller as long as the store exists.
    pub async fn open_database(
        config: &DatabaseConfig,
        base: &Path,
        cache_ttl: Duration,
    ) -> Result<UserStore, UsersError> {
        let database = Database::open(config, base).await?;
        let (users, revision) = super::database::load_all(&database, base).await?;
        let db = UserDb::from_database(config, base, users).read_only();
        let store = UserStore::with(
            &base.join("users-database"),
            Some(DatabaseBacking {
                database,
                config: config.clone(),
                base: base.to_path_buf(),
                revision: tokio::sync::Mutex::new(revision),
                wake: Arc::new(tokio::sync::Notify::new()),
            }),
            db,
            None,
            cache_ttl,
        );
        let weak = Arc::downgrade(&store.inner);
        let every = Duration::from_secs(config.poll_seconds.max(1));
        tokio::spawn(async move {
            let mut failing = false;
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let store = UserStore { inner };
                match store.apply_database_changes().await {
                    Ok(()) if failing => {
                        tracing::info!("user database reachable again");
                        failing = false;
                    }
                    Ok(()) => {}
                    Err(e) if !failing => {
                        tracing::warn!(error = %e, "cannot read the user database; keeping the users as they were");
                        failing = true;
                    }
                    Err(_) => {}
                }
                let Some(wake) = store.inner.database.as_ref().map(|b| b.wake.clone()) else {
                    return;
                };
                drop(store);
                // Woken early by a reload, or at the next poll.
                let _ = tokio::time::timeout(every, wake.notified()).await;
            }
        });
        Ok(store)
    }

    /// The database the users are in, if they are in one.
    pub fn database(&self) -> Option<&Database> {
        self.inner.database.as_ref().map(|b| &b.database)
    }

    /// Applies the changes other writers made to the database since the last look.
    async fn apply_database_changes(&self) -> Result<(), UsersError> {
        let Some(backing) = &self.inner.database else {
            return Ok(());
        };
        let mut revision = backing.revision.lock().await;
        let (changes, latest) =
            super::database::changes_since(&backing.database, &backing.base, *revision).await?;
        if changes.is_empty() {
            *revision = latest;
            return Ok(());
        }
        let mut users = self.snapshot().entries().clone();
        for change in &changes {
            match &change.entry {
                Some(entry) => users.insert(change.name.clone(), entry.clone()),
                None => users.remove(&change.name),
            };
        }
        let db = UserDb::from_database(&backing.config, &backing.base, users).read_only();
        self.lock().db = Arc::new(db);
        *revision = latest;
        drop(revision);
        tracing::info!(changed = changes.len(), "users changed in the database");
        self.loaded();
        Ok(())
    }

    /// Brings the users up to date now: re-reads a changed users file, or applies the
    /// database's changes. What the admin API calls after a change, so that it is in
    /// effect when the answer goes out.
    pub async fn refresh(&self) -> Result<(), UsersError> {
        if self.inner.database.is_some() {
            return self.apply_database_changes().await;
        }
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.reload())
            .await
            .map_err(|e| UsersError::Hash(format!("reload task failed: {e}")))?
    }

    /// Changes whenever the users file has been loaded again.
    pub fn reloads(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.generation.subscribe()
    }

    /// Whether a session logged in as `user` may go on under the current file: the user
    /// still exists and its password, login method and certificate are unchanged.
    pub fn still_valid(&self, user: &AuthenticatedUser) -> bool {
        // Anonymous logins come from the configuration, which a reload does not change.
        user.anonymous
            || self
                .snapshot()
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
    /// This does blocking file I/O. For users in a database, wakes the poller, which
    /// applies the changes at once.
    pub fn reload(&self) -> Result<(), UsersError> {
        if let Some(backing) = &self.inner.database {
            backing.wake.notify_one();
            return Ok(());
        }
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
        if self.inner.database.is_some() {
            // The poller keeps the users current.
            return;
        }
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
    use crate::users::fixtures::{db_with_alice, users_path};
    use tempfile::TempDir;

    #[test]
    fn missing_file() {
        let dir = TempDir::new().unwrap();
        let path = users_path(&dir);
        assert!(matches!(UserDb::load(&path), Err(UsersError::Io { .. })));
        assert!(UserDb::load_or_empty(&path).is_ok());
        assert!(UserStore::open(&path).is_err());
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
