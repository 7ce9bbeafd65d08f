//! lftp as a real client, with `ftp:ssl-force` and `ftp:ssl-protect-data`.

mod support;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::{ftpsd, Run, Server, TestFile};

const TIMEOUT: Duration = Duration::from_secs(300);
const MARK: &str = "----- listing after delete -----";

/// Runs an lftp script after the connection settings; the password comes from the
/// environment so it never appears on a command line.
fn lftp(server: &Server, url: &str, body: &str) -> Run {
    let cert = server.state_dir.join("cert.pem");
    let script = format!(
        "set cmd:fail-exit yes\n\
         set net:max-retries 1\n\
         set net:timeout 60\n\
         set net:reconnect-interval-base 1\n\
         {}\
         open --env-password -u ftps {url}\n\
         {body}\n\
         bye\n",
        support::lftp_tls_settings(&cert)
    );
    let path = server
        .dir
        .path()
        .join(format!("script-{}.lftp", rand_suffix()));
    std::fs::write(&path, script).expect("write lftp script");
    let mut cmd = Command::new("lftp");
    cmd.arg("-f")
        .arg(&path)
        .env("LFTP_PASSWORD", &server.password);
    // lftp reads ~/.lftprc and /etc/lftp.conf; a clean HOME keeps user settings out.
    cmd.env("HOME", server.dir.path());
    support::run_client(&mut cmd, TIMEOUT)
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn round_trip(server: &Server, url: &str) {
    let files = support::standard_files(&server.scratch("local"));
    let out = server.scratch("downloaded");

    let mut put = String::new();
    for f in &files {
        writeln!(put, "put \"{}\" -o \"{}\"", f.path.display(), f.name).unwrap();
    }
    lftp(server, url, &put).assert_ok("lftp put");
    for f in &files {
        server
            .files()
            .assert_same_content(f, &f.name, "uploaded by lftp");
    }

    let listing = lftp(server, url, "ls");
    listing.assert_ok("lftp ls");
    support::assert_listed(&listing.stdout, &files, "lftp ls");

    let mut get = String::new();
    for f in &files {
        writeln!(
            get,
            "get \"{}\" -o \"{}\"",
            f.name,
            out.join(&f.name).display()
        )
        .unwrap();
    }
    lftp(server, url, &get).assert_ok("lftp get");
    for f in &files {
        assert_downloaded(f, &out);
    }

    let mut rm = String::new();
    for f in &files {
        writeln!(rm, "rm \"{}\"", f.name).unwrap();
    }
    writeln!(rm, "echo \"{MARK}\"\ncache flush\nls").unwrap();
    let after = lftp(server, url, &rm);
    after.assert_ok("lftp rm");
    server.files().assert_empty("after lftp rm");
    let after_listing = after.stdout.split(MARK).nth(1).unwrap_or_default();
    for f in &files {
        assert!(
            !after_listing.contains(&f.name),
            "{} still listed after rm:\n{after}",
            f.name
        );
    }
}

fn assert_downloaded(f: &TestFile, out: &Path) {
    support::assert_same_content(f, &out.join(&f.name), "downloaded by lftp");
}

#[test]
fn lftp_explicit_ftps() {
    let server = ftpsd().start();
    let url = format!("ftp://127.0.0.1:{}", server.explicit.port());
    round_trip(&server, &url);
}

#[test]
fn lftp_implicit_ftps() {
    let server = ftpsd().start();
    let url = format!("ftps://127.0.0.1:{}", server.implicit.port());
    round_trip(&server, &url);
}

#[test]
fn lftp_mirror_of_a_tree() {
    // Many small transfers on one control connection: each data connection must resume.
    let server = ftpsd().start();
    let src = server.scratch("tree");
    let mut files = Vec::new();
    for d in ["a", "a/b", "c"] {
        std::fs::create_dir_all(src.join(d)).unwrap();
        for i in 0..5 {
            files.push(support::make_file(&src.join(d), &format!("f{i}"), 1000 * i));
        }
    }
    let url = format!("ftp://127.0.0.1:{}", server.explicit.port());
    lftp(
        &server,
        &url,
        &format!("mirror -R \"{}\" tree", src.display()),
    )
    .assert_ok("lftp mirror -R");
    let back = server.scratch("back");
    lftp(
        &server,
        &url,
        &format!("mirror tree \"{}\"", back.join("tree").display()),
    )
    .assert_ok("lftp mirror");
    for d in ["a", "a/b", "c"] {
        for i in 0..5 {
            let name = format!("{d}/f{i}");
            let f = files
                .iter()
                .find(|f| f.path == src.join(&name))
                .expect("made file");
            server
                .files()
                .assert_same_content(f, &format!("tree/{name}"), "mirror -R");
            support::assert_same_content(f, &back.join("tree").join(&name), "mirror");
        }
    }
}
