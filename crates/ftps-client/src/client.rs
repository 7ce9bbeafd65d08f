//! The client: connecting, logging in, commands, and data connections.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use ftps_proto::address::{format_eprt, format_host_port, parse_epsv_reply, parse_pasv_reply};
use ftps_proto::listing::{mdtm_time, parse_mdtm_time};
use ftps_proto::listing_parse::{parse_list_line, parse_mlsx_line, ListEntry};
use ftps_proto::{Reply, ReplyCode};
use rustls::pki_types::ServerName;
use rustls::HandshakeKind;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::config::{Config, DataMode, TlsMode, TlsVersions, Trust};
use crate::control::{Control, Stream};
use crate::error::{format_fingerprint, Error, Result};
use crate::tls::{handshake_error, Recording, SessionStore, TlsSetup};

/// Size of the buffers used to copy file data.
pub const COPY_BUFFER: usize = 256 * 1024;
/// Largest listing read into memory.
const MAX_LISTING: usize = 256 * 1024 * 1024;

/// What the server said it supports in its `FEAT` reply (RFC 2389).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Features {
    /// `MLST` (and so `MLSD`).
    pub mlst: bool,
    /// `EPSV`/`EPRT`.
    pub epsv: bool,
    /// `MFMT` (set modification time).
    pub mfmt: bool,
    /// `MDTM`.
    pub mdtm: bool,
    /// `SIZE`.
    pub size: bool,
    /// `REST STREAM`.
    pub rest_stream: bool,
    /// `UTF8`.
    pub utf8: bool,
    /// Every feature line, trimmed.
    pub lines: Vec<String>,
}

impl Features {
    /// Reads a `211` FEAT reply.
    pub fn parse(reply: &Reply) -> Features {
        let mut f = Features::default();
        let n = reply.lines.len();
        for line in reply.lines.iter().take(n.saturating_sub(1)).skip(1) {
            let line = line.trim();
            let word = line
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            match word.as_str() {
                "MLST" | "MLSD" => f.mlst = true,
                "EPSV" | "EPRT" => f.epsv = true,
                "MFMT" => f.mfmt = true,
                "MDTM" => f.mdtm = true,
                "SIZE" => f.size = true,
                "UTF8" => f.utf8 = true,
                "REST" => f.rest_stream = line.to_ascii_uppercase().contains("STREAM"),
                _ => {}
            }
            f.lines.push(line.to_string());
        }
        f
    }
}

