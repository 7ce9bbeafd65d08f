//! Bandwidth limits through real clients (curl, Python ftplib) and the kit's raw client:
//! per-session, per-user and server-wide rates hold within 5 % over 64 MiB, measured by the
//! client; files arrive whole; a reload applies to the next transfer; a throttled transfer
//! stops at once on ABOR or shutdown, keeps nothing of an upload, and never counts its
//! waits as a stall.
//!
//! The limit (16 MiB/s) is far below what loopback TLS moves on any machine that runs the
//! suite, so the lower bound (95 % of the limit) tests the limiter, not the machine.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::client::Control;
use support::{ftpsd, Server, TestFile};

const MIB: u64 = 1024 * 1024;
/// The rate the timed tests hold transfers to, in bytes per second.
const LIMIT: u64 = 16 * MIB;
/// What the timed tests move: 4 s at [`LIMIT`].
const SIZE: u64 = 64 * MIB;
const TIMEOUT: Duration = Duration::from_secs(300);
const PASSWORD: &str = "bandwidth-pass-1";
const PY_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/timed_transfers.py");

/// A user added with `ftpsd user add`, its root on tmpfs where there is one: an upload is
/// synced before its 226, and a disk's sync of 64 MiB (0.1-0.3 s) would count in the
/// client's time.
struct User {
    name: String,
    root: PathBuf,
    _dir: tempfile::TempDir,
}

fn add_user(server: &Server, name: &str, limits: &[&str]) -> User {
    let dir = tempfile::Builder::new()
        .prefix("ftpsd-bandwidth-")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("user root");
    let root = dir
        .path()
        .to_str()
        .expect("UTF-8 temporary path")
        .to_string();
    let state = server.state_dir.display().to_string();
    let args = [
        "user",
        "add",
        name,
        "--root",
        &root,
        "--state-dir",
        &state,
        "--password-stdin",
    ];
    let out = server.ftpsd(&args, &format!("{PASSWORD}\n"));
    assert!(out.status.success(), "user add: {out:?}");
    if !limits.is_empty() {
        user_set(server, name, limits);
    }
    User {
        name: name.to_string(),
        root: dir.path().to_path_buf(),
        _dir: dir,
    }
}

/// `ftpsd user set NAME FLAGS...`, which must succeed.
fn user_set(server: &Server, name: &str, flags: &[&str]) {
    let out = user_cmd(server, "set", name, flags);
    assert!(out.status.success(), "user set {flags:?}: {out:?}");
}

fn user_cmd(server: &Server, cmd: &str, name: &str, flags: &[&str]) -> std::process::Output {
    let state = server.state_dir.display().to_string();
    let mut args = vec!["user", cmd, name, "--state-dir", &state];
    args.extend_from_slice(flags);
    server.ftpsd(&args, "")
}

/// A transfer's size and the client's time for it.
#[derive(Debug)]
struct Timed {
    bytes: u64,
    seconds: f64,
}

impl Timed {
    /// Asserts that the rate is within 5 % of `limit`.
    fn assert_rate(&self, limit: u64, what: &str) {
        let rate = self.bytes as f64 / self.seconds;
        let mib = |r: f64| r / MIB as f64;
        eprintln!(
            "{what}: {} bytes in {:.3} s = {:.2} MiB/s (limit {:.2})",
            self.bytes,
            self.seconds,
            mib(rate),
            mib(limit as f64)
        );
        assert!(
            rate <= limit as f64 * 1.05,
            "{what}: {:.2} MiB/s is more than 5 % above the limit of {:.2}: {self:?}",
            mib(rate),
            mib(limit as f64)
        );
        assert!(
            rate >= limit as f64 * 0.95,
            "{what}: {:.2} MiB/s is more than 5 % below the limit of {:.2}: {self:?}",
            mib(rate),
            mib(limit as f64)
        );
    }
}

/// How curl moves a file.
#[derive(Clone, Copy, PartialEq)]
enum Curl {
    Download,
    Upload,
    /// A download over a clear data connection (`PROT C`, TLS on the control connection
    /// only), which the server sends with `sendfile`.
    ClearDownload,
}

