//! Many transfers in one session over TLS 1.3 under strict data-connection binding: each
//! real client runs the same workload against ftpsd (default `data_session_reuse =
//! "required"`) and against vsftpd 3.0.3 with `require_ssl_reuse=YES`.
//!
//! Against ftpsd every workload must finish with every data connection resumed, which the
//! test reads from the server's log: no refusal, and `data_tls="resumed"` on every completed
//! transfer. vsftpd's outcome is pinned in the row, so the table beside ours stays honest.
//! The rows are the second table of docs/compatibility.md.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ftps_client::{Config, Connector, TlsVersions, Trust};

use crate::support::{ftpsd, run_client, Run, Server};
use ftps_testkit::reference::{self, Kind};
use ftps_testkit::storage::UserFiles;

/// Longest run of one client command.
const TIMEOUT: Duration = Duration::from_secs(300);

/// One row of the strict-binding table.
pub struct Row {
    /// The test's name.
    pub id: &'static str,
    pub client: &'static str,
    pub workload: &'static str,
    /// vsftpd's outcome: "yes", or "no: why".
    pub vsftpd: &'static str,
}

/// A server under test, as a client sees it.
struct Target {
    name: &'static str,
    port: u16,
    user: String,
    password: String,
    /// The login directory's files (vsftpd's: on this machine's disk).
    root: UserFiles,
    fingerprint: [u8; 32],
    /// Local files of the client.
    scratch: PathBuf,
}

/// What a workload proved: the number of uploads the server must have completed.
type Outcome = Result<usize, String>;

