//! The S3 backend: a user's files as the objects under a key prefix of a bucket, on AWS S3 or
//! any S3-compatible store (Garage, MinIO, Ceph RGW, ...), through opendal.
//!
//! How each FTP command maps onto objects is docs/storage.md's table. In short:
//! - a file `/a/b.txt` is the object `<prefix>a/b.txt`; a directory `/a` exists when any key
//!   starts with `<prefix>a/`, and `MKD` writes the empty marker object `<prefix>a/` so that
//!   an empty directory stays;
//! - `STOR` is a streaming multipart upload that becomes visible only when it completes,
//!   just before the `226`; an upload that fails is aborted, so nothing partial is ever
//!   visible. At most part size × (parts in flight + 1) bytes of an upload are in memory;
//! - `APPE` and `REST`+`STOR` write a new object made of the kept part of the old one
//!   (copied inside the store) and the new bytes, which replaces the old object when it
//!   completes;
//! - `RETR` (with `REST`) is one streamed ranged `GET`;
//! - `RNFR`/`RNTO` copy inside the store, then delete (a directory: every object below it, up
//!   to a configured number);
//! - `MFMT` and `SITE CHMOD` are refused: objects have no settable time or permission bits.
//!
//! A failure of the store itself (unreachable, timing out, answering 5xx, refusing the
//! server's credentials) is a [`StorageUnavailable`] error, which the session answers with
//! `451`. Requests that may be repeated safely are retried with backoff (opendal's retry
//! layer), each bounded by a timeout.

mod bridge;
mod unfinished;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opendal::layers::{RetryLayer, TimeoutLayer};
use opendal::{EntryMode, Operator};

use super::{
    Download, Entry, EntryKind, Listing, Storage, StorageUnavailable, TooManyObjects, Upload,
    UploadMode, VirtualPath,
};
use crate::config::{S3Credentials, S3StoreConfig};
use bridge::{ObjectListing, ObjectReader, ObjectUpload};
use unfinished::{Journal, Reaper};

/// The smallest part S3 accepts in a multipart upload (but for the last).
pub use crate::config::S3_MIN_PART_SIZE as MIN_PART_SIZE;

/// One configured bucket (and key prefix), shared by the sessions of all its users.
pub struct S3Store {
    name: String,
    op: Operator,
    /// The key prefix of the whole store in the bucket: empty, or ends with `/`.
    root: String,
    /// Where running uploads are recorded, so that a killed server's are aborted at the
    /// next start (none: not recorded).
    journal: Option<Journal>,
    reaper: Reaper,
    part_size: usize,
    parts_in_flight: usize,
    max_rename_objects: usize,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the credentials: only what says which store this is.
        f.debug_struct("S3Store").field("name", &self.name).finish()
    }
}

impl S3Store {
    /// The store `name` as `config` describes it, recording its running uploads under
    /// `state_dir` when given. Credentials are read now (from a file) or left to the AWS
    /// chain (environment, shared files, the instance's role); none of them is logged or
    /// kept outside the clients that sign requests.
    pub fn new(
        name: &str,
        config: &S3StoreConfig,
        state_dir: Option<&std::path::Path>,
    ) -> io::Result<S3Store> {
        // The HTTP transport opendal sends requests with.
        opendal::install_default();
        let mut builder = opendal::services::S3::default()
            .bucket(&config.bucket)
            .endpoint(&config.endpoint)
            .region(&config.region)
            .root(&format!("/{}", config.prefix.trim_matches('/')));
        if !config.path_style {
            builder = builder.enable_virtual_host_style();
        }
        match &config.credentials {
            S3Credentials::Environment => {}
            S3Credentials::Instance => {
                // The instance's role only: no keys from the environment or shared files.
                builder = builder.disable_config_load();
            }
            S3Credentials::File(path) => {
                let keys = read_credentials_file(path)?;
                builder = builder
                    .disable_config_load()
                    .disable_ec2_metadata()
                    .access_key_id(&keys.access_key_id)
                    .secret_access_key(&keys.secret_access_key);
            }
        }
        let timeout = Duration::from_secs(config.request_timeout_seconds.max(1));
        let op = Operator::new(builder)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?
            .layer(
                TimeoutLayer::new()
                    .with_timeout(timeout)
                    .with_io_timeout(timeout),
            )
            .layer(
                RetryLayer::new()
                    .with_max_times(config.retries)
                    .with_min_delay(Duration::from_millis(200))
                    .with_max_delay(Duration::from_secs(5))
                    .with_jitter(),
            );
        let root = config.prefix.trim_matches('/');
        Ok(S3Store {
            name: name.to_string(),
            op,
            root: if root.is_empty() {
                String::new()
            } else {
                format!("{root}/")
            },
            journal: state_dir.map(|dir| Journal::new(unfinished::journal_dir(dir))),
            reaper: Reaper::new(config)?,
            part_size: config.part_size.max(MIN_PART_SIZE) as usize,
            parts_in_flight: config.parts_in_flight.max(1),
            max_rename_objects: config.max_rename_objects,
        })
    }

