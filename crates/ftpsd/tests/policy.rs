//! Address rules and per-user limits (docs/users.md, docs/security.md): the server's
//! `[addresses]` closing refused connections at connect, a user's `[users.NAME.addresses]`
//! refusing logins from other addresses, and a user's `max_sessions` and `max_file_size`
//! (and the server's `limits.max_file_size`), through curl, Python's ftplib and the raw
//! client, with `ftpsd user set` changing the users file while the server runs.
//!
//! The whole loopback range is local, so clients choose their source address in it:
//! 127.0.0.1 and, for the refused ones, 127.0.0.2 or 127.0.0.3.

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use ftps_testkit::storage::UserFiles;
use support::client::{client_config, Control, Tls};
use support::pki::{self, Ca};
use support::{assert_curl_refused, ftpsd, Run, Server};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/policy_client.py");
const TIMEOUT: Duration = Duration::from_secs(300);
const REFUSED_AT_CONNECT: &str =
    "421 Service not available: connections from your address are not allowed.";

// ---- Helpers ----------------------------------------------------------------------------

/// A TCP connection to `to` from the loopback address `local`.
async fn connect_from(local: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((local, 0)))
        .unwrap_or_else(|e| panic!("bind {local:?}: {e}"));
    socket
        .connect(to)
        .await
        .unwrap_or_else(|e| panic!("connect from {local:?} to {to}: {e}"))
}

/// Everything the server sends until it closes the connection (a reset ends it too).
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return out,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the server kept the connection open; got {out:?}"),
        }
    }
}

/// curl logged in as `user`, connecting from the loopback address `source`, trusting only
/// the server's certificate; `--verbose` so that the server's replies are in its stderr.
fn curl(server: &Server, user: &str, password: &str, source: &str) -> Command {
    let mut cmd = Command::new("curl");
    cmd.args(["--silent", "--show-error", "--verbose", "--disable"])
        .args(["--max-time", "120", "--interface", source])
        .arg("--cacert")
        .arg(server.state_dir.join("cert.pem"))
        .arg("--user")
        .arg(format!("{user}:{password}"));
    cmd
}

/// curl over explicit FTPS (`--ssl-reqd`) with `args` (a URL path is given as `/PATH`).
fn curl_explicit(
    server: &Server,
    user: &str,
    password: &str,
    source: &str,
    path: &str,
    args: &[&str],
) -> Run {
    let mut cmd = curl(server, user, password, source);
    cmd.arg("--ssl-reqd")
        .args(args)
        .arg(format!("ftp://127.0.0.1:{}{path}", server.explicit.port()));
    support::run_client(&mut cmd, TIMEOUT)
}

/// `policy_client.py PHASE ARGS...` as `user`, from `source` when given.
fn python(server: &Server, user: &str, password: &str, source: &str, args: &[&str]) -> Run {
    let mut cmd = Command::new("python3");
    cmd.arg(SCRIPT)
        .args(args)
        .env("FTP_HOST", "127.0.0.1")
        .env("FTP_PORT", server.explicit.port().to_string())
        .env("FTP_USER", user)
        .env("FTP_PASSWORD", password)
        .env("FTP_SOURCE", source)
        .env("FTP_CAFILE", server.state_dir.join("cert.pem"))
        .env("PYTHONDONTWRITEBYTECODE", "1");
    support::run_client(&mut cmd, TIMEOUT)
}