macro_rules! workloads {
    ($($id:ident: $client:literal, $workload:literal, vsftpd: $vsftpd:literal => $run:path;)*) => {
        /// The table's rows, in order.
        pub const ROWS: &[Row] = &[$(Row {
            id: stringify!($id),
            client: $client,
            workload: $workload,
            vsftpd: $vsftpd,
        }),*];
        $(#[test] fn $id() { check($vsftpd, $run) })*
    };
}

workloads! {
    curl_tls13_twenty_uploads_one_command: "curl 7.88 (OpenSSL)",
        "20 uploads in one command (`-T \"{f0,...,f19}\"`), then 20 downloads in one \
         command (`f[0-19].bin`), `--tlsv1.3`",
        vsftpd: "no: **uploads are lost**: some files are stored empty or short, or curl exits \
                 18 (partial file). vsftpd sends TLS 1.3 tickets on upload connections; curl \
                 closes them unread, the kernel resets the connection, and the end of the \
                 upload never arrives" => curl_twenty_uploads;
    lftp_tls13_mirror_500_files: "lftp 4.9 (GnuTLS)",
        "`mirror -R` of 500 small files, TLS 1.3 only",
        vsftpd: "yes" => lftp_mirror_500;
    rclone_default_concurrency: "rclone 1.60 (Go)",
        "`copy` of 40 files up and back down with the default concurrency (4 transfers, \
         8 checkers: several control connections sharing one TLS session cache)",
        vsftpd: "no: rclone cannot connect: vsftpd answers its TLS handshake with \
                 `illegal_parameter` (also with `--ftp-concurrency 1`, so not a binding \
                 failure)" => rclone_default;
    ftplib_reuse_300_uploads: "Python ftplib (README subclass)",
        "300 uploads, a listing and 300 downloads in one session, TLS 1.3",
        vsftpd: "yes" => ftplib_300;
    ftps_client_tls13_only_1000_uploads: "ftps-client (rustls, no TLS 1.2 fallback)",
        "1,000 uploads, 1,000 downloads, then 100 × (upload, MLSD (LIST where the server has \
         no MLSD), download, LIST), one \
         session, TLS 1.3 only",
        vsftpd: "yes" => ftps_client_1000;
}

/// Runs `workload` against ftpsd, which must pass with every data connection resumed, and
/// against vsftpd, whose outcome must be `vsftpd_expected`.
fn check(vsftpd_expected: &str, workload: fn(&Target) -> Outcome) {
    let server = ftpsd().start();
    let target = Target {
        name: "ftpsd",
        port: server.explicit.port(),
        user: "ftps".into(),
        password: server.password.clone(),
        root: server.files(),
        fingerprint: ftps_client::Trust::parse_fingerprint(&server.fingerprint)
            .expect("ftpsd's fingerprint"),
        scratch: server.scratch("client"),
    };
    let uploads = workload(&target).unwrap_or_else(|e| panic!("ftpsd: {e}\n{}", server.log_text()));
    assert_every_data_connection_resumed(&server, uploads);
    drop(server);

    let reference = reference::start(Kind::Vsftpd);
    let target = Target {
        name: "vsftpd",
        port: reference.explicit_port,
        user: reference.user.clone(),
        password: reference.password.clone(),
        root: UserFiles::Local(reference.root.clone()),
        fingerprint: reference.fingerprint,
        scratch: reference.dir.path().join("client"),
    };
    fs::create_dir_all(&target.scratch).expect("scratch dir");
    if vsftpd_expected.starts_with("yes") {
        if let Err(e) = workload(&target) {
            panic!("vsftpd: expected success, got: {e}");
        }
        return;
    }
    // A failure that loses data depends on timing: "no" holds when any of three runs fails.
    for attempt in 0..3 {
        let scratch = target.scratch.join(format!("attempt-{attempt}"));
        fs::create_dir_all(&scratch).expect("scratch dir");
        let run = Target {
            scratch,
            root: target.root.clone(),
            user: target.user.clone(),
            password: target.password.clone(),
            ..target
        };
        if let Err(e) = workload(&run) {
            eprintln!("vsftpd failed as its row says: {e}");
            return;
        }
        for entry in fs::read_dir(target.root.local_path()).expect("vsftpd root") {
            let path = entry.expect("entry").path();
            let _ = fs::remove_dir_all(&path).or_else(|_| fs::remove_file(&path));
        }
    }
    panic!("vsftpd now passes this workload: update its row (\"{vsftpd_expected}\")");
}

/// From the server's log: no data connection refused, every TLS control connection on TLS
/// 1.3, every completed transfer on a resumed TLS session, and at least `uploads` STORs.
fn assert_every_data_connection_resumed(server: &Server, uploads: usize) {
    let log = server.log_all();
    assert!(
        !log.contains("did not resume"),
        "a data connection was refused:\n{}",
        server.log_text()
    );
    let secured: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("control connection secured"))
        .collect();
    assert!(!secured.is_empty());
    for line in &secured {
        assert!(line.contains("TLSv1_3"), "not TLS 1.3: {line}");
    }
    let complete: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("transfer complete"))
        .collect();
    for line in &complete {
        assert!(
            line.contains("data_tls=\"resumed\""),
            "a transfer did not resume: {line}"
        );
    }
    let stored = complete
        .iter()
        .filter(|l| l.contains("command=\"STOR\""))
        .count();
    assert!(
        stored >= uploads,
        "{stored} uploads completed, expected {uploads}"
    );
    assert!(
        !log.contains("transfer failed"),
        "a transfer failed:\n{}",
        server.log_text()
    );
}

fn ok_or(run: Run, what: &str) -> Result<Run, String> {
    if run.status.success() {
        Ok(run)
    } else {
        Err(format!("{what} failed ({}):\n{run}", run.status))
    }
}

/// Checks that the directory `dir` of `root` holds exactly `files`, by name and content.
fn same_files(
    root: &UserFiles,
    dir: &str,
    files: &[(String, Vec<u8>)],
    what: &str,
) -> Result<(), String> {
    if !root.is_dir(dir) {
        return Err(format!("{what}: no directory {dir}"));
    }
    let names = root.names(dir);
    let mut want: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
    want.sort();
    if names != want {
        return Err(format!(
            "{what}: {} files where {} were expected",
            names.len(),
            want.len()
        ));
    }
    for (name, data) in files {
        let path = if dir.is_empty() {
            name.clone()
        } else {
            format!("{dir}/{name}")
        };
        let stored = root.try_read(&path).unwrap_or_default();
        if stored != *data {
            return Err(format!(
                "{what}: {name} has {} bytes where {} were sent",
                stored.len(),
                data.len()
            ));
        }
    }
    Ok(())
}

