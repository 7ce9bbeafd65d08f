//! TLS for the control and data channels (RFC 4217) with rustls.
//!
//! Each control session gets its own resumption domain: a private session cache and ticket
//! key. A data connection that completes a *resumed* handshake with that domain can only be
//! continuing this control session's TLS session, which is how data connections are bound to
//! their control connection (the defence against data-connection stealing).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{
    ClientHello, ResolvesServerCert, ServerSessionMemoryCache, WebPkiClientVerifier,
};
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use rustls::ServerConfig;
use sha2::{Digest, Sha256};

use crate::config::{ClientCertMode, TlsVersion};

mod ticket;
pub use ticket::SessionTicketer;

/// The ALPN protocol id for FTP (IANA registry); offering it defeats cross-protocol attacks
/// such as ALPACA, since a client that wants another protocol cannot complete a handshake.
pub const ALPN_FTP: &[u8] = b"ftp";

/// TLS 1.3 tickets sent on the control connection.
pub const CONTROL_TICKETS: usize = 8;
/// TLS 1.3 tickets sent on a data connection the client reads (downloads, listings). Upload
/// connections get none (see `session::datachan`).
pub const DATA_TICKETS: usize = 2;

/// Session entries kept per control session for TLS 1.2 session-ID resumption. Data
/// connections resume the control connection's one session; the cache is preallocated, so
/// every entry costs memory in every session.
const SESSION_CACHE_ENTRIES: usize = 4;

/// A TLS set-up problem, in one line.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read or parsed.
    #[error("{what} {path}: {message}")]
    File {
        /// "certificate file" or "private key file".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The key does not belong to the certificate, or rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// The crypto provider: aws-lc-rs, whose suites are all AEAD (AES-GCM, ChaCha20-Poly1305).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The SHA-256 fingerprint of a DER certificate, as `AB:CD:...`.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    Sha256::digest(cert.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Reads a PEM certificate chain and private key and checks that they belong together.
pub fn load_certified_key(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey, TlsError> {
    let file_err = |what, path: &Path, message: String| TlsError::File {
        what,
        path: path.to_path_buf(),
        message,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| file_err("certificate file", cert_path, pem_message(e)))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_err("certificate file", cert_path, pem_message(e)))?;
    if chain.is_empty() {
        return Err(file_err(
            "certificate file",
            cert_path,
            "no PEM certificate found".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| file_err("private key file", key_path, pem_message(e)))?;
    let signing_key = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| file_err("private key file", key_path, e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        // Some key types cannot tell; the handshake would fail visibly instead.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::Config(format!(
            "private key {} does not match certificate {}",
            key_path.display(),
            cert_path.display()
        ))),
        Err(e) => Err(file_err("certificate file", cert_path, e.to_string())),
    }
}

fn pem_message(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        rustls::pki_types::pem::Error::NoItemsFound => "no PEM item found".into(),
        other => format!("not valid PEM ({other:?})"),
    }
}

/// Writes a new self-signed ECDSA P-256 certificate for `localhost` and `127.0.0.1`.
/// The key file is created with mode 0600.
pub fn generate_self_signed(cert_path: &Path, key_path: &Path) -> Result<(), TlsError> {
    let generated = rcgen::generate_simple_self_signed(vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ])
    .map_err(|e| TlsError::Config(format!("cannot generate a certificate: {e}")))?;
    let write = |path: &Path, text: String, mode: u32, what| {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| TlsError::File {
                what,
                path: path.to_path_buf(),
                message: e.to_string(),
            })
    };
    write(
        key_path,
        generated.key_pair.serialize_pem(),
        0o600,
        "private key file",
    )?;
    write(cert_path, generated.cert.pem(), 0o644, "certificate file")?;
    Ok(())
}

/// Serves the current certificate, and lets it be replaced while sessions run.
pub struct CertResolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertResolver {
    /// A resolver serving `key`.
    pub fn new(key: CertifiedKey) -> Self {
        CertResolver {
            current: RwLock::new(Arc::new(key)),
        }
    }

