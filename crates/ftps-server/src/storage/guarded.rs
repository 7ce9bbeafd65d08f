//! A user's storage behind the user's permissions per path ([`crate::permissions`]).
//!
//! Every command reaches the user's files through [`Storage`], so checking here covers
//! each of them, on every backend, before anything changes: a refusal is a
//! `PermissionDenied` error (`550 Permission denied.`), and a transfer is refused before its
//! data connection is used. Only users with rules get this wrapper; the others pay nothing.
//!
//! Looking at a path (`CWD`, `SIZE`, `MDTM`, `MLST`) is not restricted: `list` governs the
//! listings of a directory's entries, so that a write-only drop folder can still be entered.

use std::io;
use std::sync::Arc;
use std::time::SystemTime;

use super::{Download, Entry, EntryKind, Listing, Storage, Upload, UploadMode, VirtualPath};
use crate::permissions::{PathPermissions, Permission};
use crate::policy::Access;

/// `inner`, allowing only what the rules allow.
#[derive(Debug)]
pub struct GuardedStorage {
    inner: Arc<dyn Storage>,
    rules: Arc<PathPermissions>,
    access: Access,
}

impl GuardedStorage {
    /// Wraps `inner`: `rules` decide, and `access` where no rule covers a path.
    pub fn new(inner: Arc<dyn Storage>, rules: Arc<PathPermissions>, access: Access) -> Self {
        GuardedStorage {
            inner,
            rules,
            access,
        }
    }

    /// `Ok` if every permission in `needed` is allowed at `path`.
    fn require(&self, path: &VirtualPath, needed: &[Permission]) -> io::Result<()> {
        let allowed = self.rules.allowed_at(self.access, path);
        match needed.iter().find(|p| !allowed.contains(**p)) {
            None => Ok(()),
            Some(missing) => {
                tracing::info!(path = %path, permission = %missing, "refused by the user's permissions");
                Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("no {missing} permission"),
                ))
            }
        }
    }

    /// Whether a regular file is at `path` (an upload to it changes an existing file).
    async fn file_exists(&self, path: &VirtualPath) -> io::Result<bool> {
        match self.inner.metadata(path).await {
            Ok(entry) => Ok(entry.kind == EntryKind::File),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[async_trait::async_trait]
impl Storage for GuardedStorage {
    async fn metadata(&self, path: &VirtualPath) -> io::Result<Entry> {
        self.inner.metadata(path).await
    }

    async fn open_read(&self, path: &VirtualPath, offset: u64) -> io::Result<Download> {
        self.require(path, &[Permission::Download])?;
        self.inner.open_read(path, offset).await
    }

    async fn create(&self, path: &VirtualPath, mode: UploadMode) -> io::Result<Box<dyn Upload>> {
        let changes_existing =
            !matches!(mode, UploadMode::CreateNew) && self.file_exists(path).await?;
        if changes_existing {
            self.require(path, &[Permission::Upload, Permission::Overwrite])?;
        } else {
            self.require(path, &[Permission::Upload])?;
        }
        self.inner.create(path, mode).await
    }

    async fn list(&self, dir: &VirtualPath) -> io::Result<Listing> {
        self.require(dir, &[Permission::List])?;
        self.inner.list(dir).await
    }

    async fn create_dir(&self, path: &VirtualPath) -> io::Result<()> {
        self.require(path, &[Permission::Mkdir])?;
        self.inner.create_dir(path).await
    }

    async fn remove_dir(&self, path: &VirtualPath) -> io::Result<()> {
        self.require(path, &[Permission::Rmdir])?;
        self.inner.remove_dir(path).await
    }

    async fn remove_file(&self, path: &VirtualPath) -> io::Result<()> {
        self.require(path, &[Permission::Delete])?;
        self.inner.remove_file(path).await
    }

    async fn rename(&self, from: &VirtualPath, to: &VirtualPath) -> io::Result<()> {
        self.require(from, &[Permission::Rename])?;
        if self.file_exists(to).await? {
            self.require(to, &[Permission::Rename, Permission::Overwrite])?;
        } else {
            self.require(to, &[Permission::Rename])?;
        }
        self.inner.rename(from, to).await
    }

    async fn set_modified(&self, path: &VirtualPath, time: SystemTime) -> io::Result<()> {
        self.require(path, &[Permission::Chmod])?;
        self.inner.set_modified(path, time).await
    }

    fn sets_modification_times(&self) -> bool {
        self.inner.sets_modification_times()
    }

    async fn set_mode(&self, path: &VirtualPath, mode: u32) -> io::Result<()> {
        self.require(path, &[Permission::Chmod])?;
        self.inner.set_mode(path, mode).await
    }
}
