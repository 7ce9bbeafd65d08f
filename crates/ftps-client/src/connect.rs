//! Connecting: TCP, TLS on the control connection (implicit, or explicit with `AUTH TLS`,
//! RFC 4217 §4), the greeting (RFC 959 §5.4), logging in (RFC 959 §4.1.1), protecting data
//! connections (`PBSZ`/`PROT`, RFC 4217 §9) and reading the server's features (RFC 2389);
//! and logging out (`QUIT`).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ftps_proto::command::{Password, ProtectionLevel, TransferType};
use ftps_proto::{Command, ReplyCode};
use rustls::pki_types::ServerName;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::config::{Config, TlsMode, TlsVersions, Trust};
use crate::control::{Control, Stream};
use crate::error::{Connection, Error, Result, SentCommand};
use crate::features::Features;
use crate::session::FtpsClient;
use crate::tls::{handshake_error, TlsSetup};

/// Makes connections with one [`Config`]. Cheap to clone; parses CA files and keys once.
#[derive(Clone, Debug)]
pub struct Connector {
    config: Arc<Config>,
    tls: Arc<TlsSetup>,
}

impl Connector {
    /// Checks the configuration (CA file, client certificate) and prepares TLS.
    pub fn new(config: Config) -> Result<Connector> {
        let tls = TlsSetup::new(&config)?;
        Ok(Connector {
            config: Arc::new(config),
            tls: Arc::new(tls),
        })
    }

    /// The connector a session was made with.
    pub(crate) fn of(client: &FtpsClient) -> Connector {
        Connector {
            config: client.config.clone(),
            tls: client.setup.clone(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Connects and secures the control connection (not yet logged in).
    pub async fn connect(&self, host: &str, port: u16) -> Result<FtpsClient> {
        self.connect_versions(host, port, self.config.tls_versions)
            .await
    }

    /// Connects offering these TLS versions, within the connect time limit.
    pub(crate) async fn connect_versions(
        &self,
        host: &str,
        port: u16,
        versions: TlsVersions,
    ) -> Result<FtpsClient> {
        let limit = self.config.connect_timeout;
        match tokio::time::timeout(limit, self.connect_untimed(host, port, versions)).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout(format!(
                "connecting to {host}:{port} (after {}s)",
                limit.as_secs()
            ))),
        }
    }

    /// Connects and logs in.
    pub async fn connect_and_login(
        &self,
        host: &str,
        port: u16,
        user: &str,
        password: &str,
    ) -> Result<FtpsClient> {
        let mut client = self.connect(host, port).await?;
        client.login(user, password).await?;
        Ok(client)
    }

    async fn connect_untimed(
        &self,
        host: &str,
        port: u16,
        versions: TlsVersions,
    ) -> Result<FtpsClient> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let tcp = connect_tcp(host, bare, port).await?;
        let _ = tcp.set_nodelay(true);
        let peer = tcp.peer_addr().map_err(|e| Error::io("peer address", e))?;
        let local = tcp
            .local_addr()
            .map_err(|e| Error::io("local address", e))?;
        let server_name = ServerName::try_from(bare.to_string())
            .map_err(|_| Error::Config(format!("invalid host name {host:?}")))?;
        let (tls_config, recording, store) = self.tls.connection_config(versions)?;
        if self.config.trust == Trust::Insecure {
            tracing::warn!(
                target: "ftps_client::insecure",
                "certificate verification is disabled (insecure mode): the connection to {host} \
                 can be intercepted"
            );
        }
        let mut client = FtpsClient {
            ctl: Control::new(Stream::Plain(tcp), self.config.io_timeout),
            tls_config,
            recording,
            store,
            setup: self.tls.clone(),
            config: self.config.clone(),
            versions,
            port,
            credentials: None,
            server_name,
            host: bare.to_string(),
            peer,
            local,
            features: Features::default(),
            epsv_broken: false,
            poisoned: false,
            last_resumed: None,
            data_connections: 0,
            resumed_data_connections: 0,
        };
        match self.config.tls_mode {
            TlsMode::Implicit => {
                client.secure_control().await?;
                client.expect_greeting().await?;
            }
            TlsMode::Explicit => {
                client.expect_greeting().await?;
                let auth = Command::Auth("TLS".into());
                let reply = client.run(&auth).await?;
                if reply.code != ReplyCode::AUTH_OK {
                    return Err(Error::reply_err(&auth, reply));
                }
                if client.ctl.has_buffered() {
                    // Bytes after the 234 and before the handshake would be read as if they
                    // had come over TLS (the STARTTLS injection class).
                    return Err(Error::Protocol(
                        "the server sent data after its AUTH TLS reply; refusing to continue"
                            .into(),
                    ));
                }
                client.secure_control().await?;
            }
        }
        Ok(client)
    }
}

