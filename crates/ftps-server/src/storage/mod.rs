//! Where a user's files live: the [`Storage`] interface that every FTP command goes through,
//! and its backends.
//!
//! A session holds one `Arc<dyn Storage>` for its user. The commands that look at or change
//! the tree (`CWD`, `SIZE`, `MKD`, `RNTO`, ...) await its methods; a transfer opens its
//! [`Download`], [`Upload`] or [`Listing`] with an awaited call too, so that a missing file
//! or a refusal is answered before the data connection is used, and then moves the bytes on
//! the transfer's blocking thread (see `session::data::pump`), where a local file is read,
//! encrypted and sent with no hand-off between threads. A backend whose I/O is asynchronous
//! drives it from that thread (`tokio::runtime::Handle::block_on`).
//!
//! Errors are `io::Error`s whose [`io::ErrorKind`] decides the FTP reply (`NotFound` is
//! `550`, `StorageFull` is `452`, `Unsupported` is `502`, ...; see docs/storage.md); a
//! failure of the storage itself rather than of the request carries a
//! [`StorageUnavailable`], answered with `451`.
//!
//! Backends:
//! - [`local`]: a directory on this machine that no path can escape, symbolic links
//!   included;
//! - [`s3`]: the objects under a key prefix of an S3 bucket.
//!
//! Wrappers add policy to any backend: [`LimitedStorage`] a file size limit,
//! [`QuotaStorage`] a quota, [`MountedStorage`] virtual folders and `guarded` the
//! permissions per path, stacked in that order at login.

pub mod guarded;
mod limited;
pub mod local;
mod mounts;
mod path;
mod quota;
#[cfg(feature = "s3")]
pub mod s3;

pub use limited::{create_limited, FileTooLarge, LimitedStorage};
pub use mounts::{Mount, MountedStorage};
pub use path::VirtualPath;
pub use quota::QuotaStorage;

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Read};
use std::path::PathBuf;
use std::time::SystemTime;

/// The file tree of one user.
///
/// Paths are [`VirtualPath`]s, already normalised: a backend maps them below its own root
/// and must not let any of them reach outside it.
#[async_trait::async_trait]
pub trait Storage: Send + Sync + fmt::Debug {
    /// Metadata of `path`.
    async fn metadata(&self, path: &VirtualPath) -> io::Result<Entry>;

    /// Opens a regular file for reading, from `offset` on. A directory or other
    /// non-regular file is an `InvalidInput` error, as is an offset past the end.
    async fn open_read(&self, path: &VirtualPath, offset: u64) -> io::Result<Download>;

    /// Starts an upload to `path`. Nothing changes under `path` before
    /// [`Upload::commit`] for [`UploadMode::Replace`]; see [`UploadMode`] for the others.
    /// An existing directory at `path` is an `IsADirectory` error.
    async fn create(&self, path: &VirtualPath, mode: UploadMode) -> io::Result<Box<dyn Upload>>;

    /// Opens the listing of the directory `dir`, read as it goes on the caller's thread.
    async fn list(&self, dir: &VirtualPath) -> io::Result<Listing>;

    /// Creates one directory; its parent must exist.
    async fn create_dir(&self, path: &VirtualPath) -> io::Result<()>;

    /// Removes an empty directory (a directory with entries is a `DirectoryNotEmpty`
    /// error). Removing the root is refused.
    async fn remove_dir(&self, path: &VirtualPath) -> io::Result<()>;

    /// Removes a file (a directory is an `IsADirectory` error).
    async fn remove_file(&self, path: &VirtualPath) -> io::Result<()>;

    /// Renames `from` to `to`, replacing a file at `to`. Renaming the root, or onto it,
    /// is refused.
    async fn rename(&self, from: &VirtualPath, to: &VirtualPath) -> io::Result<()>;

    /// Sets the modification time of a file or directory.
    async fn set_modified(&self, path: &VirtualPath, time: SystemTime) -> io::Result<()>;

    /// Whether [`Storage::set_modified`] can work here (`FEAT` lists `MFMT` only then).
    fn sets_modification_times(&self) -> bool {
        true
    }

    /// Sets the permission bits (`rwx` only) of a file or directory. Backends without
    /// permission bits answer `Unsupported`.
    async fn set_mode(&self, path: &VirtualPath, mode: u32) -> io::Result<()> {
        let _ = (path, mode);
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this storage has no permission bits",
        ))
    }
}

/// What kind of object an [`Entry`] describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link that points outside the root, dangles, or cannot be followed.
    Symlink,
    /// Anything else: sockets, FIFOs, devices.
    Other,
}

/// Metadata of one directory entry or path.
///
/// The Unix fields (`mode` to `ino`) are what `ls -l` and the RFC 3659 `unique` and
/// `UNIX.mode` facts show; a backend without them fills in what a listing should show
/// (see its documentation).
#[derive(Clone, Debug)]
pub struct Entry {
    /// The name (for a stat of a path: its last component, "/" for the root).
    pub name: OsString,
    /// The kind after following a symlink that stays inside the root; `Symlink` if it
    /// points outside or dangles.
    pub kind: EntryKind,
    /// Size in bytes (of the link target when a symlink was followed).
    pub size: u64,
    /// Last modification time.
    pub modified: SystemTime,
    /// Unix permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Number of hard links.
    pub nlink: u64,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Device number, for the RFC 3659 "unique" fact.
    pub dev: u64,
    /// Inode number, for the RFC 3659 "unique" fact.
    pub ino: u64,
    /// The readlink result when the entry is a symlink on disk (followed or not), for
    /// display only. `None` for absolute targets, which are never revealed.
    pub link_target: Option<PathBuf>,
}

