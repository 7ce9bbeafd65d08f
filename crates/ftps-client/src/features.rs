//! What a server supports, from its `FEAT` reply (RFC 2389 §3).

use ftps_proto::feat;
use ftps_proto::hash::{self, HashAlgorithm};
use ftps_proto::Reply;

/// What the server said it supports in its `FEAT` reply (RFC 2389).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Features {
    /// `MLST` (and so `MLSD`).
    pub mlst: bool,
    /// `EPSV`/`EPRT`.
    pub epsv: bool,
    /// `MFMT` (set modification time).
    pub mfmt: bool,
    /// `MDTM`.
    pub mdtm: bool,
    /// `SIZE`.
    pub size: bool,
    /// `REST STREAM`.
    pub rest_stream: bool,
    /// `UTF8`.
    pub utf8: bool,
    /// Every feature line, trimmed.
    pub lines: Vec<String>,
}

impl Features {
    /// Reads a `211` FEAT reply.
    pub fn parse(reply: &Reply) -> Features {
        let mut f = Features::default();
        for feature in feat::features(reply) {
            match feature.name().to_ascii_uppercase().as_str() {
                "MLST" | "MLSD" => f.mlst = true,
                "EPSV" | "EPRT" => f.epsv = true,
                "MFMT" => f.mfmt = true,
                "MDTM" => f.mdtm = true,
                "SIZE" => f.size = true,
                "UTF8" => f.utf8 = true,
                "REST" => f.rest_stream = feature.params().to_ascii_uppercase().contains("STREAM"),
                _ => {}
            }
            f.lines.push(feature.line().to_string());
        }
        f
    }

    /// Whether `HASH` is offered with `algorithm` (draft-bryan-ftpext-hash-02 §3.1).
    pub(crate) fn offers_hash(&self, algorithm: HashAlgorithm) -> bool {
        self.lines
            .iter()
            .map(|line| feat::Feature::new(line))
            .filter(|f| f.is("HASH"))
            .any(|f| {
                hash::parse_feat_params(f.params())
                    .iter()
                    .any(|(offered, _)| *offered == algorithm)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftps_proto::ReplyCode;

    #[test]
    fn features() {
        let reply = Reply::multi(
            ReplyCode(211),
            vec![
                "Features:".into(),
                " EPSV".into(),
                " MLST type*;size*;modify*;".into(),
                " REST STREAM".into(),
                " MFMT".into(),
                " HASH SHA-1;SHA-256*;MD5".into(),
                "End".into(),
            ],
        );
        let f = Features::parse(&reply);
        assert!(f.epsv && f.mlst && f.rest_stream && f.mfmt && !f.utf8);
        assert_eq!(f.lines[1], "MLST type*;size*;modify*;");
        assert!(f.offers_hash(HashAlgorithm::Sha256));
        assert!(!f.offers_hash(HashAlgorithm::Crc32));
        assert!(!Features::default().offers_hash(HashAlgorithm::Sha256));
    }
}
