//! Mirroring a directory tree in either direction, transferring only what changed (by size
//! and modification time), in parallel over a [`Pool`].

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use ftps_proto::listing_parse::TimePrecision;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::path::join;
use crate::pool::Pool;
use crate::session::FtpsClient;

/// Mirror options.
#[derive(Clone, Debug)]
pub struct MirrorOptions {
    /// Transfers at once (one session each).
    pub parallel: usize,
    /// Delete files and directories at the destination that the source does not have.
    pub delete: bool,
    /// Only plan: report what would be done.
    pub dry_run: bool,
}

impl Default for MirrorOptions {
    fn default() -> Self {
        MirrorOptions {
            parallel: 4,
            delete: false,
            dry_run: false,
        }
    }
}

/// Which way files move.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Server to local.
    Download,
    /// Local to server.
    Upload,
}

/// One step of a mirror plan. Paths are relative to the mirrored roots, `/`-separated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Create a directory at the destination.
    Mkdir {
        /// Relative path.
        path: String,
    },
    /// Copy a file.
    Transfer {
        /// Relative path.
        path: String,
        /// Its size at the source.
        size: u64,
        /// `new`, `size` or `newer`.
        reason: &'static str,
    },
    /// Delete a file or directory at the destination.
    Delete {
        /// Relative path.
        path: String,
        /// Whether it is a directory.
        dir: bool,
    },
}

/// What happened to one file, for progress reporting.
#[derive(Clone, Debug, Serialize)]
pub struct FileDone {
    /// Relative path.
    pub path: String,
    /// Bytes transferred.
    pub bytes: u64,
    /// The error, if it failed.
    pub error: Option<String>,
}

/// The result of a mirror run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MirrorReport {
    /// Everything planned (and, unless a dry run, done).
    pub actions: Vec<Action>,
    /// Files copied.
    pub transferred: usize,
    /// Bytes copied.
    pub bytes: u64,
    /// Files already up to date.
    pub unchanged: usize,
    /// Entries deleted.
    pub deleted: usize,
    /// Failures: relative path and message.
    pub failed: Vec<(String, String)>,
}

/// Called after each file transfer.
pub type Progress = Arc<dyn Fn(&FileDone) + Send + Sync>;

#[derive(Clone, Copy, Debug)]
struct Meta {
    dir: bool,
    size: u64,
    modified: Option<SystemTime>,
    precision: TimePrecision,
}

/// Whether `src` must be copied over `dst`, and why.
fn change_reason(src: &Meta, dst: Option<&Meta>) -> Option<&'static str> {
    let Some(dst) = dst else { return Some("new") };
    if dst.dir != src.dir {
        return Some("type");
    }
    if src.size != dst.size {
        return Some("size");
    }
    match (src.modified, dst.modified) {
        (Some(s), Some(d)) => {
            let p = src.precision.max(dst.precision);
            (p.truncate(s) > p.truncate(d)).then_some("newer")
        }
        _ => None,
    }
}

fn local_tree(root: &Path) -> Result<BTreeMap<String, Meta>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| Error::io(format!("reading {}", dir.display()), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(format!("reading {}", dir.display()), e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let meta = std::fs::metadata(&path)
                .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
            let rel_path = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let m = Meta {
                dir: meta.is_dir(),
                size: if meta.is_dir() { 0 } else { meta.len() },
                modified: meta.modified().ok(),
                precision: TimePrecision::Second,
            };
            if m.dir {
                stack.push((path, rel_path.clone()));
            } else if !meta.is_file() {
                continue;
            }
            out.insert(rel_path, m);
        }
    }
    Ok(out)
}

/// The local path of `rel` (a `/`-separated path relative to the mirrored tree) under `root`.
fn local_path(root: &Path, rel: &str) -> PathBuf {
    rel.split('/').fold(root.to_path_buf(), |p, c| p.join(c))
}

/// The files to transfer: each one's relative path, its local path under `local`, and its
/// modification time at the source.
fn transfer_jobs(
    actions: &[Action],
    src: &BTreeMap<String, Meta>,
    local: &Path,
) -> Vec<(String, PathBuf, Option<SystemTime>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Transfer { path, .. } => Some((
                path.clone(),
                local_path(local, path),
                src.get(path).and_then(|m| m.modified),
            )),
            _ => None,
        })
        .collect()
}