/// How [`Storage::create`] starts an upload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UploadMode {
    /// `STOR`: the file appears (or replaces the old one) only on commit; an upload that
    /// does not complete leaves `path` as it was.
    Replace,
    /// `APPE`: appends to the file (created if missing). What arrived before a failure
    /// stays, so that the client can resume.
    Append,
    /// `REST` + `STOR`: writes from the offset on, keeping what is before it. An offset
    /// past the end is an `InvalidInput` error.
    At(u64),
    /// `STOU`: a new file; `AlreadyExists` if anything has the name. The file is removed
    /// unless the upload completes.
    CreateNew,
}

/// The bytes of a download, from its offset to the end, read on the transfer's thread.
pub struct Download {
    source: DownloadSource,
    /// Bytes from the offset to the end.
    remaining: u64,
}

/// Where a [`Download`]'s bytes come from.
pub(crate) enum DownloadSource {
    /// A local file, positioned at the offset: a clear binary transfer hands it to the
    /// kernel (`sendfile`).
    File(std::fs::File),
    /// Any other source.
    Reader(Box<dyn Read + Send>),
    /// The whole rest of a small file, already read: sent without a blocking thread.
    Memory(io::Cursor<Vec<u8>>),
}

impl Download {
    /// A local file positioned at the offset, with `remaining` bytes after it.
    pub fn from_file(file: std::fs::File, remaining: u64) -> Download {
        Download {
            source: DownloadSource::File(file),
            remaining,
        }
    }

    /// A stream of `remaining` bytes. Its `read` is called on a blocking thread.
    pub fn from_reader(reader: Box<dyn Read + Send>, remaining: u64) -> Download {
        Download {
            source: DownloadSource::Reader(reader),
            remaining,
        }
    }

    /// The rest of a file, already read into memory (a small file: the transfer then needs
    /// no blocking thread).
    pub fn from_bytes(bytes: Vec<u8>) -> Download {
        Download {
            remaining: bytes.len() as u64,
            source: DownloadSource::Memory(io::Cursor::new(bytes)),
        }
    }

    /// Bytes from the offset to the end of the file.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// The bytes still to send when they are already in memory.
    pub(crate) fn in_memory(&self) -> Option<&[u8]> {
        match &self.source {
            DownloadSource::Memory(bytes) => {
                let at = (bytes.position() as usize).min(bytes.get_ref().len());
                Some(&bytes.get_ref()[at..])
            }
            _ => None,
        }
    }

    pub(crate) fn into_source(self) -> DownloadSource {
        self.source
    }
}

impl Read for Download {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.source.read(buf)
    }
}

impl Read for DownloadSource {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            DownloadSource::File(file) => file.read(buf),
            DownloadSource::Reader(reader) => reader.read(buf),
            DownloadSource::Memory(bytes) => bytes.read(buf),
        }
    }
}

impl fmt::Debug for Download {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.source {
            DownloadSource::File(_) => "file",
            DownloadSource::Reader(_) => "reader",
            DownloadSource::Memory(_) => "memory",
        };
        f.debug_struct("Download")
            .field("source", &kind)
            .field("remaining", &self.remaining)
            .finish()
    }
}

/// An upload in progress. Its methods block, and are called on the transfer's thread.
///
/// Dropping an upload without [`Upload::commit`] abandons it, as its [`UploadMode`] says:
/// a `Replace` or `CreateNew` upload leaves nothing behind.
pub trait Upload: Send {
    /// Writes the next bytes.
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;

    /// The whole file has arrived: makes it durable and visible under its name. Only
    /// after this returns `Ok` may the client be told `226`.
    fn commit(self: Box<Self>) -> io::Result<()>;
}

/// A directory's entries (not `.` and `..`), produced as they are read. An entry that
/// vanished while listing is skipped; an `Err` ends the listing as failed.
pub type Listing = Box<dyn Iterator<Item = io::Result<Entry>> + Send>;

/// A directory rename that would move more objects than a backend renames at once.
#[derive(Debug)]
pub struct TooManyObjects {
    /// The configured limit (`max_rename_objects`).
    pub max: usize,
}

impl fmt::Display for TooManyObjects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the directory holds more than {} objects, the most this server renames",
            self.max
        )
    }
}

impl std::error::Error for TooManyObjects {}

/// The storage itself failed (an object store unreachable, timing out, answering 5xx or
/// refusing the server's credentials), not the request: answered `451`, and logged with
/// its detail, which never reaches the client.
#[derive(Debug)]
pub struct StorageUnavailable {
    detail: String,
}

impl StorageUnavailable {
    /// A failure described by `detail` (for the log).
    pub fn new(detail: impl Into<String>) -> StorageUnavailable {
        StorageUnavailable {
            detail: detail.into(),
        }
    }

    /// Whether `e` carries a [`StorageUnavailable`].
    pub fn is(e: &io::Error) -> bool {
        e.get_ref()
            .is_some_and(|inner| inner.is::<StorageUnavailable>())
    }
}

impl fmt::Display for StorageUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "storage unavailable: {}", self.detail)
    }
}

impl std::error::Error for StorageUnavailable {}
