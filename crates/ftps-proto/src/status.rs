//! File status replies: the 213 texts of `SIZE` (RFC 3659 §4) and `MDTM` (RFC 3659 §3), as a
//! client reads them.

use std::time::SystemTime;

use crate::listing::parse_mdtm_time;

/// Reads a 213 `SIZE` reply's text: a decimal byte count.
pub fn parse_size_reply(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// Reads a 213 `MDTM` reply's text: a `YYYYMMDDHHMMSS[.sss]` UTC time.
pub fn parse_mdtm_reply(text: &str) -> Option<SystemTime> {
    parse_mdtm_time(text.trim())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::listing::mdtm_time;

    #[test]
    fn size_replies() {
        assert_eq!(parse_size_reply("1234"), Some(1234));
        assert_eq!(parse_size_reply(" 18446744073709551615 "), Some(u64::MAX));
        assert_eq!(parse_size_reply("18446744073709551616"), None);
        assert_eq!(parse_size_reply("12 bytes"), None);
        assert_eq!(parse_size_reply(""), None);
    }

    #[test]
    fn mdtm_replies() {
        let t = UNIX_EPOCH + Duration::from_secs(1_609_459_199);
        assert_eq!(parse_mdtm_reply("20201231235959"), Some(t));
        assert_eq!(parse_mdtm_reply(" 20201231235959 "), Some(t));
        assert_eq!(parse_mdtm_reply(&mdtm_time(t)), Some(t));
        assert_eq!(parse_mdtm_reply("2020-12-31"), None);
    }

    proptest::proptest! {
        #[test]
        fn sizes_round_trip(n in proptest::prelude::any::<u64>()) {
            proptest::prop_assert_eq!(parse_size_reply(&n.to_string()), Some(n));
        }
    }
}
