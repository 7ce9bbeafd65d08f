//! The algorithms of the `HASH` command and `OPTS HASH` (draft-bryan-ftpext-hash-02): their
//! names, the selection, and the FEAT line. Computing digests is the server's business.

/// A digest algorithm `HASH` can compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HashAlgorithm {
    /// SHA-1 (FIPS 180-4).
    Sha1,
    /// SHA-256 (FIPS 180-4), the default: the strongest one every client knows.
    #[default]
    Sha256,
    /// MD5 (RFC 1321), for old clients only.
    Md5,
    /// CRC-32 (ISO-HDLC, as zlib computes it), not cryptographic.
    Crc32,
}

impl HashAlgorithm {
    /// Every supported algorithm, in FEAT order.
    pub const ALL: [HashAlgorithm; 4] = [
        HashAlgorithm::Sha1,
        HashAlgorithm::Sha256,
        HashAlgorithm::Md5,
        HashAlgorithm::Crc32,
    ];

    /// The name used on the wire (IANA hash function textual names where they exist).
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha1 => "SHA-1",
            HashAlgorithm::Sha256 => "SHA-256",
            HashAlgorithm::Md5 => "MD5",
            HashAlgorithm::Crc32 => "CRC32",
        }
    }

    /// The algorithm an `OPTS HASH` argument names, case-insensitively.
    pub fn from_name(name: &str) -> Option<HashAlgorithm> {
        HashAlgorithm::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The FEAT line: every algorithm, `*` after the selected one.
    pub fn feat_line(self) -> String {
        let names: Vec<String> = HashAlgorithm::ALL
            .iter()
            .map(|a| format!("{}{}", a.name(), if *a == self { "*" } else { "" }))
            .collect();
        format!("HASH {}", names.join(";"))
    }
}

/// The text of a successful `HASH` reply (code 213): `ALGO START-END DIGEST PATH`, where the
/// range covers the whole file (`0-size`).
pub fn hash_reply(algorithm: HashAlgorithm, size: u64, hex_digest: &str, path: &str) -> String {
    format!("{} 0-{size} {hex_digest} {path}", algorithm.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_feat_marks_the_selection() {
        for a in HashAlgorithm::ALL {
            assert_eq!(HashAlgorithm::from_name(a.name()), Some(a));
        }
        assert_eq!(
            HashAlgorithm::from_name("sha-256"),
            Some(HashAlgorithm::Sha256)
        );
        assert_eq!(HashAlgorithm::from_name("SHA-512"), None);
        assert_eq!(
            HashAlgorithm::default().feat_line(),
            "HASH SHA-1;SHA-256*;MD5;CRC32"
        );
        assert_eq!(
            hash_reply(
                HashAlgorithm::Md5,
                3,
                "900150983cd24fb0d6963f7d28e17f72",
                "/a b"
            ),
            "MD5 0-3 900150983cd24fb0d6963f7d28e17f72 /a b"
        );
    }
}
