//! The `ftps` binary driven as a subprocess against ftpsd and vsftpd: the 1,000-file mirror
//! both ways, everyday commands, JSON output, exit codes and error messages.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use ftps_testkit::files::{content, make_tree, tree_hashes};
use ftps_testkit::reference::{give_to_test_user, start, Kind, Server};

fn fp(server: &Server) -> String {
    ftps_client::error::format_fingerprint(&server.fingerprint)
}

fn url(server: &Server, implicit: bool, rel: &str) -> String {
    let (scheme, port) = if implicit {
        ("ftps", server.implicit_port.unwrap())
    } else {
        ("ftpes", server.explicit_port)
    };
    let path = ftps_client::client::join(&server.base, rel);
    let path = if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    };
    let path = path.replace(' ', "%20");
    format!("{scheme}://{}@127.0.0.1:{port}{path}", server.user)
}

/// Runs `ftps ARGS` with the server's pin and password (on stdin).
fn ftps(server: &Server, args: &[&str], cwd: &Path) -> Output {
    ftps_with(server, args, cwd, &server.password, true)
}

fn ftps_with(server: &Server, args: &[&str], cwd: &Path, password: &str, pin: bool) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ftps"));
    cmd.args(args)
        .arg("--password-stdin")
        .arg("--no-netrc")
        .arg("--timeout")
        .arg("30")
        .current_dir(cwd)
        .env_remove("FTPS_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if pin {
        cmd.arg("--pin-sha256").arg(fp(server));
    }
    let mut child = cmd.spawn().expect("run ftps");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(password.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "ftps failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(out: &Output) -> serde_json::Value {
    let text = ok(out);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn mirror_thousand(kind: Kind) {
    let server = start(kind);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    make_tree(&src, 1000, 2000);
    let want = tree_hashes(&src);
    let up = json(&ftps(
        &server,
        &[
            "mirror",
            "src",
            &url(&server, false, "m"),
            "--parallel",
            "4",
            "--json",
        ],
        work.path(),
    ));
    assert_eq!(up["transferred"], 1001, "{up}");
    assert_eq!(
        want,
        tree_hashes(&server.root.join("m")),
        "uploaded tree differs"
    );

    let down = json(&ftps(
        &server,
        &[
            "mirror",
            &url(&server, false, "m"),
            "dst",
            "-P",
            "4",
            "--json",
        ],
        work.path(),
    ));
    assert_eq!(down["transferred"], 1001, "{down}");
    assert_eq!(
        want,
        tree_hashes(&work.path().join("dst")),
        "downloaded tree differs"
    );

    // Nothing changed: nothing is transferred either way.
    let again = json(&ftps(
        &server,
        &["mirror", "src", &url(&server, false, "m"), "--json"],
        work.path(),
    ));
    assert_eq!(again["transferred"], 0, "{again}");
    let again = json(&ftps(
        &server,
        &["mirror", &url(&server, false, "m"), "dst", "--json"],
        work.path(),
    ));
    assert_eq!(again["transferred"], 0, "{again}");
}

#[test]
fn mirror_1000_files_up_and_down_ftpsd() {
    mirror_thousand(Kind::Ftpsd);
}

#[test]
fn mirror_1000_files_up_and_down_vsftpd() {
    mirror_thousand(Kind::Vsftpd);
}

fn everyday(kind: Kind, implicit: bool) {
    let server = start(kind);
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let data = content(5, 2_000_000);
    std::fs::write(w.join("file one.bin"), &data).unwrap();

    // put, ls, stat, hash, cat, get
    ok(&ftps(
        &server,
        &["put", "file one.bin", &url(&server, implicit, "")],
        w,
    ));
    assert_eq!(
        std::fs::read(server.root.join("file one.bin")).unwrap(),
        data
    );
    let ls = ok(&ftps(&server, &["ls", &url(&server, implicit, "")], w));
    assert!(ls.lines().any(|l| l == "file one.bin"), "{ls}");
    let list = json(&ftps(
        &server,
        &["ls", "--json", &url(&server, implicit, "")],
        w,
    ));
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "file one.bin")
        .unwrap();
    assert_eq!(entry["size"], data.len() as u64);
    assert_eq!(entry["type"], "file");
    let st = json(&ftps(
        &server,
        &["stat", "--json", &url(&server, implicit, "file one.bin")],
        w,
    ));
    assert_eq!(st["size"], data.len() as u64);
    let want = format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(&data));
    let hash = json(&ftps(
        &server,
        &["hash", "--json", &url(&server, implicit, "file one.bin")],
        w,
    ));
    assert_eq!(hash["sha256"], want.as_str(), "{hash}");
    // ftpsd has HASH; ProFTPD (without mod_digest) and Pure-FTPd do not.
    let by = if kind == Kind::Ftpsd {
        "server"
    } else {
        "client"
    };
    assert_eq!(hash["computed_by"], by, "{hash}");
    let hash = ok(&ftps(
        &server,
        &[
            "hash",
            "--download",
            &url(&server, implicit, "file one.bin"),
        ],
        w,
    ));
    assert!(hash.starts_with(&want), "{hash}");
    let cat = ftps(
        &server,
        &["cat", &url(&server, implicit, "file one.bin")],
        w,
    );
    assert!(cat.status.success());
    assert_eq!(cat.stdout, data);
    let got = json(&ftps(
        &server,
        &[
            "get",
            "--json",
            &url(&server, implicit, "file one.bin"),
            "copy.bin",
        ],
        w,
    ));
    assert_eq!(got["bytes"], data.len() as u64);
    assert_eq!(got["tls_session_resumed"], true);
    assert_eq!(std::fs::read(w.join("copy.bin")).unwrap(), data);

    // Resume a download that stopped half-way.
    std::fs::write(w.join("partial.bin"), &data[..777_777]).unwrap();
    let got = json(&ftps(
        &server,
        &[
            "get",
            "-c",
            "--json",
            &url(&server, implicit, "file one.bin"),
            "partial.bin",
        ],
        w,
    ));
    assert_eq!(got["resumed_from"], 777_777);
    assert_eq!(got["bytes"], (data.len() - 777_777) as u64);
    assert_eq!(std::fs::read(w.join("partial.bin")).unwrap(), data);

    // Resume an upload.
    std::fs::write(server.root.join("up.bin"), &data[..1000]).unwrap();
    give_to_test_user(&server);
    std::fs::write(w.join("up.bin"), &data).unwrap();
    ok(&ftps(
        &server,
        &["put", "-c", "up.bin", &url(&server, implicit, "up.bin")],
        w,
    ));
    assert_eq!(std::fs::read(server.root.join("up.bin")).unwrap(), data);

    // mkdir, mv, rm, rmdir
    ok(&ftps(
        &server,
        &["mkdir", "-p", &url(&server, implicit, "a/b/c")],
        w,
    ));
    assert!(server.root.join("a/b/c").is_dir());
    ok(&ftps(
        &server,
        &["mv", &url(&server, implicit, "up.bin"), "a/b/moved.bin"],
        w,
    ));
    assert!(server.root.join("a/b/moved.bin").exists());
    ok(&ftps(
        &server,
        &["rm", &url(&server, implicit, "a/b/moved.bin")],
        w,
    ));
    ok(&ftps(
        &server,
        &["rmdir", &url(&server, implicit, "a/b/c")],
        w,
    ));
    assert!(!server.root.join("a/b/c").exists());

    // Exit codes and messages.
    let missing = ftps(&server, &["get", &url(&server, implicit, "nope.bin")], w);
    assert_eq!(
        missing.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    let bad_login = ftps_with(
        &server,
        &["ls", &url(&server, implicit, "")],
        w,
        "wrong-password",
        true,
    );
    assert_eq!(
        bad_login.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&bad_login.stderr)
    );
    // Not trusted by the system roots: refused, with the fingerprint and how to trust it.
    let untrusted = ftps_with(
        &server,
        &["ls", &url(&server, implicit, "")],
        w,
        &server.password,
        false,
    );
    assert_eq!(untrusted.status.code(), Some(4));
    let msg = String::from_utf8_lossy(&untrusted.stderr);
    assert!(
        msg.contains(&fp(&server)) && msg.contains("--pin-sha256"),
        "{msg}"
    );
    let json_err = ftps(
        &server,
        &["rm", "--json", &url(&server, implicit, "nope.bin")],
        w,
    );
    let err: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&json_err.stderr).trim()).unwrap();
    assert_eq!(err["reply_code"], 550);
    assert_eq!(err["exit_code"], 6);
}

