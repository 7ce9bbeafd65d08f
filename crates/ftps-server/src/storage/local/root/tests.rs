//! Tests against real files on disk: confinement first, then ordinary behaviour.

use super::*;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::os::unix::fs::MetadataExt as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "top secret";

/// A temporary directory holding `root/` (the user's root) and `outside/secret.txt`.
struct Fixture {
    _tmp: tempfile::TempDir,
    root_path: PathBuf,
    outside: PathBuf,
    root: Root,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let root_path = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        fs::create_dir(&root_path).unwrap();
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("secret.txt"), SECRET).unwrap();
        fs::create_dir_all(root_path.join("sub/deeper")).unwrap();
        fs::write(root_path.join("file.txt"), "hello").unwrap();
        let root = Root::open(&root_path).unwrap();
        Fixture {
            _tmp: tmp,
            root_path,
            outside,
            root,
        }
    }

    /// Adds the symlinks that try to lead outside.
    fn with_escape_links(self) -> Fixture {
        let r = &self.root_path;
        symlink(self.outside.join("secret.txt"), r.join("abs_link")).unwrap();
        symlink("../outside/secret.txt", r.join("rel_link")).unwrap();
        symlink(&self.outside, r.join("dir_link")).unwrap();
        symlink("../outside", r.join("rel_dir_link")).unwrap();
        symlink("../../../outside", r.join("sub/deeper/up")).unwrap();
        symlink(self.outside.join("planted.txt"), r.join("dangling_out")).unwrap();
        self
    }

    fn secret_path(&self) -> PathBuf {
        self.outside.join("secret.txt")
    }

    /// The outside directory still holds exactly the secret, unchanged.
    fn assert_outside_untouched(&self) {
        let mut names: Vec<_> = fs::read_dir(&self.outside)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, vec![OsString::from("secret.txt")]);
        assert_eq!(fs::read_to_string(self.secret_path()).unwrap(), SECRET);
    }
}

fn vp(s: &str) -> VirtualPath {
    VirtualPath::root().join(s)
}

async fn read_all(mut f: tokio::fs::File) -> String {
    let mut s = String::new();
    f.read_to_string(&mut s).await.unwrap();
    s
}

fn list(root: &Root, dir: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    root.for_each_entry_blocking(&vp(dir), |e| {
        out.push(e);
        true
    })
    .unwrap();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn find<'a>(entries: &'a [Entry], name: &str) -> &'a Entry {
    entries
        .iter()
        .find(|e| e.name == *name)
        .unwrap_or_else(|| panic!("no entry {name}"))
}

/// Paths that resolve to the outside secret if confinement fails.
const ESCAPING_FILES: &[&str] = &[
    "../outside/secret.txt",
    "../../outside/secret.txt",
    "/abs_link",
    "/rel_link",
    "/dir_link/secret.txt",
    "/rel_dir_link/secret.txt",
    "/sub/deeper/up/secret.txt",
];

/// Directories outside the root, reached through links.
const ESCAPING_DIRS: &[&str] = &["/dir_link", "/rel_dir_link", "/sub/deeper/up"];

#[tokio::test]
async fn dot_dot_and_absolute_paths_stay_inside() {
    let fx = Fixture::new();
    let err = fx.root.metadata(&vp("../../etc/passwd")).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    let err = fx.root.open_read(&vp("/etc/passwd"), 0).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);

    // The host path of the secret, given as an absolute FTP path, maps into the root.
    let host = fx.secret_path().to_str().unwrap().to_owned();
    let err = fx.root.open_read(&vp(&host), 0).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);

    // ".." at the root is the root itself.
    let up = list(&fx.root, "..");
    assert!(up.iter().any(|e| e.name == "file.txt"));
    assert!(up.iter().all(|e| e.name != "outside"));
}

#[tokio::test]
async fn escaping_links_cannot_be_read() {
    let fx = Fixture::new().with_escape_links();
    let outside_ino = fs::metadata(fx.secret_path()).unwrap().ino();
    for path in ESCAPING_FILES {
        let p = vp(path);
        if let Ok(entry) = fx.root.metadata(&p).await {
            // Only the link itself may be described, never its outside target.
            assert_eq!(entry.kind, EntryKind::Symlink, "{path}");
            assert_ne!(entry.ino, outside_ino, "{path}");
        }
        assert!(fx.root.open_read(&p, 0).await.is_err(), "{path}");
    }
    for dir in ESCAPING_DIRS {
        let result = fx.root.for_each_entry_blocking(&vp(dir), |_| true);
        assert!(result.is_err(), "{dir}");
        let err = fx.root.metadata(&vp(dir)).await;
        assert!(err.is_ok_and(|e| e.kind == EntryKind::Symlink), "{dir}");
    }
    fx.assert_outside_untouched();
}

