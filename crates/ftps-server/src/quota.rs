//! Quotas: how many bytes and files a user's tree may hold (`[users.NAME.quota]`, and the
//! server's default `[quota]`).
//!
//! ```toml
//! [quota]                 # ftpsd.toml: every user without its own
//! bytes = "10G"           # bytes, or K/M/G/T (binary); 0 or unset: no limit
//! files = 100000
//!
//! [users.alice.quota]     # users file: instead of the server's
//! bytes = "2G"
//! files = 0               # no file limit for alice, whatever the server's default
//! ```
//!
//! A user's usage is counted once, by walking its tree, when its first session logs in,
//! and then kept by every session of the user as they upload, delete and rename
//! ([`crate::storage::QuotaStorage`]), so that two sessions uploading at once share one
//! count. It is counted again at the next login after the user's last session ended, so a
//! restart, or files an administrator added or removed by hand, are taken into account.
//! Only regular files count, each once, and only in the user's own tree: virtual folders
//! mounted into it are outside its quota.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, Weak};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::limits::size::{deserialize_size, format_size, serialize_size};
use crate::limits::UserKey;
use crate::storage::{EntryKind, Storage, VirtualPath};

/// A quota setting: bytes and files, each unset (another setting decides), zero (no
/// limit) or a limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Bytes the user's files may hold in all.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "some_size",
        serialize_with = "size_or_none"
    )]
    pub bytes: Option<u64>,
    /// Regular files the user's tree may hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
}

impl Quota {
    /// Whether nothing is set (the users file then leaves the table out).
    pub fn is_empty(&self) -> bool {
        *self == Quota::default()
    }

    /// The limits a user with this setting gets, given the server's default: the user's
    /// own values where set, the server's otherwise; zero is no limit.
    pub fn limits(&self, server: &Quota) -> QuotaLimits {
        let pick = |own: Option<u64>, default: Option<u64>| own.or(default).filter(|n| *n > 0);
        QuotaLimits {
            bytes: pick(self.bytes, server.bytes),
            files: pick(self.files, server.files),
        }
    }
}

/// The limits that hold for one user; `None`: no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuotaLimits {
    /// Bytes in all.
    pub bytes: Option<u64>,
    /// Regular files.
    pub files: Option<u64>,
}

impl QuotaLimits {
    /// Whether there is any limit.
    pub fn is_limited(&self) -> bool {
        self.bytes.is_some() || self.files.is_some()
    }
}

/// What a user's tree holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes of regular files.
    pub bytes: u64,
    /// Regular files.
    pub files: u64,
}

/// Counts the regular files below the root of `storage`, walking its directories. A
/// directory reached twice (through a symbolic link inside the root) is walked once.
pub async fn measure(storage: &dyn Storage) -> io::Result<Usage> {
    let mut usage = Usage::default();
    let mut seen_dirs = std::collections::HashSet::new();
    let mut pending = vec![VirtualPath::root()];
    while let Some(dir) = pending.pop() {
        let listing = storage.list(&dir).await?;
        // The listing reads as it goes, and a backend may block doing so.
        let entries = tokio::task::spawn_blocking(move || listing.collect::<io::Result<Vec<_>>>())
            .await
            .map_err(io::Error::other)??;
        for entry in entries {
            match entry.kind {
                // Another upload's temporary file, counted when it is committed.
                EntryKind::File
                    if entry
                        .name
                        .to_str()
                        .is_some_and(crate::storage::local::is_temp_upload_name) => {}
                EntryKind::File => {
                    usage.bytes = usage.bytes.saturating_add(entry.size);
                    usage.files += 1;
                }
                EntryKind::Dir => {
                    if entry.ino == 0 || seen_dirs.insert((entry.dev, entry.ino)) {
                        if let Some(name) = entry.name.to_str() {
                            pending.push(dir.join(name));
                        }
                    }
                }
                EntryKind::Symlink | EntryKind::Other => {}
            }
        }
    }
    Ok(usage)
}

/// Why an upload was refused: the payload of an [`io::ErrorKind::QuotaExceeded`] error,
/// answered `552` with its figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaExceeded {
    /// The upload would make the user's files hold more than `limit` bytes.
    Bytes {
        /// The quota.
        limit: u64,
        /// Bytes in use (and being uploaded) without this upload.
        used: u64,
    },
    /// The upload would create a file beyond the `limit`.
    Files {
        /// The quota.
        limit: u64,
        /// Files in use (and being uploaded) without this one.
        used: u64,
    },
}

impl QuotaExceeded {
    /// The error to return for this refusal.
    pub fn error(self) -> io::Error {
        io::Error::new(io::ErrorKind::QuotaExceeded, self)
    }

    /// The refusal `e` carries, if any.
    pub fn of(e: &io::Error) -> Option<QuotaExceeded> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<QuotaExceeded>())
            .copied()
    }
}

