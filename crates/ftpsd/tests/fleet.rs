//! A fleet on loopback: HAProxy in front of two ftpsd nodes that keep their users and
//! login failures in PostgreSQL and their users' files in Garage (S3), laid out as
//! docs/deploy/haproxy.cfg lays out a real one.
//!
//! ```text
//!   clients ──> 127.0.0.10 (HAProxy: control ports balanced round-robin, health from /readyz;
//!                           each node's passive range forwarded to that node)
//!                 ├─ PROXY v2 ─> node1 127.0.0.11  ─┐
//!                 └─ PROXY v2 ─> node2 127.0.0.12  ─┴─> PostgreSQL (users, failures, bans)
//!                                                      Garage (every user's files)
//! ```
//!
//! Through the balancer, with curl, lftp and `ftps`: a file uploaded via one node is
//! downloaded via the other; a user added on one node logs in on the other; failed logins
//! on both nodes add up to one ban; a node drained with SIGTERM finishes its transfer while
//! new sessions go to the other; a node killed during a 200-file mirror is survived by the
//! client, which reconnects, lands on the other node and completes the mirror intact.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ftps_testkit::postgres::Postgres;
use ftps_testkit::run::{run_client, Run};

const TIMEOUT: Duration = Duration::from_secs(180);
const BALANCER: &str = "127.0.0.10";
/// The address the brute-force client connects from.
const ATTACKER: &str = "127.0.0.5";
const PASSIVE_PORTS: u16 = 20;
const MAX_FAILURES: u32 = 4;

