//! Harness for the ftpsd integration tests: runs the real `ftpsd` binary on ports chosen by
//! the OS, makes test files, runs client programs, and speaks FTPS itself for the
//! protocol-level tests.
//!
//! Each test binary uses a different part of it.
#![allow(dead_code)]

pub mod client;
pub mod pki;

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

/// The binary under test, built by cargo for this test run.
pub const FTPSD: &str = env!("CARGO_BIN_EXE_ftpsd");

/// How long the server may take to print its ports.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Sizes every client test transfers: empty, one byte, just over a buffer-friendly size,
/// and large enough to span many TLS records and socket buffers.
pub const SIZES: [(&str, u64); 4] = [
    ("empty.bin", 0),
    ("one.bin", 1),
    ("mib-plus-one.bin", 1024 * 1024 + 1),
    ("hundred-mib.bin", 100 * 1024 * 1024),
];

/// A running `ftpsd` with its own temporary state directory; killed on drop.
pub struct Server {
    child: Option<Child>,
    /// Holds the state directory, the log and anything the test puts there.
    pub dir: tempfile::TempDir,
    pub state_dir: PathBuf,
    /// The config file the server was started with, if any.
    pub config: Option<PathBuf>,
    /// Flags added to the command line.
    extra_args: Vec<String>,
    pub explicit: SocketAddr,
    pub implicit: SocketAddr,
    /// Every explicit listening address printed (with several `--listen`).
    pub explicit_all: Vec<SocketAddr>,
    /// Password of the user `ftps` created on first start.
    pub password: String,
    /// `AB:CD:...` as printed by the server.
    pub fingerprint: String,
    log: PathBuf,
    /// The server's `RUST_LOG`.
    rust_log: String,
    /// A program (and its arguments) that runs ftpsd, e.g. `strace -f`; empty: none.
    wrapper: Vec<String>,
}

/// `RUST_LOG` for the server unless a test chooses another.
pub const RUST_LOG: &str = "info,ftps_server=debug,rustls=error";

impl Server {
    /// Starts `ftpsd --state-dir DIR --listen 127.0.0.1:0 --implicit-listen 127.0.0.1:0`.
    pub fn start() -> Server {
        Self::start_with_args(&[])
    }

    /// [`Server::start`] with more command-line flags.
    pub fn start_with_args(extra: &[&str]) -> Server {
        let dir = tempdir();
        let state_dir = dir.path().join("state");
        let mut server = Server {
            child: None,
            log: dir.path().join("ftpsd.log"),
            dir,
            state_dir,
            config: None,
            extra_args: extra.iter().map(|a| a.to_string()).collect(),
            explicit: unspecified(),
            implicit: unspecified(),
            explicit_all: Vec::new(),
            password: String::new(),
            fingerprint: String::new(),
            rust_log: RUST_LOG.to_string(),
            wrapper: Vec::new(),
        };
        server.spawn();
        server
    }

    /// Starts ftpsd with `--config FILE`, where FILE has the state directory, loopback
    /// listeners on free ports, and `extra` (TOML tables such as `[timeouts]`).
    pub fn start_with_config(extra: &str) -> Server {
        Self::start_with_config_and(extra, |_| {})
    }

    /// [`Server::start_with_config`] with ftpsd run by `wrapper` (a program and its
    /// arguments, followed by ftpsd's path and arguments), such as `strace -f -o FILE`.
    pub fn start_wrapped(extra: &str, wrapper: &[&str]) -> Server {
        Self::start_configured("[\"127.0.0.1:0\"]", extra, RUST_LOG, |_| {}, wrapper)
    }

    /// [`Server::start_with_config`], running `prepare` on the temporary directory (where
    /// the config file is) before the server starts.
    pub fn start_with_config_and(extra: &str, prepare: impl FnOnce(&Path)) -> Server {
        Self::start_with_listen_and("[\"127.0.0.1:0\"]", extra, RUST_LOG, prepare)
    }

    /// [`Server::start_with_config_and`] with `listen = LISTEN` (a TOML array, e.g. with
    /// per-listener policies; every `:0` address is printed and kept in `explicit_all`)
    /// and the server's `RUST_LOG`.
    pub fn start_with_listen_and(
        listen: &str,
        extra: &str,
        rust_log: &str,
        prepare: impl FnOnce(&Path),
    ) -> Server {
        Self::start_configured(listen, extra, rust_log, prepare, &[])
    }

    fn start_configured(
        listen: &str,
        extra: &str,
        rust_log: &str,
        prepare: impl FnOnce(&Path),
        wrapper: &[&str],
    ) -> Server {
        let dir = tempdir();
        prepare(dir.path());
        let state_dir = dir.path().join("state");
        let config = dir.path().join("ftpsd.toml");
        let text = format!(
            "state_dir = \"state\"\nlisten = {listen}\nimplicit_listen = [\"127.0.0.1:0\"]\n\n{extra}\n"
        );
        fs::write(&config, text).expect("write config file");
        let mut server = Server {
            child: None,
            log: dir.path().join("ftpsd.log"),
            dir,
            state_dir,
            config: Some(config),
            extra_args: Vec::new(),
            explicit: unspecified(),
            implicit: unspecified(),
            explicit_all: Vec::new(),
            password: String::new(),
            fingerprint: String::new(),
            rust_log: rust_log.to_string(),
            wrapper: wrapper.iter().map(|a| a.to_string()).collect(),
        };
        server.spawn();
        server
    }

