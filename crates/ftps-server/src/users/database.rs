//! Users in an SQL database (`[database]`, see [`crate::database`]): loading them all,
//! following other writers' changes by revision, saving a [`UserDb`]'s changes, and
//! importing a users file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sqlx::any::AnyRow;
use sqlx::Row;

use super::file::validate_entry;
use super::{UserDb, UserEntry, UsersError};
use crate::config::Config;
use crate::database::{with_database, Database, DatabaseConfig, DatabaseError};

/// Where a server's users are: the users file (the default) or the database.
#[derive(Clone, Debug)]
pub enum UserSource {
    /// A TOML users file.
    File(PathBuf),
    /// An SQL database; `base` resolves relative paths (the state directory).
    Database {
        /// `[database]`.
        config: DatabaseConfig,
        /// The state directory.
        base: PathBuf,
    },
}

impl UserSource {
    /// The source `config` names: its `[database]` if set, else its users file.
    pub fn of(config: &Config) -> Result<UserSource, UsersError> {
        match &config.database {
            Some(_) if config.users_file.is_some() => Err(UsersError::TwoSources),
            Some(database) => Ok(UserSource::Database {
                config: database.clone(),
                base: config.state_dir.clone(),
            }),
            None => Ok(UserSource::File(config.users_path())),
        }
    }

    /// Reads every user.
    pub fn load(&self) -> Result<UserDb, UsersError> {
        match self {
            UserSource::File(path) => UserDb::load(path),
            UserSource::Database { config, base } => {
                let (users, _) =
                    with_database(config, base, |db| async move { load_all(&db, base).await })?;
                Ok(UserDb::from_database(config, base, users))
            }
        }
    }

    /// Like [`UserSource::load`], but a missing users file is an empty one (which saving
    /// creates). A database is created if missing anyway.
    pub fn load_or_empty(&self) -> Result<UserDb, UsersError> {
        match self {
            UserSource::File(path) => UserDb::load_or_empty(path),
            UserSource::Database { .. } => self.load(),
        }
    }

    /// The users file or the database's URL (without password), for messages.
    pub fn location(&self) -> String {
        match self {
            UserSource::File(path) => path.display().to_string(),
            UserSource::Database { config, .. } => crate::database::shown_url(&config.url),
        }
    }
}

/// One stored row as a user, checked as the users file's entries are.
fn entry_of(
    db: &Database,
    base: &Path,
    name: &str,
    json: &str,
) -> Result<UserEntry, DatabaseError> {
    let invalid = |message: String| DatabaseError::Entry {
        url: db.shown().to_string(),
        name: name.to_string(),
        message,
    };
    let entry: UserEntry = serde_json::from_str(json).map_err(|e| invalid(e.to_string()))?;
    validate_entry(&base.join("users-database"), name, &entry)
        .map_err(|e| invalid(e.to_string()))?;
    Ok(entry)
}

/// Every user, and the revision they are current to.
pub(super) async fn load_all(
    db: &Database,
    base: &Path,
) -> Result<(BTreeMap<String, UserEntry>, i64), DatabaseError> {
    // The revision first: a change committed between the two reads is then applied again
    // by the next poll, which is harmless; the other order could miss one.
    let revision = current_revision(db).await?;
    let rows: Vec<AnyRow> =
        sqlx::query("SELECT name, entry FROM ftpsd_users WHERE entry IS NOT NULL")
            .fetch_all(db.pool())
            .await
            .map_err(|e| db.error(e))?;
    let mut users = BTreeMap::new();
    for row in rows {
        let name: String = row.try_get("name").map_err(|e| db.error(e))?;
        let json: String = row.try_get("entry").map_err(|e| db.error(e))?;
        match entry_of(db, base, &name, &json) {
            Ok(entry) => {
                users.insert(name, entry);
            }
            // One broken row must not lock every other user out.
            Err(e) => tracing::warn!(error = %e, "user skipped"),
        }
    }
    Ok((users, revision))
}

async fn current_revision(db: &Database) -> Result<i64, DatabaseError> {
    let row: AnyRow = sqlx::query("SELECT value FROM ftpsd_meta WHERE name = 'users_revision'")
        .fetch_one(db.pool())
        .await
        .map_err(|e| db.error(e))?;
    row.try_get::<i64, _>("value").map_err(|e| db.error(e))
}

/// A change another writer made: the user's new entry, or `None` if removed (or if its
/// row is broken, which is logged).
pub(super) struct Change {
    pub name: String,
    pub entry: Option<UserEntry>,
}

