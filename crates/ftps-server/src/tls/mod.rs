//! TLS for the control and data channels (RFC 4217) with rustls.
//!
//! Each control session gets its own resumption domain: a private session cache and ticket
//! key. A data connection that completes a *resumed* handshake with that domain can only be
//! continuing this control session's TLS session (or, once logged in, one of the same user's
//! sessions from the same address), which is how data connections are bound to their
//! control connection (the defence against data-connection stealing); see [`resumption`].
//!
//! Clients use each TLS 1.3 ticket once, so the server hands out tickets on the control
//! connection: [`LOGIN_TICKETS`] with the reply to a successful login, and a fresh one ahead
//! of every reply that announces a data connection (`227`, `229`, `200` to PORT/EPRT), with
//! the rustls extension `ServerConnection::send_tls13_tickets` (see vendor/README.md). None
//! at the handshake, so that no ticket exists before login. Data connections carry no
//! tickets: an upload client that never reads its data connection would close it with the
//! tickets unread, and the kernel would turn that close into a reset that destroys the end
//! of the upload. docs/security.md has the whole design.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use rustls::ServerConfig;
use sha2::{Digest, Sha256};

use crate::config::{ClientCertMode, TlsVersion};

pub mod resumption;
mod ticket;

pub use resumption::{BoundLogin, ResumptionDomain, Siblings, UserBinding};

/// The ALPN protocol id for FTP (IANA registry); offering it defeats cross-protocol attacks
/// such as ALPACA, since a client that wants another protocol cannot complete a handshake.
pub const ALPN_FTP: &[u8] = b"ftp";

/// TLS 1.3 tickets sent on the control connection with the reply to a successful login. The
/// control handshake sends none, so that every ticket in existence was issued to a logged-in
/// session (see [`resumption`]). Each data connection then gets a fresh one on the control
/// connection; these serve clients that take the session once after login, and the
/// connections made after `CCC`, when the control connection can carry no more. rustls
/// clients keep at most eight.
pub const LOGIN_TICKETS: usize = 8;
/// TLS 1.3 tickets sent on a download or listing connection, only when the control
/// connection cannot carry them (after `CCC`). Upload connections never get any.
pub const DATA_TICKETS: usize = 2;
/// Fresh tickets sent on the control connection ahead of each data connection.
pub const TICKETS_PER_DATA_CONNECTION: usize = 1;

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
    ftps_proto::fingerprint::format(&Sha256::digest(cert.as_ref()))
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

/// One control session's TLS configuration and its resumption domain, made at `AUTH`.
#[derive(Clone)]
pub struct SessionTls {
    /// The configuration for the control connection and the data connections.
    pub config: Arc<ServerConfig>,
    /// The ticket key and session cache inside `config`.
    pub domain: Arc<ResumptionDomain>,
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

