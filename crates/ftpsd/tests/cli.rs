//! The ftpsd command line: user management, configuration errors, restarts, signals and
//! the passive-mode flags.

mod support;

use std::fs;
use std::process::Command;
use std::time::Duration;

use support::client::Control;
use support::{ftpsd, Server};

fn state(server: &Server) -> String {
    server.state_dir.display().to_string()
}

/// Whether `user` can log in with `password` (530 means no).
async fn can_log_in(server: &Server, user: &str, password: &str) -> bool {
    let mut c = Control::connect_auth(server).await;
    c.expect(&format!("USER {user}"), 331).await;
    let reply = c.cmd(&format!("PASS {password}")).await;
    match reply.code.0 {
        230 => true,
        530 => false,
        _ => panic!("PASS: {reply}"),
    }
}

#[tokio::test]
async fn user_add_list_passwd_del_take_effect_without_restart() {
    let server = ftpsd().start();
    server.add_user("alice", "alice-pass-1", &[]);
    let list = server.ftpsd(&["user", "list", "--state-dir", &state(&server)], "");
    assert!(list.status.success(), "{list:?}");
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(
        listed.contains("alice") && listed.contains("ftps"),
        "{listed}"
    );
    assert!(can_log_in(&server, "alice", "alice-pass-1").await);

    let passwd = server.ftpsd(
        &[
            "user",
            "passwd",
            "alice",
            "--state-dir",
            &state(&server),
            "--password-stdin",
        ],
        "alice-pass-2\n",
    );
    assert!(passwd.status.success(), "{passwd:?}");
    assert!(!can_log_in(&server, "alice", "alice-pass-1").await);
    assert!(can_log_in(&server, "alice", "alice-pass-2").await);

    let del = server.ftpsd(
        &["user", "del", "alice", "--state-dir", &state(&server)],
        "",
    );
    assert!(del.status.success(), "{del:?}");
    assert!(!can_log_in(&server, "alice", "alice-pass-2").await);
    let list = server.ftpsd(&["user", "list", "--state-dir", &state(&server)], "");
    assert!(!String::from_utf8_lossy(&list.stdout).contains("alice"));
}

#[test]
fn users_file_keeps_no_plaintext_password() {
    let server = ftpsd().start();
    server.add_user("bob", "bob-secret-pass", &[]);
    let users = fs::read_to_string(server.state_dir.join("users.toml")).expect("users.toml");
    assert!(
        !users.contains("bob-secret-pass"),
        "plaintext password stored"
    );
    assert!(
        !users.contains(&server.password),
        "plaintext password stored"
    );
}

#[test]
fn adding_an_existing_user_fails() {
    let server = ftpsd().start();
    let out = server.ftpsd(
        &[
            "user",
            "add",
            "ftps",
            "--root",
            &server.scratch("other").display().to_string(),
            "--state-dir",
            &state(&server),
            "--password-stdin",
        ],
        "another-pass\n",
    );
    assert!(!out.status.success(), "user ftps added twice: {out:?}");
}

#[tokio::test]
async fn restart_keeps_certificate_and_users() {
    let mut server = ftpsd().start();
    let fingerprint = server.fingerprint.clone();
    server.restart();
    assert_eq!(
        server.fingerprint, fingerprint,
        "a new certificate on restart"
    );
    assert!(can_log_in(&server, "ftps", &server.password).await);
}

#[test]
fn sigterm_stops_the_server() {
    let mut server = ftpsd().start();
    assert!(
        server.terminate_within(Duration::from_secs(10)),
        "ftpsd still running 10 s after SIGTERM"
    );
}

#[test]
fn unknown_config_key_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ftpsd.toml");
    fs::write(
        &config,
        "state_dir = \"state\"\nlisten = [\"127.0.0.1:0\"]\nno_such_key = 1\n",
    )
    .unwrap();
    let out = Command::new(support::FTPSD)
        .arg("--config")
        .arg(&config)
        .output()
        .expect("run ftpsd");
    assert!(!out.status.success(), "unknown key accepted");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no_such_key"),
        "error does not name the key: {err}"
    );
}

#[test]
fn example_config_is_valid() {
    // docs/ftpsd.example.toml, with its listeners moved to free ports.
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/ftpsd.example.toml");
    let text = fs::read_to_string(example).expect("docs/ftpsd.example.toml");
    let extra: String = text
        .lines()
        .skip_while(|l| !l.starts_with('['))
        .map(|l| format!("{l}\n"))
        .collect();
    let server = ftpsd().start_with_config(&extra);
    assert!(server.explicit.port() != 0);
}

