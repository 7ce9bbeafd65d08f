//! A user's root directory that no path can escape.
//!
//! Every local user's files are reached through a [`Root`], an opened directory handle. All paths are
//! resolved relative to that handle by cap-std, which walks them with `openat2(RESOLVE_BENEATH)`
//! (or an equivalent component-by-component walk), so `..`, absolute paths and symbolic links
//! that lead outside fail with an error instead of reaching the host file system. The lexical
//! normalisation in [`VirtualPath`] is only the client's view, not the security boundary.

mod chmod;
#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::io::{self, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use cap_std::fs::{Dir, Metadata, MetadataExt, OpenOptions, OpenOptionsExt};

use crate::storage::{Entry, EntryKind, VirtualPath};

/// How [`Root::open_write`] opens a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// Create or truncate (STOR).
    Truncate,
    /// Create or append (APPE).
    Append,
    /// Open existing-or-new without truncation and seek to the offset (REST + STOR).
    /// An offset past the end is an `InvalidInput` error.
    At(u64),
    /// Create a new file; fail with `AlreadyExists` if anything is there (STOU).
    CreateNew,
}

/// A user's root directory: every path is resolved beneath it and cannot leave it.
#[derive(Clone, Debug)]
pub struct Root {
    dir: Arc<Dir>,
}

/// How many random names [`Root::create_temp_beside`] tries before giving up.
const TEMP_ATTEMPTS: usize = 16;

