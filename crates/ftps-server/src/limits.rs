//! Abuse limits: how many sessions may be open (in all, per IP, per user), and failed-login
//! tracking per IP and per user name with growing delays and temporary bans.
//!
//! An IPv6 client counts as its network of `limits.ipv6_prefix_length` bits (a /64 by
//! default: one host usually holds all of it), and a user is a name on one virtual host
//! ([`UserKey`]): `admin` on one host cannot reset or exhaust `admin` on another. Names are
//! tracked whether or not the user exists, so a ban says nothing about which names are real.
//! State is bounded: entries older than the failure window are pruned.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::config::Limits;

pub mod shared;
pub mod size;

/// Tracked entries above which expired ones are pruned.
const PRUNE_ABOVE: usize = 10_000;
/// The failed-login delay doubles per recent failure up to this factor.
const MAX_DELAY_FACTOR: u32 = 8;

#[derive(Default)]
struct Failures {
    count: u32,
    first: Option<Instant>,
    banned_until: Option<Instant>,
}

impl Failures {
    fn banned(&self, now: Instant) -> bool {
        self.banned_until.is_some_and(|t| t > now)
    }
}

/// A user as the limits count it: a name on a virtual host (`None`: the server's own users).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UserKey {
    /// The virtual host's name.
    pub host: Option<String>,
    /// The user name as sent.
    pub name: String,
}

impl UserKey {
    /// `name` on `host`.
    pub fn new(host: Option<&str>, name: &str) -> UserKey {
        UserKey {
            host: host.map(str::to_owned),
            name: name.to_owned(),
        }
    }
}

#[derive(Default)]
struct State {
    sessions: u32,
    per_ip: HashMap<IpAddr, u32>,
    per_user: HashMap<UserKey, u32>,
    ip_failures: HashMap<IpAddr, Failures>,
    user_failures: HashMap<UserKey, Failures>,
}

/// Shared limit bookkeeping.
pub struct Limiter {
    limits: Limits,
    state: Mutex<State>,
}

/// Why a connection or login is refused (reply 421 and close).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Too many sessions in all.
    ServerFull,
    /// Too many sessions from this IP.
    TooManyFromIp,
    /// Too many sessions for this user.
    TooManyForUser,
    /// Banned after failed logins.
    Banned,
}

impl Refusal {
    /// The text of the 421 reply.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::ServerFull => "Too many connections; try again later.",
            Refusal::TooManyFromIp => "Too many connections from your address.",
            Refusal::TooManyForUser => "Too many sessions for this user.",
            Refusal::Banned => "Too many failed logins; try again later.",
        }
    }
}

/// What a failed login leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureOutcome {
    /// How long to wait before answering.
    pub delay: Duration,
    /// Whether the IP or name is now banned (421 and close).
    pub banned: bool,
}