/// What a finished transfer reports.
#[derive(Clone, Debug)]
pub struct TransferOutcome {
    /// Bytes moved over the data connection.
    pub bytes: u64,
    /// Whether the data connection's TLS handshake resumed the control session.
    pub resumed: bool,
    /// The server's final reply (226 or 250).
    pub reply: Reply,
    /// The server closed the data connection without a TLS close_notify; the transfer was
    /// accepted because the server confirmed it with its final reply.
    pub missing_close_notify: bool,
}

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

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Connects and secures the control connection (not yet logged in).
    pub async fn connect(&self, host: &str, port: u16) -> Result<FtpsClient> {
        self.connect_versions(host, port, self.config.tls_versions)
            .await
    }

    async fn connect_versions(
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
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
            .await
            .map_err(|e| Error::Connect {
                addr: format!("{host}:{port}"),
                source: e,
            })?
            .collect();
        let mut last = None;
        let mut tcp = None;
        for addr in &addrs {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = Some((addr, e)),
            }
        }
        let tcp = match (tcp, last) {
            (Some(t), _) => t,
            (None, Some((addr, e))) => {
                return Err(Error::Connect {
                    addr: addr.to_string(),
                    source: e,
                })
            }
            (None, None) => {
                return Err(Error::Connect {
                    addr: format!("{host}:{port}"),
                    source: io::Error::new(io::ErrorKind::NotFound, "no address found"),
                })
            }
        };
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
            connector: self.clone(),
            port,
            versions,
            credentials: None,
            server_name,
            host: bare.to_string(),
            peer,
            local,
            config: self.config.clone(),
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
                let reply = client.command("AUTH TLS").await?;
                if reply.code != ReplyCode::AUTH_OK {
                    return Err(Error::reply_err("AUTH TLS", reply));
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

/// One FTPS session: a control connection and, during transfers, one data connection.
pub struct FtpsClient {
    ctl: Control,
    tls_config: Arc<rustls::ClientConfig>,
    recording: Arc<Recording>,
    store: Arc<SessionStore>,
    connector: Connector,
    port: u16,
    versions: TlsVersions,
    credentials: Option<(String, String)>,
    server_name: ServerName<'static>,
    host: String,
    peer: SocketAddr,
    local: SocketAddr,
    config: Arc<Config>,
    features: Features,
    epsv_broken: bool,
    poisoned: bool,
    last_resumed: Option<bool>,
    data_connections: u64,
    resumed_data_connections: u64,
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
    /// Connects with a one-off [`Connector`]; see [`Connector::connect`].
    pub async fn connect(config: Config, host: &str, port: u16) -> Result<FtpsClient> {
        Connector::new(config)?.connect(host, port).await
    }

    async fn expect_greeting(&mut self) -> Result<()> {
        loop {
            let reply = self.ctl.read_reply().await?;
            match reply.code.0 {
                120 => continue,
                220 => return Ok(()),
                _ => return Err(Error::reply_err("(greeting)", reply)),
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
                        "control connection",
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
        let reply = self.command(&format!("USER {user}")).await?;
        match reply.code.0 {
            230 | 232 => {}
            331 => {
                let reply = self.command(&format!("PASS {password}")).await?;
                if !matches!(reply.code.0, 230 | 202) {
                    return Err(Error::reply_err("PASS", reply));
                }
            }
            _ => return Err(Error::reply_err(&format!("USER {user}"), reply)),
        }
        self.credentials = Some((user.to_string(), password.to_string()));
        self.expect("PBSZ 0", |c| c.is_completion()).await?;
        self.expect("PROT P", |c| c.is_completion()).await?;
        self.expect("TYPE I", |c| c.is_completion()).await?;
        let feat = self.command("FEAT").await?;
        if feat.code.0 == 211 {
            self.features = Features::parse(&feat);
        }
        if self.features.utf8 {
            // Best effort: some servers want it, others have it always on.
            let _ = self.command("OPTS UTF8 ON").await?;
        }
        Ok(())
    }

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

    /// Sends a command and returns the server's reply, whatever its code.
    pub async fn command(&mut self, command: &str) -> Result<Reply> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        self.ctl.send(command).await?;
        self.ctl.read_reply().await
    }

    /// Sends a command and fails unless `ok` accepts the reply code.
    pub async fn expect(&mut self, command: &str, ok: impl Fn(ReplyCode) -> bool) -> Result<Reply> {
        let reply = self.command(command).await?;
        if ok(reply.code) {
            Ok(reply)
        } else {
            Err(Error::reply_err(command, reply))
        }
    }

    /// The current directory (`PWD`).
    pub async fn pwd(&mut self) -> Result<String> {
        let reply = self.expect("PWD", |c| c.0 == 257).await?;
        let text = reply.lines.last().cloned().unwrap_or_default();
        parse_257(&text).ok_or_else(|| Error::Protocol(format!("cannot read PWD reply {text:?}")))
    }

    /// Changes directory (`CWD`).
    pub async fn cwd(&mut self, path: &str) -> Result<()> {
        self.expect(&format!("CWD {path}"), |c| c.is_completion())
            .await
            .map(drop)
    }

    /// Creates a directory (`MKD`).
    pub async fn mkdir(&mut self, path: &str) -> Result<()> {
        self.expect(&format!("MKD {path}"), |c| c.is_completion())
            .await
            .map(drop)
    }

    /// Creates a directory and any missing parents. Existing directories are not an error.
    pub async fn mkdir_all(&mut self, path: &str) -> Result<()> {
        let absolute = path.starts_with('/');
        let mut prefix = String::new();
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        for (i, part) in parts.iter().enumerate() {
            if absolute || !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            let reply = self.command(&format!("MKD {prefix}")).await?;
            if !reply.code.is_completion() && i + 1 == parts.len() {
                // The last one must exist now.
                if self
                    .stat(&prefix)
                    .await
                    .map(|e| e.is_dir())
                    .unwrap_or(false)
                {
                    return Ok(());
                }
                return Err(Error::reply_err(&format!("MKD {prefix}"), reply));
            }
        }
        Ok(())
    }

    /// Removes an empty directory (`RMD`).
    pub async fn rmdir(&mut self, path: &str) -> Result<()> {
        self.expect(&format!("RMD {path}"), |c| c.is_completion())
            .await
            .map(drop)
    }

    /// Deletes a file (`DELE`).
    pub async fn delete(&mut self, path: &str) -> Result<()> {
        self.expect(&format!("DELE {path}"), |c| c.is_completion())
            .await
            .map(drop)
    }

    /// Renames (`RNFR` + `RNTO`).
    pub async fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        self.expect(&format!("RNFR {from}"), |c| c.0 == 350).await?;
        self.expect(&format!("RNTO {to}"), |c| c.is_completion())
            .await
            .map(drop)
    }

    /// A file's size (`SIZE`, RFC 3659).
    pub async fn size(&mut self, path: &str) -> Result<u64> {
        let reply = self.expect(&format!("SIZE {path}"), |c| c.0 == 213).await?;
        reply
            .text()
            .trim()
            .parse()
            .map_err(|_| Error::Protocol(format!("cannot read SIZE reply {:?}", reply.text())))
    }

    /// A file's modification time (`MDTM`, RFC 3659).
    pub async fn mdtm(&mut self, path: &str) -> Result<SystemTime> {
        let reply = self.expect(&format!("MDTM {path}"), |c| c.0 == 213).await?;
        parse_mdtm_time(reply.text().trim())
            .ok_or_else(|| Error::Protocol(format!("cannot read MDTM reply {:?}", reply.text())))
    }

    /// Sets a file's modification time: `MFMT` where the server has it, else the two-argument
    /// `MDTM` that vsftpd and others accept.
    pub async fn set_mtime(&mut self, path: &str, time: SystemTime) -> Result<()> {
        let stamp = mdtm_time(time);
        let cmd = if self.features.mfmt {
            format!("MFMT {stamp} {path}")
        } else {
            format!("MDTM {stamp} {path}")
        };
        self.expect(&cmd, |c| c.is_completion()).await.map(drop)
    }

    /// The SHA-256 of a remote file as the server computes it (`HASH`,
    /// draft-bryan-ftpext-hash-02), when the server offers SHA-256; `None` when it does not.
    pub async fn server_sha256(&mut self, path: &str) -> Result<Option<String>> {
        let offered = self.features.lines.iter().any(|l| {
            let upper = l.to_ascii_uppercase();
            upper.starts_with("HASH ") && upper.contains("SHA-256")
        });
        if !offered {
            return Ok(None);
        }
        if !self
            .command("OPTS HASH SHA-256")
            .await?
            .code
            .is_completion()
        {
            return Ok(None);
        }
        let reply = self.expect(&format!("HASH {path}"), |c| c.0 == 213).await?;
        Ok(Some(parse_hash_reply(&reply.text()).ok_or_else(|| {
            Error::Protocol(format!("cannot read HASH reply {:?}", reply.text()))
        })?))
    }

    /// Facts about one file or directory: `MLST` where available, else a listing of its parent.
    pub async fn stat(&mut self, path: &str) -> Result<ListEntry> {
        if self.features.mlst {
            let reply = self.expect(&format!("MLST {path}"), |c| c.0 == 250).await?;
            for line in reply.lines.iter().skip(1) {
                if let Some(fact_line) = line.strip_prefix(' ') {
                    if let Some(mut e) = parse_mlsx_line(fact_line) {
                        e.name = basename(path).to_string();
                        if e.kind == ftps_proto::listing::FileKind::CurrentDir {
                            e.kind = ftps_proto::listing::FileKind::Dir;
                        }
                        return Ok(e);
                    }
                }
            }
            return Err(Error::Protocol(format!(
                "cannot read MLST reply {:?}",
                reply.text()
            )));
        }
        let trimmed = path.trim_end_matches('/');
        if trimmed.is_empty() {
            return Ok(root_entry("/"));
        }
        let parent = parent(trimmed);
        let name = basename(trimmed);
        let entries = self.list_dir(&parent).await?;
        if let Some(e) = entries.into_iter().find(|e| e.name == name) {
            return Ok(e);
        }
        // A directory that its parent does not show (e.g. the login directory).
        if self
            .command(&format!("CWD {trimmed}"))
            .await?
            .code
            .is_completion()
        {
            return Ok(root_entry(name));
        }
        Err(Error::reply_err(
            &format!("STAT {path}"),
            Reply::new(
                ReplyCode::FILE_UNAVAILABLE,
                format!("{path}: no such file or directory"),
            ),
        ))
    }

    /// Lists a directory with `MLSD` where the server has it, else `LIST` (Unix or DOS format).
    /// The entries for the directory itself and its parent are left out.
    pub async fn list_dir(&mut self, path: &str) -> Result<Vec<ListEntry>> {
        let entries = if self.features.mlst {
            self.mlsd(path).await?
        } else {
            self.list(path).await?
        };
        Ok(entries
            .into_iter()
            .filter(|e| !e.is_self_or_parent())
            .collect())
    }

    /// `MLSD` (RFC 3659).
    pub async fn mlsd(&mut self, path: &str) -> Result<Vec<ListEntry>> {
        let cmd = if path.is_empty() {
            "MLSD".to_string()
        } else {
            format!("MLSD {path}")
        };
        let raw = self.read_listing(&cmd).await?;
        Ok(raw.lines().filter_map(parse_mlsx_line).collect())
    }

    /// `LIST`, parsed (Unix `ls -l` or DOS format; unknown lines are skipped).
    pub async fn list(&mut self, path: &str) -> Result<Vec<ListEntry>> {
        let raw = self.list_raw(path).await?;
        let now = SystemTime::now();
        Ok(raw
            .lines()
            .filter_map(|l| parse_list_line(l, now))
            .collect())
    }

    /// `LIST` as the server sent it.
    pub async fn list_raw(&mut self, path: &str) -> Result<String> {
        let cmd = if path.is_empty() {
            "LIST".to_string()
        } else {
            format!("LIST {path}")
        };
        self.read_listing(&cmd).await
    }

    /// `NLST`: bare names.
    pub async fn nlst(&mut self, path: &str) -> Result<Vec<String>> {
        let cmd = if path.is_empty() {
            "NLST".to_string()
        } else {
            format!("NLST {path}")
        };
        let raw = self.read_listing(&cmd).await?;
        Ok(raw
            .lines()
            .map(|l| l.trim_end_matches('\r').to_string())
            .collect())
    }

    async fn read_listing(&mut self, cmd: &str) -> Result<String> {
        let mut transfer = self.open_transfer(cmd, 0, false).await?;
        let mut out = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = transfer.read_timed(&mut chunk).await?;
            if n == 0 {
                break;
            }
            if out.len() + n > MAX_LISTING {
                return Err(Error::Protocol("directory listing too large".into()));
            }
            out.extend_from_slice(&chunk[..n]);
        }
        transfer.finish().await?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Starts a download (`RETR`), from byte `offset` (`REST`) if it is not zero. Read the
    /// returned stream to its end, then call [`Transfer::finish`].
    pub async fn retr(&mut self, path: &str, offset: u64) -> Result<Transfer<'_>> {
        self.open_transfer(&format!("RETR {path}"), offset, false)
            .await
    }

    /// Starts an upload (`STOR`), at byte `offset` (`REST`) if it is not zero. Write to the
    /// returned stream, then call [`Transfer::finish`].
    pub async fn stor(&mut self, path: &str, offset: u64) -> Result<Transfer<'_>> {
        self.open_transfer(&format!("STOR {path}"), offset, true)
            .await
    }

    /// Starts an append (`APPE`).
    pub async fn appe(&mut self, path: &str) -> Result<Transfer<'_>> {
        self.open_transfer(&format!("APPE {path}"), 0, true).await
    }

    /// Downloads `path` into `out`, from `offset`; `progress` is called with each chunk's size.
    pub async fn download<W: AsyncWrite + Unpin>(
        &mut self,
        path: &str,
        out: &mut W,
        offset: u64,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<TransferOutcome> {
        let mut transfer = self.retr(path, offset).await?;
        let mut buf = vec![0u8; COPY_BUFFER];
        loop {
            let n = transfer.read_timed(&mut buf).await?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])
                .await
                .map_err(|e| Error::io("writing the downloaded data", e))?;
            progress(n as u64);
        }
        out.flush()
            .await
            .map_err(|e| Error::io("writing the downloaded data", e))?;
        transfer.finish().await
    }

    /// Uploads everything `input` yields to `path` (at `offset` if not zero).
    pub async fn upload<R: AsyncRead + Unpin>(
        &mut self,
        path: &str,
        input: &mut R,
        offset: u64,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<TransferOutcome> {
        let mut transfer = self.stor(path, offset).await?;
        let mut buf = vec![0u8; COPY_BUFFER];
        loop {
            let n = input
                .read(&mut buf)
                .await
                .map_err(|e| Error::io("reading the data to upload", e))?;
            if n == 0 {
                break;
            }
            transfer.write_timed(&buf[..n]).await?;
            progress(n as u64);
        }
        transfer.finish().await
    }

    /// Downloads a remote file to a local file. With `resume`, an existing local file is
    /// continued from its length (`REST`). Sets the local modification time to the remote one
    /// when `mtime` is given.
    pub async fn download_file(
        &mut self,
        remote: &str,
        local: &Path,
        resume: bool,
        mtime: Option<SystemTime>,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<TransferOutcome> {
        let existing = if resume {
            tokio::fs::metadata(local)
                .await
                .map(|m| m.len())
                .unwrap_or(0)
        } else {
            0
        };
        let mut opts = tokio::fs::OpenOptions::new();
        opts.write(true).create(true);
        if existing > 0 {
            opts.append(true);
        } else {
            opts.truncate(true);
        }
        let file = opts
            .open(local)
            .await
            .map_err(|e| Error::io(format!("opening {}", local.display()), e))?;
        let mut file = tokio::io::BufWriter::with_capacity(COPY_BUFFER, file);
        let outcome = self.download(remote, &mut file, existing, progress).await?;
        let file = file.into_inner();
        if let Some(t) = mtime {
            let std_file = file.into_std().await;
            let _ = tokio::task::spawn_blocking(move || std_file.set_modified(t)).await;
        }
        Ok(outcome)
    }

    /// Uploads a local file. With `resume`, continues after the remote file's current size.
    pub async fn upload_file(
        &mut self,
        local: &Path,
        remote: &str,
        resume: bool,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<TransferOutcome> {
        let offset = if resume {
            self.size(remote).await.unwrap_or(0)
        } else {
            0
        };
        let mut file = tokio::fs::File::open(local)
            .await
            .map_err(|e| Error::io(format!("opening {}", local.display()), e))?;
        if offset > 0 {
            use tokio::io::AsyncSeekExt;
            file.seek(io::SeekFrom::Start(offset))
                .await
                .map_err(|e| Error::io(format!("seeking in {}", local.display()), e))?;
        }
        self.upload(remote, &mut file, offset, progress).await
    }

    /// Ends the session politely (`QUIT`, then TLS close_notify).
    pub async fn quit(mut self) -> Result<()> {
        if !self.poisoned {
            let _ = self.command("QUIT").await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), self.ctl.stream.shutdown()).await;
        Ok(())
    }

    /// The address to connect to for a passive data connection.
    async fn passive_addr(&mut self) -> Result<SocketAddr> {
        if !self.epsv_broken {
            let reply = self.command("EPSV").await?;
            if reply.code.0 == 229 {
                let port = parse_epsv_reply(&reply.text())
                    .map_err(|_| Error::Protocol(format!("cannot read EPSV reply {reply}")))?;
                return Ok(SocketAddr::new(self.peer.ip(), port));
            }
            if !reply.code.is_failure() {
                return Err(Error::reply_err("EPSV", reply));
            }
            tracing::debug!("EPSV refused ({reply}); using PASV from now on");
            self.epsv_broken = true;
        }
        if self.peer.is_ipv6() {
            return Err(Error::Protocol(
                "the server refused EPSV, and PASV cannot work over IPv6".into(),
            ));
        }
        let reply = self.expect("PASV", |c| c.0 == 227).await?;
        let addr = parse_pasv_reply(&reply.text())
            .map_err(|_| Error::Protocol(format!("cannot read PASV reply {reply}")))?;
        Ok(pasv_target(
            *addr.ip(),
            addr.port(),
            self.peer.ip(),
            self.config.nat_workaround,
        ))
    }

    /// Opens a data connection for `cmd` and returns the transfer once the server has accepted
    /// the command and the TLS handshake (resuming the control session) is done.
    async fn open_transfer(
        &mut self,
        cmd: &str,
        offset: u64,
        upload: bool,
    ) -> Result<Transfer<'_>> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        self.keep_resumable().await;
        let connector = if self.config.reuse_tls_session {
            TlsConnector::from(self.tls_config.clone())
        } else {
            let mut fresh = (*self.tls_config).clone();
            fresh.resumption = rustls::client::Resumption::disabled();
            TlsConnector::from(Arc::new(fresh))
        };
        let name = self.server_name.clone();
        let connect_limit = self.config.connect_timeout;
        let handshake: Pin<Box<dyn Future<Output = io::Result<TlsStream<TcpStream>>> + Send>> =
            match self.config.data_mode {
                DataMode::Passive => {
                    let addr = self.passive_addr().await?;
                    let tcp =
                        match tokio::time::timeout(connect_limit, TcpStream::connect(addr)).await {
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
                    self.ctl.send(cmd).await?;
                    Box::pin(async move { connector.connect(name, tcp).await })
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
                    self.ctl.send(cmd).await?;
                    let server_ip = self.peer.ip();
                    Box::pin(async move {
                        loop {
                            let (tcp, from) = listener.accept().await?;
                            if from.ip() != server_ip {
                                tracing::warn!(
                                    "ignoring a data connection from {from}, not from the server"
                                );
                                continue;
                            }
                            let _ = tcp.set_nodelay(true);
                            return connector.connect(name, tcp).await;
                        }
                    })
                }
            };
        self.poisoned = true;
        let mut handshake = handshake;
        let mut tls_result: Option<io::Result<TlsStream<TcpStream>>> = None;
        let io_limit = self.config.io_timeout;
        let first = loop {
            tokio::select! {
                reply = self.ctl.read_reply() => break reply,
                res = &mut handshake, if tls_result.is_none() => tls_result = Some(res),
            }
        };
        let first = match first {
            Ok(r) => r,
            Err(e) => return Err(e),
        };
        if first.code.is_failure() {
            // The server refused the command; no transfer is pending.
            self.poisoned = false;
            return Err(Error::reply_err(cmd, first));
        }
        let mut final_reply = None;
        if !first.code.is_preliminary() {
            if first.code.is_completion() {
                final_reply = Some(first);
            } else {
                return Err(Error::reply_err(cmd, first));
            }
        }
        let tls = match tls_result {
            Some(r) => r,
            None => match tokio::time::timeout(io_limit, &mut handshake).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(Error::Timeout(
                        "in the data connection's TLS handshake".into(),
                    ))
                }
            },
        };
        let tls = match tls {
            Ok(t) => t,
            Err(e) => {
                // The server usually explains (522 on refused session reuse): prefer its words.
                if final_reply.is_none() {
                    if let Ok(Ok(reply)) =
                        tokio::time::timeout(Duration::from_secs(5), self.ctl.read_reply()).await
                    {
                        if reply.code.is_failure() {
                            self.poisoned = false;
                            return Err(Error::reply_err(cmd, reply));
                        }
                    }
                }
                return Err(handshake_error(
                    e,
                    &self.recording,
                    &self.host,
                    "data connection",
                ));
            }
        };
        if !upload {
            quick_ack(tls.get_ref().0);
        }
        let resumed = tls.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed);
        self.data_connections += 1;
        if resumed {
            self.resumed_data_connections += 1;
        } else {
            tracing::debug!("the data connection for {cmd} did not resume the control TLS session");
        }
        self.last_resumed = Some(resumed);
        Ok(Transfer {
            client: self,
            data: Some(tls),
            command: cmd.to_string(),
            final_reply,
            missing_close_notify: false,
            bytes: 0,
            resumed,
            upload,
        })
    }

    /// rustls uses each TLS 1.3 ticket once. Servers that send no new ticket on some data
    /// connections (ProFTPD after uploads, Pure-FTPd never) would leave the next data
    /// connection unable to resume, which strict servers refuse. When that is about to happen,
    /// reconnect with TLS 1.2, whose session can be resumed any number of times.
    async fn keep_resumable(&mut self) {
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
        let connector = self.connector.clone();
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

    async fn rest(&mut self, offset: u64) -> Result<()> {
        if offset > 0 {
            self.expect(&format!("REST {offset}"), |c| c.0 == 350)
                .await?;
        }
        Ok(())
    }

    async fn port_command(&mut self, addr: SocketAddr) -> Result<()> {
        let reply = self.command(&format!("EPRT {}", format_eprt(addr))).await?;
        if reply.code.is_completion() {
            return Ok(());
        }
        match addr {
            SocketAddr::V4(v4) if reply.code.is_failure() => self
                .expect(&format!("PORT {}", format_host_port(v4)), |c| {
                    c.is_completion()
                })
                .await
                .map(drop),
            _ => Err(Error::reply_err("EPRT", reply)),
        }
    }
}