    fn args(&self) -> Vec<String> {
        let mut args = match &self.config {
            Some(config) => vec!["--config".into(), config.display().to_string()],
            None => vec![
                "--state-dir".into(),
                self.state_dir.display().to_string(),
                "--listen".into(),
                "127.0.0.1:0".into(),
                "--implicit-listen".into(),
                "127.0.0.1:0".into(),
            ],
        };
        args.extend(self.extra_args.iter().cloned());
        args
    }

    fn spawn(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open server log");
        let mut command = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(FTPSD);
                c
            }
            None => Command::new(FTPSD),
        };
        let mut child = command
            .args(self.args())
            .env("RUST_LOG", &self.rust_log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {FTPSD}: {e}"));
        // A thread drains stdout so the server never blocks on a full pipe.
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        self.child = Some(child);

        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let (mut explicit, mut implicit) = (None, None);
        self.explicit_all.clear();
        let mut printed = Vec::new();
        while explicit.is_none() || implicit.is_none() || self.fingerprint.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => panic!(
                    "ftpsd {:?} did not print its ports (stdout so far: {printed:?})\n{}",
                    self.args(),
                    self.log_text()
                ),
            };
            if let Some(pw) = line.strip_prefix("created user ftps with password: ") {
                self.password = pw.trim().to_string();
            } else if let Some(fp) = line.strip_prefix("certificate sha256 fingerprint: ") {
                self.fingerprint = fp.trim().to_string();
            } else if let Some(addr) = line.strip_prefix("listening explicit ") {
                self.explicit_all.push(parse_addr(addr));
                explicit = explicit.or(Some(parse_addr(addr)));
            } else if let Some(addr) = line.strip_prefix("listening implicit ") {
                implicit = Some(parse_addr(addr));
            }
            printed.push(line);
        }
        assert!(
            !self.password.is_empty(),
            "ftpsd printed no password for user ftps: {printed:?}"
        );
        self.explicit = explicit.unwrap_or_else(unspecified);
        self.implicit = implicit.unwrap_or_else(unspecified);
    }

    /// Stops the server with SIGTERM and starts it again on the same state directory (new
    /// ports); the user `ftps` keeps its password.
    pub fn restart(&mut self) {
        self.terminate();
        self.spawn();
    }

    /// Sends SIGTERM and waits for the process to end; returns whether it exited by itself
    /// within `grace` (it is killed otherwise).
    pub fn terminate_within(&mut self, grace: Duration) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    fn terminate(&mut self) {
        self.terminate_within(Duration::from_secs(10));
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server is running").id()
    }

    /// The server's resident memory in KiB (Linux), to catch unbounded buffering.
    pub fn rss_kib(&self) -> u64 {
        let pid = self.child.as_ref().expect("server is running").id();
        let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .expect("VmRSS in /proc status")
    }

    /// The data directory of the user `ftps`.
    pub fn data_dir(&self) -> PathBuf {
        self.state_dir.join("data")
    }

    /// Runs `ftpsd ARGS...` (e.g. the `user` subcommands) with `stdin`, and returns its output.
    pub fn ftpsd(&self, args: &[&str], stdin: &str) -> Output {
        run_with_stdin(Command::new(FTPSD).args(args), stdin)
    }

    /// Adds a user with its own fresh root directory (returned) via
    /// `ftpsd user add NAME --root DIR --state-dir DIR --password-stdin EXTRA...`.
    pub fn add_user(&self, name: &str, password: &str, extra: &[&str]) -> PathBuf {
        let root = self.dir.path().join(format!("root-{name}"));
        fs::create_dir_all(&root).expect("create user root");
        let root_s = root.display().to_string();
        let state = self.state_dir.display().to_string();
        let mut args = vec![
            "user",
            "add",
            name,
            "--root",
            &root_s,
            "--state-dir",
            &state,
            "--password-stdin",
        ];
        args.extend_from_slice(extra);
        let out = self.ftpsd(&args, &format!("{password}\n"));
        assert!(
            out.status.success(),
            "ftpsd {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        root
    }

    /// The server's whole stderr so far (not shortened, unlike [`Server::log_text`]).
    pub fn log_all(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The server's stderr so far.
    pub fn log_text(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        // The end is what explains a failure; keep failure messages readable.
        let start = text.len().saturating_sub(20_000);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        format!("--- ftpsd log (tail) ---\n{}", &text[start..])
    }

    /// A fresh directory inside this server's temporary directory.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        fs::create_dir_all(&path).expect("create scratch dir");
        path
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.log_text());
        }
    }
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ftpsd-test-")
        .tempdir()
        .expect("create temp dir")
}

