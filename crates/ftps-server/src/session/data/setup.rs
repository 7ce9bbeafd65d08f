//! Data connection set-up: `PASV`, `PORT` (RFC 959 §4.1.2), `EPSV`, `EPRT` (RFC 2428).
//!
//! Security rules, applied before a single byte of data moves (the connection itself is
//! made and checked in [`super::connect`]):
//! - one passive listener per session: a new PASV/EPSV/PORT/EPRT closes the old one, and a
//!   transfer consumes it; an unused one closes after `timeouts.data_connect`;
//! - active targets must be the client's own IP and a port >= 1024 (no FTP bounce, RFC 2577);
//! - a fresh TLS 1.3 ticket goes out ahead of every reply that announces a data connection.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use ftps_proto::address;
use ftps_proto::command::EpsvArg;
use ftps_proto::ReplyCode;
use rand::Rng;
use tokio::net::{TcpListener, TcpSocket};
use tracing::warn;

use super::DataSetup;
use crate::session::state::LoggedIn;
use crate::session::{canonical_ip, Result, Session};

impl Session {
    pub(in crate::session) async fn cmd_pasv(&mut self) -> Result {
        if self.params.epsv_all {
            return self
                .reply(ReplyCode::BAD_SEQUENCE, "EPSV ALL is in effect; use EPSV.")
                .await;
        }
        let local_ip = canonical_ip(self.local.ip());
        let IpAddr::V4(local_v4) = local_ip else {
            return self
                .reply(
                    ReplyCode::CANT_OPEN_DATA,
                    "PASV cannot describe an IPv6 address; use EPSV.",
                )
                .await;
        };
        self.params.data = DataSetup::None;
        let listener = match self.bind_passive(local_ip) {
            Ok(l) => l,
            Err(e) => return self.passive_failed(e).await,
        };
        let port = listener.local_addr()?.port();
        let announced = self.announced_ipv4(local_v4).await;
        self.params.data = DataSetup::Passive(
            listener,
            tokio::time::Instant::now(),
            self.shared.passive_ports.opened(),
        );
        self.supply_ticket();
        self.reply(
            ReplyCode::PASSIVE,
            address::format_pasv_reply(std::net::SocketAddrV4::new(announced, port)),
        )
        .await
    }

    pub(in crate::session) async fn cmd_epsv(&mut self, arg: EpsvArg) -> Result {
        let local_ip = canonical_ip(self.local.ip());
        let family = if local_ip.is_ipv4() { 1 } else { 2 };
        match arg {
            EpsvArg::All => {
                self.params.epsv_all = true;
                return self.reply(ReplyCode::OK, "EPSV ALL ok.").await;
            }
            EpsvArg::Protocol(p) if p != family => {
                return self
                    .reply(
                        ReplyCode::EXTENDED_PORT_FAILURE,
                        format!("Network protocol not supported, use ({family})."),
                    )
                    .await;
            }
            _ => {}
        }
        self.params.data = DataSetup::None;
        let listener = match self.bind_passive(local_ip) {
            Ok(l) => l,
            Err(e) => return self.passive_failed(e).await,
        };
        let port = listener.local_addr()?.port();
        self.params.data = DataSetup::Passive(
            listener,
            tokio::time::Instant::now(),
            self.shared.passive_ports.opened(),
        );
        self.supply_ticket();
        self.reply(
            ReplyCode::EXTENDED_PASSIVE,
            address::format_epsv_reply(port),
        )
        .await
    }

    /// `PORT` and `EPRT`.
    pub(in crate::session) async fn cmd_active(
        &mut self,
        user: &LoggedIn,
        target: SocketAddr,
        verb: &str,
    ) -> Result {
        if !self.listener.active_enabled {
            return self
                .reply(
                    ReplyCode::NOT_IMPLEMENTED,
                    "Active mode is disabled on this server; use EPSV or PASV.",
                )
                .await;
        }
        if self.params.epsv_all {
            return self
                .reply(ReplyCode::BAD_SEQUENCE, "EPSV ALL is in effect; use EPSV.")
                .await;
        }
        self.params.data = DataSetup::None;
        let fxp = user.allow_fxp();
        let target_ip = canonical_ip(target.ip());
        if target_ip != canonical_ip(self.peer.ip()) {
            if !fxp {
                warn!(target = %target, "refused active-mode target that is not the client (FTP bounce)");
                return self
                    .reply(
                        ReplyCode::PARAMETER_NOT_IMPLEMENTED,
                        "Refused: the data connection target must be your own address.",
                    )
                    .await;
            }
            if is_internal(target_ip) && !self.shared.config.active.fxp_to_internal_addresses {
                warn!(target = %target, "refused FXP target on an internal address");
                return self
                    .reply(
                        ReplyCode::PARAMETER_NOT_IMPLEMENTED,
                        "Refused: site-to-site transfers may not target internal addresses.",
                    )
                    .await;
            }
        }
        if target.port() < 1024 {
            return self
                .reply(
                    ReplyCode::PARAMETER_NOT_IMPLEMENTED,
                    "Refused: the data connection port must be 1024 or above.",
                )
                .await;
        }
        self.params.data = DataSetup::Active(target);
        self.supply_ticket();
        self.reply(ReplyCode::OK, format!("{verb} command successful."))
            .await
    }

    /// Puts a fresh TLS 1.3 ticket on the control connection ahead of the reply that
    /// announces a data connection, so that the client always has one for it.
    fn supply_ticket(&mut self) {
        if self.security.data_private() {
            self.control
                .queue_tls13_tickets(crate::tls::TICKETS_PER_DATA_CONNECTION);
        }
    }

