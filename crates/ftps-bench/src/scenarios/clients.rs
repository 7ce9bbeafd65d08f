//! Real clients, run as they come: curl and lftp as subprocesses, each downloading and
//! uploading one big file and then uploading and downloading many small files in one run,
//! with the wall time of the client process and the server's CPU over it.
//!
//! What each client does (default options but for what FTPS with a self-signed
//! certificate needs):
//! - curl: `curl --ssl-reqd -k -sS --user U:P URL...` (explicit FTPS, EPSV, `PROT P`; one
//!   invocation with many URLs reuses the control connection, and each data connection
//!   resumes its TLS session); the small files are the `url`/`upload-file` or
//!   `url`/`output` pairs of a `-K` config file.
//! - lftp: `set ftp:ssl-force true; set ftp:ssl-protect-data true;
//!   set ssl:verify-certificate no`, then `get`/`put` of the big file and `mirror -R` /
//!   `mirror` of the small files' directory (one file at a time: `mirror:parallel-transfer-count`
//!   is 1 by default; mirror lists the directory first).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::plan::{Plan, GIB};
use crate::procfs;
use crate::report::{Cell, ClientWork, Column, Measure, RealClient, Row};
use crate::servers::{write_test_file, Running};

/// Longest a client run may take before it counts as failed.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(900);

/// Processes of a server with no session open: ftpsd is one; vsftpd and Pure-FTPd run
/// here in the foreground as one listener whose children are the sessions' processes.
const IDLE_PROCESSES: usize = 1;

/// Size of each small file.
const SMALL_SIZE: usize = 4096;

/// curl moves a fifth of the small files: it waits about 200 ms of its own per file against
/// every server (docs/performance.md, *Real clients*), so 1,000 would take minutes per server
/// and measure that wait.
const CURL_FILES_DIVISOR: usize = 5;

/// How many small files `client` moves in a plan.
pub fn small_files_for(client: RealClient, plan: &Plan) -> usize {
    match client {
        RealClient::Curl => (plan.client_files / CURL_FILES_DIVISOR).max(1),
        RealClient::Lftp => plan.client_files,
    }
}

/// Runs every real-client workload against `server` (whose process is `pid`), with the
/// client's files in `local` (tmpfs); sets the figures and notes in `col`. `owner`: the
/// reference servers' system account, which must own the directories they write to.
pub async fn real_clients(
    server: &Running,
    pid: u32,
    plan: &Plan,
    local: &Path,
    owner: Option<(u32, u32)>,
    col: &mut Column,
) {
    if let Err(e) = prepare(server, plan, local, owner) {
        for client in [RealClient::Curl, RealClient::Lftp] {
            col.set(
                Row::Client(client, ClientWork::Download, Measure::Rate),
                Cell::Failed(format!("setup: {e:#}")),
            );
        }
        return;
    }
    for client in [RealClient::Curl, RealClient::Lftp] {
        for work in [
            ClientWork::Download,
            ClientWork::Upload,
            ClientWork::SmallUp,
            ClientWork::SmallDown,
        ] {
            let rate_row = Row::Client(client, work, Measure::Rate);
            match run_one(server, pid, plan, local, client, work).await {
                Ok((rate, cpu, cores)) => {
                    col.set(rate_row, Cell::Value(rate));
                    col.set(Row::Client(client, work, Measure::Cpu), Cell::Value(cpu));
                    if matches!(work, ClientWork::Download | ClientWork::Upload) {
                        col.set(
                            Row::Client(client, work, Measure::ClientCores),
                            Cell::Value(cores),
                        );
                    }
                }
                Err(e) => col.set(rate_row, Cell::Failed(format!("{e:#}"))),
            }
        }
    }
}

/// The client's files: the big file to upload and the small files; and on the server, the
/// big file to download and an empty directory per client for the small files.
fn prepare(server: &Running, plan: &Plan, local: &Path, owner: Option<(u32, u32)>) -> Result<()> {
    std::fs::create_dir_all(local)?;
    let big = local.join("client-big.bin");
    if std::fs::metadata(&big).map_or(true, |m| m.len() != plan.client_big) {
        write_test_file(&big, plan.client_big)?;
    }
    let small = local.join("small");
    if !small.is_dir() {
        std::fs::create_dir_all(&small)?;
        for i in 0..plan.client_files {
            let body: Vec<u8> = (0..SMALL_SIZE).map(|k| ((k + i) % 251) as u8).collect();
            std::fs::write(small.join(format!("f{i:05}.bin")), body)?;
        }
    }
    server.make_file("client-big.bin", plan.client_big, owner)?;
    for client in [RealClient::Curl, RealClient::Lftp] {
        let dir = server.root.join(format!("{}-small", client.name()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))?;
        }
    }
    Ok(())
}

