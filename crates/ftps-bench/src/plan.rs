//! What a run measures: the command line, and the plan it turns into (sizes, counts and
//! which workloads run).

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

/// One MiB, in bytes.
pub const MIB: u64 = 1 << 20;
/// One GiB, in bytes, for CPU time per GiB.
pub const GIB: f64 = (1u64 << 30) as f64;

// The command line. The types that clap derives from carry no doc comments of their own:
// clap would show them in `--help`.
#[derive(Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub sub: Option<Sub>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Subcommand)]
pub enum Sub {
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
        #[command(flatten)]
        common: SubArgs,
    },
    /// ftpsd with its users' files in Garage (a real S3 server on loopback), beside S3
    /// clients talking to Garage directly, and ftpsd's memory under concurrent uploads
    /// (docs/storage.md).
    S3 {
        /// Smoke run: small sizes; checks only that everything completes.
        #[arg(long)]
        quick: bool,
        /// Size of the single upload and download, MiB.
        #[arg(long, default_value_t = 1024)]
        size_mib: u64,
        /// Uploads at once for the memory figure.
        #[arg(long, default_value_t = 20)]
        concurrent: usize,
        /// Size of each of those uploads, MiB.
        #[arg(long, default_value_t = 1024)]
        concurrent_mib: u64,
        /// Single transfers are repeated this often, keeping the best.
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        /// The store's part size, MiB (ftpsd's default: 8).
        #[arg(long, default_value_t = 8)]
        part_mib: usize,
        /// The store's parts in flight per upload (ftpsd's default: 1).
        #[arg(long, default_value_t = 1)]
        parts_in_flight: usize,
        #[command(flatten)]
        common: SubArgs,
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

/// What the soak and S3 runs take alike.
#[derive(clap::Args, Clone)]
pub struct SubArgs {
    /// The ftpsd binary (default: `ftpsd` next to this program).
    #[arg(long, env = "FTPSD_BIN")]
    pub ftpsd: Option<PathBuf>,
    /// Scratch directory for the server's files.
    #[arg(long, default_value = "/dev/shm")]
    pub work_dir: PathBuf,
    /// Also write the report to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl SubArgs {
    /// The ftpsd binary to run.
    pub fn ftpsd(&self) -> PathBuf {
        self.ftpsd
            .clone()
            .unwrap_or_else(|| exe_dir().join("ftpsd"))
    }
}

#[derive(clap::Args, Clone)]
pub struct RunArgs {
    /// Smoke run: tiny sizes and counts; checks only that every workload completes.
    #[arg(long)]
    pub quick: bool,
    /// The ftpsd binary (default: `ftpsd` next to this program).
    #[arg(long, env = "FTPSD_BIN")]
    pub ftpsd: Option<PathBuf>,
    /// Where scripts/reference-servers.sh unpacked the reference servers
    /// (default: `reference-servers` in this program's target directory).
    #[arg(long, env = "FTPS_REFERENCE_SERVERS")]
    pub reference_dir: Option<PathBuf>,
    /// System account the reference servers log in as.
    #[arg(long, default_value = "ftpstest")]
    pub ref_user: String,
    /// Its password (a throw-away loopback test account).
    #[arg(long, default_value = "ftpstest-interop-pw")]
    pub ref_password: String,
    /// Which servers to run (comma-separated: ftpsd, vsftpd, pure-ftpd); default all found.
    #[arg(long, value_delimiter = ',')]
    pub servers: Vec<String>,
    /// Size of the single-stream transfers, MiB.
    #[arg(long)]
    pub size_mib: Option<u64>,
    /// Idle sessions opened for ftpsd's memory figures.
    #[arg(long, value_delimiter = ',')]
    pub sessions: Vec<usize>,
    /// Idle sessions for the reference servers (two processes per session for vsftpd).
    #[arg(long)]
    pub ref_sessions: Option<usize>,
    /// Stop opening idle sessions when the server's memory (PSS) passes this many MiB.
    #[arg(long, default_value_t = 4096)]
    pub max_server_mib: u64,
    /// Scratch directory on tmpfs for the servers' files.
    #[arg(long, default_value = "/dev/shm")]
    pub work_dir: PathBuf,
    /// Run only these workloads (comma-separated: download, upload, parallel, small,
    /// logins, sessions, clients, scale, raw, tickets), e.g. to profile one of them.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Single-stream transfers are repeated this often, keeping the best (default 3).
    #[arg(long)]
    pub repeats: Option<usize>,
    /// Sessions opened for the scale workload (on ftpsd and Pure-FTPd; vsftpd would fork
    /// two processes per session).
    #[arg(long)]
    pub scale_sessions: Option<usize>,
    /// Of those, how many download without pause.
    #[arg(long)]
    pub scale_busy: Option<usize>,
    /// How long the scale workload's transfers go on, seconds.
    #[arg(long)]
    pub scale_seconds: Option<u64>,
    /// Stop opening scale sessions when the server's memory (PSS) passes this many MiB:
    /// what "the largest count it holds on this machine" means for a forking server.
    #[arg(long, default_value_t = 12_288)]
    pub scale_max_server_mib: u64,
    /// Size of the real clients' single download and upload, MiB.
    #[arg(long)]
    pub client_mib: Option<u64>,
    /// Small files the real clients upload and download.
    #[arg(long)]
    pub client_files: Option<usize>,
    /// Also write the report to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The sizes and counts of one run, and which workloads it runs.
pub struct Plan {
    /// Size of the single-stream transfers, bytes.
    pub big: u64,
    /// Downloads at the same time in the parallel workload.
    pub parallel: usize,
    /// Size of each parallel download, bytes.
    pub parallel_size: u64,
    /// Sessions in the small-file workload.
    pub small_sessions: usize,
    /// Files each of those sessions stores, lists, retrieves and deletes.
    pub small_iters: usize,
    /// Size of each small file, bytes.
    pub small_size: u64,
    /// Logins at a time (also for opening idle sessions).
    pub login_concurrency: usize,
    /// Returning-user logins measured.
    pub logins: usize,
    /// Accounts that log in for the first time.
    pub fresh_users: usize,
    /// Idle-session counts measured on ftpsd.
    pub sessions: Vec<usize>,
    /// Idle sessions measured on the reference servers.
    pub ref_sessions: usize,
    /// Server memory (PSS, MiB) past which no more idle sessions are opened.
    pub max_server_mib: u64,
    /// The workloads to run; empty: all of them.
    pub only: Vec<String>,
    /// How often the single-stream transfers run; the best run counts.
    pub repeats: usize,
    /// Let earlier connections' TIME_WAIT sockets expire before the small-file workload.
    pub settle: bool,
    /// Size of the real clients' single download and upload, bytes.
    pub client_big: u64,
    /// Small files the real clients move.
    pub client_files: usize,
    /// Sessions in the scale workload.
    pub scale_sessions: usize,
    /// Of those, the ones downloading.
    pub scale_busy: usize,
    /// Size of the files they download, KiB.
    pub scale_file_kib: u64,
    /// How long they download, seconds.
    pub scale_seconds: u64,
    /// Server memory (PSS, MiB) past which no more scale sessions are opened.
    pub scale_max_server_mib: u64,
}

impl Plan {
    /// Whether `workload` (a name as `--only` takes it) runs.
    pub fn runs(&self, workload: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|w| w == workload)
    }

    /// The plan for these arguments: the full or the quick sizes, then the overrides.
    pub fn new(a: &RunArgs) -> Plan {
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
                client_big: 8 * MIB,
                client_files: 20,
                scale_sessions: 60,
                scale_busy: 10,
                scale_file_kib: 256,
                scale_seconds: 2,
                scale_max_server_mib: a.scale_max_server_mib,
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
                client_big: 1024 * MIB,
                client_files: 1000,
                scale_sessions: 10_000,
                scale_busy: 500,
                scale_file_kib: 1024,
                scale_seconds: 20,
                scale_max_server_mib: a.scale_max_server_mib,
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
        if let Some(n) = a.scale_sessions {
            p.scale_sessions = n;
        }
        if let Some(n) = a.scale_busy {
            p.scale_busy = n;
        }
        if let Some(s) = a.scale_seconds {
            p.scale_seconds = s;
        }
        if let Some(m) = a.client_mib {
            p.client_big = m * MIB;
        }
        if let Some(n) = a.client_files {
            p.client_files = n;
        }
        p
    }
}

/// The directory this program is in, where `ftpsd` is looked for by default.
pub fn exe_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."))
}