async fn remote_tree(pool: &Pool, root: &str) -> Result<BTreeMap<String, Meta>> {
    let mut client = pool.get().await?;
    let mut out = BTreeMap::new();
    let mut queue = VecDeque::from([String::new()]);
    while let Some(rel) = queue.pop_front() {
        let dir = if rel.is_empty() {
            root.to_string()
        } else {
            join(root, &rel)
        };
        for e in client.list_dir(&dir).await? {
            if e.name.contains('/') {
                continue;
            }
            let rel_path = if rel.is_empty() {
                e.name.clone()
            } else {
                format!("{rel}/{}", e.name)
            };
            let m = Meta {
                dir: e.is_dir(),
                size: e.size.unwrap_or(0),
                modified: e.modified,
                precision: e.precision,
            };
            match e.kind {
                ftps_proto::listing::FileKind::Dir => queue.push_back(rel_path.clone()),
                ftps_proto::listing::FileKind::File => {}
                _ => continue,
            }
            out.insert(rel_path, m);
        }
    }
    Ok(out)
}

fn plan(
    src: &BTreeMap<String, Meta>,
    dst: &BTreeMap<String, Meta>,
    delete: bool,
) -> (Vec<Action>, usize) {
    let mut actions = Vec::new();
    let mut unchanged = 0;
    // Destination entries of the wrong type are deleted first, as with --delete.
    let mut deletes = Vec::new();
    for (path, d) in dst {
        let gone = match src.get(path) {
            None => delete,
            Some(s) => s.dir != d.dir,
        };
        // Children of a deleted directory go with it.
        if gone
            && !deletes
                .iter()
                .any(|(p, _): &(String, bool)| path.starts_with(&format!("{p}/")))
        {
            deletes.push((path.clone(), d.dir));
        }
    }
    for (path, dir) in &deletes {
        actions.push(Action::Delete {
            path: path.clone(),
            dir: *dir,
        });
    }
    for (path, s) in src {
        let d = dst.get(path).filter(|d| d.dir == s.dir);
        if s.dir {
            if d.is_none() {
                actions.push(Action::Mkdir { path: path.clone() });
            }
            continue;
        }
        match change_reason(s, d) {
            Some(reason) => actions.push(Action::Transfer {
                path: path.clone(),
                size: s.size,
                reason,
            }),
            None => unchanged += 1,
        }
    }
    (actions, unchanged)
}