    async fn passive_failed(&mut self, e: io::Error) -> Result {
        warn!(error = %e, "cannot open a passive port");
        self.reply(
            ReplyCode::CANT_OPEN_DATA,
            "Cannot open a passive port; try again.",
        )
        .await
    }

    /// Binds a passive listener on the control connection's local address, on a random port
    /// of the configured range, or else of the system's ephemeral range.
    ///
    /// Ports are chosen here rather than with bind(0): after many transfers the system
    /// holds thousands of connections in TIME_WAIT, and the kernel's search for a free
    /// port walks them for every candidate (80 % of the server's time in the small-file
    /// benchmark, with 36,000 of them), while binding one chosen port checks only that
    /// port's own connections.
    fn bind_passive(&self, ip: IpAddr) -> io::Result<TcpListener> {
        let configured = self.shared.config.passive.ports.clone();
        let (lo, hi) = match &configured {
            Some(range) => (*range.start(), *range.end()),
            None => ephemeral_ports(),
        };
        let span = u32::from(hi - lo) + 1;
        // A configured range is walked to its end; the ephemeral range is sampled.
        let tries = if configured.is_some() {
            span
        } else {
            span.min(64)
        };
        // Start at a random port so ports are not predictable, then walk the range.
        let start = rand::thread_rng().gen_range(0..span);
        let mut last = io::Error::new(io::ErrorKind::AddrInUse, "passive port range exhausted");
        for i in 0..tries {
            let port = lo + ((start + i) % span) as u16;
            match listen_on(SocketAddr::new(ip, port)) {
                Ok(l) => return Ok(l),
                Err(e) => last = e,
            }
        }
        if configured.is_some() {
            return Err(last);
        }
        // Without a configured range, the system may still find a port.
        listen_on(SocketAddr::new(ip, 0))
    }

    /// The IPv4 address to announce in a 227 reply.
    async fn announced_ipv4(&self, local: Ipv4Addr) -> Ipv4Addr {
        let Some(name) = self.shared.config.passive.advertised_address.as_deref() else {
            // Behind a balancer that forwards this node's passive range: its address.
            if self.shared.config.proxy_protocol.announce_destination {
                if let Some(IpAddr::V4(v4)) = self.connected_to.map(|a| canonical_ip(a.ip())) {
                    return v4;
                }
            }
            return local;
        };
        if let Ok(ip) = name.parse::<Ipv4Addr>() {
            return ip;
        }
        let lookup =
            tokio::time::timeout(Duration::from_secs(5), tokio::net::lookup_host((name, 0))).await;
        if let Ok(Ok(addrs)) = lookup {
            for addr in addrs {
                if let IpAddr::V4(v4) = addr.ip() {
                    return v4;
                }
            }
        }
        warn!(
            name,
            "cannot resolve the advertised address to IPv4; announcing the local address"
        );
        local
    }

    /// Closes any pending data listener (e.g. after a refused transfer).
    pub(super) fn drop_data(&mut self) {
        self.params.data = DataSetup::None;
    }

    /// When the pending passive listener expires unused, if there is one.
    pub(in crate::session) fn passive_expiry(&self) -> Option<tokio::time::Instant> {
        match &self.params.data {
            DataSetup::Passive(_, opened, _) => {
                Some(*opened + Duration::from_secs(self.shared.config.timeouts.data_connect))
            }
            _ => None,
        }
    }
}

/// Whether `ip` is not a public unicast address: loopback, private (RFC 1918, unique local),
/// link-local, shared (CGNAT), unspecified, broadcast, multicast or documentation ranges.
/// FXP to such a target would let a user reach the server's own machine or its network.
fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || a >= 240
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8
        }
    }
}

/// Binds a passive listener. SO_REUSEADDR lets it take a port whose earlier connections
/// are in TIME_WAIT; on Linux it never lets a second socket listen on the same address and
/// port (that would take SO_REUSEPORT), so a passive port still belongs to one session.
fn listen_on(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1)
}

/// The system's range of ephemeral ports (`net.ipv4.ip_local_port_range`, which applies to
/// IPv6 too), read once.
fn ephemeral_ports() -> (u16, u16) {
    static RANGE: std::sync::OnceLock<(u16, u16)> = std::sync::OnceLock::new();
    *RANGE.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|text| parse_port_range(&text))
            .unwrap_or((32768, 60999))
    })
}

/// Parses "low high" as the kernel prints it.
fn parse_port_range(text: &str) -> Option<(u16, u16)> {
    let mut parts = text.split_whitespace().map(str::parse::<u16>);
    let (lo, hi) = (parts.next()?.ok()?, parts.next()?.ok()?);
    (lo >= 1024 && lo <= hi).then_some((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_recognised() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "2001:db8::1",
        ] {
            assert!(is_internal(internal.parse().unwrap()), "{internal}");
        }
        for public in ["8.8.8.8", "193.0.14.129", "100.128.0.1", "2a00:1450::1"] {
            assert!(!is_internal(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn port_range_as_the_kernel_prints_it() {
        assert_eq!(parse_port_range("32768\t60999\n"), Some((32768, 60999)));
        assert_eq!(parse_port_range("1024 1024"), Some((1024, 1024)));
        assert_eq!(parse_port_range("60999 32768"), None);
        assert_eq!(parse_port_range("80 90"), None);
        assert_eq!(parse_port_range("x"), None);
    }

    #[tokio::test]
    async fn a_passive_port_has_one_listener() {
        let first = listen_on("127.0.0.1:0".parse().unwrap()).unwrap();
        let taken = first.local_addr().unwrap();
        let second = listen_on(taken);
        assert_eq!(
            second.map(|_| ()).unwrap_err().kind(),
            io::ErrorKind::AddrInUse
        );
    }
}
