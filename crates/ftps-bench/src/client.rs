//! A lean FTPS client for load generation: explicit FTPS, PROT P, EPSV, data connections
//! that resume the control connection's TLS session.
//!
//! Every control connection gets its own `ClientConfig` with its own session cache, so its
//! data connections resume exactly its session (as `require_ssl_reuse` and ftpsd demand).
//!
//! The control connection is the test kit's raw-line core; this layer adds errors instead
//! of panics, the benchmark's crypto configuration, and a data path without copies.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use ftps_proto::Reply;
use ftps_testkit::line::LineConn;
use ftps_testkit::stream::Stream;
use ftps_testkit::tls::{self, localhost, Tls, Verifier};
use rustls::crypto::{aws_lc_rs, CryptoProvider};
use rustls::{ClientConfig, HandshakeKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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

/// The one protocol version `version` offers.
pub fn versions(version: TlsVersion) -> &'static [&'static rustls::SupportedProtocolVersion] {
    match version {
        TlsVersion::V13 => Tls::V13.versions(),
        TlsVersion::V12 => Tls::V12.versions(),
    }
}

/// A base client configuration; [`fresh`] gives each control connection its own cache.
pub fn base_config(version: TlsVersion) -> Arc<ClientConfig> {
    let provider = Arc::new(provider(version));
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions(version))
        .expect("protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Verifier::any(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"ftp".to_vec()];
    Arc::new(config)
}

/// A copy of `base` with an empty session cache of its own.
pub fn fresh(base: &Arc<ClientConfig>) -> Arc<ClientConfig> {
    tls::with_own_cache(base, 4)
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

async fn timed<T>(what: &str, fut: impl std::future::Future<Output = io::Result<T>>) -> Result<T> {
    match tokio::time::timeout(TIMEOUT, fut).await {
        Ok(r) => r.with_context(|| what.to_string()),
        Err(_) => bail!("{what}: nothing within {TIMEOUT:?}"),
    }
}

/// One control connection.
pub struct Control {
    conn: LineConn,
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
            conn: LineConn::new(tcp, 10_000, TIMEOUT),
            tls: fresh(base),
            peer: addr,
        };
        c.expect_reply(220).await?;
        c.expect("AUTH TLS", 234).await?;
        c.conn
            .start_tls(c.tls.clone(), localhost(), "control TLS handshake")
            .await?;
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
        self.conn.stream().map_or(0, |s| s.tls13_tickets_received())
    }

    pub async fn quit(mut self) -> Result<()> {
        self.expect("QUIT", 221).await?;
        if let Some(mut s) = self.conn.take_stream().filter(Stream::is_tls) {
            let _ = tokio::time::timeout(Duration::from_secs(1), s.shutdown()).await;
        }
        Ok(())
    }

    pub async fn cmd(&mut self, line: &str) -> Result<Reply> {
        let bytes = format!("{line}\r\n");
        timed("send", self.conn.write_all(bytes.as_bytes())).await?;
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
        match self.conn.read_reply().await {
            Ok(Some(r)) => Ok(r),
            Ok(None) => bail!("control connection closed"),
            Err(e) => {
                let e = anyhow::Error::from(e);
                match self.conn.plain_text() {
                    Some(text) if self.conn.is_tls() => Err(e.context(format!(
                        "the server wrote in plain text on the TLS connection: {text}"
                    ))),
                    _ => Err(e),
                }
            }
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
        let handshake = timed("data TLS handshake", connector.connect(localhost(), tcp));
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
