//! A transport that keeps the last bytes the peer sent.
//!
//! A server that gives up with a plain-text reply on a TLS connection (vsftpd's
//! `500 OOPS: ...`) can then be quoted: the TLS layer above only sees an invalid record.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How many of the last bytes received are kept.
const KEEP: usize = 512;

/// `inner`, remembering the last [`KEEP`] bytes read from it.
pub struct Tail<S> {
    inner: S,
    last: Vec<u8>,
}

impl<S> Tail<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Tail<S> {
        Tail {
            inner,
            last: Vec::with_capacity(2 * KEEP),
        }
    }

    /// The transport itself.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The transport, without the bytes kept.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The reply in plain text at the end of what the server sent, if there is one (a TLS
    /// record's bytes before it may happen to be printable: the text starts at a reply code).
    pub fn plain_text(&self) -> Option<String> {
        let printable = |b: &u8| b.is_ascii_graphic() || matches!(b, b' ' | b'\r' | b'\n');
        let start = self
            .last
            .iter()
            .rposition(|b| !printable(b))
            .map_or(0, |i| i + 1);
        let text = &self.last[start..];
        let code = text
            .windows(4)
            .position(|w| w[..3].iter().all(u8::is_ascii_digit) && matches!(w[3], b' ' | b'-'))?;
        Some(String::from_utf8_lossy(&text[code..]).trim().to_string())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tail<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        let new = &buf.filled()[before..];
        if !new.is_empty() {
            let keep = new.len().min(KEEP);
            this.last.extend_from_slice(&new[new.len() - keep..]);
            if this.last.len() > KEEP {
                let cut = this.last.len() - KEEP;
                this.last.drain(..cut);
            }
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tail<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail_of(bytes: &[u8]) -> Tail<()> {
        Tail {
            inner: (),
            last: bytes.to_vec(),
        }
    }

    #[test]
    fn plain_text_reply_after_tls_records_is_quoted() {
        let mut bytes = vec![0x17, 0x03, 0x03, 0x00, 0x05, 0x9c, b'4', b'2', b'1', 0x01];
        bytes.extend_from_slice(b"xy500 OOPS: priv_sock_get_cmd\r\n");
        assert_eq!(
            tail_of(&bytes).plain_text().as_deref(),
            Some("500 OOPS: priv_sock_get_cmd")
        );
    }

    #[test]
    fn tls_records_alone_are_not_text() {
        assert_eq!(
            tail_of(&[0x17, 0x03, 0x03, 0x00, 0x13, 0xf0]).plain_text(),
            None
        );
        assert_eq!(tail_of(b"").plain_text(), None);
    }
}