#[tokio::test]
async fn escaping_links_cannot_be_written() {
    let fx = Fixture::new().with_escape_links();
    let targets = ESCAPING_FILES.iter().chain(&[
        "/dir_link/planted.txt",
        "/rel_dir_link/planted.txt",
        "/sub/deeper/up/planted.txt",
        "/dangling_out",
    ]);
    for path in targets {
        let p = vp(path);
        for mode in [
            WriteMode::Truncate,
            WriteMode::Append,
            WriteMode::At(0),
            WriteMode::CreateNew,
        ] {
            if let Ok(mut f) = fx.root.open_write(&p, mode).await {
                // Anything that opens must be inside the root; write and check below.
                f.write_all(b"pwned").await.unwrap();
                f.flush().await.unwrap();
            }
        }
        assert!(fx
            .root
            .set_modified(&p, SystemTime::UNIX_EPOCH)
            .await
            .is_err());
    }
    for dir in ESCAPING_DIRS {
        let p = vp(dir);
        assert!(
            fx.root.create_dir(&p.join("newdir")).await.is_err(),
            "{dir}"
        );
        assert!(
            fx.root.create_temp_beside(&p.join("x")).await.is_err(),
            "{dir}"
        );
        assert!(fx.root.remove_file(&p.join("secret.txt")).await.is_err());
        assert!(fx.root.remove_dir(&p.join("any")).await.is_err());
        let moved = fx.root.rename(&p.join("secret.txt"), &vp("/stolen")).await;
        assert!(moved.is_err(), "{dir}");
        let planted = fx.root.rename(&vp("/file.txt"), &p.join("planted")).await;
        assert!(planted.is_err(), "{dir}");
    }
    fx.assert_outside_untouched();
    assert_eq!(
        fs::read_to_string(fx.root_path.join("file.txt")).unwrap(),
        "hello"
    );
    assert!(!fx.root_path.join("stolen").exists());
    let mtime = fs::metadata(fx.secret_path()).unwrap().modified().unwrap();
    assert_ne!(mtime, SystemTime::UNIX_EPOCH);
}

#[tokio::test]
async fn escaping_links_are_listed_as_symlinks() {
    let fx = Fixture::new().with_escape_links();
    let entries = list(&fx.root, "/");
    for name in [
        "abs_link",
        "rel_link",
        "dir_link",
        "rel_dir_link",
        "dangling_out",
    ] {
        assert_eq!(find(&entries, name).kind, EntryKind::Symlink, "{name}");
    }
    // Relative targets are shown; absolute ones would reveal host paths and are not.
    assert_eq!(
        find(&entries, "rel_link").link_target.as_deref(),
        Some(Path::new("../outside/secret.txt"))
    );
    assert_eq!(find(&entries, "abs_link").link_target, None);
    fx.assert_outside_untouched();
}

#[tokio::test]
async fn removing_an_escaping_link_removes_only_the_link() {
    let fx = Fixture::new().with_escape_links();
    fx.root.remove_file(&vp("/abs_link")).await.unwrap();
    fx.root.remove_file(&vp("/dir_link")).await.unwrap();
    fx.root
        .rename(&vp("/rel_link"), &vp("/renamed_link"))
        .await
        .unwrap();
    assert!(fs::symlink_metadata(fx.root_path.join("abs_link")).is_err());
    assert!(fs::symlink_metadata(fx.root_path.join("renamed_link")).is_ok());
    fx.assert_outside_untouched();
}

