//! `ftps shell` driven through a real pseudo-terminal (typing, tab completion of remote
//! paths, history recall) and `ftps batch` from a file and from standard input, against
//! ftpsd and the reference servers (vsftpd, ProFTPD, Pure-FTPd): files transferred and
//! checked by hash, stop-on-first-error and --continue-on-error, exit codes, reconnection
//! after the server closed an idle connection.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use ftps_testkit::files::{make_file, sha256_file};
use ftps_testkit::ftpsd::Ftpsd;
use ftps_testkit::reference::{give_to_test_user, start, Kind, Server};
use rexpect::reader::Options;
use rexpect::session::{spawn_with_options, PtySession};

/// How long the pseudo-terminal tests wait for expected output before failing (a hang
/// guard, not a measurement).
const EXPECT_TIMEOUT_MS: u64 = 60_000;

fn fp(server: &Server) -> String {
    ftps_client::error::format_fingerprint(&server.fingerprint)
}

/// `ftpes://user@127.0.0.1:PORT/BASE/REL` for a reference server (or ftpsd started by the
/// same launcher).
fn url(server: &Server, rel: &str) -> String {
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

/// The path the server shows for its data directory.
fn remote_base(server: &Server) -> String {
    let base = ftps_client::client::join(&server.base, "");
    if base.starts_with('/') {
        base
    } else {
        format!("/{base}")
    }
}

/// `ftps` with the server's pin and password (from the environment, so standard input is
/// free for commands), in `cwd`.
fn ftps_command(server: &Server, cwd: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ftps"));
    cmd.current_dir(cwd)
        .env("FTPS_PASSWORD", &server.password)
        .args(["--no-netrc", "--timeout", "30", "--pin-sha256", &fp(server)]);
    cmd
}

/// `ftps batch URL ARGS...` with `stdin` as standard input.
fn batch(server: &Server, cwd: &Path, args: &[&str], stdin: &str) -> Output {
    let mut cmd = ftps_command(server, cwd);
    cmd.arg("batch")
        .arg(url(server, ""))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run ftps batch");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn show(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// A batch file that uses every command, run from a file; what arrives on both sides is
/// checked by hash.
fn batch_everything(kind: Kind) {
    let server = start(kind);
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let up1 = make_file(w, "up1.bin", 300_000);
    let up2 = make_file(w, "up2.bin", 1);
    let spaced = make_file(w, "with space.bin", 70_000);
    let remote_a = make_file(&server.root, "remote a.csv", 200_000);
    let remote_b = make_file(&server.root, "remote b.csv", 0);
    make_file(&server.root, "skip.txt", 10);
    give_to_test_user(&server);
    std::fs::create_dir(w.join("down")).unwrap();
    let script = "\
# Every command once; blank lines and comments are skipped.

mkdir -p in/deep
cd in
mput *.bin
put 'with space.bin' \"renamed space.bin\"
ls -l
pwd
cd ..
lcd down
lpwd
mget '*.csv'
get in/renamed\\ space.bin copy.bin
mv in/up1.bin in/deep/
rm in/up2.bin
!test -f copy.bin
ls in
bye
ls never-run
";
    std::fs::write(w.join("commands.txt"), script).unwrap();
    let out = batch(&server, w, &["commands.txt"], "");
    assert!(out.status.success(), "{}", show(&out));
    let stdout = text(&out.stdout);
    let base = remote_base(&server);
    assert!(
        stdout.contains(&format!("{}/in\n", base.trim_end_matches('/'))),
        "pwd: {}",
        show(&out)
    );
    assert!(stdout.contains("renamed space.bin"), "{}", show(&out));
    assert!(
        stdout.contains(&w.join("down").canonicalize().unwrap().display().to_string()),
        "lpwd: {}",
        show(&out)
    );
    let root = &server.root;
    assert_eq!(sha256_file(&root.join("in/deep/up1.bin")), up1.sha256);
    assert!(!root.join("in/up1.bin").exists());
    assert!(!root.join("in/up2.bin").exists(), "rm");
    assert_eq!(
        sha256_file(&root.join("in/renamed space.bin")),
        spaced.sha256
    );
    let down = w.join("down");
    assert_eq!(sha256_file(&down.join("remote a.csv")), remote_a.sha256);
    assert_eq!(sha256_file(&down.join("remote b.csv")), remote_b.sha256);
    assert!(
        !down.join("skip.txt").exists(),
        "mget took a file the pattern excludes"
    );
    assert_eq!(sha256_file(&down.join("copy.bin")), spaced.sha256);
    // up2.bin was uploaded by mput before rm removed it.
    assert_eq!(up2.len, 1);
    // `ls in` after the changes shows the new tree (no stale cached listing).
    let after = stdout.rsplit("ls in").next().unwrap_or(&stdout);
    assert!(after.contains("deep/"), "{}", show(&out));
}

#[test]
fn batch_file_every_command_ftpsd() {
    batch_everything(Kind::Ftpsd);
}

#[test]
fn batch_file_every_command_vsftpd() {
    batch_everything(Kind::Vsftpd);
}

#[test]
fn batch_file_every_command_proftpd() {
    batch_everything(Kind::Proftpd);
}

#[test]
fn batch_file_every_command_pure_ftpd() {
    batch_everything(Kind::PureFtpd);
}

/// Commands from standard input; the first failure stops the run with its exit code, and
/// --continue-on-error runs the rest and still fails.
fn batch_errors(kind: Kind) {
    let server = start(kind);
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let commands = "mkdir -p first\nget missing.bin\nmkdir -p after\n";

    let out = batch(&server, w, &[], commands);
    assert_eq!(out.status.code(), Some(6), "{}", show(&out));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("line 2: get missing.bin"), "{stderr}");
    assert!(stderr.contains("550"), "the server's reply: {stderr}");
    assert!(server.root.join("first").is_dir());
    assert!(!server.root.join("after").exists(), "ran past the failure");
    assert!(
        !w.join("missing.bin").exists(),
        "a failed download left an empty file"
    );

    let out = batch(&server, w, &["-", "--continue-on-error"], commands);
    assert_eq!(out.status.code(), Some(6), "{}", show(&out));
    assert!(server.root.join("after").is_dir(), "{}", show(&out));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("1 of 3 commands failed"), "{stderr}");

    // A file of commands, and a local command that fails: exit 1.
    std::fs::write(w.join("c.txt"), "!exit 3\nmkdir never\n").unwrap();
    let out = batch(&server, w, &["c.txt"], "");
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(!server.root.join("never").exists());
}

