//! A user's storage under its quota ([`crate::quota`]): uploads claim their bytes as they
//! arrive and new files claim a place when they start, against the usage the user's
//! sessions share; an upload that would pass a limit fails with [`QuotaExceeded`] (reply
//! `552` with the figures) and leaves nothing behind. Deletes and renames over a file give
//! its place back.
//!
//! What a refused upload wrote must vanish, which is how every backend treats a `STOR` or
//! `STOU` that does not complete; `APPE` and `REST`+`STOR` are made of such an upload here,
//! as under a file size limit ([`create_limited`]): the old file's kept bytes are copied
//! into the new one, which replaces it only on commit. The claim of an upload that replaces
//! a file counts only what passes the old file's size, since the old file goes when the new
//! one arrives.

use std::io;
use std::sync::Arc;
use std::time::SystemTime;

use super::{
    create_limited, Download, Entry, EntryKind, Listing, Storage, Upload, UploadMode, VirtualPath,
};
use crate::quota::{QuotaExceeded, QuotaLimits, QuotaUsage, Usage};

/// `inner` (the user's own tree) under the quota `limits`, counting into `usage`.
#[derive(Debug)]
pub struct QuotaStorage {
    inner: Arc<dyn Storage>,
    usage: Arc<QuotaUsage>,
    limits: QuotaLimits,
}

impl QuotaStorage {
    /// `inner` under `limits`, with the usage the user's sessions share.
    pub fn new(inner: Arc<dyn Storage>, usage: Arc<QuotaUsage>, limits: QuotaLimits) -> Self {
        QuotaStorage {
            inner,
            usage,
            limits,
        }
    }

