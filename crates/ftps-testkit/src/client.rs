//! A small FTPS client that sends raw lines, for protocol-level tests: every unexpected
//! reply panics with the transcript of the connection.
//!
//! It trusts exactly the server's certificate (pinned by SHA-256 fingerprint) and gives each
//! control connection one `ClientConfig` with its own session cache, so data connections
//! resume the control connection's TLS session, as the server requires.

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ftps_proto::Reply;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, HandshakeKind};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::ftpsd::Server;
use crate::line::{self, LineConn};
use crate::stream::{self, Stream};
use crate::tls::localhost;
pub use crate::tls::{
    client_config, client_config_alpn, client_config_with_cert, fingerprint, Tls,
};

/// Longest wait for any reply or data; a server that stays silent fails the test.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The longest reply accepted, in lines.
const MAX_REPLY_LINES: usize = 1000;

/// Which passive command opens data connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Passive {
    /// `PASV` (IPv4 only, RFC 959).
    Pasv,
    /// `EPSV` (RFC 2428).
    Epsv,
}

/// Where and as whom to log in, owned, for sessions in spawned tasks.
#[derive(Clone, Debug)]
pub struct Login {
    /// The explicit FTPS listener.
    pub addr: SocketAddr,
    /// The server certificate's fingerprint, `AB:CD:...`.
    pub fingerprint: String,
    /// The user.
    pub user: String,
    /// Its password.
    pub password: String,
}

impl Login {
    /// `user` with `password` on `server`'s explicit FTPS listener.
    pub fn new(server: &Server, user: &str, password: &str) -> Login {
        Login {
            addr: server.explicit,
            fingerprint: server.fingerprint.clone(),
            user: user.into(),
            password: password.into(),
        }
    }

    /// The user `ftps` of `server`.
    pub fn default_user(server: &Server) -> Login {
        Login::new(server, "ftps", &server.password)
    }

    /// Explicit FTPS connection, AUTH TLS, USER and PASS.
    pub async fn logged_in(&self) -> Control {
        let mut c = Control::connect(self.addr, &self.fingerprint).await;
        c.auth_tls().await;
        c.user_pass(&self.user, &self.password).await;
        c
    }

    /// [`Login::logged_in`], then PBSZ 0 and PROT P, as [`Control::login`].
    pub async fn protected(&self) -> Control {
        let mut c = self.logged_in().await;
        c.protect().await;
        c
    }
}

/// What happened during a transfer command.
#[derive(Debug)]
pub struct Transfer {
    /// The first reply to the command (150/125, or a refusal).
    pub first: Reply,
    /// The final reply after the data moved (226), if the first was preliminary.
    pub last: Option<Reply>,
    /// Bytes received on the data connection.
    pub data: Vec<u8>,
    /// How the data connection's TLS handshake went.
    pub handshake: Option<HandshakeKind>,
    /// A failure on the data connection (handshake, read, write, missing close_notify).
    pub data_error: Option<String>,
}

impl Transfer {
    /// The code of the final reply (or of the refusal).
    pub fn code(&self) -> u16 {
        self.last.as_ref().unwrap_or(&self.first).code.0
    }
}

/// One control connection.
pub struct Control {
    conn: LineConn,
    /// Used for the control connection and, so they resume it, every data connection.
    pub tls: Arc<ClientConfig>,
    peer: SocketAddr,
    /// Every line sent and reply received, for failure messages.
    pub transcript: String,
    /// Whether PROT P is in force, so data connections use TLS.
    pub protected: bool,
    /// Which passive command data connections are opened with.
    pub passive: Passive,
    /// The TLS server name (SNI) for the control and data connections.
    pub server_name: ServerName<'static>,
}

impl Control {
    /// Connects in plaintext (explicit FTPS) and reads the 220 greeting.
    pub async fn connect(addr: SocketAddr, fingerprint: &str) -> Control {
        Self::connect_with(addr, client_config(fingerprint, Tls::Any)).await
    }

