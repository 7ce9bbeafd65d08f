//! One control connection: the read–dispatch–reply loop (RFC 959 §5.4).
//!
//! Commands are handled one at a time, in order, in this task; every reply is written before
//! the next command is read, so replies always come in command order, pipelined commands
//! included. While a transfer runs, the loop keeps reading the control connection so that
//! `ABOR` and `STAT` are answered at once; other commands wait for the transfer's end.
//!
//! The session's state is typed ([`state`]): the login, the control connection's security,
//! and the parameters commands set for later ones. [`dispatch`](Session::dispatch) lets only
//! the commands allowed before login run without a user, and lends the logged-in user to
//! every other handler, so a handler that needs a user has one.
//!
//! Submodules: [`state`], [`control`] (the control connection: reading commands, writing
//! replies, waiting for work while answering `ABOR`/`STAT`), [`access`] (login and
//! security), [`navigate`], [`files`], [`info`], [`data`] (the data path: set-up, transfer
//! commands, connection, job and pump), [`listing`], [`hash`], [`site`] and [`rein`].

mod access;
mod control;
mod data;
mod files;
mod hash;
mod info;
mod listing;
mod navigate;
mod rein;
mod site;
mod state;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ftps_proto::command::{self, Command, ProtectionLevel};
use ftps_proto::line::LineEvent;
use ftps_proto::{Reply, ReplyCode};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tracing::{debug, info, warn};

use crate::context::{ListenerContext, Shared, VirtualHost};
use crate::limits::SessionPermit;
use crate::ops::metrics::{Channel, StorageError};
use crate::storage::VirtualPath;
use crate::stream::{ControlStream, MaybeTls, RecordReader};
use control::{fs_error, Control, MAX_LINE};
use data::DataSetup;
use listing::ListFormat;
use state::{ControlSecurity, LoggedIn, Login, TransferParams};

/// How the metrics count a storage failure.
pub(crate) fn storage_error_kind(e: &io::Error) -> StorageError {
    if crate::storage::StorageUnavailable::is(e) {
        StorageError::Unavailable
    } else {
        StorageError::Local
    }
}

/// What to do after a command.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Close,
}

type Result<T = Flow> = io::Result<T>;

/// Per-connection state.
pub(crate) struct Session {
    shared: Arc<Shared>,
    /// The listener this connection arrived on, and its policies.
    listener: Arc<ListenerContext>,
    /// This session's slot in the connection limits.
    permit: SessionPermit,
    /// No command has been received yet.
    first_command: bool,
    /// The virtual host chosen by HOST or by the TLS server name.
    vhost: Option<Arc<VirtualHost>>,
    control: Control,
    /// What protects the control connection and the data channel.
    security: ControlSecurity,
    peer: SocketAddr,
    local: SocketAddr,
    /// Over-long command lines received so far.
    bad_lines: u32,
    login: Login,
    /// What commands set for the commands after them; back to the defaults at `REIN`.
    params: TransferParams,
    /// The session is ending because the server shuts down.
    shutting_down: bool,
    /// The session's number, as the log and the events show it.
    id: u64,
    /// Behind a balancer, the address the client connected to on it (the PROXY header's
    /// destination).
    connected_to: Option<SocketAddr>,
    /// The session's entry in the list the admin API shows.
    registered: crate::ops::sessions::Registered,
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
    let (connected_from, local) = match (tcp.peer_addr(), tcp.local_addr()) {
        (Ok(p), Ok(l)) => (p, l),
        _ => return,
    };
    let _ = tcp.set_nodelay(true);
    // Behind a balancer, the client is who the PROXY header says; the span names both.
    let (peer, connected_to) = if listener.proxy_protocol {
        let config = &shared.config.proxy_protocol;
        match crate::proxy::proxied(&mut tcp, connected_from, config).await {
            Ok(proxied) => (proxied.client, proxied.destination),
            Err(e) => {
                info!(session = id, balancer = %connected_from, error = %e, "connection closed: PROXY protocol");
                return;
            }
        }
    } else {
        (connected_from, None)
    };
    let span = if listener.proxy_protocol {
        tracing::info_span!("session", id, peer = %peer, via = %connected_from)
    } else {
        tracing::info_span!("session", id, peer = %peer)
    };
    let fut = async move {
        let implicit = listener.implicit;
        if listener.proxy_protocol {
            // The server's address rules, checked at accept for direct connections.
            if let Err(rule) = shared.config.addresses.check(peer.ip()) {
                info!(rule = %rule, implicit, "connection refused by the address rules");
                if !implicit {
                    let reply = Reply::new(
                        ReplyCode::SERVICE_NOT_AVAILABLE,
                        "Service not available: connections from your address are not allowed.",
                    );
                    let _ = tcp.write_all(&reply.to_bytes()).await;
                }
                return;
            }
        }
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
        let _open = OpenSession::start(&shared);
        let mut session = Session::new(
            shared,
            listener,
            permit,
            MaybeTls::Plain(RecordReader::new(tcp)),
            peer,
            local,
            id,
        );
        session.connected_to = connected_to;
        if implicit {
            if let Err(e) = session.start_tls().await {
                info!(error = %e, "implicit TLS handshake failed");
                session.shared.ops.metrics.tls_failure(Channel::Control);
                return;
            }
            // Implicit FTPS protects the data channel by default (as FileZilla and vsftpd do).
            session.security.protect_data();
        }
        let result = session.serve().await;
        session.logged_out();
        match result {
            Ok(()) => info!("disconnected"),
            Err(e) => info!(error = %e, "disconnected"),
        }
    };
    tracing::Instrument::instrument(fut, span).await
}

