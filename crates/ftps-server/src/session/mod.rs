//! One control connection: the read–dispatch–reply loop (RFC 959 §5.4).
//!
//! Commands are handled one at a time, in order, in this task; every reply is written before
//! the next command is read, so replies always come in command order, pipelined commands
//! included. While a transfer runs, the loop keeps reading the control connection so that
//! `ABOR` and `STAT` are answered at once; other commands wait for the transfer's end.
//!
//! The command families live in submodules: [`access`] (login and security), [`navigate`],
//! [`files`], [`info`], [`datachan`] (PASV/EPSV/PORT/EPRT), [`transfer`], [`hash`], [`site`]
//! and [`rein`].

mod access;
mod datachan;
mod files;
mod hash;
pub(crate) use hash::hash_permits;
mod info;
mod navigate;
mod pump;
mod rein;
mod site;
mod transfer;

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ftps_proto::command::{self, Command, ProtectionLevel, TransferType};
use ftps_proto::line::{LineDecoder, LineEvent};
use ftps_proto::listing::MlstFacts;
use ftps_proto::{Reply, ReplyCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{debug, info, warn};

use crate::limits::SessionPermit;
use crate::server::{ListenerContext, Shared, VirtualHost};
use crate::stream::{ControlStream, MaybeTls, RecordReader};
use crate::users::AuthenticatedUser;
use crate::vfs::{Root, VirtualPath};

use datachan::DataSetup;

/// The longest command line accepted, without its CRLF.
pub const MAX_LINE: usize = 8192;

/// Command lines kept while a transfer runs, to be answered after it. Past this the
/// connection is not read until the transfer ends, so a client that floods it during a
/// transfer fills its own socket buffers, not the server's memory.
pub const MAX_QUEUED_LINES: usize = 32;

/// What to do after a command.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Close,
}

type Result<T = Flow> = io::Result<T>;

/// How far the client has got with logging in.
pub(crate) enum Login {
    /// Nothing sent yet.
    Anonymous,
    /// `USER` accepted; `PASS` expected.
    UserGiven(String),
    /// Logged in.
    LoggedIn(Box<LoggedIn>),
}

/// A logged-in user's state.
pub(crate) struct LoggedIn {
    pub user: AuthenticatedUser,
    pub root: Root,
    pub cwd: VirtualPath,
    /// Shares this session's TLS tickets with the user's other sessions from the same
    /// address while logged in (see [`crate::tls::resumption`]); `None` without TLS.
    pub _tickets_shared: Option<crate::tls::BoundLogin>,
    /// Loads of the users file the login came from: after each, the session checks that
    /// its user still exists with the same credentials.
    pub user_reloads: tokio::sync::watch::Receiver<u64>,
}

/// Per-connection state.
pub(crate) struct Session {
    pub shared: Arc<Shared>,
    /// The listener this connection arrived on, and its policies.
    pub listener: Arc<ListenerContext>,
    /// This session's slot in the connection limits.
    pub permit: SessionPermit,
    /// No command has been received yet.
    first_command: bool,
    /// The virtual host chosen by HOST or by the TLS server name.
    pub vhost: Option<Arc<VirtualHost>>,
    pub control: ControlStream,
    /// The client certificate of the control connection's TLS session; kept after CCC.
    pub control_cert: Option<rustls::pki_types::CertificateDer<'static>>,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    decoder: LineDecoder,
    /// Lines received during a transfer, to run after it.
    queued: VecDeque<LineEvent>,
    bad_lines: u32,
    pub login: Login,
    /// The TLS configuration of this session's resumption domain, made at `AUTH`.
    pub tls_config: Option<crate::tls::SessionTls>,
    /// `PBSZ` was received after `AUTH`.
    pub pbsz: bool,
    /// The data channel protection level.
    pub prot: ProtectionLevel,
    pub transfer_type: TransferType,
    /// `REST` offset for the next transfer.
    pub restart: u64,
    /// Source of a pending rename.
    pub rename_from: Option<VirtualPath>,
    /// How the next data connection will be made.
    pub data: DataSetup,
    /// `EPSV ALL` was received: only EPSV may set up data connections.
    pub epsv_all: bool,
    pub mlst_facts: MlstFacts,
    /// The algorithm `HASH` uses, chosen with `OPTS HASH`.
    pub hash_algorithm: ftps_proto::hash::HashAlgorithm,
    /// The session is ending because the server shuts down.
    shutting_down: bool,
    /// A session that is not logged in by then is closed: set at connection and at `REIN`,
    /// and not moved by commands, so that a client cannot hold a slot with `NOOP`s.
    login_deadline: tokio::time::Instant,
}