impl Limiter {
    /// A limiter enforcing `limits`.
    pub fn new(limits: Limits) -> Arc<Limiter> {
        Arc::new(Limiter {
            limits,
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves counts that are still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn window(&self) -> Duration {
        Duration::from_secs(self.limits.failure_window_seconds)
    }

    /// The address the per-IP limits count: an IPv4 address itself, an IPv6 address's
    /// network of `ipv6_prefix_length` bits.
    pub fn counted_ip(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(_) => ip,
            IpAddr::V6(v6) => {
                let bits = u32::from(self.limits.ipv6_prefix_length.min(128));
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
            }
        }
    }

    /// Addresses and user names banned now.
    pub fn active_bans(&self) -> usize {
        let now = Instant::now();
        let state = self.state();
        state.ip_failures.values().filter(|f| f.banned(now)).count()
            + state
                .user_failures
                .values()
                .filter(|f| f.banned(now))
                .count()
    }

    /// Bans `ip` (its counted network, see [`Limiter::counted_ip`]) for `ban_for`, as
    /// repeated failures would; returns the address banned.
    pub fn ban_ip(&self, ip: IpAddr, ban_for: Duration) -> IpAddr {
        let ip = self.counted_ip(ip);
        let until = Instant::now() + ban_for;
        let mut state = self.state();
        let failures = state.ip_failures.entry(ip).or_default();
        failures.banned_until = Some(failures.banned_until.map_or(until, |t| t.max(until)));
        ip
    }

    /// Lifts the ban of `ip` and forgets its failures; whether it was banned.
    pub fn unban_ip(&self, ip: IpAddr) -> bool {
        let ip = self.counted_ip(ip);
        let now = Instant::now();
        self.state()
            .ip_failures
            .remove(&ip)
            .is_some_and(|f| f.banned(now))
    }

    /// The addresses banned now, with the seconds left of each ban.
    pub fn banned_ips(&self) -> Vec<(IpAddr, u64)> {
        let now = Instant::now();
        let mut bans: Vec<(IpAddr, u64)> = self
            .state()
            .ip_failures
            .iter()
            .filter_map(|(ip, f)| {
                let until = f.banned_until.filter(|t| *t > now)?;
                Some((*ip, (until - now).as_secs_f64().ceil() as u64))
            })
            .collect();
        bans.sort();
        bans
    }

    /// Bans the name `user` for `ban_for` (or longer, if it already is).
    pub fn ban_user(&self, user: &UserKey, ban_for: Duration) {
        let until = Instant::now() + ban_for;
        let mut state = self.state();
        let failures = state.user_failures.entry(user.clone()).or_default();
        failures.banned_until = Some(failures.banned_until.map_or(until, |t| t.max(until)));
    }

    /// Lifts the ban of the name `user` and forgets its failures; whether it was banned.
    pub fn unban_user(&self, user: &UserKey) -> bool {
        let now = Instant::now();
        self.state()
            .user_failures
            .remove(user)
            .is_some_and(|f| f.banned(now))
    }

    /// The names banned now, with the seconds left of each ban.
    pub fn banned_users(&self) -> Vec<(UserKey, u64)> {
        let now = Instant::now();
        self.state()
            .user_failures
            .iter()
            .filter_map(|(user, f)| {
                let until = f.banned_until.filter(|t| *t > now)?;
                Some((user.clone(), (until - now).as_secs_f64().ceil() as u64))
            })
            .collect()
    }

    /// Whether connections and logins from `ip` are currently refused.
    pub fn ip_banned(&self, ip: IpAddr) -> bool {
        let ip = self.counted_ip(ip);
        let now = Instant::now();
        self.state()
            .ip_failures
            .get(&ip)
            .is_some_and(|f| f.banned(now))
    }

    /// Admits a new connection from `ip`, or says why not. The permit gives the slot back
    /// when dropped.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<SessionPermit, Refusal> {
        let ip = self.counted_ip(ip);
        let now = Instant::now();
        let mut state = self.state();
        if state.ip_failures.get(&ip).is_some_and(|f| f.banned(now)) {
            return Err(Refusal::Banned);
        }
        if state.sessions >= self.limits.max_sessions {
            return Err(Refusal::ServerFull);
        }
        let per_ip = state.per_ip.entry(ip).or_insert(0);
        if *per_ip >= self.limits.max_sessions_per_ip {
            return Err(Refusal::TooManyFromIp);
        }
        *per_ip += 1;
        state.sessions += 1;
        Ok(SessionPermit {
            limiter: self.clone(),
            ip,
            user: None,
        })
    }

    /// Whether logins as `user` are currently refused.
    pub fn user_banned(&self, user: &UserKey) -> bool {
        let now = Instant::now();
        self.state()
            .user_failures
            .get(user)
            .is_some_and(|f| f.banned(now))
    }

    /// Records a failed login from `ip` as `user`.
    pub fn record_failure(&self, ip: IpAddr, user: &UserKey) -> FailureOutcome {
        let ip = self.counted_ip(ip);
        let now = Instant::now();
        let window = self.window();
        let ban_for = Duration::from_secs(self.limits.ban_seconds);
        let mut state = self.state();
        if state.ip_failures.len() > PRUNE_ABOVE || state.user_failures.len() > PRUNE_ABOVE {
            let stale = |f: &Failures| !f.banned(now) && f.first.is_none_or(|t| now - t > window);
            state.ip_failures.retain(|_, f| !stale(f));
            state.user_failures.retain(|_, f| !stale(f));
        }
        let bump = |f: &mut Failures, max: u32| -> (u32, bool) {
            if f.first.is_none_or(|t| now - t > window) {
                *f = Failures {
                    count: 0,
                    first: Some(now),
                    banned_until: f.banned_until.filter(|t| *t > now),
                };
            }
            f.count += 1;
            if f.count >= max {
                f.banned_until = Some(now + ban_for);
            }
            (f.count, f.banned(now))
        };
        let (ip_count, ip_banned) = bump(
            state.ip_failures.entry(ip).or_default(),
            self.limits.max_login_failures_per_ip,
        );
        let (user_count, user_banned) = bump(
            state.user_failures.entry(user.clone()).or_default(),
            self.limits.max_login_failures_per_user,
        );
        let recent = ip_count.max(user_count).max(1);
        let factor = 1u32 << (recent - 1).min(MAX_DELAY_FACTOR.trailing_zeros());
        FailureOutcome {
            delay: Duration::from_millis(self.limits.login_failure_delay_ms) * factor,
            banned: ip_banned || user_banned,
        }
    }

    /// A successful login: the name's failure count on that host starts again. (The IP's
    /// does not, so one valid account cannot be used to reset an IP's guessing budget.)
    pub fn record_success(&self, user: &UserKey) {
        self.state().user_failures.remove(user);
    }
}

/// One admitted session; gives its slots back when dropped.
pub struct SessionPermit {
    limiter: Arc<Limiter>,
    /// As counted (an IPv6 network).
    ip: IpAddr,
    user: Option<UserKey>,
}

impl SessionPermit {
    /// Counts this session against `user`'s limit, or refuses.
    pub fn login(&mut self, user: &UserKey) -> Result<(), Refusal> {
        self.login_limited(user, None)
    }

