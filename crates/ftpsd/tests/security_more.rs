//! More of docs/security.md: client certificates (§6), strict session reuse over a long TLS
//! 1.3 session (§3), certificate reload under live sessions (§9), CCC and CDC (§1),
//! per-listener policies, secrets in logs (§11) and the global session limit (§8).

mod support;

use std::fs;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ftps_testkit::storage::UserFiles;
use rustls::{ClientConfig, HandshakeKind};
use support::client::{client_config, Control, Tls};
use support::pki::{self, Ca, ClientCert};
use support::{ftpsd, Server};

/// Adds `keys` (TOML lines such as `login = "certificate"`) to a user's table in the
/// server's users file; the server re-reads the file at the next login.
fn set_user_keys(server: &Server, name: &str, keys: &str) {
    let path = server.state_dir.join("users.toml");
    let text = fs::read_to_string(&path).expect("read users file");
    let header = format!("[users.{name}]\n");
    let at = text
        .find(&header)
        .unwrap_or_else(|| panic!("no {header:?} in the users file:\n{text}"))
        + header.len();
    let text = format!("{}{keys}\n{}", &text[..at], &text[at..]);
    pki::replace_file(&path, text.as_bytes());
}

/// Adds the user `robot` (whose password is never used) with `keys` in its table of the
/// users file; returns its root.
fn add_robot(server: &Server, keys: &str) -> UserFiles {
    let root = server.add_user("robot", "robot-password-unused-1", &[]);
    set_user_keys(server, "robot", keys);
    root
}

/// A server checking client certificates against `ca` in `mode`, with a CRL revoking
/// `revoked`, and short failed-login delays.
fn cert_server(mode: &str, ca: &Ca, revoked: &[&ClientCert]) -> Server {
    let (ca_pem, crl_pem) = (ca.pem(), ca.crl(revoked));
    ftpsd().start_with_config_and(
        &format!(
            "[tls]\nclient_certificates = \"{mode}\"\nclient_ca = \"client-ca.pem\"\n\
             client_crls = [\"client-crl.pem\"]\n\n[limits]\nlogin_failure_delay_ms = 20\n"
        ),
        |dir| {
            fs::write(dir.join("client-ca.pem"), ca_pem).expect("write CA");
            fs::write(dir.join("client-crl.pem"), crl_pem).expect("write CRL");
        },
    )
}

/// Explicit FTPS connection and AUTH TLS with the given client configuration.
async fn connect_tls(server: &Server, tls: Arc<ClientConfig>) -> Control {
    let mut c = Control::connect_with(server.explicit, tls).await;
    c.auth_tls().await;
    c
}

/// USER (expecting 331) and PASS (expecting `code`) on a new connection with `tls`.
async fn password_login(
    server: &Server,
    tls: Arc<ClientConfig>,
    user: &str,
    password: &str,
    code: u16,
) -> Control {
    let mut c = connect_tls(server, tls).await;
    c.expect(&format!("USER {user}"), 331).await;
    c.expect(&format!("PASS {password}"), code).await;
    c
}

/// The part of the server log written since `mark` (a length of [`Server::log_all`]).
fn log_since(server: &Server, mark: usize) -> String {
    server.log_all().get(mark..).unwrap_or_default().to_string()
}

