//! Where the files of ftpsd's test users live, so that one test suite proves both backends.
//!
//! By default a user's files are in a local directory. With `FTPSD_TEST_STORAGE=s3`, every
//! server the kit starts keeps them in Garage instead (the server's `storage.default` is a
//! bucket of the process's shared Garage, under a key prefix of the server's own), and
//! [`UserFiles`] puts, reads and lists them straight in the bucket. A test that needs a
//! local root by nature (symbolic links, FIFOs, permission bits, sparse files) calls
//! [`UserFiles::local_path`], which says so when the run is on S3; the test command lists
//! such tests, with the reason, in the S3 run's skip list.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::files::{hex, TestFile};
use crate::garage::Garage;

/// The environment variable that chooses the backend of the test users: `local` (the
/// default) or `s3`.
pub const STORAGE_ENV: &str = "FTPSD_TEST_STORAGE";

/// The name of the store in the configurations the kit writes.
pub const STORE_NAME: &str = "garage";

/// Where the test users' files are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A local directory per user.
    Local,
    /// A key prefix per user in a bucket of the shared Garage.
    S3,
}

impl Backend {
    /// The backend this test run uses ([`STORAGE_ENV`]); panics on an unknown value.
    pub fn current() -> Backend {
        match std::env::var(STORAGE_ENV).as_deref() {
            Err(_) | Ok("") | Ok("local") => Backend::Local,
            Ok("s3") => Backend::S3,
            Ok(other) => panic!("{STORAGE_ENV}={other}: expected `local` or `s3`"),
        }
    }

    /// Whether this run keeps the users' files in S3.
    pub fn is_s3() -> bool {
        Backend::current() == Backend::S3
    }
}

/// The configuration tables that make Garage the default storage of a server whose
/// directory is `dir` (the credentials file is written there), under its own key `prefix`.
pub fn s3_default_storage(dir: &Path, prefix: &str) -> String {
    let garage = Garage::shared();
    let credentials = dir.join("s3-credentials");
    garage.write_credentials_file(&credentials);
    format!(
        "[storage]\ndefault = \"{STORE_NAME}\"\n\n{}",
        garage.store_table(STORE_NAME, &credentials, &format!("prefix = \"{prefix}\""))
    )
}

/// A fresh key prefix for one server's store, unique in the shared bucket.
pub fn fresh_prefix() -> String {
    format!("t{:016x}", rand::random::<u64>())
}

/// One user's files, wherever they are: a local directory, or a key prefix in Garage.
#[derive(Clone, Debug)]
pub enum UserFiles {
    /// The user's local root directory.
    Local(PathBuf),
    /// The objects under `prefix` (ends with `/`) of the shared Garage's bucket.
    S3 {
        /// The user's key prefix in the bucket, the store's prefix included.
        prefix: String,
    },
}

impl UserFiles {
    /// The user's root directory. Panics on S3, naming why the test needs a local disk.
    pub fn local_path(&self) -> &Path {
        match self {
            UserFiles::Local(path) => path,
            UserFiles::S3 { prefix } => panic!(
                "this test needs a local root directory (it uses what only a file system has), \
                 but {STORAGE_ENV}=s3 keeps the user's files under {prefix} in Garage: list it \
                 in the S3 run's skip list with its reason"
            ),
        }
    }

    /// Writes `content` to the file `name` (a relative path whose parent exists).
    pub fn put(&self, name: &str, content: &[u8]) {
        match self {
            UserFiles::Local(root) => fs::write(root.join(name), content)
                .unwrap_or_else(|e| panic!("write {name} into the root: {e}")),
            UserFiles::S3 { .. } => {
                let key = self.key(name);
                let content = content.to_vec();
                s3(move |op| async move { op.write(&key, content).await.map(|_| ()) })
                    .unwrap_or_else(|e| panic!("put {name} into the bucket: {e}"));
            }
        }
    }

    /// The content of the file `name`; panics when it is missing.
    pub fn read(&self, name: &str) -> Vec<u8> {
        self.try_read(name)
            .unwrap_or_else(|| panic!("{name} is missing from the user's files"))
    }

    /// The content of the file `name`, or `None` when there is no such file.
    pub fn try_read(&self, name: &str) -> Option<Vec<u8>> {
        match self {
            UserFiles::Local(root) => match fs::read(root.join(name)) {
                Ok(data) => Some(data),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => panic!("read {name} from the root: {e}"),
            },
            UserFiles::S3 { .. } => {
                let key = self.key(name);
                match s3(move |op| async move { op.read(&key).await }) {
                    Ok(buffer) => Some(buffer.to_vec()),
                    Err(e) if e.kind() == opendal::ErrorKind::NotFound => None,
                    Err(e) => panic!("read {name} from the bucket: {e}"),
                }
            }
        }
    }

    /// Whether a file or a directory `name` exists.
    pub fn exists(&self, name: &str) -> bool {
        match self {
            UserFiles::Local(root) => root.join(name).symlink_metadata().is_ok(),
            UserFiles::S3 { .. } => self.try_read(name).is_some() || self.is_dir(name),
        }
    }

    /// Whether `name` is a directory (on S3: any key starts with `name/`).
    pub fn is_dir(&self, name: &str) -> bool {
        match self {
            UserFiles::Local(root) => root.join(name).is_dir(),
            UserFiles::S3 { .. } => {
                let dir = self.dir_key(name);
                s3(move |op| async move { op.list_with(&dir).limit(1).await })
                    .map(|entries| !entries.is_empty())
                    .unwrap_or_else(|e| panic!("list {name} in the bucket: {e}"))
            }
        }
    }

