//! The sessions open now, as the admin API lists and ends them: who, from where, over
//! which TLS, and the transfer in progress with its bytes so far.
//!
//! Each session registers itself when its connection is accepted and is removed when it
//! ends ([`Registered`] is the guard); it updates its entry at the few moments that change
//! it (TLS, login, a transfer's start and end). Ending a session cancels its token: the
//! session answers `421` and closes, stopping a transfer in progress first.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// The sessions open now, by number.
#[derive(Debug, Default)]
pub struct SessionRegistry {
    sessions: Mutex<BTreeMap<u64, Arc<SessionEntry>>>,
}

/// One open session.
#[derive(Debug)]
pub struct SessionEntry {
    id: u64,
    client: SocketAddr,
    connected: SystemTime,
    state: Mutex<SessionState>,
    ended: CancellationToken,
}

#[derive(Debug, Default)]
struct SessionState {
    user: Option<String>,
    host: Option<String>,
    tls: Option<String>,
    transfer: Option<TransferInProgress>,
}

#[derive(Debug)]
struct TransferInProgress {
    command: &'static str,
    path: String,
    started: SystemTime,
    bytes: Arc<AtomicU64>,
}

/// A session as the admin API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct SessionInfo {
    /// The session's number (as in the log).
    pub id: u64,
    /// The client's address and port.
    pub client: String,
    /// When it connected, seconds since the Unix epoch.
    pub connected: u64,
    /// The logged-in user, if any.
    pub user: Option<String>,
    /// The virtual host, if one was chosen.
    pub host: Option<String>,
    /// The control connection's TLS version (`TLSv1_3`), if TLS is on.
    pub tls: Option<String>,
    /// The transfer in progress, if any.
    pub transfer: Option<TransferInfo>,
}

/// A transfer in progress as the admin API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct TransferInfo {
    /// `RETR`, `STOR`, `LIST`, ...
    pub command: &'static str,
    /// The path as the user sees it.
    pub path: String,
    /// When it started, seconds since the Unix epoch.
    pub started: u64,
    /// Bytes moved so far.
    pub bytes: u64,
}

/// An IPv4-mapped IPv6 address as its IPv4 address.
fn canonical(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map(std::net::IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

fn unix(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl SessionRegistry {
    /// Registers a session that just connected; it stays listed while the guard lives.
    pub fn register(self: &Arc<Self>, id: u64, client: SocketAddr) -> Registered {
        let entry = Arc::new(SessionEntry {
            id,
            client,
            connected: SystemTime::now(),
            state: Mutex::default(),
            ended: CancellationToken::new(),
        });
        self.lock().insert(id, entry.clone());
        Registered {
            registry: self.clone(),
            entry,
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, Arc<SessionEntry>>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The sessions open now, by number.
    pub fn list(&self) -> Vec<SessionInfo> {
        self.lock().values().map(|entry| entry.info()).collect()
    }

    /// Ends the session `id`; whether it was open.
    pub fn end(&self, id: u64) -> bool {
        match self.lock().get(&id) {
            Some(entry) => {
                entry.ended.cancel();
                true
            }
            None => false,
        }
    }

    /// Ends every session of the address `ip` (after a ban); how many.
    pub fn end_from(&self, ip: std::net::IpAddr, limiter: &crate::limits::Limiter) -> usize {
        let counted = |ip: std::net::IpAddr| limiter.counted_ip(canonical(ip));
        let ip = counted(ip);
        let sessions = self.lock();
        let mut ended = 0;
        for entry in sessions.values() {
            if counted(entry.client.ip()) == ip {
                entry.ended.cancel();
                ended += 1;
            }
        }
        ended
    }

    /// How many sessions are open.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl SessionEntry {
    fn state(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn info(&self) -> SessionInfo {
        let state = self.state();
        SessionInfo {
            id: self.id,
            client: self.client.to_string(),
            connected: unix(self.connected),
            user: state.user.clone(),
            host: state.host.clone(),
            tls: state.tls.clone(),
            transfer: state.transfer.as_ref().map(|t| TransferInfo {
                command: t.command,
                path: t.path.clone(),
                started: unix(t.started),
                bytes: t.bytes.load(Ordering::Relaxed),
            }),
        }
    }
}

/// A session's entry in the registry, removed when this is dropped.
#[derive(Debug)]
pub struct Registered {
    registry: Arc<SessionRegistry>,
    entry: Arc<SessionEntry>,
}

impl Registered {
    /// Cancelled when the administrator ends the session.
    pub fn ended(&self) -> CancellationToken {
        self.entry.ended.clone()
    }

    /// The control connection is now protected by TLS `version`.
    pub fn set_tls(&self, version: Option<String>) {
        self.entry.state().tls = version;
    }

    /// `user` logged in (on `host`), or logged out (`None`).
    pub fn set_user(&self, user: Option<String>, host: Option<String>) {
        let mut state = self.entry.state();
        state.user = user;
        state.host = host;
    }

    /// A transfer started; its byte count is read from `bytes` until it ends.
    pub fn transfer_started(&self, command: &'static str, path: &str, bytes: Arc<AtomicU64>) {
        self.entry.state().transfer = Some(TransferInProgress {
            command,
            path: path.to_string(),
            started: SystemTime::now(),
            bytes,
        });
    }

    /// The transfer ended.
    pub fn transfer_ended(&self) {
        self.entry.state().transfer = None;
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.entry.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_listed_while_registered_and_can_be_ended() {
        let registry = Arc::new(SessionRegistry::default());
        let one = registry.register(1, "192.0.2.1:5000".parse().unwrap());
        let two = registry.register(2, "[::ffff:192.0.2.2]:5001".parse().unwrap());
        one.set_user(Some("alice".into()), None);
        let bytes = Arc::new(AtomicU64::new(0));
        one.transfer_started("RETR", "/f", bytes.clone());
        bytes.store(42, Ordering::Relaxed);
        let listed = registry.list();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].user.as_deref(), Some("alice"));
        assert_eq!(listed[0].transfer.as_ref().map(|t| t.bytes), Some(42));
        assert!(registry.end(2));
        assert!(two.ended().is_cancelled());
        assert!(!one.ended().is_cancelled());
        let limiter = crate::limits::Limiter::new(crate::config::Limits::default());
        assert_eq!(registry.end_from("192.0.2.1".parse().unwrap(), &limiter), 1);
        assert!(one.ended().is_cancelled());
        drop(two);
        assert!(!registry.end(2));
        assert_eq!(registry.len(), 1);
    }
}
