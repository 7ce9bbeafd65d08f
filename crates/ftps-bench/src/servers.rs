//! Starts the servers under test on loopback with equivalent settings: explicit FTPS, TLS
//! required for login and data, data connections must resume the control session, the same
//! ECDSA P-256 certificate, files on tmpfs, no session or connection limits in the way.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::client::Target;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Ftpsd,
    Vsftpd,
    PureFtpd,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ftpsd => "ftpsd",
            Kind::Vsftpd => "vsftpd",
            Kind::PureFtpd => "Pure-FTPd",
        }
    }
}

/// The system user the reference servers log in as (scripts/reference-servers.sh makes it).
pub struct RefUser {
    pub name: String,
    pub password: String,
    pub uid: u32,
    pub gid: u32,
}

impl RefUser {
    pub fn lookup(name: &str, password: &str) -> Option<RefUser> {
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        passwd.lines().find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.len() > 3 && f[0] == name).then(|| RefUser {
                name: name.to_string(),
                password: password.to_string(),
                uid: f[2].parse().unwrap_or(0),
                gid: f[3].parse().unwrap_or(0),
            })
        })
    }
}

pub struct Certs {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// One self-signed ECDSA P-256 certificate for `localhost` shared by every server.
pub fn make_certs(dir: &Path) -> Result<Certs> {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])?;
    let certs = Certs {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    std::fs::write(&certs.cert, ck.cert.pem())?;
    std::fs::write(&certs.key, ck.key_pair.serialize_pem())?;
    std::fs::set_permissions(&certs.key, std::fs::Permissions::from_mode(0o600))?;
    Ok(certs)
}

