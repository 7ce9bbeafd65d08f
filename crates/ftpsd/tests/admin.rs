//! The admin API and `ftpsd ctl` (docs/operations.md): listing sessions with their transfer
//! in progress, ending a session, banning and unbanning an address, managing users and
//! reloading, driven with `ftpsd ctl` and curl against a server that moves real files;
//! and every request without the token refused.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use support::client::Control;
use support::{ftpsd, Run, Server};

const TIMEOUT: Duration = Duration::from_secs(120);

fn server() -> Server {
    ftpsd().start_with_config("[admin]\nlisten = \"127.0.0.1:0\"\n")
}

/// `ftpsd ctl ARGS...` with the server's configuration (its token file), fed `stdin`; the
/// configuration listens on port 0, so the port the server took is given with `--url`.
fn ctl(server: &Server, args: &[&str], stdin: &str) -> Run {
    let config = server.config.as_ref().expect("a configuration file");
    let url = format!("http://{}", server.admin.expect("the admin listener"));
    let mut cmd = Command::new(support::FTPSD);
    cmd.arg("ctl")
        .arg("--config")
        .arg(config)
        .args(["--url", &url])
        .args(args);
    let started = std::time::Instant::now();
    let out = support::run_with_stdin(&mut cmd, stdin);
    Run {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: started.elapsed(),
    }
}

/// curl against the admin API with `args`: the status code and the body.
fn api(server: &Server, args: &[&str], path: &str) -> (u16, String) {
    let addr = server.admin.expect("the admin listener");
    let run = support::run_client(
        Command::new("curl")
            .args(["--silent", "--show-error", "--max-time", "30"])
            .args(["--write-out", "\n%{http_code}"])
            .args(args)
            .arg(format!("http://{addr}{path}")),
        TIMEOUT,
    );
    run.assert_ok("curl the admin API");
    let (body, code) = run.stdout.rsplit_once('\n').expect("a status line");
    (
        code.trim().parse().expect("a status code"),
        body.to_string(),
    )
}

fn token(server: &Server) -> String {
    std::fs::read_to_string(server.dir.path().join("state/admin.token"))
        .expect("the generated token")
        .trim()
        .to_string()
}

#[tokio::test]
async fn every_request_needs_the_token() {
    let server = server();
    let path = server.dir.path().join("state/admin.token");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the token file is the server's alone");
    assert_eq!(token(&server).len(), 64);
    for (method, endpoint) in [
        ("GET", "/v1/sessions"),
        ("DELETE", "/v1/sessions/1"),
        ("GET", "/v1/bans"),
        ("PUT", "/v1/bans/192.0.2.1"),
        ("GET", "/v1/users"),
        ("POST", "/v1/reload"),
    ] {
        let (code, _) = api(&server, &["-X", method], endpoint);
        assert_eq!(code, 401, "{method} {endpoint} without a token");
        let (code, _) = api(
            &server,
            &["-X", method, "-H", "Authorization: Bearer not-the-token"],
            endpoint,
        );
        assert_eq!(code, 401, "{method} {endpoint} with a wrong token");
    }
    let auth = format!("Authorization: Bearer {}", token(&server));
    let (code, body) = api(&server, &["-H", &auth], "/v1/sessions");
    assert_eq!((code, body.as_str()), (200, "[]"));
    // The refusals changed nothing: no ban was set.
    let (code, body) = api(&server, &["-H", &auth], "/v1/bans");
    assert_eq!((code, body.as_str()), (200, "[]"));
}

#[tokio::test]
async fn sessions_show_their_transfer_and_can_be_ended() {
    let server = server();
    let mut c = Control::login_default(&server).await;
    let (first, data) = c.begin("STOR big.bin").await;
    assert_eq!(first.code.0, 150, "{first:?}");
    let mut data = data.expect("data connection");
    data.write(&[5u8; 100_000]).await.unwrap();
    // The listing shows the user, TLS and the upload with its bytes so far.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let (id, line) = loop {
        let run = ctl(&server, &["sessions"], "");
        run.assert_ok("ctl sessions");
        let line = run
            .stdout
            .lines()
            .find(|l| l.contains("STOR /big.bin 100000 bytes"))
            .map(str::to_string);
        if let Some(line) = line {
            let id: u64 = line.split('\t').next().unwrap().parse().unwrap();
            break (id, line);
        }
        assert!(std::time::Instant::now() < deadline, "{}", run.stdout);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(line.contains("\tftps\t127.0.0.1:"), "{line}");
    assert!(line.contains("\tTLSv1_3\t"), "{line}");
    let json = ctl(&server, &["--json", "sessions"], "");
    assert!(
        json.stdout.contains("\"command\":\"STOR\""),
        "{}",
        json.stdout
    );

    ctl(&server, &["end", &id.to_string()], "").assert_ok("ctl end");
    // The transfer stops, the client hears why, and the connection closes.
    let replies = c.expect_closed().await;
    let codes: Vec<u16> = replies.iter().map(|r| r.code.0).collect();
    assert_eq!(codes, [426, 421], "{replies:?}");
    assert!(
        format!("{replies:?}").contains("Session ended by the administrator"),
        "{replies:?}"
    );
    drop(data);
    // Nothing of the stopped upload is presented as a file.
    assert!(!server.files().exists("big.bin"));
    let run = ctl(&server, &["end", &id.to_string()], "");
    assert!(!run.status.success(), "{run}");
    assert!(run.stderr.contains("404"), "{run}");
}

