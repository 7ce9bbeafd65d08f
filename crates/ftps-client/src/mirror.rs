//! Mirroring a directory tree in either direction, transferring only what changed (by size
//! and modification time, or by SHA-256 where the server computes it), in parallel over a
//! [`Pool`], with include/exclude rules.
//!
//! Rules ([`Rules`]) work like `.gitignore` lines: a pattern without `/` matches a name at
//! any depth, one with `/` matches the path from the mirrored root (a leading `/` is
//! dropped), `**` matches any number of directories, and a trailing `/` matches directories
//! only. The last rule that matches an entry decides; an entry no rule matches follows its
//! nearest directory that a rule matched, else it is taken, except that files are left out
//! when the first rule is an include (so `--include '*.csv'` alone means "only CSV files").
//! An excluded directory is not descended into, and entries excluded at the destination are
//! never deleted.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use ftps_proto::listing_parse::TimePrecision;
use globset::{GlobBuilder, GlobMatcher};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::path::join;
use crate::pool::Pool;
use crate::retry::{is_transient, RetryPolicy};
use crate::session::FtpsClient;

/// One `--include` or `--exclude` rule.
#[derive(Clone, Debug)]
struct Rule {
    include: bool,
    text: String,
    matcher: GlobMatcher,
    dir_only: bool,
    anchored: bool,
}

/// Include and exclude rules, in the order given (see the module documentation).
#[derive(Clone, Debug, Default)]
pub struct Rules {
    rules: Vec<Rule>,
}

/// Why an entry is left out: the rule that excluded it (or its directory), or `None` for
/// the default of an include list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Excluded {
    /// The deciding rule as written (`--exclude PATTERN`), if a rule decided.
    pub rule: Option<String>,
}

impl Rules {
    /// No rules: everything is taken.
    pub fn new() -> Rules {
        Rules::default()
    }

    /// Adds an include rule.
    pub fn include(&mut self, pattern: &str) -> Result<()> {
        self.push(true, pattern)
    }

    /// Adds an exclude rule.
    pub fn exclude(&mut self, pattern: &str) -> Result<()> {
        self.push(false, pattern)
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    fn push(&mut self, include: bool, pattern: &str) -> Result<()> {
        let dir_only = pattern.ends_with('/');
        let body = pattern.trim_end_matches('/');
        let anchored = body.contains('/');
        let body = body.trim_start_matches('/');
        if body.is_empty() {
            return Err(Error::Config(format!("empty mirror pattern {pattern:?}")));
        }
        let glob = GlobBuilder::new(body)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| Error::Config(format!("bad mirror pattern {pattern:?}: {e}")))?;
        self.rules.push(Rule {
            include,
            text: format!(
                "--{} {pattern}",
                if include { "include" } else { "exclude" }
            ),
            matcher: glob.compile_matcher(),
            dir_only,
            anchored,
        });
        Ok(())
    }

    /// The last rule matching `rel` (a `/`-separated path from the root).
    fn last_match(&self, rel: &str, dir: bool) -> Option<&Rule> {
        let name = rel.rsplit('/').next().unwrap_or(rel);
        self.rules.iter().rev().find(|r| {
            (dir || !r.dir_only)
                && if r.anchored {
                    r.matcher.is_match(rel)
                } else {
                    r.matcher.is_match(name)
                }
        })
    }

    /// Whether the entry at `rel` is taken (`Ok`) or left out, and by which rule.
    pub fn check(&self, rel: &str, dir: bool) -> std::result::Result<(), Excluded> {
        if self.rules.is_empty() {
            return Ok(());
        }
        let mut inherited = None;
        let mut end = 0;
        // Each ancestor directory, shortest first: an excluded one hides everything below.
        while let Some(i) = rel[end..].find('/') {
            let prefix = &rel[..end + i];
            if let Some(r) = self.last_match(prefix, true) {
                if !r.include {
                    return Err(Excluded {
                        rule: Some(r.text.clone()),
                    });
                }
                inherited = Some(true);
            }
            end += i + 1;
        }
        match self.last_match(rel, dir) {
            Some(r) if r.include => Ok(()),
            Some(r) => Err(Excluded {
                rule: Some(r.text.clone()),
            }),
            None if inherited.is_some() || dir || !self.rules[0].include => Ok(()),
            None => Err(Excluded { rule: None }),
        }
    }
}

