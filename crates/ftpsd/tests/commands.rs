//! Every command of RFC 959, 2389, 2428, 2640 and 3659 and the common extensions (MFMT,
//! HASH, CLNT, SITE), each with its success and error replies, spoken line by line to a real
//! ftpsd. Transfers that must be interrupted (ABOR, STAT) open their own data connection.

mod support;

use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ftps_proto::Reply;
use ftps_testkit::storage::{Backend, UserFiles};
use rustls::pki_types::ServerName;
use sha2::{Digest, Sha256};
use support::client::{client_config, Control, Passive, Tls};
use support::{ftpsd, logged_in, Server, RUST_LOG};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

fn localhost() -> ServerName<'static> {
    ServerName::try_from("localhost").expect("server name")
}

/// Sends a transfer command on a fresh passive connection and returns the TLS data stream
/// once the 150 reply has come, for tests that act while the transfer runs.
async fn start_transfer(c: &mut Control, line: &str) -> (Reply, TlsStream<TcpStream>) {
    let tcp = c.open_passive().await;
    c.send_line(line).await;
    let tls = c.tls.clone();
    let handshake =
        tokio::spawn(async move { TlsConnector::from(tls).connect(localhost(), tcp).await });
    let first = c.reply().await;
    assert_eq!(first.code.0, 150, "{line}: {first}\n{}", c.transcript);
    let data = handshake
        .await
        .expect("handshake task")
        .expect("data TLS handshake");
    (first, data)
}

/// Puts `name`, too big to fit in socket buffers, so that a download of it is still running
/// when the test acts: sparse on a disk; on S3 a real object, smaller but still far larger
/// than the buffers.
fn put_big(server: &Server, name: &str) {
    match server.files() {
        UserFiles::Local(root) => {
            let big = fs::File::create(root.join(name)).unwrap();
            big.set_len(512 * 1024 * 1024).unwrap();
        }
        files @ UserFiles::S3 { .. } => files.put(name, &vec![0u8; 64 * 1024 * 1024]),
    }
}

/// The feature lines of a FEAT reply, trimmed.
fn features(feat: &Reply) -> Vec<String> {
    feat.lines[1..feat.lines.len() - 1]
        .iter()
        .map(|l| l.trim().to_string())
        .collect()
}

// ---- RFC 959 parameters and trivial commands ---------------------------------------------

#[tokio::test]
async fn type_stru_mode_allo_acct_smnt() {
    let (_server, mut c) = logged_in().await;
    for ok in ["TYPE A", "TYPE A N", "TYPE L 8", "TYPE I", "type i"] {
        c.expect(ok, 200).await;
    }
    c.expect("TYPE E", 504).await;
    c.expect("TYPE A T", 504).await;
    c.expect("TYPE L 7", 504).await;
    c.expect("TYPE X", 501).await;
    c.expect("TYPE", 501).await;
    c.expect("STRU F", 200).await;
    c.expect("STRU R", 504).await;
    c.expect("STRU Q", 501).await;
    c.expect("MODE S", 200).await;
    c.expect("MODE B", 504).await;
    c.expect("MODE Q", 501).await;
    c.expect("ALLO 1000", 202).await;
    c.expect("ALLO", 202).await;
    c.expect("ACCT billing", 202).await;
    c.expect("ACCT", 501).await;
    c.expect("SMNT /other", 502).await;
    c.expect("NOOP", 200).await;
    c.expect("NOOP x", 501).await;
    c.expect("SYST", 215).await;
}

#[tokio::test]
async fn x_variants_behave_like_their_commands() {
    let (server, mut c) = logged_in().await;
    let pwd = c.expect("XPWD", 257).await;
    assert!(pwd.text().starts_with("\"/\""), "{pwd}");
    c.expect("XMKD dir", 257).await;
    assert!(server.files().is_dir("dir"));
    c.expect("XMKD dir", 550).await;
    c.expect("XCWD dir", 250).await;
    let pwd = c.expect("XPWD", 257).await;
    assert!(pwd.text().starts_with("\"/dir\""), "{pwd}");
    c.expect("XCWD nope", 550).await;
    c.expect("XCUP", 250).await;
    c.expect("XCUP x", 501).await;
    c.expect("XRMD dir", 250).await;
    c.expect("XRMD dir", 550).await;
    c.expect("XCWD", 501).await;
}