/// Normalises an address for comparisons: an IPv4-mapped IPv6 address is its IPv4 address.
pub(crate) fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// When a session starting now must be logged in by.
fn login_deadline(shared: &Shared) -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(shared.config.timeouts.login)
}

/// Runs one client connection to its end. Never panics on client input; errors end only
/// this session.
pub(crate) async fn run(
    shared: Arc<Shared>,
    listener: Arc<ListenerContext>,
    mut tcp: TcpStream,
    id: u64,
) {
    let (peer, local) = match (tcp.peer_addr(), tcp.local_addr()) {
        (Ok(p), Ok(l)) => (p, l),
        _ => return,
    };
    let _ = tcp.set_nodelay(true);
    let span = tracing::info_span!("session", id, peer = %peer);
    let fut = async move {
        let implicit = listener.implicit;
        let permit = match shared.limiter.admit(canonical_ip(peer.ip())) {
            Ok(permit) => permit,
            Err(refusal) => {
                info!(implicit, reason = refusal.message(), "connection refused");
                // An implicit-TLS client cannot read a plaintext reply; just close.
                if !implicit {
                    let reply = Reply::new(ReplyCode::SERVICE_NOT_AVAILABLE, refusal.message());
                    let _ = tcp.write_all(&reply.to_bytes()).await;
                }
                return;
            }
        };
        info!(implicit, "connected");
        let mut session = Session::new(
            shared,
            listener,
            permit,
            MaybeTls::Plain(RecordReader::new(tcp)),
            peer,
            local,
        );
        if implicit {
            if let Err(e) = session.start_tls().await {
                info!(error = %e, "implicit TLS handshake failed");
                return;
            }
            // Implicit FTPS protects the data channel by default (as FileZilla and vsftpd do).
            session.prot = ProtectionLevel::Private;
            session.pbsz = true;
        }
        let result = session.serve().await;
        match result {
            Ok(()) => info!("disconnected"),
            Err(e) => info!(error = %e, "disconnected"),
        }
    };
    tracing::Instrument::instrument(fut, span).await
}

/// Verbs of other protocols. A first line starting with one of them means a browser or a
/// mail client was pointed at us, possibly by a cross-protocol attack (ALPACA): close.
const FOREIGN_VERBS: &[&str] = &[
    "GET", "POST", "HEAD", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "HELO", "EHLO",
    "MAIL", "RCPT", "DATA", "STARTTLS",
];

fn is_foreign_verb(line: &[u8]) -> bool {
    let verb = line.split(|&b| b == b' ').next().unwrap_or_default();
    FOREIGN_VERBS
        .iter()
        .any(|v| v.as_bytes().eq_ignore_ascii_case(verb))
}

impl Session {
    fn new(
        shared: Arc<Shared>,
        listener: Arc<ListenerContext>,
        permit: SessionPermit,
        control: ControlStream,
        peer: SocketAddr,
        local: SocketAddr,
    ) -> Session {
        Session {
            login_deadline: login_deadline(&shared),
            shared,
            listener,
            permit,
            first_command: true,
            vhost: None,
            control_cert: None,
            control,
            peer,
            local,
            decoder: LineDecoder::new(MAX_LINE),
            queued: VecDeque::new(),
            bad_lines: 0,
            login: Login::Anonymous,
            tls_config: None,
            pbsz: false,
            prot: ProtectionLevel::Clear,
            transfer_type: TransferType::Image,
            restart: 0,
            rename_from: None,
            data: DataSetup::None,
            epsv_all: false,
            mlst_facts: MlstFacts::default(),
            hash_algorithm: Default::default(),
            shutting_down: false,
        }
    }

