//! Anonymous logins (`[anonymous]`): off unless enabled; once on, `anonymous` and `ftp` log in
//! with any password (an e-mail address, or none) over TLS only, may list and download the
//! anonymous tree and change nothing in it, except new files in the upload folder, which
//! they can neither list nor read back nor overwrite; a limit on simultaneous anonymous logins holds; the root
//! is a directory next to the configuration file, or a key prefix of the default S3 store.
//! Through curl, Python's ftplib and the raw client, on the backend of the run.

mod support;

use std::fs;
use std::process::Command;
use std::time::Duration;

use ftps_testkit::storage::{Backend, UserFiles};
use support::client::{Control, Login};
use support::{assert_curl_refused, ftpsd, listed, local_file, Run, Server};

const TIMEOUT: Duration = Duration::from_secs(120);
const EMAIL: &str = "guest@example.com";
const READ_ONLY: &str = "550 Permission denied: read-only account.";
const DENIED: &str = "550 Permission denied.";
const NEEDS_TLS: &str = "530 This server requires TLS: send AUTH TLS before USER.";
const TOO_MANY: &str = "421 Too many sessions for this user";
/// Wrong logins cost little time here, and never ban the tests' own address.
const LIMITS: &str = "[limits]\nlogin_failure_delay_ms = 20\nmax_login_failures_per_ip = 100\n";

// ---- Clients and fixtures ---------------------------------------------------------------

/// A server with anonymous logins on, `root = "pub"` and the `[anonymous]` keys `extra`;
/// returns the anonymous tree: the directory `pub` next to the configuration file, or the
/// key prefix `pub` of the server's S3 store.
fn anonymous_server(extra: &str) -> (Server, UserFiles) {
    let config = format!("{LIMITS}\n[anonymous]\nenabled = true\nroot = \"pub\"\n{extra}");
    let server = ftpsd().start_with_config_and(&config, |dir| {
        if !Backend::is_s3() {
            fs::create_dir(dir.join("pub")).expect("create the anonymous root");
        }
    });
    let files = match Backend::is_s3() {
        true => server.user_files("pub"),
        false => UserFiles::Local(server.dir.path().join("pub")),
    };
    (server, files)
}

/// `login_steps.py STEPS...` as `user` with `password`; `plain` logs in without TLS.
fn python(server: &Server, user: &str, password: &str, plain: bool, steps: &[&str]) -> Run {
    support::login_steps(server, user, password, plain, steps)
}

/// Asserts that ftplib, logged in as `user` over TLS, got the login reply `login` and then
/// exactly `expected` (`"<step> -> <outcome>"` each).
fn assert_steps(
    server: &Server,
    user: &str,
    password: &str,
    login: &str,
    expected: &[(&str, &str)],
) {
    let names: Vec<&str> = expected.iter().map(|(step, _)| *step).collect();
    let run = python(server, user, password, false, &names);
    run.assert_ok("ftplib steps");
    let mut wanted = vec![format!("login -> {login}")];
    wanted.extend(
        expected
            .iter()
            .map(|(step, outcome)| format!("{step} -> {outcome}")),
    );
    let got: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(got, wanted, "ftplib steps of {user:?}: {}", run.stderr);
}

/// Asserts that ftplib's login as `user` was refused with a reply starting with `reply`.
fn assert_python_refused(run: &Run, reply: &str, what: &str) {
    assert_eq!(run.status.code(), Some(3), "{what}: {run}");
    assert!(
        run.stdout.starts_with(&format!("refused: {reply}")),
        "{what}: {run}"
    );
}

/// curl with `args` (e.g. `--user`, `--ssl-reqd`) and `--verbose`, so that the server's
/// replies are in its stderr; `path` is the URL's path. Without `--user` curl logs in as
/// `anonymous` with the password `ftp@example.com`.
fn curl(server: &Server, path: &str, args: &[&str]) -> Run {
    let mut cmd = Command::new("curl");
    cmd.args(["--silent", "--show-error", "--verbose", "--disable"])
        .args(["--max-time", "60"])
        .arg("--cacert")
        .arg(server.state_dir.join("cert.pem"))
        .args(args)
        .arg(format!("ftp://127.0.0.1:{}{path}", server.explicit.port()));
    support::run_client(&mut cmd, TIMEOUT)
}

/// [`curl`] over explicit FTPS (`--ssl-reqd`).
fn curl_tls(server: &Server, path: &str, args: &[&str]) -> Run {
    let mut all = vec!["--ssl-reqd"];
    all.extend_from_slice(args);
    curl(server, path, &all)
}