/// Counts a control connection in the metrics while it is open.
struct OpenSession(Arc<Shared>);

impl OpenSession {
    fn start(shared: &Arc<Shared>) -> OpenSession {
        shared.ops.metrics.session_started();
        OpenSession(shared.clone())
    }
}

impl Drop for OpenSession {
    fn drop(&mut self) {
        self.0.ops.metrics.session_ended();
    }
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

/// A SITE command's subcommand and its arguments.
fn site_subcommand(args: &str) -> (&str, &str) {
    let args = args.trim_start();
    args.split_once(' ').unwrap_or((args, ""))
}

/// Commands that run without a logged-in user; every other one gets `530` before login.
fn allowed_before_login(cmd: &Command) -> bool {
    use Command::*;
    match cmd {
        // SITE HELP does; SITE CHMOD changes a file and SITE QUOTA is the user's.
        Site(args) => {
            let sub = site_subcommand(args).0;
            !sub.eq_ignore_ascii_case("CHMOD") && !sub.eq_ignore_ascii_case("QUOTA")
        }
        _ => matches!(
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
                | Clnt(_)
        ),
    }
}

impl Session {
    fn new(
        shared: Arc<Shared>,
        listener: Arc<ListenerContext>,
        permit: SessionPermit,
        control: ControlStream,
        peer: SocketAddr,
        local: SocketAddr,
        id: u64,
    ) -> Session {
        let reply_write = Duration::from_secs(shared.config.timeouts.reply_write);
        let registered = shared.sessions.register(id, peer);
        let ended = registered.ended();
        Session {
            id,
            connected_to: None,
            registered,
            login_deadline: login_deadline(&shared),
            shared,
            listener,
            permit,
            first_command: true,
            vhost: None,
            control: Control::new(control, reply_write, ended),
            security: ControlSecurity::Clear,
            peer,
            local,
            bad_lines: 0,
            login: Login::Anonymous,
            params: TransferParams::default(),
            shutting_down: false,
        }
    }

    fn config(&self) -> &crate::config::Config {
        &self.shared.config
    }

    /// Reports an event of the logged-in `user` (see [`crate::ops::events`]).
    fn event(
        &self,
        user: &LoggedIn,
        kind: crate::ops::events::EventKind,
        path: Option<&VirtualPath>,
        target: Option<&VirtualPath>,
        bytes: Option<u64>,
    ) {
        if !self.shared.ops.wants(kind) {
            return;
        }
        self.shared.ops.event(crate::ops::events::Event {
            kind,
            time: std::time::SystemTime::now(),
            session: self.id,
            user: user.name().to_string(),
            host: self.vhost.as_ref().map(|h| h.name.clone()),
            client: canonical_ip(self.peer.ip()),
            path: path.map(|p| p.as_str().to_string()),
            target: target.map(|p| p.as_str().to_string()),
            bytes,
        });
    }

