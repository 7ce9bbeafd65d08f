//! The client's public items under one path (`ftps_client::client::...`): the session and
//! its connector, transfers, and helpers for remote paths and replies.
//!
//! The code lives by concept: `connect` (TCP, TLS, greeting, login), `session` (the type
//! and its command exchange), `commands` (file commands), `data` (data connections),
//! `transfer` (transfers and their completion) and `listing` (directory listings).

use ftps_proto::hash::{self, HashAlgorithm};

pub use crate::connect::Connector;
pub use crate::data::pasv_target;
pub use crate::features::Features;
pub use crate::path::{basename, join, parent};
pub use crate::session::{FtpsClient, TlsInfo};
pub use crate::transfer::{Transfer, TransferOutcome, COPY_BUFFER};

/// Reads the SHA-256 digest (lower-case hex) out of a `213` HASH reply:
/// `SHA-256 0-1234 <hex> <path>`.
pub fn parse_hash_reply(text: &str) -> Option<String> {
    hash::parse_hash_reply(text)
        .filter(|h| h.algorithm == HashAlgorithm::Sha256)
        .map(|h| h.digest)
}

/// Reads the path out of a `257` reply: `"/a ""quoted"" dir" created`.
pub fn parse_257(text: &str) -> Option<String> {
    ftps_proto::reply::unquote_path(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_257() {
        assert_eq!(
            parse_257("\"/a \"\"b\"\" c\" is current").as_deref(),
            Some("/a \"b\" c")
        );
        assert_eq!(parse_257("no quotes"), None);
        assert_eq!(parse_257("\"unterminated"), None);
    }

    #[test]
    fn hash_replies() {
        let hex = "ab".repeat(32);
        assert_eq!(
            parse_hash_reply(&format!("SHA-256 0-12 {} /a b", hex.to_uppercase())),
            Some(hex.clone())
        );
        assert_eq!(parse_hash_reply(&format!("MD5 0-12 {hex} /x")), None);
        assert_eq!(parse_hash_reply("SHA-256 0-12 zz /x"), None);
        assert_eq!(parse_hash_reply(""), None);
    }
}