// ---- Off by default ---------------------------------------------------------------------

#[tokio::test]
async fn anonymous_logins_are_off_by_default() {
    let server = ftpsd().start_with_config(LIMITS);
    // Without [anonymous] the names are ordinary user names, which do not exist.
    let mut c = Control::connect_auth(&server).await;
    let reply = c.expect("USER anonymous", 331).await;
    assert_eq!(reply.text(), "Password required for anonymous.");
    c.expect(&format!("PASS {EMAIL}"), 530).await;
    c.expect("USER ftp", 331).await;
    c.expect("PASS", 530).await;
    c.expect("PWD", 530).await;

    let run = curl_tls(&server, "/", &[]);
    assert_eq!(run.status.code(), Some(67), "{run}");
    assert_curl_refused(&run, "530 Login incorrect.", "curl's anonymous login");
    let run = curl_tls(&server, "/", &["--user", "ftp:"]);
    assert_curl_refused(&run, "530 Login incorrect.", "curl as ftp");
    let run = python(&server, "anonymous", EMAIL, false, &["list:/"]);
    assert_python_refused(&run, "530 Login incorrect.", "ftplib as anonymous");
    let run = python(&server, "ftp", "", false, &["list:/"]);
    assert_python_refused(&run, "530 Login incorrect.", "ftplib as ftp");
}

#[test]
fn an_anonymous_table_without_enabled_is_off() {
    let server = ftpsd()
        .start_with_config_and(&format!("{LIMITS}\n[anonymous]\nroot = \"pub\"\n"), |dir| {
            fs::create_dir(dir.join("pub")).expect("create pub")
        });
    let run = curl_tls(&server, "/", &[]);
    assert_curl_refused(&run, "530 Login incorrect.", "curl's anonymous login");
    let run = python(&server, "anonymous", EMAIL, false, &["list:/"]);
    assert_python_refused(&run, "530 Login incorrect.", "ftplib as anonymous");
}

// ---- Read-only ----------------------------------------------------------------------------

#[test]
fn anonymous_users_list_and_download_and_change_nothing() {
    let (server, files) = anonymous_server("");
    let data = support::content(7, 300_000);
    files.put("pub.txt", b"public text");
    files.put("data.bin", &data);
    files.mkdir("docs");
    files.put("docs/readme.txt", b"read me");
    let before = files.tree_hashes();

    // curl's own anonymous login, and the names given with --user.
    let run = curl_tls(&server, "/", &[]);
    run.assert_ok("curl LIST / as curl's anonymous");
    assert_eq!(
        listed(&run.stdout),
        ["data.bin", "docs/", "pub.txt"],
        "{run}"
    );
    assert!(
        run.stderr.contains("< 230 User anonymous logged in."),
        "{run}"
    );
    let out = server.scratch("download").join("data.bin");
    let out_arg = out.display().to_string();
    let user = format!("anonymous:{EMAIL}");
    curl_tls(
        &server,
        "/data.bin",
        &["--user", &user, "--output", &out_arg],
    )
    .assert_ok("curl RETR as anonymous with an e-mail address");
    assert_eq!(fs::read(&out).expect("downloaded file"), data);
    let run = curl_tls(&server, "/docs/readme.txt", &["--user", "ftp:"]);
    run.assert_ok("curl RETR as ftp with an empty password");
    assert_eq!(run.stdout, "read me");
    assert!(run.stderr.lines().any(|l| l == "> PASS "), "{run}");
    let run = curl_tls(&server, "/docs/", &["--user", "FTP:x", "--list-only"]);
    run.assert_ok("curl NLST as FTP");
    assert_eq!(run.stdout.trim(), "readme.txt");

    // Every change is refused.
    let upload = local_file(&server, "new.txt", b"uploaded");
    for path in ["/new.txt", "/pub.txt", "/docs/new.txt"] {
        let run = curl_tls(&server, path, &["--upload-file", &upload]);
        assert_curl_refused(&run, READ_ONLY, &format!("curl STOR {path}"));
    }
    for quote in [
        "DELE pub.txt",
        "MKD d",
        "RMD docs",
        "SITE CHMOD 600 pub.txt",
    ] {
        let run = curl_tls(&server, "/", &["--quote", quote]);
        assert_curl_refused(&run, READ_ONLY, &format!("curl {quote}"));
    }

    // ftplib: as anonymous with an e-mail address, then as ftp with an empty password.
    assert_steps(
        &server,
        "anonymous",
        EMAIL,
        "230 User anonymous logged in.",
        &[
            ("list:/", "OK data.bin,docs/,pub.txt"),
            ("nlst:/docs", "OK /docs/readme.txt"),
            ("retr:/pub.txt", "OK public text"),
            ("stor:/new.txt:uploaded", READ_ONLY),
            ("stor:/pub.txt:overwritten", READ_ONLY),
            ("dele:/pub.txt", READ_ONLY),
            ("mkd:/d", READ_ONLY),
            ("rmd:/docs", READ_ONLY),
            ("rename:/pub.txt:/moved.txt", READ_ONLY),
            ("quote:SITE CHMOD 600 /pub.txt", READ_ONLY),
            ("quote:MFMT 20200102030405 /pub.txt", READ_ONLY),
        ],
    );
    assert_steps(
        &server,
        "ftp",
        "",
        "230 User anonymous logged in.",
        &[
            ("cwd:/docs", "OK"),
            ("retr:readme.txt", "OK read me"),
            ("stor:readme.txt:changed", READ_ONLY),
            ("dele:readme.txt", READ_ONLY),
        ],
    );
    assert_eq!(files.tree_hashes(), before, "the anonymous tree changed");
}

