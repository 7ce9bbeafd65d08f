//! PostgreSQL, a real one, on loopback for the tests of users in a database and of a fleet:
//! a private cluster in a temporary directory (`initdb`, then `postgres` on a free port),
//! with password (SCRAM) authentication for one role.
//!
//! The test command installs the Debian package `postgresql` when it is missing
//! (scripts/test.sh); its programs are in `/usr/lib/postgresql/VERSION/bin`, or in the
//! directory named by `PG_BIN_DIR`. PostgreSQL refuses to run as root: as root, the cluster
//! belongs to the `postgres` account and runs under it (`runuser`).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::files::tempdir;

/// The environment variable naming the directory of `initdb` and `postgres`.
pub const PG_BIN_DIR: &str = "PG_BIN_DIR";

/// How long the cluster may take to accept connections.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// A running PostgreSQL cluster; stopped (fast shutdown) and removed on drop.
pub struct Postgres {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// The port on 127.0.0.1.
    pub port: u16,
    /// The role the tests connect as.
    pub user: String,
    /// Its password.
    pub password: String,
}

impl Postgres {
    /// The directory of the PostgreSQL programs: `PG_BIN_DIR`, or the newest
    /// `/usr/lib/postgresql/*/bin`.
    pub fn bin_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os(PG_BIN_DIR) {
            return PathBuf::from(dir);
        }
        let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let version = e.file_name().to_str()?.parse().ok()?;
                let bin = e.path().join("bin");
                bin.join("initdb").is_file().then_some((version, bin))
            })
            .collect();
        versions.sort();
        versions.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
            panic!(
                "PostgreSQL is not installed: run the test command (scripts/test.sh installs \
                 the Debian package postgresql), or name the directory of initdb in {PG_BIN_DIR}"
            )
        })
    }

    /// Creates a cluster with one superuser role `ftpsd` and starts it on a free port.
    pub fn start() -> Postgres {
        let dir = tempdir();
        let bin = Self::bin_dir();
        let as_root = running_as_root();
        // The postgres account must reach its directory inside ours.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let data = dir.path().join("data");
        let sockets = dir.path().join("sockets");
        for d in [&data, &sockets] {
            fs::create_dir(d).unwrap();
        }
        let password = format!("pg-{}", rand::random::<u64>());
        let pwfile = dir.path().join("pwfile");
        fs::write(&pwfile, &password).unwrap();
        if as_root {
            for p in [&data, &sockets, &pwfile] {
                chown_to_postgres(p);
            }
        }
        let run = |program: &str, args: &[&str]| -> Command {
            let path = bin.join(program);
            if as_root {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(path).args(args);
                c
            } else {
                let mut c = Command::new(path);
                c.args(args);
                c
            }
        };
        let data_s = data.display().to_string();
        let init = run(
            "initdb",
            &[
                "-D",
                &data_s,
                "--username=ftpsd",
                "--auth=scram-sha-256",
                &format!("--pwfile={}", pwfile.display()),
                "--no-sync",
                "--encoding=UTF8",
                "--locale=C",
            ],
        )
        .output()
        .expect("run initdb");
        assert!(
            init.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&init.stdout),
            String::from_utf8_lossy(&init.stderr)
        );
        let port = crate::garage::free_port();
        let log = fs::File::create(dir.path().join("postgres.log")).unwrap();
        let child = run(
            "postgres",
            &[
                "-D",
                &data_s,
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-k",
                &sockets.display().to_string(),
                // A test cluster: durability is not what is tested.
                "-c",
                "fsync=off",
                "-c",
                "max_connections=200",
            ],
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start postgres");
        let pg = Postgres {
            child: Some(child),
            dir,
            port,
            user: "ftpsd".into(),
            password,
        };
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let ready = Command::new(bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "postgres did not start:\n{}",
                pg.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        pg
    }

    /// `postgres://ftpsd@127.0.0.1:PORT/postgres` (no password: see
    /// [`Postgres::write_password_file`]).
    pub fn url(&self) -> String {
        format!("postgres://{}@127.0.0.1:{}/postgres", self.user, self.port)
    }

    /// Writes the role's password to `path`, for `[database] password_file`.
    pub fn write_password_file(&self, path: &Path) {
        fs::write(path, format!("{}\n", self.password)).unwrap();
    }

    /// What the server logged.
    pub fn log_text(&self) -> String {
        fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGINT: fast shutdown (clients disconnected, no checkpoint wait).
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn running_as_root() -> bool {
    // `id -u` rather than a libc call: the kit has no unsafe code and no libc dependency.
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn chown_to_postgres(path: &Path) {
    let status = Command::new("chown")
        .arg("postgres:postgres")
        .arg(path)
        .status()
        .expect("run chown");
    assert!(status.success(), "chown postgres {}", path.display());
}
