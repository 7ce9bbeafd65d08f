//! Helpers of the command and compatibility tests: a dual-stack server, the tree of files
//! every client scenario moves, and tree comparison.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ftps_testkit::storage::UserFiles;

use super::support::{self, Server};

/// An ftpsd listening on 127.0.0.1 and [::1] (explicit FTPS), killed on drop. Its users'
/// files are wherever the test kit puts them (a local directory, or Garage on S3 runs).
pub struct DualStack {
    pub server: Server,
    pub state: PathBuf,
    pub v4: SocketAddr,
    pub v6: SocketAddr,
    pub password: String,
    pub fingerprint: String,
}

impl DualStack {
    pub fn start() -> DualStack {
        let server = support::ftpsd().start_with_listen_and(
            "[\"127.0.0.1:0\", \"[::1]:0\"]",
            "",
            support::RUST_LOG,
            |_| {},
        );
        let v4 = *server
            .explicit_all
            .iter()
            .find(|a| a.is_ipv4())
            .expect("IPv4 listener");
        let v6 = *server
            .explicit_all
            .iter()
            .find(|a| a.is_ipv6())
            .expect("IPv6 listener");
        DualStack {
            state: server.state_dir.clone(),
            v4,
            v6,
            password: server.password.clone(),
            fingerprint: server.fingerprint.clone(),
            server,
        }
    }

    /// The files of the user `ftps`.
    pub fn files(&self) -> UserFiles {
        self.server.files()
    }
}

/// The files every client scenario uploads, as paths relative to the tree's root: empty,
/// one byte, over a MiB in a subdirectory, a text file two levels down, and a UTF-8 name
/// with a space.
pub const TREE: [(&str, u64); 5] = [
    ("empty.bin", 0),
    ("one.bin", 1),
    ("sub/mib-plus-one.bin", 1024 * 1024 + 1),
    ("sub/deeper/notes.txt", 0),
    ("ünï cödé.bin", 4096),
];

/// Text of `sub/deeper/notes.txt`: LF line endings.
pub const NOTES: &[u8] = b"first line\nsecond line\n\nlast line\n";

/// Creates the tree of [`TREE`] under `root`.
pub fn make_tree(root: &Path) {
    for (rel, len) in TREE {
        let path = root.join(rel);
        let dir = path.parent().expect("parent");
        fs::create_dir_all(dir).expect("create tree directory");
        if rel.ends_with(".txt") {
            fs::write(&path, NOTES).expect("write text file");
        } else {
            let name = path.file_name().expect("name").to_str().expect("UTF-8");
            support::make_file(dir, name, len);
        }
    }
}

/// Relative path → SHA-256 of every regular file under `root`, skipping nothing.
pub fn tree_digests(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    collect(root, root, &mut out);
    out
}

fn collect(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            collect(root, &path, out);
        } else {
            let rel = path.strip_prefix(root).expect("inside root");
            out.insert(
                rel.to_string_lossy().into_owned(),
                support::sha256_file(&path),
            );
        }
    }
}

/// Relative path → SHA-256 of every file under `dir` of a user's files (directories left
/// out, as in [`tree_digests`]).
pub fn user_tree_digests(files: &UserFiles, dir: &str) -> BTreeMap<String, String> {
    let prefix = format!("{}/", dir.trim_matches('/'));
    files
        .tree_hashes()
        .into_iter()
        .filter(|(_, hash)| hash != "dir")
        .filter_map(|(rel, hash)| Some((rel.strip_prefix(&prefix)?.to_string(), hash)))
        .collect()
}

/// Asserts that two local trees hold the same files with the same content.
pub fn assert_same_tree(expected: &Path, actual: &Path, what: &str) {
    let (want, got) = (tree_digests(expected), tree_digests(actual));
    compare_trees(&want, &got, expected, &actual.display().to_string(), what);
}

/// Asserts that the directory `dir` of a user's files holds the same files with the same
/// content as the local tree `expected`.
pub fn assert_same_user_tree(expected: &Path, files: &UserFiles, dir: &str, what: &str) {
    let (want, got) = (tree_digests(expected), user_tree_digests(files, dir));
    compare_trees(&want, &got, expected, &format!("the user's {dir}"), what);
}

fn compare_trees(
    want: &BTreeMap<String, String>,
    got: &BTreeMap<String, String>,
    expected: &Path,
    actual: &str,
    what: &str,
) {
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "{what}: file lists differ ({} vs {actual})",
        expected.display()
    );
    for (rel, digest) in want {
        assert_eq!(
            Some(digest),
            got.get(rel),
            "{what}: SHA-256 of {rel} differs"
        );
    }
}

/// Percent-encodes a relative path for an FTP URL (curl), keeping `/`.
pub fn url_path(rel: &str) -> String {
    rel.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
