//! Typed errors. Every error that comes from the server carries its reply code and text.

use std::io;

use ftps_proto::{Reply, ReplyCode};

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
    #[error("TLS error{}: {source}", context_suffix(.context))]
    Tls {
        /// Which connection (control or data) failed.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The server answered a command with an unexpected reply.
    #[error("{}", reply_message(.command, .reply))]
    Reply {
        /// The command (passwords are never included).
        command: String,
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

    /// Wraps a local I/O error with context.
    pub fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn reply_err(command: &str, reply: Reply) -> Error {
        Error::Reply {
            command: redact(command),
            reply,
        }
    }
}

/// Hides the argument of `PASS` (and of nothing else).
pub(crate) fn redact(command: &str) -> String {
    if command.len() >= 4 && command[..4].eq_ignore_ascii_case("PASS") {
        "PASS ****".to_string()
    } else {
        command.to_string()
    }
}

fn context_suffix(context: &str) -> String {
    if context.is_empty() {
        String::new()
    } else {
        format!(" on the {context}")
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

fn reply_message(command: &str, reply: &Reply) -> String {
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
pub fn format_fingerprint(digest: &[u8]) -> String {
    let mut out = String::with_capacity(digest.len() * 3);
    for (i, b) in digest.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push_str(&format!("{b:02X}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        let e = Error::reply_err(
            "PASS hunter2",
            Reply::new(ReplyCode(530), "Login incorrect."),
        );
        let s = e.to_string();
        assert!(s.contains("PASS ****") && !s.contains("hunter2"), "{s}");
        assert_eq!(e.code(), Some(ReplyCode(530)));
        let e = Error::reply_err(
            "RETR x",
            Reply::new(
                ReplyCode(522),
                "SSL connection failed: session reuse required",
            ),
        );
        assert!(e.to_string().contains("resumes the TLS session"));
        assert_eq!(format_fingerprint(&[0xab, 0x01]), "AB:01");
    }
}
