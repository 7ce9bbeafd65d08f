//! `ftps mkdir`: create a remote directory, with `-p` its parents too.

use crate::args::Opts;
use crate::output::Output;
use crate::session::Session;

pub async fn run(opts: &Opts, out: &Output, url: &str, parents: bool) -> anyhow::Result<()> {
    let mut s = Session::resolve(opts, url)?;
    let mut c = s.connect().await?;
    if parents {
        c.mkdir_all(&s.target.path).await?;
    } else {
        c.mkdir(&s.target.path).await?;
    }
    out.done("mkdir", &s.target.path);
    c.quit().await?;
    Ok(())
}
