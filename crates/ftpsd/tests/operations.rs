//! Operations (docs/operations.md): the Prometheus metrics and health checks scraped with
//! curl while curl and the raw client move real files, the transfer log read by webalizer
//! (an xferlog reader that is not ours), the failed-login lines matched by fail2ban-regex
//! with the filter in contrib/fail2ban, JSON log lines, and `SIGUSR1` reopening the log
//! files after a logrotate-style move.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::client::{client_config, Control, Tls};
use support::{ftpsd, sample, Server};

const TIMEOUT: Duration = Duration::from_secs(120);

/// `[metrics]` on a free loopback port, the server log in `log_format` to `ftpsd.log` and
/// the transfer log to `xferlog`, both next to the configuration file.
fn server_with_ops(log_format: &str) -> Server {
    ftpsd().start_with_config(&format!(
        "[metrics]\nlisten = \"127.0.0.1:0\"\n\n[log]\nformat = \"{log_format}\"\nfile = \"ftpsd.log\"\nxferlog = \"xferlog\"\n"
    ))
}

/// `curl URL` of the metrics listener: the status code and the body.
fn http_get(server: &Server, path: &str) -> (u16, String) {
    let addr = server.metrics.expect("the metrics listener");
    let run = support::run_client(
        Command::new("curl")
            .args(["--silent", "--show-error", "--max-time", "30"])
            .args(["--write-out", "\n%{http_code}"])
            .arg(format!("http://{addr}{path}")),
        TIMEOUT,
    );
    run.assert_ok("curl the metrics listener");
    let (body, code) = run.stdout.rsplit_once('\n').expect("a status line");
    (
        code.trim().parse().expect("a status code"),
        body.to_string(),
    )
}

fn scrape(server: &Server) -> BTreeMap<String, f64> {
    support::scrape_metrics(server)
}

/// curl over explicit FTPS as `ftps` with `args` on `path`.
fn curl(server: &Server, path: &str, args: &[&str]) -> support::Run {
    support::run_client(
        Command::new("curl")
            .args(["--silent", "--show-error", "--ssl-reqd", "--max-time", "60"])
            .arg("--cacert")
            .arg(server.state_dir.join("cert.pem"))
            .arg("--user")
            .arg(format!("ftps:{}", server.password))
            .args(args)
            .arg(format!("ftp://127.0.0.1:{}{path}", server.explicit.port())),
        TIMEOUT,
    )
}

/// The text of a file beside the server's configuration, once it has `lines` lines
/// (the logs are written by threads of their own).
fn read_lines(path: &Path, lines: usize) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.lines().count() >= lines || std::time::Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn metrics_count_sessions_logins_and_transfers_as_they_happen() {
    let server = server_with_ops("text");
    assert_eq!(http_get(&server, "/healthz"), (200, "ok\n".into()));
    assert_eq!(http_get(&server, "/readyz"), (200, "ready\n".into()));
    let before = scrape(&server);
    assert_eq!(sample(&before, "ftpsd_sessions_open"), 0.0);

    // Two uploads and a download with curl, one failed login.
    let up = support::local_file(&server, "payload.bin", &[7u8; 300_000]);
    curl(&server, "/one.bin", &["-T", &up]).assert_ok("upload one");
    curl(&server, "/two.bin", &["-T", &up]).assert_ok("upload two");
    let down = curl(&server, "/one.bin", &["-o", "/dev/null"]);
    down.assert_ok("download");
    let mut bad = Control::connect_auth(&server).await;
    bad.cmd("USER ftps").await;
    assert_eq!(bad.cmd("PASS wrong").await.code.0, 530);
    // A session that stays open while the metrics are read.
    let mut open = Control::login_default(&server).await;
    open.expect("NOOP", 200).await;

    let after = scrape(&server);
    let delta = |name: &str| sample(&after, name) - sample(&before, name);
    assert_eq!(sample(&after, "ftpsd_sessions_open"), 2.0, "{after:?}");
    assert_eq!(delta("ftpsd_sessions_total"), 5.0, "{after:?}");
    assert_eq!(
        delta("ftpsd_logins_total{result=\"ok\",method=\"password\"}"),
        4.0
    );
    assert_eq!(
        delta("ftpsd_logins_total{result=\"failed\",method=\"password\"}"),
        1.0
    );
    assert_eq!(
        delta("ftpsd_transfers_total{direction=\"upload\",result=\"ok\"}"),
        2.0
    );
    assert_eq!(
        delta("ftpsd_transfers_total{direction=\"download\",result=\"ok\"}"),
        1.0
    );
    assert_eq!(
        delta("ftpsd_transfer_bytes_total{direction=\"upload\"}"),
        600_000.0
    );
    assert_eq!(
        delta("ftpsd_transfer_bytes_total{direction=\"download\"}"),
        300_000.0
    );
    assert_eq!(
        delta("ftpsd_transfer_duration_seconds_count{direction=\"upload\"}"),
        2.0
    );
    // A PASV port waiting for its connection shows while it waits.
    open.expect("PASV", 227).await;
    let waiting = scrape(&server);
    assert_eq!(sample(&waiting, "ftpsd_passive_ports_in_use"), 1.0);
    drop(open);
    drop(bad);
}

