//! What one client, or an unlucky operator, must not be able to do to the server: exhaust
//! its memory or session slots, keep guessing passwords past a ban, get a stale tree, tie
//! up threads, or lose an acknowledged upload. Each test would fail on the server before
//! the matching fix (docs/reliability.md lists them).

mod support;

use std::fs;
use std::time::{Duration, Instant};

use support::client::Control;
use support::{ftpsd, logged_in, Server};
use tokio::net::TcpStream;

/// Polls the server's log until it contains `needle` (or `limit` passes).
async fn log_shows(server: &Server, needle: &str, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if server.log_all().contains(needle) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn commands_flooded_during_a_transfer_do_not_grow_memory() {
    // A logged-in client starts an upload, sends no data and floods the control connection.
    // The server used to queue every line: 100 MiB took it to 2.4 GiB.
    let (server, mut c) = logged_in().await;
    let (first, data) = c.begin("STOR held.bin").await;
    assert_eq!(first.code.0, 150);
    let _data = data.expect("data connection");
    let before = server.rss_kib();
    let flood = b"NOOP\r\n".repeat(1 << 20);
    let mut sent = 0usize;
    for _ in 0..16 {
        let send = tokio::time::timeout(Duration::from_secs(2), c.send_raw_quiet(&flood));
        if send.await.is_err() {
            break; // the server stopped reading: the flood waits in the sockets
        }
        sent += flood.len();
    }
    let after = server.rss_kib();
    assert!(
        after < before + 64 * 1024,
        "server grew from {before} KiB to {after} KiB after {sent} bytes of NOOPs"
    );
    assert!(sent < 96 << 20, "the server read all {sent} bytes");
    // Everyone else is still served.
    let mut other = Control::login_default(&server).await;
    other.expect("NOOP", 200).await;
}

#[tokio::test]
async fn the_login_deadline_counts_from_the_connection() {
    // NOOP every half second used to restart the login timeout forever.
    let server = ftpsd().start_with_config("[timeouts]\nlogin = 2\n");
    let mut c = Control::connect_auth(&server).await;
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "still connected after {:?}\n{}",
            started.elapsed(),
            c.transcript
        );
        if c.try_send_line("NOOP").await.is_err() {
            break;
        }
        match c.try_reply().await {
            Ok(Some(r)) if r.code.0 == 200 => {}
            Ok(Some(r)) => {
                assert_eq!(r.code.0, 421, "{r}");
                break;
            }
            _ => break,
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(started.elapsed() >= Duration::from_millis(1500));
}

#[tokio::test]
async fn a_client_that_never_reads_its_replies_is_disconnected() {
    let server = ftpsd().start_with_config("[timeouts]\nreply_write = 2\n");
    let mut c = Control::login_default(&server).await;
    // Thousands of HELP replies nobody reads fill the socket buffers; the server's write
    // then blocks, and it used to block forever.
    let help = b"HELP\r\n".repeat(200_000);
    let _ = tokio::time::timeout(Duration::from_secs(5), c.send_raw_quiet(&help)).await;
    assert!(
        log_shows(
            &server,
            "does not read its replies",
            Duration::from_secs(15)
        )
        .await,
        "the session was not ended:\n{}",
        server.log_text()
    );
}

#[tokio::test]
async fn a_ban_stops_password_guessing_on_connections_opened_before_it() {
    let server = ftpsd().start_with_config(
        "[limits]\nmax_login_failures_per_ip = 3\nlogin_failure_delay_ms = 10\n",
    );
    // Opened before the ban.
    let mut early = Control::connect(server.explicit, &server.fingerprint).await;
    early.auth_tls().await;
    let mut guesser = Control::connect(server.explicit, &server.fingerprint).await;
    guesser.auth_tls().await;
    for i in 0..3 {
        guesser.expect("USER ftps", 331).await;
        let reply = guesser.cmd(&format!("PASS wrong-{i}")).await;
        assert!(matches!(reply.code.0, 530 | 421), "{reply}");
    }
    let reply = early.cmd("USER ftps").await;
    assert_eq!(
        reply.code.0, 421,
        "the ban did not cover an open session: {reply}"
    );
    early.expect_closed().await;
}

#[tokio::test]
async fn rein_gives_the_users_session_slot_back() {
    let server = ftpsd().start_with_config("[limits]\nmax_sessions_per_user = 1\n");
    let mut a = Control::login_default(&server).await;
    for _ in 0..3 {
        a.expect("REIN", 220).await;
        a.user_pass("ftps", &server.password).await;
    }
    a.expect("REIN", 220).await;
    // The account's one slot is free: another session may log in.
    let mut b = Control::connect(server.explicit, &server.fingerprint).await;
    b.auth_tls().await;
    b.expect("USER ftps", 331).await;
    let reply = b.cmd(&format!("PASS {}", server.password)).await;
    assert_eq!(reply.code.0, 230, "{reply}");
}

#[tokio::test]
async fn a_replaced_home_directory_is_served_to_new_logins() {
    let server = ftpsd().start();
    fs::write(server.data_dir().join("old.txt"), "old").unwrap();
    // A session holds the current directory open.
    let mut a = Control::login_default(&server).await;
    assert!(a.listing("NLST").await.contains("old.txt"));
    // The administrator archives it and creates a new one.
    let data = server.data_dir();
    fs::rename(&data, server.state_dir.join("data.archived")).unwrap();
    fs::create_dir(&data).unwrap();
    fs::write(data.join("new.txt"), "new").unwrap();
    let mut b = Control::login_default(&server).await;
    let listing = b.listing("NLST").await;
    assert!(
        listing.contains("new.txt") && !listing.contains("old.txt"),
        "a new login got the archived tree: {listing}"
    );
}

/// A file whose digest takes seconds: sparse, so it costs no disk.
fn big_sparse_file(server: &Server, name: &str) {
    let f = fs::File::create(server.data_dir().join(name)).unwrap();
    f.set_len(16 << 30).unwrap();
}

#[tokio::test]
async fn hash_answers_stat_and_abor_and_is_bounded() {
    let server = ftpsd().start();
    big_sparse_file(&server, "big.bin");
    let mut c = Control::login_default(&server).await;
    c.send_line("HASH big.bin").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stat = c.cmd("STAT").await;
    assert_eq!(stat.code.0, 213, "{stat}");
    assert!(stat.text().contains("in progress"), "{stat}");
    c.send_line("ABOR").await;
    assert_eq!(c.reply().await.code.0, 426);
    assert_eq!(c.reply().await.code.0, 226);
    c.expect("NOOP", 200).await;

    // At most four digests at once in the server; the fifth is told to come back.
    let mut running = Vec::new();
    for _ in 0..4 {
        let mut s = Control::login_default(&server).await;
        s.send_line("HASH big.bin").await;
        running.push(s);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut fifth = Control::login_default(&server).await;
    let reply = fifth.cmd("HASH big.bin").await;
    assert_eq!(reply.code.0, 450, "{reply}");
    for s in &mut running {
        s.send_line("ABOR").await;
        assert_eq!(s.reply().await.code.0, 426);
        assert_eq!(s.reply().await.code.0, 226);
    }
    // Their permits are back.
    fifth.send_line("HASH big.bin").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    fifth.send_line("ABOR").await;
    assert_eq!(fifth.reply().await.code.0, 426);
}

#[tokio::test]
async fn an_unused_passive_port_is_closed() {
    let server = ftpsd().start_with_config("[timeouts]\ndata_connect = 1\n");
    let mut c = Control::login_default(&server).await;
    let reply = c.expect("EPSV", 229).await;
    let port = ftps_proto::address::parse_epsv_reply(&reply.text()).unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        TcpStream::connect(("127.0.0.1", port)).await.is_err(),
        "the passive port is still open"
    );
    // The session goes on; a transfer without a new EPSV is refused.
    assert_eq!(c.cmd("LIST").await.code.0, 425);
    c.listing("LIST").await;
}

#[tokio::test]
async fn the_open_file_limit_is_raised_at_start() {
    // systemd and shells start services with a soft limit of 1,024 descriptors.
    let server = ftpsd().start_wrapped("", &["sh", "-c", "ulimit -Sn 256; exec \"$@\"", "sh"]);
    let limits = fs::read_to_string(format!("/proc/{}/limits", server.pid())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[3], fields[4], "soft limit not raised: {line}");
    assert_ne!(fields[3], "256", "{line}");
}

#[tokio::test]
async fn a_hard_open_file_limit_below_max_sessions_is_reported() {
    let server = ftpsd().start_wrapped("", &["sh", "-c", "ulimit -n 512; exec \"$@\"", "sh"]);
    assert!(
        log_shows(&server, "open-file limit is below", Duration::from_secs(5)).await,
        "{}",
        server.log_text()
    );
}

#[tokio::test]
async fn an_acknowledged_upload_has_its_directory_synced() {
    // strace -y names each descriptor's file: the upload's directory must be fsynced after
    // the rename that publishes the file, before the 226.
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.txt");
    let trace_arg = trace.display().to_string();
    let server = ftpsd().start_wrapped(
        "",
        &[
            "strace",
            "-f",
            "-y",
            "-e",
            "trace=fsync,rename,renameat,renameat2",
            "-o",
            &trace_arg,
        ],
    );
    let mut c = Control::login_default(&server).await;
    c.stor("durable.bin", b"acknowledged").await;
    c.expect("NOOP", 200).await;
    let text = fs::read_to_string(&trace).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let rename = lines
        .iter()
        .position(|l| l.contains("rename") && l.contains("\"durable.bin\""))
        .unwrap_or_else(|| panic!("no rename of the upload in the trace:\n{text}"));
    let data = server.data_dir().canonicalize().unwrap();
    let dir_sync = format!("{}>", data.display());
    assert!(
        lines[rename..]
            .iter()
            .any(|l| l.contains("fsync(") && l.contains(&dir_sync)),
        "no fsync of {} after the rename:\n{text}",
        data.display()
    );
}

#[tokio::test]
async fn temporary_files_of_unfinished_uploads_are_removed_at_start() {
    let mut server = ftpsd().start();
    let data = server.data_dir();
    fs::create_dir_all(data.join("sub")).unwrap();
    let leftovers = [
        ".ftpsd-upload.0123456789abcdef.part",
        "sub/.ftpsd-upload.fedcba9876543210.part",
    ];
    for name in leftovers {
        fs::write(data.join(name), "half an upload").unwrap();
    }
    fs::write(data.join("sub/keep.part"), "mine").unwrap();
    server.restart();
    for name in leftovers {
        assert!(!data.join(name).exists(), "{name} survived the start");
    }
    assert!(data.join("sub/keep.part").exists());
}

#[tokio::test]
async fn site_to_site_transfers_never_target_internal_addresses() {
    let server = ftpsd().start();
    server.add_user("mirror", "mirror-password-1", &[]);
    let users = server.state_dir.join("users.toml");
    let text = fs::read_to_string(&users).unwrap();
    let text = text.replacen("[users.mirror]\n", "[users.mirror]\nallow_fxp = true\n", 1);
    fs::write(&users, text).unwrap();
    let mut c = Control::login(&server, "mirror", "mirror-password-1").await;
    // Another host than the client: allowed for this user, but not on loopback, private or
    // link-local addresses (a request-forgery tool into the server's own network).
    for target in ["127,0,0,2,31,144", "10,0,0,1,31,144", "169,254,1,1,31,144"] {
        let reply = c.cmd(&format!("PORT {target}")).await;
        assert_eq!(reply.code.0, 504, "PORT {target}: {reply}");
        assert!(reply.text().contains("internal"), "{reply}");
    }
    // The client's own address stays allowed.
    c.expect("PORT 127,0,0,1,31,144", 200).await;
}

#[tokio::test]
async fn removing_a_user_or_changing_a_password_ends_their_sessions_at_reload() {
    let server = ftpsd().start();
    server.add_user("leaving", "leaving-password-1", &[]);
    server.add_user("rotated", "rotated-password-1", &[]);
    let mut leaving = Control::login(&server, "leaving", "leaving-password-1").await;
    let mut rotated = Control::login(&server, "rotated", "rotated-password-1").await;
    let mut staying = Control::login_default(&server).await;
    let state = server.state_dir.display().to_string();
    let out = server.ftpsd(&["user", "del", "leaving", "--state-dir", &state], "");
    assert!(out.status.success(), "{out:?}");
    let out = server.ftpsd(
        &[
            "user",
            "passwd",
            "rotated",
            "--state-dir",
            &state,
            "--password-stdin",
        ],
        "rotated-password-2\n",
    );
    assert!(out.status.success(), "{out:?}");
    server.signal("HUP");
    for (who, c) in [("leaving", &mut leaving), ("rotated", &mut rotated)] {
        let replies = c.expect_closed().await;
        assert!(
            replies
                .iter()
                .any(|r| r.code.0 == 421 && r.text().contains("changed or removed")),
            "{who}: {replies:?}"
        );
    }
    staying.expect("NOOP", 200).await;
}