#[tokio::test]
async fn passive_port_range_and_advertised_address() {
    // A range unlikely to be in use; the test only needs a few ports of it.
    let base = 40000 + (std::process::id() % 2000) as u16 * 10;
    let range = format!("{}-{}", base, base + 9);
    let server = ftpsd().start_with_config(&format!(
        "[passive]\nports = \"{range}\"\nadvertised_address = \"127.0.0.1\"\n"
    ));
    let mut c = Control::login_default(&server).await;
    for cmd in ["EPSV", "PASV"] {
        let reply = c.cmd(cmd).await;
        let port = if cmd == "EPSV" {
            ftps_proto::address::parse_epsv_reply(&reply.text()).expect("EPSV reply")
        } else {
            let addr = ftps_proto::address::parse_pasv_reply(&reply.text()).expect("PASV reply");
            assert_eq!(addr.ip().octets(), [127, 0, 0, 1], "{reply}");
            addr.port()
        };
        assert!(
            (base..=base + 9).contains(&port),
            "{cmd} port {port} outside {range}"
        );
    }
    fs::write(server.data_dir().join("f"), b"ranged").unwrap();
    assert_eq!(c.retr("f").await, b"ranged");
}

#[tokio::test]
async fn passive_flags_on_the_command_line() {
    let base = 42000 + (std::process::id() % 2000) as u16 * 10;
    let range = format!("{}-{}", base, base + 9);
    // 192.0.2.7 (TEST-NET-1) is only announced, never connected to.
    let server = ftpsd().start_with_args(&[
        "--passive-ports",
        &range,
        "--advertised-address",
        "192.0.2.7",
    ]);
    let mut c = Control::login_default(&server).await;
    let reply = c.expect("PASV", 227).await;
    let addr = ftps_proto::address::parse_pasv_reply(&reply.text()).expect("PASV reply");
    assert_eq!(addr.ip().octets(), [192, 0, 2, 7], "{reply}");
    assert!(
        (base..=base + 9).contains(&addr.port()),
        "{reply} outside {range}"
    );
    // EPSV carries only the port, so a transfer works on this machine.
    fs::write(server.data_dir().join("f"), b"epsv").unwrap();
    assert_eq!(c.retr("f").await, b"epsv");
}

/// Runs openssl, which `scripts/test.sh` installs.
fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run openssl ({e}): run `bash scripts/test.sh`, which installs it")
        });
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn an_rsa_certificate_from_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("rsa.pem"), dir.path().join("rsa.key"));
    let (cert_s, key_s) = (cert.display().to_string(), key.display().to_string());
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=localhost",
        "-keyout",
        &key_s,
        "-out",
        &cert_s,
    ]);
    let expected = openssl(&["x509", "-in", &cert_s, "-noout", "-fingerprint", "-sha256"]);
    let expected = expected.trim().rsplit('=').next().unwrap().to_string();
    let server = ftpsd().start_with_args(&["--cert", &cert_s, "--key", &key_s]);
    assert_eq!(
        server.fingerprint, expected,
        "printed fingerprint vs openssl's"
    );
    assert!(can_log_in(&server, "ftps", &server.password).await);
}

