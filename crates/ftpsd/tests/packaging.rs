//! Packaging: the systemd unit (verified and scored by systemd-analyze, its hardening read
//! back), the sysusers.d and tmpfiles.d snippets (applied to a scratch root),
//! `ftpsd check-config` on a good setup and on each kind of broken one, the deploy guide's
//! configuration, and the manual pages (rendered by groff) and shell completions (loaded
//! in bash) that `ftpsd generate` writes.

mod support;

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::{run_client, run_with_stdin, Run, FTPSD};

/// The repository's root.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs a program to completion (a minute at most) and returns what it printed.
fn run(cmd: &mut Command) -> Run {
    run_client(cmd, Duration::from_secs(60))
}

fn ftpsd(args: &[&str]) -> Run {
    run(Command::new(FTPSD).args(args))
}

// ---------------------------------------------------------------------------------------
// The systemd unit
// ---------------------------------------------------------------------------------------

/// The highest overall exposure `systemd-analyze security` may give the unit. systemd 252
/// scores it 1.5 ("OK"); what is left is inherent to a public FTP server: it has the
/// network, binds ports below 1024, and reads the /proc files it needs.
const MAX_EXPOSURE: f64 = 2.0;

fn unit_text() -> String {
    fs::read_to_string(repo().join("contrib/systemd/ftpsd.service")).expect("read the unit")
}

/// The unit's settings as (section, key, value), in order; repeated keys stay repeated.
fn unit_settings(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut settings = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let (key, value) = line.split_once('=').expect("a unit line is KEY=VALUE");
        settings.push((section.clone(), key.trim().into(), value.trim().into()));
    }
    settings
}

/// The values of `key` in [Service].
fn service_values(settings: &[(String, String, String)], key: &str) -> Vec<String> {
    settings
        .iter()
        .filter(|(section, k, _)| section == "Service" && k == key)
        .map(|(_, _, value)| value.clone())
        .collect()
}

/// The unit in a scratch directory, its commands pointing at the binary under test
/// (`systemd-analyze verify` checks that they exist), with the manual pages it refers to
/// in `<dir>/man/man1` (verify checks those too, through `MANPATH`).
fn installed_unit(dir: &Path) -> PathBuf {
    let unit = dir.join("ftpsd.service");
    fs::write(&unit, unit_text().replace("/usr/bin/ftpsd", FTPSD)).unwrap();
    let man = dir.join("man/man1");
    ftpsd(&["generate", "man", &man.display().to_string()]).assert_ok("ftpsd generate man");
    unit
}

#[test]
fn the_unit_passes_systemd_analyze_verify() {
    let dir = tempfile::tempdir().unwrap();
    let unit = installed_unit(dir.path());
    let verify = run(Command::new("systemd-analyze")
        .args(["verify", &unit.display().to_string()])
        .env("MANPATH", dir.path().join("man"))
        .current_dir(dir.path()));
    verify.assert_ok("systemd-analyze verify");
    // Unknown directives and bad values are only warnings for verify.
    let complaints: Vec<&str> = verify
        .stderr
        .lines()
        .filter(|l| l.contains("ftpsd"))
        .collect();
    assert!(complaints.is_empty(), "verify complained:\n{verify}");
}

