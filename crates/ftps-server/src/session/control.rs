//! The control connection's input and output ([`Control`]): reading command lines,
//! writing replies, and waiting for work that runs beside it (a transfer, a digest) while
//! still answering `ABOR` and `STAT` (RFC 959 §4.1.3, §5.4); and the replies for file
//! system errors ([`fs_error`]).

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::time::Duration;

use ftps_proto::command::{self, Command};
use ftps_proto::line::{LineDecoder, LineEvent};
use ftps_proto::{Reply, ReplyCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tracing::debug;

use crate::storage::{StorageUnavailable, TooManyObjects};
use crate::stream::{ControlStream, MaybeTls, RecordReader};

/// The longest command line accepted, without its CRLF.
pub const MAX_LINE: usize = 8192;

/// Command lines kept while a transfer runs, to be answered after it. Past this the
/// connection is not read until the transfer ends, so a client that floods it during a
/// transfer fills its own socket buffers, not the server's memory.
pub const MAX_QUEUED_LINES: usize = 32;

/// What ended the wait for work running beside the control connection.
pub(super) enum Busy<T> {
    /// The work ended by itself, with this output.
    Done(T),
    /// The client sent `ABOR`: the caller stops the work and replies.
    Aborted,
    /// The control connection closed or failed.
    ControlLost,
    /// The administrator ended the session: the caller stops the work and closes.
    Ended,
}

/// The control connection: its stream (plain or TLS), the command lines read from it and
/// not yet run, and the writing of replies.
pub(super) struct Control {
    stream: ControlStream,
    decoder: LineDecoder,
    /// Lines received during a transfer, to run after it.
    queued: VecDeque<LineEvent>,
    /// How long a client may take to accept a reply (`timeouts.reply_write`).
    reply_write: Duration,
    /// Cancelled when the administrator ends the session.
    ended: tokio_util::sync::CancellationToken,
}

impl Control {
    /// A connection as accepted, before any command.
    pub(super) fn new(
        stream: ControlStream,
        reply_write: Duration,
        ended: tokio_util::sync::CancellationToken,
    ) -> Control {
        Control {
            stream,
            decoder: LineDecoder::new(MAX_LINE),
            queued: VecDeque::new(),
            reply_write,
            ended,
        }
    }

    /// Cancelled when the administrator ends the session.
    pub(super) fn ended(&self) -> tokio_util::sync::CancellationToken {
        self.ended.clone()
    }

    /// The oldest line received while earlier work ran, to run now.
    pub(super) fn next_queued(&mut self) -> Option<LineEvent> {
        self.queued.pop_front()
    }

    /// Frees the line buffer's spare memory while the session waits for a command.
    pub(super) fn shrink(&mut self) {
        self.decoder.shrink();
    }

    /// Whether bytes after the current command line have already arrived (pipelined).
    pub(super) fn has_pipelined(&self) -> bool {
        self.decoder.has_buffered()
    }

    /// Reads until one line (or an over-long line) is complete. Cancel-safe: bytes are moved
    /// into the decoder only once a read has completed.
    pub(super) async fn read_event(&mut self) -> io::Result<Option<LineEvent>> {
        let mut buf = [0u8; 1024];
        loop {
            if let Some(event) = self.decoder.next_event() {
                return Ok(Some(event));
            }
            let n = self.stream.read(&mut buf).await?;
            if n == 0 {
                return Ok(None);
            }
            self.decoder.push(&buf[..n]);
        }
    }

    /// Sends a prepared (possibly multi-line) reply and flushes it. A client that does not
    /// take it within `timeouts.reply_write` ends the session (an error), instead of holding
    /// it forever.
    pub(super) async fn send(&mut self, reply: Reply) -> io::Result<()> {
        debug!(reply = %reply, "reply");
        let bytes = reply.to_bytes();
        let write = async {
            self.stream.write_all(&bytes).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(self.reply_write, write).await {
            Ok(result) => result,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client does not read its replies",
            )),
        }
    }

    /// Ends the connection: close_notify under TLS, then FIN.
    pub(super) async fn shutdown(&mut self) -> io::Result<()> {
        self.stream.shutdown().await
    }

    /// The rustls connection state, when TLS is on.
    pub(super) fn tls_state(&self) -> Option<&rustls::ServerConnection> {
        self.stream.tls_state()
    }

    /// Queues `count` fresh TLS 1.3 session tickets, sent ahead of the next reply (none on
    /// a plain or TLS 1.2 connection).
    pub(super) fn queue_tls13_tickets(&mut self, count: usize) {
        self.stream.queue_tls13_tickets(count);
    }

    /// Takes the plain stream out for a TLS handshake, leaving the connection closed until
    /// [`secured`](Self::secured).
    pub(super) fn take_plain(&mut self) -> Option<RecordReader<TcpStream>> {
        self.stream.take_plain()
    }

    /// Continues over TLS after the handshake.
    pub(super) fn secured(&mut self, stream: TlsStream<RecordReader<TcpStream>>) {
        self.stream = MaybeTls::Tls(Box::new(stream));
    }

    /// Takes the TLS stream out to end TLS (`CCC`), leaving the connection closed until
    /// [`unsecured`](Self::unsecured).
    pub(super) fn take_tls(&mut self) -> Option<Box<TlsStream<RecordReader<TcpStream>>>> {
        match std::mem::replace(&mut self.stream, MaybeTls::Closed) {
            MaybeTls::Tls(stream) => Some(stream),
            other => {
                self.stream = other;
                None
            }
        }
    }

    /// Continues in the clear after `CCC`; whatever was read inside TLS is discarded.
    pub(super) fn unsecured(&mut self, tcp: RecordReader<TcpStream>) {
        self.decoder.clear();
        self.stream = MaybeTls::Plain(tcp);
    }

    /// Waits for `work` while reading the control connection: `STAT` is answered at once
    /// with `status()` (213), `ABOR` and a lost connection end the wait, and every other line
    /// is queued to run after the work's final reply, in order. Past [`MAX_QUEUED_LINES`] the
    /// connection is not read until the work ends.
    ///
    /// A reply is written only once `select!` has chosen its branch, never inside a future
    /// it could cancel, so no reply is ever half-written; `work` is only borrowed, so it
    /// survives every turn of the loop and the caller decides how to stop it.
    pub(super) async fn while_busy<F: Future + Unpin>(
        &mut self,
        work: &mut F,
        status: impl Fn() -> String,
    ) -> io::Result<Busy<F::Output>> {
        let ended = self.ended.clone();
        loop {
            tokio::select! {
                output = &mut *work => return Ok(Busy::Done(output)),
                () = ended.cancelled() => return Ok(Busy::Ended),
                event = self.read_event(), if self.queued.len() < MAX_QUEUED_LINES => match event {
                    Ok(Some(LineEvent::Line(line))) => match command::parse(&line) {
                        Ok(Command::Abor) => return Ok(Busy::Aborted),
                        Ok(Command::Stat(None)) => {
                            self.send(Reply::new(ReplyCode::FILE_STATUS, status())).await?;
                        }
                        // Everything else waits for the work's final reply, in order.
                        _ => self.queued.push_back(LineEvent::Line(line)),
                    },
                    Ok(Some(event)) => self.queued.push_back(event),
                    Ok(None) | Err(_) => return Ok(Busy::ControlLost),
                },
            }
        }
    }
}

