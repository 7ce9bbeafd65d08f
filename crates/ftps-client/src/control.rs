//! The control connection (RFC 959 §5.2): a byte stream (clear until `AUTH TLS`, then TLS),
//! command lines out and replies in.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use ftps_proto::reply::ReplyDecoder;
use ftps_proto::{Command, Reply};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::error::{redact, Connection, Error, Result};

/// Longest control line accepted from a server.
const MAX_LINE: usize = 16 * 1024;
/// Most lines in one multi-line reply (FEAT, STAT, HELP).
const MAX_REPLY_LINES: usize = 10_000;

/// The control connection's transport.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Only while switching from one to the other.
    Gone,
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Gone => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Gone => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Gone => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Gone => Poll::Ready(Ok(())),
        }
    }
}

/// Sends commands and assembles replies. Reading is cancel-safe: everything received is kept
/// in `buf` and the decoder, so a `select!` may drop a pending read without losing bytes.
pub(crate) struct Control {
    pub(crate) stream: Stream,
    buf: Vec<u8>,
    decoder: ReplyDecoder,
    pub(crate) io_timeout: Duration,
}

impl Control {
    pub(crate) fn new(stream: Stream, io_timeout: Duration) -> Control {
        Control {
            stream,
            buf: Vec::with_capacity(1024),
            decoder: ReplyDecoder::new(MAX_REPLY_LINES),
            io_timeout,
        }
    }

    /// Whether bytes were received that no reply has consumed yet.
    pub(crate) fn has_buffered(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Sends one command, formatted by the protocol crate.
    pub(crate) async fn send(&mut self, command: &Command) -> Result<()> {
        let shown = command.to_string();
        match command.to_line() {
            Ok(line) => self.write_line(line.as_bytes(), &shown).await,
            Err(_) => Err(refused(&shown)),
        }
    }

    /// Sends a command line a caller wrote.
    pub(crate) async fn send_raw(&mut self, command: &str) -> Result<()> {
        let shown = redact(command);
        if command.contains(['\r', '\n']) {
            return Err(refused(&shown));
        }
        let line = format!("{command}\r\n");
        self.write_line(line.as_bytes(), &shown).await
    }

    /// Writes a line that ends in CRLF; `shown` is the command as logs may show it.
    async fn write_line(&mut self, line: &[u8], shown: &str) -> Result<()> {
        tracing::debug!(target: "ftps_client::control", "> {shown}");
        let write = async {
            self.stream.write_all(line).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(self.io_timeout, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::Tls {
                context: Connection::Control,
                source: e,
            }),
            Err(_) => Err(Error::Timeout(format!("sending {shown}"))),
        }
    }

    fn take_line(&mut self) -> Result<Option<String>> {
        match self.buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let mut line: Vec<u8> = self.buf.drain(..=i).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                Ok(Some(String::from_utf8_lossy(&line).into_owned()))
            }
            None if self.buf.len() > MAX_LINE => Err(Error::Protocol("reply line too long".into())),
            None => Ok(None),
        }
    }

    /// Reads one complete reply, without a time limit (callers add one). Cancel-safe.
    pub(crate) async fn read_reply_untimed(&mut self) -> Result<Reply> {
        loop {
            while let Some(line) = self.take_line()? {
                tracing::debug!(target: "ftps_client::control", "< {line}");
                match self.decoder.feed_line(&line) {
                    Ok(Some(reply)) => return Ok(reply),
                    Ok(None) => {}
                    Err(e) => return Err(Error::Protocol(e.to_string())),
                }
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await.map_err(|e| {
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    Error::Closed
                } else {
                    Error::Tls {
                        context: Connection::Control,
                        source: e,
                    }
                }
            })?;
            if n == 0 {
                return Err(Error::Closed);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads one complete reply within the I/O time limit.
    pub(crate) async fn read_reply(&mut self) -> Result<Reply> {
        let limit = self.io_timeout;
        match tokio::time::timeout(limit, self.read_reply_untimed()).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout(format!(
                "waiting {}s for a reply",
                limit.as_secs()
            ))),
        }
    }
}

/// A line break inside a command would let its rest be read as another command.
fn refused(shown: &str) -> Error {
    Error::Protocol(format!(
        "refusing to send a command containing CR or LF: {shown:?}"
    ))
}
