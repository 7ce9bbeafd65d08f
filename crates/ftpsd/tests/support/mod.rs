//! What every ftpsd integration test uses: the test kit, and the ftpsd binary cargo built
//! for this test run.
//!
//! Each test binary uses a different part of it.
#![allow(dead_code, unused_imports)]

pub use ftps_testkit::files::*;
pub use ftps_testkit::ftpsd::{Ftpsd, Server, RUST_LOG};
pub use ftps_testkit::run::*;
pub use ftps_testkit::{client, pki};

use client::Control;

/// The binary under test, built by cargo for this test run.
pub const FTPSD: &str = env!("CARGO_BIN_EXE_ftpsd");

/// [`FTPSD`], to start servers with.
pub fn ftpsd() -> Ftpsd {
    Ftpsd::at(FTPSD)
}

/// Starts a server and logs in as `ftps` with PBSZ 0 / PROT P.
pub async fn logged_in() -> (Server, Control) {
    let server = ftpsd().start();
    let control = Control::login_default(&server).await;
    (server, control)
}

/// [`logged_in`] with a file `name` holding `content` in the root.
pub async fn logged_in_with(name: &str, content: &[u8]) -> (Server, Control) {
    let server = ftpsd().start();
    server.put(name, content);
    let control = Control::login_default(&server).await;
    (server, control)
}

/// rclone with an on-the-fly `:ftp:` remote, logged in as `ftps`, over implicit or explicit
/// FTPS. rclone 1.60 cannot be given a CA for FTP, so certificate checks are off: the other
/// client tests cover verification.
pub fn rclone(server: &Server, implicit: bool, args: &[&str]) -> Run {
    let obscured = run_with_stdin(
        std::process::Command::new("rclone").args(["obscure", "-"]),
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
    let mut cmd = std::process::Command::new("rclone");
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
    run_client(&mut cmd, std::time::Duration::from_secs(300))
}

/// Asserts that a curl run failed after the server sent `reply` (a line start).
pub fn assert_curl_refused(run: &Run, reply: &str, what: &str) {
    assert!(!run.status.success(), "{what}: curl succeeded:\n{run}");
    assert!(
        run.stderr
            .lines()
            .any(|l| l.starts_with(&format!("< {reply}"))),
        "{what}: curl did not get {reply:?}:\n{run}"
    );
}

/// The names of a LIST output, directories with a trailing `/`, sorted.
pub fn listed(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .lines()
        .filter_map(|line| {
            let name = line.split_whitespace().nth(8)?;
            Some(match line.starts_with('d') {
                true => format!("{name}/"),
                false => name.to_string(),
            })
        })
        .collect();
    names.sort();
    names
}

/// A file to upload with curl, in the server's temporary directory.
pub fn local_file(server: &Server, name: &str, content: &[u8]) -> String {
    let path = server.scratch("upload").join(name);
    std::fs::write(&path, content).expect("write the file to upload");
    path.display().to_string()
}

/// The samples of the server's Prometheus metrics (`[metrics]` must be on), scraped with
/// curl: `name{labels}` -> value. Panics unless the answer is OpenMetrics text.
pub fn scrape_metrics(server: &Server) -> std::collections::BTreeMap<String, f64> {
    let addr = server.metrics.expect("the metrics listener");
    let run = run_client(
        std::process::Command::new("curl")
            .args(["--silent", "--show-error", "--fail", "--max-time", "30"])
            .arg(format!("http://{addr}/metrics")),
        std::time::Duration::from_secs(60),
    );
    run.assert_ok("curl /metrics");
    assert!(
        run.stdout.ends_with("# EOF\n"),
        "not OpenMetrics text: {}",
        run.stdout
    );
    run.stdout
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').expect("name value");
            (name.to_string(), value.parse().expect("a number"))
        })
        .collect()
}

/// One sample of [`scrape_metrics`], 0 when absent.
pub fn sample(samples: &std::collections::BTreeMap<String, f64>, name: &str) -> f64 {
    samples.get(name).copied().unwrap_or(0.0)
}

/// `tests/py/login_steps.py STEPS...` against `server` as `user` with `password`, over TLS
/// unless `plain`: a login line, then one line per step.
pub fn login_steps(
    server: &Server,
    user: &str,
    password: &str,
    plain: bool,
    steps: &[&str],
) -> Run {
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/py/login_steps.py"
    ))
    .args(steps)
    .env("FTP_HOST", "127.0.0.1")
    .env("FTP_PORT", server.explicit.port().to_string())
    .env("FTP_USER", user)
    .env("FTP_PASSWORD", password)
    .env("FTP_CAFILE", server.state_dir.join("cert.pem"))
    .env("FTP_PLAIN", if plain { "1" } else { "0" })
    .env("PYTHONDONTWRITEBYTECODE", "1");
    run_client(&mut cmd, std::time::Duration::from_secs(120))
}

/// The lftp settings every lftp test uses: FTPS required on control and data (listings
/// too), passive mode, and the server's certificate checked against `ca_file`.
pub fn lftp_tls_settings(ca_file: &std::path::Path) -> String {
    format!(
        "set ftp:ssl-force true\n\
         set ftp:ssl-protect-data true\n\
         set ftp:ssl-protect-list true\n\
         set ftp:passive-mode true\n\
         set ssl:verify-certificate yes\n\
         set ssl:ca-file \"{}\"\n",
        ca_file.display()
    )
}