fn unspecified() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 0))
}

fn parse_addr(text: &str) -> SocketAddr {
    text.trim()
        .parse()
        .unwrap_or_else(|e| panic!("bad listening address {text:?}: {e}"))
}

/// Runs a command with `stdin` written to it and waits for it.
pub fn run_with_stdin(cmd: &mut Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut input = child.stdin.take().expect("stdin is piped");
    input.write_all(stdin.as_bytes()).expect("write stdin");
    drop(input);
    child.wait_with_output().expect("wait for command")
}

/// A client program's result.
pub struct Run {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    /// Panics with everything the program printed unless it succeeded.
    pub fn assert_ok(&self, what: &str) -> &Run {
        assert!(
            self.status.success(),
            "{what} failed ({}):\n{self}",
            self.status
        );
        self
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            tail(&self.stdout, 8000),
            tail(&self.stderr, 8000)
        )
    }
}

fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// Runs an external client; kills it after `timeout` so a hung transfer fails the test
/// instead of hanging the suite. A missing program fails with a hint to install it.
pub fn run_client(cmd: &mut Command, timeout: Duration) -> Run {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let started = Instant::now();
    let dir = tempdir();
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = match cmd
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("create stdout file"))
        .stderr(File::create(&err_path).expect("create stderr file"))
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "`{program}` is not installed: run `bash scripts/test.sh`, which installs the \
             clients the tests need"
        ),
        Err(e) => panic!("cannot run {program}: {e}"),
    };
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for client") {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            let run = Run {
                status: std::process::ExitStatus::default(),
                stdout: fs::read_to_string(&out_path).unwrap_or_default(),
                stderr: fs::read_to_string(&err_path).unwrap_or_default(),
                elapsed: started.elapsed(),
            };
            panic!("{cmd:?} did not finish within {timeout:?}:\n{run}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |p: &Path| String::from_utf8_lossy(&fs::read(p).unwrap_or_default()).into_owned();
    Run {
        status,
        stdout: read(&out_path),
        stderr: read(&err_path),
        elapsed: started.elapsed(),
    }
}

/// A local file with known content.
#[derive(Clone, Debug)]
pub struct TestFile {
    pub name: String,
    pub path: PathBuf,
    pub len: u64,
    pub sha256: String,
}

/// Writes `len` random bytes to `dir/name`.
pub fn make_file(dir: &Path, name: &str, len: u64) -> TestFile {
    let path = dir.join(name);
    let mut rng = rand::rngs::StdRng::from_entropy();
    let mut file = std::io::BufWriter::new(File::create(&path).expect("create test file"));
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill_bytes(&mut buf[..n]);
        hash.update(&buf[..n]);
        file.write_all(&buf[..n]).expect("write test file");
        left -= n as u64;
    }
    file.flush().expect("flush test file");
    TestFile {
        name: name.to_string(),
        path,
        len,
        sha256: hex(&hash.finalize()),
    }
}

/// The four files of [`SIZES`] in `dir`.
pub fn standard_files(dir: &Path) -> Vec<TestFile> {
    SIZES
        .iter()
        .map(|(name, len)| make_file(dir, name, *len))
        .collect()
}

/// SHA-256 of a file as lowercase hex.
pub fn sha256_file(path: &Path) -> String {
    let mut file =
        File::open(path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).expect("read file");
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    hex(&hash.finalize())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Asserts that `path` has exactly the content of `expected`.
pub fn assert_same_content(expected: &TestFile, path: &Path, what: &str) {
    let meta =
        fs::metadata(path).unwrap_or_else(|e| panic!("{what}: {} is missing: {e}", path.display()));
    assert_eq!(
        meta.len(),
        expected.len,
        "{what}: size of {}",
        path.display()
    );
    assert_eq!(
        sha256_file(path),
        expected.sha256,
        "{what}: SHA-256 of {}",
        path.display()
    );
}

/// Asserts that a LIST output names every file with its size.
pub fn assert_listed(listing: &str, files: &[TestFile], what: &str) {
    for f in files {
        let line = listing
            .lines()
            .find(|l| l.split_whitespace().last() == Some(f.name.as_str()))
            .unwrap_or_else(|| panic!("{what}: {} not in listing:\n{listing}", f.name));
        assert!(
            line.split_whitespace().any(|w| w == f.len.to_string()),
            "{what}: listing line for {} lacks its size {}: {line}",
            f.name,
            f.len
        );
    }
}

/// Asserts that a directory holds no regular file (everything was deleted).
pub fn assert_no_files(dir: &Path, what: &str) {
    let left = file_names(dir);
    assert!(left.is_empty(), "{what}: files left in the root: {left:?}");
}

/// The names in `dir`, hidden ones included, in directory order.
pub fn file_names(dir: &Path) -> Vec<std::ffi::OsString> {
    fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("dir entry").file_name())
        .collect()
}