#[tokio::test]
async fn refusals_bans_and_failures_are_counted() {
    let server = ftpsd().start_with_config(
        "[metrics]\nlisten = \"127.0.0.1:0\"\n\n[limits]\nmax_login_failures_per_ip = 2\nlogin_failure_delay_ms = 1\n",
    );
    // A data connection that does not resume the control session's TLS session: refused
    // by the binding (522), counted.
    let mut c = Control::login_default(&server).await;
    let before = scrape(&server);
    let stranger = client_config(&server.fingerprint, Tls::Any);
    let t = c.transfer_with("LIST", None, Some(stranger)).await;
    assert_eq!(t.code(), 522, "{t:?}");
    // A TLS handshake that fails on the control connection.
    let mut plain = tokio::net::TcpStream::connect(server.explicit)
        .await
        .unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut greeting = [0u8; 256];
    let _ = plain.read(&mut greeting).await.unwrap();
    plain.write_all(b"AUTH TLS\r\n").await.unwrap();
    let _ = plain.read(&mut greeting).await.unwrap();
    plain
        .write_all(b"this is not a TLS hello\r\n")
        .await
        .unwrap();
    let _ = plain.read(&mut greeting).await;
    // Two failures ban the address.
    for _ in 0..2 {
        let mut bad = Control::connect_auth(&server).await;
        bad.cmd("USER nobody").await;
        let _ = bad.cmd("PASS wrong").await;
    }
    let after = scrape(&server);
    let delta = |name: &str| sample(&after, name) - sample(&before, name);
    assert_eq!(
        delta("ftpsd_data_connections_refused_total{reason=\"tls_session\"}"),
        1.0,
        "{after:?}"
    );
    assert_eq!(
        delta("ftpsd_tls_handshake_failures_total{channel=\"control\"}"),
        1.0,
        "{after:?}"
    );
    assert!(sample(&after, "ftpsd_bans_active") >= 1.0, "{after:?}");
}