pub struct Running {
    pub kind: Kind,
    child: Child,
    pub addr: SocketAddr,
    /// Where the server's files are on this machine.
    pub root: PathBuf,
    /// The main account.
    pub target: Target,
    /// Accounts that have never logged in (first-login measurements); for servers without
    /// a credential cache, the main account again.
    pub first_login_users: Vec<(String, String)>,
    pub log: PathBuf,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Puts a file of `size` bytes into the server's root (owned by its user).
    pub fn make_file(&self, name: &str, size: u64, owner: Option<(u32, u32)>) -> Result<()> {
        let path = self.root.join(name);
        write_test_file(&path, size)?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&path, Some(uid), Some(gid))?;
        }
        Ok(())
    }

    pub fn stop(mut self) {
        // SIGTERM first so servers can clean up their session processes.
        // SAFETY: kill on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A passive port range for vsftpd outside the kernel's ephemeral range.
///
/// vsftpd cannot leave the passive port to the kernel: it draws one at random from
/// `pasv_min_port..=pasv_max_port` (1024-65535 when unset), and after nine `EADDRINUSE` in a
/// row it ends the session with `500 OOPS: vsf_sysutil_bind`. Unset, that range covers the
/// ephemeral range (32768-60999 on Linux), where every connection the load generator closed
/// first holds its local port in TIME_WAIT for 60 s: after the earlier workloads and
/// thousands of small-file transfers so many of those ports are taken that nine misses in a
/// row happen within one small-file run. ftpsd and Pure-FTPd take a port from the kernel,
/// which never hands out a taken one; a range outside the ephemeral one is what vsftpd's
/// guides set anyway (for firewalls), and it gives vsftpd the same footing.
fn vsftpd_passive_range() -> (u16, u16) {
    let (low, high) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|p| p.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999));
    if low > 12_000 {
        (10_000.min(low / 2), low - 1)
    } else {
        (high.saturating_add(1), 65_535)
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A reference server just started on `port` with `user`, once it listens; if it does not,
/// it is killed and the error says why (the caller tries another port).
fn reference_running(
    kind: Kind,
    mut child: Child,
    port: u16,
    user: &RefUser,
    root: &Path,
    log: &Path,
) -> Result<Running> {
    if let Err(e) = wait_listening(&mut child, port, log) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    Ok(Running {
        kind,
        child,
        addr,
        target: Target {
            addr,
            user: user.name.clone(),
            password: user.password.clone(),
            dir: root.display().to_string(),
        },
        root: root.to_path_buf(),
        first_login_users: vec![(user.name.clone(), user.password.clone())],
        log: log.to_path_buf(),
    })
}

fn wait_listening(child: &mut Child, port: u16, log: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(e) = child.stderr.as_mut() {
                let _ = e.read_to_string(&mut err);
            }
            if let Some(o) = child.stdout.as_mut() {
                let _ = o.read_to_string(&mut err);
            }
            let logtext = std::fs::read_to_string(log).unwrap_or_default();
            bail!("exited with {status}: {err}\n{logtext}");
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            // Keep reading what the server prints so it never blocks on a full pipe.
            for mut out in [
                child
                    .stdout
                    .take()
                    .map(|o| Box::new(o) as Box<dyn Read + Send>),
                child
                    .stderr
                    .take()
                    .map(|e| Box::new(e) as Box<dyn Read + Send>),
            ]
            .into_iter()
            .flatten()
            {
                std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
            }
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("did not listen on {port} within 20 s")
}

fn chown_tree(path: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
    if path.is_dir() {
        for e in std::fs::read_dir(path)? {
            chown_tree(&e?.path(), uid, gid)?;
        }
    }
    Ok(())
}

pub struct FtpsdOptions {
    pub binary: PathBuf,
    /// Users made for first-login measurements (each logs in once).
    pub fresh_users: usize,
    pub max_sessions: usize,
    /// More of the configuration file (TOML tables), e.g. an S3 store.
    pub extra_config: String,
}

fn run_with_stdin(cmd: &mut Command, stdin: &str) -> Result<String> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    child
        .stdin
        .take()
        .ok_or_else(|| anyhow!("no stdin"))?
        .write_all(stdin.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn start_ftpsd(dir: &Path, certs: &Certs, opts: &FtpsdOptions) -> Result<Running> {
    let base = dir.join("ftpsd");
    let root = base.join("root");
    std::fs::create_dir_all(&root)?;
    let conf = base.join("ftpsd.toml");
    let limit = opts.max_sessions + 100;
    std::fs::write(
        &conf,
        format!(
            "state_dir = \"state\"\nlisten = [\"127.0.0.1:0\"]\nimplicit_listen = []\n\
             [tls]\ncertificate = \"{cert}\"\nprivate_key = \"{key}\"\n\
             [timeouts]\nidle = 3600\nlogin = 600\n\
             [limits]\nmax_sessions = {limit}\nmax_sessions_per_ip = {limit}\n\
             max_sessions_per_user = {limit}\n{extra}\n",
            cert = certs.cert.display(),
            key = certs.key.display(),
            extra = opts.extra_config,
        ),
    )?;
    let password = "bench-password-0123456789";
    let mut users = vec![("bench".to_string(), password.to_string())];
    for i in 0..opts.fresh_users {
        users.push((format!("first{i}"), format!("{password}-{i}")));
    }
    for (name, pw) in &users {
        run_with_stdin(
            Command::new(&opts.binary)
                .args(["user", "add", name, "--root"])
                .arg(&root)
                .arg("--config")
                .arg(&conf)
                .arg("--password-stdin"),
            &format!("{pw}\n"),
        )?;
    }
    let log = base.join("ftpsd.log");
    let mut child = Command::new(&opts.binary)
        .arg("--config")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .with_context(|| format!("cannot start {}", opts.binary.display()))?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(a) = line.strip_prefix("listening explicit ") {
                let _ = tx.send(a.trim().to_string());
            }
        }
    });
    let addr: SocketAddr = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(a) => a.parse()?,
        Err(_) => {
            let _ = child.kill();
            bail!(
                "ftpsd did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
    };
    Ok(Running {
        kind: Kind::Ftpsd,
        child,
        addr,
        root,
        target: Target {
            addr,
            user: users[0].0.clone(),
            password: users[0].1.clone(),
            dir: String::new(),
        },
        first_login_users: users[1..].to_vec(),
        log,
    })
}

