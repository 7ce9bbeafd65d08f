//! Idle sessions: how much server memory each logged-in TLS session holds, and whether all
//! of them are still answering.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::client::{Control, Target};
use crate::procfs;

/// Opens `n` logged-in idle sessions (TLS, PROT P), as many at a time as the login
/// workload (so password hashing peaks no higher than it already did); returns (KiB of server PSS per session,
/// sessions held, a note).
pub async fn idle_sessions(
    target: &Target,
    base: &Arc<rustls::ClientConfig>,
    pid: u32,
    n: usize,
    concurrency: usize,
    max_server_kib: u64,
) -> Result<(f64, usize, String, Vec<String>)> {
    // Let sessions of earlier workloads finish.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pss0 = procfs::pss_kib(pid);
    let t0 = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    // This machine is shared: stop opening sessions if the server grows past the cap.
    let over_cap = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let over_cap = over_cap.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let pss = tokio::task::spawn_blocking(move || procfs::pss_kib(pid))
                    .await
                    .unwrap_or(0);
                if pss > max_server_kib {
                    over_cap.store(true, Ordering::Relaxed);
                    return;
                }
            }
        })
    };
    let mut tasks = Vec::new();
    for _ in 0..concurrency.min(n) {
        let over_cap = over_cap.clone();
        let next = next.clone();
        let target = target.clone();
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            let mut held = Vec::new();
            let mut errors = Vec::new();
            while !over_cap.load(Ordering::Relaxed) && next.fetch_add(1, Ordering::Relaxed) < n {
                match Control::session(&target, &base).await {
                    Ok(c) => held.push(c),
                    Err(e) => errors.push(format!("{e:#}")),
                }
            }
            (held, errors)
        }));
    }
    let mut held = Vec::new();
    let mut errors = Vec::new();
    for t in tasks {
        let (h, e) = t.await?;
        held.extend(h);
        errors.extend(e);
    }
    let open_secs = t0.elapsed().as_secs_f64();
    watcher.abort();
    if over_cap.load(Ordering::Relaxed) {
        let count = held.len();
        drop(held);
        bail!(
            "stopped after {count} of {n} sessions: server memory passed the cap of {} MiB \
             (--max-server-mib)",
            max_server_kib / 1024
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pss1 = procfs::pss_kib(pid);
    let procs = procfs::count(pid);
    let fds = procfs::open_fds(pid);
    // Every session still answers.
    let mut dead = 0;
    for c in held.iter_mut() {
        if c.expect("NOOP", 200).await.is_err() {
            dead += 1;
        }
    }
    let count = held.len();
    drop(held);
    let mut note = format!(
        "{count} held, opened in {open_secs:.1} s, {procs} server processes with {fds} open \
         descriptors, PSS {pss0} -> {pss1} KiB"
    );
    if dead > 0 {
        note += &format!(", {dead} did not answer NOOP");
    }
    if dead > 0 {
        errors.push(format!("{dead} idle sessions did not answer NOOP"));
    }
    // Wait for forking servers to reap their session processes before the next run.
    let deadline = Instant::now() + Duration::from_secs(60);
    while procfs::count(pid) > 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let per = (pss1 as f64 - pss0 as f64) / count.max(1) as f64;
    Ok((per, count - dead, note, errors))
}
