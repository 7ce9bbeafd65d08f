//! The defences of docs/security.md and the replies of docs/replies.md, row by row.

mod support;

use std::fs;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ftps_testkit::storage::{self, Backend, UserFiles};
use support::client::{client_config, client_config_alpn, Control, Login, Tls};
use support::{ftpsd, logged_in, logged_in_with, Server};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

/// Connects from another loopback address than the control connection's 127.0.0.1.
async fn connect_from(local: [u8; 4], to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((local, 0)))?;
    socket.connect(to).await
}

// ---- TLS command semantics (security.md §1) ---------------------------------------------

#[tokio::test]
async fn auth_mechanisms() {
    let server = ftpsd().start();
    for mech in ["TLS", "TLS-C", "SSL", "TLS-P", "tls"] {
        let mut c = Control::connect(server.explicit, &server.fingerprint).await;
        c.expect(&format!("AUTH {mech}"), 234).await;
        c.start_tls().await.expect("handshake");
        c.user_pass("ftps", &server.password).await;
    }
    let mut c = Control::connect(server.explicit, &server.fingerprint).await;
    c.expect("AUTH KERBEROS_V4", 504).await;
    c.expect("AUTH", 501).await;
}

#[tokio::test]
async fn auth_ssl_makes_the_data_channel_private() {
    let server = ftpsd().start();
    server.put("f", b"private by default");
    for mech in ["SSL", "TLS-P"] {
        let mut c = Control::connect(server.explicit, &server.fingerprint).await;
        c.expect(&format!("AUTH {mech}"), 234).await;
        c.start_tls().await.expect("handshake");
        c.user_pass("ftps", &server.password).await;
        // No PBSZ/PROT: the data channel is already private.
        c.protected = true;
        assert_eq!(c.retr("f").await, b"private by default", "AUTH {mech}");
    }
}

#[tokio::test]
async fn auth_after_plaintext_login_is_refused() {
    let server = ftpsd().start_with_config("[tls]\nrequire_for_login = false\n");
    let mut c = Control::connect(server.explicit, &server.fingerprint).await;
    c.user_pass("ftps", &server.password).await;
    c.expect("AUTH TLS", 534).await;
}

#[tokio::test]
async fn prot_unknown_level_is_504_and_keeps_the_level() {
    let (_server, mut c) = logged_in_with("f", b"x").await;
    c.expect("PROT X", 504).await;
    // Still P: the transfer works over TLS.
    assert_eq!(c.retr("f").await, b"x");
    c.expect("PBSZ 16384", 200).await;
}

#[tokio::test]
async fn ccc_is_refused() {
    let server = ftpsd().start();
    let mut c = Control::connect(server.explicit, &server.fingerprint).await;
    c.expect("CCC", 503).await;
    c.auth_tls().await;
    c.expect("CCC", 530).await;
    c.user_pass("ftps", &server.password).await;
    c.expect("CCC", 534).await;
    // Still TLS, still working.
    c.expect("PWD", 257).await;
}

// ---- Data connection binding (§3) -------------------------------------------------------

#[tokio::test]
async fn data_connection_from_another_ip_is_dropped_and_the_real_client_served() {
    let (_server, mut c) = logged_in_with("f", b"for the real client").await;
    let reply = c.expect("EPSV", 229).await;
    let port = ftps_proto::address::parse_epsv_reply(&reply.text()).unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    // A thief on 127.0.0.2 races the client to the passive port.
    let mut thief = connect_from([127, 0, 0, 2], addr)
        .await
        .expect("loopback 127.0.0.2");
    let real = TcpStream::connect(addr)
        .await
        .expect("real client connects");
    let data_tls = Some(c.tls.clone());
    let t = c.transfer_on(real, "RETR f", None, data_tls).await;
    c.assert_transfer_ok(&t, "RETR after a foreign connection");
    assert_eq!(t.data, b"for the real client");
    let mut stolen = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), thief.read_to_end(&mut stolen)).await;
    assert!(stolen.is_empty(), "the thief got {} bytes", stolen.len());
}

