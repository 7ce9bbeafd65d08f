//! Users whose files are in an S3 bucket: Garage on loopback (a real S3 server), ftpsd with
//! `[storage.s3.garage]`, and real clients (curl, lftp, Python ftplib, rclone) and the raw-line
//! client against it. What each command does on S3 is docs/storage.md's table; these tests
//! hold it to that, and check the bucket itself (straight from Garage) for what must never
//! be there: partial objects and unfinished multipart uploads.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ftps_testkit::garage::Garage;
use support::client::Control;
use support::{content, ftpsd, run_client, Server};

/// Five MiB parts, S3's smallest, so that a few MiB make a multipart upload.
const PART: usize = 5 * 1024 * 1024;

/// Garage, and ftpsd whose default storage is its bucket: the user `ftps` (root `data`)
/// has the objects under `data/`.
struct S3 {
    garage: Garage,
    server: Server,
}

fn start() -> S3 {
    start_with_store_option("")
}

/// [`start`] with `option` (TOML lines) in the store's table.
fn start_with_store_option(option: &str) -> S3 {
    let garage = Garage::start();
    let table = garage.store_table(
        "garage",
        Path::new("s3-credentials"),
        &format!("part_size = {PART}\n{option}"),
    );
    let config = format!("[storage]\ndefault = \"garage\"\n\n{table}");
    let server = ftpsd().start_with_config_and(&config, |dir| {
        garage.write_credentials_file(&dir.join("s3-credentials"));
    });
    S3 { garage, server }
}

impl S3 {
    async fn login(&self) -> Control {
        Control::login_default(&self.server).await
    }

    /// The keys under the user's prefix, from Garage.
    fn keys(&self) -> Vec<String> {
        self.garage.object_keys("data/")
    }

    fn assert_no_unfinished_uploads(&self, what: &str) {
        let left = self.garage.unfinished_uploads();
        assert!(
            left.is_empty(),
            "{what}: unfinished multipart uploads {left:?}"
        );
    }
}

#[tokio::test]
async fn files_go_in_and_out_as_objects_under_the_users_prefix() {
    let s3 = start();
    let mut c = s3.login().await;
    let big = content(1, 2 * PART + 12345);
    for (name, data) in [
        ("empty.bin", Vec::new()),
        ("small.txt", b"hello\n".to_vec()),
        ("big.bin", big.clone()),
    ] {
        c.stor(name, &data).await;
        assert_eq!(c.retr(name).await, data, "RETR {name}");
        let size = c.expect(&format!("SIZE {name}"), 213).await;
        assert_eq!(size.text(), data.len().to_string(), "SIZE {name}");
    }
    assert_eq!(
        s3.keys(),
        ["data/big.bin", "data/empty.bin", "data/small.txt"],
        "objects in the bucket"
    );
    c.expect("MDTM big.bin", 213).await;
    let mlst = c.expect("MLST big.bin", 250).await;
    assert!(
        mlst.to_string().contains(&format!("size={};", big.len())),
        "{mlst}"
    );
    // REST + RETR is a ranged read.
    c.expect(&format!("REST {}", PART + 7), 350).await;
    assert_eq!(c.retr("big.bin").await, &big[PART + 7..]);
    c.expect(&format!("REST {}", big.len() + 1), 350).await;
    c.expect("RETR big.bin", 554).await;
    // HASH streams the object.
    let hash = c.expect("HASH small.txt", 213).await;
    assert!(
        hash.text()
            .contains("5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"),
        "{hash}"
    );
    c.expect("DELE small.txt", 250).await;
    c.expect("DELE small.txt", 550).await;
    c.expect("SIZE small.txt", 550).await;
    assert_eq!(s3.keys(), ["data/big.bin", "data/empty.bin"]);
    // STOU: a new object under a new name.
    let t = c.transfer("STOU", Some(b"unique")).await;
    c.assert_transfer_ok(&t, "STOU");
    let name = t
        .first
        .text()
        .trim_start_matches("FILE: ")
        .trim()
        .to_string();
    assert_eq!(c.retr(&name).await, b"unique");
    c.expect(&format!("DELE {name}"), 250).await;
    s3.assert_no_unfinished_uploads("after uploads");
}

