//! The compatibility matrix: real FTPS clients (curl, lftp, rclone, Python's ftplib and the
//! suppaftp crate) each drive ftpsd through a full scenario: upload a tree, list it,
//! download it back and compare SHA-256 digests, rename, delete.
//!
//! Every row of `docs/compatibility.md` is one scenario below, and every scenario is one
//! test; `compatibility_table_is_current` fails when the committed table differs from what
//! these scenarios prove. Regenerate it with
//! `FTPS_WRITE_COMPAT_TABLE=1 cargo test -p ftpsd --test compat compatibility_table`.

mod matrix;
mod strict_binding;
mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use ftps_testkit::storage::UserFiles;
use matrix::{assert_same_tree, assert_same_user_tree, make_tree, url_path, DualStack, TREE};
use support::client::{client_config, Tls};
use support::{ftpsd, run_client, Run, Server};

/// Longest run of one client command.
const TIMEOUT: Duration = Duration::from_secs(120);

/// One row of the compatibility table.
struct Scenario {
    /// The test's name.
    id: &'static str,
    client: &'static str,
    /// Connection settings: explicit/implicit FTPS, TLS version, data connection mode.
    setup: &'static str,
    /// What the test checks beyond the common scenario, or a limitation it pins down.
    notes: &'static str,
}

