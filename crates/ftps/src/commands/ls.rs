//! `ftps ls`: list a directory, sorted by name.

use crate::args::Opts;
use crate::output::Output;
use crate::session::Session;

pub async fn run(opts: &Opts, out: &Output, url: &str, long: bool) -> anyhow::Result<()> {
    let mut s = Session::resolve(opts, url)?;
    let mut c = s.connect().await?;
    let mut entries = c.list_dir(&s.target.path).await?;
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    out.listing(&entries, long);
    c.quit().await?;
    Ok(())
}