#[test]
fn everyday_commands_ftpsd_explicit() {
    everyday(Kind::Ftpsd, false);
}

#[test]
fn everyday_commands_ftpsd_implicit() {
    everyday(Kind::Ftpsd, true);
}

#[test]
fn everyday_commands_proftpd() {
    everyday(Kind::Proftpd, false);
}

#[test]
fn everyday_commands_pure_ftpd() {
    everyday(Kind::PureFtpd, false);
}

#[test]
fn connection_refused_is_exit_3_and_usage_is_exit_2() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let out = Command::new(env!("CARGO_BIN_EXE_ftps"))
        .args(["ls", &format!("ftpes://u@127.0.0.1:{port}/"), "--no-netrc"])
        .env("FTPS_PASSWORD", "x")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_ftps"))
        .args(["ls", "http://nope/"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A server that accepts the connection and then says nothing: --timeout ends it, exit 3.
#[test]
fn silent_server_times_out_with_exit_3() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let holder = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        std::thread::sleep(std::time::Duration::from_secs(4));
        drop(conn);
    });
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_ftps"))
        .args([
            "ls",
            &format!("ftpes://u@127.0.0.1:{port}/"),
            "--no-netrc",
            "--timeout",
            "1",
        ])
        .env("FTPS_PASSWORD", "x")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("timed out"), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
    holder.join().unwrap();
}
