//! Whole-file downloads and uploads over a [`Pool`], retried on passing failures and resumed
//! where they stopped; downloads optionally split into segments fetched over several
//! sessions at once (`REST` to each segment's start, reading exactly its range).
//!
//! A download is written into a temporary file next to the destination (`.NAME.ftps-part`)
//! and renamed to the destination only when it is complete (every segment, and the size the
//! one `SIZE` announced), so a failed or interrupted download never leaves a partial file
//! under the final name, nor destroys a copy that was there before. Two exceptions write the
//! destination itself: `resume` (continuing a partial file is its point) and a destination
//! that exists and is not a regular file (`/dev/null`, a FIFO, a symbolic link, which a
//! rename would replace). Servers that announce no `REST STREAM`, or answer no `SIZE`, get
//! one stream.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use crate::error::{Error, Result};
use crate::pool::{Pool, PooledClient};
use crate::retry::{needs_new_session, RetryPolicy};
use crate::transfer::COPY_BUFFER;

/// Smallest segment worth a session of its own.
pub const MIN_SEGMENT: u64 = 1024 * 1024;

/// Called with the size of each chunk moved.
pub type ByteProgress = Arc<dyn Fn(u64) + Send + Sync>;

/// How to download.
#[derive(Clone, Debug)]
pub struct DownloadOptions {
    /// Sessions to fetch the file over (1: one stream).
    pub segments: usize,
    /// Continue the local file from its length (one stream only).
    pub resume: bool,
    /// Retries on connection loss, timeouts and 4xx replies.
    pub retry: RetryPolicy,
    /// The remote modification time, to set on the local file.
    pub mtime: Option<SystemTime>,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        DownloadOptions {
            segments: 1,
            resume: false,
            retry: RetryPolicy::default(),
            mtime: None,
        }
    }
}

/// What a finished download or upload reports.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Bytes moved by this run, over all attempts and segments.
    pub bytes: u64,
    /// Where the first attempt started (a continued transfer's offset).
    pub resumed_from: u64,
    /// Segments used (1: one stream).
    pub segments: usize,
    /// Attempts that failed and were retried.
    pub retries: u32,
    /// Whether every data connection resumed its control connection's TLS session.
    pub tls_resumed: bool,
}

/// The temporary file a download of `local` is assembled in.
pub fn part_path(local: &Path) -> PathBuf {
    let name = local
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    local.with_file_name(format!(".{name}.ftps-part"))
}

/// The byte ranges of `segments` parts of a `size`-byte file, none smaller than
/// [`MIN_SEGMENT`] (so small files get fewer segments).
pub fn ranges(size: u64, segments: usize) -> Vec<(u64, u64)> {
    let most = size.div_ceil(MIN_SEGMENT).max(1);
    let n = (segments.max(1) as u64).min(most);
    let step = size / n;
    (0..n)
        .map(|i| {
            let start = i * step;
            let end = if i + 1 == n { size } else { start + step };
            (start, end)
        })
        .collect()
}

/// Downloads `remote` to `local`. `size` is what `SIZE` said (segments need it).
pub async fn download(
    pool: &Pool,
    remote: &str,
    local: &Path,
    size: Option<u64>,
    opts: &DownloadOptions,
    progress: ByteProgress,
) -> Result<Outcome> {
    let segmentable = {
        let client = pool.get().await?;
        client.features().rest_stream
    };
    let through_part = !opts.resume && renamable(local);
    match size {
        Some(size) if opts.segments > 1 && segmentable && size > MIN_SEGMENT && through_part => {
            download_segments(pool, remote, local, size, opts, progress).await
        }
        _ => {
            if opts.segments > 1 {
                tracing::info!(
                    "downloading {remote} in one stream: {}",
                    if !through_part {
                        "the destination is not a regular file"
                    } else if !segmentable {
                        "the server announces no REST STREAM"
                    } else if size.is_none() {
                        "the server does not tell its size"
                    } else {
                        "it is too small to split"
                    }
                );
            }
            if !through_part {
                return download_stream(pool, remote, local, opts, progress).await;
            }
            let part = part_path(local);
            let r = async {
                let outcome = download_stream(pool, remote, &part, opts, progress).await?;
                finish_part(&part, local, size, opts.mtime).await?;
                Ok(outcome)
            }
            .await;
            if r.is_err() {
                let _ = tokio::fs::remove_file(&part).await;
            }
            r
        }
    }
}

