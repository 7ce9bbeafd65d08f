//! `ftps put`: upload a file, or with `-c` continue after the remote size.

use std::path::Path;
use std::time::Instant;

use std::sync::Arc;

use anyhow::Context;
use ftps_client::segmented;

use crate::args::Opts;
use crate::exit::usage;
use crate::output::{Output, Transfer};
use crate::session::{retry_policy, Session};

/// A URL ending in `/` (or naming no path) keeps the local file's name.
pub async fn run(
    opts: &Opts,
    out: &Output,
    local: &Path,
    url: &str,
    resume: bool,
) -> anyhow::Result<()> {
    let mut s = Session::resolve(opts, url)?;
    let mut remote = s.target.path.clone();
    let name = local
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| usage(format!("{} names no file", local.display())))?;
    if remote.is_empty() || remote.ends_with('/') {
        remote.push_str(&name);
    }
    let len = std::fs::metadata(local)
        .with_context(|| format!("reading {}", local.display()))?
        .len();
    let c = s.connect().await?;
    let pool = s.pool(1);
    pool.add_idle(c);
    let bar = out.bytes_bar(Some(len), &name);
    let started = Instant::now();
    let b2 = bar.clone();
    let outcome = segmented::upload(
        &pool,
        local,
        &remote,
        resume,
        &retry_policy(opts),
        Arc::new(move |n| b2.inc(n)),
    )
    .await?;
    bar.finish_and_clear();
    let offset = outcome.resumed_from;
    let mut c = pool.get().await?;
    let secs = started.elapsed().as_secs_f64();
    super::check_uploaded(c.size(&remote).await.ok(), &remote, local, len)?;
    out.transfer(&Transfer {
        what: "put",
        remote: &remote,
        local,
        bytes: outcome.bytes,
        resumed_from: offset,
        secs,
        tls_resumed: outcome.tls_resumed,
        segments: 1,
        retries: outcome.retries,
    });
    drop(c);
    pool.close().await;
    Ok(())
}