/// Where to connect for a `227` reply: the NAT workaround replaces a private, loopback,
/// link-local or unspecified address that differs from the control peer's by the peer's.
pub fn pasv_target(
    ip: std::net::Ipv4Addr,
    port: u16,
    peer: IpAddr,
    nat_workaround: bool,
) -> SocketAddr {
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

fn root_entry(name: &str) -> ListEntry {
    let mut e =
        parse_mlsx_line(&format!("type=dir; {name}")).unwrap_or_else(|| unreachable_entry(name));
    e.name = name.to_string();
    e
}

fn unreachable_entry(name: &str) -> ListEntry {
    // parse_mlsx_line accepts the line above; this keeps the code free of unwrap.
    ListEntry {
        name: name.to_string(),
        kind: ftps_proto::listing::FileKind::Dir,
        size: None,
        modified: None,
        precision: ftps_proto::listing_parse::TimePrecision::Second,
        mode: None,
        perm: None,
        unique: None,
        link_target: None,
    }
}

/// Reads the SHA-256 digest (lower-case hex) out of a `213` HASH reply:
/// `SHA-256 0-1234 <hex> <path>`.
pub fn parse_hash_reply(text: &str) -> Option<String> {
    let mut words = text.split_whitespace();
    let algo = words.next()?;
    let _range = words.next()?;
    let hex = words.next()?;
    (algo.eq_ignore_ascii_case("SHA-256")
        && hex.len() == 64
        && hex.bytes().all(|b| b.is_ascii_hexdigit()))
    .then(|| hex.to_ascii_lowercase())
}

/// Reads the path out of a `257` reply: `"/a ""quoted"" dir" created`.
pub fn parse_257(text: &str) -> Option<String> {
    let start = text.find('"')? + 1;
    let mut out = String::new();
    let mut chars = text[start..].chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' {
            if chars.peek() == Some(&'"') {
                chars.next();
                out.push('"');
            } else {
                return Some(out);
            }
        } else {
            out.push(c);
        }
    }
    None
}

