//! Fault injection with real processes: the server killed during uploads, a full disk,
//! clients that vanish with a reset, and reloads under load. What must hold each time: no
//! partial file under a final name, no leftover after a start, every other client served,
//! and descriptors and memory back where they were.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::client::Control;
use support::ftpsd;

/// The content of upload `i` (distinct per file, so a mix-up shows).
fn content(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|k| ((k * 31 + i * 7) % 251) as u8).collect()
}

fn temp_files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if e
                .file_name()
                .to_string_lossy()
                .starts_with(".ftpsd-upload.")
            {
                found.push(path);
            }
        }
    }
    found
}

fn open_descriptors(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count()
}

#[tokio::test]
async fn kill_9_during_uploads_leaves_no_partial_file_and_no_leftover() {
    const UPLOADS: usize = 20;
    const SIZE: usize = 4 << 20;
    let mut server = ftpsd().start();
    let mut tasks = Vec::new();
    for i in 0..UPLOADS {
        let mut c = Control::login_default(&server).await;
        tasks.push(tokio::spawn(async move {
            let (first, data) = c.begin(&format!("STOR up{i}.bin")).await;
            assert_eq!(first.code.0, 150);
            let mut data = data.expect("data connection");
            let body = content(i, SIZE);
            // Slowly, so that every upload is under way when the server dies.
            for chunk in body.chunks(64 * 1024) {
                if data.write(chunk).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = data.upload(b"").await;
            let _ = c.try_reply().await;
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !temp_files_under(&server.data_dir()).is_empty(),
        "no upload under way"
    );
    server.signal("KILL");
    for t in tasks {
        let _ = t.await;
    }
    server.restart();
    let data = server.data_dir();
    assert_eq!(
        temp_files_under(&data),
        Vec::<PathBuf>::new(),
        "leftovers after start"
    );
    for i in 0..UPLOADS {
        let path = data.join(format!("up{i}.bin"));
        if let Ok(stored) = fs::read(&path) {
            assert!(
                stored == content(i, SIZE),
                "up{i}.bin is partial: {} bytes",
                stored.len()
            );
        }
    }
    let mut c = Control::login_default(&server).await;
    c.stor("after.bin", b"served").await;
}

/// A tmpfs of `size` mounted at `path`, unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(path: &Path, size: &str) -> SmallDisk {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .expect("mount");
        assert!(status.success(), "mounting a tmpfs needs root (as in CI)");
        SmallDisk(path.to_path_buf())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[tokio::test]
async fn a_full_disk_refuses_the_upload_keeps_nothing_and_serves_the_next_client() {
    let server = ftpsd().start();
    let files = server.add_user("small", "small-password-1", &[]);
    let root = files.local_path().to_path_buf();
    let _disk = SmallDisk::mount(&root, "2m");
    fs::write(root.join("existing.bin"), b"before").unwrap();
    let mut c = Control::login(&server, "small", "small-password-1").await;
    let body = content(1, 8 << 20);
    for (name, target) in [("fresh.bin", "fresh.bin"), ("replace", "existing.bin")] {
        let t = c.transfer(&format!("STOR {target}"), Some(&body)).await;
        let code = t.last.as_ref().map(|r| r.code.0).unwrap_or(t.first.code.0);
        assert!(matches!(code, 452 | 552), "{name}: {t:?}\n{}", c.transcript);
    }
    assert!(
        !root.join("fresh.bin").exists(),
        "a partial upload appeared"
    );
    assert_eq!(fs::read(root.join("existing.bin")).unwrap(), b"before");
    assert_eq!(temp_files_under(&root), Vec::<PathBuf>::new());
    // The same session, and everyone else, go on.
    c.stor("small.bin", b"fits").await;
    let mut other = Control::login_default(&server).await;
    other.stor("elsewhere.bin", b"served").await;
}

#[tokio::test]
async fn clients_that_vanish_with_a_reset_give_everything_back() {
    let server = ftpsd().start();
    fs::write(server.data_dir().join("big.bin"), content(0, 16 << 20)).unwrap();
    // Warm up: the first sessions allocate the runtime's and TLS's lasting state.
    for _ in 0..3 {
        let mut c = Control::login_default(&server).await;
        c.retr("big.bin").await;
        c.expect("QUIT", 221).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = server.pid();
    let fds_before = open_descriptors(pid);
    let rss_before = server.rss_kib();
    for round in 0..3 {
        let mut gone = Vec::new();
        for i in 0..10 {
            let mut c = Control::login_default(&server).await;
            let line = if i % 2 == 0 {
                format!("STOR vanished-{round}-{i}.bin")
            } else {
                "RETR big.bin".to_string()
            };
            let (first, data) = c.begin(&line).await;
            assert_eq!(first.code.0, 150);
            let mut data = data.expect("data connection");
            if i % 2 == 0 {
                data.write(&content(i, 256 * 1024)).await.unwrap();
            } else {
                data.read_some(64 * 1024).await.unwrap();
            }
            gone.push((c, data));
        }
        for (c, data) in gone {
            data.reset();
            c.reset();
        }
    }
    // Every session ends, and with it its descriptors.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut fds = open_descriptors(pid);
    while fds > fds_before + 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        fds = open_descriptors(pid);
    }
    assert!(
        fds <= fds_before + 2,
        "descriptors: {fds_before} before, {fds} after"
    );
    let rss = server.rss_kib();
    assert!(
        rss < rss_before + 32 * 1024,
        "memory: {rss_before} KiB before, {rss} KiB after"
    );
    assert_eq!(temp_files_under(&server.data_dir()), Vec::<PathBuf>::new());
    let names: Vec<String> = fs::read_dir(server.data_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.starts_with("vanished-")),
        "{names:?}"
    );
    let mut c = Control::login_default(&server).await;
    c.expect("NOOP", 200).await;
}

#[tokio::test]
async fn sighup_during_a_hundred_transfers_fails_none() {
    const SESSIONS: usize = 100;
    let server = ftpsd()
        .start_with_config("[limits]\nmax_sessions_per_ip = 200\nmax_sessions_per_user = 200\n");
    let mut sessions = Vec::new();
    for _ in 0..SESSIONS {
        sessions.push(Control::login_default(&server).await);
    }
    let mut tasks = Vec::new();
    for (i, mut c) in sessions.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let body = content(i, 1 << 20);
            let name = format!("hup{i}.bin");
            for _ in 0..3 {
                c.stor(&name, &body).await;
                assert_eq!(c.retr(&name).await, body, "{name}");
            }
            c.expect("QUIT", 221).await;
        }));
    }
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        server.signal("HUP");
    }
    for t in tasks {
        t.await.expect("a transfer failed during reloads");
    }
    let log = server.log_all();
    assert!(
        log.matches("users file reloaded").count() >= 5,
        "{}",
        server.log_text()
    );
    assert!(!log.contains("transfer failed"), "{}", server.log_text());
}
