//! Per-user quotas (`[quota]` and `[users.NAME.quota]`): an upload that would pass the byte
//! or the file limit is refused with `552` and its figures and leaves nothing behind (STOR,
//! APPE, STOU, REST+STOR), deletes and renames give room back, two logins of one user at
//! once share one count, the count survives a restart and includes files put there by
//! hand, and the usage shows in `SITE QUOTA`, `STAT` and `ftpsd user show`; through
//! Python's ftplib and curl, with `ftpsd user set` changing the quotas.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use ftps_testkit::storage::UserFiles;
use support::client::Control;
use support::{ftpsd, Run, Server};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/quota_client.py");
const TIMEOUT: Duration = Duration::from_secs(120);
const K64: u64 = 64 << 10;

// ---- Users, clients and replies ----------------------------------------------------------

/// A user of the server under test and its files.
struct User {
    name: String,
    password: String,
    files: UserFiles,
}

/// Adds the user `name` with an empty root, then gives it `quota` (flags of `ftpsd user
/// set`, none: the server's default).
fn add_user(server: &Server, name: &str, quota: &[&str]) -> User {
    let password = format!("{name}-pass-1");
    let files = server.add_user(name, &password, &[]);
    if !quota.is_empty() {
        user_set(server, name, quota);
    }
    User {
        name: name.to_string(),
        password,
        files,
    }
}

/// The user `ftps` the server made on its first start.
fn default_user(server: &Server) -> User {
    User {
        name: "ftps".to_string(),
        password: server.password.clone(),
        files: server.files(),
    }
}

/// `ftpsd user ARGS... --state-dir DIR` with the server's configuration file when it has
/// one: its `[quota]` and its storage are what `user show` counts with.
fn user_command(server: &Server, args: &[&str]) -> std::process::Output {
    let state = server.state_dir.display().to_string();
    let config = server.config.as_ref().map(|c| c.display().to_string());
    let mut all = vec!["user"];
    all.extend_from_slice(args);
    all.extend(["--state-dir", &state]);
    if let Some(config) = &config {
        all.extend(["--config", config.as_str()]);
    }
    server.ftpsd(&all, "")
}

