//! Starts real FTPS servers (vsftpd, ProFTPD, Pure-FTPd from Debian packages, and ftpsd) as
//! subprocesses on free loopback ports, with a generated configuration and certificate in a
//! temporary directory; stops them when dropped. Shared by the client, CLI and ftpsd
//! compatibility tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::ftpsd::Ftpsd;
use crate::pki::{write_cert_files, CertFiles as Certs};
use crate::tls::parse_fingerprint;

/// The system user the reference servers log in as (created by scripts/reference-servers.sh).
pub const TEST_USER: &str = "ftpstest";
/// Its password (a throw-away account for loopback tests only).
pub const TEST_PASSWORD: &str = "ftpstest-interop-pw";

/// Which server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// vsftpd 3.0.3, with `require_ssl_reuse=YES`.
    Vsftpd,
    /// ProFTPD 1.3.8 with mod_tls.
    Proftpd,
    /// Pure-FTPd 1.0.50 with `-Y 2` (TLS required).
    PureFtpd,
    /// This workspace's server.
    Ftpsd,
}

impl Kind {
    /// The server's program name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Vsftpd => "vsftpd",
            Kind::Proftpd => "proftpd",
            Kind::PureFtpd => "pure-ftpd",
            Kind::Ftpsd => "ftpsd",
        }
    }
}

/// A running server, stopped when dropped.
pub struct Server {
    /// Which server it is.
    pub kind: Kind,
    /// Its explicit FTPS port on 127.0.0.1 (or [::1]).
    pub explicit_port: u16,
    /// Its implicit FTPS port, if it has one.
    pub implicit_port: Option<u16>,
    /// Where the server's files live on this machine.
    pub root: PathBuf,
    /// The same directory as the server shows it to the test user.
    pub base: String,
    /// The user to log in as.
    pub user: String,
    /// Its password.
    pub password: String,
    /// SHA-256 of the server certificate's DER.
    pub fingerprint: [u8; 32],
    /// A CA file that verifies the server certificate (for `localhost`/127.0.0.1).
    pub ca_file: PathBuf,
    /// A client certificate and key signed by that CA.
    pub client_cert: (PathBuf, PathBuf),
    /// The temporary directory of configuration, certificates, logs and the root.
    pub dir: tempfile::TempDir,
    children: Vec<Child>,
}

impl Server {
    /// Kills (SIGKILL) every process the server started for its sessions: vsftpd, ProFTPD
    /// and Pure-FTPd fork one (or two) per connection, so this breaks every open session as
    /// a crash or a network failure would, while the server goes on accepting. Returns how
    /// many processes were killed (none for ftpsd, which has no such processes).
    pub fn kill_sessions(&self) -> usize {
        let parents: Vec<u32> = self.children.iter().map(Child::id).collect();
        let mut victims: Vec<u32> = Vec::new();
        let mut frontier = parents;
        // Children, then their children (vsftpd's privilege-separated pairs).
        while !frontier.is_empty() {
            let next: Vec<u32> = processes()
                .into_iter()
                .filter(|(_, ppid)| frontier.contains(ppid))
                .map(|(pid, _)| pid)
                .collect();
            victims.extend(&next);
            frontier = next;
        }
        for pid in &victims {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        victims.len()
    }
}

/// Every process's id and parent id, from `/proc`.
fn processes() -> Vec<(u32, u32)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // The command name is in parentheses and may hold spaces: fields after it.
            let after = &stat[stat.rfind(')')? + 2..];
            let ppid: u32 = after.split_whitespace().nth(1)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect()
}

impl Drop for Server {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Where scripts/reference-servers.sh unpacked the servers.
pub fn reference_dir() -> PathBuf {
    if let Ok(d) = std::env::var("FTPS_REFERENCE_SERVERS") {
        return PathBuf::from(d);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/reference-servers")
}

fn require(path: &Path) -> PathBuf {
    assert!(
        path.exists(),
        "{} is missing: run `sudo scripts/reference-servers.sh` first (it installs the \
         reference FTPS servers the interop tests need)",
        path.display()
    );
    path.to_path_buf()
}

fn test_uid_gid() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() > 3 && f[0] == TEST_USER {
            return (f[2].parse().unwrap(), f[3].parse().unwrap());
        }
    }
    panic!("user {TEST_USER} is missing: run `sudo scripts/reference-servers.sh` first");
}

/// Gives `path` and everything below it to `uid`:`gid`.
pub fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    if path.is_dir() {
        for e in std::fs::read_dir(path).unwrap() {
            chown_tree(&e.unwrap().path(), uid, gid);
        }
    }
}

