//! The SQL database a server may keep its users and login failures in (`[database]`):
//! SQLite for one node that outgrew the users file, PostgreSQL for a fleet.
//!
//! ```toml
//! [database]
//! url = "postgres://ftpsd@db.internal/ftpsd"   # or "sqlite:///var/lib/ftpsd/users.db"
//! password_file = "/etc/ftpsd/db.password"     # optional; else the URL's, or $PGPASSWORD
//! poll_seconds = 2                              # how soon other nodes' changes are seen
//! shared_login_failures = true                  # count failed logins and bans fleet-wide
//! ```
//!
//! The tables (created at start if missing, so an empty database is ready to use):
//!
//! * `ftpsd_users (name, entry, revision)`: one row per user; `entry` is the user's
//!   settings as JSON (the users file's `[users.NAME]` table), `NULL` once removed, so
//!   that other nodes see the removal; `revision` orders the changes.
//! * `ftpsd_meta (name, value)`: the `users_revision` counter every change increments in
//!   its transaction. Its row lock makes writers commit in revision order, so a node that
//!   has seen revision N has seen every change up to N.
//! * `ftpsd_login_failures (key, count, window_start, banned_until)`: failed logins per
//!   address and per user name, and bans, in seconds since the epoch of the database's
//!   clock (see [`crate::limits::shared`]).
//!
//! Each node polls every `poll_seconds` for users changed since the revision it has and
//! for bans; a login never waits for the database except to record a failure.

use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Duration;

use serde::Deserialize;
use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;

/// `[database]` of the configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://USER@HOST[:PORT]/DB[?sslmode=verify-full]` or `sqlite://PATH` (created
    /// if missing; a relative path is relative to the configuration file's directory).
    pub url: String,
    /// A file whose first line is the database password (kept out of the configuration).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Seconds between two looks for other nodes' changes (users and bans).
    #[serde(default = "default_poll_seconds")]
    pub poll_seconds: u64,
    /// Whether failed logins and bans are counted in the database, for every node at once.
    #[serde(default = "default_true")]
    pub shared_login_failures: bool,
}

fn default_poll_seconds() -> u64 {
    2
}

fn default_true() -> bool {
    true
}

/// Errors of the database.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// The URL is not one this server understands.
    #[error("database url: {0}")]
    Url(String),
    /// The password file could not be read.
    #[error("database password file {}: {error}", path.display())]
    PasswordFile {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The database refused or failed a request.
    #[error("database {url}: {error}")]
    Sql {
        /// The URL without its password.
        url: String,
        /// What the driver said.
        error: sqlx::Error,
    },
    /// A stored user entry is not valid.
    #[error("database {url}: user {name:?}: {message}")]
    Entry {
        /// The URL without its password.
        url: String,
        /// The user.
        name: String,
        /// What is wrong with it.
        message: String,
    },
}

/// The SQL dialect, where the two engines differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL.
    Postgres,
    /// SQLite.
    Sqlite,
}

impl Dialect {
    /// The database clock, in whole seconds since the epoch, as an SQL expression.
    pub(crate) fn now(self) -> &'static str {
        match self {
            Dialect::Postgres => "CAST(EXTRACT(EPOCH FROM now()) AS BIGINT)",
            Dialect::Sqlite => "CAST(strftime('%s', 'now') AS BIGINT)",
        }
    }
}

/// A connection pool to the configured database, with the tables in place.
#[derive(Clone, Debug)]
pub struct Database {
    pool: AnyPool,
    dialect: Dialect,
    /// The URL without its password, for messages.
    shown: String,
}

/// How long to wait for a connection before a request fails (a login records its failure
/// in the database; it must not hang when the database does).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

impl Database {
    /// Connects (`base` resolves a relative SQLite path) and creates the tables if missing.
    pub async fn open(config: &DatabaseConfig, base: &Path) -> Result<Database, DatabaseError> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let (url, dialect) = connection_url(config, base)?;
        let shown = redacted(&url);
        let sql = |error| DatabaseError::Sql {
            url: redacted(&url),
            error,
        };
        let max = match dialect {
            // One writer at a time anyway; a few readers.
            Dialect::Sqlite => 4,
            Dialect::Postgres => 8,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(&url)
            .await
            .map_err(sql)?;
        let database = Database {
            pool,
            dialect,
            shown,
        };
        database.create_tables().await.map_err(sql)?;
        Ok(database)
    }

    /// The pool.
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The engine.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The URL without its password.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Wraps a driver error with the URL.
    pub(crate) fn error(&self, error: sqlx::Error) -> DatabaseError {
        DatabaseError::Sql {
            url: self.shown.clone(),
            error,
        }
    }

