//! Helpers of the command and compatibility tests: a dual-stack server, the tree of files
//! every client scenario moves, and tree comparison.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::support::{self, FTPSD};

/// An ftpsd listening on 127.0.0.1 and [::1] (explicit FTPS only), killed on drop.
pub struct DualStack {
    child: Child,
    pub dir: tempfile::TempDir,
    pub state: PathBuf,
    pub data: PathBuf,
    pub v4: SocketAddr,
    pub v6: SocketAddr,
    pub password: String,
    pub fingerprint: String,
}

impl DualStack {
    pub fn start() -> DualStack {
        use std::io::BufRead;
        let dir = tempfile::tempdir().expect("temp dir");
        let state = dir.path().join("state");
        let mut child = Command::new(FTPSD)
            .arg("--state-dir")
            .arg(&state)
            .args(["--listen", "127.0.0.1:0", "--listen", "[::1]:0"])
            .arg("--no-implicit")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ftpsd");
        let stdout = child.stdout.take().expect("stdout");
        let (mut v4, mut v6, mut password, mut fingerprint) = (None, None, None, None);
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.expect("ftpsd output");
            if let Some(p) = line.strip_prefix("created user ftps with password: ") {
                password = Some(p.trim().to_string());
            } else if let Some(f) = line.strip_prefix("certificate sha256 fingerprint: ") {
                fingerprint = Some(f.trim().to_string());
            } else if let Some(a) = line.strip_prefix("listening explicit ") {
                let addr: SocketAddr = a.trim().parse().expect("address");
                if addr.is_ipv4() {
                    v4 = Some(addr);
                } else {
                    v6 = Some(addr);
                }
            }
            if v4.is_some() && v6.is_some() && password.is_some() && fingerprint.is_some() {
                break;
            }
        }
        DualStack {
            child,
            data: state.join("data"),
            state,
            dir,
            v4: v4.expect("IPv4 listener"),
            v6: v6.expect("IPv6 listener"),
            password: password.expect("password"),
            fingerprint: fingerprint.expect("fingerprint"),
        }
    }
}

impl Drop for DualStack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

/// Asserts that two trees hold the same files with the same content.
pub fn assert_same_tree(expected: &Path, actual: &Path, what: &str) {
    let (want, got) = (tree_digests(expected), tree_digests(actual));
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "{what}: file lists differ ({} vs {})",
        expected.display(),
        actual.display()
    );
    for (rel, digest) in &want {
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