/// `count` small files of distinct content, written under `dir`.
fn small_files(dir: &Path, count: usize) -> Vec<(String, Vec<u8>)> {
    fs::create_dir_all(dir).expect("local dir");
    (0..count)
        .map(|i| {
            let name = format!("f{i}.bin");
            let data = format!("file {i}\n").repeat(i % 97 + 1).into_bytes();
            fs::write(dir.join(&name), &data).expect("local file");
            (name, data)
        })
        .collect()
}

// ---- the workloads -----------------------------------------------------------------------

fn curl_twenty_uploads(t: &Target) -> Outcome {
    let local = t.scratch.join("curl");
    let files = small_files(&local, 20);
    let glob = files
        .iter()
        .map(|(n, _)| local.join(n).display().to_string())
        .collect::<Vec<_>>()
        .join(",");
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "120", "-k", "--ssl-reqd", "--tlsv1.3"])
        .args([
            "--ftp-create-dirs",
            "-u",
            &format!("{}:{}", t.user, t.password),
        ])
        .args(["-T", &format!("{{{glob}}}")])
        .arg(format!("ftp://127.0.0.1:{}/curl20/", t.port));
    ok_or(run_client(&mut cmd, TIMEOUT), "curl uploads")?;
    same_files(&t.root, "curl20", &files, "curl uploads")?;
    // And back: 20 downloads in one command (URL globbing).
    let back = t.scratch.join("curl-back");
    fs::create_dir_all(&back).expect("download dir");
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "120", "-k", "--ssl-reqd", "--tlsv1.3"])
        .args(["-u", &format!("{}:{}", t.user, t.password)])
        .arg(format!("ftp://127.0.0.1:{}/curl20/f[0-19].bin", t.port))
        .arg("-o")
        .arg(back.join("f#1.bin"));
    ok_or(run_client(&mut cmd, TIMEOUT), "curl downloads")?;
    same_files(&UserFiles::Local(back), "", &files, "curl downloads")?;
    Ok(files.len())
}

fn lftp_mirror_500(t: &Target) -> Outcome {
    let local = t.scratch.join("lftp500");
    let files = small_files(&local, 500);
    let script = format!(
        "set cmd:fail-exit yes\nset net:max-retries 1\nset net:timeout 60\n\
         set ftp:ssl-force true\nset ftp:ssl-protect-data true\n\
         set ftp:ssl-protect-list true\nset ssl:verify-certificate no\n\
         set ssl:priority NORMAL:-VERS-ALL:+VERS-TLS1.3\n\
         open --env-password -u {} ftp://127.0.0.1:{}\nmirror -R \"{}\" lftp500\nbye\n",
        t.user,
        t.port,
        local.display()
    );
    let path = t.scratch.join("mirror.lftp");
    fs::write(&path, script).expect("lftp script");
    let mut cmd = Command::new("lftp");
    cmd.arg("-f")
        .arg(&path)
        .env("LFTP_PASSWORD", &t.password)
        .env("HOME", &t.scratch);
    ok_or(run_client(&mut cmd, TIMEOUT), "lftp mirror -R")?;
    same_files(&t.root, "lftp500", &files, "lftp mirror -R")?;
    Ok(files.len())
}

fn rclone_default(t: &Target) -> Outcome {
    let local = t.scratch.join("rclone-up");
    let back = t.scratch.join("rclone-down");
    let files = small_files(&local, 40);
    let obscured = Command::new("rclone")
        .args(["obscure", &t.password])
        .output()
        .map_err(|e| format!("rclone obscure: {e}"))?;
    let obscured = String::from_utf8_lossy(&obscured.stdout).trim().to_string();
    let config = t.scratch.join("rclone.conf");
    fs::write(&config, "").expect("empty rclone config");
    let rclone = |from: &str, to: &str| -> Result<Run, String> {
        let mut cmd = Command::new("rclone");
        cmd.args(["copy", from, to])
            .arg("--config")
            .arg(&config)
            .args(["--ftp-host", "127.0.0.1", "--ftp-port", &t.port.to_string()])
            .args(["--ftp-user", &t.user, "--ftp-pass", &obscured])
            .args(["--ftp-explicit-tls", "--ftp-no-check-certificate"])
            .args(["--retries", "1", "--low-level-retries", "1"]);
        ok_or(
            run_client(&mut cmd, TIMEOUT),
            &format!("rclone copy {from} {to}"),
        )
    };
    rclone(&local.display().to_string(), ":ftp:rclone")?;
    same_files(&t.root, "rclone", &files, "rclone upload")?;
    rclone(":ftp:rclone", &back.display().to_string())?;
    same_files(&UserFiles::Local(back), "", &files, "rclone download")?;
    Ok(files.len())
}

