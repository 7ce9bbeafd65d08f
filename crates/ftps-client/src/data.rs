//! Data connections: where to connect (`EPSV`, RFC 2428 §3, falling back to `PASV`, RFC 959
//! §4.1.2) or where to be connected to (`EPRT`, RFC 2428 §2, falling back to `PORT`), `REST`
//! (RFC 3659 §5), and securing each one with TLS that resumes the control connection's
//! session (RFC 4217 §10, and what strict servers require).

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use ftps_proto::address::{parse_epsv_reply, parse_pasv_reply};
use ftps_proto::command::EpsvArg;
use ftps_proto::{Command, ReplyCode};
use rustls::HandshakeKind;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::config::{DataMode, TlsVersions};
use crate::connect::Connector;
use crate::error::{Error, Result, SentCommand};
use crate::session::FtpsClient;

/// The TLS handshake of a data connection, under way once the transfer command is sent: the
/// client connects (passive) or accepts the server's connection (active), then handshakes.
pub(crate) type DataHandshake =
    Pin<Box<dyn Future<Output = io::Result<TlsStream<DataSocket>>> + Send>>;

/// A data connection's TCP stream with a read buffer under TLS. rustls asks its transport
/// for at most about one TLS record (16 KiB) at a time; with the buffer one `recvfrom`
/// takes whatever the socket holds, up to 256 KiB (a 256 MiB download: 1,046 calls
/// instead of 16,422).
pub(crate) type DataSocket = tokio::io::BufReader<TcpStream>;

/// Size of a data connection's read buffer.
const DATA_READ_BUFFER: usize = 256 * 1024;

fn buffered(tcp: TcpStream) -> DataSocket {
    tokio::io::BufReader::with_capacity(DATA_READ_BUFFER, tcp)
}

impl FtpsClient {
    /// Opens a data connection for `command` (sent here, between `REST` and the connection's
    /// TLS handshake, in the order each mode needs) and returns its handshake.
    pub(crate) async fn start_data_connection(
        &mut self,
        command: &Command,
        offset: u64,
    ) -> Result<DataHandshake> {
        let connector = if self.config.reuse_tls_session {
            TlsConnector::from(self.tls_config.clone())
        } else {
            let mut fresh = (*self.tls_config).clone();
            fresh.resumption = rustls::client::Resumption::disabled();
            TlsConnector::from(Arc::new(fresh))
        };
        let name = self.server_name.clone();
        let connect_limit = self.config.connect_timeout;
        match self.config.data_mode {
            DataMode::Passive => {
                let addr = self.passive_addr().await?;
                let tcp = match tokio::time::timeout(connect_limit, TcpStream::connect(addr)).await
                {
                    Ok(Ok(t)) => t,
                    Ok(Err(e)) => {
                        return Err(Error::Connect {
                            addr: format!("{addr} (data connection)"),
                            source: e,
                        })
                    }
                    Err(_) => {
                        return Err(Error::Timeout(format!(
                            "opening the data connection to {addr}"
                        )))
                    }
                };
                let _ = tcp.set_nodelay(true);
                self.rest(offset).await?;
                self.ctl.send(command).await?;
                Ok(Box::pin(async move {
                    connector.connect(name, buffered(tcp)).await
                }))
            }
            DataMode::Active => {
                let ip = self.config.active_address.unwrap_or(self.local.ip());
                let listener = TcpListener::bind((ip, 0))
                    .await
                    .map_err(|e| Error::io("listening for the active data connection", e))?;
                let addr = listener
                    .local_addr()
                    .map_err(|e| Error::io("listening for the active data connection", e))?;
                self.port_command(addr).await?;
                self.rest(offset).await?;
                self.ctl.send(command).await?;
                let server_ip = self.peer.ip();
                Ok(Box::pin(async move {
                    loop {
                        let (tcp, from) = listener.accept().await?;
                        if from.ip() != server_ip {
                            tracing::warn!(
                                "ignoring a data connection from {from}, not from the server"
                            );
                            continue;
                        }
                        let _ = tcp.set_nodelay(true);
                        return connector.connect(name, buffered(tcp)).await;
                    }
                }))
            }
        }
    }

