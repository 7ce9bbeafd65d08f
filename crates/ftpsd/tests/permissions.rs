//! Permissions per path (`[users.NAME.permissions]`, docs/users.md): every command follows
//! the rule of the longest covering path, a refusal is `550` and changes nothing, with the
//! raw-line client, curl and Python ftplib.

mod support;

use std::process::Command;
use std::time::Duration;

use ftps_testkit::storage::UserFiles;
use support::client::Control;
use support::{ftpsd, Server};

const PASSWORD: &str = "pat-password-1";
const TIMEOUT: Duration = Duration::from_secs(120);

/// A server with the user `pat`: downloads and listings everywhere, a write-only drop folder
/// `/incoming` (upload and mkdir, nothing else), everything in `/shared` but nothing in
/// `/shared/archive`; and `extra` flags for `ftpsd user add` (e.g. `--read-only`).
fn server_with_rules(extra: &[&str]) -> (Server, UserFiles) {
    let server = ftpsd().start();
    let files = server.add_user("pat", PASSWORD, extra);
    files.put("pub.txt", b"public");
    files.mkdir("incoming");
    files.mkdir("shared/archive");
    files.put("shared/archive/old.txt", b"archived");
    set(
        &server,
        &[
            "--permission",
            "/=list,download",
            "--permission",
            "/incoming=upload,mkdir",
            "--permission",
            "/shared=*",
            "--permission",
            "/shared/archive=",
        ],
    );
    (server, files)
}

/// `ftpsd user set pat ARGS...`, which must succeed.
fn set(server: &Server, args: &[&str]) {
    let out = user_set(server, args);
    assert!(out.status.success(), "user set {args:?}: {out:?}");
}

fn user_set(server: &Server, args: &[&str]) -> std::process::Output {
    let state = server.state_dir.display().to_string();
    let mut all = vec!["user", "set", "pat", "--state-dir", &state];
    all.extend_from_slice(args);
    server.ftpsd(&all, "")
}

async fn login(server: &Server) -> Control {
    Control::login(server, "pat", PASSWORD).await
}

#[tokio::test]
async fn every_command_follows_the_longest_covering_rule_and_a_refusal_changes_nothing() {
    let (server, files) = server_with_rules(&[]);
    let mut c = login(&server).await;

    // "/": list and download only.
    assert_eq!(c.retr("pub.txt").await, b"public");
    assert!(c.listing("LIST /").await.contains("pub.txt"));
    c.expect("HASH pub.txt", 213).await;
    for (line, what) in [
        ("STOR pub.txt", "overwrite"),
        ("STOR new.txt", "upload"),
        ("APPE pub.txt", "append"),
        ("STOU", "unique upload"),
    ] {
        let t = c.transfer(line, Some(b"changed")).await;
        assert_eq!(t.first.code.0, 550, "{what}: {t:?}");
        assert!(t.first.text().contains("Permission denied"), "{t:?}");
    }
    c.expect("DELE pub.txt", 550).await;
    c.expect("MKD d", 550).await;
    c.expect("SITE CHMOD 600 pub.txt", 550).await;
    c.expect("MFMT 20200102030405 pub.txt", 550).await;
    c.expect("RNFR pub.txt", 350).await;
    c.expect("RNTO moved.txt", 550).await;
    assert_eq!(files.read("pub.txt"), b"public");
    assert_eq!(files.names(""), ["incoming", "pub.txt", "shared"]);

    // "/incoming": a write-only drop folder; entering it is allowed.
    c.expect("CWD /incoming", 250).await;
    c.stor("up.txt", b"dropped").await;
    assert_eq!(files.read("incoming/up.txt"), b"dropped");
    let t = c.transfer("STOR up.txt", Some(b"replaced")).await;
    assert_eq!(t.first.code.0, 550, "overwrite in the drop folder: {t:?}");
    c.expect("REST 2", 350).await;
    let t = c.transfer("STOR up.txt", Some(b"XX")).await;
    assert_eq!(t.first.code.0, 550, "REST+STOR in the drop folder: {t:?}");
    let t = c.transfer("RETR up.txt", None).await;
    assert_eq!(t.first.code.0, 550, "download from the drop folder: {t:?}");
    let t = c.transfer("LIST", None).await;
    assert_eq!(t.first.code.0, 550, "listing of the drop folder: {t:?}");
    c.expect("HASH up.txt", 550).await;
    c.expect("DELE up.txt", 550).await;
    c.expect("MKD sub", 257).await;
    c.expect("RMD sub", 550).await;
    // A rename out of the drop folder needs rename at both ends.
    c.expect("RNFR up.txt", 350).await;
    c.expect("RNTO /shared/up.txt", 550).await;
    assert_eq!(files.read("incoming/up.txt"), b"dropped");
    assert!(files.is_dir("incoming/sub"));
    assert!(!files.exists("shared/up.txt"));

    // "/shared": everything.
    c.expect("CWD /shared", 250).await;
    c.stor("s.txt", b"one").await;
    c.stor("s.txt", b"two").await;
    assert_eq!(c.retr("s.txt").await, b"two");
    c.expect("RNFR s.txt", 350).await;
    c.expect("RNTO t.txt", 250).await;
    c.expect("MKD d", 257).await;
    c.expect("RMD d", 250).await;
    c.expect("DELE t.txt", 250).await;
    assert_eq!(files.names("shared"), ["archive"]);

    // "/shared/archive": nothing, though "/shared" allows everything.
    c.expect("CWD archive", 250).await;
    for line in ["RETR old.txt", "LIST", "STOR new.txt"] {
        let t = c.transfer(line, Some(b"x")).await;
        assert_eq!(t.first.code.0, 550, "{line}: {t:?}");
    }
    c.expect("DELE old.txt", 550).await;
    c.expect("RNFR old.txt", 350).await;
    c.expect("RNTO /shared/old.txt", 550).await;
    // ... nor may anything be renamed into it.
    c.stor("/shared/in.txt", b"in").await;
    c.expect("RNFR /shared/in.txt", 350).await;
    c.expect("RNTO /shared/archive/in.txt", 550).await;
    assert_eq!(files.names("shared/archive"), ["old.txt"]);
    assert_eq!(files.read("shared/archive/old.txt"), b"archived");
    c.expect("QUIT", 221).await;
}

