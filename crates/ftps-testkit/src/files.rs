//! Test files with known content, and checks of what arrived.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

/// Sizes every client test transfers: empty, one byte, just over a buffer-friendly size,
/// and large enough to span many TLS records and socket buffers.
pub const SIZES: [(&str, u64); 4] = [
    ("empty.bin", 0),
    ("one.bin", 1),
    ("mib-plus-one.bin", 1024 * 1024 + 1),
    ("hundred-mib.bin", 100 * 1024 * 1024),
];

/// A fresh temporary directory, removed when dropped.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ftpsd-test-")
        .tempdir()
        .expect("create temp dir")
}

/// A local file with known content.
#[derive(Clone, Debug)]
pub struct TestFile {
    /// The file name.
    pub name: String,
    /// Where it is.
    pub path: PathBuf,
    /// Its size.
    pub len: u64,
    /// SHA-256 of its content, lowercase hex.
    pub sha256: String,
}

/// Writes `len` random bytes to `dir/name`.
pub fn make_file(dir: &Path, name: &str, len: u64) -> TestFile {
    let path = dir.join(name);
    let mut rng = rand::rngs::StdRng::from_entropy();
    let mut file = std::io::BufWriter::new(File::create(&path).expect("create test file"));
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill_bytes(&mut buf[..n]);
        hash.update(&buf[..n]);
        file.write_all(&buf[..n]).expect("write test file");
        left -= n as u64;
    }
    file.flush().expect("flush test file");
    TestFile {
        name: name.to_string(),
        path,
        len,
        sha256: hex(&hash.finalize()),
    }
}

/// The four files of [`SIZES`] in `dir`.
pub fn standard_files(dir: &Path) -> Vec<TestFile> {
    SIZES
        .iter()
        .map(|(name, len)| make_file(dir, name, *len))
        .collect()
}

/// SHA-256 of a file as lowercase hex.
pub fn sha256_file(path: &Path) -> String {
    let mut file =
        File::open(path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).expect("read file");
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    hex(&hash.finalize())
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Asserts that `path` has exactly the content of `expected`.
pub fn assert_same_content(expected: &TestFile, path: &Path, what: &str) {
    let meta =
        fs::metadata(path).unwrap_or_else(|e| panic!("{what}: {} is missing: {e}", path.display()));
    assert_eq!(
        meta.len(),
        expected.len,
        "{what}: size of {}",
        path.display()
    );
    assert_eq!(
        sha256_file(path),
        expected.sha256,
        "{what}: SHA-256 of {}",
        path.display()
    );
}

/// Asserts that a LIST output names every file with its size.
pub fn assert_listed(listing: &str, files: &[TestFile], what: &str) {
    for f in files {
        let line = listing
            .lines()
            .find(|l| l.split_whitespace().last() == Some(f.name.as_str()))
            .unwrap_or_else(|| panic!("{what}: {} not in listing:\n{listing}", f.name));
        assert!(
            line.split_whitespace().any(|w| w == f.len.to_string()),
            "{what}: listing line for {} lacks its size {}: {line}",
            f.name,
            f.len
        );
    }
}

/// Asserts that a directory holds no regular file (everything was deleted).
pub fn assert_no_files(dir: &Path, what: &str) {
    let left = file_names(dir);
    assert!(left.is_empty(), "{what}: files left in the root: {left:?}");
}

/// The names in `dir`, hidden ones included, in directory order.
pub fn file_names(dir: &Path) -> Vec<std::ffi::OsString> {
    fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("dir entry").file_name())
        .collect()
}

/// A deterministic pseudo-random file content.
pub fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Writes a tree of files under `dir`: `files` files spread over nested directories.
pub fn make_tree(dir: &Path, files: usize, max_len: usize) {
    for i in 0..files {
        let sub = dir.join(format!("d{}", i % 7)).join(format!("e{}", i % 3));
        fs::create_dir_all(&sub).unwrap();
        let len = (i * 7919) % (max_len + 1);
        fs::write(sub.join(format!("f{i}.bin")), content(i as u64, len)).unwrap();
    }
    fs::write(dir.join("top level.txt"), b"a name with a space\n").unwrap();
    fs::create_dir_all(dir.join("empty")).unwrap();
}

/// Relative path -> SHA-256 of every file under `dir` (directories as "dir").
pub fn tree_hashes(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((d, rel)) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let rel_path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if e.file_type().unwrap().is_dir() {
                out.insert(rel_path.clone(), "dir".into());
                stack.push((e.path(), rel_path));
            } else {
                let data = fs::read(e.path()).unwrap();
                out.insert(rel_path, format!("{:x}", Sha256::digest(&data)));
            }
        }
    }
    out
}
