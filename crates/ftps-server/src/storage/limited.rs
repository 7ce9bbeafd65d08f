//! Uploads under a file size limit (`max_file_size`): an upload that would make its file
//! larger than the limit fails with [`FileTooLarge`] (reply `552`) and changes nothing.
//!
//! The limit is checked before each write, so no byte past it is ever written, and where the
//! size is known before any data (an `APPE` to a file already at the limit, a `REST` offset
//! past it) the upload is refused before it starts. What a refused upload wrote must then
//! vanish, which is how every backend treats a `STOR` or `STOU` that does not complete.
//! `APPE` and `REST`+`STOR` under a limit are therefore made of such an upload too: the new
//! file is the old one's first bytes (up to the end for `APPE`, up to the offset for `REST`)
//! followed by the upload, and it replaces the old file only on commit. This works the same
//! way for every backend, using only the [`Storage`] interface; the price is copying the
//! kept bytes (at most the limit) through the server, and that, as on S3 always, a
//! `REST`+`STOR` ends the file with its last uploaded byte.
//!
//! [`LimitedStorage`] puts a user's backend under its limit. It sits right on the backend,
//! below any other wrapper, so that reading the kept bytes is part of the upload and needs
//! no permission of its own.

use std::fmt;
use std::io::{self, Read};
use std::sync::Arc;
use std::time::SystemTime;

use super::{Download, Entry, EntryKind, Listing, Storage, Upload, UploadMode, VirtualPath};

/// A backend whose uploads may not make a file larger than `max` bytes; everything else
/// goes to the backend as it is.
#[derive(Debug)]
pub struct LimitedStorage {
    inner: Arc<dyn Storage>,
    max: u64,
}

impl LimitedStorage {
    /// `inner` under a file size limit of `max` bytes.
    pub fn new(inner: Arc<dyn Storage>, max: u64) -> LimitedStorage {
        LimitedStorage { inner, max }
    }
}

#[async_trait::async_trait]
impl Storage for LimitedStorage {
    async fn metadata(&self, path: &VirtualPath) -> io::Result<Entry> {
        self.inner.metadata(path).await
    }

    async fn open_read(&self, path: &VirtualPath, offset: u64) -> io::Result<Download> {
        self.inner.open_read(path, offset).await
    }

    async fn create(&self, path: &VirtualPath, mode: UploadMode) -> io::Result<Box<dyn Upload>> {
        create_limited(self.inner.as_ref(), path, mode, self.max).await
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
        self.inner.remove_file(path).await
    }

    async fn rename(&self, from: &VirtualPath, to: &VirtualPath) -> io::Result<()> {
        self.inner.rename(from, to).await
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

/// Bytes copied at once from the old file into the new one.
const COPY_BUFFER: usize = 256 * 1024;

/// The upload would make the file larger than the limit: the payload of an
/// [`io::ErrorKind::FileTooLarge`] error, answered `552` with the limit.
#[derive(Debug)]
pub struct FileTooLarge {
    /// The limit, in bytes.
    pub max: u64,
}

impl FileTooLarge {
    /// The error for a limit of `max` bytes.
    pub fn error(max: u64) -> io::Error {
        io::Error::new(io::ErrorKind::FileTooLarge, FileTooLarge { max })
    }

    /// The limit `e` reports, if it is a [`FileTooLarge`] error.
    pub fn limit_of(e: &io::Error) -> Option<u64> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<FileTooLarge>())
            .map(|too_large| too_large.max)
    }
}

impl fmt::Display for FileTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the file would exceed {} bytes", self.max)
    }
}

impl std::error::Error for FileTooLarge {}

/// Starts an upload to `path` in `mode` that may not make the file larger than `max` bytes.
/// An `APPE` or `REST` that starts past the limit is refused here ([`FileTooLarge`]); other
/// errors are those of [`Storage::create`].
pub async fn create_limited(
    storage: &dyn Storage,
    path: &VirtualPath,
    mode: UploadMode,
    max: u64,
) -> io::Result<Box<dyn Upload>> {
    let (keep, old) = match mode {
        UploadMode::Replace | UploadMode::CreateNew => {
            let inner = storage.create(path, mode).await?;
            return Ok(Box::new(LimitedUpload::new(inner, None, 0, max)));
        }
        UploadMode::Append => {
            let old = open_existing(storage, path).await?;
            (old.as_ref().map_or(0, Download::remaining), old)
        }
        UploadMode::At(offset) => {
            let old = open_existing(storage, path).await?;
            if old.as_ref().is_none_or(|d| offset > d.remaining()) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "offset is past the end of the file",
                ));
            }
            (offset, old)
        }
    };
    if keep > max {
        return Err(FileTooLarge::error(max));
    }
    let inner = storage.create(path, UploadMode::Replace).await?;
    let prefix = old.filter(|_| keep > 0).map(|old| old.take(keep));
    Ok(Box::new(LimitedUpload::new(inner, prefix, keep, max)))
}