#[tokio::test]
async fn a_ban_ends_the_addresss_sessions_and_refuses_it_until_lifted() {
    let server = server();
    let mut c = Control::login_default(&server).await;
    c.expect("NOOP", 200).await;
    let run = ctl(&server, &["ban", "127.0.0.1", "--seconds", "600"], "");
    run.assert_ok("ctl ban");
    assert!(run.stderr.contains("1 session(s) ended"), "{run}");
    let replies = c.expect_closed().await;
    assert_eq!(replies.last().map(|r| r.code.0), Some(421), "{replies:?}");
    let bans = ctl(&server, &["bans"], "");
    assert!(bans.stdout.starts_with("127.0.0.1\t"), "{bans}");
    // A new connection is refused at once.
    let (_, greeting) = Control::connect_raw(server.explicit, &server.fingerprint).await;
    assert_eq!(greeting.code.0, 421, "{greeting:?}");
    ctl(&server, &["unban", "127.0.0.1"], "").assert_ok("ctl unban");
    let mut again = Control::login_default(&server).await;
    again.expect("NOOP", 200).await;
    let run = ctl(&server, &["unban", "127.0.0.1"], "");
    assert!(
        !run.status.success() && run.stderr.contains("not banned"),
        "{run}"
    );
    let run = ctl(&server, &["ban", "not-an-address"], "");
    assert!(!run.status.success(), "{run}");
}

#[tokio::test]
async fn users_are_added_changed_and_deleted_while_the_server_runs() {
    let server = server();
    let root = server.dir.path().join("root-zed");
    let root_arg = root.display().to_string();
    let run = ctl(
        &server,
        &["user-add", "zed", "--root", &root_arg, "--password-stdin"],
        "zed-password-1\n",
    );
    run.assert_ok("ctl user-add");
    assert!(root.is_dir(), "the root is created");
    let users = ctl(&server, &["users"], "");
    assert!(users.stdout.contains("zed\tread-write\t"), "{users}");
    let mut zed = Control::login(&server, "zed", "zed-password-1").await;
    zed.stor("hello.txt", b"hi").await;
    assert_eq!(std::fs::read(root.join("hello.txt")).unwrap(), b"hi");

    // A generated password, shown once.
    let run = ctl(&server, &["passwd", "zed"], "");
    run.assert_ok("ctl passwd");
    let password = run
        .stdout
        .strip_prefix("password: ")
        .map(str::trim)
        .expect("the generated password")
        .to_string();
    // The open session used the old credentials: it is ended.
    let replies = zed.expect_closed().await;
    assert_eq!(replies.last().map(|r| r.code.0), Some(421), "{replies:?}");
    let mut old = Control::connect_auth(&server).await;
    old.cmd("USER zed").await;
    assert_eq!(old.cmd("PASS zed-password-1").await.code.0, 530);
    let mut zed = Control::login(&server, "zed", &password).await;
    zed.expect("NOOP", 200).await;

    let run = ctl(&server, &["user-add", "zed", "--root", &root_arg], "");
    assert!(!run.status.success() && run.stderr.contains("409"), "{run}");
    ctl(&server, &["user-del", "zed"], "").assert_ok("ctl user-del");
    let replies = zed.expect_closed().await;
    assert_eq!(replies.last().map(|r| r.code.0), Some(421), "{replies:?}");
    assert!(root.join("hello.txt").exists(), "files are kept");
    let users = ctl(&server, &["users"], "");
    assert!(!users.stdout.contains("zed"), "{users}");
    ctl(&server, &["reload"], "").assert_ok("ctl reload");
    assert!(server.log_text().contains("admin API: reload"));
}
