//! Running the `ftps` binary against a test server: its URL, the pin and password it needs,
//! and reading what it printed.

#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use ftps_testkit::reference::Server;

pub fn fingerprint(server: &Server) -> String {
    ftps_client::error::format_fingerprint(&server.fingerprint)
}

/// `ftpes://user@127.0.0.1:PORT/BASE/rel` for a reference server.
pub fn url(server: &Server, rel: &str) -> String {
    let path = ftps_client::client::join(&server.base, rel);
    let path = if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    };
    format!(
        "ftpes://{}@127.0.0.1:{}{}",
        server.user,
        server.explicit_port,
        path.replace(' ', "%20")
    )
}

/// `ftps ARGS` with the pin `pin` and `password` on standard input, started in `cwd`.
pub fn spawn(args: &[&str], cwd: &Path, pin: &str, password: &str) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ftps"))
        .args(args)
        .args(["--password-stdin", "--no-netrc", "--timeout", "30"])
        .arg("--pin-sha256")
        .arg(pin)
        .current_dir(cwd)
        .env_remove("FTPS_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ftps");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(password.as_bytes())
        .unwrap();
    child
}

/// Runs `ftps ARGS` against a reference server and waits for it.
pub fn ftps(server: &Server, args: &[&str], cwd: &Path) -> Output {
    spawn(args, cwd, &fingerprint(server), &server.password)
        .wait_with_output()
        .unwrap()
}

/// Standard output of a run that must have succeeded.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "ftps failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Standard output of a successful `--json` run, parsed.
pub fn json(out: &Output) -> serde_json::Value {
    let text = ok(out);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Standard error as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