    fn config(&self) -> &crate::config::Config {
        &self.shared.config
    }

    /// The greeting, then commands until QUIT, a fatal error, a timeout or shutdown.
    async fn serve(&mut self) -> io::Result<()> {
        let banner = self.config().banner.clone();
        self.reply(ReplyCode::READY, banner).await?;
        loop {
            let event = match self.next_command().await? {
                Some(event) => event,
                None => return Ok(()),
            };
            let flow = match event {
                LineEvent::TooLong => self.too_long().await?,
                LineEvent::Line(line) => self.handle_line(&line).await?,
            };
            if flow == Flow::Close {
                let _ = self.control.shutdown().await;
                return Ok(());
            }
        }
    }

    /// Waits for the next command line, answering timeouts and shutdown itself.
    /// `None`: the connection is over.
    async fn next_command(&mut self) -> io::Result<Option<LineEvent>> {
        if let Some(event) = self.queued.pop_front() {
            return Ok(Some(event));
        }
        let timeouts = &self.config().timeouts;
        let idle = tokio::time::Instant::now() + Duration::from_secs(timeouts.idle);
        let deadline = if self.logged_in().is_some() {
            idle
        } else {
            idle.min(self.login_deadline)
        };
        if *self.shared.shutdown.borrow() && !self.shutting_down {
            self.shutting_down = true;
            self.close_with(ReplyCode::SERVICE_NOT_AVAILABLE, "Server shutting down.")
                .await;
            return Ok(None);
        }
        self.decoder.shrink();
        /// Why the wait for a command ended.
        enum Wake {
            Event(io::Result<Option<LineEvent>>),
            TimedOut,
            Shutdown,
            AccountChanged,
        }
        let wake = loop {
            let passive_expiry = self.passive_expiry();
            let mut shutdown = self.shared.shutdown.clone();
            let reloads = self.logged_in().map(|l| l.user_reloads.clone());
            tokio::select! {
                event = tokio::time::timeout_at(deadline, self.read_event()) => break match event {
                    Ok(event) => Wake::Event(event),
                    Err(_) => Wake::TimedOut,
                },
                _ = async move { shutdown.wait_for(|down| *down).await.map(|_| ()) } => {
                    break Wake::Shutdown
                }
                () = async {
                    match passive_expiry {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => {
                    // A PASV/EPSV port nobody used: close it and keep waiting for a command
                    // (reading is cancel-safe, so no byte is lost).
                    debug!("unused passive port closed");
                    self.data = DataSetup::None;
                }
                () = async {
                    let changed = match reloads {
                        Some(mut reloads) => reloads.changed().await.is_ok(),
                        None => false,
                    };
                    if !changed {
                        std::future::pending::<()>().await;
                    }
                } => {
                    if !self.account_still_valid() {
                        break Wake::AccountChanged;
                    }
                }
            }
        };
        match wake {
            Wake::Event(event) => event,
            Wake::TimedOut => {
                let text = if self.logged_in().is_some() {
                    "Timeout: closing control connection."
                } else {
                    "Login timeout: closing control connection."
                };
                info!("timed out waiting for a command");
                self.close_with(ReplyCode::SERVICE_NOT_AVAILABLE, text)
                    .await;
                Ok(None)
            }
            Wake::AccountChanged => {
                info!("account removed or its credentials changed; session ended");
                self.close_with(
                    ReplyCode::SERVICE_NOT_AVAILABLE,
                    "Your account was changed or removed; log in again.",
                )
                .await;
                Ok(None)
            }
            Wake::Shutdown => {
                self.shutting_down = true;
                self.close_with(ReplyCode::SERVICE_NOT_AVAILABLE, "Server shutting down.")
                    .await;
                Ok(None)
            }
        }
    }

    /// After a reload of the users file: whether the logged-in user still exists with the
    /// credentials it logged in with. Marks the reload as seen.
    fn account_still_valid(&mut self) -> bool {
        let users = match &self.vhost {
            Some(host) => host.users.clone(),
            None => self.shared.users.clone(),
        };
        match &mut self.login {
            Login::LoggedIn(l) => {
                l.user_reloads.borrow_and_update();
                users.still_valid(&l.user)
            }
            _ => true,
        }
    }

    /// Starts the time allowed to log in again (at `REIN`).
    pub(crate) fn restart_login_clock(&mut self) {
        self.login_deadline = login_deadline(&self.shared);
    }

    /// Reads until one line (or an over-long line) is complete. Cancel-safe: bytes are moved
    /// into the decoder only once a read has completed.
    pub(crate) async fn read_event(&mut self) -> io::Result<Option<LineEvent>> {
        let mut buf = [0u8; 1024];
        loop {
            if let Some(event) = self.decoder.next_event() {
                return Ok(Some(event));
            }
            let n = self.control.read(&mut buf).await?;
            if n == 0 {
                return Ok(None);
            }
            self.decoder.push(&buf[..n]);
        }
    }

    async fn too_long(&mut self) -> Result {
        self.bad_lines += 1;
        warn!(count = self.bad_lines, "command line over {MAX_LINE} bytes");
        if self.bad_lines >= self.config().limits.max_bad_lines {
            self.close_with(
                ReplyCode::SERVICE_NOT_AVAILABLE,
                "Too many over-long command lines; closing connection.",
            )
            .await;
            return Ok(Flow::Close);
        }
        self.reply(
            ReplyCode::SYNTAX_ERROR,
            format!("Command line too long (limit {MAX_LINE} bytes)."),
        )
        .await
    }

    async fn handle_line(&mut self, line: &[u8]) -> Result {
        if std::mem::take(&mut self.first_command) && is_foreign_verb(line) {
            warn!("first command is another protocol's verb; closing (cross-protocol defence)");
            return Ok(Flow::Close);
        }
        match command::parse(line) {
            Ok(cmd) => {
                match &cmd {
                    Command::Pass(_) => debug!("command: PASS <hidden>"),
                    other => debug!(command = ?other, "command"),
                }
                self.dispatch(cmd).await
            }
            Err(e) => self.reply(e.code(), e.to_string()).await,
        }
    }

    async fn dispatch(&mut self, cmd: Command) -> Result {
        use Command::*;
        // RNFR must be followed directly by RNTO: any other command forgets it.
        let rename_from = self.rename_from.take();
        if !self.allowed_before_login(&cmd) && self.logged_in().is_none() {
            return self
                .reply(
                    ReplyCode::NOT_LOGGED_IN,
                    "Please log in with USER and PASS first.",
                )
                .await;
        }
        match cmd {
            User(name) => self.cmd_user(name).await,
            Pass(pass) => self.cmd_pass(pass).await,
            Auth(mech) => self.cmd_auth(&mech).await,
            Pbsz(size) => self.cmd_pbsz(size).await,
            Prot(level) => self.cmd_prot(level).await,
            Ccc => self.cmd_ccc().await,
            Cdc => self.cmd_prot(ProtectionLevel::Clear).await,
            Quit => self.cmd_quit().await,
            Acct(_) => {
                self.reply(ReplyCode::SUPERFLUOUS, "ACCT not needed on this server.")
                    .await
            }
            Noop => self.reply(ReplyCode::OK, "NOOP ok.").await,
            Syst => self.reply(ReplyCode::SYSTEM_TYPE, "UNIX Type: L8").await,
            Feat => self.cmd_feat().await,
            Opts(opts) => self.cmd_opts(&opts).await,
            Help(topic) => self.cmd_help(topic.as_deref()).await,
            Stat(None) => self.cmd_stat().await,
            Stat(Some(args)) => self.cmd_stat_path(args).await,
            Type(t) => self.cmd_type(t).await,
            Stru => self.reply(ReplyCode::OK, "Structure set to F.").await,
            Mode => self.reply(ReplyCode::OK, "Mode set to S.").await,
            Allo => {
                self.reply(ReplyCode::SUPERFLUOUS, "ALLO not needed on this server.")
                    .await
            }
            Pwd => self.cmd_pwd().await,
            Cwd(path) => self.cmd_cwd(&path).await,
            Cdup => self.cmd_cwd("..").await,
            Mkd(path) => self.cmd_mkd(&path).await,
            Rmd(path) => self.cmd_rmd(&path).await,
            Dele(path) => self.cmd_dele(&path).await,
            Rnfr(path) => self.cmd_rnfr(&path).await,
            Rnto(path) => self.cmd_rnto(rename_from, &path).await,
            Size(path) => self.cmd_size(&path).await,
            Mdtm(path) => self.cmd_mdtm(&path).await,
            Mlst(path) => self.cmd_mlst(path.as_deref()).await,
            Pasv => self.cmd_pasv().await,
            Epsv(arg) => self.cmd_epsv(arg).await,
            Port(addr) => self.cmd_active(SocketAddr::V4(addr), "PORT").await,
            Eprt(addr) => self.cmd_active(addr, "EPRT").await,
            Rest(offset) => self.cmd_rest(offset).await,
            Retr(path) => self.cmd_retr(&path).await,
            Stor(path) => self.cmd_store(&path, false).await,
            Appe(path) => self.cmd_store(&path, true).await,
            List(args) => self.cmd_list(args, transfer::ListFormat::Unix).await,
            Nlst(args) => self.cmd_list(args, transfer::ListFormat::Names).await,
            Mlsd(path) => {
                let args = command::ListArgs {
                    options: "a".into(),
                    path,
                };
                self.cmd_list(args, transfer::ListFormat::Mlsd).await
            }
            Host(name) => self.cmd_host(&name).await,
            Abor => {
                self.reply(ReplyCode::DATA_CLOSED_IDLE, "No transfer to abort.")
                    .await
            }
            Rein => self.cmd_rein().await,
            Stou => self.cmd_stou().await,
            Site(args) => self.cmd_site(&args).await,
            Lang(tag) => self.cmd_lang(tag.as_deref()).await,
            Clnt(name) => self.cmd_clnt(&name).await,
            Mfmt(time, path) => self.cmd_mfmt(time, &path).await,
            Hash(path) => self.cmd_hash(&path).await,
            other => {
                self.reply(
                    ReplyCode::NOT_IMPLEMENTED,
                    format!("Command {} not implemented.", other.verb()),
                )
                .await
            }
        }
    }

    fn allowed_before_login(&self, cmd: &Command) -> bool {
        use Command::*;
        matches!(
            cmd,
            User(_)
                | Pass(_)
                | Auth(_)
                | Pbsz(_)
                | Prot(_)
                | Ccc
                | Cdc
                | Quit
                | Noop
                | Syst
                | Feat
                | Opts(_)
                | Help(_)
                | Stat(None)
                | Acct(_)
                | Host(_)
                | Lang(_)
                | Rein
                | Smnt(_)
                | Site(_)
                | Clnt(_)
        )
    }

    /// The logged-in user, if any.
    pub(crate) fn logged_in(&self) -> Option<&LoggedIn> {
        match &self.login {
            Login::LoggedIn(l) => Some(l),
            _ => None,
        }
    }

    /// Sends one reply and flushes it.
    pub(crate) async fn reply(&mut self, code: ReplyCode, text: impl Into<String>) -> Result {
        self.send(Reply::new(code, text)).await
    }

    /// Sends a prepared (possibly multi-line) reply. A client that does not take it within
    /// `timeouts.reply_write` ends the session (an error), instead of holding it forever.
    pub(crate) async fn send(&mut self, reply: Reply) -> Result {
        debug!(reply = %reply, "reply");
        let bytes = reply.to_bytes();
        let limit = Duration::from_secs(self.config().timeouts.reply_write);
        let write = async {
            self.control.write_all(&bytes).await?;
            self.control.flush().await
        };
        match tokio::time::timeout(limit, write).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client does not read its replies",
                ))
            }
        }
        Ok(Flow::Continue)
    }

    /// Sends a final reply and closes the connection, ignoring write errors.
    pub(crate) async fn close_with(&mut self, code: ReplyCode, text: &str) {
        let _ = self.reply(code, text).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), self.control.shutdown()).await;
    }
}

