//! Protocol-level tests: every error reply, path escapes, the line limit, pipelining and
//! the TLS requirements, spoken line by line to a real ftpsd.

mod support;

use std::fs;
use std::time::{Duration, Instant};

use ftps_testkit::storage::{Backend, UserFiles};
use rustls::HandshakeKind;
use support::client::{client_config, Control, Passive, Tls};
use support::{ftpsd, logged_in, logged_in_with, Server};

// ---- TLS requirements -------------------------------------------------------------------

#[tokio::test]
async fn user_in_plaintext_is_refused_with_a_hint_to_auth_tls() {
    let server = ftpsd().start();
    let mut c = Control::connect(server.explicit, &server.fingerprint).await;
    let reply = c.expect("USER ftps", 530).await;
    assert!(
        reply.text().contains("AUTH TLS"),
        "530 should tell the client to use AUTH TLS: {reply}"
    );
    // PASS must not log in either, even after a refused USER.
    let reply = c.cmd(&format!("PASS {}", server.password)).await;
    assert!(
        reply.code.0 == 530 || reply.code.0 == 503,
        "PASS in plaintext: {reply}"
    );
    // The connection is still usable: upgrading and logging in works.
    c.auth_tls().await;
    c.user_pass("ftps", &server.password).await;
    c.expect("PWD", 257).await;
}

#[tokio::test]
async fn auth_replies() {
    let server = ftpsd().start();
    let mut c = Control::connect(server.explicit, &server.fingerprint).await;
    c.expect("AUTH XYZ", 504).await;
    c.expect("AUTH TLS", 234).await;
    c.start_tls().await.expect("handshake");
    // A second AUTH on a protected connection is out of sequence.
    c.expect("AUTH TLS", 503).await;
    c.user_pass("ftps", &server.password).await;
}

#[tokio::test]
async fn commands_pipelined_after_auth_tls_are_refused_and_the_connection_closed() {
    // STARTTLS injection (CVE-2011-0411 class): plaintext sent after AUTH TLS must never be
    // executed as if it had arrived under TLS.
    let server = ftpsd().start();
    let mut c = Control::connect(server.explicit, &server.fingerprint).await;
    c.send_raw(b"AUTH TLS\r\nUSER ftps\r\n").await;
    let replies = c.expect_closed().await;
    let codes: Vec<u16> = replies.iter().map(|r| r.code.0).collect();
    assert!(
        codes.contains(&503),
        "expected 503 then close, got {codes:?}\n{}",
        c.transcript
    );
    assert!(
        !codes.contains(&331) && !codes.contains(&234),
        "the injected USER must not be answered, nor TLS started: {codes:?}\n{}",
        c.transcript
    );
}

#[tokio::test]
async fn pbsz_and_prot_sequence() {
    let server = ftpsd().start();
    let mut c = Control::connect(server.explicit, &server.fingerprint).await;
    c.expect("PBSZ 0", 503).await;
    c.auth_tls().await;
    c.expect("PROT P", 503).await;
    c.user_pass("ftps", &server.password).await;
    c.expect("PROT P", 503).await;
    c.expect("PBSZ 0", 200).await;
    c.expect("PROT S", 536).await;
    c.expect("PROT E", 536).await;
    c.expect("PROT P", 200).await;
    c.expect("PROT C", 200).await;
}

#[tokio::test]
async fn transfers_need_prot_p() {
    let server = ftpsd().start();
    server.put("file.txt", b"secret");
    let mut c = Control::connect_auth(&server).await;
    c.user_pass("ftps", &server.password).await;
    // Neither PBSZ nor PROT: data would be in clear text.
    let t = c.transfer("RETR file.txt", None).await;
    assert_eq!(
        t.code(),
        521,
        "RETR without PROT P: {t:?}\n{}",
        c.transcript
    );
    assert!(t.data.is_empty(), "data sent in clear: {:?}", t.data);
    // PROT C explicitly.
    c.expect("PBSZ 0", 200).await;
    c.expect("PROT C", 200).await;
    for cmd in ["RETR file.txt", "LIST", "STOR up.txt"] {
        let upload = cmd.starts_with("STOR").then_some(&b"x"[..]);
        let t = c.transfer(cmd, upload).await;
        assert_eq!(t.code(), 521, "{cmd} with PROT C: {t:?}\n{}", c.transcript);
    }
    assert!(!server.files().exists("up.txt"));
    // And once protected it works.
    c.expect("PROT P", 200).await;
    c.protected = true;
    assert_eq!(c.retr("file.txt").await, b"secret");
}

