//! `ftps cat`: a remote file to standard output.

use tokio::io::AsyncWriteExt;

use crate::args::Opts;
use crate::session::Session;

pub async fn run(opts: &Opts, url: &str) -> anyhow::Result<()> {
    let mut s = Session::resolve(opts, url)?;
    let mut c = s.connect().await?;
    let mut out = tokio::io::stdout();
    c.download(&s.target.path, &mut out, 0, &mut |_| {}).await?;
    out.flush().await?;
    c.quit().await?;
    Ok(())
}