/// The last component of a remote path.
pub fn basename(path: &str) -> &str {
    let t = path.trim_end_matches('/');
    t.rsplit('/').next().unwrap_or(t)
}

/// The parent of a remote path (`/` for top-level absolute paths, `` for relative ones).
pub fn parent(path: &str) -> String {
    let t = path.trim_end_matches('/');
    match t.rfind('/') {
        Some(0) => "/".to_string(),
        Some(i) => t[..i].to_string(),
        None => String::new(),
    }
}

/// Joins remote path components with `/`.
pub fn join(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_string()
    } else if base.ends_with('/') {
        format!("{base}{name}")
    } else {
        format!("{base}/{name}")
    }
}

/// A transfer in progress: read from it (downloads) or write to it (uploads), then call
/// [`Transfer::finish`], which closes the data connection with a TLS close_notify and checks
/// the server's final reply. Dropping it unfinished leaves the session unusable
/// ([`Error::Poisoned`]); use [`Transfer::abort`] to cancel.
pub struct Transfer<'a> {
    client: &'a mut FtpsClient,
    data: Option<TlsStream<TcpStream>>,
    command: String,
    final_reply: Option<Reply>,
    missing_close_notify: bool,
    bytes: u64,
    resumed: bool,
    upload: bool,
}

impl std::fmt::Debug for Transfer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transfer")
            .field("command", &self.command)
            .field("bytes", &self.bytes)
            .field("resumed", &self.resumed)
            .finish_non_exhaustive()
    }
}

