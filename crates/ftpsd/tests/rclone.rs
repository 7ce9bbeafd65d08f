//! rclone's FTP backend as a real client (explicit and implicit FTPS).

mod support;

use std::process::Command;
use std::time::Duration;

use support::{ftpsd, Run, Server};

const TIMEOUT: Duration = Duration::from_secs(300);

/// rclone with an on-the-fly `:ftp:` remote. rclone 1.60 cannot be given a CA for FTP, so
/// certificate checks are off: the other client tests cover verification.
fn rclone(server: &Server, implicit: bool, args: &[&str]) -> Run {
    let obscured = support::run_with_stdin(
        Command::new("rclone").args(["obscure", "-"]),
        &server.password,
    );
    assert!(obscured.status.success(), "rclone obscure: {obscured:?}");
    let pass = String::from_utf8(obscured.stdout)
        .unwrap()
        .trim()
        .to_string();
    let port = if implicit {
        server.implicit.port()
    } else {
        server.explicit.port()
    };
    let mut cmd = Command::new("rclone");
    cmd.args([
        "--config",
        "/dev/null",
        "--low-level-retries",
        "1",
        "--retries",
        "1",
    ])
    .args(["--ftp-host", "127.0.0.1", "--ftp-user", "ftps"])
    .args(["--ftp-port", &port.to_string(), "--ftp-pass", &pass])
    .arg(if implicit {
        "--ftp-tls"
    } else {
        "--ftp-explicit-tls"
    })
    .arg("--ftp-no-check-certificate")
    // rclone 1.60 (Debian 12) shares one TLS session cache between its connections, so a
    // data connection can present another control connection's ticket (522): one
    // connection at a time. Newer rclone keeps a cache per connection.
    .args(["--transfers", "1", "--checkers", "1"])
    .args(args);
    support::run_client(&mut cmd, TIMEOUT)
}

fn round_trip(implicit: bool) {
    let server = ftpsd().start();
    let local = server.scratch("local");
    let files = support::standard_files(&local);
    let back = server.scratch("back");
    let (local_s, back_s) = (local.display().to_string(), back.display().to_string());

    rclone(&server, implicit, &["copy", &local_s, ":ftp:up"]).assert_ok("rclone copy up");
    for f in &files {
        support::assert_same_content(f, &server.data_dir().join("up").join(&f.name), "rclone up");
    }
    let listing = rclone(&server, implicit, &["lsl", ":ftp:up"]);
    listing.assert_ok("rclone lsl");
    for f in &files {
        assert!(
            listing
                .stdout
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{} ", f.len)) && l.ends_with(&f.name)),
            "{} ({} bytes) not in rclone lsl:\n{}",
            f.name,
            f.len,
            listing.stdout
        );
    }
    rclone(&server, implicit, &["copy", ":ftp:up", &back_s]).assert_ok("rclone copy down");
    for f in &files {
        support::assert_same_content(f, &back.join(&f.name), "rclone down");
    }
    rclone(&server, implicit, &["delete", ":ftp:up"]).assert_ok("rclone delete");
    let left = std::fs::read_dir(server.data_dir().join("up"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(left, 0, "files left after rclone delete");
}

#[test]
fn rclone_explicit_ftps() {
    round_trip(false);
}

#[test]
fn rclone_implicit_ftps() {
    round_trip(true);
}
