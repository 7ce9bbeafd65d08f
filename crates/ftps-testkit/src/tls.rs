//! Client TLS for the tests and the benchmark: certificate verifiers (pinned by fingerprint,
//! or any certificate), SHA-256 fingerprints, and configurations with a session cache of
//! their own per control connection, so data connections resume exactly its session.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientSessionMemoryCache, Resumption, WantsClientCert};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ConfigBuilder, DigitallySignedStruct, SignatureScheme, SupportedProtocolVersion,
};
use sha2::{Digest, Sha256};

/// `AB:CD:...` of a DER certificate, as ftpsd prints it.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    ftps_proto::fingerprint::format(&Sha256::digest(cert.as_ref()))
}

/// The SHA-256 digest in `AB:CD:...` or plain hex (either case); `None` for anything else.
pub use ftps_proto::fingerprint::parse as parse_fingerprint;

/// Accepts the server certificate whose SHA-256 fingerprint is pinned, or with no pin any
/// certificate (the benchmark's own, generated per run and never leaving loopback). The
/// handshake signatures are verified either way, so the client does the cryptographic work
/// of a real one.
#[derive(Debug)]
pub struct Verifier {
    pin: Option<String>,
    provider: Arc<CryptoProvider>,
}

impl Verifier {
    /// Trusts exactly the certificate with `fingerprint` (`AB:CD:...`, either case).
    pub fn pinned(fingerprint: &str, provider: Arc<CryptoProvider>) -> Verifier {
        Verifier {
            pin: Some(fingerprint.to_string()),
            provider,
        }
    }

    /// Trusts any certificate.
    pub fn any(provider: Arc<CryptoProvider>) -> Verifier {
        Verifier {
            pin: None,
            provider,
        }
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(pin) = &self.pin else {
            return Ok(ServerCertVerified::assertion());
        };
        let got = fingerprint(end_entity);
        if got.eq_ignore_ascii_case(pin) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "certificate {got} is not the pinned {pin}"
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Which TLS versions a client offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tls {
    /// TLS 1.3 and 1.2.
    Any,
    /// TLS 1.2 only.
    V12,
    /// TLS 1.3 only.
    V13,
}

impl Tls {
    /// The protocol versions offered.
    pub fn versions(self) -> &'static [&'static SupportedProtocolVersion] {
        static ANY: [&SupportedProtocolVersion; 2] =
            [&rustls::version::TLS13, &rustls::version::TLS12];
        static V12: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
        static V13: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
        match self {
            Tls::Any => &ANY,
            Tls::V12 => &V12,
            Tls::V13 => &V13,
        }
    }
}

/// A client configuration with a fresh session cache: use one per control connection.
pub fn client_config(fingerprint: &str, tls: Tls) -> Arc<ClientConfig> {
    client_config_alpn(fingerprint, tls, vec![b"ftp".to_vec()])
}

/// [`client_config`] offering the given ALPN protocols.
pub fn client_config_alpn(fingerprint: &str, tls: Tls, alpn: Vec<Vec<u8>>) -> Arc<ClientConfig> {
    finish(pinned_builder(fingerprint, tls).with_no_client_auth(), alpn)
}

/// [`client_config`] presenting a client certificate (`chain`, end entity first, and its
/// key) whenever the server asks for one, on the control and on data connections.
pub fn client_config_with_cert(
    fingerprint: &str,
    tls: Tls,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Arc<ClientConfig> {
    let config = pinned_builder(fingerprint, tls)
        .with_client_auth_cert(chain, key)
        .expect("client certificate and key");
    finish(config, vec![b"ftp".to_vec()])
}

/// The TLS versions of `tls`, trusting exactly the server certificate with `fingerprint`.
fn pinned_builder(fingerprint: &str, tls: Tls) -> ConfigBuilder<ClientConfig, WantsClientCert> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(tls.versions())
        .expect("TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Verifier::pinned(fingerprint, provider)))
}

/// ALPN and a session cache of this configuration's own (one per control connection).
fn finish(mut config: ClientConfig, alpn: Vec<Vec<u8>>) -> Arc<ClientConfig> {
    config.alpn_protocols = alpn;
    config.resumption = Resumption::store(Arc::new(ClientSessionMemoryCache::new(64)));
    Arc::new(config)
}

/// A copy of `base` with an empty session cache of its own, holding up to `sessions`.
pub fn with_own_cache(base: &ClientConfig, sessions: usize) -> Arc<ClientConfig> {
    let mut config = base.clone();
    config.resumption = Resumption::store(Arc::new(ClientSessionMemoryCache::new(sessions)));
    Arc::new(config)
}

/// The TLS server name (SNI) sent unless a test chooses another.
pub fn localhost() -> ServerName<'static> {
    ServerName::try_from("localhost").expect("server name")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_with_and_without_colons() {
        let colons = ["AB"; 32].join(":");
        assert_eq!(parse_fingerprint(&colons), Some([0xab; 32]));
        assert_eq!(parse_fingerprint(&"ab".repeat(32)), Some([0xab; 32]));
        assert_eq!(parse_fingerprint("abc"), None);
        assert_eq!(parse_fingerprint(&"zz".repeat(32)), None);
    }
}
