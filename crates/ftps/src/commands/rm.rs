//! `ftps rm`: delete a remote file.

use crate::args::Opts;
use crate::output::Output;
use crate::session::Session;

pub async fn run(opts: &Opts, out: &Output, url: &str) -> anyhow::Result<()> {
    let mut s = Session::resolve(opts, url)?;
    let mut c = s.connect().await?;
    c.delete(&s.target.path).await?;
    out.done("rm", &s.target.path);
    c.quit().await?;
    Ok(())
}
