//! The `ftps` Python package, installed with pip into a virtual environment and driven by
//! the Python scripts in `tests/scripts/` against vsftpd (`require_ssl_reuse=YES`), ProFTPD
//! and ftpsd.
//!
//! The environment is made once per run in `target/tmp/ftps-python/` and the package
//! installed with `pip install crates/ftps-python` (maturin fetched by pip as the build
//! backend, building in debug mode in the workspace's target directory); a stamp of the sources' SHA-256
//! skips the build when the installed package is from the same sources. The scripts get the
//! server's address, credentials and certificate in `FTPS_*` environment variables.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use ftps_testkit::files::content;
use ftps_testkit::reference::{give_to_test_user, start, start_with, Kind, Server};
use sha2::{Digest, Sha256};

/// The Python that makes the environment (`FTPS_TEST_PYTHON`, else `python3`).
fn base_python() -> String {
    std::env::var("FTPS_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn workspace_root() -> PathBuf {
    crate_dir().join("../..")
}

/// Every file whose change changes the package: this crate, the client library and the
/// protocol crate, the vendored rustls, and the manifests and lock file.
fn source_digest() -> String {
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in [
        "crates/ftps-python/src",
        "crates/ftps-python/python",
        "crates/ftps-client/src",
        "crates/ftps-proto/src",
        "vendor/rustls",
    ] {
        collect_files(&root.join(dir), &mut files);
    }
    for file in [
        "Cargo.toml",
        "Cargo.lock",
        "crates/ftps-python/Cargo.toml",
        "crates/ftps-python/pyproject.toml",
        "crates/ftps-python/README.md",
        "crates/ftps-client/Cargo.toml",
        "crates/ftps-proto/Cargo.toml",
    ] {
        files.push(root.join(file));
    }
    files.sort();
    let mut hash = Sha256::new();
    for file in &files {
        let rel = file.strip_prefix(&root).unwrap_or(file);
        hash.update(rel.to_string_lossy().as_bytes());
        hash.update([0]);
        let data =
            std::fs::read(file).unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        hash.update((data.len() as u64).to_le_bytes());
        hash.update(&data);
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name == "__pycache__" || name == "target" {
            continue;
        }
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what} ({cmd:?}): {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Makes the environment and installs the package, once per test process; returns the
/// environment's python. A failure is remembered, so that every test reports it without
/// building again.
fn python() -> PathBuf {
    static ENV: Mutex<Option<Result<PathBuf, String>>> = Mutex::new(None);
    let mut env = ENV.lock().unwrap_or_else(|e| e.into_inner());
    if env.is_none() {
        let made = std::panic::catch_unwind(make_env).map_err(|p| {
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "setting up the Python environment failed".into())
        });
        *env = Some(made);
    }
    match env.as_ref().unwrap() {
        Ok(python) => python.clone(),
        Err(e) => panic!("{e}"),
    }
}

fn make_env() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ftps-python");
    let venv = dir.join("venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        run(
            Command::new(base_python()).args(["-m", "venv"]).arg(&venv),
            "python3 -m venv (Debian: apt-get install python3-venv)",
        );
    }
    let stamp = venv.join("ftps-source.sha256");
    let digest = source_digest();
    let installed = std::fs::read_to_string(&stamp).unwrap_or_default();
    let importable = Command::new(&python)
        .args(["-c", "import ftps"])
        .output()
        .is_ok_and(|o| o.status.success());
    if installed.trim() == digest && importable {
        return python;
    }
    let _ = std::fs::remove_file(&stamp);
    run(
        Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--no-input"])
            .args([
                "--disable-pip-version-check",
                "--force-reinstall",
                "--no-deps",
            ])
            .arg(crate_dir())
            // A debug build in the workspace's target directory: it reuses what
            // `cargo test` built (cargo releases the directory while tests run), so only the
            // extension module is built, not the whole tree in release mode.
            .env("MATURIN_PEP517_ARGS", "--profile dev"),
        "pip install crates/ftps-python",
    );
    std::fs::write(&stamp, &digest).unwrap();
    python
}

/// How a script finds its server.
struct Target<'a> {
    server: &'a Server,
    /// Trust the server by its CA file (and name) instead of its pinned fingerprint.
    by_ca: bool,
}