    /// [`SessionPermit::login`] with the user's own session limit (`max_sessions` of its
    /// entry in the users file) in place of `max_sessions_per_user` when it has one.
    pub fn login_limited(&mut self, user: &UserKey, own: Option<u32>) -> Result<(), Refusal> {
        let max = own.unwrap_or(self.limiter.limits.max_sessions_per_user);
        let mut state = self.limiter.state();
        let count = state.per_user.entry(user.clone()).or_insert(0);
        if *count >= max {
            return Err(Refusal::TooManyForUser);
        }
        *count += 1;
        drop(state);
        self.user = Some(user.clone());
        Ok(())
    }
}

impl SessionPermit {
    /// The session logged out (`REIN`): its user's slot is free again.
    pub fn logout(&mut self) {
        if let Some(user) = self.user.take() {
            release_user(&mut self.limiter.state(), &user);
        }
    }
}

fn release_user(state: &mut State, user: &UserKey) {
    if let Some(n) = state.per_user.get_mut(user) {
        *n -= 1;
        if *n == 0 {
            state.per_user.remove(user);
        }
    }
}

impl Drop for SessionPermit {
    fn drop(&mut self) {
        let mut state = self.limiter.state();
        state.sessions = state.sessions.saturating_sub(1);
        if let Some(n) = state.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                state.per_ip.remove(&self.ip);
            }
        }
        if let Some(user) = self.user.take() {
            release_user(&mut state, &user);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            login_failure_delay_ms: 100,
            max_sessions: 3,
            max_sessions_per_ip: 2,
            max_sessions_per_user: 1,
            max_login_failures_per_ip: 4,
            max_login_failures_per_user: 3,
            ..Limits::default()
        }
    }

    fn user(name: &str) -> UserKey {
        UserKey::new(None, name)
    }

    #[test]
    fn session_counts_are_enforced_and_released() {
        let l = Limiter::new(limits());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let p1 = l.admit(a).unwrap();
        let mut p2 = l.admit(a).unwrap();
        assert_eq!(l.admit(a).err(), Some(Refusal::TooManyFromIp));
        let _p3 = l.admit(b).unwrap();
        assert_eq!(l.admit(b).err(), Some(Refusal::ServerFull));
        drop(p1);
        let mut p4 = l.admit(a).unwrap();
        p2.login(&user("alice")).unwrap();
        assert_eq!(p4.login(&user("alice")), Err(Refusal::TooManyForUser));
        drop(p2);
        p4.login(&user("alice")).unwrap();
    }

    #[test]
    fn a_users_own_limit_replaces_the_servers() {
        let l = Limiter::new(limits_with_per_user(1));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let mut permits: Vec<_> = (0..4).map(|_| l.admit(ip).unwrap()).collect();
        // Three for a user whose entry allows three, then the fourth is refused.
        for p in &mut permits[..3] {
            p.login_limited(&user("team"), Some(3)).unwrap();
        }
        assert_eq!(
            permits[3].login_limited(&user("team"), Some(3)),
            Err(Refusal::TooManyForUser)
        );
        // A lower own limit holds below the server's too.
        let l = Limiter::new(limits_with_per_user(5));
        let mut p = l.admit(ip).unwrap();
        let mut q = l.admit(ip).unwrap();
        p.login_limited(&user("solo"), Some(1)).unwrap();
        assert_eq!(
            q.login_limited(&user("solo"), Some(1)),
            Err(Refusal::TooManyForUser)
        );
        // Others keep the server's limit.
        q.login_limited(&user("other"), None).unwrap();
    }

    fn limits_with_per_user(max: u32) -> Limits {
        Limits {
            max_sessions_per_user: max,
            ..Limits::default()
        }
    }

    #[test]
    fn logout_gives_the_users_slot_back() {
        // REIN must not leak the per-user count: after it, the account is usable again.
        let l = Limiter::new(limits());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let mut p = l.admit(ip).unwrap();
        let mut q = l.admit(ip).unwrap();
        for _ in 0..5 {
            p.login(&user("alice")).unwrap();
            p.logout();
        }
        q.login(&user("alice")).unwrap();
        assert_eq!(p.login(&user("alice")), Err(Refusal::TooManyForUser));
        q.logout();
        p.login(&user("alice")).unwrap();
    }

    #[test]
    fn an_ipv6_network_counts_as_one_address() {
        let l = Limiter::new(limits());
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let _p1 = l.admit(a).unwrap();
        let _p2 = l.admit(b).unwrap();
        assert_eq!(l.admit(a).err(), Some(Refusal::TooManyFromIp));
        let _p3 = l.admit(other).unwrap();
        // Failures and bans too.
        let l = Limiter::new(limits());
        for i in 0..4u16 {
            let ip = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, i, 0, 0, 1));
            l.record_failure(ip, &user(&format!("n{i}")));
        }
        assert!(l.ip_banned(a) && l.ip_banned(b));
        assert!(!l.ip_banned(other));
        assert_eq!(
            l.counted_ip("10.1.2.3".parse().unwrap()),
            "10.1.2.3".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn a_name_on_one_host_is_not_the_same_name_on_another() {
        let l = Limiter::new(limits());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let here = UserKey::new(Some("a.example"), "admin");
        let there = UserKey::new(Some("b.example"), "admin");
        for _ in 0..3 {
            l.record_failure(ip, &here);
        }
        assert!(l.user_banned(&here));
        // A tenant logging in as its own admin resets nothing for the other host's admin.
        l.record_success(&there);
        assert!(l.user_banned(&here));
        assert!(!l.user_banned(&there));
        let mut p = l.admit("10.0.0.5".parse().unwrap()).unwrap();
        let mut q = l.admit("10.0.0.6".parse().unwrap()).unwrap();
        p.login(&here).unwrap();
        q.login(&there).unwrap();
    }

    #[test]
    fn delays_grow_then_ban() {
        let l = Limiter::new(limits());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let o1 = l.record_failure(ip, &user("x"));
        let o2 = l.record_failure(ip, &user("x"));
        assert_eq!(o1.delay, Duration::from_millis(100));
        assert_eq!(o2.delay, Duration::from_millis(200));
        assert!(!o2.banned && !l.user_banned(&user("x")));
        assert!(l.record_failure(ip, &user("x")).banned);
        assert!(l.user_banned(&user("x")));
        // Unknown and real names are treated alike; other names are not affected.
        assert!(!l.user_banned(&user("y")));
        assert!(l.record_failure(ip, &user("y")).banned);
        assert_eq!(l.admit(ip).err(), Some(Refusal::Banned));
        assert!(l.ip_banned(ip));
        assert!(l.admit("10.0.0.9".parse().unwrap()).is_ok());
    }
}