/// What to mirror and how to compare, beyond [`MirrorOptions`].
#[derive(Clone, Debug, Default)]
pub struct MirrorSettings {
    /// Include and exclude rules.
    pub rules: Rules,
    /// Leave out source files last modified before this time.
    pub newer_than: Option<SystemTime>,
    /// Compare files of equal size by SHA-256 (`HASH` on the server), ignoring times, where
    /// the server offers it; by size and time otherwise.
    pub checksum: bool,
    /// Retries of a failed transfer (connection loss, timeouts, 4xx), each on a new session
    /// and continuing what the failed attempt transferred.
    pub retry: RetryPolicy,
}

/// An entry left out, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// Relative path (a directory stands for everything in it).
    pub path: String,
    /// `excluded`, `older` (than `newer_than`) or `unchanged`.
    pub reason: &'static str,
    /// For `excluded`: the rule that decided, if one did (else the include list's default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

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
    /// Entries left out and why (unchanged files included).
    pub skipped: Vec<Skipped>,
    /// How files present on both sides were compared: `size+mtime` or `sha256`.
    pub compared_by: &'static str,
    /// Transfers that failed and were tried again.
    pub retries: u64,
}

impl MirrorReport {
    /// The number of skipped entries for each reason.
    pub fn skipped_counts(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for s in &self.skipped {
            *counts.entry(s.reason).or_insert(0) += 1;
        }
        counts
    }
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

fn local_tree(root: &Path, rules: &Rules) -> Result<(BTreeMap<String, Meta>, Vec<Skipped>)> {
    let mut out = BTreeMap::new();
    let mut skipped = Vec::new();
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
            if !m.dir && !meta.is_file() {
                continue;
            }
            if let Err(x) = rules.check(&rel_path, m.dir) {
                skipped.push(excluded(rel_path, x));
                continue;
            }
            if m.dir {
                stack.push((path, rel_path.clone()));
            }
            out.insert(rel_path, m);
        }
    }
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((out, skipped))
}

fn excluded(path: String, x: Excluded) -> Skipped {
    Skipped {
        path,
        reason: "excluded",
        rule: x.rule,
    }
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

async fn remote_tree(
    pool: &Pool,
    root: &str,
    rules: &Rules,
) -> Result<(BTreeMap<String, Meta>, Vec<Skipped>)> {
    let mut client = pool.get().await?;
    let mut out = BTreeMap::new();
    let mut skipped = Vec::new();
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
                ftps_proto::listing::FileKind::Dir | ftps_proto::listing::FileKind::File => {}
                _ => continue,
            }
            if let Err(x) = rules.check(&rel_path, m.dir) {
                skipped.push(excluded(rel_path, x));
                continue;
            }
            if m.dir {
                queue.push_back(rel_path.clone());
            }
            out.insert(rel_path, m);
        }
    }
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((out, skipped))
}

/// Leaves out source files older than `newer_than`, here and at the destination (so that
/// `delete` spares them).
fn drop_older(
    src: &mut BTreeMap<String, Meta>,
    dst: &mut BTreeMap<String, Meta>,
    newer_than: Option<SystemTime>,
) -> Vec<Skipped> {
    let Some(limit) = newer_than else {
        return Vec::new();
    };
    let older: Vec<String> = src
        .iter()
        .filter(|(_, m)| !m.dir && m.modified.is_some_and(|t| t < limit))
        .map(|(p, _)| p.clone())
        .collect();
    older
        .into_iter()
        .map(|path| {
            src.remove(&path);
            dst.remove(&path);
            Skipped {
                path,
                reason: "older",
                rule: None,
            }
        })
        .collect()
}

/// Files on both sides with the same size, whose contents `--checksum` compares.
fn checksum_candidates(src: &BTreeMap<String, Meta>, dst: &BTreeMap<String, Meta>) -> Vec<String> {
    src.iter()
        .filter(|(p, s)| !s.dir && dst.get(*p).is_some_and(|d| !d.dir && d.size == s.size))
        .map(|(p, _)| p.clone())
        .collect()
}

