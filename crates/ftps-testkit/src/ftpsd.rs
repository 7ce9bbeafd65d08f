//! The ftpsd binary under test: where it is, and a running server on ports chosen by the
//! OS, with its own temporary state directory.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::files::tempdir;
use crate::run::run_with_stdin;
use crate::storage::{self, Backend, UserFiles};

/// How long the server may take to print its ports.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The environment variable that names the ftpsd binary for tests outside the ftpsd crate.
pub const FTPSD_BIN: &str = "FTPSD_BIN";

/// The path of an ftpsd binary, and variables to add to the environment of the servers it
/// starts.
#[derive(Clone, Debug)]
pub struct Ftpsd(PathBuf, Vec<(String, String)>);

impl Ftpsd {
    /// The binary at `path` (inside the ftpsd crate: `env!("CARGO_BIN_EXE_ftpsd")`).
    pub fn at(path: impl Into<PathBuf>) -> Ftpsd {
        Ftpsd(path.into(), Vec::new())
    }

    /// Servers started from this get `name=value` in their environment besides the test's
    /// own (e.g. a marker that must not reach what the server runs).
    pub fn env(mut self, name: &str, value: &str) -> Ftpsd {
        self.1.push((name.to_string(), value.to_string()));
        self
    }

    /// The binary named by `FTPSD_BIN`, or else the one cargo built beside the running test
    /// (`target/<profile>/ftpsd`, which `cargo test --workspace` builds). Panics, saying how
    /// to build it, when it is missing: tests never build it themselves.
    pub fn locate() -> Ftpsd {
        if let Some(path) = std::env::var_os(FTPSD_BIN) {
            return Ftpsd::at(path);
        }
        let exe = std::env::current_exe().expect("path of the test executable");
        // target/<profile>/deps/<test> -> target/<profile>/ftpsd
        let bin = exe
            .parent()
            .and_then(Path::parent)
            .map(|profile| profile.join("ftpsd"))
            .expect("test executable inside target/<profile>/deps");
        assert!(
            bin.is_file(),
            "{} is missing: run `cargo build -p ftpsd` first (with the same profile as the \
             tests), or name the binary in {FTPSD_BIN}",
            bin.display()
        );
        Ftpsd::at(bin)
    }

    /// Where the binary is.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `ftpsd` as a command to run.
    pub fn command(&self) -> Command {
        Command::new(&self.0)
    }

    /// Starts `ftpsd --state-dir DIR --listen 127.0.0.1:0 --implicit-listen 127.0.0.1:0`.
    pub fn start(&self) -> Server {
        self.start_with_args(&[])
    }

    /// [`Ftpsd::start`] with more command-line flags.
    pub fn start_with_args(&self, extra: &[&str]) -> Server {
        if Backend::is_s3() {
            // The storage is configured in a file; the flags still override the rest.
            let dir = tempdir();
            let config = self.write_config(dir.path(), "[\"127.0.0.1:0\"]", "");
            return self.spawn(dir, Some(config), extra, RUST_LOG, &[]);
        }
        self.spawn(tempdir(), None, extra, RUST_LOG, &[])
    }

    /// Starts ftpsd with `--config FILE`, where FILE has the state directory, loopback
    /// listeners on free ports, and `extra` (TOML tables such as `[timeouts]`).
    pub fn start_with_config(&self, extra: &str) -> Server {
        self.start_with_config_and(extra, |_| {})
    }

    /// [`Ftpsd::start_with_config`] with ftpsd run by `wrapper` (a program and its
    /// arguments, followed by ftpsd's path and arguments), such as `strace -f -o FILE`.
    pub fn start_wrapped(&self, extra: &str, wrapper: &[&str]) -> Server {
        self.start_configured("[\"127.0.0.1:0\"]", extra, RUST_LOG, |_| {}, wrapper)
    }

    /// [`Ftpsd::start_with_config`], running `prepare` on the temporary directory (where
    /// the config file is) before the server starts.
    pub fn start_with_config_and(&self, extra: &str, prepare: impl FnOnce(&Path)) -> Server {
        self.start_with_listen_and("[\"127.0.0.1:0\"]", extra, RUST_LOG, prepare)
    }

