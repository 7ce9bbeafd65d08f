//! curl as a real client: explicit FTPS (`--ssl-reqd`) and implicit FTPS (`ftps://`).

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::{ftpsd, Server, TestFile};

const TIMEOUT: Duration = Duration::from_secs(300);

/// curl with the server's certificate as the only trusted one.
fn curl(server: &Server, password: &str) -> Command {
    let mut cmd = Command::new("curl");
    cmd.args(["--silent", "--show-error", "--disable", "--max-time", "300"])
        .arg("--cacert")
        .arg(server.state_dir.join("cert.pem"))
        .arg("--user")
        .arg(format!("ftps:{password}"));
    cmd
}

/// Uploads, lists, downloads (SHA-256 compared) and deletes the standard files with curl,
/// each step its own curl run (and so its own login); downloads and deletes several files
/// per run.
fn round_trip(server: &Server, base: &str, explicit: bool) {
    let files = support::standard_files(&server.scratch("local"));
    let out = server.scratch("downloaded");
    let run = |what: &str, extra: &mut dyn FnMut(&mut Command)| {
        let mut cmd = curl(server, &server.password);
        if explicit {
            cmd.arg("--ssl-reqd");
        }
        extra(&mut cmd);
        let result = support::run_client(&mut cmd, TIMEOUT);
        result.assert_ok(&format!("curl {what}"));
        eprintln!("curl {what}: {:?}", result.elapsed);
        result
    };

    // One upload per curl run: see `curl_several_uploads_in_one_run` for several.
    for f in &files {
        run(&format!("upload {}", f.name), &mut |cmd| {
            cmd.arg("--upload-file")
                .arg(&f.path)
                .arg(format!("{base}/{}", f.name));
        });
    }
    for f in &files {
        server
            .files()
            .assert_same_content(f, &f.name, "uploaded by curl");
    }

    let listing = run("list", &mut |cmd| {
        cmd.arg(format!("{base}/"));
    });
    support::assert_listed(&listing.stdout, &files, "curl LIST");

    run("download", &mut |cmd| {
        for f in &files {
            cmd.arg("--output")
                .arg(out.join(&f.name))
                .arg(format!("{base}/{}", f.name));
        }
    });
    for f in &files {
        assert_downloaded(f, &out);
    }

    let after = run("delete", &mut |cmd| {
        for f in &files {
            cmd.arg("--quote").arg(format!("DELE {}", f.name));
        }
        cmd.arg(format!("{base}/"));
    });
    server.files().assert_empty("after curl DELE");
    for f in &files {
        assert!(
            !after.stdout.contains(&f.name),
            "{} still listed after DELE:\n{}",
            f.name,
            after.stdout
        );
    }
}

fn assert_downloaded(f: &TestFile, out: &Path) {
    support::assert_same_content(f, &out.join(&f.name), "downloaded by curl");
}

#[test]
fn curl_explicit_ftps() {
    let server = ftpsd().start();
    let base = format!("ftp://127.0.0.1:{}", server.explicit.port());
    round_trip(&server, &base, true);
}

#[test]
fn curl_implicit_ftps() {
    let server = ftpsd().start();
    let base = format!("ftps://127.0.0.1:{}", server.implicit.port());
    round_trip(&server, &base, false);
}

#[test]
fn curl_wrong_password_fails() {
    let server = ftpsd().start();
    let mut cmd = curl(&server, "wrong-password");
    cmd.arg("--ssl-reqd")
        .arg(format!("ftp://127.0.0.1:{}/", server.explicit.port()));
    let run = support::run_client(&mut cmd, TIMEOUT);
    assert!(!run.status.success(), "login with a wrong password:\n{run}");
    // curl exit 67: "The user name, password, or similar was not accepted".
    assert_eq!(run.status.code(), Some(67), "{run}");
}

#[test]
fn curl_without_tls_is_refused_login() {
    let server = ftpsd().start();
    let mut cmd = curl(&server, &server.password);
    cmd.arg(format!("ftp://127.0.0.1:{}/", server.explicit.port()));
    // No --ssl-reqd, no --ssl: curl tries to log in in plaintext.
    let run = support::run_client(&mut cmd, TIMEOUT);
    assert!(
        !run.status.success(),
        "plaintext login was accepted:\n{run}"
    );
}
