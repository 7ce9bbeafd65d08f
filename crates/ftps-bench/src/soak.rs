//! The soak run (`ftps-bench soak`): many idle logged-in sessions held open while a smaller
//! number of sessions upload and download without pause, for minutes. It counts every error
//! and samples the server's memory, which must stay flat once warmed up. A benchmark, not a
//! test: it reports, and fails only on errors.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::client::{self, Control, TlsVersion};
use crate::{procfs, servers};

/// What to run.
pub struct SoakPlan {
    /// Idle logged-in sessions held for the whole run.
    pub idle: usize,
    /// Sessions that transfer without pause.
    pub busy: usize,
    /// How long the transfers go on.
    pub duration: Duration,
    /// Size of each file uploaded and downloaded.
    pub file_size: usize,
    /// How often the server's memory is sampled.
    pub sample_every: Duration,
}

/// Runs the soak against a fresh ftpsd and returns the report (markdown).
pub async fn run(ftpsd: &Path, work_dir: &Path, plan: &SoakPlan) -> Result<String> {
    let dir = servers::tempdir_in(work_dir)?;
    let certs = servers::make_certs(dir.path())?;
    let server = servers::start_ftpsd(
        dir.path(),
        &certs,
        &servers::FtpsdOptions {
            binary: ftpsd.to_path_buf(),
            fresh_users: 0,
            max_sessions: plan.idle + plan.busy,
            extra_config: String::new(),
        },
    )?;
    let pid = server.pid();
    let target = server.target.clone();
    let base = client::base_config(TlsVersion::V13);
    let started = Instant::now();
    let pss_start = procfs::pss_kib(pid);

    // The idle sessions, opened 32 at a time.
    let mut idle = Vec::with_capacity(plan.idle);
    let mut open_errors = 0u64;
    while idle.len() < plan.idle {
        let batch = (plan.idle - idle.len()).min(32);
        let opening: Vec<_> = (0..batch)
            .map(|_| {
                let (target, base) = (target.clone(), base.clone());
                tokio::spawn(async move { Control::session(&target, &base).await })
            })
            .collect();
        for o in opening {
            match o.await? {
                Ok(c) => idle.push(c),
                Err(e) => {
                    open_errors += 1;
                    if open_errors > 10 {
                        bail!("cannot open idle sessions: {e:#}");
                    }
                }
            }
        }
    }
    let opened_in = started.elapsed();
    let pss_idle = procfs::pss_kib(pid);

    // The busy sessions: STOR then RETR of their own file, again and again.
    let ops = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let deadline = Instant::now() + plan.duration;
    let mut workers = Vec::new();
    for i in 0..plan.busy {
        let (target, base) = (target.clone(), base.clone());
        let (ops, bytes, errors) = (ops.clone(), bytes.clone(), errors.clone());
        let size = plan.file_size;
        workers.push(tokio::spawn(async move {
            let body: Vec<u8> = (0..size).map(|k| ((k + i) % 251) as u8).collect();
            let mut buf = vec![0u8; client::CHUNK];
            let name = format!("soak-{i}.bin");
            let mut c = match Control::session(&target, &base).await {
                Ok(c) => c,
                Err(e) => {
                    errors.lock().unwrap().push(format!("session {i}: {e:#}"));
                    return;
                }
            };
            while Instant::now() < deadline {
                let round = async {
                    c.upload(&format!("STOR {name}"), &body, size as u64)
                        .await?;
                    let got = c.download(&format!("RETR {name}"), &mut buf).await?;
                    if got != size as u64 {
                        bail!("RETR {name}: {got} bytes, expected {size}");
                    }
                    Ok(())
                };
                match round.await {
                    Ok(()) => {
                        ops.fetch_add(2, Ordering::Relaxed);
                        bytes.fetch_add(2 * size as u64, Ordering::Relaxed);
                    }
                    Err(e) => {
                        errors.lock().unwrap().push(format!("session {i}: {e:#}"));
                        return;
                    }
                }
            }
            let _ = c.quit().await;
        }));
    }

    // Memory samples while they run.
    let mut samples = Vec::new();
    let transfers_started = Instant::now();
    while Instant::now() < deadline {
        tokio::time::sleep(plan.sample_every.min(deadline - Instant::now())).await;
        let pss = tokio::task::spawn_blocking(move || procfs::pss_kib(pid)).await?;
        samples.push((
            transfers_started.elapsed(),
            pss,
            ops.load(Ordering::Relaxed),
        ));
    }
    for w in workers {
        w.await?;
    }
    // The idle sessions must all still be there.
    let mut idle_lost = 0;
    for mut c in idle {
        if c.expect("NOOP", 200).await.is_err() {
            idle_lost += 1;
        }
    }
    server.stop();

    let errors = errors.lock().unwrap().clone();
    let total_ops = ops.load(Ordering::Relaxed);
    let secs = plan.duration.as_secs_f64();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Soak: {} idle logged-in TLS 1.3 sessions (opened in {:.1} s) and {} sessions doing \
         STOR+RETR of {} KiB files for {:.0} s.\n",
        plan.idle,
        opened_in.as_secs_f64(),
        plan.busy,
        plan.file_size / 1024,
        secs
    );
    let _ = writeln!(out, "| figure | value |\n|---|---|");
    let _ = writeln!(
        out,
        "| transfers | {total_ops} ({:.0}/s) |",
        total_ops as f64 / secs
    );
    let _ = writeln!(
        out,
        "| data moved | {:.1} GiB |",
        bytes.load(Ordering::Relaxed) as f64 / (1u64 << 30) as f64
    );
    let _ = writeln!(out, "| errors in the busy sessions | {} |", errors.len());
    let _ = writeln!(out, "| idle sessions lost | {idle_lost} of {} |", plan.idle);
    let _ = writeln!(
        out,
        "| server PSS at start / with the idle sessions | {} / {} MiB |",
        pss_start / 1024,
        pss_idle / 1024
    );
    // Warm-up: the first fifth of the run.
    let warm = samples.len() / 5;
    if let (Some(first), Some(last)) = (samples.get(warm), samples.last()) {
        let max = samples[warm..].iter().map(|s| s.1).max().unwrap_or(0);
        let _ = writeln!(
            out,
            "| server PSS after warm-up ({:.0} s) / at the end / highest after warm-up | {} / {} / {} MiB |",
            first.0.as_secs_f64(),
            first.1 / 1024,
            last.1 / 1024,
            max / 1024
        );
    }
    let _ = writeln!(out, "\nMemory samples (s, PSS MiB, transfers so far):");
    let line: Vec<String> = samples
        .iter()
        .map(|(t, pss, n)| format!("{:.0} {} {}", t.as_secs_f64(), pss / 1024, n))
        .collect();
    let _ = writeln!(out, "{}", line.join("; "));
    for e in errors.iter().take(10) {
        let _ = writeln!(out, "- error: {e}");
    }
    if !errors.is_empty() || idle_lost > 0 {
        print!("{out}");
        bail!("{} errors, {idle_lost} idle sessions lost", errors.len());
    }
    Ok(out)
}
