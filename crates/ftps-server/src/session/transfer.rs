//! Transfers: `RETR`, `STOR`, `STOU`, `APPE`, `REST` (RFC 959 §4.1.3, RFC 3659 §5), `LIST`,
//! `NLST` (RFC 959) and `MLSD` (RFC 3659 §7).
//!
//! File I/O runs on a blocking thread that exchanges buffers with the network side through a
//! small channel, so disk and network (and TLS) work overlap. A `STOR` writes to a hidden
//! temporary file that is synced and renamed over the target only when the whole upload has
//! arrived, so a broken upload never replaces or imitates a complete file; `APPE` and
//! `REST`+`STOR` write in place, as resuming requires.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ftps_proto::ascii;
use ftps_proto::command::{self, Command, ListArgs, TransferType};
use ftps_proto::line::LineEvent;
use ftps_proto::listing::{self, FileFacts, FileKind, MlstFacts};
use ftps_proto::ReplyCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::files::entry_facts;
use super::{Flow, Result, Session};
use crate::policy::Access;
use crate::stream::DataStream;
use crate::vfs::{Entry, EntryKind, Root, VirtualPath, WriteMode};

/// Size of one buffer moved between the disk thread and the network.
const CHUNK: usize = 256 * 1024;
/// Buffers in flight between the disk thread and the network.
const CHUNKS_IN_FLIGHT: usize = 2;
/// A listing is sent in pieces of about this size.
const LISTING_CHUNK: usize = 16 * 1024;

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
        /// For an atomic upload: the temporary file, renamed over the target when complete.
        commit: Option<TempUpload>,
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

/// An upload file that is removed unless committed: a temporary file renamed over `target`
/// when complete, or (`target` None) a file written in place under its final name (STOU).
struct TempUpload {
    root: Root,
    temp: VirtualPath,
    target: Option<VirtualPath>,
    committed: bool,
}

impl TempUpload {
    async fn commit(mut self) -> io::Result<()> {
        if let Some(target) = &self.target {
            self.root.rename(&self.temp, target).await?;
        }
        self.committed = true;
        Ok(())
    }

    /// Removes the temporary file now, so it is gone before the failure is reported.
    async fn discard(mut self) {
        let _ = self.root.remove_file(&self.temp).await;
        self.committed = true;
    }
}

impl Drop for TempUpload {
    fn drop(&mut self) {
        if !self.committed {
            let (root, temp) = (self.root.clone(), self.temp.clone());
            // Drop cannot wait; the removal runs on its own.
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    let _ = root.remove_file(&temp).await;
                });
            }
        }
    }
}

/// Why a transfer failed.
enum TransferError {
    /// The data connection broke or the client closed it early: 426.
    Connection(io::Error),
    /// Nothing moved for the stall timeout: 426.
    Stalled,
    /// Reading or writing the file failed: 451/452/552.
    Local(io::Error),
}