#[tokio::test]
async fn data_connections_resume_the_control_session() {
    for tls in [Tls::V13, Tls::V12] {
        let server = ftpsd().start();
        server.put("f", b"data");
        let mut c = Control::login_with(&server, client_config(&server.fingerprint, tls)).await;
        // Several transfers in a row, each needing a resumable session (TLS 1.3 tickets
        // are single use).
        for round in 0..5 {
            let t = c.transfer("RETR f", None).await;
            c.assert_transfer_ok(&t, &format!("{tls:?} RETR round {round}"));
            assert_eq!(t.data, b"data");
            c.stor(&format!("up{round}"), b"uploaded").await;
            c.listing("LIST").await;
        }
    }
}

#[tokio::test]
async fn data_connection_without_resumption_gets_522() {
    let (server, mut c) = logged_in_with("f", b"data").await;
    // A different session cache: the data handshake is a full one, like a stranger's.
    let stranger = client_config(&server.fingerprint, Tls::Any);
    let t = c.transfer_with("RETR f", None, Some(stranger)).await;
    assert_eq!(t.code(), 522, "{t:?}\n{}", c.transcript);
    assert!(t.data.is_empty(), "data went to a non-resumed connection");
    // The session survives and a proper transfer works afterwards.
    assert_eq!(c.retr("f").await, b"data");
}

#[tokio::test]
async fn data_session_reuse_optional_user_accepts_full_handshakes() {
    let server = ftpsd().start();
    let files = server.add_user(
        "legacy",
        "legacy-pass-1",
        &["--data-session-reuse", "optional"],
    );
    files.put("f", b"data");
    let mut c = Control::login(&server, "legacy", "legacy-pass-1").await;
    let stranger = client_config(&server.fingerprint, Tls::Any);
    let t = c.transfer_with("RETR f", None, Some(stranger)).await;
    assert_eq!(t.code(), 226, "{t:?}\n{}", c.transcript);
    assert_eq!(t.handshake, Some(HandshakeKind::Full));
    assert_eq!(t.data, b"data");
}

#[tokio::test]
async fn implicit_tls_works_and_refuses_plaintext() {
    let server = ftpsd().start();
    server.put("f", b"implicit");
    let mut c = Control::connect_implicit(server.implicit, &server.fingerprint).await;
    c.expect("AUTH TLS", 503).await;
    c.user_pass("ftps", &server.password).await;
    c.protect().await;
    assert_eq!(c.retr("f").await, b"implicit");
    c.expect("QUIT", 221).await;

    // A plaintext client on the implicit port gets no FTP greeting.
    let mut tcp = tokio::net::TcpStream::connect(server.implicit)
        .await
        .unwrap();
    use tokio::io::AsyncWriteExt;
    tcp.write_all(b"USER ftps\r\n").await.unwrap();
    let got = support::client::read_all(&mut tcp)
        .await
        .unwrap_or_default();
    assert!(
        !got.starts_with(b"220") && !got.starts_with(b"331"),
        "plaintext answered on the implicit port: {:?}",
        String::from_utf8_lossy(&got)
    );
}

// ---- Login ------------------------------------------------------------------------------

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_reply() {
    let server = ftpsd().start();
    let mut c = Control::connect_auth(&server).await;
    c.expect("USER ftps", 331).await;
    let wrong = c.expect("PASS not-the-password", 530).await;
    c.expect("USER nobody-here", 331).await;
    let unknown = c.expect("PASS whatever", 530).await;
    assert_eq!(wrong.text(), "Login incorrect.");
    assert_eq!(unknown.text(), wrong.text());
    c.expect("USER ftps", 331).await;
    c.expect("PASS", 530).await;
    // Still not logged in.
    c.expect("PWD", 530).await;
    c.user_pass("ftps", &server.password).await;
}

