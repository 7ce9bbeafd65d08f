//! Transfers: `RETR`, `STOR`, `STOU`, `APPE`, `REST` (RFC 959 §4.1.3, RFC 3659 §5), `LIST`,
//! `NLST` (RFC 959) and `MLSD` (RFC 3659 §7).
//!
//! The bytes move on a blocking thread (see [`super::pump`]) while the session task keeps
//! answering `ABOR` and `STAT` on the control connection. A `STOR` writes to a hidden
//! temporary file that is synced and renamed over the target only when the whole upload has
//! arrived, so a broken upload never replaces or imitates a complete file; `APPE` and
//! `REST`+`STOR` write in place, as resuming requires.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ftps_proto::command::{self, Command, ListArgs, TransferType};
use ftps_proto::line::LineEvent;
use ftps_proto::listing::{self, FileFacts, FileKind, MlstFacts};
use ftps_proto::ReplyCode;
use tracing::{info, warn};

use super::files::entry_facts;
use super::pump::{Abort, AbortOnDrop, BlockingData};
use super::{Flow, Result, Session};
use crate::policy::Access;
use crate::stream::DataStream;
use crate::vfs::{Entry, EntryKind, Root, VirtualPath, WriteMode};

/// A listing is sent in pieces of about this size.
const LISTING_CHUNK: usize = 16 * 1024;
/// How long ABOR waits for a stopped transfer's thread (a disk write in progress) to end.
const ABORT_WAIT: Duration = Duration::from_secs(30);
/// After a transfer, how long the data connection waits for the client to close its side.
const LINGER: Duration = Duration::from_secs(2);

/// The three listing formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ListFormat {
    /// `LIST`: `ls -l` lines.
    Unix,
    /// `NLST`: names only.
    Names,
    /// `MLSD`: RFC 3659 facts.
    Mlsd,
}

/// What a transfer moves.
enum Job {
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

/// What a listing sends.
struct ListJob {
    root: Root,
    dir: VirtualPath,
    args: ListArgs,
    format: ListFormat,
    access: Access,
    facts: MlstFacts,
    /// Listing a single file rather than a directory.
    single: Option<Box<Entry>>,
}

/// How a complete upload is made durable under its name, before its `226`. The file itself
/// is synced by the pump; its directory entry (new, or renamed into place) is synced here.
enum Commit {
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
struct TempUpload {
    root: Root,
    temp: VirtualPath,
    target: Option<VirtualPath>,
    committed: bool,
}

impl TempUpload {
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

/// Why a transfer failed.
pub(super) enum TransferError {
    /// The data connection broke or the client closed it early: 426.
    Connection(io::Error),
    /// Nothing moved for the stall timeout: 426.
    Stalled,
    /// Reading or writing the file failed: 451/452/552.
    Local(io::Error),
}

pub(super) type TransferResult = std::result::Result<u64, TransferError>;

impl Session {
    pub(super) async fn cmd_rest(&mut self, offset: u64) -> Result {
        if self.transfer_type == TransferType::Ascii && offset > 0 {
            return self
                .reply(
                    ReplyCode::PARAMETER_NOT_IMPLEMENTED,
                    "REST is supported in binary mode only; send TYPE I first.",
                )
                .await;
        }
        self.restart = offset;
        self.reply(
            ReplyCode::PENDING_FURTHER_INFO,
            format!("Restarting at {offset}. Send STOR or RETR."),
        )
        .await
    }

    pub(super) async fn cmd_retr(&mut self, arg: &str) -> Result {
        let offset = std::mem::take(&mut self.restart);
        if let Some((code, text)) = self.data_protection_refusal() {
            self.drop_data();
            return self.reply(code, text).await;
        }
        let Some((root, path)) = self.resolve(arg) else {
            return Ok(Flow::Continue);
        };
        let file = match root.open_read(&path, offset).await {
            Ok(f) => f.into_std().await,
            Err(e) => {
                self.drop_data();
                return self.reply_open_error("RETR", &path, offset, &e).await;
            }
        };
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let ascii = self.transfer_type == TransferType::Ascii;
        let opening = format!(
            "Opening {} mode data connection for {} ({} bytes).",
            if ascii { "ASCII" } else { "BINARY" },
            path,
            size.saturating_sub(offset)
        );
        self.run_transfer(Job::Send { file, ascii }, opening, "RETR", &path)
            .await
    }