/// One curl transfer of `name` as `user` from or to `local`, timed by curl itself: from the
/// moment the transfer was about to begin (`time_pretransfer`, after login and the data
/// connection's set-up) to the end (`time_total`, after the 226).
fn curl_timed(server: &Server, user: &User, how: Curl, local: &Path, name: &str) -> Timed {
    let mut cmd = Command::new("curl");
    cmd.args(["--silent", "--show-error", "--disable", "--max-time", "300"])
        .arg("--cacert")
        .arg(server.state_dir.join("cert.pem"))
        .arg("--user")
        .arg(format!("{}:{PASSWORD}", user.name))
        .arg(if how == Curl::ClearDownload {
            "--ftp-ssl-control"
        } else {
            "--ssl-reqd"
        })
        .args([
            "--write-out",
            "%{size_download} %{size_upload} %{time_pretransfer} %{time_total}",
        ]);
    let upload = how == Curl::Upload;
    cmd.arg(if upload { "--upload-file" } else { "--output" })
        .arg(local)
        .arg(format!("ftp://127.0.0.1:{}/{name}", server.explicit.port()));
    let run = support::run_client(&mut cmd, TIMEOUT);
    run.assert_ok("curl");
    let fields: Vec<f64> = run
        .stdout
        .split_whitespace()
        .map(|f| f.parse().expect("curl --write-out field"))
        .collect();
    let [down, up, pretransfer, total] = fields[..] else {
        panic!("curl --write-out: {run}");
    };
    Timed {
        bytes: if upload { up } else { down } as u64,
        seconds: total - pretransfer,
    }
}

/// One ftplib session per `(kind, user, name, local path)`, all logged in first, then all
/// transferring at once; returns each transfer and the whole (first start to last end), as
/// timed by the script.
fn ftplib_timed(server: &Server, transfers: &[(&str, &User, &str, &Path)]) -> (Vec<Timed>, Timed) {
    let mut cmd = Command::new("python3");
    cmd.arg(PY_SCRIPT)
        .env("FTP_HOST", "127.0.0.1")
        .env("FTP_PORT", server.explicit.port().to_string())
        .env("FTP_CAFILE", server.state_dir.join("cert.pem"))
        .env("PYTHONDONTWRITEBYTECODE", "1");
    for (kind, user, name, local) in transfers {
        cmd.arg(format!(
            "{kind},{},{PASSWORD},{name},{}",
            user.name,
            local.display()
        ));
    }
    let run = support::run_client(&mut cmd, TIMEOUT);
    run.assert_ok("ftplib");
    let parse = |line: &str| {
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|f| f.strip_prefix(key))
                .unwrap_or_else(|| panic!("{key} in {line:?}"))
                .to_string()
        };
        Timed {
            bytes: field("bytes=").parse().expect("bytes"),
            seconds: field("seconds=").parse().expect("seconds"),
        }
    };
    let each = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("transfer "))
        .map(parse)
        .collect::<Vec<_>>();
    let total = run
        .stdout
        .lines()
        .find(|l| l.starts_with("total "))
        .map(parse)
        .unwrap_or_else(|| panic!("no total: {run}"));
    assert_eq!(each.len(), transfers.len(), "{run}");
    (each, total)
}

fn server_with(bandwidth: &str) -> Server {
    ftpsd().start_with_config(&format!("[bandwidth]\n{bandwidth}\n"))
}

fn assert_same(expected: &TestFile, path: &Path, what: &str) {
    support::assert_same_content(expected, path, what);
}

#[test]
fn curl_download_holds_the_servers_per_session_rate() {
    let server = server_with("session_download = \"16M\"");
    let user = add_user(&server, "down", &[]);
    let file = support::make_file(&user.root, "big.bin", SIZE);
    let out = server.scratch("out").join("big.bin");
    let timed = curl_timed(&server, &user, Curl::Download, &out, "big.bin");
    assert_eq!(timed.bytes, SIZE);
    timed.assert_rate(LIMIT, "curl download, server's session_download");
    assert_same(&file, &out, "downloaded by curl");
}

#[test]
fn curl_clear_download_by_sendfile_holds_the_servers_per_session_rate() {
    let server = ftpsd().start_with_config(
        "[tls]\nrequire_for_data = false\n[bandwidth]\nsession_download = \"16M\"\n",
    );
    let user = add_user(&server, "clear", &[]);
    let file = support::make_file(&user.root, "big.bin", SIZE);
    let out = server.scratch("out").join("big.bin");
    let timed = curl_timed(&server, &user, Curl::ClearDownload, &out, "big.bin");
    assert_eq!(timed.bytes, SIZE);
    timed.assert_rate(LIMIT, "curl download over a clear data connection");
    assert_same(&file, &out, "downloaded by curl in the clear");
}

