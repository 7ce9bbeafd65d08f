//! TLS set-up: certificate verification (system roots, a CA file, a pinned fingerprint, or
//! insecure), client certificates, and one session cache per control connection.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientSessionMemoryCache, Resumption, WebPkiServerVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use sha2::{Digest, Sha256};

use crate::config::{Config, TlsVersions, Trust};
use crate::error::{format_fingerprint, Connection, Error, Result};

/// The ALPN protocol id of FTP (RFC 9525 registry), offered so that ALPACA-hardened servers
/// accept the connection.
const ALPN_FTP: &[u8] = b"ftp";

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .clone()
}

/// SHA-256 of a certificate's DER encoding.
pub fn cert_sha256(cert: &[u8]) -> [u8; 32] {
    Sha256::digest(cert).into()
}

/// Remembers the leaf certificate a connection's server presented, so that a refusal can say
/// which fingerprint it saw.
#[derive(Debug)]
pub(crate) struct Recording {
    inner: Inner,
    seen: Mutex<Option<[u8; 32]>>,
}

#[derive(Debug)]
enum Inner {
    WebPki(Arc<WebPkiServerVerifier>),
    Pinned([u8; 32]),
    Insecure,
}

impl Recording {
    /// The SHA-256 fingerprint of the last certificate seen.
    pub(crate) fn seen(&self) -> Option<[u8; 32]> {
        *self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let digest = cert_sha256(end_entity);
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(digest);
        match &self.inner {
            Inner::WebPki(v) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            Inner::Pinned(pin) if *pin == digest => Ok(ServerCertVerified::assertion()),
            Inner::Pinned(_) => Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            )),
            Inner::Insecure => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The parts of the TLS configuration shared by all connections made with one [`Config`].
#[derive(Debug)]
pub(crate) struct TlsSetup {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    trust: Trust,
    versions: TlsVersions,
    client_auth: Option<(Vec<CertificateDer<'static>>, Arc<PrivateKeyDer<'static>>)>,
}

fn system_roots() -> Result<Arc<RootCertStore>> {
    static ROOTS: OnceLock<std::result::Result<Arc<RootCertStore>, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut store = RootCertStore::empty();
            let (added, _ignored) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                let why: Vec<String> = found.errors.iter().map(|e| e.to_string()).collect();
                return Err(format!(
                    "no system root certificates found ({}); use --ca-file or --pin-sha256",
                    why.join("; ")
                ));
            }
            Ok(Arc::new(store))
        })
        .clone()
        .map_err(Error::Config)
}

