//! The transfer job: what a transfer moves ([`Job`]) and how it runs on its blocking thread
//! (see [`super::pump`]); an upload is committed (made durable under its name, see
//! [`crate::storage::Upload::commit`]) on that thread before its `226`.

use std::io;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

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
