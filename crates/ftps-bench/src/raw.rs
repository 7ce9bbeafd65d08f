//! The raw-TLS ceiling: rustls on both ends with the same suite, no FTP, one stream over
//! loopback. The server end runs as a separate process (`ftps-bench tls-peer`) so its CPU
//! time is measured the same way as an FTPS server's.
//!
//! The ceiling proper sends one buffer again and again, which never leaves the core's cache.
//! A server sends a file, which must first come out of memory: the peer can also send a file
//! read from tmpfs, the ceiling for any server that serves files from there.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::client::{self, TlsVersion, CHUNK};
use crate::procfs;

/// Bytes the peer reads from the file at a time when it sends one: ftpsd's size, which it
/// found the fastest (docs/performance.md).
const FILE_READ: usize = 64 * 1024;

/// What a stream moves.
#[derive(Clone, Copy, PartialEq)]
pub enum Direction {
    /// The peer sends one in-memory buffer over and over.
    Download,
    /// The peer sends the file it was started with, read from disk as it goes.
    DownloadFile,
    /// The peer receives.
    Upload,
}

impl Direction {
    fn request(self) -> u8 {
        match self {
            Direction::Download => b'D',
            Direction::DownloadFile => b'F',
            Direction::Upload => b'U',
        }
    }
}

/// `ftps-bench tls-peer`: accepts TLS connections; a request is `D`, `F` or `U` and a size
/// (u64, big-endian): `D` sends that many bytes, `F` that many bytes of `file` (its whole
/// length), `U` reads to the end and answers `K`.
pub fn serve(cert: &Path, key: &Path, file: Option<&Path>) -> Result<()> {
    let file = file.map(Path::to_path_buf);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .context("certificate")?
        .collect::<Result<_, _>>()?;
    let key = PrivateKeyDer::from_pem_file(key).context("key")?;
    // Both versions, each with the one suite and group of the benchmark: the client pins
    // the version of each measurement.
    let mut provider = client::provider(TlsVersion::V13);
    provider
        .cipher_suites
        .extend(client::provider(TlsVersion::V12).cipher_suites);
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"ftp".to_vec()];
    // Resumption as a server offers it: stateless tickets, and one TLS 1.3 ticket per
    // connection, so that a client that resumes every connection always holds one (ftpsd
    // issues one per data connection too, on the control connection).
    config.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new()?;
    config.send_tls13_tickets = 1;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        println!("listening {}", listener.local_addr()?);
        loop {
            let (tcp, _) = listener.accept().await?;
            tcp.set_nodelay(true)?;
            let acceptor = acceptor.clone();
            let file = file.clone();
            tokio::spawn(async move {
                let r: Result<()> = async {
                    let mut s = acceptor.accept(tcp).await?;
                    let mut req = [0u8; 9];
                    s.read_exact(&mut req).await?;
                    let size = u64::from_be_bytes(req[1..].try_into()?);
                    let mut buf = vec![0x5au8; CHUNK];
                    if req[0] == b'F' {
                        // A plain blocking read, as a server's transfer thread does; this
                        // peer serves one stream at a time, so it stalls nobody.
                        let mut f = std::fs::File::open(file.as_ref().context("no file")?)?;
                        let mut sent = 0u64;
                        loop {
                            let n = f.read(&mut buf[..FILE_READ])?;
                            if n == 0 {
                                break;
                            }
                            s.write_all(&buf[..n]).await?;
                            sent += n as u64;
                        }
                        if sent != size {
                            bail!("sent {sent} bytes of the file, expected {size}");
                        }
                    } else if req[0] == b'D' {
                        let mut left = size;
                        while left > 0 {
                            let n = left.min(CHUNK as u64) as usize;
                            s.write_all(&buf[..n]).await?;
                            left -= n as u64;
                        }
                    } else {
                        let got = read_to_end_counting(&mut s, &mut buf).await?;
                        if got != size {
                            bail!("received {got} of {size}");
                        }
                        s.write_all(b"K").await?;
                    }
                    s.shutdown().await?;
                    Ok(())
                }
                .await;
                if let Err(e) = r {
                    eprintln!("tls-peer: {e:#}");
                }
            });
        }
    })
}

pub struct Peer {
    child: Child,
    addr: SocketAddr,
}