/// The changes committed after `revision`, and the revision they bring the caller to.
pub(super) async fn changes_since(
    db: &Database,
    base: &Path,
    revision: i64,
) -> Result<(Vec<Change>, i64), DatabaseError> {
    let rows: Vec<AnyRow> = sqlx::query(
        "SELECT name, entry, revision FROM ftpsd_users WHERE revision > $1 ORDER BY revision",
    )
    .bind(revision)
    .fetch_all(db.pool())
    .await
    .map_err(|e| db.error(e))?;
    let mut latest = revision;
    let mut changes = Vec::with_capacity(rows.len());
    for row in rows {
        let name: String = row.try_get("name").map_err(|e| db.error(e))?;
        let json: Option<String> = row.try_get("entry").map_err(|e| db.error(e))?;
        latest = latest.max(row.try_get::<i64, _>("revision").map_err(|e| db.error(e))?);
        let entry = match json {
            Some(json) => match entry_of(db, base, &name, &json) {
                Ok(entry) => Some(entry),
                Err(e) => {
                    tracing::warn!(error = %e, "user skipped");
                    None
                }
            },
            None => None,
        };
        changes.push(Change { name, entry });
    }
    Ok((changes, latest))
}

/// Writes the difference between `before` (as loaded) and `after` in one transaction
/// under a new revision.
pub(super) async fn save_changes(
    db: &Database,
    before: &BTreeMap<String, UserEntry>,
    after: &BTreeMap<String, UserEntry>,
) -> Result<(), UsersError> {
    let mut changed: Vec<(&str, Option<&UserEntry>, bool)> = Vec::new();
    for (name, entry) in after {
        match before.get(name) {
            None => changed.push((name, Some(entry), true)),
            Some(old) if !same(old, entry) => changed.push((name, Some(entry), false)),
            Some(_) => {}
        }
    }
    for name in before.keys().filter(|n| !after.contains_key(*n)) {
        changed.push((name, None, false));
    }
    if changed.is_empty() {
        return Ok(());
    }
    let sql = |e| UsersError::Database(db.error(e));
    let mut tx = db.pool().begin().await.map_err(sql)?;
    // The counter's row lock is held to the commit: writers commit in revision order.
    let row: AnyRow = sqlx::query(
        "UPDATE ftpsd_meta SET value = value + 1 WHERE name = 'users_revision' RETURNING value",
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(sql)?;
    let revision: i64 = row.try_get("value").map_err(sql)?;
    for (name, entry, new) in changed {
        let done = match entry {
            Some(entry) => {
                let json = serde_json::to_string(entry).map_err(|e| UsersError::Serialize {
                    path: PathBuf::from(db.shown()),
                    message: e.to_string(),
                })?;
                // A new user may take the name of a removed one, not of a live one.
                let guard = if new {
                    " WHERE ftpsd_users.entry IS NULL"
                } else {
                    ""
                };
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO ftpsd_users (name, entry, revision) VALUES ($1, $2, $3)
                     ON CONFLICT (name) DO UPDATE
                     SET entry = excluded.entry, revision = excluded.revision{guard}"
                )))
                .bind(name)
                .bind(json)
                .bind(revision)
                .execute(&mut *tx)
                .await
                .map_err(sql)?
                .rows_affected()
            }
            None => sqlx::query(
                "UPDATE ftpsd_users SET entry = NULL, revision = $2
                 WHERE name = $1 AND entry IS NOT NULL",
            )
            .bind(name)
            .bind(revision)
            .execute(&mut *tx)
            .await
            .map_err(sql)?
            .rows_affected(),
        };
        if done == 0 {
            // Dropping the transaction rolls it back.
            return Err(match entry {
                Some(_) => UsersError::Exists(name.to_owned()),
                None => UsersError::NotFound(name.to_owned()),
            });
        }
    }
    tx.commit().await.map_err(sql)?;
    Ok(())
}