#[tokio::test]
async fn a_new_passive_command_closes_the_old_listener() {
    let (_server, mut c) = logged_in().await;
    let first = c.expect("EPSV", 229).await;
    let first = ftps_proto::address::parse_epsv_reply(&first.text()).unwrap();
    let second = c.expect("EPSV", 229).await;
    let second = ftps_proto::address::parse_epsv_reply(&second.text()).unwrap();
    assert_ne!(first, second);
    let old = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], first))).await;
    if let Ok(mut old) = old {
        // Accepted by something: it must not be an FTP data connection of this session.
        let mut buf = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(2), old.read(&mut buf)).await;
        assert!(
            !matches!(n, Ok(Ok(1))),
            "the first passive port still serves data"
        );
    }
}

#[tokio::test]
async fn transfer_without_pasv_gets_425() {
    let (_server, mut c) = logged_in_with("f", b"x").await;
    c.expect("RETR f", 425).await;
}

// ---- Active mode and FTP bounce (§4) -----------------------------------------------------

#[tokio::test]
async fn port_and_eprt_only_to_the_client_and_unprivileged_ports() {
    let (_server, mut c) = logged_in().await;
    c.expect("PORT 127,0,0,2,39,16", 504).await; // another host
    c.expect("PORT 127,0,0,1,0,80", 504).await; // port 80
    c.expect("EPRT |1|127.0.0.2|10000|", 504).await;
    c.expect("EPRT |1|127.0.0.1|21|", 504).await;
    c.expect("EPRT |3|x|10000|", 522).await;
    c.expect("EPSV 2", 522).await;
    c.expect("PORT 127,0,0,1,39,16", 200).await; // 10000
}

#[tokio::test]
async fn active_mode_transfer() {
    let (_server, mut c) = logged_in_with("f", b"actively sent").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    c.expect(&format!("EPRT |1|127.0.0.1|{port}|"), 200).await;
    c.send_line("RETR f").await;
    let (tcp, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
        .await
        .expect("server connects back")
        .unwrap();
    c.expect_reply(150).await;
    // In active mode the client is still the TLS client (RFC 4217 §7).
    let mut tls = tokio_rustls::TlsConnector::from(c.tls.clone())
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .expect("data handshake");
    let mut got = Vec::new();
    tls.read_to_end(&mut got).await.expect("read data");
    assert_eq!(got, b"actively sent");
    c.expect_reply(226).await;
}

#[tokio::test]
async fn epsv_all_refuses_other_data_commands() {
    let (_server, mut c) = logged_in().await;
    c.expect("EPSV ALL", 200).await;
    c.expect("PASV", 503).await;
    c.expect("PORT 127,0,0,1,39,16", 503).await;
    c.expect("EPRT |1|127.0.0.1|10000|", 503).await;
    c.expect("EPSV", 229).await;
}

// ---- Cross-protocol (§5) ----------------------------------------------------------------

#[tokio::test]
async fn tls_without_ftp_alpn_is_refused() {
    let server = ftpsd().start();
    let http = client_config_alpn(&server.fingerprint, Tls::Any, vec![b"http/1.1".to_vec()]);
    let mut c = Control::connect_with(server.explicit, http).await;
    c.expect("AUTH TLS", 234).await;
    assert!(
        c.start_tls().await.is_err(),
        "handshake with ALPN http/1.1 only succeeded"
    );
    // No ALPN at all (curl, ftplib) is fine.
    let none = client_config_alpn(&server.fingerprint, Tls::Any, vec![]);
    let mut c = Control::connect_with(server.explicit, none).await;
    c.auth_tls().await;
    c.user_pass("ftps", &server.password).await;
}

#[tokio::test]
async fn http_and_smtp_verbs_close_without_a_reply() {
    let server = ftpsd().start();
    for first in [
        "GET / HTTP/1.1",
        "POST /x HTTP/1.1",
        "EHLO example.com",
        "HELO x",
    ] {
        let mut c = Control::connect(server.explicit, &server.fingerprint).await;
        c.send_line(first).await;
        let replies = c.expect_closed().await;
        assert!(replies.is_empty(), "{first}: {replies:?}");
    }
}

// ---- Brute force (§7) -------------------------------------------------------------------

#[tokio::test]
async fn failed_logins_are_delayed_the_same() {
    let server = ftpsd().start();
    let mut c = Control::connect_auth(&server).await;
    for user in ["ftps", "no-such-user"] {
        c.expect(&format!("USER {user}"), 331).await;
        let started = Instant::now();
        c.expect("PASS wrong-password", 530).await;
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(900),
            "failed login for {user} answered after {took:?}, configured 1 s"
        );
    }
}