/// Mirrors the remote directory `remote` into the local directory `local`.
pub async fn download(
    pool: &Pool,
    remote: &str,
    local: &Path,
    opts: &MirrorOptions,
    progress: Option<Progress>,
) -> Result<MirrorReport> {
    std::fs::create_dir_all(local)
        .map_err(|e| Error::io(format!("creating {}", local.display()), e))?;
    let src = remote_tree(pool, remote).await?;
    let root = local.to_path_buf();
    let dst = tokio::task::spawn_blocking(move || local_tree(&root))
        .await
        .map_err(|e| Error::Protocol(format!("local scan failed: {e}")))??;
    let (actions, unchanged) = plan(&src, &dst, opts.delete);
    let mut report = MirrorReport {
        actions: actions.clone(),
        unchanged,
        ..MirrorReport::default()
    };
    if opts.dry_run {
        return Ok(report);
    }
    let local_path = |rel: &str| local_path(local, rel);
    for a in &actions {
        match a {
            Action::Delete { path, dir } => {
                let p = local_path(path);
                let r = if *dir {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
                match r {
                    Ok(()) => report.deleted += 1,
                    Err(e) => report.failed.push((path.clone(), e.to_string())),
                }
            }
            Action::Mkdir { path } => {
                std::fs::create_dir_all(local_path(path))
                    .map_err(|e| Error::io(format!("creating {path}"), e))?;
            }
            Action::Transfer { .. } => {}
        }
    }
    let jobs = transfer_jobs(&actions, &src, local);
    let remote_root = remote.to_string();
    let results = run_parallel(
        pool,
        opts.parallel,
        jobs,
        progress,
        move |client, (rel, local, mtime)| {
            let remote = join(&remote_root, &rel);
            Box::pin(async move {
                let r = client
                    .download_file(&remote, &local, false, mtime, &mut |_| {})
                    .await
                    .map(|o| o.bytes);
                (rel, r)
            })
        },
    )
    .await?;
    collect(&mut report, results);
    Ok(report)
}

/// Mirrors the local directory `local` into the remote directory `remote`.
pub async fn upload(
    pool: &Pool,
    local: &Path,
    remote: &str,
    opts: &MirrorOptions,
    progress: Option<Progress>,
) -> Result<MirrorReport> {
    let root = local.to_path_buf();
    let src = tokio::task::spawn_blocking(move || local_tree(&root))
        .await
        .map_err(|e| Error::Protocol(format!("local scan failed: {e}")))??;
    {
        let mut c = pool.get().await?;
        c.mkdir_all(remote).await?;
    }
    let dst = remote_tree(pool, remote).await?;
    let (actions, unchanged) = plan(&src, &dst, opts.delete);
    let mut report = MirrorReport {
        actions: actions.clone(),
        unchanged,
        ..MirrorReport::default()
    };
    if opts.dry_run {
        return Ok(report);
    }
    {
        let mut c = pool.get().await?;
        // Deepest first, so directories are empty when removed.
        for a in actions.iter().rev() {
            if let Action::Delete { path, dir } = a {
                let r = if *dir {
                    remove_remote_tree(&mut c, &join(remote, path)).await
                } else {
                    c.delete(&join(remote, path)).await
                };
                match r {
                    Ok(()) => report.deleted += 1,
                    Err(e) => report.failed.push((path.clone(), e.to_string())),
                }
            }
        }
        for a in &actions {
            if let Action::Mkdir { path } = a {
                c.mkdir(&join(remote, path)).await?;
            }
        }
    }
    let jobs = transfer_jobs(&actions, &src, local);
    let remote_root = remote.to_string();
    let results = run_parallel(
        pool,
        opts.parallel,
        jobs,
        progress,
        move |client, (rel, local, mtime)| {
            let remote = join(&remote_root, &rel);
            Box::pin(async move {
                let r = client
                    .upload_file(&local, &remote, false, &mut |_| {})
                    .await;
                if let (Ok(_), Some(t)) = (&r, mtime) {
                    // Best effort: with the source's time at the destination the next run sees
                    // it as unchanged; without it, the upload time is newer anyway.
                    let _ = client.set_mtime(&remote, t).await;
                }
                (rel, r.map(|o| o.bytes))
            })
        },
    )
    .await?;
    collect(&mut report, results);
    Ok(report)
}

/// Deletes a remote directory and everything in it.
pub async fn remove_remote_tree(client: &mut FtpsClient, path: &str) -> Result<()> {
    let mut stack = vec![(path.to_string(), false)];
    while let Some((dir, visited)) = stack.pop() {
        if visited {
            client.rmdir(&dir).await?;
            continue;
        }
        stack.push((dir.clone(), true));
        for e in client.list_dir(&dir).await? {
            let p = join(&dir, &e.name);
            if e.is_dir() {
                stack.push((p, false));
            } else {
                client.delete(&p).await?;
            }
        }
    }
    Ok(())
}

fn collect(report: &mut MirrorReport, results: Vec<(String, Result<u64>)>) {
    for (rel, r) in results {
        match r {
            Ok(bytes) => {
                report.transferred += 1;
                report.bytes += bytes;
            }
            Err(e) => report.failed.push((rel, e.to_string())),
        }
    }
}

type JobFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = (String, Result<u64>)> + Send + 'a>>;

async fn run_parallel<J, F>(
    pool: &Pool,
    parallel: usize,
    jobs: Vec<J>,
    progress: Option<Progress>,
    work: F,
) -> Result<Vec<(String, Result<u64>)>>
where
    J: Clone + Send + 'static,
    F: for<'a> Fn(&'a mut FtpsClient, J) -> JobFuture<'a> + Send + Sync + 'static,
{
    let queue = Arc::new(Mutex::new(VecDeque::from(jobs)));
    let results = Arc::new(Mutex::new(Vec::new()));
    let work = Arc::new(work);
    let mut tasks = tokio::task::JoinSet::new();
    let workers = parallel
        .max(1)
        .min(queue.lock().map(|q| q.len()).unwrap_or(1).max(1));
    for _ in 0..workers {
        let (queue, results, work, pool, progress) = (
            queue.clone(),
            results.clone(),
            work.clone(),
            pool.clone(),
            progress.clone(),
        );
        tasks.spawn(async move {
            let mut client = pool.get().await?;
            loop {
                let job = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                let Some(job) = job else { break };
                let (mut rel, mut r) = work(&mut client, job.clone()).await;
                if r.as_ref().err().is_some_and(connection_lost) || client.is_poisoned() {
                    // The session is gone (or unusable): retry once on a new one.
                    tracing::debug!(
                        "{rel}: {:?}; retrying on a new connection",
                        r.as_ref().err()
                    );
                    client.discard();
                    client = pool.get().await?;
                    (rel, r) = work(&mut client, job).await;
                }
                if let Some(p) = &progress {
                    p(&FileDone {
                        path: rel.clone(),
                        bytes: *r.as_ref().unwrap_or(&0),
                        error: r.as_ref().err().map(|e| e.to_string()),
                    });
                }
                let broken = client.is_poisoned() || r.as_ref().err().is_some_and(connection_lost);
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((rel, r));
                if broken {
                    client.discard();
                    client = pool.get().await?;
                }
            }
            Ok::<(), Error>(())
        });
    }
    let mut first_err = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(e) => {
                first_err.get_or_insert(Error::Protocol(format!("transfer task failed: {e}")));
            }
        }
    }
    let results = std::mem::take(&mut *results.lock().unwrap_or_else(|e| e.into_inner()));
    // A worker that could not connect leaves its jobs to the others; fail only if some
    // job was never attempted.
    let left = queue.lock().map(|q| q.len()).unwrap_or(0);
    if let (Some(e), true) = (first_err, left > 0) {
        return Err(e);
    }
    Ok(results)
}

