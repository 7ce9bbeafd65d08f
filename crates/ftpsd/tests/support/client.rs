//! A small FTPS client that sends raw lines, for protocol-level tests.
//!
//! It trusts exactly the server's certificate (pinned by SHA-256 fingerprint) and gives each
//! control connection one `ClientConfig` with its own session cache, so data connections
//! resume the control connection's TLS session, as the server requires.

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ftps_proto::reply::ReplyDecoder;
use ftps_proto::Reply;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientSessionMemoryCache, Resumption};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, HandshakeKind, SignatureScheme};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::Server;

/// Longest wait for any reply or data; a server that stays silent fails the test.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts exactly the certificate whose SHA-256 fingerprint is pinned.
#[derive(Debug)]
pub struct PinnedCert {
    fingerprint: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = fingerprint(end_entity);
        if got.eq_ignore_ascii_case(&self.fingerprint) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "certificate {got} is not the pinned {}",
                self.fingerprint
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `AB:CD:...` of a DER certificate, as ftpsd prints it.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    Sha256::digest(cert.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Which TLS versions a client offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tls {
    Any,
    V12,
    V13,
}

/// A client configuration with a fresh session cache: use one per control connection.
pub fn client_config(fingerprint: &str, tls: Tls) -> Arc<ClientConfig> {
    client_config_alpn(fingerprint, tls, vec![b"ftp".to_vec()])
}

/// [`client_config`] offering the given ALPN protocols.
pub fn client_config_alpn(fingerprint: &str, tls: Tls, alpn: Vec<Vec<u8>>) -> Arc<ClientConfig> {
    finish(pinned_builder(fingerprint, tls).with_no_client_auth(), alpn)
}

/// [`client_config`] presenting a client certificate (`chain`, end entity first, and its
/// key) whenever the server asks for one, on the control and on data connections.
pub fn client_config_with_cert(
    fingerprint: &str,
    tls: Tls,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Arc<ClientConfig> {
    let config = pinned_builder(fingerprint, tls)
        .with_client_auth_cert(chain, key)
        .expect("client certificate and key");
    finish(config, vec![b"ftp".to_vec()])
}

/// The TLS versions of `tls`, trusting exactly the server certificate with `fingerprint`.
fn pinned_builder(
    fingerprint: &str,
    tls: Tls,
) -> rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match tls {
        Tls::Any => &[&rustls::version::TLS13, &rustls::version::TLS12],
        Tls::V12 => &[&rustls::version::TLS12],
        Tls::V13 => &[&rustls::version::TLS13],
    };
    ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .expect("TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedCert {
            fingerprint: fingerprint.to_string(),
            provider,
        }))
}

/// ALPN and a session cache of this configuration's own (one per control connection).
fn finish(mut config: ClientConfig, alpn: Vec<Vec<u8>>) -> Arc<ClientConfig> {
    config.alpn_protocols = alpn;
    config.resumption = Resumption::store(Arc::new(ClientSessionMemoryCache::new(64)));
    Arc::new(config)
}

fn server_name() -> ServerName<'static> {
    ServerName::try_from("localhost").expect("server name")
}

enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Gone,
}

