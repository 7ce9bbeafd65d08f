//! File and directory management: `MKD`, `RMD`, `DELE`, `RNFR`, `RNTO` (RFC 959 §4.1.3),
//! `SIZE`, `MDTM` (RFC 3659 §§3-4), `MLST` (RFC 3659 §7) and `MFMT` (draft-somers-ftp-mfxx).

use ftps_proto::listing;
use ftps_proto::reply::quote_path;
use ftps_proto::{Reply, ReplyCode};

use super::listing::{entry_facts, Rights};
use super::state::LoggedIn;
use super::{Flow, Result, Session};
use crate::ops::events::EventKind;
use crate::storage::{EntryKind, VirtualPath};

impl Session {
    pub(super) async fn cmd_mkd(&mut self, user: &LoggedIn, arg: &str) -> Result {
        if !self.check_write(user).await? {
            return Ok(Flow::Continue);
        }
        let (storage, path) = (user.storage(), user.path(arg));
        match storage.create_dir(&path).await {
            Ok(()) => {
                self.event(user, EventKind::Mkdir, Some(&path), None, None);
                self.reply(
                    ReplyCode::PATH_CREATED,
                    format!("{} created.", quote_path(path.as_str())),
                )
                .await
            }
            Err(e) => self.reply_fs_error("MKD", &path, &e).await,
        }
    }

    pub(super) async fn cmd_rmd(&mut self, user: &LoggedIn, arg: &str) -> Result {
        if !self.check_write(user).await? {
            return Ok(Flow::Continue);
        }
        let (storage, path) = (user.storage(), user.path(arg));
        match storage.remove_dir(&path).await {
            Ok(()) => {
                self.event(user, EventKind::Rmdir, Some(&path), None, None);
                self.reply(ReplyCode::FILE_ACTION_OK, "Directory removed.")
                    .await
            }
            Err(e) => self.reply_fs_error("RMD", &path, &e).await,
        }
    }

    pub(super) async fn cmd_dele(&mut self, user: &LoggedIn, arg: &str) -> Result {
        if !self.check_write(user).await? {
            return Ok(Flow::Continue);
        }
        let (storage, path) = (user.storage(), user.path(arg));
        // unlink(2) refuses a directory with EISDIR: no separate check (and no second trip
        // through the blocking pool) is needed.
        match storage.remove_file(&path).await {
            Ok(()) => {
                tracing::info!(path = %path, "deleted");
                self.event(user, EventKind::Delete, Some(&path), None, None);
                self.shared.ops.deleted(
                    super::canonical_ip(self.peer.ip()),
                    path.as_str(),
                    user.name(),
                    user.is_anonymous(),
                );
                self.reply(ReplyCode::FILE_ACTION_OK, "File deleted.").await
            }
            Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => {
                self.reply(ReplyCode::FILE_UNAVAILABLE, "Is a directory; use RMD.")
                    .await
            }
            Err(e) => self.reply_fs_error("DELE", &path, &e).await,
        }
    }

    pub(super) async fn cmd_rnfr(&mut self, user: &LoggedIn, arg: &str) -> Result {
        if !self.check_write(user).await? {
            return Ok(Flow::Continue);
        }
        let (storage, path) = (user.storage(), user.path(arg));
        if path.is_root() {
            return self
                .reply(
                    ReplyCode::FILE_UNAVAILABLE,
                    "Cannot rename the root directory.",
                )
                .await;
        }
        match storage.metadata(&path).await {
            Ok(_) => {
                self.params.rename_from = Some(path);
                self.reply(
                    ReplyCode::PENDING_FURTHER_INFO,
                    "File exists; send RNTO with the new name.",
                )
                .await
            }
            Err(e) => self.reply_fs_error("RNFR", &path, &e).await,
        }
    }

    pub(super) async fn cmd_rnto(
        &mut self,
        user: &LoggedIn,
        from: Option<VirtualPath>,
        arg: &str,
    ) -> Result {
        let Some(from) = from else {
            return self
                .reply(ReplyCode::BAD_SEQUENCE, "Send RNFR first.")
                .await;
        };
        if !self.check_write(user).await? {
            return Ok(Flow::Continue);
        }
        let (storage, to) = (user.storage(), user.path(arg));
        match storage.rename(&from, &to).await {
            Ok(()) => {
                tracing::info!(from = %from, to = %to, "renamed");
                self.event(user, EventKind::Rename, Some(&from), Some(&to), None);
                self.reply(ReplyCode::FILE_ACTION_OK, "Rename successful.")
                    .await
            }
            Err(e) => self.reply_fs_error("RNTO", &to, &e).await,
        }
    }

    pub(super) async fn cmd_size(&mut self, user: &LoggedIn, arg: &str) -> Result {
        let (storage, path) = (user.storage(), user.path(arg));
        if self.params.ascii() {
            // RFC 3659 §4: the size must be that of the ASCII transfer, which would mean
            // reading the whole file; we say so instead of giving a wrong number.
            return self
                .reply(
                    ReplyCode::FILE_UNAVAILABLE,
                    "SIZE is not available in ASCII mode; send TYPE I first.",
                )
                .await;
        }
        match storage.metadata(&path).await {
            Ok(e) if e.kind == EntryKind::File => {
                self.reply(ReplyCode::FILE_STATUS, e.size.to_string()).await
            }
            Ok(_) => {
                self.reply(ReplyCode::FILE_UNAVAILABLE, "Not a regular file.")
                    .await
            }
            Err(e) => self.reply_fs_error("SIZE", &path, &e).await,
        }
    }

    pub(super) async fn cmd_mdtm(&mut self, user: &LoggedIn, arg: &str) -> Result {
        let (storage, path) = (user.storage(), user.path(arg));
        match storage.metadata(&path).await {
            Ok(e) => {
                self.reply(ReplyCode::FILE_STATUS, listing::mdtm_time(e.modified))
                    .await
            }
            Err(e) => self.reply_fs_error("MDTM", &path, &e).await,
        }
    }

    /// `MFMT time path`: sets the modification time; 213 repeats it (draft-somers-ftp-mfxx).
    pub(super) async fn cmd_mfmt(
        &mut self,
        user: &LoggedIn,
        time: std::time::SystemTime,
        arg: &str,
    ) -> Result {
        if !self.check_write(user).await? {
            return Ok(Flow::Continue);
        }
        let (storage, path) = (user.storage(), user.path(arg));
        match storage.set_modified(&path, time).await {
            Ok(()) => {
                let when = listing::mdtm_time(time);
                self.reply(ReplyCode::FILE_STATUS, format!("Modify={when}; {arg}"))
                    .await
            }
            Err(e) => self.reply_fs_error("MFMT", &path, &e).await,
        }
    }

    pub(super) async fn cmd_mlst(&mut self, user: &LoggedIn, arg: Option<&str>) -> Result {
        let (storage, path) = (user.storage(), user.path(arg.unwrap_or(".")));
        let rights = Rights::of(user);
        match storage.metadata(&path).await {
            Ok(entry) => {
                let mut facts = entry_facts(&entry, &rights, &path);
                facts.name = path.as_str().to_string();
                // RFC 3659 §7.2: the entry line starts with a space.
                let line = format!(" {}", listing::mlsx_line(&facts, self.params.mlst_facts));
                self.send(Reply::multi(
                    ReplyCode::FILE_ACTION_OK,
                    vec![format!("Listing {}", path), line, "End".into()],
                ))
                .await
            }
            Err(e) => self.reply_fs_error("MLST", &path, &e).await,
        }
    }
}