/// Waits until a log line written since `mark` contains `needle`; returns that line.
async fn wait_for_log_line(server: &Server, mark: usize, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let log = log_since(server, mark);
        if let Some(line) = log.lines().find(|l| l.contains(needle)) {
            return line.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no log line with {needle:?}\n{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asserts that a control connection with `tls` does not get past the TLS handshake: the
/// handshake fails, or (TLS 1.3, where the client finishes first) the server closes
/// without answering a command. Returns the server's log line for it.
async fn assert_refused_at_handshake(
    server: &Server,
    tls: Arc<ClientConfig>,
    what: &str,
) -> String {
    let mark = server.log_all().len();
    let mut c = Control::connect_with(server.explicit, tls).await;
    c.expect("AUTH TLS", 234).await;
    if c.start_tls().await.is_ok() {
        let _ = c.try_send_line("USER ftps").await;
        let replies = c.expect_closed().await;
        assert!(
            replies.is_empty(),
            "{what}: the server answered after the handshake: {replies:?}\n{}",
            c.transcript
        );
    }
    wait_for_log_line(server, mark, "handshake failed").await
}

// ---- Client certificates (security.md §6, users.md) ------------------------------------

#[tokio::test]
async fn certificate_login_is_232_and_data_connections_carry_the_certificate() {
    let ca = Ca::new("ftpsd test CA");
    let server = cert_server("optional", &ca, &[]);
    // Optional reuse, so that the certificate check on data connections is what refuses.
    let root = add_robot(
        &server,
        "login = \"certificate\"\ncertificate = { cn = \"backup-robot\" }\n\
         data_session_reuse = \"optional\"",
    );
    root.put("f", b"for the robot");
    let cert = ca.client("backup-robot", &[], 10);
    let other = ca.client("backup-robot", &[], 11);

    let mut c = connect_tls(&server, cert.config(&server.fingerprint, Tls::Any)).await;
    let reply = c.expect("USER robot", 232).await;
    assert!(reply.text().contains("robot"), "{reply}");
    // Logged in without PASS: commands work.
    c.expect("PWD", 257).await;
    c.protect().await;
    // The transfers resume the control session (asserted by retr/stor/listing), and so
    // present the same certificate.
    assert_eq!(c.retr("f").await, b"for the robot");
    c.stor("up", b"uploaded with a certificate").await;
    assert_eq!(root.read("up"), b"uploaded with a certificate");
    let names = c.listing("NLST").await;
    assert!(names.contains("up"), "{names}");
    // A data connection with the same certificate that does not resume (a fresh
    // client session cache) is accepted under optional reuse...
    let t = c
        .transfer_with(
            "RETR f",
            None,
            Some(cert.config(&server.fingerprint, Tls::Any)),
        )
        .await;
    assert_eq!(t.code(), 226, "{t:?}\n{}", c.transcript);
    assert_eq!(t.handshake, Some(HandshakeKind::Full));
    assert_eq!(t.data, b"for the robot");
    // ...but one with another certificate (same CN, same CA) or none is refused.
    let t = c
        .transfer_with(
            "RETR f",
            None,
            Some(other.config(&server.fingerprint, Tls::Any)),
        )
        .await;
    assert_eq!(t.code(), 425, "other certificate: {t:?}\n{}", c.transcript);
    assert!(t.data.is_empty(), "data sent to another certificate");
    let t = c
        .transfer_with(
            "RETR f",
            None,
            Some(client_config(&server.fingerprint, Tls::Any)),
        )
        .await;
    assert_eq!(t.code(), 425, "no certificate: {t:?}\n{}", c.transcript);
    assert!(t.data.is_empty(), "data sent without a certificate");
    // The session goes on.
    assert_eq!(c.retr("f").await, b"for the robot");

    // Without a certificate, USER asks for a password, which never suffices.
    let _c = password_login(
        &server,
        client_config(&server.fingerprint, Tls::Any),
        "robot",
        "robot-password-unused-1",
        530,
    )
    .await;
}

#[tokio::test]
async fn certificate_and_password_needs_both() {
    let ca = Ca::new("ftpsd test CA");
    let server = cert_server("optional", &ca, &[]);
    server.add_user("bob", "bob-password-1", &[]);
    set_user_keys(
        &server,
        "bob",
        "login = \"certificate-and-password\"\ncertificate = { cn = \"bob\" }",
    );
    let bob = ca.client("bob", &[], 20);
    let mallory = ca.client("mallory", &[], 21);

    let fp = &server.fingerprint;
    let server = &server;
    let login =
        move |tls, password: &'static str, code| password_login(server, tls, "bob", password, code);

    // Right certificate: USER asks for the password (no 232), the password logs in.
    let mut c = login(bob.config(fp, Tls::Any), "bob-password-1", 230).await;
    c.expect("PWD", 257).await;
    // Right certificate, wrong password.
    let _c = login(bob.config(fp, Tls::Any), "wrong-password", 530).await;
    // Right password, no certificate (optional mode lets the handshake through).
    let _c = login(client_config(fp, Tls::Any), "bob-password-1", 530).await;
    // Right password, a valid certificate with another CN.
    let _c = login(mallory.config(fp, Tls::Any), "bob-password-1", 530).await;
    // And bob still gets in afterwards (the cached password check keeps the rules).
    let _c = login(bob.config(fp, Tls::Any), "bob-password-1", 230).await;
    let _c = login(client_config(fp, Tls::Any), "bob-password-1", 530).await;
}

#[tokio::test]
async fn certificate_names_match_exactly() {
    let ca = Ca::new("ftpsd test CA");
    let server = cert_server("optional", &ca, &[]);
    let by_fp = ca.client("fingerprinted", &[], 32);
    let same_cn = ca.client("fingerprinted", &[], 33);
    for (user, keys) in [
        ("alice", "certificate = { cn = \"alice\" }".to_string()),
        (
            "carol",
            "certificate = { san = \"carol@example.com\" }".to_string(),
        ),
        (
            "fpuser",
            format!("certificate = {{ sha256 = \"{}\" }}", by_fp.fingerprint()),
        ),
    ] {
        server.add_user(user, &format!("{user}-password-1"), &[]);
        set_user_keys(&server, user, &format!("login = \"certificate\"\n{keys}"));
    }
    let fp = server.fingerprint.clone();
    let user_with = |cert: &ClientCert, user: &str| {
        let (tls, line) = (cert.config(&fp, Tls::Any), format!("USER {user}"));
        let server = &server;
        async move {
            let mut c = connect_tls(server, tls).await;
            let reply = c.cmd(&line).await;
            (reply.code.0, c)
        }
    };

    // CN: exact only.
    let (code, _) = user_with(&ca.client("alice", &[], 30), "alice").await;
    assert_eq!(code, 232, "CN alice as alice");
    for cn in ["alice.evil", "evil.alice", "alicex", "Alice", "ali"] {
        let (code, mut c) = user_with(&ca.client(cn, &[], 31), "alice").await;
        assert_eq!(code, 331, "a certificate with CN {cn:?} logged in as alice");
        c.expect("PASS alice-password-1", 530).await;
    }
    // SAN (e-mail): exact only.
    let (code, _) = user_with(&ca.client("someone", &["carol@example.com"], 34), "carol").await;
    assert_eq!(code, 232, "SAN carol@example.com as carol");
    for san in [
        "carol@example.com.evil",
        "xcarol@example.com",
        "carol@example.co",
    ] {
        let (code, _) = user_with(&ca.client("someone", &[san], 35), "carol").await;
        assert_eq!(
            code, 331,
            "a certificate with SAN {san:?} logged in as carol"
        );
    }
    // A CN equal to the SAN is not the SAN.
    let (code, _) = user_with(&ca.client("carol@example.com", &[], 36), "carol").await;
    assert_eq!(code, 331, "CN carol@example.com logged in by SAN");
    // SHA-256: this certificate, not another with the same names.
    let (code, _) = user_with(&by_fp, "fpuser").await;
    assert_eq!(code, 232, "fingerprint mapping");
    let (code, _) = user_with(&same_cn, "fpuser").await;
    assert_eq!(code, 331, "another certificate with the same CN as fpuser");
    // A certificate never logs in as another certificate user.
    let (code, _) = user_with(&by_fp, "alice").await;
    assert_eq!(code, 331, "fpuser's certificate as alice");
}

#[tokio::test]
async fn required_mode_refuses_bad_certificates_at_the_handshake() {
    let ca = Ca::new("ftpsd test CA");
    let stranger_ca = Ca::new("some other CA");
    let good = ca.client("robot", &[], 40);
    let revoked = ca.client("robot", &[], 41);
    let expired = ca.expired_client("robot", 42);
    let foreign = stranger_ca.client("robot", &[], 40);
    let server = cert_server("required", &ca, &[&revoked]);
    add_robot(
        &server,
        "login = \"certificate\"\ncertificate = { cn = \"robot\" }",
    );
    let fp = server.fingerprint.clone();

    let cases: [(&str, Arc<ClientConfig>, &[&str]); 4] = [
        (
            "no certificate",
            client_config(&fp, Tls::Any),
            &["no certificate", "nocertificatespresented"],
        ),
        (
            "certificate from an unknown CA",
            foreign.config(&fp, Tls::Any),
            &["unknown issuer", "unknownissuer"],
        ),
        (
            "expired certificate",
            expired.config(&fp, Tls::Any),
            &["expired"],
        ),
        (
            "revoked certificate",
            revoked.config(&fp, Tls::Any),
            &["revoked"],
        ),
    ];
    for (what, tls, reasons) in cases {
        let line = assert_refused_at_handshake(&server, tls, what).await;
        let lower = line.to_ascii_lowercase();
        assert!(
            reasons.iter().any(|r| lower.contains(r)),
            "{what}: the log line does not give the reason ({reasons:?}): {line}"
        );
        // The server goes on serving good clients.
        let mut c = connect_tls(&server, good.config(&fp, Tls::Any)).await;
        c.expect("USER robot", 232).await;
    }
    // TLS 1.2 too: the refusal happens inside the handshake.
    for (what, cert) in [
        ("expired, TLS 1.2", &expired),
        ("revoked, TLS 1.2", &revoked),
    ] {
        let mut c = Control::connect_with(server.explicit, cert.config(&fp, Tls::V12)).await;
        c.expect("AUTH TLS", 234).await;
        assert!(c.start_tls().await.is_err(), "{what}: handshake completed");
    }
    // A password user with a good certificate logs in by password; the data channel works.
    server.put("f", b"required mode");
    let mut c = connect_tls(&server, good.config(&fp, Tls::Any)).await;
    c.user_pass("ftps", &server.password).await;
    c.protect().await;
    assert_eq!(c.retr("f").await, b"required mode");
    // Implicit FTPS is refused too without a certificate.
    let mut tcp = tokio::net::TcpStream::connect(server.implicit)
        .await
        .unwrap();
    let tls = tokio_rustls::TlsConnector::from(client_config(&fp, Tls::Any));
    if let Ok(mut s) = tls
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            &mut tcp,
        )
        .await
    {
        let got = support::client::read_all(&mut s).await.unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&got).starts_with("220"),
            "implicit FTPS served a client without a certificate"
        );
    }
}