    /// The store's name in the configuration.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The storage of one user: the objects under `prefix` (a relative key prefix such as
    /// `alice`, or empty for the whole store).
    pub fn user(self: &Arc<Self>, prefix: &str) -> S3Storage {
        let prefix = prefix.trim_matches('/');
        S3Storage {
            store: self.clone(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        }
    }

    /// Checks that the bucket answers, for start-up: a listing of at most one key.
    pub async fn check(&self) -> io::Result<()> {
        self.op.check().await.map_err(map_error)
    }

    /// Aborts the multipart uploads that this server, killed mid-upload, left unfinished
    /// (see [`unfinished`]); returns how many.
    pub async fn abort_unfinished_uploads(&self) -> usize {
        match &self.journal {
            Some(journal) => self.reaper.abort_unfinished(&self.name, journal).await,
            None => 0,
        }
    }
}

/// The access key pair of a credentials file.
struct FileCredentials {
    access_key_id: String,
    secret_access_key: String,
}

/// Reads an AWS-style credentials file (`aws_access_key_id = ...` and
/// `aws_secret_access_key = ...` lines, under `[default]` or no section).
fn read_credentials_file(path: &std::path::Path) -> io::Result<FileCredentials> {
    let text = std::fs::read_to_string(path)?;
    let mut id = None;
    let mut secret = None;
    let mut section_ok = true;
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section_ok = section.trim() == "default";
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if !section_ok {
            continue;
        }
        let value = value.trim().trim_matches('"').to_string();
        match key.trim() {
            "aws_access_key_id" | "access_key_id" => id = Some(value),
            "aws_secret_access_key" | "secret_access_key" => secret = Some(value),
            _ => {}
        }
    }
    match (id, secret) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(FileCredentials {
            access_key_id,
            secret_access_key,
        }),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: no aws_access_key_id and aws_secret_access_key in [default]",
                path.display()
            ),
        )),
    }
}

/// One user's files in an [`S3Store`].
#[derive(Clone, Debug)]
pub struct S3Storage {
    store: Arc<S3Store>,
    /// The user's key prefix: empty, or ends with `/`.
    prefix: String,
}

impl S3Storage {
    fn op(&self) -> &Operator {
        &self.store.op
    }

    /// The key of the file `path`.
    fn file_key(&self, path: &VirtualPath) -> String {
        format!("{}{}", self.prefix, path.relative().to_string_lossy())
    }

    /// The key prefix of the directory `path` (its marker's key): ends with `/`, or is "/"
    /// for the root of a store used whole.
    fn dir_key(&self, path: &VirtualPath) -> String {
        if path.is_root() {
            if self.prefix.is_empty() {
                "/".to_string()
            } else {
                self.prefix.clone()
            }
        } else {
            format!("{}/", self.file_key(path))
        }
    }