    /// Connects in plaintext and returns the greeting, whatever it is.
    pub async fn connect_raw(addr: SocketAddr, fingerprint: &str) -> (Control, Reply) {
        let tcp = tcp_connect(addr).await;
        let mut control = Control::new(tcp, client_config(fingerprint, Tls::Any), addr);
        let greeting = control.reply().await;
        (control, greeting)
    }

    /// Takes over a connection on which the test already sent something (a PROXY protocol
    /// header) and reads the 220 (or whatever the server answers first).
    pub async fn connect_over(
        tcp: TcpStream,
        addr: SocketAddr,
        fingerprint: &str,
    ) -> (Control, Reply) {
        let mut control = Control::new(tcp, client_config(fingerprint, Tls::Any), addr);
        let greeting = control.reply().await;
        (control, greeting)
    }

    /// Connects in plaintext with the TLS configuration `tls` for later, and reads the 220.
    pub async fn connect_with(addr: SocketAddr, tls: Arc<ClientConfig>) -> Control {
        let tcp = tcp_connect(addr).await;
        let mut control = Control::new(tcp, tls, addr);
        control.expect_reply(220).await;
        control
    }

    /// Connects with TLS from the first byte (implicit FTPS) and reads the 220 greeting.
    pub async fn connect_implicit(addr: SocketAddr, fingerprint: &str) -> Control {
        let tls = client_config(fingerprint, Tls::Any);
        let tcp = tcp_connect(addr).await;
        let mut control = Control::new(tcp, tls.clone(), addr);
        control
            .conn
            .start_tls(tls, localhost(), "implicit TLS handshake")
            .await
            .expect("implicit TLS handshake");
        control.expect_reply(220).await;
        control
    }

    fn new(tcp: TcpStream, tls: Arc<ClientConfig>, peer: SocketAddr) -> Control {
        Control {
            conn: LineConn::new(tcp, MAX_REPLY_LINES, TIMEOUT),
            tls,
            peer,
            transcript: String::new(),
            protected: false,
            passive: Passive::Epsv,
            server_name: localhost(),
        }
    }

    /// Explicit FTPS connection, AUTH TLS, login, PBSZ 0 and PROT P.
    pub async fn login(server: &Server, user: &str, password: &str) -> Control {
        Login::new(server, user, password).protected().await
    }

    /// [`Control::login`] as the user `ftps`.
    pub async fn login_default(server: &Server) -> Control {
        Self::login(server, "ftps", &server.password).await
    }

    /// [`Control::login_default`] with the TLS configuration `tls`.
    pub async fn login_with(server: &Server, tls: Arc<ClientConfig>) -> Control {
        let mut c = Control::connect_with(server.explicit, tls).await;
        c.auth_tls().await;
        c.user_pass("ftps", &server.password).await;
        c.protect().await;
        c
    }

    /// Explicit FTPS connection to `server` and AUTH TLS, not logged in.
    pub async fn connect_auth(server: &Server) -> Control {
        let mut c = Control::connect(server.explicit, &server.fingerprint).await;
        c.auth_tls().await;
        c
    }

    /// Sets the TLS server name sent from now on (e.g. a virtual host's).
    pub fn set_server_name(&mut self, name: &str) {
        self.server_name = ServerName::try_from(name.to_string()).expect("server name");
    }

    /// Whether the control connection runs TLS.
    pub fn is_tls(&self) -> bool {
        self.conn.is_tls()
    }

    /// Drops the control connection with a reset (no QUIT, no FIN, no close_notify).
    pub fn reset(mut self) {
        if let Some(s) = self.conn.take_stream() {
            stream::reset(s.into_transport().into_inner());
        }
    }

    /// `AUTH TLS`, expecting 234, then the TLS handshake.
    pub async fn auth_tls(&mut self) {
        self.expect("AUTH TLS", 234).await;
        self.start_tls()
            .await
            .expect("TLS handshake after AUTH TLS");
    }