    /// [`Ftpsd::start_with_config_and`] with `listen = LISTEN` (a TOML array, e.g. with
    /// per-listener policies; every `:0` address is printed and kept in `explicit_all`)
    /// and the server's `RUST_LOG`.
    pub fn start_with_listen_and(
        &self,
        listen: &str,
        extra: &str,
        rust_log: &str,
        prepare: impl FnOnce(&Path),
    ) -> Server {
        self.start_configured(listen, extra, rust_log, prepare, &[])
    }

    fn start_configured(
        &self,
        listen: &str,
        extra: &str,
        rust_log: &str,
        prepare: impl FnOnce(&Path),
        wrapper: &[&str],
    ) -> Server {
        let dir = tempdir();
        prepare(dir.path());
        let config = self.write_config(dir.path(), listen, extra);
        self.spawn(dir, Some(config), &[], rust_log, wrapper)
    }

    /// Writes `dir/ftpsd.toml`: the state directory, the listeners and `extra`, and (when
    /// this run keeps the users' files in S3, and `extra` configures no storage itself) the
    /// shared Garage as the default storage under a key prefix of this server's own.
    fn write_config(&self, dir: &Path, listen: &str, extra: &str) -> PathBuf {
        let config = dir.join("ftpsd.toml");
        // `extra` may set the implicit listeners itself (a key may appear only once).
        let implicit = if extra.contains("implicit_listen") {
            ""
        } else {
            "implicit_listen = [\"127.0.0.1:0\"]\n"
        };
        let mut text = format!("state_dir = \"state\"\nlisten = {listen}\n{implicit}\n{extra}\n");
        if Backend::is_s3() && !extra.contains("[storage") {
            text.push('\n');
            text.push_str(&storage::s3_default_storage(dir, &storage::fresh_prefix()));
        }
        fs::write(&config, text).expect("write config file");
        config
    }

    /// Runs the server in `dir` (its state in `dir/state`) and waits for its ports.
    fn spawn(
        &self,
        dir: tempfile::TempDir,
        config: Option<PathBuf>,
        extra_args: &[&str],
        rust_log: &str,
        wrapper: &[&str],
    ) -> Server {
        let owned = |args: &[&str]| args.iter().map(|a| a.to_string()).collect();
        let mut server = Server {
            bin: self.clone(),
            child: None,
            log: dir.path().join("ftpsd.log"),
            state_dir: dir.path().join("state"),
            dir,
            config,
            extra_args: owned(extra_args),
            explicit: unspecified(),
            implicit: unspecified(),
            explicit_all: Vec::new(),
            metrics: None,
            admin: None,
            password: String::new(),
            fingerprint: String::new(),
            rust_log: rust_log.to_string(),
            wrapper: owned(wrapper),
        };
        server.spawn();
        server
    }
}