    /// Counts a secured data connection and whether it resumed the control session, which it
    /// returns.
    pub(crate) fn record_data_connection(
        &mut self,
        tls: &TlsStream<DataSocket>,
        command: &Command,
        upload: bool,
    ) -> bool {
        if !upload {
            quick_ack(tls.get_ref().0.get_ref());
        }
        let resumed = tls.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed);
        self.data_connections += 1;
        if resumed {
            self.resumed_data_connections += 1;
        } else {
            tracing::debug!(
                "the data connection for {command} did not resume the control TLS session"
            );
        }
        self.last_resumed = Some(resumed);
        resumed
    }

    /// The address to connect to for a passive data connection.
    async fn passive_addr(&mut self) -> Result<SocketAddr> {
        if !self.epsv_broken {
            let epsv = Command::Epsv(EpsvArg::Default);
            let reply = self.run(&epsv).await?;
            if reply.code == ReplyCode::EXTENDED_PASSIVE {
                let port = parse_epsv_reply(&reply.text())
                    .map_err(|_| Error::Protocol(format!("cannot read EPSV reply {reply}")))?;
                return Ok(SocketAddr::new(self.peer.ip(), port));
            }
            if !reply.code.is_failure() {
                return Err(Error::reply_err(&epsv, reply));
            }
            tracing::debug!("EPSV refused ({reply}); using PASV from now on");
            self.epsv_broken = true;
        }
        if self.peer.is_ipv6() {
            return Err(Error::Protocol(
                "the server refused EPSV, and PASV cannot work over IPv6".into(),
            ));
        }
        let reply = self
            .run_expect(&Command::Pasv, |c| c == ReplyCode::PASSIVE)
            .await?;
        let addr = parse_pasv_reply(&reply.text())
            .map_err(|_| Error::Protocol(format!("cannot read PASV reply {reply}")))?;
        Ok(pasv_target(
            *addr.ip(),
            addr.port(),
            self.peer.ip(),
            self.config.nat_workaround,
        ))
    }

    /// `REST offset`, unless the transfer starts at the beginning.
    async fn rest(&mut self, offset: u64) -> Result<()> {
        if offset > 0 {
            self.run_expect(&Command::Rest(offset), |c| {
                c == ReplyCode::PENDING_FURTHER_INFO
            })
            .await?;
        }
        Ok(())
    }

    /// Tells the server where to connect: `EPRT`, or `PORT` where the server refuses `EPRT`
    /// and the address is IPv4.
    async fn port_command(&mut self, addr: SocketAddr) -> Result<()> {
        let eprt = Command::Eprt(addr);
        let reply = self.run(&eprt).await?;
        if reply.code.is_completion() {
            return Ok(());
        }
        match addr {
            SocketAddr::V4(v4) if reply.code.is_failure() => self
                .run_expect(&Command::Port(v4), |c| c.is_completion())
                .await
                .map(drop),
            _ => Err(Error::reply_err(SentCommand::verb(&eprt), reply)),
        }
    }

    /// rustls uses each TLS 1.3 ticket once. Servers that send no new ticket on some data
    /// connections (ProFTPD after uploads, Pure-FTPd never) would leave the next data
    /// connection unable to resume, which strict servers refuse. When that is about to happen,
    /// reconnect with TLS 1.2, whose session can be resumed any number of times.
    pub(crate) async fn keep_resumable(&mut self) {
        let tls13 = self
            .tls_info()
            .map(|i| i.version == "TLSv1_3")
            .unwrap_or(false);
        if !tls13
            || self.versions != TlsVersions::Tls12And13
            || !self.config.reuse_tls_session
            || self.store.tls13_tickets() > 0
        {
            return;
        }
        let Some((user, password)) = self.credentials.clone() else {
            return;
        };
        tracing::info!(
            "{} has no TLS 1.3 session ticket left for the next data connection; \
             reconnecting with TLS 1.2 so that data connections can resume the session",
            self.host
        );
        let cwd = self.pwd().await.ok();
        let connector = Connector::of(self);
        let attempt = async {
            let mut fresh = connector
                .connect_versions(&self.host, self.port, TlsVersions::Tls12Only)
                .await?;
            fresh.login(&user, &password).await?;
            if let Some(dir) = &cwd {
                fresh.cwd(dir).await?;
            }
            Ok::<FtpsClient, Error>(fresh)
        };
        match attempt.await {
            Ok(mut fresh) => {
                fresh.data_connections = self.data_connections;
                fresh.resumed_data_connections = self.resumed_data_connections;
                let old = std::mem::replace(self, fresh);
                let _ = old.quit().await;
            }
            Err(e) => tracing::debug!("reconnecting with TLS 1.2 failed ({e}); carrying on"),
        }
    }
}

/// Where to connect for a `227` reply: the NAT workaround replaces a private, loopback,
/// link-local or unspecified address that differs from the control peer's by the peer's.
pub fn pasv_target(ip: Ipv4Addr, port: u16, peer: IpAddr, nat_workaround: bool) -> SocketAddr {
    let unroutable =
        ip.is_private() || ip.is_loopback() || ip.is_link_local() || ip.is_unspecified();
    if ip.is_unspecified() || (nat_workaround && unroutable && IpAddr::V4(ip) != peer) {
        if IpAddr::V4(ip) != peer {
            tracing::debug!("PASV returned {ip}; connecting to the control address {peer} instead");
        }
        SocketAddr::new(peer, port)
    } else {
        SocketAddr::new(IpAddr::V4(ip), port)
    }
}

/// Leaves delayed-ACK mode on a download's data connection after its TLS handshake.
///
/// The client answered the server during the handshake, so Linux delays ACKs on that
/// connection; from then on the client only receives, no reply carries an ACK, and a
/// server that leaves Nagle's algorithm on for its data socket (Pure-FTPd) holds back its
/// close_notify after a short listing until the 40 ms delayed-ACK timer fires. Best effort:
/// other systems, or an error, leave the connection as it is.
fn quick_ack(tcp: &TcpStream) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let _ = socket2::SockRef::from(tcp).set_quickack(true);
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = tcp;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nat_workaround() {
        let public: IpAddr = "203.0.113.5".parse().unwrap();
        let t = pasv_target(Ipv4Addr::new(10, 0, 0, 2), 5000, public, true);
        assert_eq!(t, SocketAddr::new(public, 5000));
        let t = pasv_target(Ipv4Addr::new(10, 0, 0, 2), 5000, public, false);
        assert_eq!(t.ip(), IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
        let t = pasv_target(Ipv4Addr::new(0, 0, 0, 0), 5000, public, false);
        assert_eq!(t.ip(), public);
        let other: IpAddr = "198.51.100.1".parse().unwrap();
        let t = pasv_target(Ipv4Addr::new(198, 51, 100, 1), 5000, public, true);
        assert_eq!(t.ip(), other);
    }
}
