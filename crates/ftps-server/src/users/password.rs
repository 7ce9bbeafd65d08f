//! Passwords: argon2id hashing and verification, and generated passwords.
//!
//! Recently verified logins are remembered by `crate::credcache`, so that a returning user
//! does not pay for argon2 again.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;
use rand::Rng;

use super::UsersError;

/// Argon2id memory cost in KiB (OWASP recommendation).
const ARGON2_M_COST: u32 = 19_456;
/// Argon2id iterations.
const ARGON2_T_COST: u32 = 2;
/// Argon2id parallelism.
const ARGON2_P_COST: u32 = 1;

/// Length of a generated password.
const GENERATED_LEN: usize = 24;
/// Letters and digits without look-alikes (0/O/o, 1/l/I).
const GENERATED_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";

/// A valid argon2id hash with the same parameters as [`hash_password`] produces. Logins for
/// unknown users (or users without a password) verify against it, so they cost as much as
/// a real login and timing does not reveal which names exist.
pub(super) const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// Hashes a password with argon2id (m=19456 KiB, t=2, p=1, as OWASP recommends) and a
/// random salt, returning the PHC string to store in the users file.
pub fn hash_password(password: &str) -> Result<String, UsersError> {
    if password.is_empty() {
        return Err(UsersError::EmptyPassword);
    }
    let argon2 = argon2_instance().map_err(|e| UsersError::Hash(e.to_string()))?;
    let salt = SaltString::generate(&mut OsRng);
    argon2
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| UsersError::Hash(e.to_string()))
}

/// Generates a random 24-character password from letters and digits that cannot be
/// mistaken for each other (about 138 bits of entropy), using the OS random source.
pub fn generate_password() -> String {
    (0..GENERATED_LEN)
        .map(|_| {
            let i = OsRng.gen_range(0..GENERATED_ALPHABET.len());
            char::from(GENERATED_ALPHABET[i])
        })
        .collect()
}

fn argon2_instance() -> Result<Argon2<'static>, argon2::Error> {
    let params = Params::new(ARGON2_M_COST, ARGON2_T_COST, ARGON2_P_COST, None)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Whether `hash` is a complete argon2id PHC string with usable parameters.
pub(super) fn is_argon2id_hash(hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let version_ok = match parsed.version {
        Some(v) => Version::try_from(v).is_ok(),
        None => true,
    };
    parsed.algorithm == Algorithm::Argon2id.ident()
        && version_ok
        && parsed.salt.is_some()
        && parsed.hash.is_some()
        && Params::try_from(&parsed).is_ok()
}

/// Checks `password` against a PHC string; any malformed input is simply a mismatch.
pub(super) fn verify_hash(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dummy_hash_matches_real_parameters() {
        assert!(is_argon2id_hash(DUMMY_HASH));
        let real = hash_password("pw").unwrap();
        let params = |h: &str| {
            let parsed = PasswordHash::new(h).unwrap();
            (parsed.version, parsed.params.to_string())
        };
        assert_eq!(params(DUMMY_HASH), params(&real));
    }

    #[test]
    fn generated_passwords() {
        let a = generate_password();
        let b = generate_password();
        assert_eq!(a.len(), GENERATED_LEN);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| GENERATED_ALPHABET.contains(&c)));
    }
}
