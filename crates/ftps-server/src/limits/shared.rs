//! Failed logins and bans counted in the database (`[database] shared_login_failures`), so
//! that an attacker who spreads guesses over the nodes of a fleet gains nothing: every
//! node adds to the same counts, and a ban any node decides (or the admin API sets) is
//! applied by all within `poll_seconds`.
//!
//! Each failure is one `INSERT ... ON CONFLICT DO UPDATE` per key (the address as the
//! limits count it, and the user name on its host) that returns the fleet-wide count in
//! the failure window; at `max_login_failures_per_ip` / `_per_user` the key is banned for
//! `ban_seconds`. Times are the database's clock, so the nodes' clocks do not matter. The
//! node that decides a ban applies it at once; the others pick it up at their next poll,
//! which also lifts, on every node, bans the database no longer holds (an admin's unban).
//!
//! When the database cannot be reached, a node goes on with its own counts (the
//! [`super::Limiter`]'s, which always run), and says so in its log.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{Limiter, UserKey};
use crate::config::Limits;
use crate::database::{Database, DatabaseError};

/// How long a login waits for the database to record its failure before going on with
/// the node's own count.
pub const RECORD_TIMEOUT: Duration = Duration::from_secs(3);

/// Rows older than this many windows (and not banned) are deleted now and then.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// What a failed login led to, fleet-wide.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SharedOutcome {
    /// The address is banned.
    pub ip_banned: bool,
    /// The user name is banned.
    pub user_banned: bool,
}

impl SharedOutcome {
    /// Whether the login's connection is to be closed.
    pub fn banned(self) -> bool {
        self.ip_banned || self.user_banned
    }
}

/// The fleet-wide failure counts and bans.
pub struct SharedFailures {
    database: Database,
    limits: Limits,
}

/// What is counted: an address or a user name on a host.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FailureKey {
    /// An address (an IPv6 network as the limits count it).
    Ip(IpAddr),
    /// A user name on a virtual host.
    User(UserKey),
}

impl FailureKey {
    /// The key's text in the table: `ip:ADDRESS` or `user:HOST/NAME` (host empty for the
    /// server's own users; neither host names nor user names hold a `/`).
    pub fn text(&self) -> String {
        match self {
            FailureKey::Ip(ip) => format!("ip:{ip}"),
            FailureKey::User(user) => {
                format!("user:{}/{}", user.host.as_deref().unwrap_or(""), user.name)
            }
        }
    }

    /// The key a text names, if it is well formed.
    pub fn parse(text: &str) -> Option<FailureKey> {
        if let Some(ip) = text.strip_prefix("ip:") {
            return ip.parse().ok().map(FailureKey::Ip);
        }
        let (host, name) = text.strip_prefix("user:")?.split_once('/')?;
        let host = (!host.is_empty()).then_some(host);
        Some(FailureKey::User(UserKey::new(host, name)))
    }
}

impl SharedFailures {
    /// Counts in `database` with the thresholds of `limits`.
    pub fn new(database: Database, limits: Limits) -> SharedFailures {
        SharedFailures { database, limits }
    }

    /// Records a failed login from `ip` (as counted) as `user`; which of the two is now
    /// banned fleet-wide.
    pub async fn record_failure(
        &self,
        ip: IpAddr,
        user: &UserKey,
    ) -> Result<SharedOutcome, DatabaseError> {
        let ip_banned = self
            .bump(&FailureKey::Ip(ip), self.limits.max_login_failures_per_ip)
            .await?;
        let user_banned = self
            .bump(
                &FailureKey::User(user.clone()),
                self.limits.max_login_failures_per_user,
            )
            .await?;
        Ok(SharedOutcome {
            ip_banned,
            user_banned,
        })
    }

