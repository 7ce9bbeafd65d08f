//! `ftps-bench`: runs the same FTPS workloads against ftpsd and, when installed, vsftpd and
//! Pure-FTPd on loopback, plus a raw-TLS ceiling, and prints one markdown table with ratios.
//!
//! See docs/performance.md for the method. `--quick` is a smoke run (tiny sizes) that only
//! checks that every workload completes without errors; it asserts nothing about timings.

mod client;
mod procfs;
mod raw;
mod servers;
mod soak;
mod tickets;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use client::{Control, Target, TlsVersion, CHUNK};
use servers::{Kind, RefUser, Running};

const MIB: u64 = 1 << 20;
const GIB: f64 = (1u64 << 30) as f64;
/// unFTP 0.16's returning-user logins/s from the reference measurements (unFTP is
/// not run by this harness); the returning-user target must beat it.
const UNFTP_LOGINS: f64 = 1174.0;

#[derive(Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    sub: Option<Sub>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Sub {
    /// Idle logged-in sessions held while others transfer without pause, for minutes:
    /// counts errors and samples ftpsd's memory (docs/reliability.md).
    Soak {
        /// Idle logged-in sessions.
        #[arg(long, default_value_t = 10_000)]
        idle: usize,
        /// Sessions transferring at the same time.
        #[arg(long, default_value_t = 200)]
        busy: usize,
        /// How long the transfers go on, in seconds.
        #[arg(long, default_value_t = 600)]
        seconds: u64,
        /// Size of each file, KiB.
        #[arg(long, default_value_t = 256)]
        file_kib: usize,
        /// The ftpsd binary (default: `ftpsd` next to this program).
        #[arg(long, env = "FTPSD_BIN")]
        ftpsd: Option<PathBuf>,
        /// Scratch directory for the server's files.
        #[arg(long, default_value = "/dev/shm")]
        work_dir: PathBuf,
        /// Also write the report to this file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The raw-TLS peer process (started by the benchmark itself).
    TlsPeer {
        #[arg(long)]
        cert: PathBuf,
        #[arg(long)]
        key: PathBuf,
        /// The file sent for a file download request.
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

#[derive(clap::Args, Clone)]
struct RunArgs {
    /// Smoke run: tiny sizes and counts; checks only that every workload completes.
    #[arg(long)]
    quick: bool,
    /// The ftpsd binary (default: `ftpsd` next to this program).
    #[arg(long, env = "FTPSD_BIN")]
    ftpsd: Option<PathBuf>,
    /// Where scripts/reference-servers.sh unpacked the reference servers
    /// (default: `reference-servers` in this program's target directory).
    #[arg(long, env = "FTPS_REFERENCE_SERVERS")]
    reference_dir: Option<PathBuf>,
    /// System account the reference servers log in as.
    #[arg(long, default_value = "ftpstest")]
    ref_user: String,
    /// Its password (a throw-away loopback test account).
    #[arg(long, default_value = "ftpstest-interop-pw")]
    ref_password: String,
    /// Which servers to run (comma-separated: ftpsd, vsftpd, pure-ftpd); default all found.
    #[arg(long, value_delimiter = ',')]
    servers: Vec<String>,
    /// Size of the single-stream transfers, MiB.
    #[arg(long)]
    size_mib: Option<u64>,
    /// Idle sessions opened for ftpsd's memory figures.
    #[arg(long, value_delimiter = ',')]
    sessions: Vec<usize>,
    /// Idle sessions for the reference servers (two processes per session for vsftpd).
    #[arg(long)]
    ref_sessions: Option<usize>,
    /// Stop opening idle sessions when the server's memory (PSS) passes this many MiB.
    #[arg(long, default_value_t = 4096)]
    max_server_mib: u64,
    /// Scratch directory on tmpfs for the servers' files.
    #[arg(long, default_value = "/dev/shm")]
    work_dir: PathBuf,
    /// Run only these workloads (comma-separated: download, upload, parallel, small,
    /// logins, sessions, raw, tickets), e.g. to profile one of them.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Single-stream transfers are repeated this often, keeping the best (default 3).
    #[arg(long)]
    repeats: Option<usize>,
    /// Also write the report to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

struct Plan {
    big: u64,
    parallel: usize,
    parallel_size: u64,
    small_sessions: usize,
    small_iters: usize,
    small_size: u64,
    login_concurrency: usize,
    logins: usize,
    fresh_users: usize,
    sessions: Vec<usize>,
    ref_sessions: usize,
    max_server_mib: u64,
    only: Vec<String>,
    repeats: usize,
    /// Let earlier connections' TIME_WAIT sockets expire before the small-file workload.
    settle: bool,
}

impl Plan {
    fn runs(&self, workload: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|w| w == workload)
    }

    fn new(a: &RunArgs) -> Plan {
        let mut p = if a.quick {
            Plan {
                big: 8 * MIB,
                parallel: 8,
                parallel_size: MIB,
                small_sessions: 2,
                small_iters: 10,
                small_size: 4096,
                login_concurrency: 4,
                logins: 16,
                fresh_users: 4,
                sessions: vec![20],
                ref_sessions: 20,
                max_server_mib: a.max_server_mib,
                only: Vec::new(),
                repeats: 1,
                settle: false,
            }
        } else {
            Plan {
                big: 1024 * MIB,
                parallel: 8,
                parallel_size: 256 * MIB,
                small_sessions: 4,
                small_iters: 500,
                small_size: 4096,
                login_concurrency: 32,
                logins: 640,
                fresh_users: 64,
                sessions: vec![1000, 10_000],
                ref_sessions: 1000,
                max_server_mib: a.max_server_mib,
                only: Vec::new(),
                repeats: 3,
                settle: true,
            }
        };
        if let Some(m) = a.size_mib {
            p.big = m * MIB;
        }
        if !a.sessions.is_empty() {
            p.sessions = a.sessions.clone();
        }
        p.only = a.only.clone();
        if let Some(r) = a.repeats {
            p.repeats = r;
        }
        if let Some(n) = a.ref_sessions {
            p.ref_sessions = n;
        }
        p
    }
}

/// One measured figure.
#[derive(Clone, Debug)]
enum Cell {
    Value(f64),
    Failed(String),
    /// A count short of what was asked, and why.
    Partial(f64, String),
}

impl Cell {
    fn value(&self) -> Option<f64> {
        match self {
            Cell::Value(v) => Some(*v),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Row {
    Down,
    DownCpu,
    /// Raw TLS only: the peer sends a file read from tmpfs instead of one cached buffer.
    DownFile,
    DownFileCpu,
    Up,
    UpCpu,
    Parallel,
    Small13,
    /// The same operations per session in batches: all STORs, one LIST, all RETRs, all DELEs.
    SmallBatched13,
    Small12,
    LoginReturning,
    LoginFirst,
    Mem(usize),
    Held(usize),
    /// PSS with no session open after all the workloads (allocator high-water marks).
    Retained,
}

impl Row {
    fn higher_is_better(self) -> bool {
        !matches!(
            self,
            Row::DownCpu | Row::DownFileCpu | Row::UpCpu | Row::Mem(_) | Row::Retained
        )
    }
}

#[derive(Default)]
struct Column {
    cells: Vec<(Row, Cell)>,
    notes: Vec<String>,
}

impl Column {
    fn get(&self, row: Row) -> Option<&Cell> {
        self.cells.iter().find(|(r, _)| *r == row).map(|(_, c)| c)
    }
    fn set(&mut self, row: Row, cell: Cell) {
        self.cells.push((row, cell));
    }
    fn errors(&self) -> usize {
        self.cells
            .iter()
            .filter(|(_, c)| matches!(c, Cell::Failed(_) | Cell::Partial(..)))
            .count()
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.sub {
        Some(Sub::TlsPeer { cert, key, file }) => {
            return raw::serve(&cert, &key, file.as_deref());
        }
        Some(Sub::Soak {
            idle,
            busy,
            seconds,
            file_kib,
            ftpsd,
            work_dir,
            out,
        }) => {
            procfs::raise_nofile();
            let plan = soak::SoakPlan {
                idle,
                busy,
                duration: Duration::from_secs(seconds),
                file_size: file_kib * 1024,
                sample_every: Duration::from_secs((seconds / 60).clamp(1, 10)),
            };
            let ftpsd = ftpsd.unwrap_or_else(|| exe_dir().join("ftpsd"));
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let report = rt.block_on(soak::run(&ftpsd, &work_dir, &plan))?;
            print!("{report}");
            if let Some(out) = out {
                std::fs::write(&out, &report)
                    .with_context(|| format!("write {}", out.display()))?;
            }
            return Ok(());
        }
        None => {}
    }
    let args = cli.run;
    let nofile = procfs::raise_nofile();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(run(&args, nofile))?;
    print!("{}", report.text);
    if let Some(out) = &args.out {
        std::fs::write(out, &report.text).with_context(|| format!("write {}", out.display()))?;
    }
    if report.errors > 0 {
        bail!("{} workload(s) failed; see the table", report.errors);
    }
    Ok(())
}

struct Report {
    text: String,
    errors: usize,
}

fn exe_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

async fn run(args: &RunArgs, nofile: u64) -> Result<Report> {
    let plan = Plan::new(args);
    let wanted = |name: &str| args.servers.is_empty() || args.servers.iter().any(|s| s == name);
    let ftpsd_bin = args
        .ftpsd
        .clone()
        .unwrap_or_else(|| exe_dir().join("ftpsd"));
    let ref_dir = args
        .reference_dir
        .clone()
        .unwrap_or_else(|| exe_dir().join("../reference-servers"));
    let ref_user = RefUser::lookup(&args.ref_user, &args.ref_password);
    let mut skipped = Vec::new();

    let dir = tempdir_in(&args.work_dir)?;
    let certs = servers::make_certs(dir.path())?;
    let load_before = load_average();
    let started = Instant::now();

    let mut columns: Vec<(String, Column)> = Vec::new();

    // The raw-TLS ceiling, before the servers and again after them; the better of the two
    // counts (the machine is shared, and a busy moment must not lower the ceiling).
    let raw_file = dir.path().join("raw-file.bin");
    if plan.runs("raw") || plan.runs("download") {
        servers::write_test_file(&raw_file, plan.big)?;
    }
    let mut raw_col = raw_ceiling(&plan, &certs, &raw_file).await?;

    if wanted("ftpsd") {
        if !ftpsd_bin.exists() {
            bail!(
                "{} not found: build it with `cargo build --release -p ftpsd` or pass --ftpsd",
                ftpsd_bin.display()
            );
        }
        let max = plan.sessions.iter().copied().max().unwrap_or(0);
        let server = servers::start_ftpsd(
            dir.path(),
            &certs,
            &servers::FtpsdOptions {
                binary: ftpsd_bin.clone(),
                fresh_users: plan.fresh_users,
                max_sessions: max,
            },
        )?;
        let col = bench_server(server, &plan, &plan.sessions, None).await;
        columns.push(("ftpsd".into(), col));
    }
    for (name, kind, rel) in [
        ("vsftpd", Kind::Vsftpd, "vsftpd/usr/sbin/vsftpd"),
        ("pure-ftpd", Kind::PureFtpd, "pure-ftpd/usr/sbin/pure-ftpd"),
    ] {
        if !wanted(name) {
            continue;
        }
        let bin = ref_dir.join(rel);
        let Some(user) = ref_user.as_ref().filter(|_| bin.exists()) else {
            skipped.push(format!(
                "{} not run: {} or the user `{}` is missing (run `sudo bash scripts/reference-servers.sh`)",
                kind.name(),
                bin.display(),
                args.ref_user
            ));
            continue;
        };
        let started = match kind {
            Kind::Vsftpd => servers::start_vsftpd(dir.path(), &certs, &bin, user),
            _ => servers::start_pure_ftpd(dir.path(), &certs, &bin, user, plan.ref_sessions),
        };
        match started {
            Ok(server) => {
                let col = bench_server(
                    server,
                    &plan,
                    &[plan.ref_sessions],
                    Some((user.uid, user.gid)),
                )
                .await;
                columns.push((kind.name().into(), col));
            }
            Err(e) => {
                let mut col = Column::default();
                col.notes
                    .push(format!("{} did not start: {e:#}", kind.name()));
                col.set(Row::Down, Cell::Failed("did not start".into()));
                columns.push((kind.name().into(), col));
            }
        }
    }

    if plan.runs("raw") || plan.runs("download") || plan.runs("upload") {
        let again = raw_ceiling(&plan, &certs, &raw_file).await?;
        raw_col = merge_best(raw_col, again);
    }
    // What TLS 1.3 tickets cost ftpsd, in process (see `tickets`).
    if plan.runs("tickets") {
        let rounds = if args.quick { 20 } else { 2000 };
        let note = match tickets::measure(&certs.cert, &certs.key, rounds) {
            Ok(t) => format!(
                "TLS 1.3 tickets (ftpsd's TLS configuration in this process, median of {rounds}): \
                 a resumed data-connection handshake costs the server {:.0} µs sending no \
                 ticket (as now) and {:.0} µs sending two (downloads before); one ticket on \
                 the control connection costs {:.1} µs and {} bytes on the wire",
                t.handshake_no_ticket.as_secs_f64() * 1e6,
                t.handshake_two_tickets.as_secs_f64() * 1e6,
                t.one_ticket.as_secs_f64() * 1e6,
                t.ticket_bytes
            ),
            Err(e) => format!("TLS 1.3 ticket costs could not be measured: {e:#}"),
        };
        match columns.iter_mut().find(|(name, _)| name == "ftpsd") {
            Some((_, col)) => col.notes.push(note),
            None => raw_col.notes.push(note),
        }
    }
    let elapsed = started.elapsed();
    let load_after = load_average();
    let mut text = String::new();
    // Failures of ftpsd or of the harness itself fail the run; a reference server's failure is
    // shown in the table and under it, but is not ours to fix (vsftpd, for one, now and then
    // ends a session with a plaintext "500 OOPS" on the TLS control connection).
    let errors: usize = columns
        .iter()
        .filter(|(name, _)| name == "ftpsd")
        .map(|(_, c)| c.errors())
        .sum::<usize>()
        + raw_col.errors();
    render(
        &mut text,
        &plan,
        args,
        &columns,
        &raw_col,
        &skipped,
        (&load_before, &load_after),
        elapsed,
        nofile,
        dir.path().parent().unwrap_or(Path::new("?")),
    );
    drop(dir);
    Ok(Report { text, errors })
}

/// The raw-TLS figures: one stream each way (best of `plan.repeats`), one stream of `file`
/// when it exists, and parallel streams.
async fn raw_ceiling(plan: &Plan, certs: &servers::Certs, file: &Path) -> Result<Column> {
    let exe = std::env::current_exe()?;
    let mut raw_col = Column::default();
    let file = Some(file).filter(|f| f.exists());
    let raw_peer = if plan.runs("raw") || plan.runs("download") || plan.runs("upload") {
        Some(raw::Peer::start(&exe, &certs.cert, &certs.key, file))
    } else {
        None
    };
    if let Some(peer) = raw_peer {
        match peer {
            Ok(peer) => {
                let mut streams = vec![
                    (Row::Down, Row::DownCpu, raw::Direction::Download),
                    (Row::Up, Row::UpCpu, raw::Direction::Upload),
                ];
                if file.is_some() {
                    streams.push((
                        Row::DownFile,
                        Row::DownFileCpu,
                        raw::Direction::DownloadFile,
                    ));
                }
                for (row, cpu_row, direction) in streams {
                    match best_of(plan.repeats, || {
                        raw::stream(peer.addr(), peer.pid(), direction, plan.big)
                    })
                    .await
                    {
                        Ok((mibs, cpu)) => {
                            raw_col.set(row, Cell::Value(mibs));
                            raw_col.set(cpu_row, Cell::Value(cpu / (plan.big as f64 / GIB)));
                        }
                        Err(e) => raw_col.set(row, Cell::Failed(format!("{e:#}"))),
                    }
                }
                let t0 = Instant::now();
                let mut tasks = Vec::new();
                for _ in 0..plan.parallel {
                    tasks.push(tokio::spawn(raw::stream(
                        peer.addr(),
                        peer.pid(),
                        raw::Direction::Download,
                        plan.parallel_size,
                    )));
                }
                let mut results = Vec::new();
                for t in tasks {
                    results.push(t.await.map_err(anyhow::Error::from).and_then(|r| r));
                }
                let secs = t0.elapsed().as_secs_f64();
                match results.into_iter().collect::<Result<Vec<_>>>() {
                    Ok(_) => raw_col.set(
                        Row::Parallel,
                        Cell::Value(
                            (plan.parallel as u64 * plan.parallel_size) as f64 / MIB as f64 / secs,
                        ),
                    ),
                    Err(e) => raw_col.set(Row::Parallel, Cell::Failed(format!("{e:#}"))),
                }
                peer.stop();
            }
            Err(e) => raw_col.set(Row::Down, Cell::Failed(format!("raw TLS peer: {e:#}"))),
        }
    }
    Ok(raw_col)
}

/// Per row, the better of two measurements (higher rate, lower CPU).
fn merge_best(a: Column, b: Column) -> Column {
    let mut out = Column::default();
    for (row, cell) in a.cells {
        let better = match (cell.value(), b.get(row).and_then(Cell::value)) {
            (Some(x), Some(y)) if row.higher_is_better() => Cell::Value(x.max(y)),
            (Some(x), Some(y)) => Cell::Value(x.min(y)),
            (None, Some(y)) => Cell::Value(y),
            _ => cell,
        };
        out.set(row, better);
    }
    for (row, cell) in b.cells {
        if out.get(row).is_none() {
            out.set(row, cell);
        }
    }
    out
}

struct TempDir(PathBuf);

impl TempDir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir_in(base: &Path) -> Result<TempDir> {
    // Without tmpfs at the usual place (some containers), the system's temporary directory.
    let fallback = std::env::temp_dir();
    let base = if base.is_dir() { base } else { &fallback };
    let path = base.join(format!("ftps-bench-{}", std::process::id()));
    std::fs::create_dir_all(&path).with_context(|| format!("create {}", path.display()))?;
    // The reference servers' sessions run as an unprivileged user and must reach their roots.
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    Ok(TempDir(path))
}

async fn bench_server(
    server: Running,
    plan: &Plan,
    sessions: &[usize],
    owner: Option<(u32, u32)>,
) -> Column {
    let mut col = Column::default();
    let base13 = client::base_config(TlsVersion::V13);
    let base12 = client::base_config(TlsVersion::V12);
    let target = server.target.clone();
    let pid = server.pid();
    client::DATA_CONNECTIONS.store(0, Ordering::Relaxed);
    client::NOT_RESUMED.store(0, Ordering::Relaxed);
    eprintln!("== {} (pid {pid}, {})", server.kind.name(), server.addr);

    tokio::time::sleep(Duration::from_millis(500)).await;
    let fresh_pss = procfs::pss_kib(pid);
    let setup = server
        .make_file("big.bin", plan.big, owner)
        .and_then(|_| server.make_file("par.bin", plan.parallel_size, owner));
    if let Err(e) = setup {
        col.set(Row::Down, Cell::Failed(format!("setup: {e:#}")));
        server.stop();
        return col;
    }

    // 1. One download.
    if plan.runs("download") {
        match best_of(plan.repeats, || {
            single(&target, &base13, pid, plan.big, true)
        })
        .await
        {
            Ok((mibs, cpu)) => {
                col.set(Row::Down, Cell::Value(mibs));
                col.set(Row::DownCpu, Cell::Value(cpu));
            }
            Err(e) => col.set(Row::Down, Cell::Failed(format!("{e:#}"))),
        }
    }
    // 2. One upload.
    if plan.runs("upload") {
        match best_of(plan.repeats, || {
            single(&target, &base13, pid, plan.big, false)
        })
        .await
        {
            Ok((mibs, cpu)) => {
                col.set(Row::Up, Cell::Value(mibs));
                col.set(Row::UpCpu, Cell::Value(cpu));
            }
            Err(e) => col.set(Row::Up, Cell::Failed(format!("{e:#}"))),
        }
    }
    // 3. Parallel downloads.
    if plan.runs("parallel") {
        col.set(
            Row::Parallel,
            to_cell(parallel(&target, &base13, plan.parallel, plan.parallel_size).await),
        );
    }
    // 4. Small files, TLS 1.3 then 1.2.
    if plan.runs("small") {
        settle_time_wait(plan).await;
        for (row, base, version, order) in [
            (Row::Small13, &base13, "TLS 1.3", SmallOrder::Interleaved),
            (Row::SmallBatched13, &base13, "TLS 1.3", SmallOrder::Batched),
            (Row::Small12, &base12, "TLS 1.2", SmallOrder::Interleaved),
        ] {
            match small_files(&target, base, plan, order).await {
                Ok((rate, latencies)) => {
                    col.set(row, Cell::Value(rate));
                    col.notes.push(format!(
                        "{} small files over {version}, {}, {latencies}",
                        server.kind.name(),
                        order.name()
                    ));
                }
                Err(e) => col.set(row, Cell::Failed(format!("{e:#}"))),
            }
        }
    }
    // 5. Logins: first logins (accounts never used), then the same account again and again.
    if plan.runs("logins") {
        let first: Vec<(String, String)> = if server.kind == Kind::Ftpsd {
            server.first_login_users.clone()
        } else {
            std::iter::repeat_n(server.first_login_users[0].clone(), plan.fresh_users).collect()
        };
        col.set(
            Row::LoginFirst,
            to_cell(logins(&target, &base13, &first, plan.login_concurrency).await),
        );
        let returning: Vec<(String, String)> =
            std::iter::repeat_n((target.user.clone(), target.password.clone()), plan.logins)
                .collect();
        // Warm-up: the account has logged in before the measured logins.
        let _ = logins(
            &target,
            &base13,
            &returning[..plan.login_concurrency.min(returning.len())],
            plan.login_concurrency,
        )
        .await;
        col.set(
            Row::LoginReturning,
            to_cell(logins(&target, &base13, &returning, plan.login_concurrency).await),
        );
    }
    // 6. Idle sessions.
    for &n in sessions.iter().filter(|_| plan.runs("sessions")) {
        match idle_sessions(
            &target,
            &base13,
            pid,
            n,
            plan.login_concurrency,
            plan.max_server_mib * 1024,
        )
        .await
        {
            Ok((per_session, held, note, errors)) => {
                col.set(Row::Mem(n), Cell::Value(per_session));
                col.notes
                    .push(format!("{} at {n} sessions: {note}", server.kind.name()));
                if errors.is_empty() {
                    col.set(Row::Held(n), Cell::Value(held as f64));
                } else {
                    col.set(
                        Row::Held(n),
                        Cell::Partial(
                            held as f64,
                            format!(
                                "{} of {n} sessions failed, first: {}",
                                errors.len(),
                                errors[0]
                            ),
                        ),
                    );
                }
            }
            Err(e) => {
                col.set(Row::Mem(n), Cell::Failed(format!("{e:#}")));
                col.set(Row::Held(n), Cell::Failed("see memory row".into()));
            }
        }
    }
    for (row, cell) in &col.cells {
        if let Cell::Failed(e) | Cell::Partial(_, e) = cell {
            col.notes
                .push(format!("{} {row:?}: {e}", server.kind.name()));
        }
    }
    let end_pss = procfs::pss_kib(pid);
    col.set(Row::Retained, Cell::Value(end_pss as f64 / 1024.0));
    col.notes.push(format!(
        "memory (PSS) {fresh_pss} KiB just after start, {end_pss} KiB at the end with no session open"
    ));
    let not_resumed = client::NOT_RESUMED.load(Ordering::Relaxed);
    if not_resumed > 0 {
        col.notes.push(format!(
            "{not_resumed} of {} data connections did not resume the control TLS session \
             (full handshakes; the server accepted them)",
            client::DATA_CONNECTIONS.load(Ordering::Relaxed)
        ));
    }
    eprintln!("   done");
    if server.kind == Kind::Ftpsd {
        if let Ok(log) = std::fs::read_to_string(&server.log) {
            let errors = log.lines().filter(|l| l.contains("ERROR")).count();
            if errors > 0 {
                col.notes.push(format!("ftpsd logged {errors} ERROR lines"));
            }
        }
    }
    server.stop();
    col
}

fn to_cell(r: Result<f64>) -> Cell {
    match r {
        Ok(v) => Cell::Value(v),
        Err(e) => Cell::Failed(format!("{e:#}")),
    }
}

/// Runs a single-stream measurement `n` times and keeps the highest rate and the lowest CPU
/// figure: on a shared machine, the least disturbed run is the closest to the truth.
async fn best_of<F, Fut>(n: usize, mut measure: F) -> Result<(f64, f64)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(f64, f64)>>,
{
    let mut best: Option<(f64, f64)> = None;
    for _ in 0..n.max(1) {
        let (rate, cpu) = measure().await?;
        best = Some(match best {
            None => (rate, cpu),
            Some((r, c)) => (r.max(rate), c.min(cpu)),
        });
    }
    best.ok_or_else(|| anyhow::anyhow!("no measurement"))
}

/// One transfer of `size` bytes; returns (MiB/s, server CPU seconds per GiB).
async fn single(
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

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 131 % 251) as u8).collect()
}

async fn parallel(
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

/// Waits (at most a TIME_WAIT's 60 s and a little) until few TCP sockets are left in
/// TIME_WAIT. Each small-file run opens 12,000 data connections, and the closed ones hold
/// ephemeral ports for 60 s; with tens of thousands of them the client's `connect` spends
/// most of its time in the kernel looking for a free port (25-31 s of system time in a 27 s
/// run was measured), which slows whichever server happens to run next. Every server's
/// small-file run starts from the same quiet state instead.
async fn settle_time_wait(plan: &Plan) {
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
enum SmallOrder {
    /// STOR, LIST, RETR, DELE of one file, then the next file.
    Interleaved,
    /// All STORs, one LIST, all RETRs, all DELEs: uploads back to back, which is what runs a
    /// client that uses each TLS 1.3 ticket once out of tickets when a server hands out too
    /// few.
    Batched,
}

impl SmallOrder {
    fn name(self) -> &'static str {
        match self {
            SmallOrder::Interleaved => "interleaved",
            SmallOrder::Batched => "batched",
        }
    }
}

/// `sessions` sessions each doing STOR, LIST, RETR, DELE of a small file `iters` times, in
/// `order`. Returns operations per second and a line with each operation's median and
/// 90th-percentile latency, so a server that is slow at one of them shows which, and how many
/// TLS 1.3 tickets the control connections received per data connection.
async fn small_files(
    target: &Target,
    base: &Arc<rustls::ClientConfig>,
    plan: &Plan,
    order: SmallOrder,
) -> Result<(f64, String)> {
    let mut sessions = Vec::new();
    let mut tickets_before = 0;
    for _ in 0..plan.small_sessions {
        let c = Control::session(target, base).await?;
        tickets_before += c.tickets_received();
        sessions.push(c);
    }
    let data_before = client::DATA_CONNECTIONS.load(Ordering::Relaxed);
    let not_resumed_before = client::NOT_RESUMED.load(Ordering::Relaxed);
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
    Ok((ops as f64 / secs, summary))
}

/// Full TLS handshake + USER/PASS + QUIT for each account in `accounts`, `concurrency` at
/// a time; returns logins per second.
async fn logins(
    target: &Target,
    base: &Arc<rustls::ClientConfig>,
    accounts: &[(String, String)],
    concurrency: usize,
) -> Result<f64> {
    let accounts = Arc::new(accounts.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let accounts = accounts.clone();
        let next = next.clone();
        let base = base.clone();
        let addr = target.addr;
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((user, password)) = accounts.get(i) else {
                    return Ok::<_, anyhow::Error>(());
                };
                let mut c = Control::connect_tls(addr, &base).await?;
                c.user_pass(user, password)
                    .await
                    .with_context(|| format!("login {user}"))?;
                c.quit().await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(accounts.len() as f64 / t0.elapsed().as_secs_f64())
}

/// Opens `n` logged-in idle sessions (TLS, PROT P), as many at a time as the login
/// workload (so password hashing peaks no higher than it already did); returns (KiB of server PSS per session,
/// sessions held, a note).
async fn idle_sessions(
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

fn fmt_value(row: Row, v: f64) -> String {
    match row {
        Row::DownCpu | Row::DownFileCpu | Row::UpCpu => format!("{v:.2}"),
        Row::Mem(_) | Row::Retained => format!("{v:.1}"),
        Row::Held(_) => format!("{v:.0}"),
        _ => format!("{v:.0}"),
    }
}

fn fmt_cell(row: Row, c: Option<&Cell>) -> String {
    match c {
        Some(Cell::Value(v)) => fmt_value(row, *v),
        Some(Cell::Failed(_)) => "FAILED".into(),
        Some(Cell::Partial(v, _)) => format!("{} (FAILED)", fmt_value(row, *v)),
        None => "—".into(),
    }
}

#[allow(clippy::too_many_arguments)]
fn render(
    out: &mut String,
    plan: &Plan,
    args: &RunArgs,
    columns: &[(String, Column)],
    raw: &Column,
    skipped: &[String],
    load: (&str, &str),
    elapsed: Duration,
    nofile: u64,
    files_on: &Path,
) {
    let big = if plan.big >= 1 << 30 {
        format!("{} GiB", plan.big >> 30)
    } else {
        format!("{} MiB", plan.big >> 20)
    };
    let mut rows: Vec<(Row, String)> = vec![
        (
            Row::Down,
            format!("1 download of {big}, MiB/s (best of {})", plan.repeats),
        ),
        (Row::DownCpu, "server CPU s per GiB downloaded".into()),
        (
            Row::Up,
            format!("1 upload of {big}, MiB/s (best of {})", plan.repeats),
        ),
        (Row::UpCpu, "server CPU s per GiB uploaded".into()),
        (
            Row::Parallel,
            format!(
                "{} parallel downloads of {} MiB, MiB/s",
                plan.parallel,
                plan.parallel_size >> 20
            ),
        ),
        (
            Row::Small13,
            format!(
                "small files, {} sessions x {} x {} KiB STOR/LIST/RETR/DELE, ops/s, TLS 1.3",
                plan.small_sessions,
                plan.small_iters,
                plan.small_size / 1024
            ),
        ),
        (
            Row::SmallBatched13,
            "same in batches per session (all STOR, LIST, all RETR, all DELE), TLS 1.3".into(),
        ),
        (Row::Small12, "same over TLS 1.2, ops/s".into()),
        (
            Row::LoginReturning,
            format!(
                "logins/s, returning user (full TLS handshake + USER/PASS + QUIT, {} at a time)",
                plan.login_concurrency
            ),
        ),
        (
            Row::LoginFirst,
            format!("logins/s, first login of {} accounts", plan.fresh_users),
        ),
    ];
    let mut all_sessions: Vec<usize> = plan.sessions.clone();
    if !all_sessions.contains(&plan.ref_sessions) {
        all_sessions.push(plan.ref_sessions);
    }
    all_sessions.sort();
    for &n in &all_sessions {
        rows.push((
            Row::Mem(n),
            format!("memory per idle TLS session at {n} sessions, KiB (PSS, all server processes)"),
        ));
    }
    for &n in &all_sessions {
        rows.push((
            Row::Held(n),
            format!("of {n} logged-in TLS sessions, held without error"),
        ));
    }
    rows.push((
        Row::Retained,
        "server memory after all workloads, no session open, MiB (PSS)".into(),
    ));

    let _ = writeln!(
        out,
        "| figure | {} | raw TLS (rustls both ends) | ftpsd vs best reference | target | met |",
        columns
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(out, "|---|{}---|---|---|---|", "---|".repeat(columns.len()));
    let ftpsd = columns.iter().find(|(n, _)| n == "ftpsd").map(|(_, c)| c);
    let refs: Vec<&Column> = columns
        .iter()
        .filter(|(n, _)| n != "ftpsd")
        .map(|(_, c)| c)
        .collect();
    for (row, label) in &rows {
        let cells: Vec<String> = columns
            .iter()
            .map(|(_, c)| fmt_cell(*row, c.get(*row)))
            .collect();
        let raw_cell = match raw.get(*row) {
            Some(c) => {
                let s = fmt_cell(*row, Some(c));
                let from_file = |file_row| {
                    raw.get(file_row)
                        .and_then(Cell::value)
                        .map(|v| fmt_value(file_row, v))
                };
                match row {
                    Row::Down => match from_file(Row::DownFile) {
                        Some(f) => format!("{s}; {f} sending the file"),
                        None => s,
                    },
                    Row::DownCpu => match from_file(Row::DownFileCpu) {
                        Some(f) => format!("{s} (sender); {f} sending the file"),
                        None => format!("{s} (sender)"),
                    },
                    Row::UpCpu => format!("{s} (receiver)"),
                    _ => s,
                }
            }
            None => String::new(),
        };
        let mine = ftpsd.and_then(|c| c.get(*row)).and_then(Cell::value);
        let ref_values: Vec<f64> = refs
            .iter()
            .filter_map(|c| c.get(*row).and_then(Cell::value))
            .collect();
        let best = if row.higher_is_better() {
            ref_values
                .iter()
                .copied()
                .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))))
        } else {
            ref_values
                .iter()
                .copied()
                .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.min(v))))
        };
        let ratio = match (mine, best) {
            (Some(m), Some(b)) if b > 0.0 && !matches!(row, Row::Held(_)) => Some(m / b),
            _ => None,
        };
        let mut ratio_text = ratio
            .map(|r| format!("{r:.2}×"))
            .unwrap_or_else(|| "—".into());
        let raw_value = raw.get(*row).and_then(Cell::value);
        let (target, met): (String, Option<bool>) = match row {
            Row::Down => {
                let of_raw = match (mine, raw_value) {
                    (Some(m), Some(r)) if r > 0.0 => Some(m / r),
                    _ => None,
                };
                if let Some(f) = of_raw {
                    ratio_text += &format!("; {:.0}% of raw TLS", f * 100.0);
                }
                let raw_file = raw.get(Row::DownFile).and_then(Cell::value);
                if let (Some(m), Some(r)) = (mine, raw_file.filter(|r| *r > 0.0)) {
                    ratio_text += &format!(", {:.0}% of raw TLS sending the file", m / r * 100.0);
                }
                let met = match (ratio, of_raw) {
                    (Some(r), Some(f)) => Some(r >= 1.3 && f >= 0.85),
                    _ => None,
                };
                ("≥ 1.3× and ≥ 85% of raw TLS".into(), met)
            }
            Row::DownCpu => ("≤ 0.6×".into(), ratio.map(|r| r <= 0.6)),
            Row::Up => ("≥ 1.3×".into(), ratio.map(|r| r >= 1.3)),
            Row::UpCpu => ("≤ 0.75×".into(), ratio.map(|r| r <= 0.75)),
            Row::Small13 => ("≥ 2×".into(), ratio.map(|r| r >= 2.0)),
            Row::LoginReturning => (
                format!("≥ 3× and > unFTP's {UNFTP_LOGINS:.0} (issue figure)"),
                ratio.zip(mine).map(|(r, m)| r >= 3.0 && m > UNFTP_LOGINS),
            ),
            Row::Mem(_) => ("≤ 16 KiB".into(), mine.map(|m| m <= 16.0)),
            Row::Held(n) if plan.sessions.contains(n) && *n >= 10_000 => (
                "all, no error".into(),
                ftpsd
                    .and_then(|c| c.get(*row))
                    .map(|c| matches!(c, Cell::Value(v) if *v as usize == *n)),
            ),
            _ => (String::new(), None),
        };
        let met_text = match met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None if target.is_empty() => "",
            None => "n/a",
        };
        let _ = writeln!(
            out,
            "| {label} | {} | {raw_cell} | {ratio_text} | {target} | {met_text} |",
            cells.join(" | ")
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Run: `{}`{}; {:.0} s; load average before {} / after {}; {} cores; file-descriptor limit {nofile}; files on {}.",
        std::env::args().collect::<Vec<_>>().join(" ").replace(&*exe_dir().to_string_lossy(), "…"),
        if args.quick { " (quick smoke run: figures are meaningless)" } else { "" },
        elapsed.as_secs_f64(),
        load.0,
        load.1,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        files_on.display(),
    );
    let _ = writeln!(out, "Ratios compare ftpsd with the best reference server in this run (highest rate, lowest CPU or memory).");
    for s in skipped {
        let _ = writeln!(out, "- {s}");
    }
    for (name, c) in columns {
        for n in &c.notes {
            let _ = writeln!(out, "- {name}: {n}");
        }
    }
    for n in &raw.notes {
        let _ = writeln!(out, "- raw TLS: {n}");
    }
    for (row, c) in &raw.cells {
        if let Cell::Failed(e) = c {
            let _ = writeln!(out, "- raw TLS {row:?}: {e}");
        }
    }
}
