//! Moving a file over the data connection on one blocking thread (the bytes of `RETR`,
//! `STOR`, `APPE` and `STOU`, RFC 959 §3.4 stream mode).
//!
//! A transfer is a loop of three steps: disk I/O, TLS record encryption or decryption, and a
//! socket call. Run on one thread with a blocking socket, the loop costs no hand-off between
//! a disk thread and the runtime (each of which is a wake-up and a context switch), and the
//! data it touches stays in that core's cache. The runtime only waits for the thread to
//! finish; `ABOR`, a lost control connection or shutdown stop the thread by shutting the
//! socket down under it ([`Abort`]).
//!
//! A clear (`PROT C`) download is handed to the kernel with `sendfile`.
//!
//! A transfer under a bandwidth limit carries a [`Throttle`]: it moves a step at a time and
//! waits after each as the buckets require, in [`Abort::sleep`], which `ABOR`, a lost
//! control connection and shutdown cut short. A transfer without one has no other cost
//! than a test of an `Option` per chunk.

use std::io::{self, BufRead, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use ftps_proto::ascii;
use rustls::ServerConnection;

use crate::bandwidth::Throttle;
use crate::storage::{Download, DownloadSource, Upload};
use crate::stream::{DataStream, MaybeTls, DATA_READ_BUFFER};

/// Bytes gathered for one write to the disk, or handed to `sendfile` at a time.
const CHUNK: usize = 256 * 1024;
/// Bytes read from the disk, encrypted and sent at a time: four full TLS records. Small
/// enough that the plaintext and its ciphertext stay in the core's cache from the read to
/// the copy into the socket (256 KiB cost 0.6-0.9 s of CPU per GiB against 0.4-0.6).
const SEND_CHUNK: usize = 64 * 1024;

/// Why a transfer failed.
pub(crate) enum TransferError {
    /// The data connection broke or the client closed it early: 426.
    Connection(io::Error),
    /// Nothing moved for the stall timeout: 426.
    Stalled,
    /// Reading or writing the file failed: 451/452/552.
    Local(io::Error),
}

/// The bytes a transfer moved, or why it failed.
pub(crate) type TransferResult = std::result::Result<u64, TransferError>;

/// A data connection taken out of the runtime: a blocking socket, the bytes already read
/// from it, and the TLS state when `PROT P` protects it.
pub(crate) struct BlockingData {
    socket: TcpStream,
    /// Bytes the runtime read from the socket (during the TLS handshake) that are still
    /// to be processed.
    pending: Vec<u8>,
    tls: Option<Box<ServerConnection>>,
    abort: Arc<Abort>,
    /// The bandwidth limits the transfer is under; `None`: none.
    throttle: Option<Throttle>,
}

impl BlockingData {
    /// Takes the connection out of the runtime and makes its socket blocking, with `stall`
    /// as the limit for one read or write; `abort` can then stop the transfer, and
    /// `throttle` paces it.
    pub(super) fn new(
        data: DataStream,
        stall: Duration,
        abort: Arc<Abort>,
        throttle: Option<Throttle>,
    ) -> io::Result<BlockingData> {
        let (reader, tls) = match data {
            MaybeTls::Plain(reader) => (reader, None),
            MaybeTls::Tls(stream) => {
                let (reader, conn) = stream.into_inner();
                (reader, Some(Box::new(conn)))
            }
            MaybeTls::Closed => return Err(io::ErrorKind::NotConnected.into()),
        };
        let pending = reader.buffer().to_vec();
        let socket = reader.into_inner().into_std()?;
        socket.set_nonblocking(false)?;
        // A zero timeout would mean "none" to the kernel: keep a floor instead.
        let stall = stall.max(Duration::from_secs(1));
        socket.set_read_timeout(Some(stall))?;
        socket.set_write_timeout(Some(stall))?;
        abort.watch(&socket)?;
        Ok(BlockingData {
            socket,
            pending,
            tls,
            abort,
            throttle,
        })
    }

    /// Sends the rest of `download`; `ascii` converts line ends to CRLF.
    pub(super) fn send_file(
        &mut self,
        download: Download,
        ascii: bool,
        progress: &AtomicU64,
    ) -> TransferResult {
        let mut source = match download.into_source() {
            DownloadSource::File(file) if self.tls.is_none() && !ascii => {
                return self.sendfile(file, progress)
            }
            source => source,
        };
        // Throttled: a step at a time, so that STAT sees the progress as it is made.
        let read_len = self
            .throttle
            .as_ref()
            .map_or(SEND_CHUNK, |t| t.step().min(SEND_CHUNK));
        let mut chunk = Vec::with_capacity(read_len);
        let mut converted = Vec::new();
        let mut to_network = ascii::ToNetwork::default();
        let mut total = 0u64;
        if let Some(tls) = &mut self.tls {
            // Take a whole chunk at a time: one `writev` per chunk, not one per record.
            tls.set_buffer_limit(None);
        }
        loop {
            chunk.clear();
            // `take` + `read_to_end` fills spare capacity without zeroing it first.
            let n = (&mut source)
                .take(read_len as u64)
                .read_to_end(&mut chunk)
                .map_err(TransferError::Local)?;
            if n == 0 {
                return Ok(total);
            }
            let out = if ascii {
                converted.clear();
                to_network.convert(&chunk, &mut converted);
                &converted[..]
            } else {
                &chunk[..]
            };
            send(&mut self.tls, &self.socket, out)?;
            total += out.len() as u64;
            progress.store(total, Ordering::Relaxed);
            if let Some(throttle) = &self.throttle {
                pace(throttle, out.len(), &self.abort)?;
            }
        }
    }

    /// A clear binary download: the kernel copies from the file to the socket (`sendfile`,
    /// which the standard library uses for a file-to-socket `io::copy`).
    fn sendfile(&mut self, mut file: std::fs::File, progress: &AtomicU64) -> TransferResult {
        let mut total = 0u64;
        let piece_len = self
            .throttle
            .as_ref()
            .map_or(4 * CHUNK, |t| t.step().min(4 * CHUNK));
        loop {
            let mut piece = (&mut file).take(piece_len as u64);
            let mut sink = &self.socket;
            // `io::copy` does not say which side failed; the kinds a socket produces tell.
            let n = match io::copy(&mut piece, &mut sink) {
                Ok(n) => n,
                Err(e) if is_socket_error(&e) => return Err(network_error(e)),
                Err(e) => return Err(TransferError::Local(e)),
            };
            if n == 0 {
                return Ok(total);
            }
            total += n;
            progress.store(total, Ordering::Relaxed);
            if let Some(throttle) = &self.throttle {
                pace(throttle, n as usize, &self.abort)?;
            }
        }
    }

    /// Receives into `upload` until the client ends the upload (the caller commits it).
    pub(super) fn receive_file(
        &mut self,
        upload: &mut dyn Upload,
        ascii: bool,
        progress: &AtomicU64,
    ) -> TransferResult {
        let mut from_network = ascii::FromNetwork::default();
        let mut converted = Vec::new();
        let mut chunk = Vec::with_capacity(CHUNK);
        let mut total = 0u64;
        let throttle = self.throttle.as_ref();
        let abort = &self.abort;
        let step = throttle.map_or(CHUNK, Throttle::step);
        let mut write = |chunk: &mut Vec<u8>, upload: &mut dyn Upload| -> io::Result<()> {
            if ascii {
                converted.clear();
                from_network.convert(chunk, &mut converted);
                upload.write_all(&converted)?;
            } else {
                upload.write_all(chunk)?;
            }
            chunk.clear();
            Ok(())
        };
        // Takes what fits of `got` into the chunk (a step at most when throttled), writing
        // the chunk out when full; returns how many bytes it took.
        let mut take = |got: &[u8], upload: &mut dyn Upload| -> Result<usize, TransferError> {
            let n = got.len().min(CHUNK - chunk.len()).min(step);
            chunk.extend_from_slice(&got[..n]);
            total += n as u64;
            progress.store(total, Ordering::Relaxed);
            if chunk.len() == CHUNK {
                write(&mut chunk, upload).map_err(TransferError::Local)?;
            }
            if let Some(throttle) = throttle {
                pace(throttle, n, abort)?;
            }
            Ok(n)
        };
        let pending = std::mem::take(&mut self.pending);
        let socket = &self.socket;
        let mut source = io::BufReader::with_capacity(DATA_READ_BUFFER, pending.chain(socket));
        match &mut self.tls {
            None => loop {
                let got = source.fill_buf().map_err(network_error)?;
                if got.is_empty() {
                    break;
                }
                let n = take(got, upload)?;
                source.consume(n);
            },
            Some(tls) => loop {
                // Plaintext already decrypted first, then more records from the socket.
                match tls.reader().fill_buf() {
                    Ok([]) => break,
                    Ok(got) => {
                        let n = take(got, upload)?;
                        tls.reader().consume(n);
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    // The TCP stream ended without close_notify: the upload may be truncated,
                    // so it is not accepted as complete.
                    Err(e) => return Err(TransferError::Connection(e)),
                }
                tls.read_tls(&mut source).map_err(network_error)?;
                let processed = tls.process_new_packets();
                // Alerts, and replies such as a TLS 1.3 key update, go out at once.
                flush_tls(tls, socket)?;
                if let Err(e) = processed {
                    return Err(TransferError::Connection(io::Error::new(
                        io::ErrorKind::InvalidData,
                        e,
                    )));
                }
            },
        }
        // A clear upload ends at the end of the TCP stream, which is also what the thread sees
        // when ABOR shut the socket down: what arrived must not pass for the whole upload.
        if self.abort.is_set() {
            return Err(TransferError::Connection(
                io::ErrorKind::ConnectionAborted.into(),
            ));
        }
        write(&mut chunk, upload).map_err(TransferError::Local)?;
        if ascii {
            converted.clear();
            from_network.finish(&mut converted);
            upload.write_all(&converted).map_err(TransferError::Local)?;
        }
        Ok(total)
    }

    /// Writes `bytes` as application data (a step at a time when throttled).
    pub(crate) fn write_data(&mut self, bytes: &[u8]) -> Result<(), TransferError> {
        let Some(throttle) = &self.throttle else {
            return send(&mut self.tls, &self.socket, bytes);
        };
        for piece in bytes.chunks(throttle.step()) {
            send(&mut self.tls, &self.socket, piece)?;
            pace(throttle, piece.len(), &self.abort)?;
        }
        Ok(())
    }

    /// Ends the connection cleanly: close_notify (TLS) and FIN. Returns the socket, to be
    /// kept open until the client closes its side.
    pub(super) fn close_write(mut self) -> Option<TcpStream> {
        if let Some(tls) = &mut self.tls {
            tls.send_close_notify();
            flush_tls(tls, &self.socket).ok()?;
        }
        self.socket.shutdown(Shutdown::Write).ok()?;
        Some(self.socket)
    }
}

/// Writes `bytes` to the socket, through TLS when it protects the connection.
fn send(
    tls: &mut Option<Box<ServerConnection>>,
    mut socket: &TcpStream,
    bytes: &[u8],
) -> Result<(), TransferError> {
    match tls {
        None => socket.write_all(bytes).map_err(network_error),
        Some(tls) => {
            tls.writer()
                .write_all(bytes)
                .map_err(TransferError::Connection)?;
            flush_tls(tls, socket)
        }
    }
}

/// Charges `bytes` that just moved to the transfer's buckets and waits as they require; a
/// transfer stopped meanwhile ends as if its connection had been shut down under it.
fn pace(throttle: &Throttle, bytes: usize, abort: &Abort) -> Result<(), TransferError> {
    if throttle.charge(bytes, |delay| abort.sleep(delay)) {
        Ok(())
    } else {
        Err(TransferError::Connection(
            io::ErrorKind::ConnectionAborted.into(),
        ))
    }
}

/// Writes out everything TLS has queued.
fn flush_tls(tls: &mut ServerConnection, mut socket: &TcpStream) -> Result<(), TransferError> {
    while tls.wants_write() {
        tls.write_tls(&mut socket).map_err(network_error)?;
    }
    Ok(())
}

/// A failed socket call: a timeout is a stall, anything else a broken connection.
fn network_error(e: io::Error) -> TransferError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => TransferError::Stalled,
        _ => TransferError::Connection(e),
    }
}

