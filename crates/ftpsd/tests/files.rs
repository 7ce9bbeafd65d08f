//! File and directory commands in detail: names, listings, renames, restarts, symlinks
//! inside the root, pipelined transfers and IPv6.

mod support;

use std::fs;

use ftps_testkit::storage::Backend;
use support::client::{client_config, Control, Tls};
use support::{ftpsd, logged_in};

#[tokio::test]
async fn utf8_and_spaces_in_names() {
    let (server, mut c) = logged_in().await;
    for name in [
        "héllo wörld.txt",
        "  leading spaces",
        "日本語",
        "semi;colon",
        "a\"quote",
    ] {
        c.stor(name, name.as_bytes()).await;
        assert_eq!(
            server.files().try_read(name).as_deref(),
            Some(name.as_bytes()),
            "{name:?} stored under another name"
        );
        assert_eq!(c.retr(name).await, name.as_bytes(), "RETR {name:?}");
        let size = c.expect(&format!("SIZE {name}"), 213).await;
        assert_eq!(size.text(), name.len().to_string());
    }
    let nlst = c.listing("NLST").await;
    for name in [
        "héllo wörld.txt",
        "  leading spaces",
        "日本語",
        "semi;colon",
        "a\"quote",
    ] {
        assert!(
            nlst.lines().any(|l| l == name),
            "NLST lacks {name:?}:\n{nlst}"
        );
    }
    let mlsd = c.listing("MLSD").await;
    assert!(
        mlsd.lines().any(|l| l.ends_with("; héllo wörld.txt")),
        "{mlsd}"
    );
}

#[tokio::test]
async fn pwd_quotes_double_quotes() {
    let (_server, mut c) = logged_in().await;
    let mkd = c.expect("MKD say \"hi\"", 257).await;
    assert!(mkd.text().starts_with("\"/say \"\"hi\"\"\""), "{mkd}");
    c.expect("CWD say \"hi\"", 250).await;
    let pwd = c.expect("PWD", 257).await;
    assert!(pwd.text().starts_with("\"/say \"\"hi\"\"\""), "{pwd}");
}

#[tokio::test]
async fn non_utf8_path_is_a_syntax_error() {
    let (_server, mut c) = logged_in().await;
    c.send_raw(b"SIZE \xff\xfe\r\n").await;
    c.expect_reply(501).await;
    c.expect("NOOP", 200).await;
}

#[tokio::test]
async fn commands_are_case_insensitive() {
    let server = ftpsd().start();
    let mut c = Control::connect(server.explicit, &server.fingerprint).await;
    c.expect("auth tls", 234).await;
    c.start_tls().await.unwrap();
    c.expect("user ftps", 331).await;
    c.expect(&format!("pAsS {}", server.password), 230).await;
    c.expect("pwd", 257).await;
}

#[tokio::test]
async fn relative_paths_follow_the_working_directory() {
    let (server, mut c) = logged_in().await;
    let files = server.files();
    files.mkdir("a/b");
    files.put("a/b/f", b"deep");
    files.put("top", b"top");
    c.expect("CWD a", 250).await;
    c.expect("CWD b", 250).await;
    assert_eq!(c.retr("f").await, b"deep");
    assert_eq!(c.retr("/top").await, b"top");
    assert_eq!(c.retr("../../top").await, b"top");
    c.expect("CWD /a/b/", 250).await;
    let pwd = c.expect("PWD", 257).await;
    assert!(pwd.text().starts_with("\"/a/b\""), "{pwd}");
    let list = c.listing("LIST").await;
    assert!(list.lines().any(|l| l.ends_with(" f")), "{list}");
    let list = c.listing("LIST /").await;
    assert!(list.lines().any(|l| l.ends_with(" top")), "{list}");
    c.expect("SIZE f", 213).await;
    c.expect("CDUP", 250).await;
    c.expect("CDUP", 250).await;
    let pwd = c.expect("PWD", 257).await;
    assert!(pwd.text().starts_with("\"/\""), "{pwd}");
}