#[tokio::test]
async fn rein_logs_out_and_keeps_tls() {
    let (server, mut c) = logged_in().await;
    server.put("f", b"content");
    c.expect("TYPE A", 200).await;
    c.expect("CWD /", 250).await;
    c.expect("REIN", 220).await;
    c.expect("PWD", 530).await;
    c.expect("REIN x", 501).await;
    assert!(c.is_tls(), "REIN must not end TLS");
    c.user_pass("ftps", &server.password).await;
    // TYPE went back to its default (I); PROT P is still in force.
    let size = c.expect("SIZE f", 213).await;
    assert_eq!(size.text(), "7");
    assert_eq!(c.retr("f").await, b"content");
}

#[tokio::test]
async fn stou_stores_under_a_unique_name() {
    let server = ftpsd().start();
    // TLS 1.2: its sessions can be resumed any number of times, so consecutive uploads do
    // not depend on the supply of single-use TLS 1.3 tickets (uploads bring none).
    let tls = client_config(&server.fingerprint, Tls::V12);
    let mut c = Control::login_with(&server, tls).await;
    c.expect("MKD in", 257).await;
    c.expect("CWD in", 250).await;
    let mut names = Vec::new();
    for content in [&b"first"[..], b"second"] {
        let t = c.transfer("STOU", Some(content)).await;
        c.assert_transfer_ok(&t, "STOU");
        let text = t.first.text();
        let name = text
            .strip_prefix("FILE: ")
            .unwrap_or_else(|| panic!("150 must be `FILE: name` (RFC 1123): {}", t.first));
        assert_eq!(server.files().read(&format!("in/{name}")), content);
        names.push(name.to_string());
    }
    assert_ne!(names[0], names[1], "STOU names must differ");
    c.expect("STOU name", 501).await;
    let listed = c.listing("NLST").await;
    assert!(
        names.iter().all(|n| listed.contains(n.as_str())),
        "{listed}"
    );
    let t = c.transfer("STOU", Some(b"")).await;
    c.assert_transfer_ok(&t, "empty STOU");
    let ro_files = server.add_user("reader", "reader-password-1", &["--read-only"]);
    let mut ro = Control::login(&server, "reader", "reader-password-1").await;
    ro.expect("STOU", 550).await;
    ro_files.assert_empty("STOU by a read-only user");
    let mut anonymous = Control::connect(server.explicit, &server.fingerprint).await;
    anonymous.auth_tls().await;
    anonymous.expect("STOU", 530).await;
}

#[tokio::test]
async fn stou_without_a_data_connection_leaves_no_file() {
    let (server, mut c) = logged_in().await;
    c.expect("STOU", 425).await;
    c.expect("NOOP", 200).await;
    // The reserved name is removed in the background.
    let files = server.files();
    let mut left = Vec::new();
    for _ in 0..50 {
        left = files.names("");
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        left.is_empty(),
        "a failed STOU left a file behind: {left:?}"
    );
}

// ---- TYPE A conversion and binary fidelity -------------------------------------------------

#[tokio::test]
async fn type_a_converts_line_endings_both_ways() {
    let (server, mut c) = logged_in().await;
    let on_disk = b"line one\nline two\n\nlast line without newline";
    let on_wire = b"line one\r\nline two\r\n\r\nlast line without newline";
    c.expect("TYPE A", 200).await;
    // A client in TYPE A sends CRLF; the file is stored with LF.
    c.stor("text.txt", on_wire).await;
    assert_eq!(server.files().read("text.txt"), on_disk);
    // RETR in TYPE A sends CRLF.
    assert_eq!(c.retr("text.txt").await, on_wire);
    c.expect("SIZE text.txt", 550).await;
    c.expect("REST 5", 504).await;
    // In TYPE I the stored bytes come back as they are: LF.
    c.expect("TYPE I", 200).await;
    assert_eq!(c.retr("text.txt").await, on_disk);
    c.expect("SIZE text.txt", 213).await;
}

#[tokio::test]
async fn binary_round_trip_is_byte_identical() {
    let (server, mut c) = logged_in().await;
    let mut data: Vec<u8> = (0..=255u8).cycle().take(3 * 1024 * 1024 + 7).collect();
    data.extend_from_slice(b"\r\n\n\r\r\n");
    c.expect("TYPE I", 200).await;
    c.stor("blob.bin", &data).await;
    assert_eq!(server.files().read("blob.bin"), data);
    assert_eq!(c.retr("blob.bin").await, data);
}

// ---- ABOR and STAT ---------------------------------------------------------------------

