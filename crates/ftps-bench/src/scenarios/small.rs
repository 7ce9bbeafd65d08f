//! Small files: sessions storing, listing, retrieving and deleting files of a few KiB, where
//! the cost of each data connection (and of its TLS handshake) dominates.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::pattern;
use crate::client::{self, Control, Target};
use crate::plan::Plan;
use crate::procfs;

/// Waits (at most a TIME_WAIT's 60 s and a little) until few TCP sockets are left in
/// TIME_WAIT. Each small-file run opens 12,000 data connections, and the closed ones hold
/// ephemeral ports for 60 s; with tens of thousands of them the client's `connect` spends
/// most of its time in the kernel looking for a free port (25-31 s of system time in a 27 s
/// run was measured), which slows whichever server happens to run next. Every server's
/// small-file run starts from the same quiet state instead.
pub async fn settle_time_wait(plan: &Plan) {
    if !plan.settle {
        return;
    }
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(65) {
        match procfs::time_wait_sockets() {
            Some(n) if n > 1000 => tokio::time::sleep(Duration::from_secs(1)).await,
            _ => break,
        }
    }
    let waited = started.elapsed().as_secs();
    if waited > 0 {
        eprintln!("   waited {waited} s for TIME_WAIT sockets to expire");
    }
}

/// The small-file operations, in the order each iteration does them.
const SMALL_OPS: [&str; 4] = ["STOR", "LIST", "RETR", "DELE"];

/// In which order a session does its small-file operations.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SmallOrder {
    /// STOR, LIST, RETR, DELE of one file, then the next file.
    Interleaved,
    /// All STORs, one LIST, all RETRs, all DELEs: uploads back to back, which is what runs a
    /// client that uses each TLS 1.3 ticket once out of tickets when a server hands out too
    /// few.
    Batched,
}

impl SmallOrder {
    /// How the notes call this order.
    pub fn name(self) -> &'static str {
        match self {
            SmallOrder::Interleaved => "interleaved",
            SmallOrder::Batched => "batched",
        }
    }
}

/// What one small-file run measured.
pub struct SmallResult {
    /// Operations per second.
    pub rate: f64,
    /// Server CPU (its whole process tree) per operation, milliseconds.
    pub cpu_ms: f64,
    /// Each operation's median and 90th-percentile latency, and the TLS notes.
    pub summary: String,
}

/// `sessions` sessions each doing STOR, LIST, RETR, DELE of a small file `iters` times, in
/// `order`, against the server whose process is `pid`. Returns operations per second, the
/// server's CPU per operation, and a line with each operation's median and 90th-percentile
/// latency, so a server that is slow at one of them shows which, and how many TLS 1.3
/// tickets the control connections received per data connection.
pub async fn small_files(
    target: &Target,
    base: &Arc<rustls::ClientConfig>,
    pid: u32,
    plan: &Plan,
    order: SmallOrder,
) -> Result<SmallResult> {
    let mut sessions = Vec::new();
    let mut tickets_before = 0;
    for _ in 0..plan.small_sessions {
        let c = Control::session(target, base).await?;
        tickets_before += c.tickets_received();
        sessions.push(c);
    }
    let data_before = client::DATA_CONNECTIONS.load(Ordering::Relaxed);
    let not_resumed_before = client::NOT_RESUMED.load(Ordering::Relaxed);
    let cpu0 = procfs::cpu_seconds(pid);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for (i, mut c) in sessions.into_iter().enumerate() {
        let iters = plan.small_iters;
        let size = plan.small_size;
        tasks.push(tokio::spawn(async move {
            let body = pattern(size as usize);
            let mut buf = vec![0u8; 64 * 1024];
            let mut lat: [Vec<Duration>; 4] = Default::default();
            // (operation, file) in the session's order.
            let steps: Vec<(usize, usize)> = match order {
                SmallOrder::Interleaved => (0..iters)
                    .flat_map(|k| (0..4).map(move |op| (op, k)))
                    .collect(),
                SmallOrder::Batched => (0..iters)
                    .map(|k| (0, k))
                    .chain(std::iter::once((1, 0)))
                    .chain((0..iters).map(|k| (2, k)))
                    .chain((0..iters).map(|k| (3, k)))
                    .collect(),
            };
            for (op, k) in steps {
                let name = format!("s{i}-{k}.bin");
                let t = Instant::now();
                match op {
                    0 => c.upload(&format!("STOR {name}"), &body, size).await?,
                    1 => {
                        c.download("LIST", &mut buf).await?;
                    }
                    2 => {
                        let got = c.download(&format!("RETR {name}"), &mut buf).await?;
                        if got != size {
                            bail!("RETR {name}: {got} bytes, expected {size}");
                        }
                    }
                    _ => {
                        c.expect(&format!("DELE {name}"), 250).await?;
                    }
                }
                lat[op].push(t.elapsed());
            }
            Ok((c, lat))
        }));
    }
    let mut done = Vec::new();
    let mut lat: [Vec<Duration>; 4] = Default::default();
    let mut ops = 0;
    for t in tasks {
        let (c, l) = t.await??;
        for (all, one) in lat.iter_mut().zip(l) {
            ops += one.len();
            all.extend(one);
        }
        done.push(c);
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = procfs::cpu_seconds(pid) - cpu0;
    let tickets = done.iter().map(Control::tickets_received).sum::<u32>() - tickets_before;
    for c in done {
        c.quit().await?;
    }
    let mut summary = String::from("ms median/p90:");
    for (op, l) in SMALL_OPS.iter().zip(lat.iter_mut()) {
        l.sort();
        let at = |q: f64| {
            l.get(((l.len() as f64 * q) as usize).min(l.len().saturating_sub(1)))
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        summary.push_str(&format!(" {op} {:.2}/{:.2}", at(0.5), at(0.9)));
    }
    let data = client::DATA_CONNECTIONS.load(Ordering::Relaxed) - data_before;
    let not_resumed = client::NOT_RESUMED.load(Ordering::Relaxed) - not_resumed_before;
    if not_resumed > 0 {
        summary.push_str(&format!(
            "; {not_resumed} of {data} data connections not resumed"
        ));
    }
    if tickets > 0 {
        summary.push_str(&format!(
            "; {tickets} TLS 1.3 tickets on the control connections for {data} data connections"
        ));
    }
    Ok(SmallResult {
        rate: ops as f64 / secs,
        cpu_ms: cpu * 1000.0 / ops.max(1) as f64,
        summary,
    })
}