#[tokio::test]
async fn a_read_only_user_may_upload_where_a_rule_says_so() {
    let server = ftpsd().start();
    let files = server.add_user("pat", PASSWORD, &["--read-only"]);
    files.put("pub.txt", b"public");
    files.mkdir("drop");
    set(&server, &["--permission", "/drop=upload"]);
    let mut c = login(&server).await;
    c.stor("/drop/in.txt", b"accepted").await;
    assert_eq!(files.read("drop/in.txt"), b"accepted");
    // Everywhere else `access = "read-only"` still decides.
    assert_eq!(c.retr("pub.txt").await, b"public");
    let t = c.transfer("STOR pub.txt", Some(b"changed")).await;
    assert_eq!(t.first.code.0, 550, "{t:?}");
    c.expect("DELE pub.txt", 550).await;
    assert_eq!(files.read("pub.txt"), b"public");
    // Without a rule that grants a write, the read-only refusal is as before.
    set(&server, &["--clear-permission", "/drop"]);
    let mut c = login(&server).await;
    let reply = c.expect("MKD x", 550).await;
    assert!(reply.text().contains("read-only"), "{reply}");
}

/// curl with the server's certificate, logged in as `pat`.
fn curl(server: &Server) -> Command {
    let mut cmd = Command::new("curl");
    cmd.args(["--silent", "--show-error", "--ssl-reqd", "--max-time", "60"])
        .arg("--cacert")
        .arg(server.state_dir.join("cert.pem"))
        .arg("--user")
        .arg(format!("pat:{PASSWORD}"));
    cmd
}

#[test]
fn curl_uploads_into_the_drop_folder_and_is_refused_elsewhere() {
    let (server, files) = server_with_rules(&[]);
    let base = format!("ftp://127.0.0.1:{}", server.explicit.port());
    let local = server.scratch("local").join("report.csv");
    std::fs::write(&local, b"a,b\n1,2\n").unwrap();

    let up = support::run_client(
        curl(&server)
            .arg("-T")
            .arg(&local)
            .arg(format!("{base}/incoming/")),
        TIMEOUT,
    );
    up.assert_ok("curl upload into /incoming");
    assert_eq!(files.read("incoming/report.csv"), b"a,b\n1,2\n");

    let refused = support::run_client(
        curl(&server).arg("-T").arg(&local).arg(format!("{base}/")),
        TIMEOUT,
    );
    assert!(!refused.status.success(), "{}", refused.stderr);
    assert!(refused.stderr.contains("550"), "{}", refused.stderr);
    assert!(!files.exists("report.csv"));

    let listing = support::run_client(curl(&server).arg(format!("{base}/incoming/")), TIMEOUT);
    assert!(
        !listing.status.success(),
        "listing of /incoming: {}",
        listing.stdout
    );

    let down = support::run_client(curl(&server).arg(format!("{base}/pub.txt")), TIMEOUT);
    down.assert_ok("curl download of /pub.txt");
    assert_eq!(down.stdout, "public");
}