/// One ftpsd node: its address, ports, configuration and process.
struct Node {
    name: &'static str,
    ip: &'static str,
    control: u16,
    implicit: u16,
    metrics: u16,
    admin: u16,
    passive: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Node {
    fn config(&self) -> PathBuf {
        self.dir.join("ftpsd.toml")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("ftpsd.log")
    }

    fn log_text(&self) -> String {
        fs::read_to_string(self.log()).unwrap_or_default()
    }

    /// Writes the node's configuration: PROXY listeners trusting the balancer only, its
    /// own passive range announced as the balancer's address, the shared database and
    /// store, and the certificate every node serves.
    fn write_config(&self, shared: &Shared) {
        let storage = ftps_testkit::storage::s3_default_storage(&self.dir, &shared.prefix);
        let text = format!(
            "state_dir = \"state\"\n\
             listen = [{{ address = \"{ip}:{control}\", proxy_protocol = true }}]\n\
             implicit_listen = [{{ address = \"{ip}:{implicit}\", proxy_protocol = true }}]\n\
             \n[tls]\ncertificate = \"{cert}\"\nprivate_key = \"{key}\"\n\
             \n[passive]\nports = \"{passive}-{passive_end}\"\n\
             \n[proxy_protocol]\ntrusted = [\"{BALANCER}\"]\npassive = true\nannounce_destination = true\n\
             \n[metrics]\nlisten = \"{ip}:{metrics}\"\n\
             \n[admin]\nlisten = \"{ip}:{admin}\"\n\
             \n[database]\nurl = \"{url}\"\npassword_file = \"{pw}\"\npoll_seconds = 1\n\
             \n[limits]\nmax_login_failures_per_ip = {MAX_FAILURES}\nmax_login_failures_per_user = 100\n\
             login_failure_delay_ms = 50\nban_seconds = 600\n\
             \n[timeouts]\nshutdown_grace = 60\n\
             \n{storage}\n",
            ip = self.ip,
            control = self.control,
            implicit = self.implicit,
            cert = shared.cert.display(),
            key = shared.key.display(),
            passive = self.passive,
            passive_end = self.passive + PASSIVE_PORTS - 1,
            metrics = self.metrics,
            admin = self.admin,
            url = shared.postgres.url(),
            pw = shared.password_file.display(),
        );
        fs::write(self.config(), text).unwrap();
    }

    /// Starts ftpsd and waits until it says it is ready.
    fn start(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .unwrap();
        let child = support::ftpsd()
            .command()
            .arg("--config")
            .arg(self.config())
            .env("RUST_LOG", "info,ftps_server=debug,rustls=error,sqlx=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start ftpsd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.readiness() != Some(200) {
            assert!(
                Instant::now() < deadline,
                "{} did not become ready:\n{}",
                self.name,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The status of `GET /readyz`, or `None` if nothing answers.
    fn readiness(&self) -> Option<u16> {
        let out = Command::new("curl")
            .args(["--silent", "--max-time", "2", "--output", "/dev/null"])
            .args(["--write-out", "%{http_code}"])
            .arg(format!("http://{}:{}/readyz", self.ip, self.metrics))
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .parse()
            .ok()
            .filter(|c| *c != 0)
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("running");
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to end, at most `within`; whether it exited successfully.
    fn wait_exit(&mut self, within: Duration) -> bool {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} did not exit within {within:?}", self.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Transfers of `verb` (`RETR`, `STOR`) the node completed so far.
    fn completed(&self, verb: &str) -> usize {
        self.log_text()
            .lines()
            .filter(|l| l.contains("transfer complete") && l.contains(verb))
            .count()
    }

    /// How many lines of the node's log contain `text`, in any case.
    fn count(&self, text: &str) -> usize {
        let text = text.to_ascii_lowercase();
        self.log_text()
            .lines()
            .filter(|l| l.to_ascii_lowercase().contains(&text))
            .count()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What the nodes share.
struct Shared {
    postgres: Postgres,
    password_file: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    /// The key prefix of the fleet's files in Garage.
    prefix: String,
}

/// HAProxy as the fleet's balancer; killed on drop.
struct Balancer {
    child: Child,
    control: u16,
    implicit: u16,
    log: PathBuf,
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Balancer {
    /// How often HAProxy has said that `node`'s control backend went `state` (UP, DOWN).
    fn changes(&self, node: &Node, state: &str) -> usize {
        let needle = format!("explicit/{} is {state}", node.name);
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&needle))
            .count()
    }

    /// Waits until HAProxy has taken `node` out of (`DOWN`) or back into (`UP`) the
    /// rotation once more than `before` times.
    fn wait_for(&self, node: &Node, state: &str, before: usize) {
        eventually(
            &format!("haproxy sees {} {state}", node.name),
            Duration::from_secs(20),
            || self.changes(node, state) > before,
        );
    }

    fn start(dir: &Path, nodes: &[&Node]) -> Balancer {
        let (control, implicit) = (free_on(BALANCER), free_on(BALANCER));
        let backends = |port: fn(&Node) -> u16| {
            nodes
                .iter()
                .map(|n| {
                    format!(
                        "  server {} {}:{} send-proxy-v2 check port {} inter 300ms fall 2 rise 2\n",
                        n.name,
                        n.ip,
                        port(n),
                        n.metrics
                    )
                })
                .collect::<String>()
        };
        let mut config = format!(
            "global\n  maxconn 2000\n\n\
             defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 120s\n  timeout server 120s\n\
             \x20 retries 3\n  option redispatch\n  source {BALANCER}\n\n\
             frontend explicit\n  bind {BALANCER}:{control}\n  default_backend explicit\n\
             backend explicit\n  balance roundrobin\n  option httpchk GET /readyz\n  http-check expect status 200\n{}\n\
             frontend implicit\n  bind {BALANCER}:{implicit}\n  default_backend implicit\n\
             backend implicit\n  balance roundrobin\n  option httpchk GET /readyz\n  http-check expect status 200\n{}\n",
            backends(|n| n.control),
            backends(|n| n.implicit),
        );
        for n in nodes {
            config.push_str(&format!(
                "frontend passive-{name}\n  bind {BALANCER}:{first}-{last}\n  default_backend passive-{name}\n\
                 backend passive-{name}\n  server {name} {ip} send-proxy-v2\n\n",
                name = n.name,
                first = n.passive,
                last = n.passive + PASSIVE_PORTS - 1,
                ip = n.ip,
            ));
        }
        let path = dir.join("haproxy.cfg");
        fs::write(&path, config).unwrap();
        let log = dir.join("haproxy.log");
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("haproxy is installed by scripts/test.sh");
        let balancer = Balancer {
            child,
            control,
            implicit,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect((BALANCER, control)).is_err() {
            assert!(
                Instant::now() < deadline,
                "haproxy did not start: {}",
                fs::read_to_string(&balancer.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        balancer
    }
}

/// A port free on `ip` now.
fn free_on(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `n` consecutive ports free on the balancer's and `ip`'s addresses.
fn free_range(ip: &str, n: u16, avoid: &[u16]) -> u16 {
    'search: for _ in 0..500 {
        let base = 30_000 + rand::random::<u16>() % 25_000;
        for port in base..base + n {
            if avoid.iter().any(|a| (*a..*a + n).contains(&port)) {
                continue 'search;
            }
            for address in [BALANCER, ip] {
                if std::net::TcpListener::bind((address, port)).is_err() {
                    continue 'search;
                }
            }
        }
        return base;
    }
    panic!("no free port range");
}

/// The `ftps` client binary, built beside the tests by `cargo test --workspace`.
fn ftps_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|profile| profile.join("ftps"))
        .unwrap();
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build -p ftps` (or the whole workspace's tests) first",
        bin.display()
    );
    bin
}

struct Fleet {
    dir: tempfile::TempDir,
    shared: Shared,
    nodes: [Node; 2],
    balancer: Balancer,
}

impl Fleet {
    fn start() -> Fleet {
        let dir = support::tempdir();
        let postgres = Postgres::start();
        let password_file = dir.path().join("db.password");
        postgres.write_password_file(&password_file);
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        ftps_testkit::pki::write_server_cert_for(&cert, &key, &[BALANCER, "localhost"]);
        let shared = Shared {
            postgres,
            password_file,
            cert,
            key,
            prefix: ftps_testkit::storage::fresh_prefix(),
        };
        let node = |name: &'static str, ip: &'static str, avoid: &[u16]| {
            let node_dir = dir.path().join(name);
            fs::create_dir(&node_dir).unwrap();
            Node {
                name,
                ip,
                control: free_on(ip),
                implicit: free_on(ip),
                metrics: free_on(ip),
                admin: free_on(ip),
                passive: free_range(ip, PASSIVE_PORTS, avoid),
                dir: node_dir,
                child: None,
            }
        };
        let node1 = node("node1", "127.0.0.11", &[]);
        let node2 = node("node2", "127.0.0.12", &[node1.passive]);
        let mut nodes = [node1, node2];
        for n in &mut nodes {
            n.write_config(&shared);
            n.start();
        }
        let balancer = Balancer::start(dir.path(), &[&nodes[0], &nodes[1]]);
        Fleet {
            dir,
            shared,
            nodes,
            balancer,
        }
    }

    /// `ftpsd user ...` run with `node`'s configuration (so against the database); its
    /// standard output, after checking that it succeeded.
    fn user_command(&self, node: usize, args: &[&str], stdin: &str) -> String {
        let mut cmd = support::ftpsd().command();
        cmd.arg("--config")
            .arg(self.nodes[node].config())
            .arg("user")
            .args(args);
        let out = ftps_testkit::run::run_with_stdin(&mut cmd, stdin);
        assert!(
            out.status.success(),
            "ftpsd user {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// curl through the balancer from `source`.
    fn curl(&self, source: &str, user: &str, password: &str, path: &str, args: &[&str]) -> Run {
        run_client(
            Command::new("curl")
                .args(["--silent", "--show-error", "--verbose", "--max-time", "120"])
                .args(["--interface", source, "--ssl-reqd"])
                .arg("--cacert")
                .arg(&self.shared.cert)
                .arg("--user")
                .arg(format!("{user}:{password}"))
                .args(args)
                .arg(format!("ftp://{BALANCER}:{}{path}", self.balancer.control)),
            TIMEOUT,
        )
    }

    /// An lftp script through the balancer as `user`.
    fn lftp(&self, user: &str, password: &str, body: &str) -> Run {
        let script = format!(
            "set cmd:fail-exit yes\n\
             set net:max-retries 8\n\
             set net:timeout 20\n\
             set net:reconnect-interval-base 1\n\
             set net:reconnect-interval-multiplier 1\n\
             {}\
             open --env-password -u {user} ftp://{BALANCER}:{}\n\
             {body}\n\
             bye\n",
            support::lftp_tls_settings(&self.shared.cert),
            self.balancer.control,
        );
        let path = self
            .dir
            .path()
            .join(format!("{}.lftp", rand::random::<u32>()));
        fs::write(&path, script).unwrap();
        run_client(
            Command::new("lftp")
                .arg("-f")
                .arg(&path)
                .env("LFTP_PASSWORD", password)
                .env("HOME", self.dir.path()),
            TIMEOUT,
        )
    }

    /// `ftps ARGS` through the balancer as `user` (URLs are made with [`Fleet::ftps_url`]).
    fn ftps(&self, password: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(ftps_bin());
        cmd.args(args)
            .arg("--ca-file")
            .arg(&self.shared.cert)
            .args(["--no-netrc", "--quiet", "--timeout", "20"])
            .env("FTPS_PASSWORD", password)
            .env("HOME", self.dir.path());
        cmd
    }

    fn ftps_url(&self, user: &str, path: &str) -> String {
        format!("ftpes://{user}@{BALANCER}:{}{path}", self.balancer.control)
    }

    /// `f` of each node.
    fn per_node(&self, f: impl Fn(&Node) -> usize) -> [usize; 2] {
        [f(&self.nodes[0]), f(&self.nodes[1])]
    }

    /// Logins of `user` seen by each node so far.
    fn logins(&self, user: &str) -> [usize; 2] {
        let needle = format!("user={user}");
        let count = |n: &Node| {
            n.log_text()
                .lines()
                .filter(|l| l.contains("login ok") && l.contains(&needle))
                .count()
        };
        [count(&self.nodes[0]), count(&self.nodes[1])]
    }
}

fn sha256(path: &Path) -> String {
    ftps_testkit::files::sha256_file(path)
}

/// Waits until `check` holds, at most `within`.
fn eventually(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_fleet_behind_haproxy_shares_users_files_and_bans_and_survives_a_node() {
    let mut fleet = Fleet::start();
    let work = fleet.dir.path().join("work");
    fs::create_dir(&work).unwrap();

    // --- A user added with `ftpsd user` on node1's machine (into PostgreSQL).
    fleet.user_command(
        0,
        &["add", "alice", "--root", "alice", "--password-stdin"],
        "alice-pw-1\n",
    );
    // Both nodes pick the new user up at their next poll (every second here).
    eventually(
        "both nodes have seen alice",
        Duration::from_secs(10),
        || {
            fleet
                .nodes
                .iter()
                .all(|n| n.count("users changed in the database") > 0)
        },
    );
    let list = fleet.user_command(1, &["list"], "");
    assert!(
        list.contains("alice\tread-write\ts3:garage:alice"),
        "{list}"
    );

    // --- Uploaded via one node (curl), downloaded via the other (lftp, then ftps).
    let payload = work.join("payload.bin");
    fs::write(&payload, ftps_testkit::files::content(7, 3_000_000)).unwrap();
    let before = fleet.logins("alice");
    fleet
        .curl(
            "127.0.0.1",
            "alice",
            "alice-pw-1",
            "/payload.bin",
            &["-T", &payload.display().to_string()],
        )
        .assert_ok("curl upload through the balancer");
    let after_upload = fleet.logins("alice");
    let uploader = (0..2)
        .find(|&i| after_upload[i] > before[i])
        .expect("a node logged the upload's login");
    let lftp_copy = work.join("via-lftp.bin");
    fleet
        .lftp(
            "alice",
            "alice-pw-1",
            &format!("get payload.bin -o \"{}\"", lftp_copy.display()),
        )
        .assert_ok("lftp download through the balancer");
    let after_download = fleet.logins("alice");
    let downloader = (0..2)
        .find(|&i| after_download[i] > after_upload[i])
        .expect("a node logged the download's login");
    assert_ne!(
        uploader, downloader,
        "round robin sends the second session to the other node ({after_upload:?} -> {after_download:?})"
    );
    assert_eq!(
        sha256(&lftp_copy),
        sha256(&payload),
        "lftp's copy via the other node"
    );
    let ftps_copy = work.join("via-ftps.bin");
    let run = run_client(
        fleet
            .ftps(
                "alice-pw-1",
                &["get", &fleet.ftps_url("alice", "/payload.bin")],
            )
            .arg(&ftps_copy),
        TIMEOUT,
    );
    run.assert_ok("ftps get through the balancer");
    assert_eq!(sha256(&ftps_copy), sha256(&payload), "ftps's copy");
    // Implicit FTPS is balanced too.
    let implicit = run_client(
        Command::new("curl")
            .args(["--silent", "--show-error", "--max-time", "60", "--cacert"])
            .arg(&fleet.shared.cert)
            .args(["--user", "alice:alice-pw-1", "--list-only"])
            .arg(format!("ftps://{BALANCER}:{}/", fleet.balancer.implicit)),
        TIMEOUT,
    );
    implicit.assert_ok("curl implicit FTPS through the balancer");
    assert!(implicit.stdout.contains("payload.bin"), "{implicit}");

    // --- A user added on one node (its admin API) logs in on the other within seconds.
    let token = fs::read_to_string(fleet.nodes[0].dir.join("state/admin.token")).unwrap();
    let add = run_client(
        Command::new("curl")
            .args(["--silent", "--show-error", "--fail-with-body", "-X", "POST"])
            .arg("-H")
            .arg(format!("Authorization: Bearer {}", token.trim()))
            .args(["-H", "Content-Type: application/json", "--data"])
            .arg(r#"{"name":"bob","root":"bob","password":"bob-pw-1"}"#)
            .arg(format!(
                "http://{}:{}/v1/users",
                fleet.nodes[0].ip, fleet.nodes[0].admin
            )),
        TIMEOUT,
    );
    add.assert_ok("admin API: add bob on node1");
    let started = Instant::now();
    // Two logins in a row: round robin puts one on each node.
    eventually("bob logs in on both nodes", Duration::from_secs(10), || {
        let logins = fleet.logins("bob");
        if logins[0] > 0 && logins[1] > 0 {
            return true;
        }
        fleet.curl("127.0.0.1", "bob", "bob-pw-1", "/", &["--list-only"]);
        false
    });
    eprintln!(
        "bob logged in on both nodes {:?} after being added",
        started.elapsed()
    );
    // Removed on node2 with `ftpsd user del`: refused on both.
    let seen = |fleet: &Fleet| fleet.per_node(|n| n.count("users changed in the database"));
    let before = seen(&fleet);
    fleet.user_command(1, &["del", "bob"], "");
    eventually(
        "both nodes have seen the removal",
        Duration::from_secs(10),
        || {
            let now = seen(&fleet);
            now[0] > before[0] && now[1] > before[1]
        },
    );
    for _ in 0..2 {
        let run = fleet.curl("127.0.0.1", "bob", "bob-pw-1", "/", &["--list-only"]);
        assert!(!run.status.success() && run.stderr.contains("530"), "{run}");
    }

    // --- Failed logins on both nodes add up to one ban, which both nodes apply.
    let failed_before = [
        fleet.nodes[0].count("login failed"),
        fleet.nodes[1].count("login failed"),
    ];
    for _ in 0..MAX_FAILURES {
        let run = fleet.curl(ATTACKER, "alice", "wrong-password", "/", &["--list-only"]);
        assert!(!run.status.success(), "{run}");
    }
    let failed = [
        fleet.nodes[0].count("login failed") - failed_before[0],
        fleet.nodes[1].count("login failed") - failed_before[1],
    ];
    assert_eq!(failed[0] + failed[1], MAX_FAILURES as usize, "{failed:?}");
    eprintln!("failed logins per node: {failed:?}");
    assert!(
        failed.iter().all(|&f| f > 0 && f < MAX_FAILURES as usize),
        "each node saw fewer failures than the limit: {failed:?}"
    );
    // Both nodes now refuse the address (the other node at its next poll), with the
    // right password too: two sessions in a row, one on each node, both refused. Other
    // addresses are not affected.
    eventually(
        "both nodes refuse the banned address",
        Duration::from_secs(10),
        || {
            (0..2).all(|_| {
                let run = fleet.curl(ATTACKER, "alice", "alice-pw-1", "/", &["--list-only"]);
                !run.status.success() && run.stderr.contains("421")
            })
        },
    );
    let refusal = "Too many failed logins";
    let banned_on = [fleet.nodes[0].count(refusal), fleet.nodes[1].count(refusal)];
    assert!(
        banned_on.iter().all(|&n| n > 0),
        "refused as banned by both nodes: {banned_on:?}"
    );
    fleet
        .curl("127.0.0.1", "alice", "alice-pw-1", "/", &["--list-only"])
        .assert_ok("another address still logs in");

    // --- Draining: SIGTERM to the node serving a long download. The download completes,
    // the node reports not-ready, and new sessions go to the other node.
    let big = work.join("big.bin");
    fs::write(&big, ftps_testkit::files::content(9, 40_000_000)).unwrap();
    run_client(
        fleet
            .ftps("alice-pw-1", &["put"])
            .arg(&big)
            .arg(fleet.ftps_url("alice", "/big.bin")),
        TIMEOUT,
    )
    .assert_ok("ftps put big.bin");
    let retr_before = [fleet.nodes[0].count("RETR"), fleet.nodes[1].count("RETR")];
    let slow_copy = work.join("slow.bin");
    let slow = Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--max-time",
            "120",
            "--ssl-reqd",
        ])
        .args(["--limit-rate", "8M", "--cacert"])
        .arg(&fleet.shared.cert)
        .args(["--user", "alice:alice-pw-1", "-o"])
        .arg(&slow_copy)
        .arg(format!(
            "ftp://{BALANCER}:{}/big.bin",
            fleet.balancer.control
        ))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut serving = None;
    eventually(
        "a node serves the slow download",
        Duration::from_secs(20),
        || {
            serving = (0..2).find(|&i| fleet.nodes[i].count("RETR") > retr_before[i]);
            serving.is_some()
        },
    );
    let serving = serving.unwrap();
    let other = 1 - serving;
    std::thread::sleep(Duration::from_secs(1));
    let downs = fleet.balancer.changes(&fleet.nodes[serving], "DOWN");
    fleet.nodes[serving].signal("-TERM");
    eventually(
        "the draining node reports not-ready",
        Duration::from_secs(5),
        || fleet.nodes[serving].readiness() != Some(200),
    );
    // HAProxy's check of /readyz (every 300 ms, down after 2) takes the node out.
    fleet
        .balancer
        .wait_for(&fleet.nodes[serving], "DOWN", downs);
    let logins_before = fleet.logins("alice");
    for _ in 0..3 {
        fleet
            .curl("127.0.0.1", "alice", "alice-pw-1", "/", &["--list-only"])
            .assert_ok("a new session while a node drains");
    }
    let logins_after = fleet.logins("alice");
    assert_eq!(
        logins_after[serving], logins_before[serving],
        "no new session on the draining node"
    );
    assert_eq!(logins_after[other], logins_before[other] + 3);
    let slow = slow.wait_with_output().unwrap();
    assert!(
        slow.status.success(),
        "{}",
        String::from_utf8_lossy(&slow.stderr)
    );
    assert_eq!(
        sha256(&slow_copy),
        sha256(&big),
        "the drained node finished the download"
    );
    assert!(
        fleet.nodes[serving].wait_exit(Duration::from_secs(30)),
        "clean exit after draining"
    );
    let ups = fleet.balancer.changes(&fleet.nodes[serving], "UP");
    fleet.nodes[serving].start();
    // Back in the balancer once its check passes twice.
    fleet.balancer.wait_for(&fleet.nodes[serving], "UP", ups);

    // --- A node killed during a 200-file mirror: the client reconnects, lands on the other
    // node and completes the mirror with every file intact. Up with lftp first (its own
    // retries), then down with ftps.
    let tree = work.join("tree");
    ftps_testkit::files::make_tree(&tree, 200, 150_000);
    let want = ftps_testkit::files::tree_hashes(&tree);
    let stored_before = [
        fleet.nodes[0].completed("STOR"),
        fleet.nodes[1].completed("STOR"),
    ];
    let (lftp_mirror, stored_at_kill, victim) = {
        let script = format!(
            "set mirror:parallel-transfer-count 4\nmirror -R \"{}\" /tree",
            tree.display()
        );
        let fleet = &fleet;
        std::thread::scope(|scope| {
            let handle = scope.spawn(move || fleet.lftp("alice", "alice-pw-1", &script));
            eventually(
                "the upload mirror is under way",
                Duration::from_secs(60),
                || {
                    fleet.nodes[0].completed("STOR") + fleet.nodes[1].completed("STOR")
                        >= stored_before[0] + stored_before[1] + 20
                },
            );
            // The node that took most of the uploads so far is killed.
            let stored = [
                fleet.nodes[0].completed("STOR"),
                fleet.nodes[1].completed("STOR"),
            ];
            let victim = usize::from(stored[1] - stored_before[1] > stored[0] - stored_before[0]);
            let downs = fleet.balancer.changes(&fleet.nodes[victim], "DOWN");
            fleet.nodes[victim].signal("-KILL");
            fleet.balancer.wait_for(&fleet.nodes[victim], "DOWN", downs);
            (handle.join().unwrap(), stored, victim)
        })
    };
    let survivor = 1 - victim;
    lftp_mirror.assert_ok("lftp mirror -R with a node killed");
    eprintln!(
        "lftp mirror -R: {} killed after {:?} uploads (from {stored_before:?}); the other then stored {}",
        fleet.nodes[victim].name,
        stored_at_kill,
        fleet.nodes[survivor].completed("STOR") - stored_at_kill[survivor]
    );
    assert!(
        fleet.nodes[survivor].completed("STOR") > stored_at_kill[survivor],
        "the surviving node took over the uploads"
    );
    fleet.nodes[victim].wait_exit(Duration::from_secs(10));
    let ups = fleet.balancer.changes(&fleet.nodes[victim], "UP");
    fleet.nodes[victim].start();
    fleet.balancer.wait_for(&fleet.nodes[victim], "UP", ups);

    let down = work.join("down");
    let served_before = [
        fleet.nodes[0].completed("RETR"),
        fleet.nodes[1].completed("RETR"),
    ];
    let mut mirror = fleet
        .ftps(
            "alice-pw-1",
            &["mirror", "-P", "4", &fleet.ftps_url("alice", "/tree/")],
        )
        .arg(&down)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually(
        "the download mirror is under way",
        Duration::from_secs(60),
        || walk_count(&down) >= 30,
    );
    let served = [
        fleet.nodes[0].completed("RETR"),
        fleet.nodes[1].completed("RETR"),
    ];
    let victim = usize::from(served[1] - served_before[1] > served[0] - served_before[0]);
    let survivor = 1 - victim;
    fleet.nodes[victim].signal("-KILL");
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = mirror.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "ftps mirror did not finish");
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = mirror.wait_with_output().unwrap();
    assert!(
        status.success(),
        "ftps mirror with a node killed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!(
        "ftps mirror output:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        ftps_testkit::files::tree_hashes(&down),
        want,
        "every file intact"
    );
    eprintln!(
        "ftps mirror: {} killed after {served:?} downloads (from {served_before:?}); the other then served {}",
        fleet.nodes[victim].name,
        fleet.nodes[survivor].completed("RETR") - served[survivor]
    );
    assert!(
        fleet.nodes[survivor].completed("RETR") > served[survivor],
        "the surviving node served the rest"
    );
    fleet.nodes[victim].wait_exit(Duration::from_secs(10));
}

/// Files under `dir` so far.
fn walk_count(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let path = e.path();
            if path.is_dir() {
                walk_count(&path)
            } else {
                1
            }
        })
        .sum()
}