#[test]
fn curl_upload_holds_a_users_own_per_session_rate_over_the_servers() {
    // The server's default would be a quarter of the rate: the user's own applies.
    let server = server_with("session_upload = \"4M\"");
    let user = add_user(&server, "up", &["--session-upload-rate", "16M"]);
    let file = support::make_file(&server.scratch("local"), "big.bin", SIZE);
    let timed = curl_timed(&server, &user, Curl::Upload, &file.path, "big.bin");
    assert_eq!(timed.bytes, SIZE);
    timed.assert_rate(LIMIT, "curl upload, user's session_upload");
    assert_same(&file, &user.root.join("big.bin"), "uploaded by curl");
}

#[test]
fn ftplib_download_holds_a_users_per_session_rate() {
    let server = ftpsd().start();
    let user = add_user(&server, "pydown", &["--session-download-rate", "16M"]);
    let file = support::make_file(&user.root, "big.bin", SIZE);
    let out = server.scratch("out").join("big.bin");
    let (each, _) = ftplib_timed(&server, &[("download", &user, "big.bin", &out)]);
    assert_eq!(each[0].bytes, SIZE);
    each[0].assert_rate(LIMIT, "ftplib download, user's session_download");
    assert_same(&file, &out, "downloaded by ftplib");
}

#[test]
fn ftplib_upload_holds_the_servers_per_session_rate() {
    let server = server_with("session_upload = 16777216");
    let user = add_user(&server, "pyup", &[]);
    let file = support::make_file(&server.scratch("local"), "big.bin", SIZE);
    let (each, _) = ftplib_timed(&server, &[("upload", &user, "big.bin", &file.path)]);
    each[0].assert_rate(LIMIT, "ftplib upload, server's session_upload");
    assert_same(&file, &user.root.join("big.bin"), "uploaded by ftplib");
}

#[test]
fn a_users_rate_holds_for_two_of_its_sessions_together() {
    let server = ftpsd().start();
    let user = add_user(&server, "shared", &["--download-rate", "16M"]);
    let a = support::make_file(&user.root, "a.bin", SIZE / 2);
    let b = support::make_file(&user.root, "b.bin", SIZE / 2);
    let out = server.scratch("out");
    let (out_a, out_b) = (out.join("a.bin"), out.join("b.bin"));
    let (each, total) = ftplib_timed(
        &server,
        &[
            ("download", &user, "a.bin", &out_a),
            ("download", &user, "b.bin", &out_b),
        ],
    );
    assert_eq!(total.bytes, SIZE);
    total.assert_rate(LIMIT, "two sessions of one user, together");
    // Each session alone would be unlimited: each must have taken most of the whole time.
    for t in &each {
        assert!(
            t.seconds > total.seconds * 0.8,
            "one session finished long before the other: {each:?}"
        );
    }
    assert_same(&a, &out_a, "first session's download");
    assert_same(&b, &out_b, "second session's download");
}

#[test]
fn the_servers_cap_holds_for_two_users_together() {
    let server = server_with("upload = \"16M\"");
    let alice = add_user(&server, "alice", &[]);
    let bob = add_user(&server, "bob", &[]);
    let local = server.scratch("local");
    let a = support::make_file(&local, "a.bin", SIZE / 2);
    let b = support::make_file(&local, "b.bin", SIZE / 2);
    let (_, total) = ftplib_timed(
        &server,
        &[
            ("upload", &alice, "a.bin", &a.path),
            ("upload", &bob, "b.bin", &b.path),
        ],
    );
    assert_eq!(total.bytes, SIZE);
    total.assert_rate(LIMIT, "two users' uploads, server-wide cap");
    assert_same(&a, &alice.root.join("a.bin"), "alice's upload");
    assert_same(&b, &bob.root.join("b.bin"), "bob's upload");
}

