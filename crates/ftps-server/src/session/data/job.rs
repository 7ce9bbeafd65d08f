//! The transfer job: what a transfer moves ([`Job`]) and how it runs on its blocking thread
//! (see [`super::pump`]); an upload is committed (made durable under its name, see
//! [`crate::storage::Upload::commit`]) on that thread before its `226`.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::pump::{Abort, AbortOnDrop, BlockingData, TransferError, TransferResult};
use crate::bandwidth::Throttle;
use crate::session::listing::{send_listing, ListJob};
use crate::storage::{Download, Upload};
use crate::stream::DataStream;

/// After a transfer, how long the data connection waits for the client to close its side.
const LINGER: Duration = Duration::from_secs(2);

/// What a transfer moves.
pub(super) enum Job {
    Send {
        download: Download,
        ascii: bool,
    },
    Receive {
        /// Abandoned (as its mode says) unless committed.
        upload: Box<dyn Upload>,
        ascii: bool,
    },
    List(ListJob),
}

impl Job {
    /// Runs the transfer on a blocking thread (see [`super::pump`]), paced by `throttle`
    /// if given; dropping the returned future (on `ABOR`) shuts the data connection down,
    /// which stops that thread.
    pub(super) async fn run(
        self,
        data: DataStream,
        progress: Arc<AtomicU64>,
        stall: Duration,
        abort: Arc<Abort>,
        throttle: Option<Throttle>,
    ) -> TransferResult {
        let guard = AbortOnDrop::new(abort.clone());
        // A small file already in memory goes out from the runtime: no blocking thread.
        if throttle.is_none() {
            if let Job::Send { download, ascii } = &self {
                if let Some(bytes) = download.in_memory() {
                    let result =
                        send_in_memory(data, bytes, *ascii, &progress, stall, &abort).await;
                    guard.disarm();
                    return result;
                }
            }
        }
        let mut conn =
            BlockingData::new(data, stall, abort, throttle).map_err(TransferError::Connection)?;
        // A complete upload ends once the client's end of data is read (close_notify, or FIN
        // for a clear upload); it sends no data after that, so its socket closes at once
        // without a reset.
        let is_upload = matches!(self, Job::Receive { .. });
        let moved = tokio::task::spawn_blocking(move || {
            let result = match self {
                Job::Send { download, ascii } => conn.send_file(download, ascii, &progress),
                Job::Receive { mut upload, ascii } => conn
                    .receive_file(upload.as_mut(), ascii, &progress)
                    // Published (or, on failure, abandoned when `upload` drops) before the
                    // final reply.
                    .and_then(|n| upload.commit().map(|()| n).map_err(TransferError::Local)),
                Job::List(list) => send_listing(&mut conn, list, &progress),
            };
            // After a success: close_notify and FIN, keeping the socket for `linger`.
            let lingering = match result {
                Ok(_) => conn.close_write().filter(|_| !is_upload),
                // An upload refused on this side (too large, disk full): the client is most
                // likely still sending. What it sends is read and dropped for a while, so
                // that it reads the refusal rather than a reset of a connection with unread
                // data.
                Err(TransferError::Local(_)) if is_upload => conn.close_write(),
                Err(_) => None,
            };
            (result, lingering)
        })
        .await;
        guard.disarm();
        let (result, lingering) = moved.map_err(|e| TransferError::Local(io::Error::other(e)))?;
        if let Some(socket) = lingering {
            tokio::spawn(linger(socket));
        }
        result
    }
}

/// Sends `bytes` (converted to CRLF line ends if `ascii`) over the data connection from
/// the runtime, then close_notify and FIN; a stopped transfer ([`Abort`]) ends at once.
/// After a success the connection lingers like a blocking transfer's (see [`linger`]).
async fn send_in_memory(
    mut data: DataStream,
    bytes: &[u8],
    ascii: bool,
    progress: &AtomicU64,
    stall: Duration,
    abort: &Abort,
) -> TransferResult {
    let converted;
    let out = if ascii {
        let mut crlf = Vec::with_capacity(bytes.len() + bytes.len() / 16);
        ftps_proto::ascii::ToNetwork::default().convert(bytes, &mut crlf);
        converted = crlf;
        &converted[..]
    } else {
        bytes
    };
    let send = async {
        data.write_all(out).await?;
        data.shutdown().await
    };
    let stall = stall.max(Duration::from_secs(1));
    let result = tokio::select! {
        sent = tokio::time::timeout(stall, send) => match sent {
            Ok(Ok(())) => Ok(out.len() as u64),
            Ok(Err(e)) => Err(TransferError::Connection(e)),
            Err(_) => Err(TransferError::Stalled),
        },
        () = abort.stopped() => Err(TransferError::Connection(
            io::ErrorKind::ConnectionAborted.into(),
        )),
    };
    if let Ok(n) = result {
        progress.store(n, Ordering::Relaxed);
        tokio::spawn(linger_stream(data));
    }
    result
}

/// [`linger`] for a connection still in the runtime.
async fn linger_stream(mut data: DataStream) {
    let mut sink = [0u8; 512];
    let drain = async { while let Ok(1..) = data.read(&mut sink).await {} };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

/// Keeps a data connection open after its final reply until the client closes its side (or
/// two seconds pass): closing a socket with unread input (the client's close_notify) would
/// reset the connection and could destroy data the client has not read yet. The final
/// reply does not wait for this.
async fn linger(socket: std::net::TcpStream) {
    if socket.set_nonblocking(true).is_err() {
        return;
    }
    let Ok(mut socket) = tokio::net::TcpStream::from_std(socket) else {
        return;
    };
    let mut sink = [0u8; 512];
    let drain = async {
        while let Ok(n) = tokio::io::AsyncReadExt::read(&mut socket, &mut sink).await {
            if n == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}