    /// Whether anything is at `path`: a file, a directory, or nothing.
    async fn probe(&self, path: &VirtualPath) -> io::Result<Option<Entry>> {
        if path.is_root() {
            return Ok(Some(dir_entry("/", None, &self.dir_key(path))));
        }
        let name = path.file_name().unwrap_or("/");
        let key = self.file_key(path);
        match self.op().stat(&key).await {
            Ok(meta) if meta.mode() == EntryMode::FILE => {
                return Ok(Some(file_entry(
                    name,
                    meta.content_length(),
                    meta.last_modified().map(SystemTime::from),
                    &key,
                )));
            }
            Ok(_) => {}
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => {}
            Err(e) => return Err(map_error(e)),
        }
        let dir = self.dir_key(path);
        match self.op().stat(&dir).await {
            Ok(meta) => Ok(Some(dir_entry(
                name,
                meta.last_modified().map(SystemTime::from),
                &dir,
            ))),
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(map_error(e)),
        }
    }

    /// The entry at `path`, which must be a directory.
    async fn require_dir(&self, path: &VirtualPath) -> io::Result<()> {
        match self.probe(path).await? {
            Some(e) if e.kind == EntryKind::Dir => Ok(()),
            Some(_) => Err(io::ErrorKind::NotADirectory.into()),
            None => Err(io::ErrorKind::NotFound.into()),
        }
    }

    /// Starts a multipart upload to `key`.
    async fn writer(&self, key: &str) -> io::Result<opendal::Writer> {
        self.op()
            .writer_with(key)
            .chunk(self.store.part_size)
            .concurrent(self.store.parts_in_flight)
            .await
            .map_err(map_error)
    }

    /// The keys below the directory key `dir` (recursively, the marker included), up to
    /// `max` of them; `None` if there are more.
    async fn keys_below(&self, dir: &str, max: usize) -> io::Result<Option<Vec<String>>> {
        use futures::TryStreamExt;
        let mut lister = self
            .op()
            .lister_with(dir)
            .recursive(true)
            .await
            .map_err(map_error)?;
        let mut keys = Vec::new();
        // A recursive listing has no common prefixes: every entry is an object (a
        // directory's marker ends with `/`).
        while let Some(entry) = lister.try_next().await.map_err(map_error)? {
            if keys.len() == max {
                return Ok(None);
            }
            keys.push(entry.path().to_string());
        }
        Ok(Some(keys))
    }
}

#[async_trait::async_trait]
impl Storage for S3Storage {
    async fn metadata(&self, path: &VirtualPath) -> io::Result<Entry> {
        self.probe(path)
            .await?
            .ok_or_else(|| io::ErrorKind::NotFound.into())
    }

