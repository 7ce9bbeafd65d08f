//! Transfers: `RETR`, `STOR`, `STOU`, `APPE`, `REST` (RFC 959 §4.1.3, RFC 3659 §5), `LIST`,
//! `NLST` (RFC 959) and `MLSD` (RFC 3659 §7).
//!
//! Every transfer command starts with [`Session::prepare_transfer`], opens its file (or
//! checks its directory), and hands a [`Job`] to [`Session::run_transfer`], which makes the
//! data connection ([`super::connect`]), runs the job ([`super::job`]) while the session
//! keeps answering `ABOR` and `STAT`, and sends the final reply. A `STOR` is published under
//! its name only when the whole upload has arrived, so a broken upload never replaces or
//! imitates a complete file; `APPE` and `REST`+`STOR` write in place, as resuming requires
//! (see [`UploadMode`]).

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ftps_proto::command::ListArgs;
use ftps_proto::ReplyCode;
use tracing::{info, warn};

use super::job::Job;
use super::pump::{Abort, TransferError};
use crate::bandwidth::{Direction, Throttle, UserBandwidth};
use crate::limits::size::format_size;
use crate::ops::events::EventKind;
use crate::ops::metrics::{Direction as MetricDirection, TransferResult};
use crate::ops::FinishedTransfer;
use crate::quota::QuotaExceeded;
use crate::session::control::{fs_error, Busy};
use crate::session::listing::{ListFormat, ListJob, ListSource, Rights};
use crate::session::state::LoggedIn;
use crate::session::{canonical_ip, storage_error_kind, Flow, Result, Session};
use crate::storage::{EntryKind, FileTooLarge, Upload, UploadMode, VirtualPath};

/// How long ABOR waits for a stopped transfer's thread (a disk write in progress) to end.
const ABORT_WAIT: Duration = Duration::from_secs(30);

impl Session {
    pub(in crate::session) async fn cmd_rest(&mut self, offset: u64) -> Result {
        if self.params.ascii() && offset > 0 {
            return self
                .reply(
                    ReplyCode::PARAMETER_NOT_IMPLEMENTED,
                    "REST is supported in binary mode only; send TYPE I first.",
                )
                .await;
        }
        self.params.restart = offset;
        self.reply(
            ReplyCode::PENDING_FURTHER_INFO,
            format!("Restarting at {offset}. Send STOR or RETR."),
        )
        .await
    }

    /// What every transfer command checks first: takes the `REST` offset (it applies to
    /// this command only), then refuses a write by a read-only user (`writes`) and a
    /// transfer the data protection policy forbids. A refusal closes any pending data
    /// connection. `None`: refused, and the refusal replied.
    async fn prepare_transfer(&mut self, user: &LoggedIn, writes: bool) -> Result<Option<u64>> {
        let offset = std::mem::take(&mut self.params.restart);
        if writes && !self.check_write(user).await? {
            self.drop_data();
            return Ok(None);
        }
        if !self.security.data_private() && self.shared.config.tls.require_for_data {
            self.drop_data();
            self.reply(
                ReplyCode::PROTECTION_REQUIRED,
                "Data connections must be protected: send PBSZ 0 and PROT P.",
            )
            .await?;
            return Ok(None);
        }
        Ok(Some(offset))
    }

    pub(in crate::session) async fn cmd_retr(&mut self, user: &LoggedIn, arg: &str) -> Result {
        let Some(offset) = self.prepare_transfer(user, false).await? else {
            return Ok(Flow::Continue);
        };
        let path = user.path(arg);
        let download = match user.storage().open_read(&path, offset).await {
            Ok(d) => d,
            Err(e) => {
                self.drop_data();
                return self.reply_open_error(user, "RETR", &path, offset, &e).await;
            }
        };
        let ascii = self.params.ascii();
        let opening = format!(
            "Opening {} mode data connection for {} ({} bytes).",
            if ascii { "ASCII" } else { "BINARY" },
            path,
            download.remaining()
        );
        let job = Job::Send { download, ascii };
        self.run_transfer(user, job, opening, "RETR", &path).await
    }