#[tokio::test]
async fn empty_password_is_refused_even_if_set() {
    let server = ftpsd().start();
    let add = server.ftpsd(
        &[
            "user",
            "add",
            "blank",
            "--root",
            &server.scratch("blank").display().to_string(),
            "--state-dir",
            &server.state_dir.display().to_string(),
            "--password-stdin",
        ],
        "\n",
    );
    let mut c = Control::connect_auth(&server).await;
    c.expect("USER blank", 331).await;
    let reply = c.cmd("PASS ").await;
    assert_eq!(
        reply.code.0, 530,
        "empty password logged in (user add exit {:?}): {reply}",
        add.status
    );
}

#[tokio::test]
async fn commands_before_login() {
    let server = ftpsd().start();
    let mut c = Control::connect_auth(&server).await;
    c.expect("PASS something", 503).await;
    for cmd in [
        "PWD", "CWD /", "LIST", "RETR f", "STOR f", "SIZE f", "MKD d", "EPSV",
    ] {
        c.expect(cmd, 530).await;
    }
    // Commands that need no login.
    c.expect("NOOP", 200).await;
    c.expect("FEAT", 211).await;
    c.expect("QUIT", 221).await;
    c.expect_closed().await;
}

// ---- Error replies once logged in -------------------------------------------------------

#[tokio::test]
async fn error_replies() {
    let (server, mut c) = logged_in().await;
    server.put("exists", b"x");
    c.expect("XYZZY", 502).await;
    c.expect("RETR", 501).await;
    c.expect("PORT 1,2,3", 501).await;
    c.expect("PORT 127,0,0,1,300,1", 501).await;
    c.expect("TYPE E", 504).await;
    c.expect("MODE B", 504).await;
    c.expect("STRU R", 504).await;
    c.expect("TYPE I", 200).await;
    c.expect("TYPE A", 200).await;
    c.expect("MODE S", 200).await;
    c.expect("STRU F", 200).await;
    c.expect("RNTO somewhere", 503).await;
    c.expect("RNFR nope", 550).await;
    c.expect("CWD nope", 550).await;
    c.expect("SIZE nope", 550).await;
    c.expect("MDTM nope", 550).await;
    c.expect("DELE nope", 550).await;
    c.expect("RMD nope", 550).await;
    c.expect("MLST nope", 550).await;
    let t = c.transfer("RETR nope", None).await;
    assert_eq!(t.code(), 550, "{t:?}\n{}", c.transcript);
    // A directory is not a file.
    c.expect("MKD dir", 257).await;
    let t = c.transfer("RETR dir", None).await;
    assert_eq!(
        t.code(),
        550,
        "RETR of a directory: {t:?}\n{}",
        c.transcript
    );
    c.expect("CWD exists", 550).await;
    c.expect("MKD dir", 550).await;
    c.expect("PWD", 257).await;
}

#[tokio::test]
async fn no_data_connection_within_the_timeout_gets_425() {
    let server = ftpsd().start_with_config("[timeouts]\ndata_connect = 2\n");
    server.put("f", b"data");
    let mut c = Control::login_default(&server).await;
    c.expect("EPSV", 229).await;
    let started = Instant::now();
    c.send_line("RETR f").await;
    let mut reply = c.reply().await;
    if reply.code.is_preliminary() {
        reply = c.reply().await;
    }
    assert_eq!(reply.code.0, 425, "{reply}\n{}", c.transcript);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(15),
        "425 after {waited:?}, configured 2 s"
    );
    // The session goes on.
    assert_eq!(c.retr("f").await, b"data");
}

#[tokio::test]
async fn read_only_user_cannot_write() {
    let server = ftpsd().start();
    let files = server.add_user("reader", "reader-pass-1", &["--read-only"]);
    files.put("f", b"read me");
    files.mkdir("d");
    let mut c = Control::login(&server, "reader", "reader-pass-1").await;
    assert_eq!(c.retr("f").await, b"read me");
    for cmd in ["STOR new", "APPE f"] {
        let t = c.transfer(cmd, Some(b"evil")).await;
        assert_eq!(t.code(), 550, "{cmd}: {t:?}\n{}", c.transcript);
    }
    c.expect("DELE f", 550).await;
    c.expect("MKD x", 550).await;
    c.expect("RMD d", 550).await;
    let rnfr = c.cmd("RNFR f").await;
    if rnfr.code.0 == 350 {
        c.expect("RNTO g", 550).await;
    } else {
        assert_eq!(rnfr.code.0, 550, "{rnfr}");
    }
    assert_eq!(files.read("f"), b"read me");
    for name in ["new", "x", "g"] {
        assert!(!files.exists(name), "a read-only user created {name}");
    }
    assert!(files.is_dir("d"));
}

