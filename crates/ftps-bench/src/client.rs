//! A lean FTPS client for load generation: explicit FTPS, PROT P, EPSV, data connections
//! that resume the control connection's TLS session.
//!
//! Every control connection gets its own `ClientConfig` with its own session cache, so its
//! data connections resume exactly its session (as `require_ssl_reuse` and ftpsd demand).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use ftps_proto::reply::ReplyDecoder;
use ftps_proto::Reply;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientSessionMemoryCache, Resumption};
use rustls::crypto::{aws_lc_rs, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, HandshakeKind, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Longest wait for one reply or one data read.
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// Data connections opened, and those of them whose TLS session was not resumed.
pub static DATA_CONNECTIONS: AtomicUsize = AtomicUsize::new(0);
pub static NOT_RESUMED: AtomicUsize = AtomicUsize::new(0);

/// Size of the buffers data moves through.
pub const CHUNK: usize = 256 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsVersion {
    V12,
    V13,
}

/// The one crypto configuration every peer is measured with: AES-256-GCM, ECDHE on P-256
/// (vsftpd and Pure-FTPd offer no other group).
pub fn provider(version: TlsVersion) -> CryptoProvider {
    let mut p = aws_lc_rs::default_provider();
    p.cipher_suites = match version {
        TlsVersion::V13 => vec![aws_lc_rs::cipher_suite::TLS13_AES_256_GCM_SHA384],
        TlsVersion::V12 => vec![
            aws_lc_rs::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            aws_lc_rs::cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ],
    };
    p.kx_groups = vec![aws_lc_rs::kx_group::SECP256R1];
    p
}

pub fn versions(version: TlsVersion) -> &'static [&'static rustls::SupportedProtocolVersion] {
    static V13: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    static V12: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
    match version {
        TlsVersion::V13 => &V13,
        TlsVersion::V12 => &V12,
    }
}

/// Accepts the benchmark's own certificate without a chain check (it is generated per run
/// and never leaves loopback), but still verifies the handshake signatures, so the client
/// does the same cryptographic work as a real one.
#[derive(Debug)]
struct AnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
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
            &self.0.signature_verification_algorithms,
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
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A base client configuration; [`fresh`] gives each control connection its own cache.
pub fn base_config(version: TlsVersion) -> Arc<ClientConfig> {
    let provider = Arc::new(provider(version));
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions(version))
        .expect("protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"ftp".to_vec()];
    Arc::new(config)
}

/// A copy of `base` with an empty session cache of its own.
pub fn fresh(base: &Arc<ClientConfig>) -> Arc<ClientConfig> {
    let mut config = (**base).clone();
    config.resumption = Resumption::store(Arc::new(ClientSessionMemoryCache::new(4)));
    Arc::new(config)
}