#[tokio::test]
async fn readyz_turns_false_while_the_server_drains() {
    let mut server = ftpsd().start_with_config(
        "[metrics]\nlisten = \"127.0.0.1:0\"\n\n[timeouts]\nshutdown_grace = 20\n",
    );
    // A transfer that holds the drain open: an upload that sends slowly.
    let mut c = Control::login_default(&server).await;
    let (first, data) = c.begin("STOR slow.bin").await;
    assert_eq!(first.code.0, 150, "{first:?}");
    let mut data = data.expect("data connection");
    data.write(b"start").await.unwrap();
    server.signal("TERM");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (code, body) = http_get(&server, "/readyz");
        if code == 503 {
            assert_eq!(body, "draining\n");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "readyz stayed {code}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(http_get(&server, "/healthz").0, 200);
    data.upload(b"done").await.unwrap();
    assert_eq!(c.reply().await.code.0, 226);
    assert!(server.terminate_within(Duration::from_secs(30)));
}

#[tokio::test]
async fn the_transfer_log_is_xferlog_that_webalizer_reads() {
    let server = server_with_ops("text");
    let up = support::local_file(&server, "payload.bin", &[1u8; 200_000]);
    curl(
        &server,
        "/dir/with%20space.bin",
        &["-T", &up, "--ftp-create-dirs"],
    )
    .assert_ok("upload");
    curl(&server, "/dir/with%20space.bin", &["-o", "/dev/null"]).assert_ok("download");
    curl(
        &server,
        "/",
        &["--quote", "DELE /dir/with space.bin", "--list-only"],
    )
    .assert_ok("delete");
    let dir = server.dir.path();
    let text = read_lines(&dir.join("xferlog"), 3);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    for (line, (direction, bytes)) in
        lines
            .iter()
            .zip([("i", "200000"), ("o", "200000"), ("d", "0")])
    {
        let fields: Vec<&str> = line.split(' ').filter(|f| !f.is_empty()).collect();
        assert_eq!(fields.len(), 18, "{line}");
        assert_eq!(fields[6], "127.0.0.1", "{line}");
        assert_eq!(fields[7], bytes, "{line}");
        assert_eq!(fields[8], "/dir/with_space.bin", "{line}");
        assert_eq!(
            &fields[9..],
            ["b", "_", direction, "r", "ftps", "ftp", "0", "*", "c"]
        );
    }
    // webalizer's FTP mode reads every line (the delete is a request of 0 bytes) and the
    // bytes, which it reports in rounded KiB.
    let out = dir.join("webalizer");
    std::fs::create_dir_all(&out).unwrap();
    let run = support::run_client(
        Command::new("webalizer")
            .args(["-F", "ftp", "-N", "0", "-D", "none", "-p", "-Q", "-o"])
            .arg(&out)
            .arg(dir.join("xferlog")),
        TIMEOUT,
    );
    run.assert_ok("webalizer");
    let history = std::fs::read_to_string(out.join("webalizer.hist")).expect("webalizer.hist");
    // "MONTH YEAR HITS FILES SITES KBYTES ...": three lines, 400000 bytes.
    let month = history
        .lines()
        .find(|l| !l.starts_with('#') && l.split(' ').nth(2) != Some("0"))
        .unwrap_or_else(|| panic!("no month with hits:\n{history}"));
    let fields: Vec<&str> = month.split(' ').collect();
    assert_eq!(fields[2], "3", "hits: {month}");
    assert_eq!(fields[4], "1", "sites: {month}");
    assert_eq!(
        fields[5],
        ((400_000 + 512) / 1024).to_string(),
        "kB: {month}"
    );
}

#[tokio::test]
async fn failed_logins_match_the_shipped_fail2ban_filter_in_both_formats() {
    let filter = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../contrib/fail2ban/filter.d/ftpsd.conf"
    );
    for format in ["text", "json"] {
        let server = server_with_ops(format);
        for user in ["ftps", "nobody", "mallory\" peer=6.6.6.6:1"] {
            let mut c = Control::connect_auth(&server).await;
            c.cmd(&format!("USER {user}")).await;
            assert_eq!(c.cmd("PASS wrong").await.code.0, 530);
        }
        let ok = Control::login_default(&server).await;
        drop(ok);
        let log = server.dir.path().join("ftpsd.log");
        let text = read_lines(&log, 8);
        if format == "json" {
            for line in text.lines() {
                assert!(line.starts_with('{') && line.ends_with('}'), "{line}");
            }
        }
        // `--out ip`: the address of each matched line, one per line.
        let run = support::run_client(
            Command::new("fail2ban-regex")
                .arg(&log)
                .arg(filter)
                .args(["--out", "ip"]),
            TIMEOUT,
        );
        run.assert_ok("fail2ban-regex");
        let addresses: Vec<&str> = run.stdout.lines().map(str::trim).collect();
        // The crafted user name does not get 6.6.6.6 banned.
        assert_eq!(
            addresses,
            ["127.0.0.1", "127.0.0.1", "127.0.0.1"],
            "{format}: the three failures, from the session's own address:\n{text}"
        );
    }
}

#[tokio::test]
async fn sigusr1_reopens_both_logs_after_they_were_moved() {
    let server = server_with_ops("text");
    let dir = server.dir.path().to_path_buf();
    curl(&server, "/", &["--list-only"]).assert_ok("list");
    let payload = support::local_file(&server, "a.bin", b"first");
    curl(&server, "/a.bin", &["-T", &payload]).assert_ok("upload");
    read_lines(&dir.join("xferlog"), 1);
    std::fs::rename(dir.join("ftpsd.log"), dir.join("ftpsd.log.1")).unwrap();
    std::fs::rename(dir.join("xferlog"), dir.join("xferlog.1")).unwrap();
    server.signal("USR1");
    // The reopen is logged in the new file.
    let text = read_lines(&dir.join("ftpsd.log"), 1);
    assert!(text.contains("log files reopened"), "{text}");
    curl(&server, "/b.bin", &["-T", &payload]).assert_ok("upload");
    let new = read_lines(&dir.join("xferlog"), 1);
    assert!(new.contains(" /b.bin "), "{new}");
    let old = std::fs::read_to_string(dir.join("xferlog.1")).unwrap();
    assert!(old.contains(" /a.bin ") && !old.contains("/b.bin"), "{old}");
    let old_log = std::fs::read_to_string(dir.join("ftpsd.log.1")).unwrap();
    assert!(old_log.contains("transfer complete"), "{old_log}");
}