#[tokio::test]
async fn directories_are_prefixes_and_empty_ones_are_kept_by_a_marker() {
    let s3 = start();
    let mut c = s3.login().await;
    c.expect("MKD reports", 257).await;
    c.expect("MKD reports", 550).await;
    c.expect("MKD missing/child", 550).await;
    assert_eq!(
        s3.keys(),
        ["data/reports/"],
        "the marker of an empty directory"
    );
    let list = c.listing("LIST").await;
    assert!(
        list.lines()
            .any(|l| l.starts_with('d') && l.ends_with(" reports")),
        "{list}"
    );
    c.expect("CWD reports", 250).await;
    c.stor("q1.csv", b"a,b\n").await;
    c.expect("CWD /", 250).await;
    c.expect("CWD nowhere", 550).await;
    c.expect("CWD reports/q1.csv", 550).await;
    let mlsd = c.listing("MLSD reports").await;
    assert!(mlsd.contains("type=cdir"), "{mlsd}");
    assert!(mlsd.contains("type=pdir"), "{mlsd}");
    assert!(
        mlsd.contains("type=file;") && mlsd.contains(" q1.csv"),
        "{mlsd}"
    );
    assert!(
        !mlsd.contains(" reports/"),
        "the marker is not an entry:\n{mlsd}"
    );
    let nlst = c.listing("NLST reports").await;
    assert_eq!(nlst.trim_end(), "reports/q1.csv");
    c.expect("RMD reports", 550).await;
    c.expect("DELE reports", 550).await;
    c.expect("DELE reports/q1.csv", 250).await;
    // The marker keeps the directory after its last file goes.
    c.expect("CWD reports", 250).await;
    c.expect("CWD /", 250).await;
    c.expect("RMD reports", 250).await;
    c.expect("CWD reports", 550).await;
    assert!(s3.keys().is_empty(), "{:?}", s3.keys());
}

#[tokio::test]
async fn rename_copies_inside_the_store_files_and_directories() {
    let s3 = start();
    let mut c = s3.login().await;
    let big = content(2, PART + 99);
    c.stor("a.bin", &big).await;
    c.expect("RNFR a.bin", 350).await;
    c.expect("RNTO b.bin", 250).await;
    c.expect("SIZE a.bin", 550).await;
    assert_eq!(c.retr("b.bin").await, big);
    c.expect("MKD dir", 257).await;
    c.expect("MKD dir/sub", 257).await;
    c.stor("dir/one.txt", b"1").await;
    c.stor("dir/sub/two.txt", b"22").await;
    c.expect("RNFR dir", 350).await;
    c.expect("RNTO moved", 250).await;
    assert_eq!(
        s3.keys(),
        [
            "data/b.bin",
            "data/moved/",
            "data/moved/one.txt",
            "data/moved/sub/",
            "data/moved/sub/two.txt"
        ]
    );
    assert_eq!(c.retr("moved/sub/two.txt").await, b"22");
    // Never into itself, never onto the root, never from nothing.
    c.expect("RNFR moved", 350).await;
    c.expect("RNTO moved/sub/inner", 550).await;
    c.expect("RNFR nothing", 550).await;
    // A file onto an existing file replaces it.
    c.stor("c.txt", b"c").await;
    c.expect("RNFR c.txt", 350).await;
    c.expect("RNTO b.bin", 250).await;
    assert_eq!(c.retr("b.bin").await, b"c");
}

#[tokio::test]
async fn a_directory_over_the_rename_limit_is_refused_and_left_whole() {
    let s3 = start_with_store_option("max_rename_objects = 3");
    let mut c = s3.login().await;
    c.expect("MKD many", 257).await;
    for i in 0..4 {
        c.stor(&format!("many/{i}.txt"), b"x").await;
    }
    c.expect("RNFR many", 350).await;
    let refused = c.expect("RNTO other", 550).await;
    assert!(refused.text().contains("max_rename_objects"), "{refused}");
    assert_eq!(s3.keys().len(), 5, "{:?}", s3.keys());
}