/// `ftpsd user set NAME ARGS...`, which must succeed.
fn user_set(server: &Server, name: &str, args: &[&str]) {
    let mut all = vec!["set", name];
    all.extend_from_slice(args);
    let out = user_command(server, &all);
    assert!(
        out.status.success(),
        "ftpsd user set {name} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `ftpsd user show NAME`.
fn user_show(server: &Server, name: &str) -> String {
    let out = user_command(server, &["show", name]);
    assert!(out.status.success(), "ftpsd user show {name}: {out:?}");
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// `quota_client.py` as `user`, not yet run.
fn python_command(server: &Server, user: &User, steps: &[&str]) -> Command {
    let mut cmd = Command::new("python3");
    cmd.arg(SCRIPT)
        .args(steps)
        .env("FTP_HOST", "127.0.0.1")
        .env("FTP_PORT", server.explicit.port().to_string())
        .env("FTP_USER", &user.name)
        .env("FTP_PASSWORD", &user.password)
        .env("FTP_CAFILE", server.state_dir.join("cert.pem"))
        .env("PYTHONDONTWRITEBYTECODE", "1");
    cmd
}

/// One ftplib login of `user` running `steps`: the server's final reply to each.
fn ftplib(server: &Server, user: &User, steps: &[&str]) -> Vec<String> {
    let run = support::run_client(&mut python_command(server, user, steps), TIMEOUT);
    run.assert_ok("quota_client.py");
    replies(&run.stdout, steps, &run.to_string())
}

/// The replies in the script's output, one line per step.
fn replies(stdout: &str, steps: &[&str], context: &str) -> Vec<String> {
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), steps.len(), "one line per step:\n{context}");
    steps
        .iter()
        .zip(lines)
        .map(|(step, line)| {
            line.strip_prefix(&format!("{step} -> "))
                .unwrap_or_else(|| panic!("no reply to {step:?} in {line:?}:\n{context}"))
                .to_string()
        })
        .collect()
}

/// The 552 of an upload refused with `used` of `limit` bytes in use.
fn over_bytes(used: u64, limit: u64, size: &str) -> String {
    format!(
        "552 Quota exceeded: {used} of {limit} bytes ({size}) in use, and this upload would pass \
         the limit; the upload was refused and the file left as it was (SITE QUOTA shows the \
         usage)."
    )
}

/// The 552 of a new file refused with `used` of `limit` files in use.
fn over_files(used: u64, limit: u64) -> String {
    format!(
        "552 Quota exceeded: {used} of {limit} files in use, and this upload would add one; the \
         upload was refused and the file left as it was (SITE QUOTA shows the usage)."
    )
}

/// The `SITE QUOTA` reply of `user`, as the script joins its lines.
fn site_quota(user: &str, bytes: &str, files: &str) -> String {
    format!("200-Quota for {user}: |  {bytes} |  {files} | 200 End of quota.")
}

/// The bytes and files in use that a `SITE QUOTA` or `STAT` reply gives.
fn usage_in(reply: &str) -> (u64, u64) {
    let number_after = |label: &str| -> u64 {
        let at = reply
            .find(label)
            .unwrap_or_else(|| panic!("no {label:?} in {reply:?}"));
        reply[at + label.len()..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no number after {label:?} in {reply:?}"))
    };
    (number_after("Bytes: "), number_after("Files: "))
}

fn assert_reply(reply: &str, expected: &str, what: &str) {
    assert_eq!(reply, expected, "{what}");
}

fn assert_code(reply: &str, code: &str, what: &str) {
    assert!(
        reply.starts_with(code),
        "{what}: expected {code}, got {reply:?}"
    );
}

/// Local files for curl to upload.
fn local_file(server: &Server, name: &str, content: &[u8]) -> String {
    let path = server.scratch("local").join(name);
    std::fs::write(&path, content).expect("write local file");
    path.display().to_string()
}

/// curl as `user` over explicit FTPS on `path` (`/NAME`) with `args`; `--verbose` so that
/// the server's replies are in its stderr.
fn curl(server: &Server, user: &User, path: &str, args: &[&str]) -> Run {
    let mut cmd = Command::new("curl");
    cmd.args(["--silent", "--show-error", "--verbose", "--disable"])
        .args(["--max-time", "120", "--ssl-reqd"])
        .arg("--cacert")
        .arg(server.state_dir.join("cert.pem"))
        .arg("--user")
        .arg(format!("{}:{}", user.name, user.password))
        .args(args)
        .arg(format!("ftp://127.0.0.1:{}{path}", server.explicit.port()));
    support::run_client(&mut cmd, TIMEOUT)
}

/// Asserts that curl failed after the server answered `reply` (the whole line).
fn assert_curl_refused(run: &Run, reply: &str, what: &str) {
    assert!(!run.status.success(), "{what}: curl succeeded:\n{run}");
    // CURLE_REMOTE_DISK_FULL: curl's name for a 552 to an upload.
    assert_eq!(run.status.code(), Some(70), "{what}:\n{run}");
    assert!(
        run.stderr.lines().any(|l| l == format!("< {reply}")),
        "{what}: curl did not get {reply:?}:\n{run}"
    );
}

/// Checks what two uploads of `size` bytes racing for one quota of `limit` bytes left:
/// each either stored whole (226) or refused (552) without a trace, at least one refused,
/// and no more than `limit` bytes stored. Returns the bytes and files stored.
fn assert_race_outcome(
    files: &UserFiles,
    uploads: &[(&str, u8, &str)],
    size: usize,
    limit: u64,
) -> (u64, u64) {
    let (mut bytes, mut count, mut refused) = (0, 0, 0);
    for (name, fill, reply) in uploads {
        match files.try_read(name) {
            Some(content) => {
                assert_code(reply, "226", &format!("{name} is stored"));
                assert!(
                    content.len() == size && content.iter().all(|b| b == fill),
                    "{name}: {} bytes, not the whole upload",
                    content.len()
                );
                bytes += content.len() as u64;
                count += 1;
            }
            None => {
                assert!(
                    reply.starts_with("552 Quota exceeded: "),
                    "{name} is missing, yet its reply is {reply:?}"
                );
                refused += 1;
            }
        }
    }
    assert!(refused >= 1, "both uploads were stored: {uploads:?}");
    assert!(
        bytes <= limit,
        "{bytes} bytes stored under a quota of {limit}"
    );
    let mut names: Vec<&str> = uploads.iter().map(|(name, _, _)| *name).collect();
    names.retain(|name| files.exists(name));
    assert_eq!(files.names(""), names, "something else was left");
    (bytes, count)
}

// ---- Refused uploads ----------------------------------------------------------------------

#[test]
fn stor_past_the_byte_quota_is_552_with_the_figures_and_leaves_nothing() {
    let server = ftpsd().start();
    let pat = add_user(&server, "pat", &["--quota-bytes", "64K"]);
    // Put before the first login: the login counts it.
    pat.files.put("old.bin", &[b'o'; 10_000]);
    let steps = [
        "site:QUOTA",
        // 10000 + 60000 bytes.
        "stor:new.bin:60000:n",
        // Replacing old.bin: 70000 bytes instead of 10000.
        "stor:old.bin:70000:r",
        // Larger than what the server buffers: refused while the bytes arrive.
        "stor:big.bin:1048576:b",
        "site:QUOTA",
        "nlst",
    ];
    let got = ftplib(&server, &pat, &steps);
    let before = site_quota(
        "pat",
        "Bytes: 10000 of 65536 (9.8 KiB of 64K) used",
        "Files: 1 used, no limit",
    );
    assert_reply(&got[0], &before, "usage of the file put before the login");
    let refused = over_bytes(10_000, K64, "64K");
    assert_reply(&got[1], &refused, "STOR of a new file");
    assert_reply(&got[2], &refused, "STOR over an existing file");
    assert_reply(&got[3], &refused, "STOR of 1 MiB");
    assert_reply(&got[4], &before, "the usage after the refusals");
    assert_eq!(got[5], "old.bin");
    // No file, no temporary, and the old file as it was.
    assert_eq!(pat.files.names(""), ["old.bin"]);
    assert_eq!(pat.files.read("old.bin"), [b'o'; 10_000]);

    let steps = [
        // Exactly the quota.
        "stor:fits.bin:55536:f",
        "site:QUOTA",
        // Full: refused before any data.
        "stor:one.bin:1:x",
        // Full, but rewriting a file with as many bytes needs no more.
        "stor:old.bin:10000:s",
        "site:QUOTA",
    ];
    let got = ftplib(&server, &pat, &steps);
    assert_code(&got[0], "226", "STOR up to the quota");
    let full = site_quota(
        "pat",
        "Bytes: 65536 of 65536 (64.0 KiB of 64K) used",
        "Files: 2 used, no limit",
    );
    assert_reply(&got[1], &full, "the usage at the quota");
    assert_reply(&got[2], &over_bytes(K64, K64, "64K"), "STOR when full");
    assert_code(&got[3], "226", "rewriting a file of the same size");
    assert_reply(&got[4], &full, "the usage after the rewrite");
    assert_eq!(pat.files.names(""), ["fits.bin", "old.bin"]);
    assert_eq!(pat.files.read("fits.bin"), vec![b'f'; 55_536]);
    assert_eq!(pat.files.read("old.bin"), [b's'; 10_000]);
}

#[test]
fn appe_stou_and_rest_stor_past_the_quota_leave_the_files_as_they_were() {
    let server = ftpsd().start();
    let pat = add_user(&server, "pat", &["--quota-bytes", "64K"]);
    pat.files.put("log.bin", &[b'l'; 10_000]);
    pat.files.put("part.bin", &[b'p'; 20_000]);
    let steps = [
        // 30000 + 40000 bytes appended.
        "appe:log.bin:40000:a",
        // part.bin would grow from 20000 to 60000 bytes.
        "rest:part.bin:10000:50000:r",
        "stou:40000:u",
        "site:QUOTA",
        "nlst",
    ];
    let got = ftplib(&server, &pat, &steps);
    let refused = over_bytes(30_000, K64, "64K");
    assert_reply(&got[0], &refused, "APPE");
    assert_reply(&got[1], &refused, "REST + STOR");
    assert_reply(&got[2], &refused, "STOU");
    let unchanged = site_quota(
        "pat",
        "Bytes: 30000 of 65536 (29.3 KiB of 64K) used",
        "Files: 2 used, no limit",
    );
    assert_reply(&got[3], &unchanged, "the usage after the refusals");
    assert_eq!(got[4], "log.bin part.bin");
    assert_eq!(pat.files.names(""), ["log.bin", "part.bin"]);
    assert_eq!(pat.files.read("log.bin"), [b'l'; 10_000]);
    assert_eq!(pat.files.read("part.bin"), [b'p'; 20_000]);

    // Within the quota each works, and counts what it changed.
    let steps = [
        "appe:log.bin:5000:a",
        // part.bin shrinks to 10100 bytes.
        "rest:part.bin:10000:100:r",
        "stou:40000:u",
        "site:QUOTA",
        // One byte past: 35000 + 10100 + 40000 + 437 = 65537.
        "appe:log.bin:437:a",
    ];
    let got = ftplib(&server, &pat, &steps);
    for (reply, what) in got.iter().zip(["APPE", "REST + STOR", "STOU"]) {
        assert_code(reply, "226", what);
    }
    let (bytes, files) = usage_in(&got[3]);
    assert_eq!((bytes, files), (65_100, 3), "{}", got[3]);
    assert_reply(
        &got[4],
        &over_bytes(65_100, K64, "64K"),
        "APPE by one too many",
    );
    let mut log = vec![b'l'; 10_000];
    log.extend([b'a'; 5000]);
    assert_eq!(pat.files.read("log.bin"), log);
    let mut part = vec![b'p'; 10_000];
    part.extend([b'r'; 100]);
    assert_eq!(pat.files.read("part.bin"), part);
    let names = pat.files.names("");
    assert_eq!(names.len(), 3, "{names:?}");
    let unique = names
        .iter()
        .find(|n| !["log.bin", "part.bin"].contains(&n.as_str()))
        .expect("the STOU file");
    assert_eq!(pat.files.read(unique), vec![b'u'; 40_000]);
}

#[test]
fn the_file_quota_refuses_the_next_new_file_but_not_an_overwrite() {
    let server = ftpsd().start();
    let pat = add_user(&server, "pat", &["--quota-files", "3"]);
    // Files in subdirectories count; directories do not.
    pat.files.mkdir("sub");
    pat.files.put("sub/a.txt", b"a");
    let steps = [
        "site:QUOTA",
        "stor:b.txt:10:b",
        "mkd:dir",
        "stor:dir/c.txt:10:c",
        "stor:d.txt:10:d",
        "stou:10:u",
        // Existing files need no new place.
        "stor:b.txt:20:B",
        "appe:dir/c.txt:5:C",
        "rest:b.txt:5:1:R",
        "site:QUOTA",
    ];
    let got = ftplib(&server, &pat, &steps);
    assert_reply(
        &got[0],
        &site_quota("pat", "Bytes: 1 (1 B) used, no limit", "Files: 1 of 3 used"),
        "usage before",
    );
    assert_code(&got[1], "226", "the second file");
    assert_code(&got[2], "257", "MKD");
    assert_code(&got[3], "226", "the third file");
    assert_reply(&got[4], &over_files(3, 3), "STOR of a fourth file");
    assert_reply(&got[5], &over_files(3, 3), "STOU of a fourth file");
    for (reply, what) in got[6..9].iter().zip(["STOR over", "APPE", "REST + STOR"]) {
        assert_code(reply, "226", what);
    }
    let full = site_quota(
        "pat",
        "Bytes: 22 (22 B) used, no limit",
        "Files: 3 of 3 used",
    );
    assert_reply(&got[9], &full, "usage at the limit");
    assert_eq!(pat.files.names(""), ["b.txt", "dir", "sub"]);
    assert_eq!(pat.files.names("dir"), ["c.txt"]);
    assert_eq!(pat.files.read("b.txt"), b"BBBBBR");
    assert_eq!(pat.files.read("dir/c.txt"), b"ccccccccccCCCCC");
    // A new login counts the tree again: the same figures.
    let got = ftplib(&server, &pat, &["site:QUOTA", "stor:e.txt:1:e"]);
    assert_reply(&got[0], &full, "usage counted at the next login");
    assert_reply(&got[1], &over_files(3, 3), "a fourth file, next login");
    assert!(!pat.files.exists("e.txt"));
}

#[test]
fn deletes_and_renames_give_their_room_back() {
    let server = ftpsd().start();
    let pat = add_user(
        &server,
        "pat",
        &["--quota-bytes", "64K", "--quota-files", "3"],
    );
    let steps = [
        "stor:a.bin:40000:a",
        "stor:b.bin:20000:b",
        "stor:c.bin:10000:c",
        "site:QUOTA",
        "dele:b.bin",
        "site:QUOTA",
        // Refused before the DELE, it fits now.
        "stor:c.bin:10000:c",
        "stor:d.bin:5000:d",
        "stor:e.bin:1000:e",
        "site:QUOTA",
        // Over c.bin: its bytes and its place are freed.
        "rename:d.bin:c.bin",
        "site:QUOTA",
        "stor:e.bin:1000:e",
        // To a free name: nothing changes.
        "rename:e.bin:f.bin",
        "site:QUOTA",
    ];
    let got = ftplib(&server, &pat, &steps);
    let usage = |i: usize| usage_in(&got[i]);
    assert_code(&got[0], "226", "a.bin");
    assert_code(&got[1], "226", "b.bin");
    assert_reply(
        &got[2],
        &over_bytes(60_000, K64, "64K"),
        "c.bin, too many bytes",
    );
    assert_eq!(usage(3), (60_000, 2), "{}", got[3]);
    assert_code(&got[4], "250", "DELE");
    assert_eq!(usage(5), (40_000, 1), "after DELE: {}", got[5]);
    assert_code(&got[6], "226", "c.bin after the DELE");
    assert_code(&got[7], "226", "d.bin");
    assert_reply(&got[8], &over_files(3, 3), "e.bin, a fourth file");
    assert_eq!(usage(9), (55_000, 3), "{}", got[9]);
    assert_code(&got[10], "250", "RNTO over c.bin");
    assert_eq!(
        usage(11),
        (45_000, 2),
        "after RNTO over a file: {}",
        got[11]
    );
    assert_code(&got[12], "226", "e.bin after the rename");
    assert_code(&got[13], "250", "RNTO to a free name");
    assert_eq!(usage(14), (46_000, 3), "{}", got[14]);
    assert_eq!(pat.files.names(""), ["a.bin", "c.bin", "f.bin"]);
    assert_eq!(pat.files.read("c.bin"), [b'd'; 5000]);
    assert_eq!(pat.files.read("f.bin"), [b'e'; 1000]);
}

// ---- Logins at once, restarts, the default -----------------------------------------------

#[test]
fn two_logins_of_one_user_at_once_share_one_count() {
    let server = ftpsd().start();
    const SIZE: usize = 600_000;
    const LIMIT: u64 = 1 << 20;

    // Two ftplib logins: the first sends half of its file, the second a whole one, then
    // the first the rest. Together they are more than the quota.
    let duo = add_user(&server, "duo", &["--quota-bytes", "1M"]);
    let pair = format!("pair:a.bin:b.bin:{SIZE}:a:b");
    let got = ftplib(&server, &duo, &[&pair, "site:QUOTA"]);
    let (a, b) = got[0]
        .strip_prefix("A ")
        .and_then(|rest| rest.split_once(" B "))
        .unwrap_or_else(|| panic!("{got:?}"));
    let stored = assert_race_outcome(
        &duo.files,
        &[("a.bin", b'a', a), ("b.bin", b'b', b)],
        SIZE,
        LIMIT,
    );
    assert_eq!(usage_in(&got[1]), stored, "the shared count: {}", got[1]);
    let again = ftplib(&server, &duo, &["site:QUOTA"]);
    assert_eq!(usage_in(&again[0]), stored, "counted again: {}", again[0]);

    // ftplib holds an upload half sent while curl uploads.
    let trio = add_user(&server, "trio", &["--quota-bytes", "1M"]);
    let hold = format!("hold:c.bin:{SIZE}:c");
    let mut child = python_command(&server, &trio, &[&hold])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run quota_client.py");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read the script");
    assert_eq!(line.trim_end(), "holding c.bin");
    let local = local_file(&server, "d.bin", &[b'd'; SIZE]);
    let run = curl(&server, &trio, "/d.bin", &["--upload-file", &local]);
    let curl_reply = if run.status.success() {
        "226".to_string()
    } else {
        let line = run
            .stderr
            .lines()
            .find(|l| l.starts_with("< 552 "))
            .unwrap_or_else(|| panic!("curl failed without a 552:\n{run}"));
        line.trim_start_matches("< ").to_string()
    };
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(b"go on\n")
        .expect("tell the script to go on");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).expect("read the script");
    let out = child.wait_with_output().expect("wait for the script");
    let context = format!("{rest}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "quota_client.py:\n{context}");
    let held = replies(&rest, &[&hold], &context).remove(0);
    let stored = assert_race_outcome(
        &trio.files,
        &[("c.bin", b'c', &held), ("d.bin", b'd', &curl_reply)],
        SIZE,
        LIMIT,
    );
    let got = ftplib(&server, &trio, &["site:QUOTA"]);
    assert_eq!(usage_in(&got[0]), stored, "{}", got[0]);
}

#[test]
fn the_usage_survives_a_restart_and_counts_files_put_by_hand() {
    let mut server = ftpsd().start();
    let pat = add_user(
        &server,
        "pat",
        &["--quota-bytes", "64K", "--quota-files", "10"],
    );
    pat.files.put("pre.bin", &[b'p'; 10_000]);
    pat.files.mkdir("sub");
    pat.files.put("sub/pre.bin", &[b'q'; 5000]);
    let got = ftplib(
        &server,
        &pat,
        &["site:QUOTA", "stor:up.bin:20000:u", "site:QUOTA"],
    );
    assert_eq!(usage_in(&got[0]), (15_000, 2), "{}", got[0]);
    assert_code(&got[1], "226", "up.bin");
    assert_eq!(usage_in(&got[2]), (35_000, 3), "{}", got[2]);

    server.restart();
    // Added while the user is not logged in: the next login counts it.
    pat.files.put("sub/hand.bin", &[b'h'; 536]);
    let steps = [
        "site:QUOTA",
        "stor:last.bin:30000:l",
        "stor:x.bin:1:x",
        "site:QUOTA",
    ];
    let got = ftplib(&server, &pat, &steps);
    assert_reply(
        &got[0],
        &site_quota(
            "pat",
            "Bytes: 35536 of 65536 (34.7 KiB of 64K) used",
            "Files: 4 of 10 used",
        ),
        "usage after the restart",
    );
    assert_code(&got[1], "226", "up to the quota");
    assert_reply(&got[2], &over_bytes(K64, K64, "64K"), "one byte past");
    assert_eq!(usage_in(&got[3]), (K64, 5), "{}", got[3]);
    assert!(!pat.files.exists("x.bin"));
    let shown = user_show(&server, "pat");
    assert!(
        shown.contains("# quota: Bytes: 65536 of 65536 (64.0 KiB of 64K) used\n"),
        "{shown}"
    );
}

#[tokio::test]
async fn the_servers_default_applies_until_a_users_own_value_replaces_it() {
    let server = ftpsd().start_with_config("[quota]\nbytes = \"64K\"\nfiles = 10\n");
    // The user `ftps` has no quota of its own.
    let ftps = default_user(&server);
    let got = ftplib(&server, &ftps, &["site:QUOTA", "stor:big.bin:70000:x"]);
    assert_reply(
        &got[0],
        &site_quota(
            "ftps",
            "Bytes: 0 of 65536 (0 B of 64K) used",
            "Files: 0 of 10 used",
        ),
        "the server's default",
    );
    assert_reply(&got[1], &over_bytes(0, K64, "64K"), "ftps over the default");
    ftps.files.assert_empty("a refused upload");

    let own = add_user(&server, "own", &[]);
    let shown = user_show(&server, "own");
    assert!(!shown.contains("quota]"), "no table of its own: {shown}");
    assert!(
        shown.contains(
            "# quota: Bytes: 0 of 65536 (0 B of 64K) used\n# quota: Files: 0 of 10 used\n"
        ),
        "{shown}"
    );
    // A connection that logged in before the change keeps the limits it logged in with.
    let mut before = Control::login(&server, "own", &own.password).await;

    user_set(&server, "own", &["--quota-bytes", "0"]);
    let shown = user_show(&server, "own");
    assert!(shown.contains("[users.own.quota]"), "{shown}");
    assert!(
        shown.contains("# quota: Bytes: 0 (0 B) used, no limit\n# quota: Files: 0 of 10 used\n"),
        "{shown}"
    );
    let got = ftplib(&server, &own, &["site:QUOTA", "stor:big.bin:70000:x"]);
    assert_reply(
        &got[0],
        &site_quota(
            "own",
            "Bytes: 0 (0 B) used, no limit",
            "Files: 0 of 10 used",
        ),
        "its own value lifts the byte limit, not the file limit",
    );
    assert_code(&got[1], "226", "70000 bytes without a byte limit");
    let t = before.transfer("STOR small.bin", Some(b"x")).await;
    assert_eq!(
        t.last.as_ref().unwrap_or(&t.first).to_string().trim_end(),
        over_bytes(70_000, K64, "64K"),
        "the older login\n{}",
        before.transcript
    );
    before.expect("QUIT", 221).await;

    user_set(&server, "own", &["--quota-bytes", "default"]);
    let shown = user_show(&server, "own");
    assert!(!shown.contains("quota]"), "the table goes: {shown}");
    assert!(
        shown.contains("# quota: Bytes: 70000 of 65536 (68.4 KiB of 64K) used\n"),
        "{shown}"
    );
    let got = ftplib(
        &server,
        &own,
        &[
            "site:QUOTA",
            "stor:one.bin:1:x",
            "dele:big.bin",
            "stor:one.bin:1:x",
        ],
    );
    assert_eq!(usage_in(&got[0]), (70_000, 1), "{}", got[0]);
    assert!(got[0].contains("70000 of 65536"), "{}", got[0]);
    assert_reply(
        &got[1],
        &over_bytes(70_000, K64, "64K"),
        "the default again",
    );
    assert_code(&got[2], "250", "DELE");
    assert_code(&got[3], "226", "room after the DELE");
    assert_eq!(own.files.names(""), ["one.bin"]);

    // Both limits lifted: no quota at all.
    user_set(
        &server,
        "own",
        &["--quota-bytes", "0", "--quota-files", "0"],
    );
    assert!(user_show(&server, "own").contains("# quota: none\n"));
    let got = ftplib(&server, &own, &["site:QUOTA"]);
    assert_reply(&got[0], "200 No quota for this account.", "no limit at all");
}

// ---- What the administrator and the user see ---------------------------------------------

#[test]
fn the_usage_shows_in_user_show_stat_and_site_quota() {
    let server = ftpsd().start();
    let pat = add_user(
        &server,
        "pat",
        &["--quota-bytes", "1M", "--quota-files", "10"],
    );
    pat.files.put("a.bin", &[b'a'; 1536]);
    pat.files.put("b.bin", &[b'b'; 100]);
    let shown = user_show(&server, "pat");
    for line in [
        "[users.pat.quota]",
        "bytes = \"1M\"",
        "files = 10",
        "# quota: Bytes: 1636 of 1048576 (1.6 KiB of 1M) used",
        "# quota: Files: 2 of 10 used",
    ] {
        assert!(shown.lines().any(|l| l == line), "no {line:?} in:\n{shown}");
    }
    let got = ftplib(&server, &pat, &["stat", "stor:c.bin:2000:c", "stat"]);
    let quota_line = |reply: &str| -> String {
        reply
            .split(" | ")
            .find(|l| l.starts_with(" Quota: "))
            .unwrap_or_else(|| panic!("no Quota line in {reply:?}"))
            .to_string()
    };
    assert_eq!(
        quota_line(&got[0]),
        " Quota: Bytes: 1636 of 1048576 (1.6 KiB of 1M) used, Files: 2 of 10 used"
    );
    assert_code(&got[1], "226", "c.bin");
    assert_eq!(
        quota_line(&got[2]),
        " Quota: Bytes: 3636 of 1048576 (3.6 KiB of 1M) used, Files: 3 of 10 used"
    );
    let shown = user_show(&server, "pat");
    assert!(
        shown.contains(
            "# quota: Bytes: 3636 of 1048576 (3.6 KiB of 1M) used\n# quota: Files: 3 of 10 used\n"
        ),
        "{shown}"
    );

    // A user without a quota.
    let free = add_user(&server, "free", &[]);
    let shown = user_show(&server, "free");
    assert!(shown.ends_with("# quota: none\n"), "{shown}");
    let got = ftplib(&server, &free, &["site:QUOTA", "stat", "site:HELP"]);
    assert_reply(&got[0], "200 No quota for this account.", "SITE QUOTA");
    assert_code(&got[1], "211", "STAT");
    assert!(!got[1].contains("Quota"), "{}", got[1]);
    assert!(got[2].contains(" SITE QUOTA "), "{}", got[2]);
}

// ---- curl ------------------------------------------------------------------------------------

#[test]
fn curl_reports_the_552_of_an_upload_over_the_quota_and_nothing_is_left() {
    let server = ftpsd().start();
    let pat = add_user(&server, "pat", &["--quota-bytes", "64K"]);
    pat.files.put("kept.bin", &[b'k'; 10_000]);
    let over = local_file(&server, "over.bin", &[b'o'; 60_000]);
    let replace = local_file(&server, "replace.bin", &[b'r'; 70_000]);
    let big = local_file(&server, "big.bin", &support::content(1, 1 << 20));
    let refused = over_bytes(10_000, K64, "64K");
    for (path, args, what) in [
        (
            "/new.bin",
            vec!["--upload-file", over.as_str()],
            "STOR of a new file",
        ),
        (
            "/big.bin",
            vec!["--upload-file", big.as_str()],
            "STOR of 1 MiB",
        ),
        (
            "/kept.bin",
            vec!["--upload-file", replace.as_str()],
            "STOR over a file",
        ),
        (
            "/kept.bin",
            vec!["--append", "--upload-file", over.as_str()],
            "APPE",
        ),
    ] {
        let run = curl(&server, &pat, path, &args);
        assert_curl_refused(&run, &refused, what);
        assert_eq!(pat.files.names(""), ["kept.bin"], "{what}");
        assert_eq!(pat.files.read("kept.bin"), [b'k'; 10_000], "{what}");
    }
    // The usage did not change, as SITE QUOTA tells curl.
    let run = curl(&server, &pat, "/", &["--quote", "SITE QUOTA"]);
    run.assert_ok("curl SITE QUOTA");
    assert!(
        run.stderr
            .contains("<  Bytes: 10000 of 65536 (9.8 KiB of 64K) used"),
        "{run}"
    );
    // Up to the quota works.
    let fits = local_file(&server, "fits.bin", &[b'f'; 55_536]);
    curl(&server, &pat, "/fits.bin", &["--upload-file", &fits]).assert_ok("curl STOR");
    assert_eq!(pat.files.names(""), ["fits.bin", "kept.bin"]);
    assert_eq!(pat.files.read("fits.bin"), vec![b'f'; 55_536]);
}
