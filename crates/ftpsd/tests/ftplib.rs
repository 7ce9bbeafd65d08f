//! Python's `ftplib.FTP_TLS` as a real client (script in `tests/py/ftplib_client.py`).

mod support;

use std::process::Command;
use std::time::Duration;

use ftps_testkit::storage::UserFiles;
use support::{ftpsd, Run, Server, TestFile};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/ftplib_client.py");
const TIMEOUT: Duration = Duration::from_secs(300);

/// Plain ftplib cannot resume TLS sessions on data connections ("seed"); the subclass
/// from the docs can ("reuse").
#[derive(Clone, Copy)]
enum Mode {
    Seed,
    Reuse,
}

fn python(server: &Server, mode: Mode, user: &str, password: &str, args: &[String]) -> Run {
    let mode = match mode {
        Mode::Seed => "seed",
        Mode::Reuse => "reuse",
    };
    let mut cmd = Command::new("python3");
    cmd.arg(SCRIPT)
        .arg(mode)
        .args(args)
        .env("FTP_HOST", "127.0.0.1")
        .env("FTP_PORT", server.explicit.port().to_string())
        .env("FTP_USER", user)
        .env("FTP_PASSWORD", password)
        .env("FTP_CAFILE", server.state_dir.join("cert.pem"))
        .env("PYTHONDONTWRITEBYTECODE", "1");
    support::run_client(&mut cmd, TIMEOUT)
}

fn round_trip(server: &Server, mode: Mode, user: &str, password: &str, root: &UserFiles) {
    let files = support::standard_files(&server.scratch("local"));
    let out = server.scratch("downloaded");
    let names: Vec<String> = files.iter().map(|f| f.name.clone()).collect();
    let run = |args: Vec<String>| {
        let what = format!("ftplib {}", args[0]);
        let run = python(server, mode, user, password, &args);
        run.assert_ok(&what);
        eprintln!("{what}: {:?}", run.elapsed);
        run
    };

    let mut upload = vec!["upload".to_string()];
    upload.extend(files.iter().map(|f| f.path.display().to_string()));
    run(upload);
    for f in &files {
        root.assert_same_content(f, &f.name, "uploaded by ftplib");
    }

    let listing = run(vec!["list".into()]);
    support::assert_listed(&listing.stdout, &files, "ftplib LIST");

    let mut download = vec!["download".to_string(), out.display().to_string()];
    download.extend(names.iter().cloned());
    run(download);
    for f in &files {
        support::assert_same_content(f, &out.join(&f.name), "downloaded by ftplib");
    }

    let mut delete = vec!["delete".to_string()];
    delete.extend(names.iter().cloned());
    let after = run(delete);
    root.assert_empty("after ftplib delete");
    for f in &files {
        assert!(
            !after.stdout.contains(&f.name),
            "{} still listed: {after}",
            f.name
        );
    }
}

#[test]
fn ftplib_seed_example_with_optional_session_reuse_user() {
    let server = ftpsd().start();
    let root = server.add_user(
        "pyuser",
        "py-pass-123",
        &["--data-session-reuse", "optional"],
    );
    round_trip(&server, Mode::Seed, "pyuser", "py-pass-123", &root);
}

#[test]
fn ftplib_resuming_subclass_with_default_user() {
    let server = ftpsd().start();
    let root = server.files();
    round_trip(
        &server,
        Mode::Reuse,
        "ftps",
        &server.password.clone(),
        &root,
    );
}