/// The reply for a failed file-system operation. The text never includes host paths.
pub(crate) fn fs_error(e: &io::Error) -> (ReplyCode, &'static str) {
    use io::ErrorKind::*;
    // ELOOP (a symbolic link loop) has no stable ErrorKind.
    if e.raw_os_error() == Some(libc_eloop()) {
        return (
            ReplyCode::FILE_UNAVAILABLE,
            "Too many levels of symbolic links.",
        );
    }
    match e.kind() {
        NotFound => (ReplyCode::FILE_UNAVAILABLE, "No such file or directory."),
        PermissionDenied => (ReplyCode::FILE_UNAVAILABLE, "Permission denied."),
        AlreadyExists => (ReplyCode::FILE_UNAVAILABLE, "File exists."),
        DirectoryNotEmpty => (ReplyCode::FILE_UNAVAILABLE, "Directory not empty."),
        IsADirectory => (ReplyCode::FILE_UNAVAILABLE, "Is a directory."),
        NotADirectory => (ReplyCode::FILE_UNAVAILABLE, "Not a directory."),
        InvalidInput => (
            ReplyCode::FILE_UNAVAILABLE,
            "Not a regular file, or invalid offset.",
        ),
        InvalidFilename => (ReplyCode::BAD_FILE_NAME, "File name not allowed."),
        StorageFull => (
            ReplyCode::INSUFFICIENT_STORAGE,
            "Insufficient storage space.",
        ),
        QuotaExceeded => (ReplyCode::EXCEEDED_STORAGE, "Disk quota exceeded."),
        FileTooLarge => (ReplyCode::EXCEEDED_STORAGE, "File too large."),
        _ => (ReplyCode::LOCAL_ERROR, "Local error in processing."),
    }
}

