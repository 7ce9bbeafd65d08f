//! Commands on remote files and directories, answered on the control connection alone:
//! `PWD`, `CWD`, `MKD`, `RMD`, `DELE`, `RNFR`/`RNTO` (RFC 959 §4.1.1, §4.1.3), `SIZE`, `MDTM`
//! and `MLST` (RFC 3659 §3, §4, §7), `MFMT` (draft-somers-ftp-mfxx) and `HASH`
//! (draft-bryan-ftpext-hash-02).

use std::time::SystemTime;

use ftps_proto::command::ListArgs;
use ftps_proto::hash::{self, HashAlgorithm};
use ftps_proto::listing::FileKind;
use ftps_proto::listing_parse::{self, ListEntry};
use ftps_proto::reply::unquote_path;
use ftps_proto::status;
use ftps_proto::{Command, Reply, ReplyCode};

use crate::error::{Error, Result};
use crate::path::{basename, parent};
use crate::session::FtpsClient;

fn completed(code: ReplyCode) -> bool {
    code.is_completion()
}

impl FtpsClient {
    /// The current directory (`PWD`).
    pub async fn pwd(&mut self) -> Result<String> {
        let reply = self
            .run_expect(&Command::Pwd, |c| c == ReplyCode::PATH_CREATED)
            .await?;
        let text = reply.lines.last().cloned().unwrap_or_default();
        unquote_path(&text)
            .ok_or_else(|| Error::Protocol(format!("cannot read PWD reply {text:?}")))
    }

    /// Changes directory (`CWD`).
    pub async fn cwd(&mut self, path: &str) -> Result<()> {
        self.run_expect(&Command::Cwd(path.into()), completed)
            .await
            .map(drop)
    }

    /// Creates a directory (`MKD`).
    pub async fn mkdir(&mut self, path: &str) -> Result<()> {
        self.run_expect(&Command::Mkd(path.into()), completed)
            .await
            .map(drop)
    }

    /// Creates a directory and any missing parents. Existing directories are not an error.
    pub async fn mkdir_all(&mut self, path: &str) -> Result<()> {
        let absolute = path.starts_with('/');
        let mut prefix = String::new();
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        for (i, part) in parts.iter().enumerate() {
            if absolute || !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            let mkd = Command::Mkd(prefix.clone());
            let reply = self.run(&mkd).await?;
            if !reply.code.is_completion() && i + 1 == parts.len() {
                // The last one must exist now.
                if self
                    .stat(&prefix)
                    .await
                    .map(|e| e.is_dir())
                    .unwrap_or(false)
                {
                    return Ok(());
                }
                return Err(Error::reply_err(&mkd, reply));
            }
        }
        Ok(())
    }

    /// Removes an empty directory (`RMD`).
    pub async fn rmdir(&mut self, path: &str) -> Result<()> {
        self.run_expect(&Command::Rmd(path.into()), completed)
            .await
            .map(drop)
    }

    /// Deletes a file (`DELE`).
    pub async fn delete(&mut self, path: &str) -> Result<()> {
        self.run_expect(&Command::Dele(path.into()), completed)
            .await
            .map(drop)
    }

    /// Renames (`RNFR` + `RNTO`).
    pub async fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        self.run_expect(&Command::Rnfr(from.into()), |c| {
            c == ReplyCode::PENDING_FURTHER_INFO
        })
        .await?;
        self.run_expect(&Command::Rnto(to.into()), completed)
            .await
            .map(drop)
    }

    /// A file's size (`SIZE`, RFC 3659).
    pub async fn size(&mut self, path: &str) -> Result<u64> {
        let reply = self.file_status(Command::Size(path.into())).await?;
        status::parse_size_reply(&reply.text())
            .ok_or_else(|| Error::Protocol(format!("cannot read SIZE reply {:?}", reply.text())))
    }

    /// A file's modification time (`MDTM`, RFC 3659).
    pub async fn mdtm(&mut self, path: &str) -> Result<SystemTime> {
        let reply = self.file_status(Command::Mdtm(path.into())).await?;
        status::parse_mdtm_reply(&reply.text())
            .ok_or_else(|| Error::Protocol(format!("cannot read MDTM reply {:?}", reply.text())))
    }

    /// Sends a command answered by a 213 file status reply.
    async fn file_status(&mut self, command: Command) -> Result<Reply> {
        self.run_expect(&command, |c| c == ReplyCode::FILE_STATUS)
            .await
    }

    /// Sets a file's modification time: `MFMT` where the server has it, else the two-argument
    /// `MDTM` that vsftpd and others accept.
    pub async fn set_mtime(&mut self, path: &str, time: SystemTime) -> Result<()> {
        let command = if self.features.mfmt {
            Command::Mfmt(time, path.into())
        } else {
            Command::mdtm_set(time, path)
        };
        self.run_expect(&command, completed).await.map(drop)
    }

    /// The SHA-256 of a remote file as the server computes it (`HASH`,
    /// draft-bryan-ftpext-hash-02), when the server offers SHA-256; `None` when it does not.
    pub async fn server_sha256(&mut self, path: &str) -> Result<Option<String>> {
        let sha256 = HashAlgorithm::Sha256;
        if !self.features.offers_hash(sha256) {
            return Ok(None);
        }
        if !self
            .run(&sha256.select_command())
            .await?
            .code
            .is_completion()
        {
            return Ok(None);
        }
        let reply = self.file_status(Command::Hash(path.into())).await?;
        match hash::parse_hash_reply(&reply.text()) {
            Some(h) if h.algorithm == sha256 => Ok(Some(h.digest)),
            _ => Err(Error::Protocol(format!(
                "cannot read HASH reply {:?}",
                reply.text()
            ))),
        }
    }

    /// Facts about one file or directory: `MLST` where available, else a listing of its parent.
    pub async fn stat(&mut self, path: &str) -> Result<ListEntry> {
        if self.features.mlst {
            let reply = self
                .run_expect(&Command::Mlst(Some(path.into())), |c| {
                    c == ReplyCode::FILE_ACTION_OK
                })
                .await?;
            let Some(mut e) = listing_parse::parse_mlst_reply(&reply) else {
                return Err(Error::Protocol(format!(
                    "cannot read MLST reply {:?}",
                    reply.text()
                )));
            };
            e.name = basename(path).to_string();
            if e.kind == FileKind::CurrentDir {
                e.kind = FileKind::Dir;
            }
            return Ok(e);
        }
        let trimmed = path.trim_end_matches('/');
        if trimmed.is_empty() {
            return Ok(ListEntry::directory("/"));
        }
        let parent = parent(trimmed);
        let name = basename(trimmed);
        let entries = self.list_dir(&parent).await?;
        if let Some(e) = entries.into_iter().find(|e| e.name == name) {
            return Ok(e);
        }
        // A directory that its parent does not show (e.g. the login directory).
        if self
            .run(&Command::Cwd(trimmed.into()))
            .await?
            .code
            .is_completion()
        {
            return Ok(ListEntry::directory(name));
        }
        let asked = Command::Stat(Some(ListArgs {
            options: String::new(),
            path: Some(path.to_string()),
        }));
        Err(Error::reply_err(
            &asked,
            Reply::new(
                ReplyCode::FILE_UNAVAILABLE,
                format!("{path}: no such file or directory"),
            ),
        ))
    }
}
