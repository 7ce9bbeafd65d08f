//! `ftps-bench s3`: ftpsd with its users' files in Garage (a real S3 server on loopback),
//! beside S3 clients talking to the same Garage directly, in one run (docs/storage.md).
//!
//! - Through ftpsd: one upload and one download of `size` over FTPS (the benchmark's rustls
//!   client), with ftpsd's CPU time per GiB.
//! - Through ftpsd with curl over FTPS, as it comes: what an untuned client sees.
//! - Direct: the same bytes with opendal (the crate and the part size and concurrency ftpsd
//!   uses, with no FTP and no TLS in between), and with curl (`--aws-sigv4`, one `PUT` and one
//!   `GET`, as it comes).
//! - Memory: `concurrent` uploads of `concurrent_size` each at once through ftpsd, sampling
//!   its resident memory; an upload holds at most part size × (parts in flight + 1).
//!
//! It asserts nothing about speed; it fails only if a transfer fails.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ftps_testkit::garage::Garage;

use crate::client::{self, Control, Target, TlsVersion, CHUNK};
use crate::plan::{GIB, MIB};
use crate::procfs;
use crate::servers::{self, FtpsdOptions};

/// What `ftps-bench s3` measures.
pub struct S3Plan {
    /// Bytes of the single upload and download.
    pub size: u64,
    /// Uploads at once for the memory figure.
    pub concurrent: usize,
    /// Bytes of each of those uploads.
    pub concurrent_size: u64,
    /// Single transfers are repeated this often; the best counts.
    pub repeats: usize,
    /// The store's part size, bytes (ftpsd's and the direct opendal client's).
    pub part_size: usize,
    /// The store's parts in flight per upload.
    pub parts_in_flight: usize,
}

