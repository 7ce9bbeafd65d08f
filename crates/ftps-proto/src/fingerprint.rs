//! SHA-256 certificate fingerprints as people read and type them (`AB:CD:...`): how ftpsd
//! prints its certificate's, and how a client pins one.

/// Formats a digest as colon-separated upper-case hex pairs: `AB:CD:...`.
pub fn format(digest: &[u8]) -> String {
    let mut out = String::with_capacity(digest.len() * 3);
    for (i, b) in digest.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push(hex_digit(b >> 4));
        out.push(hex_digit(b & 0xf));
    }
    out
}

fn hex_digit(nibble: u8) -> char {
    char::from(b"0123456789ABCDEF"[usize::from(nibble)])
}

/// Parses a SHA-256 fingerprint: 64 hex digits in either case, with or without `:` or space
/// separators, optionally prefixed with `sha256:`, `sha256/` or `sha256=` (in any case).
/// `None` for anything else.
pub fn parse(text: &str) -> Option<[u8; 32]> {
    let t = text.trim();
    let t = ["sha256:", "sha256/", "sha256="]
        .iter()
        .find_map(|prefix| {
            t.get(..prefix.len())
                .filter(|head| head.eq_ignore_ascii_case(prefix))
                .map(|_| &t[prefix.len()..])
        })
        .unwrap_or(t);
    let digits: Vec<u8> = t.bytes().filter(|&b| b != b':' && b != b' ').collect();
    if digits.len() != 64 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *slot = (nibble(pair[0]) << 4) | nibble(pair[1]);
    }
    Some(out)
}

/// The value of one ASCII hex digit (checked by the caller).
fn nibble(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_colon_separated_upper_case_pairs() {
        assert_eq!(format(&[0xab, 0x01, 0xff]), "AB:01:FF");
        assert_eq!(format(&[]), "");
    }

    #[test]
    fn parses_what_people_paste() {
        let digest = [0xab; 32];
        let colons = format(&digest);
        let hex = "ab".repeat(32);
        for text in [
            colons.clone(),
            colons.to_lowercase(),
            hex.clone(),
            format!("  {hex}  "),
            format!("SHA256:{colons}"),
            format!("sha256/{hex}"),
            format!("Sha256={hex}"),
            colons.replace(':', " "),
        ] {
            assert_eq!(parse(&text), Some(digest), "{text:?}");
        }
    }

    #[test]
    fn refuses_anything_else() {
        let hex = "ab".repeat(32);
        for text in [
            String::new(),
            hex[..62].to_string(),
            format!("{hex}ab"),
            format!("+{}", &hex[1..]),
            hex.replacen('a', "g", 1),
            hex.replacen("ab", "é", 1),
            format!("md5:{hex}"),
        ] {
            assert_eq!(parse(&text), None, "{text:?}");
        }
    }

    #[test]
    fn parse_reads_what_format_writes() {
        let digest: [u8; 32] = std::array::from_fn(|i| (i * 37) as u8);
        assert_eq!(parse(&format(&digest)), Some(digest));
    }
}
