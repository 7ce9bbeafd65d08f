//! The algorithms of the `HASH` command and `OPTS HASH` (draft-bryan-ftpext-hash-02): their
//! names, the selection, the FEAT line, and the 213 reply in both directions. Computing
//! digests is the server's business.

use crate::command::Command;

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

    /// `OPTS HASH <name>`: selects this algorithm for the `HASH` commands that follow.
    pub fn select_command(self) -> Command {
        Command::Opts(format!("HASH {}", self.name()))
    }

    /// How many hex digits a digest of this algorithm has.
    pub fn hex_len(self) -> usize {
        match self {
            HashAlgorithm::Sha1 => 40,
            HashAlgorithm::Sha256 => 64,
            HashAlgorithm::Md5 => 32,
            HashAlgorithm::Crc32 => 8,
        }
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

/// Reads the parameters of a `HASH` FEAT line (`SHA-1;SHA-256*;MD5`): each algorithm
/// named, and whether it is the selected one (`*`). Names we do not know are left out.
pub fn parse_feat_params(params: &str) -> Vec<(HashAlgorithm, bool)> {
    params
        .split(';')
        .map(str::trim)
        .filter_map(|name| {
            let (name, selected) = match name.strip_suffix('*') {
                Some(n) => (n, true),
                None => (name, false),
            };
            HashAlgorithm::from_name(name).map(|a| (a, selected))
        })
        .collect()
}

/// A successful `HASH` reply, read: `ALGO START-END DIGEST PATH`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashReply {
    /// The algorithm the digest was computed with.
    pub algorithm: HashAlgorithm,
    /// The first byte covered.
    pub start: u64,
    /// The end of the range covered (the file's size for a whole file).
    pub end: u64,
    /// The digest in lower-case hex, as long as the algorithm's digests are.
    pub digest: String,
    /// The path, as the server wrote it (empty if it wrote none).
    pub path: String,
}

/// Reads the text of a 213 `HASH` reply, the inverse of [`hash_reply`]. `None` for an
/// algorithm we do not know, a malformed range, or a digest that is not hex of the
/// algorithm's length.
pub fn parse_hash_reply(text: &str) -> Option<HashReply> {
    let text = text.trim_start();
    let (algorithm, rest) = text.split_once(' ')?;
    let algorithm = HashAlgorithm::from_name(algorithm)?;
    let rest = rest.trim_start();
    let (range, rest) = rest.split_once(' ')?;
    let (start, end) = range.split_once('-')?;
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    let (start, end) = (number(start)?, number(end)?);
    let rest = rest.trim_start();
    let (digest, path) = rest.split_once(' ').unwrap_or((rest, ""));
    if digest.len() != algorithm.hex_len() || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(HashReply {
        algorithm,
        start,
        end,
        digest: digest.to_ascii_lowercase(),
        path: path.to_string(),
    })
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
            HashAlgorithm::Sha256.select_command().to_line().unwrap(),
            "OPTS HASH SHA-256\r\n"
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

    #[test]
    fn hash_replies_are_read() {
        let hex = "ab".repeat(32);
        let reply = parse_hash_reply(&format!("SHA-256 0-12 {} /a b", hex.to_uppercase()));
        assert_eq!(
            reply,
            Some(HashReply {
                algorithm: HashAlgorithm::Sha256,
                start: 0,
                end: 12,
                digest: hex.clone(),
                path: "/a b".into(),
            })
        );
        let no_path = parse_hash_reply(&format!("sha-256 0-12 {hex}")).unwrap();
        assert_eq!(
            (no_path.algorithm, no_path.path.as_str()),
            (HashAlgorithm::Sha256, "")
        );
        let md5 = parse_hash_reply(&format!("MD5 0-12 {} /x", "cd".repeat(16))).unwrap();
        assert_eq!(md5.algorithm, HashAlgorithm::Md5);
        // A SHA-256 digest where MD5 was announced, non-hex, unknown algorithms, bad ranges.
        assert_eq!(parse_hash_reply(&format!("MD5 0-12 {hex} /x")), None);
        assert_eq!(parse_hash_reply("SHA-256 0-12 zz /x"), None);
        assert_eq!(parse_hash_reply(&format!("SHA-512 0-12 {hex} /x")), None);
        assert_eq!(parse_hash_reply(&format!("SHA-256 12 {hex} /x")), None);
        assert_eq!(parse_hash_reply(&format!("SHA-256 0-x {hex} /x")), None);
        assert_eq!(parse_hash_reply(""), None);
    }

    #[test]
    fn feat_params_are_read() {
        assert_eq!(
            parse_feat_params("SHA-1;SHA-256*;MD5;CRC32;SHA-512"),
            vec![
                (HashAlgorithm::Sha1, false),
                (HashAlgorithm::Sha256, true),
                (HashAlgorithm::Md5, false),
                (HashAlgorithm::Crc32, false),
            ]
        );
        assert_eq!(parse_feat_params(""), vec![]);
    }

    proptest::proptest! {
        #[test]
        fn hash_reply_round_trips(
            index in 0..4usize,
            size in proptest::prelude::any::<u64>(),
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 32),
            path in "[^\r\n]{0,30}",
        ) {
            let algorithm = HashAlgorithm::ALL[index];
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).take(algorithm.hex_len() / 2).collect();
            let parsed = parse_hash_reply(&hash_reply(algorithm, size, &hex, &path));
            proptest::prop_assert_eq!(parsed, Some(HashReply { algorithm, start: 0, end: size, digest: hex, path }));
        }

        #[test]
        fn feat_line_round_trips(index in 0..4usize) {
            let selected = HashAlgorithm::ALL[index];
            let line = selected.feat_line();
            let params = line.strip_prefix("HASH ").unwrap_or("");
            let read = parse_feat_params(params);
            let expected: Vec<(HashAlgorithm, bool)> = HashAlgorithm::ALL.iter().map(|&a| (a, a == selected)).collect();
            proptest::prop_assert_eq!(read, expected);
        }

        #[test]
        fn parse_never_panics(text in "\\PC{0,100}") {
            let _ = parse_hash_reply(&text);
            let _ = parse_feat_params(&text);
        }
    }
}