#[tokio::test]
async fn repeated_failures_ban_the_ip() {
    let server = ftpsd().start_with_config(
        "[limits]\nlogin_failure_delay_ms = 10\nmax_login_failures_per_ip = 3\nban_seconds = 60\n",
    );
    let mut banned = false;
    for attempt in 0..5 {
        let (mut c, greeting) = Control::connect_raw(server.explicit, &server.fingerprint).await;
        if greeting.code.0 == 421 {
            banned = true;
            break;
        }
        assert_eq!(greeting.code.0, 220, "attempt {attempt}: {greeting}");
        c.auth_tls().await;
        c.expect("USER ftps", 331).await;
        let reply = c.cmd("PASS wrong").await;
        if reply.code.0 == 421 {
            banned = true;
            break;
        }
        assert_eq!(reply.code.0, 530, "attempt {attempt}");
    }
    assert!(banned, "five failed logins, no ban at 3");
    // Even the right password is refused while banned.
    let (mut c, greeting) = Control::connect_raw(server.explicit, &server.fingerprint).await;
    if greeting.code.0 == 220 {
        c.auth_tls().await;
        c.expect("USER ftps", 331).await;
        let reply = c.cmd(&format!("PASS {}", server.password)).await;
        assert_eq!(reply.code.0, 421, "banned IP logged in: {reply}");
    } else {
        assert_eq!(greeting.code.0, 421, "{greeting}");
    }
}

// ---- Limits and timeouts (§8) -----------------------------------------------------------

#[tokio::test]
async fn sessions_per_ip_are_limited() {
    let server = ftpsd().start_with_config("[limits]\nmax_sessions_per_ip = 2\n");
    let _a = Control::connect(server.explicit, &server.fingerprint).await;
    let _b = Control::connect(server.explicit, &server.fingerprint).await;
    let mut tcp = TcpStream::connect(server.explicit).await.unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut got)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("421"), "third session got: {text:?}");
}