#[tokio::test]
async fn list_accepts_ls_options() {
    // Clients send `LIST -a` or `LIST -la`: options, not a file named "-la".
    let (server, mut c) = logged_in().await;
    server.put("visible", b"x");
    for cmd in ["LIST -a", "LIST -la", "LIST -l"] {
        let list = c.listing(cmd).await;
        assert!(
            list.lines().any(|l| l.ends_with(" visible")),
            "{cmd}: {list}"
        );
    }
}

#[tokio::test]
async fn empty_directory_listings() {
    let (_server, mut c) = logged_in().await;
    assert_eq!(c.listing("NLST").await, "");
    assert_eq!(c.listing("LIST").await, "");
    let mlsd = c.listing("MLSD").await;
    assert!(
        mlsd.lines()
            .all(|l| l.contains("type=cdir") || l.contains("type=pdir")),
        "{mlsd}"
    );
}

#[tokio::test]
async fn large_directory_listing() {
    let (server, mut c) = logged_in().await;
    let files = server.files();
    for i in 0..3000 {
        files.put(&format!("file-{i:05}"), b"");
    }
    let nlst = c.listing("NLST").await;
    assert_eq!(nlst.lines().count(), 3000);
    let mlsd = c.listing("MLSD").await;
    assert_eq!(
        mlsd.lines().filter(|l| l.contains("type=file")).count(),
        3000
    );
}

#[tokio::test]
async fn rename_across_directories_and_over_files() {
    let (server, mut c) = logged_in().await;
    let files = server.files();
    files.mkdir("d");
    files.put("a", b"A");
    files.put("b", b"B");
    c.expect("RNFR a", 350).await;
    c.expect("RNTO d/a2", 250).await;
    assert_eq!(files.read("d/a2"), b"A");
    assert!(!files.exists("a"), "the renamed file is still there");
    // RNFR then another command: the pending rename is forgotten.
    c.expect("RNFR b", 350).await;
    c.expect("NOOP", 200).await;
    c.expect("RNTO c", 503).await;
    // Renaming onto an existing file.
    c.expect("RNFR d/a2", 350).await;
    let reply = c.cmd("RNTO b").await;
    match reply.code.0 {
        250 => assert_eq!(files.read("b"), b"A"),
        550 | 553 => assert_eq!(files.read("b"), b"B"),
        _ => panic!("RNTO onto a file: {reply}"),
    }
    // A directory with its content.
    files.put("d/inner", b"i");
    c.expect("RNFR d", 350).await;
    c.expect("RNTO e", 250).await;
    assert_eq!(files.read("e/inner"), b"i");
}

#[tokio::test]
async fn stor_onto_a_directory_fails() {
    let (server, mut c) = logged_in().await;
    server.files().mkdir("d");
    let t = c.transfer("STOR d", Some(b"x")).await;
    assert_eq!(t.code(), 550, "{t:?}");
    assert!(server.files().is_dir("d"));
    if Backend::is_s3() {
        // A key `d` could sit beside the directory's keys `d/...`.
        assert_eq!(
            server.files().try_read("d"),
            None,
            "STOR d wrote an object d"
        );
    }
    c.expect("SIZE d", 550).await;
}

#[tokio::test]
async fn stor_into_a_missing_directory_fails() {
    let (server, mut c) = logged_in().await;
    let t = c.transfer("STOR nodir/f", Some(b"x")).await;
    assert_eq!(t.code(), 550, "{t:?}");
    assert!(!server.files().exists("nodir"));
}

#[tokio::test]
async fn stou_creates_a_new_file_or_is_not_implemented() {
    let (server, mut c) = logged_in().await;
    let files = server.files();
    files.put("f", b"keep");
    let t = c.transfer("STOU", Some(b"unique")).await;
    let names: Vec<String> = files.names("").into_iter().filter(|n| n != "f").collect();
    if t.code() == 502 {
        // Not implemented: then it must not be advertised either.
        assert!(names.is_empty(), "{names:?}");
        let feat = c.expect("FEAT", 211).await;
        assert!(!feat.text().contains("STOU"), "{feat:?}");
    } else {
        assert_eq!(t.code(), 226, "{t:?}\n{}", c.transcript);
        assert_eq!(names.len(), 1, "{names:?}");
        assert_eq!(files.read(&names[0]), b"unique");
        assert!(
            t.first.text().contains(&names[0]),
            "150 should name the file (RFC 1123): {}",
            t.first
        );
    }
    assert_eq!(files.read("f"), b"keep");
}

