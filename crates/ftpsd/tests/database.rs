//! Users in a database (`[database]`): SQLite for one node, PostgreSQL for a fleet (a real
//! cluster on loopback). `ftpsd user` works against either, `ftpsd user import` moves a
//! users file in, and a running server sees users added, changed and removed within
//! seconds without being told.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ftps_testkit::postgres::Postgres;
use support::client::Control;
use support::Server;

/// `ftpsd --config CONFIG user ARGS` with `stdin`; (success, stdout, stderr).
fn user(config: &Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut cmd = support::ftpsd().command();
    cmd.arg("--config").arg(config).arg("user").args(args);
    let out = support::run_with_stdin(&mut cmd, stdin);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn user_ok(config: &Path, args: &[&str], stdin: &str) -> String {
    let (ok, out, err) = user(config, args, stdin);
    assert!(ok, "ftpsd user {args:?} failed: {err}");
    out
}

/// A users file in `dir` with `carol` (password `carol-pw`) whose root is relative to the
/// file, as a hand-written one may be.
fn users_file(dir: &Path) -> std::path::PathBuf {
    let hash = ftps_server::users::hash_password("carol-pw").unwrap();
    std::fs::create_dir_all(dir.join("carol-files")).unwrap();
    std::fs::write(dir.join("carol-files/hello.txt"), b"from the file era").unwrap();
    let path = dir.join("users.toml");
    std::fs::write(
        &path,
        format!(
            "[users.carol]\npassword = \"{hash}\"\nroot = \"carol-files\"\n\
             [users.carol.limits]\nmax_sessions = 3\n"
        ),
    )
    .unwrap();
    path
}

async fn eventually_logs_in(server: &Server, name: &str, password: &str) -> Duration {
    let started = Instant::now();
    loop {
        let mut c = Control::connect_auth(server).await;
        c.cmd(&format!("USER {name}")).await;
        if c.cmd(&format!("PASS {password}")).await.code.0 == 230 {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{name} could not log in within 10 s:\n{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn refused(server: &Server, name: &str, password: &str) -> bool {
    let mut c = Control::connect_auth(server).await;
    c.cmd(&format!("USER {name}")).await;
    c.cmd(&format!("PASS {password}")).await.code.0 == 530
}

/// Import, log in, and change users while the server runs, against `database` (a
/// `[database]` table).
async fn users_in_a_database(database: &str) {
    // The server: no users file, so no default user is generated.
    let server = support::ftpsd().start_with_config(database);
    let config = server.config.clone().unwrap();
    assert!(
        server.password.is_empty(),
        "no default user with a database"
    );
    assert!(!server.state_dir.join("users.toml").exists());

    // Import a users file: the relative root becomes absolute, settings are kept.
    let legacy = server.dir.path().join("legacy");
    let file = users_file(&legacy);
    let (_, _, err) = user(&config, &["import", &file.display().to_string()], "");
    assert!(err.contains("1 added, 0 replaced"), "{err}");
    let shown = user_ok(&config, &["show", "carol"], "");
    let root = legacy.join("carol-files").canonicalize().unwrap();
    assert!(
        shown.contains(&format!("root = \"{}\"", root.display())),
        "{shown}"
    );
    assert!(shown.contains("max_sessions = 3"), "{shown}");
    // Again: refused, naming the user, unless --replace.
    let (ok, _, err) = user(&config, &["import", &file.display().to_string()], "");
    assert!(!ok && err.contains("carol"), "{err}");
    let (_, _, err) = user(
        &config,
        &["import", "--replace", &file.display().to_string()],
        "",
    );
    assert!(err.contains("0 added, 1 replaced"), "{err}");

    // carol, imported while the server runs, logs in and sees her files.
    eventually_logs_in(&server, "carol", "carol-pw").await;
    let mut carol = Control::login(&server, "carol", "carol-pw").await;
    assert_eq!(carol.retr("hello.txt").await, b"from the file era");

    // A user added with `ftpsd user add` is seen within seconds.
    let dave_root = server.dir.path().join("dave");
    user_ok(
        &config,
        &[
            "add",
            "dave",
            "--root",
            &dave_root.display().to_string(),
            "--password-stdin",
        ],
        "dave-pw\n",
    );
    let took = eventually_logs_in(&server, "dave", "dave-pw").await;
    assert!(took < Duration::from_secs(10));
    let list = user_ok(&config, &["list"], "");
    assert!(
        list.contains("carol\tread-write\t") && list.contains("dave\tread-write\t"),
        "{list}"
    );

    // A new password ends the session that used the old one, and only the new one works.
    user_ok(
        &config,
        &["passwd", "carol", "--password-stdin"],
        "carol-pw-2\n",
    );
    let replies = carol.expect_closed().await;
    assert_eq!(replies.last().map(|r| r.code.0), Some(421), "{replies:?}");
    eventually_logs_in(&server, "carol", "carol-pw-2").await;
    assert!(refused(&server, "carol", "carol-pw").await);

    // A changed setting, then a removal.
    user_ok(&config, &["set", "dave", "--max-sessions", "1"], "");
    assert!(user_ok(&config, &["show", "dave"], "").contains("max_sessions = 1"));
    user_ok(&config, &["del", "dave"], "");
    let started = Instant::now();
    while !refused(&server, "dave", "dave-pw").await {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "dave still logs in"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (ok, _, err) = user(&config, &["del", "dave"], "");
    assert!(!ok && err.contains("no such user"), "{err}");

    // check-config reads the same users.
    let check = support::run_client(
        support::ftpsd()
            .command()
            .arg("--config")
            .arg(&config)
            .arg("check-config"),
        Duration::from_secs(60),
    );
    assert!(check.stdout.contains("users: 1 in "), "{check}");
}

#[tokio::test(flavor = "multi_thread")]
async fn users_in_sqlite() {
    users_in_a_database("[database]\nurl = \"sqlite://users.db\"\npoll_seconds = 1\n").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn users_in_postgresql() {
    let postgres = Postgres::start();
    let dir = support::tempdir();
    let password = dir.path().join("db.password");
    postgres.write_password_file(&password);
    users_in_a_database(&format!(
        "[database]\nurl = \"{}\"\npassword_file = \"{}\"\npoll_seconds = 1\n",
        postgres.url(),
        password.display()
    ))
    .await;
}

#[test]
fn a_wrong_database_password_stops_the_start_without_showing_it() {
    let postgres = Postgres::start();
    let dir = support::tempdir();
    let password = dir.path().join("db.password");
    std::fs::write(&password, "not-the-password-4711\n").unwrap();
    let config = dir.path().join("ftpsd.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"state\"\nlisten = [\"127.0.0.1:0\"]\nimplicit_listen = []\n\
             [database]\nurl = \"{}\"\npassword_file = \"{}\"\n",
            postgres.url(),
            password.display()
        ),
    )
    .unwrap();
    let run = support::run_client(
        Command::new(support::FTPSD).arg("--config").arg(&config),
        Duration::from_secs(60),
    );
    assert!(!run.status.success(), "{run}");
    assert!(
        run.stderr
            .contains("database postgres://ftpsd:***@127.0.0.1"),
        "{run}"
    );
    assert!(
        run.stderr.contains("password authentication failed"),
        "{run}"
    );
    assert!(!run.stderr.contains("4711"), "{run}");
    // `ftpsd user` says the same.
    let (ok, _, err) = user(&config, &["list"], "");
    assert!(
        !ok && err.contains("password authentication failed"),
        "{err}"
    );
}

#[test]
fn a_users_file_and_a_database_are_exclusive() {
    let dir = support::tempdir();
    let config = dir.path().join("ftpsd.toml");
    std::fs::write(
        &config,
        "state_dir = \"state\"\nusers_file = \"users.toml\"\nlisten = [\"127.0.0.1:0\"]\n\
         [database]\nurl = \"sqlite://users.db\"\n",
    )
    .unwrap();
    let run = support::run_client(
        Command::new(support::FTPSD).arg("--config").arg(&config),
        Duration::from_secs(60),
    );
    assert!(
        !run.status.success() && run.stderr.contains("both users_file and [database]"),
        "{run}"
    );
    // Import needs a database to import into.
    let plain = dir.path().join("plain.toml");
    std::fs::write(&plain, "state_dir = \"state2\"\n").unwrap();
    let (ok, _, err) = user(&plain, &["import", "users.toml"], "");
    assert!(!ok && err.contains("needs a [database]"), "{err}");
}