#[tokio::test]
async fn idle_and_login_timeouts_close_with_421() {
    let server = ftpsd().start_with_config("[timeouts]\nidle = 2\nlogin = 2\n");
    // Not logged in.
    let mut c = Control::connect(server.explicit, &server.fingerprint).await;
    let started = Instant::now();
    let replies = c.expect_closed().await;
    assert_eq!(
        replies.first().map(|r| r.code.0),
        Some(421),
        "{}",
        c.transcript
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // Logged in, then idle.
    let mut c = Control::login_default(&server).await;
    let replies = c.expect_closed().await;
    assert_eq!(
        replies.first().map(|r| r.code.0),
        Some(421),
        "{}",
        c.transcript
    );
}

#[tokio::test]
async fn telnet_iac_sequences_are_stripped() {
    let server = ftpsd().start();
    let mut c = Control::connect(server.explicit, &server.fingerprint).await;
    // IAC IP IAC DM before NOOP, as clients send before ABOR.
    c.send_raw(b"\xff\xf4\xff\xf2NOOP\r\n").await;
    c.expect_reply(200).await;
}

// ---- Uploads are atomic (§10) -----------------------------------------------------------

#[tokio::test]
async fn an_upload_appears_only_when_complete() {
    let (server, mut c) = logged_in().await;
    let (first, data) = c.begin("STOR big").await;
    assert_eq!(first.code.0, 150);
    let mut data = data.expect("data connection");
    data.write(&vec![1u8; 300_000]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let files = server.files();
    assert!(
        !files.exists("big"),
        "a partial upload is visible under its name"
    );
    data.upload(&[2u8; 1000]).await.unwrap();
    c.expect_reply(226).await;
    assert_eq!(files.read("big").len(), 301_000);
    // No temporary file is left behind or listed.
    let names = files.names("");
    assert_eq!(names, ["big"], "files in the root: {names:?}");
}

#[tokio::test]
async fn a_truncated_upload_is_discarded_with_426() {
    let (server, mut c) = logged_in_with("f", b"original").await;
    let (first, data) = c.begin("STOR f").await;
    assert_eq!(first.code.0, 150);
    let mut data = data.expect("data connection");
    data.write(&vec![9u8; 100_000]).await.unwrap();
    // No close_notify: the server cannot tell a complete file from a cut connection.
    data.break_off();
    let reply = c.reply().await;
    assert_eq!(reply.code.0, 426, "{reply}\n{}", c.transcript);
    assert_eq!(server.files().read("f"), b"original");
    // The session goes on.
    assert_eq!(c.retr("f").await, b"original");
    let listing = c.listing("LIST -a").await;
    assert!(
        !listing.contains(".part"),
        "LIST shows the partial upload:\n{listing}"
    );
    // The discarded upload's temporary file is removed, not left to fill the disk.
    assert_eq!(
        server.files().names(""),
        ["f"],
        "files in the root after a discarded upload"
    );
}

// ---- Replies of docs/replies.md not covered elsewhere -----------------------------------

#[tokio::test]
async fn more_replies() {
    let (server, mut c) = logged_in_with("f", b"0123456789").await;
    c.expect("", 500).await;
    c.expect("PWD x", 501).await;
    c.expect("REST -1", 501).await;
    c.expect("TYPE A T", 504).await;
    c.expect("ABOR", 225).await;
    c.expect("ALLO 100", 202).await;
    c.expect("ACCT x", 202).await;
    c.expect("OPTS UTF8 ON", 200).await;
    let syst = c.expect("SYST", 215).await;
    assert_eq!(syst.text(), "UNIX Type: L8");
    c.expect("HELP", 214).await;
    c.expect("HELP NOSUCHCOMMAND", 502).await;
    c.expect("STAT", 211).await;
    let stat = c.expect("STAT f", 213).await;
    assert!(stat.text().contains(" f"), "STAT f: {stat:?}");
    c.expect("TYPE A", 200).await;
    c.expect("REST 5", 504).await;
    c.expect("SIZE f", 550).await;
    c.expect("TYPE I", 200).await;
    c.expect("REST 11", 350).await;
    let t = c.transfer("RETR f", None).await;
    assert_eq!(t.code(), 554, "{t:?}");
    c.expect("MKD d", 257).await;
    c.expect("RMD d", 250).await;
    c.expect("MKD d", 257).await;
    server.put("d/inner", b"x");
    c.expect("RMD d", 550).await;
    let r = c.expect("DELE d", 550).await;
    assert!(r.text().contains("RMD"), "DELE of a directory: {r:?}");
    let t = c.transfer("MLSD f", None).await;
    assert_eq!(t.code(), 550, "MLSD of a file: {t:?}");
}

#[tokio::test]
async fn type_a_converts_line_endings() {
    let (server, mut c) = logged_in_with("unix.txt", b"one\ntwo\n").await;
    c.expect("TYPE A", 200).await;
    assert_eq!(c.retr("unix.txt").await, b"one\r\ntwo\r\n");
    c.stor("up.txt", b"a\r\nb\r\n").await;
    assert_eq!(server.files().read("up.txt"), b"a\nb\n");
    c.expect("TYPE I", 200).await;
    assert_eq!(c.retr("unix.txt").await, b"one\ntwo\n");
}

#[tokio::test]
async fn abor_during_a_download() {
    let server = ftpsd().start();
    let big = vec![5u8; 64 << 20];
    server.put("big", &big);
    let mut c = Control::login_default(&server).await;
    c.expect("TYPE I", 200).await;
    let (first, data) = c.begin("RETR big").await;
    assert_eq!(first.code.0, 150);
    let mut data = data.expect("data connection");
    let got = data.read_some(65536).await.unwrap();
    assert!(!got.is_empty());
    c.expect("STAT", 213).await;
    c.send_line("ABOR").await;
    let a = c.reply().await;
    let b = c.reply().await;
    assert_eq!((a.code.0, b.code.0), (426, 226), "{}", c.transcript);
    drop(data);
    c.expect("NOOP", 200).await;
}

#[tokio::test]
async fn reply_text_cannot_be_forged_by_a_file_name() {
    let (_server, mut c) = logged_in_with("evil\r\n250 forged", b"x").await;
    let reply = c.expect("MLST /", 250).await;
    let _ = reply;
    c.send_line("STAT /").await;
    let stat = c.reply().await;
    assert_eq!(stat.code.0, 213, "{}", c.transcript);
    // The next reply is the NOOP's, not a forged one.
    c.expect("NOOP", 200).await;
    assert!(
        !c.transcript.lines().any(|l| l.starts_with("< 250 forged")),
        "{}",
        c.transcript
    );
}

#[tokio::test]
async fn missing_root_refuses_login() {
    let server = ftpsd().start();
    let root = server.add_user("gone", "gone-pass-1", &[]);
    fs::remove_dir_all(root.local_path()).unwrap();
    let mut c = Control::connect_auth(&server).await;
    c.expect("USER gone", 331).await;
    c.expect("PASS gone-pass-1", 530).await;
}

// ---- TLS versions and certificates (§9) -------------------------------------------------

#[tokio::test]
async fn min_version_13_refuses_tls12() {
    let server = ftpsd().start_with_config("[tls]\nmin_version = \"1.3\"\n");
    let tls12 = client_config(&server.fingerprint, Tls::V12);
    let mut c = Control::connect_with(server.explicit, tls12).await;
    c.expect("AUTH TLS", 234).await;
    assert!(c.start_tls().await.is_err(), "TLS 1.2 accepted");
    let tls13 = client_config(&server.fingerprint, Tls::V13);
    let mut c = Control::connect_with(server.explicit, tls13).await;
    c.auth_tls().await;
}

#[tokio::test]
async fn sighup_reloads_the_certificate() {
    let server = ftpsd().start();
    let other = ftpsd().start();
    let mut old_session = Control::login_default(&server).await;
    for f in ["cert.pem", "key.pem"] {
        fs::copy(other.state_dir.join(f), server.state_dir.join(f)).unwrap();
    }
    server.signal("HUP");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut c = Control::connect(server.explicit, &other.fingerprint).await;
    c.auth_tls().await;
    c.user_pass("ftps", &server.password).await;
    // The session started before the reload goes on.
    old_session.expect("NOOP", 200).await;
}

#[tokio::test]
async fn shutdown_says_421_to_idle_sessions() {
    let mut server = ftpsd().start();
    let mut c = Control::login_default(&server).await;
    let stop = tokio::task::spawn_blocking(move || {
        let stopped = server.terminate_within(Duration::from_secs(20));
        (server, stopped)
    });
    let replies = c.expect_closed().await;
    let (_server, stopped) = stop.await.unwrap();
    assert!(stopped, "server still running after SIGTERM");
    assert_eq!(
        replies.first().map(|r| r.code.0),
        Some(421),
        "{}",
        c.transcript
    );
}

#[tokio::test]
async fn shutdown_lets_a_running_download_finish() {
    let mut server = ftpsd().start();
    let content: Vec<u8> = (0..(16u32 << 20)).map(|i| (i % 251) as u8).collect();
    server.put("big", &content);
    let mut c = Control::login_default(&server).await;
    c.expect("TYPE I", 200).await;
    let (first, data) = c.begin("RETR big").await;
    assert_eq!(first.code.0, 150);
    let mut data = data.expect("data connection");
    let mut got = data.read_some(1 << 16).await.unwrap();
    let stop = tokio::task::spawn_blocking(move || {
        let stopped = server.terminate_within(Duration::from_secs(40));
        (server, stopped)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    data.download(&mut got)
        .await
        .expect("download continues during shutdown");
    assert!(got == content, "download cut short: {} bytes", got.len());
    c.expect_reply(226).await;
    let (_server, stopped) = stop.await.unwrap();
    assert!(stopped);
}

#[tokio::test]
async fn concurrent_sessions_transfer_independently() {
    let server = ftpsd().start();
    let mut tasks = Vec::new();
    for i in 0..8u8 {
        let login = Login::default_user(&server);
        tasks.push(tokio::spawn(async move {
            let mut c = login.protected().await;
            let content = vec![i; 200_000 + i as usize];
            let name = format!("file{i}");
            c.stor(&name, &content).await;
            assert_eq!(c.retr(&name).await, content);
            c.expect("QUIT", 221).await;
        }));
    }
    for t in tasks {
        t.await.expect("session task");
    }
    let names = server.files().names("");
    assert_eq!(names.len(), 8, "files in the root: {names:?}");
}

// ---- Virtual hosts (RFC 7151 HOST) ------------------------------------------------------

/// A server with a virtual host `vhost.test` whose users file holds only `vu`, whose root
/// (a local directory, or the key prefix `vhost-root` in S3) holds `f`.
fn vhost_server() -> Server {
    let server = ftpsd().start_with_config_and(
        "[hosts.\"vhost.test\"]\nusers_file = \"vhost-users.toml\"\n",
        |dir| {
            let users = dir.join("vhost-users.toml");
            if Backend::is_s3() {
                // `--storage` checks the store against a configuration; the server's own is
                // written after this.
                let config = dir.join("vhost-store.toml");
                let store = storage::s3_default_storage(dir, &storage::fresh_prefix());
                fs::write(&config, store).unwrap();
                let config = config.display().to_string();
                let store = ["--config", &config, "--storage", storage::STORE_NAME];
                add_user_to(&users, "vu", "vhost-pass-1", "vhost-root", &store);
            } else {
                let root = dir.join("vhost-root");
                fs::create_dir_all(&root).unwrap();
                let root = root.display().to_string();
                add_user_to(&users, "vu", "vhost-pass-1", &root, &[]);
            }
        },
    );
    let files = if Backend::is_s3() {
        server.user_files("vhost-root")
    } else {
        UserFiles::Local(server.dir.path().join("vhost-root"))
    };
    files.put("f", b"virtual");
    server
}

/// `ftpsd user add NAME --root ROOT --users FILE EXTRA...`: a users file of its own (before
/// the server starts).
fn add_user_to(users: &std::path::Path, name: &str, password: &str, root: &str, extra: &[&str]) {
    let out = support::run_with_stdin(
        std::process::Command::new(support::FTPSD)
            .args(["user", "add", name, "--root", root])
            .args(["--users", &users.display().to_string(), "--password-stdin"])
            .args(extra),
        &format!("{password}\n"),
    );
    assert!(out.status.success(), "user add --users: {out:?}");
}

#[tokio::test]
async fn host_selects_the_virtual_hosts_users() {
    let server = vhost_server();
    let mut c = Control::connect(server.explicit, &server.fingerprint).await;
    c.expect("HOST vhost.test", 220).await;
    c.set_server_name("vhost.test");
    c.auth_tls().await;
    c.user_pass("vu", "vhost-pass-1").await;
    c.protect().await;
    assert_eq!(c.retr("f").await, b"virtual");

    // The default host's user is unknown there.
    let mut c = Control::connect(server.explicit, &server.fingerprint).await;
    c.expect("HOST vhost.test", 220).await;
    c.set_server_name("vhost.test");
    c.auth_tls().await;
    c.expect("USER ftps", 331).await;
    c.expect(&format!("PASS {}", server.password), 530).await;

    // And without HOST the virtual host's user is unknown.
    let mut c = Control::connect_auth(&server).await;
    c.expect("USER vu", 331).await;
    c.expect("PASS vhost-pass-1", 530).await;
}

#[tokio::test]
async fn sni_alone_selects_the_virtual_host() {
    let server = vhost_server();
    let mut c = Control::connect(server.explicit, &server.fingerprint).await;
    c.set_server_name("vhost.test");
    c.auth_tls().await;
    c.user_pass("vu", "vhost-pass-1").await;
}

#[tokio::test]
async fn host_errors() {
    let server = vhost_server();
    let mut c = Control::connect(server.explicit, &server.fingerprint).await;
    c.expect("HOST", 501).await;
    let unknown = c.cmd("HOST unknown.test").await;
    assert!(unknown.code.0 >= 500, "unknown host: {unknown}");
    c.expect("HOST vhost.test", 220).await;
    // SNI that contradicts HOST.
    c.set_server_name("localhost");
    c.send_line("AUTH TLS").await;
    let reply = c.reply().await;
    if reply.code.0 == 234 {
        // The client may finish its side of the handshake before the server checks the
        // name; the server must then close the connection instead of serving it.
        if c.start_tls().await.is_ok() {
            let _ = c.try_send_line("USER vu").await;
            let replies = c.expect_closed().await;
            assert!(
                replies.is_empty(),
                "TLS for another name than HOST's was served: {replies:?}"
            );
        }
    } else {
        assert!(reply.code.0 >= 500, "{reply}");
    }
    // HOST after login.
    let mut c = Control::login_default(&server).await;
    c.expect("HOST vhost.test", 503).await;
}