#[tokio::test]
async fn abor_idle_and_during_a_transfer() {
    let (server, mut c) = logged_in().await;
    c.expect("ABOR", 225).await;
    c.expect("ABOR now", 501).await;
    // A file too big to fit in socket buffers, so the transfer is still running.
    put_big(&server, "big");
    let (_, mut data) = start_transfer(&mut c, "RETR big").await;
    let mut buf = vec![0u8; 64 * 1024];
    data.read_exact(&mut buf).await.expect("some data");
    c.send_line("ABOR").await;
    c.expect_reply(426).await;
    c.expect_reply(226).await;
    // The session goes on.
    c.expect("NOOP", 200).await;
    server.put("small", b"small");
    assert_eq!(c.retr("small").await, b"small");
}

#[tokio::test]
async fn stat_during_a_transfer_and_stat_path() {
    let (server, mut c) = logged_in().await;
    let stat = c.expect("STAT", 211).await;
    assert!(stat.text().contains("Logged in as ftps"), "{stat}");
    put_big(&server, "big");
    let (_, mut data) = start_transfer(&mut c, "RETR big").await;
    let mut buf = vec![0u8; 256 * 1024];
    data.read_exact(&mut buf).await.expect("some data");
    let progress = c.expect("STAT", 213).await;
    assert!(
        progress.text().contains("bytes transferred"),
        "STAT during a transfer must report progress: {progress}"
    );
    c.send_line("ABOR").await;
    c.expect_reply(426).await;
    c.expect_reply(226).await;

    server.files().mkdir("d");
    server.put("d/one.txt", b"12345");
    server.put("d/.hidden", b"h");
    let listing = c.expect("STAT d", 213).await;
    let text = listing.text();
    assert!(text.contains("one.txt"), "{listing}");
    assert!(
        text.lines().any(|l| l.trim_start().starts_with("-rw")),
        "{listing}"
    );
    assert!(!text.contains(".hidden"), "{listing}");
    let all = c.expect("STAT -la d", 213).await;
    assert!(all.text().contains(".hidden"), "{all}");
    let file = c.expect("STAT d/one.txt", 213).await;
    assert!(file.text().contains(" 5 "), "{file}");
    c.expect("STAT nope", 550).await;
}

// ---- HELP, FEAT, OPTS, LANG, CLNT --------------------------------------------------------

#[tokio::test]
async fn help_lists_commands_and_gives_syntax() {
    let server = ftpsd().start();
    let mut c = Control::connect(server.explicit, &server.fingerprint).await;
    let help = c.expect("HELP", 214).await;
    for verb in [
        "STOU", "REIN", "MFMT", "HASH", "SITE", "XPWD", "EPSV", "MLSD",
    ] {
        assert!(help.text().contains(verb), "HELP lacks {verb}: {help}");
    }
    let host = c.expect("HELP HOST", 214).await;
    assert!(host.text().contains("RFC 7151"), "{host}");
    let retr = c.expect("HELP retr", 214).await;
    assert_eq!(retr.text(), "Syntax: RETR <path>");
    let site = c.expect("HELP SITE", 214).await;
    assert!(site.text().contains("CHMOD"), "{site}");
    c.expect("HELP XYZZY", 502).await;
    // Recognised but not implemented: not offered as help either.
    c.expect("HELP SMNT", 502).await;
}

const EXPECTED_FEATURES: &[&str] = &[
    "AUTH TLS",
    "PBSZ",
    "PROT",
    "UTF8",
    "EPSV",
    "EPRT",
    "MDTM",
    "MFMT",
    "SIZE",
    "REST STREAM",
    "TVFS",
    "HOST",
    "LANG EN*",
    "CLNT",
    "HASH SHA-1;SHA-256*;MD5;CRC32",
    "MLST type*;size*;modify*;perm*;unique*;unix.mode*;",
];

#[tokio::test]
async fn feat_lists_exactly_what_is_implemented() {
    let (_server, mut c) = logged_in().await;
    let feat = c.expect("FEAT", 211).await;
    let expected: Vec<&str> = if Backend::is_s3() {
        // docs/storage.md: MFMT is refused on S3, so not offered to an S3 user.
        EXPECTED_FEATURES
            .iter()
            .copied()
            .filter(|f| *f != "MFMT")
            .collect()
    } else {
        EXPECTED_FEATURES.to_vec()
    };
    assert_eq!(features(&feat), expected, "{feat}");
    c.expect("FEAT x", 501).await;
    // Every feature works: the MLST and HASH selections show in FEAT.
    let mlst = c.expect("OPTS MLST type;size;bogus;", 200).await;
    assert_eq!(mlst.text(), "MLST OPTS type;size;");
    c.expect("OPTS HASH MD5", 200).await;
    let feat = c.expect("FEAT", 211).await;
    let lines = features(&feat);
    assert!(lines.contains(&"MLST type*;size*;modify;perm;unique;unix.mode;".to_string()));
    assert!(lines.contains(&"HASH SHA-1;SHA-256;MD5*;CRC32".to_string()));
}

