//! A user's tree with virtual folders ([`crate::folders`]) mounted into it: each path goes
//! to the storage of the deepest folder it is in, as a path of that storage's own, or else
//! to the user's own tree. Each folder is a [`Storage`] confined to its own root, so no path
//! escapes a folder any more than it escapes a user's root.
//!
//! A mount point always shows as a directory, as does each of its ancestors (made up if the
//! user's tree lacks it), and listings show them where they are. A folder cannot be
//! removed, renamed or written over through its mount point, and nothing is renamed from
//! one storage to another (`CrossesDevices`, answered `550`): a client copies instead.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::sync::Arc;
use std::time::SystemTime;

use super::{Download, Entry, EntryKind, Listing, Storage, Upload, UploadMode, VirtualPath};

/// One mounted folder.
#[derive(Debug, Clone)]
pub struct Mount {
    /// Where the folder appears in the user's tree (never the root).
    pub at: VirtualPath,
    /// The folder's files.
    pub storage: Arc<dyn Storage>,
}

/// The user's own tree with its virtual folders.
#[derive(Debug)]
pub struct MountedStorage {
    home: Arc<dyn Storage>,
    /// Deepest mount points first, so the first that holds a path is the one it is in.
    mounts: Vec<Mount>,
    /// When the mount table was made: the time made-up directories show.
    made: SystemTime,
}

/// Where a path goes.
struct Target<'a> {
    storage: &'a Arc<dyn Storage>,
    /// The path in that storage.
    inner: VirtualPath,
    /// The index of the mount, `None` for the user's own tree.
    mount: Option<usize>,
}

impl MountedStorage {
    /// `home` with `mounts` (mount points other than the root, none twice).
    pub fn new(home: Arc<dyn Storage>, mut mounts: Vec<Mount>) -> MountedStorage {
        mounts.sort_by_key(|m| std::cmp::Reverse(m.at.as_str().matches('/').count()));
        MountedStorage {
            home,
            mounts,
            made: SystemTime::now(),
        }
    }

