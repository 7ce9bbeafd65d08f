//! rclone's FTP backend as a real client (explicit and implicit FTPS).

mod support;

use support::{ftpsd, rclone};

fn round_trip(implicit: bool) {
    let server = ftpsd().start();
    let local = server.scratch("local");
    let files = support::standard_files(&local);
    let back = server.scratch("back");
    let (local_s, back_s) = (local.display().to_string(), back.display().to_string());

    rclone(&server, implicit, &["copy", &local_s, ":ftp:up"]).assert_ok("rclone copy up");
    for f in &files {
        server
            .files()
            .assert_same_content(f, &format!("up/{}", f.name), "rclone up");
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
    // rclone delete removes files and keeps directories; on S3 an emptied directory
    // without a marker is gone.
    let files = server.files();
    let left = if files.is_dir("up") {
        files.names("up")
    } else {
        Vec::new()
    };
    assert!(left.is_empty(), "files left after rclone delete: {left:?}");
}

#[test]
fn rclone_explicit_ftps() {
    round_trip(false);
}

#[test]
fn rclone_implicit_ftps() {
    round_trip(true);
}