/// The reply for a failed file-system operation. The text never includes host paths.
pub(super) fn fs_error(e: &io::Error) -> (ReplyCode, &'static str) {
    use io::ErrorKind::*;
    // ELOOP (a symbolic link loop) has no stable ErrorKind.
    if e.raw_os_error() == Some(libc_eloop()) {
        return (
            ReplyCode::FILE_UNAVAILABLE,
            "Too many levels of symbolic links.",
        );
    }
    if StorageUnavailable::is(e) {
        return (
            ReplyCode::LOCAL_ERROR,
            "Storage unavailable: the file store did not answer or failed; nothing was changed. Try again later.",
        );
    }
    if e.get_ref()
        .is_some_and(|inner| inner.is::<TooManyObjects>())
    {
        return (
            ReplyCode::FILE_UNAVAILABLE,
            "Directory too large to rename on this storage (see max_rename_objects).",
        );
    }
    match e.kind() {
        NotFound => (ReplyCode::FILE_UNAVAILABLE, "No such file or directory."),
        PermissionDenied => (ReplyCode::FILE_UNAVAILABLE, "Permission denied."),
        AlreadyExists => (ReplyCode::FILE_UNAVAILABLE, "File exists."),
        DirectoryNotEmpty => (ReplyCode::FILE_UNAVAILABLE, "Directory not empty."),
        IsADirectory => (ReplyCode::FILE_UNAVAILABLE, "Is a directory."),
        NotADirectory => (ReplyCode::FILE_UNAVAILABLE, "Not a directory."),
        InvalidInput => (
            ReplyCode::FILE_UNAVAILABLE,
            "Not a regular file, or invalid offset.",
        ),
        InvalidFilename => (ReplyCode::BAD_FILE_NAME, "File name not allowed."),
        StorageFull => (
            ReplyCode::INSUFFICIENT_STORAGE,
            "Insufficient storage space.",
        ),
        QuotaExceeded => (ReplyCode::EXCEEDED_STORAGE, "Quota exceeded."),
        CrossesDevices => (
            ReplyCode::FILE_UNAVAILABLE,
            "Cannot rename between folders of different storage; copy instead.",
        ),
        FileTooLarge => (ReplyCode::EXCEEDED_STORAGE, "File too large."),
        Unsupported => (
            ReplyCode::NOT_IMPLEMENTED,
            "Not supported by this account's storage.",
        ),
        _ => (ReplyCode::LOCAL_ERROR, "Local error in processing."),
    }
}

/// ELOOP on Linux and most Unixes (40 on Linux; 62 on the BSDs and macOS).
const fn libc_eloop() -> i32 {
    if cfg!(any(target_os = "linux", target_os = "android")) {
        40
    } else {
        62
    }
}
