//! Scale under load: many logged-in sessions, a few hundred of them downloading without
//! pause, while the idle ones are probed with NOOP and LIST; the aggregate rate, the probes'
//! 99th-percentile latency and the server's memory.
//!
//! Sessions are opened until the plan's count, the server's memory cap, or the server
//! refusing more (a forking server runs out of processes or memory first): the figures are
//! for as many sessions as the server held.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::client::{Control, Target, CHUNK};
use crate::plan::Plan;
use crate::procfs;

/// Probing tasks: each takes its share of the idle sessions in turn.
const PROBERS: usize = 16;

/// What the scale workload measured.
pub struct ScaleResult {
    /// Sessions held at once (idle and busy).
    pub held: usize,
    /// Aggregate download rate of the busy sessions, MiB/s.
    pub rate: f64,
    /// NOOP latency p99, ms.
    pub noop_p99: f64,
    /// LIST latency p99, ms.
    pub list_p99: f64,
    /// Highest server PSS under load, MiB.
    pub pss_mib: f64,
    /// A line for the notes.
    pub note: String,
    /// Failures of busy sessions, probes or idle sessions lost.
    pub errors: Vec<String>,
}

/// Runs the scale workload; `file` (in the benchmark root) is what the busy sessions
/// download.
pub async fn scale(
    target: &Target,
    base: &Arc<rustls::ClientConfig>,
    pid: u32,
    plan: &Plan,
    file: &str,
    concurrency: usize,
) -> Result<ScaleResult> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pss0 = procfs::pss_kib(pid);
    let t0 = Instant::now();
    let want = plan.scale_sessions.max(plan.scale_busy + PROBERS);
    let cap_kib = plan.scale_max_server_mib * 1024;

    // Open every session, `concurrency` at a time; stop at the cap or when the server
    // refuses sessions.
    let stop = Arc::new(AtomicBool::new(false));
    let stop_reason = Arc::new(Mutex::new(None::<String>));
    let opened = Arc::new(AtomicU64::new(0));
    let watcher = {
        let (stop, stop_reason) = (stop.clone(), stop_reason.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let pss = tokio::task::spawn_blocking(move || procfs::pss_kib(pid))
                    .await
                    .unwrap_or(0);
                if pss > cap_kib {
                    *stop_reason.lock().unwrap() = Some(format!(
                        "server memory passed the cap of {} MiB (--scale-max-server-mib)",
                        cap_kib / 1024
                    ));
                    stop.store(true, Ordering::Relaxed);
                }
            }
        })
    };
    let mut openers = Vec::new();
    for _ in 0..concurrency.min(want) {
        let (stop, stop_reason, opened) = (stop.clone(), stop_reason.clone(), opened.clone());
        let (target, base) = (target.clone(), base.clone());
        openers.push(tokio::spawn(async move {
            let mut held = Vec::new();
            while !stop.load(Ordering::Relaxed)
                && opened.fetch_add(1, Ordering::Relaxed) < want as u64
            {
                match Control::session(&target, &base).await {
                    Ok(c) => held.push(c),
                    Err(e) => {
                        stop_reason
                            .lock()
                            .unwrap()
                            .get_or_insert_with(|| format!("the server refused a session: {e:#}"));
                        stop.store(true, Ordering::Relaxed);
                    }
                }
            }
            held
        }));
    }
    let mut sessions = Vec::new();
    for o in openers {
        sessions.extend(o.await?);
    }
    stop.store(true, Ordering::Relaxed);
    watcher.abort();
    let open_secs = t0.elapsed().as_secs_f64();
    let held = sessions.len();
    let stopped = stop_reason.lock().unwrap().clone();
    let busy_count = plan.scale_busy.min(held.saturating_sub(PROBERS));
    let busy: Vec<Control> = sessions.drain(..busy_count).collect();
    let idle = sessions;

    // Let the openings settle, then load.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pss_idle = procfs::pss_kib(pid);
    let duration = Duration::from_secs(plan.scale_seconds);
    let started = Instant::now();
    let deadline = started + duration;
    let bytes = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    for (i, mut c) in busy.into_iter().enumerate() {
        let (bytes, errors) = (bytes.clone(), errors.clone());
        let line = format!("RETR {file}");
        workers.push(tokio::spawn(async move {
            let mut buf = vec![0u8; CHUNK];
            while Instant::now() < deadline {
                match c.download(&line, &mut buf).await {
                    Ok(n) => {
                        bytes.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(e) => {
                        errors
                            .lock()
                            .unwrap()
                            .push(format!("busy session {i}: {e:#}"));
                        return None;
                    }
                }
            }
            Some(c)
        }));
    }
    // Probers: NOOP and LIST on the idle sessions, each session in turn.
    let mut shares: Vec<Vec<Control>> = (0..PROBERS).map(|_| Vec::new()).collect();
    for (i, c) in idle.into_iter().enumerate() {
        shares[i % PROBERS].push(c);
    }
    let mut probers = Vec::new();
    for (p, mut share) in shares.into_iter().enumerate() {
        let errors = errors.clone();
        probers.push(tokio::spawn(async move {
            let mut noop = Vec::new();
            let mut list = Vec::new();
            let mut buf = vec![0u8; 64 * 1024];
            let mut k = 0;
            while Instant::now() < deadline && !share.is_empty() {
                let at = k % share.len();
                let c = &mut share[at];
                k += 1;
                let t = Instant::now();
                if let Err(e) = c.expect("NOOP", 200).await {
                    errors
                        .lock()
                        .unwrap()
                        .push(format!("NOOP (prober {p}): {e:#}"));
                    break;
                }
                noop.push(t.elapsed());
                let t = Instant::now();
                if let Err(e) = c.download("LIST", &mut buf).await {
                    errors
                        .lock()
                        .unwrap()
                        .push(format!("LIST (prober {p}): {e:#}"));
                    break;
                }
                list.push(t.elapsed());
            }
            (share, noop, list)
        }));
    }
    let mut pss_max = pss_idle;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1000).min(deadline - Instant::now())).await;
        let pss = tokio::task::spawn_blocking(move || procfs::pss_kib(pid)).await?;
        pss_max = pss_max.max(pss);
    }
    let mut busy_back = Vec::new();
    for w in workers {
        if let Some(c) = w.await? {
            busy_back.push(c);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let (mut noop, mut list, mut idle_back) = (Vec::new(), Vec::new(), Vec::new());
    for p in probers {
        let (share, n, l) = p.await?;
        noop.extend(n);
        list.extend(l);
        idle_back.extend(share);
    }
    // Every idle session must still answer.
    let mut lost = 0;
    for c in idle_back.iter_mut() {
        if c.expect("NOOP", 200).await.is_err() {
            lost += 1;
        }
    }
    let mut errors = errors.lock().unwrap().clone();
    if lost > 0 {
        errors.push(format!(
            "{lost} idle sessions did not answer NOOP after the load"
        ));
    }
    let probes = noop.len();
    drop(idle_back);
    drop(busy_back);
    // Let a forking server reap its session processes before whatever runs next.
    let reap = Instant::now() + Duration::from_secs(120);
    while procfs::count(pid) > 2 && Instant::now() < reap {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let p99 = |v: &mut Vec<Duration>| {
        v.sort();
        v.get(((v.len() as f64 * 0.99) as usize).min(v.len().saturating_sub(1)))
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    };
    let mut note = format!(
        "{held} sessions held (opened in {open_secs:.1} s, PSS {} -> {} MiB idle), {busy_count} \
         downloading for {secs:.0} s, {probes} NOOP+LIST probes",
        pss0 / 1024,
        pss_idle / 1024
    );
    if let Some(reason) = stopped {
        note += &format!("; stopped opening sessions: {reason}");
    }
    Ok(ScaleResult {
        held,
        rate: bytes.load(Ordering::Relaxed) as f64 / (1u64 << 20) as f64 / secs,
        noop_p99: p99(&mut noop),
        list_p99: p99(&mut list),
        pss_mib: pss_max as f64 / 1024.0,
        note,
        errors,
    })
}