/// The file at `path` opened for reading, `None` when there is none.
async fn open_existing(storage: &dyn Storage, path: &VirtualPath) -> io::Result<Option<Download>> {
    match storage.open_read(path, 0).await {
        Ok(old) => Ok(Some(old)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        // A directory is refused as an upload onto it is without a limit.
        Err(e) => match storage.metadata(path).await {
            Ok(entry) if entry.kind == EntryKind::Dir => Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory",
            )),
            _ => Err(e),
        },
    }
}

/// An upload that refuses to grow its file past `max` bytes, and that first copies the kept
/// start of the old file (see the module documentation).
struct LimitedUpload {
    inner: Box<dyn Upload>,
    /// The old file's bytes to copy before the upload's, until copied.
    prefix: Option<io::Take<Download>>,
    /// The file's size so far, the kept bytes included.
    size: u64,
    max: u64,
}

impl LimitedUpload {
    fn new(
        inner: Box<dyn Upload>,
        prefix: Option<io::Take<Download>>,
        size: u64,
        max: u64,
    ) -> LimitedUpload {
        LimitedUpload {
            inner,
            prefix,
            size,
            max,
        }
    }

    /// Copies the kept bytes of the old file, once, on the transfer's thread.
    fn copy_prefix(&mut self) -> io::Result<()> {
        let Some(mut prefix) = self.prefix.take() else {
            return Ok(());
        };
        let wanted = prefix.limit();
        let mut buffer = vec![0u8; COPY_BUFFER.min(usize::try_from(wanted).unwrap_or(COPY_BUFFER))];
        loop {
            let n = match prefix.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.inner.write_all(&buffer[..n])?;
        }
        if prefix.limit() > 0 {
            // The old file shrank since it was opened: the kept part is not there any more.
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file changed during the upload",
            ));
        }
        Ok(())
    }
}

impl Upload for LimitedUpload {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.copy_prefix()?;
        let size = self.size.saturating_add(bytes.len() as u64);
        if size > self.max {
            return Err(FileTooLarge::error(self.max));
        }
        self.inner.write_all(bytes)?;
        self.size = size;
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> io::Result<()> {
        self.copy_prefix()?;
        self.inner.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::local::{LocalStorage, Root};

    fn storage() -> (tempfile::TempDir, LocalStorage) {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        (dir, LocalStorage::new(root))
    }

    fn path(name: &str) -> VirtualPath {
        VirtualPath::root().join(name)
    }

    fn names(dir: &tempfile::TempDir) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    async fn upload(
        s: &LocalStorage,
        name: &str,
        mode: UploadMode,
        max: u64,
        chunks: &[&[u8]],
    ) -> io::Result<()> {
        let mut up = create_limited(s, &path(name), mode, max).await?;
        for chunk in chunks {
            up.write_all(chunk)?;
        }
        up.commit()
    }

    fn assert_too_large(result: io::Result<()>, max: u64) {
        let e = result.expect_err("over the limit");
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge, "{e}");
        assert_eq!(FileTooLarge::limit_of(&e), Some(max), "{e}");
    }

