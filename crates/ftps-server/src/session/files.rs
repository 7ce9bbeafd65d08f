//! File and directory management: `MKD`, `RMD`, `DELE`, `RNFR`, `RNTO` (RFC 959 §4.1.3),
//! `SIZE`, `MDTM` (RFC 3659 §§3-4), `MLST` (RFC 3659 §7) and `MFMT` (draft-somers-ftp-mfxx).

use ftps_proto::command::TransferType;
use ftps_proto::listing::{self, FileFacts, FileKind};
use ftps_proto::reply::quote_path;
use ftps_proto::{Reply, ReplyCode};

use super::{Flow, Result, Session};
use crate::policy::Access;
use crate::vfs::{Entry, EntryKind, VirtualPath};

impl Session {
    pub(super) async fn cmd_mkd(&mut self, arg: &str) -> Result {
        if !self.check_write().await? {
            return Ok(Flow::Continue);
        }
        let Some((root, path)) = self.resolve(arg) else {
            return Ok(Flow::Continue);
        };
        match root.create_dir(&path).await {
            Ok(()) => {
                self.reply(
                    ReplyCode::PATH_CREATED,
                    format!("{} created.", quote_path(path.as_str())),
                )
                .await
            }
            Err(e) => self.reply_fs_error("MKD", &path, &e).await,
        }
    }

    pub(super) async fn cmd_rmd(&mut self, arg: &str) -> Result {
        if !self.check_write().await? {
            return Ok(Flow::Continue);
        }
        let Some((root, path)) = self.resolve(arg) else {
            return Ok(Flow::Continue);
        };
        match root.remove_dir(&path).await {
            Ok(()) => {
                self.reply(ReplyCode::FILE_ACTION_OK, "Directory removed.")
                    .await
            }
            Err(e) => self.reply_fs_error("RMD", &path, &e).await,
        }
    }

    pub(super) async fn cmd_dele(&mut self, arg: &str) -> Result {
        if !self.check_write().await? {
            return Ok(Flow::Continue);
        }
        let Some((root, path)) = self.resolve(arg) else {
            return Ok(Flow::Continue);
        };
        // unlink(2) refuses a directory with EISDIR: no separate check (and no second trip
        // through the blocking pool) is needed.
        match root.remove_file(&path).await {
            Ok(()) => {
                tracing::info!(path = %path, "deleted");
                self.reply(ReplyCode::FILE_ACTION_OK, "File deleted.").await
            }
            Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => {
                self.reply(ReplyCode::FILE_UNAVAILABLE, "Is a directory; use RMD.")
                    .await
            }
            Err(e) => self.reply_fs_error("DELE", &path, &e).await,
        }
    }

    pub(super) async fn cmd_rnfr(&mut self, arg: &str) -> Result {
        if !self.check_write().await? {
            return Ok(Flow::Continue);
        }
        let Some((root, path)) = self.resolve(arg) else {
            return Ok(Flow::Continue);
        };
        if path.is_root() {
            return self
                .reply(
                    ReplyCode::FILE_UNAVAILABLE,
                    "Cannot rename the root directory.",
                )
                .await;
        }
        match root.metadata(&path).await {
            Ok(_) => {
                self.rename_from = Some(path);
                self.reply(
                    ReplyCode::PENDING_FURTHER_INFO,
                    "File exists; send RNTO with the new name.",
                )
                .await
            }
            Err(e) => self.reply_fs_error("RNFR", &path, &e).await,
        }
    }

    pub(super) async fn cmd_rnto(&mut self, from: Option<VirtualPath>, arg: &str) -> Result {
        let Some(from) = from else {
            return self
                .reply(ReplyCode::BAD_SEQUENCE, "Send RNFR first.")
                .await;
        };
        if !self.check_write().await? {
            return Ok(Flow::Continue);
        }
        let Some((root, to)) = self.resolve(arg) else {
            return Ok(Flow::Continue);
        };
        match root.rename(&from, &to).await {
            Ok(()) => {
                tracing::info!(from = %from, to = %to, "renamed");
                self.reply(ReplyCode::FILE_ACTION_OK, "Rename successful.")
                    .await
            }
            Err(e) => self.reply_fs_error("RNTO", &to, &e).await,
        }
    }

