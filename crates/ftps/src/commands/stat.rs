//! `ftps stat`: type, size, modification time and mode of a remote path.

use crate::args::Opts;
use crate::output::Output;
use crate::session::Session;

pub async fn run(opts: &Opts, out: &Output, url: &str) -> anyhow::Result<()> {
    let mut s = Session::resolve(opts, url)?;
    let mut c = s.connect().await?;
    let e = c.stat(&s.target.path).await?;
    out.stat(&s.target.path, &e);
    c.quit().await?;
    Ok(())
}