    /// `STOR` (`append` false) and `APPE` (`append` true).
    pub(in crate::session) async fn cmd_store(
        &mut self,
        user: &LoggedIn,
        arg: &str,
        append: bool,
    ) -> Result {
        let Some(offset) = self.prepare_transfer(user, true).await? else {
            return Ok(Flow::Continue);
        };
        let path = user.path(arg);
        if path.is_root() {
            self.drop_data();
            return self
                .reply(ReplyCode::FILE_UNAVAILABLE, "Is a directory.")
                .await;
        }
        let mode = match (append, offset) {
            (true, _) => UploadMode::Append,
            (false, 0) => UploadMode::Replace,
            (false, offset) => UploadMode::At(offset),
        };
        let verb = if append { "APPE" } else { "STOR" };
        let upload = match user.storage().create(&path, mode).await {
            Ok(upload) => upload,
            Err(e) => {
                self.drop_data();
                if let Some(text) = refusal_text(&e) {
                    info!(command = verb, path = %path, reason = %e, "upload refused");
                    return self.reply(ReplyCode::EXCEEDED_STORAGE, text).await;
                }
                return self.reply_open_error(user, "STOR", &path, offset, &e).await;
            }
        };
        let ascii = self.params.ascii();
        let opening = format!(
            "Opening {} mode data connection for {}.",
            if ascii { "ASCII" } else { "BINARY" },
            path
        );
        let job = Job::Receive { upload, ascii };
        self.run_transfer(user, job, opening, verb, &path).await
    }

    /// `STOU`: stores under a new name in the working directory, announced as
    /// `150 FILE: name` (RFC 1123 §4.1.2.9). A failed upload leaves no file behind.
    pub(in crate::session) async fn cmd_stou(&mut self, user: &LoggedIn) -> Result {
        if self.prepare_transfer(user, true).await?.is_none() {
            return Ok(Flow::Continue);
        }
        let (upload, path) = match create_unique(user).await {
            Ok(pair) => pair,
            Err(e) => {
                self.drop_data();
                if let Some(text) = refusal_text(&e) {
                    info!(command = "STOU", reason = %e, "upload refused");
                    return self.reply(ReplyCode::EXCEEDED_STORAGE, text).await;
                }
                return self.reply_fs_error("STOU", &user.path("."), &e).await;
            }
        };
        let name = path.file_name().unwrap_or_default().to_string();
        let job = Job::Receive {
            upload,
            ascii: self.params.ascii(),
        };
        self.run_transfer(user, job, format!("FILE: {name}"), "STOU", &path)
            .await
    }

    /// An open failure; an offset past the end of the file is RFC 3659's 554.
    async fn reply_open_error(
        &mut self,
        user: &LoggedIn,
        verb: &str,
        path: &VirtualPath,
        offset: u64,
        e: &io::Error,
    ) -> Result {
        if offset > 0
            && e.kind() == io::ErrorKind::InvalidInput
            && user
                .storage()
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
        self.reply_fs_error(verb, path, e).await
    }