    async fn open_read(&self, path: &VirtualPath, offset: u64) -> io::Result<Download> {
        let entry = self.metadata(path).await?;
        if entry.kind != EntryKind::File {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "is a directory",
            ));
        }
        if offset > entry.size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "offset is past the end of the file",
            ));
        }
        let key = self.file_key(path);
        let remaining = entry.size - offset;
        let reader = ObjectReader::open(self.op(), &key, offset..entry.size).await?;
        Ok(Download::from_reader(Box::new(reader), remaining))
    }

    async fn create(&self, path: &VirtualPath, mode: UploadMode) -> io::Result<Box<dyn Upload>> {
        if path.is_root() {
            return Err(io::ErrorKind::IsADirectory.into());
        }
        let existing = self.probe(path).await?;
        match &existing {
            Some(e) if e.kind == EntryKind::Dir => {
                return Err(io::Error::new(
                    io::ErrorKind::IsADirectory,
                    "is a directory",
                ))
            }
            Some(_) if mode == UploadMode::CreateNew => {
                return Err(io::ErrorKind::AlreadyExists.into())
            }
            Some(_) => {}
            // A new file needs its directory, as on a disk.
            None => self.require_dir(&path.parent()).await?,
        }
        let key = self.file_key(path);
        // What of the old object the new one starts with.
        let keep = match (mode, &existing) {
            (UploadMode::Append, Some(e)) => e.size,
            (UploadMode::At(offset), Some(e)) if offset <= e.size => offset,
            (UploadMode::At(offset), _) if offset > 0 => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "offset is past the end of the file",
                ))
            }
            _ => 0,
        };
        let full_key = format!("{}{key}", self.store.root);
        let recorded = match self
            .store
            .journal
            .as_ref()
            .map(|j| j.record(&self.store.name, &full_key))
        {
            Some(Ok(entry)) => Some(entry),
            // The upload goes on; only a crash in the middle of it would leave its parts
            // to the bucket's lifecycle rule.
            Some(Err(e)) => {
                tracing::warn!(store = %self.store.name, error = %e, "cannot record an upload in the state directory");
                None
            }
            None => None,
        };
        let mut writer = self.writer(&key).await?;
        if keep > 0 {
            if let Err(e) = bridge::copy_prefix(self.op(), &mut writer, &key, keep).await {
                if writer.abort().await.is_err() {
                    // Left for the next start to abort.
                    std::mem::forget(recorded);
                }
                return Err(e);
            }
        }
        Ok(Box::new(ObjectUpload::new(writer, recorded)))
    }

    async fn list(&self, dir: &VirtualPath) -> io::Result<Listing> {
        let key = self.dir_key(dir);
        let lister = self.op().lister(&key).await.map_err(map_error)?;
        // The first page now: a store that fails is answered before the data connection.
        ObjectListing::start(lister, key)
            .await
            .map(|listing| Box::new(listing) as Listing)
    }

    async fn create_dir(&self, path: &VirtualPath) -> io::Result<()> {
        if self.probe(path).await?.is_some() {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        self.require_dir(&path.parent()).await?;
        self.op()
            .create_dir(&self.dir_key(path))
            .await
            .map_err(map_error)
    }

    async fn remove_dir(&self, path: &VirtualPath) -> io::Result<()> {
        if path.is_root() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "cannot remove the root directory",
            ));
        }
        self.require_dir(path).await?;
        let dir = self.dir_key(path);
        match self.keys_below(&dir, 1).await? {
            Some(keys) if keys.iter().all(|k| *k == dir) => {
                self.op().delete(&dir).await.map_err(map_error)
            }
            _ => Err(io::ErrorKind::DirectoryNotEmpty.into()),
        }
    }

    async fn remove_file(&self, path: &VirtualPath) -> io::Result<()> {
        match self.probe(path).await? {
            Some(e) if e.kind == EntryKind::File => self
                .op()
                .delete(&self.file_key(path))
                .await
                .map_err(map_error),
            Some(_) => Err(io::ErrorKind::IsADirectory.into()),
            None => Err(io::ErrorKind::NotFound.into()),
        }
    }

    async fn rename(&self, from: &VirtualPath, to: &VirtualPath) -> io::Result<()> {
        if from.is_root() || to.is_root() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "cannot rename the root directory",
            ));
        }
        let source = self
            .probe(from)
            .await?
            .ok_or(io::Error::from(io::ErrorKind::NotFound))?;
        if from == to {
            return Ok(());
        }
        let target = self.probe(to).await?;
        if target.is_none() {
            self.require_dir(&to.parent()).await?;
        }
        if source.kind == EntryKind::File {
            if target.as_ref().is_some_and(|t| t.kind == EntryKind::Dir) {
                return Err(io::ErrorKind::IsADirectory.into());
            }
            let (from_key, to_key) = (self.file_key(from), self.file_key(to));
            // Copy inside the store (multipart above the single-copy limit), then delete.
            self.op()
                .copy(&from_key, &to_key)
                .await
                .map_err(map_error)?;
            return self.op().delete(&from_key).await.map_err(map_error);
        }
        // A directory: every object below it, and never into itself.
        if target.is_some() {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        let (from_dir, to_dir) = (self.dir_key(from), self.dir_key(to));
        if to_dir.starts_with(&from_dir) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot move a directory into itself",
            ));
        }
        let max = self.store.max_rename_objects;
        let Some(keys) = self.keys_below(&from_dir, max).await? else {
            return Err(io::Error::other(TooManyObjects { max }));
        };
        for key in &keys {
            let moved = format!("{to_dir}{}", &key[from_dir.len()..]);
            if key.ends_with('/') {
                self.op().create_dir(&moved).await.map_err(map_error)?;
            } else {
                self.op().copy(key, &moved).await.map_err(map_error)?;
            }
        }
        self.op()
            .delete_iter(keys.iter().map(String::as_str))
            .await
            .map_err(map_error)
    }

    fn sets_modification_times(&self) -> bool {
        false
    }

    async fn set_modified(&self, _path: &VirtualPath, _time: SystemTime) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "objects have no settable modification time",
        ))
    }
}