#[tokio::test]
async fn a_long_session_keeps_resuming() {
    // Tickets and cached sessions must last for many transfers (ProFTPD once lost them).
    for tls in [Tls::V12, Tls::V13] {
        let server = ftpsd().start();
        server.put("f", b"again");
        let mut c = Control::login_with(&server, client_config(&server.fingerprint, tls)).await;
        for i in 0..60 {
            let t = c.transfer("RETR f", None).await;
            c.assert_transfer_ok(&t, &format!("{tls:?} download {i}"));
        }
        if tls == Tls::V12 {
            // Session IDs can be resumed any number of times: uploads too.
            for i in 0..10 {
                c.stor(&format!("u{i}"), b"u").await;
            }
        }
    }
}

#[tokio::test]
async fn rest_beyond_the_end_gets_554() {
    let (server, mut c) = logged_in().await;
    server.put("f", b"12345");
    c.expect("TYPE I", 200).await;
    c.expect("REST 6", 350).await;
    let t = c.transfer("STOR f", Some(b"x")).await;
    assert_eq!(t.code(), 554, "{t:?}");
    assert_eq!(server.files().read("f"), b"12345");
    c.expect("REST 100", 350).await;
    let t = c.transfer("RETR f", None).await;
    assert_eq!(t.code(), 554, "{t:?}");
}

#[tokio::test]
async fn symlinks_inside_the_root_are_followed() {
    let (server, mut c) = logged_in().await;
    let root = server.data_dir();
    fs::create_dir(root.join("real-dir")).unwrap();
    fs::write(root.join("real-dir/f"), b"target").unwrap();
    std::os::unix::fs::symlink("real-dir/f", root.join("link")).unwrap();
    std::os::unix::fs::symlink("real-dir", root.join("dir-link")).unwrap();
    assert_eq!(c.retr("link").await, b"target");
    c.expect("SIZE link", 213).await;
    c.expect("CWD dir-link", 250).await;
    assert_eq!(c.retr("f").await, b"target");
    c.expect("CWD /", 250).await;
    // DELE of a link removes the link, not its target.
    c.expect("DELE link", 250).await;
    assert!(root.join("real-dir/f").exists());
}

#[tokio::test]
async fn mlst_facts_follow_rfc3659() {
    let (server, mut c) = logged_in().await;
    server.put("f", b"12345");
    let mlst = c.expect("MLST f", 250).await;
    let line = mlst
        .lines
        .iter()
        .find(|l| l.contains(';'))
        .unwrap_or_else(|| panic!("{mlst:?}"));
    // RFC 3659 §7.2: the fact line starts with a single space, then facts, a space, the path.
    assert!(line.starts_with(' ') && !line.starts_with("  "), "{line:?}");
    let (facts, path) = line[1..].split_once(' ').expect("facts and path");
    assert_eq!(path, "/f");
    let modify = facts
        .split(';')
        .find_map(|f| {
            f.to_ascii_lowercase()
                .strip_prefix("modify=")
                .map(str::to_string)
        })
        .expect("modify fact");
    assert!(
        modify.len() >= 14 && modify[..14].bytes().all(|b| b.is_ascii_digit()),
        "modify={modify}"
    );
    let mdtm = c.expect("MDTM f", 213).await;
    assert_eq!(&mdtm.text()[..14], &modify[..14], "MDTM and MLST disagree");
    c.expect("OPTS MLST type;size;", 200).await;
}

#[tokio::test]
async fn pipelined_transfer_commands() {
    // EPSV and RETR in one write: the client connects after reading 229, the server waits.
    let (server, mut c) = logged_in().await;
    server.put("f", b"pipelined");
    c.send_raw(b"TYPE I\r\nEPSV\r\nRETR f\r\nNOOP\r\n").await;
    c.expect_reply(200).await;
    let epsv = c.expect_reply(229).await;
    let port = ftps_proto::address::parse_epsv_reply(&epsv.text()).unwrap();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(c.tls.clone())
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .expect("data handshake");
    c.expect_reply(150).await;
    let data = support::client::read_all(&mut tls).await.expect("data");
    assert_eq!(data, b"pipelined");
    c.expect_reply(226).await;
    c.expect_reply(200).await;
}