#[tokio::test]
async fn opts_lang_and_clnt() {
    let server = ftpsd().start();
    let mut c = Control::connect_auth(&server).await;
    // Allowed before login.
    c.expect("CLNT curl 7.88", 200).await;
    c.expect("CLNT", 501).await;
    c.expect("LANG EN", 200).await;
    c.expect("LANG en-US", 200).await;
    c.expect("LANG", 200).await;
    c.expect("LANG FR", 504).await;
    c.expect("OPTS UTF8 ON", 200).await;
    c.expect("OPTS", 501).await;
    c.expect("OPTS NOSUCH", 501).await;
    let hash = c.expect("OPTS HASH", 200).await;
    assert_eq!(hash.text(), "SHA-256");
    let hash = c.expect("OPTS HASH sha-1", 200).await;
    assert_eq!(hash.text(), "SHA-1");
    c.expect("OPTS HASH SHA-512", 501).await;
    let hash = c.expect("OPTS HASH", 200).await;
    assert_eq!(hash.text(), "SHA-1");
    // What needs a user waits for the login.
    c.expect("SITE HELP", 214).await;
    c.expect("SITE CHMOD 644 f", 530).await;
    c.expect("MFMT 20200102030405 f", 530).await;
    c.expect("HASH f", 530).await;
    c.expect("REIN", 220).await;
    c.user_pass("ftps", &server.password).await;
}

// ---- LIST and NLST ---------------------------------------------------------------------

#[tokio::test]
async fn list_and_nlst_take_ls_options_without_globbing() {
    let (server, mut c) = logged_in().await;
    server.put("visible.txt", b"12345");
    server.put(".hidden", b"x");
    server.files().mkdir("sub");
    let plain = c.listing("LIST").await;
    assert!(
        plain.contains("visible.txt") && !plain.contains(".hidden"),
        "{plain}"
    );
    for options in ["LIST -a", "LIST -la", "LIST -l -a"] {
        let all = c.listing(options).await;
        assert!(all.contains(".hidden"), "{options}: {all}");
    }
    let long = c.listing("LIST -l").await;
    // `ls -l`: type and permissions, links, owner, group, size, date, name.
    let line = long
        .lines()
        .find(|l| l.ends_with(" visible.txt"))
        .unwrap_or_else(|| panic!("{long}"));
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields.len(), 9, "{line}");
    assert!(fields[0].starts_with("-rw"), "{line}");
    assert_eq!(fields[4], "5", "{line}");
    let dir_line = long
        .lines()
        .find(|l| l.ends_with(" sub"))
        .unwrap_or_else(|| panic!("{long}"));
    assert!(dir_line.starts_with('d'), "{dir_line}");
    assert!(long.ends_with("\r\n"), "lines end with CRLF");
    // No globbing: `*` is a name like any other.
    let t = c.transfer("LIST *", None).await;
    assert_eq!(t.code(), 550, "{t:?}");
    let names = c.listing("NLST").await;
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(names, ["sub", "visible.txt"]);
    let names = c.listing("NLST -a").await;
    assert!(names.contains(".hidden"), "{names}");
    let t = c.transfer("NLST nope", None).await;
    assert_eq!(t.code(), 550, "{t:?}");
}

#[tokio::test]
async fn utf8_paths_everywhere() {
    let (server, mut c) = logged_in().await;
    c.expect("OPTS UTF8 ON", 200).await;
    c.expect("MKD répertoire", 257).await;
    c.expect("CWD répertoire", 250).await;
    c.stor("日本語 ファイル.txt", b"utf8").await;
    assert_eq!(
        server.files().read("répertoire/日本語 ファイル.txt"),
        b"utf8"
    );
    let names = c.listing("NLST").await;
    assert_eq!(names.trim_end(), "日本語 ファイル.txt");
    let mlsd = c.listing("MLSD").await;
    assert!(mlsd.contains("; 日本語 ファイル.txt\r\n"), "{mlsd}");
    assert_eq!(c.retr("日本語 ファイル.txt").await, b"utf8");
    let pwd = c.expect("PWD", 257).await;
    assert!(pwd.text().starts_with("\"/répertoire\""), "{pwd}");
    c.expect("RNFR 日本語 ファイル.txt", 350).await;
    c.expect("RNTO ελληνικά.txt", 250).await;
    c.expect("SIZE ελληνικά.txt", 213).await;
}

// ---- RFC 3659: MLST, MLSD, SIZE, MDTM, REST ---------------------------------------------