// ---- Transfers and file commands --------------------------------------------------------

#[tokio::test]
async fn rest_retr_returns_the_tail() {
    let (server, mut c) = logged_in().await;
    server.put("f", b"0123456789");
    c.expect("TYPE I", 200).await;
    c.expect("REST 4", 350).await;
    assert_eq!(c.retr("f").await, b"456789");
    // REST applies to one transfer only.
    assert_eq!(c.retr("f").await, b"0123456789");
    c.expect("REST 10", 350).await;
    assert_eq!(c.retr("f").await, b"");
    c.expect("REST x", 501).await;
}

#[tokio::test]
async fn rest_stor_resumes_an_upload() {
    let (server, mut c) = logged_in().await;
    server.put("f", b"01234");
    c.expect("TYPE I", 200).await;
    c.expect("REST 5", 350).await;
    c.stor("f", b"56789").await;
    assert_eq!(server.files().read("f"), b"0123456789");
    // Resuming in the middle overwrites from there on.
    c.expect("REST 2", 350).await;
    c.stor("f", b"ab").await;
    let got = server.files().read("f");
    if Backend::is_s3() {
        // docs/storage.md: on S3, REST n + STOR is an APPE keeping the first n bytes.
        assert_eq!(
            got,
            b"01ab",
            "REST 2 + STOR on S3: {:?}",
            String::from_utf8_lossy(&got)
        );
    } else {
        assert!(
            got == b"01ab" || got == b"01ab456789",
            "REST 2 + STOR: {:?}",
            String::from_utf8_lossy(&got)
        );
    }
}

#[tokio::test]
async fn appe_appends_and_stor_replaces() {
    let (server, mut c) = logged_in().await;
    c.stor("f", b"first").await;
    assert_eq!(c.retr("f").await, b"first");
    let t = c.transfer("APPE f", Some(b"+second")).await;
    c.assert_transfer_ok(&t, "APPE f");
    assert_eq!(c.retr("f").await, b"first+second");
    let t = c.transfer("APPE new", Some(b"created")).await;
    c.assert_transfer_ok(&t, "APPE new");
    assert_eq!(c.retr("new").await, b"created");
    c.stor("f", b"short").await;
    assert_eq!(server.files().read("f"), b"short");
}

#[tokio::test]
async fn consecutive_uploads_resume_the_session_over_tls13() {
    // A TLS 1.3 client uses each session ticket once (rustls does, and OpenSSL with a client
    // session cache, as in curl). Uploads one after another, with no download between to
    // bring fresh tickets, must still each resume the control session.
    let server = ftpsd().start();
    let tls = client_config(&server.fingerprint, Tls::V13);
    let mut c = Control::login_with(&server, tls).await;
    for i in 0..6 {
        let t = c.transfer(&format!("STOR up{i}"), Some(b"data")).await;
        c.assert_transfer_ok(&t, &format!("upload {} of 6", i + 1));
    }
}