    /// `LIST`, `NLST` and `MLSD`: a listing of a directory (or, but for `MLSD`, of one file)
    /// over the data connection.
    pub(in crate::session) async fn cmd_list(
        &mut self,
        user: &LoggedIn,
        args: ListArgs,
        format: ListFormat,
    ) -> Result {
        if self.prepare_transfer(user, false).await?.is_none() {
            return Ok(Flow::Continue);
        }
        let path = user.path(args.path.as_deref().unwrap_or("."));
        let storage = user.storage();
        let entry = match storage.metadata(&path).await {
            Ok(e) => e,
            Err(e) => {
                self.drop_data();
                return self.reply_fs_error("LIST", &path, &e).await;
            }
        };
        let source = if entry.kind == EntryKind::Dir {
            let entries = match storage.list(&path).await {
                Ok(entries) => entries,
                Err(e) => {
                    self.drop_data();
                    return self.reply_fs_error("LIST", &path, &e).await;
                }
            };
            let (cdir, pdir) = if format == ListFormat::Mlsd {
                // The parent's facts, when they can be read; the listing goes on without.
                let pdir = if path.is_root() {
                    None
                } else {
                    storage.metadata(&path.parent()).await.ok().map(Box::new)
                };
                (Some(Box::new(entry)), pdir)
            } else {
                (None, None)
            };
            ListSource::Dir {
                entries,
                cdir,
                pdir,
            }
        } else if format == ListFormat::Mlsd {
            self.drop_data();
            return self
                .reply(ReplyCode::FILE_UNAVAILABLE, "Not a directory; use MLST.")
                .await;
        } else {
            ListSource::File(Box::new(entry))
        };
        let job = Job::List(ListJob {
            source,
            args,
            format,
            rights: Rights::of(user),
            path: path.clone(),
            facts: self.params.mlst_facts,
        });
        let opening = format!("Opening ASCII mode data connection for the listing of {path}.");
        let verb = match format {
            ListFormat::Unix => "LIST",
            ListFormat::Names => "NLST",
            ListFormat::Mlsd => "MLSD",
        };
        self.run_transfer(user, job, opening, verb, &path).await
    }