/// Takes a data connection out of delayed-ACK ("interactive") mode, which Linux enters
/// because the client answered the server during the TLS handshake. After the handshake the
/// client only receives on a download, so no reply ever carries the ACK and a delayed ACK
/// only adds latency: a server that leaves Nagle's algorithm on for its data socket
/// (Pure-FTPd) holds back its close_notify after a short listing until the ACK comes, up to
/// 40 ms per transfer, while it waits for the client's close before the 226. The kernel then
/// ACKs as soon as the client has read what arrived. Best effort: an error is ignored.
fn quick_ack(tcp: &TcpStream) {
    use std::os::fd::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: setsockopt on a socket this stream owns, with a c_int option value.
    unsafe {
        libc::setsockopt(
            tcp.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

fn server_name() -> ServerName<'static> {
    ServerName::try_from("localhost").expect("server name")
}

async fn timed<T>(what: &str, fut: impl std::future::Future<Output = io::Result<T>>) -> Result<T> {
    match tokio::time::timeout(TIMEOUT, fut).await {
        Ok(r) => r.with_context(|| what.to_string()),
        Err(_) => bail!("{what}: nothing within {TIMEOUT:?}"),
    }
}

/// A control connection's transport that keeps the last bytes the server sent, so a server
/// that gives up with a plain-text reply on a TLS connection (vsftpd's `500 OOPS: ...`) can be
/// quoted: the TLS layer only sees an invalid record.
struct Tail<S> {
    inner: S,
    last: Vec<u8>,
}

const TAIL: usize = 512;

impl<S> Tail<S> {
    fn new(inner: S) -> Tail<S> {
        Tail {
            inner,
            last: Vec::with_capacity(2 * TAIL),
        }
    }

    /// The reply in plain text at the end of what the server sent, if there is one (a TLS
    /// record's bytes before it may happen to be printable: the text starts at a reply code).
    fn plain_text(&self) -> Option<String> {
        let printable = |b: &u8| b.is_ascii_graphic() || matches!(b, b' ' | b'\r' | b'\n');
        let start = self
            .last
            .iter()
            .rposition(|b| !printable(b))
            .map_or(0, |i| i + 1);
        let text = &self.last[start..];
        let code = text
            .windows(4)
            .position(|w| w[..3].iter().all(u8::is_ascii_digit) && matches!(w[3], b' ' | b'-'))?;
        Some(String::from_utf8_lossy(&text[code..]).trim().to_string())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tail<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        let new = &buf.filled()[before..];
        if !new.is_empty() {
            let keep = new.len().min(TAIL);
            this.last.extend_from_slice(&new[new.len() - keep..]);
            if this.last.len() > TAIL {
                let cut = this.last.len() - TAIL;
                this.last.drain(..cut);
            }
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tail<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<Tail<TcpStream>>>),
    Gone,
}

/// One control connection.
pub struct Control {
    conn: Conn,
    buf: Vec<u8>,
    decoder: ReplyDecoder,
    tls: Arc<ClientConfig>,
    peer: SocketAddr,
}

/// Where and as whom to log in.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub user: String,
    pub password: String,
    /// Directory to CWD into after login (the server's benchmark root).
    pub dir: String,
}

impl Control {
    /// Connects, reads the greeting, AUTH TLS and the handshake (a full one: fresh cache).
    pub async fn connect_tls(addr: SocketAddr, base: &Arc<ClientConfig>) -> Result<Control> {
        let tcp = timed("connect", TcpStream::connect(addr)).await?;
        tcp.set_nodelay(true)?;
        let mut c = Control {
            conn: Conn::Plain(tcp),
            buf: Vec::new(),
            decoder: ReplyDecoder::new(10_000),
            tls: fresh(base),
            peer: addr,
        };
        c.expect_reply(220).await?;
        c.expect("AUTH TLS", 234).await?;
        let Conn::Plain(tcp) = std::mem::replace(&mut c.conn, Conn::Gone) else {
            unreachable!()
        };
        let tls = timed(
            "control TLS handshake",
            TlsConnector::from(c.tls.clone()).connect(server_name(), Tail::new(tcp)),
        )
        .await?;
        c.conn = Conn::Tls(Box::new(tls));
        Ok(c)
    }

    /// USER and PASS.
    pub async fn user_pass(&mut self, user: &str, password: &str) -> Result<()> {
        let r = self.cmd(&format!("USER {user}")).await?;
        match r.code.0 {
            230 => return Ok(()),
            331 => {}
            _ => bail!("USER: {}", r.text()),
        }
        self.expect(&format!("PASS {password}"), 230).await?;
        Ok(())
    }

    /// A ready session: TLS, login, PBSZ 0, PROT P, TYPE I, CWD to the benchmark root.
    pub async fn session(target: &Target, base: &Arc<ClientConfig>) -> Result<Control> {
        let mut c = Control::connect_tls(target.addr, base).await?;
        c.user_pass(&target.user, &target.password).await?;
        c.expect("PBSZ 0", 200).await?;
        c.expect("PROT P", 200).await?;
        c.expect("TYPE I", 200).await?;
        if !target.dir.is_empty() {
            c.expect(&format!("CWD {}", target.dir), 250).await?;
        }
        Ok(c)
    }

    /// TLS 1.3 session tickets this control connection has received so far.
    pub fn tickets_received(&self) -> u32 {
        match &self.conn {
            Conn::Tls(s) => s.get_ref().1.tls13_tickets_received(),
            _ => 0,
        }
    }

    pub async fn quit(mut self) -> Result<()> {
        self.expect("QUIT", 221).await?;
        if let Conn::Tls(s) = &mut self.conn {
            let _ = tokio::time::timeout(Duration::from_secs(1), s.shutdown()).await;
        }
        Ok(())
    }

    pub async fn cmd(&mut self, line: &str) -> Result<Reply> {
        let bytes = format!("{line}\r\n");
        let w = async {
            match &mut self.conn {
                Conn::Plain(s) => {
                    s.write_all(bytes.as_bytes()).await?;
                    s.flush().await
                }
                Conn::Tls(s) => {
                    s.write_all(bytes.as_bytes()).await?;
                    s.flush().await
                }
                Conn::Gone => Err(io::Error::other("connection gone")),
            }
        };
        timed("send", w).await?;
        self.reply().await
    }

    pub async fn expect(&mut self, line: &str, code: u16) -> Result<Reply> {
        let r = self.cmd(line).await?;
        if r.code.0 != code {
            let shown = if line.starts_with("PASS ") {
                "PASS ***"
            } else {
                line
            };
            bail!("`{shown}` got {} {}, expected {code}", r.code.0, r.text());
        }
        Ok(r)
    }

    async fn expect_reply(&mut self, code: u16) -> Result<Reply> {
        let r = self.reply().await?;
        if r.code.0 != code {
            bail!("got {} {}, expected {code}", r.code.0, r.text());
        }
        Ok(r)
    }

    pub async fn reply(&mut self) -> Result<Reply> {
        loop {
            let line = self.read_line().await?;
            if let Some(r) = self
                .decoder
                .feed_line(&line)
                .map_err(|e| anyhow!("{e:?}"))?
            {
                return Ok(r);
            }
        }
    }

    async fn read_line(&mut self) -> Result<String> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..end + 2).take(end).collect();
                return Ok(String::from_utf8_lossy(&line).into_owned());
            }
            let mut chunk = [0u8; 2048];
            let read = async {
                match &mut self.conn {
                    Conn::Plain(s) => s.read(&mut chunk).await,
                    Conn::Tls(s) => s.read(&mut chunk).await,
                    Conn::Gone => Ok(0),
                }
            };
            let n = match timed("reply", read).await {
                Ok(n) => n,
                Err(e) => {
                    if let Conn::Tls(s) = &self.conn {
                        if let Some(text) = s.get_ref().0.plain_text() {
                            return Err(e.context(format!(
                                "the server wrote in plain text on the TLS connection: {text}"
                            )));
                        }
                    }
                    return Err(e);
                }
            };
            if n == 0 {
                bail!("control connection closed");
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// EPSV, connect, send `line`, and the data connection's TLS handshake (which must
    /// resume this session). Returns the data stream after the preliminary reply.
    async fn open_data(&mut self, line: &str) -> Result<TlsStream<TcpStream>> {
        let r = self.expect("EPSV", 229).await?;
        let port = ftps_proto::address::parse_epsv_reply(&r.text())
            .map_err(|e| anyhow!("EPSV reply {}: {e:?}", r.text()))?;
        let tcp = timed(
            "data connect",
            TcpStream::connect(SocketAddr::new(self.peer.ip(), port)),
        )
        .await?;
        tcp.set_nodelay(true)?;
        let connector = TlsConnector::from(self.tls.clone());
        let handshake = timed("data TLS handshake", connector.connect(server_name(), tcp));
        let send = async {
            let r = self.cmd(line).await?;
            if !r.code.is_preliminary() {
                bail!("`{line}` got {} {}", r.code.0, r.text());
            }
            Ok(())
        };
        let (data, first) = tokio::join!(handshake, send);
        first?;
        let data = data?;
        quick_ack(data.get_ref().0);
        DATA_CONNECTIONS.fetch_add(1, Ordering::Relaxed);
        if data.get_ref().1.handshake_kind() != Some(HandshakeKind::Resumed) {
            // ftpsd and vsftpd refuse such a connection themselves; a server that accepts it
            // is reported (it pays a full handshake per transfer).
            NOT_RESUMED.fetch_add(1, Ordering::Relaxed);
        }
        Ok(data)
    }

    /// RETR/LIST: reads everything, returns the byte count after the 226.
    pub async fn download(&mut self, line: &str, buf: &mut [u8]) -> Result<u64> {
        let mut data = self.open_data(line).await?;
        let mut total = 0u64;
        let read = async {
            loop {
                match data.read(buf).await {
                    Ok(0) => return Ok(()),
                    Ok(n) => total += n as u64,
                    Err(e) => return Err(e),
                }
            }
        };
        let moved = timed("download", read).await;
        drop(data);
        let last = self.reply().await?;
        moved.with_context(|| format!("`{line}`"))?;
        if last.code.0 != 226 {
            bail!("`{line}` ended with {} {}", last.code.0, last.text());
        }
        Ok(total)
    }

    /// STOR of `size` bytes taken round-robin from `chunk`.
    pub async fn upload(&mut self, line: &str, chunk: &[u8], size: u64) -> Result<()> {
        let mut data = self.open_data(line).await?;
        let write = async {
            let mut left = size;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                data.write_all(&chunk[..n]).await?;
                left -= n as u64;
            }
            // close_notify and FIN: the end of the file.
            data.shutdown().await?;
            Ok(())
        };
        timed("upload", write)
            .await
            .with_context(|| format!("`{line}`"))?;
        // Read what the server still sends (tickets, its close_notify) while the final
        // reply comes in, so it never sees a reset.
        let drain = async {
            let mut sink = [0u8; 4096];
            let _ = tokio::time::timeout(Duration::from_secs(10), async {
                while let Ok(n) = data.read(&mut sink).await {
                    if n == 0 {
                        break;
                    }
                }
            })
            .await;
        };
        let (_, last) = tokio::join!(drain, self.reply());
        let last = last?;
        if last.code.0 != 226 {
            bail!("`{line}` ended with {} {}", last.code.0, last.text());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail_of(bytes: &[u8]) -> Tail<()> {
        Tail {
            inner: (),
            last: bytes.to_vec(),
        }
    }

    #[test]
    fn plain_text_reply_after_tls_records_is_quoted() {
        let mut bytes = vec![0x17, 0x03, 0x03, 0x00, 0x05, 0x9c, b'4', b'2', b'1', 0x01];
        bytes.extend_from_slice(b"xy500 OOPS: priv_sock_get_cmd\r\n");
        assert_eq!(
            tail_of(&bytes).plain_text().as_deref(),
            Some("500 OOPS: priv_sock_get_cmd")
        );
    }

    #[test]
    fn tls_records_alone_are_not_text() {
        assert_eq!(
            tail_of(&[0x17, 0x03, 0x03, 0x00, 0x13, 0xf0]).plain_text(),
            None
        );
        assert_eq!(tail_of(b"").plain_text(), None);
    }
}