/// Errors that a socket produces, never a file being read.
fn is_socket_error(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        e.kind(),
        BrokenPipe | ConnectionReset | ConnectionAborted | NotConnected | WouldBlock | TimedOut
    )
}

/// Stops a transfer: marks it aborted, then shuts its socket down, so that the thread fails
/// its next (or current) socket call and ends without completing the transfer, and wakes
/// it if it waits for a bandwidth limit.
#[derive(Default)]
pub(super) struct Abort {
    aborted: AtomicBool,
    socket: Mutex<Option<TcpStream>>,
    /// Notified (under the `socket` lock) when the transfer is stopped.
    stopped: Condvar,
    /// The same for a transfer that runs in the runtime (see [`Abort::stopped`]).
    wake: tokio::sync::Notify,
}

impl Abort {
    /// Stops the transfer now, or before it starts.
    pub(super) fn trigger(&self) {
        // Set before the shutdown: the thread checks it after seeing the stream end.
        self.aborted.store(true, Ordering::SeqCst);
        let mut slot = self.lock();
        if let Some(socket) = slot.take() {
            let _ = socket.shutdown(Shutdown::Both);
        }
        // Under the lock: a thread about to wait has either seen the flag or is waiting.
        self.stopped.notify_all();
        // One waiter at most; a permit is kept if it is not waiting yet.
        self.wake.notify_one();
    }