#[tokio::test]
async fn appe_and_rest_stor_make_a_new_object_from_the_kept_part() {
    let s3 = start();
    let mut c = s3.login().await;
    // Small: the kept bytes are streamed into the new object.
    c.stor("log.txt", b"one\n").await;
    let t = c.transfer("APPE log.txt", Some(b"two\n")).await;
    c.assert_transfer_ok(&t, "APPE");
    assert_eq!(c.retr("log.txt").await, b"one\ntwo\n");
    // APPE creates a missing file.
    let t = c.transfer("APPE new.txt", Some(b"fresh")).await;
    c.assert_transfer_ok(&t, "APPE to a new file");
    assert_eq!(c.retr("new.txt").await, b"fresh");
    // Large: the kept part is copied inside the store (one 5 MiB part or more).
    let big = content(3, PART + 1000);
    c.stor("big.bin", &big[..PART + 10]).await;
    c.expect(&format!("REST {}", PART + 5), 350).await;
    let t = c.transfer("STOR big.bin", Some(&big[PART + 5..])).await;
    c.assert_transfer_ok(&t, "REST + STOR");
    assert_eq!(c.retr("big.bin").await, big);
    c.expect("REST 100000000", 350).await;
    let (reply, _) = c.begin("STOR big.bin").await;
    assert_eq!(reply.code.0, 554, "{reply}");
    s3.assert_no_unfinished_uploads("after APPE and REST+STOR");
}

#[tokio::test]
async fn what_objects_cannot_do_is_refused_with_502() {
    let s3 = start();
    let mut c = s3.login().await;
    // Not offered where it cannot work: rclone, for one, sets every upload's time with MFMT
    // when FEAT lists it, and fails the upload when MFMT is refused.
    let feat = c.expect("FEAT", 211).await.to_string();
    assert!(!feat.contains("MFMT"), "{feat}");
    assert!(feat.contains("MDTM"), "{feat}");
    c.stor("f.txt", b"f").await;
    let mfmt = c.expect("MFMT 20200101000000 f.txt", 502).await;
    assert!(mfmt.text().contains("storage"), "{mfmt}");
    c.expect("SITE CHMOD 600 f.txt", 502).await;
    // And nothing changed.
    assert_eq!(c.retr("f.txt").await, b"f");
}

#[tokio::test]
async fn an_upload_that_breaks_off_leaves_no_object_and_no_unfinished_upload() {
    let s3 = start();
    let mut c = s3.login().await;
    c.stor("keep.bin", b"the old content").await;
    for (i, name) in ["new.bin", "keep.bin"].into_iter().enumerate() {
        let (first, data) = c.begin(&format!("STOR {name}")).await;
        assert_eq!(first.code.0, 150, "{first}");
        let mut data = data.expect("data connection");
        // More than two parts, so that parts were already sent to the store.
        data.write(&content(i as u64, 2 * PART + 100))
            .await
            .unwrap();
        data.reset();
        let end = c.reply().await;
        assert_eq!(end.code.0, 426, "{end}");
    }
    c.expect("SIZE new.bin", 550).await;
    assert_eq!(c.retr("keep.bin").await, b"the old content");
    assert_eq!(s3.keys(), ["data/keep.bin"]);
    // The abort is sent as the upload fails; give it a moment.
    let mut left = s3.garage.unfinished_uploads();
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = s3.garage.unfinished_uploads();
    }
    assert!(left.is_empty(), "unfinished multipart uploads: {left:?}");
    // ABOR during an upload: the same.
    let (first, data) = c.begin("STOR aborted.bin").await;
    assert_eq!(first.code.0, 150);
    let mut data = data.expect("data connection");
    data.write(&content(9, PART + 100)).await.unwrap();
    c.send_line("ABOR").await;
    let replies = [c.reply().await, c.reply().await];
    assert_eq!(
        replies.iter().map(|r| r.code.0).collect::<Vec<_>>(),
        [426, 226]
    );
    drop(data);
    c.expect("SIZE aborted.bin", 550).await;
}