/// Runs the S3 benchmark; returns the report (markdown).
pub async fn run(ftpsd: &Path, work_dir: &Path, plan: &S3Plan) -> Result<String> {
    let garage = tokio::task::spawn_blocking(Garage::start).await?;
    let dir = servers::tempdir_in(work_dir)?;
    let certs = servers::make_certs(dir.path())?;
    let credentials = dir.path().join("s3-credentials");
    garage.write_credentials_file(&credentials);
    let extra = format!(
        "[storage]\ndefault = \"garage\"\n{}",
        garage.store_table(
            "garage",
            &credentials,
            &format!(
                "part_size = {}\nparts_in_flight = {}",
                plan.part_size, plan.parts_in_flight
            )
        )
    );
    let server = servers::start_ftpsd(
        dir.path(),
        &certs,
        &FtpsdOptions {
            binary: ftpsd.to_path_buf(),
            fresh_users: 0,
            max_sessions: plan.concurrent + 10,
            extra_config: extra,
        },
    )?;
    let pid = server.pid();
    let base = client::base_config(TlsVersion::V13);
    let target = server.target.clone();
    let chunk = pattern(CHUNK);

    // Through ftpsd.
    let (mut up, mut up_cpu, mut down, mut down_cpu) = (0f64, f64::MAX, 0f64, f64::MAX);
    for _ in 0..plan.repeats {
        let mut c = Control::session(&target, &base).await?;
        let cpu0 = procfs::cpu_seconds(pid);
        let t0 = Instant::now();
        c.upload("STOR big.bin", &chunk, plan.size).await?;
        let (rate, cpu) = figures(plan.size, t0, procfs::cpu_seconds(pid) - cpu0);
        (up, up_cpu) = (up.max(rate), up_cpu.min(cpu));
        let mut buf = vec![0u8; CHUNK];
        let cpu0 = procfs::cpu_seconds(pid);
        let t0 = Instant::now();
        let got = c.download("RETR big.bin", &mut buf).await?;
        if got != plan.size {
            bail!("RETR big.bin: {got} bytes, expected {}", plan.size);
        }
        let (rate, cpu) = figures(plan.size, t0, procfs::cpu_seconds(pid) - cpu0);
        (down, down_cpu) = (down.max(rate), down_cpu.min(cpu));
        c.expect("DELE big.bin", 250).await?;
        c.quit().await?;
    }

    // Direct, with opendal as ftpsd uses it.
    let op = garage.operator("/");
    let (mut od_up, mut od_down) = (0f64, 0f64);
    for _ in 0..plan.repeats {
        let t0 = Instant::now();
        let mut w = op
            .writer_with("direct/big.bin")
            .chunk(plan.part_size)
            .concurrent(plan.parts_in_flight)
            .await?;
        let mut left = plan.size;
        while left > 0 {
            let n = left.min(CHUNK as u64) as usize;
            w.write(chunk[..n].to_vec()).await?;
            left -= n as u64;
        }
        w.close().await?;
        od_up = od_up.max(figures(plan.size, t0, 0.0).0);
        let t0 = Instant::now();
        let reader = op.reader("direct/big.bin").await?;
        let mut stream = reader.into_bytes_stream(0..plan.size).await?;
        let mut got = 0u64;
        while let Some(bytes) = futures::StreamExt::next(&mut stream).await {
            got += bytes?.len() as u64;
        }
        if got != plan.size {
            bail!("opendal read {got} bytes, expected {}", plan.size);
        }
        od_down = od_down.max(figures(plan.size, t0, 0.0).0);
        op.delete("direct/big.bin").await?;
    }

    // Direct, with curl as it comes.
    let file = dir.path().join("curl-big.bin");
    servers::write_test_file(&file, plan.size)?;
    let (mut curl_up, mut curl_down) = (0f64, 0f64);
    for _ in 0..plan.repeats {
        let t0 = Instant::now();
        curl(
            &garage,
            &["--upload-file", &file.display().to_string()],
            "direct/curl.bin",
        )?;
        curl_up = curl_up.max(figures(plan.size, t0, 0.0).0);
        let t0 = Instant::now();
        curl(&garage, &["--output", "/dev/null"], "direct/curl.bin")?;
        curl_down = curl_down.max(figures(plan.size, t0, 0.0).0);
    }
    // Through ftpsd, with curl as it comes (FTPS, explicit TLS): the untuned client's view.
    let (mut ftp_curl_up, mut ftp_curl_down) = (0f64, 0f64);
    let port = server.addr.port();
    let url = format!("ftp://localhost:{port}/curl.bin");
    for _ in 0..plan.repeats {
        let t0 = Instant::now();
        curl_ftps(
            &certs.cert,
            &target,
            port,
            &["--upload-file", &file.display().to_string()],
            &url,
        )?;
        ftp_curl_up = ftp_curl_up.max(figures(plan.size, t0, 0.0).0);
        let t0 = Instant::now();
        curl_ftps(&certs.cert, &target, port, &["--output", "/dev/null"], &url)?;
        ftp_curl_down = ftp_curl_down.max(figures(plan.size, t0, 0.0).0);
    }
    let _ = std::fs::remove_file(&file);

    // Memory under concurrent uploads.
    let rss_before = rss_kib(pid);
    let peak = Arc::new(AtomicU64::new(rss_before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let mut sessions = Vec::new();
    for _ in 0..plan.concurrent {
        sessions.push(Control::session(&target, &base).await?);
    }
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for (i, mut c) in sessions.into_iter().enumerate() {
        let (chunk, size) = (chunk.clone(), plan.concurrent_size);
        tasks.push(tokio::spawn(async move {
            c.upload(&format!("STOR many{i}.bin"), &chunk, size).await?;
            c.quit().await
        }));
    }
    for t in tasks {
        t.await??;
    }
    let secs = t0.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    sampler.await?;
    let peak = peak.load(Ordering::Relaxed);
    let aggregate = (plan.concurrent as u64 * plan.concurrent_size) as f64 / MIB as f64 / secs;
    let unfinished = garage.unfinished_uploads().len();
    server.stop();

    let mut out = String::new();
    let size_mib = plan.size / MIB;
    writeln!(
        out,
        "## S3 (Garage on loopback), {size_mib} MiB, best of {}\n",
        plan.repeats
    )?;
    writeln!(
        out,
        "| | upload MiB/s | download MiB/s | ftpsd CPU s/GiB up | down |"
    )?;
    writeln!(out, "|---|---|---|---|---|")?;
    writeln!(
        out,
        "| through ftpsd (FTPS, TLS 1.3) | {up:.0} | {down:.0} | {up_cpu:.2} | {down_cpu:.2} |"
    )?;
    writeln!(
        out,
        "| through ftpsd, curl (FTPS, as it comes) | {ftp_curl_up:.0} | {ftp_curl_down:.0} | | |"
    )?;
    writeln!(
        out,
        "| direct: opendal, {} MiB parts × {} | {od_up:.0} | {od_down:.0} | | |",
        plan.part_size / (1 << 20),
        plan.parts_in_flight
    )?;
    writeln!(
        out,
        "| direct: curl --aws-sigv4 (one PUT, one GET) | {curl_up:.0} | {curl_down:.0} | | |"
    )?;
    writeln!(
        out,
        "| ftpsd ÷ best direct | {:.2} | {:.2} | | |",
        up / od_up.max(curl_up),
        down / od_down.max(curl_down)
    )?;
    writeln!(
        out,
        "| curl: through ftpsd ÷ direct | {:.2} | {:.2} | | |\n",
        ftp_curl_up / curl_up,
        ftp_curl_down / curl_down
    )?;
    writeln!(
        out,
        "{} uploads of {} MiB at once through ftpsd: {aggregate:.0} MiB/s in all; ftpsd \
         resident memory {} MiB before, {} MiB at the peak ({:.1} MiB per upload); \
         unfinished multipart uploads after: {unfinished}.",
        plan.concurrent,
        plan.concurrent_size / MIB,
        rss_before / 1024,
        peak / 1024,
        (peak.saturating_sub(rss_before)) as f64 / 1024.0 / plan.concurrent as f64
    )?;
    if unfinished > 0 {
        bail!("{unfinished} multipart uploads left unfinished\n{out}");
    }
    Ok(out)
}

/// (MiB/s, CPU seconds per GiB) of `bytes` moved since `t0` with `cpu` seconds of CPU.
fn figures(bytes: u64, t0: Instant, cpu: f64) -> (f64, f64) {
    let secs = t0.elapsed().as_secs_f64();
    (bytes as f64 / MIB as f64 / secs, cpu / (bytes as f64 / GIB))
}

/// Runs curl with SigV4 signing against `key` of the bucket.
fn curl(garage: &Garage, args: &[&str], key: &str) -> Result<()> {
    let out = garage
        .signed_curl()
        .arg("--fail")
        .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"])
        .args(args)
        .arg(format!("{}/{}/{key}", garage.endpoint, garage.bucket))
        .output()
        .context("run curl")?;
    if !out.status.success() {
        bail!("curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// curl over explicit FTPS to ftpsd as `target`, trusting the bench's certificate.
fn curl_ftps(cert: &Path, target: &Target, port: u16, args: &[&str], url: &str) -> Result<()> {
    let out = std::process::Command::new("curl")
        .args(["--silent", "--show-error", "--ssl-reqd", "--cacert"])
        .arg(cert)
        .arg("--resolve")
        .arg(format!("localhost:{port}:127.0.0.1"))
        .arg("--user")
        .arg(format!("{}:{}", target.user, target.password))
        .args(args)
        .arg(url)
        .output()
        .context("run curl")?;
    if !out.status.success() {
        bail!(
            "curl {args:?} {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// The resident memory of `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 131 % 251) as u8).collect()
}
