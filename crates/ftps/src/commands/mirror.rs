//! `ftps mirror`: a directory tree up (local -> URL) or down (URL -> local), in parallel.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ftps_client::mirror::{self, MirrorOptions};
use ftps_client::{Endpoint, Pool};

use crate::args::Opts;
use crate::exit::{transfer_failed, usage};
use crate::output::Output;
use crate::session::Session;
use crate::target::is_url;

/// Which way it goes depends on which of `source` and `destination` is the URL.
pub async fn run(
    opts: &Opts,
    out: &Output,
    source: String,
    destination: String,
    parallel: usize,
    delete: bool,
    dry_run: bool,
) -> anyhow::Result<()> {
    let mopts = MirrorOptions {
        parallel: parallel.max(1),
        delete,
        dry_run,
    };
    let (url, local, upload) = match (is_url(&source), is_url(&destination)) {
        (true, false) => (source, PathBuf::from(destination), false),
        (false, true) => (destination, PathBuf::from(source), true),
        _ => return Err(usage("mirror needs one URL and one local directory")),
    };
    let mut s = Session::resolve(opts, &url)?;
    // One session first: checks the certificate and the login (asking for the
    // password if needed) before starting the parallel ones.
    let probe = s.connect().await?;
    probe.quit().await?;
    let endpoint = Endpoint {
        host: s.target.host.clone(),
        port: s.target.port,
        user: s.user.clone(),
        password: s.password.clone().unwrap_or_default(),
    };
    let pool = Pool::new(s.connector.clone(), endpoint, mopts.parallel);
    let bar = out.files_spinner();
    let b2 = bar.clone();
    let bytes = Arc::new(AtomicU64::new(0));
    let bytes2 = bytes.clone();
    let progress: mirror::Progress = Arc::new(move |d: &mirror::FileDone| {
        let total = bytes2.fetch_add(d.bytes, Ordering::Relaxed) + d.bytes;
        b2.inc(1);
        b2.set_message(format!(
            "{} transferred; {}",
            indicatif::HumanBytes(total),
            d.path
        ));
    });
    let started = Instant::now();
    let remote = s.target.path.clone();
    if upload && !local.is_dir() {
        return Err(usage(format!("{} is not a directory", local.display())));
    }
    let report = if upload {
        mirror::upload(&pool, &local, &remote, &mopts, Some(progress)).await?
    } else {
        mirror::download(&pool, &remote, &local, &mopts, Some(progress)).await?
    };
    bar.finish_and_clear();
    pool.close().await;
    out.mirror(&report, upload, dry_run, started.elapsed().as_secs_f64());
    if !report.failed.is_empty() {
        return Err(transfer_failed(format!(
            "{} of {} transfers failed",
            report.failed.len(),
            report.failed.len() + report.transferred
        )));
    }
    Ok(())
}