    /// The certificate being served.
    pub fn current(&self) -> Arc<CertifiedKey> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Serves `key` to new handshakes from now on.
    pub fn replace(&self, key: CertifiedKey) {
        let key = Arc::new(key);
        match self.current.write() {
            Ok(mut guard) => *guard = key,
            Err(poisoned) => *poisoned.into_inner() = key,
        }
    }
}

impl fmt::Debug for CertResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CertResolver")
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// Chooses the certificate by the TLS server name (SNI): a virtual host's own certificate
/// when the name is one of them, the default certificate otherwise.
#[derive(Debug)]
pub struct SniResolver {
    default: Arc<CertResolver>,
    hosts: std::collections::HashMap<String, Arc<CertResolver>>,
}

impl SniResolver {
    /// A resolver with `hosts` keyed by lower-case DNS name.
    pub fn new(
        default: Arc<CertResolver>,
        hosts: std::collections::HashMap<String, Arc<CertResolver>>,
    ) -> Self {
        SniResolver { default, hosts }
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let by_name = hello
            .server_name()
            .and_then(|name| self.hosts.get(&name.to_ascii_lowercase()));
        Some(by_name.unwrap_or(&self.default).current())
    }
}

/// The crypto provider restricted to the configured cipher suites (by IANA name).
pub fn provider_with_suites(names: Option<&[String]>) -> Result<Arc<CryptoProvider>, TlsError> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    if let Some(names) = names {
        let available = provider.cipher_suites.clone();
        let mut chosen = Vec::new();
        for name in names {
            let suite = available
                .iter()
                .find(|s| s.suite().as_str() == Some(name.as_str()))
                .ok_or_else(|| {
                    let known: Vec<_> = available
                        .iter()
                        .filter_map(|s| s.suite().as_str())
                        .collect();
                    TlsError::Config(format!(
                        "unknown cipher suite {name:?}; available: {}",
                        known.join(", ")
                    ))
                })?;
            chosen.push(*suite);
        }
        if chosen.is_empty() {
            return Err(TlsError::Config("tls.cipher_suites is empty".into()));
        }
        provider.cipher_suites = chosen;
    }
    Ok(Arc::new(provider))
}