#[tokio::test]
async fn mlst_mlsd_facts_and_selection() {
    let (server, mut c) = logged_in().await;
    server.files().mkdir("d");
    server.put("d/f.txt", b"hello");
    let mlst = c.expect("MLST d/f.txt", 250).await;
    let entry = mlst.lines[1].clone();
    assert!(entry.starts_with(' '), "RFC 3659 §7.2: {mlst}");
    // The value of unix.mode: mlst_unix_mode_is_the_files_permission_bits.
    for fact in [
        "type=file;",
        "size=5;",
        "modify=",
        "perm=radfw;",
        "unique=",
        "unix.mode=",
    ] {
        assert!(entry.contains(fact), "MLST lacks {fact}: {entry}");
    }
    assert!(entry.ends_with(" /d/f.txt"), "{entry}");
    let mlsd = c.listing("MLSD d").await;
    assert!(mlsd.contains("type=cdir;"), "{mlsd}");
    assert!(mlsd.contains("type=pdir;"), "{mlsd}");
    assert!(mlsd.contains("type=file;size=5;"), "{mlsd}");
    let root = c.listing("MLSD").await;
    assert!(
        !root.contains("type=pdir;"),
        "the root has no parent: {root}"
    );
    c.expect("OPTS MLST size;", 200).await;
    let mlst = c.expect("MLST d/f.txt", 250).await;
    assert_eq!(mlst.lines[1], " size=5; /d/f.txt");
    c.expect("OPTS MLST", 200).await;
    let mlst = c.expect("MLST d/f.txt", 250).await;
    assert_eq!(mlst.lines[1], "  /d/f.txt", "no facts selected");
    let t = c.transfer("MLSD d/f.txt", None).await;
    assert_eq!(t.code(), 550, "{t:?}");
    c.expect("MLST nope", 550).await;
    let t = c.transfer("MLSD nope", None).await;
    assert_eq!(t.code(), 550, "{t:?}");
}

#[tokio::test]
async fn mlst_unix_mode_is_the_files_permission_bits() {
    let (server, mut c) = logged_in().await;
    server.files().mkdir("d");
    server.put("d/f.txt", b"hello");
    fs::set_permissions(
        server.data_dir().join("d/f.txt"),
        fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let mlst = c.expect("MLST d/f.txt", 250).await;
    assert!(mlst.lines[1].contains("unix.mode=0640;"), "{mlst}");
    c.expect("OPTS MLST size;unix.mode;", 200).await;
    let mlst = c.expect("MLST d/f.txt", 250).await;
    assert_eq!(mlst.lines[1], " size=5;unix.mode=0640; /d/f.txt");
}

/// Whole seconds since the epoch.
fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test]
async fn size_and_mdtm_are_exact() {
    let (server, mut c) = logged_in().await;
    let before = unix_seconds(SystemTime::now());
    server.put("f", &[7u8; 12345]);
    let after = unix_seconds(SystemTime::now());
    assert_eq!(c.expect("SIZE f", 213).await.text(), "12345");
    if Backend::is_s3() {
        // docs/storage.md: on S3, MDTM is the time the upload completed.
        let mdtm = c.expect("MDTM f", 213).await;
        let when = ftps_proto::listing::parse_mdtm_time(&mdtm.text())
            .unwrap_or_else(|| panic!("MDTM: {mdtm}"));
        let when = unix_seconds(when);
        assert!(
            (before..=after).contains(&when),
            "MDTM {mdtm} is not the upload's time ({before}..={after})"
        );
    } else {
        let when = UNIX_EPOCH + Duration::from_secs(1_234_567_890);
        fs::File::options()
            .write(true)
            .open(server.data_dir().join("f"))
            .unwrap()
            .set_modified(when)
            .unwrap();
        assert_eq!(c.expect("MDTM f", 213).await.text(), "20090213233130");
    }
    c.expect("MKD d", 257).await;
    c.expect("SIZE d", 550).await;
    c.expect("SIZE nope", 550).await;
    c.expect("MDTM nope", 550).await;
    c.expect("SIZE", 501).await;
    c.expect("TYPE A", 200).await;
    let ascii = c.expect("SIZE f", 550).await;
    assert!(ascii.text().contains("TYPE I"), "550 must say why: {ascii}");
}