    /// Adds one failure to `key`'s count in the current window; bans it at `max`.
    async fn bump(&self, key: &FailureKey, max: u32) -> Result<bool, DatabaseError> {
        let now = self.database.dialect().now();
        let window = i64::try_from(self.limits.failure_window_seconds).unwrap_or(i64::MAX);
        let row: AnyRow = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO ftpsd_login_failures (key, count, window_start, banned_until)
             VALUES ($1, 1, {now}, 0)
             ON CONFLICT (key) DO UPDATE SET
               count = CASE WHEN ftpsd_login_failures.window_start + $2 < {now}
                            THEN 1 ELSE ftpsd_login_failures.count + 1 END,
               window_start = CASE WHEN ftpsd_login_failures.window_start + $2 < {now}
                            THEN {now} ELSE ftpsd_login_failures.window_start END
             RETURNING count, banned_until, {now} AS now"
        )))
        .bind(key.text())
        .bind(window)
        .fetch_one(self.database.pool())
        .await
        .map_err(|e| self.database.error(e))?;
        let count: i64 = row.try_get("count").map_err(|e| self.database.error(e))?;
        let banned_until: i64 = row
            .try_get("banned_until")
            .map_err(|e| self.database.error(e))?;
        let at: i64 = row.try_get("now").map_err(|e| self.database.error(e))?;
        if count >= i64::from(max) {
            self.ban(key, Duration::from_secs(self.limits.ban_seconds))
                .await?;
            return Ok(true);
        }
        Ok(banned_until > at)
    }

    /// Bans `key` for `ban_for` from now (or longer, if it already is).
    pub async fn ban(&self, key: &FailureKey, ban_for: Duration) -> Result<(), DatabaseError> {
        let now = self.database.dialect().now();
        let seconds = i64::try_from(ban_for.as_secs()).unwrap_or(i64::MAX / 2);
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO ftpsd_login_failures (key, count, window_start, banned_until)
             VALUES ($1, 0, {now}, {now} + $2)
             ON CONFLICT (key) DO UPDATE SET banned_until =
               CASE WHEN ftpsd_login_failures.banned_until > {now} + $2
                    THEN ftpsd_login_failures.banned_until ELSE {now} + $2 END"
        )))
        .bind(key.text())
        .bind(seconds)
        .execute(self.database.pool())
        .await
        .map_err(|e| self.database.error(e))?;
        Ok(())
    }

    /// Lifts `key`'s ban and forgets its failures, on every node (at their next poll).
    pub async fn unban(&self, key: &FailureKey) -> Result<(), DatabaseError> {
        sqlx::query("DELETE FROM ftpsd_login_failures WHERE key = $1")
            .bind(key.text())
            .execute(self.database.pool())
            .await
            .map_err(|e| self.database.error(e))?;
        Ok(())
    }

    /// A successful login: the name's count starts again (the address's does not, as in
    /// [`Limiter::record_success`]).
    pub async fn record_success(&self, user: &UserKey) -> Result<(), DatabaseError> {
        sqlx::query("DELETE FROM ftpsd_login_failures WHERE key = $1 AND banned_until = 0")
            .bind(FailureKey::User(user.clone()).text())
            .execute(self.database.pool())
            .await
            .map_err(|e| self.database.error(e))?;
        Ok(())
    }

    /// The keys banned now, with the seconds left of each ban.
    pub async fn active_bans(&self) -> Result<Vec<(FailureKey, u64)>, DatabaseError> {
        let now = self.database.dialect().now();
        let rows: Vec<AnyRow> = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT key, banned_until - {now} AS seconds_left
             FROM ftpsd_login_failures WHERE banned_until > {now}"
        )))
        .fetch_all(self.database.pool())
        .await
        .map_err(|e| self.database.error(e))?;
        let mut bans = Vec::with_capacity(rows.len());
        for row in rows {
            let key: String = row.try_get("key").map_err(|e| self.database.error(e))?;
            let left: i64 = row
                .try_get("seconds_left")
                .map_err(|e| self.database.error(e))?;
            if let Some(key) = FailureKey::parse(&key) {
                bans.push((key, u64::try_from(left).unwrap_or(0)));
            }
        }
        Ok(bans)
    }

    /// Deletes the rows of keys neither banned nor failing within the window.
    async fn prune(&self) -> Result<(), DatabaseError> {
        let now = self.database.dialect().now();
        let window = i64::try_from(self.limits.failure_window_seconds).unwrap_or(i64::MAX / 2);
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM ftpsd_login_failures
             WHERE banned_until <= {now} AND window_start + $1 < {now}"
        )))
        .bind(window)
        .execute(self.database.pool())
        .await
        .map_err(|e| self.database.error(e))?;
        Ok(())
    }

    /// Applies the database's bans to `limiter` every `every`, and lifts the local bans the
    /// database no longer holds, until `stop` is cancelled.
    pub async fn follow(
        self: Arc<Self>,
        limiter: Arc<Limiter>,
        every: Duration,
        stop: tokio_util::sync::CancellationToken,
    ) {
        let mut failing = false;
        let mut last_prune = tokio::time::Instant::now();
        loop {
            match self.active_bans().await {
                Ok(bans) => {
                    if failing {
                        tracing::info!("shared login failures: database reachable again");
                        failing = false;
                    }
                    apply_bans(&limiter, &bans);
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "shared login failures: cannot read the database; using this node's counts");
                        failing = true;
                    }
                }
            }
            if last_prune.elapsed() >= PRUNE_EVERY {
                last_prune = tokio::time::Instant::now();
                if let Err(e) = self.prune().await {
                    tracing::debug!(error = %e, "shared login failures: prune failed");
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }
}

