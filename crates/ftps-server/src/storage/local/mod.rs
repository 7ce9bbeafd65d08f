//! The local backend: a user's directory on this machine, reached through a [`Root`] that no
//! path escapes (see [`root`]).
//!
//! An upload that replaces a file (`STOR`) goes to a hidden temporary file beside it
//! (`.ftpsd-upload.<random>.part`), which is synced, renamed over the target and its
//! directory synced on commit, so a broken upload never replaces or imitates a complete
//! file and a `226` survives a power cut; the server removes such files left by a crash at
//! start. `APPE` and `REST`+`STOR` write in place, as resuming requires.

pub mod root;

pub use root::{is_temp_upload_name, Entries, Root, RootCache, WeakRoot, WriteMode};

use std::io::{self, Read, Write};
use std::time::SystemTime;

use super::{Download, Entry, Listing, Storage, Upload, UploadMode, VirtualPath};

/// Downloads of at most this many bytes are read into memory when the file is opened and
/// sent from the runtime, without a blocking thread of their own: for a file of a few KiB
/// the hand-off to that thread and back costs more than the read.
pub const INLINE_DOWNLOAD: u64 = 64 * 1024;

/// A [`Storage`] on a local directory.
#[derive(Clone, Debug)]
pub struct LocalStorage {
    root: Root,
}

impl LocalStorage {
    /// The storage of the directory `root` opened.
    pub fn new(root: Root) -> LocalStorage {
        LocalStorage { root }
    }

    /// The directory handle.
    pub fn root(&self) -> &Root {
        &self.root
    }
}

#[async_trait::async_trait]
impl Storage for LocalStorage {
    async fn metadata(&self, path: &VirtualPath) -> io::Result<Entry> {
        self.root.metadata(path).await
    }

    /// A small file is read whole here, on the blocking thread that opens it, so that its
    /// transfer needs no second trip through the blocking pool (see [`INLINE_DOWNLOAD`]).
    async fn open_read(&self, path: &VirtualPath, offset: u64) -> io::Result<Download> {
        let path = path.clone();
        self.root
            .blocking(move |root| {
                let (file, len) = root.open_read_blocking(&path, offset)?;
                let remaining = len - offset;
                if remaining <= INLINE_DOWNLOAD {
                    let mut bytes = Vec::with_capacity(remaining as usize);
                    (&file).take(remaining).read_to_end(&mut bytes)?;
                    return Ok(Download::from_bytes(bytes));
                }
                Ok(Download::from_file(file, remaining))
            })
            .await
    }

    async fn create(&self, path: &VirtualPath, mode: UploadMode) -> io::Result<Box<dyn Upload>> {
        let path = path.clone();
        self.root
            .blocking(move |root| {
                let upload = match mode {
                    UploadMode::Replace => {
                        let (file, temp) = root.create_temp_blocking(&path)?;
                        LocalUpload::new(root, file, temp, Publish::RenameTo(path))
                    }
                    UploadMode::Append => {
                        let file = root.open_write_blocking(&path, WriteMode::Append)?;
                        LocalUpload::new(root, file, path, Publish::InPlace)
                    }
                    UploadMode::At(offset) => {
                        let file = root.open_write_blocking(&path, WriteMode::At(offset))?;
                        LocalUpload::new(root, file, path, Publish::InPlace)
                    }
                    UploadMode::CreateNew => {
                        let file = root.open_write_blocking(&path, WriteMode::CreateNew)?;
                        LocalUpload::new(root, file, path, Publish::NewFile)
                    }
                };
                Ok(Box::new(upload) as Box<dyn Upload>)
            })
            .await
    }

    /// The directory is opened by the first `next`, on the transfer's thread: the caller
    /// has just seen that it is a directory, and a trip through the blocking pool here
    /// would cost each listing a wake-up for nothing.
    async fn list(&self, dir: &VirtualPath) -> io::Result<Listing> {
        Ok(Box::new(LazyEntries {
            root: self.root.clone(),
            dir: Some(dir.clone()),
            entries: None,
        }))
    }

    async fn create_dir(&self, path: &VirtualPath) -> io::Result<()> {
        self.root.create_dir(path).await
    }

    async fn remove_dir(&self, path: &VirtualPath) -> io::Result<()> {
        self.root.remove_dir(path).await
    }

    async fn remove_file(&self, path: &VirtualPath) -> io::Result<()> {
        self.root.remove_file(path).await
    }

    async fn rename(&self, from: &VirtualPath, to: &VirtualPath) -> io::Result<()> {
        self.root.rename(from, to).await
    }

    async fn set_modified(&self, path: &VirtualPath, time: SystemTime) -> io::Result<()> {
        self.root.set_modified(path, time).await
    }

    async fn set_mode(&self, path: &VirtualPath, mode: u32) -> io::Result<()> {
        self.root.set_mode(path, mode).await
    }
}

/// A directory's entries, opened when first asked for.
struct LazyEntries {
    root: Root,
    /// The directory, until it is opened.
    dir: Option<VirtualPath>,
    entries: Option<Entries>,
}

impl Iterator for LazyEntries {
    type Item = io::Result<Entry>;

    fn next(&mut self) -> Option<io::Result<Entry>> {
        if let Some(dir) = self.dir.take() {
            match self.root.entries_blocking(&dir) {
                Ok(entries) => self.entries = Some(entries),
                Err(e) => return Some(Err(e)),
            }
        }
        self.entries.as_mut()?.next().map(Ok)
    }
}

/// How a local upload's file becomes the published file.
enum Publish {
    /// A temporary file, renamed over this path on commit and removed otherwise (`STOR`).
    RenameTo(VirtualPath),
    /// The file itself, under its name, kept as it is if the upload fails (`APPE`,
    /// `REST`+`STOR`: the client resumes from what arrived).
    InPlace,
    /// A new file under its final name, removed unless committed (`STOU`).
    NewFile,
}

/// An upload to a local file.
struct LocalUpload {
    root: Root,
    file: std::fs::File,
    /// The file being written.
    written: VirtualPath,
    publish: Publish,
    committed: bool,
}

impl LocalUpload {
    fn new(root: &Root, file: std::fs::File, written: VirtualPath, publish: Publish) -> Self {
        LocalUpload {
            root: root.clone(),
            file,
            written,
            publish,
            committed: false,
        }
    }
}

impl Upload for LocalUpload {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)
    }

    /// Syncs the file, renames it into place if it is a temporary file, and syncs its
    /// directory, so that the name survives a crash once the client is told `226`.
    fn commit(mut self: Box<Self>) -> io::Result<()> {
        self.file.sync_all()?;
        let published = match &self.publish {
            Publish::RenameTo(target) => {
                self.root.rename_blocking(&self.written, target)?;
                target.clone()
            }
            Publish::InPlace | Publish::NewFile => self.written.clone(),
        };
        self.committed = true;
        self.root.sync_dir_of_blocking(&published)
    }
}

impl Drop for LocalUpload {
    /// Removes the file of an upload that did not complete, before its failure is reported
    /// (one unlink, on the failure path only, so it is done in place).
    fn drop(&mut self) {
        if !self.committed && !matches!(self.publish, Publish::InPlace) {
            let _ = self.root.remove_file_blocking(&self.written);
        }
    }
}
