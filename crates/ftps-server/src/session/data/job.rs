//! The transfer job: what a transfer moves ([`Job`]), how it runs on its blocking thread
//! (see [`super::pump`]), and how a complete upload is made durable under its name
//! ([`Commit`]) before its `226`.

use std::io;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use super::pump::{Abort, AbortOnDrop, BlockingData, TransferError, TransferResult};
use crate::session::listing::{send_listing, ListJob};
use crate::stream::DataStream;
use crate::vfs::{Root, VirtualPath};

/// After a transfer, how long the data connection waits for the client to close its side.
const LINGER: Duration = Duration::from_secs(2);

/// What a transfer moves.
pub(super) enum Job {
    Send {
        file: std::fs::File,
        ascii: bool,
    },
    Receive {
        file: std::fs::File,
        ascii: bool,
        /// What makes the complete upload durable under its name.
        commit: Commit,
    },
    List(ListJob),
}

/// How a complete upload is made durable under its name, before its `226`. The file itself
/// is synced by the pump; its directory entry (new, or renamed into place) is synced here.
pub(super) enum Commit {
    /// STOR and STOU: a file removed unless committed.
    Publish(TempUpload),
    /// APPE and REST+STOR write in place (and APPE may create the file).
    InPlace { root: Root, path: VirtualPath },
}

impl Commit {
    fn run(self) -> io::Result<()> {
        match self {
            Commit::Publish(upload) => upload.commit(),
            Commit::InPlace { root, path } => root.sync_dir_of_blocking(&path),
        }
    }
}

/// An upload file that is removed unless committed: a temporary file renamed over `target`
/// when complete, or (`target` None) a file written in place under its final name (STOU).
pub(super) struct TempUpload {
    root: Root,
    temp: VirtualPath,
    target: Option<VirtualPath>,
    committed: bool,
}

impl TempUpload {
    /// A temporary file `temp`, renamed over `target` once complete (STOR).
    pub(super) fn replacing(root: Root, temp: VirtualPath, target: VirtualPath) -> TempUpload {
        TempUpload {
            root,
            temp,
            target: Some(target),
            committed: false,
        }
    }

    /// A new file written under its final name, removed unless complete (STOU).
    pub(super) fn new_file(root: Root, path: VirtualPath) -> TempUpload {
        TempUpload {
            root,
            temp: path,
            target: None,
            committed: false,
        }
    }

    /// The upload is complete: renames the temporary file over its target and syncs the
    /// directory, so that the name survives a crash once the client is told `226`.
    fn commit(mut self) -> io::Result<()> {
        let published = self.target.as_ref().unwrap_or(&self.temp);
        if let Some(target) = &self.target {
            self.root.rename_blocking(&self.temp, target)?;
        }
        self.committed = true;
        self.root.sync_dir_of_blocking(published)
    }
}

impl Drop for TempUpload {
    /// Removes the file of an upload that did not complete, before its failure is reported
    /// (one unlink, on the failure path only, so it is done in place).
    fn drop(&mut self) {
        if !self.committed {
            let _ = self.root.remove_file_blocking(&self.temp);
        }
    }
}

impl Job {
    /// Runs the transfer on a blocking thread (see [`super::pump`]); dropping the returned
    /// future (on `ABOR`) shuts the data connection down, which stops that thread.
    pub(super) async fn run(
        self,
        data: DataStream,
        progress: Arc<AtomicU64>,
        stall: Duration,
        abort: Arc<Abort>,
    ) -> TransferResult {
        let guard = AbortOnDrop::new(abort.clone());
        let mut conn = BlockingData::new(data, stall, abort).map_err(TransferError::Connection)?;
        // An upload ends once the client's end of data is read (close_notify, or FIN for a
        // clear upload); it sends no data after that, so its socket closes at once without
        // a reset.
        let client_closed = matches!(self, Job::Receive { .. });
        let moved = tokio::task::spawn_blocking(move || {
            let result = match self {
                Job::Send { file, ascii } => conn.send_file(file, ascii, &progress),
                Job::Receive {
                    file,
                    ascii,
                    commit,
                } => conn
                    .receive_file(file, ascii, &progress)
                    // Renamed (or, on failure, removed when `commit` drops) before the
                    // final reply.
                    .and_then(|n| commit.run().map(|()| n).map_err(TransferError::Local)),
                Job::List(list) => send_listing(&mut conn, list, &progress),
            };
            // After a success: close_notify and FIN, keeping the socket for `linger`.
            let lingering = match result {
                Ok(_) => conn.close_write().filter(|_| !client_closed),
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