/// Declares the scenarios: the table rows and, from the same list, one test each.
macro_rules! scenarios {
    ($($id:ident: $client:literal, $setup:literal, $notes:literal => $run:expr;)*) => {
        const SCENARIOS: &[Scenario] = &[$(Scenario {
            id: stringify!($id),
            client: $client,
            setup: $setup,
            notes: $notes,
        }),*];
        $(#[test] fn $id() { $run })*
    };
}

scenarios! {
    curl_explicit_tls12_epsv: "curl", "explicit, TLS 1.2, EPSV",
        "TYPE A both ways, in every curl row: `-B --crlf` uploads an LF file with CRLF and \
         it is stored with LF; `-B` and TYPE I downloads both give it back as it was" =>
        curl(Curl { tls: "1.2", epsv: true, implicit: false });
    curl_explicit_tls13_epsv: "curl", "explicit, TLS 1.3, EPSV", "" =>
        curl(Curl { tls: "1.3", epsv: true, implicit: false });
    curl_explicit_tls12_pasv: "curl", "explicit, TLS 1.2, PASV (`--disable-epsv`)", "" =>
        curl(Curl { tls: "1.2", epsv: false, implicit: false });
    curl_explicit_tls13_pasv: "curl", "explicit, TLS 1.3, PASV (`--disable-epsv`)", "" =>
        curl(Curl { tls: "1.3", epsv: false, implicit: false });
    curl_implicit_tls13: "curl", "implicit (`ftps://`), TLS 1.3, EPSV", "" =>
        curl(Curl { tls: "1.3", epsv: true, implicit: true });
    curl_active_fails_in_curl_7_88: "curl", "explicit, active (`-P`)",
        "**fails: a curl bug.** curl 7.87 and 7.88 lost the TLS layer of active data \
         connections (curl issue 10666, fixed by curl PR 10669): curl accepts the server's \
         data connection but never starts TLS on it. The test checks that this is what \
         happens and that ftpsd times the handshake out with 425. Active mode itself is \
         proven with lftp and ftplib." =>
        curl_active_7_88();
    curl_tls13_several_uploads_one_run: "curl", "explicit, TLS 1.3, several uploads in one curl command",
        "OpenSSL uses a TLS 1.3 session once and keeps only the newest: each data \
         connection resumes the ticket that came with its `229` reply (20 uploads in the \
         table below)" =>
        curl_several_uploads("1.3");
    curl_tls12_several_uploads_one_run: "curl", "explicit, TLS 1.2, several uploads in one curl command",
        "TLS 1.2 sessions resume any number of times" =>
        curl_several_uploads("1.2");
    lftp_explicit_epsv: "lftp", "explicit, EPSV (`ftp:prefer-epsv yes`)",
        "`mirror -R` up and `mirror` down, `cls -l`, `mv`, `rm -r`" =>
        lftp(Lftp { implicit: false, settings: "set ftp:prefer-epsv yes", parallel: 1 });
    lftp_explicit_tls12_pasv_parallel: "lftp", "explicit, TLS 1.2 only, PASV, `mirror --parallel=4`",
        "four data connections at once, each resuming its own control session" =>
        lftp(Lftp {
            implicit: false,
            settings: "set ftp:prefer-epsv no\nset ssl:priority NORMAL:-VERS-TLS1.3",
            parallel: 4,
        });
    lftp_implicit: "lftp", "implicit (`ftps://`), PASV, `mirror --parallel=2`", "" =>
        lftp(Lftp { implicit: true, settings: "", parallel: 2 });
    lftp_active: "lftp", "explicit, active (`ftp:passive-mode off`)", "" =>
        lftp(Lftp { implicit: false, settings: "set ftp:passive-mode off", parallel: 1 });
    rclone_explicit: "rclone", "`--ftp-explicit-tls`, `--ftp-concurrency 1`",
        "`copy` up and down, `lsjson -R`, `sync` (deletes and adds), `moveto`, `purge`" =>
        rclone(Rclone { implicit: false, concurrency: Some(1), optional_reuse: false });
    rclone_implicit: "rclone", "`--ftp-tls` (implicit), `--ftp-concurrency 1`", "" =>
        rclone(Rclone { implicit: true, concurrency: Some(1), optional_reuse: false });
    rclone_parallel_required_reuse: "rclone",
        "`--ftp-explicit-tls`, default concurrency, session reuse required",
        "rclone keeps one TLS session cache for all its connections, so a data connection \
         may resume a ticket of the same user's other control connection from the same \
         address, which ftpsd accepts (docs/security.md)" =>
        rclone(Rclone { implicit: false, concurrency: None, optional_reuse: false });
    rclone_parallel_with_optional_reuse: "rclone",
        "`--ftp-explicit-tls`, default concurrency, user with `data_session_reuse = \"optional\"`",
        "" =>
        rclone(Rclone { implicit: false, concurrency: None, optional_reuse: true });
    ftplib_reuse_pasv: "Python ftplib", "explicit, PASV, data sessions resumed (subclass in the README)",
        "TYPE A both ways: `storlines` of a file with LF endings is stored with LF and comes \
         back unchanged in TYPE I; `retrlines` reads it line by line (every ftplib row)" =>
        ftplib(Ftplib { reuse: true, active: false, ipv6: false });
    ftplib_stock_optional_reuse: "Python ftplib", "explicit, PASV, stock `FTP_TLS`, user with `optional` policy",
        "plain `FTP_TLS` cannot resume sessions; the `optional` policy lets it in" =>
        ftplib(Ftplib { reuse: false, active: false, ipv6: false });
    ftplib_reuse_active: "Python ftplib", "explicit, active (PORT), data sessions resumed", "" =>
        ftplib(Ftplib { reuse: true, active: true, ipv6: false });
    ftplib_ipv6_epsv: "Python ftplib", "explicit over IPv6 (`[::1]`), EPSV", "" =>
        ftplib(Ftplib { reuse: true, active: false, ipv6: true });
    ftplib_ipv6_eprt: "Python ftplib", "explicit over IPv6 (`[::1]`), active (EPRT)", "" =>
        ftplib(Ftplib { reuse: true, active: true, ipv6: true });
    suppaftp_tls12: "suppaftp 12 (rustls)", "explicit, TLS 1.2, PASV", "" =>
        suppaftp(Tls::V12, false);
    suppaftp_tls13_optional_reuse: "suppaftp 12 (rustls)",
        "explicit, TLS 1.3, EPSV, user with `optional` policy", "" =>
        suppaftp(Tls::V13, true);
    suppaftp_tls13_required_reuse: "suppaftp 12 (rustls)", "explicit, TLS 1.3, EPSV, session reuse required",
        "rustls uses each TLS 1.3 ticket once: every `229` reply brings a fresh one" =>
        suppaftp(Tls::V13, false);
    suppaftp_tls13_many_uploads: "suppaftp 12 (rustls)", "explicit, TLS 1.3, session reuse required, 50 uploads without downloads in between",
        "the ninth upload in a row got 522 before tickets came with every `227`/`229`" =>
        suppaftp_many_uploads();
}

// ---- The table ---------------------------------------------------------------------------

const TABLE_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/compatibility.md");

fn render_table() -> String {
    let mut out = String::from(
        "# Compatibility with real clients\n\n\
         Generated from `crates/ftpsd/tests/compat.rs`: every row is one test that runs in \
         `.ci/run` (`scripts/test.sh`) and passes. Each drives the real client against \
         ftpsd through the same scenario: upload a tree (empty, one-byte, 1 MiB + 1 and text \
         files, subdirectories, a UTF-8 name with a space), list it, download it back and \
         compare SHA-256 digests, rename a file, delete everything; the test checks the \
         server's disk after each step. Unless a row says otherwise, data connections must \
         resume the control connection's TLS session (the default policy).\n\n\
         Clients: the Debian 12 packages of curl (7.88), lftp (4.9) and rclone (1.60), \
         Python 3's `ftplib`, and the `suppaftp` crate (12.x, rustls). Regenerate with \
         `FTPS_WRITE_COMPAT_TABLE=1 cargo test -p ftpsd --test compat compatibility_table`.\n\n\
         | client | setup | works | notes | test |\n|---|---|---|---|---|\n",
    );
    for s in SCENARIOS {
        let works = if s.notes.starts_with("**fails") {
            "no"
        } else {
            "yes"
        };
        out.push_str(&format!(
            "| {} | {} | {works} | {} | `{}` |\n",
            s.client, s.setup, s.notes, s.id
        ));
    }
    out.push_str(
        "\n## Many transfers per session, TLS 1.3, strict binding\n\n\
         Generated from `crates/ftpsd/tests/strict_binding/mod.rs`. Each row runs one workload \
         with a real client against ftpsd with the default `data_session_reuse = \"required\"` \
         and against vsftpd 3.0.3 with `require_ssl_reuse=YES`, the strictest of the others. \
         Against ftpsd the test reads the server's log: no data connection refused, every \
         control connection on TLS 1.3, and `data_tls=\"resumed\"` on every completed \
         transfer. vsftpd's column is what the same run gave there (the test fails when that \
         changes). How ftpsd keeps clients supplied with tickets: \
         [security.md](security.md#tls-session-resumption).\n\n\
         | client | workload | ftpsd | vsftpd 3.0.3 (`require_ssl_reuse=YES`) | test |\n\
         |---|---|---|---|---|\n",
    );
    for row in strict_binding::ROWS {
        out.push_str(&format!(
            "| {} | {} | yes | {} | `{}` |\n",
            row.client, row.workload, row.vsftpd, row.id
        ));
    }
    out
}

#[test]
fn compatibility_table_is_current() {
    let table = render_table();
    if std::env::var_os("FTPS_WRITE_COMPAT_TABLE").is_some() {
        fs::write(TABLE_PATH, &table).expect("write docs/compatibility.md");
    }
    let committed = fs::read_to_string(TABLE_PATH).unwrap_or_default();
    assert!(
        committed == table,
        "docs/compatibility.md is not the table these tests prove; regenerate it with \
         FTPS_WRITE_COMPAT_TABLE=1 cargo test -p ftpsd --test compat compatibility_table"
    );
}

// ---- Shared steps ------------------------------------------------------------------------

/// A local tree to upload and an empty directory to download into.
fn local_dirs(server_dir: &Path) -> (PathBuf, PathBuf) {
    let local = server_dir.join("local");
    let down = server_dir.join("down");
    fs::create_dir_all(&down).expect("download dir");
    make_tree(&local);
    (local, down)
}

fn assert_gone(files: &UserFiles, name: &str, what: &str) {
    assert!(!files.exists(name), "{what}: {name} still exists");
}

/// Asserts that `dir/renamed` is a file and `dir/old` is gone.
fn assert_renamed(files: &UserFiles, dir: &str, old: &str, renamed: &str) {
    let (old, renamed) = (format!("{dir}/{old}"), format!("{dir}/{renamed}"));
    assert!(
        !files.is_dir(&renamed) && files.try_read(&renamed).is_some() && !files.exists(&old),
        "after the rename: {renamed} should be a file and {old} gone"
    );
}

// ---- curl --------------------------------------------------------------------------------

struct Curl {
    tls: &'static str,
    epsv: bool,
    implicit: bool,
}

fn curl_run(args: &[String]) -> Run {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--show-error", "--max-time", "60"])
        .args(args);
    run_client(&mut cmd, TIMEOUT)
}

fn curl(case: Curl) {
    let server = ftpsd().start();
    let (local, down) = local_dirs(server.dir.path());
    let base = if case.implicit {
        format!("ftps://{}", server.implicit)
    } else {
        format!("ftp://{}", server.explicit)
    };
    // -k: the test certificate is self-signed.
    let mut common = vec![
        "-k".to_string(),
        "-u".into(),
        format!("ftps:{}", server.password),
    ];
    if !case.implicit {
        common.push("--ssl-reqd".into());
    }
    match case.tls {
        "1.2" => common.extend(["--tlsv1.2".into(), "--tls-max".into(), "1.2".into()]),
        _ => common.push("--tlsv1.3".into()),
    }
    if !case.epsv {
        common.push("--disable-epsv".into());
    }
    let with = |extra: &[&str]| -> Vec<String> {
        let mut args = common.clone();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    for (rel, _) in TREE {
        let file = local.join(rel).display().to_string();
        let url = format!("{base}/tree/{}", url_path(rel));
        curl_run(&with(&["--ftp-create-dirs", "-T", &file, &url])).assert_ok("curl upload");
    }
    let files = server.files();
    assert_same_user_tree(&local, &files, "tree", "curl upload");
    let listing = curl_run(&with(&[&format!("{base}/tree/sub/")]));
    listing.assert_ok("curl LIST");
    assert!(
        listing
            .stdout
            .lines()
            .any(|l| l.ends_with(" mib-plus-one.bin") && l.contains(" 1048577 ")),
        "LIST output:\n{}",
        listing.stdout
    );
    for (rel, _) in TREE {
        let out = down.join(rel).display().to_string();
        let url = format!("{base}/tree/{}", url_path(rel));
        curl_run(&with(&["--create-dirs", "-o", &out, &url])).assert_ok("curl download");
    }
    assert_same_tree(&local, &down, "curl download");
    // TYPE A (`-B`): `--crlf` sends the LF file with CRLF, stored with LF. ftpsd sends CRLF
    // in TYPE A (the command tests read the raw bytes); curl turns it back into LF itself.
    let notes = local.join("sub/deeper/notes.txt").display().to_string();
    let ascii_url = format!("{base}/ascii.txt");
    curl_run(&with(&["-B", "--crlf", "-T", &notes, &ascii_url])).assert_ok("curl TYPE A upload");
    assert_eq!(
        files.read("ascii.txt"),
        matrix::NOTES,
        "TYPE A upload on disk"
    );
    let text = curl_run(&with(&["-B", &ascii_url]));
    text.assert_ok("curl TYPE A download");
    assert_eq!(text.stdout.as_bytes(), matrix::NOTES, "TYPE A download");
    let binary = curl_run(&with(&[&ascii_url]));
    binary.assert_ok("curl TYPE I download");
    assert_eq!(
        binary.stdout.as_bytes(),
        matrix::NOTES,
        "TYPE I download of the TYPE A upload"
    );
    let rename = with(&[
        "-Q",
        "RNFR tree/one.bin",
        "-Q",
        "RNTO tree/renamed.bin",
        &format!("{base}/"),
    ]);
    curl_run(&rename).assert_ok("curl rename");
    assert_renamed(&files, "tree", "one.bin", "renamed.bin");
    let mut delete = Vec::new();
    for (rel, _) in TREE {
        let rel = if rel == "one.bin" { "renamed.bin" } else { rel };
        delete.extend(["-Q".to_string(), format!("DELE tree/{rel}")]);
    }
    for dir in ["tree/sub/deeper", "tree/sub", "tree"] {
        delete.extend(["-Q".to_string(), format!("RMD {dir}")]);
    }
    let mut args = common.clone();
    args.extend(delete);
    args.push(format!("{base}/"));
    curl_run(&args).assert_ok("curl delete");
    assert_gone(&files, "tree", "curl delete");
}

/// Three uploads in one curl command over `tls_max`.
fn several_uploads_run(server: &Server, tls_max: &str) -> Run {
    let dir = server.dir.path().join(format!("several-{tls_max}"));
    fs::create_dir_all(&dir).expect("local dir");
    let mut args = vec![
        "-k".to_string(),
        "--ssl-reqd".into(),
        "-u".into(),
        format!("ftps:{}", server.password),
        "--tls-max".into(),
        tls_max.into(),
    ];
    for i in 0..3u8 {
        let path = dir.join(format!("f{i}"));
        fs::write(&path, vec![i; 1000]).expect("local file");
        args.extend([
            "-T".into(),
            path.display().to_string(),
            format!("ftp://{}/f{i}", server.explicit),
        ]);
    }
    curl_run(&args)
}

fn curl_several_uploads(tls_max: &str) {
    let server = ftpsd().start();
    several_uploads_run(&server, tls_max).assert_ok("three uploads in one curl command");
    for i in 0..3u8 {
        assert_eq!(server.files().read(&format!("f{i}")), vec![i; 1000]);
    }
}

/// Active mode with curl 7.87/7.88: curl accepts the data connection and then waits,
/// without a TLS ClientHello, until ftpsd gives up with 425.
fn curl_active_7_88() {
    let version = Command::new("curl")
        .arg("--version")
        .output()
        .expect("curl --version");
    let version = String::from_utf8_lossy(&version.stdout).into_owned();
    assert!(
        version.starts_with("curl 7.87.") || version.starts_with("curl 7.88."),
        "this row documents curl 7.87/7.88; with {} check active mode again and update \
         the scenario and docs/compatibility.md",
        version.lines().next().unwrap_or("")
    );
    let server = ftpsd().start_with_config("[timeouts]\ntls_handshake = 2\n");
    server.put("f", b"active");
    let run = curl_run(&[
        "-k".into(),
        "--ssl-reqd".into(),
        "-u".into(),
        format!("ftps:{}", server.password),
        "-P".into(),
        "127.0.0.1".into(),
        "-v".into(),
        format!("ftp://{}/f", server.explicit),
    ]);
    assert!(!run.status.success(), "curl active mode worked:\n{run}");
    // curl accepted the connection and then sent nothing: ftpsd's handshake timed out.
    assert!(
        run.stderr.contains("Connection accepted from server"),
        "expected curl to accept the data connection:\n{run}"
    );
    let log = server.log_text();
    assert!(
        log.contains("425 TLS handshake on the data connection timed out"),
        "expected ftpsd to time out waiting for curl's TLS handshake:\n{log}"
    );
}

// ---- lftp --------------------------------------------------------------------------------

struct Lftp {
    implicit: bool,
    /// Extra `set` lines.
    settings: &'static str,
    parallel: u32,
}

fn lftp_run(server: &Server, case: &Lftp, body: &str) -> Run {
    let url = if case.implicit {
        format!("ftps://{}", server.implicit)
    } else {
        format!("ftp://{}", server.explicit)
    };
    let script = format!(
        "set cmd:fail-exit yes\nset net:max-retries 1\nset net:timeout 60\n\
         set net:reconnect-interval-base 1\nset ftp:ssl-force true\n\
         set ftp:ssl-protect-data true\nset ftp:ssl-protect-list true\n\
         set ssl:verify-certificate yes\nset ssl:check-hostname no\nset ssl:ca-file \"{}\"\n\
         {}\nopen --env-password -u ftps {url}\n{body}\nbye\n",
        server.state_dir.join("cert.pem").display(),
        case.settings,
    );
    let path = server
        .dir
        .path()
        .join(format!("script-{:x}.lftp", rand::random::<u64>()));
    fs::write(&path, script).expect("write lftp script");
    let mut cmd = Command::new("lftp");
    cmd.arg("-f")
        .arg(&path)
        .env("LFTP_PASSWORD", &server.password)
        // A clean HOME keeps ~/.lftprc out.
        .env("HOME", server.dir.path());
    run_client(&mut cmd, TIMEOUT)
}

fn lftp(case: Lftp) {
    let server = ftpsd().start();
    let (local, down) = local_dirs(server.dir.path());
    let files = server.files();
    let p = case.parallel;
    let up = format!("mirror -R --parallel={p} \"{}\" /tree", local.display());
    lftp_run(&server, &case, &up).assert_ok("lftp mirror -R");
    assert_same_user_tree(&local, &files, "tree", "lftp mirror -R");
    let list = lftp_run(&server, &case, "cls -l /tree/sub");
    list.assert_ok("lftp cls");
    assert!(list.stdout.contains("mib-plus-one.bin"), "{list}");
    let get = format!("mirror --parallel={p} /tree \"{}\"", down.display());
    lftp_run(&server, &case, &get).assert_ok("lftp mirror");
    assert_same_tree(&local, &down, "lftp mirror");
    lftp_run(&server, &case, "mv /tree/one.bin /tree/renamed.bin").assert_ok("lftp mv");
    assert_renamed(&files, "tree", "one.bin", "renamed.bin");
    lftp_run(&server, &case, "rm -r /tree").assert_ok("lftp rm -r");
    assert_gone(&files, "tree", "lftp rm -r");
}

// ---- rclone ------------------------------------------------------------------------------

struct Rclone {
    implicit: bool,
    concurrency: Option<u32>,
    optional_reuse: bool,
}

fn rclone(case: Rclone) {
    let server = ftpsd().start();
    let (local, down) = local_dirs(server.dir.path());
    let (user, password, root) = if case.optional_reuse {
        let password = "rclone-password-1";
        let root = server.add_user("rclone", password, &["--data-session-reuse", "optional"]);
        ("rclone", password.to_string(), root)
    } else {
        ("ftps", server.password.clone(), server.files())
    };
    let obscured = Command::new("rclone")
        .args(["obscure", &password])
        .output()
        .expect("rclone obscure");
    let obscured = String::from_utf8_lossy(&obscured.stdout).trim().to_string();
    let addr = if case.implicit {
        server.implicit
    } else {
        server.explicit
    };
    let config = server.dir.path().join("rclone.conf");
    fs::write(&config, "").expect("empty rclone config");
    let run = |args: &[&str]| -> Run {
        let mut cmd = Command::new("rclone");
        cmd.args(args)
            .arg("--config")
            .arg(&config)
            .args([
                "--ftp-host",
                "127.0.0.1",
                "--ftp-port",
                &addr.port().to_string(),
            ])
            .args(["--ftp-user", user, "--ftp-pass", &obscured])
            .args(["--ftp-no-check-certificate", "--retries", "1"])
            .args(["--low-level-retries", "1", "--contimeout", "30s"]);
        cmd.arg(if case.implicit {
            "--ftp-tls"
        } else {
            "--ftp-explicit-tls"
        });
        if let Some(n) = case.concurrency {
            cmd.args(["--ftp-concurrency", &n.to_string()]);
        }
        run_client(&mut cmd, TIMEOUT)
    };
    let local_s = local.display().to_string();
    run(&["copy", &local_s, ":ftp:tree"]).assert_ok("rclone copy up");
    assert_same_user_tree(&local, &root, "tree", "rclone copy up");
    let json = run(&["lsjson", "-R", ":ftp:tree"]);
    json.assert_ok("rclone lsjson");
    assert!(
        json.stdout.contains("\"Path\":\"sub/mib-plus-one.bin\"")
            && json.stdout.contains("\"Size\":1048577"),
        "{json}"
    );
    run(&["copy", ":ftp:tree", &down.display().to_string()]).assert_ok("rclone copy down");
    assert_same_tree(&local, &down, "rclone copy down");
    fs::remove_file(local.join("one.bin")).expect("remove local file");
    fs::write(local.join("sub/added.txt"), b"added by sync").expect("add local file");
    run(&["sync", &local_s, ":ftp:tree"]).assert_ok("rclone sync");
    assert_same_user_tree(&local, &root, "tree", "rclone sync");
    run(&["moveto", ":ftp:tree/sub/added.txt", ":ftp:tree/renamed.txt"]).assert_ok("rclone moveto");
    assert_renamed(&root, "tree", "sub/added.txt", "renamed.txt");
    run(&["purge", ":ftp:tree"]).assert_ok("rclone purge");
    assert_gone(&root, "tree", "rclone purge");
}

// ---- Python ftplib -----------------------------------------------------------------------

struct Ftplib {
    reuse: bool,
    active: bool,
    ipv6: bool,
}

const FTPLIB_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/compat_ftplib.py");

fn ftplib(case: Ftplib) {
    // IPv6 needs a server listening on [::1]; the others use the standard harness.
    let (_server, _dual, dir, state, data, addr, user, password);
    if case.ipv6 {
        let dual = DualStack::start();
        (dir, state, data, addr) = (
            dual.server.dir.path().to_path_buf(),
            dual.state.clone(),
            dual.files(),
            dual.v6,
        );
        (user, password) = ("ftps".to_string(), dual.password.clone());
        (_server, _dual) = (None, Some(dual));
    } else {
        let server = ftpsd().start();
        (dir, state, addr) = (
            server.dir.path().to_path_buf(),
            server.state_dir.clone(),
            server.explicit,
        );
        if case.reuse {
            (user, password, data) = ("ftps".into(), server.password.clone(), server.files());
        } else {
            let root = server.add_user(
                "stock",
                "stock-password-1",
                &["--data-session-reuse", "optional"],
            );
            (user, password, data) = ("stock".into(), "stock-password-1".into(), root);
        }
        (_server, _dual) = (Some(server), None);
    }
    let (local, down) = local_dirs(&dir);
    let run = |phase: &str| -> Run {
        let mut cmd = Command::new("python3");
        cmd.arg(FTPLIB_SCRIPT)
            .arg(if case.reuse { "reuse" } else { "stock" })
            .arg(if case.active { "active" } else { "passive" })
            .arg(&local)
            .arg(&down)
            .arg(phase)
            .env("FTP_HOST", addr.ip().to_string())
            .env("FTP_PORT", addr.port().to_string())
            .env("FTP_USER", &user)
            .env("FTP_PASSWORD", &password)
            .env("FTP_CAFILE", state.join("cert.pem"));
        run_client(&mut cmd, TIMEOUT)
    };
    run("upload").assert_ok("ftplib upload");
    assert_same_user_tree(&local, &data, "tree", "ftplib upload");
    // storlines (TYPE A, CRLF on the wire) of a file with LF endings: stored with LF.
    assert_eq!(
        data.read("ascii.txt"),
        matrix::NOTES,
        "TYPE A upload on disk"
    );
    run("download").assert_ok("ftplib download");
    assert_same_tree(&local, &down, "ftplib download");
    let binary = fs::read(dir.join("ascii-binary.txt")).expect("TYPE I download");
    assert_eq!(binary, matrix::NOTES, "TYPE A upload fetched in TYPE I");
    run("cleanup").assert_ok("ftplib rename and delete");
    assert_gone(&data, "tree", "ftplib delete");
}

// ---- suppaftp ----------------------------------------------------------------------------

use suppaftp::types::FileType;
use suppaftp::{Mode, RustlsConnector, RustlsFtpStream};

fn suppaftp_connect(server: &Server, tls: Tls, user: &str, password: &str) -> RustlsFtpStream {
    let config: Arc<rustls::ClientConfig> = client_config(&server.fingerprint, tls);
    let plain = RustlsFtpStream::connect(server.explicit).expect("connect");
    let mut ftp = plain
        .into_secure(RustlsConnector::from(config), "localhost")
        .expect("AUTH TLS");
    ftp.login(user, password).expect("login");
    ftp.transfer_type(FileType::Binary).expect("TYPE I");
    // PASV with TLS 1.2, EPSV with TLS 1.3: both data modes get a row.
    if tls == Tls::V13 {
        ftp.set_mode(Mode::ExtendedPassive);
    }
    ftp
}

fn suppaftp(tls: Tls, optional_reuse: bool) {
    let server = ftpsd().start();
    let (local, down) = local_dirs(server.dir.path());
    let (user, password, root) = if optional_reuse {
        let root = server.add_user(
            "suppa",
            "suppa-password-1",
            &["--data-session-reuse", "optional"],
        );
        ("suppa", "suppa-password-1".to_string(), root)
    } else {
        ("ftps", server.password.clone(), server.files())
    };
    let mut ftp = suppaftp_connect(&server, tls, user, &password);
    for dir in ["tree", "tree/sub", "tree/sub/deeper"] {
        ftp.mkdir(dir).expect("MKD");
    }
    for (rel, _) in TREE {
        let mut file = fs::File::open(local.join(rel)).expect("local file");
        ftp.put_file(format!("tree/{rel}"), &mut file)
            .unwrap_or_else(|e| panic!("STOR {rel}: {e}"));
    }
    assert_same_user_tree(&local, &root, "tree", "suppaftp upload");
    let listing = ftp.list(Some("tree/sub")).expect("LIST");
    assert!(
        listing.iter().any(|l| l.ends_with(" mib-plus-one.bin")),
        "{listing:?}"
    );
    let names = ftp.nlst(Some("tree")).expect("NLST");
    assert_eq!(names.len(), 4, "{names:?}");
    for (rel, _) in TREE {
        let data = ftp
            .retr_as_buffer(&format!("tree/{rel}"))
            .unwrap_or_else(|e| panic!("RETR {rel}: {e}"))
            .into_inner();
        let out = down.join(rel);
        fs::create_dir_all(out.parent().expect("parent")).expect("download dir");
        fs::write(out, data).expect("write download");
    }
    assert_same_tree(&local, &down, "suppaftp download");
    assert_eq!(
        ftp.size("tree/sub/mib-plus-one.bin").expect("SIZE"),
        1_048_577
    );
    ftp.rename("tree/one.bin", "tree/renamed.bin")
        .expect("rename");
    assert_renamed(&root, "tree", "one.bin", "renamed.bin");
    for (rel, _) in TREE {
        let rel = if rel == "one.bin" { "renamed.bin" } else { rel };
        ftp.rm(format!("tree/{rel}")).expect("DELE");
    }
    for dir in ["tree/sub/deeper", "tree/sub", "tree"] {
        ftp.rmdir(dir).expect("RMD");
    }
    assert_gone(&root, "tree", "suppaftp delete");
    ftp.quit().expect("QUIT");
}

/// TLS 1.3, session reuse required: 50 uploads in a row, each resuming the ticket that came
/// with its `229` reply (before, the ninth was refused with 522).
fn suppaftp_many_uploads() {
    let server = ftpsd().start();
    let mut ftp = suppaftp_connect(&server, Tls::V13, "ftps", &server.password);
    for i in 1..=50u32 {
        ftp.put_file(format!("up{i}"), &mut &b"data"[..])
            .unwrap_or_else(|e| panic!("upload {i}: {e}\n{}", server.log_text()));
    }
    for i in 1..=50u32 {
        assert_eq!(server.files().read(&format!("up{i}")), b"data");
    }
    assert!(!server.log_all().contains("did not resume"));
    ftp.quit().expect("QUIT");
}