    /// Runs the TLS handshake on the control connection.
    pub async fn start_tls(&mut self) -> io::Result<()> {
        self.assert_nothing_pending("server sent bytes after its AUTH reply, before the handshake");
        let name = self.server_name.clone();
        self.conn
            .start_tls(self.tls.clone(), name, "control TLS handshake")
            .await
    }

    /// `USER` expecting 331, then `PASS` expecting 230.
    pub async fn user_pass(&mut self, user: &str, password: &str) {
        self.expect(&format!("USER {user}"), 331).await;
        self.expect(&format!("PASS {password}"), 230).await;
    }

    /// Ends TLS on the control connection after a `200` to `CCC` (RFC 4217 §6): sends
    /// close_notify, reads up to the server's close_notify, and continues in plaintext.
    pub async fn end_tls(&mut self) -> io::Result<()> {
        self.assert_nothing_pending("server sent more after its CCC reply");
        let Some(Stream::Tls(mut stream)) = self.conn.take_stream() else {
            panic!("end_tls on a connection without TLS");
        };
        stream.get_mut().1.send_close_notify();
        line::with_timeout(TIMEOUT, "close_notify", async {
            stream.flush().await?;
            let mut rest = Vec::new();
            stream.read_to_end(&mut rest).await?;
            if rest.is_empty() {
                Ok(())
            } else {
                Err(io::Error::other(format!(
                    "{} bytes inside TLS after the CCC reply",
                    rest.len()
                )))
            }
        })
        .await?;
        let _ = writeln!(self.transcript, "(TLS ended, plaintext from here)");
        self.conn.set_stream(Stream::Plain(stream.into_inner().0));
        Ok(())
    }

    /// Like [`Control::end_tls`], but reads the server's close_notify first and then sends
    /// its own close_notify and the plaintext `line` in one TCP write, as a client may.
    pub async fn end_tls_then_send(&mut self, line: &str) -> io::Result<()> {
        let Some(Stream::Tls(mut stream)) = self.conn.take_stream() else {
            panic!("end_tls_then_send on a connection without TLS");
        };
        let mut rest = Vec::new();
        line::with_timeout(TIMEOUT, "close_notify", stream.read_to_end(&mut rest)).await?;
        let (tcp, conn) = stream.get_mut();
        conn.send_close_notify();
        let mut bytes = Vec::new();
        while conn.wants_write() {
            conn.write_tls(&mut bytes)?;
        }
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        line::write_flush(tcp, &bytes).await?;
        let _ = writeln!(
            self.transcript,
            "(TLS ended)\n> {} (in the write with close_notify)",
            shorten(line)
        );
        self.conn.set_stream(Stream::Plain(stream.into_inner().0));
        Ok(())
    }

    /// Asserts that no bytes wait beyond the last reply: where TLS starts or ends, they
    /// would belong to the wrong layer.
    fn assert_nothing_pending(&self, what: &str) {
        assert!(
            self.conn.pending().is_empty(),
            "{what}: {:?}\n{}",
            String::from_utf8_lossy(self.conn.pending()),
            self.transcript
        );
    }

    /// `PBSZ 0` and `PROT P`.
    pub async fn protect(&mut self) {
        self.expect("PBSZ 0", 200).await;
        self.expect("PROT P", 200).await;
        self.protected = true;
    }

    /// Sends one command line and reads one reply.
    pub async fn cmd(&mut self, line: &str) -> Reply {
        self.send_line(line).await;
        self.reply().await
    }

    /// Sends a command and asserts the reply code.
    pub async fn expect(&mut self, line: &str, code: u16) -> Reply {
        let reply = self.cmd(line).await;
        assert_eq!(
            reply.code.0,
            code,
            "`{}` got {reply}, expected {code}\n--- transcript ---\n{}",
            shorten(line),
            self.transcript
        );
        reply
    }

    /// Reads one reply and asserts its code.
    pub async fn expect_reply(&mut self, code: u16) -> Reply {
        let reply = self.reply().await;
        assert_eq!(
            reply.code.0, code,
            "got {reply}, expected {code}\n--- transcript ---\n{}",
            self.transcript
        );
        reply
    }

