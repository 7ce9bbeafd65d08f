//! `ftps._native`, the extension module under the `ftps` Python package: a synchronous FTPS
//! client in the spirit of `ftplib`, on the `ftps-client` library. Every data connection
//! resumes the control connection's TLS session, so it works with strict servers (vsftpd
//! with `require_ssl_reuse`, ProFTPD, ftpsd) where `ftplib.FTP_TLS` does not.
//!
//! The Python side (`python/ftps/`) re-exports this module and carries the type stubs.

mod client;
mod errors;
mod types;

use std::path::PathBuf;
use std::time::Duration;

use ftps_client::{ClientCert, Config, Connector, DataMode, TlsMode, TlsVersions, Trust};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::client::Client;
use crate::types::{Entry, MirrorSummary};

/// The trust setting from `connect()`'s mutually exclusive options.
fn trust(ca_file: Option<PathBuf>, pin_sha256: Option<&str>, insecure: bool) -> PyResult<Trust> {
    let chosen =
        usize::from(ca_file.is_some()) + usize::from(pin_sha256.is_some()) + usize::from(insecure);
    if chosen > 1 {
        return Err(PyValueError::new_err(
            "give at most one of ca_file, pin_sha256 and insecure",
        ));
    }
    if let Some(path) = ca_file {
        return Ok(Trust::CaFile(path));
    }
    if let Some(pin) = pin_sha256 {
        return Trust::parse_fingerprint(pin)
            .map(Trust::Fingerprint)
            .map_err(|_| {
                PyValueError::new_err(format!(
                    "pin_sha256 is not a SHA-256 fingerprint (64 hex digits, colons allowed): {pin:?}"
                ))
            });
    }
    Ok(if insecure {
        Trust::Insecure
    } else {
        Trust::System
    })
}

/// Connects to an FTPS server and secures the control connection; log in next with
/// `Client.login()`.
///
/// - `port`: 21 for explicit TLS (`AUTH TLS`), 990 with `implicit=True`, unless given.
/// - Trust: the system's root certificates and the host name by default; or the CA
///   certificates in `ca_file`; or exactly the certificate whose SHA-256 fingerprint is
///   `pin_sha256`; or nothing at all with `insecure=True` (tests only).
/// - `timeout`: seconds allowed for connecting, and for each reply or each read or write
///   on a data connection.
/// - `tls12_only`: offer TLS 1.2 only (for servers whose TLS 1.3 resumption is broken).
/// - `client_cert`, `client_key`: a PEM certificate chain and key to present.
/// - `active`: the server connects back to the client for data (`EPRT`/`PORT`) instead
///   of passive mode.
#[pyfunction]
#[pyo3(signature = (
    host,
    port = None,
    *,
    implicit = false,
    ca_file = None,
    pin_sha256 = None,
    insecure = false,
    timeout = 60.0,
    tls12_only = false,
    client_cert = None,
    client_key = None,
    active = false,
))]
#[allow(clippy::too_many_arguments)]
fn connect(
    py: Python<'_>,
    host: String,
    port: Option<u16>,
    implicit: bool,
    ca_file: Option<PathBuf>,
    pin_sha256: Option<&str>,
    insecure: bool,
    timeout: f64,
    tls12_only: bool,
    client_cert: Option<PathBuf>,
    client_key: Option<PathBuf>,
    active: bool,
) -> PyResult<Client> {
    if host.is_empty() {
        return Err(PyValueError::new_err("host must not be empty"));
    }
    if !(timeout.is_finite() && timeout > 0.0 && timeout <= 86_400.0) {
        return Err(PyValueError::new_err(
            "timeout must be a number of seconds above 0 and at most 86400",
        ));
    }
    let client_cert = match (client_cert, client_key) {
        (Some(cert_file), Some(key_file)) => Some(ClientCert {
            cert_file,
            key_file,
        }),
        (None, None) => None,
        _ => {
            return Err(PyValueError::new_err(
                "client_cert and client_key go together: give both or neither",
            ))
        }
    };
    let tls_mode = if implicit {
        TlsMode::Implicit
    } else {
        TlsMode::Explicit
    };
    let timeout = Duration::from_secs_f64(timeout);
    let config = Config {
        tls_mode,
        data_mode: if active {
            DataMode::Active
        } else {
            DataMode::Passive
        },
        trust: trust(ca_file, pin_sha256, insecure)?,
        client_cert,
        tls_versions: if tls12_only {
            TlsVersions::Tls12Only
        } else {
            TlsVersions::Tls12And13
        },
        connect_timeout: timeout,
        io_timeout: timeout,
        ..Config::default()
    };
    let connector = Connector::new(config).map_err(|e| errors::to_py(py, e))?;
    let port = port.unwrap_or(tls_mode.default_port());
    Client::open(py, connector, host, port)
}

/// The extension module.
#[pymodule]
#[pyo3(name = "_native")]
fn ftps_native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(connect, module)?)?;
    module.add_class::<Client>()?;
    module.add_class::<Entry>()?;
    module.add_class::<MirrorSummary>()?;
    errors::register(module)?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
