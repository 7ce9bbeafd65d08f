//! Informational and parameter commands: `SYST`, `HELP`, `STAT`, `TYPE` (RFC 959 §4.1),
//! `FEAT` and `OPTS` (RFC 2389), `OPTS UTF8` and `LANG` (RFC 2640), `OPTS MLST`
//! (RFC 3659 §7.9), `CLNT` (a de-facto extension). `HOST` itself is in `access`.

use ftps_proto::command::{ListArgs, TransferType};
use ftps_proto::listing::MlstFacts;
use ftps_proto::{Reply, ReplyCode};

use super::control::fs_error;
use super::listing::{listing_lines, Rights};
use super::state::LoggedIn;
use super::{Result, Session};
use crate::storage::EntryKind;

/// Every command this server implements, with its syntax, for `HELP` and `HELP CMD`
/// (RFC 959 §4.1.3).
const COMMANDS: &[(&str, &str)] = &[
    ("ABOR", "ABOR (abort the running transfer)"),
    ("ACCT", "ACCT <account> (not needed)"),
    ("ALLO", "ALLO <size> (not needed)"),
    ("APPE", "APPE <path> (append to a file)"),
    ("AUTH", "AUTH TLS (start TLS on the control connection)"),
    ("CCC", "CCC (refused by policy)"),
    ("CDUP", "CDUP (change to the parent directory)"),
    ("CLNT", "CLNT <client name and version>"),
    ("CWD", "CWD <path>"),
    ("DELE", "DELE <path>"),
    ("EPRT", "EPRT |<protocol>|<address>|<port>|"),
    ("EPSV", "EPSV [1|2|ALL]"),
    ("FEAT", "FEAT (list the extensions)"),
    (
        "HASH",
        "HASH <path> (digest of the whole file; OPTS HASH selects the algorithm)",
    ),
    ("HELP", "HELP [<command>]"),
    ("HOST", "HOST <domain name> (before USER; RFC 7151)"),
    ("LANG", "LANG [EN]"),
    ("LIST", "LIST [-la] [<path>]"),
    ("MDTM", "MDTM <path> (modification time, UTC)"),
    (
        "MFMT",
        "MFMT <YYYYMMDDHHMMSS> <path> (set the modification time, UTC)",
    ),
    ("MKD", "MKD <path>"),
    ("MLSD", "MLSD [<directory>]"),
    ("MLST", "MLST [<path>]"),
    ("MODE", "MODE S"),
    ("NLST", "NLST [<path>]"),
    ("NOOP", "NOOP"),
    (
        "OPTS",
        "OPTS UTF8 ON | OPTS MLST <facts> | OPTS HASH [<algorithm>]",
    ),
    ("PASS", "PASS <password>"),
    ("PASV", "PASV"),
    ("PBSZ", "PBSZ 0"),
    ("PORT", "PORT <h1,h2,h3,h4,p1,p2>"),
    ("PROT", "PROT C|P"),
    ("PWD", "PWD (print the working directory)"),
    ("QUIT", "QUIT"),
    ("REIN", "REIN (log out, keep the connection)"),
    ("REST", "REST <offset> (binary mode)"),
    ("RETR", "RETR <path>"),
    ("RMD", "RMD <path>"),
    ("RNFR", "RNFR <path> (then RNTO)"),
    ("RNTO", "RNTO <path>"),
    ("SITE", "SITE CHMOD <mode> <path> | SITE HELP"),
    ("SIZE", "SIZE <path>"),
    ("STAT", "STAT [<path>]"),
    ("STOR", "STOR <path>"),
    (
        "STOU",
        "STOU (store under a unique name, reported in the 150 reply)",
    ),
    ("STRU", "STRU F"),
    ("SYST", "SYST"),
    ("TYPE", "TYPE A [N] | TYPE I | TYPE L 8"),
    ("USER", "USER <name>"),
    ("XCUP", "XCUP (same as CDUP)"),
    ("XCWD", "XCWD <path> (same as CWD)"),
    ("XMKD", "XMKD <path> (same as MKD)"),
    ("XPWD", "XPWD (same as PWD)"),
    ("XRMD", "XRMD <path> (same as RMD)"),
];

/// Languages for `LANG` (RFC 2640 §4): replies are in English only.
const LANGUAGE: &str = "EN";

impl Session {
    pub(super) async fn cmd_feat(&mut self) -> Result {
        let mut lines = vec!["Features:".to_string()];
        let mut add = |s: &str| lines.push(format!(" {s}"));
        add("AUTH TLS");
        add("PBSZ");
        add("PROT");
        add("UTF8");
        add("EPSV");
        if self.listener.active_enabled {
            add("EPRT");
        }
        add("MDTM");
        // Only where it works: clients such as rclone send MFMT after every upload when it
        // is listed, and fail the upload when it is refused. Before login, the default
        // storage tells.
        let sets_times = match self.login.user() {
            Some(user) => user.storage().sets_modification_times(),
            None => self.shared.config.storage.default.is_none(),
        };
        if sets_times {
            add("MFMT");
        }
        add("SIZE");
        add("REST STREAM");
        add("TVFS");
        add("HOST");
        add(&format!("LANG {LANGUAGE}*"));
        add("CLNT");
        add(&self.params.hash_algorithm.feat_line());
        add(&self.params.mlst_facts.feat_line());
        lines.push("End".to_string());
        self.send(Reply::multi(ReplyCode::SYSTEM_STATUS, lines))
            .await
    }