impl Peer {
    /// Starts the peer; `file` is what it sends for [`Direction::DownloadFile`].
    pub fn start(exe: &Path, cert: &Path, key: &Path, file: Option<&Path>) -> Result<Peer> {
        let mut command = Command::new(exe);
        command
            .arg("tls-peer")
            .arg("--cert")
            .arg(cert)
            .arg("--key")
            .arg(key);
        if let Some(file) = file {
            command.arg("--file").arg(file);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .ok_or_else(|| anyhow!("tls-peer said {line:?}"))?
            .parse()?;
        Ok(Peer { child, addr })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One stream of `size` bytes to or from the peer at `addr` (process `pid`). Returns
/// (MiB/s, peer CPU s).
pub async fn stream(
    addr: SocketAddr,
    pid: u32,
    direction: Direction,
    size: u64,
) -> Result<(f64, f64)> {
    let download = direction != Direction::Upload;
    let base = client::base_config(TlsVersion::V13);
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let mut s = tokio_rustls::TlsConnector::from(client::fresh(&base))
        .connect(ServerName::try_from("localhost")?, tcp)
        .await?;
    let cpu0 = procfs::cpu_seconds(pid);
    let start = Instant::now();
    let mut req = [0u8; 9];
    req[0] = direction.request();
    req[1..].copy_from_slice(&size.to_be_bytes());
    s.write_all(&req).await?;
    s.flush().await?;
    let mut buf = vec![0xa5u8; CHUNK];
    if download {
        let got = read_to_end_counting(&mut s, &mut buf).await?;
        if got != size {
            bail!("raw TLS: received {got} of {size}");
        }
    } else {
        let mut left = size;
        while left > 0 {
            let n = left.min(CHUNK as u64) as usize;
            s.write_all(&buf[..n]).await?;
            left -= n as u64;
        }
        s.get_mut().0.flush().await?;
        // Half-close via close_notify, then wait for the peer's acknowledgement.
        s.get_mut().1.send_close_notify();
        s.flush().await?;
        let mut ack = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(60), s.read_to_end(&mut ack)).await;
        if ack.first() != Some(&b'K') {
            bail!("raw TLS upload not acknowledged");
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = procfs::cpu_seconds(pid) - cpu0;
    Ok((size as f64 / (1 << 20) as f64 / secs, cpu))
}

/// What the small-file workload's data connections cost with no FTP around them: `sessions`
/// clients at once, each with its own session cache, each opening `iterations` × 3
/// connections to the peer (upload 4 KiB, download a short listing's worth, download
/// 4 KiB: the STOR, LIST and RETR of one small-file iteration), every one a new TCP
/// connection that resumes the client's TLS session. Returns the peer's CPU in ms per
/// small-file *operation* (four per iteration, DELE included, as the servers are counted):
/// the floor under any server built on the same TLS stack that serves a file per data
/// connection, as FTP does.
pub async fn small_connections(
    addr: SocketAddr,
    pid: u32,
    version: TlsVersion,
    sessions: usize,
    iterations: usize,
    size: usize,
) -> Result<f64> {
    let base = client::base_config(version);
    // One full handshake per client first, so that every measured connection resumes.
    let mut configs = Vec::new();
    for _ in 0..sessions {
        let config = client::fresh(&base);
        connection(addr, &config, b'D', 64, false).await?;
        configs.push(config);
    }
    let cpu0 = procfs::cpu_seconds(pid);
    let mut tasks = Vec::new();
    for config in configs {
        tasks.push(tokio::spawn(async move {
            for _ in 0..iterations {
                connection(addr, &config, b'U', size, true).await?;
                connection(addr, &config, b'D', 300, true).await?;
                connection(addr, &config, b'D', size, true).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let cpu = procfs::cpu_seconds(pid) - cpu0;
    Ok(cpu * 1000.0 / (sessions * iterations * 4).max(1) as f64)
}

/// One connection to the peer: `D` (download) or `U` (upload) of `size` bytes; fails
/// unless it moved every byte within [`client::TIMEOUT`], and resumed when `must_resume`.
async fn connection(
    addr: SocketAddr,
    config: &Arc<rustls::ClientConfig>,
    request: u8,
    size: usize,
    must_resume: bool,
) -> Result<()> {
    let one = async {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let mut s = tokio_rustls::TlsConnector::from(config.clone())
            .connect(ServerName::try_from("localhost")?, tcp)
            .await?;
        let mut req = [0u8; 9];
        req[0] = request;
        req[1..].copy_from_slice(&(size as u64).to_be_bytes());
        let mut buf = vec![0xa5u8; size.max(4096)];
        if request == b'U' {
            let mut msg = req.to_vec();
            msg.extend_from_slice(&buf[..size]);
            s.write_all(&msg).await?;
            s.get_mut().1.send_close_notify();
            s.flush().await?;
            let mut ack = Vec::new();
            s.read_to_end(&mut ack).await?;
            if ack.first() != Some(&b'K') {
                bail!("raw TLS upload of {size} bytes not acknowledged");
            }
        } else {
            s.write_all(&req).await?;
            s.flush().await?;
            let got = read_to_end_counting(&mut s, &mut buf).await?;
            if got != size as u64 {
                bail!("raw TLS: received {got} of {size}");
            }
        }
        if must_resume && s.get_ref().1.handshake_kind() != Some(rustls::HandshakeKind::Resumed) {
            bail!("raw TLS: a connection did not resume");
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(client::TIMEOUT, one)
        .await
        .map_err(|_| anyhow!("raw TLS connection: nothing within {:?}", client::TIMEOUT))?
}

/// Reads until the peer closes, through `buf`; returns the number of bytes read.
async fn read_to_end_counting<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut [u8],
) -> std::io::Result<u64> {
    let mut got = 0u64;
    loop {
        let n = s.read(buf).await?;
        if n == 0 {
            return Ok(got);
        }
        got += n as u64;
    }
}