/// One client workload: (MiB/s or files/s, server CPU s/GiB or ms/file, the client's CPU
/// over its wall time).
async fn run_one(
    server: &Running,
    pid: u32,
    plan: &Plan,
    local: &Path,
    client: RealClient,
    work: ClientWork,
) -> Result<(f64, f64, f64)> {
    let name = client.name();
    let remote_small = format!("{name}-small");
    let down_dir = local.join(format!("{name}-down"));
    let _ = std::fs::remove_dir_all(&down_dir);
    std::fs::create_dir_all(&down_dir)?;
    let up_name = format!("{name}-up.bin");
    let _ = std::fs::remove_file(server.root.join(&up_name));
    let count = small_files_for(client, plan);
    let files: Vec<String> = (0..count).map(|i| format!("f{i:05}.bin")).collect();

    let (program, args, config) = match client {
        RealClient::Curl => curl_command(server, local, &down_dir, work, &remote_small, &files),
        RealClient::Lftp => lftp_command(server, local, &down_dir, work, &remote_small),
    };
    let config_path = local.join(format!("{name}.config"));
    std::fs::write(&config_path, config)?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if client == RealClient::Curl {
        cmd.arg("-K").arg(&config_path);
    } else {
        cmd.arg("-f").arg(&config_path);
    }
    // A forking server's session process counts once its parent has reaped it: before the
    // run, wait for the previous run's to go (else its CPU would land in this run's), and
    // after, for this run's.
    settle_processes(pid, IDLE_PROCESSES).await;
    let cpu0 = procfs::cpu_seconds(pid);
    let client_cpu0 = procfs::children_cpu_seconds();
    let t0 = Instant::now();
    let out = tokio::time::timeout(CLIENT_TIMEOUT, cmd.output())
        .await
        .with_context(|| format!("{name}: no end within {CLIENT_TIMEOUT:?}"))?
        .with_context(|| format!("cannot run {program}"))?;
    let secs = t0.elapsed().as_secs_f64();
    // The client has been waited for, so its CPU is in this process's children's.
    let client_cores = (procfs::children_cpu_seconds() - client_cpu0) / secs;
    settle_processes(pid, IDLE_PROCESSES).await;
    let cpu = procfs::cpu_seconds(pid) - cpu0;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: String = err.lines().rev().take(3).collect::<Vec<_>>().join(" / ");
        bail!("{name} exited with {}: {tail}", out.status);
    }
    // The client said it succeeded: check that it did.
    match work {
        ClientWork::Download => {
            let got = std::fs::metadata(down_dir.join("client-big.bin")).map_or(0, |m| m.len());
            if got != plan.client_big {
                bail!("{name} downloaded {got} bytes of {}", plan.client_big);
            }
        }
        ClientWork::Upload => {
            let got = std::fs::metadata(server.root.join(&up_name)).map_or(0, |m| m.len());
            if got != plan.client_big {
                bail!("{name} uploaded {got} bytes of {}", plan.client_big);
            }
        }
        ClientWork::SmallUp => {
            let n = count_files(&server.root.join(&remote_small), SMALL_SIZE as u64);
            if n != count {
                bail!("{name} uploaded {n} complete files of {count}");
            }
        }
        ClientWork::SmallDown => {
            let n = count_files(&down_dir, SMALL_SIZE as u64);
            if n != count {
                bail!("{name} downloaded {n} complete files of {count}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&down_dir);
    let _ = std::fs::remove_file(server.root.join(&up_name));
    Ok(match work {
        ClientWork::Download | ClientWork::Upload => (
            plan.client_big as f64 / (1u64 << 20) as f64 / secs,
            cpu / (plan.client_big as f64 / GIB),
            client_cores,
        ),
        ClientWork::SmallUp | ClientWork::SmallDown => (
            count as f64 / secs,
            cpu * 1000.0 / count.max(1) as f64,
            client_cores,
        ),
    })
}

/// Waits (10 s at most) until the server's process tree is back to `idle` processes, so
/// that every session process that ended has been reaped and its CPU counted in its parent.
async fn settle_processes(pid: u32, idle: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while procfs::count(pid) > idle && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Regular files of `size` bytes directly in `dir`, searched recursively one level (lftp's
/// `mirror` puts the files under the directory's own name).
fn count_files(dir: &Path, size: u64) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut n = 0;
    for e in entries.flatten() {
        let Ok(meta) = e.metadata() else { continue };
        if meta.is_file() && meta.len() == size {
            n += 1;
        } else if meta.is_dir() {
            n += count_files(&e.path(), size);
        }
    }
    n
}

/// The URL of `name` in `dir` (relative to the benchmark root) on `server`. The reference
/// servers' benchmark root is an absolute path (`%2F`: curl's way to start at `/`).
fn url(server: &Running, dir: &str, name: &str) -> String {
    let mut path = String::new();
    if !server.target.dir.is_empty() {
        path.push_str("/%2F");
        path.push_str(server.target.dir.trim_start_matches('/'));
    }
    if !dir.is_empty() {
        path.push('/');
        path.push_str(dir);
    }
    format!(
        "ftp://{}:{}{path}/{name}",
        server.addr.ip(),
        server.addr.port()
    )
}

/// curl's arguments and its `-K` config file for `work`.
fn curl_command(
    server: &Running,
    local: &Path,
    down_dir: &Path,
    work: ClientWork,
    remote_small: &str,
    files: &[String],
) -> (&'static str, Vec<String>, String) {
    let args = vec![
        "--ssl-reqd".to_string(),
        "-k".into(),
        "-sS".into(),
        "--user".into(),
        format!("{}:{}", server.target.user, server.target.password),
    ];
    let q = |p: &Path| p.display().to_string().replace('"', "\\\"");
    let mut config = String::new();
    match work {
        ClientWork::Download => {
            let _ = writeln!(config, "url = \"{}\"", url(server, "", "client-big.bin"));
            let _ = writeln!(
                config,
                "output = \"{}\"",
                q(&down_dir.join("client-big.bin"))
            );
        }
        ClientWork::Upload => {
            let _ = writeln!(config, "url = \"{}\"", url(server, "", "curl-up.bin"));
            let _ = writeln!(
                config,
                "upload-file = \"{}\"",
                q(&local.join("client-big.bin"))
            );
        }
        ClientWork::SmallUp => {
            for f in files {
                let _ = writeln!(config, "url = \"{}\"", url(server, remote_small, f));
                let _ = writeln!(
                    config,
                    "upload-file = \"{}\"",
                    q(&local.join("small").join(f))
                );
            }
        }
        ClientWork::SmallDown => {
            for f in files {
                let _ = writeln!(config, "url = \"{}\"", url(server, remote_small, f));
                let _ = writeln!(config, "output = \"{}\"", q(&down_dir.join(f)));
            }
        }
    }
    ("curl", args, config)
}

/// lftp's arguments and its script for `work`.
fn lftp_command(
    server: &Running,
    local: &Path,
    down_dir: &Path,
    work: ClientWork,
    remote_small: &str,
) -> (&'static str, Vec<String>, String) {
    let q = |p: &Path| quote_lftp(&p.display().to_string());
    let mut script = format!(
        "set ftp:ssl-force true\nset ftp:ssl-protect-data true\n\
         set ssl:verify-certificate no\nset net:max-retries 1\n\
         open -u {},{} -p {} {}\n",
        quote_lftp(&server.target.user),
        quote_lftp(&server.target.password),
        server.addr.port(),
        server.addr.ip()
    );
    if !server.target.dir.is_empty() {
        let _ = writeln!(script, "cd {}", quote_lftp(&server.target.dir));
    }
    let small: PathBuf = local.join("small");
    match work {
        ClientWork::Download => {
            let _ = writeln!(
                script,
                "get client-big.bin -o {}",
                q(&down_dir.join("client-big.bin"))
            );
        }
        ClientWork::Upload => {
            let _ = writeln!(
                script,
                "put {} -o lftp-up.bin",
                q(&local.join("client-big.bin"))
            );
        }
        ClientWork::SmallUp => {
            let _ = writeln!(script, "mirror -R {} {remote_small}", q(&small));
        }
        ClientWork::SmallDown => {
            let _ = writeln!(script, "mirror {remote_small} {}", q(down_dir));
        }
    }
    ("lftp", Vec::new(), script)
}

/// A word for an lftp script, in double quotes.
fn quote_lftp(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
