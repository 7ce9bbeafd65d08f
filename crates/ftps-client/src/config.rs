//! Connection settings.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{format_fingerprint, Error, Result};

/// How TLS starts on the control connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// Connect in the clear, then `AUTH TLS` (RFC 4217), usually on port 21.
    Explicit,
    /// TLS from the first byte, usually on port 990.
    Implicit,
}

impl TlsMode {
    /// The usual port of this mode.
    pub fn default_port(self) -> u16 {
        match self {
            TlsMode::Explicit => 21,
            TlsMode::Implicit => 990,
        }
    }
}

/// How data connections are opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataMode {
    /// The client connects to the server: `EPSV`, falling back to `PASV`.
    Passive,
    /// The server connects to the client: `EPRT`, falling back to `PORT`.
    Active,
}

/// Which server certificates are trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trust {
    /// The operating system's root certificates, and the host name must match.
    System,
    /// The CA certificates in this PEM file, and the host name must match.
    CaFile(PathBuf),
    /// Exactly the certificate with this SHA-256 fingerprint (of its DER encoding); name and
    /// dates are not checked, the handshake signature is.
    Fingerprint([u8; 32]),
    /// Anything. Only for tests and debugging: every connection logs a warning.
    Insecure,
}

impl Trust {
    /// Parses a fingerprint written as hex, with or without `:` separators, optionally prefixed
    /// with `sha256:` or `SHA256/`.
    pub fn parse_fingerprint(text: &str) -> Result<[u8; 32]> {
        ftps_proto::fingerprint::parse(text)
            .ok_or_else(|| Error::Config(format!("not a SHA-256 fingerprint: {text:?}")))
    }
}

impl fmt::Display for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trust::System => f.write_str("system roots"),
            Trust::CaFile(p) => write!(f, "CA file {}", p.display()),
            Trust::Fingerprint(d) => write!(f, "pinned SHA-256 {}", format_fingerprint(d)),
            Trust::Insecure => f.write_str("insecure (no verification)"),
        }
    }
}

/// A client certificate and its private key, both PEM files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCert {
    /// The certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

/// Highest TLS version to offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsVersions {
    /// TLS 1.2 and 1.3.
    Tls12And13,
    /// TLS 1.2 only (for servers whose TLS 1.3 session resumption is broken).
    Tls12Only,
    /// TLS 1.3 only.
    Tls13Only,
}

/// Everything about how to connect, apart from where and as whom.
#[derive(Clone, Debug)]
pub struct Config {
    /// Explicit or implicit TLS.
    pub tls_mode: TlsMode,
    /// Passive or active data connections.
    pub data_mode: DataMode,
    /// Certificate trust.
    pub trust: Trust,
    /// A client certificate to present, if any.
    pub client_cert: Option<ClientCert>,
    /// TLS versions to offer.
    pub tls_versions: TlsVersions,
    /// When `PASV` returns a private, loopback or unspecified address that differs from the
    /// control connection's peer, connect to the peer's address instead (servers behind NAT).
    pub nat_workaround: bool,
    /// Time allowed for TCP connect plus TLS handshake.
    pub connect_timeout: Duration,
    /// Time allowed for one reply, or for one read or write on a data connection.
    pub io_timeout: Duration,
    /// Resume the control connection's TLS session on data connections (the default, and
    /// what strict servers require). Turning it off is only useful to test servers.
    pub reuse_tls_session: bool,
    /// The local address to listen on for active mode (default: the control connection's
    /// local address).
    pub active_address: Option<std::net::IpAddr>,
    /// A bandwidth limit for file data, shared by every session made with this configuration
    /// (and its clones): the segments of a segmented download and the parallel transfers of a
    /// mirror stay under it together. It applies to [`Transfer::read_timed`] and
    /// [`Transfer::write_timed`], and so to every download and upload helper.
    ///
    /// [`Transfer::read_timed`]: crate::Transfer::read_timed
    /// [`Transfer::write_timed`]: crate::Transfer::write_timed
    pub rate_limit: Option<crate::rate::RateLimit>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            tls_mode: TlsMode::Explicit,
            data_mode: DataMode::Passive,
            trust: Trust::System,
            client_cert: None,
            tls_versions: TlsVersions::Tls12And13,
            nat_workaround: true,
            connect_timeout: Duration::from_secs(30),
            io_timeout: Duration::from_secs(60),
            reuse_tls_session: true,
            active_address: None,
            rate_limit: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints() {
        let hex = "AB".repeat(32);
        let colons = vec!["ab"; 32].join(":");
        assert_eq!(Trust::parse_fingerprint(&hex).unwrap(), [0xab; 32]);
        assert_eq!(Trust::parse_fingerprint(&colons).unwrap(), [0xab; 32]);
        assert_eq!(
            Trust::parse_fingerprint(&format!("SHA256:{colons}")).unwrap(),
            [0xab; 32]
        );
        assert!(Trust::parse_fingerprint("abc").is_err());
        assert!(Trust::parse_fingerprint(&"zz".repeat(32)).is_err());
        assert!(Trust::parse_fingerprint(&"é".repeat(32)).is_err());
    }
}