const FTPLIB_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/strict_ftplib.py");

fn ftplib_300(t: &Target) -> Outcome {
    let mut cmd = Command::new("python3");
    cmd.arg(FTPLIB_SCRIPT)
        .args(["300", "ftplib300"])
        .env("FTP_HOST", "127.0.0.1")
        .env("FTP_PORT", t.port.to_string())
        .env("FTP_USER", &t.user)
        .env("FTP_PASSWORD", &t.password);
    let run = ok_or(run_client(&mut cmd, TIMEOUT), "ftplib")?;
    if !run.stdout.contains("listed 300") || !run.stdout.contains("downloaded 300") {
        return Err(format!("ftplib listed another number of files:\n{run}"));
    }
    if !t.root.is_dir("ftplib300") {
        return Err("no directory ftplib300".into());
    }
    let stored = t.root.names("ftplib300").len();
    if stored != 300 {
        return Err(format!("{stored} files stored, 300 expected"));
    }
    Ok(300)
}

fn ftps_client_1000(t: &Target) -> Outcome {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let config = Config {
            trust: Trust::Fingerprint(t.fingerprint),
            tls_versions: TlsVersions::Tls13Only,
            io_timeout: Duration::from_secs(60),
            ..Config::default()
        };
        let connector = Connector::new(config).map_err(|e| e.to_string())?;
        let mut ftp = connector
            .connect_and_login("127.0.0.1", t.port, &t.user, &t.password)
            .await
            .map_err(|e| format!("{}: login: {e}", t.name))?;
        ftp.mkdir("many").await.map_err(|e| e.to_string())?;
        let data = |i: usize| format!("upload {i}\n").repeat(i % 13 + 1).into_bytes();
        let mut uploads = 0;
        for i in 0..1000 {
            let body = data(i);
            ftp.upload(&format!("many/u{i}"), &mut &body[..], 0, &mut |_| {})
                .await
                .map_err(|e| format!("upload {i}: {e}"))?;
            uploads += 1;
        }
        for i in 0..1000 {
            let mut got = Vec::new();
            ftp.download(&format!("many/u{i}"), &mut got, 0, &mut |_| {})
                .await
                .map_err(|e| format!("download {i}: {e}"))?;
            if got != data(i) {
                return Err(format!("download {i} differs"));
            }
        }
        for i in 0..100 {
            let body = data(i + 1000);
            let path = format!("many/mixed{i}");
            ftp.upload(&path, &mut &body[..], 0, &mut |_| {})
                .await
                .map_err(|e| format!("mixed upload {i}: {e}"))?;
            uploads += 1;
            ftp.list_dir("many")
                .await
                .map_err(|e| format!("listing {i}: {e}"))?;
            let mut got = Vec::new();
            ftp.download(&path, &mut got, 0, &mut |_| {})
                .await
                .map_err(|e| format!("mixed download {i}: {e}"))?;
            if got != body {
                return Err(format!("mixed download {i} differs"));
            }
            ftp.list_raw("many")
                .await
                .map_err(|e| format!("LIST {i}: {e}"))?;
        }
        let (total, resumed) = ftp.data_connection_stats();
        if total != resumed || total != 2400 {
            return Err(format!(
                "{resumed} of {total} data connections resumed, 2400 expected"
            ));
        }
        ftp.quit().await.map_err(|e| e.to_string())?;
        Ok(uploads)
    })
}