/// Which passive command opens data connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Passive {
    Pasv,
    Epsv,
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
    conn: Conn,
    buf: Vec<u8>,
    decoder: ReplyDecoder,
    /// Used for the control connection and, so they resume it, every data connection.
    pub tls: Arc<ClientConfig>,
    peer: SocketAddr,
    /// Every line sent and reply received, for failure messages.
    pub transcript: String,
    /// Whether PROT P is in force, so data connections use TLS.
    pub protected: bool,
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
        let mut control =
            Control::new(Conn::Plain(tcp), client_config(fingerprint, Tls::Any), addr);
        let greeting = control.reply().await;
        (control, greeting)
    }

    pub async fn connect_with(addr: SocketAddr, tls: Arc<ClientConfig>) -> Control {
        let tcp = tcp_connect(addr).await;
        let mut control = Control::new(Conn::Plain(tcp), tls, addr);
        control.expect_reply(220).await;
        control
    }

    /// Connects with TLS from the first byte (implicit FTPS) and reads the 220 greeting.
    pub async fn connect_implicit(addr: SocketAddr, fingerprint: &str) -> Control {
        let tls = client_config(fingerprint, Tls::Any);
        let tcp = tcp_connect(addr).await;
        let stream = with_timeout(
            "implicit TLS handshake",
            TlsConnector::from(tls.clone()).connect(server_name(), tcp),
        )
        .await
        .expect("implicit TLS handshake");
        let mut control = Control::new(Conn::Tls(Box::new(stream)), tls, addr);
        control.expect_reply(220).await;
        control
    }

    fn new(conn: Conn, tls: Arc<ClientConfig>, peer: SocketAddr) -> Control {
        Control {
            conn,
            buf: Vec::new(),
            decoder: ReplyDecoder::new(1000),
            tls,
            peer,
            transcript: String::new(),
            protected: false,
            passive: Passive::Epsv,
            server_name: server_name(),
        }
    }

    /// Explicit FTPS connection, AUTH TLS, login, PBSZ 0 and PROT P.
    pub async fn login(server: &Server, user: &str, password: &str) -> Control {
        let mut c = Control::connect(server.explicit, &server.fingerprint).await;
        c.auth_tls().await;
        c.user_pass(user, password).await;
        c.protect().await;
        c
    }

    /// [`Control::login`] as the user `ftps`.
    pub async fn login_default(server: &Server) -> Control {
        Self::login(server, "ftps", &server.password).await
    }

    /// Sets the TLS server name sent from now on (e.g. a virtual host's).
    pub fn set_server_name(&mut self, name: &str) {
        self.server_name = ServerName::try_from(name.to_string()).expect("server name");
    }

    pub fn is_tls(&self) -> bool {
        matches!(self.conn, Conn::Tls(_))
    }

    /// Drops the control connection with a reset (no QUIT, no FIN, no close_notify).
    pub fn reset(self) {
        let tcp = match self.conn {
            Conn::Plain(s) => s,
            Conn::Tls(s) => s.into_inner().0,
            Conn::Gone => return,
        };
        // A zero linger never blocks the drop: it sends the reset at once.
        #[allow(deprecated)]
        let _ = tcp.set_linger(Some(std::time::Duration::ZERO));
        drop(tcp);
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
        assert!(
            self.buf.is_empty(),
            "server sent bytes after its AUTH reply, before the handshake: {:?}\n{}",
            String::from_utf8_lossy(&self.buf),
            self.transcript
        );
        let Conn::Plain(tcp) = std::mem::replace(&mut self.conn, Conn::Gone) else {
            panic!("start_tls on a connection that is not plain");
        };
        let stream = with_timeout(
            "control TLS handshake",
            TlsConnector::from(self.tls.clone()).connect(self.server_name.clone(), tcp),
        )
        .await?;
        self.conn = Conn::Tls(Box::new(stream));
        Ok(())
    }

    pub async fn user_pass(&mut self, user: &str, password: &str) {
        self.expect(&format!("USER {user}"), 331).await;
        self.expect(&format!("PASS {password}"), 230).await;
    }

    /// Ends TLS on the control connection after a `200` to `CCC` (RFC 4217 §6): sends
    /// close_notify, reads up to the server's close_notify, and continues in plaintext.
    pub async fn end_tls(&mut self) -> io::Result<()> {
        assert!(
            self.buf.is_empty(),
            "server sent more after its CCC reply: {:?}\n{}",
            String::from_utf8_lossy(&self.buf),
            self.transcript
        );
        let Conn::Tls(mut stream) = std::mem::replace(&mut self.conn, Conn::Gone) else {
            panic!("end_tls on a connection without TLS");
        };
        stream.get_mut().1.send_close_notify();
        with_timeout("close_notify", async {
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
        self.conn = Conn::Plain(stream.into_inner().0);
        Ok(())
    }

    /// Like [`Control::end_tls`], but reads the server's close_notify first and then sends
    /// its own close_notify and the plaintext `line` in one TCP write, as a client may.
    pub async fn end_tls_then_send(&mut self, line: &str) -> io::Result<()> {
        let Conn::Tls(mut stream) = std::mem::replace(&mut self.conn, Conn::Gone) else {
            panic!("end_tls_then_send on a connection without TLS");
        };
        let mut rest = Vec::new();
        with_timeout("close_notify", stream.read_to_end(&mut rest)).await?;
        let (tcp, conn) = stream.get_mut();
        conn.send_close_notify();
        let mut bytes = Vec::new();
        while conn.wants_write() {
            conn.write_tls(&mut bytes)?;
        }
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        write_flush(tcp, &bytes).await?;
        let _ = writeln!(
            self.transcript,
            "(TLS ended)\n> {} (in the write with close_notify)",
            shorten(line)
        );
        self.conn = Conn::Plain(stream.into_inner().0);
        Ok(())
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
        let result = match &mut self.conn {
            Conn::Plain(s) => write_flush(s, bytes).await,
            Conn::Tls(s) => write_flush(s, bytes).await,
            Conn::Gone => Err(io::Error::other("connection is gone")),
        };
        if let Err(e) = result {
            panic!("cannot send: {e}\n--- transcript ---\n{}", self.transcript);
        }
    }

    /// Sends a line, returning the error instead of panicking (the server may have closed).
    pub async fn try_send_line(&mut self, line: &str) -> io::Result<()> {
        let _ = writeln!(self.transcript, "> {}", shorten(line));
        let bytes = format!("{line}\r\n");
        match &mut self.conn {
            Conn::Plain(s) => write_flush(s, bytes.as_bytes()).await,
            Conn::Tls(s) => write_flush(s, bytes.as_bytes()).await,
            Conn::Gone => Err(io::Error::other("connection is gone")),
        }
    }

    /// Sends bytes without recording them in the transcript (for bulk junk).
    pub async fn send_raw_quiet(&mut self, bytes: &[u8]) {
        let result = match &mut self.conn {
            Conn::Plain(s) => write_flush(s, bytes).await,
            Conn::Tls(s) => write_flush(s, bytes).await,
            Conn::Gone => Err(io::Error::other("connection is gone")),
        };
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
            match self.decoder.feed_line(&line) {
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
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..end + 2).take(end).collect();
                return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
            }
            let mut chunk = [0u8; 4096];
            let read = async {
                match &mut self.conn {
                    Conn::Plain(s) => s.read(&mut chunk).await,
                    Conn::Tls(s) => s.read(&mut chunk).await,
                    Conn::Gone => Ok(0),
                }
            };
            let n = with_timeout("reply", read).await?;
            if n == 0 {
                if !self.buf.is_empty() {
                    let _ = writeln!(
                        self.transcript,
                        "< (unterminated) {}",
                        String::from_utf8_lossy(&self.buf)
                    );
                }
                let _ = writeln!(self.transcript, "< (closed)");
                return Ok(None);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
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
                    .map(|s| DataConn::Tls(Box::new(s))),
                None => Ok(DataConn::Plain(tcp)),
            }
        });
        let first = self.reply().await;
        if !first.code.is_preliminary() {
            handshake.abort();
            return (first, Err(io::Error::other("no transfer started")));
        }
        let data = with_timeout("data connection handshake", async {
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

/// An open data connection.
pub enum DataConn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl DataConn {
    pub fn handshake_kind(&self) -> Option<HandshakeKind> {
        match self {
            DataConn::Plain(_) => None,
            DataConn::Tls(s) => s.get_ref().1.handshake_kind(),
        }
    }

    /// Writes everything, then ends the data (close_notify for TLS, then FIN).
    pub async fn upload(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            DataConn::Plain(s) => upload(s, bytes).await,
            DataConn::Tls(s) => upload(s, bytes).await,
        }
    }

    /// Writes without ending the data.
    pub async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        with_timeout("data write", async {
            match self {
                DataConn::Plain(s) => write_flush(s, bytes).await,
                DataConn::Tls(s) => write_flush(s, bytes).await,
            }
        })
        .await
    }

    /// Reads up to `max` bytes (0 at the end).
    pub async fn read_some(&mut self, max: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; max];
        let n = with_timeout("data read", async {
            match self {
                DataConn::Plain(s) => s.read(&mut buf).await,
                DataConn::Tls(s) => s.read(&mut buf).await,
            }
        })
        .await?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Reads to the end; for TLS, an end without close_notify is an error (truncation).
    pub async fn download(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        let read = async {
            match self {
                DataConn::Plain(s) => s.read_to_end(out).await,
                DataConn::Tls(s) => s.read_to_end(out).await,
            }
        };
        with_timeout("data", read).await.map(|_| ())
    }

    /// Closes the TCP connection without close_notify: a truncated transfer.
    pub fn break_off(self) {
        let tcp = match self {
            DataConn::Plain(s) => s,
            DataConn::Tls(s) => s.into_inner().0,
        };
        drop(tcp);
    }

    /// Vanishes as a client that crashed or lost its network does: a reset, no FIN and no
    /// close_notify.
    pub fn reset(self) {
        let tcp = match self {
            DataConn::Plain(s) => s,
            DataConn::Tls(s) => s.into_inner().0,
        };
        // A zero linger never blocks the drop: it sends the reset at once.
        #[allow(deprecated)]
        let _ = tcp.set_linger(Some(std::time::Duration::ZERO));
        drop(tcp);
    }
}

async fn upload<S: AsyncWrite + Unpin>(s: &mut S, bytes: &[u8]) -> io::Result<()> {
    with_timeout("upload", async {
        s.write_all(bytes).await?;
        // Sends close_notify (for TLS) and FIN: the end of the file.
        s.shutdown().await
    })
    .await
}

async fn write_flush<S: AsyncWrite + Unpin>(s: &mut S, bytes: &[u8]) -> io::Result<()> {
    s.write_all(bytes).await?;
    s.flush().await
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
    match tokio::time::timeout(TIMEOUT, fut).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{what}: nothing within {TIMEOUT:?}"),
        )),
    }
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