#[tokio::test]
async fn size_mdtm_mlst_mlsd() {
    let (server, mut c) = logged_in().await;
    server.put("f.bin", &[7u8; 1234]);
    server.files().mkdir("sub");
    c.expect("TYPE I", 200).await;
    let size = c.expect("SIZE f.bin", 213).await;
    assert_eq!(size.text(), "1234");
    let mdtm = c.expect("MDTM f.bin", 213).await;
    let stamp = mdtm.text();
    assert!(
        stamp.len() >= 14 && stamp[..14].bytes().all(|b| b.is_ascii_digit()),
        "MDTM is not YYYYMMDDHHMMSS: {mdtm}"
    );
    assert!(stamp.starts_with("20"), "MDTM year: {mdtm}");

    let mlst = c.expect("MLST f.bin", 250).await;
    let facts = mlst
        .lines
        .iter()
        .find(|l| l.contains("f.bin") && l.contains(';'))
        .unwrap_or_else(|| panic!("MLST has no fact line: {mlst:?}"))
        .to_ascii_lowercase();
    for fact in ["type=file;", "size=1234;", "modify="] {
        assert!(facts.contains(fact), "MLST lacks {fact}: {facts}");
    }

    let mlsd = c.listing("MLSD").await;
    let line_for = |name: &str| {
        mlsd.lines()
            .find(|l| l.ends_with(&format!(" {name}")))
            .unwrap_or_else(|| panic!("MLSD lacks {name}:\n{mlsd}"))
            .to_ascii_lowercase()
    };
    assert!(line_for("f.bin").contains("type=file;"));
    assert!(line_for("f.bin").contains("size=1234;"));
    assert!(line_for("sub").contains("type=dir;"));
    assert!(
        mlsd.lines()
            .all(|l| !l.ends_with(" ..") || l.contains("type=pdir")),
        "MLSD: {mlsd}"
    );
    let t = c.transfer("MLSD f.bin", None).await;
    assert!(t.code() == 501 || t.code() == 550, "MLSD of a file: {t:?}");

    let list = c.listing("LIST").await;
    assert!(
        list.lines()
            .any(|l| l.ends_with(" f.bin") && l.contains("1234")),
        "{list}"
    );
    assert!(
        list.lines()
            .any(|l| l.starts_with('d') && l.ends_with(" sub")),
        "{list}"
    );
    let nlst = c.listing("NLST").await;
    let mut names: Vec<&str> = nlst.lines().collect();
    names.sort();
    assert_eq!(names, ["f.bin", "sub"], "NLST");
}

#[tokio::test]
async fn feat_lists_the_extensions() {
    let server = ftpsd().start();
    let mut c = Control::connect(server.explicit, &server.fingerprint).await;
    let feat = c.expect("FEAT", 211).await;
    let features: Vec<String> = feat.lines[1..feat.lines.len() - 1]
        .iter()
        .map(|l| l.trim().to_string())
        .collect();
    for wanted in [
        "AUTH TLS",
        "PBSZ",
        "PROT",
        "UTF8",
        "EPSV",
        "MDTM",
        "SIZE",
        "REST STREAM",
    ] {
        assert!(
            features.iter().any(|f| f == wanted),
            "FEAT lacks {wanted}: {features:?}"
        );
    }
    assert!(
        features.iter().any(|f| f.starts_with("MLST")),
        "FEAT lacks MLST: {features:?}"
    );
    // docs/storage.md: MFMT is not offered before login where the default storage is S3.
    assert_eq!(
        features.iter().any(|f| f == "MFMT"),
        !Backend::is_s3(),
        "MFMT in FEAT: {features:?}"
    );
}

#[tokio::test]
async fn directories_rename_and_delete() {
    let (server, mut c) = logged_in().await;
    let files = server.files();
    c.expect("MKD a", 257).await;
    c.expect("CWD a", 250).await;
    let pwd = c.expect("PWD", 257).await;
    assert!(pwd.text().starts_with("\"/a\""), "{pwd}");
    c.stor("f", b"in a").await;
    assert_eq!(files.read("a/f"), b"in a");
    c.expect("CDUP", 250).await;
    c.expect("RNFR a/f", 350).await;
    c.expect("RNTO g", 250).await;
    assert_eq!(files.read("g"), b"in a");
    c.expect("RMD a", 250).await;
    c.expect("DELE g", 250).await;
    files.assert_empty("after RMD and DELE");
    c.expect("QUIT", 221).await;
    c.expect_closed().await;
}

// ---- Path escapes -----------------------------------------------------------------------

/// What lies just outside the root of the user `ftps`: the state directory (its root is
/// STATE/data), or on S3 the store's prefix, whose `data/` is the user's.
fn outside_the_root(server: &Server) -> UserFiles {
    match server.files() {
        UserFiles::Local(root) => {
            UserFiles::Local(root.parent().expect("the root's parent").to_path_buf())
        }
        UserFiles::S3 { prefix } => UserFiles::S3 {
            prefix: prefix
                .strip_suffix("data/")
                .unwrap_or_else(|| panic!("the user's prefix {prefix} is not <store>/data/"))
                .to_string(),
        },
    }
}