/// Whether a download may go to a temporary file renamed over `local` at the end: when
/// `local` does not exist or is a regular file (not a device, a FIFO or a symbolic link).
fn renamable(local: &Path) -> bool {
    match std::fs::symlink_metadata(local) {
        Ok(meta) => meta.file_type().is_file(),
        Err(_) => true,
    }
}

async fn download_stream(
    pool: &Pool,
    remote: &str,
    local: &Path,
    opts: &DownloadOptions,
    progress: ByteProgress,
) -> Result<Outcome> {
    let resumed_from = if opts.resume {
        tokio::fs::metadata(local)
            .await
            .map(|m| m.len())
            .unwrap_or(0)
    } else {
        0
    };
    let moved = Arc::new(AtomicU64::new(0));
    let retries = AtomicU32::new(0);
    let resumed_all = AtomicBool::new(true);
    opts.retry
        .run(
            |_| {
                let (moved, progress, resumed_all) =
                    (moved.clone(), progress.clone(), &resumed_all);
                async move {
                    let mut client = pool.get().await?;
                    // After an attempt that wrote something, the local file is this run's
                    // partial copy: continue it.
                    let resume = opts.resume || moved.load(Ordering::Relaxed) > 0;
                    let r = client
                        .download_file(remote, local, resume, opts.mtime, &mut |n| {
                            moved.fetch_add(n, Ordering::Relaxed);
                            progress(n)
                        })
                        .await;
                    settle(client, &r);
                    let outcome = r?;
                    if !outcome.resumed {
                        resumed_all.store(false, Ordering::Relaxed);
                    }
                    Ok(())
                }
            },
            |n, e, wait| {
                retries.store(n, Ordering::Relaxed);
                tracing::warn!("{remote}: {e}; retry {n} in {:.1} s", wait.as_secs_f64());
            },
        )
        .await?;
    Ok(Outcome {
        bytes: moved.load(Ordering::Relaxed),
        resumed_from,
        segments: 1,
        retries: retries.load(Ordering::Relaxed),
        tls_resumed: resumed_all.load(Ordering::Relaxed),
    })
}

/// Returns a session to the pool after `r`, or drops it when the error left it unusable.
fn settle<T>(client: PooledClient, r: &Result<T>) {
    if r.as_ref().err().is_some_and(needs_new_session) {
        client.discard();
    }
}