    /// Makes the data connection, runs the job while answering ABOR and STAT, and sends the
    /// final reply.
    async fn run_transfer(
        &mut self,
        user: &LoggedIn,
        job: Job,
        opening: String,
        verb: &'static str,
        path: &VirtualPath,
    ) -> Result {
        let upload = matches!(job, Job::Receive { .. });
        let (direction, ascii) = match &job {
            Job::Receive { ascii, .. } => (MetricDirection::Upload, *ascii),
            Job::Send { ascii, .. } => (MetricDirection::Download, *ascii),
            Job::List(_) => (MetricDirection::Listing, true),
        };
        let Some(data) = self.connect_data(user, opening, upload).await? else {
            return Ok(Flow::Continue);
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
        let throttle = self.throttle(user, upload);
        self.registered
            .transfer_started(verb, path.as_str(), progress.clone());
        let mut work = Box::pin(job.run(data, progress.clone(), stall, abort.clone(), throttle));
        let status = || {
            let done = progress.load(Ordering::Relaxed);
            format!("{verb} {path} in progress: {done} bytes transferred.")
        };
        let outcome = self.control.while_busy(&mut work, status).await;
        self.registered.transfer_ended();
        let outcome = outcome?;
        let bytes = progress.load(Ordering::Relaxed);
        let result = match &outcome {
            Busy::Done(Ok(_)) => TransferResult::Ok,
            Busy::Done(Err(TransferError::Local(err))) if refusal_text(err).is_some() => {
                TransferResult::Refused
            }
            Busy::Done(Err(TransferError::Local(err))) => {
                self.shared
                    .ops
                    .metrics
                    .storage_error(storage_error_kind(err));
                TransferResult::Failed
            }
            Busy::Done(Err(_)) | Busy::ControlLost => TransferResult::Failed,
            Busy::Aborted | Busy::Ended => TransferResult::Aborted,
        };
        self.shared.ops.transfer(&FinishedTransfer {
            direction,
            result,
            bytes: match &outcome {
                Busy::Done(Ok(total)) => *total,
                _ => bytes,
            },
            elapsed: started.elapsed(),
            client: canonical_ip(self.peer.ip()),
            path: path.as_str(),
            ascii,
            user: user.name(),
            anonymous: user.is_anonymous(),
        });
        let secs = started.elapsed().as_secs_f64();
        let rate = bytes as f64 / secs.max(1e-6) / (1024.0 * 1024.0);
        match outcome {
            Busy::Done(Ok(bytes)) => {
                info!(command = verb, path = %path, bytes, secs = format!("{secs:.3}"), mib_per_s = format!("{rate:.1}"), data_tls, "transfer complete");
                let kind = match direction {
                    MetricDirection::Upload => Some(EventKind::Upload),
                    MetricDirection::Download => Some(EventKind::Download),
                    MetricDirection::Listing => None,
                };
                if let Some(kind) = kind {
                    self.event(user, kind, Some(path), None, Some(bytes));
                }
                self.reply(
                    ReplyCode::TRANSFER_COMPLETE,
                    format!("Transfer complete ({bytes} bytes)."),
                )
                .await
            }
            Busy::Done(Err(e)) => {
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
                    TransferError::Local(err) if refusal_text(err).is_some() => {
                        info!(command = verb, path = %path, bytes, reason = %err, "transfer refused");
                        (
                            ReplyCode::EXCEEDED_STORAGE,
                            refusal_text(err).unwrap_or_default(),
                        )
                    }
                    TransferError::Local(err) => {
                        warn!(command = verb, path = %path, bytes, error = %err, "transfer failed: local error");
                        let (code, text) = fs_error(err);
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
            Busy::Aborted => {
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
            Busy::ControlLost => {
                info!(command = verb, path = %path, bytes, "control connection lost during transfer");
                Ok(Flow::Close)
            }
            Busy::Ended => {
                abort.trigger();
                let _ = tokio::time::timeout(ABORT_WAIT, &mut work).await;
                drop(work);
                info!(command = verb, path = %path, bytes, "transfer stopped: session ended by the administrator");
                self.reply(
                    ReplyCode::TRANSFER_ABORTED,
                    "Connection closed; transfer aborted.",
                )
                .await?;
                self.end_by_administrator().await;
                Ok(Flow::Close)
            }
        }
    }
}

impl Session {
    /// The bandwidth limits a transfer that starts now is under (an upload if `upload`),
    /// as the users file says now; `None`: none.
    fn throttle(&self, user: &LoggedIn, upload: bool) -> Option<Throttle> {
        let (host, users) = match &self.vhost {
            Some(host) => (Some(host.name.as_str()), &host.users),
            None => (None, &self.shared.users),
        };
        let db = users.snapshot();
        let limits = db.get(user.name()).map(|entry| &entry.bandwidth);
        let direction = if upload {
            Direction::Upload
        } else {
            Direction::Download
        };
        self.shared.bandwidth.throttle(
            direction,
            host,
            user.name(),
            limits.unwrap_or(&UserBandwidth::default()),
            user.bandwidth(),
        )
    }
}

/// The text of RFC 959's 552 for an upload that a limit refused (the file size limit, the
/// quota), with the figures; `None` for other errors.
fn refusal_text(e: &io::Error) -> Option<String> {
    if let Some(max) = FileTooLarge::limit_of(e) {
        return Some(format!(
            "Exceeded storage allocation: files of this account may be at most {max} bytes ({}); \
             the upload was refused and the file left as it was.",
            format_size(max)
        ));
    }
    let refusal = QuotaExceeded::of(e)?;
    let figures = match refusal {
        QuotaExceeded::Bytes { limit, used } => format!(
            "{used} of {limit} bytes ({}) in use, and this upload would pass the limit",
            format_size(limit)
        ),
        QuotaExceeded::Files { limit, used } => {
            format!("{used} of {limit} files in use, and this upload would add one")
        }
    };
    Some(format!(
        "Quota exceeded: {figures}; the upload was refused and the file left as it was (SITE QUOTA shows the usage)."
    ))
}

/// Starts an upload to a new file with a name nobody uses in the working directory.
async fn create_unique(user: &LoggedIn) -> io::Result<(Box<dyn Upload>, VirtualPath)> {
    let mut last = io::Error::new(io::ErrorKind::AlreadyExists, "no free name");
    for _ in 0..16 {
        let path = user.path(&format!("ftpsd.{:016x}", rand::random::<u64>()));
        match user.storage().create(&path, UploadMode::CreateNew).await {
            Ok(upload) => return Ok((upload, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}