type TransferResult = std::result::Result<u64, TransferError>;

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
            root.open_write(&path, mode).await.map(|f| (f, None))
        } else {
            match root.metadata(&path).await {
                Ok(e) if e.kind == EntryKind::Dir => Err(io::Error::new(
                    io::ErrorKind::IsADirectory,
                    "is a directory",
                )),
                _ => root.create_temp_beside(&path).await.map(|(f, temp)| {
                    let commit = TempUpload {
                        root: root.clone(),
                        temp,
                        target: Some(path.clone()),
                        committed: false,
                    };
                    (f, Some(commit))
                }),
            }
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
            commit: Some(commit),
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
        let progress = Arc::new(AtomicU64::new(0));
        let stall = Duration::from_secs(self.shared.config.timeouts.transfer_stall);
        let started = Instant::now();
        // Boxed so that ABOR can drop it (closing the data connection) before replying.
        let mut work = Box::pin(job.run(data, progress.clone(), stall));
        enum Outcome {
            Done(TransferResult),
            Aborted,
            ControlLost,
        }
        let outcome = loop {
            tokio::select! {
                result = &mut work => break Outcome::Done(result),
                event = self.read_event() => match event {
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
                info!(command = verb, path = %path, bytes, secs = format!("{secs:.3}"), mib_per_s = format!("{rate:.1}"), "transfer complete");
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
    async fn run(
        self,
        mut data: DataStream,
        progress: Arc<AtomicU64>,
        stall: Duration,
    ) -> TransferResult {
        let result = match self {
            Job::Send { file, ascii } => send_file(&mut data, file, ascii, &progress, stall).await,
            Job::Receive {
                file,
                ascii,
                commit,
            } => {
                let received = receive_file(&mut data, file, ascii, &progress, stall).await;
                match (received, commit) {
                    (Ok(n), Some(upload)) => upload
                        .commit()
                        .await
                        .map(|()| n)
                        .map_err(TransferError::Local),
                    (Err(e), Some(upload)) => {
                        upload.discard().await;
                        Err(e)
                    }
                    (other, None) => other,
                }
            }
            Job::List(list) => send_listing(&mut data, list, &progress, stall).await,
        }?;
        // Send close_notify (TLS) and FIN; then wait briefly for the client's side, so that
        // closing does not reset a connection whose last bytes are still unread.
        finish(&mut data, stall).await;
        Ok(result)
    }
}

async fn finish(data: &mut DataStream, stall: Duration) {
    let _ = tokio::time::timeout(stall, data.shutdown()).await;
    let mut sink = [0u8; 512];
    let drain = async {
        while let Ok(n) = data.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
}

async fn write_with_stall(
    data: &mut DataStream,
    bytes: &[u8],
    stall: Duration,
) -> std::result::Result<(), TransferError> {
    match tokio::time::timeout(stall, data.write_all(bytes)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(TransferError::Connection(e)),
        Err(_) => Err(TransferError::Stalled),
    }
}

async fn send_file(
    data: &mut DataStream,
    mut file: std::fs::File,
    ascii: bool,
    progress: &AtomicU64,
    stall: Duration,
) -> TransferResult {
    let (full_tx, mut full_rx) = mpsc::channel::<io::Result<Vec<u8>>>(CHUNKS_IN_FLIGHT);
    let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let reader = tokio::task::spawn_blocking(move || loop {
        let mut buf = empty_rx.try_recv().unwrap_or_default();
        buf.clear();
        buf.reserve(CHUNK);
        // `take` + `read_to_end` fills spare capacity without zeroing it first.
        match (&mut file).take(CHUNK as u64).read_to_end(&mut buf) {
            Ok(0) => break,
            Ok(_) => {
                if full_tx.blocking_send(Ok(buf)).is_err() {
                    break;
                }
            }
            Err(e) => {
                let _ = full_tx.blocking_send(Err(e));
                break;
            }
        }
    });
    let mut to_network = ascii::ToNetwork::default();
    let mut converted = Vec::new();
    let mut total = 0u64;
    while let Some(chunk) = full_rx.recv().await {
        let chunk = chunk.map_err(TransferError::Local)?;
        let out = if ascii {
            converted.clear();
            to_network.convert(&chunk, &mut converted);
            &converted[..]
        } else {
            &chunk[..]
        };
        write_with_stall(data, out, stall).await?;
        total += out.len() as u64;
        progress.store(total, Ordering::Relaxed);
        let _ = empty_tx.send(chunk);
    }
    reader
        .await
        .map_err(|e| TransferError::Local(io::Error::other(e)))?;
    Ok(total)
}

async fn receive_file(
    data: &mut DataStream,
    mut file: std::fs::File,
    ascii: bool,
    progress: &AtomicU64,
    stall: Duration,
) -> TransferResult {
    // Async sends on the network side (never blocking a runtime thread), blocking
    // receives on the disk thread.
    let (full_tx, mut full_rx) = mpsc::channel::<Vec<u8>>(CHUNKS_IN_FLIGHT);
    let (empty_tx, mut empty_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::task::spawn_blocking(move || -> io::Result<()> {
        let mut from_network = ascii::FromNetwork::default();
        let mut converted = Vec::new();
        while let Some(chunk) = full_rx.blocking_recv() {
            if ascii {
                converted.clear();
                from_network.convert(&chunk, &mut converted);
                file.write_all(&converted)?;
            } else {
                file.write_all(&chunk)?;
            }
            let _ = empty_tx.send(chunk);
        }
        if ascii {
            converted.clear();
            from_network.finish(&mut converted);
            file.write_all(&converted)?;
        }
        // 226 promises the file is complete: make it durable first.
        file.sync_all()
    });
    let mut total = 0u64;
    let network = async {
        loop {
            let mut buf = empty_rx.try_recv().unwrap_or_default();
            buf.clear();
            buf.reserve(CHUNK);
            // Hand over whole chunks: a TLS read returns about one 16 KiB record, and a
            // hand-off per record would wake the disk thread for every one of them.
            let mut eof = false;
            while buf.len() < CHUNK {
                match tokio::time::timeout(stall, data.read_buf(&mut buf)).await {
                    Ok(Ok(0)) => {
                        eof = true;
                        break;
                    }
                    Ok(Ok(n)) => {
                        total += n as u64;
                        progress.store(total, Ordering::Relaxed);
                    }
                    // A TLS stream that ends without close_notify is reported here as an
                    // error: the upload may be truncated, so it is not accepted as complete.
                    Ok(Err(e)) => return Err(TransferError::Connection(e)),
                    Err(_) => return Err(TransferError::Stalled),
                }
            }
            if !buf.is_empty() && full_tx.send(buf).await.is_err() {
                // The writer stopped: its error is reported below.
                return Ok(());
            }
            if eof {
                return Ok(());
            }
        }
    };
    let received = network.await;
    drop(full_tx);
    let written = writer
        .await
        .map_err(|e| TransferError::Local(io::Error::other(e)))?;
    received?;
    written.map_err(TransferError::Local)?;
    Ok(total)
}

async fn send_listing(
    data: &mut DataStream,
    job: ListJob,
    progress: &AtomicU64,
    stall: Duration,
) -> TransferResult {
    let ListJob {
        root,
        dir,
        args,
        format,
        access,
        facts,
        single,
    } = job;
    let (tx, mut rx) = mpsc::channel::<io::Result<Vec<u8>>>(2);
    let producer = tokio::task::spawn_blocking(move || {
        let now = SystemTime::now();
        let mut buf = Vec::with_capacity(LISTING_CHUNK + 1024);
        let emit = |line: String, buf: &mut Vec<u8>| -> bool {
            buf.extend_from_slice(line.as_bytes());
            buf.extend_from_slice(b"\r\n");
            if buf.len() >= LISTING_CHUNK {
                return tx.blocking_send(Ok(std::mem::take(buf))).is_ok();
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
            let result = root.for_each_entry_blocking(&dir, |entry| {
                let hidden = entry.name.as_encoded_bytes().starts_with(b".");
                if hidden && !args.all() {
                    return true;
                }
                let line = format_entry(&entry, format, access, facts, now, prefix.as_deref());
                emit(line, &mut buf)
            });
            if let Err(e) = result {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        }
        if !buf.is_empty() {
            let _ = tx.blocking_send(Ok(buf));
        }
    });
    let mut total = 0u64;
    while let Some(chunk) = rx.recv().await {
        let chunk = chunk.map_err(TransferError::Local)?;
        write_with_stall(data, &chunk, stall).await?;
        total += chunk.len() as u64;
        progress.store(total, Ordering::Relaxed);
    }
    producer
        .await
        .map_err(|e| TransferError::Local(io::Error::other(e)))?;
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