    /// Sends one line (CRLF added).
    pub async fn send_line(&mut self, line: &str) {
        let mut bytes = line.as_bytes().to_vec();
        bytes.extend_from_slice(b"\r\n");
        self.send_raw(&bytes).await;
    }

    /// Sends bytes as one write (used for pipelining and malformed input).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        for line in String::from_utf8_lossy(bytes).split_terminator("\r\n") {
            let _ = writeln!(self.transcript, "> {}", shorten(line));
        }
        let result = self.conn.write_all(bytes).await;
        if let Err(e) = result {
            panic!("cannot send: {e}\n--- transcript ---\n{}", self.transcript);
        }
    }

    /// Sends a line, returning the error instead of panicking (the server may have closed).
    pub async fn try_send_line(&mut self, line: &str) -> io::Result<()> {
        let _ = writeln!(self.transcript, "> {}", shorten(line));
        let bytes = format!("{line}\r\n");
        self.conn.write_all(bytes.as_bytes()).await
    }

    /// Sends bytes without recording them in the transcript (for bulk junk).
    pub async fn send_raw_quiet(&mut self, bytes: &[u8]) {
        let result = self.conn.write_all(bytes).await;
        if let Err(e) = result {
            panic!("cannot send: {e}\n--- transcript ---\n{}", self.transcript);
        }
        let _ = writeln!(self.transcript, "> ({} bytes without newline)", bytes.len());
    }

    /// Reads one reply; panics on EOF or timeout.
    pub async fn reply(&mut self) -> Reply {
        match self.try_reply().await {
            Ok(Some(reply)) => reply,
            Ok(None) => panic!(
                "connection closed while waiting for a reply\n--- transcript ---\n{}",
                self.transcript
            ),
            Err(e) => panic!("no reply: {e}\n--- transcript ---\n{}", self.transcript),
        }
    }

    /// Reads one reply; `None` if the server closed the connection first.
    pub async fn try_reply(&mut self) -> io::Result<Option<Reply>> {
        loop {
            let Some(line) = self.read_line().await? else {
                return Ok(None);
            };
            match self.conn.decode(&line) {
                Ok(Some(reply)) => {
                    for l in reply.to_bytes().split(|&b| b == b'\n') {
                        if !l.is_empty() {
                            let _ = writeln!(
                                self.transcript,
                                "< {}",
                                String::from_utf8_lossy(l).trim_end()
                            );
                        }
                    }
                    return Ok(Some(reply));
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{e} after:\n{}", self.transcript),
                    ))
                }
            }
        }
    }

    async fn read_line(&mut self) -> io::Result<Option<String>> {
        let line = self.conn.read_line().await?;
        if line.is_none() {
            if !self.conn.pending().is_empty() {
                let _ = writeln!(
                    self.transcript,
                    "< (unterminated) {}",
                    String::from_utf8_lossy(self.conn.pending())
                );
            }
            let _ = writeln!(self.transcript, "< (closed)");
        }
        Ok(line)
    }

    /// Waits until the server closes the connection, collecting any replies it sends
    /// first; panics if it stays open for `TIMEOUT`.
    pub async fn expect_closed(&mut self) -> Vec<Reply> {
        let mut replies = Vec::new();
        loop {
            match self.try_reply().await {
                Ok(Some(reply)) => replies.push(reply),
                Ok(None) => return replies,
                // A reset or a TLS error also ends the connection.
                Err(e) if e.kind() != io::ErrorKind::TimedOut => return replies,
                Err(e) => panic!(
                    "connection still open: {e}\n--- transcript ---\n{}",
                    self.transcript
                ),
            }
        }
    }

    /// Sends PASV or EPSV and connects to the announced port.
    pub async fn open_passive(&mut self) -> TcpStream {
        let addr = match self.passive {
            Passive::Epsv => {
                let reply = self.expect("EPSV", 229).await;
                let port = ftps_proto::address::parse_epsv_reply(&reply.text())
                    .unwrap_or_else(|e| panic!("bad EPSV reply {reply}: {e:?}"));
                SocketAddr::new(self.peer.ip(), port)
            }
            Passive::Pasv => {
                let reply = self.expect("PASV", 227).await;
                let addr = ftps_proto::address::parse_pasv_reply(&reply.text())
                    .unwrap_or_else(|e| panic!("bad PASV reply {reply}: {e:?}"));
                SocketAddr::V4(addr)
            }
        };
        tcp_connect(addr).await
    }

    /// The TLS configuration [`Control::transfer`] uses for data connections (`None`:
    /// plaintext, without `PROT P`): it resumes the control connection's session.
    pub fn data_tls(&self) -> Option<Arc<ClientConfig>> {
        self.protected.then(|| self.tls.clone())
    }

    /// Runs a transfer command (RETR, STOR, LIST, ...) over a passive data connection,
    /// sending `upload` if given. Never panics on a refusal: the caller checks the result.
    pub async fn transfer(&mut self, line: &str, upload: Option<&[u8]>) -> Transfer {
        let data_tls = self.protected.then(|| self.tls.clone());
        self.transfer_with(line, upload, data_tls).await
    }

    /// [`Control::transfer`] with a chosen TLS configuration for the data connection
    /// (`None`: plaintext), e.g. one that cannot resume the control session.
    pub async fn transfer_with(
        &mut self,
        line: &str,
        upload: Option<&[u8]>,
        data_tls: Option<Arc<ClientConfig>>,
    ) -> Transfer {
        let tcp = self.open_passive().await;
        self.transfer_on(tcp, line, upload, data_tls).await
    }

    /// Sends a transfer command for a data connection already made (`tcp`), then moves
    /// the data and reads the final reply.
    pub async fn transfer_on(
        &mut self,
        tcp: TcpStream,
        line: &str,
        upload: Option<&[u8]>,
        data_tls: Option<Arc<ClientConfig>>,
    ) -> Transfer {
        let (first, data) = self.begin_on(tcp, line, data_tls).await;
        let mut transfer = Transfer {
            first,
            last: None,
            data: Vec::new(),
            handshake: None,
            data_error: None,
        };
        if !transfer.first.code.is_preliminary() {
            return transfer;
        }
        match data {
            Ok(mut data) => {
                transfer.handshake = data.handshake_kind();
                let moved = match upload {
                    Some(bytes) => data.upload(bytes).await,
                    None => data.download(&mut transfer.data).await,
                };
                if let Err(e) = moved {
                    transfer.data_error = Some(e.to_string());
                }
            }
            Err(e) => transfer.data_error = Some(format!("handshake: {e}")),
        }
        transfer.last = Some(self.reply().await);
        transfer
    }

    /// Opens a passive data connection, sends `line` and returns the first reply and, if
    /// it was preliminary, the data connection (TLS per PROT), for tests that move the
    /// data themselves (aborts, partial uploads).
    pub async fn begin(&mut self, line: &str) -> (Reply, io::Result<DataConn>) {
        let tcp = self.open_passive().await;
        let data_tls = self.protected.then(|| self.tls.clone());
        self.begin_on(tcp, line, data_tls).await
    }

    async fn begin_on(
        &mut self,
        tcp: TcpStream,
        line: &str,
        data_tls: Option<Arc<ClientConfig>>,
    ) -> (Reply, io::Result<DataConn>) {
        self.send_line(line).await;
        // The server may start the handshake only once it has the command, or only after
        // its 150: run the handshake while waiting for the first reply.
        let name = self.server_name.clone();
        let handshake = tokio::spawn(async move {
            match data_tls {
                Some(tls) => TlsConnector::from(tls)
                    .connect(name, tcp)
                    .await
                    .map(|s| Stream::Tls(Box::new(s))),
                None => Ok(Stream::Plain(tcp)),
            }
        });
        let first = self.reply().await;
        if !first.code.is_preliminary() {
            handshake.abort();
            return (first, Err(io::Error::other("no transfer started")));
        }
        let data = line::with_timeout(TIMEOUT, "data connection handshake", async {
            handshake.await.map_err(io::Error::other)?
        })
        .await;
        (first, data)
    }

    /// RETR that must succeed; returns the file's content.
    pub async fn retr(&mut self, path: &str) -> Vec<u8> {
        let t = self.transfer(&format!("RETR {path}"), None).await;
        self.assert_transfer_ok(&t, &format!("RETR {path}"));
        t.data
    }

    /// STOR that must succeed.
    pub async fn stor(&mut self, path: &str, data: &[u8]) {
        let t = self.transfer(&format!("STOR {path}"), Some(data)).await;
        self.assert_transfer_ok(&t, &format!("STOR {path}"));
    }

    /// A listing command (LIST, NLST, MLSD) that must succeed; returns its text.
    pub async fn listing(&mut self, line: &str) -> String {
        let t = self.transfer(line, None).await;
        self.assert_transfer_ok(&t, line);
        String::from_utf8(t.data).expect("listing is UTF-8")
    }

    /// Asserts that a transfer got 150/125, moved its data and ended with 226, and under
    /// PROT P that its data connection resumed the control TLS session.
    pub fn assert_transfer_ok(&self, t: &Transfer, what: &str) {
        assert!(
            t.first.code.is_preliminary()
                && t.data_error.is_none()
                && t.last.as_ref().is_some_and(|r| r.code.0 == 226),
            "{what} failed: {t:?}\n--- transcript ---\n{}",
            self.transcript
        );
        if self.protected {
            assert_eq!(
                t.handshake,
                Some(HandshakeKind::Resumed),
                "{what}: the data connection did not resume the control TLS session"
            );
        }
    }
}

