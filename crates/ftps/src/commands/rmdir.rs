//! `ftps rmdir`: remove an empty remote directory.

use crate::args::Opts;
use crate::output::Output;
use crate::session::Session;

pub async fn run(opts: &Opts, out: &Output, url: &str) -> anyhow::Result<()> {
    let mut s = Session::resolve(opts, url)?;
    let mut c = s.connect().await?;
    c.rmdir(&s.target.path).await?;
    out.done("rmdir", &s.target.path);
    c.quit().await?;
    Ok(())
}
