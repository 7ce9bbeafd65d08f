//! The objects' async streams as the blocking [`Read`], [`Upload`] and listing iterator that
//! a transfer's thread drives (see `storage`'s module documentation): each step is one
//! `Handle::block_on` on the runtime the stream was opened on.

use std::io::{self, Read};
use std::ops::Range;

use bytes::{Buf, Bytes};
use futures::StreamExt;
use opendal::{EntryMode, FuturesBytesStream, Lister, Operator, Writer};
use tokio::runtime::Handle;

use super::unfinished::JournalEntry;
use super::{dir_entry, file_entry, map_error, MIN_PART_SIZE};
use crate::storage::{Entry, StorageUnavailable, Upload};

/// The most one `copy_from` may copy inside the store (S3's single-copy limit).
const MAX_COPY: u64 = 5 * 1024 * 1024 * 1024;

/// An object's bytes in a range, streamed by one `GET`.
pub(super) struct ObjectReader {
    handle: Handle,
    stream: FuturesBytesStream,
    current: Bytes,
}

impl ObjectReader {
    /// Starts reading `range` of `key`.
    pub(super) async fn open(op: &Operator, key: &str, range: Range<u64>) -> io::Result<Self> {
        let reader = op.reader(key).await.map_err(map_error)?;
        let stream = reader.into_bytes_stream(range).await.map_err(map_error)?;
        Ok(ObjectReader {
            handle: Handle::current(),
            stream,
            current: Bytes::new(),
        })
    }
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.handle.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(Ok(bytes)) => self.current = bytes,
                Some(Err(e)) => return Err(stream_error(e)),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}

/// The opendal error inside an `io::Error` from a stream, mapped as every other one.
fn stream_error(e: io::Error) -> io::Error {
    let kind = e.kind();
    match e.into_inner() {
        Some(inner) => match inner.downcast::<opendal::Error>() {
            Ok(e) => map_error(*e),
            Err(other) => io::Error::other(StorageUnavailable::new(other.to_string())),
        },
        None => io::Error::other(StorageUnavailable::new(kind.to_string())),
    }
}

/// A multipart upload in progress: completed by [`Upload::commit`], aborted otherwise.
pub(super) struct ObjectUpload {
    handle: Handle,
    /// `None` once completed.
    writer: Option<Writer>,
    /// The upload's journal file, removed once it is completed or aborted.
    recorded: Option<JournalEntry>,
}

impl ObjectUpload {
    /// An upload through `writer`, on the current runtime.
    pub(super) fn new(writer: Writer, recorded: Option<JournalEntry>) -> Self {
        ObjectUpload {
            handle: Handle::current(),
            writer: Some(writer),
            recorded,
        }
    }
}

impl Upload for ObjectUpload {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let writer = self.writer.as_mut().ok_or(io::ErrorKind::BrokenPipe)?;
        self.handle
            .block_on(writer.write(bytes.to_vec()))
            .map_err(map_error)
    }

    fn commit(mut self: Box<Self>) -> io::Result<()> {
        let mut writer = self.writer.take().ok_or(io::ErrorKind::BrokenPipe)?;
        let recorded = self.recorded.take();
        match self.handle.block_on(writer.close()) {
            Ok(_) => Ok(()),
            Err(e) => {
                // Nothing may be left half-made: the parts are discarded (or, if the store
                // cannot be told, at the next start).
                if self.handle.block_on(writer.abort()).is_err() {
                    std::mem::forget(recorded);
                }
                Err(map_error(e))
            }
        }
    }
}

impl Drop for ObjectUpload {
    /// Aborts an upload that did not complete, so that its parts do not linger in the store.
    /// Spawned: the drop may happen on the runtime's own threads.
    fn drop(&mut self) {
        if let Some(mut writer) = self.writer.take() {
            let recorded = self.recorded.take();
            self.handle.spawn(async move {
                if writer.abort().await.is_err() {
                    // Left for the next start to abort.
                    std::mem::forget(recorded);
                }
            });
        }
    }
}

/// Starts the new object of an `APPE` or `REST`+`STOR` with the first `keep` bytes of the
/// object `key`: copied inside the store when they make a valid part (5 MiB or more), else
/// streamed through (they are small).
pub(super) async fn copy_prefix(
    op: &Operator,
    writer: &mut Writer,
    key: &str,
    keep: u64,
) -> io::Result<()> {
    if keep >= MIN_PART_SIZE {
        let mut start = 0;
        while start < keep {
            let end = keep.min(start + MAX_COPY);
            writer.copy_from(key, start..end).await.map_err(map_error)?;
            start = end;
        }
        return Ok(());
    }
    let reader = op.reader(key).await.map_err(map_error)?;
    let mut stream = reader.into_bytes_stream(0..keep).await.map_err(map_error)?;
    while let Some(bytes) = stream.next().await {
        writer
            .write(bytes.map_err(stream_error)?)
            .await
            .map_err(map_error)?;
    }
    Ok(())
}

/// The entries of one directory, from a delimited listing: objects are files, common
/// prefixes directories; the directory's own marker is left out.
pub(super) struct ObjectListing {
    handle: Handle,
    lister: Lister,
    /// The listed directory's key prefix.
    dir: String,
    /// The first entry, read ahead by [`ObjectListing::start`].
    first: Option<opendal::Entry>,
}

impl ObjectListing {
    /// The listing of the directory prefix `dir`, on the current runtime, with its first
    /// entry read (so that a failing store fails here).
    pub(super) async fn start(mut lister: Lister, dir: String) -> io::Result<Self> {
        let first = lister.next().await.transpose().map_err(map_error)?;
        Ok(ObjectListing {
            handle: Handle::current(),
            lister,
            dir,
            first,
        })
    }
}

impl Iterator for ObjectListing {
    type Item = io::Result<Entry>;

    fn next(&mut self) -> Option<io::Result<Entry>> {
        loop {
            let next = match self.first.take() {
                Some(entry) => Some(Ok(entry)),
                None => self.handle.block_on(self.lister.next()),
            };
            let entry = match next? {
                Ok(entry) => entry,
                Err(e) => return Some(Err(map_error(e))),
            };
            let path = entry.path();
            if path == self.dir || path.trim_start_matches('/') == self.dir {
                continue;
            }
            let name = entry.name().trim_end_matches('/');
            if name.is_empty() {
                continue;
            }
            let meta = entry.metadata();
            let modified = meta.last_modified().map(std::time::SystemTime::from);
            return Some(Ok(if meta.mode() == EntryMode::DIR {
                dir_entry(name, modified, path)
            } else {
                file_entry(name, meta.content_length(), modified, path)
            }));
        }
    }
}