/// Reads the CA bundle and CRLs that client certificates are checked against.
pub fn client_verifier(
    ca_path: &Path,
    crl_paths: &[PathBuf],
    mode: ClientCertMode,
    provider: Arc<CryptoProvider>,
) -> Result<Option<Arc<dyn ClientCertVerifier>>, TlsError> {
    if mode == ClientCertMode::Off {
        return Ok(None);
    }
    let file_err = |path: &Path, message: String| TlsError::File {
        what: "client CA file",
        path: path.to_path_buf(),
        message,
    };
    let mut roots = RootCertStore::empty();
    for cert in
        CertificateDer::pem_file_iter(ca_path).map_err(|e| file_err(ca_path, pem_message(e)))?
    {
        let cert = cert.map_err(|e| file_err(ca_path, pem_message(e)))?;
        roots
            .add(cert)
            .map_err(|e| file_err(ca_path, e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(file_err(ca_path, "no CA certificate found".into()));
    }
    let mut crls = Vec::new();
    for path in crl_paths {
        for crl in
            CertificateRevocationListDer::pem_file_iter(path).map_err(|e| TlsError::File {
                what: "CRL file",
                path: path.clone(),
                message: pem_message(e),
            })?
        {
            crls.push(crl.map_err(|e| TlsError::File {
                what: "CRL file",
                path: path.clone(),
                message: pem_message(e),
            })?);
        }
    }
    let mut builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).with_crls(crls);
    if mode == ClientCertMode::Optional {
        builder = builder.allow_unauthenticated();
    }
    let verifier = builder
        .build()
        .map_err(|e| TlsError::Config(format!("client certificate verifier: {e}")))?;
    Ok(Some(verifier))
}

fn build_template(
    resolver: &Arc<dyn ResolvesServerCert>,
    provider: &Arc<CryptoProvider>,
    min_version: TlsVersion,
    client_auth: Option<Arc<dyn ClientCertVerifier>>,
) -> Result<ServerConfig, TlsError> {
    let versions: &[&rustls::SupportedProtocolVersion] = match min_version {
        TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match client_auth {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut template = builder.with_cert_resolver(resolver.clone());
    template.alpn_protocols = vec![ALPN_FTP.to_vec()];
    Ok(template)
}

/// The TLS state of one listener: the shared certificate and a template configuration.
pub struct TlsSetup {
    resolver: Arc<dyn ResolvesServerCert>,
    provider: Arc<CryptoProvider>,
    min_version: TlsVersion,
    /// Replaced whole when the client CA or CRLs are reloaded (rustls keeps a
    /// configuration's verifier private, so it cannot be swapped in place).
    template: RwLock<Arc<ServerConfig>>,
}

impl TlsSetup {
    /// Builds the template configuration: TLS 1.2+ (or 1.3 only), the given AEAD suites,
    /// ALPN `ftp`, and client-certificate verification when `client_auth` is set.
    pub fn new(
        resolver: Arc<dyn ResolvesServerCert>,
        provider: Arc<CryptoProvider>,
        min_version: TlsVersion,
        client_auth: Option<Arc<dyn ClientCertVerifier>>,
    ) -> Result<TlsSetup, TlsError> {
        let template = build_template(&resolver, &provider, min_version, client_auth)?;
        Ok(TlsSetup {
            resolver,
            provider,
            min_version,
            template: RwLock::new(Arc::new(template)),
        })
    }

    /// Uses a new client-certificate verifier (a reloaded CA bundle or CRL) for handshakes
    /// from now on; running sessions keep theirs.
    pub fn set_client_verifier(
        &self,
        client_auth: Option<Arc<dyn ClientCertVerifier>>,
    ) -> Result<(), TlsError> {
        let template = build_template(
            &self.resolver,
            &self.provider,
            self.min_version,
            client_auth,
        )?;
        match self.template.write() {
            Ok(mut guard) => *guard = Arc::new(template),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(template),
        }
        Ok(())
    }

    fn template(&self) -> Arc<ServerConfig> {
        match self.template.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// A configuration for one control session and its data connections, with a session
    /// cache and ticket key of its own (see the module docs). `host_certificate`: the
    /// certificate of a virtual host chosen by `HOST` before `AUTH`.
    pub fn session_config(
        &self,
        host_certificate: Option<Arc<CertResolver>>,
    ) -> Result<Arc<ServerConfig>, TlsError> {
        let mut config = (*self.template()).clone();
        if let Some(resolver) = host_certificate {
            config.cert_resolver = resolver;
        }
        // Clients built on rustls use each TLS 1.3 ticket once and keep at most eight, and
        // rustls cannot send tickets later in a connection: give the control connection the
        // most a client will keep. Download connections add `DATA_TICKETS` each.
        config.send_tls13_tickets = CONTROL_TICKETS;
        config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE_ENTRIES);
        config.ticketer = Arc::new(
            SessionTicketer::new()
                .ok_or_else(|| TlsError::Config("cannot create a ticket key".into()))?,
        );
        Ok(Arc::new(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_certificate_loads_and_mismatched_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (c1, k1) = (dir.path().join("c1.pem"), dir.path().join("k1.pem"));
        let (c2, k2) = (dir.path().join("c2.pem"), dir.path().join("k2.pem"));
        generate_self_signed(&c1, &k1).unwrap();
        generate_self_signed(&c2, &k2).unwrap();
        let key = load_certified_key(&c1, &k1).unwrap();
        assert_eq!(fingerprint(&key.cert[0]).len(), 32 * 3 - 1);
        let err = load_certified_key(&c1, &k2).unwrap_err().to_string();
        assert!(err.contains("does not match"), "{err}");
        let err = load_certified_key(&dir.path().join("nope.pem"), &k1)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("certificate file") && err.contains("nope.pem"),
            "{err}"
        );
        std::fs::write(&c2, "garbage").unwrap();
        let err = load_certified_key(&c2, &k2).unwrap_err().to_string();
        assert!(err.contains("certificate file"), "{err}");
    }
}
