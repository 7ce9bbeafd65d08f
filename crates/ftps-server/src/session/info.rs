//! Informational and parameter commands: `SYST`, `HELP`, `STAT`, `TYPE` (RFC 959 §4.1),
//! `FEAT` and `OPTS` (RFC 2389), `OPTS UTF8` (RFC 2640), `OPTS MLST` (RFC 3659 §7.9).

use ftps_proto::command::{ListArgs, ProtectionLevel, TransferType};
use ftps_proto::listing::MlstFacts;
use ftps_proto::{Reply, ReplyCode};

use super::{Flow, Result, Session};

/// Commands this server implements, for HELP.
const COMMANDS: &[&str] = &[
    "ABOR", "ACCT", "ALLO", "APPE", "AUTH", "CCC", "CDUP", "CWD", "DELE", "EPRT", "EPSV", "FEAT",
    "HELP", "LIST", "MDTM", "MKD", "MLSD", "MLST", "MODE", "NLST", "NOOP", "OPTS", "PASS", "PASV",
    "PBSZ", "PORT", "PROT", "PWD", "QUIT", "REST", "RETR", "RMD", "RNFR", "RNTO", "SIZE", "STAT",
    "STOR", "STRU", "SYST", "TYPE", "USER", "XCUP", "XCWD", "XMKD", "XPWD", "XRMD",
];

impl Session {
    pub(super) async fn cmd_feat(&mut self) -> Result {
        let mut lines = vec!["Features:".to_string()];
        let mut add = |s: &str| lines.push(format!(" {s}"));
        add("AUTH TLS");
        add("PBSZ");
        add("PROT");
        add("UTF8");
        add("EPSV");
        if self.shared.config.active.enabled {
            add("EPRT");
        }
        add("MDTM");
        add("SIZE");
        add("REST STREAM");
        add("TVFS");
        add(&self.mlst_facts.feat_line());
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
                self.mlst_facts = MlstFacts::parse_selection(value);
                let selection = self.mlst_facts.to_selection();
                self.reply(ReplyCode::OK, format!("MLST OPTS {selection}"))
                    .await
            }
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
        match topic {
            None => {
                let mut lines = vec!["The following commands are recognized:".to_string()];
                for chunk in COMMANDS.chunks(10) {
                    lines.push(format!(" {}", chunk.join(" ")));
                }
                lines.push("Help OK.".to_string());
                self.send(Reply::multi(ReplyCode::HELP, lines)).await
            }
            Some(topic) => {
                let upper = topic.to_ascii_uppercase();
                if COMMANDS.contains(&upper.as_str()) {
                    self.reply(
                        ReplyCode::HELP,
                        format!("{upper} is implemented; see RFC 959 and its extensions."),
                    )
                    .await
                } else {
                    self.reply(
                        ReplyCode::NOT_IMPLEMENTED,
                        format!("Unknown command {upper}."),
                    )
                    .await
                }
            }
        }
    }

    pub(super) async fn cmd_stat(&mut self) -> Result {
        let user = self
            .logged_in()
            .map(|l| format!("Logged in as {}", l.user.name))
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
        let lines = vec![
            "ftpsd status:".to_string(),
            format!(" Connected from {}", self.peer.ip()),
            format!(" {user}"),
            format!(" {tls}"),
            format!(
                " Data protection: {}",
                if self.prot == ProtectionLevel::Private {
                    "private (TLS)"
                } else {
                    "clear"
                }
            ),
            format!(
                " TYPE: {}, STRUcture: File, MODE: Stream",
                if self.transfer_type == TransferType::Ascii {
                    "ASCII"
                } else {
                    "BINARY"
                }
            ),
            "End of status".to_string(),
        ];
        self.send(Reply::multi(ReplyCode::SYSTEM_STATUS, lines))
            .await
    }

    pub(super) async fn cmd_stat_path(&mut self, args: ListArgs) -> Result {
        let arg = args.path.clone().unwrap_or_else(|| ".".into());
        let Some((root, path)) = self.resolve(&arg) else {
            return Ok(Flow::Continue);
        };
        let access = self.access();
        // A listing over the control connection: bounded, since it is held in memory.
        let result = tokio::task::spawn_blocking(move || {
            super::transfer::listing_lines(&root, &path, &args, access, 10_000)
        })
        .await
        .map_err(std::io::Error::other)?;
        match result {
            Ok(lines) => {
                let mut reply = vec![format!("Status of {arg}:")];
                reply.extend(lines.into_iter().map(|l| format!(" {l}")));
                reply.push("End of status".into());
                self.send(Reply::multi(ReplyCode::FILE_STATUS, reply)).await
            }
            Err(e) => {
                let (code, text) = super::fs_error(&e);
                self.reply(code, text).await
            }
        }
    }

    pub(super) async fn cmd_type(&mut self, t: TransferType) -> Result {
        self.transfer_type = t;
        let name = match t {
            TransferType::Ascii => "A",
            TransferType::Image => "I",
        };
        self.reply(ReplyCode::OK, format!("Type set to {name}."))
            .await
    }
}