    /// `STOR` (`append` false) and `APPE` (`append` true).
    pub(super) async fn cmd_store(&mut self, arg: &str, append: bool) -> Result {
        let offset = std::mem::take(&mut self.restart);
        if !self.check_write().await? {
            self.drop_data();
            return Ok(Flow::Continue);
        }
        if let Some((code, text)) = self.data_protection_refusal() {
            self.drop_data();
            return self.reply(code, text).await;
        }
        let Some((root, path)) = self.resolve(arg) else {
            return Ok(Flow::Continue);
        };
        if path.is_root() {
            self.drop_data();
            return self
                .reply(ReplyCode::FILE_UNAVAILABLE, "Is a directory.")
                .await;
        }
        let opened = if append || offset > 0 {
            let mode = if append {
                WriteMode::Append
            } else {
                WriteMode::At(offset)
            };
            root.open_write(&path, mode).await.map(|f| {
                let commit = Commit::InPlace {
                    root: root.clone(),
                    path: path.clone(),
                };
                (f, commit)
            })
        } else {
            root.create_temp_beside(&path).await.map(|(f, temp)| {
                let commit = TempUpload {
                    root: root.clone(),
                    temp,
                    target: Some(path.clone()),
                    committed: false,
                };
                (f, Commit::Publish(commit))
            })
        };
        let (file, commit) = match opened {
            Ok(pair) => pair,
            Err(e) => {
                self.drop_data();
                return self.reply_open_error("STOR", &path, offset, &e).await;
            }
        };
        let file = file.into_std().await;
        let ascii = self.transfer_type == TransferType::Ascii;
        let opening = format!(
            "Opening {} mode data connection for {}.",
            if ascii { "ASCII" } else { "BINARY" },
            path
        );
        let verb = if append { "APPE" } else { "STOR" };
        self.run_transfer(
            Job::Receive {
                file,
                ascii,
                commit,
            },
            opening,
            verb,
            &path,
        )
        .await
    }

    /// `STOU`: stores under a new name in the working directory, announced as
    /// `150 FILE: name` (RFC 1123 §4.1.2.9). A failed upload leaves no file behind.
    pub(super) async fn cmd_stou(&mut self) -> Result {
        self.restart = 0;
        if !self.check_write().await? {
            self.drop_data();
            return Ok(Flow::Continue);
        }
        if let Some((code, text)) = self.data_protection_refusal() {
            self.drop_data();
            return self.reply(code, text).await;
        }
        let Some((root, _)) = self.resolve(".") else {
            return Ok(Flow::Continue);
        };
        let (file, path) = match self.create_unique(&root).await {
            Ok(pair) => pair,
            Err(e) => {
                self.drop_data();
                let cwd = self
                    .resolve(".")
                    .map(|(_, p)| p)
                    .unwrap_or_else(VirtualPath::root);
                return self.reply_fs_error("STOU", &cwd, &e).await;
            }
        };
        let name = path.file_name().unwrap_or_default().to_string();
        let commit = TempUpload {
            root,
            temp: path.clone(),
            target: None,
            committed: false,
        };
        let job = Job::Receive {
            file,
            ascii: self.transfer_type == TransferType::Ascii,
            commit: Commit::Publish(commit),
        };
        self.run_transfer(job, format!("FILE: {name}"), "STOU", &path)
            .await
    }