/// A running `ftpsd` with its own temporary state directory; killed on drop.
pub struct Server {
    bin: Ftpsd,
    child: Option<Child>,
    /// Holds the state directory, the log and anything the test puts there.
    pub dir: tempfile::TempDir,
    /// The state directory (certificate, users, the data of the user `ftps`).
    pub state_dir: PathBuf,
    /// The config file the server was started with, if any.
    pub config: Option<PathBuf>,
    /// Flags added to the command line.
    extra_args: Vec<String>,
    /// The (first) explicit FTPS listener.
    pub explicit: SocketAddr,
    /// The implicit FTPS listener.
    pub implicit: SocketAddr,
    /// Every explicit listening address printed (with several `--listen`).
    pub explicit_all: Vec<SocketAddr>,
    /// The metrics listener, when `[metrics] listen` is configured.
    pub metrics: Option<SocketAddr>,
    /// The admin API, when `[admin] listen` is configured.
    pub admin: Option<SocketAddr>,
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
                c.args(args).arg(self.bin.path());
                c
            }
            None => self.bin.command(),
        };
        let mut child = command
            .args(self.args())
            .env("RUST_LOG", &self.rust_log)
            .envs(self.bin.1.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.path().display()));
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
            } else if let Some(addr) = line.strip_prefix("listening metrics ") {
                self.metrics = Some(parse_addr(addr));
            } else if let Some(addr) = line.strip_prefix("listening admin ") {
                self.admin = Some(parse_addr(addr));
            }
            printed.push(line);
        }
        // With users in a database no default user is made.
        let database = self
            .config
            .as_ref()
            .and_then(|c| fs::read_to_string(c).ok())
            .is_some_and(|text| text.contains("[database]"));
        assert!(
            database || !self.password.is_empty(),
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

    /// Sends the signal `name` (`HUP`, `TERM`, ...) to the server with `kill`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {} failed", self.pid());
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

    /// The files of the user `ftps`: its local root (`<state>/data`), or its objects in
    /// Garage when this run keeps the users' files in S3.
    pub fn files(&self) -> UserFiles {
        self.user_files("data")
    }

    /// The files of a user whose root the users file gives as `root` (relative to the
    /// state directory, or absolute): the local directory, or the key prefix in the
    /// server's S3 store.
    pub fn user_files(&self, root: &str) -> UserFiles {
        match self.store_prefix() {
            Some(prefix) => UserFiles::S3 {
                prefix: format!("{prefix}/{}/", root.trim_matches('/')),
            },
            None => UserFiles::Local(self.state_dir.join(root)),
        }
    }

    /// The key prefix of this server's S3 store, when its users' files are in the shared
    /// Garage (read back from its configuration file).
    fn store_prefix(&self) -> Option<String> {
        if !Backend::is_s3() {
            return None;
        }
        let text = fs::read_to_string(self.config.as_ref()?).ok()?;
        let table = text
            .split_once(&format!("[storage.s3.{}]", storage::STORE_NAME))?
            .1;
        table.lines().find_map(|line| {
            let value = line.strip_prefix("prefix = \"")?.strip_suffix('"')?;
            Some(value.to_string())
        })
    }

    /// The local data directory of the user `ftps`. Panics when this run keeps the users'
    /// files in S3: such a test needs a local root by nature.
    pub fn data_dir(&self) -> PathBuf {
        self.files().local_path().to_path_buf()
    }

    /// Writes a file into the root of the user `ftps`.
    pub fn put(&self, name: &str, content: &[u8]) {
        self.files().put(name, content);
    }

    /// Runs `ftpsd ARGS...` (e.g. the `user` subcommands) with `stdin`, and returns its output.
    pub fn ftpsd(&self, args: &[&str], stdin: &str) -> Output {
        run_with_stdin(self.bin.command().args(args), stdin)
    }

    /// Adds a user with its own fresh, empty root (returned) via
    /// `ftpsd user add NAME --root ROOT --state-dir DIR --password-stdin EXTRA...`: a local
    /// directory, or a key prefix of the server's S3 store when this run keeps the users'
    /// files in S3.
    pub fn add_user(&self, name: &str, password: &str, extra: &[&str]) -> UserFiles {
        let (root_arg, files) = if Backend::is_s3() {
            let root = format!("root-{name}");
            let files = self.user_files(&root);
            (root, files)
        } else {
            let root = self.dir.path().join(format!("root-{name}"));
            fs::create_dir_all(&root).expect("create user root");
            (root.display().to_string(), UserFiles::Local(root))
        };
        let state = self.state_dir.display().to_string();
        let mut args = vec![
            "user",
            "add",
            name,
            "--root",
            &root_arg,
            "--state-dir",
            &state,
            "--password-stdin",
        ];
        // The server's configuration names its default store, so that the root is kept as
        // a key prefix of it.
        let config = self.config.as_ref().map(|c| c.display().to_string());
        if let (true, Some(config)) = (Backend::is_s3(), &config) {
            args.extend(["--config", config.as_str()]);
        }
        args.extend_from_slice(extra);
        let out = self.ftpsd(&args, &format!("{password}\n"));
        assert!(
            out.status.success(),
            "ftpsd {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        files
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

fn unspecified() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 0))
}

fn parse_addr(text: &str) -> SocketAddr {
    text.trim()
        .parse()
        .unwrap_or_else(|e| panic!("bad listening address {text:?}: {e}"))
}