#[test]
fn a_reload_applies_new_limits_to_the_next_transfer() {
    let server = ftpsd().start();
    let user = add_user(&server, "reload", &["--download-rate", "8M"]);
    let file = support::make_file(&user.root, "f.bin", SIZE / 2);
    let out = server.scratch("out").join("f.bin");
    let first = curl_timed(&server, &user, Curl::Download, &out, "f.bin");
    first.assert_rate(8 * MIB, "before the reload");
    assert_same(&file, &out, "first download");

    user_set(&server, "reload", &["--download-rate", "16M"]);
    server.signal("HUP");
    wait_for_log(&server, "users file reloaded");
    let second = curl_timed(&server, &user, Curl::Download, &out, "f.bin");
    second.assert_rate(LIMIT, "after the reload");
    assert_same(&file, &out, "second download");
}

fn wait_for_log(server: &Server, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !server.log_all().contains(text) {
        assert!(
            Instant::now() < deadline,
            "no {text:?}\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn user_set_and_show_the_bandwidth_flags() {
    let server = ftpsd().start();
    add_user(
        &server,
        "flags",
        &[
            "--upload-rate",
            "10M",
            "--download-rate",
            "1048577",
            "--session-upload-rate",
            "512k",
            "--session-download-rate",
            "1G",
        ],
    );
    let show = |server: &Server| {
        let out = user_cmd(server, "show", "flags", &[]);
        assert!(out.status.success(), "user show: {out:?}");
        String::from_utf8(out.stdout).expect("UTF-8")
    };
    let shown = show(&server);
    for line in [
        "[users.flags.bandwidth]",
        "upload = \"10M\"",
        "download = 1048577",
        "session_upload = \"512K\"",
        "session_download = \"1G\"",
    ] {
        assert!(shown.contains(line), "{line:?} not in:\n{shown}");
    }
    // 0 removes a limit; the others stay.
    user_set(
        &server,
        "flags",
        &["--download-rate", "0", "--upload-rate", "0"],
    );
    let shown = show(&server);
    assert!(
        !shown.contains("\ndownload") && !shown.contains("\nupload"),
        "{shown}"
    );
    assert!(shown.contains("session_upload = \"512K\""), "{shown}");
    user_set(
        &server,
        "flags",
        &["--session-upload-rate", "0", "--session-download-rate", "0"],
    );
    let shown = show(&server);
    assert!(!shown.contains("[users.flags.bandwidth]"), "{shown}");
    // A malformed rate is refused, naming the accepted form, and changes nothing.
    for bad in ["1.5M", "fast", "-1", "10MB"] {
        let flag = format!("--upload-rate={bad}");
        let out = user_cmd(&server, "set", "flags", &[&flag]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad} accepted");
        assert!(err.contains("K = 1024"), "{bad}: {err}");
    }
    assert!(!show(&server).contains("[users.flags.bandwidth]"));
}

#[test]
fn a_malformed_rate_in_the_configuration_stops_the_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("ftpsd.toml");
    fs::write(
        &config,
        "state_dir = \"state\"\n[bandwidth]\ndownload = \"16 MB\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(support::FTPSD)
        .arg("--config")
        .arg(&config)
        .output()
        .expect("run ftpsd");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started with a malformed rate");
    assert!(
        err.contains("K = 1024") && err.contains("\"16 MB\"") && err.contains("line 3"),
        "{err}"
    );
}

/// Reads from a throttled download until `bytes` arrived.
async fn read_at_least(data: &mut support::client::DataConn, bytes: usize) {
    let mut got = 0;
    while got < bytes {
        got += data.read_some(bytes - got).await.expect("data").len();
    }
}

#[tokio::test]
async fn abor_during_a_throttled_download_is_answered_at_once() {
    // At 1 KiB/s the server waits about 4 s after each 4 KiB step: ABOR must cut the wait.
    let server = server_with("session_download = \"1K\"");
    let user = add_user(&server, "slowdown", &[]);
    support::make_file(&user.root, "big.bin", SIZE);
    let mut c = Control::login(&server, "slowdown", PASSWORD).await;
    let (first, data) = c.begin("RETR big.bin").await;
    assert_eq!(first.code.0, 150, "{}", c.transcript);
    let mut data = data.expect("data connection");
    read_at_least(&mut data, 1024).await;
    // STAT is answered during the wait, with the bytes sent so far (the first 4 KiB step).
    let stat = c.cmd("STAT").await;
    assert_eq!(stat.code.0, 213, "{}", c.transcript);
    assert!(
        stat.lines.join("\n").contains(": 4096 bytes transferred"),
        "{}",
        c.transcript
    );
    let asked = Instant::now();
    c.send_line("ABOR").await;
    c.expect_reply(426).await;
    c.expect_reply(226).await;
    let waited = asked.elapsed();
    assert!(
        waited < Duration::from_secs(2),
        "ABOR answered after {waited:?}, within a throttled wait"
    );
    c.expect("NOOP", 200).await;
}

#[tokio::test]
async fn abor_during_a_throttled_upload_is_answered_at_once_and_keeps_nothing() {
    let server = server_with("session_upload = \"1K\"");
    let user = add_user(&server, "slowup", &[]);
    fs::write(user.root.join("kept.bin"), b"original").unwrap();
    let mut c = Control::login(&server, "slowup", PASSWORD).await;
    let (first, data) = c.begin("STOR kept.bin").await;
    assert_eq!(first.code.0, 150, "{}", c.transcript);
    let mut data = data.expect("data connection");
    // Fits in the socket buffers: the client does not wait for the throttled server.
    data.write(&[7u8; 16 * 1024]).await.expect("write");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let asked = Instant::now();
    c.send_line("ABOR").await;
    c.expect_reply(426).await;
    c.expect_reply(226).await;
    let waited = asked.elapsed();
    assert!(
        waited < Duration::from_secs(2),
        "ABOR answered after {waited:?}, within a throttled wait"
    );
    drop(data);
    // The old file is untouched, and no temporary file is left.
    assert_eq!(fs::read(user.root.join("kept.bin")).unwrap(), b"original");
    assert_eq!(
        support::file_names(&user.root),
        vec![std::ffi::OsString::from("kept.bin")]
    );
    c.expect("NOOP", 200).await;
}

#[tokio::test]
async fn shutdown_ends_a_throttled_transfer_after_the_grace_period() {
    // At 256 bytes/s each wait is 16 s: the server must not sit in one after its grace.
    let mut server = ftpsd()
        .start_with_config("[bandwidth]\nsession_download = 256\n[timeouts]\nshutdown_grace = 1\n");
    let user = add_user(&server, "slowest", &[]);
    support::make_file(&user.root, "big.bin", MIB);
    let mut c = Control::login(&server, "slowest", PASSWORD).await;
    let (first, data) = c.begin("RETR big.bin").await;
    assert_eq!(first.code.0, 150, "{}", c.transcript);
    let mut data = data.expect("data connection");
    read_at_least(&mut data, 256).await;
    let asked = Instant::now();
    let exited = tokio::task::spawn_blocking(move || {
        let exited = server.terminate_within(Duration::from_secs(8));
        (exited, server)
    })
    .await
    .expect("join");
    let waited = asked.elapsed();
    assert!(
        exited.0 && waited < Duration::from_secs(6),
        "ftpsd took {waited:?} to stop (exited: {})\n{}",
        exited.0,
        exited.1.log_text()
    );
}

#[tokio::test]
async fn a_throttled_transfer_slower_than_the_stall_timeout_completes() {
    // 16 KiB at 4 KiB/s takes about 4 s, with a 1 s stall timeout: waiting for the limit is
    // not a stall, in either direction.
    let server = ftpsd().start_with_config(
        "[bandwidth]\nsession_download = \"4K\"\nsession_upload = \"4K\"\n\
         [timeouts]\ntransfer_stall = 1\n",
    );
    let user = add_user(&server, "patient", &[]);
    let content = support::content(7, 16 * 1024);
    fs::write(user.root.join("down.bin"), &content).unwrap();
    let mut c = Control::login(&server, "patient", PASSWORD).await;
    let started = Instant::now();
    assert_eq!(c.retr("down.bin").await, content);
    let down = started.elapsed();
    let started = Instant::now();
    c.stor("up.bin", &content).await;
    let up = started.elapsed();
    assert_eq!(fs::read(user.root.join("up.bin")).unwrap(), content);
    // The limit was in force (else the test shows nothing): each took several stall
    // timeouts.
    assert!(
        down > Duration::from_secs(3) && up > Duration::from_secs(3),
        "download {down:?}, upload {up:?}"
    );
}
