//! Wildcards (`ls`, `get`, `rm` with patterns matched on the client) and mirror rules
//! (`--include`/`--exclude`, `--newer-than`, `--checksum`, the skipped summary), with the
//! `ftps` binary against vsftpd, ProFTPD, Pure-FTPd and ftpsd.

mod support;

use std::path::Path;
use std::time::{Duration, SystemTime};

use ftps_testkit::files::{content, tree_hashes};
use ftps_testkit::reference::{give_to_test_user, start, Kind, Server};
use support::{ftps, json, ok, stderr, url};

fn write(root: &Path, rel: &str, data: &[u8]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

fn set_mtime(path: &Path, t: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

/// The files (not directories) under `dir`, relative.
fn files(dir: &Path) -> Vec<String> {
    tree_hashes(dir)
        .into_iter()
        .filter(|(_, hash)| hash != "dir")
        .map(|(path, _)| path)
        .collect()
}

fn names(listing: &serde_json::Value) -> Vec<String> {
    listing
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect()
}

fn wildcards(server: &Server) {
    let name = server.kind.name();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    write(&server.root, "in/a.csv", &content(1, 1000));
    write(&server.root, "in/b.csv", &content(2, 70_000));
    write(&server.root, "in/c.txt", b"text");
    write(&server.root, "in/.hidden.csv", b"hidden");
    write(
        &server.root,
        "in/sub.csv/d.csv",
        b"in a directory named like a match",
    );
    give_to_test_user(server);

    // ls: the matching entries themselves (like ls -d), hidden names only for a dot pattern.
    let ls = json(&ftps(
        server,
        &["ls", "--json", &url(server, "in/*.csv")],
        w,
    ));
    assert_eq!(names(&ls), ["a.csv", "b.csv", "sub.csv"], "{name}: {ls}");
    let ls = json(&ftps(
        server,
        &["ls", "--json", &url(server, "in/[ab].c?v")],
        w,
    ));
    assert_eq!(names(&ls), ["a.csv", "b.csv"], "{name}: {ls}");
    let dots = ftps(server, &["ls", "--json", &url(server, "in/.*")], w);
    if dots.status.success() {
        assert_eq!(names(&json(&dots)), [".hidden.csv"], "{name}");
    } else {
        // vsftpd lists no dot files (without force_dot_files): nothing to match.
        assert_eq!(server.kind, Kind::Vsftpd, "{}", stderr(&dots));
        assert_eq!(dots.status.code(), Some(6), "{}", stderr(&dots));
    }

    // get: every matching file into a directory; the matching directory is skipped.
    std::fs::create_dir(w.join("got")).unwrap();
    let out = ftps(server, &["get", &url(server, "in/*.csv"), "got"], w);
    ok(&out);
    assert!(
        stderr(&out).contains("sub.csv: not a file"),
        "{name}: {}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read(w.join("got/a.csv")).unwrap(),
        content(1, 1000)
    );
    assert_eq!(
        std::fs::read(w.join("got/b.csv")).unwrap(),
        content(2, 70_000)
    );
    assert_eq!(std::fs::read_dir(w.join("got")).unwrap().count(), 2);

    // No match: lftp's words, the exit code of a missing remote file.
    let out = ftps(server, &["get", &url(server, "in/*.xml"), "got"], w);
    assert_eq!(out.status.code(), Some(6), "{name}: {}", stderr(&out));
    assert!(
        stderr(&out).contains("no files found matching") && !stderr(&out).contains("replied"),
        "{}",
        stderr(&out)
    );
    // A pattern into something that is not a directory, a pattern in a directory part.
    let out = ftps(server, &["get", &url(server, "in/*.csv"), "got/a.csv"], w);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = ftps(server, &["ls", &url(server, "i*/a.csv")], w);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("last path component"),
        "{}",
        stderr(&out)
    );

    // rm: the matching files; a matching directory is left alone.
    let out = ftps(server, &["rm", &url(server, "in/*.csv")], w);
    ok(&out);
    assert!(stderr(&out).contains("is a directory"), "{}", stderr(&out));
    assert!(!server.root.join("in/a.csv").exists(), "{name}");
    assert!(!server.root.join("in/b.csv").exists(), "{name}");
    assert!(server.root.join("in/c.txt").exists(), "{name}");
    assert!(server.root.join("in/.hidden.csv").exists(), "{name}");
    assert!(server.root.join("in/sub.csv/d.csv").exists(), "{name}");
    // A path without wildcards is one file, exactly as before.
    ok(&ftps(server, &["rm", &url(server, "in/c.txt")], w));
    assert!(!server.root.join("in/c.txt").exists(), "{name}");
}

fn mirror_rules(server: &Server) {
    let name = server.kind.name();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_262_304_000); // 2010-01-01
    let tree = server.root.join("tree");
    write(&tree, "keep/x.csv", &content(3, 5000));
    write(&tree, "keep/y.tmp", b"scratch");
    write(&tree, "cache/z.csv", b"cached");
    write(&tree, "top.csv", &content(4, 3000));
    write(&tree, "notes.txt", b"notes");
    write(&tree, "old.csv", b"from long ago");
    set_mtime(&tree.join("old.csv"), old);
    give_to_test_user(server);

    // Excludes (a name pattern, a directory), an age limit, a dry run that says why.
    let args = |extra: &[&'static str]| {
        let mut a = vec!["mirror", "--exclude", "*.tmp", "--exclude", "cache/"];
        a.extend_from_slice(extra);
        a
    };
    let dry = ftps(
        server,
        &[
            &args(&["--newer-than", "2020-01-01", "--dry-run"])[..],
            &[&url(server, "tree"), "down"],
        ]
        .concat(),
        w,
    );
    let plan = ok(&dry);
    assert!(
        plan.contains("skip     cache (excluded by --exclude cache/)"),
        "{name}: {plan}"
    );
    assert!(
        plan.contains("skip     keep/y.tmp (excluded by --exclude *.tmp)"),
        "{plan}"
    );
    assert!(plan.contains("skip     old.csv (older)"), "{plan}");
    assert!(!w.join("down").join("top.csv").exists());

    let report = json(&ftps(
        server,
        &[
            &args(&["--newer-than", "2020-01-01", "--json"])[..],
            &[&url(server, "tree"), "down"],
        ]
        .concat(),
        w,
    ));
    assert_eq!(report["transferred"], 3, "{name}: {report}");
    assert_eq!(report["skipped"]["excluded"], 2, "{report}");
    assert_eq!(report["skipped"]["older"], 1, "{report}");
    assert_eq!(report["compared_by"], "size+mtime", "{report}");
    let got = files(&w.join("down"));
    assert_eq!(got, ["keep/x.csv", "notes.txt", "top.csv"], "{name}");

    // --delete spares what the rules leave out at the destination.
    write(&w.join("down"), "keep/local.tmp", b"mine");
    write(&w.join("down"), "stray.txt", b"gone soon");
    let report = json(&ftps(
        server,
        &[
            &args(&["--newer-than", "2020-01-01", "--delete", "--json"])[..],
            &[&url(server, "tree"), "down"],
        ]
        .concat(),
        w,
    ));
    assert_eq!(report["deleted"], 1, "{name}: {report}");
    assert_eq!(report["skipped"]["unchanged"], 3, "{report}");
    assert!(w.join("down/keep/local.tmp").exists(), "{name}");
    assert!(!w.join("down/stray.txt").exists(), "{name}");

    // An include first: only what is included (directories are still walked).
    let report = json(&ftps(
        server,
        &[
            "mirror",
            "--include",
            "*.csv",
            "--exclude",
            "cache/",
            "--json",
            &url(server, "tree"),
            "only-csv",
        ],
        w,
    ));
    assert_eq!(report["transferred"], 3, "{name}: {report}");
    let got = files(&w.join("only-csv"));
    assert_eq!(got, ["keep/x.csv", "old.csv", "top.csv"], "{name}");

    // --checksum: a local copy changed without changing size or time is caught where the
    // server computes SHA-256 (ftpsd); elsewhere size and time decide, and the report says so.
    let copy = w.join("down/top.csv");
    let mtime = std::fs::metadata(&copy).unwrap().modified().unwrap();
    let mut changed = content(4, 3000);
    changed[10] ^= 0xff;
    std::fs::write(&copy, &changed).unwrap();
    set_mtime(&copy, mtime);
    let report = json(&ftps(
        server,
        &[
            &args(&["--newer-than", "2020-01-01", "--checksum", "--json"])[..],
            &[&url(server, "tree"), "down"],
        ]
        .concat(),
        w,
    ));
    if server.kind == Kind::Ftpsd {
        assert_eq!(report["compared_by"], "sha256", "{report}");
        assert_eq!(report["transferred"], 1, "{report}");
        assert_eq!(std::fs::read(&copy).unwrap(), content(4, 3000));
    } else {
        assert_eq!(report["compared_by"], "size+mtime", "{name}: {report}");
        assert_eq!(report["transferred"], 0, "{name}: {report}");
    }

    // Upload with rules: nothing excluded reaches the server.
    write(w, "up/a.csv", b"a");
    write(w, "up/b.tmp", b"b");
    write(w, "up/cache/c.csv", b"c");
    let report = json(&ftps(
        server,
        &[&args(&["--json"])[..], &["up", &url(server, "uploaded")]].concat(),
        w,
    ));
    assert_eq!(report["transferred"], 1, "{name}: {report}");
    assert_eq!(report["skipped"]["excluded"], 2, "{report}");
    let got = files(&server.root.join("uploaded"));
    assert_eq!(got, ["a.csv"], "{name}");

    // A bad pattern is a usage error.
    let out = ftps(
        server,
        &["mirror", "--exclude", "[", &url(server, "tree"), "x"],
        w,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

fn scenario(kind: Kind) {
    let server = start(kind);
    wildcards(&server);
    mirror_rules(&server);
}

#[test]
fn wildcards_and_mirror_rules_vsftpd() {
    scenario(Kind::Vsftpd);
}

#[test]
fn wildcards_and_mirror_rules_proftpd() {
    scenario(Kind::Proftpd);
}

#[test]
fn wildcards_and_mirror_rules_pure_ftpd() {
    scenario(Kind::PureFtpd);
}

#[test]
fn wildcards_and_mirror_rules_ftpsd() {
    scenario(Kind::Ftpsd);
}