    /// A configuration for one control session and its data connections, with the
    /// session's own resumption domain (see the module docs), which the session binds to its
    /// user at login. `host_certificate`: the certificate of a virtual host chosen by `HOST`
    /// before `AUTH`.
    pub fn session_config(
        &self,
        host_certificate: Option<Arc<CertResolver>>,
    ) -> Result<SessionTls, TlsError> {
        let mut config = (*self.template()).clone();
        if let Some(resolver) = host_certificate {
            config.cert_resolver = resolver;
        }
        // Tickets come after login (`LOGIN_TICKETS`) and before each data connection.
        config.send_tls13_tickets = 0;
        let domain = ResumptionDomain::new()
            .ok_or_else(|| TlsError::Config("cannot create a ticket key".into()))?;
        config.session_storage = domain.clone();
        config.ticketer = domain.clone();
        Ok(SessionTls {
            config: Arc::new(config),
            domain,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use rustls::{ClientConfig, ClientConnection, ServerConnection};

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

    /// Accepts any server certificate: the in-memory tests below are about tickets.
    #[derive(Debug)]
    struct AcceptAnyCertificate(Arc<CryptoProvider>);

    impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &rustls::pki_types::ServerName<'_>,
            _ocsp_response: &[u8],
            _now: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    fn session_tls() -> SessionTls {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        generate_self_signed(&cert, &key).unwrap();
        let resolver: Arc<dyn ResolvesServerCert> =
            Arc::new(CertResolver::new(load_certified_key(&cert, &key).unwrap()));
        let setup = TlsSetup::new(resolver, provider(), TlsVersion::Tls12, None).unwrap();
        setup.session_config(None).unwrap()
    }

    fn client_config(version: &'static rustls::SupportedProtocolVersion) -> Arc<ClientConfig> {
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[version])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider())))
            .with_no_client_auth();
        config.alpn_protocols = vec![ALPN_FTP.to_vec()];
        Arc::new(config)
    }

    /// Moves TLS records between the two ends until neither has anything to send.
    fn pump(client: &mut ClientConnection, server: &mut ServerConnection) {
        loop {
            let mut moved = false;
            let mut buf = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut buf).unwrap();
            }
            if !buf.is_empty() {
                moved = true;
                let mut rd = &buf[..];
                while !rd.is_empty() {
                    server.read_tls(&mut rd).unwrap();
                    server.process_new_packets().unwrap();
                }
            }
            let mut buf = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut buf).unwrap();
            }
            if !buf.is_empty() {
                moved = true;
                let mut rd = &buf[..];
                while !rd.is_empty() {
                    client.read_tls(&mut rd).unwrap();
                    client.process_new_packets().unwrap();
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn connect(
        client: &Arc<ClientConfig>,
        server: &Arc<ServerConfig>,
    ) -> (ClientConnection, ServerConnection) {
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut c = ClientConnection::new(client.clone(), name).unwrap();
        let mut s = ServerConnection::new(server.clone()).unwrap();
        pump(&mut c, &mut s);
        assert!(!c.is_handshaking() && !s.is_handshaking());
        (c, s)
    }

    /// The vendored rustls addition (vendor/README.md): tickets sent after the handshake
    /// reach the client, and each resumes one new connection.
    #[test]
    fn tls13_tickets_after_the_handshake() {
        let tls = session_tls();
        let client = client_config(&rustls::version::TLS13);
        let (mut c, mut s) = connect(&client, &tls.config);
        // The control handshake itself sends none (tickets come after login).
        assert_eq!(c.tls13_tickets_received(), 0);
        assert_eq!(s.send_tls13_tickets(3).unwrap(), 3);
        pump(&mut c, &mut s);
        assert_eq!(c.tls13_tickets_received(), 3);
        // Application data still flows both ways after them.
        s.writer().write_all(b"229 ok\r\n").unwrap();
        pump(&mut c, &mut s);
        let mut got = [0u8; 8];
        c.reader().read_exact(&mut got).unwrap();
        assert_eq!(&got, b"229 ok\r\n");
        // Each ticket resumes one connection; then the client has none left.
        for _ in 0..3 {
            let (data, _) = connect(&client, &tls.config);
            assert_eq!(data.handshake_kind(), Some(rustls::HandshakeKind::Resumed));
        }
        let (data, _) = connect(&client, &tls.config);
        assert_eq!(data.handshake_kind(), Some(rustls::HandshakeKind::Full));
    }

    #[test]
    fn tls13_tickets_are_refused_while_handshaking_and_on_tls12() {
        let tls = session_tls();
        let mut s = ServerConnection::new(tls.config.clone()).unwrap();
        assert!(matches!(
            s.send_tls13_tickets(1),
            Err(rustls::Error::HandshakeNotComplete)
        ));
        let (_c, mut s) = connect(&client_config(&rustls::version::TLS12), &tls.config);
        assert!(matches!(
            s.send_tls13_tickets(1),
            Err(rustls::Error::General(_))
        ));
    }

    /// What a ticket costs on the wire: one TLS record. Printed for docs/performance.md.
    #[test]
    fn a_ticket_is_one_small_record() {
        let tls = session_tls();
        let (_c, mut s) = connect(&client_config(&rustls::version::TLS13), &tls.config);
        assert_eq!(s.send_tls13_tickets(1).unwrap(), 1);
        let mut wire = Vec::new();
        while s.wants_write() {
            s.write_tls(&mut wire).unwrap();
        }
        println!("one TLS 1.3 ticket: {} bytes on the wire", wire.len());
        // A record header, the NewSessionTicket and the AEAD tag; the ticket seals the
        // session state (suite, secret, ALPN, times) with a 12-byte nonce and a 16-byte tag.
        assert_eq!(wire[0], 23, "an encrypted record");
        assert!(wire.len() > 100 && wire.len() < 512, "{} bytes", wire.len());
    }
}