/// Whether two entries store the same settings.
fn same(a: &UserEntry, b: &UserEntry) -> bool {
    match (serde_json::to_value(a), serde_json::to_value(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// What [`import`] did.
#[derive(Debug, Default)]
pub struct Imported {
    /// Users added.
    pub added: usize,
    /// Users that were in the database and were replaced.
    pub replaced: usize,
}

/// Copies every user of the users file `file` into `target` (a database). Relative local
/// roots and folders become absolute (they were relative to the file's directory);
/// `local` tells whether files in the named store (`None`: the default) are local (else the
/// root is a key prefix, kept).
/// Users already in the database are an error naming them, unless `replace`.
pub fn import(
    file: &Path,
    target: &UserSource,
    replace: bool,
    local: impl Fn(Option<&str>) -> bool,
) -> Result<Imported, UsersError> {
    let from = UserDb::load(file)?;
    let mut into = target.load()?;
    if matches!(target, UserSource::File(_)) {
        return Err(UsersError::Parse {
            path: file.to_path_buf(),
            message: "import needs a [database] in the configuration to import into".into(),
        });
    }
    let existing: Vec<&str> = from
        .names()
        .filter(|name| into.get(name).is_some())
        .collect();
    if !existing.is_empty() && !replace {
        return Err(UsersError::Exists(existing.join(", ")));
    }
    let mut imported = Imported::default();
    for (name, entry) in from.entries() {
        let mut entry = entry.clone();
        if local(entry.storage.as_deref()) {
            entry.root = from.resolve_root(&entry);
        }
        let mut folders = crate::folders::Folders::default();
        for (at, folder) in entry.folders.iter() {
            let mut folder = folder.clone();
            if local(folder.storage.as_deref()) {
                folder.path = from.resolve_path(&folder.path);
            }
            folders
                .set(at, folder)
                .map_err(|message| UsersError::Parse {
                    path: file.to_path_buf(),
                    message,
                })?;
        }
        entry.folders = folders;
        if into.get(name).is_some() {
            imported.replaced += 1;
        } else {
            imported.added += 1;
        }
        into.put(name, entry)?;
    }
    into.save()?;
    Ok(imported)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::policy::Access;
    use crate::users::UserStore;

    fn source(dir: &tempfile::TempDir) -> (UserSource, DatabaseConfig) {
        let config = DatabaseConfig {
            url: "sqlite://users.db".into(),
            password_file: None,
            poll_seconds: 1,
            shared_login_failures: true,
        };
        let source = UserSource::Database {
            config: config.clone(),
            base: dir.path().to_path_buf(),
        };
        (source, config)
    }

    /// What `ftpsd user` does, on a blocking thread as the admin API does it.
    async fn edit(source: &UserSource, change: impl FnOnce(&mut UserDb) + Send + 'static) {
        let source = source.clone();
        tokio::task::spawn_blocking(move || {
            let mut db = source.load().unwrap();
            change(&mut db);
            db.save()
        })
        .await
        .unwrap()
        .unwrap();
    }

    async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
        for _ in 0..100 {
            if check().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("never happened: {what}");
    }

    /// A store (a node) sees users added, changed and removed by another writer (another
    /// node's `ftpsd user`) without being told.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_store_follows_changes_made_elsewhere() {
        let dir = tempfile::TempDir::new().unwrap();
        let (source, config) = source(&dir);
        edit(&source, |db| {
            db.add("alice", "/srv/alice".into(), Access::ReadWrite, "one")
                .unwrap()
        })
        .await;
        let store = UserStore::open_database(&config, dir.path(), Duration::ZERO)
            .await
            .unwrap();
        assert!(store.authenticate("alice", "one", None).await.is_ok());

        edit(&source, |db| {
            db.add("bob", "/srv/bob".into(), Access::ReadOnly, "two")
                .unwrap();
            db.set_password("alice", "changed").unwrap();
        })
        .await;
        eventually("bob can log in", async || {
            store.authenticate("bob", "two", None).await.is_ok()
        })
        .await;
        assert!(store.authenticate("alice", "one", None).await.is_err());
        assert!(store.authenticate("alice", "changed", None).await.is_ok());

        edit(&source, |db| db.remove("alice").unwrap()).await;
        eventually("alice is gone", async || {
            store.snapshot().get("alice").is_none()
        })
        .await;
        assert!(store.authenticate("alice", "changed", None).await.is_err());
        // A removed name may be taken again.
        edit(&source, |db| {
            db.add("alice", "/srv/alice2".into(), Access::ReadWrite, "three")
                .unwrap()
        })
        .await;
        eventually("the new alice can log in", async || {
            store.authenticate("alice", "three", None).await.is_ok()
        })
        .await;
    }

    /// Two writers adding the same name: the second is told it exists, and nothing of its
    /// transaction is kept.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_conflicting_add_fails_whole() {
        let dir = tempfile::TempDir::new().unwrap();
        let (source, _) = source(&dir);
        let loaded = {
            let source = source.clone();
            tokio::task::spawn_blocking(move || source.load().unwrap())
                .await
                .unwrap()
        };
        edit(&source, |db| {
            db.add("carol", "/c".into(), Access::ReadWrite, "x")
                .unwrap()
        })
        .await;
        let result = tokio::task::spawn_blocking(move || {
            let mut db = loaded;
            db.add("dave", "/d".into(), Access::ReadWrite, "y").unwrap();
            db.add("carol", "/c2".into(), Access::ReadWrite, "z")
                .unwrap();
            db.save()
        })
        .await
        .unwrap();
        assert!(matches!(result, Err(UsersError::Exists(name)) if name == "carol"));
        let now = tokio::task::spawn_blocking(move || source.load().unwrap())
            .await
            .unwrap();
        assert!(now.get("dave").is_none());
        assert_eq!(now.get("carol").unwrap().root, Path::new("/c"));
    }
}