impl Transfer<'_> {
    /// Whether the data connection resumed the control connection's TLS session.
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// Bytes moved so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// TLS protocol version of the data connection.
    pub fn tls_version(&self) -> Option<String> {
        self.data
            .as_ref()
            .and_then(|d| d.get_ref().1.protocol_version())
            .map(|v| format!("{v:?}"))
    }

    /// Reads with the configured I/O time limit.
    pub async fn read_timed(&mut self, buf: &mut [u8]) -> Result<usize> {
        let limit = self.client.config.io_timeout;
        match tokio::time::timeout(limit, self.read(buf)).await {
            Ok(Ok(n)) => Ok(n),
            Ok(Err(e)) => Err(Error::Tls {
                context: "data connection",
                source: e,
            }),
            Err(_) => Err(Error::Timeout(format!(
                "reading the data connection ({}s without data)",
                limit.as_secs()
            ))),
        }
    }

    /// Writes all of `buf` with the configured I/O time limit.
    pub async fn write_timed(&mut self, buf: &[u8]) -> Result<()> {
        let limit = self.client.config.io_timeout;
        match tokio::time::timeout(limit, self.write_all(buf)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::Tls {
                context: "data connection",
                source: e,
            }),
            Err(_) => Err(Error::Timeout(format!(
                "writing the data connection ({}s without progress)",
                limit.as_secs()
            ))),
        }
    }

    /// Closes the data connection (TLS close_notify, then TCP FIN) and checks the server's
    /// final reply (226/250).
    pub async fn finish(mut self) -> Result<TransferOutcome> {
        let limit = self.client.config.io_timeout;
        let mut data = self.data.take();
        if let Some(d) = data.as_mut() {
            if self.upload {
                let close = async {
                    d.flush().await?;
                    d.shutdown().await
                };
                match tokio::time::timeout(limit, close).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        return Err(Error::Tls {
                            context: "data connection",
                            source: e,
                        })
                    }
                    Err(_) => return Err(Error::Timeout("closing the data connection".into())),
                }
            } else {
                let _ = tokio::time::timeout(Duration::from_secs(5), d.shutdown()).await;
            }
        }
        let reply = match self.final_reply.take() {
            Some(r) => r,
            None => {
                // Read the server's end of the data connection while waiting for its reply:
                // that picks up TLS 1.3 session tickets sent on it (so later data connections
                // can resume) and its close_notify.
                let drain = async {
                    if let Some(d) = data.as_mut() {
                        let mut sink = [0u8; 4096];
                        loop {
                            match d.read(&mut sink).await {
                                Ok(0) | Err(_) => break,
                                Ok(_) => {}
                            }
                        }
                    }
                };
                let drain = tokio::time::timeout(Duration::from_secs(10), drain);
                let (_, reply) = tokio::join!(drain, self.client.ctl.read_reply());
                reply?
            }
        };
        drop(data);
        self.client.poisoned = false;
        if !reply.code.is_completion() {
            return Err(Error::reply_err(&self.command, reply));
        }
        if self.missing_close_notify {
            tracing::debug!(
                "the server closed the data connection of {} without close_notify; its {} reply confirms the transfer",
                self.command,
                reply.code
            );
        }
        Ok(TransferOutcome {
            bytes: self.bytes,
            resumed: self.resumed,
            reply,
            missing_close_notify: self.missing_close_notify,
        })
    }

    /// Cancels the transfer: closes the data connection and sends `ABOR`. Replies differ
    /// between servers (426 then 226, or 225/226 alone, or the transfer's own 226 first), so a
    /// `NOOP` follows and everything up to its reply is consumed.
    pub async fn abort(mut self) -> Result<()> {
        drop(self.data.take());
        let client = &mut *self.client;
        client.ctl.send("ABOR").await?;
        client.ctl.send("NOOP").await?;
        for _ in 0..5 {
            let reply =
                tokio::time::timeout(Duration::from_secs(10), client.ctl.read_reply()).await;
            match reply {
                Ok(Ok(r)) if r.code.0 == 200 => {
                    client.poisoned = false;
                    return Ok(());
                }
                Ok(Ok(_)) => continue,
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(Error::Timeout("waiting for the reply to ABOR".into())),
            }
        }
        Err(Error::Protocol("no reply to NOOP after ABOR".into()))
    }
}