async fn download_segments(
    pool: &Pool,
    remote: &str,
    local: &Path,
    size: u64,
    opts: &DownloadOptions,
    progress: ByteProgress,
) -> Result<Outcome> {
    let part = part_path(local);
    let file = tokio::fs::File::create(&part)
        .await
        .map_err(|e| Error::io(format!("creating {}", part.display()), e))?;
    file.set_len(size)
        .await
        .map_err(|e| Error::io(format!("sizing {}", part.display()), e))?;
    drop(file);
    let ranges = ranges(size, opts.segments);
    let segments = ranges.len();
    let moved = Arc::new(AtomicU64::new(0));
    let retries = Arc::new(AtomicU32::new(0));
    let resumed_all = Arc::new(AtomicBool::new(true));
    let mut tasks = tokio::task::JoinSet::new();
    for (start, end) in ranges {
        let (pool, remote, part, policy) =
            (pool.clone(), remote.to_string(), part.clone(), opts.retry);
        let (moved, retries, resumed_all, progress) = (
            moved.clone(),
            retries.clone(),
            resumed_all.clone(),
            progress.clone(),
        );
        tasks.spawn(async move {
            let done = AtomicU64::new(0);
            policy
                .run(
                    |_| {
                        let from = start + done.load(Ordering::Relaxed);
                        let (pool, remote, part, progress, moved, done, resumed_all) = (
                            &pool,
                            &remote,
                            &part,
                            &progress,
                            &moved,
                            &done,
                            &resumed_all,
                        );
                        async move {
                            let mut client = pool.get().await?;
                            let r = fetch_range(
                                &mut client,
                                remote,
                                part,
                                (from, end, size),
                                &mut |n| {
                                    done.fetch_add(n, Ordering::Relaxed);
                                    moved.fetch_add(n, Ordering::Relaxed);
                                    progress(n);
                                },
                            )
                            .await;
                            if r.as_ref().is_ok_and(|resumed| !resumed) {
                                resumed_all.store(false, Ordering::Relaxed);
                            }
                            settle(client, &r);
                            r.map(drop)
                        }
                    },
                    |_, e, wait| {
                        retries.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            "{remote} bytes {start}-{end}: {e}; retrying in {:.1} s",
                            wait.as_secs_f64()
                        );
                    },
                )
                .await
        });
    }
    let mut failure = None;
    while let Some(joined) = tasks.join_next().await {
        let r = joined.unwrap_or_else(|e| Err(Error::Protocol(format!("segment task: {e}"))));
        if let Err(e) = r {
            if failure.is_none() {
                // One segment failed for good: the others are pointless.
                tasks.abort_all();
                failure = Some(e);
            }
        }
    }
    let finished = match failure {
        Some(e) => Err(e),
        None => finish_part(&part, local, Some(size), opts.mtime).await,
    };
    if let Err(e) = finished {
        let _ = tokio::fs::remove_file(&part).await;
        return Err(e);
    }
    Ok(Outcome {
        bytes: moved.load(Ordering::Relaxed),
        resumed_from: 0,
        segments,
        retries: retries.load(Ordering::Relaxed),
        tls_resumed: resumed_all.load(Ordering::Relaxed),
    })
}

/// Checks the assembled file's size against `SIZE`'s (when the server answered it), syncs
/// it, sets its time and gives it its final name.
async fn finish_part(
    part: &Path,
    local: &Path,
    size: Option<u64>,
    mtime: Option<SystemTime>,
) -> Result<()> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(part)
        .map_err(|e| Error::io(format!("opening {}", part.display()), e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::io(format!("reading {}", part.display()), e))?
        .len();
    if let Some(size) = size.filter(|&size| size != len) {
        return Err(Error::Protocol(format!(
            "{} came to {len} bytes, not the {size} the server announced",
            local.display()
        )));
    }
    file.sync_all()
        .map_err(|e| Error::io(format!("writing {}", part.display()), e))?;
    if let Some(t) = mtime {
        let _ = file.set_modified(t);
    }
    drop(file);
    std::fs::rename(part, local).map_err(|e| {
        Error::io(
            format!("renaming {} to {}", part.display(), local.display()),
            e,
        )
    })
}