#[tokio::test]
async fn optional_mode_password_users_log_in_without_a_certificate() {
    let ca = Ca::new("ftpsd test CA");
    let server = cert_server("optional", &ca, &[]);
    server.put("f", b"no certificate needed");
    let mut c = Control::login_default(&server).await;
    assert_eq!(c.retr("f").await, b"no certificate needed");
    c.stor("g", b"uploaded").await;
    // With a certificate that names nobody, a password user still logs in by password.
    let cert = ca.client("nobody-in-particular", &[], 50);
    let mut c = connect_tls(&server, cert.config(&server.fingerprint, Tls::Any)).await;
    c.user_pass("ftps", &server.password).await;
    c.protect().await;
    assert_eq!(c.retr("g").await, b"uploaded");
}

// ---- Session reuse over a long TLS 1.3 session (§3) ------------------------------------

#[tokio::test]
async fn two_hundred_transfers_over_one_tls13_control_session() {
    let server = ftpsd().start_with_config("[tls]\ndata_session_reuse = \"required\"\n");
    let download: Vec<u8> = (0..50_000u32).map(|i| (i % 253) as u8).collect();
    server.put("down", &download);
    let mut c = Control::login_with(&server, client_config(&server.fingerprint, Tls::V13)).await;
    // Uploads get no tickets, downloads and listings two each: alternate them.
    for i in 0..200u32 {
        match i % 4 {
            0 | 2 => {
                let content = format!("upload number {i}").repeat(i as usize % 7 + 1);
                c.stor(&format!("up{i}"), content.as_bytes()).await;
            }
            1 => assert_eq!(c.retr("down").await, download, "download {i}"),
            _ => {
                let names = c.listing("NLST").await;
                assert!(names.contains("down"), "listing {i}: {names}");
            }
        }
    }
    // Every transfer ended with 226 and resumed (checked by stor/retr/listing).
    let done = c
        .transcript
        .lines()
        .filter(|l| l.starts_with("< 226"))
        .count();
    assert_eq!(done, 200, "226 replies");
    for i in (0..200u32).filter(|i| i % 2 == 0) {
        let content = format!("upload number {i}").repeat(i as usize % 7 + 1);
        assert_eq!(
            server.files().read(&format!("up{i}")),
            content.as_bytes(),
            "upload {i}"
        );
    }
    c.expect("NOOP", 200).await;
}

