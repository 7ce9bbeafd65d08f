//! Segmented downloads (`get --segments`), the bandwidth limit (`--limit-rate`) and retries
//! (`--retries`) with the `ftps` binary: segments against vsftpd, ProFTPD, Pure-FTPd and
//! ftpsd; retries against an ftpsd that is killed in the middle of a transfer and started
//! again on the same port, and against vsftpd, ProFTPD and Pure-FTPd whose session
//! processes are killed in the middle of a download and of an upload.

mod support;

use std::path::Path;
use std::process::Child;
use std::time::Duration;

use ftps_testkit::files::{content, sha256_file};
use ftps_testkit::ftpsd::{Ftpsd, Server as Ftpsd1, RUST_LOG};
use ftps_testkit::reference::{give_to_test_user, start, Kind};
use support::{ftps, json, ok, spawn, stderr, url};

const MIB: usize = 1024 * 1024;

fn sha256(data: &[u8]) -> String {
    format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(data))
}

fn segments(kind: Kind) {
    let server = start(kind);
    let name = kind.name();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    // Not a multiple of anything: the last segment is odd-sized.
    let data = content(7, 9 * MIB + 12_345);
    std::fs::write(server.root.join("big.bin"), &data).unwrap();
    give_to_test_user(&server);

    let report = json(&ftps(
        &server,
        &[
            "get",
            "--segments",
            "4",
            "--json",
            &url(&server, "big.bin"),
            "big.bin",
        ],
        w,
    ));
    assert_eq!(report["segments"], 4, "{name}: {report}");
    assert_eq!(report["bytes"], data.len() as u64, "{name}: {report}");
    assert_eq!(sha256_file(&w.join("big.bin")), sha256(&data), "{name}");
    assert!(
        !w.join(".big.bin.ftps-part").exists(),
        "{name}: part file left"
    );

    // A file too small to split comes in one stream.
    std::fs::write(server.root.join("small.bin"), b"small").unwrap();
    give_to_test_user(&server);
    let report = json(&ftps(
        &server,
        &[
            "get",
            "--segments",
            "4",
            "--json",
            &url(&server, "small.bin"),
        ],
        w,
    ));
    assert_eq!(report["segments"], 1, "{name}: {report}");
    assert_eq!(std::fs::read(w.join("small.bin")).unwrap(), b"small");

    // --continue is one stream by nature.
    let out = ftps(
        &server,
        &["get", "-c", "--segments", "2", &url(&server, "big.bin")],
        w,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    // The sessions are still good after the early ABORs: the same file again, then a listing.
    ok(&ftps(
        &server,
        &[
            "get",
            "--segments",
            "3",
            &url(&server, "big.bin"),
            "again.bin",
        ],
        w,
    ));
    assert_eq!(sha256_file(&w.join("again.bin")), sha256(&data), "{name}");

    // A limited upload and download: complete and intact. The limit can only make them
    // slower, never faster, so the time they took is at least what the budget allows.
    let small = content(8, 3 * MIB);
    std::fs::write(w.join("limited.bin"), &small).unwrap();
    let up = json(&ftps(
        &server,
        &[
            "put",
            "--limit-rate",
            "1M",
            "--json",
            "limited.bin",
            &url(&server, ""),
        ],
        w,
    ));
    assert_eq!(
        std::fs::read(server.root.join("limited.bin")).unwrap(),
        small,
        "{name}"
    );
    let seconds = up["seconds"].as_f64().unwrap();
    assert!(seconds >= 2.5, "{name}: 3 MiB at 1 MiB/s in {seconds} s");
    let down = json(&ftps(
        &server,
        &[
            "get",
            "--limit-rate",
            "512K",
            "--segments",
            "2",
            "--json",
            &url(&server, "limited.bin"),
            "limited-back.bin",
        ],
        w,
    ));
    assert_eq!(std::fs::read(w.join("limited-back.bin")).unwrap(), small);
    // Both segments share one budget.
    let seconds = down["seconds"].as_f64().unwrap();
    assert!(seconds >= 5.0, "{name}: 3 MiB at 512 KiB/s in {seconds} s");
    let out = ftps(
        &server,
        &["get", "--limit-rate", "fast", &url(&server, "x")],
        w,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn segments_and_rate_limit_vsftpd() {
    segments(Kind::Vsftpd);
}

#[test]
fn segments_and_rate_limit_proftpd() {
    segments(Kind::Proftpd);
}

#[test]
fn segments_and_rate_limit_pure_ftpd() {
    segments(Kind::PureFtpd);
}

#[test]
fn segments_and_rate_limit_ftpsd() {
    segments(Kind::Ftpsd);
}

/// An ftpsd on a fixed port whose sessions move at most `rate` per second, so a transfer
/// is still under way when the test kills the server.
fn slow_ftpsd(rate: &str) -> Ftpsd1 {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    Ftpsd::locate().start_with_listen_and(
        &format!("[\"127.0.0.1:{port}\"]"),
        &format!("[bandwidth]\nsession_download = \"{rate}\"\nsession_upload = \"{rate}\"\n"),
        RUST_LOG,
        |_| {},
    )
}

fn ftpsd_url(server: &Ftpsd1, rel: &str) -> String {
    format!("ftpes://ftps@{}/{rel}", server.explicit)
}

fn run(server: &Ftpsd1, args: &[&str], cwd: &Path) -> Child {
    spawn(args, cwd, &server.fingerprint, &server.password)
}

/// Waits until `path` holds at least `bytes` (the transfer is under way), then kills the
/// server and starts it again on the same port.
fn kill_when(server: &mut Ftpsd1, what: impl Fn() -> u64, bytes: u64) {
    for _ in 0..600 {
        if what() >= bytes {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(what() >= bytes, "the transfer did not start");
    server.signal("KILL");
    server.restart();
}

fn len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

#[test]
fn download_retries_resume_after_the_server_dies() {
    let mut server = slow_ftpsd("2M");
    let data = content(9, 8 * MIB);
    server.put("big.bin", &data);
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let child = run(
        &server,
        &[
            "get",
            "--retries",
            "5",
            "--json",
            &ftpsd_url(&server, "big.bin"),
            "big.bin",
        ],
        w,
    );
    let local = w.join("big.bin");
    let part = w.join(".big.bin.ftps-part");
    kill_when(&mut server, || len(&part), 2 * MIB as u64);
    assert!(!local.exists(), "the final name appeared before the end");
    let out = child.wait_with_output().unwrap();
    let report = json(&out);
    assert!(report["retries"].as_u64().unwrap() >= 1, "{report}");
    assert_eq!(sha256_file(&local), sha256(&data));
    // Resumed, not restarted: less than the whole file came the second time.
    assert!(
        report["bytes"].as_u64().unwrap() < 2 * data.len() as u64,
        "{report}"
    );
    let log = server.log_all();
    assert!(log.contains("REST"), "the retry did not resume with REST");
}

/// A one-stream download that fails leaves nothing under the final name and keeps the copy
/// that was there before; a destination that is a symbolic link is written through.
#[test]
fn failed_download_keeps_the_previous_copy() {
    let mut server = slow_ftpsd("2M");
    let data = content(13, 8 * MIB);
    server.put("big.bin", &data);
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let local = w.join("big.bin");
    let part = w.join(".big.bin.ftps-part");
    std::fs::write(&local, b"the copy from yesterday").unwrap();

    let child = run(&server, &["get", &ftpsd_url(&server, "big.bin")], w);
    kill_when(&mut server, || len(&part), 2 * MIB as u64);
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(&local).unwrap(),
        b"the copy from yesterday",
        "a failed download replaced the previous copy"
    );
    assert!(!part.exists(), "the part file was left");

    // The same download completes now, replacing the old copy.
    ok(&run(&server, &["get", &ftpsd_url(&server, "big.bin")], w)
        .wait_with_output()
        .unwrap());
    assert_eq!(sha256_file(&local), sha256(&data));
    assert!(!part.exists());

    // A symbolic link is written through, not renamed over (as a device or a FIFO would be).
    server.put("small.bin", b"through the link");
    std::os::unix::fs::symlink("target.bin", w.join("link.bin")).unwrap();
    ok(&run(
        &server,
        &["get", &ftpsd_url(&server, "small.bin"), "link.bin"],
        w,
    )
    .wait_with_output()
    .unwrap());
    assert!(
        std::fs::symlink_metadata(w.join("link.bin"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link was replaced"
    );
    assert_eq!(
        std::fs::read(w.join("target.bin")).unwrap(),
        b"through the link"
    );
}

#[test]
fn segmented_download_retries_and_never_leaves_a_partial_file() {
    // Four sessions at 512 KiB/s each: 16 MiB take about 8 s, killed after 2 s. (The part
    // file is preallocated, so its size does not tell how far the download is.)
    let mut server = slow_ftpsd("512K");
    let data = content(10, 16 * MIB);
    server.put("big.bin", &data);
    let work = tempfile::tempdir().unwrap();
    let w = work.path();

    // Without retries the download fails, and nothing is left under either name.
    let child = run(
        &server,
        &[
            "get",
            "--segments",
            "4",
            &ftpsd_url(&server, "big.bin"),
            "big.bin",
        ],
        w,
    );
    std::thread::sleep(Duration::from_secs(2));
    server.signal("KILL");
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "{}", stderr(&out));
    assert!(
        !w.join("big.bin").exists(),
        "a partial file under the final name"
    );
    assert!(
        !w.join(".big.bin.ftps-part").exists(),
        "the part file was left"
    );
    server.restart();

    // With retries every segment continues after the restart.
    let child = run(
        &server,
        &[
            "get",
            "--segments",
            "4",
            "--retries",
            "6",
            "--json",
            &ftpsd_url(&server, "big.bin"),
            "big.bin",
        ],
        w,
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !w.join("big.bin").exists(),
        "the final name appeared before the end"
    );
    server.signal("KILL");
    server.restart();
    let report = json(&child.wait_with_output().unwrap());
    assert_eq!(report["segments"], 4, "{report}");
    assert!(report["retries"].as_u64().unwrap() >= 1, "{report}");
    assert_eq!(sha256_file(&w.join("big.bin")), sha256(&data));
    assert!(!w.join(".big.bin.ftps-part").exists());
}

/// ftpsd drops what a broken upload sent (it keeps it under a hidden temporary name), so
/// `SIZE` finds nothing and the retry sends the file again from the start; a server that
/// keeps partial files gets `REST` at its size and the rest (the code path of `put -c`).
#[test]
fn upload_retries_continue_after_what_the_server_has() {
    let mut server = slow_ftpsd("2M");
    let data = content(11, 8 * MIB);
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    std::fs::write(w.join("up.bin"), &data).unwrap();
    let child = run(
        &server,
        &[
            "put",
            "--retries",
            "5",
            "--json",
            "up.bin",
            &ftpsd_url(&server, ""),
        ],
        w,
    );
    let dir = server.data_dir();
    let remote = dir.join("up.bin");
    // ftpsd writes an upload to a hidden temporary file and renames it at the end.
    let uploading = || {
        std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .starts_with(".ftpsd-upload.")
                    })
                    .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
                    .sum()
            })
            .unwrap_or(0)
    };
    kill_when(&mut server, uploading, 2 * MIB as u64);
    let report = json(&child.wait_with_output().unwrap());
    assert!(report["retries"].as_u64().unwrap() >= 1, "{report}");
    assert_eq!(sha256_file(&remote), sha256(&data));
    assert!(
        report["bytes"].as_u64().unwrap() < 2 * data.len() as u64,
        "{report}"
    );
}

#[test]
fn permanent_errors_are_not_retried() {
    let server = slow_ftpsd("0");
    let work = tempfile::tempdir().unwrap();
    let out = run(
        &server,
        &["get", "--retries", "5", &ftpsd_url(&server, "missing.bin")],
        work.path(),
    )
    .wait_with_output()
    .unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(!stderr(&out).contains("retry"), "{}", stderr(&out));
}

/// A download and an upload, each broken in the middle by killing the server's session
/// processes: both retry, continue where they stopped (`REST`; for the upload after `SIZE`
/// of what the server kept), and end with identical files.
fn retries_after_lost_sessions(kind: Kind) {
    let server = start(kind);
    let name = kind.name();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let data = content(12, 8 * MIB);
    std::fs::write(server.root.join("big.bin"), &data).unwrap();
    give_to_test_user(&server);
    let ended = |what: &str, progress: &dyn Fn() -> u64| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while progress() < 2 * MIB as u64 {
            assert!(
                std::time::Instant::now() < deadline,
                "{name}: {what} never got going"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            server.kill_sessions() > 0,
            "{name}: no session process to kill"
        );
    };

    let local = w.join("big.bin");
    let pin = support::fingerprint(&server);
    let child = spawn(
        &[
            "get",
            "--limit-rate",
            "2M",
            "--retries",
            "5",
            "--json",
            &url(&server, "big.bin"),
            "big.bin",
        ],
        w,
        &pin,
        &server.password,
    );
    ended("the download", &|| len(&w.join(".big.bin.ftps-part")));
    let report = json(&child.wait_with_output().unwrap());
    assert!(report["retries"].as_u64().unwrap() >= 1, "{name}: {report}");
    assert_eq!(sha256_file(&local), sha256(&data), "{name}");
    // Continued: at most what was in flight came twice.
    assert!(
        report["bytes"].as_u64().unwrap() < (data.len() + MIB) as u64,
        "{name}: {report}"
    );

    std::fs::write(w.join("up.bin"), &data).unwrap();
    let remote = server.root.join("up.bin");
    let child = spawn(
        &[
            "put",
            "--limit-rate",
            "2M",
            "--retries",
            "5",
            "--json",
            "up.bin",
            &url(&server, ""),
        ],
        w,
        &pin,
        &server.password,
    );
    ended("the upload", &|| len(&remote));
    let report = json(&child.wait_with_output().unwrap());
    assert!(report["retries"].as_u64().unwrap() >= 1, "{name}: {report}");
    assert_eq!(sha256_file(&remote), sha256(&data), "{name}");
    assert!(
        report["bytes"].as_u64().unwrap() < (data.len() + MIB) as u64,
        "{name}: the retry sent the file again instead of continuing: {report}"
    );
}

#[test]
fn retries_after_lost_sessions_vsftpd() {
    retries_after_lost_sessions(Kind::Vsftpd);
}

#[test]
fn retries_after_lost_sessions_proftpd() {
    retries_after_lost_sessions(Kind::Proftpd);
}

#[test]
fn retries_after_lost_sessions_pure_ftpd() {
    retries_after_lost_sessions(Kind::PureFtpd);
}
