//! Typed errors. Every error that comes from the server carries its reply code and text, and
//! the command it answered; [`Error::kind`] sorts errors into what a caller decides on.

use std::fmt;
use std::io;

use ftps_proto::{Command, Reply, ReplyCode};

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The TCP connection could not be made.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address tried.
        addr: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The server's certificate was refused.
    #[error("{}", cert_message(.host, .fingerprint, .reason))]
    CertificateRejected {
        /// The host name or address the certificate was checked against.
        host: String,
        /// SHA-256 fingerprint of the certificate the server presented (`AB:CD:...`).
        fingerprint: String,
        /// Why it was refused.
        reason: String,
    },
    /// A TLS error other than a refused certificate.
    #[error("TLS error on the {context}: {source}")]
    Tls {
        /// Which connection failed.
        context: Connection,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The server answered a command with an unexpected reply.
    #[error("{}", reply_message(.command, .reply))]
    Reply {
        /// The command (passwords are never included) and the stage it belonged to.
        command: SentCommand,
        /// The reply received.
        reply: Reply,
    },
    /// The server sent something that is not FTP.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// An operation did not finish in time.
    #[error("timed out {0}")]
    Timeout(String),
    /// The control connection was closed by the server.
    #[error("the server closed the control connection")]
    Closed,
    /// A previous transfer on this connection was not finished; the connection must be dropped.
    #[error("a previous transfer was not finished; this connection cannot be used")]
    Poisoned,
    /// A local I/O error (reading or writing local files).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A configuration problem (bad CA file, unreadable client key...).
    #[error("configuration: {0}")]
    Config(String),
}

/// A shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure an [`Error`] is: what a caller (the `ftps` CLI's exit codes, a retry
/// policy) decides on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The server could not be reached, went away, or did not answer in time.
    Connect,
    /// TLS on the control connection failed, or the server refused to start it.
    Tls,
    /// The server refused the user name or password.
    Login,
    /// A remote file or directory is missing, busy, not allowed or has a bad name.
    RemoteFile,
    /// A data connection or a transfer failed.
    Transfer,
    /// Reading or writing a local file failed.
    LocalIo,
    /// The configuration is unusable (CA file, client key, host name).
    Config,
    /// The server sent something that is not FTP.
    Protocol,
    /// Any other refusal by the server.
    Other,
}

/// Which connection a TLS error happened on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Connection {
    /// The control connection.
    Control,
    /// A data connection.
    Data,
}

impl Connection {
    /// `control connection` or `data connection`, as messages name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Connection::Control => "control connection",
            Connection::Data => "data connection",
        }
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which step of a session a command belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stage {
    /// The server's greeting, before any command (RFC 959 §5.4).
    Greeting,
    /// `AUTH`: securing the control connection (RFC 4217 §4).
    Security,
    /// `USER`, `PASS`, `ACCT`: logging in (RFC 959 §4.1.1).
    Login,
    /// Session parameters: `PBSZ`, `PROT`, `TYPE`, `FEAT`, `OPTS`, `HOST`, ...
    Setup,
    /// Preparing a data connection: `EPSV`, `PASV`, `EPRT`, `PORT`, `REST`.
    Data,
    /// A command that moves data over a data connection: `RETR`, `STOR`, `LIST`, `MLSD`, ...
    Transfer,
    /// Commands on remote files and directories: `CWD`, `MKD`, `DELE`, `SIZE`, `MLST`, ...
    File,
    /// Anything else: `QUIT`, `NOOP`, `ABOR`, and text that is no command we know.
    Other,
}