impl fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            QuotaExceeded::Bytes { limit, used } => write!(
                f,
                "quota exceeded: {used} of {limit} bytes ({}) in use",
                format_size(limit)
            ),
            QuotaExceeded::Files { limit, used } => {
                write!(f, "quota exceeded: {used} of {limit} files in use")
            }
        }
    }
}

impl std::error::Error for QuotaExceeded {}

/// One user's usage, shared by its sessions: what its tree holds, and what uploads in
/// progress may still add.
#[derive(Debug, Default)]
pub struct QuotaUsage {
    /// Filled by the first session's walk of the tree.
    counted: tokio::sync::OnceCell<()>,
    state: Mutex<UsageState>,
}

#[derive(Debug, Default)]
struct UsageState {
    held: Usage,
    /// Bytes and files that uploads in progress have claimed.
    claimed: Usage,
}

impl QuotaUsage {
    /// What the tree holds now (uploads in progress not included).
    pub fn current(&self) -> Usage {
        self.lock().held
    }

    /// Counts the tree of `storage` unless that was done; every caller waits for the one
    /// count.
    pub async fn count_once(&self, storage: &dyn Storage) -> io::Result<()> {
        self.counted
            .get_or_try_init(|| async {
                let usage = measure(storage).await?;
                self.lock().held = usage;
                Ok::<_, io::Error>(())
            })
            .await
            .map(|_| ())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, UsageState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Claims `bytes` more for an upload that holds `own` already, unless that would pass
    /// `limit`. A refusal reports what is in use without the upload's own claim.
    pub(crate) fn claim_bytes(
        &self,
        bytes: u64,
        own: u64,
        limit: Option<u64>,
    ) -> Result<(), QuotaExceeded> {
        let mut state = self.lock();
        if let Some(limit) = limit {
            let used = state.held.bytes.saturating_add(state.claimed.bytes);
            if used.saturating_add(bytes) > limit {
                let used = used.saturating_sub(own);
                return Err(QuotaExceeded::Bytes { limit, used });
            }
        }
        state.claimed.bytes = state.claimed.bytes.saturating_add(bytes);
        Ok(())
    }

    /// Claims one new file for an upload, unless that would pass `limit`.
    pub(crate) fn claim_file(&self, limit: Option<u64>) -> Result<(), QuotaExceeded> {
        let mut state = self.lock();
        if let Some(limit) = limit {
            let used = state.held.files.saturating_add(state.claimed.files);
            if used >= limit {
                return Err(QuotaExceeded::Files { limit, used });
            }
        }
        state.claimed.files += 1;
        Ok(())
    }

    /// Whether the bytes quota `limit` leaves no room at all.
    pub(crate) fn bytes_full(&self, limit: Option<u64>) -> Option<QuotaExceeded> {
        let state = self.lock();
        let limit = limit?;
        let used = state.held.bytes.saturating_add(state.claimed.bytes);
        (used >= limit).then_some(QuotaExceeded::Bytes { limit, used })
    }

    /// Gives back what an upload claimed, and adds what it changed: `bytes` (the new size
    /// less the old) and `files` (1 for a new file).
    pub(crate) fn settle(&self, claimed: Usage, bytes: i128, files: i64) {
        let mut state = self.lock();
        state.claimed.bytes = state.claimed.bytes.saturating_sub(claimed.bytes);
        state.claimed.files = state.claimed.files.saturating_sub(claimed.files);
        state.held.bytes = add_signed(state.held.bytes, bytes);
        state.held.files = add_signed(state.held.files, i128::from(files));
    }
}

fn add_signed(n: u64, delta: i128) -> u64 {
    u64::try_from((i128::from(n) + delta).max(0)).unwrap_or(u64::MAX)
}

/// The users' usage, one per user while any of its sessions is logged in.
#[derive(Debug, Default)]
pub struct QuotaRegistry {
    users: Mutex<HashMap<UserKey, Weak<QuotaUsage>>>,
}

impl QuotaRegistry {
    /// The usage of `user`, shared with its other sessions, counted from `storage` (the
    /// user's own tree) if no session of the user has it.
    pub async fn usage(
        &self,
        user: &UserKey,
        storage: &dyn Storage,
    ) -> io::Result<Arc<QuotaUsage>> {
        let usage = {
            let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
            match users.get(user).and_then(Weak::upgrade) {
                Some(usage) => usage,
                None => {
                    users.retain(|_, weak| weak.strong_count() > 0);
                    let usage = Arc::new(QuotaUsage::default());
                    users.insert(user.clone(), Arc::downgrade(&usage));
                    usage
                }
            }
        };
        usage.count_once(storage).await?;
        Ok(usage)
    }

