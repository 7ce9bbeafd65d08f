//! The users file on disk: parsing and validating it, editing it, and writing it back
//! atomically.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rand::rngs::OsRng;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::password::{hash_password, is_argon2id_hash};
use super::{LoginMethod, UserEntry, UsersError};
use crate::policy::{Access, SessionReuse};

/// Longest accepted user name, in characters.
const MAX_NAME_LEN: usize = 64;

/// Comment written at the top of a saved users file.
const FILE_HEADER: &str = "# ftpsd users file. Passwords are argon2id hashes; \
manage entries with `ftpsd user`.\n\n";

/// The on-disk layout: everything sits under `[users.NAME]`.
#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    #[serde(default)]
    users: BTreeMap<String, UserEntry>,
}

/// The users, as read from the users file or from the database (see
/// [`super::UserSource`]), to look at or edit and save back.
#[derive(Clone, Debug)]
pub struct UserDb {
    /// The users file; for a database, a name in the directory relative paths are
    /// resolved against.
    path: PathBuf,
    users: BTreeMap<String, UserEntry>,
    origin: Origin,
}

/// Where a [`UserDb`] was read from, and so where [`UserDb::save`] writes.
#[derive(Clone, Debug)]
enum Origin {
    File,
    /// The users as they were when loaded: saving writes only what changed since.
    /// `None` for the server's read-only view, which keeps no second copy.
    Database {
        config: crate::database::DatabaseConfig,
        loaded: Option<BTreeMap<String, UserEntry>>,
    },
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
                origin: Origin::File,
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
            origin: Origin::File,
        })
    }

    /// Users read from the database configured by `config`; `base` is the directory
    /// relative roots are resolved against.
    pub(super) fn from_database(
        config: &crate::database::DatabaseConfig,
        base: &Path,
        users: BTreeMap<String, UserEntry>,
    ) -> UserDb {
        UserDb {
            path: base.join("users-database"),
            origin: Origin::Database {
                config: config.clone(),
                loaded: Some(users.clone()),
            },
            users,
        }
    }

    /// The same users without the copy saving needs: the server's view of a database,
    /// which it never saves.
    pub(super) fn read_only(mut self) -> UserDb {
        if let Origin::Database { loaded, .. } = &mut self.origin {
            *loaded = None;
        }
        self
    }

    /// The users by name.
    pub(super) fn entries(&self) -> &BTreeMap<String, UserEntry> {
        &self.users
    }

    /// Adds or replaces a user's whole entry, after checking it as loading would.
    pub fn put(&mut self, name: &str, entry: UserEntry) -> Result<(), UsersError> {
        validate_name(name)?;
        validate_entry(&self.path, name, &entry)?;
        self.users.insert(name.to_owned(), entry);
        Ok(())
    }

    /// The file this database was loaded from and saves to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the users are kept, for messages: the users file, or the database's URL
    /// without its password.
    pub fn location(&self) -> String {
        match &self.origin {
            Origin::File => self.path.display().to_string(),
            Origin::Database { config, .. } => crate::database::shown_url(&config.url),
        }
    }

    /// Writes the users back where they came from.
    ///
    /// A users file is replaced atomically: a temporary file in the same directory is
    /// written, synced and renamed over the old one, so readers never see half a file.
    /// The file gets mode 0600 because it holds password hashes.
    ///
    /// In a database, only the users changed since the load are written, in one
    /// transaction; adding a user that another writer has added meanwhile fails with
    /// [`UsersError::Exists`]. After a successful save, further edits are saved relative
    /// to what was just written.
    pub fn save(&mut self) -> Result<(), UsersError> {
        if let Origin::Database { config, loaded } = &mut self.origin {
            let Some(loaded) = loaded else {
                return Err(UsersError::Serialize {
                    path: self.path.clone(),
                    message: "the server's view of the users is read-only; load them to edit"
                        .into(),
                });
            };
            let base = self.path.parent().unwrap_or(Path::new("."));
            let users = &self.users;
            let before = &*loaded;
            crate::database::with_database(config, base, |db| async move {
                super::database::save_changes(&db, before, users).await
            })?;
            *loaded = self.users.clone();
            return Ok(());
        }
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
            storage: None,
            limits: Default::default(),
            bandwidth: Default::default(),
            addresses: Default::default(),
            permissions: Default::default(),
            quota: Default::default(),
            folders: Default::default(),
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
        let entry = self.entry_mut(name)?;
        entry.password = Some(hash_password(password)?);
        Ok(())
    }

    /// Sets or clears a user's override of the server's data-session-reuse policy.
    pub fn set_session_reuse(
        &mut self,
        name: &str,
        reuse: Option<SessionReuse>,
    ) -> Result<(), UsersError> {
        self.entry_mut(name)?.data_session_reuse = reuse;
        Ok(())
    }

    /// Sets or clears the S3 store of a user's files (`None`: the server's default).
    pub fn set_storage(&mut self, name: &str, storage: Option<String>) -> Result<(), UsersError> {
        self.entry_mut(name)?.storage = storage;
        Ok(())
    }

    /// Changes the entry of `name` with `change` (the `ftpsd user set` settings).
    pub fn update(
        &mut self,
        name: &str,
        change: impl FnOnce(&mut UserEntry),
    ) -> Result<(), UsersError> {
        change(self.entry_mut(name)?);
        Ok(())
    }

    fn entry_mut(&mut self, name: &str) -> Result<&mut UserEntry, UsersError> {
        self.users
            .get_mut(name)
            .ok_or_else(|| UsersError::NotFound(name.to_owned()))
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
        self.resolve_path(&entry.root)
    }

    /// `path` from the users file (a root, a folder) as a path usable from the current
    /// directory: relative paths are taken relative to the users file's directory.
    pub fn resolve_path(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            return path.to_path_buf();
        }
        let base = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let joined = base.join(path);
        // Absolute so it stays right even if the process later changes directory.
        std::path::absolute(&joined).unwrap_or(joined)
    }
}

/// Borrowing twin of [`UsersFile`] so saving does not clone the map.
#[derive(Serialize)]
struct UsersFileRef<'a> {
    users: &'a BTreeMap<String, UserEntry>,
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
pub(super) fn validate_entry(path: &Path, name: &str, entry: &UserEntry) -> Result<(), UsersError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::fixtures::{db_with_alice, users_path};
    use crate::users::password::verify_hash;
    use tempfile::TempDir;

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
}