impl Stage {
    /// The stage a command belongs to.
    pub fn of(command: &Command) -> Stage {
        use Command::*;
        match command {
            Auth(_) => Stage::Security,
            User(_) | Pass(_) | Acct(_) => Stage::Login,
            Pbsz(_) | Prot(_) | Ccc | Cdc | Type(_) | Stru | Mode | Feat | Opts(_) | Host(_)
            | Clnt(_) | Lang(_) | Syst => Stage::Setup,
            Port(_) | Pasv | Eprt(_) | Epsv(_) | Rest(_) | Allo => Stage::Data,
            Retr(_) | Stor(_) | Stou | Appe(_) | List(_) | Nlst(_) | Mlsd(_) => Stage::Transfer,
            Cwd(_) | Cdup | Smnt(_) | Rnfr(_) | Rnto(_) | Dele(_) | Rmd(_) | Mkd(_) | Pwd
            | Size(_) | Mdtm(_) | Mlst(_) | Mfmt(..) | Hash(_) | Stat(_) | Site(_) => Stage::File,
            Rein | Quit | Noop | Abor | Help(_) => Stage::Other,
        }
    }
}

/// The command a reply answered, as an error shows it: its text with any password hidden,
/// and the [`Stage`] it belonged to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentCommand {
    text: String,
    stage: Stage,
}

impl SentCommand {
    /// A command as the client sent it.
    pub fn new(command: &Command) -> SentCommand {
        SentCommand {
            text: command.to_string(),
            stage: Stage::of(command),
        }
    }

    /// A command named by its verb alone (`EPRT`), for messages where its argument is noise.
    pub fn verb(command: &Command) -> SentCommand {
        SentCommand {
            text: command.verb().to_string(),
            stage: Stage::of(command),
        }
    }

    /// The server's greeting, which answers no command.
    pub fn greeting() -> SentCommand {
        SentCommand {
            text: "(greeting)".to_string(),
            stage: Stage::Greeting,
        }
    }

    /// A command given as text by the caller: its stage is that of the command it parses
    /// as ([`Stage::Other`] if it does not).
    pub fn raw(text: &str) -> SentCommand {
        let stage = ftps_proto::command::parse(text.as_bytes())
            .map(|c| Stage::of(&c))
            .unwrap_or(Stage::Other);
        SentCommand {
            text: redact(text),
            stage,
        }
    }

    /// The command's text, passwords hidden.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The stage of the session the command belonged to.
    pub fn stage(&self) -> Stage {
        self.stage
    }
}

impl fmt::Display for SentCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl From<&Command> for SentCommand {
    fn from(command: &Command) -> SentCommand {
        SentCommand::new(command)
    }
}

impl Error {
    /// The reply code, for errors that carry a server reply.
    pub fn code(&self) -> Option<ReplyCode> {
        match self {
            Error::Reply { reply, .. } => Some(reply.code),
            _ => None,
        }
    }

    /// The server's reply, for errors that carry one.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Error::Reply { reply, .. } => Some(reply),
            _ => None,
        }
    }

    /// What kind of failure this is, from the error's variant, the connection a TLS error
    /// happened on, and a refused command's stage and reply code:
    ///
    /// | error | kind |
    /// |---|---|
    /// | `Connect`, `Timeout`, `Closed` | `Connect` |
    /// | `CertificateRejected` | `Tls` |
    /// | `Tls` on the control connection | `Tls` |
    /// | `Tls` on a data connection, `Poisoned` | `Transfer` |
    /// | `Reply` to a login command (`USER`, `PASS`, `ACCT`) | `Login` |
    /// | `Reply` to `AUTH` | `Tls` |
    /// | any other `Reply` with code 425, 426, 451 or 522 | `Transfer` |
    /// | any other `Reply` with code 450 or 550-553 | `RemoteFile` |
    /// | any other `Reply` | `Other` |
    /// | `Io` | `LocalIo` |
    /// | `Config` | `Config` |
    /// | `Protocol` | `Protocol` |
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Connect { .. } | Error::Timeout(_) | Error::Closed => ErrorKind::Connect,
            Error::CertificateRejected { .. } => ErrorKind::Tls,
            Error::Tls {
                context: Connection::Control,
                ..
            } => ErrorKind::Tls,
            Error::Tls {
                context: Connection::Data,
                ..
            }
            | Error::Poisoned => ErrorKind::Transfer,
            Error::Reply { command, reply } => match command.stage() {
                Stage::Login => ErrorKind::Login,
                Stage::Security => ErrorKind::Tls,
                _ => match reply.code.0 {
                    425 | 426 | 451 | 522 => ErrorKind::Transfer,
                    450 | 550..=553 => ErrorKind::RemoteFile,
                    _ => ErrorKind::Other,
                },
            },
            Error::Io { .. } => ErrorKind::LocalIo,
            Error::Config(_) => ErrorKind::Config,
            Error::Protocol(_) => ErrorKind::Protocol,
        }
    }

    /// Wraps a local I/O error with context.
    pub fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// The server refused `command` with `reply`.
    pub(crate) fn reply_err(command: impl Into<SentCommand>, reply: Reply) -> Error {
        Error::Reply {
            command: command.into(),
            reply,
        }
    }
}