#[tokio::test]
async fn rest_beyond_4_gib_on_a_sparse_5_gib_file() {
    const SIZE: u64 = 5 * 1024 * 1024 * 1024;
    const OFFSET: u64 = 4_294_967_300;
    let (server, mut c) = logged_in().await;
    let path = server.data_dir().join("huge.bin");
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = fs::File::create(&path).unwrap();
        f.set_len(SIZE).unwrap();
        f.seek(SeekFrom::Start(OFFSET)).unwrap();
        f.write_all(b"marker at 4294967300").unwrap();
        f.seek(SeekFrom::Start(SIZE - 16)).unwrap();
        f.write_all(b"the last 16 byte").unwrap();
    }
    assert_eq!(
        c.expect("SIZE huge.bin", 213).await.text(),
        SIZE.to_string()
    );
    // REST past 4 GiB: the first bytes are the marker; stop there with ABOR.
    c.expect(&format!("REST {OFFSET}"), 350).await;
    let (opening, mut data) = start_transfer(&mut c, "RETR huge.bin").await;
    assert!(
        opening.text().contains(&(SIZE - OFFSET).to_string()),
        "150 announces the remaining size: {opening}"
    );
    let mut head = [0u8; 20];
    data.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"marker at 4294967300");
    c.send_line("ABOR").await;
    c.expect_reply(426).await;
    c.expect_reply(226).await;
    drop(data);
    // REST near the end: the exact tail.
    c.expect(&format!("REST {}", SIZE - 100), 350).await;
    let tail = c.retr("huge.bin").await;
    assert_eq!(tail.len(), 100);
    assert_eq!(&tail[84..], b"the last 16 byte");
    assert!(tail[..84].iter().all(|&b| b == 0));
    // Offsets at and past the end.
    c.expect(&format!("REST {SIZE}"), 350).await;
    assert!(c.retr("huge.bin").await.is_empty());
    c.expect(&format!("REST {}", SIZE + 1), 350).await;
    let t = c.transfer("RETR huge.bin", None).await;
    assert_eq!(t.code(), 554, "{t:?}");
    c.expect("REST -1", 501).await;
    c.expect("REST x", 501).await;
}

// ---- Extensions: MFMT, HASH, SITE --------------------------------------------------------