/// Whether an error means the session can no longer be used.
fn connection_lost(e: &Error) -> bool {
    matches!(
        e,
        Error::Closed
            | Error::Tls { .. }
            | Error::Timeout(_)
            | Error::Connect { .. }
            | Error::Poisoned
            | Error::Protocol(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn m(dir: bool, size: u64, secs: u64, p: TimePrecision) -> Meta {
        Meta {
            dir,
            size,
            modified: Some(UNIX_EPOCH + Duration::from_secs(secs)),
            precision: p,
        }
    }

    #[test]
    fn change_detection() {
        let s = m(false, 10, 1000, TimePrecision::Second);
        assert_eq!(change_reason(&s, None), Some("new"));
        assert_eq!(
            change_reason(&s, Some(&m(false, 11, 1000, TimePrecision::Second))),
            Some("size")
        );
        assert_eq!(
            change_reason(&s, Some(&m(false, 10, 999, TimePrecision::Second))),
            Some("newer")
        );
        assert_eq!(
            change_reason(&s, Some(&m(false, 10, 1001, TimePrecision::Second))),
            None
        );
        // Minute precision at the destination: 1000 s and 960 s are the same minute.
        assert_eq!(
            change_reason(&s, Some(&m(false, 10, 960, TimePrecision::Minute))),
            None
        );
    }

    #[test]
    fn plans() {
        let mut src = BTreeMap::new();
        src.insert("a".to_string(), m(true, 0, 0, TimePrecision::Second));
        src.insert("a/x".to_string(), m(false, 1, 5, TimePrecision::Second));
        src.insert("b".to_string(), m(false, 2, 5, TimePrecision::Second));
        let mut dst = BTreeMap::new();
        dst.insert("b".to_string(), m(false, 2, 5, TimePrecision::Second));
        dst.insert("old".to_string(), m(true, 0, 5, TimePrecision::Second));
        dst.insert("old/y".to_string(), m(false, 0, 5, TimePrecision::Second));
        let (actions, unchanged) = plan(&src, &dst, true);
        assert_eq!(unchanged, 1);
        assert_eq!(
            actions,
            vec![
                Action::Delete {
                    path: "old".into(),
                    dir: true
                },
                Action::Mkdir { path: "a".into() },
                Action::Transfer {
                    path: "a/x".into(),
                    size: 1,
                    reason: "new"
                },
            ]
        );
        let (actions, _) = plan(&src, &dst, false);
        assert_eq!(actions.len(), 2);
    }
}