#[test]
fn a_key_that_does_not_match_the_certificate_is_refused() {
    let a = ftpsd().start();
    let b = ftpsd().start();
    let out = Command::new(support::FTPSD)
        .args(["--listen", "127.0.0.1:0", "--no-implicit", "--cert"])
        .arg(a.state_dir.join("cert.pem"))
        .arg("--key")
        .arg(b.state_dir.join("key.pem"))
        .arg("--state-dir")
        .arg(a.dir.path().join("other-state"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run ftpsd");
    assert!(!out.status.success(), "mismatched key accepted");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not match"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_changed_certificate_file_is_picked_up_and_a_broken_one_ignored() {
    let server = ftpsd().start_with_config("[tls]\nreload_check_seconds = 1\n");
    let other = ftpsd().start();
    // A broken certificate: refused, the old one stays.
    fs::write(server.state_dir.join("cert.pem"), "not a certificate").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(can_log_in(&server, "ftps", &server.password).await);
    // A valid new pair: served without a restart.
    for f in ["key.pem", "cert.pem"] {
        fs::copy(other.state_dir.join(f), server.state_dir.join(f)).unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = Control::connect(server.explicit, &other.fingerprint).await;
        c.expect("AUTH TLS", 234).await;
        if c.start_tls().await.is_ok() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "new certificate not served 10 s after it was written"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn advertised_address_as_a_dns_name() {
    let server = ftpsd().start_with_config("[passive]\nadvertised_address = \"localhost\"\n");
    let mut c = Control::login_default(&server).await;
    let reply = c.expect("PASV", 227).await;
    let addr = ftps_proto::address::parse_pasv_reply(&reply.text()).expect("PASV reply");
    assert_eq!(addr.ip().octets(), [127, 0, 0, 1], "{reply}");
}

#[test]
fn user_commands_on_a_missing_user_fail() {
    let server = ftpsd().start();
    let del = server.ftpsd(
        &["user", "del", "ghost", "--state-dir", &state(&server)],
        "",
    );
    assert!(!del.status.success(), "user del of a missing user: {del:?}");
    let passwd = server.ftpsd(
        &[
            "user",
            "passwd",
            "ghost",
            "--state-dir",
            &state(&server),
            "--password-stdin",
        ],
        "whatever-pass\n",
    );
    assert!(
        !passwd.status.success(),
        "user passwd of a missing user: {passwd:?}"
    );
}

#[test]
fn user_add_storage_names_a_configured_s3_store_and_creates_nothing_locally() {
    let dir = support::tempdir();
    let config = dir.path().join("ftpsd.toml");
    fs::write(
        &config,
        "state_dir = \"state\"\n\
         [storage.s3.archive]\nendpoint = \"http://127.0.0.1:9\"\nbucket = \"b\"\n",
    )
    .unwrap();
    let config_s = config.display().to_string();
    let run = |args: &[&str]| {
        let mut cmd = Command::new(support::FTPSD);
        cmd.args(args).arg("--config").arg(&config_s);
        support::run_with_stdin(&mut cmd, "carol-password-1\n")
    };
    let added = run(&[
        "user",
        "add",
        "carol",
        "--storage",
        "archive",
        "--root",
        "carol/in",
        "--password-stdin",
    ]);
    assert!(added.status.success(), "{added:?}");
    // The root is a key prefix: no local directory is made for it.
    assert!(!dir.path().join("carol").exists());
    let list = run(&["user", "list"]);
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(
        listed.contains("carol\tread-write\ts3:archive:carol/in"),
        "{listed}"
    );
    let users = fs::read_to_string(dir.path().join("state/users.toml")).unwrap();
    assert!(users.contains("storage = \"archive\""), "{users}");
    let refused = run(&[
        "user",
        "add",
        "dave",
        "--storage",
        "nowhere",
        "--root",
        "d",
        "--password-stdin",
    ]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("no [storage.s3.nowhere]"),
        "{refused:?}"
    );
}

#[test]
fn user_add_without_storage_keeps_the_root_as_a_key_prefix_of_the_default_store() {
    let dir = support::tempdir();
    let config = dir.path().join("ftpsd.toml");
    fs::write(
        &config,
        "state_dir = \"state\"\n[storage]\ndefault = \"archive\"\n\
         [storage.s3.archive]\nendpoint = \"http://127.0.0.1:9\"\nbucket = \"b\"\n",
    )
    .unwrap();
    let mut cmd = Command::new(support::FTPSD);
    cmd.current_dir(dir.path())
        .args([
            "user",
            "add",
            "erin",
            "--root",
            "erin/in",
            "--password-stdin",
        ])
        .arg("--config")
        .arg(&config);
    let added = support::run_with_stdin(&mut cmd, "erin-password-1\n");
    assert!(added.status.success(), "{added:?}");
    // Neither a local directory nor an absolute path: the default store's key prefix.
    assert!(!dir.path().join("erin").exists());
    let users = fs::read_to_string(dir.path().join("state/users.toml")).unwrap();
    assert!(users.contains("root = \"erin/in\""), "{users}");
    // The entry names no store, so it follows the default if that changes.
    assert!(!users.contains("storage ="), "{users}");
    let mut list = Command::new(support::FTPSD);
    list.args(["user", "list", "--config"]).arg(&config);
    let listed = support::run_with_stdin(&mut list, "");
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("erin\tread-write\ts3:archive:erin/in"),
        "{listed:?}"
    );
}