#[test]
fn curl_lftp_ftplib_and_rclone_work_with_an_s3_user() {
    let s3 = start();
    let server = &s3.server;
    let local = server.scratch("local");
    let files = support::standard_files(&local);
    let cert = server.state_dir.join("cert.pem");
    let url = format!("ftp://127.0.0.1:{}", server.explicit.port());
    // curl: uploads, a listing and downloads.
    for f in &files {
        let mut cmd = Command::new("curl");
        cmd.args(["--silent", "--show-error", "--ssl-reqd", "--cacert"])
            .arg(&cert)
            .arg("--user")
            .arg(format!("ftps:{}", server.password))
            .arg("--upload-file")
            .arg(&f.path)
            .arg(format!("{url}/{}", f.name));
        run_client(&mut cmd, Duration::from_secs(300)).assert_ok("curl upload");
    }
    let out = server.scratch("curl-out");
    for f in &files {
        let mut cmd = Command::new("curl");
        cmd.args(["--silent", "--show-error", "--ssl-reqd", "--cacert"])
            .arg(&cert)
            .arg("--user")
            .arg(format!("ftps:{}", server.password))
            .arg("--output")
            .arg(out.join(&f.name))
            .arg(format!("{url}/{}", f.name));
        run_client(&mut cmd, Duration::from_secs(300)).assert_ok("curl download");
        support::assert_same_content(f, &out.join(&f.name), "downloaded by curl from S3");
    }
    // lftp: a mirror of a tree up and back.
    let tree = server.scratch("tree");
    support::make_tree(&tree, 40, 200_000);
    let back = server.scratch("tree-back");
    let script = format!(
        "set cmd:fail-exit yes\nset net:max-retries 1\nset ftp:ssl-force true\n\
         set ftp:ssl-protect-data true\nset ssl:ca-file \"{}\"\n\
         open --env-password -u ftps {url}\nmirror -R {} /tree\nmirror /tree {}\nbye\n",
        cert.display(),
        tree.display(),
        back.display()
    );
    let script_path = server.dir.path().join("mirror.lftp");
    std::fs::write(&script_path, script).unwrap();
    let mut cmd = Command::new("lftp");
    cmd.arg("-f")
        .arg(&script_path)
        .env("LFTP_PASSWORD", &server.password);
    run_client(&mut cmd, Duration::from_secs(300)).assert_ok("lftp mirror");
    assert_eq!(
        support::tree_hashes(&tree),
        support::tree_hashes(&back),
        "the tree mirrored to S3 and back"
    );
    // Python ftplib with the README's subclass (data connections resume the TLS session).
    let py = format!(
        r#"
import io, ssl, sys
sys.path.insert(0, {py_dir:?})
from reusing_ftp_tls import ReusingFTP_TLS
ctx = ssl.create_default_context(cafile={cert:?})
ftp = ReusingFTP_TLS(context=ctx)
ftp.connect("127.0.0.1", {port})
ftp.login("ftps", {password:?})
ftp.prot_p()
ftp.storbinary("STOR py.bin", io.BytesIO(b"x" * 300000))
out = io.BytesIO()
ftp.retrbinary("RETR py.bin", out.write)
assert out.getvalue() == b"x" * 300000, len(out.getvalue())
assert "py.bin" in ftp.nlst()
ftp.quit()
print("ok")
"#,
        cert = cert.display().to_string(),
        py_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py"),
        port = server.explicit.port(),
        password = server.password,
    );
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(py);
    let run = run_client(&mut cmd, Duration::from_secs(120));
    run.assert_ok("ftplib");
    assert!(run.stdout.contains("ok"), "{}", run.stdout);
    // rclone's FTP backend.
    let rclone = |args: &[&str]| support::rclone(server, false, args);
    let rclone_back = server.scratch("rclone-back");
    let (local_s, back_s) = (
        local.display().to_string(),
        rclone_back.display().to_string(),
    );
    rclone(&["copy", &local_s, ":ftp:rclone"]).assert_ok("rclone copy up");
    rclone(&["copy", ":ftp:rclone", &back_s]).assert_ok("rclone copy down");
    for f in &files {
        support::assert_same_content(f, &rclone_back.join(&f.name), "rclone from S3");
    }
    rclone(&["delete", ":ftp:rclone"]).assert_ok("rclone delete");
    assert!(
        !s3.keys()
            .iter()
            .any(|k| k.starts_with("data/rclone/") && !k.ends_with('/')),
        "{:?}",
        s3.keys()
    );
    s3.assert_no_unfinished_uploads("after the clients");
}

