//! `ftps hash`: SHA-256 of a remote file, by the server where it can, else computed here.

use std::pin::Pin;
use std::task::{Context, Poll};

use sha2::{Digest, Sha256};

use crate::args::Opts;
use crate::output::Output;
use crate::session::Session;

/// With `download`, always streams the file and hashes it here, which also checks the
/// whole transfer path.
pub async fn run(opts: &Opts, out: &Output, url: &str, download: bool) -> anyhow::Result<()> {
    let mut s = Session::resolve(opts, url)?;
    let mut c = s.connect().await?;
    let by_server = if download {
        None
    } else {
        c.server_sha256(&s.target.path).await?
    };
    let (hex, computed_by) = match by_server {
        Some(hex) => (hex, "server"),
        None => {
            let mut hasher = HashWriter(Sha256::new());
            c.download(&s.target.path, &mut hasher, 0, &mut |_| {})
                .await?;
            (format!("{:x}", hasher.0.finalize()), "client")
        }
    };
    out.hash(&s.target.path, &hex, computed_by);
    c.quit().await?;
    Ok(())
}

/// An `AsyncWrite` that feeds a hash.
struct HashWriter(Sha256);

impl tokio::io::AsyncWrite for HashWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.get_mut().0.update(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
