//! Transfers: a command that moves data (`RETR`, `STOR`, `APPE`, and the listings), its
//! preliminary reply, the data stream, and its completion (RFC 959 §5.4: a 1yz reply, the
//! data, then 226 or 250; RFC 4217 §10: the data connection ends with a TLS close_notify);
//! and whole downloads and uploads built on them.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use ftps_proto::{Command, Reply};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_rustls::client::TlsStream;

use crate::data::{DataHandshake, DataSocket};
use crate::error::{Connection, Error, Result};
use crate::session::FtpsClient;
use crate::tls::handshake_error;

/// Size of the buffers used to copy file data.
pub const COPY_BUFFER: usize = 256 * 1024;

/// What a finished transfer reports.
#[derive(Clone, Debug)]
pub struct TransferOutcome {
    /// Bytes moved over the data connection.
    pub bytes: u64,
    /// Whether the data connection's TLS handshake resumed the control session.
    pub resumed: bool,
    /// The server's final reply (226 or 250).
    pub reply: Reply,
    /// The server closed the data connection without a TLS close_notify; the transfer was
    /// accepted because the server confirmed it with its final reply.
    pub missing_close_notify: bool,
}

/// A transfer in progress: read from it (downloads) or write to it (uploads), then call
/// [`Transfer::finish`], which closes the data connection with a TLS close_notify and checks
/// the server's final reply. Dropping it unfinished leaves the session unusable
/// ([`Error::Poisoned`]); use [`Transfer::abort`] to cancel.
pub struct Transfer<'a> {
    client: &'a mut FtpsClient,
    data: Option<TlsStream<DataSocket>>,
    command: Command,
    final_reply: Option<Reply>,
    missing_close_notify: bool,
    bytes: u64,
    resumed: bool,
    upload: bool,
}

impl std::fmt::Debug for Transfer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transfer")
            .field("command", &format_args!("{}", self.command))
            .field("bytes", &self.bytes)
            .field("resumed", &self.resumed)
            .finish_non_exhaustive()
    }
}