// ---- TLS ----------------------------------------------------------------------------------

#[tokio::test]
async fn anonymous_logins_need_tls_like_every_login() {
    let (server, files) = anonymous_server("");
    files.put("pub.txt", b"public text");
    let (mut c, greeting) = Control::connect_raw(server.explicit, &server.fingerprint).await;
    assert_eq!(greeting.code.0, 220);
    let reply = c.expect("USER anonymous", 530).await;
    assert_eq!(reply.to_string().trim_end(), NEEDS_TLS);
    c.expect(&format!("PASS {EMAIL}"), 503).await;
    c.expect("PWD", 530).await;

    // curl without --ssl-reqd logs in in the clear, and is refused.
    let run = curl(&server, "/pub.txt", &[]);
    assert_eq!(run.status.code(), Some(67), "{run}");
    assert_curl_refused(&run, NEEDS_TLS, "curl without TLS");
    assert!(run.stdout.is_empty(), "{run}");
    let run = curl(&server, "/pub.txt", &["--user", "ftp:"]);
    assert_curl_refused(&run, NEEDS_TLS, "curl as ftp without TLS");
    let run = python(&server, "anonymous", EMAIL, true, &["retr:/pub.txt"]);
    assert_python_refused(&run, NEEDS_TLS, "plain ftplib");
    // With TLS the same logins work.
    let run = curl_tls(&server, "/pub.txt", &[]);
    run.assert_ok("curl with --ssl-reqd");
    assert_eq!(run.stdout, "public text");
    c.auth_tls().await;
    c.user_pass("anonymous", EMAIL).await;
}

// ---- The upload folder --------------------------------------------------------------------