#[tokio::test]
async fn symlinks_inside_the_root_are_followed() {
    let fx = Fixture::new();
    let r = &fx.root_path;
    symlink("file.txt", r.join("link_to_file")).unwrap();
    symlink("sub", r.join("link_to_sub")).unwrap();
    symlink("../../file.txt", r.join("sub/deeper/up_file")).unwrap();
    fs::write(r.join("sub/inner.txt"), "inner").unwrap();

    let entry = fx.root.metadata(&vp("/link_to_file")).await.unwrap();
    assert_eq!((entry.kind, entry.size), (EntryKind::File, 5));
    assert_eq!(entry.name, "link_to_file");
    assert_eq!(entry.link_target.as_deref(), Some(Path::new("file.txt")));
    let f = fx
        .root
        .open_read(&vp("/sub/deeper/up_file"), 0)
        .await
        .unwrap();
    assert_eq!(read_all(f).await, "hello");
    let f = fx
        .root
        .open_read(&vp("/link_to_sub/inner.txt"), 0)
        .await
        .unwrap();
    assert_eq!(read_all(f).await, "inner");
    let sub = fx.root.metadata(&vp("/link_to_sub")).await.unwrap();
    assert_eq!(sub.kind, EntryKind::Dir);

    // Listing a subdirectory follows a relative link that climbs but stays inside.
    let deeper = list(&fx.root, "/sub/deeper");
    assert_eq!(find(&deeper, "up_file").kind, EntryKind::File);
    assert_eq!(find(&deeper, "up_file").size, 5);
    let top = list(&fx.root, "/");
    assert_eq!(find(&top, "link_to_sub").kind, EntryKind::Dir);

    let mut f = fx
        .root
        .open_write(&vp("/link_to_sub/new.txt"), WriteMode::CreateNew)
        .await
        .unwrap();
    f.write_all(b"new").await.unwrap();
    f.flush().await.unwrap();
    assert_eq!(fs::read_to_string(r.join("sub/new.txt")).unwrap(), "new");
}

#[tokio::test]
async fn not_found_stays_not_found() {
    let fx = Fixture::new();
    let missing = vp("/nope");
    let kind = |r: io::Result<()>| r.unwrap_err().kind();
    assert_eq!(
        kind(fx.root.metadata(&missing).await.map(drop)),
        io::ErrorKind::NotFound
    );
    assert_eq!(
        kind(fx.root.open_read(&missing, 0).await.map(drop)),
        io::ErrorKind::NotFound
    );
    assert_eq!(
        kind(fx.root.remove_file(&missing).await),
        io::ErrorKind::NotFound
    );
    assert_eq!(
        kind(fx.root.remove_dir(&missing).await),
        io::ErrorKind::NotFound
    );
    assert_eq!(
        kind(fx.root.rename(&missing, &vp("/x")).await),
        io::ErrorKind::NotFound
    );
    assert_eq!(
        kind(fx.root.set_modified(&missing, SystemTime::now()).await),
        io::ErrorKind::NotFound
    );
    let in_missing_dir = vp("/nope/file");
    let r = fx
        .root
        .open_write(&in_missing_dir, WriteMode::Truncate)
        .await;
    assert_eq!(kind(r.map(drop)), io::ErrorKind::NotFound);
    let r = fx.root.for_each_entry_blocking(&missing, |_| true);
    assert_eq!(kind(r), io::ErrorKind::NotFound);
}

#[tokio::test]
async fn write_modes() {
    let fx = Fixture::new();
    let p = vp("/data.bin");
    let path = fx.root_path.join("data.bin");
    let write = |mode: WriteMode, bytes: &'static [u8]| {
        let root = fx.root.clone();
        let p = p.clone();
        async move {
            let mut f = root.open_write(&p, mode).await?;
            f.write_all(bytes).await?;
            f.flush().await
        }
    };

    write(WriteMode::CreateNew, b"0123456789").await.unwrap();
    let err = write(WriteMode::CreateNew, b"x").await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    write(WriteMode::At(4), b"ab").await.unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), "0123ab6789");
    write(WriteMode::At(10), b"!").await.unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), "0123ab6789!");
    let err = write(WriteMode::At(12), b"x").await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    write(WriteMode::Append, b"++").await.unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), "0123ab6789!++");
    write(WriteMode::Truncate, b"short").await.unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), "short");

    // At(n) on a missing file: 0 creates it, past the end is refused without creating.
    let fresh = vp("/fresh.bin");
    fx.root.open_write(&fresh, WriteMode::At(0)).await.unwrap();
    assert!(fx.root_path.join("fresh.bin").is_file());
    let r = fx
        .root
        .open_write(&vp("/never.bin"), WriteMode::At(3))
        .await;
    assert_eq!(r.unwrap_err().kind(), io::ErrorKind::InvalidInput);
    assert!(!fx.root_path.join("never.bin").exists());
    let r = fx.root.open_write(&vp("/sub"), WriteMode::Truncate).await;
    assert_eq!(r.unwrap_err().kind(), io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn open_read_offsets_and_non_files() {
    let fx = Fixture::new();
    let f = fx.root.open_read(&vp("/file.txt"), 2).await.unwrap();
    assert_eq!(read_all(f).await, "llo");
    let f = fx.root.open_read(&vp("/file.txt"), 5).await.unwrap();
    assert_eq!(read_all(f).await, "");
    let err = fx.root.open_read(&vp("/file.txt"), 6).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    let err = fx.root.open_read(&vp("/sub"), 0).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    let err = fx
        .root
        .open_read(&VirtualPath::root(), 0)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);

    // A socket stands in for any non-regular file (FIFOs, devices).
    let _sock = std::os::unix::net::UnixListener::bind(fx.root_path.join("sock")).unwrap();
    let err = fx.root.open_read(&vp("/sock"), 0).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    let err = fx
        .root
        .open_write(&vp("/sock"), WriteMode::Append)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    let entry = fx.root.metadata(&vp("/sock")).await.unwrap();
    assert_eq!(entry.kind, EntryKind::Other);
}