    fn route(&self, path: &VirtualPath) -> Target<'_> {
        for (index, mount) in self.mounts.iter().enumerate() {
            if let Some(inner) = path.strip_prefix(&mount.at) {
                return Target {
                    storage: &mount.storage,
                    inner,
                    mount: Some(index),
                };
            }
        }
        Target {
            storage: &self.home,
            inner: path.clone(),
            mount: None,
        }
    }

    /// Whether `path` is a mount point.
    fn is_mount_point(&self, path: &VirtualPath) -> bool {
        self.mounts.iter().any(|m| m.at == *path)
    }

    /// Whether a mount point is below `path` (so `path` must show as a directory).
    fn holds_mount(&self, path: &VirtualPath) -> bool {
        self.mounts
            .iter()
            .any(|m| m.at != *path && m.at.strip_prefix(path).is_some())
    }

    /// `Err` (`PermissionDenied`) if `path` is a mount point or holds one: the folders are
    /// fixed in the tree.
    fn refuse_structural(&self, path: &VirtualPath) -> io::Result<()> {
        if self.is_mount_point(path) || self.holds_mount(path) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "a virtual folder or one of its parents",
            ));
        }
        Ok(())
    }

    /// A directory entry for a made-up parent of a mount point.
    fn made_up_dir(&self, name: &str) -> Entry {
        Entry {
            name: OsString::from(name),
            kind: EntryKind::Dir,
            size: 0,
            modified: self.made,
            mode: 0o555,
            nlink: 2,
            uid: 0,
            gid: 0,
            dev: 0,
            ino: 0,
            link_target: None,
        }
    }

    /// The names of the mount points and their made-up parents right below `dir`.
    fn children_of(&self, dir: &VirtualPath) -> Vec<String> {
        let mut names: Vec<String> = self
            .mounts
            .iter()
            .filter(|m| m.at != *dir)
            .filter_map(|m| m.at.strip_prefix(dir))
            .filter_map(|below| below.as_str().split('/').nth(1).map(str::to_owned))
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

#[async_trait::async_trait]
impl Storage for MountedStorage {
    async fn metadata(&self, path: &VirtualPath) -> io::Result<Entry> {
        let target = self.route(path);
        let result = target.storage.metadata(&target.inner).await;
        let name = path.file_name().unwrap_or("/");
        match result {
            Ok(mut entry) if target.inner.is_root() && target.mount.is_some() => {
                entry.name = OsString::from(name);
                Ok(entry)
            }
            Ok(entry) if entry.kind == EntryKind::Dir || !self.holds_mount(path) => Ok(entry),
            Err(e) if !self.holds_mount(path) => Err(e),
            // A parent of a mount point that the tree lacks, or has as something else.
            _ => Ok(self.made_up_dir(name)),
        }
    }

    async fn open_read(&self, path: &VirtualPath, offset: u64) -> io::Result<Download> {
        let target = self.route(path);
        target.storage.open_read(&target.inner, offset).await
    }

    async fn create(&self, path: &VirtualPath, mode: UploadMode) -> io::Result<Box<dyn Upload>> {
        if self.is_mount_point(path) || self.holds_mount(path) {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "a virtual folder",
            ));
        }
        let target = self.route(path);
        target.storage.create(&target.inner, mode).await
    }

    async fn list(&self, dir: &VirtualPath) -> io::Result<Listing> {
        let children = self.children_of(dir);
        let target = self.route(dir);
        if children.is_empty() {
            return target.storage.list(&target.inner).await;
        }
        // A parent of a mount point may exist only as such.
        let real = match target.storage.metadata(&target.inner).await {
            Ok(entry) => entry.kind == EntryKind::Dir,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(e),
        };
        let listing: Listing = if real {
            target.storage.list(&target.inner).await?
        } else {
            Box::new(std::iter::empty())
        };
        let mut shown = BTreeMap::new();
        for name in &children {
            let entry = self.metadata(&dir.join(name)).await?;
            shown.insert(OsString::from(name), entry);
        }
        let hidden: Vec<OsString> = shown.keys().cloned().collect();
        let real = listing.filter(move |entry| match entry {
            Ok(entry) => !hidden.contains(&entry.name),
            Err(_) => true,
        });
        Ok(Box::new(real.chain(shown.into_values().map(Ok))))
    }

    async fn create_dir(&self, path: &VirtualPath) -> io::Result<()> {
        if self.is_mount_point(path) || self.holds_mount(path) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a virtual folder",
            ));
        }
        let target = self.route(path);
        target.storage.create_dir(&target.inner).await
    }

    async fn remove_dir(&self, path: &VirtualPath) -> io::Result<()> {
        self.refuse_structural(path)?;
        let target = self.route(path);
        target.storage.remove_dir(&target.inner).await
    }

    async fn remove_file(&self, path: &VirtualPath) -> io::Result<()> {
        if self.is_mount_point(path) || self.holds_mount(path) {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "a virtual folder",
            ));
        }
        let target = self.route(path);
        target.storage.remove_file(&target.inner).await
    }

    async fn rename(&self, from: &VirtualPath, to: &VirtualPath) -> io::Result<()> {
        self.refuse_structural(from)?;
        self.refuse_structural(to)?;
        let source = self.route(from);
        let dest = self.route(to);
        if source.mount != dest.mount {
            return Err(io::Error::new(
                io::ErrorKind::CrossesDevices,
                "source and target are in different folders",
            ));
        }
        source.storage.rename(&source.inner, &dest.inner).await
    }

    async fn set_modified(&self, path: &VirtualPath, time: SystemTime) -> io::Result<()> {
        self.refuse_structural(path)?;
        let target = self.route(path);
        target.storage.set_modified(&target.inner, time).await
    }

    fn sets_modification_times(&self) -> bool {
        self.home.sets_modification_times()
    }

    async fn set_mode(&self, path: &VirtualPath, mode: u32) -> io::Result<()> {
        self.refuse_structural(path)?;
        let target = self.route(path);
        target.storage.set_mode(&target.inner, mode).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::local::{LocalStorage, Root};

    fn local(dir: &std::path::Path) -> Arc<dyn Storage> {
        Arc::new(LocalStorage::new(Root::open(dir).unwrap()))
    }

    fn p(path: &str) -> VirtualPath {
        VirtualPath::root().join(path)
    }

    async fn names(s: &MountedStorage, dir: &str) -> Vec<(String, EntryKind)> {
        let listing = s.list(&p(dir)).await.unwrap();
        let mut names: Vec<_> = listing
            .map(|e| {
                let e = e.unwrap();
                (e.name.to_string_lossy().into_owned(), e.kind)
            })
            .collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        names
    }

    struct Fixture {
        home: tempfile::TempDir,
        shared: tempfile::TempDir,
        deep: tempfile::TempDir,
        storage: MountedStorage,
    }

    fn fixture() -> Fixture {
        let home = tempfile::tempdir().unwrap();
        let shared = tempfile::tempdir().unwrap();
        let deep = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("mine"), b"home").unwrap();
        // A real directory that the mount hides.
        std::fs::create_dir(home.path().join("shared")).unwrap();
        std::fs::write(home.path().join("shared/hidden"), b"x").unwrap();
        std::fs::write(shared.path().join("common"), b"shared").unwrap();
        std::fs::write(deep.path().join("leaf"), b"deep").unwrap();
        let storage = MountedStorage::new(
            local(home.path()),
            vec![
                Mount {
                    at: p("/shared"),
                    storage: local(shared.path()),
                },
                Mount {
                    at: p("/projects/2026/deep"),
                    storage: local(deep.path()),
                },
            ],
        );
        Fixture {
            home,
            shared,
            deep,
            storage,
        }
    }

    #[tokio::test]
    async fn paths_go_to_their_folder_and_listings_show_the_mounts() {
        let fx = fixture();
        let s = &fx.storage;
        assert_eq!(
            names(s, "/").await,
            [
                ("mine".to_string(), EntryKind::File),
                ("projects".to_string(), EntryKind::Dir),
                ("shared".to_string(), EntryKind::Dir)
            ]
        );
        assert_eq!(
            names(s, "/shared").await,
            [("common".to_string(), EntryKind::File)]
        );
        assert_eq!(
            names(s, "/projects/2026").await,
            [("deep".to_string(), EntryKind::Dir)]
        );
        assert_eq!(
            s.metadata(&p("/projects")).await.unwrap().kind,
            EntryKind::Dir
        );
        assert_eq!(
            s.metadata(&p("/projects/2026/deep/leaf"))
                .await
                .unwrap()
                .size,
            4
        );
        let mut up = s
            .create(&p("/shared/new"), UploadMode::Replace)
            .await
            .unwrap();
        up.write_all(b"abc").unwrap();
        up.commit().unwrap();
        assert_eq!(std::fs::read(fx.shared.path().join("new")).unwrap(), b"abc");
        s.create_dir(&p("/projects/2026/deep/sub")).await.unwrap();
        assert!(fx.deep.path().join("sub").is_dir());
        assert!(!fx.home.path().join("projects").exists());
    }

    #[tokio::test]
    async fn no_path_leaves_a_folder_and_mounts_stay_in_place() {
        let fx = fixture();
        let s = &fx.storage;
        // ".." is resolved before routing: it can only reach the user's own tree.
        assert_eq!(
            std::fs::read_to_string(fx.home.path().join("mine")).unwrap(),
            "home"
        );
        let e = s.open_read(&p("/shared/../mine"), 0).await.unwrap();
        assert_eq!(e.remaining(), 4);
        std::os::unix::fs::symlink(fx.home.path(), fx.shared.path().join("escape")).unwrap();
        assert!(s.open_read(&p("/shared/escape/mine"), 0).await.is_err());
        for path in ["/shared", "/projects", "/projects/2026/deep"] {
            assert_eq!(
                s.remove_dir(&p(path)).await.unwrap_err().kind(),
                io::ErrorKind::PermissionDenied,
                "{path}"
            );
            assert_eq!(
                s.rename(&p(path), &p("/elsewhere"))
                    .await
                    .unwrap_err()
                    .kind(),
                io::ErrorKind::PermissionDenied,
                "{path}"
            );
            assert!(
                s.create(&p(path), UploadMode::Replace).await.is_err(),
                "{path}"
            );
            assert_eq!(
                s.create_dir(&p(path)).await.unwrap_err().kind(),
                io::ErrorKind::AlreadyExists
            );
        }
        assert_eq!(
            s.rename(&p("/mine"), &p("/shared/mine"))
                .await
                .unwrap_err()
                .kind(),
            io::ErrorKind::CrossesDevices
        );
        s.rename(&p("/shared/common"), &p("/shared/renamed"))
            .await
            .unwrap();
        assert!(fx.shared.path().join("renamed").exists());
        assert!(fx.home.path().join("mine").exists());
    }
}
