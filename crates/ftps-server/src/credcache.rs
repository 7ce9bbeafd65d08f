//! A cache of recently verified logins, so returning users skip argon2.
//!
//! The stored hashes stay argon2id: the cache holds only HMAC-SHA256 values under a random
//! key that exists in this process's memory alone, for a short time. An entry covers the
//! name, the password *and the stored hash*, so changing a password (a new hash) retires
//! it. Only successes are cached; a failed login always runs argon2, so unknown users and
//! wrong passwords still cost the same.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Entries kept at most; beyond this, expired ones are dropped, then the oldest.
const MAX_ENTRIES: usize = 10_000;

/// Recently verified (name, password, stored hash) triples.
pub struct CredentialCache {
    key: [u8; 32],
    ttl: Duration,
    entries: Mutex<HashMap<[u8; 32], Instant>>,
}

impl CredentialCache {
    /// A cache whose entries live for `ttl` (zero disables it).
    pub fn new(ttl: Duration) -> CredentialCache {
        let mut key = [0u8; 32];
        rand::Rng::fill(&mut rand::rngs::OsRng, &mut key[..]);
        CredentialCache {
            key,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn tag(&self, name: &str, password: &str, stored_hash: &str) -> [u8; 32] {
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            // HMAC takes keys of any length; this cannot happen.
            Err(_) => return [0u8; 32],
        };
        // Length prefixes keep the fields apart.
        for field in [name, password, stored_hash] {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field.as_bytes());
        }
        mac.finalize().into_bytes().into()
    }

    /// Whether this exact login succeeded within the last `ttl`.
    pub fn contains(&self, name: &str, password: &str, stored_hash: &str) -> bool {
        if self.ttl.is_zero() {
            return false;
        }
        let tag = self.tag(name, password, stored_hash);
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(&tag)
            .is_some_and(|&expires| expires > Instant::now())
    }

    /// Records a login that argon2 verified.
    pub fn insert(&self, name: &str, password: &str, stored_hash: &str) {
        if self.ttl.is_zero() {
            return;
        }
        let tag = self.tag(name, password, stored_hash);
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, expires| *expires > now);
            if entries.len() >= MAX_ENTRIES {
                if let Some(oldest) = entries.iter().min_by_key(|(_, e)| **e).map(|(k, _)| *k) {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(tag, now + self.ttl);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_triples_only_and_expiry() {
        let cache = CredentialCache::new(Duration::from_secs(60));
        cache.insert("alice", "pw", "$hash1");
        assert!(cache.contains("alice", "pw", "$hash1"));
        assert!(!cache.contains("alice", "pw2", "$hash1"));
        assert!(
            !cache.contains("alice", "pw", "$hash2"),
            "a new hash retires the entry"
        );
        assert!(!cache.contains("bob", "pw", "$hash1"));
        // Field boundaries matter: ("ab", "c") is not ("a", "bc").
        cache.insert("ab", "c", "h");
        assert!(!cache.contains("a", "bc", "h"));
        let off = CredentialCache::new(Duration::ZERO);
        off.insert("alice", "pw", "$hash1");
        assert!(!off.contains("alice", "pw", "$hash1"));
        let short = CredentialCache::new(Duration::from_millis(1));
        short.insert("alice", "pw", "$hash1");
        std::thread::sleep(Duration::from_millis(5));
        assert!(!short.contains("alice", "pw", "$hash1"));
    }
}