#[tokio::test]
async fn mfmt_sets_the_modification_time() {
    let (server, mut c) = logged_in().await;
    server.put("f", b"x");
    c.expect("MKD d", 257).await;
    if Backend::is_s3() {
        // docs/storage.md: refused with 502 on S3, where an object's time is when it was
        // written; the time stays.
        let written = c.expect("MDTM f", 213).await.text();
        c.expect("MFMT 20200102030405 f", 502).await;
        assert_eq!(c.expect("MDTM f", 213).await.text(), written);
        c.expect("MFMT 20200102030405 d", 502).await;
        c.expect("MFMT 20200102030405 nope", 502).await;
    } else {
        let reply = c.expect("MFMT 20200102030405 f", 213).await;
        assert_eq!(reply.text(), "Modify=20200102030405; f");
        assert_eq!(c.expect("MDTM f", 213).await.text(), "20200102030405");
        let modified = fs::metadata(server.data_dir().join("f"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(unix_seconds(modified), 1_577_934_245);
        c.expect("MFMT 20200102030405 d", 213).await;
        c.expect("MFMT 20200102030405 nope", 550).await;
    }
    c.expect("MFMT 2020 f", 501).await;
    c.expect("MFMT 20201301000000 f", 501).await;
    c.expect("MFMT 20200102030405", 501).await;
    server.add_user("reader", "reader-password-1", &["--read-only"]);
    let mut ro = Control::login(&server, "reader", "reader-password-1").await;
    ro.expect("MFMT 20200102030405 anything", 550).await;
}

#[tokio::test]
async fn hash_every_algorithm() {
    let (server, mut c) = logged_in().await;
    server.put("abc.txt", b"abc");
    let data: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    server.put("big.bin", &data);
    let sha = c.expect("HASH big.bin", 213).await;
    let expected: String = Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        sha.text(),
        format!("SHA-256 0-{} {expected} big.bin", data.len())
    );
    for (algorithm, digest) in [
        ("SHA-1", "a9993e364706816aba3e25717850c26c9cd0d89d"),
        (
            "SHA-256",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ),
        ("MD5", "900150983cd24fb0d6963f7d28e17f72"),
        ("CRC32", "352441c2"),
    ] {
        c.expect(&format!("OPTS HASH {algorithm}"), 200).await;
        let reply = c.expect("HASH abc.txt", 213).await;
        assert_eq!(reply.text(), format!("{algorithm} 0-3 {digest} abc.txt"));
    }
    c.expect("HASH nope", 550).await;
    c.expect("MKD d", 257).await;
    c.expect("HASH d", 550).await;
    c.expect("HASH", 501).await;
    c.expect("HASH ../../etc/passwd", 550).await;
}

#[tokio::test]
async fn site_chmod_and_help() {
    let (server, mut c) = logged_in().await;
    server.put("f", b"x");
    let mode = |server: &Server| {
        fs::metadata(server.data_dir().join("f"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    // docs/storage.md: refused with 502 on S3, where objects have no permission bits.
    if Backend::is_s3() {
        c.expect("SITE CHMOD 600 f", 502).await;
        c.expect("site chmod 0644 f", 502).await;
    } else {
        c.expect("SITE CHMOD 600 f", 200).await;
        assert_eq!(mode(&server), 0o600);
        c.expect("site chmod 0644 f", 200).await;
        assert_eq!(mode(&server), 0o644);
    }
    // No setuid, setgid or sticky bits; nothing that is not octal.
    c.expect("SITE CHMOD 4755 f", 501).await;
    c.expect("SITE CHMOD u+x f", 501).await;
    c.expect("SITE CHMOD 644", 501).await;
    if Backend::is_s3() {
        c.expect("SITE CHMOD 644 nope", 502).await;
    } else {
        assert_eq!(mode(&server), 0o644);
        c.expect("SITE CHMOD 644 nope", 550).await;
    }
    let help = c.expect("SITE HELP", 214).await;
    assert!(help.text().contains("SITE CHMOD"), "{help}");
    // Nothing that copies or executes.
    for refused in ["SITE CPFR f", "SITE CPTO g", "SITE EXEC ls", "SITE UMASK 0"] {
        c.expect(refused, 504).await;
    }
    c.expect("SITE", 501).await;
    server.add_user("reader", "reader-password-1", &["--read-only"]);
    let mut ro = Control::login(&server, "reader", "reader-password-1").await;
    ro.expect("SITE CHMOD 777 anything", 550).await;
    ro.expect("SITE HELP", 214).await;
}

// ---- RFC 2428: EPSV, EPRT, IPv6, EPSV ALL --------------------------------------------------

/// A server listening on 127.0.0.1 and [::1]; returns it with the two explicit addresses.
fn dual_stack() -> (Server, SocketAddr, SocketAddr) {
    let server =
        ftpsd().start_with_listen_and("[\"127.0.0.1:0\", \"[::1]:0\"]", "", RUST_LOG, |_| {});
    let v4 = server
        .explicit_all
        .iter()
        .copied()
        .find(SocketAddr::is_ipv4);
    let v6 = server
        .explicit_all
        .iter()
        .copied()
        .find(SocketAddr::is_ipv6);
    let (v4, v6) = (v4.expect("an IPv4 listener"), v6.expect("an IPv6 listener"));
    (server, v4, v6)
}

/// Logs in as `ftps` on one of a dual-stack server's addresses.
async fn dual_login(server: &Server, addr: SocketAddr) -> Control {
    let mut c = Control::connect(addr, &server.fingerprint).await;
    c.auth_tls().await;
    c.user_pass("ftps", &server.password).await;
    c.protect().await;
    c
}

/// `EPRT` to a local listener, then `line`; the server connects to us and we act as the
/// TLS client on that connection. Returns the final reply and the data received.
async fn active_transfer(c: &mut Control, local: std::net::IpAddr, line: &str) -> (u16, Vec<u8>) {
    let listener = TcpListener::bind(SocketAddr::new(local, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let family = if local.is_ipv4() { 1 } else { 2 };
    c.expect(&format!("EPRT |{family}|{local}|{port}|"), 200)
        .await;
    c.send_line(line).await;
    let (tcp, _) = tokio::time::timeout(Duration::from_secs(30), listener.accept())
        .await
        .expect("the server connects")
        .unwrap();
    let first = c.reply().await;
    assert_eq!(first.code.0, 150, "{first}");
    let mut data = TlsConnector::from(c.tls.clone())
        .connect(localhost(), tcp)
        .await
        .expect("data TLS");
    let mut out = Vec::new();
    data.read_to_end(&mut out).await.expect("data");
    (c.reply().await.code.0, out)
}

#[tokio::test]
async fn epsv_and_eprt_over_ipv4_and_ipv6() {
    let (server, v4, v6) = dual_stack();
    server.put("f", b"over both families");
    for addr in [v4, v6] {
        let mut c = dual_login(&server, addr).await;
        c.passive = Passive::Epsv;
        assert_eq!(c.retr("f").await, b"over both families", "EPSV via {addr}");
        let (code, data) = active_transfer(&mut c, addr.ip(), "RETR f").await;
        assert_eq!(
            (code, &data[..]),
            (226, &b"over both families"[..]),
            "EPRT via {addr}"
        );
        let (mine, other) = if addr.is_ipv4() { (1, 2) } else { (2, 1) };
        c.expect(&format!("EPSV {mine}"), 229).await;
        let wrong = c.expect(&format!("EPSV {other}"), 522).await;
        assert!(wrong.text().contains(&format!("({mine})")), "{wrong}");
        c.expect("EPRT |3|1.2.3.4|5000|", 522).await;
        c.expect("EPRT |1|1.2.3|5000|", 501).await;
        // Another host (FTP bounce) or a privileged port is refused.
        c.expect("EPRT |1|192.0.2.1|5000|", 504).await;
        let own = addr.ip();
        c.expect(&format!("EPRT |{mine}|{own}|21|"), 504).await;
    }
    let mut v6 = dual_login(&server, v6).await;
    v6.expect("PASV", 425).await;
}

#[tokio::test]
async fn epsv_all_refuses_the_other_data_commands() {
    let (server, mut c) = logged_in().await;
    server.put("f", b"epsv only");
    c.expect("EPSV ALL", 200).await;
    c.expect("PASV", 503).await;
    c.expect("PORT 127,0,0,1,200,10", 503).await;
    c.expect("EPRT |1|127.0.0.1|51210|", 503).await;
    c.passive = Passive::Epsv;
    assert_eq!(c.retr("f").await, b"epsv only");
    c.expect("EPSV x", 501).await;
}

#[tokio::test]
async fn port_active_mode_over_ipv4() {
    let (server, mut c) = logged_in().await;
    server.put("f", b"active");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    c.expect(
        &format!("PORT 127,0,0,1,{},{}", port >> 8, port & 0xff),
        200,
    )
    .await;
    c.send_line("RETR f").await;
    let (tcp, _) = listener.accept().await.unwrap();
    c.expect_reply(150).await;
    let mut data = TlsConnector::from(c.tls.clone())
        .connect(localhost(), tcp)
        .await
        .unwrap();
    let mut out = Vec::new();
    data.read_to_end(&mut out).await.unwrap();
    assert_eq!(out, b"active");
    c.expect_reply(226).await;
    c.expect("PORT 10,0,0,1,200,10", 504).await;
}

/// With `require_for_data = false`, `PROT C` transfers run in clear: a binary download goes
/// out through `sendfile`, an ASCII one is converted, an upload arrives whole.
#[tokio::test]
async fn clear_data_transfers_when_the_administrator_allows_them() {
    let server = ftpsd().start_with_config("[tls]\nrequire_for_data = false\n");
    let big: Vec<u8> = (0..3 * 1024 * 1024 + 7)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    server.put("big.bin", &big);
    server.put("text.txt", b"one\ntwo\n");
    let mut c = Control::login_default(&server).await;
    c.expect("PROT C", 200).await;
    c.protected = false;
    assert_eq!(c.retr("big.bin").await, big);
    c.expect("REST 1048576", 350).await;
    assert_eq!(c.retr("big.bin").await, &big[1024 * 1024..]);
    c.stor("up.bin", &big).await;
    assert_eq!(server.files().read("up.bin"), big);
    c.expect("TYPE A", 200).await;
    assert_eq!(c.retr("text.txt").await, b"one\r\ntwo\r\n");
    c.stor("up.txt", b"a\r\nb\r\n").await;
    assert_eq!(server.files().read("up.txt"), b"a\nb\n");
}

/// An upload stopped by ABOR never becomes the file, even in clear, where the end of the
/// TCP stream is also how a complete upload ends; and nothing is written after the replies.
#[tokio::test]
async fn abor_during_an_upload_leaves_no_file() {
    let server = ftpsd().start_with_config("[tls]\nrequire_for_data = false\n");
    let mut c = Control::login_default(&server).await;
    for protected in [false, true] {
        c.expect(if protected { "PROT P" } else { "PROT C" }, 200)
            .await;
        c.protected = protected;
        server.put("kept.bin", b"earlier version");
        let (first, data) = c.begin("STOR kept.bin").await;
        assert_eq!(first.code.0, 150, "{first}\n{}", c.transcript);
        let mut data = data.expect("data connection");
        data.write(&vec![7u8; 300 * 1024])
            .await
            .expect("first part");
        c.send_line("ABOR").await;
        c.expect_reply(426).await;
        c.expect_reply(226).await;
        drop(data);
        let files = server.files();
        assert_eq!(
            files.read("kept.bin"),
            b"earlier version",
            "protected: {protected}"
        );
        assert_eq!(files.names(""), ["kept.bin"], "protected: {protected}");
        c.expect("NOOP", 200).await;
    }
}