#[test]
fn the_unit_is_hardened() {
    let settings = unit_settings(&unit_text());
    let expected = [
        ("Type", "exec"),
        ("User", "ftpsd"),
        ("Group", "ftpsd"),
        ("ExecStart", "/usr/bin/ftpsd --config /etc/ftpsd/ftpsd.toml"),
        (
            "ExecStartPre",
            "/usr/bin/ftpsd check-config --config /etc/ftpsd/ftpsd.toml",
        ),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("KillSignal", "SIGTERM"),
        ("Restart", "on-failure"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ReadWritePaths", "/srv/ftp"),
        ("StateDirectory", "ftpsd"),
        ("LogsDirectory", "ftpsd"),
        ("CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"),
        ("AmbientCapabilities", "CAP_NET_BIND_SERVICE"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("SystemCallFilter", "@system-service"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("RestrictNamespaces", "yes"),
        ("UMask", "0077"),
    ];
    for (key, value) in expected {
        let values = service_values(&settings, key);
        assert!(
            values.iter().any(|v| v == value),
            "[Service] {key}={value} missing (found {values:?})"
        );
    }
    // Only what the server writes is writable: its state, its logs, the users' files.
    assert_eq!(service_values(&settings, "ReadWritePaths"), ["/srv/ftp"]);
    assert!(service_values(&settings, "ReadOnlyPaths").is_empty());

    let nofile: u64 = service_values(&settings, "LimitNOFILE")[0].parse().unwrap();
    let max_sessions = u64::from(ftps_server::Config::default().limits.max_sessions);
    assert!(
        nofile >= max_sessions * 4 + 64,
        "LimitNOFILE={nofile} is below what the default max_sessions needs"
    );
    // Running transfers get shutdown_grace after SIGTERM; systemd must wait longer.
    let stop = service_values(&settings, "TimeoutStopSec")[0].clone();
    let stop: u64 = stop.trim_end_matches('s').parse().unwrap();
    let grace = ftps_server::Config::default().timeouts.shutdown_grace;
    assert!(
        stop > grace,
        "TimeoutStopSec={stop} is not above the default shutdown grace ({grace} s)"
    );
}

#[test]
fn the_units_security_exposure_is_low() {
    let dir = tempfile::tempdir().unwrap();
    let unit = installed_unit(dir.path());
    let security = run(Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&unit)
        .current_dir(dir.path()));
    security.assert_ok("systemd-analyze security");
    // "→ Overall exposure level for ftpsd.service: 1.5 OK 🙂"
    let line = security
        .stdout
        .lines()
        .find(|l| l.contains("Overall exposure level for ftpsd.service:"))
        .unwrap_or_else(|| panic!("no overall exposure level:\n{security}"));
    let mut words = line.rsplit(':').next().unwrap().split_whitespace();
    let exposure: f64 = words.next().unwrap().parse().unwrap();
    let level = words.next().unwrap();
    assert!(
        exposure <= MAX_EXPOSURE && level == "OK",
        "exposure {exposure} {level}, want OK and at most {MAX_EXPOSURE}:\n{security}"
    );
}

#[test]
fn the_unit_runs_check_config_as_written() {
    // ExecStartPre as the unit writes it, with the binary and configuration of the test.
    let setup = Setup::new();
    let settings = unit_settings(&unit_text());
    let pre = service_values(&settings, "ExecStartPre")[0]
        .replace("/usr/bin/ftpsd", FTPSD)
        .replace("/etc/ftpsd/ftpsd.toml", &setup.config.display().to_string());
    let words: Vec<&str> = pre.split_whitespace().collect();
    let check = run(Command::new(words[0]).args(&words[1..]));
    check.assert_ok("the unit's ExecStartPre");
    assert!(check.stdout.contains("configuration OK"), "{check}");
}

#[test]
fn sysusers_and_tmpfiles_make_the_user_and_directories() {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir(root.path().join("etc")).unwrap();
    let snippet = |name: &str| fs::read_to_string(repo().join("contrib/systemd").join(name));
    let root_arg = format!("--root={}", root.path().display());
    let sysusers = run_with_stdin(
        Command::new("systemd-sysusers").args([&root_arg, "-"]),
        &snippet("ftpsd.sysusers").unwrap(),
    );
    assert!(sysusers.status.success(), "systemd-sysusers: {sysusers:?}");
    let passwd = fs::read_to_string(root.path().join("etc/passwd")).unwrap();
    let entry: Vec<&str> = passwd
        .lines()
        .find(|l| l.starts_with("ftpsd:"))
        .unwrap_or_else(|| panic!("no ftpsd user in {passwd:?}"))
        .split(':')
        .collect();
    assert_eq!(entry[5], "/var/lib/ftpsd", "home: {entry:?}");
    assert!(entry[6].ends_with("nologin"), "shell: {entry:?}");
    let uid: u32 = entry[2].parse().unwrap();
    assert!(uid > 0 && uid < 1000, "not a system user: {entry:?}");

    // Owners are set by name from the scratch root's passwd, which needs root.
    let tmpfiles = run_with_stdin(
        Command::new("systemd-tmpfiles").args(["--create", &root_arg, "-"]),
        &snippet("ftpsd.tmpfiles").unwrap(),
    );
    // SAFETY: geteuid has no preconditions and cannot fail.
    let as_root = unsafe { libc::geteuid() } == 0;
    if as_root {
        assert!(tmpfiles.status.success(), "systemd-tmpfiles: {tmpfiles:?}");
    }
    use std::os::unix::fs::MetadataExt;
    for (dir, mode, owner) in [
        ("var/lib/ftpsd", 0o700, uid),
        ("var/log/ftpsd", 0o750, uid),
        ("etc/ftpsd", 0o750, 0),
        ("etc/ftpsd/tls", 0o750, 0),
        ("srv/ftp", 0o750, uid),
    ] {
        let meta = fs::metadata(root.path().join(dir)).unwrap();
        assert_eq!(meta.mode() & 0o7777, mode, "{dir} mode");
        if as_root {
            assert_eq!((meta.uid(), meta.gid()), (owner, uid), "{dir} owner");
        }
    }
}

// ---------------------------------------------------------------------------------------
// ftpsd check-config
// ---------------------------------------------------------------------------------------

const DAY: time::Duration = time::Duration::days(1);

/// Writes a self-signed certificate for ftp.example.test valid over these dates, and its
/// key.
fn write_certificate(
    cert: &Path,
    key: &Path,
    not_before: time::Duration,
    not_after: time::Duration,
) {
    let now = time::OffsetDateTime::now_utc();
    let key_pair = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["ftp.example.test".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ftp.example.test");
    params.not_before = now + not_before;
    params.not_after = now + not_after;
    let certificate = params.self_signed(&key_pair).unwrap();
    fs::write(cert, certificate.pem()).unwrap();
    fs::write(key, key_pair.serialize_pem()).unwrap();
}

/// A complete, valid set-up in a scratch directory: a configuration with every listener
/// (on addresses this test holds bound, so a check that bound them would fail), a
/// certificate, users (local and in an S3 store) in the server's users file and in a
/// virtual host's, an S3 store with a credentials file and a log directory.
struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    _held: Vec<TcpListener>,
    addresses: Vec<String>,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        write_certificate(&path("cert.pem"), &path("key.pem"), -DAY, DAY * 90);
        fs::create_dir(path("log")).unwrap();
        fs::write(
            path("s3-credentials"),
            "[default]\naws_access_key_id = test\naws_secret_access_key = test-secret\n",
        )
        .unwrap();
        let held: Vec<TcpListener> = (0..3)
            .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let addresses: Vec<String> = held
            .iter()
            .map(|l| l.local_addr().unwrap().to_string())
            .collect();
        let config = path("ftpsd.toml");
        fs::write(
            &config,
            format!(
                r#"state_dir = "state"
listen = ["{}"]
implicit_listen = ["{}"]
users_file = "users.toml"

[tls]
certificate = "cert.pem"
private_key = "key.pem"

[passive]
ports = "50000-50100"
advertised_address = "203.0.113.7"

[metrics]
listen = "{}"

[log]
file = "log/ftpsd.log"
xferlog = "log/xferlog"

[storage.s3.archive]
endpoint = "http://127.0.0.1:9"
bucket = "ftp"
credentials = {{ file = "s3-credentials" }}

[hosts."ftp.example.test"]
users_file = "example-users.toml"
"#,
                addresses[0], addresses[1], addresses[2]
            ),
        )
        .unwrap();
        let setup = Setup {
            dir,
            config,
            _held: held,
            addresses,
        };
        let root = |name: &str| setup.path(&format!("files/{name}")).display().to_string();
        setup.add_user(&["alice", "--root", &root("alice")], None);
        setup.add_user(&["carol", "--storage", "archive", "--root", "carol"], None);
        setup.add_user(&["bob", "--root", &root("bob")], Some("example-users.toml"));
        setup
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn add_user(&self, args: &[&str], users: Option<&str>) {
        let mut cmd = Command::new(FTPSD);
        cmd.args(["user", "add"]).args(args);
        cmd.args([
            "--password-stdin",
            "--config",
            &self.config.display().to_string(),
        ]);
        if let Some(users) = users {
            cmd.arg("--users").arg(self.path(users));
        }
        let added = run_with_stdin(&mut cmd, "a-password\n");
        assert!(added.status.success(), "ftpsd user add {args:?}: {added:?}");
    }

    /// Replaces `from` with `to` in one of the set-up's files.
    fn edit(&self, name: &str, from: &str, to: &str) {
        let text = fs::read_to_string(self.path(name)).unwrap();
        assert!(text.contains(from), "{name} has no {from:?}:\n{text}");
        fs::write(self.path(name), text.replacen(from, to, 1)).unwrap();
    }

    fn check(&self) -> Run {
        ftpsd(&[
            "check-config",
            "--config",
            &self.config.display().to_string(),
        ])
    }
}

/// Asserts that the check failed with exit status 1 and reported each of `problems` on an
/// `error:` line.
fn assert_fails_with(check: &Run, problems: &[&str]) {
    assert_eq!(check.status.code(), Some(1), "exit status:\n{check}");
    assert!(!check.stdout.contains("configuration OK"), "{check}");
    for problem in problems {
        assert!(
            check
                .stderr
                .lines()
                .any(|l| l.starts_with("error: ") && l.contains(problem)),
            "no error line with {problem:?}:\n{check}"
        );
    }
}

#[test]
fn check_config_passes_a_good_setup_and_prints_a_summary() {
    let setup = Setup::new();
    let check = setup.check();
    check.assert_ok("check-config");
    let [explicit, implicit, metrics] = &setup.addresses[..] else {
        unreachable!()
    };
    for line in [
        format!("listen explicit {explicit}"),
        format!("listen implicit {implicit}"),
        format!("listen metrics {metrics}"),
        "passive ports 50000-50100".to_string(),
        format!("users: 2 in {}", setup.path("users.toml").display()),
        "host ftp.example.test: users: 1 in".to_string(),
        "subject CN=ftp.example.test, expires ".to_string(),
        "storage.s3.archive: bucket ftp at http://127.0.0.1:9 (not contacted)".to_string(),
        "configuration OK".to_string(),
    ] {
        assert!(check.stdout.contains(&line), "no {line:?} in:\n{check}");
    }
    assert!(check.stderr.is_empty(), "warnings or errors:\n{check}");
    // It reads; it creates nothing (the server would create these at start).
    assert!(
        !setup.path("state").exists(),
        "the state directory was created"
    );
    assert!(
        !setup.path("log/ftpsd.log").exists(),
        "the log file was created"
    );
}

#[test]
fn check_config_creates_nothing_for_the_embedded_default() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let check = ftpsd(&["check-config", "--state-dir", &state.display().to_string()]);
    check.assert_ok("check-config on an empty state directory");
    assert!(
        check.stdout.contains("a self-signed one will be generated")
            && check.stdout.contains("will be created with the user ftps"),
        "{check}"
    );
    assert!(!state.exists(), "check-config created {}", state.display());
}

#[test]
fn check_config_names_a_broken_configuration_file() {
    let setup = Setup::new();
    setup.edit("ftpsd.toml", "[tls]\n", "[tls\n");
    assert_fails_with(
        &setup.check(),
        &["invalid configuration file", "(at line 6)"],
    );
}

#[test]
fn check_config_names_an_unknown_key() {
    let setup = Setup::new();
    setup.edit("ftpsd.toml", "[tls]\n", "[tls]\nrequire_tls = true\n");
    assert_fails_with(&setup.check(), &["unknown field `require_tls`"]);
}

#[test]
fn check_config_names_a_bad_password_hash_in_every_users_file() {
    let setup = Setup::new();
    let broken = "password = \"$argon2id$v=19$m=19456,t=2,p=1$broken\"";
    for file in ["users.toml", "example-users.toml"] {
        let text = fs::read_to_string(setup.path(file)).unwrap();
        let start = text.find("password = ").expect("a password line");
        let end = start + text[start..].find('\n').unwrap();
        setup.edit(file, &text[start..end], broken);
    }
    let check = setup.check();
    assert_fails_with(
        &check,
        &[
            "user \"alice\": password is not a valid argon2id hash",
            "host ftp.example.test: users file",
            "user \"bob\": password is not a valid argon2id hash",
        ],
    );
    assert!(check.stderr.contains("2 problems"), "{check}");
}

#[test]
fn check_config_names_a_missing_certificate() {
    let setup = Setup::new();
    fs::remove_file(setup.path("cert.pem")).unwrap();
    let expected = format!("certificate file {}", setup.path("cert.pem").display());
    assert_fails_with(&setup.check(), &[&expected]);
}

#[test]
fn check_config_names_an_expired_certificate() {
    let setup = Setup::new();
    write_certificate(
        &setup.path("cert.pem"),
        &setup.path("key.pem"),
        -DAY * 30,
        -DAY,
    );
    assert_fails_with(&setup.check(), &["(CN=ftp.example.test) expired on "]);
}

#[test]
fn check_config_names_a_key_of_another_certificate() {
    let setup = Setup::new();
    let other = tempfile::tempdir().unwrap();
    let (cert, key) = (other.path().join("c.pem"), other.path().join("k.pem"));
    write_certificate(&cert, &key, -DAY, DAY * 90);
    fs::copy(&key, setup.path("key.pem")).unwrap();
    assert_fails_with(&setup.check(), &["does not match certificate"]);
}

#[test]
fn check_config_warns_about_a_certificate_that_expires_soon() {
    let setup = Setup::new();
    write_certificate(
        &setup.path("cert.pem"),
        &setup.path("key.pem"),
        -DAY * 80,
        DAY * 5 + time::Duration::hours(1),
    );
    let check = setup.check();
    check.assert_ok("check-config with a certificate that expires in 5 days");
    assert!(
        check.stderr.lines().any(|l| l.starts_with("warning: ")
            && l.contains("expires on")
            && l.contains("(in 5 days)")),
        "no expiry warning:\n{check}"
    );
}

#[test]
fn check_config_warns_about_a_missing_root_directory() {
    let setup = Setup::new();
    fs::remove_dir(setup.path("files/alice")).unwrap();
    let check = setup.check();
    check.assert_ok("check-config with a user's root missing");
    assert!(
        check.stderr.lines().any(|l| l.starts_with("warning: ")
            && l.contains("user alice: root")
            && l.contains("is not a directory")),
        "no warning about alice's root:\n{check}"
    );
}

#[test]
fn check_config_names_an_s3_store_that_does_not_exist() {
    let setup = Setup::new();
    setup.edit(
        "users.toml",
        "storage = \"archive\"",
        "storage = \"archiv\"",
    );
    assert_fails_with(
        &setup.check(),
        &["user carol: root: storage \"archiv\" is not a [storage.s3.archiv]"],
    );
}

#[test]
fn check_config_reports_every_problem_at_once() {
    let setup = Setup::new();
    fs::remove_file(setup.path("s3-credentials")).unwrap();
    fs::remove_dir(setup.path("log")).unwrap();
    write_certificate(
        &setup.path("cert.pem"),
        &setup.path("key.pem"),
        -DAY * 30,
        -DAY,
    );
    setup.edit(
        "ftpsd.toml",
        "[tls]\n",
        "[tls]\nclient_certificates = \"optional\"\nclient_ca = \"no-ca.pem\"\n",
    );
    // The metrics listener on the explicit listener's address.
    let metrics = format!("[metrics]\nlisten = \"{}\"", setup.addresses[2]);
    let clash = format!("[metrics]\nlisten = \"{}\"", setup.addresses[0]);
    setup.edit("ftpsd.toml", &metrics, &clash);
    let check = setup.check();
    assert_fails_with(
        &check,
        &[
            &format!("{} is configured twice", setup.addresses[0]),
            "expired on",
            "client CA file",
            "storage.s3.archive:",
            "log.file",
            "log.xferlog",
        ],
    );
    assert!(check.stderr.contains("6 problems"), "{check}");
}

#[test]
fn the_deploy_guides_configuration_is_valid() {
    let guide = fs::read_to_string(repo().join("docs/deploy.md")).unwrap();
    let start = guide
        .find("```toml\n")
        .expect("a TOML block in docs/deploy.md")
        + 8;
    let end = start + guide[start..].find("```").unwrap();
    let config = ftps_server::Config::parse(&guide[start..end])
        .unwrap_or_else(|e| panic!("docs/deploy.md's configuration: {e}"));
    let addresses = |l: &[ftps_server::config::ListenerEntry]| -> Vec<String> {
        l.iter().map(|e| e.address.to_string()).collect()
    };
    assert_eq!(addresses(&config.listen), ["0.0.0.0:21"]);
    assert_eq!(addresses(&config.implicit_listen), ["0.0.0.0:990"]);
    assert!(config.passive.ports.is_some() && config.passive.advertised_address.is_some());
    assert_eq!(config.state_dir, Path::new("/var/lib/ftpsd"));
    assert!(config.metrics.listen.is_some_and(|a| a.ip().is_loopback()));
}

// ---------------------------------------------------------------------------------------
// Manual pages and completions
// ---------------------------------------------------------------------------------------

/// The subcommands a `--help` lists (without `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.split("Commands:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no Commands: in {help}"))
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// A page rendered by groff as text, long lines and no hyphenation so that names stay
/// whole; fails on any groff warning.
fn render(page: &Path) -> String {
    let rendered = run(Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-rLL=300n", "-rHY=0", "-P-cbou"])
        .arg(page));
    rendered.assert_ok("groff");
    assert!(
        rendered.stderr.is_empty(),
        "groff warns about {}:\n{rendered}",
        page.display()
    );
    rendered.stdout
}

#[test]
fn manual_pages_render_cleanly_and_cover_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    ftpsd(&["generate", "man", &dir.path().display().to_string()]).assert_ok("generate man");
    let top = subcommands(&ftpsd(&["--help"]).assert_ok("--help").stdout);
    assert!(top.contains(&"check-config".to_string()), "{top:?}");
    let mut pages = vec![("ftpsd".to_string(), top.clone())];
    for sub in &top {
        let help = ftpsd(&[sub, "--help"]).assert_ok("--help").stdout.clone();
        let nested = match help.contains("Commands:\n") {
            true => subcommands(&help),
            false => Vec::new(),
        };
        pages.push((format!("ftpsd-{sub}"), nested.clone()));
        for leaf in nested {
            pages.push((format!("ftpsd-{sub}-{leaf}"), Vec::new()));
        }
    }
    assert!(pages.len() >= 9, "{pages:?}");
    for (page, children) in &pages {
        let text = render(&dir.path().join(format!("{page}.1")));
        assert!(
            text.contains(&format!("NAME\n       {page} ")),
            "{page}.1:\n{text}"
        );
        for child in children {
            assert!(
                text.contains(&format!("{page}-{child}(1)")),
                "{page}.1 does not mention {child}:\n{text}"
            );
        }
    }
    // One page per subcommand and no more: the hidden `generate` has none.
    let mut written: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    let mut wanted: Vec<String> = pages.iter().map(|(p, _)| format!("{p}.1")).collect();
    wanted.sort();
    assert_eq!(written, wanted);
}