#[test]
fn the_upload_folder_takes_new_files_and_gives_nothing_back() {
    let (server, files) = anonymous_server("upload_dir = \"/incoming\"\n");
    files.put("pub.txt", b"public text");
    files.mkdir("incoming");
    let first = support::content(1, 100_000);
    let second = support::content(2, 1000);
    let first_file = local_file(&server, "first.bin", &first);
    let second_file = local_file(&server, "second.bin", &second);

    // curl: a new file is taken, in full; the same name again is refused.
    curl_tls(&server, "/incoming/a.bin", &["--upload-file", &first_file])
        .assert_ok("curl STOR of a new file");
    assert_eq!(files.read("incoming/a.bin"), first);
    let run = curl_tls(&server, "/incoming/a.bin", &["--upload-file", &second_file]);
    assert_curl_refused(&run, DENIED, "curl STOR over an uploaded file");
    let run = curl_tls(
        &server,
        "/incoming/a.bin",
        &["--append", "--upload-file", &second_file],
    );
    assert_curl_refused(&run, DENIED, "curl APPE to an uploaded file");
    assert_eq!(files.read("incoming/a.bin"), first);
    // ... and nothing comes back out.
    let run = curl_tls(&server, "/incoming/", &[]);
    assert_curl_refused(&run, DENIED, "curl LIST /incoming/");
    let run = curl_tls(&server, "/incoming/", &["--list-only"]);
    assert_curl_refused(&run, DENIED, "curl NLST /incoming/");
    let run = curl_tls(&server, "/incoming/a.bin", &[]);
    assert_curl_refused(&run, DENIED, "curl RETR /incoming/a.bin");
    assert!(run.stdout.is_empty(), "{run}");
    // Outside the upload folder the tree stays read-only.
    let run = curl_tls(&server, "/new.bin", &["--upload-file", &second_file]);
    assert_curl_refused(&run, DENIED, "curl STOR /new.bin");

    // ftplib: the same, and no directories, deletes or renames in the upload folder.
    assert_steps(
        &server,
        "ftp",
        EMAIL,
        "230 User anonymous logged in.",
        &[
            ("stor:/incoming/b.txt:first", "OK"),
            ("stor:/incoming/b.txt:second", DENIED),
            ("list:/incoming", DENIED),
            ("nlst:/incoming", DENIED),
            ("retr:/incoming/b.txt", DENIED),
            ("mkd:/incoming/d", DENIED),
            ("dele:/incoming/b.txt", DENIED),
            ("rename:/incoming/b.txt:/incoming/c.txt", DENIED),
            ("cwd:/incoming", "OK"),
            ("stor:c.txt:relative name", "OK"),
            ("stor:/new.txt:outside", DENIED),
            ("list:/", "OK incoming/,pub.txt"),
            ("retr:/pub.txt", "OK public text"),
        ],
    );
    assert_eq!(files.names("incoming"), ["a.bin", "b.txt", "c.txt"]);
    assert_eq!(files.read("incoming/b.txt"), b"first");
    assert_eq!(files.read("incoming/c.txt"), b"relative name");
    assert_eq!(files.read("incoming/a.bin"), first);
    assert_eq!(files.names(""), ["incoming", "pub.txt"]);
}

// ---- Simultaneous logins ----------------------------------------------------------------

#[tokio::test]
async fn a_second_simultaneous_anonymous_login_is_refused_at_the_limit() {
    let (server, files) = anonymous_server("max_sessions = 1\n");
    files.put("pub.txt", b"public text");
    // Logged in once as ftp; both names count as one user.
    let mut first = Login::new(&server, "ftp", EMAIL).protected().await;
    assert_eq!(first.retr("pub.txt").await, b"public text");

    let mut second = Control::connect_auth(&server).await;
    second.expect("USER anonymous", 331).await;
    let reply = second.expect(&format!("PASS {EMAIL}"), 421).await;
    assert!(reply.text().starts_with(&TOO_MANY[4..]), "{reply}");
    second.expect_closed().await;
    let run = python(&server, "anonymous", "", false, &["list:/"]);
    assert_python_refused(&run, TOO_MANY, "ftplib's second login");
    let run = curl_tls(&server, "/pub.txt", &[]);
    assert_curl_refused(&run, TOO_MANY, "curl's second login");
    assert!(run.stdout.is_empty(), "{run}");
    // Named users do not count against it.
    let mut named = Control::login_default(&server).await;
    named.expect("NOOP", 200).await;

    // Once the first one quits, a new login is let in.
    first.expect("QUIT", 221).await;
    first.expect_closed().await;
    assert_steps(
        &server,
        "anonymous",
        EMAIL,
        "230 User anonymous logged in.",
        &[("retr:/pub.txt", "OK public text")],
    );
}

// ---- Where the tree is --------------------------------------------------------------------

#[test]
fn the_root_is_next_to_the_config_file_or_a_key_prefix_of_the_default_store() {
    let (server, files) = anonymous_server("upload_dir = \"/incoming\"\n");
    files.put("where.txt", b"the anonymous root");
    files.mkdir("incoming");
    if !Backend::is_s3() {
        // Not relative to the state directory, nor to the working directory.
        let decoy = server.state_dir.join("pub");
        fs::create_dir_all(&decoy).unwrap();
        fs::write(decoy.join("where.txt"), b"the state directory").unwrap();
    }
    let run = curl_tls(&server, "/where.txt", &[]);
    run.assert_ok("curl RETR /where.txt");
    assert_eq!(run.stdout, "the anonymous root");
    let upload = local_file(&server, "up.txt", b"uploaded anonymously");
    curl_tls(&server, "/incoming/up.txt", &["--upload-file", &upload])
        .assert_ok("curl STOR /incoming/up.txt");
    // The upload is in the tree the configuration names, on the run's backend.
    assert_eq!(files.read("incoming/up.txt"), b"uploaded anonymously");
    assert_steps(
        &server,
        "anonymous",
        EMAIL,
        "230 User anonymous logged in.",
        &[("list:/", "OK incoming/,where.txt")],
    );
}