fn fingerprint_hex(server: &Server) -> String {
    server
        .fingerprint
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Runs `tests/scripts/NAME` with the server in its environment, in `cwd`.
fn script(name: &str, target: &Target<'_>, cwd: &Path, extra: &[(&str, String)]) -> Output {
    let server = target.server;
    let mut cmd = Command::new(python());
    cmd.arg(crate_dir().join("tests/scripts").join(name))
        .current_dir(cwd)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("FTPS_HOST", "127.0.0.1")
        .env("FTPS_PORT", server.explicit_port.to_string())
        .env("FTPS_USER", &server.user)
        .env("FTPS_PASSWORD", &server.password)
        .env("FTPS_BASE", &server.base)
        .env("FTPS_SERVER", server.kind.name())
        .env(
            "FTPS_IMPLICIT_PORT",
            server
                .implicit_port
                .map(|p| p.to_string())
                .unwrap_or_default(),
        )
        .env("FTPS_CA_FILE_FOR_NAME", &server.ca_file)
        .env("FTPS_PIN_OF_SERVER", fingerprint_hex(server))
        .env("FTPS_CLIENT_CERT", &server.client_cert.0)
        .env("FTPS_CLIENT_KEY", &server.client_cert.1);
    if target.by_ca {
        cmd.env("FTPS_CA_FILE", &server.ca_file)
            .env_remove("FTPS_PIN");
    } else {
        cmd.env("FTPS_PIN", fingerprint_hex(server))
            .env_remove("FTPS_CA_FILE");
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
    run(&mut cmd, &format!("{name} against {}", server.kind.name()))
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The rewritten seed example: upload a file, download another, list the directory.
fn seed_example(kind: Kind, by_ca: bool) {
    let server = start(kind);
    let name = kind.name();
    let download = content(7, 1_234_567);
    std::fs::write(server.root.join("download.txt"), &download).unwrap();
    give_to_test_user(&server);
    let local = tempfile::tempdir().unwrap();
    let upload = content(8, 345_678);
    std::fs::write(local.path().join("upload.txt"), &upload).unwrap();

    let out = script(
        "seed_example.py",
        &Target {
            server: &server,
            by_ca,
        },
        local.path(),
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);

    // The download arrived whole, and the upload too.
    let got = std::fs::read(local.path().join("download.txt")).unwrap();
    assert_eq!(
        sha256_hex(&got),
        sha256_hex(&download),
        "{name}: downloaded file differs"
    );
    let uploaded = std::fs::read(server.root.join("upload.txt")).unwrap();
    assert_eq!(
        sha256_hex(&uploaded),
        sha256_hex(&upload),
        "{name}: uploaded file differs"
    );
    // The listing shows both files with their sizes and times.
    let listed: Vec<&str> = stdout.lines().collect();
    for (file, size) in [
        ("download.txt", download.len()),
        ("upload.txt", upload.len()),
    ] {
        let line = listed
            .iter()
            .find(|l| l.ends_with(&format!(" {file}")))
            .unwrap_or_else(|| panic!("{name}: {file} not listed:\n{stdout}"));
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[0], "file", "{name}: {line}");
        assert_eq!(fields[1], size.to_string(), "{name}: {line}");
        assert!(
            fields[2].ends_with("+00:00"),
            "{name}: time not UTC: {line}"
        );
    }
    // Three data connections (STOR, RETR, the listing), each resuming the TLS session.
    assert!(
        stdout.contains("data connections: 3, resumed: 3"),
        "{name}: not every data connection resumed the TLS session:\n{stdout}"
    );
}

#[test]
fn seed_example_vsftpd_with_required_session_reuse() {
    seed_example(Kind::Vsftpd, true);
}

#[test]
fn seed_example_proftpd() {
    seed_example(Kind::Proftpd, false);
}

#[test]
fn seed_example_ftpsd() {
    seed_example(Kind::Ftpsd, false);
}

/// Wrong password, refused certificates, unreachable server, missing files, bad arguments.
fn errors(kind: Kind) {
    let server = start(kind);
    let dir = tempfile::tempdir().unwrap();
    let refused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = refused.local_addr().unwrap().port();
    drop(refused);
    script(
        "errors.py",
        &Target {
            server: &server,
            by_ca: false,
        },
        dir.path(),
        &[("FTPS_CLOSED_PORT", closed_port.to_string())],
    );
}

#[test]
fn errors_ftpsd() {
    errors(Kind::Ftpsd);
}

#[test]
fn errors_vsftpd() {
    errors(Kind::Vsftpd);
}

/// The whole API against ftpsd: directories, renames, sizes, resume both ways, mirror
/// both ways, implicit TLS, TLS 1.2, threads.
#[test]
fn api_ftpsd() {
    let server = start(Kind::Ftpsd);
    let dir = tempfile::tempdir().unwrap();
    script(
        "api.py",
        &Target {
            server: &server,
            by_ca: false,
        },
        dir.path(),
        &[],
    );
}

/// The same against vsftpd, whose listings and replies differ.
#[test]
fn api_vsftpd() {
    let server = start(Kind::Vsftpd);
    let dir = tempfile::tempdir().unwrap();
    script(
        "api.py",
        &Target {
            server: &server,
            by_ca: true,
        },
        dir.path(),
        &[],
    );
}

/// A client certificate, required by ProFTPD.
#[test]
fn client_certificate_proftpd() {
    let server = start_with(Kind::Proftpd, true);
    let dir = tempfile::tempdir().unwrap();
    script(
        "client_cert.py",
        &Target {
            server: &server,
            by_ca: false,
        },
        dir.path(),
        &[],
    );
}

/// The type stubs name exactly what the module has, with the same parameters.
#[test]
fn stubs_match_the_module() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        Command::new(python())
            .arg(crate_dir().join("tests/scripts/stubs.py"))
            .arg(crate_dir().join("python/ftps/_native.pyi"))
            .current_dir(dir.path())
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        "stubs.py",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("stubs match"), "{stdout}");
}