/// A `[storage.s3.NAME]` table for a store on a loopback port that is not Garage, with
/// short timeouts and one retry, reading the dummy keys of [`DUMMY_KEYS`].
fn loopback_store(name: &str, port: u16) -> String {
    format!(
        "[storage.s3.{name}]\nendpoint = \"http://127.0.0.1:{port}\"\nbucket = \"b\"\n\
         credentials = {{ file = \"creds\" }}\nrequest_timeout_seconds = 2\nretries = 1\n"
    )
}

/// The credentials file the stores of [`loopback_store`] read (keys nobody checks).
const DUMMY_KEYS: &str = "[default]\naws_access_key_id = GK0\naws_secret_access_key = 00\n";

/// ftpsd (default user local) with `stores`, and a user on each (user, store) with the
/// password `store-user-password-1`.
fn server_with_store_users(stores: &str, users: &[(&str, &str)]) -> Server {
    let server = ftpsd().start_with_config_and(stores, |dir| {
        std::fs::write(dir.join("creds"), DUMMY_KEYS).unwrap();
    });
    let config = server.config.as_ref().unwrap().display().to_string();
    for (user, store) in users {
        let added = server.ftpsd(
            &[
                "user",
                "add",
                user,
                "--root",
                user,
                "--storage",
                store,
                "--config",
                &config,
                "--password-stdin",
            ],
            &format!("{STORE_USER_PASSWORD}\n"),
        );
        assert!(added.status.success(), "{added:?}");
    }
    server
}

const STORE_USER_PASSWORD: &str = "store-user-password-1";

#[tokio::test]
async fn an_unreachable_store_answers_451_and_other_users_keep_working() {
    // A store on a port nobody listens on, for one user; the default user stays local.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let server = server_with_store_users(&loopback_store("dead", port), &[("remote", "dead")]);

    // FEAT before login follows the default storage (local here), after login the user's.
    let mut anonymous = Control::connect_auth(&server).await;
    let feat = anonymous.expect("FEAT", 211).await.to_string();
    assert!(feat.contains("MFMT"), "{feat}");
    let mut remote = Control::login(&server, "remote", STORE_USER_PASSWORD).await;
    let feat = remote.expect("FEAT", 211).await.to_string();
    assert!(!feat.contains("MFMT"), "{feat}");
    let (reply, _) = remote.begin("LIST").await;
    assert_eq!(reply.code.0, 451, "{reply}");
    assert!(reply.text().contains("Storage unavailable"), "{reply}");
    remote.expect("SIZE x", 451).await;
    remote.expect("MKD x", 451).await;
    // The local user, meanwhile, is served as always.
    let mut local = Control::login_default(&server).await;
    local.stor("here.txt", b"fine").await;
    assert_eq!(local.retr("here.txt").await, b"fine");
    assert!(
        !server.log_all().contains(STORE_USER_PASSWORD),
        "a password in the log"
    );
}