/// Hides the argument of `PASS` (and of nothing else) in command text.
pub(crate) fn redact(command: &str) -> String {
    if command
        .get(..4)
        .is_some_and(|verb| verb.eq_ignore_ascii_case("PASS"))
    {
        "PASS ****".to_string()
    } else {
        command.to_string()
    }
}

fn cert_message(host: &str, fingerprint: &str, reason: &str) -> String {
    format!(
        "the certificate of {host} was refused: {reason}\n  \
         it has SHA-256 fingerprint {fingerprint}\n  \
         if you trust it, pin it with --pin-sha256 {fingerprint} \
         (or give its CA with --ca-file FILE)"
    )
}

/// An explanation for replies whose meaning is not obvious from their text.
pub fn explain(code: ReplyCode) -> Option<&'static str> {
    Some(match code.0 {
        522 => {
            "the server refused the TLS handshake of the data connection; strict servers \
             (vsftpd require_ssl_reuse, ProFTPD, ftpsd) require that it resumes the TLS session \
             of the control connection. This client always tries to resume; if this persists, \
             the server's session cache or tickets may be disabled or expired (try --tls12)."
        }
        521 | 534 => "the server's TLS policy refused this request (it may require PROT P or TLS)",
        530 => "login failed: wrong user name or password, or the account is not allowed",
        425 => {
            "the server could not open the data connection: a firewall or NAT in the way \
             (try --active), or a TLS handshake the server refused; strict servers (ProFTPD) \
             answer 425 when the data connection does not resume the control TLS session"
        }
        426 => "the transfer was aborted by the server",
        550 => "the file or directory is unavailable (missing, or no permission)",
        553 => "the file name is not allowed",
        552 => "the server's storage quota was exceeded",
        _ => return None,
    })
}

fn reply_message(command: &SentCommand, reply: &Reply) -> String {
    let mut msg = format!(
        "{command}: server replied {} {}",
        reply.code,
        reply.text().trim()
    );
    if let Some(why) = explain(reply.code) {
        msg.push_str("\n  ");
        msg.push_str(why);
    }
    msg
}

/// Formats a SHA-256 digest as colon-separated upper-case hex pairs.
pub use ftps_proto::fingerprint::format as format_fingerprint;

#[cfg(test)]
mod tests {
    use super::*;
    use ftps_proto::command::Password;

    #[test]
    fn messages() {
        let e = Error::reply_err(
            &Command::Pass(Password::new("hunter2")),
            Reply::new(ReplyCode(530), "Login incorrect."),
        );
        let s = e.to_string();
        assert!(s.contains("PASS ****") && !s.contains("hunter2"), "{s}");
        assert_eq!(e.code(), Some(ReplyCode(530)));
        let e = Error::reply_err(
            SentCommand::raw("pass hunter2"),
            Reply::new(ReplyCode(530), "Login incorrect."),
        );
        assert!(!e.to_string().contains("hunter2"));
        let e = Error::reply_err(
            &Command::Retr("x".into()),
            Reply::new(
                ReplyCode(522),
                "SSL connection failed: session reuse required",
            ),
        );
        assert!(e.to_string().starts_with("RETR x: server replied 522 SSL"));
        assert!(e.to_string().contains("resumes the TLS session"));
        let e = Error::Tls {
            context: Connection::Data,
            source: io::Error::other("reset"),
        };
        assert_eq!(e.to_string(), "TLS error on the data connection: reset");
        assert_eq!(format_fingerprint(&[0xab, 0x01]), "AB:01");
    }