pub fn start_vsftpd(dir: &Path, certs: &Certs, binary: &Path, user: &RefUser) -> Result<Running> {
    let base = dir.join("vsftpd");
    let root = base.join("root");
    std::fs::create_dir_all(&root)?;
    chown_tree(&root, user.uid, user.gid)?;
    std::fs::create_dir_all("/var/run/vsftpd/empty")?;
    let log = base.join("vsftpd.log");
    let (pasv_min, pasv_max) = vsftpd_passive_range();
    let mut last = String::new();
    for _ in 0..5 {
        let port = free_port()?;
        let conf = base.join("vsftpd.conf");
        // The settings the issue names: explicit FTPS required for login and data, data
        // sessions must reuse the control session, TLS 1.2 pinned to AES-256-GCM (the
        // client pins TLS 1.3 to TLS_AES_256_GCM_SHA384), no limits; passive ports outside
        // the ephemeral range (see vsftpd_passive_range).
        std::fs::write(
            &conf,
            format!(
                "listen=YES\nlisten_address=127.0.0.1\nlisten_port={port}\nbackground=NO\n\
                 anonymous_enable=NO\nlocal_enable=YES\nwrite_enable=YES\nlocal_umask=022\n\
                 pam_service_name=ftps-interop\nlocal_root={root}\nuserlist_enable=NO\n\
                 ssl_enable=YES\nssl_sslv2=NO\nssl_sslv3=NO\nssl_tlsv1=NO\n\
                 rsa_cert_file={cert}\nrsa_private_key_file={key}\n\
                 force_local_logins_ssl=YES\nforce_local_data_ssl=YES\nrequire_ssl_reuse=YES\n\
                 ssl_ciphers=ECDHE-ECDSA-AES256-GCM-SHA384\nseccomp_sandbox=NO\n\
                 pasv_enable=YES\nport_enable=NO\n\
                 pasv_min_port={pasv_min}\npasv_max_port={pasv_max}\n\
                 max_per_ip=0\nmax_clients=0\nidle_session_timeout=3600\n\
                 data_connection_timeout=600\nvsftpd_log_file={log}\nxferlog_enable=NO\n",
                root = root.display(),
                cert = certs.cert.display(),
                key = certs.key.display(),
                log = log.display(),
            ),
        )?;
        let child = Command::new(binary)
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        match reference_running(Kind::Vsftpd, child, port, user, &root, &log) {
            Ok(running) => return Ok(running),
            Err(e) => last = e.to_string(),
        }
    }
    bail!("vsftpd did not start: {last}")
}

pub fn start_pure_ftpd(
    dir: &Path,
    certs: &Certs,
    binary: &Path,
    user: &RefUser,
    max_sessions: usize,
) -> Result<Running> {
    let base = dir.join("pure-ftpd");
    let root = base.join("root");
    std::fs::create_dir_all(&root)?;
    chown_tree(&root, user.uid, user.gid)?;
    // Pure-FTPd wants the certificate and key in one file when given one path; -2 takes
    // both.
    let log = base.join("pure-ftpd.log");
    let mut last = String::new();
    let limit = (max_sessions + 100).to_string();
    for _ in 0..5 {
        let port = free_port()?;
        // -Y 2: TLS required for login and data (the client pins the TLS version and suite);
        // -l unix: the system password database; -E: no anonymous; -H: no reverse DNS;
        // -c/-C: no practical session limit; -I: idle timeout in minutes.
        let child = Command::new(binary)
            .arg("-S")
            .arg(format!("127.0.0.1,{port}"))
            .args(["-Y", "2"])
            .args(["-l", "unix", "-E", "-H", "-I", "60"])
            .arg("-2")
            .arg(format!("{},{}", certs.cert.display(), certs.key.display()))
            .arg("-g")
            .arg(base.join("pure-ftpd.pid"))
            .args(["-c", &limit, "-C", &limit])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        match reference_running(Kind::PureFtpd, child, port, user, &root, &log) {
            Ok(running) => return Ok(running),
            Err(e) => last = e.to_string(),
        }
    }
    bail!("pure-ftpd did not start: {last}")
}

/// Writes `size` bytes of pseudo-random data (xorshift, so nothing compresses or repeats
/// within a MiB) to a new file at `path`.
pub fn write_test_file(path: &Path, size: u64) -> Result<()> {
    let mut f = std::fs::File::create(path)?;
    let mut chunk = vec![0u8; 1 << 20];
    let mut x: u32 = 0x9e37_79b9;
    for b in chunk.iter_mut() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        f.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// A scratch directory, removed with everything in it when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Creates this process's scratch directory for the servers' files under `base` (normally
/// tmpfs).
pub fn tempdir_in(base: &Path) -> Result<TempDir> {
    // Without tmpfs at the usual place (some containers), the system's temporary directory.
    let fallback = std::env::temp_dir();
    let base = if base.is_dir() { base } else { &fallback };
    let path = base.join(format!("ftps-bench-{}", std::process::id()));
    std::fs::create_dir_all(&path).with_context(|| format!("create {}", path.display()))?;
    // The reference servers' sessions run as an unprivileged user and must reach their roots.
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    Ok(TempDir(path))
}