    /// Makes the directory `name` and its missing parents (on S3: the marker objects ftpsd's
    /// `MKD` writes).
    pub fn mkdir(&self, name: &str) {
        match self {
            UserFiles::Local(root) => fs::create_dir_all(root.join(name))
                .unwrap_or_else(|e| panic!("mkdir {name} in the root: {e}")),
            UserFiles::S3 { .. } => {
                let mut dir = String::new();
                for part in name.split('/').filter(|p| !p.is_empty()) {
                    dir.push_str(part);
                    dir.push('/');
                    let key = self.dir_key(&dir);
                    s3(move |op| async move { op.create_dir(&key).await })
                        .unwrap_or_else(|e| panic!("mkdir {name} in the bucket: {e}"));
                }
            }
        }
    }

    /// The names in the directory `dir` (`""`: the root), hidden ones included, sorted.
    pub fn names(&self, dir: &str) -> Vec<String> {
        let mut names: Vec<String> = match self {
            UserFiles::Local(root) => fs::read_dir(root.join(dir))
                .unwrap_or_else(|e| panic!("read the directory {dir:?}: {e}"))
                .map(|e| {
                    e.expect("dir entry")
                        .file_name()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect(),
            UserFiles::S3 { .. } => {
                let prefix = self.dir_key(dir);
                let listed = prefix.clone();
                let entries = s3(move |op| async move { op.list(&listed).await })
                    .unwrap_or_else(|e| panic!("list {dir:?} in the bucket: {e}"));
                entries
                    .iter()
                    .filter_map(|e| e.path().strip_prefix(prefix.as_str()))
                    .map(|name| name.trim_end_matches('/').to_string())
                    // The directory's own marker.
                    .filter(|name| !name.is_empty())
                    .collect()
            }
        };
        names.sort();
        names
    }

    /// Relative path -> SHA-256 of every file (directories as "dir"), as
    /// [`crate::files::tree_hashes`] gives for a local tree.
    pub fn tree_hashes(&self) -> BTreeMap<String, String> {
        match self {
            UserFiles::Local(root) => crate::files::tree_hashes(root),
            UserFiles::S3 { prefix } => {
                let root = prefix.clone();
                let keys = s3(move |op| async move {
                    let entries = op.list_with(&root).recursive(true).await?;
                    let mut out = Vec::new();
                    for e in entries {
                        let key = e.path().to_string();
                        let data = if key.ends_with('/') {
                            None
                        } else {
                            Some(op.read(&key).await?.to_vec())
                        };
                        out.push((key, data));
                    }
                    Ok(out)
                })
                .unwrap_or_else(|e| panic!("read the tree from the bucket: {e}"));
                let mut out = BTreeMap::new();
                for (key, data) in keys {
                    let Some(rel) = key.strip_prefix(prefix.as_str()) else {
                        continue;
                    };
                    // Every directory of a key is a directory of the tree.
                    let parts: Vec<&str> = rel.split('/').collect();
                    for i in 1..parts.len() {
                        out.insert(parts[..i].join("/"), "dir".to_string());
                    }
                    if let Some(data) = data {
                        out.insert(rel.to_string(), format!("{:x}", Sha256::digest(&data)));
                    }
                }
                out.remove("");
                out
            }
        }
    }

    /// Asserts that the file `name` has exactly the content of `expected`.
    pub fn assert_same_content(&self, expected: &TestFile, name: &str, what: &str) {
        match self {
            UserFiles::Local(root) => {
                crate::files::assert_same_content(expected, &root.join(name), what)
            }
            UserFiles::S3 { .. } => {
                let data = self
                    .try_read(name)
                    .unwrap_or_else(|| panic!("{what}: {name} is missing from the bucket"));
                assert_eq!(data.len() as u64, expected.len, "{what}: size of {name}");
                assert_eq!(
                    hex(&Sha256::digest(&data)),
                    expected.sha256,
                    "{what}: SHA-256 of {name}"
                );
            }
        }
    }

    /// Asserts that the root holds nothing (everything was deleted).
    pub fn assert_empty(&self, what: &str) {
        let left = self.names("");
        assert!(left.is_empty(), "{what}: files left in the root: {left:?}");
    }

    /// The object key of the file `name`.
    fn key(&self, name: &str) -> String {
        match self {
            UserFiles::Local(_) => unreachable!("a key of a local root"),
            UserFiles::S3 { prefix } => format!("{prefix}{}", name.trim_start_matches('/')),
        }
    }

    /// The key prefix of the directory `name` (`""`: the root): ends with `/`.
    fn dir_key(&self, name: &str) -> String {
        let name = name.trim_matches('/');
        match self {
            UserFiles::Local(_) => unreachable!("a key of a local root"),
            UserFiles::S3 { prefix } if name.is_empty() => prefix.clone(),
            UserFiles::S3 { prefix } => format!("{prefix}{name}/"),
        }
    }
}

/// Runs one request of the shared Garage's bucket to completion on a thread of its own: the
/// tests call this from inside their own runtime, which must not be blocked on.
fn s3<T, F, Fut>(request: F) -> opendal::Result<T>
where
    T: Send,
    F: FnOnce(opendal::Operator) -> Fut + Send,
    Fut: std::future::Future<Output = opendal::Result<T>>,
{
    let op = Garage::shared().operator("/");
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for an S3 request")
                    .block_on(request(op))
            })
            .join()
            .expect("the S3 request's thread")
    })
}