#[tokio::test]
async fn ipv6_listener() {
    let server = ftpsd().start_with_args(&["--listen", "[::1]:0"]);
    let v6 = *server
        .explicit_all
        .iter()
        .find(|a| a.is_ipv6())
        .unwrap_or_else(|| panic!("no IPv6 listener: {:?}", server.explicit_all));
    server.put("f", b"over ipv6");
    let tls = client_config(&server.fingerprint, Tls::Any);
    let mut c = Control::connect_with(v6, tls).await;
    c.auth_tls().await;
    c.user_pass("ftps", &server.password).await;
    c.protect().await;
    c.expect("PASV", 425).await;
    assert_eq!(c.retr("f").await, b"over ipv6");
    c.expect(&format!("EPRT |2|::1|{}|", 40000), 200).await;
}

#[tokio::test]
async fn non_utf8_names_on_disk_do_not_break_listings() {
    use std::os::unix::ffi::OsStrExt;
    let (server, mut c) = logged_in().await;
    let bad = std::ffi::OsStr::from_bytes(b"bad\xffname");
    fs::write(server.data_dir().join(bad), b"x").unwrap();
    fs::write(server.data_dir().join("good"), b"y").unwrap();
    for cmd in ["LIST", "NLST", "MLSD"] {
        let t = c.transfer(cmd, None).await;
        c.assert_transfer_ok(&t, cmd);
        let text = String::from_utf8_lossy(&t.data);
        assert!(
            text.contains("good"),
            "{cmd} lost the other entries: {text}"
        );
    }
    c.expect("STAT /", 213).await;
    c.expect("NOOP", 200).await;
}

#[tokio::test]
async fn a_symlink_loop_is_an_error_not_a_hang() {
    let (server, mut c) = logged_in().await;
    let root = server.data_dir();
    std::os::unix::fs::symlink("loop-b", root.join("loop-a")).unwrap();
    std::os::unix::fs::symlink("loop-a", root.join("loop-b")).unwrap();
    let retr = c.transfer("RETR loop-a", None).await.code();
    let cwd = c.cmd("CWD loop-a").await.code.0;
    let size = c.cmd("SIZE loop-a").await.code.0;
    let list = c.listing("LIST").await;
    assert!(list.contains("loop-a"), "{list}");
    c.listing("MLSD").await;
    // A symlink loop is a file that cannot be had (550), not a server failure (451).
    assert_eq!(
        (retr, cwd, size),
        (550, 550, 550),
        "RETR, CWD, SIZE of a symlink loop"
    );
}

#[tokio::test]
async fn a_fifo_is_not_opened() {
    // Opening a named pipe for reading blocks until a writer appears: a session must not
    // hang on one (and neither must the server). TLS 1.2: refused transfers use up no
    // TLS 1.3 tickets (see protocol.rs, consecutive_uploads_resume_the_session_over_tls13).
    let server = ftpsd().start();
    let mut c = Control::login_with(&server, client_config(&server.fingerprint, Tls::V12)).await;
    let fifo = server.data_dir().join("pipe");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let started = std::time::Instant::now();
    let t = c.transfer("RETR pipe", None).await;
    assert_eq!(t.code(), 550, "RETR of a FIFO: {t:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let t = c.transfer("STOR pipe", Some(b"x")).await;
    assert_ne!(t.code(), 0);
    c.expect("NOOP", 200).await;
    c.listing("LIST").await;
}

#[tokio::test]
async fn sizes_beyond_4_gib() {
    let (server, mut c) = logged_in().await;
    let len: u64 = 10 << 30;
    let file = fs::File::create(server.data_dir().join("sparse")).unwrap();
    file.set_len(len).unwrap();
    c.expect("TYPE I", 200).await;
    let size = c.expect("SIZE sparse", 213).await;
    assert_eq!(size.text(), len.to_string());
    let mlst = c.expect("MLST sparse", 250).await;
    assert!(mlst.text().contains(&format!("size={len};")), "{mlst:?}");
    let list = c.listing("LIST").await;
    assert!(list.contains(&len.to_string()), "{list}");
    c.expect(&format!("REST {}", len - 3), 350).await;
    assert_eq!(c.retr("sparse").await, [0, 0, 0]);
}