    /// The usage of `user` if one of its sessions holds it.
    pub fn current(&self, user: &UserKey) -> Option<Usage> {
        let users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        let usage = users.get(user).and_then(Weak::upgrade)?;
        usage.counted.initialized().then(|| usage.current())
    }
}

/// The quota limits of the user `name` of `db` under `config`, and what its tree holds
/// now, counted as a login counts it (for `ftpsd user show`). `Ok(None)`: no quota applies.
pub async fn user_usage(
    config: &crate::Config,
    db: &crate::users::UserDb,
    name: &str,
) -> io::Result<Option<(Usage, QuotaLimits)>> {
    let entry = db.get(name).ok_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, format!("no such user: {name:?}"))
    })?;
    let limits = entry.quota.limits(&config.quota);
    if !limits.is_limited() {
        return Ok(None);
    }
    let store = entry
        .storage
        .as_deref()
        .or(config.storage.default.as_deref())
        .filter(|s| *s != crate::folders::LOCAL_STORAGE);
    let storage: Arc<dyn Storage> = match store {
        None => Arc::new(crate::storage::local::LocalStorage::new(
            crate::storage::local::Root::open(&db.resolve_root(entry))?,
        )),
        #[cfg(feature = "s3")]
        Some(store) => {
            let store_config = config.storage.s3.get(store).ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("no [storage.s3.{store}]"))
            })?;
            let s3 = Arc::new(crate::storage::s3::S3Store::new(store, store_config, None)?);
            Arc::new(s3.user(&entry.root.to_string_lossy()))
        }
        #[cfg(not(feature = "s3"))]
        Some(store) => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("storage {store:?}: built without the s3 feature"),
            ))
        }
    };
    Ok(Some((measure(storage.as_ref()).await?, limits)))
}

/// `bytes`: a size; zero is allowed (no limit).
fn some_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    deserialize_size(d).map(Some)
}

fn size_or_none<S: Serializer>(size: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
    match size {
        Some(bytes) => serialize_size(*bytes, s),
        None => s.serialize_none(),
    }
}

/// The usage and limits as `SITE QUOTA` and `ftpsd user show` put them, one line each.
pub fn describe(usage: Usage, limits: QuotaLimits) -> [String; 2] {
    let bytes = match limits.bytes {
        Some(limit) => format!(
            "Bytes: {} of {limit} ({} of {}) used",
            usage.bytes,
            format_size_approx(usage.bytes),
            format_size(limit)
        ),
        None => format!(
            "Bytes: {} ({}) used, no limit",
            usage.bytes,
            format_size_approx(usage.bytes)
        ),
    };
    let files = match limits.files {
        Some(limit) => format!("Files: {} of {limit} used", usage.files),
        None => format!("Files: {} used, no limit", usage.files),
    };
    [bytes, files]
}

/// A size for people: bytes below 1 KiB, else one decimal of the largest binary unit.
fn format_size_approx(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_parse_and_the_users_own_values_win() {
        let server: Quota = toml::from_str("bytes = \"10M\"\nfiles = 100\n").unwrap();
        assert_eq!(server.bytes, Some(10 << 20));
        let own: Quota = toml::from_str("files = 0\n").unwrap();
        assert_eq!(
            own.limits(&server),
            QuotaLimits {
                bytes: Some(10 << 20),
                files: None
            }
        );
        assert!(!Quota::default().limits(&Quota::default()).is_limited());
        assert_eq!(
            toml::to_string(&server).unwrap(),
            "bytes = \"10M\"\nfiles = 100\n"
        );
        for (text, message) in [("bytes = \"lots\"\n", "lots"), ("blocks = 3\n", "blocks")] {
            let e = toml::from_str::<Quota>(text).unwrap_err().to_string();
            assert!(e.contains(message), "{text:?}: {e}");
        }
    }

    #[test]
    fn claims_are_refused_past_the_limit_and_settled() {
        let usage = QuotaUsage::default();
        usage.settle(Usage::default(), 90, 1);
        assert_eq!(usage.claim_bytes(10, 0, Some(100)), Ok(()));
        // The upload holding those 10 is told what the others use.
        assert_eq!(
            usage.claim_bytes(1, 10, Some(100)),
            Err(QuotaExceeded::Bytes {
                limit: 100,
                used: 90
            })
        );
        assert!(usage.bytes_full(Some(100)).is_some());
        // The upload ended without a file: its claim is given back.
        usage.settle(
            Usage {
                bytes: 10,
                files: 0,
            },
            0,
            0,
        );
        assert_eq!(
            usage.current(),
            Usage {
                bytes: 90,
                files: 1
            }
        );
        assert_eq!(usage.claim_file(Some(2)), Ok(()));
        assert_eq!(
            usage.claim_file(Some(2)),
            Err(QuotaExceeded::Files { limit: 2, used: 2 })
        );
        usage.settle(Usage { bytes: 0, files: 1 }, -90, -1);
        assert_eq!(usage.current(), Usage::default());
    }

    #[test]
    fn the_description_gives_the_figures() {
        let [bytes, files] = describe(
            Usage {
                bytes: 1536,
                files: 2,
            },
            QuotaLimits {
                bytes: Some(10 << 20),
                files: None,
            },
        );
        assert_eq!(bytes, "Bytes: 1536 of 10485760 (1.5 KiB of 10M) used");
        assert_eq!(files, "Files: 2 used, no limit");
    }
}