/// Fetches bytes `from..end` of `remote` into the same range of `part`: `REST from`, `RETR`,
/// exactly `end - from` bytes read (the server would send to the end of the file), then
/// `ABOR` unless the range ends the file. Returns whether the data connection resumed the
/// control session's TLS session.
async fn fetch_range(
    client: &mut PooledClient,
    remote: &str,
    part: &Path,
    (from, end, size): (u64, u64, u64),
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<bool> {
    if from >= end {
        return Ok(true);
    }
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .open(part)
        .await
        .map_err(|e| Error::io(format!("opening {}", part.display()), e))?;
    file.seek(std::io::SeekFrom::Start(from))
        .await
        .map_err(|e| Error::io(format!("seeking in {}", part.display()), e))?;
    let mut transfer = client.retr(remote, from).await?;
    let resumed = transfer.resumed();
    let mut buf = vec![0u8; COPY_BUFFER];
    let mut remaining = end - from;
    while remaining > 0 {
        let want = buf
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let n = transfer.read_timed(&mut buf[..want]).await?;
        if n == 0 {
            // Reading ended before the range did: the file shrank, or the connection broke
            // without the server saying why. finish() tells which.
            transfer.finish().await?;
            return Err(Error::Protocol(format!(
                "{remote} ended at byte {} although SIZE said {size}",
                end - remaining
            )));
        }
        file.write_all(&buf[..n])
            .await
            .map_err(|e| Error::io(format!("writing {}", part.display()), e))?;
        remaining -= n as u64;
        progress(n as u64);
    }
    file.flush()
        .await
        .map_err(|e| Error::io(format!("writing {}", part.display()), e))?;
    if end == size {
        transfer.finish().await?;
    } else if let Err(e) = transfer.abort().await {
        // The range is complete; only this session is lost.
        tracing::debug!("ABOR after a segment of {remote}: {e}");
    }
    Ok(resumed)
}

/// Uploads `local` to `remote`. With `resume`, or on a retry after some data went, it
/// continues after the remote file's current size (`SIZE`, then `REST` and `STOR`).
pub async fn upload(
    pool: &Pool,
    local: &Path,
    remote: &str,
    resume: bool,
    retry: &RetryPolicy,
    progress: ByteProgress,
) -> Result<Outcome> {
    let moved = Arc::new(AtomicU64::new(0));
    let retries = AtomicU32::new(0);
    let resumed_all = AtomicBool::new(true);
    let first_offset = AtomicU64::new(u64::MAX);
    retry
        .run(
            |_| {
                let (moved, progress, resumed_all, first_offset) =
                    (moved.clone(), progress.clone(), &resumed_all, &first_offset);
                async move {
                    let mut client = pool.get().await?;
                    let again = resume || moved.load(Ordering::Relaxed) > 0;
                    if first_offset.load(Ordering::Relaxed) == u64::MAX {
                        let offset = if resume {
                            client.size(remote).await.unwrap_or(0)
                        } else {
                            0
                        };
                        first_offset.store(offset, Ordering::Relaxed);
                    }
                    let r = client
                        .upload_file(local, remote, again, &mut |n| {
                            moved.fetch_add(n, Ordering::Relaxed);
                            progress(n)
                        })
                        .await;
                    settle(client, &r);
                    if !r?.resumed {
                        resumed_all.store(false, Ordering::Relaxed);
                    }
                    Ok(())
                }
            },
            |n, e, wait| {
                retries.store(n, Ordering::Relaxed);
                tracing::warn!("{remote}: {e}; retry {n} in {:.1} s", wait.as_secs_f64());
            },
        )
        .await?;
    Ok(Outcome {
        bytes: moved.load(Ordering::Relaxed),
        resumed_from: first_offset.load(Ordering::Relaxed).min(u64::MAX - 1),
        segments: 1,
        retries: retries.load(Ordering::Relaxed),
        tls_resumed: resumed_all.load(Ordering::Relaxed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split() {
        let m = MIN_SEGMENT;
        assert_eq!(
            ranges(10 * m, 4),
            vec![
                (0, 2 * m + m / 2),
                (2 * m + m / 2, 5 * m),
                (5 * m, 7 * m + m / 2),
                (7 * m + m / 2, 10 * m)
            ]
        );
        assert_eq!(ranges(m + 1, 8).len(), 2);
        assert_eq!(ranges(5, 8), vec![(0, 5)]);
        let r = ranges(1_000_000_007, 7);
        assert_eq!(r.len(), 7);
        assert_eq!(r[0].0, 0);
        assert_eq!(r[6].1, 1_000_000_007);
        assert!(r.windows(2).all(|w| w[0].1 == w[1].0));
    }

    #[test]
    fn part_names() {
        assert_eq!(
            part_path(Path::new("dir/big.iso")),
            PathBuf::from("dir/.big.iso.ftps-part")
        );
    }
}
