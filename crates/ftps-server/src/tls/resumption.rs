//! Resumption domains: which TLS sessions a data connection may resume.
//!
//! Every control session has its own [`ResumptionDomain`]: a ticket key and a TLS 1.2
//! session-ID cache that no other session shares. A data connection whose handshake
//! *resumes* a session of that domain is held by whoever holds the control connection's
//! tickets, which were only ever sent inside its TLS session: that is how data connections
//! are bound to their control connection.
//!
//! While a session is logged in, its domain is also *bound* to its user: the pair (virtual
//! host, user name) and the client's IP address. A data connection of one of that user's
//! sessions then also accepts a ticket issued to another of the user's live, logged-in
//! sessions from the same address. Clients that keep one TLS session cache for several
//! control connections (rclone, Go's `crypto/tls`) present such tickets. Whoever holds one
//! is a client that logged in as this user from this address, so it gains nothing it could
//! not do with its own session (the analysis is in docs/security.md). A binding ends with
//! the login (`REIN`, disconnection); from then on the session's tickets open only its own
//! data connections again.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use rustls::server::{ProducesTickets, ServerSessionMemoryCache, StoresServerSessions};

use super::ticket::TicketKey;

/// The longest ticket lifetime TLS 1.3 allows (RFC 8446 §4.6.1): seven days. The key dies
/// with the control session long before.
const MAX_LIFETIME_SECS: u32 = 7 * 24 * 3600;

/// Session entries kept per control session for TLS 1.2 session-ID resumption. Data
/// connections resume the control connection's one session; the cache is preallocated, so
/// every entry costs memory in every session.
const SESSION_CACHE_ENTRIES: usize = 4;

/// Who a logged-in session's data connections may share tickets with.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UserBinding {
    /// The virtual host's name; `None` for the server's own users.
    pub host: Option<String>,
    /// The user name.
    pub user: String,
    /// The client's address (IPv4-mapped IPv6 addresses as IPv4).
    pub ip: IpAddr,
}

/// The live, logged-in sessions of each user and address.
#[derive(Default)]
pub struct Siblings {
    bound: Mutex<HashMap<UserBinding, Vec<Weak<ResumptionDomain>>>>,
}

impl fmt::Debug for Siblings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Siblings")
            .field("bindings", &self.lock().len())
            .finish()
    }
}

impl Siblings {
    fn lock(&self) -> MutexGuard<'_, HashMap<UserBinding, Vec<Weak<ResumptionDomain>>>> {
        self.bound
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The other live domains bound to `binding`.
    fn others(&self, binding: &UserBinding, me: &ResumptionDomain) -> Vec<Arc<ResumptionDomain>> {
        self.lock()
            .get(binding)
            .map(|domains| {
                domains
                    .iter()
                    .filter_map(Weak::upgrade)
                    .filter(|d| !std::ptr::eq(Arc::as_ptr(d), me))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// One control session's ticket key and session cache (see the module docs).
pub struct ResumptionDomain {
    key: TicketKey,
    cache: Arc<ServerSessionMemoryCache>,
    /// Set while the session is logged in.
    binding: Mutex<Option<(Arc<Siblings>, UserBinding)>>,
}

impl fmt::Debug for ResumptionDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResumptionDomain")
    }
}

impl ResumptionDomain {
    /// A domain with a fresh random key, or `None` if the system RNG fails.
    pub fn new() -> Option<Arc<ResumptionDomain>> {
        Some(Arc::new(ResumptionDomain {
            key: TicketKey::new()?,
            cache: ServerSessionMemoryCache::new(SESSION_CACHE_ENTRIES),
            binding: Mutex::new(None),
        }))
    }

    /// Binds this domain to a logged-in user until the returned guard is dropped.
    pub fn bind(self: &Arc<Self>, siblings: &Arc<Siblings>, binding: UserBinding) -> BoundLogin {
        {
            let mut bound = siblings.lock();
            let domains = bound.entry(binding.clone()).or_default();
            domains.retain(|d| d.strong_count() > 0);
            domains.push(Arc::downgrade(self));
        }
        *self.binding_slot() = Some((siblings.clone(), binding));
        BoundLogin {
            domain: self.clone(),
        }
    }

    fn binding_slot(&self) -> MutexGuard<'_, Option<(Arc<Siblings>, UserBinding)>> {
        self.binding
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The other live sessions of the bound user, none while not logged in.
    fn siblings(&self) -> Vec<Arc<ResumptionDomain>> {
        let bound = self.binding_slot().clone();
        match bound {
            Some((siblings, binding)) => siblings.others(&binding, self),
            None => Vec::new(),
        }
    }

    fn unbind(&self) {
        let Some((siblings, binding)) = self.binding_slot().take() else {
            return;
        };
        let mut bound = siblings.lock();
        if let Some(domains) = bound.get_mut(&binding) {
            domains.retain(|d| d.strong_count() > 0 && !std::ptr::eq(d.as_ptr(), self));
            if domains.is_empty() {
                bound.remove(&binding);
            }
        }
    }
}

/// A session's login, as far as ticket sharing is concerned: dropping it (at `REIN` or when
/// the session ends) unbinds the session's domain from its user.
pub struct BoundLogin {
    domain: Arc<ResumptionDomain>,
}

impl fmt::Debug for BoundLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BoundLogin")
    }
}

