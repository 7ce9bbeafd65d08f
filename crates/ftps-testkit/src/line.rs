//! The core of a raw-line FTPS control connection: lines out, replies in, and the TLS
//! handshake after `AUTH TLS`. Knows nothing of commands; the tests' [`crate::client`] and the
//! benchmark's client put their own policies (panics and transcripts, or errors) on top.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use ftps_proto::reply::{ReplyDecodeError, ReplyDecoder};
use ftps_proto::Reply;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::stream::Stream;
use crate::tail::Tail;

/// The transport of a control connection: the last bytes received are kept, to quote a
/// server that answers in plain text on a TLS connection.
pub type ControlStream = Stream<Tail<TcpStream>>;

/// One control connection: a stream, the bytes read but not yet split into lines, and the
/// reply decoder.
pub struct LineConn {
    /// `None` after a failed handshake or a failed end of TLS: the connection is gone.
    stream: Option<ControlStream>,
    buf: Vec<u8>,
    decoder: ReplyDecoder,
    /// Longest wait for a read or a handshake.
    timeout: Duration,
}

impl LineConn {
    /// A plaintext control connection over `tcp`, accepting replies of up to `max_lines`
    /// lines and waiting at most `timeout` for each read.
    pub fn new(tcp: TcpStream, max_lines: usize, timeout: Duration) -> LineConn {
        LineConn {
            stream: Some(Stream::Plain(Tail::new(tcp))),
            buf: Vec::new(),
            decoder: ReplyDecoder::new(max_lines),
            timeout,
        }
    }

    /// The stream, unless the connection is gone.
    pub fn stream(&self) -> Option<&ControlStream> {
        self.stream.as_ref()
    }

    /// Takes the stream out (the connection is gone until [`LineConn::set_stream`]).
    pub fn take_stream(&mut self) -> Option<ControlStream> {
        self.stream.take()
    }

    /// Puts a stream (back) in place, e.g. after ending TLS.
    pub fn set_stream(&mut self, stream: ControlStream) {
        self.stream = Some(stream);
    }

    /// Whether the connection runs TLS.
    pub fn is_tls(&self) -> bool {
        self.stream.as_ref().is_some_and(Stream::is_tls)
    }

    /// Bytes received that do not make a complete line yet.
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// A plain-text reply at the end of what the server sent, if it wrote one (see
    /// [`Tail::plain_text`]).
    pub fn plain_text(&self) -> Option<String> {
        match self.stream.as_ref()? {
            Stream::Plain(s) => s.plain_text(),
            Stream::Tls(s) => s.get_ref().0.plain_text(),
        }
    }

    /// Writes `bytes` and flushes them; no time limit.
    pub async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.stream {
            Some(s) => write_flush(s, bytes).await,
            None => Err(io::Error::other("connection is gone")),
        }
    }

    /// Reads one line without its CRLF; `None` once the server closed the connection (what
    /// came without a line end stays in [`LineConn::pending`]).
    pub async fn read_line(&mut self) -> io::Result<Option<String>> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..end + 2).take(end).collect();
                return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
            }
            let mut chunk = [0u8; 4096];
            let read = async {
                match &mut self.stream {
                    Some(s) => s.read(&mut chunk).await,
                    None => Ok(0),
                }
            };
            let n = with_timeout(self.timeout, "reply", read).await?;
            if n == 0 {
                return Ok(None);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Feeds one line to the reply decoder: the reply once its last line came.
    pub fn decode(&mut self, line: &str) -> Result<Option<Reply>, ReplyDecodeError> {
        self.decoder.feed_line(line)
    }

    /// Reads one whole reply; `None` if the server closed the connection first. A reply
    /// that does not decode is an [`io::ErrorKind::InvalidData`] error.
    pub async fn read_reply(&mut self) -> io::Result<Option<Reply>> {
        loop {
            let Some(line) = self.read_line().await? else {
                return Ok(None);
            };
            match self.decode(&line) {
                Ok(Some(reply)) => return Ok(Some(reply)),
                Ok(None) => {}
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
            }
        }
    }

    /// Runs the TLS handshake on the plaintext connection (after `AUTH TLS`, or at once for
    /// implicit FTPS); on failure the connection is gone.
    pub async fn start_tls(
        &mut self,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
        what: &str,
    ) -> io::Result<()> {
        let Some(Stream::Plain(tcp)) = self.stream.take() else {
            panic!("start_tls on a connection that is not plain");
        };
        let tls = with_timeout(
            self.timeout,
            what,
            TlsConnector::from(config).connect(name, tcp),
        )
        .await?;
        self.stream = Some(Stream::Tls(Box::new(tls)));
        Ok(())
    }
}

/// Writes all of `bytes` and flushes.
pub async fn write_flush<S: AsyncWrite + Unpin>(s: &mut S, bytes: &[u8]) -> io::Result<()> {
    s.write_all(bytes).await?;
    s.flush().await
}

/// `fut`, or a [`io::ErrorKind::TimedOut`] error naming `what` after `timeout`.
pub async fn with_timeout<T>(
    timeout: Duration,
    what: &str,
    fut: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{what}: nothing within {timeout:?}"),
        )),
    }
}