/// An opendal error as the `io::Error` the sessions answer from: what the client caused keeps
/// its kind (`NotFound`, ...), anything about the store itself is [`StorageUnavailable`].
pub(crate) fn map_error(e: opendal::Error) -> io::Error {
    use opendal::ErrorKind as K;
    let kind = match e.kind() {
        K::NotFound => io::ErrorKind::NotFound,
        K::AlreadyExists => io::ErrorKind::AlreadyExists,
        K::IsADirectory => io::ErrorKind::IsADirectory,
        K::NotADirectory => io::ErrorKind::NotADirectory,
        K::RangeNotSatisfied => io::ErrorKind::InvalidInput,
        K::Unsupported => io::ErrorKind::Unsupported,
        // Refused credentials, throttling, 5xx, timeouts, unreachable: the store's trouble.
        _ => return io::Error::other(StorageUnavailable::new(e.to_string())),
    };
    io::Error::new(kind, e.to_string())
}

/// A stable number for a key, for the RFC 3659 `unique` fact.
fn key_number(key: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

fn file_entry(name: &str, size: u64, modified: Option<SystemTime>, key: &str) -> Entry {
    Entry {
        name: name.into(),
        kind: EntryKind::File,
        size,
        modified: modified.unwrap_or(SystemTime::UNIX_EPOCH),
        mode: 0o644,
        nlink: 1,
        uid: 0,
        gid: 0,
        dev: 0,
        ino: key_number(key),
        link_target: None,
    }
}

fn dir_entry(name: &str, modified: Option<SystemTime>, key: &str) -> Entry {
    Entry {
        name: name.into(),
        kind: EntryKind::Dir,
        size: 0,
        modified: modified.unwrap_or(SystemTime::UNIX_EPOCH),
        mode: 0o755,
        nlink: 2,
        uid: 0,
        gid: 0,
        dev: 0,
        ino: key_number(key),
        link_target: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credentials_file_gives_the_default_profiles_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        std::fs::write(
            &path,
            "# comment\n[other]\naws_access_key_id = WRONG\n[default]\n\
             aws_access_key_id = GK123\naws_secret_access_key = \"s3cr3t\"\n",
        )
        .unwrap();
        let keys = read_credentials_file(&path).unwrap();
        assert_eq!(keys.access_key_id, "GK123");
        assert_eq!(keys.secret_access_key, "s3cr3t");
        std::fs::write(&path, "[default]\naws_access_key_id = GK123\n").unwrap();
        let e = read_credentials_file(&path).err().unwrap().to_string();
        assert!(!e.contains("GK123"), "a key in an error message: {e}");
    }

    #[test]
    fn the_stores_errors_are_unavailable_and_the_clients_keep_their_kind() {
        let missing = opendal::Error::new(opendal::ErrorKind::NotFound, "gone");
        assert_eq!(map_error(missing).kind(), io::ErrorKind::NotFound);
        for kind in [
            opendal::ErrorKind::PermissionDenied,
            opendal::ErrorKind::RateLimited,
            opendal::ErrorKind::Unexpected,
        ] {
            let e = map_error(opendal::Error::new(kind, "store trouble"));
            assert!(StorageUnavailable::is(&e), "{kind:?}: {e}");
        }
    }
}