#[test]
fn ftplib_seed_example_is_refused_when_session_reuse_is_required() {
    // Plain ftplib's data connections do not resume the control session: the default user
    // requires it, so transfers must fail (522) and nothing may be stored.
    let server = ftpsd().start();
    let f: TestFile = support::make_file(&server.scratch("local"), "small.bin", 1000);
    let upload = python(
        &server,
        Mode::Seed,
        "ftps",
        &server.password,
        &["upload".into(), f.path.display().to_string()],
    );
    assert!(
        !upload.status.success(),
        "non-resumed upload accepted:\n{upload}"
    );
    let stored = server.files().try_read("small.bin");
    assert!(
        stored.is_none_or(|data| data.is_empty()),
        "a non-resumed data connection stored data"
    );
    let list = python(
        &server,
        Mode::Seed,
        "ftps",
        &server.password,
        &["list".into()],
    );
    assert!(!list.status.success(), "non-resumed LIST accepted:\n{list}");
    for run in [&upload, &list] {
        assert_readable_522(run);
    }
}

/// The refusal reaches the user as ftplib's own error for a 5xx reply, naming the fix, not as
/// a TLS error from ftplib's shutdown of the data connection.
fn assert_readable_522(run: &Run) {
    assert!(
        run.stderr
            .contains("ftplib.error_perm: 522 Data connection refused")
            && run.stderr.contains("session=self.sock.session")
            && !run.stderr.contains("SSLError"),
        "expected ftplib.error_perm with a 522 naming the fix:\n{run}"
    );
}

/// The seeds' two Python examples, word for word but for the server, the account and the
/// file names: `FTP_TLS(host)`, `login`, `prot_p()`, then transfers. ftplib's class
/// attribute `port` points `FTP_TLS(host)` at the test server.
const SEED_LIST_EXAMPLE: &str = "\
from ftplib import FTP_TLS

# Connect to the FTPS server
ftps = FTP_TLS('ftp.example.com')
ftps.login(user='username', passwd='password')
ftps.prot_p()  # Switch to secure data connection

# List files in the current directory
ftps.retrlines('LIST')

# Close the connection
ftps.quit()
";

const SEED_TRANSFER_EXAMPLE: &str = "\
import ftplib # FTPS server configuration
ftps_server = 'ftp.example.com'
ftps_user = 'username'
ftps_password = 'password'
# Connect to the server
ftps = ftplib.FTP_TLS(ftps_server)
ftps.login(user=ftps_user, passwd=ftps_password)
ftps.prot_p() # Secure the data connection
# Upload a file
filename = 'upload.txt'
with open(filename, 'rb') as file:
    ftps.storbinary(f'STOR {filename}', file)
# Download a file
filename = 'download.txt'
with open(filename, 'wb') as file:
    ftps.retrbinary(f'RETR {filename}', file.write)
# List files in the current directory
ftps.retrlines('LIST')
# Logout and close the connection
ftps.quit()
";

fn run_seed_example(server: &Server, example: &str) -> Run {
    let script = format!(
        "import ftplib\nftplib.FTP.port = {}\n{}",
        server.explicit.port(),
        example
            .replace("ftp.example.com", "127.0.0.1")
            .replace("'username'", "'ftps'")
            .replace("'password'", &format!("'{}'", server.password))
    );
    let dir = server.scratch("seed");
    std::fs::write(dir.join("upload.txt"), b"uploaded by the seed example\n").unwrap();
    let mut cmd = Command::new("python3");
    cmd.arg("-c")
        .arg(script)
        .current_dir(&dir)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    support::run_client(&mut cmd, TIMEOUT)
}

#[test]
fn the_seeds_plain_ftplib_examples_get_a_522_that_names_the_fix() {
    let server = ftpsd().start();
    let list = run_seed_example(&server, SEED_LIST_EXAMPLE);
    assert!(!list.status.success(), "{list}");
    assert_readable_522(&list);
    let transfer = run_seed_example(&server, SEED_TRANSFER_EXAMPLE);
    assert!(!transfer.status.success(), "{transfer}");
    assert_readable_522(&transfer);
    assert!(
        !server.files().exists("upload.txt"),
        "the refused upload was stored"
    );
    // One refusal each, logged as such.
    let log = server.log_all();
    assert_eq!(
        log.matches("did not resume the control TLS session")
            .count(),
        2
    );
}