/// STATE/key.pem is just outside the root of the user `ftps`; on S3, decoys are put where
/// `..` would lead.
#[tokio::test]
async fn dot_dot_and_absolute_paths_stay_in_the_root() {
    let (server, mut c) = logged_in().await;
    let outside = outside_the_root(&server);
    if Backend::is_s3() {
        outside.put("key.pem", b"a key beside the user's prefix");
        outside.put("users.toml", b"[users]");
    }
    let key = outside.read("key.pem");
    for path in [
        "../key.pem",
        "/../key.pem",
        "../../../../../../etc/passwd",
        "/etc/passwd",
    ] {
        let t = c.transfer(&format!("RETR {path}"), None).await;
        assert_eq!(t.code(), 550, "RETR {path}: {t:?}\n{}", c.transcript);
        assert!(t.data.is_empty());
        c.expect(&format!("SIZE {path}"), 550).await;
    }
    // At the root, going up stays at the root.
    for cmd in ["CWD ..", "CDUP", "CWD /..", "CWD ../.."] {
        let reply = c.cmd(cmd).await;
        assert!(reply.code.0 == 250 || reply.code.0 == 550, "{cmd}: {reply}");
        let pwd = c.expect("PWD", 257).await;
        assert!(
            pwd.text().starts_with("\"/\""),
            "{cmd} left the root: {pwd}"
        );
    }
    let t = c.transfer("LIST ..", None).await;
    let listing = String::from_utf8_lossy(&t.data);
    assert!(
        !listing.contains("key.pem") && !listing.contains("users.toml"),
        "LIST .. shows the state directory:\n{listing}"
    );
    // A path that goes up and down inside the root is fine.
    c.stor("inside", b"x").await;
    c.expect("MKD sub", 257).await;
    assert_eq!(c.retr("sub/../inside").await, b"x");
    // Writes aimed outside the root: ".." stops at the root (the reply may be a success,
    // inside the root), but nothing may appear or change outside it.
    let t = c.transfer("STOR ../evil", Some(b"evil")).await;
    let _ = c.cmd("MKD ../evil-dir").await;
    let _ = c.cmd("DELE ../key.pem").await;
    c.expect("RNFR inside", 350).await;
    let _ = c.cmd("RNTO ../moved").await;
    for name in ["evil", "evil-dir", "moved"] {
        assert!(
            !outside.exists(name),
            "{name} was created outside the root ({t:?})\n{}",
            c.transcript
        );
    }
    assert_eq!(outside.read("key.pem"), key);
}

#[tokio::test]
async fn symlinks_out_of_the_root_are_not_followed() {
    let (server, mut c) = logged_in().await;
    let root = server.data_dir();
    std::os::unix::fs::symlink(server.state_dir.join("key.pem"), root.join("key-link")).unwrap();
    std::os::unix::fs::symlink(&server.state_dir, root.join("state-link")).unwrap();
    std::os::unix::fs::symlink("../key.pem", root.join("relative-link")).unwrap();
    for path in [
        "key-link",
        "relative-link",
        "state-link/key.pem",
        "state-link/users.toml",
    ] {
        let t = c.transfer(&format!("RETR {path}"), None).await;
        assert_eq!(t.code(), 550, "RETR {path}: {t:?}\n{}", c.transcript);
        assert!(t.data.is_empty(), "RETR {path} sent data");
        c.expect(&format!("SIZE {path}"), 550).await;
    }
    c.expect("CWD state-link", 550).await;
    let t = c.transfer("LIST state-link", None).await;
    if t.code() == 226 {
        let text = String::from_utf8_lossy(&t.data);
        assert!(
            !text.contains("key.pem") && !text.contains("users.toml"),
            "LIST state-link shows the state dir: {text}"
        );
    }
    let t = c.transfer("STOR state-link/evil", Some(b"evil")).await;
    assert_ne!(t.code(), 226, "STOR through a symlink: {t:?}");
    assert!(!server.state_dir.join("evil").exists());
    let t = c.transfer("STOR key-link", Some(b"overwritten")).await;
    assert!(
        !fs::read(server.state_dir.join("key.pem"))
            .unwrap()
            .starts_with(b"overwritten"),
        "STOR key-link overwrote the key outside the root: {t:?}"
    );
    let t = c.transfer("APPE key-link", Some(b"appended")).await;
    assert!(
        !String::from_utf8_lossy(&fs::read(server.state_dir.join("key.pem")).unwrap())
            .contains("appended"),
        "APPE key-link wrote outside the root: {t:?}"
    );
    c.expect("MKD state-link/evil-dir", 550).await;
    assert!(!server.state_dir.join("evil-dir").exists());
}

