//! `ftps get`: download a file, or with `-c` continue a partial one.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::bail;

use crate::args::Opts;
use crate::exit::{transfer_failed, usage};
use crate::output::{Output, Transfer};
use crate::session::Session;

/// `local` is a file, a directory to put it in, or by default the remote name here.
pub async fn run(
    opts: &Opts,
    out: &Output,
    url: &str,
    local: Option<PathBuf>,
    resume: bool,
) -> anyhow::Result<()> {
    let mut s = Session::resolve(opts, url)?;
    let remote = s.target.path.clone();
    let name = ftps_client::client::basename(&remote).to_string();
    if name.is_empty() {
        return Err(usage("the URL names no file"));
    }
    let local = match local {
        Some(p) if p.is_dir() => p.join(&name),
        Some(p) => p,
        None => PathBuf::from(&name),
    };
    let mut c = s.connect().await?;
    let size = c.size(&remote).await.ok();
    let mtime = c.mdtm(&remote).await.ok();
    let existing = if resume {
        std::fs::metadata(&local).map(|m| m.len()).unwrap_or(0)
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
        c.quit().await?;
        return Ok(());
    }
    let bar = out.bytes_bar(size, &name);
    bar.set_position(existing);
    let started = Instant::now();
    let outcome = c
        .download_file(&remote, &local, resume, mtime, &mut |n| bar.inc(n))
        .await?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    // Compare with the size the server announced, if it did.
    let total = std::fs::metadata(&local).map(|m| m.len()).unwrap_or(0);
    if let Some(sz) = size {
        if total != sz {
            return Err(transfer_failed(format!(
                "{} has {total} bytes but the server said {sz}",
                local.display()
            )));
        }
    }
    out.transfer(&Transfer {
        what: "get",
        remote: &remote,
        local: &local,
        bytes: outcome.bytes,
        resumed_from: existing,
        secs,
        tls_resumed: outcome.resumed,
    });
    c.quit().await?;
    Ok(())
}