#[test]
fn bash_completion_loads_and_completes_subcommands() {
    let script = ftpsd(&["generate", "completions", "bash"]);
    script.assert_ok("generate completions bash");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ftpsd.bash");
    fs::write(&file, &script.stdout).unwrap();
    // What bash does on TAB: the completion function registered for ftpsd, called with
    // the command, the word being completed and the one before it.
    let complete = |words: &[&str]| -> Vec<String> {
        let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        let cword = words.len() - 1;
        let program = format!(
            "source '{}' || exit 2\n\
             spec=$(complete -p ftpsd) || exit 3\n\
             function=${{spec##*-F }}; function=${{function%% *}}\n\
             COMP_WORDS=({words}); COMP_CWORD={cword}\n\
             COMP_LINE=\"${{COMP_WORDS[*]}}\"; COMP_POINT=${{#COMP_LINE}}\n\
             \"$function\" ftpsd \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
             printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
            file.display(),
            words = quoted.join(" "),
        );
        let done = run(Command::new("bash").args(["--norc", "-c", &program]));
        done.assert_ok("bash completion");
        done.stdout.lines().map(str::to_string).collect()
    };
    assert_eq!(complete(&["ftpsd", "us"]), ["user"]);
    assert_eq!(complete(&["ftpsd", "check"]), ["check-config"]);
    assert_eq!(complete(&["ftpsd", "user", "pa"]), ["passwd"]);
    let options = complete(&["ftpsd", "user", "add", "--read"]);
    assert_eq!(options, ["--read-only"]);

    let registered = run(Command::new("bash").args([
        "--norc",
        "-c",
        &format!("source '{}' && complete -p ftpsd", file.display()),
    ]));
    registered.assert_ok("complete -p ftpsd");
    assert!(registered.stdout.contains(" ftpsd"), "{registered}");
}

#[test]
fn zsh_and_fish_completions_are_generated() {
    let zsh = ftpsd(&["generate", "completions", "zsh"]);
    zsh.assert_ok("zsh");
    assert!(zsh.stdout.starts_with("#compdef ftpsd"), "{zsh}");
    assert!(zsh.stdout.contains("check-config"), "{zsh}");
    let fish = ftpsd(&["generate", "completions", "fish"]);
    fish.assert_ok("fish");
    assert!(fish.stdout.contains("complete -c ftpsd"), "{fish}");
    assert!(fish.stdout.contains("check-config"), "{fish}");
}