// ---- Line limit and pipelining ----------------------------------------------------------

#[tokio::test]
async fn over_long_lines_get_500_and_repeated_abuse_421() {
    let (_server, mut c) = logged_in().await;
    // Well under the limit: an ordinary command, not a line error.
    let reply = c.cmd(&format!("SIZE {}", "a".repeat(8000))).await;
    assert!(
        reply.code.0 != 500 && reply.code.0 != 421,
        "8005-byte line treated as over-long: {reply}"
    );
    let long = format!("NOOP {}", "x".repeat(9000));
    c.expect(&long, 500).await;
    c.expect("NOOP", 200).await;
    c.expect(&long, 500).await;
    c.expect("NOOP", 200).await;
    c.send_line(&long).await;
    let replies = c.expect_closed().await;
    let codes: Vec<u16> = replies.iter().map(|r| r.code.0).collect();
    assert_eq!(codes, [421], "third over-long line\n{}", c.transcript);
}

#[tokio::test]
async fn an_endless_line_is_not_buffered() {
    // CVE-2019-18217 class: megabytes without a newline must neither fill the server's
    // memory nor be executed once the newline arrives.
    let (server, mut c) = logged_in().await;
    let before = server.rss_kib();
    let chunk = vec![b'a'; 1 << 20];
    for _ in 0..64 {
        c.send_raw_quiet(&chunk).await;
    }
    let growth = server.rss_kib().saturating_sub(before);
    assert!(
        growth < 16 * 1024,
        "server memory grew by {growth} KiB while receiving a 64 MiB line"
    );
    c.send_raw(b"\r\n").await;
    let reply = c.reply().await;
    assert!(
        reply.code.0 == 500 || reply.code.0 == 421,
        "{reply}\n{}",
        c.transcript
    );
    if reply.code.0 == 500 {
        c.expect("NOOP", 200).await;
    }
}

#[tokio::test]
async fn over_long_line_before_tls() {
    let server = ftpsd().start();
    let mut c = Control::connect(server.explicit, &server.fingerprint).await;
    c.expect(&format!("NOOP {}", "x".repeat(9000)), 500).await;
    c.auth_tls().await;
    c.user_pass("ftps", &server.password).await;
}

#[tokio::test]
async fn pipelined_commands_get_replies_in_order() {
    let (server, mut c) = logged_in().await;
    server.put("f", b"12345");
    c.send_raw(
        b"NOOP\r\nPWD\r\nTYPE I\r\nSIZE f\r\nSYST\r\nXYZZY\r\nSIZE nope\r\nFEAT\r\nNOOP\r\n",
    )
    .await;
    let mut codes = Vec::new();
    for _ in 0..9 {
        codes.push(c.reply().await.code.0);
    }
    assert_eq!(
        codes,
        [200, 257, 200, 213, 215, 502, 550, 211, 200],
        "{}",
        c.transcript
    );
    // Commands split across writes are put together.
    c.send_raw(b"NO").await;
    c.send_raw(b"OP\r").await;
    c.send_raw(b"\n").await;
    c.expect_reply(200).await;
}

#[tokio::test]
async fn pipelined_login_in_one_write() {
    let server = ftpsd().start();
    let mut c = Control::connect_auth(&server).await;
    let burst = format!(
        "USER ftps\r\nPASS {}\r\nPBSZ 0\r\nPROT P\r\nTYPE I\r\nPWD\r\n",
        server.password
    );
    c.send_raw(burst.as_bytes()).await;
    let mut codes = Vec::new();
    for _ in 0..6 {
        codes.push(c.reply().await.code.0);
    }
    assert_eq!(codes, [331, 230, 200, 200, 200, 257], "{}", c.transcript);
}