impl AsyncRead for Transfer<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(data) = this.data.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let before = buf.filled().len();
        match Pin::new(data).poll_read(cx, buf) {
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                // TCP closed without TLS close_notify: the end of the data as far as we can
                // tell; finish() only accepts it if the server confirms with 226.
                this.missing_close_notify = true;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Ok(())) => {
                this.bytes += (buf.filled().len() - before) as u64;
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl AsyncWrite for Transfer<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(data) = this.data.as_mut() else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        match Pin::new(data).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                this.bytes += n as u64;
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().data.as_mut() {
            Some(d) => Pin::new(d).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Closing happens in finish(), which also reads the server's reply.
        match self.get_mut().data.as_mut() {
            Some(d) => Pin::new(d).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
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
    use std::net::Ipv4Addr;

    #[test]
    fn reads_257() {
        assert_eq!(
            parse_257("\"/a \"\"b\"\" c\" is current").as_deref(),
            Some("/a \"b\" c")
        );
        assert_eq!(parse_257("no quotes"), None);
        assert_eq!(parse_257("\"unterminated"), None);
    }

    #[test]
    fn hash_replies() {
        let hex = "ab".repeat(32);
        assert_eq!(
            parse_hash_reply(&format!("SHA-256 0-12 {} /a b", hex.to_uppercase())),
            Some(hex.clone())
        );
        assert_eq!(parse_hash_reply(&format!("MD5 0-12 {hex} /x")), None);
        assert_eq!(parse_hash_reply("SHA-256 0-12 zz /x"), None);
        assert_eq!(parse_hash_reply(""), None);
    }

    #[test]
    fn paths() {
        assert_eq!(basename("/a/b/"), "b");
        assert_eq!(parent("/a/b"), "/a");
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("a"), "");
        assert_eq!(join("/", "x"), "/x");
        assert_eq!(join("/a", "x"), "/a/x");
    }

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

    #[test]
    fn features() {
        let reply = Reply::multi(
            ReplyCode(211),
            vec![
                "Features:".into(),
                " EPSV".into(),
                " MLST type*;size*;modify*;".into(),
                " REST STREAM".into(),
                " MFMT".into(),
                "End".into(),
            ],
        );
        let f = Features::parse(&reply);
        assert!(f.epsv && f.mlst && f.rest_stream && f.mfmt && !f.utf8);
    }
}