/// `ftpsd user set NAME ARGS...` on the server's users file, which must succeed.
fn user_set(server: &Server, name: &str, args: &[&str]) {
    let state = server.state_dir.display().to_string();
    let mut all = vec!["user", "set", name, "--state-dir", &state];
    all.extend_from_slice(args);
    let out = server.ftpsd(&all, "");
    assert!(
        out.status.success(),
        "ftpsd {all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `ftpsd user show NAME`.
fn user_show(server: &Server, name: &str) -> String {
    let state = server.state_dir.display().to_string();
    let out = server.ftpsd(&["user", "show", name, "--state-dir", &state], "");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// The log written since `mark` (a length of [`Server::log_all`]).
fn log_since(server: &Server, mark: usize) -> String {
    server.log_all().get(mark..).unwrap_or_default().to_string()
}

/// Waits for a log line written since `mark` that contains every one of `needles`.
async fn wait_for_log(server: &Server, mark: usize, needles: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let log = log_since(server, mark);
        if let Some(line) = log.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
            return line.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no log line with {needles:?}\n{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---- The server's address rules ---------------------------------------------------------

#[tokio::test]
async fn the_servers_deny_list_closes_refused_connections_at_connect() {
    let server = ftpsd().start_with_config("[addresses]\ndeny = [\"127.0.0.2\"]\n");
    let mark = server.log_all().len();

    // Explicit FTPS: the 421 is all the refused client gets, then the close.
    let mut refused = connect_from([127, 0, 0, 2], server.explicit).await;
    let got = read_until_closed(&mut refused).await;
    assert_eq!(
        String::from_utf8_lossy(&got),
        format!("{REFUSED_AT_CONNECT}\r\n")
    );
    // Implicit FTPS: closed before any TLS: a handshake fails and not a byte comes back.
    let tcp = connect_from([127, 0, 0, 2], server.implicit).await;
    let handshake = tokio_rustls::TlsConnector::from(client_config(&server.fingerprint, Tls::Any))
        .connect(ftps_testkit::tls::localhost(), tcp)
        .await;
    assert!(handshake.is_err(), "a TLS handshake from a denied address");
    let mut silent = connect_from([127, 0, 0, 2], server.implicit).await;
    assert!(read_until_closed(&mut silent).await.is_empty());

    // curl from the denied address, both ways, fails; from 127.0.0.1 it works.
    let pw = server.password.clone();
    let run = curl_explicit(&server, "ftps", &pw, "127.0.0.2", "/", &[]);
    assert_curl_refused(&run, REFUSED_AT_CONNECT, "curl explicit from 127.0.0.2");
    let mut implicit = curl(&server, "ftps", &pw, "127.0.0.2");
    implicit.arg(format!("ftps://127.0.0.1:{}/", server.implicit.port()));
    let run = support::run_client(&mut implicit, TIMEOUT);
    assert!(
        !run.status.success(),
        "curl implicit from 127.0.0.2:\n{run}"
    );
    server.put("served.txt", b"for 127.0.0.1");
    let run = curl_explicit(&server, "ftps", &pw, "127.0.0.1", "/", &[]);
    run.assert_ok("curl explicit from 127.0.0.1");
    assert!(run.stdout.contains("served.txt"), "{run}");
    let mut implicit = curl(&server, "ftps", &pw, "127.0.0.1");
    implicit.arg(format!(
        "ftps://127.0.0.1:{}/served.txt",
        server.implicit.port()
    ));
    let run = support::run_client(&mut implicit, TIMEOUT);
    run.assert_ok("curl implicit from 127.0.0.1");
    assert_eq!(run.stdout, "for 127.0.0.1");

    // The raw client from 127.0.0.1 too, on both listeners.
    let mut c = Control::login_default(&server).await;
    assert_eq!(c.retr("served.txt").await, b"for 127.0.0.1");
    let mut i = Control::connect_implicit(server.implicit, &server.fingerprint).await;
    i.expect("NOOP", 200).await;

    // Each refusal is logged with the address and the rule, and started no session.
    for implicit in ["implicit=false", "implicit=true"] {
        wait_for_log(
            &server,
            mark,
            &[
                "connection refused by the address rules",
                "peer=127.0.0.2:",
                "rule=deny 127.0.0.2",
                implicit,
            ],
        )
        .await;
    }
    let log = log_since(&server, mark);
    assert!(
        !log.lines()
            .any(|l| l.contains("session{") && l.contains("peer=127.0.0.2:")),
        "a session was started for a denied address:\n{log}"
    );
}

#[tokio::test]
async fn the_servers_allow_list_admits_only_its_addresses() {
    let server = ftpsd().start_with_config("[addresses]\nallow = [\"127.0.0.1/32\"]\n");
    let mark = server.log_all().len();
    for other in [[127, 0, 0, 2], [127, 0, 0, 3]] {
        let mut refused = connect_from(other, server.explicit).await;
        let got = read_until_closed(&mut refused).await;
        assert_eq!(
            String::from_utf8_lossy(&got),
            format!("{REFUSED_AT_CONNECT}\r\n")
        );
    }
    let pw = server.password.clone();
    let run = curl_explicit(&server, "ftps", &pw, "127.0.0.3", "/", &[]);
    assert_curl_refused(&run, REFUSED_AT_CONNECT, "curl from 127.0.0.3");
    let run = python(&server, "ftps", &pw, "127.0.0.2", &["login"]);
    assert_eq!(run.status.code(), Some(3), "ftplib from 127.0.0.2:\n{run}");
    assert!(run.stdout.contains(REFUSED_AT_CONNECT), "{run}");
    // The allowed address is served, by every client.
    curl_explicit(&server, "ftps", &pw, "127.0.0.1", "/", &[]).assert_ok("curl from 127.0.0.1");
    python(&server, "ftps", &pw, "127.0.0.1", &["login"]).assert_ok("ftplib from 127.0.0.1");
    let mut c = Control::login_default(&server).await;
    c.expect("NOOP", 200).await;
    wait_for_log(
        &server,
        mark,
        &[
            "connection refused by the address rules",
            "peer=127.0.0.3:",
            "rule=not in the allow list",
        ],
    )
    .await;
}

// ---- A user's address rules ----------------------------------------------------------------

#[tokio::test]
async fn a_users_address_rules_refuse_a_correct_login_with_530_and_count_no_failure() {
    // Three failures of a name or an address ban it: the refused logins below are more.
    let server = ftpsd().start_with_config(
        "[limits]\nlogin_failure_delay_ms = 20\nmax_login_failures_per_ip = 3\n\
         max_login_failures_per_user = 3\n",
    );
    let office = server.add_user("office", "office-pass-1", &[]);
    office.put("plan.txt", b"office plan");
    user_set(
        &server,
        "office",
        &["--allow-from", "127.0.0.0/8", "--deny-from", "127.0.0.2"],
    );
    let site = server.add_user("site", "site-pass-1", &[]);
    user_set(&server, "site", &["--allow-from", "127.0.0.1"]);
    let refused = "530 Login refused: logins as office are not allowed from your address.";
    let mark = server.log_all().len();

    // The right password from a denied address: 530, with curl and ftplib, again and again.
    for _ in 0..2 {
        let run = curl_explicit(&server, "office", "office-pass-1", "127.0.0.2", "/", &[]);
        assert_eq!(run.status.code(), Some(67), "curl: login denied:\n{run}");
        assert_curl_refused(&run, refused, "curl office from 127.0.0.2");
        let run = python(&server, "office", "office-pass-1", "127.0.0.2", &["login"]);
        assert_eq!(run.status.code(), Some(3), "{run}");
        assert_eq!(run.stdout.trim(), format!("refused: {refused}"), "{run}");
    }
    wait_for_log(
        &server,
        mark,
        &[
            "login refused: address not allowed for this user",
            "user=office",
            "address=127.0.0.2",
            "rule=deny 127.0.0.2",
        ],
    )
    .await;
    // Outside the allow list of another user.
    let run = python(&server, "site", "site-pass-1", "127.0.0.3", &["login"]);
    assert!(
        run.stdout.contains("530 Login refused: logins as site"),
        "{run}"
    );
    wait_for_log(&server, mark, &["user=site", "rule=not in the allow list"]).await;

    // From allowed addresses the same users log in, with both clients.
    let run = curl_explicit(
        &server,
        "office",
        "office-pass-1",
        "127.0.0.3",
        "/plan.txt",
        &[],
    );
    run.assert_ok("curl office from 127.0.0.3");
    assert_eq!(run.stdout, "office plan");
    let run = python(&server, "office", "office-pass-1", "127.0.0.1", &["login"]);
    run.assert_ok("ftplib office from 127.0.0.1");
    assert!(run.stdout.contains("plan.txt"), "{run}");
    python(&server, "site", "site-pass-1", "127.0.0.1", &["login"]).assert_ok("ftplib site");
    // The rules are read at each login: cleared, they let 127.0.0.3 in.
    user_set(&server, "site", &["--clear-addresses"]);
    python(&server, "site", "site-pass-1", "127.0.0.3", &["login"])
        .assert_ok("ftplib site from 127.0.0.3 after --clear-addresses");
    assert!(site.names("").is_empty());

    // Six refused logins counted nothing: the first wrong password is an ordinary failure,
    // and wrong passwords from the denied address still count as today: the third bans.
    let mark = server.log_all().len();
    for attempt in 1..=3 {
        let run = curl_explicit(&server, "office", "wrong-pass", "127.0.0.2", "/", &[]);
        assert!(!run.status.success(), "{run}");
        let line = wait_for_log(
            &server,
            mark,
            &[
                "login failed",
                "user=office",
                &format!("banned={}", attempt == 3),
            ],
        )
        .await;
        assert!(line.contains("127.0.0.2"), "{line}");
        if attempt < 3 {
            assert_curl_refused(&run, "530 Login incorrect.", "wrong password");
        } else {
            assert_curl_refused(&run, "421 Too many failed logins", "third wrong password");
        }
    }
}

#[tokio::test]
async fn a_certificate_login_from_a_refused_address_gets_530_not_232() {
    let ca = Ca::new("ftpsd policy CA");
    let server = ftpsd().start_with_config_and(
        "[tls]\nclient_certificates = \"optional\"\nclient_ca = \"client-ca.pem\"\n",
        |dir| std::fs::write(dir.join("client-ca.pem"), ca.pem()).expect("write CA"),
    );
    server.add_user("robot", "robot-password-unused-1", &[]);
    set_user_keys(
        &server,
        "robot",
        "login = \"certificate\"\ncertificate = { cn = \"robot\" }",
    );
    user_set(&server, "robot", &["--deny-from", "127.0.0.0/8"]);
    let cert = ca.client("robot", &[], 7);
    let mark = server.log_all().len();

    let mut c =
        Control::connect_with(server.explicit, cert.config(&server.fingerprint, Tls::Any)).await;
    c.auth_tls().await;
    let reply = c.expect("USER robot", 530).await;
    assert!(
        reply.text().contains("not allowed from your address"),
        "{reply}"
    );
    // Not logged in, and the connection stays usable.
    c.expect("PWD", 530).await;
    wait_for_log(
        &server,
        mark,
        &[
            "login refused: address not allowed",
            "user=robot",
            "rule=deny 127.0.0.0/8",
        ],
    )
    .await;
    // Once the rule goes, the same certificate logs in at USER.
    user_set(&server, "robot", &["--clear-addresses"]);
    c.expect("USER robot", 232).await;
    c.expect("PWD", 257).await;
}

/// Adds `keys` (TOML lines) to a user's table in the server's users file.
fn set_user_keys(server: &Server, name: &str, keys: &str) {
    let path = server.state_dir.join("users.toml");
    let text = std::fs::read_to_string(&path).expect("read users file");
    let header = format!("[users.{name}]\n");
    let at = text.find(&header).expect("the user's table") + header.len();
    let text = format!("{}{keys}\n{}", &text[..at], &text[at..]);
    pki::replace_file(&path, text.as_bytes());
}

// ---- A user's session limit ----------------------------------------------------------------

#[tokio::test]
async fn a_users_max_sessions_replaces_the_servers_limit() {
    let server = ftpsd().start_with_config("[limits]\nmax_sessions_per_user = 3\n");
    server.add_user("duo", "duo-pass-1", &[]);
    user_set(&server, "duo", &["--max-sessions", "2"]);
    assert!(user_show(&server, "duo").contains("max_sessions = 2"));
    let login = support::client::Login::new(&server, "duo", "duo-pass-1");
    let first = login.logged_in().await;
    let second = login.logged_in().await;
    // The third: the usual refusal, with the raw client and with ftplib.
    let mut third = Control::connect_auth(&server).await;
    third.expect("USER duo", 331).await;
    let reply = third.expect("PASS duo-pass-1", 421).await;
    assert!(
        reply.text().contains("Too many sessions for this user"),
        "{reply}"
    );
    third.expect_closed().await;
    let run = python(&server, "duo", "duo-pass-1", "127.0.0.1", &["login"]);
    assert_eq!(run.status.code(), Some(3), "{run}");
    assert!(
        run.stdout.contains("421 Too many sessions for this user"),
        "{run}"
    );
    // Another user keeps the server's limit.
    server.add_user("solo", "solo-pass-1", &[]);
    let solo = support::client::Login::new(&server, "solo", "solo-pass-1");
    let _solos = [
        solo.logged_in().await,
        solo.logged_in().await,
        solo.logged_in().await,
    ];
    // Cleared (0), the user has the server's limit again: a third session, not a fourth.
    user_set(&server, "duo", &["--max-sessions", "0"]);
    assert!(!user_show(&server, "duo").contains("max_sessions"));
    let mut third = login.logged_in().await;
    third.expect("NOOP", 200).await;
    let mut fourth = Control::connect_auth(&server).await;
    fourth.expect("USER duo", 331).await;
    fourth.expect("PASS duo-pass-1", 421).await;
    drop((first, second));
}

// ---- File size limits ----------------------------------------------------------------------

const MIB: usize = 1 << 20;

/// A user `limited` whose files may be at most 1 MiB (set with `ftpsd user set`).
fn limited_user(server: &Server) -> UserFiles {
    let files = server.add_user("limited", "limited-pass-1", &[]);
    user_set(server, "limited", &["--max-file-size", "1M"]);
    assert!(user_show(server, "limited").contains("max_file_size = \"1M\""));
    files
}

/// The 552 of an upload refused by a 1 MiB limit.
const TOO_LARGE: &str = "552 Exceeded storage allocation: files of this account may be at most \
                         1048576 bytes (1M); the upload was refused and the file left as it was.";

#[tokio::test]
async fn uploads_beyond_max_file_size_get_552_and_change_nothing_raw_client() {
    let server = ftpsd().start();
    let files = limited_user(&server);
    let near = support::content(1, MIB - 100);
    let huge = support::content(2, MIB + 5);
    let part = support::content(3, 1000);
    files.put("near.bin", &near);
    files.put("huge.bin", &huge);
    files.put("part.bin", &part);
    let mut c = Control::login(&server, "limited", "limited-pass-1").await;
    let assert_552 = |t: &support::client::Transfer, what: &str, transcript: &str| {
        let last = t.last.as_ref().unwrap_or(&t.first);
        assert_eq!(
            last.to_string().trim_end(),
            TOO_LARGE,
            "{what}\n{transcript}"
        );
    };

    // STOR: exactly the limit works; one byte more, onto an existing file or a new name,
    // is refused while the bytes arrive (after 150), and leaves nothing.
    let exact = support::content(4, MIB);
    c.stor("exact.bin", &exact).await;
    let t = c
        .transfer("STOR exact.bin", Some(&support::content(5, MIB + 1)))
        .await;
    assert!(t.first.code.is_preliminary(), "{t:?}");
    assert_552(&t, "STOR over an existing file", &c.transcript);
    assert_eq!(files.read("exact.bin"), exact, "the existing file changed");
    let t = c
        .transfer("STOR new.bin", Some(&support::content(6, 3 * MIB)))
        .await;
    assert_552(&t, "STOR of a new file", &c.transcript);
    assert!(!files.exists("new.bin"), "a refused STOR left a file");

    // APPE: past the limit refused, and the file is as it was; up to it, appended.
    let t = c.transfer("APPE near.bin", Some(&[7u8; 101])).await;
    assert_552(&t, "APPE by 101 bytes", &c.transcript);
    assert_eq!(files.read("near.bin"), near);
    let t = c.transfer("APPE near.bin", Some(&[7u8; 100])).await;
    c.assert_transfer_ok(&t, "APPE up to the limit");
    let mut appended = near.clone();
    appended.extend_from_slice(&[7u8; 100]);
    assert_eq!(files.read("near.bin"), appended);
    // A file already past the limit: refused before the data connection (no 150).
    let t = c.transfer("APPE huge.bin", Some(b"x")).await;
    assert_eq!(
        t.first.to_string().trim_end(),
        TOO_LARGE,
        "{}",
        c.transcript
    );
    assert_eq!(files.read("huge.bin"), huge);

    // REST + STOR: resuming past the limit is refused and changes nothing; within it works.
    c.expect("REST 1000", 350).await;
    let t = c
        .transfer("STOR part.bin", Some(&support::content(8, MIB)))
        .await;
    assert_552(&t, "REST 1000 + STOR of 1 MiB", &c.transcript);
    assert_eq!(files.read("part.bin"), part);
    c.expect("REST 1000", 350).await;
    let t = c.transfer("STOR part.bin", Some(&[9u8; 500])).await;
    c.assert_transfer_ok(&t, "REST 1000 + STOR of 500 bytes");
    let mut resumed = part.clone();
    resumed.extend_from_slice(&[9u8; 500]);
    assert_eq!(files.read("part.bin"), resumed);
    // An offset already past the limit: refused at once.
    c.expect(&format!("REST {}", MIB + 1), 350).await;
    let t = c.transfer("STOR huge.bin", Some(b"x")).await;
    assert_eq!(
        t.first.to_string().trim_end(),
        TOO_LARGE,
        "{}",
        c.transcript
    );
    assert_eq!(files.read("huge.bin"), huge);

    // STOU: a refused upload leaves no file under its new name.
    let t = c
        .transfer("STOU", Some(&support::content(10, 2 * MIB)))
        .await;
    assert!(t.first.text().contains("FILE: "), "{t:?}");
    assert_552(&t, "STOU", &c.transcript);

    // Nothing partial anywhere (no temporary file either), and the session goes on.
    assert_eq!(
        files.names(""),
        ["exact.bin", "huge.bin", "near.bin", "part.bin"]
    );
    c.expect("NOOP", 200).await;
    c.stor("after.bin", b"still working").await;
    assert_eq!(files.read("after.bin"), b"still working");
    let mut other = Control::login_default(&server).await;
    other
        .stor("big-for-ftps.bin", &support::content(11, 2 * MIB))
        .await;
}

#[test]
fn uploads_beyond_max_file_size_get_552_and_change_nothing_curl() {
    let server = ftpsd().start();
    let files = limited_user(&server);
    let local = server.scratch("local");
    let write = |name: &str, data: &[u8]| {
        let path = local.join(name);
        std::fs::write(&path, data).expect("write local file");
        path.display().to_string()
    };
    let kept = support::content(1, MIB / 2);
    files.put("kept.bin", &kept);
    let over = write("over.bin", &support::content(2, 2 * MIB));
    let half = write("half.bin", &support::content(3, MIB / 2 + 1));
    let fits = write("fits.bin", &support::content(4, MIB));
    let curl = |path: &str, args: &[&str]| {
        curl_explicit(
            &server,
            "limited",
            "limited-pass-1",
            "127.0.0.1",
            path,
            args,
        )
    };

    // STOR of a new file and over an existing one: curl reports the 552 (exit 70).
    for name in ["new.bin", "kept.bin"] {
        let run = curl(&format!("/{name}"), &["--upload-file", &over]);
        assert_eq!(run.status.code(), Some(70), "curl STOR {name}:\n{run}");
        assert_curl_refused(&run, TOO_LARGE, "curl STOR");
    }
    assert!(!files.exists("new.bin"));
    assert_eq!(files.read("kept.bin"), kept);
    // APPE (--append) past the limit: refused, the file as it was.
    let run = curl("/kept.bin", &["--append", "--upload-file", &half]);
    assert_curl_refused(&run, TOO_LARGE, "curl APPE");
    assert_eq!(files.read("kept.bin"), kept);
    // Within the limit both work.
    curl("/fits.bin", &["--upload-file", &fits]).assert_ok("curl STOR of 1 MiB");
    assert_eq!(files.read("fits.bin"), support::content(4, MIB));
    let small = write("small.bin", b"0123456789");
    curl("/kept.bin", &["--append", "--upload-file", &small]).assert_ok("curl APPE");
    let mut appended = kept.clone();
    appended.extend_from_slice(b"0123456789");
    assert_eq!(files.read("kept.bin"), appended);
    assert_eq!(files.names(""), ["fits.bin", "kept.bin"]);
}

#[test]
fn uploads_beyond_max_file_size_get_552_and_change_nothing_ftplib() {
    let server = ftpsd().start();
    let files = limited_user(&server);
    let base = support::content(1, 1000);
    files.put("base.bin", &base);
    files.put("log.bin", &base);
    let mib = MIB.to_string();
    let over = (MIB + 1).to_string();
    // One session: each refusal is answered and the next upload runs.
    let specs = [
        format!("STOR:big.bin:{}", 3 * MIB),
        format!("STOR:base.bin:{over}"),
        format!("APPE:log.bin:{}", MIB - 999),
        format!("STOR:base.bin:{mib}:1000"),
        format!("STOU::{over}"),
        format!("STOR:fits.bin:{mib}"),
        format!("APPE:log.bin:{}", MIB - 1000),
        "STOR:base.bin:24:1000".to_string(),
    ];
    let args: Vec<&str> = std::iter::once("uploads")
        .chain(specs.iter().map(String::as_str))
        .collect();
    let run = python(&server, "limited", "limited-pass-1", "127.0.0.1", &args);
    run.assert_ok("ftplib uploads");
    let replies: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(replies.len(), specs.len(), "{run}");
    for (i, reply) in replies.iter().enumerate() {
        let expected = if i < 5 { "552 " } else { "226 " };
        assert!(
            reply.contains(&format!("-> {expected}")),
            "{}: {reply}\n{run}",
            specs[i]
        );
    }
    assert!(replies[0].ends_with(TOO_LARGE), "{run}");
    // The refused ones changed nothing; the others did what they say.
    assert!(!files.exists("big.bin"));
    assert_eq!(files.read("fits.bin"), vec![b'a' + 5; MIB]);
    let mut log = base.clone();
    log.extend(vec![b'a' + 6; MIB - 1000]);
    assert_eq!(files.read("log.bin"), log);
    let mut resumed = base.clone();
    resumed.extend(vec![b'a' + 7; 24]);
    assert_eq!(files.read("base.bin"), resumed);
    assert_eq!(files.names(""), ["base.bin", "fits.bin", "log.bin"]);
}

#[tokio::test]
async fn the_servers_max_file_size_applies_to_users_without_their_own() {
    let server = ftpsd().start_with_config("[limits]\nmax_file_size = \"64K\"\n");
    let files = server.files();
    let mut c = Control::login_default(&server).await;
    c.stor("fits.bin", &support::content(1, 64 << 10)).await;
    let t = c
        .transfer("STOR over.bin", Some(&support::content(2, (64 << 10) + 1)))
        .await;
    let last = t.last.as_ref().unwrap_or(&t.first);
    assert_eq!(last.code.0, 552, "{}", c.transcript);
    assert!(last.text().contains("at most 65536 bytes (64K)"), "{last}");
    assert_eq!(files.names(""), ["fits.bin"]);
    // A user's own limit replaces the server's, up or down.
    let big = server.add_user("big", "big-pass-1", &[]);
    user_set(&server, "big", &["--max-file-size", "1M"]);
    let mut b = Control::login(&server, "big", "big-pass-1").await;
    b.stor("large.bin", &support::content(3, 512 << 10)).await;
    assert_eq!(big.read("large.bin").len(), 512 << 10);
}

// ---- The command line --------------------------------------------------------------------

#[test]
fn user_set_and_show_the_rules_and_limits_and_refuse_bad_entries() {
    let server = ftpsd().start();
    server.add_user("eve", "eve-pass-1", &[]);
    user_set(
        &server,
        "eve",
        &[
            "--allow-from",
            "192.0.2.0/24",
            "--allow-from",
            "2001:db8::/32",
            "--deny-from",
            "192.0.2.66",
            "--max-sessions",
            "4",
            "--max-file-size",
            "10M",
        ],
    );
    let shown = user_show(&server, "eve");
    for line in [
        "[users.eve.limits]",
        "max_sessions = 4",
        "max_file_size = \"10M\"",
        "[users.eve.addresses]",
        "allow = [\"192.0.2.0/24\", \"2001:db8::/32\"]",
        "deny = [\"192.0.2.66\"]",
    ] {
        assert!(shown.lines().any(|l| l == line), "no {line:?} in:\n{shown}");
    }
    // A flag replaces its list and keeps the other.
    user_set(&server, "eve", &["--deny-from", "192.0.2.67"]);
    let shown = user_show(&server, "eve");
    assert!(
        shown.contains("deny = [\"192.0.2.67\"]") && shown.contains("2001:db8::/32"),
        "{shown}"
    );
    // Bad values are refused, naming them, and the file is not changed.
    let users = std::fs::read_to_string(server.state_dir.join("users.toml")).unwrap();
    let state = server.state_dir.display().to_string();
    for (flag, value, message) in [
        ("--allow-from", "10.0.0.1/8", "did you mean 10.0.0.0/8"),
        ("--deny-from", "example.com", "\"example.com\""),
        ("--max-file-size", "2X", "\"2X\""),
    ] {
        let out = server.ftpsd(
            &["user", "set", "eve", "--state-dir", &state, flag, value],
            "",
        );
        assert!(!out.status.success(), "{flag} {value} accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{flag} {value}: {stderr}");
    }
    assert_eq!(
        std::fs::read_to_string(server.state_dir.join("users.toml")).unwrap(),
        users
    );
    // Cleared: the tables go.
    user_set(
        &server,
        "eve",
        &[
            "--clear-addresses",
            "--max-sessions",
            "0",
            "--max-file-size",
            "0",
        ],
    );
    let shown = user_show(&server, "eve");
    assert!(
        !shown.contains("limits") && !shown.contains("addresses"),
        "{shown}"
    );

    // A bad entry written by hand is a load error that names it.
    set_user_keys(&server, "eve", "addresses = { allow = [\"300.1.2.3\"] }");
    let out = server.ftpsd(&["user", "list", "--state-dir", &state], "");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("\"300.1.2.3\""), "{stderr}");
    // So is one in the configuration: the server does not start.
    let config = server.scratch("bad").join("ftpsd.toml");
    std::fs::write(&config, "[addresses]\ndeny = [\"10.0.0.0/40\"]\n").unwrap();
    let mut start = Command::new(support::FTPSD);
    start.arg("--config").arg(&config);
    let run = support::run_client(&mut start, Duration::from_secs(60));
    assert!(!run.status.success(), "{run}");
    assert!(run.stderr.contains("\"10.0.0.0/40\""), "{run}");
}

/// The fenced block of `language` that comes first after `heading` in `text`.
fn block_after<'a>(text: &'a str, heading: &str, language: &str) -> &'a str {
    let start = text
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?} in docs/users.md"));
    let fence = format!("```{language}\n");
    let body = &text[start..];
    let open = body.find(&fence).expect("a fenced block") + fence.len();
    let len = body[open..].find("```").expect("the block's end");
    &body[open..open + len]
}

#[test]
fn the_complete_user_of_users_md_loads_and_is_what_its_commands_make() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/users.md"))
        .expect("docs/users.md");
    let dir = support::tempdir();
    let root = dir.path().join("partner");
    let root = root.display().to_string();
    let toml = block_after(&doc, "## A complete user", "toml").replace("/srv/ftp/partner", &root);
    let documented = dir.path().join("documented.toml");
    std::fs::write(&documented, &toml).expect("write the documented users file");
    let db = ftps_server::users::UserDb::load(&documented)
        .unwrap_or_else(|e| panic!("the complete user does not load: {e}"));
    let entry = db.get("partner").expect("user partner");
    assert_eq!(entry.limits.max_sessions, Some(4));
    assert_eq!(entry.limits.max_file_size, Some(2 << 30));
    assert!(entry.addresses.check("192.0.2.1".parse().unwrap()).is_ok());
    assert!(entry
        .addresses
        .check("192.0.2.66".parse().unwrap())
        .is_err());
    assert_eq!(entry.quota.bytes, Some(50 << 30));
    assert_eq!(entry.quota.files, Some(200_000));
    let folders: Vec<_> = entry.folders.iter().map(|(at, f)| (at, f.access)).collect();
    assert_eq!(
        folders,
        [("/shared", Some(ftps_server::policy::Access::ReadOnly))]
    );

    // The commands below it, on a users file of their own.
    let made = dir.path().join("made.toml").display().to_string();
    let script = block_after(&doc, "The same with the command line", "sh").replace("\\\n", " ");
    for line in script.lines() {
        let line = line.replace("/srv/ftp/partner", &root);
        let mut words = line.split_whitespace();
        assert_eq!(words.next(), Some("ftpsd"), "{line}");
        let mut cmd = Command::new(support::FTPSD);
        cmd.args(words).args(["--users", &made]);
        let run = support::run_client(&mut cmd, Duration::from_secs(60));
        run.assert_ok(&line);
    }
    let made = ftps_server::users::UserDb::load(std::path::Path::new(&made)).expect("made file");
    let shown = |entry| ftps_server::users::show_entry("partner", entry).expect("show");
    assert_eq!(
        shown(made.get("partner").expect("partner made")),
        shown(entry),
        "the commands of docs/users.md do not make its complete user"
    );
}

#[tokio::test]
async fn a_limited_append_needs_no_download_permission() {
    // The limit sits below the permissions: copying the kept bytes is part of the APPE.
    let server = ftpsd().start();
    let files = server.add_user("dropper", "dropper-pass-1", &[]);
    user_set(
        &server,
        "dropper",
        &[
            "--permission",
            "/incoming=upload,overwrite",
            "--max-file-size",
            "1K",
        ],
    );
    files.mkdir("incoming");
    files.put("incoming/log", b"0123456789");
    let mut c = Control::login(&server, "dropper", "dropper-pass-1").await;
    let t = c.transfer("RETR incoming/log", None).await;
    assert_eq!(t.code(), 550, "downloads are not allowed: {t:?}");
    let t = c.transfer("APPE incoming/log", Some(b"abcdef")).await;
    c.assert_transfer_ok(&t, "APPE within the limit");
    assert_eq!(files.read("incoming/log"), b"0123456789abcdef");
    let t = c.transfer("APPE incoming/log", Some(&[b'x'; 1024])).await;
    assert_eq!(t.code(), 552, "{}", c.transcript);
    assert_eq!(files.read("incoming/log"), b"0123456789abcdef");
    assert_eq!(files.names("incoming"), ["log"]);
}