    /// The decision table of [`Error::kind`], row by row.
    #[test]
    fn kinds() {
        use Command::*;
        let io = || io::Error::other("x");
        let reply = |command: &Command, code: u16| {
            Error::reply_err(command, Reply::new(ReplyCode(code), "no")).kind()
        };
        let connect = Error::Connect {
            addr: "a:21".into(),
            source: io(),
        };
        assert_eq!(connect.kind(), ErrorKind::Connect);
        assert_eq!(Error::Timeout("x".into()).kind(), ErrorKind::Connect);
        assert_eq!(Error::Closed.kind(), ErrorKind::Connect);
        let cert = Error::CertificateRejected {
            host: "h".into(),
            fingerprint: "AB".into(),
            reason: "r".into(),
        };
        assert_eq!(cert.kind(), ErrorKind::Tls);
        let tls = |context| Error::Tls {
            context,
            source: io(),
        };
        assert_eq!(tls(Connection::Control).kind(), ErrorKind::Tls);
        assert_eq!(tls(Connection::Data).kind(), ErrorKind::Transfer);
        assert_eq!(Error::Poisoned.kind(), ErrorKind::Transfer);
        // Login and AUTH decide by the command, whatever the code.
        assert_eq!(reply(&User("u".into()), 530), ErrorKind::Login);
        assert_eq!(reply(&User("u".into()), 550), ErrorKind::Login);
        assert_eq!(reply(&Pass(Password::new("p")), 530), ErrorKind::Login);
        assert_eq!(reply(&Auth("TLS".into()), 534), ErrorKind::Tls);
        assert_eq!(reply(&Auth("TLS".into()), 425), ErrorKind::Tls);
        // Everything else by the code, the other security commands included.
        for code in [425, 426, 451, 522] {
            assert_eq!(reply(&Retr("f".into()), code), ErrorKind::Transfer);
            assert_eq!(
                reply(&Epsv(ftps_proto::command::EpsvArg::Default), code),
                ErrorKind::Transfer
            );
        }
        for code in [450, 550, 551, 552, 553] {
            assert_eq!(reply(&Dele("f".into()), code), ErrorKind::RemoteFile);
            assert_eq!(reply(&Stor("f".into()), code), ErrorKind::RemoteFile);
        }
        for code in [500, 502, 530, 534, 554] {
            assert_eq!(reply(&Cwd("d".into()), code), ErrorKind::Other);
        }
        assert_eq!(reply(&Pbsz(0), 534), ErrorKind::Other);
        assert_eq!(
            reply(&Prot(ftps_proto::command::ProtectionLevel::Private), 522),
            ErrorKind::Transfer
        );
        let greeting =
            Error::reply_err(SentCommand::greeting(), Reply::new(ReplyCode(421), "busy"));
        assert_eq!(greeting.kind(), ErrorKind::Other);
        assert_eq!(Error::io("x", io()).kind(), ErrorKind::LocalIo);
        assert_eq!(Error::Config("x".into()).kind(), ErrorKind::Config);
        assert_eq!(Error::Protocol("x".into()).kind(), ErrorKind::Protocol);
    }

    #[test]
    fn sent_commands_know_their_stage() {
        assert_eq!(SentCommand::raw("USER alice").stage(), Stage::Login);
        assert_eq!(SentCommand::raw("AUTH TLS").stage(), Stage::Security);
        assert_eq!(SentCommand::raw("SITE CHMOD 644 x").stage(), Stage::File);
        assert_eq!(SentCommand::raw("XYZZY").stage(), Stage::Other);
        let eprt = Command::Eprt("127.0.0.1:5000".parse().unwrap());
        assert_eq!(SentCommand::verb(&eprt).text(), "EPRT");
        assert_eq!(SentCommand::verb(&eprt).stage(), Stage::Data);
        // Messages show the command and the connection as they were sent and named.
        let sent = SentCommand::new(&Command::User("alice".into()));
        assert_eq!(sent.text(), "USER alice");
        assert_eq!(Connection::Control.to_string(), "control connection");
    }
}