#[tokio::test]
async fn kill_9_mid_upload_leaves_no_object_and_the_next_start_aborts_the_unfinished_uploads() {
    const UPLOADS: u64 = 6;
    let mut s3 = start();
    let mut tasks = Vec::new();
    for i in 0..UPLOADS {
        let mut c = s3.login().await;
        tasks.push(tokio::spawn(async move {
            let (first, data) = c.begin(&format!("STOR up{i}.bin")).await;
            assert_eq!(first.code.0, 150);
            let mut data = data.expect("data connection");
            // More than a part at once, then slowly: parts are in the store when it dies.
            let body = content(i, 3 * PART);
            let (head, tail) = body.split_at(PART + 1024);
            if data.write(head).await.is_err() {
                return;
            }
            for chunk in tail.chunks(64 * 1024) {
                if data.write(chunk).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = data.upload(b"").await;
            let _ = c.try_reply().await;
        }));
    }
    // Every upload has sent its first part.
    let mut unfinished = Vec::new();
    for _ in 0..100 {
        unfinished = s3.garage.unfinished_uploads();
        if unfinished.len() as u64 == UPLOADS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(unfinished.len() as u64, UPLOADS, "{unfinished:?}");
    s3.server.signal("KILL");
    for t in tasks {
        let _ = t.await;
    }
    assert!(
        s3.keys().is_empty(),
        "objects after the kill: {:?}",
        s3.keys()
    );
    assert_eq!(s3.garage.unfinished_uploads().len() as u64, UPLOADS);
    s3.server.restart();
    let mut left = s3.garage.unfinished_uploads();
    for _ in 0..100 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = s3.garage.unfinished_uploads();
    }
    assert!(
        left.is_empty(),
        "still unfinished after the restart: {left:?}"
    );
    assert!(
        s3.server
            .log_text()
            .contains("aborted the multipart uploads"),
        "{}",
        s3.server.log_text()
    );
    // And the server works.
    let mut c = s3.login().await;
    c.stor("after.bin", b"after").await;
    assert_eq!(s3.keys(), ["data/after.bin"]);
}

/// A fake store on loopback that answers every request with `status` (a 5xx), or, with
/// `None`, accepts connections and never answers: the failures an object store has.
fn misbehaving_store(status: Option<&'static str>) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                loop {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    let Some(status) = status else { continue };
                    let response = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\n\
                         Content-Length: 0\r\n\r\n"
                    );
                    if conn.write_all(response.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn a_store_answering_5xx_or_nothing_gets_451_in_bounded_time_and_others_go_on() {
    let (failing, silent) = (
        misbehaving_store(Some("503 Slow Down")),
        misbehaving_store(None),
    );
    let stores = format!(
        "{}{}\n[metrics]\nlisten = \"127.0.0.1:0\"\n",
        loopback_store("failing", failing),
        loopback_store("silent", silent)
    );
    let server = server_with_store_users(
        &stores,
        &[("on-failing", "failing"), ("on-silent", "silent")],
    );
    let started = std::time::Instant::now();
    let (mut failing, mut silent) = (
        Control::login(&server, "on-failing", STORE_USER_PASSWORD).await,
        Control::login(&server, "on-silent", STORE_USER_PASSWORD).await,
    );
    let mut local = Control::login_default(&server).await;
    // Both stores' users wait at once, and the local user is served meanwhile.
    let waiting = async {
        let a = failing.cmd("SIZE report.csv").await;
        let b = silent.cmd("MKD inbox").await;
        (a, b)
    };
    let serving = async {
        local.stor("meanwhile.txt", b"served").await;
        local.retr("meanwhile.txt").await
    };
    let ((a, b), served) = tokio::join!(waiting, serving);
    assert_eq!(served, b"served");
    for reply in [&a, &b] {
        assert_eq!(reply.code.0, 451, "{reply}");
        assert!(reply.text().contains("Storage unavailable"), "{reply}");
    }
    // Two tries of at most 2 s each per request, and a few requests per command.
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "{:?} to give up",
        started.elapsed()
    );
    // The log says what the store answered (the whole log: the retry layer's warnings can
    // be long).
    let log = server.log_all();
    assert!(log.contains("status: 503"), "{}", support::tail(&log, 4000));
    assert!(log.contains("timeout"), "{}", support::tail(&log, 4000));
    // And the metrics count both failures.
    let metrics = support::run_client(
        std::process::Command::new("curl")
            .args(["--silent", "--show-error", "--max-time", "30"])
            .arg(format!(
                "http://{}/metrics",
                server.metrics.expect("metrics")
            )),
        Duration::from_secs(60),
    );
    metrics.assert_ok("scrape the metrics");
    assert!(
        metrics
            .stdout
            .contains("ftpsd_storage_errors_total{kind=\"unavailable\"} 2\n"),
        "{}",
        metrics.stdout
    );
}