#[tokio::test]
async fn pasv_and_epsv_both_work() {
    let (server, mut c) = logged_in().await;
    server.put("f", b"passive");
    for mode in [Passive::Pasv, Passive::Epsv] {
        c.passive = mode;
        assert_eq!(c.retr("f").await, b"passive", "{mode:?}");
    }
    c.expect("EPSV ALL", 200).await;
    // After EPSV ALL, PASV is refused (RFC 2428).
    let reply = c.cmd("PASV").await;
    assert!(
        reply.code.is_failure() || reply.code.0 >= 500,
        "PASV after EPSV ALL: {reply}"
    );
}

#[tokio::test]
async fn another_sessions_ticket_does_not_open_a_data_connection() {
    // Session A's TLS session must not be usable to take session B's transfer unless A is
    // logged in as B's user (see `the_same_users_sessions_share_tickets`): not for another
    // user, not after A logged out, not before A logged in.
    for tls in [Tls::V13, Tls::V12] {
        let server = ftpsd().start();
        server.add_user("other", "other-password-1", &[]);
        server.put("f", b"for B only");
        let a_tls = client_config(&server.fingerprint, tls);
        let mut a = Control::connect_with(server.explicit, a_tls.clone()).await;
        a.auth_tls().await;
        a.user_pass("other", "other-password-1").await;
        a.protect().await;
        a.expect("NOOP", 200).await; // reads A's tickets
        let mut b = Control::login_default(&server).await;
        let t = b.transfer_with("RETR f", None, Some(a_tls.clone())).await;
        assert_eq!(
            t.code(),
            522,
            "{tls:?}: B's data over another user's session: {t:?}"
        );
        assert!(t.data.is_empty());
        assert_eq!(b.retr("f").await, b"for B only");

        // The same user, logged out by REIN: its tickets open nothing but its own data
        // connections again.
        let c_tls = client_config(&server.fingerprint, tls);
        let mut c = Control::login_with(&server, c_tls.clone()).await;
        c.expect("REIN", 220).await;
        c.expect("NOOP", 200).await;
        let t = b.transfer_with("RETR f", None, Some(c_tls.clone())).await;
        assert_eq!(t.code(), 522, "{tls:?}: over a logged-out session: {t:?}");

        // Never logged in (TLS 1.2 has a session from the handshake; TLS 1.3 no ticket).
        let d_tls = client_config(&server.fingerprint, tls);
        let mut d = Control::connect_with(server.explicit, d_tls.clone()).await;
        d.auth_tls().await;
        d.expect("NOOP", 200).await;
        let t = b.transfer_with("RETR f", None, Some(d_tls.clone())).await;
        assert_eq!(
            t.code(),
            522,
            "{tls:?}: over a session not logged in: {t:?}"
        );
        assert_eq!(b.retr("f").await, b"for B only");
    }
}

#[tokio::test]
async fn the_same_users_sessions_share_tickets() {
    // Clients that keep one session cache for several control connections (rclone): a data
    // connection may resume a ticket of the same user's other live session, same address.
    for tls in [Tls::V13, Tls::V12] {
        let server = ftpsd().start();
        server.put("f", b"shared");
        let a_tls = client_config(&server.fingerprint, tls);
        let mut a = Control::login_with(&server, a_tls.clone()).await;
        a.expect("NOOP", 200).await;
        let mut b = Control::login_default(&server).await;
        let t = b.transfer_with("RETR f", None, Some(a_tls.clone())).await;
        assert_eq!(
            t.code(),
            226,
            "{tls:?}: over the same user's session: {t:?}"
        );
        assert_eq!(t.data, b"shared");
        assert_eq!(t.handshake, Some(rustls::HandshakeKind::Resumed));
        // Once a session has gone, its tickets are gone with it. (A fresh client: the one
        // above now also holds what B's data connection gave it over TLS 1.2.)
        let e_tls = client_config(&server.fingerprint, tls);
        let mut e = Control::connect_with(server.explicit, e_tls.clone()).await;
        e.auth_tls().await;
        e.user_pass("ftps", &server.password).await;
        e.expect("NOOP", 200).await;
        e.expect("QUIT", 221).await;
        drop(e);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let t = b.transfer_with("RETR f", None, Some(e_tls.clone())).await;
        assert_eq!(t.code(), 522, "{tls:?}: over an ended session: {t:?}");
    }
}