impl FtpsClient {
    /// Opens a data connection for `command` and returns the transfer once the server has
    /// accepted the command and the TLS handshake (resuming the control session) is done.
    pub(crate) async fn open_transfer(
        &mut self,
        command: Command,
        offset: u64,
        upload: bool,
    ) -> Result<Transfer<'_>> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        self.keep_resumable().await;
        let mut handshake: DataHandshake = self.start_data_connection(&command, offset).await?;
        self.poisoned = true;
        let mut tls_result: Option<io::Result<TlsStream<DataSocket>>> = None;
        let io_limit = self.config.io_timeout;
        // The server may answer before or after the handshake ends; wait for both.
        let first = loop {
            tokio::select! {
                reply = self.ctl.read_reply() => break reply,
                res = &mut handshake, if tls_result.is_none() => tls_result = Some(res),
            }
        };
        let first = first?;
        if first.code.is_failure() {
            // The server refused the command; no transfer is pending.
            self.poisoned = false;
            return Err(Error::reply_err(&command, first));
        }
        let mut final_reply = None;
        if !first.code.is_preliminary() {
            if first.code.is_completion() {
                final_reply = Some(first);
            } else {
                return Err(Error::reply_err(&command, first));
            }
        }
        let tls = match tls_result {
            Some(r) => r,
            None => match tokio::time::timeout(io_limit, &mut handshake).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(Error::Timeout(
                        "in the data connection's TLS handshake".into(),
                    ))
                }
            },
        };
        let tls = match tls {
            Ok(t) => t,
            Err(e) => {
                // The server usually explains (522 on refused session reuse): prefer its words.
                if final_reply.is_none() {
                    if let Ok(Ok(reply)) =
                        tokio::time::timeout(Duration::from_secs(5), self.ctl.read_reply()).await
                    {
                        if reply.code.is_failure() {
                            self.poisoned = false;
                            return Err(Error::reply_err(&command, reply));
                        }
                    }
                }
                return Err(handshake_error(
                    e,
                    &self.recording,
                    &self.host,
                    Connection::Data,
                ));
            }
        };
        let resumed = self.record_data_connection(&tls, &command, upload);
        Ok(Transfer {
            client: self,
            data: Some(tls),
            command,
            final_reply,
            missing_close_notify: false,
            bytes: 0,
            resumed,
            upload,
        })
    }

    /// Starts a download (`RETR`), from byte `offset` (`REST`) if it is not zero. Read the
    /// returned stream to its end, then call [`Transfer::finish`].
    pub async fn retr(&mut self, path: &str, offset: u64) -> Result<Transfer<'_>> {
        self.open_transfer(Command::Retr(path.into()), offset, false)
            .await
    }

    /// Starts an upload (`STOR`), at byte `offset` (`REST`) if it is not zero. Write to the
    /// returned stream, then call [`Transfer::finish`].
    pub async fn stor(&mut self, path: &str, offset: u64) -> Result<Transfer<'_>> {
        self.open_transfer(Command::Stor(path.into()), offset, true)
            .await
    }

    /// Starts an append (`APPE`).
    pub async fn appe(&mut self, path: &str) -> Result<Transfer<'_>> {
        self.open_transfer(Command::Appe(path.into()), 0, true)
            .await
    }

    /// Downloads `path` into `out`, from `offset`; `progress` is called with each chunk's size.
    pub async fn download<W: AsyncWrite + Unpin>(
        &mut self,
        path: &str,
        out: &mut W,
        offset: u64,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<TransferOutcome> {
        let mut transfer = self.retr(path, offset).await?;
        let mut buf = vec![0u8; COPY_BUFFER];
        loop {
            let n = transfer.read_timed(&mut buf).await?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])
                .await
                .map_err(|e| Error::io("writing the downloaded data", e))?;
            progress(n as u64);
        }
        out.flush()
            .await
            .map_err(|e| Error::io("writing the downloaded data", e))?;
        transfer.finish().await
    }

    /// Uploads everything `input` yields to `path` (at `offset` if not zero).
    pub async fn upload<R: AsyncRead + Unpin>(
        &mut self,
        path: &str,
        input: &mut R,
        offset: u64,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<TransferOutcome> {
        let mut transfer = self.stor(path, offset).await?;
        let mut buf = vec![0u8; COPY_BUFFER];
        loop {
            let n = input
                .read(&mut buf)
                .await
                .map_err(|e| Error::io("reading the data to upload", e))?;
            if n == 0 {
                break;
            }
            transfer.write_timed(&buf[..n]).await?;
            progress(n as u64);
        }
        transfer.finish().await
    }

    /// Downloads a remote file to a local file. With `resume`, an existing local file is
    /// continued from its length (`REST`). Sets the local modification time to the remote one
    /// when `mtime` is given.
    pub async fn download_file(
        &mut self,
        remote: &str,
        local: &Path,
        resume: bool,
        mtime: Option<SystemTime>,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<TransferOutcome> {
        let existing = if resume {
            tokio::fs::metadata(local)
                .await
                .map(|m| m.len())
                .unwrap_or(0)
        } else {
            0
        };
        let mut opts = tokio::fs::OpenOptions::new();
        opts.write(true).create(true);
        if existing > 0 {
            opts.append(true);
        } else {
            opts.truncate(true);
        }
        let file = opts
            .open(local)
            .await
            .map_err(|e| Error::io(format!("opening {}", local.display()), e))?;
        let mut file = tokio::io::BufWriter::with_capacity(COPY_BUFFER, file);
        let outcome = self.download(remote, &mut file, existing, progress).await?;
        let file = file.into_inner();
        if let Some(t) = mtime {
            let std_file = file.into_std().await;
            let _ = tokio::task::spawn_blocking(move || std_file.set_modified(t)).await;
        }
        Ok(outcome)
    }

    /// Uploads a local file. With `resume`, continues after the remote file's current size.
    pub async fn upload_file(
        &mut self,
        local: &Path,
        remote: &str,
        resume: bool,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<TransferOutcome> {
        let offset = if resume {
            self.size(remote).await.unwrap_or(0)
        } else {
            0
        };
        let mut file = tokio::fs::File::open(local)
            .await
            .map_err(|e| Error::io(format!("opening {}", local.display()), e))?;
        if offset > 0 {
            use tokio::io::AsyncSeekExt;
            file.seek(io::SeekFrom::Start(offset))
                .await
                .map_err(|e| Error::io(format!("seeking in {}", local.display()), e))?;
        }
        self.upload(remote, &mut file, offset, progress).await
    }
}

impl Transfer<'_> {
    /// Whether the data connection resumed the control connection's TLS session.
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// Bytes moved so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// TLS protocol version of the data connection.
    pub fn tls_version(&self) -> Option<String> {
        self.data
            .as_ref()
            .and_then(|d| d.get_ref().1.protocol_version())
            .map(|v| format!("{v:?}"))
    }

    /// Reads with the configured I/O time limit.
    pub async fn read_timed(&mut self, buf: &mut [u8]) -> Result<usize> {
        let limit = self.client.config.io_timeout;
        let rate = self.client.config.rate_limit.clone();
        let buf = match &rate {
            Some(r) => {
                let chunk = r.chunk().min(buf.len());
                &mut buf[..chunk]
            }
            None => buf,
        };
        match tokio::time::timeout(limit, self.read(buf)).await {
            Ok(Ok(n)) => {
                if let Some(r) = rate {
                    r.consume(n).await;
                }
                Ok(n)
            }
            Ok(Err(e)) => Err(Error::Tls {
                context: Connection::Data,
                source: e,
            }),
            Err(_) => Err(Error::Timeout(format!(
                "reading the data connection ({}s without data)",
                limit.as_secs()
            ))),
        }
    }

    /// Writes all of `buf` with the configured I/O time limit.
    pub async fn write_timed(&mut self, buf: &[u8]) -> Result<()> {
        let Some(rate) = self.client.config.rate_limit.clone() else {
            return self.write_all_timed(buf).await;
        };
        for chunk in buf.chunks(rate.chunk()) {
            self.write_all_timed(chunk).await?;
            rate.consume(chunk.len()).await;
        }
        Ok(())
    }

    async fn write_all_timed(&mut self, buf: &[u8]) -> Result<()> {
        let limit = self.client.config.io_timeout;
        match tokio::time::timeout(limit, self.write_all(buf)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::Tls {
                context: Connection::Data,
                source: e,
            }),
            Err(_) => Err(Error::Timeout(format!(
                "writing the data connection ({}s without progress)",
                limit.as_secs()
            ))),
        }
    }

    /// Closes the data connection (TLS close_notify, then TCP FIN) and checks the server's
    /// final reply (226/250).
    pub async fn finish(mut self) -> Result<TransferOutcome> {
        let limit = self.client.config.io_timeout;
        let mut data = self.data.take();
        if let Some(d) = data.as_mut() {
            if self.upload {
                let close = async {
                    d.flush().await?;
                    d.shutdown().await
                };
                match tokio::time::timeout(limit, close).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        return Err(Error::Tls {
                            context: Connection::Data,
                            source: e,
                        })
                    }
                    Err(_) => return Err(Error::Timeout("closing the data connection".into())),
                }
            } else {
                let _ = tokio::time::timeout(Duration::from_secs(5), d.shutdown()).await;
            }
        }
        let reply = match self.final_reply.take() {
            Some(r) => r,
            None => {
                // Read the server's end of the data connection while waiting for its reply:
                // that picks up TLS 1.3 session tickets sent on it (so later data connections
                // can resume) and its close_notify.
                let drain = async {
                    if let Some(d) = data.as_mut() {
                        let mut sink = [0u8; 4096];
                        loop {
                            match d.read(&mut sink).await {
                                Ok(0) | Err(_) => break,
                                Ok(_) => {}
                            }
                        }
                    }
                };
                let drain = tokio::time::timeout(Duration::from_secs(10), drain);
                let (_, reply) = tokio::join!(drain, self.client.ctl.read_reply());
                reply?
            }
        };
        drop(data);
        self.client.poisoned = false;
        if !reply.code.is_completion() {
            return Err(Error::reply_err(&self.command, reply));
        }
        if self.missing_close_notify {
            tracing::debug!(
                "the server closed the data connection of {} without close_notify; its {} reply confirms the transfer",
                self.command,
                reply.code
            );
        }
        Ok(TransferOutcome {
            bytes: self.bytes,
            resumed: self.resumed,
            reply,
            missing_close_notify: self.missing_close_notify,
        })
    }

    /// Cancels the transfer: closes the data connection and sends `ABOR`. Replies differ
    /// between servers (426 then 226, or 225/226 alone, or the transfer's own 226 first), so a
    /// `NOOP` follows and everything up to its reply is consumed.
    pub async fn abort(mut self) -> Result<()> {
        drop(self.data.take());
        let client = &mut *self.client;
        client.ctl.send(&Command::Abor).await?;
        client.ctl.send(&Command::Noop).await?;
        for _ in 0..5 {
            let reply =
                tokio::time::timeout(Duration::from_secs(10), client.ctl.read_reply()).await;
            match reply {
                Ok(Ok(r)) if r.code.0 == 200 => {
                    client.poisoned = false;
                    return Ok(());
                }
                Ok(Ok(_)) => continue,
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(Error::Timeout("waiting for the reply to ABOR".into())),
            }
        }
        Err(Error::Protocol("no reply to NOOP after ABOR".into()))
    }
}

impl AsyncRead for Transfer<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(data) = this.data.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let before = buf.filled().len();
        match Pin::new(data).poll_read(cx, buf) {
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                // TCP closed without TLS close_notify: the end of the data as far as we can
                // tell; finish() only accepts it if the server confirms with 226.
                this.missing_close_notify = true;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Ok(())) => {
                this.bytes += (buf.filled().len() - before) as u64;
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl AsyncWrite for Transfer<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(data) = this.data.as_mut() else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        match Pin::new(data).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                this.bytes += n as u64;
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().data.as_mut() {
            Some(d) => Pin::new(d).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Closing happens in finish(), which also reads the server's reply.
        match self.get_mut().data.as_mut() {
            Some(d) => Pin::new(d).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}