    pub(super) async fn cmd_opts(&mut self, opts: &str) -> Result {
        let (name, value) = match opts.split_once(' ') {
            Some((n, v)) => (n, v.trim()),
            None => (opts, ""),
        };
        match name.to_ascii_uppercase().as_str() {
            // RFC 2640: paths are always UTF-8 here; both answers are truthful acknowledgements.
            "UTF8" | "UTF-8" => self.reply(ReplyCode::OK, "UTF-8 is always on.").await,
            "MLST" => {
                self.params.mlst_facts = MlstFacts::parse_selection(value);
                let selection = self.params.mlst_facts.to_selection();
                self.reply(ReplyCode::OK, format!("MLST OPTS {selection}"))
                    .await
            }
            "HASH" => self.opts_hash(value).await,
            _ => {
                self.reply(
                    ReplyCode::PARAMETER_SYNTAX_ERROR,
                    format!("Option {name} not recognised."),
                )
                .await
            }
        }
    }

    pub(super) async fn cmd_help(&mut self, topic: Option<&str>) -> Result {
        let Some(topic) = topic else {
            let mut lines = vec!["The following commands are recognized:".to_string()];
            let verbs: Vec<&str> = COMMANDS.iter().map(|(verb, _)| *verb).collect();
            for chunk in verbs.chunks(10) {
                lines.push(format!(" {}", chunk.join(" ")));
            }
            lines.push("Help OK.".to_string());
            return self.send(Reply::multi(ReplyCode::HELP, lines)).await;
        };
        let upper = topic.to_ascii_uppercase();
        match COMMANDS.iter().find(|(verb, _)| *verb == upper) {
            Some((_, syntax)) => {
                self.reply(ReplyCode::HELP, format!("Syntax: {syntax}"))
                    .await
            }
            None => {
                self.reply(
                    ReplyCode::NOT_IMPLEMENTED,
                    format!("Unknown command {upper}."),
                )
                .await
            }
        }
    }

    /// `LANG [tag]` (RFC 2640 §4.1): English is the only language.
    pub(super) async fn cmd_lang(&mut self, tag: Option<&str>) -> Result {
        let primary = tag.map(|t| t.split('-').next().unwrap_or(t).to_ascii_uppercase());
        match primary.as_deref() {
            None | Some(LANGUAGE) => {
                self.reply(ReplyCode::OK, format!("Language set to {LANGUAGE}."))
                    .await
            }
            Some(_) => {
                self.reply(
                    ReplyCode::PARAMETER_NOT_IMPLEMENTED,
                    format!("Unsupported language; only {LANGUAGE} is available."),
                )
                .await
            }
        }
    }

    /// `CLNT name`: noted in the log, to tell which software a session used.
    pub(super) async fn cmd_clnt(&mut self, name: &str) -> Result {
        tracing::info!(client = name, "client software");
        self.reply(ReplyCode::OK, "Noted.").await
    }

    pub(super) async fn cmd_stat(&mut self) -> Result {
        let user = self
            .login
            .user()
            .map(|l| format!("Logged in as {}", l.name()))
            .unwrap_or_else(|| "Not logged in".to_string());
        let tls = match self.control.tls_state() {
            Some(conn) => format!(
                "Control connection: {:?}, {:?}",
                conn.protocol_version()
                    .map(|v| format!("{v:?}"))
                    .unwrap_or_default(),
                conn.negotiated_cipher_suite()
                    .map(|s| s.suite())
                    .unwrap_or(rustls::CipherSuite::Unknown(0))
            ),
            None => "Control connection: not protected".to_string(),
        };
        let quota = self
            .login
            .user()
            .and_then(|l| l.quota())
            .map(|q| crate::quota::describe(q.usage.current(), q.limits).join(", "));
        let mut lines = vec![
            "ftpsd status:".to_string(),
            format!(" Connected from {}", self.peer.ip()),
            format!(" {user}"),
            format!(" {tls}"),
            format!(
                " Data protection: {}",
                if self.security.data_private() {
                    "private (TLS)"
                } else {
                    "clear"
                }
            ),
            format!(
                " TYPE: {}, STRUcture: File, MODE: Stream",
                if self.params.ascii() {
                    "ASCII"
                } else {
                    "BINARY"
                }
            ),
        ];
        if let Some(quota) = quota {
            lines.push(format!(" Quota: {quota}"));
        }
        lines.push("End of status".to_string());
        self.send(Reply::multi(ReplyCode::SYSTEM_STATUS, lines))
            .await
    }

    pub(super) async fn cmd_stat_path(&mut self, user: &LoggedIn, args: ListArgs) -> Result {
        let arg = args.path.clone().unwrap_or_else(|| ".".into());
        let (storage, path) = (user.storage(), user.path(&arg));
        let rights = Rights::of(user);
        let at = path.clone();
        // A listing over the control connection: bounded, since it is held in memory.
        let listed = async {
            let entry = storage.metadata(&path).await?;
            let entries = match entry.kind {
                EntryKind::Dir => Some(storage.list(&path).await?),
                _ => None,
            };
            tokio::task::spawn_blocking(move || {
                listing_lines(&entry, entries, &args, &rights, &at, 10_000)
            })
            .await
            .map_err(std::io::Error::other)?
        };
        let result = listed.await;
        match result {
            Ok(lines) => {
                let mut reply = vec![format!("Status of {arg}:")];
                reply.extend(lines.into_iter().map(|l| format!(" {l}")));
                reply.push("End of status".into());
                self.send(Reply::multi(ReplyCode::FILE_STATUS, reply)).await
            }
            Err(e) => {
                let (code, text) = fs_error(&e);
                self.reply(code, text).await
            }
        }
    }

    pub(super) async fn cmd_type(&mut self, t: TransferType) -> Result {
        self.params.transfer_type = t;
        let name = match t {
            TransferType::Ascii => "A",
            TransferType::Image => "I",
        };
        self.reply(ReplyCode::OK, format!("Type set to {name}."))
            .await
    }
}