impl TlsSetup {
    pub(crate) fn new(config: &Config) -> Result<TlsSetup> {
        let webpki = match &config.trust {
            Trust::System => Some(system_roots()?),
            Trust::CaFile(path) => {
                let mut store = RootCertStore::empty();
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| Error::Config(format!("CA file {}: {e}", path.display())))?;
                for cert in certs {
                    let cert = cert
                        .map_err(|e| Error::Config(format!("CA file {}: {e}", path.display())))?;
                    store
                        .add(cert)
                        .map_err(|e| Error::Config(format!("CA file {}: {e}", path.display())))?;
                }
                if store.is_empty() {
                    return Err(Error::Config(format!(
                        "CA file {} holds no certificate",
                        path.display()
                    )));
                }
                Some(Arc::new(store))
            }
            Trust::Fingerprint(_) | Trust::Insecure => None,
        };
        let webpki = match webpki {
            Some(roots) => Some(
                WebPkiServerVerifier::builder_with_provider(roots, provider())
                    .build()
                    .map_err(|e| Error::Config(format!("certificate verifier: {e}")))?,
            ),
            None => None,
        };
        let client_auth = match &config.client_cert {
            None => None,
            Some(cc) => {
                let chain: Vec<CertificateDer<'static>> =
                    CertificateDer::pem_file_iter(&cc.cert_file)
                        .and_then(|it| it.collect())
                        .map_err(|e| {
                            Error::Config(format!(
                                "client certificate {}: {e}",
                                cc.cert_file.display()
                            ))
                        })?;
                if chain.is_empty() {
                    return Err(Error::Config(format!(
                        "client certificate {} holds no certificate",
                        cc.cert_file.display()
                    )));
                }
                let key = PrivateKeyDer::from_pem_file(&cc.key_file).map_err(|e| {
                    Error::Config(format!("client key {}: {e}", cc.key_file.display()))
                })?;
                Some((chain, Arc::new(key)))
            }
        };
        let setup = TlsSetup {
            webpki,
            trust: config.trust.clone(),
            versions: config.tls_versions,
            client_auth,
        };
        // Fail early on a bad client key rather than at the first connection.
        setup.connection_config(setup.versions)?;
        Ok(setup)
    }

    /// A fresh client configuration with its own session cache: one per control connection,
    /// shared with that connection's data connections only, so they resume its session and
    /// concurrent connections never resume each other's.
    pub(crate) fn connection_config(
        &self,
        versions: TlsVersions,
    ) -> Result<(Arc<ClientConfig>, Arc<Recording>, Arc<SessionStore>)> {
        let inner = match (&self.trust, &self.webpki) {
            (Trust::Fingerprint(pin), _) => Inner::Pinned(*pin),
            (Trust::Insecure, _) => Inner::Insecure,
            (_, Some(v)) => Inner::WebPki(v.clone()),
            (_, None) => return Err(Error::Config("no certificate verifier".into())),
        };
        let recording = Arc::new(Recording {
            inner,
            seen: Mutex::new(None),
        });
        let versions: &[&'static rustls::SupportedProtocolVersion] = match versions {
            TlsVersions::Tls12And13 => &[&rustls::version::TLS13, &rustls::version::TLS12],
            TlsVersions::Tls12Only => &[&rustls::version::TLS12],
            TlsVersions::Tls13Only => &[&rustls::version::TLS13],
        };
        let builder = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .map_err(|e| Error::Config(format!("TLS versions: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(recording.clone());
        let mut config = match &self.client_auth {
            None => builder.with_no_client_auth(),
            Some((chain, key)) => builder
                .with_client_auth_cert(chain.clone(), key.clone_key())
                .map_err(|e| Error::Config(format!("client certificate: {e}")))?,
        };
        config.alpn_protocols = vec![ALPN_FTP.to_vec()];
        let store = Arc::new(SessionStore {
            inner: ClientSessionMemoryCache::new(32),
            tickets: AtomicUsize::new(0),
        });
        config.resumption = Resumption::store(store.clone());
        Ok((Arc::new(config), recording, store))
    }
}

/// Turns a handshake failure into a readable error: a refused certificate names the
/// fingerprint it saw.
pub(crate) fn handshake_error(
    err: std::io::Error,
    recording: &Recording,
    host: &str,
    context: Connection,
) -> Error {
    let tls_err = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
        .cloned();
    if let Some(rustls::Error::InvalidCertificate(cert_err)) = &tls_err {
        let reason = match cert_err {
            CertificateError::UnknownIssuer => {
                "it is not signed by a trusted certificate authority (self-signed?)".to_string()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!("it is not valid for the name {host}")
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "it has expired".to_string()
            }
            CertificateError::ApplicationVerificationFailure => {
                "its fingerprint does not match the pinned one".to_string()
            }
            other => format!("{other:?}"),
        };
        let fingerprint = recording
            .seen()
            .map(|d| format_fingerprint(&d))
            .unwrap_or_else(|| "(unknown)".into());
        return Error::CertificateRejected {
            host: host.to_string(),
            fingerprint,
            reason,
        };
    }
    Error::Tls {
        context,
        source: err,
    }
}

/// The session cache of one control connection and its data connections: rustls' memory
/// cache, counting the TLS 1.3 tickets it holds.
#[derive(Debug)]
pub(crate) struct SessionStore {
    inner: ClientSessionMemoryCache,
    tickets: AtomicUsize,
}

impl SessionStore {
    /// TLS 1.3 tickets received and not yet used. Each resumption uses one up (rustls never
    /// sends a ticket twice), so a server that sends none on some data connections (ProFTPD
    /// after uploads, Pure-FTPd at all) eventually leaves none.
    pub(crate) fn tls13_tickets(&self) -> usize {
        self.tickets.load(Ordering::Relaxed)
    }
}

impl rustls::client::ClientSessionStore for SessionStore {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: rustls::NamedGroup) {
        self.inner.set_kx_hint(server_name, group)
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<rustls::NamedGroup> {
        self.inner.kx_hint(server_name)
    }

    fn set_tls12_session(
        &self,
        server_name: ServerName<'static>,
        value: rustls::client::Tls12ClientSessionValue,
    ) {
        tracing::trace!(target: "ftps_client::tls", "stored a TLS 1.2 session");
        self.inner.set_tls12_session(server_name, value)
    }

    fn tls12_session(
        &self,
        server_name: &ServerName<'_>,
    ) -> Option<rustls::client::Tls12ClientSessionValue> {
        self.inner.tls12_session(server_name)
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        self.inner.remove_tls12_session(server_name)
    }

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: rustls::client::Tls13ClientSessionValue,
    ) {
        tracing::trace!(target: "ftps_client::tls", "stored a TLS 1.3 ticket");
        // The memory cache keeps at most 8 per server; count no more than that.
        if self.tickets.load(Ordering::Relaxed) < 8 {
            self.tickets.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.insert_tls13_ticket(server_name, value)
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<rustls::client::Tls13ClientSessionValue> {
        let t = self.inner.take_tls13_ticket(server_name);
        if t.is_some() {
            self.tickets.fetch_sub(1, Ordering::Relaxed);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_control_connection_gets_its_own_session_cache() {
        let config = Config {
            trust: Trust::Insecure,
            ..Config::default()
        };
        let setup = TlsSetup::new(&config).unwrap();
        let (a, _, store_a) = setup.connection_config(TlsVersions::Tls12And13).unwrap();
        let (b, _, store_b) = setup.connection_config(TlsVersions::Tls12And13).unwrap();
        assert!(!Arc::ptr_eq(&store_a, &store_b));
        assert!(!Arc::ptr_eq(&a, &b));
        assert_eq!(a.alpn_protocols, vec![b"ftp".to_vec()]);
        assert_eq!(store_a.tls13_tickets(), 0);
    }

    #[test]
    fn bad_client_key_fails_early() {
        let dir = std::env::temp_dir().join(format!("ftps-client-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("c.pem"), "not a certificate").unwrap();
        let config = Config {
            trust: Trust::Insecure,
            client_cert: Some(crate::ClientCert {
                cert_file: dir.join("c.pem"),
                key_file: dir.join("missing.pem"),
            }),
            ..Config::default()
        };
        assert!(matches!(TlsSetup::new(&config), Err(Error::Config(_))));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