/// ELOOP on Linux and most Unixes (40 on Linux; 62 on the BSDs and macOS).
const fn libc_eloop() -> i32 {
    if cfg!(any(target_os = "linux", target_os = "android")) {
        40
    } else {
        62
    }
}

impl Session {
    /// The user's root and the virtual path an argument names. Only called after the
    /// login gate in `dispatch`.
    pub(crate) fn resolve(&self, arg: &str) -> Option<(Root, VirtualPath)> {
        self.logged_in().map(|l| (l.root.clone(), l.cwd.join(arg)))
    }

    /// Replies 550 and returns false unless the user may write.
    pub(crate) async fn check_write(&mut self) -> io::Result<bool> {
        let can = self.logged_in().is_some_and(|l| l.user.access.can_write());
        if !can {
            self.reply(
                ReplyCode::FILE_UNAVAILABLE,
                "Permission denied: read-only account.",
            )
            .await?;
        }
        Ok(can)
    }

    /// Replies for a failed file-system operation, logging unexpected errors.
    pub(crate) async fn reply_fs_error(
        &mut self,
        op: &str,
        path: &VirtualPath,
        e: &io::Error,
    ) -> Result {
        let (code, text) = fs_error(e);
        if code == ReplyCode::LOCAL_ERROR {
            warn!(op, path = %path, error = %e, "file system error");
        }
        self.reply(code, text).await
    }
}