#[test]
fn batch_errors_ftpsd() {
    batch_errors(Kind::Ftpsd);
}

#[test]
fn batch_errors_vsftpd() {
    batch_errors(Kind::Vsftpd);
}

#[test]
fn batch_errors_proftpd() {
    batch_errors(Kind::Proftpd);
}

#[test]
fn batch_errors_pure_ftpd() {
    batch_errors(Kind::PureFtpd);
}

#[test]
fn batch_syntax_error_runs_nothing_and_usage_errors_exit_2() {
    let server = start(Kind::Ftpsd);
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let out = batch(&server, w, &[], "mkdir made\nget 'unclosed\n");
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(text(&out.stderr).contains("line 2"), "{}", show(&out));
    assert!(!server.root.join("made").exists(), "ran before checking");

    let out = batch(&server, w, &[], "frobnicate\n");
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));

    // Standard input cannot carry both the password and the commands.
    let mut cmd = ftps_command(&server, w);
    let out = cmd
        .args(["batch", &url(&server, ""), "--password-stdin"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));

    let out = batch(&server, w, &["no-such-file.txt"], "");
    assert_eq!(out.status.code(), Some(8), "{}", show(&out));
}

/// The server closes the control connection after a second of idleness; the next command
/// reconnects, in the same remote directory, and succeeds.
#[test]
fn batch_reconnects_after_the_server_closed_an_idle_connection() {
    let server = Ftpsd::locate().start_with_config("[timeouts]\nidle = 1\n");
    std::fs::create_dir(server.data_dir().join("sub")).unwrap();
    server.put("sub/inside.txt", b"hello");
    let work = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ftps"))
        .current_dir(work.path())
        .env("FTPS_PASSWORD", &server.password)
        .args(["--no-netrc", "--pin-sha256", &server.fingerprint])
        .arg("batch")
        .arg(format!("ftpes://ftps@{}/", server.explicit))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(b"cd sub\n!sleep 3\nget inside.txt\npwd\n")?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    assert!(text(&out.stderr).contains("reconnecting"), "{}", show(&out));
    assert_eq!(
        std::fs::read(work.path().join("inside.txt")).unwrap(),
        b"hello"
    );
    assert!(text(&out.stdout).ends_with("/sub\n"), "{}", show(&out));
}

/// Starts `ftps shell` on a pseudo-terminal, with its history under `state`.
fn spawn_shell(server: &Server, cwd: &Path, state: &Path) -> PtySession {
    let mut cmd = ftps_command(server, cwd);
    cmd.env("TERM", "xterm")
        .env("XDG_STATE_HOME", state)
        .arg("shell")
        .arg(url(server, ""));
    spawn_with_options(
        cmd,
        Options::new()
            .timeout_ms(Some(EXPECT_TIMEOUT_MS))
            .strip_ansi_escape_codes(true),
    )
    .expect("start ftps shell on a pseudo-terminal")
}

/// Types `keys` once the prompt is shown (the line editor reads the terminal's answers
/// before drawing it, so typing earlier could be taken for one).
fn type_at_prompt(p: &mut PtySession, prompt: &str, keys: &str) {
    p.exp_string(prompt).expect("the prompt");
    p.send(keys).unwrap();
    p.flush().unwrap();
}