#[tokio::test]
async fn temp_file_then_rename_replaces_target() {
    let fx = Fixture::new();
    fs::write(fx.root_path.join("sub/target.txt"), "old").unwrap();
    let target = vp("/sub/target.txt");
    let (mut f, temp) = fx.root.create_temp_beside(&target).await.unwrap();
    assert_eq!(temp.parent(), target.parent());
    let name = temp.file_name().unwrap();
    assert!(
        name.starts_with(".ftpsd-upload.") && name.ends_with(".part"),
        "{name}"
    );
    f.write_all(b"new contents").await.unwrap();
    f.flush().await.unwrap();
    drop(f);

    fx.root.rename(&temp, &target).await.unwrap();
    let got = fs::read_to_string(fx.root_path.join("sub/target.txt")).unwrap();
    assert_eq!(got, "new contents");
    let names: Vec<_> = list(&fx.root, "/sub").into_iter().map(|e| e.name).collect();
    assert!(names
        .iter()
        .all(|n| !n.as_bytes().starts_with(b".ftpsd-upload.")));

    // Two temporaries beside the same file never collide.
    let (_, a) = fx.root.create_temp_beside(&target).await.unwrap();
    let (_, b) = fx.root.create_temp_beside(&target).await.unwrap();
    assert_ne!(a, b);
}

#[tokio::test]
async fn directories_and_the_root() {
    let fx = Fixture::new();
    let d = vp("/newdir");
    fx.root.create_dir(&d).await.unwrap();
    let err = fx.root.create_dir(&d).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    assert_eq!(fx.root.metadata(&d).await.unwrap().kind, EntryKind::Dir);
    fx.root.remove_dir(&d).await.unwrap();
    assert!(!fx.root_path.join("newdir").exists());

    // Non-empty directories stay.
    assert!(fx.root.remove_dir(&vp("/sub")).await.is_err());
    assert!(fx.root_path.join("sub/deeper").is_dir());

    let root = VirtualPath::root();
    let err = fx.root.remove_dir(&root).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
    assert!(fx.root.rename(&root, &vp("/x")).await.is_err());
    assert!(fx.root.rename(&vp("/file.txt"), &root).await.is_err());
    assert!(fx.root.remove_file(&root).await.is_err());
    assert!(fx.root_path.is_dir());

    let entry = fx.root.metadata(&root).await.unwrap();
    assert_eq!(
        (entry.name.as_os_str(), entry.kind),
        ("/".as_ref(), EntryKind::Dir)
    );
}

#[tokio::test]
async fn set_modified_on_files_and_directories() {
    let fx = Fixture::new();
    let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    fx.root.set_modified(&vp("/file.txt"), t).await.unwrap();
    fx.root.set_modified(&vp("/sub"), t).await.unwrap();
    assert_eq!(
        fx.root.metadata(&vp("/file.txt")).await.unwrap().modified,
        t
    );
    assert_eq!(
        fs::metadata(fx.root_path.join("sub"))
            .unwrap()
            .modified()
            .unwrap(),
        t
    );
}

#[tokio::test]
async fn metadata_fields() {
    let fx = Fixture::new();
    let entry = fx.root.metadata(&vp("/file.txt")).await.unwrap();
    let host = fs::metadata(fx.root_path.join("file.txt")).unwrap();
    assert_eq!(entry.name, "file.txt");
    assert_eq!(entry.kind, EntryKind::File);
    assert_eq!(entry.size, 5);
    assert_eq!(entry.mode, host.mode() & 0o7777);
    assert_eq!((entry.uid, entry.gid), (host.uid(), host.gid()));
    assert_eq!(
        (entry.dev, entry.ino, entry.nlink),
        (host.dev(), host.ino(), 1)
    );
    assert_eq!(entry.link_target, None);
}

