//! The Python exceptions and how the client library's errors map onto them.
//!
//! ```text
//! ftps.Error                    every failure of this package; .kind names its category
//! ├── ftps.ReplyError           the server refused a command; .code, .text, .command
//! ├── ftps.TlsError             TLS failed (the certificate was refused: .fingerprint)
//! ├── ftps.ConnectionError      not reachable, closed by the server, timed out
//! ├── ftps.TransferError        a data connection failed; a mirror left files behind
//! ├── ftps.ProtocolError        the server sent something that is not FTP
//! ├── ftps.LocalError           reading or writing a local file failed
//! └── ftps.ConfigError          unusable settings (CA file, client key, host name)
//! ```

use ftps_client::error::Connection;
use ftps_client::{Error as FtpError, ErrorKind};
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

pyo3::create_exception!(
    ftps,
    Error,
    PyException,
    "Base class of every error this package raises. `kind` names its category: connect, tls, \
     login, remote_file, transfer, local_io, config, protocol or other."
);
pyo3::create_exception!(
    ftps,
    ReplyError,
    Error,
    "The server refused a command. `code` is the reply code (530: login refused, 550: no such \
     file...), `text` the server's text and `command` the command it answered (never a \
     password)."
);
pyo3::create_exception!(
    ftps,
    TlsError,
    Error,
    "TLS failed. When the server's certificate was refused, `fingerprint` is its SHA-256 \
     fingerprint (pin it with `pin_sha256=` if you trust it); otherwise None."
);
pyo3::create_exception!(
    ftps,
    ConnectionError,
    Error,
    "The server could not be reached, closed the connection, or did not answer in time."
);
pyo3::create_exception!(
    ftps,
    TransferError,
    Error,
    "A data connection or a transfer failed, or a mirror could not copy every file \
     (`summary` then holds what was done)."
);
pyo3::create_exception!(
    ftps,
    ProtocolError,
    Error,
    "The server sent something that is not FTP."
);
pyo3::create_exception!(
    ftps,
    LocalError,
    Error,
    "Reading or writing a local file failed."
);
pyo3::create_exception!(
    ftps,
    ConfigError,
    Error,
    "The settings are unusable: an unreadable CA file or client key, a bad host name."
);

/// The name `Error.kind` gives an error kind.
fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Connect => "connect",
        ErrorKind::Tls => "tls",
        ErrorKind::Login => "login",
        ErrorKind::RemoteFile => "remote_file",
        ErrorKind::Transfer => "transfer",
        ErrorKind::LocalIo => "local_io",
        ErrorKind::Config => "config",
        ErrorKind::Protocol => "protocol",
        _ => "other",
    }
}

/// Raises a plain `ftps.Error` with this message and kind.
pub fn plain(py: Python<'_>, message: String, kind: &str) -> PyErr {
    let err = Error::new_err(message);
    set(py, &err, "kind", kind);
    err
}

fn set<'py, V: IntoPyObject<'py>>(py: Python<'py>, err: &PyErr, name: &str, value: V) {
    // Setting an attribute on a fresh exception instance cannot fail in practice; if it did,
    // the exception still carries its message.
    let _ = err.value(py).setattr(name, value);
}

/// The Python exception for a library error.
pub fn to_py(py: Python<'_>, error: FtpError) -> PyErr {
    let kind = kind_name(error.kind());
    let err = match &error {
        FtpError::Reply { command, reply } => {
            let text = reply.text().trim().to_string();
            let err = ReplyError::new_err(format!(
                "{}: the server replied {} {}",
                command.text(),
                reply.code,
                text
            ));
            set(py, &err, "code", reply.code.0);
            set(py, &err, "text", text);
            set(py, &err, "command", command.text());
            err
        }
        FtpError::CertificateRejected {
            host,
            fingerprint,
            reason,
        } => {
            let err = TlsError::new_err(format!(
                "the certificate of {host} was refused: {reason}; it has SHA-256 fingerprint \
                 {fingerprint}: if you trust it, pass pin_sha256=\"{fingerprint}\" (or its CA \
                 with ca_file=)"
            ));
            set(py, &err, "fingerprint", fingerprint.as_str());
            err
        }
        FtpError::Tls {
            context: Connection::Data,
            ..
        }
        | FtpError::Poisoned => TransferError::new_err(error.to_string()),
        FtpError::Tls { .. } => {
            let err = TlsError::new_err(error.to_string());
            set(py, &err, "fingerprint", py.None());
            err
        }
        FtpError::Connect { .. } | FtpError::Timeout(_) | FtpError::Closed => {
            ConnectionError::new_err(error.to_string())
        }
        FtpError::Protocol(_) => ProtocolError::new_err(error.to_string()),
        FtpError::Io { .. } => LocalError::new_err(error.to_string()),
        FtpError::Config(_) => ConfigError::new_err(error.to_string()),
    };
    set(py, &err, "kind", kind);
    err
}

/// Adds the exception classes to the module.
pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    module.add("Error", py.get_type::<Error>())?;
    module.add("ReplyError", py.get_type::<ReplyError>())?;
    module.add("TlsError", py.get_type::<TlsError>())?;
    module.add("ConnectionError", py.get_type::<ConnectionError>())?;
    module.add("TransferError", py.get_type::<TransferError>())?;
    module.add("ProtocolError", py.get_type::<ProtocolError>())?;
    module.add("LocalError", py.get_type::<LocalError>())?;
    module.add("ConfigError", py.get_type::<ConfigError>())?;
    Ok(())
}