    /// Creates a new, empty file with a name nobody uses in the working directory.
    async fn create_unique(&self, root: &Root) -> io::Result<(std::fs::File, VirtualPath)> {
        let mut last = io::Error::new(io::ErrorKind::AlreadyExists, "no free name");
        for _ in 0..16 {
            let Some((_, path)) = self.resolve(&format!("ftpsd.{:016x}", rand::random::<u64>()))
            else {
                break;
            };
            match root.open_write(&path, WriteMode::CreateNew).await {
                Ok(file) => return Ok((file.into_std().await, path)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// An open failure; an offset past the end of the file is RFC 3659's 554.
    async fn reply_open_error(
        &mut self,
        verb: &str,
        path: &VirtualPath,
        offset: u64,
        e: &io::Error,
    ) -> Result {
        if offset > 0 && e.kind() == io::ErrorKind::InvalidInput {
            if let Some((root, _)) = self.resolve(".") {
                if root
                    .metadata(path)
                    .await
                    .is_ok_and(|m| m.kind == EntryKind::File)
                {
                    return self
                        .reply(
                            ReplyCode::INVALID_REST,
                            "Restart offset is beyond the end of the file.",
                        )
                        .await;
                }
            }
        }
        self.reply_fs_error(verb, path, e).await
    }

    pub(super) async fn cmd_list(&mut self, args: ListArgs, format: ListFormat) -> Result {
        self.restart = 0;
        if let Some((code, text)) = self.data_protection_refusal() {
            self.drop_data();
            return self.reply(code, text).await;
        }
        let arg = args.path.clone().unwrap_or_else(|| ".".into());
        let Some((root, path)) = self.resolve(&arg) else {
            return Ok(Flow::Continue);
        };
        let entry = match root.metadata(&path).await {
            Ok(e) => e,
            Err(e) => {
                self.drop_data();
                return self.reply_fs_error("LIST", &path, &e).await;
            }
        };
        let single = if entry.kind == EntryKind::Dir {
            None
        } else if format == ListFormat::Mlsd {
            self.drop_data();
            return self
                .reply(ReplyCode::FILE_UNAVAILABLE, "Not a directory; use MLST.")
                .await;
        } else {
            Some(Box::new(entry))
        };
        let job = Job::List(ListJob {
            root,
            dir: path.clone(),
            args,
            format,
            access: self.access(),
            facts: self.mlst_facts,
            single,
        });
        let opening = format!("Opening ASCII mode data connection for the listing of {path}.");
        let verb = match format {
            ListFormat::Unix => "LIST",
            ListFormat::Names => "NLST",
            ListFormat::Mlsd => "MLSD",
        };
        self.run_transfer(job, opening, verb, &path).await
    }

    /// Opens the data connection, runs the job while answering ABOR and STAT, and sends the
    /// final reply.
    async fn run_transfer(
        &mut self,
        job: Job,
        opening: String,
        verb: &'static str,
        path: &VirtualPath,
    ) -> Result {
        let tcp = match self.open_data().await {
            Ok(tcp) => tcp,
            Err((code, text)) => return self.reply(code, text).await,
        };
        self.reply(ReplyCode::FILE_STATUS_OK, opening).await?;
        let upload = matches!(job, Job::Receive { .. });
        let data = match self.secure_data(tcp, upload).await {
            Ok(data) => data,
            Err((code, text)) => return self.reply(code, text).await,
        };
        // For the log: whether the data connection resumed a TLS session (see `crate::tls`).
        let data_tls = match data.tls_state().map(|tls| tls.handshake_kind()) {
            Some(Some(rustls::HandshakeKind::Resumed)) => "resumed",
            Some(_) => "full handshake",
            None => "clear",
        };
        let progress = Arc::new(AtomicU64::new(0));
        let stall = Duration::from_secs(self.shared.config.timeouts.transfer_stall);
        let started = Instant::now();
        let abort = Arc::new(Abort::default());
        let mut work = Box::pin(job.run(data, progress.clone(), stall, abort.clone()));
        enum Outcome {
            Done(TransferResult),
            Aborted,
            ControlLost,
        }
        let outcome = loop {
            tokio::select! {
                result = &mut work => break Outcome::Done(result),
                // Past the bound the connection is not read until the transfer ends.
                event = self.read_event(), if self.queued.len() < super::MAX_QUEUED_LINES => match event {
                    Ok(Some(LineEvent::Line(line))) => match command::parse(&line) {
                        Ok(Command::Abor) => break Outcome::Aborted,
                        Ok(Command::Stat(None)) => {
                            let done = progress.load(Ordering::Relaxed);
                            self.reply(
                                ReplyCode::FILE_STATUS,
                                format!("{verb} {path} in progress: {done} bytes transferred."),
                            )
                            .await?;
                        }
                        // Everything else waits for the transfer's final reply, in order.
                        _ => self.queued.push_back(LineEvent::Line(line)),
                    },
                    Ok(Some(event)) => self.queued.push_back(event),
                    Ok(None) | Err(_) => break Outcome::ControlLost,
                },
            }
        };
        let bytes = progress.load(Ordering::Relaxed);
        let secs = started.elapsed().as_secs_f64();
        let rate = bytes as f64 / secs.max(1e-6) / (1024.0 * 1024.0);
        match outcome {
            Outcome::Done(Ok(bytes)) => {
                info!(command = verb, path = %path, bytes, secs = format!("{secs:.3}"), mib_per_s = format!("{rate:.1}"), data_tls, "transfer complete");
                self.reply(
                    ReplyCode::TRANSFER_COMPLETE,
                    format!("Transfer complete ({bytes} bytes)."),
                )
                .await
            }
            Outcome::Done(Err(e)) => {
                let (code, text) = match &e {
                    TransferError::Connection(err) => {
                        info!(command = verb, path = %path, bytes, error = %err, "transfer failed: data connection");
                        (
                            ReplyCode::TRANSFER_ABORTED,
                            "Data connection closed before the transfer completed; transfer aborted."
                                .to_string(),
                        )
                    }
                    TransferError::Stalled => {
                        info!(command = verb, path = %path, bytes, "transfer failed: stalled");
                        (
                            ReplyCode::TRANSFER_ABORTED,
                            format!("No data moved for {} s; transfer aborted.", stall.as_secs()),
                        )
                    }
                    TransferError::Local(err) => {
                        warn!(command = verb, path = %path, bytes, error = %err, "transfer failed: local error");
                        let (code, text) = super::fs_error(err);
                        let code = if code == ReplyCode::FILE_UNAVAILABLE {
                            ReplyCode::LOCAL_ERROR
                        } else {
                            code
                        };
                        (code, format!("Transfer failed: {text}"))
                    }
                };
                self.reply(code, text).await
            }
            Outcome::Aborted => {
                // Stop the transfer and wait for its thread, so that nothing is written to
                // the file after the replies (a client may resume at once).
                abort.trigger();
                let _ = tokio::time::timeout(ABORT_WAIT, &mut work).await;
                drop(work);
                info!(command = verb, path = %path, bytes, "transfer aborted by client");
                self.reply(
                    ReplyCode::TRANSFER_ABORTED,
                    "Connection closed; transfer aborted.",
                )
                .await?;
                self.reply(ReplyCode::TRANSFER_COMPLETE, "ABOR successful.")
                    .await
            }
            Outcome::ControlLost => {
                info!(command = verb, path = %path, bytes, "control connection lost during transfer");
                Ok(Flow::Close)
            }
        }
    }
}

impl Job {
    /// Runs the transfer on a blocking thread (see [`super::pump`]); dropping the returned
    /// future (on `ABOR`) shuts the data connection down, which stops that thread.
    async fn run(
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

/// Sends a listing, produced as it goes; runs on the transfer's blocking thread.
fn send_listing(conn: &mut BlockingData, job: ListJob, progress: &AtomicU64) -> TransferResult {
    let ListJob {
        root,
        dir,
        args,
        format,
        access,
        facts,
        single,
    } = job;
    let now = SystemTime::now();
    let mut buf = Vec::with_capacity(LISTING_CHUNK + 1024);
    let mut total = 0u64;
    let mut failed = None;
    let mut emit = |line: String, buf: &mut Vec<u8>| -> bool {
        buf.extend_from_slice(line.as_bytes());
        buf.extend_from_slice(b"\r\n");
        if buf.len() >= LISTING_CHUNK {
            if let Err(e) = conn.write_data(buf) {
                failed = Some(e);
                return false;
            }
            total += buf.len() as u64;
            progress.store(total, Ordering::Relaxed);
            buf.clear();
        }
        true
    };
    if let Some(entry) = single {
        let line = match format {
            ListFormat::Names => args.path.clone().unwrap_or_default(),
            _ => format_entry(&entry, ListFormat::Unix, access, facts, now, None),
        };
        emit(line, &mut buf);
    } else {
        if format == ListFormat::Mlsd {
            for (name, kind) in [(".", FileKind::CurrentDir), ("..", FileKind::ParentDir)] {
                if kind == FileKind::ParentDir && dir.is_root() {
                    continue;
                }
                let target = if kind == FileKind::CurrentDir {
                    dir.clone()
                } else {
                    dir.parent()
                };
                if let Ok(entry) = root.metadata_blocking(&target) {
                    let mut f = entry_facts(&entry, access);
                    f.kind = kind;
                    f.name = name.into();
                    emit(listing::mlsx_line(&f, facts), &mut buf);
                }
            }
        }
        let prefix = match (&args.path, format) {
            (Some(p), ListFormat::Names) => Some(p.trim_end_matches('/').to_string()),
            _ => None,
        };
        root.for_each_entry_blocking(&dir, |entry| {
            let hidden = entry.name.as_encoded_bytes().starts_with(b".");
            if hidden && !args.all() {
                return true;
            }
            let line = format_entry(&entry, format, access, facts, now, prefix.as_deref());
            emit(line, &mut buf)
        })
        .map_err(TransferError::Local)?;
    }
    if let Some(e) = failed {
        return Err(e);
    }
    conn.write_data(&buf)?;
    total += buf.len() as u64;
    progress.store(total, Ordering::Relaxed);
    Ok(total)
}

/// One listing line for an entry.
fn format_entry(
    entry: &Entry,
    format: ListFormat,
    access: Access,
    facts: MlstFacts,
    now: SystemTime,
    prefix: Option<&str>,
) -> String {
    let f: FileFacts = entry_facts(entry, access);
    match format {
        ListFormat::Unix => listing::unix_line(&f, now),
        ListFormat::Mlsd => listing::mlsx_line(&f, facts),
        ListFormat::Names => match prefix {
            Some(p) if p != "." => format!("{p}/{}", f.name),
            _ => f.name,
        },
    }
}

/// A bounded listing held in memory, for `STAT path` over the control connection.
pub(crate) fn listing_lines(
    root: &Root,
    path: &VirtualPath,
    args: &ListArgs,
    access: Access,
    max: usize,
) -> io::Result<Vec<String>> {
    let now = SystemTime::now();
    let entry = root.metadata_blocking(path)?;
    if entry.kind != EntryKind::Dir {
        return Ok(vec![format_entry(
            &entry,
            ListFormat::Unix,
            access,
            MlstFacts::ALL,
            now,
            None,
        )]);
    }
    let mut lines = Vec::new();
    root.for_each_entry_blocking(path, |entry| {
        if entry.name.as_encoded_bytes().starts_with(b".") && !args.all() {
            return true;
        }
        lines.push(format_entry(
            &entry,
            ListFormat::Unix,
            access,
            MlstFacts::ALL,
            now,
            None,
        ));
        lines.len() < max
    })?;
    Ok(lines)
}