#[test]
fn listing_handles_non_utf8_names_and_stops_early() {
    let fx = Fixture::new();
    let raw = OsStr::from_bytes(b"caf\xe9.txt");
    fs::write(fx.root_path.join(raw), "x").unwrap();
    let entries = list(&fx.root, "/");
    let odd = entries.iter().find(|e| e.name == raw).unwrap();
    assert_eq!((odd.kind, odd.size), (EntryKind::File, 1));
    let names: Vec<_> = entries.iter().map(|e| e.name.clone()).collect();
    assert!(!names.iter().any(|n| n == "." || n == ".."));

    let mut seen = 0;
    fx.root
        .for_each_entry_blocking(&VirtualPath::root(), |_| {
            seen += 1;
            false
        })
        .unwrap();
    assert_eq!(seen, 1);
}

#[test]
fn nul_in_a_path_is_an_error_not_a_panic() {
    let fx = Fixture::new();
    assert!(fx.root.metadata_blocking(&vp("/a\0b")).is_err());
    assert!(fx
        .root
        .for_each_entry_blocking(&vp("/a\0b"), |_| true)
        .is_err());
}

#[test]
fn sessions_of_one_root_share_one_handle() {
    let dir = tempfile::tempdir().unwrap();
    let cache = RootCache::default();
    let a = cache.open(dir.path()).unwrap();
    let b = cache.open(dir.path()).unwrap();
    assert!(std::sync::Arc::ptr_eq(&a.dir, &b.dir));
    let weak = a.downgrade();
    drop((a, b));
    // The last session gone, the directory is closed; the next login opens it again.
    assert!(weak.upgrade().is_none());
    assert!(cache.open(dir.path()).is_ok());
}

#[test]
fn a_fifo_swapped_in_for_a_file_is_refused_without_blocking() {
    // The path check happened before the swap: the open itself must not wait for a writer.
    let f = Fixture::new();
    let fifo = f.root_path.join("fifo");
    // mkfifo(1) rather than libc::mkfifo: the crate forbids unsafe code, tests included.
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo failed");
    let root = f.root.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(root.open_regular_blocking(Path::new("fifo")).map(|_| ()));
    });
    let result = rx
        .recv_timeout(std::time::Duration::from_secs(5))
        .expect("opening a FIFO blocked");
    assert_eq!(result.unwrap_err().kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn a_root_moved_away_and_replaced_is_opened_again() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("home");
    fs::create_dir(&path).unwrap();
    fs::write(path.join("old.txt"), "old").unwrap();
    let cache = RootCache::default();
    let held = cache.open(&path).unwrap();
    // While a session holds it, the same directory is shared.
    let again = cache.open(&path).unwrap();
    assert!(Arc::ptr_eq(&held.dir, &again.dir));
    // The administrator archives the directory and creates a new one.
    fs::rename(&path, tmp.path().join("home.archived")).unwrap();
    fs::create_dir(&path).unwrap();
    fs::write(path.join("new.txt"), "new").unwrap();
    let fresh = cache.open(&path).unwrap();
    assert!(fresh
        .metadata_blocking(&VirtualPath::root().join("new.txt"))
        .is_ok());
    assert!(fresh
        .metadata_blocking(&VirtualPath::root().join("old.txt"))
        .is_err());
    // A removed directory is an error, not the old tree.
    fs::rename(&path, tmp.path().join("gone")).unwrap();
    assert!(cache.open(&path).is_err());
}

#[test]
fn leftover_temporary_uploads_are_removed() {
    let f = Fixture::new();
    let leftovers = [
        ".ftpsd-upload.0123456789abcdef.part",
        "sub/.ftpsd-upload.fedcba9876543210.part",
        "sub/deeper/.ftpsd-upload.00000000000000ff.part",
    ];
    for name in leftovers {
        fs::write(f.root_path.join(name), "partial").unwrap();
    }
    // Names that only look similar are the user's files.
    let kept = [
        ".ftpsd-upload.notes.part",
        "ftpsd-upload.0123456789abcdef.part",
    ];
    for name in kept {
        fs::write(f.root_path.join(name), "mine").unwrap();
    }
    assert_eq!(f.root.remove_temp_uploads_blocking().unwrap(), 3);
    for name in leftovers {
        assert!(!f.root_path.join(name).exists(), "{name}");
    }
    for name in kept {
        assert!(f.root_path.join(name).exists(), "{name}");
    }
    assert!(f.root_path.join("file.txt").exists());
}

#[test]
fn syncing_the_directory_of_a_path() {
    let f = Fixture::new();
    f.root
        .sync_dir_of_blocking(&VirtualPath::root().join("file.txt"))
        .unwrap();
    f.root
        .sync_dir_of_blocking(&VirtualPath::root().join("sub/deeper/x"))
        .unwrap();
}
