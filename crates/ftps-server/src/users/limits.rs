//! A user's own limits (`[users.NAME.limits]`), beside the server's `[limits]`.
//!
//! ```toml
//! [users.alice.limits]
//! max_sessions = 3          # instead of limits.max_sessions_per_user
//! max_file_size = "2G"      # instead of limits.max_file_size; bytes, or K/M/G/T (binary)
//! ```

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::limits::size::{deserialize_size, serialize_size};

/// Per-user limits; unset: the server's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserLimits {
    /// Sessions logged in at once as this user (at least 1); unset: the server's
    /// `limits.max_sessions_per_user`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "at_least_one"
    )]
    pub max_sessions: Option<u32>,
    /// The largest file, in bytes, that this user's uploads may make (at least 1); unset:
    /// the server's `limits.max_file_size`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "positive_size",
        serialize_with = "size_or_none"
    )]
    pub max_file_size: Option<u64>,
}

impl UserLimits {
    /// Whether nothing is set (the users file then leaves the table out).
    pub fn is_empty(&self) -> bool {
        *self == UserLimits::default()
    }

    /// The largest file this user may upload, given the server's `limits.max_file_size`
    /// (0: none). `None`: no limit.
    pub fn file_size_limit(&self, server: u64) -> Option<u64> {
        self.max_file_size.or((server > 0).then_some(server))
    }
}

/// `max_sessions`: 0 would lock the user out, which deleting it says better.
fn at_least_one<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    match u32::deserialize(d)? {
        0 => Err(serde::de::Error::custom(
            "max_sessions must be at least 1 (leave it out for the server's limit)",
        )),
        n => Ok(Some(n)),
    }
}

/// `max_file_size`: 0 would refuse every byte; leaving it out means the server's limit.
fn positive_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match deserialize_size(d)? {
        0 => Err(serde::de::Error::custom(
            "max_file_size must be at least 1 byte (leave it out for the server's limit)",
        )),
        n => Ok(Some(n)),
    }
}

fn size_or_none<S: Serializer>(size: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
    match size {
        Some(bytes) => serialize_size(*bytes, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_with_sizes_and_print_back() {
        let l: UserLimits = toml::from_str("max_sessions = 3\nmax_file_size = \"10M\"\n").unwrap();
        assert_eq!(l.max_sessions, Some(3));
        assert_eq!(l.max_file_size, Some(10 << 20));
        assert_eq!(
            toml::to_string(&l).unwrap(),
            "max_sessions = 3\nmax_file_size = \"10M\"\n"
        );
        let l: UserLimits = toml::from_str("max_file_size = 1000\n").unwrap();
        assert_eq!(l.max_file_size, Some(1000));
        assert_eq!(toml::to_string(&l).unwrap(), "max_file_size = 1000\n");
        let empty: UserLimits = toml::from_str("").unwrap();
        assert!(empty.is_empty());
        assert_eq!(toml::to_string(&empty).unwrap(), "");
    }

    #[test]
    fn bad_limits_are_errors_that_say_why() {
        for (text, message) in [
            ("max_sessions = 0\n", "at least 1"),
            ("max_sessions = -2\n", "max_sessions"),
            ("max_file_size = 0\n", "at least 1 byte"),
            ("max_file_size = \"0M\"\n", "at least 1 byte"),
            ("max_file_size = \"lots\"\n", "\"lots\""),
            ("max_file_size = -5\n", "negative"),
            ("max_files = 3\n", "max_files"),
        ] {
            let e = toml::from_str::<UserLimits>(text).unwrap_err().to_string();
            assert!(e.contains(message), "{text:?}: {e}");
        }
    }

    #[test]
    fn the_users_file_size_limit_overrides_the_servers() {
        let own = UserLimits {
            max_file_size: Some(5),
            ..UserLimits::default()
        };
        assert_eq!(own.file_size_limit(0), Some(5));
        assert_eq!(own.file_size_limit(100), Some(5));
        let none = UserLimits::default();
        assert_eq!(none.file_size_limit(0), None);
        assert_eq!(none.file_size_limit(100), Some(100));
    }
}
