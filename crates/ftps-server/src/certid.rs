//! Who a client certificate names: its subject common names, its subject alternative names
//! (e-mail and DNS) and its SHA-256 fingerprint, and the exact matching of users to them.
//!
//! Matching is exact, never by substring (libunftp once matched a CN by substring, so a
//! certificate for "alice.evil" logged in as "alice").

use rustls::pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The identities a certificate carries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertIdentity {
    /// Subject common names.
    pub common_names: Vec<String>,
    /// Subject alternative names of the e-mail (rfc822Name) and DNS kinds.
    pub alt_names: Vec<String>,
    /// SHA-256 of the DER certificate, `AB:CD:...`.
    pub sha256: String,
}

impl CertIdentity {
    /// Reads the identities of a DER certificate; `None` if it cannot be parsed (the TLS
    /// verifier has already accepted it, so this is unexpected).
    pub fn from_der(cert: &CertificateDer<'_>) -> Option<CertIdentity> {
        let (_, parsed) = X509Certificate::from_der(cert.as_ref()).ok()?;
        let common_names = parsed
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok().map(str::to_string))
            .collect();
        let mut alt_names = Vec::new();
        if let Ok(Some(san)) = parsed.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::RFC822Name(n) | GeneralName::DNSName(n) => {
                        alt_names.push(n.to_string())
                    }
                    _ => {}
                }
            }
        }
        Some(CertIdentity {
            common_names,
            alt_names,
            sha256: crate::tls::fingerprint(cert),
        })
    }
}

/// How a user entry names its certificate. Every field given must match exactly.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateMatch {
    /// The subject common name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cn: Option<String>,
    /// A subject alternative name (e-mail or DNS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub san: Option<String>,
    /// The SHA-256 fingerprint, hex with or without colons, any case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

impl CertificateMatch {
    /// Whether at least one criterion is set.
    pub fn is_set(&self) -> bool {
        self.cn.is_some() || self.san.is_some() || self.sha256.is_some()
    }

    /// Whether `id` satisfies every criterion (and there is at least one).
    pub fn matches(&self, id: &CertIdentity) -> bool {
        if !self.is_set() {
            return false;
        }
        let cn_ok = self
            .cn
            .as_ref()
            .is_none_or(|cn| id.common_names.iter().any(|c| c == cn));
        let san_ok = self
            .san
            .as_ref()
            .is_none_or(|san| id.alt_names.iter().any(|s| s.eq_ignore_ascii_case(san)));
        let fp_ok = self
            .sha256
            .as_ref()
            .is_none_or(|fp| normalize_fingerprint(fp) == normalize_fingerprint(&id.sha256));
        cn_ok && san_ok && fp_ok
    }
}

fn normalize_fingerprint(fp: &str) -> String {
    fp.chars()
        .filter(|c| c.is_ascii_hexdigit())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(cn: &str, sans: Vec<String>) -> CertificateDer<'static> {
        let mut params = rcgen::CertificateParams::new(sans).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn exact_matches_only() {
        let der = cert("alice", vec!["alice.example.com".into()]);
        let id = CertIdentity::from_der(&der).unwrap();
        assert_eq!(id.common_names, vec!["alice"]);
        assert_eq!(id.alt_names, vec!["alice.example.com"]);
        let m = |cn: Option<&str>, san: Option<&str>, fp: Option<&str>| CertificateMatch {
            cn: cn.map(str::to_string),
            san: san.map(str::to_string),
            sha256: fp.map(str::to_string),
        };
        assert!(m(Some("alice"), None, None).matches(&id));
        assert!(!m(Some("ali"), None, None).matches(&id));
        assert!(!m(Some("alice.evil"), None, None).matches(&id));
        assert!(m(None, Some("ALICE.example.com"), None).matches(&id));
        assert!(!m(None, Some("example.com"), None).matches(&id));
        let fp = id.sha256.to_lowercase().replace(':', "");
        assert!(m(None, None, Some(&fp)).matches(&id));
        assert!(!m(Some("bob"), None, Some(&fp)).matches(&id));
        assert!(!m(None, None, None).matches(&id));
        let evil = CertIdentity::from_der(&cert("alice.evil", vec![])).unwrap();
        assert!(!m(Some("alice"), None, None).matches(&evil));
    }
}
