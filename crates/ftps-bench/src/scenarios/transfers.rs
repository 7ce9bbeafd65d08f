//! Large transfers: one download or upload at a time, and parallel downloads.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Result};

use super::pattern;
use crate::client::{Control, Target, CHUNK};
use crate::plan::{GIB, MIB};
use crate::procfs;

/// One transfer of `size` bytes; returns (MiB/s, server CPU seconds per GiB).
pub async fn single(
    target: &Target,
    base: &Arc<rustls::ClientConfig>,
    pid: u32,
    size: u64,
    download: bool,
) -> Result<(f64, f64)> {
    let mut c = Control::session(target, base).await?;
    let mut buf = vec![0u8; CHUNK];
    let chunk = pattern(CHUNK);
    let cpu0 = procfs::cpu_seconds(pid);
    let t0 = Instant::now();
    if download {
        let got = c.download("RETR big.bin", &mut buf).await?;
        if got != size {
            bail!("RETR big.bin: {got} bytes, expected {size}");
        }
    } else {
        c.upload("STOR up.bin", &chunk, size).await?;
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = procfs::cpu_seconds(pid) - cpu0;
    if !download {
        let r = c.cmd("SIZE up.bin").await?;
        if r.code.0 != 213 || r.text().trim() != size.to_string() {
            bail!("uploaded file: SIZE says {} {}", r.code.0, r.text());
        }
        c.expect("DELE up.bin", 250).await?;
    }
    c.quit().await?;
    Ok((size as f64 / MIB as f64 / secs, cpu / (size as f64 / GIB)))
}

/// `n` sessions downloading `par.bin` (`size` bytes) at the same time; returns MiB/s over
/// all of them.
pub async fn parallel(
    target: &Target,
    base: &Arc<rustls::ClientConfig>,
    n: usize,
    size: u64,
) -> Result<f64> {
    let mut sessions = Vec::new();
    for _ in 0..n {
        sessions.push(Control::session(target, base).await?);
    }
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for mut c in sessions {
        tasks.push(tokio::spawn(async move {
            let mut buf = vec![0u8; CHUNK];
            let got = c.download("RETR par.bin", &mut buf).await?;
            if got != size {
                bail!("RETR par.bin: {got} bytes, expected {size}");
            }
            Ok(c)
        }));
    }
    let mut done = Vec::new();
    for t in tasks {
        done.push(t.await??);
    }
    let secs = t0.elapsed().as_secs_f64();
    for c in done {
        c.quit().await?;
    }
    Ok((n as u64 * size) as f64 / MIB as f64 / secs)
}