    /// The session's user, if any, is logged out now (the session ends, or `REIN`).
    fn logged_out(&mut self) {
        if let Some(user) = self.login.user() {
            self.event(
                user,
                crate::ops::events::EventKind::Logout,
                None,
                None,
                None,
            );
        }
        self.registered.set_user(None, None);
    }

    /// Closes the session (421) because the administrator ended it.
    async fn end_by_administrator(&mut self) {
        info!("session ended by the administrator");
        self.close_with(
            ReplyCode::SERVICE_NOT_AVAILABLE,
            "Session ended by the administrator.",
        )
        .await;
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
        if let Some(event) = self.control.next_queued() {
            return Ok(Some(event));
        }
        let timeouts = &self.config().timeouts;
        let idle = tokio::time::Instant::now() + Duration::from_secs(timeouts.idle);
        let deadline = if self.login.user().is_some() {
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
        self.control.shrink();
        /// Why the wait for a command ended.
        enum Wake {
            Event(io::Result<Option<LineEvent>>),
            TimedOut,
            Shutdown,
            AccountChanged,
            Ended,
        }
        let wake = loop {
            let passive_expiry = self.passive_expiry();
            let mut shutdown = self.shared.shutdown.clone();
            let reloads = self.login.user().map(LoggedIn::reloads);
            let ended = self.control.ended();
            tokio::select! {
                event = tokio::time::timeout_at(deadline, self.control.read_event()) => break match event {
                    Ok(event) => Wake::Event(event),
                    Err(_) => Wake::TimedOut,
                },
                _ = async move { shutdown.wait_for(|down| *down).await.map(|_| ()) } => {
                    break Wake::Shutdown
                }
                () = ended.cancelled() => break Wake::Ended,
                () = async {
                    match passive_expiry {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => {
                    // A PASV/EPSV port nobody used: close it and keep waiting for a command
                    // (reading is cancel-safe, so no byte is lost).
                    debug!("unused passive port closed");
                    self.params.data = DataSetup::None;
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
                let text = if self.login.user().is_some() {
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
            Wake::Ended => {
                self.end_by_administrator().await;
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
            Some(host) => &host.users,
            None => &self.shared.users,
        };
        match &mut self.login {
            Login::LoggedIn(user) => user.still_valid(users),
            _ => true,
        }
    }

    /// Starts the time allowed to log in again (at `REIN`).
    fn restart_login_clock(&mut self) {
        self.login_deadline = login_deadline(&self.shared);
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

    /// The login gate: commands allowed before login run as they are; every other one gets
    /// `530` unless a user is logged in, and then runs with that user.
    ///
    /// The user is lent to the handler: taken out of `login` for the handler's duration and
    /// put back after it, so that the handler can hold it beside `&mut self`. No handler
    /// that receives a user changes the login.
    async fn dispatch(&mut self, cmd: Command) -> Result {
        // RNFR must be followed directly by RNTO: any other command forgets it.
        let rename_from = self.params.rename_from.take();
        if allowed_before_login(&cmd) {
            return self.dispatch_open(cmd).await;
        }
        let mut user = match std::mem::replace(&mut self.login, Login::Anonymous) {
            Login::LoggedIn(user) => user,
            other => {
                self.login = other;
                return self
                    .reply(
                        ReplyCode::NOT_LOGGED_IN,
                        "Please log in with USER and PASS first.",
                    )
                    .await;
            }
        };
        let flow = self.dispatch_user(cmd, &mut user, rename_from).await;
        self.login = Login::LoggedIn(user);
        flow
    }

    /// The commands allowed before login.
    async fn dispatch_open(&mut self, cmd: Command) -> Result {
        use Command::*;
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
            Host(name) => self.cmd_host(&name).await,
            Rein => self.cmd_rein().await,
            Site(args) => self.cmd_site(&args).await,
            Lang(tag) => self.cmd_lang(tag.as_deref()).await,
            Clnt(name) => self.cmd_clnt(&name).await,
            other => self.not_implemented(&other).await,
        }
    }

    /// The commands that need a logged-in user.
    async fn dispatch_user(
        &mut self,
        cmd: Command,
        user: &mut LoggedIn,
        rename_from: Option<VirtualPath>,
    ) -> Result {
        use Command::*;
        match cmd {
            Stat(Some(args)) => self.cmd_stat_path(user, args).await,
            Type(t) => self.cmd_type(t).await,
            Stru => self.reply(ReplyCode::OK, "Structure set to F.").await,
            Mode => self.reply(ReplyCode::OK, "Mode set to S.").await,
            Allo => {
                self.reply(ReplyCode::SUPERFLUOUS, "ALLO not needed on this server.")
                    .await
            }
            Pwd => self.cmd_pwd(user).await,
            Cwd(path) => self.cmd_cwd(user, &path).await,
            Cdup => self.cmd_cwd(user, "..").await,
            Mkd(path) => self.cmd_mkd(user, &path).await,
            Rmd(path) => self.cmd_rmd(user, &path).await,
            Dele(path) => self.cmd_dele(user, &path).await,
            Rnfr(path) => self.cmd_rnfr(user, &path).await,
            Rnto(path) => self.cmd_rnto(user, rename_from, &path).await,
            Size(path) => self.cmd_size(user, &path).await,
            Mdtm(path) => self.cmd_mdtm(user, &path).await,
            Mlst(path) => self.cmd_mlst(user, path.as_deref()).await,
            Mfmt(time, path) => self.cmd_mfmt(user, time, &path).await,
            Pasv => self.cmd_pasv().await,
            Epsv(arg) => self.cmd_epsv(arg).await,
            Port(addr) => self.cmd_active(user, SocketAddr::V4(addr), "PORT").await,
            Eprt(addr) => self.cmd_active(user, addr, "EPRT").await,
            Rest(offset) => self.cmd_rest(offset).await,
            Retr(path) => self.cmd_retr(user, &path).await,
            Stor(path) => self.cmd_store(user, &path, false).await,
            Appe(path) => self.cmd_store(user, &path, true).await,
            Stou => self.cmd_stou(user).await,
            List(args) => self.cmd_list(user, args, ListFormat::Unix).await,
            Nlst(args) => self.cmd_list(user, args, ListFormat::Names).await,
            Mlsd(path) => {
                let args = command::ListArgs {
                    options: "a".into(),
                    path,
                };
                self.cmd_list(user, args, ListFormat::Mlsd).await
            }
            Abor => {
                self.reply(ReplyCode::DATA_CLOSED_IDLE, "No transfer to abort.")
                    .await
            }
            Hash(path) => self.cmd_hash(user, &path).await,
            Site(args) => self.cmd_site_user(user, &args).await,
            other => self.not_implemented(&other).await,
        }
    }

    /// An over-long command line: 500, and the connection closed after too many.
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

    /// Sends one reply and flushes it.
    async fn reply(&mut self, code: ReplyCode, text: impl Into<String>) -> Result {
        self.send(Reply::new(code, text)).await
    }

    /// Sends a prepared (possibly multi-line) reply (see [`Control::send`]).
    async fn send(&mut self, reply: Reply) -> Result {
        self.control.send(reply).await?;
        Ok(Flow::Continue)
    }

    /// Sends a final reply and closes the connection, ignoring write errors.
    async fn close_with(&mut self, code: ReplyCode, text: &str) {
        let _ = self.reply(code, text).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), self.control.shutdown()).await;
    }

    /// Replies for a failed file-system operation, logging unexpected errors.
    async fn reply_fs_error(&mut self, op: &str, path: &VirtualPath, e: &io::Error) -> Result {
        let (code, text) = fs_error(e);
        if code == ReplyCode::LOCAL_ERROR {
            warn!(op, path = %path, error = %e, "file system error");
            self.shared.ops.metrics.storage_error(storage_error_kind(e));
        }
        self.reply(code, text).await
    }

    /// 502 for a command this server does not implement.
    async fn not_implemented(&mut self, cmd: &Command) -> Result {
        self.reply(
            ReplyCode::NOT_IMPLEMENTED,
            format!("Command {} not implemented.", cmd.verb()),
        )
        .await
    }

    /// Replies 550 and returns false unless the user may write.
    async fn check_write(&mut self, user: &LoggedIn) -> io::Result<bool> {
        let can = user.can_write();
        if !can {
            self.reply(
                ReplyCode::FILE_UNAVAILABLE,
                "Permission denied: read-only account.",
            )
            .await?;
        }
        Ok(can)
    }
}