    /// The size of the regular file at `path`, `None` if there is none.
    async fn file_size(&self, path: &VirtualPath) -> io::Result<Option<u64>> {
        match self.inner.metadata(path).await {
            Ok(entry) if entry.kind == EntryKind::File => Ok(Some(entry.size)),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[async_trait::async_trait]
impl Storage for QuotaStorage {
    async fn metadata(&self, path: &VirtualPath) -> io::Result<Entry> {
        self.inner.metadata(path).await
    }

    async fn open_read(&self, path: &VirtualPath, offset: u64) -> io::Result<Download> {
        self.inner.open_read(path, offset).await
    }

    async fn create(&self, path: &VirtualPath, mode: UploadMode) -> io::Result<Box<dyn Upload>> {
        let old = match mode {
            UploadMode::CreateNew => None,
            _ => self.file_size(path).await?,
        };
        let start = match mode {
            UploadMode::Replace | UploadMode::CreateNew => 0,
            UploadMode::Append => old.unwrap_or(0),
            UploadMode::At(offset) => offset,
        };
        let credit = old.unwrap_or(0);
        // No room at all, and the first byte would need some: refused before any data.
        if start >= credit {
            if let Some(full) = self.usage.bytes_full(self.limits.bytes) {
                return Err(full.error());
            }
        }
        let mut claimed = Usage::default();
        if old.is_none() {
            self.usage
                .claim_file(self.limits.files)
                .map_err(QuotaExceeded::error)?;
            claimed.files = 1;
        }
        let mut upload = QuotaUpload {
            inner: None,
            usage: self.usage.clone(),
            limit: self.limits.bytes,
            start,
            credit,
            written: 0,
            claimed,
            new_file: old.is_none(),
        };
        let inner = match mode {
            UploadMode::Replace | UploadMode::CreateNew => self.inner.create(path, mode).await,
            // Rebuilt so that a refusal leaves the old file as it was.
            UploadMode::Append | UploadMode::At(_) => {
                create_limited(self.inner.as_ref(), path, mode, u64::MAX).await
            }
        }?;
        upload.inner = Some(inner);
        Ok(Box::new(upload))
    }

    async fn list(&self, dir: &VirtualPath) -> io::Result<Listing> {
        self.inner.list(dir).await
    }

    async fn create_dir(&self, path: &VirtualPath) -> io::Result<()> {
        self.inner.create_dir(path).await
    }

    async fn remove_dir(&self, path: &VirtualPath) -> io::Result<()> {
        self.inner.remove_dir(path).await
    }

    async fn remove_file(&self, path: &VirtualPath) -> io::Result<()> {
        let size = self.file_size(path).await?;
        self.inner.remove_file(path).await?;
        if let Some(size) = size {
            self.usage.settle(Usage::default(), -i128::from(size), -1);
        }
        Ok(())
    }

    async fn rename(&self, from: &VirtualPath, to: &VirtualPath) -> io::Result<()> {
        let replaced = if from == to {
            None
        } else {
            self.file_size(to).await?
        };
        self.inner.rename(from, to).await?;
        if let Some(size) = replaced {
            self.usage.settle(Usage::default(), -i128::from(size), -1);
        }
        Ok(())
    }

    async fn set_modified(&self, path: &VirtualPath, time: SystemTime) -> io::Result<()> {
        self.inner.set_modified(path, time).await
    }

    fn sets_modification_times(&self) -> bool {
        self.inner.sets_modification_times()
    }

    async fn set_mode(&self, path: &VirtualPath, mode: u32) -> io::Result<()> {
        self.inner.set_mode(path, mode).await
    }
}

/// An upload that claims its growth from the user's usage as it writes.
struct QuotaUpload {
    /// `None` once committed.
    inner: Option<Box<dyn Upload>>,
    usage: Arc<QuotaUsage>,
    limit: Option<u64>,
    /// Where the upload's bytes start in the file (the kept bytes of the old file).
    start: u64,
    /// The old file's size, which the new file replaces.
    credit: u64,
    /// Bytes the client sent so far.
    written: u64,
    /// What this upload holds of the usage until it ends.
    claimed: Usage,
    new_file: bool,
}

impl QuotaUpload {
    /// The file's size if the upload ended now.
    fn size(&self) -> u64 {
        self.start.saturating_add(self.written)
    }
}

impl Upload for QuotaUpload {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let Some(inner) = self.inner.as_mut() else {
            return Err(io::Error::other("the upload was committed"));
        };
        let size = self.start.saturating_add(self.written + bytes.len() as u64);
        let growth = size.saturating_sub(self.credit);
        if growth > self.claimed.bytes {
            self.usage
                .claim_bytes(growth - self.claimed.bytes, self.claimed.bytes, self.limit)
                .map_err(QuotaExceeded::error)?;
            self.claimed.bytes = growth;
        }
        inner.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> io::Result<()> {
        let Some(inner) = self.inner.take() else {
            return Err(io::Error::other("the upload was committed"));
        };
        let result = inner.commit();
        let claimed = std::mem::take(&mut self.claimed);
        match result {
            Ok(()) => {
                let change = i128::from(self.size()) - i128::from(self.credit);
                self.usage.settle(claimed, change, i64::from(self.new_file));
                Ok(())
            }
            Err(e) => {
                self.usage.settle(claimed, 0, 0);
                Err(e)
            }
        }
    }
}

impl Drop for QuotaUpload {
    fn drop(&mut self) {
        // Not committed: nothing changed, the claim goes back.
        let claimed = std::mem::take(&mut self.claimed);
        self.usage.settle(claimed, 0, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::measure;
    use crate::storage::local::{LocalStorage, Root};

    fn path(name: &str) -> VirtualPath {
        VirtualPath::root().join(name)
    }

    async fn fixture(
        limits: QuotaLimits,
        files: &[(&str, &[u8])],
    ) -> (tempfile::TempDir, Arc<QuotaUsage>, QuotaStorage) {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in files {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        let local: Arc<dyn Storage> = Arc::new(LocalStorage::new(Root::open(dir.path()).unwrap()));
        let usage = Arc::new(QuotaUsage::default());
        usage.count_once(local.as_ref()).await.unwrap();
        let storage = QuotaStorage::new(local, usage.clone(), limits);
        (dir, usage, storage)
    }

    async fn upload(
        s: &QuotaStorage,
        name: &str,
        mode: UploadMode,
        chunks: &[&[u8]],
    ) -> io::Result<()> {
        let mut up = s.create(&path(name), mode).await?;
        for chunk in chunks {
            up.write_all(chunk)?;
        }
        up.commit()
    }

    fn bytes(limit: u64) -> QuotaLimits {
        QuotaLimits {
            bytes: Some(limit),
            files: None,
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn uploads_count_and_a_refused_one_leaves_nothing() {
        let (dir, usage, s) = fixture(bytes(10), &[("a", b"1234")]).await;
        assert_eq!(usage.current(), Usage { bytes: 4, files: 1 });
        upload(&s, "b", UploadMode::Replace, &[b"12345"])
            .await
            .unwrap();
        assert_eq!(usage.current(), Usage { bytes: 9, files: 2 });
        let e = upload(&s, "c", UploadMode::Replace, &[b"12"])
            .await
            .unwrap_err();
        assert_eq!(
            QuotaExceeded::of(&e),
            Some(QuotaExceeded::Bytes { limit: 10, used: 9 })
        );
        assert!(!dir.path().join("c").exists());
        // APPE over the quota leaves the file as it was.
        let e = upload(&s, "a", UploadMode::Append, &[b"5", b"67"])
            .await
            .unwrap_err();
        assert!(QuotaExceeded::of(&e).is_some());
        assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), b"1234");
        assert_eq!(usage.current(), Usage { bytes: 9, files: 2 });
        // Replacing a file counts only the difference.
        upload(&s, "b", UploadMode::Replace, &[b"123456"])
            .await
            .unwrap();
        assert_eq!(
            usage.current(),
            Usage {
                bytes: 10,
                files: 2
            }
        );
        // Full: refused before any data.
        let e = s
            .create(&path("d"), UploadMode::CreateNew)
            .await
            .err()
            .unwrap();
        assert!(QuotaExceeded::of(&e).is_some());
        // Deleting gives room back; REST+STOR may shrink a file.
        s.remove_file(&path("b")).await.unwrap();
        assert_eq!(usage.current(), Usage { bytes: 4, files: 1 });
        upload(&s, "a", UploadMode::At(2), &[b"x"]).await.unwrap();
        assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), b"12x");
        assert_eq!(usage.current(), Usage { bytes: 3, files: 1 });
        assert_eq!(measure(&s).await.unwrap(), usage.current());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_file_limit_counts_uploads_in_progress_and_renames_free_places() {
        let limits = QuotaLimits {
            bytes: None,
            files: Some(2),
        };
        let (dir, usage, s) = fixture(limits, &[("a", b"1")]).await;
        let first = s.create(&path("b"), UploadMode::Replace).await.unwrap();
        // The second new file would be the third.
        let e = s
            .create(&path("c"), UploadMode::Replace)
            .await
            .err()
            .unwrap();
        assert_eq!(
            QuotaExceeded::of(&e),
            Some(QuotaExceeded::Files { limit: 2, used: 2 })
        );
        // Overwriting an existing file needs no new place.
        upload(&s, "a", UploadMode::Replace, &[b"22"])
            .await
            .unwrap();
        drop(first);
        assert_eq!(usage.current(), Usage { bytes: 2, files: 1 });
        upload(&s, "c", UploadMode::Replace, &[b"333"])
            .await
            .unwrap();
        assert_eq!(usage.current(), Usage { bytes: 5, files: 2 });
        s.rename(&path("c"), &path("a")).await.unwrap();
        assert_eq!(usage.current(), Usage { bytes: 3, files: 1 });
        assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), b"333");
        assert_eq!(measure(&s).await.unwrap(), usage.current());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn two_uploads_at_once_share_the_quota() {
        let (dir, usage, s) = fixture(bytes(10), &[]).await;
        let mut one = s.create(&path("one"), UploadMode::Replace).await.unwrap();
        let mut two = s.create(&path("two"), UploadMode::Replace).await.unwrap();
        one.write_all(b"123456").unwrap();
        two.write_all(b"1234").unwrap();
        let e = two.write_all(b"5").unwrap_err();
        assert_eq!(
            QuotaExceeded::of(&e),
            Some(QuotaExceeded::Bytes { limit: 10, used: 6 })
        );
        drop(two);
        one.commit().unwrap();
        assert_eq!(usage.current(), Usage { bytes: 6, files: 1 });
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["one"]);
    }
}
