//! `ftps rm`: delete a remote file, or every file a wildcard pattern matches.

use ftps_client::glob::RemoteGlob;
use ftps_client::FileKind;

use crate::args::Opts;
use crate::exit::{no_match_message, usage};
use crate::output::Output;
use crate::session::Session;

/// With a pattern, every matching file is deleted; matching directories are left alone and
/// reported, and the first failure is what the command fails with, after trying the rest.
pub async fn run(opts: &Opts, out: &Output, url: &str) -> anyhow::Result<()> {
    let mut s = Session::resolve(opts, url)?;
    let glob = RemoteGlob::parse(&s.target.path).map_err(|e| usage(e.to_string()))?;
    let mut c = s.connect().await?;
    if !glob.is_pattern() {
        c.delete(&s.target.path).await?;
        out.done("rm", &s.target.path);
        c.quit().await?;
        return Ok(());
    }
    let mut first_error: Option<anyhow::Error> = None;
    for m in c.glob(&s.target.path).await.map_err(no_match_message)? {
        if m.entry.kind == FileKind::Dir {
            out.note(&format!(
                "{}: is a directory; not removed (use rmdir)",
                m.path
            ));
            continue;
        }
        match c.delete(&m.path).await {
            Ok(()) => out.done("rm", &m.path),
            Err(e) => {
                eprintln!("ftps: {}: {e}", m.path);
                first_error.get_or_insert(e.into());
            }
        }
    }
    c.quit().await?;
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
