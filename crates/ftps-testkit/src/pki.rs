//! Throw-away PKIs: for the client-certificate tests a CA, client certificates (valid,
//! expired, from another CA), a CRL, and new server certificates for the reload tests; for
//! the reference servers a CA, a server and a client certificate written as PEM files.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason,
    RevokedCertParams, SanType, SerialNumber,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ClientConfig;
use sha2::{Digest, Sha256};

use crate::tls::{client_config_with_cert, fingerprint, Tls};

/// A certificate authority that signs client certificates and CRLs.
pub struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    /// A self-signed CA named `name`.
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("self-sign the CA");
        Ca { cert, key }
    }

    /// The CA certificate as PEM (the server's `tls.client_ca`).
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A client certificate with this subject CN, these e-mail SANs and this serial number,
    /// valid from a day ago for a year.
    pub fn client(&self, cn: &str, emails: &[&str], serial: u64) -> ClientCert {
        let now = time_now();
        self.client_valid(
            cn,
            emails,
            serial,
            now - time::Duration::days(1),
            now + time::Duration::days(365),
        )
    }

    /// A client certificate that expired yesterday.
    pub fn expired_client(&self, cn: &str, serial: u64) -> ClientCert {
        let now = time_now();
        self.client_valid(
            cn,
            &[],
            serial,
            now - time::Duration::days(30),
            now - time::Duration::days(1),
        )
    }

    /// A client certificate valid only from tomorrow.
    pub fn future_client(&self, cn: &str, serial: u64) -> ClientCert {
        let now = time_now();
        self.client_valid(
            cn,
            &[],
            serial,
            now + time::Duration::days(1),
            now + time::Duration::days(30),
        )
    }

    /// A certificate of this CA for servers only (extended key usage serverAuth).
    pub fn server_only_client(&self, cn: &str, serial: u64) -> ClientCert {
        let now = time_now();
        self.client_with(
            cn,
            &[],
            serial,
            (
                now - time::Duration::days(1),
                now + time::Duration::days(30),
            ),
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    fn client_valid(
        &self,
        cn: &str,
        emails: &[&str],
        serial: u64,
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
    ) -> ClientCert {
        self.client_with(
            cn,
            emails,
            serial,
            (not_before, not_after),
            ExtendedKeyUsagePurpose::ClientAuth,
        )
    }

    fn client_with(
        &self,
        cn: &str,
        emails: &[&str],
        serial: u64,
        (not_before, not_after): (time::OffsetDateTime, time::OffsetDateTime),
        usage: ExtendedKeyUsagePurpose,
    ) -> ClientCert {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
        params.distinguished_name.push(DnType::CommonName, cn);
        for email in emails {
            params.subject_alt_names.push(SanType::Rfc822Name(
                (*email).try_into().expect("e-mail SAN"),
            ));
        }
        params.serial_number = Some(SerialNumber::from(serial));
        params.not_before = not_before;
        params.not_after = not_after;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("client key");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("sign a client certificate");
        ClientCert {
            der: cert.der().clone(),
            key_der: key.serialize_der(),
            serial,
        }
    }

    /// A CRL of this CA revoking `revoked`, as PEM (the server's `tls.client_crls`).
    pub fn crl(&self, revoked: &[&ClientCert]) -> String {
        let now = time_now();
        let params = CertificateRevocationListParams {
            this_update: now - time::Duration::hours(1),
            next_update: now + time::Duration::days(30),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|c| RevokedCertParams {
                    serial_number: SerialNumber::from(c.serial),
                    revocation_time: now - time::Duration::hours(1),
                    reason_code: Some(RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        params
            .signed_by(&self.cert, &self.key)
            .expect("sign the CRL")
            .pem()
            .expect("CRL as PEM")
    }
}

/// A client certificate and its private key.
pub struct ClientCert {
    /// The certificate.
    pub der: CertificateDer<'static>,
    key_der: Vec<u8>,
    serial: u64,
}

impl ClientCert {
    /// `AB:CD:...`, as users files and ftpsd write fingerprints.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.der)
    }

    /// A client configuration (fresh session cache) that presents this certificate and
    /// trusts the server certificate `server_fingerprint`.
    pub fn config(&self, server_fingerprint: &str, tls: Tls) -> Arc<ClientConfig> {
        client_config_with_cert(
            server_fingerprint,
            tls,
            vec![self.der.clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone())),
        )
    }
}

/// A new self-signed server certificate for `localhost`, written as PEM to `cert` and
/// `key` (each via a temporary file renamed into place); returns its fingerprint.
pub fn write_server_cert(cert: &Path, key: &Path) -> String {
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".into()])
            .expect("generate a server certificate");
    replace_file(key, generated.key_pair.serialize_pem().as_bytes());
    replace_file(cert, generated.cert.pem().as_bytes());
    fingerprint(generated.cert.der())
}

/// [`write_server_cert`] for other names (DNS names or IP addresses).
pub fn write_server_cert_for(cert: &Path, key: &Path, names: &[&str]) -> String {
    let names = names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let generated =
        rcgen::generate_simple_self_signed(names).expect("generate a server certificate");
    replace_file(key, generated.key_pair.serialize_pem().as_bytes());
    replace_file(cert, generated.cert.pem().as_bytes());
    fingerprint(generated.cert.der())
}

/// Writes `path` atomically: a temporary file beside it, renamed into place.
pub fn replace_file(path: &Path, content: &[u8]) {
    let tmp = path.with_extension("tmp-new");
    fs::write(&tmp, content).expect("write temporary file");
    fs::rename(&tmp, path).expect("rename into place");
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// The PEM files of a server's PKI: a CA, a server certificate for `localhost` and
/// 127.0.0.1 signed by it, and a client certificate signed by it.
pub struct CertFiles {
    /// The server certificate.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// The CA certificate, which verifies both others.
    pub ca: PathBuf,
    /// A client certificate (extended key usage clientAuth).
    pub client_cert: PathBuf,
    /// Its private key.
    pub client_key: PathBuf,
    /// SHA-256 of the server certificate's DER.
    pub fingerprint: [u8; 32],
}

/// Generates a [`CertFiles`] PKI into `dir` (`cert.pem`, `key.pem`, `ca.pem`,
/// `client-cert.pem`, `client-key.pem`), the client certificate for `client_cn`.
pub fn write_cert_files(dir: &Path, client_cn: &str) -> CertFiles {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "ftps interop test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    client_params
        .distinguished_name
        .push(DnType::CommonName, client_cn);
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client = client_params.signed_by(&client_key, &ca, &ca_key).unwrap();
    let certs = CertFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
        ca: dir.join("ca.pem"),
        client_cert: dir.join("client-cert.pem"),
        client_key: dir.join("client-key.pem"),
        fingerprint: Sha256::digest(cert.der()).into(),
    };
    fs::write(&certs.client_cert, client.pem()).unwrap();
    fs::write(&certs.client_key, client_key.serialize_pem()).unwrap();
    fs::write(&certs.cert, cert.pem()).unwrap();
    fs::write(&certs.key, key.serialize_pem()).unwrap();
    fs::write(&certs.ca, ca.pem()).unwrap();
    certs
}
