//! A rate in bytes per second, as the configuration and the users file write it: an integer,
//! or a string with a binary suffix (`"512K"`, `"10M"`, `"1G"`; K = 1024). Zero means no
//! limit, so it never becomes a [`Rate`].

use std::fmt;
use std::num::NonZeroU64;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// The largest rate accepted: what a TOML integer can hold (about 8 EiB/s, no limit in
/// practice), so that every rate can be written back.
const MAX_RATE: u64 = i64::MAX as u64;

/// A bandwidth limit in bytes per second; never zero (zero is "no limit").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rate(NonZeroU64);

impl Rate {
    /// One byte per second, the lowest rate.
    pub const MIN: Rate = Rate(NonZeroU64::MIN);

    /// `bytes_per_second` as a limit; `None` for 0 (no limit).
    pub fn new(bytes_per_second: u64) -> Option<Rate> {
        NonZeroU64::new(bytes_per_second.min(MAX_RATE)).map(Rate)
    }

    /// The rate in bytes per second.
    pub fn bytes_per_second(self) -> u64 {
        self.0.get()
    }

    /// Parses `"16777216"`, `"512K"`, `"10M"` or `"1G"` (binary multiples, upper or lower
    /// case); `Ok(None)` for zero. The error says what is accepted.
    pub fn parse(text: &str) -> Result<Option<Rate>, String> {
        let bad = || {
            format!(
                "invalid rate {text:?}: use bytes per second, as a whole number with an \
                 optional K, M or G suffix (K = 1024), e.g. 512K or 10M; 0 means no limit"
            )
        };
        let text = text.trim();
        let (digits, unit) = match text.char_indices().last() {
            Some((i, 'k' | 'K')) => (&text[..i], KIB),
            Some((i, 'm' | 'M')) => (&text[..i], MIB),
            Some((i, 'g' | 'G')) => (&text[..i], GIB),
            _ => (text, 1),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let value: u64 = digits.parse().map_err(|_| bad())?;
        match value.checked_mul(unit) {
            Some(bytes) if bytes <= MAX_RATE => Ok(Rate::new(bytes)),
            _ => Err(format!("rate {text:?} is too large")),
        }
    }

    /// Reads an optional rate (an integer or a string, see [`Rate::parse`]); 0 is `None`.
    /// For `#[serde(deserialize_with)]`.
    pub fn deserialize_optional<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Rate>, D::Error> {
        deserializer.deserialize_any(RateVisitor)
    }
}

/// Written the way an operator would: `"16M"` when the rate is a whole number of KiB, MiB
/// or GiB, else the number of bytes.
impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.bytes_per_second();
        match [(GIB, 'G'), (MIB, 'M'), (KIB, 'K')]
            .into_iter()
            .find(|(unit, _)| bytes % unit == 0)
        {
            Some((unit, suffix)) => write!(f, "{}{suffix}", bytes / unit),
            None => write!(f, "{bytes}"),
        }
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let bytes = self.bytes_per_second();
        if bytes % KIB == 0 {
            serializer.collect_str(self)
        } else {
            serializer.serialize_u64(bytes)
        }
    }
}

impl<'de> Deserialize<'de> for Rate {
    /// A rate that must be set: zero is an error here (optional rates use
    /// [`Rate::deserialize_optional`]).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Rate, D::Error> {
        Rate::deserialize_optional(deserializer)?
            .ok_or_else(|| de::Error::custom("a rate of 0 here means nothing; leave it out"))
    }
}

struct RateVisitor;

impl Visitor<'_> for RateVisitor {
    type Value = Option<Rate>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bytes per second: an integer, or a string such as \"512K\", \"10M\", \"1G\"")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        if v > MAX_RATE {
            return Err(E::custom(format!("rate {v} is too large")));
        }
        Ok(Rate::new(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        u64::try_from(v)
            .map_err(|_| E::custom(format!("rate {v} is negative")))
            .and_then(|v| self.visit_u64(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Rate::parse(v).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(text: &str) -> Option<u64> {
        Rate::parse(text).unwrap().map(Rate::bytes_per_second)
    }

    #[test]
    fn suffixes_are_binary_multiples() {
        assert_eq!(bytes("512K"), Some(512 * 1024));
        assert_eq!(bytes("10M"), Some(10 * 1024 * 1024));
        assert_eq!(bytes("1G"), Some(1024 * 1024 * 1024));
        assert_eq!(bytes("16m"), Some(16 * 1024 * 1024));
        assert_eq!(bytes(" 1000 "), Some(1000));
    }

    #[test]
    fn zero_is_no_limit() {
        assert_eq!(bytes("0"), None);
        assert_eq!(bytes("0K"), None);
        assert_eq!(Rate::new(0), None);
    }

    #[test]
    fn malformed_rates_are_refused_with_the_accepted_form() {
        for text in ["", "K", "1.5M", "-1", "10X", "10MB", "1 0", "+5", "ten"] {
            let err = Rate::parse(text).unwrap_err();
            assert!(err.contains("K = 1024"), "{text:?}: {err}");
        }
        assert!(Rate::parse("99999999999G")
            .unwrap_err()
            .contains("too large"));
        assert!(Rate::parse("99999999999999999999").is_err());
    }

    #[test]
    fn shown_as_written() {
        let shown = |b| Rate::new(b).unwrap().to_string();
        assert_eq!(shown(16 * 1024 * 1024), "16M");
        assert_eq!(shown(3 * 1024), "3K");
        assert_eq!(shown(1536), "1536");
        assert_eq!(shown(2 * 1024 * 1024 * 1024), "2G");
        assert_eq!(shown(1000), "1000");
    }

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct Holder {
        #[serde(
            default,
            deserialize_with = "Rate::deserialize_optional",
            skip_serializing_if = "Option::is_none"
        )]
        rate: Option<Rate>,
    }

    #[test]
    fn toml_integers_and_strings_round_trip() {
        let read = |text: &str| toml::from_str::<Holder>(text).map(|h| h.rate);
        assert_eq!(read("rate = 2048").unwrap(), Rate::new(2048));
        assert_eq!(read("rate = \"2K\"").unwrap(), Rate::new(2048));
        assert_eq!(read("rate = 0").unwrap(), None);
        assert_eq!(read("").unwrap(), None);
        assert!(read("rate = -1")
            .unwrap_err()
            .to_string()
            .contains("negative"));
        assert!(read("rate = \"fast\"").is_err());
        assert!(read("rate = 1.5").is_err());
        for rate in [Rate::new(2048), Rate::new(1000), Rate::new(5 << 30), None] {
            let text = toml::to_string(&Holder { rate }).unwrap();
            assert_eq!(read(&text).unwrap(), rate, "{text}");
        }
    }
}