    /// Completes once the transfer is stopped (for a transfer that runs in the runtime).
    pub(super) async fn stopped(&self) {
        while !self.is_set() {
            self.wake.notified().await;
        }
    }

    /// Waits `delay`, or less if the transfer is stopped meanwhile; returns false if it was.
    fn sleep(&self, delay: Duration) -> bool {
        let deadline = Instant::now() + delay;
        let mut slot = self.lock();
        loop {
            if self.is_set() {
                return false;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            slot = match self.stopped.wait_timeout(slot, left) {
                Ok((slot, _)) => slot,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// Whether the transfer was stopped.
    pub(super) fn is_set(&self) -> bool {
        self.aborted.load(Ordering::SeqCst)
    }

    /// Keeps a handle on the transfer's socket, to shut it down on [`Abort::trigger`].
    fn watch(&self, socket: &TcpStream) -> io::Result<()> {
        let mut slot = self.lock();
        if self.is_set() {
            return Err(io::ErrorKind::ConnectionAborted.into());
        }
        *slot = Some(socket.try_clone()?);
        Ok(())
    }

    /// Lets go of the socket handle once the transfer is over.
    pub(super) fn release(&self) {
        self.lock().take();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<TcpStream>> {
        // The slot holds no invariant a panic could break.
        self.socket.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Triggers an [`Abort`] when dropped (the session ended or the transfer future was
/// dropped) unless disarmed.
pub(super) struct AbortOnDrop(Option<Arc<Abort>>);

impl AbortOnDrop {
    /// Arms `abort`.
    pub(super) fn new(abort: Arc<Abort>) -> Self {
        AbortOnDrop(Some(abort))
    }

    /// The transfer ended by itself: nothing to stop.
    pub(super) fn disarm(mut self) {
        if let Some(abort) = self.0.take() {
            abort.release();
        }
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(abort) = self.0.take() {
            abort.trigger();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_transfer_in_the_runtime_sees_its_abort() {
        // Stopped before anyone waits: the wait ends at once.
        let early = Abort::default();
        early.trigger();
        early.stopped().await;
        // Stopped while a task waits: the task wakes.
        let abort = Arc::new(Abort::default());
        let waiting = tokio::spawn({
            let abort = abort.clone();
            async move { abort.stopped().await }
        });
        tokio::task::yield_now().await;
        abort.trigger();
        waiting.await.unwrap();
        assert!(abort.is_set());
    }
}
