//! A session-ticket key that belongs to one control session.
//!
//! rustls' own ticketer rotates its key every few hours, so a long FTPS session's data
//! connections would eventually fail to resume. This key never rotates: it is created with
//! the control session and erased when the session ends, which bounds the key's lifetime
//! (the forward-secrecy concern rotation exists for) just as well, and makes the tickets
//! useless to every other session (but the same user's, see [`super::resumption`]).

use std::fmt;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// AES-256-GCM ticket protection with a random per-session key.
pub struct TicketKey {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl TicketKey {
    /// A fresh random key, or `None` if the system RNG fails.
    pub fn new() -> Option<TicketKey> {
        let rng = SystemRandom::new();
        let mut key = [0u8; 32];
        rng.fill(&mut key).ok()?;
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).ok()?);
        Some(TicketKey { key, rng })
    }
}

impl fmt::Debug for TicketKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TicketKey")
    }
}

impl TicketKey {
    /// Seals a ticket: `nonce || ciphertext || tag`.
    pub fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).ok()?;
        let mut out = Vec::with_capacity(NONCE_LEN + plain.len() + AES_256_GCM.tag_len());
        out.extend_from_slice(&nonce);
        let mut body = plain.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut body)
            .ok()?;
        out.extend_from_slice(&body);
        Some(out)
    }

    /// Opens a ticket sealed with this key; `None` for any other input.
    pub fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        if cipher.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return None;
        }
        let (nonce, sealed) = cipher.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::empty(), &mut body)
            .ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_isolation() {
        let a = TicketKey::new().unwrap();
        let b = TicketKey::new().unwrap();
        let ticket = a.encrypt(b"session state").unwrap();
        assert_eq!(a.decrypt(&ticket).unwrap(), b"session state");
        // Another session's key cannot open it.
        assert!(b.decrypt(&ticket).is_none());
        // Tampering and truncation are refused, never panic.
        let mut bad = ticket.clone();
        bad[NONCE_LEN] ^= 1;
        assert!(a.decrypt(&bad).is_none());
        for len in 0..ticket.len() {
            assert!(a.decrypt(&ticket[..len]).is_none());
        }
    }
}