#[test]
fn ftplib_gets_550_for_each_refused_step_and_nothing_changes() {
    let (server, files) = server_with_rules(&[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/ftplib_steps.py");
    let steps = [
        "retr:/pub.txt",
        "stor:/pub.txt:overwritten",
        "stor:/incoming/a.txt:dropped",
        "stor:/incoming/a.txt:again",
        "list:/incoming",
        "retr:/incoming/a.txt",
        "dele:/pub.txt",
        "mkd:/incoming/sub",
        "rmd:/incoming/sub",
        "rename:/pub.txt:/renamed.txt",
        "retr:/shared/archive/old.txt",
    ];
    let mut cmd = Command::new("python3");
    cmd.arg(script)
        .args(steps)
        .env("FTP_HOST", "127.0.0.1")
        .env("FTP_PORT", server.explicit.port().to_string())
        .env("FTP_USER", "pat")
        .env("FTP_PASSWORD", PASSWORD)
        .env("FTP_CAFILE", server.state_dir.join("cert.pem"))
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let run = support::run_client(&mut cmd, TIMEOUT);
    run.assert_ok("ftplib steps");
    let lines: Vec<&str> = run.stdout.lines().collect();
    let expected = [
        "retr:/pub.txt -> OK public",
        "stor:/pub.txt:overwritten -> 550 Permission denied.",
        "stor:/incoming/a.txt:dropped -> OK",
        "stor:/incoming/a.txt:again -> 550 Permission denied.",
        "list:/incoming -> 550 Permission denied.",
        "retr:/incoming/a.txt -> 550 Permission denied.",
        "dele:/pub.txt -> 550 Permission denied.",
        "mkd:/incoming/sub -> OK",
        "rmd:/incoming/sub -> 550 Permission denied.",
        "rename:/pub.txt:/renamed.txt -> 550 Permission denied.",
        "retr:/shared/archive/old.txt -> 550 Permission denied.",
    ];
    assert_eq!(lines, expected, "{}", run.stderr);
    assert_eq!(files.read("pub.txt"), b"public");
    assert_eq!(files.read("incoming/a.txt"), b"dropped");
    assert!(!files.exists("renamed.txt"));
    assert_eq!(files.read("shared/archive/old.txt"), b"archived");
}

#[test]
fn user_set_and_show_permissions_and_refuse_bad_rules() {
    let server = ftpsd().start();
    server.add_user("pat", PASSWORD, &[]);
    set(
        &server,
        &["--permission", "/in=upload,mkdir", "--permission", "/=*"],
    );
    let state = server.state_dir.display().to_string();
    let show = server.ftpsd(&["user", "show", "pat", "--state-dir", &state], "");
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(shown.contains("[users.pat.permissions]"), "{shown}");
    assert!(
        shown.contains("\"/in\" = [\"upload\", \"mkdir\"]"),
        "{shown}"
    );
    assert!(shown.contains("\"/\" = [\"*\"]"), "{shown}");
    assert!(!shown.contains("argon2"), "the hash is not shown: {shown}");
    for (bad, needle) in [
        ("in=upload", "must be absolute"),
        ("/in=write", "unknown permission \"write\""),
        ("/in", "expected PATH=PERMS"),
    ] {
        let out = user_set(&server, &["--permission", bad]);
        assert!(!out.status.success(), "{bad}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(needle),
            "{bad}: {out:?}"
        );
    }
    // A refused change leaves the file as it was.
    let again = server.ftpsd(&["user", "show", "pat", "--state-dir", &state], "");
    assert_eq!(String::from_utf8_lossy(&again.stdout), shown);
}

/// The `perm` fact of `MLST path` (RFC 3659 §7.5.5).
async fn perm_of(c: &mut Control, path: &str) -> String {
    let reply = c.expect(&format!("MLST {path}"), 250).await;
    let text = format!("{reply:?}");
    let start = text.find("perm=").expect("a perm fact") + "perm=".len();
    text[start..]
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn mlst_perm_facts_say_what_the_rules_allow() {
    // Clients offer what the perm fact lists; it follows the rules, not the access level.
    let (server, files) = server_with_rules(&[]);
    files.put("incoming/drop.txt", b"dropped");
    files.put("shared/doc.txt", b"doc");
    let mut c = login(&server).await;
    c.expect("OPTS MLST type;perm;", 200).await;
    assert_eq!(perm_of(&mut c, "/").await, "el");
    assert_eq!(perm_of(&mut c, "/pub.txt").await, "r");
    assert_eq!(perm_of(&mut c, "/incoming").await, "ecm");
    assert_eq!(perm_of(&mut c, "/incoming/drop.txt").await, "");
    assert_eq!(perm_of(&mut c, "/shared").await, "eldfcmp");
    assert_eq!(perm_of(&mut c, "/shared/doc.txt").await, "radfw");
    assert_eq!(perm_of(&mut c, "/shared/archive").await, "e");
    assert_eq!(perm_of(&mut c, "/shared/archive/old.txt").await, "");
}