    #[tokio::test]
    async fn stor_within_the_limit_works_and_beyond_it_leaves_nothing() {
        let (dir, s) = storage();
        upload(&s, "a", UploadMode::Replace, 8, &[b"1234", b"5678"])
            .await
            .unwrap();
        assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), b"12345678");
        // Too large: the old file stays as it was and no temporary file is left.
        assert_too_large(
            upload(&s, "a", UploadMode::Replace, 8, &[b"abcd", b"efghi"]).await,
            8,
        );
        assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), b"12345678");
        assert_too_large(
            upload(&s, "new", UploadMode::Replace, 8, &[b"123456789"]).await,
            8,
        );
        assert_too_large(
            upload(&s, "unique", UploadMode::CreateNew, 3, &[b"1234"]).await,
            3,
        );
        assert_eq!(names(&dir), ["a"]);
    }

    #[tokio::test]
    async fn appe_beyond_the_limit_leaves_the_file_as_it_was() {
        let (dir, s) = storage();
        std::fs::write(dir.path().join("log"), b"hello").unwrap();
        upload(&s, "log", UploadMode::Append, 8, &[b"abc"])
            .await
            .unwrap();
        assert_eq!(std::fs::read(dir.path().join("log")).unwrap(), b"helloabc");
        assert_too_large(
            upload(&s, "log", UploadMode::Append, 10, &[b"xyz"]).await,
            10,
        );
        assert_eq!(std::fs::read(dir.path().join("log")).unwrap(), b"helloabc");
        // Already past the limit: refused before any byte.
        let e = create_limited(&s, &path("log"), UploadMode::Append, 7)
            .await
            .err()
            .expect("refused at once");
        assert_eq!(FileTooLarge::limit_of(&e), Some(7));
        // A file that does not exist yet starts empty; an empty append changes nothing.
        upload(&s, "fresh", UploadMode::Append, 4, &[b"1234"])
            .await
            .unwrap();
        upload(&s, "log", UploadMode::Append, 8, &[]).await.unwrap();
        assert_eq!(std::fs::read(dir.path().join("log")).unwrap(), b"helloabc");
        assert_eq!(names(&dir), ["fresh", "log"]);
    }

    #[tokio::test]
    async fn rest_stor_beyond_the_limit_leaves_the_file_as_it_was() {
        let (dir, s) = storage();
        std::fs::write(dir.path().join("f"), b"0123456789").unwrap();
        assert_too_large(
            upload(&s, "f", UploadMode::At(5), 12, &[b"abcd", b"efgh"]).await,
            12,
        );
        assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"0123456789");
        upload(&s, "f", UploadMode::At(10), 12, &[b"ab"])
            .await
            .unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("f")).unwrap(),
            b"0123456789ab"
        );
        // The file ends with the upload's last byte.
        upload(&s, "f", UploadMode::At(4), 12, &[b"XY"])
            .await
            .unwrap();
        assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"0123XY");
        // Offsets past the limit, or past the end, are refused before any byte.
        std::fs::write(dir.path().join("g"), b"0123456789").unwrap();
        let e = create_limited(&s, &path("g"), UploadMode::At(9), 8)
            .await
            .err()
            .unwrap();
        assert_eq!(FileTooLarge::limit_of(&e), Some(8));
        let e = create_limited(&s, &path("g"), UploadMode::At(11), 100)
            .await
            .err()
            .unwrap();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let e = create_limited(&s, &path("missing"), UploadMode::At(3), 100)
            .await
            .err()
            .unwrap();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(names(&dir), ["f", "g"]);
    }

    #[tokio::test]
    async fn limited_storage_limits_uploads_and_passes_the_rest_through() {
        let (dir, s) = storage();
        let limited = LimitedStorage::new(Arc::new(s), 4);
        let mut up = limited
            .create(&path("f"), UploadMode::Replace)
            .await
            .unwrap();
        up.write_all(b"1234").unwrap();
        up.commit().unwrap();
        let mut up = limited
            .create(&path("g"), UploadMode::Replace)
            .await
            .unwrap();
        let e = up.write_all(b"12345").unwrap_err();
        assert_eq!(FileTooLarge::limit_of(&e), Some(4));
        drop(up);
        assert_eq!(limited.metadata(&path("f")).await.unwrap().size, 4);
        limited.rename(&path("f"), &path("h")).await.unwrap();
        assert_eq!(names(&dir), ["h"]);
    }

    #[tokio::test]
    async fn a_directory_is_refused_as_without_a_limit() {
        let (dir, s) = storage();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        for mode in [UploadMode::Append, UploadMode::At(1), UploadMode::Replace] {
            let e = create_limited(&s, &path("d"), mode, 100)
                .await
                .err()
                .unwrap();
            assert_eq!(e.kind(), io::ErrorKind::IsADirectory, "{mode:?}: {e}");
        }
    }
}