    async fn create_tables(&self) -> Result<(), sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        if self.dialect == Dialect::Postgres {
            // Two nodes starting at once must not race on CREATE TABLE IF NOT EXISTS
            // (it is not atomic in PostgreSQL).
            sqlx::query("SELECT pg_advisory_lock(7346529811)")
                .execute(&mut *conn)
                .await?;
        } else {
            // Readers do not wait for the writer; the setting is kept in the file.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&mut *conn)
                .await?;
        }
        let statements = [
            "CREATE TABLE IF NOT EXISTS ftpsd_meta (
                 name VARCHAR(64) PRIMARY KEY,
                 value BIGINT NOT NULL)",
            "INSERT INTO ftpsd_meta (name, value) VALUES ('users_revision', 0)
                 ON CONFLICT (name) DO NOTHING",
            "CREATE TABLE IF NOT EXISTS ftpsd_users (
                 name VARCHAR(64) PRIMARY KEY,
                 entry TEXT,
                 revision BIGINT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS ftpsd_users_by_revision ON ftpsd_users (revision)",
            "CREATE TABLE IF NOT EXISTS ftpsd_login_failures (
                 key VARCHAR(400) PRIMARY KEY,
                 count BIGINT NOT NULL,
                 window_start BIGINT NOT NULL,
                 banned_until BIGINT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS ftpsd_login_failures_by_ban
                 ON ftpsd_login_failures (banned_until)",
        ];
        let mut outcome = Ok(());
        for statement in statements {
            if let Err(e) = sqlx::query(statement).execute(&mut *conn).await {
                outcome = Err(e);
                break;
            }
        }
        if self.dialect == Dialect::Postgres {
            sqlx::query("SELECT pg_advisory_unlock(7346529811)")
                .execute(&mut *conn)
                .await?;
        }
        outcome
    }

    /// Closes the pool's connections.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Runs `work` with a database connection on a thread of its own with its own runtime, for
/// the callers that are not async (`ftpsd user`, a blocking task of the admin API): it
/// works whether or not the caller is inside a runtime.
pub fn with_database<T, E, F>(
    config: &DatabaseConfig,
    base: &Path,
    work: impl FnOnce(Database) -> F + Send,
) -> Result<T, E>
where
    T: Send,
    E: From<DatabaseError> + Send,
    F: std::future::Future<Output = Result<T, E>>,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| DatabaseError::Url(format!("cannot start a runtime: {e}")))?;
                runtime.block_on(async {
                    let database = Database::open(config, base).await?;
                    let result = work(database.clone()).await;
                    database.close().await;
                    result
                })
            })
            .join()
            .unwrap_or_else(|_| Err(DatabaseError::Url("database thread panicked".into()).into()))
    })
}

/// `url` as it may be shown: without its password.
pub fn shown_url(url: &str) -> String {
    redacted(url.trim())
}

/// The URL to connect with (password from the file added) and its dialect.
fn connection_url(
    config: &DatabaseConfig,
    base: &Path,
) -> Result<(String, Dialect), DatabaseError> {
    let text = config.url.trim();
    if let Some(rest) = text
        .strip_prefix("sqlite://")
        .or_else(|| text.strip_prefix("sqlite:"))
    {
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if path.is_empty() || path == ":memory:" {
            return Err(DatabaseError::Url(
                "an SQLite database needs a file path (sqlite:///var/lib/ftpsd/users.db)".into(),
            ));
        }
        let path = Path::new(path);
        let path = if path.is_absolute() {
            path.to_path_buf()
        } else {
            base.join(path)
        };
        // Created if missing; the caller's other parameters kept.
        let mut params = vec!["mode=rwc".to_string()];
        params.extend(
            query
                .split('&')
                .filter(|p| !p.is_empty() && !p.starts_with("mode="))
                .map(str::to_string),
        );
        return Ok((
            format!("sqlite://{}?{}", path.display(), params.join("&")),
            Dialect::Sqlite,
        ));
    }
    let mut url = url::Url::parse(text).map_err(|e| DatabaseError::Url(e.to_string()))?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err(DatabaseError::Url(format!(
            "{:?} is neither postgres:// nor sqlite://",
            url.scheme()
        )));
    }
    if let Some(path) = &config.password_file {
        let text = std::fs::read_to_string(path).map_err(|error| DatabaseError::PasswordFile {
            path: path.clone(),
            error,
        })?;
        let password = text.lines().next().unwrap_or_default();
        url.set_password(Some(password))
            .map_err(|()| DatabaseError::Url("this URL cannot hold a password".into()))?;
    }
    Ok((url.to_string(), Dialect::Postgres))
}

/// `url` without its password.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> DatabaseConfig {
        DatabaseConfig {
            url: url.into(),
            password_file: None,
            poll_seconds: 2,
            shared_login_failures: true,
        }
    }

    #[test]
    fn urls() {
        let base = Path::new("/etc/ftpsd");
        let (url, dialect) = connection_url(&config("sqlite://users.db"), base).unwrap();
        assert_eq!(dialect, Dialect::Sqlite);
        assert_eq!(url, "sqlite:///etc/ftpsd/users.db?mode=rwc");
        let (url, _) = connection_url(&config("sqlite:///var/u.db?mode=ro"), base).unwrap();
        assert_eq!(url, "sqlite:///var/u.db?mode=rwc");
        assert!(connection_url(&config("sqlite::memory:"), base).is_err());
        assert!(connection_url(&config("mysql://x/y"), base).is_err());
        let (url, dialect) = connection_url(&config("postgres://u@h/db"), base).unwrap();
        assert_eq!(dialect, Dialect::Postgres);
        assert_eq!(url, "postgres://u@h/db");
        assert_eq!(
            redacted("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
    }

    #[test]
    fn password_file() {
        let dir = tempfile::TempDir::new().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "p@ss word\n").unwrap();
        let mut c = config("postgres://ftpsd@db/ftpsd");
        c.password_file = Some(file);
        let (url, _) = connection_url(&c, Path::new("/")).unwrap();
        assert_eq!(url, "postgres://ftpsd:p%40ss%20word@db/ftpsd");
        assert!(!redacted(&url).contains("word"));
    }
}