/// The first of the host's addresses that accepts a TCP connection.
async fn connect_tcp(host: &str, bare: &str, port: u16) -> Result<TcpStream> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
        .await
        .map_err(|e| Error::Connect {
            addr: format!("{host}:{port}"),
            source: e,
        })?
        .collect();
    let mut last = None;
    for addr in &addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some((addr, e)),
        }
    }
    Err(match last {
        Some((addr, e)) => Error::Connect {
            addr: addr.to_string(),
            source: e,
        },
        None => Error::Connect {
            addr: format!("{host}:{port}"),
            source: io::Error::new(io::ErrorKind::NotFound, "no address found"),
        },
    })
}

impl FtpsClient {
    /// Connects with a one-off [`Connector`]; see [`Connector::connect`].
    pub async fn connect(config: Config, host: &str, port: u16) -> Result<FtpsClient> {
        Connector::new(config)?.connect(host, port).await
    }

    async fn expect_greeting(&mut self) -> Result<()> {
        loop {
            let reply = self.ctl.read_reply().await?;
            match reply.code.0 {
                // 120: ready in a few minutes; the 220 follows.
                120 => continue,
                220 => return Ok(()),
                _ => return Err(Error::reply_err(SentCommand::greeting(), reply)),
            }
        }
    }

    async fn secure_control(&mut self) -> Result<()> {
        let tcp = match std::mem::replace(&mut self.ctl.stream, Stream::Gone) {
            Stream::Plain(t) => t,
            other => {
                self.ctl.stream = other;
                return Err(Error::Protocol("control connection already secured".into()));
            }
        };
        let connector = TlsConnector::from(self.tls_config.clone());
        let limit = self.config.connect_timeout;
        let tls =
            match tokio::time::timeout(limit, connector.connect(self.server_name.clone(), tcp))
                .await
            {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => {
                    return Err(handshake_error(
                        e,
                        &self.recording,
                        &self.host,
                        Connection::Control,
                    ))
                }
                Err(_) => return Err(Error::Timeout("in the control TLS handshake".into())),
            };
        self.ctl.stream = Stream::Tls(Box::new(tls));
        Ok(())
    }

    /// Logs in with `USER`/`PASS`, then protects data connections (`PBSZ 0`, `PROT P`),
    /// selects binary mode and reads the server's features.
    pub async fn login(&mut self, user: &str, password: &str) -> Result<()> {
        let user_command = Command::User(user.to_string());
        let reply = self.run(&user_command).await?;
        match reply.code.0 {
            // Logged in without a password (232: by the client certificate).
            230 | 232 => {}
            331 => {
                let pass = Command::Pass(Password::new(password));
                let reply = self.run(&pass).await?;
                if !matches!(reply.code.0, 230 | 202) {
                    return Err(Error::reply_err(&pass, reply));
                }
            }
            _ => return Err(Error::reply_err(&user_command, reply)),
        }
        self.credentials = Some((user.to_string(), password.to_string()));
        let completed = |c: ReplyCode| c.is_completion();
        self.run_expect(&Command::Pbsz(0), completed).await?;
        self.run_expect(&Command::Prot(ProtectionLevel::Private), completed)
            .await?;
        self.run_expect(&Command::Type(TransferType::Image), completed)
            .await?;
        let feat = self.run(&Command::Feat).await?;
        if feat.code == ReplyCode::SYSTEM_STATUS {
            self.features = Features::parse(&feat);
        }
        if self.features.utf8 {
            // Best effort: some servers want it, others have it always on.
            let _ = self.run(&Command::Opts("UTF8 ON".into())).await?;
        }
        Ok(())
    }

    /// Ends the session politely (`QUIT`, then TLS close_notify).
    pub async fn quit(mut self) -> Result<()> {
        if !self.poisoned {
            let _ = self.run(&Command::Quit).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), self.ctl.stream.shutdown()).await;
        Ok(())
    }
}
