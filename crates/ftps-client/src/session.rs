//! One FTPS session: the [`FtpsClient`] type, what it knows about its connection, and the
//! command-reply exchange on the control connection (RFC 959 §4.2, §5.4).
//!
//! The session's other methods live with their concept: connecting and logging in in
//! `connect`, file commands in `commands`, data connections in `data`, transfers in
//! `transfer` and listings in `listing`.

use std::net::SocketAddr;
use std::sync::Arc;

use ftps_proto::{Command, Reply, ReplyCode};
use rustls::pki_types::ServerName;

use crate::config::{Config, TlsVersions};
use crate::control::{Control, Stream};
use crate::error::{format_fingerprint, Error, Result, SentCommand};
use crate::features::Features;
use crate::tls::{Recording, SessionStore, TlsSetup};

/// Details of the control connection's TLS session.
#[derive(Clone, Debug)]
pub struct TlsInfo {
    /// `TLSv1_3` or `TLSv1_2`.
    pub version: String,
    /// The cipher suite.
    pub cipher: String,
    /// The negotiated ALPN protocol, if any.
    pub alpn: Option<String>,
    /// SHA-256 fingerprint of the server certificate (`AB:CD:...`).
    pub fingerprint: Option<String>,
}

/// One FTPS session: a control connection and, during transfers, one data connection.
pub struct FtpsClient {
    pub(crate) ctl: Control,
    /// This connection's TLS configuration: its own session cache, shared with its data
    /// connections only.
    pub(crate) tls_config: Arc<rustls::ClientConfig>,
    pub(crate) recording: Arc<Recording>,
    pub(crate) store: Arc<SessionStore>,
    /// What the connection was made with, to make another one like it.
    pub(crate) setup: Arc<TlsSetup>,
    pub(crate) config: Arc<Config>,
    pub(crate) versions: TlsVersions,
    pub(crate) port: u16,
    pub(crate) credentials: Option<(String, String)>,
    pub(crate) server_name: ServerName<'static>,
    pub(crate) host: String,
    pub(crate) peer: SocketAddr,
    pub(crate) local: SocketAddr,
    pub(crate) features: Features,
    /// The server refused `EPSV` once; use `PASV` from then on.
    pub(crate) epsv_broken: bool,
    /// A transfer was started and not finished: the control connection is out of step.
    pub(crate) poisoned: bool,
    pub(crate) last_resumed: Option<bool>,
    pub(crate) data_connections: u64,
    pub(crate) resumed_data_connections: u64,
}

impl std::fmt::Debug for FtpsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FtpsClient")
            .field("host", &self.host)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl FtpsClient {
    /// What the server announced in `FEAT`.
    pub fn features(&self) -> &Features {
        &self.features
    }

    /// The control connection's peer address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The configuration this client was made with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether the last data connection resumed the control connection's TLS session.
    pub fn last_data_resumed(&self) -> Option<bool> {
        self.last_resumed
    }

    /// Data connections opened so far, and how many of them resumed the control session.
    pub fn data_connection_stats(&self) -> (u64, u64) {
        (self.data_connections, self.resumed_data_connections)
    }

    /// Whether an unfinished transfer made this connection unusable.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// TLS details of the control connection.
    pub fn tls_info(&self) -> Option<TlsInfo> {
        match &self.ctl.stream {
            Stream::Tls(s) => {
                let conn = s.get_ref().1;
                Some(TlsInfo {
                    version: conn
                        .protocol_version()
                        .map(|v| format!("{v:?}"))
                        .unwrap_or_default(),
                    cipher: conn
                        .negotiated_cipher_suite()
                        .map(|c| format!("{:?}", c.suite()))
                        .unwrap_or_default(),
                    alpn: conn
                        .alpn_protocol()
                        .map(|p| String::from_utf8_lossy(p).into_owned()),
                    fingerprint: self.recording.seen().map(|d| format_fingerprint(&d)),
                })
            }
            _ => None,
        }
    }

    /// Sends a command line as written and returns the server's reply, whatever its code.
    pub async fn command(&mut self, command: &str) -> Result<Reply> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        self.ctl.send_raw(command).await?;
        self.ctl.read_reply().await
    }

    /// Sends a command line as written and fails unless `ok` accepts the reply code.
    pub async fn expect(&mut self, command: &str, ok: impl Fn(ReplyCode) -> bool) -> Result<Reply> {
        let reply = self.command(command).await?;
        if ok(reply.code) {
            Ok(reply)
        } else {
            Err(Error::reply_err(SentCommand::raw(command), reply))
        }
    }

    /// Sends a command and returns the server's reply, whatever its code.
    pub(crate) async fn run(&mut self, command: &Command) -> Result<Reply> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        self.ctl.send(command).await?;
        self.ctl.read_reply().await
    }

    /// Sends a command and fails unless `ok` accepts the reply code.
    pub(crate) async fn run_expect(
        &mut self,
        command: &Command,
        ok: impl Fn(ReplyCode) -> bool,
    ) -> Result<Reply> {
        let reply = self.run(command).await?;
        if ok(reply.code) {
            Ok(reply)
        } else {
            Err(Error::reply_err(command, reply))
        }
    }
}
