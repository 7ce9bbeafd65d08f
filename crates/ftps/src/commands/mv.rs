//! `ftps mv`: rename or move a remote file or directory.

use ftps_client::client::{join, parent};

use crate::args::Opts;
use crate::output::Output;
use crate::session::Session;

/// `new_path` is absolute, or relative to the directory of the old name.
pub async fn run(opts: &Opts, out: &Output, url: &str, new_path: String) -> anyhow::Result<()> {
    let mut s = Session::resolve(opts, url)?;
    let to = if new_path.starts_with('/') {
        new_path
    } else {
        join(&parent(&s.target.path), &new_path)
    };
    let mut c = s.connect().await?;
    c.rename(&s.target.path, &to).await?;
    out.moved(&s.target.path, &to);
    c.quit().await?;
    Ok(())
}