/// The names of temporary upload files: `.ftpsd-upload.<16 hex digits>.part`.
pub fn is_temp_upload_name(name: &str) -> bool {
    name.strip_prefix(".ftpsd-upload.")
        .and_then(|rest| rest.strip_suffix(".part"))
        .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A [`Root`] that may have been closed: all sessions of a root share one directory handle,
/// so a server holds one descriptor per root in use rather than one per session.
#[derive(Clone, Debug)]
pub struct WeakRoot {
    dir: std::sync::Weak<Dir>,
}

impl WeakRoot {
    /// The root, if some session still has it open.
    pub fn upgrade(&self) -> Option<Root> {
        self.dir.upgrade().map(|dir| Root { dir })
    }
}

/// Open roots by host path, shared between sessions.
#[derive(Debug, Default)]
pub struct RootCache {
    open: std::sync::Mutex<std::collections::HashMap<std::path::PathBuf, WeakRoot>>,
}

impl RootCache {
    /// The open root for `path`, or a newly opened one.
    ///
    /// An open handle is shared only while `path` still names the directory it was opened
    /// on (same device and inode): after an administrator moves a user's directory away and
    /// creates a new one, new logins get the new one, not the old tree.
    pub fn open(&self, path: &Path) -> io::Result<Root> {
        let current = std::fs::metadata(path)?;
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(root) = open.get(path).and_then(WeakRoot::upgrade) {
            if root.is_directory(&current)? {
                return Ok(root);
            }
        }
        let root = Root::open(path)?;
        // Forget roots nobody uses any more, so the map stays as small as the roots in use.
        open.retain(|_, weak| weak.dir.strong_count() > 0);
        open.insert(path.to_path_buf(), root.downgrade());
        Ok(root)
    }
}

impl Root {
    /// Opens `path` as a root. This is the only use of ambient authority, done once at login.
    pub fn open(path: &Path) -> io::Result<Root> {
        let dir = Dir::open_ambient_dir(path, cap_std::ambient_authority())?;
        Ok(Root { dir: Arc::new(dir) })
    }

    /// Whether this handle is the directory `meta` describes (same device and inode).
    fn is_directory(&self, meta: &std::fs::Metadata) -> io::Result<bool> {
        use std::os::unix::fs::MetadataExt as _;
        let mine = self.dir.dir_metadata()?;
        Ok(mine.dev() == meta.dev() && mine.ino() == meta.ino())
    }

    /// Syncs the directory that holds `p`, so that a new or renamed entry survives a crash.
    pub fn sync_dir_of_blocking(&self, p: &VirtualPath) -> io::Result<()> {
        let parent = p.parent();
        let rel = if parent.is_root() {
            Path::new(".")
        } else {
            parent.relative()
        };
        // A readable descriptor: the directory handles themselves are O_PATH, which fsync
        // refuses.
        let mut options = OpenOptions::new();
        options.read(true).custom_flags(libc::O_DIRECTORY);
        self.dir.open_with(rel, &options)?.into_std().sync_all()
    }

    /// A handle that does not keep the directory open.
    pub fn downgrade(&self) -> WeakRoot {
        WeakRoot {
            dir: Arc::downgrade(&self.dir),
        }
    }

    /// Metadata of `p`, following a symlink that stays inside the root.
    pub async fn metadata(&self, p: &VirtualPath) -> io::Result<Entry> {
        let p = p.clone();
        self.blocking(move |root| root.metadata_blocking(&p)).await
    }

    /// Opens a regular file for reading, positioned at `offset`.
    ///
    /// A directory or other non-regular file is an `InvalidInput` error, as is an offset
    /// past the end of the file.
    pub async fn open_read(&self, p: &VirtualPath, offset: u64) -> io::Result<tokio::fs::File> {
        let p = p.clone();
        let file = self
            .blocking(move |root| root.open_read_blocking(&p, offset))
            .await?
            .0;
        Ok(tokio::fs::File::from_std(file))
    }

    /// Opens a regular file for writing as `mode` says, creating it if needed.
    ///
    /// Flush the returned file before dropping it: tokio finishes writes in the background,
    /// and only `flush` reports their errors.
    pub async fn open_write(
        &self,
        p: &VirtualPath,
        mode: WriteMode,
    ) -> io::Result<tokio::fs::File> {
        let p = p.clone();
        let file = self
            .blocking(move |root| root.open_write_blocking(&p, mode))
            .await?;
        Ok(tokio::fs::File::from_std(file))
    }

    /// Atomic upload: create a hidden temporary file next to `p` (same directory, name like
    /// `.ftpsd-upload.<random>.part`), return it and its VirtualPath. An existing directory
    /// at `p` is an `IsADirectory` error, found now rather than when renaming.
    ///
    /// Rename it over `p` with [`Root::rename`] once the upload is complete.
    pub async fn create_temp_beside(
        &self,
        p: &VirtualPath,
    ) -> io::Result<(tokio::fs::File, VirtualPath)> {
        let p = p.clone();
        let (file, temp) = self
            .blocking(move |root| root.create_temp_blocking(&p))
            .await?;
        Ok((tokio::fs::File::from_std(file), temp))
    }

    /// Renames `from` to `to`, replacing an existing file at `to` like rename(2).
    /// Renaming the root, or onto it, is refused.
    pub async fn rename(&self, from: &VirtualPath, to: &VirtualPath) -> io::Result<()> {
        let (from, to) = (from.clone(), to.clone());
        self.blocking(move |root| root.rename_blocking(&from, &to))
            .await
    }

    /// Blocking version of [`Root::rename`], for use inside spawn_blocking.
    pub fn rename_blocking(&self, from: &VirtualPath, to: &VirtualPath) -> io::Result<()> {
        if from.is_root() || to.is_root() {
            return Err(refused("cannot rename the root directory"));
        }
        self.dir.rename(from.relative(), &self.dir, to.relative())
    }

    /// Removes a file (or a symlink itself, never its target).
    pub async fn remove_file(&self, p: &VirtualPath) -> io::Result<()> {
        let p = p.clone();
        self.blocking(move |root| root.remove_file_blocking(&p))
            .await
    }

    /// Blocking version of [`Root::remove_file`], for use inside spawn_blocking.
    pub fn remove_file_blocking(&self, p: &VirtualPath) -> io::Result<()> {
        self.dir.remove_file(p.relative())
    }

    /// Creates one directory; its parent must exist.
    pub async fn create_dir(&self, p: &VirtualPath) -> io::Result<()> {
        let p = p.clone();
        self.blocking(move |root| root.dir.create_dir(p.relative()))
            .await
    }

    /// Removes an empty directory. Removing the root is refused.
    pub async fn remove_dir(&self, p: &VirtualPath) -> io::Result<()> {
        if p.is_root() {
            return Err(refused("cannot remove the root directory"));
        }
        let p = p.clone();
        self.blocking(move |root| root.dir.remove_dir(p.relative()))
            .await
    }

    /// Sets the modification time of a file or directory (following inside symlinks).
    pub async fn set_modified(&self, p: &VirtualPath, t: SystemTime) -> io::Result<()> {
        let p = p.clone();
        self.blocking(move |root| root.set_modified_blocking(&p, t))
            .await
    }

    /// Blocking, for use inside spawn_blocking by a listing producer: iterate a directory's
    /// entries (not . or ..) without collecting them all, calling `f` per entry; stop early
    /// if `f` returns false. Entries whose metadata can't be read are skipped. Symlink
    /// entries: follow if the target stays inside root (report the target's kind/size),
    /// else kind Symlink.
    pub fn for_each_entry_blocking(
        &self,
        dir: &VirtualPath,
        mut f: impl FnMut(Entry) -> bool,
    ) -> io::Result<()> {
        for entry in self.entries_blocking(dir)? {
            if !f(entry) {
                break;
            }
        }
        Ok(())
    }

    /// Blocking: the entries of the directory `dir` (not . or ..), read as the iterator
    /// goes, as [`Root::for_each_entry_blocking`] describes them.
    pub fn entries_blocking(&self, dir: &VirtualPath) -> io::Result<Entries> {
        let items = self.dir.read_dir(dir.relative())?;
        Ok(Entries {
            root: self.clone(),
            dir: dir.clone(),
            items,
        })
    }

    /// Blocking version of [`Root::metadata`], for use inside spawn_blocking.
    pub fn metadata_blocking(&self, p: &VirtualPath) -> io::Result<Entry> {
        let name = OsString::from(p.file_name().unwrap_or("/"));
        let rel = p.relative();
        let lmeta = self.dir.symlink_metadata(rel)?;
        if lmeta.is_symlink() {
            Ok(self.follow_link(rel, name, &lmeta))
        } else {
            Ok(make_entry(name, &lmeta, None))
        }
    }

    /// Describes the symlink at `rel` by its target if that resolves inside the root,
    /// otherwise as the link itself (kind `Symlink`).
    fn follow_link(&self, rel: &Path, name: OsString, lmeta: &Metadata) -> Entry {
        let target = self.dir.read_link(rel).ok();
        match self.dir.metadata(rel) {
            Ok(meta) => make_entry(name, &meta, target),
            Err(_) => make_entry(name, lmeta, target),
        }
    }

    /// Blocking version of [`Root::open_read`]; also returns the file's length.
    pub fn open_read_blocking(
        &self,
        p: &VirtualPath,
        offset: u64,
    ) -> io::Result<(std::fs::File, u64)> {
        let rel = p.relative();
        // Checked before opening, so that the usual refusal costs no open.
        ensure_regular(&self.dir.metadata(rel)?)?;
        let (mut file, len) = self.open_regular_blocking(rel)?;
        seek_within(&mut file, offset, len)?;
        Ok((file, len))
    }

    /// Opens `rel` for reading if it is a regular file, with its length. Opened
    /// non-blocking (which changes nothing for a regular file): a FIFO swapped in for the
    /// file after a check cannot block the thread waiting for a writer, and is refused.
    fn open_regular_blocking(&self, rel: &Path) -> io::Result<(std::fs::File, u64)> {
        let mut options = OpenOptions::new();
        options.read(true).custom_flags(NON_BLOCKING);
        let file = self.dir.open_with(rel, &options)?.into_std();
        let len = regular_len(&file)?;
        Ok((file, len))
    }

    /// Blocking version of [`Root::open_write`].
    pub fn open_write_blocking(
        &self,
        p: &VirtualPath,
        mode: WriteMode,
    ) -> io::Result<std::fs::File> {
        let rel = p.relative();
        // O_EXCL never opens an existing object, so only the other modes need the check.
        if mode != WriteMode::CreateNew {
            match self.dir.metadata(rel) {
                Ok(meta) => ensure_regular(&meta)?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if matches!(mode, WriteMode::At(offset) if offset > 0) {
                        return Err(past_end());
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let mut file = self.dir.open_with(rel, &write_options(mode))?.into_std();
        let len = regular_len(&file)?;
        if let WriteMode::At(offset) = mode {
            seek_within(&mut file, offset, len)?;
        }
        Ok(file)
    }

    /// Blocking version of [`Root::create_temp_beside`].
    pub fn create_temp_blocking(
        &self,
        p: &VirtualPath,
    ) -> io::Result<(std::fs::File, VirtualPath)> {
        if self
            .metadata_blocking(p)
            .is_ok_and(|e| e.kind == EntryKind::Dir)
        {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory",
            ));
        }
        let dir = p.parent();
        for _ in 0..TEMP_ATTEMPTS {
            let name = format!(".ftpsd-upload.{:016x}.part", rand::random::<u64>());
            debug_assert!(is_temp_upload_name(&name));
            let temp = dir.join(&name);
            match self.open_write_blocking(&temp, WriteMode::CreateNew) {
                Ok(file) => return Ok((file, temp)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "could not find a free temporary file name",
        ))
    }

    fn set_modified_blocking(&self, p: &VirtualPath, t: SystemTime) -> io::Result<()> {
        let rel = p.relative();
        let meta = self.dir.metadata(rel)?;
        if !meta.is_dir() {
            ensure_regular(&meta)?;
        }
        // A read-only descriptor is enough for futimens, and works for directories too.
        self.dir.open(rel)?.into_std().set_modified(t)
    }

    /// Removes the temporary upload files (see [`is_temp_upload_name`]) anywhere below the
    /// root: what uploads in progress leave behind when the server is killed. Symbolic
    /// links are not followed. Returns how many were removed.
    pub fn remove_temp_uploads_blocking(&self) -> io::Result<usize> {
        let mut removed = 0;
        let mut dirs = vec![PathBuf::new()];
        while let Some(dir) = dirs.pop() {
            let entries = if dir.as_os_str().is_empty() {
                self.dir.entries()
            } else {
                self.dir.read_dir(&dir)
            };
            // A directory that cannot be read is skipped, not fatal.
            let Ok(entries) = entries else { continue };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let path = dir.join(&name);
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if kind.is_dir() {
                    dirs.push(path);
                } else if kind.is_file()
                    && name.to_str().is_some_and(is_temp_upload_name)
                    && self.dir.remove_file(&path).is_ok()
                {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// Runs `f` on a blocking thread with a clone of this root.
    pub(super) async fn blocking<T, F>(&self, f: F) -> io::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Root) -> io::Result<T> + Send + 'static,
    {
        let root = self.clone();
        tokio::task::spawn_blocking(move || f(&root))
            .await
            .map_err(io::Error::other)?
    }
}

/// The entries of one directory, read as they are asked for ([`Root::entries_blocking`]).
pub struct Entries {
    root: Root,
    dir: VirtualPath,
    items: cap_std::fs::ReadDir,
}

impl Iterator for Entries {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        loop {
            // An entry that vanished or can't be read is skipped, not fatal for the listing.
            let Ok(item) = self.items.next()? else {
                continue;
            };
            let name = item.file_name();
            let Ok(lmeta) = item.metadata() else { continue };
            return Some(if lmeta.is_symlink() {
                // Follow from the root, not from this directory, so that a link such as
                // "../x" that stays inside the root still resolves.
                let rel = child_relative(&self.dir, &name);
                self.root.follow_link(&rel, name, &lmeta)
            } else {
                make_entry(name, &lmeta, None)
            });
        }
    }
}

/// The path of `name` inside `dir`, relative to the root handle.
fn child_relative(dir: &VirtualPath, name: &OsString) -> PathBuf {
    if dir.is_root() {
        PathBuf::from(name)
    } else {
        dir.relative().join(name)
    }
}

fn make_entry(name: OsString, meta: &Metadata, link_target: Option<PathBuf>) -> Entry {
    Entry {
        name,
        kind: kind_of(meta),
        size: meta.len(),
        modified: meta
            .modified()
            .map(|t| t.into_std())
            .unwrap_or(SystemTime::UNIX_EPOCH),
        mode: meta.mode() & 0o7777,
        nlink: meta.nlink(),
        uid: meta.uid(),
        gid: meta.gid(),
        dev: meta.dev(),
        ino: meta.ino(),
        link_target,
    }
}

fn kind_of(meta: &Metadata) -> EntryKind {
    let ty = meta.file_type();
    if ty.is_file() {
        EntryKind::File
    } else if ty.is_dir() {
        EntryKind::Dir
    } else if ty.is_symlink() {
        EntryKind::Symlink
    } else {
        EntryKind::Other
    }
}

/// Opening a FIFO never waits for its other end (see `open_read_blocking`).
const NON_BLOCKING: i32 = libc::O_NONBLOCK;

fn write_options(mode: WriteMode) -> OpenOptions {
    let mut options = OpenOptions::new();
    options.custom_flags(NON_BLOCKING);
    match mode {
        WriteMode::Truncate => options.write(true).create(true).truncate(true),
        WriteMode::Append => options.append(true).create(true),
        WriteMode::At(_) => options.write(true).create(true),
        WriteMode::CreateNew => options.write(true).create_new(true),
    };
    options
}

fn ensure_regular(meta: &Metadata) -> io::Result<()> {
    require_regular(meta.is_file(), meta.is_dir())
}

/// The length of an opened file, re-checking that it is regular: the object may have been
/// swapped between the path check and the open.
fn regular_len(file: &std::fs::File) -> io::Result<u64> {
    let meta = file.metadata()?;
    require_regular(meta.is_file(), meta.is_dir())?;
    Ok(meta.len())
}

fn require_regular(is_file: bool, is_dir: bool) -> io::Result<()> {
    match (is_file, is_dir) {
        (true, _) => Ok(()),
        (false, true) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "is a directory",
        )),
        (false, false) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        )),
    }
}

fn seek_within(file: &mut std::fs::File, offset: u64, len: u64) -> io::Result<()> {
    if offset > len {
        return Err(past_end());
    }
    file.seek(SeekFrom::Start(offset))?;
    Ok(())
}

fn past_end() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "offset is past the end of the file",
    )
}

fn refused(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, msg)
}