/// An open data connection, in plaintext or TLS per `PROT`.
pub type DataConn = Stream<TcpStream>;

impl DataConn {
    /// Writes everything, then ends the data (close_notify for TLS, then FIN).
    pub async fn upload(&mut self, bytes: &[u8]) -> io::Result<()> {
        with_timeout("upload", async {
            self.write_all(bytes).await?;
            // Sends close_notify (for TLS) and FIN: the end of the file.
            self.shutdown().await
        })
        .await
    }

    /// Writes without ending the data.
    pub async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        with_timeout("data write", line::write_flush(self, bytes)).await
    }

    /// Reads up to `max` bytes (0 at the end).
    pub async fn read_some(&mut self, max: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; max];
        let n = with_timeout("data read", self.read(&mut buf)).await?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Reads to the end; for TLS, an end without close_notify is an error (truncation).
    pub async fn download(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        with_timeout("data", self.read_to_end(out))
            .await
            .map(|_| ())
    }

    /// Closes the TCP connection without close_notify: a truncated transfer.
    pub fn break_off(self) {
        drop(self.into_transport());
    }

    /// Vanishes as a client that crashed or lost its network does: a reset, no FIN and no
    /// close_notify.
    pub fn reset(self) {
        stream::reset(self.into_transport());
    }
}

async fn tcp_connect(addr: SocketAddr) -> TcpStream {
    with_timeout("connect", TcpStream::connect(addr))
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"))
}

async fn with_timeout<T>(
    what: &str,
    fut: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    line::with_timeout(TIMEOUT, what, fut).await
}

/// Long lines (the line-limit tests) would drown a transcript.
fn shorten(line: &str) -> String {
    if line.len() > 80 {
        let mut end = 60;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}... ({} bytes)", &line[..end], line.len())
    } else {
        line.to_string()
    }
}

/// Reads everything until EOF from a stream (for tests that open their own connections).
pub async fn read_all<S: AsyncRead + Unpin>(s: &mut S) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    with_timeout("read", s.read_to_end(&mut out)).await?;
    Ok(out)
}