/// Makes `limiter`'s bans those of the database.
fn apply_bans(limiter: &Limiter, bans: &[(FailureKey, u64)]) {
    let mut ips = HashSet::new();
    let mut users = HashSet::new();
    for (key, left) in bans {
        let ban_for = Duration::from_secs(*left);
        match key {
            FailureKey::Ip(ip) => {
                ips.insert(limiter.ban_ip(*ip, ban_for));
            }
            FailureKey::User(user) => {
                limiter.ban_user(user, ban_for);
                users.insert(user.clone());
            }
        }
    }
    for (ip, _) in limiter.banned_ips() {
        if !ips.contains(&ip) {
            limiter.unban_ip(ip);
        }
    }
    for (user, _) in limiter.banned_users() {
        if !users.contains(&user) {
            limiter.unban_user(&user);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        for key in [
            FailureKey::Ip("192.0.2.7".parse().unwrap()),
            FailureKey::Ip("2001:db8::".parse().unwrap()),
            FailureKey::User(UserKey::new(None, "alice@example.com")),
            FailureKey::User(UserKey::new(Some("ftp.example.com"), "bob")),
        ] {
            assert_eq!(FailureKey::parse(&key.text()), Some(key));
        }
        assert_eq!(FailureKey::parse("ip:nonsense"), None);
        assert_eq!(FailureKey::parse("other"), None);
    }

    async fn sqlite(dir: &tempfile::TempDir) -> Database {
        let config = crate::database::DatabaseConfig {
            url: "sqlite://fleet.db".into(),
            password_file: None,
            poll_seconds: 1,
            shared_login_failures: true,
        };
        Database::open(&config, dir.path()).await.unwrap()
    }

    /// Two nodes' failures add up to one ban that both apply, and an unban lifts it on both.
    #[tokio::test]
    async fn failures_add_up_across_nodes() {
        let dir = tempfile::TempDir::new().unwrap();
        let limits = Limits {
            max_login_failures_per_ip: 3,
            max_login_failures_per_user: 100,
            ..Limits::default()
        };
        let node_a = SharedFailures::new(sqlite(&dir).await, limits.clone());
        let node_b = SharedFailures::new(sqlite(&dir).await, limits.clone());
        let ip: IpAddr = "198.51.100.9".parse().unwrap();
        let user = UserKey::new(None, "alice");
        assert!(!node_a.record_failure(ip, &user).await.unwrap().banned());
        assert!(!node_b.record_failure(ip, &user).await.unwrap().banned());
        let third = node_a.record_failure(ip, &user).await.unwrap();
        assert!(third.ip_banned && !third.user_banned);

        let limiter_b = Limiter::new(limits.clone());
        apply_bans(&limiter_b, &node_b.active_bans().await.unwrap());
        assert!(limiter_b.ip_banned(ip));
        assert!(!limiter_b.user_banned(&user));

        node_b.unban(&FailureKey::Ip(ip)).await.unwrap();
        apply_bans(&limiter_b, &node_b.active_bans().await.unwrap());
        assert!(!limiter_b.ip_banned(ip));
    }

    /// A success resets the name's count but not the address's.
    #[tokio::test]
    async fn success_resets_the_name_only() {
        let dir = tempfile::TempDir::new().unwrap();
        let limits = Limits {
            max_login_failures_per_ip: 3,
            max_login_failures_per_user: 5,
            ..Limits::default()
        };
        let node = SharedFailures::new(sqlite(&dir).await, limits);
        let ip: IpAddr = "198.51.100.10".parse().unwrap();
        let alice = UserKey::new(None, "alice");
        assert!(!node.record_failure(ip, &alice).await.unwrap().banned());
        node.record_success(&alice).await.unwrap();
        assert!(!node.record_failure(ip, &alice).await.unwrap().banned());
        // The third failure of the address bans it, though the name's count is only 2.
        let third = node.record_failure(ip, &alice).await.unwrap();
        assert!(third.ip_banned && !third.user_banned);
    }
}