impl Drop for BoundLogin {
    fn drop(&mut self) {
        self.domain.unbind();
    }
}

impl ProducesTickets for ResumptionDomain {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        MAX_LIFETIME_SECS
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.key.encrypt(plain)
    }

    /// This session's own tickets first; then, while logged in, those of the user's other
    /// live sessions from the same address.
    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        self.key.decrypt(cipher).or_else(|| {
            self.siblings()
                .iter()
                .find_map(|sibling| sibling.key.decrypt(cipher))
        })
    }
}

impl StoresServerSessions for ResumptionDomain {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        self.cache.put(key, value)
    }

    /// TLS 1.2 session IDs, looked up like tickets: own first, then the user's siblings.
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.cache.get(key).or_else(|| {
            self.siblings()
                .iter()
                .find_map(|sibling| sibling.cache.get(key))
        })
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.cache.take(key)
    }

    fn can_cache(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(user: &str, ip: &str) -> UserBinding {
        UserBinding {
            host: None,
            user: user.into(),
            ip: ip.parse().unwrap(),
        }
    }

    #[test]
    fn tickets_are_shared_only_between_live_logins_of_one_user_and_address() {
        let siblings = Arc::new(Siblings::default());
        let a = ResumptionDomain::new().unwrap();
        let b = ResumptionDomain::new().unwrap();
        let other_user = ResumptionDomain::new().unwrap();
        let other_ip = ResumptionDomain::new().unwrap();
        let ticket_b = b.encrypt(b"b's session").unwrap();
        let ticket_user = other_user.encrypt(b"bob's session").unwrap();
        let ticket_ip = other_ip.encrypt(b"alice elsewhere").unwrap();

        // Before login, each domain opens only its own tickets.
        assert_eq!(b.decrypt(&ticket_b).unwrap(), b"b's session");
        assert!(a.decrypt(&ticket_b).is_none());

        let login_a = a.bind(&siblings, binding("alice", "192.0.2.1"));
        let login_b = b.bind(&siblings, binding("alice", "192.0.2.1"));
        let _bob = other_user.bind(&siblings, binding("bob", "192.0.2.1"));
        let _elsewhere = other_ip.bind(&siblings, binding("alice", "192.0.2.9"));
        assert_eq!(a.decrypt(&ticket_b).unwrap(), b"b's session");
        assert!(a.decrypt(&ticket_user).is_none(), "another user's ticket");
        assert!(
            a.decrypt(&ticket_ip).is_none(),
            "the same user from elsewhere"
        );
        assert!(a.decrypt(b"garbage").is_none());

        // A session that logs out (REIN) or ends takes its tickets with it.
        drop(login_b);
        assert!(a.decrypt(&ticket_b).is_none());
        let login_b = b.bind(&siblings, binding("alice", "192.0.2.1"));
        assert!(a.decrypt(&ticket_b).is_some());
        drop(login_a);
        assert!(
            a.decrypt(&ticket_b).is_none(),
            "a logged-out session shares nothing"
        );
        drop(login_b);
        assert!(siblings
            .lock()
            .get(&binding("alice", "192.0.2.1"))
            .is_none());
    }

    #[test]
    fn tls12_session_ids_follow_the_same_rule() {
        let siblings = Arc::new(Siblings::default());
        let a = ResumptionDomain::new().unwrap();
        let b = ResumptionDomain::new().unwrap();
        assert!(b.put(b"id".to_vec(), b"state".to_vec()));
        assert!(a.get(b"id").is_none());
        let _a = a.bind(&siblings, binding("alice", "::1"));
        let _b = b.bind(&siblings, binding("alice", "::1"));
        assert_eq!(a.get(b"id").unwrap(), b"state");
    }
}
