//! Sizes in bytes as the configuration and the users file write them: an integer, or a
//! string with a binary suffix (`"10M"` is 10 MiB, `"2G"` 2 GiB).

use std::fmt;

use serde::{de, Deserializer, Serializer};

/// The suffixes, from the largest, with their factor.
const SUFFIXES: [(&str, u64); 4] = [
    ("T", 1 << 40),
    ("G", 1 << 30),
    ("M", 1 << 20),
    ("K", 1 << 10),
];

/// Parses `"1048576"`, `"512K"`, `"10M"`, `"2G"`, `"1T"` (suffixes are binary and may be
/// written `KiB`, `MiB`, ..., in any case). The error says what is wrong with `text`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let digits = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, suffix) = trimmed.split_at(digits);
    let invalid = || {
        format!(
            "invalid size {text:?}: expected bytes, or a number with K, M, G or T \
             (binary: 10M is 10 MiB)"
        )
    };
    let number: u64 = number.parse().map_err(|_| invalid())?;
    let suffix = suffix.trim().to_ascii_uppercase();
    let base = suffix.strip_suffix("IB").unwrap_or(&suffix);
    let factor = if suffix.is_empty() {
        1
    } else {
        SUFFIXES
            .iter()
            .find(|(s, _)| *s == base)
            .map(|(_, f)| *f)
            .ok_or_else(invalid)?
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("invalid size {text:?}: too large"))
}

/// `bytes` with the largest suffix that divides it exactly (`10M`), else the bare number.
pub fn format_size(bytes: u64) -> String {
    SUFFIXES
        .iter()
        .find(|(_, f)| bytes >= *f && bytes % f == 0)
        .map_or_else(|| bytes.to_string(), |(s, f)| format!("{}{s}", bytes / f))
}

/// Serde: a size written as an integer or a string with a suffix.
pub(crate) fn deserialize_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct SizeVisitor;
    impl de::Visitor<'_> for SizeVisitor {
        type Value = u64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a size in bytes, or a string such as \"10M\" or \"2G\"")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom(format!("invalid size {v}: negative")))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            parse_size(v).map_err(E::custom)
        }
    }
    d.deserialize_any(SizeVisitor)
}

/// Serde: a size as a string with a suffix when one fits exactly, else as an integer.
pub(crate) fn serialize_size<S: Serializer>(bytes: u64, s: S) -> Result<S::Ok, S::Error> {
    let text = format_size(bytes);
    if text.bytes().all(|b| b.is_ascii_digit()) {
        s.serialize_u64(bytes)
    } else {
        s.serialize_str(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        for (text, bytes) in [
            ("0", 0),
            ("1048576", 1 << 20),
            ("512K", 512 << 10),
            ("10M", 10 << 20),
            ("10m", 10 << 20),
            ("10MiB", 10 << 20),
            (" 2 G ", 2 << 30),
            ("1T", 1 << 40),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
        for bad in ["", "M", "-1", "1.5G", "10MB", "10X", "ten", "99999999999T"] {
            let e = parse_size(bad).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn sizes_print_with_the_largest_exact_suffix() {
        assert_eq!(format_size(0), "0");
        assert_eq!(format_size(1000), "1000");
        assert_eq!(format_size(1024), "1K");
        assert_eq!(format_size(10 << 20), "10M");
        assert_eq!(format_size((10 << 20) + 1), "10485761");
        assert_eq!(format_size(3 << 30), "3G");
        for n in [0, 1, 1023, 1024, 5 << 20, 7 << 40, u64::MAX] {
            assert_eq!(parse_size(&format_size(n)), Ok(n), "{n}");
        }
    }
}