/// SHA-256 of a local file, lower-case hex.
fn local_sha256(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut file = std::fs::File::open(path)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// For `--checksum`: whether each candidate's contents are the same on both sides, or
/// `None` when the server does not compute SHA-256 (then size and time decide).
async fn compare_checksums(
    pool: &Pool,
    remote_root: &str,
    local_root: &Path,
    candidates: Vec<String>,
) -> Result<Option<BTreeMap<String, bool>>> {
    let mut client = pool.get().await?;
    let mut same = BTreeMap::new();
    for rel in candidates {
        let Some(remote) = client.server_sha256(&join(remote_root, &rel)).await? else {
            return Ok(None);
        };
        let local = local_path(local_root, &rel);
        let here = tokio::task::spawn_blocking(move || local_sha256(&local))
            .await
            .map_err(|e| Error::Protocol(format!("hashing failed: {e}")))??;
        same.insert(rel, here.eq_ignore_ascii_case(&remote));
    }
    if same.is_empty()
        && !client
            .features()
            .offers_hash(ftps_proto::hash::HashAlgorithm::Sha256)
    {
        return Ok(None);
    }
    Ok(Some(same))
}

fn plan(
    src: &BTreeMap<String, Meta>,
    dst: &BTreeMap<String, Meta>,
    delete: bool,
    same_content: Option<&BTreeMap<String, bool>>,
) -> (Vec<Action>, Vec<String>) {
    let mut actions = Vec::new();
    let mut unchanged = Vec::new();
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
        let reason = match same_content.and_then(|m| m.get(path)) {
            Some(true) => None,
            Some(false) => Some("checksum"),
            None => change_reason(s, d),
        };
        match reason {
            Some(reason) => actions.push(Action::Transfer {
                path: path.clone(),
                size: s.size,
                reason,
            }),
            None => unchanged.push(path.clone()),
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
    download_with(
        pool,
        remote,
        local,
        opts,
        &MirrorSettings::default(),
        progress,
    )
    .await
}

/// Mirrors the local directory `local` into the remote directory `remote`.
pub async fn upload(
    pool: &Pool,
    local: &Path,
    remote: &str,
    opts: &MirrorOptions,
    progress: Option<Progress>,
) -> Result<MirrorReport> {
    upload_with(
        pool,
        local,
        remote,
        opts,
        &MirrorSettings::default(),
        progress,
    )
    .await
}

/// Scans both sides, applies the rules, `newer_than` and `checksum`, and plans.
async fn survey(
    pool: &Pool,
    remote: &str,
    local: &Path,
    upload: bool,
    opts: &MirrorOptions,
    settings: &MirrorSettings,
) -> Result<(MirrorReport, BTreeMap<String, Meta>)> {
    let root = local.to_path_buf();
    let rules = settings.rules.clone();
    let (local_side, local_skipped) =
        tokio::task::spawn_blocking(move || local_tree(&root, &rules))
            .await
            .map_err(|e| Error::Protocol(format!("local scan failed: {e}")))??;
    let (remote_side, remote_skipped) = remote_tree(pool, remote, &settings.rules).await?;
    let (mut src, mut dst, mut skipped) = if upload {
        (local_side, remote_side, local_skipped)
    } else {
        (remote_side, local_side, remote_skipped)
    };
    skipped.extend(drop_older(&mut src, &mut dst, settings.newer_than));
    let same = if settings.checksum {
        compare_checksums(pool, remote, local, checksum_candidates(&src, &dst)).await?
    } else {
        None
    };
    let (actions, unchanged) = plan(&src, &dst, opts.delete, same.as_ref());
    skipped.extend(unchanged.iter().map(|path| Skipped {
        path: path.clone(),
        reason: "unchanged",
        rule: None,
    }));
    let report = MirrorReport {
        actions,
        unchanged: unchanged.len(),
        skipped,
        compared_by: if same.is_some() {
            "sha256"
        } else {
            "size+mtime"
        },
        ..MirrorReport::default()
    };
    Ok((report, src))
}

/// [`download`] with include/exclude rules, `newer_than`, checksums and retries.
pub async fn download_with(
    pool: &Pool,
    remote: &str,
    local: &Path,
    opts: &MirrorOptions,
    settings: &MirrorSettings,
    progress: Option<Progress>,
) -> Result<MirrorReport> {
    std::fs::create_dir_all(local)
        .map_err(|e| Error::io(format!("creating {}", local.display()), e))?;
    let (mut report, src) = survey(pool, remote, local, false, opts, settings).await?;
    if opts.dry_run {
        return Ok(report);
    }
    let actions = report.actions.clone();
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
    let (results, retries) = run_parallel(
        pool,
        opts.parallel,
        &settings.retry,
        jobs,
        progress,
        move |client, (rel, local, mtime), moved| {
            let remote = join(&remote_root, &rel);
            Box::pin(async move {
                // After an attempt that received something, the local file is this run's
                // partial copy: continue it.
                let resume = moved.load(Ordering::Relaxed) > 0;
                let r = client
                    .download_file(&remote, &local, resume, mtime, &mut |n| {
                        moved.fetch_add(n, Ordering::Relaxed);
                    })
                    .await
                    .map(|o| o.bytes);
                (rel, r)
            })
        },
    )
    .await?;
    report.retries = retries;
    collect(&mut report, results);
    Ok(report)
}

/// [`upload`] with include/exclude rules, `newer_than`, checksums and retries.
pub async fn upload_with(
    pool: &Pool,
    local: &Path,
    remote: &str,
    opts: &MirrorOptions,
    settings: &MirrorSettings,
    progress: Option<Progress>,
) -> Result<MirrorReport> {
    if !opts.dry_run {
        let mut c = pool.get().await?;
        c.mkdir_all(remote).await?;
    }
    let (mut report, src) = survey(pool, remote, local, true, opts, settings).await?;
    if opts.dry_run {
        return Ok(report);
    }
    let actions = report.actions.clone();
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
    let (results, retries) = run_parallel(
        pool,
        opts.parallel,
        &settings.retry,
        jobs,
        progress,
        move |client, (rel, local, mtime), moved| {
            let remote = join(&remote_root, &rel);
            Box::pin(async move {
                // After an attempt that sent something, continue after what the server has.
                let resume = moved.load(Ordering::Relaxed) > 0;
                let r = client
                    .upload_file(&local, &remote, resume, &mut |n| {
                        moved.fetch_add(n, Ordering::Relaxed);
                    })
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
    report.retries = retries;
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

/// Runs `jobs` on up to `parallel` sessions. A job that fails for a passing reason is tried
/// again per `policy` on a fresh session (`work` gets a counter of what earlier attempts of
/// the job moved, to continue from there); with no retries configured, a job whose session
/// was lost is still tried once more at once. Returns the results and the number of retries.
async fn run_parallel<J, F>(
    pool: &Pool,
    parallel: usize,
    policy: &RetryPolicy,
    jobs: Vec<J>,
    progress: Option<Progress>,
    work: F,
) -> Result<(Vec<(String, Result<u64>)>, u64)>
where
    J: Clone + Send + 'static,
    F: for<'a> Fn(&'a mut FtpsClient, J, Arc<AtomicU64>) -> JobFuture<'a> + Send + Sync + 'static,
{
    let queue = Arc::new(Mutex::new(VecDeque::from(jobs)));
    let results = Arc::new(Mutex::new(Vec::new()));
    let retries = Arc::new(AtomicU64::new(0));
    let work = Arc::new(work);
    let policy = *policy;
    let mut tasks = tokio::task::JoinSet::new();
    let workers = parallel
        .max(1)
        .min(queue.lock().map(|q| q.len()).unwrap_or(1).max(1));
    for _ in 0..workers {
        let (queue, results, work, pool, progress, retries) = (
            queue.clone(),
            results.clone(),
            work.clone(),
            pool.clone(),
            progress.clone(),
            retries.clone(),
        );
        tasks.spawn(async move {
            let mut client = pool.get().await?;
            loop {
                let job = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                let Some(job) = job else { break };
                let moved = Arc::new(AtomicU64::new(0));
                let mut attempt = 0u32;
                let (rel, r) = loop {
                    let (rel, r) = work(&mut client, job.clone(), moved.clone()).await;
                    let lost =
                        client.is_poisoned() || r.as_ref().err().is_some_and(connection_lost);
                    let again = match &r {
                        Ok(_) => false,
                        Err(_) if policy.retries == 0 => attempt == 0 && lost,
                        Err(e) => attempt < policy.retries && (lost || is_transient(e)),
                    };
                    if !again {
                        break (rel, r);
                    }
                    attempt += 1;
                    retries.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(
                        "{rel}: {:?}; retry {attempt} on a new connection",
                        r.as_ref().err()
                    );
                    if policy.retries > 0 {
                        tokio::time::sleep(policy.delay(attempt)).await;
                    }
                    client.discard();
                    client = policy.run(|_| pool.get(), |_, _, _| {}).await?;
                };
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
                    client = policy.run(|_| pool.get(), |_, _, _| {}).await?;
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
    Ok((results, retries.load(Ordering::Relaxed)))
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
        let (actions, unchanged) = plan(&src, &dst, true, None);
        assert_eq!(unchanged, vec!["b".to_string()]);
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
        let (actions, _) = plan(&src, &dst, false, None);
        assert_eq!(actions.len(), 2);
    }

    #[test]
    fn rules() {
        let mut r = Rules::new();
        r.exclude("*.tmp").unwrap();
        r.exclude("cache/").unwrap();
        r.include("keep.tmp").unwrap();
        r.exclude("/top/skip").unwrap();
        assert!(r.check("a.txt", false).is_ok());
        assert!(r.check("d/x.tmp", false).is_err());
        // The last matching rule wins.
        assert!(r.check("d/keep.tmp", false).is_ok());
        // A directory-only rule spares files of that name; an excluded directory hides its
        // contents whatever later rules say.
        assert!(r.check("cache", false).is_ok());
        assert!(r.check("cache", true).is_err());
        assert_eq!(
            r.check("cache/keep.tmp", false)
                .unwrap_err()
                .rule
                .as_deref(),
            Some("--exclude cache/")
        );
        // Anchored: only from the root.
        assert!(r.check("top/skip", false).is_err());
        assert!(r.check("other/top/skip", false).is_ok());

        // An include first makes an include list: other files out, directories walked.
        let mut only = Rules::new();
        only.include("*.csv").unwrap();
        only.exclude("old/").unwrap();
        assert!(only.check("a.csv", false).is_ok());
        assert!(only.check("sub/b.csv", false).is_ok());
        assert_eq!(only.check("a.txt", false).unwrap_err().rule, None);
        assert!(only.check("sub", true).is_ok());
        assert!(only.check("old/c.csv", false).is_err());
        // A directory included by a rule brings its files along.
        let mut dirs = Rules::new();
        dirs.include("data/").unwrap();
        assert!(dirs.check("data/x.bin", false).is_ok());
        assert!(dirs.check("x.bin", false).is_err());
        let mut deep = Rules::new();
        deep.exclude("a/**/z").unwrap();
        assert!(deep.check("a/b/c/z", false).is_err());
        assert!(deep.check("a/z", false).is_err());
        assert!(Rules::new().exclude("[").is_err());
    }

    #[test]
    fn older_files_are_left_alone() {
        let mut src = BTreeMap::new();
        src.insert("old".to_string(), m(false, 1, 100, TimePrecision::Second));
        src.insert("new".to_string(), m(false, 1, 300, TimePrecision::Second));
        let mut dst = BTreeMap::new();
        dst.insert("old".to_string(), m(false, 9, 100, TimePrecision::Second));
        let skipped = drop_older(
            &mut src,
            &mut dst,
            Some(UNIX_EPOCH + Duration::from_secs(200)),
        );
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].path, "old");
        assert!(!src.contains_key("old") && !dst.contains_key("old"));
        assert!(src.contains_key("new"));
    }
}
