//! Exit codes, documented in crates/ftps/README.md, and the error kinds that choose them.
//!
//! Scripts branch on these codes, so they depend on what kind of error happened, never on
//! its message: client errors by their [`ErrorKind`], the CLI's own errors by their type.

use ftps_client::{Error, ErrorKind};

/// Any other error: a protocol violation by the server, an unexpected reply.
pub const GENERIC: u8 = 1;
/// Bad arguments or URL, no user or password, an unusable CA file or key.
pub const USAGE: u8 = 2;
/// Cannot connect, timed out, or the server closed the connection.
pub const CONNECT: u8 = 3;
/// Certificate refused, handshake failed on the control connection, `AUTH TLS` refused.
pub const TLS: u8 = 4;
/// `USER` or `PASS` refused.
pub const LOGIN: u8 = 5;
/// A remote file or directory is missing, forbidden, badly named or over quota.
pub const REMOTE_FILE: u8 = 6;
/// A data connection was refused or aborted, sizes differ, or mirror transfers failed.
pub const TRANSFER: u8 = 7;
/// A local file cannot be read or written.
pub const LOCAL_FILE: u8 = 8;

/// The command line cannot be carried out as given (exit code 2).
#[derive(Debug)]
pub struct UsageError(pub String);

/// A transfer finished but its result is wrong or incomplete (exit code 7).
#[derive(Debug)]
pub struct TransferFailed(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for UsageError {}
impl std::fmt::Display for TransferFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for TransferFailed {}

/// A remote file the command needs is not there (exit code 6), found out by the client
/// itself (a wildcard that matches nothing) rather than refused by the server.
#[derive(Debug)]
pub struct RemoteMissing(pub String);

impl std::fmt::Display for RemoteMissing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for RemoteMissing {}

/// Turns the library's "no files found" error for a wildcard into a [`RemoteMissing`] (whose
/// message does not pretend that the server refused something); other errors pass.
pub fn no_match_message(e: ftps_client::Error) -> anyhow::Error {
    if ftps_client::glob::is_no_match(&e) {
        let text = e.reply().map(|r| r.text()).unwrap_or_default();
        anyhow::Error::new(RemoteMissing(text))
    } else {
        e.into()
    }
}

/// A [`UsageError`] as an `anyhow::Error`.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}

/// A [`TransferFailed`] as an `anyhow::Error`.
pub fn transfer_failed(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(TransferFailed(msg.into()))
}

/// The exit code for `err`: decided by the outermost error in its chain whose kind is known,
/// so context added around an error never changes the code.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<Error>() {
            return client_error_code(e);
        }
        if cause.downcast_ref::<UsageError>().is_some() {
            return USAGE;
        }
        if cause.downcast_ref::<TransferFailed>().is_some() {
            return TRANSFER;
        }
        if cause.downcast_ref::<RemoteMissing>().is_some() {
            return REMOTE_FILE;
        }
        if cause.downcast_ref::<std::io::Error>().is_some() {
            return LOCAL_FILE;
        }
    }
    GENERIC
}

/// The exit code for an error of the client library.
fn client_error_code(e: &Error) -> u8 {
    match e.kind() {
        ErrorKind::Connect => CONNECT,
        ErrorKind::Tls => TLS,
        ErrorKind::Login => LOGIN,
        ErrorKind::RemoteFile => REMOTE_FILE,
        ErrorKind::Transfer => TRANSFER,
        ErrorKind::LocalIo => LOCAL_FILE,
        ErrorKind::Config => USAGE,
        // Protocol violations, other refusals, and any kind the library adds later.
        _ => GENERIC,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use anyhow::Context;
    use ftps_client::error::{Connection, SentCommand};
    use ftps_client::{Reply, ReplyCode};

    fn io_error() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::NotFound, "no such file")
    }

    fn reply(command: &str, code: u16) -> Error {
        Error::Reply {
            command: SentCommand::raw(command),
            reply: Reply::new(ReplyCode(code), "text"),
        }
    }

    #[test]
    fn cli_errors() {
        let table: Vec<(anyhow::Error, u8)> = vec![
            (usage("bad URL"), USAGE),
            (transfer_failed("sizes differ"), TRANSFER),
            (
                no_match_message(ftps_client::glob::no_match("/a/*.x")),
                REMOTE_FILE,
            ),
            (anyhow::Error::new(io_error()), LOCAL_FILE),
            (anyhow::anyhow!("something else"), GENERIC),
            // Context around an error keeps its code.
            (usage("bad URL").context("while parsing"), USAGE),
            (
                Err::<(), _>(io_error())
                    .context("reading a.txt")
                    .unwrap_err(),
                LOCAL_FILE,
            ),
            (
                transfer_failed("2 of 3 transfers failed").context("mirror"),
                TRANSFER,
            ),
        ];
        for (err, code) in table {
            assert_eq!(exit_code(&err), code, "{err:#}");
        }
    }

    #[test]
    fn client_errors() {
        let io = || std::io::Error::other("x");
        let table: Vec<(Error, u8)> = vec![
            (
                Error::Connect {
                    addr: "h:21".into(),
                    source: io(),
                },
                CONNECT,
            ),
            (Error::Timeout("connecting".into()), CONNECT),
            (Error::Closed, CONNECT),
            (
                Error::CertificateRejected {
                    host: "h".into(),
                    fingerprint: "AB".into(),
                    reason: "self-signed".into(),
                },
                TLS,
            ),
            (
                Error::Tls {
                    context: Connection::Control,
                    source: io(),
                },
                TLS,
            ),
            (
                Error::Tls {
                    context: Connection::Data,
                    source: io(),
                },
                TRANSFER,
            ),
            (Error::Poisoned, TRANSFER),
            (reply("USER alice", 530), LOGIN),
            (reply("PASS", 530), LOGIN),
            (reply("AUTH TLS", 534), TLS),
            (reply("RETR /a", 425), TRANSFER),
            (reply("RETR /a", 426), TRANSFER),
            (reply("STOR /a", 451), TRANSFER),
            (reply("RETR /a", 522), TRANSFER),
            (reply("STOR /a", 450), REMOTE_FILE),
            (reply("DELE /a", 550), REMOTE_FILE),
            (reply("STOR /a", 552), REMOTE_FILE),
            (reply("MKD /a", 553), REMOTE_FILE),
            (reply("SITE X", 500), GENERIC),
            (reply("STOR /a", 554), GENERIC),
            (Error::io("writing a.txt", io()), LOCAL_FILE),
            (Error::Config("bad CA file".into()), USAGE),
            (Error::Protocol("garbage".into()), GENERIC),
        ];
        for (e, code) in table {
            assert_eq!(client_error_code(&e), code, "{e}");
            // Through anyhow and under context, the client's error decides, not its source
            // (a refused connection carries an io::Error, yet it is not a local file error).
            let wrapped = anyhow::Error::new(e).context("doing it");
            assert_eq!(exit_code(&wrapped), code, "{wrapped:#}");
        }
    }
}