    pub(super) async fn cmd_size(&mut self, arg: &str) -> Result {
        let Some((root, path)) = self.resolve(arg) else {
            return Ok(Flow::Continue);
        };
        if self.transfer_type == TransferType::Ascii {
            // RFC 3659 §4: the size must be that of the ASCII transfer, which would mean
            // reading the whole file; we say so instead of giving a wrong number.
            return self
                .reply(
                    ReplyCode::FILE_UNAVAILABLE,
                    "SIZE is not available in ASCII mode; send TYPE I first.",
                )
                .await;
        }
        match root.metadata(&path).await {
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

    pub(super) async fn cmd_mdtm(&mut self, arg: &str) -> Result {
        let Some((root, path)) = self.resolve(arg) else {
            return Ok(Flow::Continue);
        };
        match root.metadata(&path).await {
            Ok(e) => {
                self.reply(ReplyCode::FILE_STATUS, listing::mdtm_time(e.modified))
                    .await
            }
            Err(e) => self.reply_fs_error("MDTM", &path, &e).await,
        }
    }

    /// `MFMT time path`: sets the modification time; 213 repeats it (draft-somers-ftp-mfxx).
    pub(super) async fn cmd_mfmt(&mut self, time: std::time::SystemTime, arg: &str) -> Result {
        if !self.check_write().await? {
            return Ok(Flow::Continue);
        }
        let Some((root, path)) = self.resolve(arg) else {
            return Ok(Flow::Continue);
        };
        match root.set_modified(&path, time).await {
            Ok(()) => {
                let when = listing::mdtm_time(time);
                self.reply(ReplyCode::FILE_STATUS, format!("Modify={when}; {arg}"))
                    .await
            }
            Err(e) => self.reply_fs_error("MFMT", &path, &e).await,
        }
    }

    pub(super) async fn cmd_mlst(&mut self, arg: Option<&str>) -> Result {
        let Some((root, path)) = self.resolve(arg.unwrap_or(".")) else {
            return Ok(Flow::Continue);
        };
        let access = self.access();
        match root.metadata(&path).await {
            Ok(entry) => {
                let mut facts = entry_facts(&entry, access);
                facts.name = path.as_str().to_string();
                // RFC 3659 §7.2: the entry line starts with a space.
                let line = format!(" {}", listing::mlsx_line(&facts, self.mlst_facts));
                self.send(Reply::multi(
                    ReplyCode::FILE_ACTION_OK,
                    vec![format!("Listing {}", path), line, "End".into()],
                ))
                .await
            }
            Err(e) => self.reply_fs_error("MLST", &path, &e).await,
        }
    }

    /// The logged-in user's access level.
    pub(crate) fn access(&self) -> Access {
        self.logged_in()
            .map(|l| l.user.access)
            .unwrap_or(Access::ReadOnly)
    }
}

/// Listing facts for one entry, as seen by a user with `access`.
pub(crate) fn entry_facts(entry: &Entry, access: Access) -> FileFacts {
    let kind = match entry.kind {
        EntryKind::File => FileKind::File,
        EntryKind::Dir => FileKind::Dir,
        EntryKind::Symlink => FileKind::Symlink,
        EntryKind::Other => FileKind::Other,
    };
    // RFC 3659 §7.5.5 letters: files r(etrieve) a(ppend) d(elete) f(rename) w(rite);
    // directories e(nter) l(ist) c(reate) m(kdir) p(urge) d(elete) f(rename).
    let perm = match (kind, access.can_write()) {
        (FileKind::Dir, false) => "el",
        (FileKind::Dir, true) => "eldfcmp",
        (_, false) => "r",
        (_, true) => "radfw",
    };
    FileFacts {
        name: listing::display_name(&entry.name),
        kind,
        size: entry.size,
        modified: entry.modified,
        mode: entry.mode,
        nlink: entry.nlink,
        // Host account names are nobody's business.
        owner: "ftp".into(),
        group: "ftp".into(),
        unique: Some(format!("{:x}g{:x}", entry.dev, entry.ino)),
        perm: perm.into(),
        // Only a link that is shown as a link says where it points.
        link_target: entry
            .link_target
            .as_ref()
            .filter(|_| kind == FileKind::Symlink)
            .map(|t| listing::display_name(t.as_os_str())),
    }
}
