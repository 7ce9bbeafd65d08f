//! `ftps get`: download a file, every file a wildcard pattern matches, or with `-c` continue a
//! partial one; optionally over several connections (`--segments`), with retries.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::bail;
use ftps_client::glob::RemoteGlob;
use ftps_client::segmented::{self, DownloadOptions};
use ftps_client::{FileKind, Pool};

use crate::args::Opts;
use crate::exit::{no_match_message, usage};
use crate::output::{Output, Transfer};
use crate::session::{retry_policy, Session};

/// `local` is a file, a directory to put it in, or by default the remote name here. For a
/// pattern, `local` must be a directory (default: here).
pub async fn run(
    opts: &Opts,
    out: &Output,
    url: &str,
    local: Option<PathBuf>,
    resume: bool,
    segments: usize,
) -> anyhow::Result<()> {
    let mut s = Session::resolve(opts, url)?;
    let remote = s.target.path.clone();
    if resume && segments > 1 {
        return Err(usage(
            "--continue works with one stream only (no --segments)",
        ));
    }
    let glob = RemoteGlob::parse(&remote).map_err(|e| usage(e.to_string()))?;
    let mut c = s.connect().await?;
    let files: Vec<(String, Option<u64>)> = if glob.is_pattern() {
        let found = c.glob(&remote).await.map_err(no_match_message)?;
        let files: Vec<_> = found
            .iter()
            .filter(|m| m.entry.kind == FileKind::File)
            .map(|m| (m.path.clone(), m.entry.size))
            .collect();
        for m in found.iter().filter(|m| m.entry.kind != FileKind::File) {
            out.note(&format!("{}: not a file; skipped", m.path));
        }
        if files.is_empty() {
            return Err(no_match_message(ftps_client::glob::no_match(&remote)));
        }
        files
    } else {
        vec![(remote.clone(), None)]
    };
    let dir = match (&local, glob.is_pattern()) {
        (Some(p), true) if !p.is_dir() => {
            return Err(usage(format!(
                "{} is not a directory (a pattern can match several files)",
                p.display()
            )))
        }
        (Some(p), true) => Some(p.clone()),
        (None, true) => Some(PathBuf::from(".")),
        _ => None,
    };
    let pool = s.pool(segments.max(1));
    pool.add_idle(c);
    for (path, _) in &files {
        let name = ftps_client::client::basename(path).to_string();
        if name.is_empty() {
            return Err(usage("the URL names no file"));
        }
        let target = match (&dir, &local) {
            (Some(d), _) => d.join(&name),
            (None, Some(p)) if p.is_dir() => p.join(&name),
            (None, Some(p)) => p.clone(),
            (None, None) => PathBuf::from(&name),
        };
        get_one(opts, out, &pool, path, &target, resume, segments).await?;
    }
    pool.close().await;
    Ok(())
}

async fn get_one(
    opts: &Opts,
    out: &Output,
    pool: &Pool,
    remote: &str,
    local: &Path,
    resume: bool,
    segments: usize,
) -> anyhow::Result<()> {
    let name = ftps_client::client::basename(remote).to_string();
    let (size, mtime) = {
        let mut c = pool.get().await?;
        (c.size(remote).await.ok(), c.mdtm(remote).await.ok())
    };
    let existing = if resume {
        std::fs::metadata(local).map(|m| m.len()).unwrap_or(0)
    } else {
        0
    };
    if resume && size.is_some_and(|sz| existing >= sz) {
        if existing > size.unwrap_or(0) {
            bail!(
                "{} is longer ({existing} bytes) than the remote file ({} bytes); not resuming",
                local.display(),
                size.unwrap_or(0)
            );
        }
        out.note(&format!("{} is already complete", local.display()));
        return Ok(());
    }
    let bar = out.bytes_bar(size, &name);
    bar.set_position(existing);
    let started = Instant::now();
    let b2 = bar.clone();
    let dopts = DownloadOptions {
        segments,
        resume,
        retry: retry_policy(opts),
        mtime,
    };
    let outcome = segmented::download(
        pool,
        remote,
        local,
        size,
        &dopts,
        Arc::new(move |n| b2.inc(n)),
    )
    .await?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    super::check_downloaded(local, size)?;
    out.transfer(&Transfer {
        what: "get",
        remote,
        local,
        bytes: outcome.bytes,
        resumed_from: existing,
        secs,
        tls_resumed: outcome.tls_resumed,
        segments: outcome.segments,
        retries: outcome.retries,
    });
    Ok(())
}
