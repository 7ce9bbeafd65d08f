//! `ftps` in place of an lftp script: the same job (a mirror with excludes, a segmented
//! download, retries) done by lftp and by ftps against the same server, results compared.

mod support;

use std::process::{Command, Stdio};

use ftps_testkit::files::{content, make_tree, tree_hashes};
use ftps_testkit::reference::{give_to_test_user, start, Kind, Server};
use support::{ftps, ok, url};

fn parity(kind: Kind) {
    let server: Server = start(kind);
    let name = kind.name();
    let tree = server.root.join("tree");
    make_tree(&tree.join("keep"), 40, 30_000);
    make_tree(&tree.join("cache"), 10, 3_000);
    std::fs::write(tree.join("scratch.tmp"), b"scratch").unwrap();
    std::fs::write(tree.join("keep/also.tmp"), b"also scratch").unwrap();
    std::fs::write(tree.join("readme.txt"), b"read me").unwrap();
    std::fs::write(
        server.root.join("big.bin"),
        content(12, 6 * 1024 * 1024 + 7),
    )
    .unwrap();
    give_to_test_user(&server);
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let remote = |rel: &str| ftps_client::client::join(&server.base, rel);

    // The lftp script.
    std::fs::create_dir(w.join("lftp")).unwrap();
    let script = format!(
        "set ssl:verify-certificate no\n\
         set ftp:ssl-force yes\n\
         set ftp:ssl-protect-data yes\n\
         set net:max-retries 3\n\
         set net:reconnect-interval-base 1\n\
         set net:timeout 30\n\
         set cmd:fail-exit yes\n\
         open -u {user},{password} -p {port} ftp://127.0.0.1\n\
         mirror --exclude-glob *.tmp --exclude-glob cache/ {tree} lftp/tree\n\
         pget -n 4 {big} -o lftp/big.bin\n\
         bye\n",
        user = server.user,
        password = server.password,
        port = server.explicit_port,
        tree = remote("tree"),
        big = remote("big.bin"),
    );
    std::fs::write(w.join("job.lftp"), script).unwrap();
    let out = Command::new("lftp")
        .args(["-f", "job.lftp"])
        .current_dir(w)
        .stdin(Stdio::null())
        .output()
        .expect("run lftp");
    assert!(
        out.status.success(),
        "{name}: lftp failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The same job with ftps.
    ok(&ftps(
        &server,
        &[
            "mirror",
            "--exclude",
            "*.tmp",
            "--exclude",
            "cache/",
            "--retries",
            "3",
            &url(&server, "tree"),
            "ftps/tree",
        ],
        w,
    ));
    ok(&ftps(
        &server,
        &[
            "get",
            "--segments",
            "4",
            "--retries",
            "3",
            &url(&server, "big.bin"),
            "ftps/big.bin",
        ],
        w,
    ));

    let by_lftp = tree_hashes(&w.join("lftp"));
    let by_ftps = tree_hashes(&w.join("ftps"));
    assert!(by_ftps.contains_key("big.bin") && by_ftps.contains_key("tree/readme.txt"));
    assert!(!by_ftps
        .keys()
        .any(|k| k.ends_with(".tmp") || k.contains("cache")));
    assert_eq!(by_lftp, by_ftps, "{name}: lftp and ftps results differ");
}

#[test]
fn same_job_as_lftp_vsftpd() {
    parity(Kind::Vsftpd);
}

#[test]
fn same_job_as_lftp_ftpsd() {
    parity(Kind::Ftpsd);
}