/// Gives the server's data directory to the test user (after a test wrote files into it).
pub fn give_to_test_user(server: &Server) {
    if server.kind != Kind::Ftpsd {
        let (uid, gid) = test_uid_gid();
        chown_tree(&server.root, uid, gid);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_listening(child: &mut Child, port: u16, log: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(e) = child.stderr.as_mut() {
                let _ = e.read_to_string(&mut err);
            }
            let logtext = std::fs::read_to_string(log).unwrap_or_default();
            return Err(format!("exited with {status}: {err}\n{logtext}"));
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err("did not start listening within 10 s".into())
}

fn spawn_until_listening(
    what: &str,
    mut make: impl FnMut(u16) -> (Command, Vec<u16>),
    log: &Path,
) -> (Vec<Child>, u16) {
    let mut last = String::new();
    for _ in 0..5 {
        let port = free_port();
        let (mut cmd, extra_ports) = make(port);
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        match wait_listening(&mut child, port, log) {
            Ok(()) => {
                let mut ok = true;
                for p in &extra_ports {
                    if wait_listening(&mut child, *p, log).is_err() {
                        ok = false;
                    }
                }
                if ok {
                    return (vec![child], port);
                }
                let _ = child.kill();
                let _ = child.wait();
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                last = e;
            }
        }
    }
    panic!("{what} failed to start: {last}");
}

/// Starts a server of `kind`.
pub fn start(kind: Kind) -> Server {
    start_with(kind, false)
}

/// Starts a server; with `require_client_cert` (ProFTPD only) it requires a client
/// certificate signed by the test CA.
pub fn start_with(kind: Kind, require_client_cert: bool) -> Server {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let certs = write_cert_files(dir.path(), TEST_USER);
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    match kind {
        Kind::Vsftpd => start_vsftpd(dir, root, certs),
        Kind::Proftpd => start_proftpd(dir, root, certs, require_client_cert),
        Kind::PureFtpd => start_pure_ftpd(dir, root, certs),
        Kind::Ftpsd => start_ftpsd(dir, root, certs),
    }
}

fn vsftpd_conf(dir: &Path, root: &Path, certs: &Certs, port: u16, implicit: bool) -> PathBuf {
    let name = if implicit { "implicit" } else { "explicit" };
    let conf = dir.join(format!("vsftpd-{name}.conf"));
    let text = format!(
        "listen=YES\nlisten_address=127.0.0.1\nlisten_port={port}\nbackground=NO\n\
         anonymous_enable=NO\nlocal_enable=YES\nwrite_enable=YES\nlocal_umask=022\n\
         pam_service_name=ftps-interop\nlocal_root={root}\nuserlist_enable=NO\n\
         ssl_enable=YES\nimplicit_ssl={implicit}\nrsa_cert_file={cert}\nrsa_private_key_file={key}\n\
         force_local_logins_ssl=YES\nforce_local_data_ssl=YES\nrequire_ssl_reuse=YES\n\
         ssl_ciphers=HIGH\nseccomp_sandbox=NO\npasv_enable=YES\nport_enable=YES\n\
         mdtm_write=YES\nuse_localtime=NO\nmax_per_ip=0\nmax_clients=0\n\
         vsftpd_log_file={log}\nxferlog_enable=NO\nlog_ftp_protocol=YES\n",
        root = root.display(),
        cert = certs.cert.display(),
        key = certs.key.display(),
        implicit = if implicit { "YES" } else { "NO" },
        log = dir.join(format!("vsftpd-{name}.log")).display(),
    );
    std::fs::write(&conf, text).unwrap();
    conf
}

fn start_vsftpd(dir: tempfile::TempDir, root: PathBuf, certs: Certs) -> Server {
    let bin = require(&reference_dir().join("vsftpd/usr/sbin/vsftpd"));
    let (uid, gid) = test_uid_gid();
    chown_tree(&root, uid, gid);
    std::fs::create_dir_all("/var/run/vsftpd/empty").unwrap();
    let mut children = Vec::new();
    let mut ports = Vec::new();
    for implicit in [false, true] {
        let log = dir.path().join("vsftpd.log");
        let (c, port) = spawn_until_listening(
            "vsftpd",
            |port| {
                let conf = vsftpd_conf(dir.path(), &root, &certs, port, implicit);
                let mut cmd = Command::new(&bin);
                cmd.arg(conf);
                (cmd, vec![])
            },
            &log,
        );
        children.extend(c);
        ports.push(port);
    }
    let base = root.display().to_string();
    system_user_server(
        Kind::Vsftpd,
        (ports[0], Some(ports[1])),
        dir,
        root,
        base,
        certs,
        children,
    )
}

fn start_proftpd(
    dir: tempfile::TempDir,
    root: PathBuf,
    certs: Certs,
    require_client_cert: bool,
) -> Server {
    let base_dir = reference_dir().join("proftpd");
    let bin = require(&base_dir.join("usr/sbin/proftpd"));
    let modules = base_dir.join("usr/lib/proftpd");
    require(&modules.join("mod_tls.so"));
    let (uid, gid) = test_uid_gid();
    chown_tree(&root, uid, gid);
    let log = dir.path().join("proftpd.log");
    let d = dir.path().to_path_buf();
    let implicit_port = std::cell::Cell::new(0u16);
    let (children, port) = spawn_until_listening(
        "proftpd",
        |port| {
            let iport = free_port();
            implicit_port.set(iport);
            let tls = format!(
                "  TLSEngine on\n  TLSRequired on\n  TLSProtocol TLSv1.2 TLSv1.3\n\
                 TLSECCertificateFile {cert}\n  TLSECCertificateKeyFile {key}\n\
                 {verify}\n  TLSLog {tlslog}\n  TLSRenegotiate none\n",
                cert = certs.cert.display(),
                key = certs.key.display(),
                tlslog = d.join("tls.log").display(),
                verify = if require_client_cert {
                    format!(
                        "TLSVerifyClient on\n  TLSCACertificateFile {}",
                        certs.ca.display()
                    )
                } else {
                    "TLSVerifyClient off".to_string()
                },
            );
            let conf = format!(
                "ServerType standalone\nServerName \"interop\"\nDefaultServer on\n\
                 DefaultAddress 127.0.0.1\nSocketBindTight on\nPort {port}\nUseIPv6 off\n\
                 User {TEST_USER}\nGroup {TEST_USER}\nUmask 022\nMaxInstances 50\n\
                 PidFile {pid}\nScoreboardFile {score}\nDelayTable none\nWtmpLog off\n\
                 UseReverseDNS off\nSystemLog {log}\nTransferLog none\n\
                 ModulePath {modules}\nLoadModule mod_tls.c\n\
                 <IfModule mod_auth_pam.c>\n  AuthPAM off\n</IfModule>\n\
                 AuthOrder mod_auth_unix.c\nRequireValidShell off\nDefaultRoot {root}\n\
                 AllowOverwrite on\nAllowStoreRestart on\nAllowRetrieveRestart on\n\
                 <IfModule mod_tls.c>\n{tls}</IfModule>\n\
                 <VirtualHost 127.0.0.1>\n  Port {iport}\n  User {TEST_USER}\n  Group {TEST_USER}\n\
                   AuthOrder mod_auth_unix.c\n  RequireValidShell off\n  DefaultRoot {root}\n\
                   AllowOverwrite on\n  AllowStoreRestart on\n  AllowRetrieveRestart on\n{tls}  TLSOptions UseImplicitSSL\n\
                 </VirtualHost>\n",
                pid = d.join("proftpd.pid").display(),
                score = d.join("proftpd.scoreboard").display(),
                log = log.display(),
                modules = modules.display(),
                root = root.display(),
            );
            let conf_path = d.join("proftpd.conf");
            std::fs::write(&conf_path, conf).unwrap();
            let mut cmd = Command::new(&bin);
            cmd.args(["-n", "-q", "-c"]).arg(&conf_path);
            (cmd, vec![iport])
        },
        &log,
    );
    let base = "/".to_string();
    system_user_server(
        Kind::Proftpd,
        (port, Some(implicit_port.get())),
        dir,
        root,
        base,
        certs,
        children,
    )
}

fn start_pure_ftpd(dir: tempfile::TempDir, root: PathBuf, certs: Certs) -> Server {
    let bin = require(&reference_dir().join("pure-ftpd/usr/sbin/pure-ftpd"));
    let (uid, gid) = test_uid_gid();
    chown_tree(&root, uid, gid);
    let log = dir.path().join("pure-ftpd.log");
    let d = dir.path().to_path_buf();
    let (children, port) = spawn_until_listening(
        "pure-ftpd",
        |port| {
            let mut cmd = Command::new(&bin);
            cmd.arg("-S")
                .arg(format!("127.0.0.1,{port}"))
                .args(["-Y", "2", "-l", "unix", "-E", "-H"])
                .arg("-2")
                .arg(format!("{},{}", certs.cert.display(), certs.key.display()))
                .arg("-g")
                .arg(d.join("pure-ftpd.pid"))
                .args(["-c", "50", "-C", "50"]);
            (cmd, vec![])
        },
        &log,
    );
    // No chroot: the user logs in to its home directory and reaches the test root by its
    // absolute path.
    let base = root.display().to_string();
    system_user_server(
        Kind::PureFtpd,
        (port, None),
        dir,
        root,
        base,
        certs,
        children,
    )
}

/// A reference server that logs in [`TEST_USER`], on these (explicit, implicit) ports.
fn system_user_server(
    kind: Kind,
    (explicit_port, implicit_port): (u16, Option<u16>),
    dir: tempfile::TempDir,
    root: PathBuf,
    base: String,
    certs: Certs,
    children: Vec<Child>,
) -> Server {
    Server {
        kind,
        explicit_port,
        implicit_port,
        base,
        root,
        user: TEST_USER.into(),
        password: TEST_PASSWORD.into(),
        fingerprint: certs.fingerprint,
        client_cert: (certs.client_cert, certs.client_key),
        ca_file: certs.ca,
        dir,
        children,
    }
}

/// Starts ftpsd listening on the IPv6 loopback address only.
pub fn start_ftpsd_ipv6() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let certs = write_cert_files(dir.path(), TEST_USER);
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    start_ftpsd_on(dir, root, certs, "[::1]:0", "[::1]:0")
}

fn start_ftpsd(dir: tempfile::TempDir, root: PathBuf, certs: Certs) -> Server {
    start_ftpsd_on(dir, root, certs, "127.0.0.1:0", "127.0.0.1:0")
}

fn start_ftpsd_on(
    dir: tempfile::TempDir,
    root: PathBuf,
    certs: Certs,
    listen: &str,
    implicit_listen: &str,
) -> Server {
    let bin = Ftpsd::locate();
    let state = dir.path().join("state");
    let password = "interop-test-password";
    // Add a user whose root is our data directory.
    let mut add = bin
        .command()
        .args(["user", "add", "interop", "--root"])
        .arg(&root)
        .arg("--state-dir")
        .arg(&state)
        .arg("--password-stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ftpsd user add");
    add.stdin
        .take()
        .unwrap()
        .write_all(password.as_bytes())
        .unwrap();
    let out = add.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "ftpsd user add failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = std::fs::File::create(dir.path().join("ftpsd.log")).unwrap();
    let child = bin
        .command()
        .arg("--state-dir")
        .arg(&state)
        .args(["--listen", listen])
        .args(["--implicit-listen", implicit_listen])
        .arg("--cert")
        .arg(&certs.cert)
        .arg("--key")
        .arg(&certs.key)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("start ftpsd");
    // Killed if start-up fails below.
    let mut child = KillOnDrop(Some(child));
    let child_ref = child.0.as_mut().unwrap();
    let stdout = child_ref.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                // Keep draining so the server never blocks on a full pipe.
            }
        }
    });
    let (mut explicit, mut implicit, mut fingerprint) = (None, None, None);
    let deadline = Instant::now() + Duration::from_secs(20);
    while explicit.is_none() || implicit.is_none() || fingerprint.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match rx.recv_timeout(left) {
            Ok(l) => l,
            Err(_) => panic!("ftpsd did not print its ports and fingerprint in time"),
        };
        let port_after = |marker: &str| -> Option<u16> {
            let rest = &line[line.find(marker)? + marker.len()..];
            let addr = rest.split_whitespace().next()?;
            addr.rsplit(':').next()?.parse().ok()
        };
        if let Some(p) = port_after("listening explicit ") {
            explicit = Some(p);
        }
        if let Some(p) = port_after("listening implicit ") {
            implicit = Some(p);
        }
        if let Some(i) = line.find("fingerprint: ") {
            let fp = line[i + "fingerprint: ".len()..].trim();
            fingerprint = parse_fingerprint(fp);
        }
    }
    assert_eq!(
        fingerprint,
        Some(certs.fingerprint),
        "ftpsd shows another certificate"
    );
    Server {
        kind: Kind::Ftpsd,
        explicit_port: explicit.unwrap(),
        implicit_port: implicit,
        base: "/".into(),
        root,
        user: "interop".into(),
        password: password.into(),
        fingerprint: fingerprint.unwrap(),
        client_cert: (certs.client_cert.clone(), certs.client_key.clone()),
        ca_file: certs.ca,
        dir,
        children: vec![child.0.take().unwrap()],
    }
}

struct KillOnDrop(Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
