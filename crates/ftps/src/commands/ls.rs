//! `ftps ls`: list a directory, sorted by name, or the entries a wildcard pattern matches.

use ftps_client::glob::RemoteGlob;

use crate::args::Opts;
use crate::exit::{no_match_message, usage};
use crate::output::Output;
use crate::session::Session;

pub async fn run(opts: &Opts, out: &Output, url: &str, long: bool) -> anyhow::Result<()> {
    let mut s = Session::resolve(opts, url)?;
    let glob = RemoteGlob::parse(&s.target.path).map_err(|e| usage(e.to_string()))?;
    let mut c = s.connect().await?;
    let mut entries = if glob.is_pattern() {
        // Like `ls -d PATTERN`: the matching entries themselves, not what is in them.
        c.glob(&s.target.path)
            .await
            .map_err(no_match_message)?
            .into_iter()
            .map(|m| m.entry)
            .collect()
    } else {
        c.list_dir(&s.target.path).await?
    };
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    out.listing(&entries, long);
    c.quit().await?;
    Ok(())
}