// ---- Certificate reload (§9) ------------------------------------------------------------

/// Waits until a new connection is served the certificate `fingerprint`.
async fn wait_until_served(server: &Server, fingerprint: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut c =
            Control::connect_with(server.explicit, client_config(fingerprint, Tls::Any)).await;
        c.expect("AUTH TLS", 234).await;
        if c.start_tls().await.is_ok() {
            c.user_pass("ftps", &server.password).await;
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate {fingerprint} is not served\n{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Whether a new connection is served the certificate `fingerprint`.
async fn serves(server: &Server, fingerprint: &str) -> bool {
    let mut c = Control::connect_with(server.explicit, client_config(fingerprint, Tls::Any)).await;
    c.expect("AUTH TLS", 234).await;
    c.start_tls().await.is_ok()
}

#[tokio::test]
async fn certificate_reload_under_a_live_session() {
    let server = ftpsd().start_with_config("[tls]\nreload_check_seconds = 1\n");
    server.put("f", b"before and after");
    let (cert, key) = (
        server.state_dir.join("cert.pem"),
        server.state_dir.join("key.pem"),
    );
    let mut session = Control::login_default(&server).await;
    assert_eq!(session.retr("f").await, b"before and after");

    // A renewed certificate (file change) is served to new connections...
    let renewed = pki::write_server_cert(&cert, &key);
    wait_until_served(&server, &renewed).await;
    assert!(
        !serves(&server, &server.fingerprint).await,
        "the old certificate is still served"
    );
    // ...while the session started before goes on, transfers included.
    session.expect("NOOP", 200).await;
    assert_eq!(session.retr("f").await, b"before and after");
    session.stor("during", b"uploaded after the reload").await;

    // A broken certificate file is refused and logged; the renewed one stays.
    let mark = server.log_all().len();
    pki::replace_file(
        &cert,
        b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
    );
    let line = wait_for_log_line(&server, mark, "certificate reload failed").await;
    assert!(
        line.contains("keeping the current one") && line.contains("cert.pem"),
        "unclear log line: {line}"
    );
    assert!(serves(&server, &renewed).await, "renewed certificate lost");
    assert_eq!(session.retr("during").await, b"uploaded after the reload");

    // A certificate whose key does not match, through SIGHUP: refused as well.
    let elsewhere = server.scratch("other-cert");
    let other = pki::write_server_cert(&elsewhere.join("cert.pem"), &elsewhere.join("key.pem"));
    pki::replace_file(&cert, &fs::read(elsewhere.join("cert.pem")).unwrap());
    let line = wait_for_log_line(&server, mark, "does not match").await;
    assert!(line.contains("keeping the current one"), "{line}");
    let mark = server.log_all().len();
    server.signal("HUP");
    let line = wait_for_log_line(&server, mark, "certificate reload failed").await;
    assert!(line.contains("does not match"), "{line}");
    assert!(serves(&server, &renewed).await, "renewed certificate lost");
    assert!(
        !serves(&server, &other).await,
        "mismatched certificate served"
    );
    // The session survived all of it.
    session.stor("end", b"still here").await;
    assert_eq!(session.retr("end").await, b"still here");
    let log = server.log_all();
    assert!(!log.contains("panicked"), "{}", server.log_text());
}

// ---- CCC and CDC (§1) -------------------------------------------------------------------

/// The client's side of CCC after the 200: the close_notify exchange. The first plaintext
/// command may follow at once (even in the same segment:
/// `ccc_command_in_the_same_packet_as_the_close_notify`).
async fn end_tls_after_ccc(c: &mut Control) {
    c.end_tls().await.expect("close_notify exchange after CCC");
    assert!(!c.is_tls());
}

#[tokio::test]
async fn ccc_when_allowed_continues_in_plaintext() {
    let server = ftpsd().start_with_config("[tls]\nallow_ccc = true\n");
    server.put("f", b"data still private");
    let mut c = Control::login_default(&server).await;
    c.expect("CCC", 200).await;
    end_tls_after_ccc(&mut c).await;
    c.expect("NOOP", 200).await;
    c.expect("PWD", 257).await;
    // PROT P is still in force: the data connection still uses (and resumes) TLS.
    assert_eq!(c.retr("f").await, b"data still private");
    c.expect("QUIT", 221).await;
}

#[tokio::test]
async fn ccc_with_pipelined_commands_is_refused() {
    let server = ftpsd().start_with_config("[tls]\nallow_ccc = true\n");
    let mut c = Control::login_default(&server).await;
    c.send_raw(b"CCC\r\nNOOP\r\n").await;
    let replies = c.expect_closed().await;
    let codes: Vec<u16> = replies.iter().map(|r| r.code.0).collect();
    assert_eq!(codes, [503], "{}", c.transcript);
    // The server is fine.
    let mut c = Control::login_default(&server).await;
    c.expect("NOOP", 200).await;
}

#[tokio::test]
async fn cdc_is_prot_c() {
    let server = ftpsd().start();
    server.put("f", b"x");
    let mut c = Control::connect(server.explicit, &server.fingerprint).await;
    c.expect("CDC", 503).await;
    c.auth_tls().await;
    c.expect("CDC", 503).await; // before PBSZ
    c.user_pass("ftps", &server.password).await;
    c.expect("PBSZ 0", 200).await;
    c.expect("CDC", 200).await;
    c.protected = false;
    let t = c.transfer("RETR f", None).await;
    assert_eq!(t.code(), 521, "transfer after CDC: {t:?}\n{}", c.transcript);
    assert!(t.data.is_empty());
    c.protect().await;
    assert_eq!(c.retr("f").await, b"x");
}

// ---- Per-listener policies --------------------------------------------------------------

#[tokio::test]
async fn per_listener_session_reuse_and_active_mode() {
    let server = ftpsd().start_with_listen_and(
        "[\"127.0.0.1:0\", { address = \"127.0.0.1:0\", data_session_reuse = \"optional\", \
         active = false }]",
        "",
        support::RUST_LOG,
        |_| {},
    );
    assert_eq!(server.explicit_all.len(), 2, "{:?}", server.explicit_all);
    server.put("f", b"per listener");
    let fp = server.fingerprint.clone();
    let login = |addr| {
        let (fp, pw) = (fp.clone(), server.password.clone());
        async move {
            let mut c = Control::connect(addr, &fp).await;
            c.auth_tls().await;
            c.user_pass("ftps", &pw).await;
            c.protect().await;
            c
        }
    };

    // Second listener: a data connection that does not resume is accepted; no active mode.
    let mut c = login(server.explicit_all[1]).await;
    let t = c
        .transfer_with("RETR f", None, Some(client_config(&fp, Tls::Any)))
        .await;
    assert_eq!(t.code(), 226, "{t:?}\n{}", c.transcript);
    assert_eq!(t.handshake, Some(HandshakeKind::Full));
    assert_eq!(t.data, b"per listener");
    c.expect("PORT 127,0,0,1,39,16", 502).await;
    c.expect("EPRT |1|127.0.0.1|10000|", 502).await;
    assert_eq!(c.retr("f").await, b"per listener");

    // First listener: the server's defaults.
    let mut c = login(server.explicit_all[0]).await;
    let t = c
        .transfer_with("RETR f", None, Some(client_config(&fp, Tls::Any)))
        .await;
    assert_eq!(t.code(), 522, "{t:?}\n{}", c.transcript);
    assert!(t.data.is_empty());
    c.expect("PORT 127,0,0,1,39,16", 200).await;
    c.expect("EPRT |1|127.0.0.1|10000|", 200).await;
    assert_eq!(c.retr("f").await, b"per listener");
}

// ---- No secrets in logs (§11) -----------------------------------------------------------

#[tokio::test]
async fn passwords_never_reach_the_log() {
    let server = ftpsd().start_with_listen_and(
        "[\"127.0.0.1:0\"]",
        "[limits]\nlogin_failure_delay_ms = 10\n",
        "trace",
        |_| {},
    );
    let good = "Pw-good-7f3a9c1e5d";
    let wrong = "Pw-wrong-51d0be44aa";
    let unknown = "Pw-unknown-93ac06e2";
    let cleartext = "Pw-cleartext-c1e07d";
    let lower = "Pw-lowercase-8b2f31";
    let early = "Pw-early-0d94ab";
    server.add_user("dora", good, &[]);

    let mut c = Control::connect(server.explicit, &server.fingerprint).await;
    // In the clear (refused, but the password was sent).
    c.expect("USER dora", 530).await;
    c.cmd(&format!("PASS {cleartext}")).await;
    c.auth_tls().await;
    c.expect(&format!("PASS {early}"), 503).await;
    c.expect("USER dora", 331).await;
    c.expect(&format!("PASS {wrong}"), 530).await;
    c.expect("USER nobody-here", 331).await;
    c.expect(&format!("PASS {unknown}"), 530).await;
    c.expect("USER dora", 331).await;
    c.expect(&format!("pass {lower}"), 530).await;
    // Pipelined USER and PASS, then a success.
    c.send_raw(format!("USER dora\r\nPASS {good}\r\n").as_bytes())
        .await;
    c.expect_reply(331).await;
    c.expect_reply(230).await;
    c.protect().await;
    c.stor("f", b"x").await;
    c.expect("QUIT", 221).await;
    let mut c = Control::login_default(&server).await;
    c.expect("NOOP", 200).await;
    drop(c);

    // Wait until the server has logged the logins.
    wait_for_log_line(&server, 0, "login ok").await;
    wait_for_log_line(&server, 0, "login failed").await;
    let log = server.log_all();
    for secret in [
        good,
        wrong,
        unknown,
        cleartext,
        lower,
        early,
        server.password.as_str(),
    ] {
        if let Some(line) = log.lines().find(|l| l.contains(secret)) {
            panic!("a password is in the log: {line}");
        }
    }
    assert!(
        log.contains("PASS <hidden>"),
        "debug logging of commands is off, so this test proves nothing"
    );
    assert!(
        !log.contains("panicked"),
        "a panic in the log:\n{}",
        server.log_text()
    );
}

// ---- Global session limit (§8) ----------------------------------------------------------

#[tokio::test]
async fn global_session_limit() {
    let server = ftpsd().start_with_config("[limits]\nmax_sessions = 3\n");
    let a = Control::connect(server.explicit, &server.fingerprint).await;
    let _b = Control::login_default(&server).await;
    let _c = Control::connect(server.explicit, &server.fingerprint).await;
    let (mut d, greeting) = Control::connect_raw(server.explicit, &server.fingerprint).await;
    assert_eq!(greeting.code.0, 421, "fourth session: {greeting}");
    let after = d.expect_closed().await;
    assert!(after.is_empty(), "{after:?}");
    // Implicit FTPS counts against the same limit: closed without a TLS session.
    let mut tcp = tokio::net::TcpStream::connect(server.implicit)
        .await
        .unwrap();
    let got = support::client::read_all(&mut tcp).await;
    assert!(
        got.as_ref().is_ok_and(|g| g.is_empty()) || got.is_err(),
        "implicit connection over the limit got {got:?}"
    );

    drop(a);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (mut e, greeting) = Control::connect_raw(server.explicit, &server.fingerprint).await;
        if greeting.code.0 == 220 {
            e.auth_tls().await;
            e.user_pass("ftps", &server.password).await;
            break;
        }
        assert_eq!(greeting.code.0, 421, "{greeting}");
        assert!(
            Instant::now() < deadline,
            "no session admitted after one closed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn ccc_command_in_the_same_packet_as_the_close_notify() {
    // After CCC the client may send its close_notify and its next (plaintext) command in
    // one TCP write; the server must not lose the command inside its TLS buffers.
    let server = ftpsd().start_with_config("[tls]\nallow_ccc = true\n");
    let mut c = Control::login_default(&server).await;
    c.expect("CCC", 200).await;
    c.end_tls_then_send("NOOP").await.expect("end TLS");
    let reply = tokio::time::timeout(Duration::from_secs(5), c.try_reply()).await;
    match reply {
        Ok(Ok(Some(r))) => assert_eq!(r.code.0, 200, "{}", c.transcript),
        other => panic!(
            "NOOP sent with the close_notify got no reply ({other:?})\n{}",
            c.transcript
        ),
    }
    c.expect("PWD", 257).await;
}

#[tokio::test]
async fn after_ccc_data_connections_still_need_the_control_certificate() {
    let ca = Ca::new("ftpsd test CA");
    let server = ftpsd().start_with_config_and(
        "[tls]\nallow_ccc = true\nclient_certificates = \"optional\"\n\
         client_ca = \"client-ca.pem\"\n",
        |dir| fs::write(dir.join("client-ca.pem"), ca.pem()).unwrap(),
    );
    let root = add_robot(
        &server,
        "login = \"certificate\"\ncertificate = { cn = \"robot\" }\n\
         data_session_reuse = \"optional\"",
    );
    root.put("f", b"robot only");
    let cert = ca.client("robot", &[], 60);
    let other = ca.client("someone-else", &[], 61);
    let mut c = connect_tls(&server, cert.config(&server.fingerprint, Tls::Any)).await;
    c.expect("USER robot", 232).await;
    c.protect().await;
    c.expect("CCC", 200).await;
    end_tls_after_ccc(&mut c).await;
    assert_eq!(c.retr("f").await, b"robot only");
    for (what, tls) in [
        (
            "another certificate",
            other.config(&server.fingerprint, Tls::Any),
        ),
        (
            "no certificate",
            client_config(&server.fingerprint, Tls::Any),
        ),
    ] {
        let t = c.transfer_with("RETR f", None, Some(tls)).await;
        assert_eq!(t.code(), 425, "{what} after CCC: {t:?}\n{}", c.transcript);
        assert!(t.data.is_empty(), "{what}: data sent");
    }
}

#[tokio::test]
async fn optional_mode_still_refuses_bad_certificates() {
    let ca = Ca::new("ftpsd test CA");
    let revoked = ca.client("robot", &[], 71);
    let server = cert_server("optional", &ca, &[&revoked]);
    let fp = server.fingerprint.clone();
    let stranger = Ca::new("some other CA").client("robot", &[], 70);
    for (what, tls, reason) in [
        (
            "unknown CA",
            stranger.config(&fp, Tls::Any),
            "unknownissuer",
        ),
        (
            "expired",
            ca.expired_client("robot", 72).config(&fp, Tls::Any),
            "expired",
        ),
        ("revoked", revoked.config(&fp, Tls::Any), "revoked"),
        (
            "not yet valid",
            ca.future_client("robot", 73).config(&fp, Tls::Any),
            "not valid",
        ),
        (
            "server certificate",
            ca.server_only_client("robot", 74).config(&fp, Tls::Any),
            "usage",
        ),
    ] {
        let line = assert_refused_at_handshake(&server, tls, what).await;
        assert!(line.to_ascii_lowercase().contains(reason), "{what}: {line}");
    }
    let mut c = connect_tls(&server, client_config(&fp, Tls::Any)).await;
    c.user_pass("ftps", &server.password).await;
}

#[tokio::test]
async fn certificate_login_over_tls12() {
    let ca = Ca::new("ftpsd test CA");
    let server = cert_server("required", &ca, &[]);
    let root = add_robot(
        &server,
        "login = \"certificate\"\ncertificate = { cn = \"robot\" }",
    );
    root.put("f", b"tls 1.2");
    let cert = ca.client("robot", &[], 80);
    let mut c = connect_tls(&server, cert.config(&server.fingerprint, Tls::V12)).await;
    c.expect("USER robot", 232).await;
    c.protect().await;
    for _ in 0..3 {
        assert_eq!(c.retr("f").await, b"tls 1.2");
        c.stor("g", b"up").await;
    }
}

#[tokio::test]
async fn per_listener_client_certificates() {
    let ca = Ca::new("ftpsd test CA");
    let ca_pem = ca.pem();
    let server = ftpsd().start_with_listen_and(
        "[\"127.0.0.1:0\", { address = \"127.0.0.1:0\", client_certificates = \"required\" }]",
        "[tls]\nclient_ca = \"client-ca.pem\"\n",
        support::RUST_LOG,
        |dir| fs::write(dir.join("client-ca.pem"), ca_pem).unwrap(),
    );
    let fp = server.fingerprint.clone();
    // First listener: client certificates off, so none is needed.
    let mut c = Control::connect(server.explicit_all[0], &fp).await;
    c.auth_tls().await;
    c.user_pass("ftps", &server.password).await;
    // Second: required.
    let mut c = Control::connect(server.explicit_all[1], &fp).await;
    c.expect("AUTH TLS", 234).await;
    if c.start_tls().await.is_ok() {
        let _ = c.try_send_line("USER ftps").await;
        let replies = c.expect_closed().await;
        assert!(
            replies.is_empty(),
            "served without a certificate: {replies:?}"
        );
    }
    let cert = ca.client("anyone", &[], 90);
    let mut c = Control::connect_with(server.explicit_all[1], cert.config(&fp, Tls::Any)).await;
    c.auth_tls().await;
    c.user_pass("ftps", &server.password).await;
}

#[tokio::test]
async fn many_transfers_over_one_tls12_control_session() {
    // TLS 1.2 resumes by session ID from a small per-session cache: it must not run out.
    let server = ftpsd().start_with_config("[tls]\ndata_session_reuse = \"required\"\n");
    server.put("down", b"tls 1.2 download");
    let mut c = Control::login_with(&server, client_config(&server.fingerprint, Tls::V12)).await;
    for i in 0..100u32 {
        if i % 2 == 0 {
            c.stor(&format!("up{i}"), format!("upload {i}").as_bytes())
                .await;
        } else {
            assert_eq!(c.retr("down").await, b"tls 1.2 download", "download {i}");
        }
    }
    let names = c.listing("NLST").await;
    assert_eq!(names.lines().count(), 51, "{names}");
}

#[tokio::test]
async fn a_new_crl_takes_effect_without_a_restart() {
    // A certificate revoked after start-up: SIGHUP (or the file watcher) re-reads the CRL;
    // new handshakes with it fail while a session opened before keeps working.
    let ca = Ca::new("ftpsd test CA");
    let robot = ca.client("robot", &[], 50);
    let server = cert_server("required", &ca, &[]);
    add_robot(
        &server,
        "login = \"certificate\"\ncertificate = { cn = \"robot\" }",
    );
    let fp = server.fingerprint.clone();
    let mut before = connect_tls(&server, robot.config(&fp, Tls::Any)).await;
    before.expect("USER robot", 232).await;

    let mark = server.log_all().len();
    pki::replace_file(
        &server.dir.path().join("client-crl.pem"),
        ca.crl(&[&robot]).as_bytes(),
    );
    server.signal("HUP");
    wait_for_log_line(&server, mark, "client CA and CRLs reloaded").await;

    let line =
        assert_refused_at_handshake(&server, robot.config(&fp, Tls::Any), "revoked after start")
            .await;
    assert!(line.to_ascii_lowercase().contains("revoked"), "{line}");
    // The session that was already open is not cut off.
    before.expect("NOOP", 200).await;
}