/// Types at the prompt: tab completion of files and of a directory with a space, errors
/// that keep the shell going, a transfer each way, history recall and persistence.
fn shell_on_a_terminal(kind: Kind) {
    let server = start(kind);
    let work = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let w = work.path();
    let report = make_file(&server.root, "submarine-report.bin", 123_456);
    std::fs::create_dir(server.root.join("directory with space")).unwrap();
    make_file(&server.root.join("directory with space"), "inner.txt", 5);
    let local = make_file(w, "upload.bin", 50_000);
    give_to_test_user(&server);
    let base = remote_base(&server);
    let prompt = format!("ftps:{}> ", base.trim_end_matches('/'));
    let prompt = if base == "/" {
        "ftps:/> ".to_string()
    } else {
        prompt
    };

    let mut p = spawn_shell(&server, w, state.path());
    // A unique prefix completes to the whole name; Enter downloads it.
    type_at_prompt(&mut p, &prompt, "get sub\t");
    p.exp_string("marine-report.bin").expect("completed name");
    p.send("\r").unwrap();
    p.flush().unwrap();
    // A directory name with a space completes escaped, with a trailing slash.
    type_at_prompt(&mut p, &prompt, "cd dir\t");
    p.exp_string("with\\ space/").expect("completed directory");
    p.send("\r").unwrap();
    p.flush().unwrap();
    let inside = format!("ftps:{}/directory with space> ", base.trim_end_matches('/'));
    // Completion inside the new directory lists it (the cache is per directory).
    type_at_prompt(&mut p, &inside, "get inn\t");
    p.exp_string("er.txt")
        .expect("completed in the new directory");
    p.send("\r").unwrap();
    p.flush().unwrap();
    type_at_prompt(&mut p, &inside, "cd ..\r");
    // An error prints the server's reply and the shell goes on.
    type_at_prompt(&mut p, &prompt, "get no-such-file\r");
    p.exp_string("550").expect("the server's reply");
    // An upload, then a new file is seen by completion (the cache was invalidated).
    type_at_prompt(&mut p, &prompt, "put upload.bin uploaded-now.bin\r");
    type_at_prompt(&mut p, &prompt, "ls uploaded-n\t");
    p.exp_string("ow.bin").expect("completed a new file");
    p.send("\r").unwrap();
    p.flush().unwrap();
    // History: up-arrow brings back the previous line.
    type_at_prompt(&mut p, &prompt, "lpwd\r");
    let here = w.canonicalize().unwrap().display().to_string();
    p.exp_string(&here).expect("lpwd output");
    type_at_prompt(&mut p, &prompt, "\x1b[A");
    p.exp_string("lpwd").expect("recalled line");
    p.send("\r").unwrap();
    p.flush().unwrap();
    p.exp_string(&here).expect("lpwd output again");
    type_at_prompt(&mut p, &prompt, "bye\r");
    p.exp_eof().expect("the shell ends");

    assert_eq!(sha256_file(&w.join("submarine-report.bin")), report.sha256);
    assert_eq!(std::fs::read(w.join("inner.txt")).unwrap().len(), 5);
    assert_eq!(
        sha256_file(&server.root.join("uploaded-now.bin")),
        local.sha256
    );
    assert!(!w.join("no-such-file").exists());
    let history = std::fs::read_to_string(state.path().join("ftps/history")).unwrap();
    assert!(history.contains("lpwd"), "{history}");
    assert!(history.contains("get submarine-report.bin"), "{history}");

    // The history is read again by the next shell.
    let mut p = spawn_shell(&server, w, state.path());
    type_at_prompt(&mut p, &prompt, "\x1b[A");
    p.exp_string("bye")
        .expect("the last line of the previous shell");
    p.send("\r").unwrap();
    p.flush().unwrap();
    p.exp_eof().expect("the shell ends");
}

#[test]
fn shell_on_a_terminal_ftpsd() {
    shell_on_a_terminal(Kind::Ftpsd);
}

#[test]
fn shell_on_a_terminal_vsftpd() {
    shell_on_a_terminal(Kind::Vsftpd);
}

#[test]
fn shell_on_a_terminal_proftpd() {
    shell_on_a_terminal(Kind::Proftpd);
}

#[test]
fn shell_on_a_terminal_pure_ftpd() {
    shell_on_a_terminal(Kind::PureFtpd);
}

#[test]
fn batch_does_not_write_history() {
    let server = start(Kind::Ftpsd);
    let work = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut cmd = ftps_command(&server, work.path());
    let out = cmd
        .env("XDG_STATE_HOME", state.path())
        .args(["batch", &url(&server, "")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(b"pwd\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    assert!(!state.path().join("ftps").exists());
}

#[test]
fn manual_page_and_help_show_the_batch_options() {
    let help = Command::new(env!("CARGO_BIN_EXE_ftps"))
        .args(["batch", "--help"])
        .output()
        .unwrap();
    assert!(text(&help.stdout).contains("--continue-on-error"));
    let top = Command::new(env!("CARGO_BIN_EXE_ftps"))
        .arg("--help")
        .output()
        .unwrap();
    let top = text(&top.stdout);
    assert!(top.contains("shell") && top.contains("batch"), "{top}");
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ftps"))
        .args(["generate", "man"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let page = std::fs::read_to_string(dir.path().join("ftps-batch.1")).unwrap();
    assert!(page.contains("continue\\-on\\-error"), "{page}");
    assert!(dir.path().join("ftps-shell.1").exists());
}
