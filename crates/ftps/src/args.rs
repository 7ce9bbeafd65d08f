//! The command line: global options and subcommands, as clap definitions only. What each
//! subcommand does is in `commands`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// A command-line FTPS client that works with strict servers.
///
/// URLs: ftps://[user@]host[:port]/path is implicit TLS (port 990), ftpes://... or --explicit
/// is explicit TLS (AUTH TLS, port 21; also what ftps:// on port 21 means). Paths are
/// absolute; /~/path is relative to the login directory. Passwords come from
/// --password-stdin, $FTPS_PASSWORD, ~/.netrc or a prompt.
#[derive(Parser, Debug)]
#[command(name = "ftps", version, about, long_about)]
pub struct Cli {
    #[command(flatten)]
    pub opts: Opts,
    #[command(subcommand)]
    pub command: Cmd,
}

/// Options that apply to every subcommand, wherever they are on the line.
#[derive(Args, Debug, Clone)]
pub struct Opts {
    /// Use explicit TLS (AUTH TLS) whatever the URL scheme.
    #[arg(long, global = true)]
    pub explicit: bool,
    /// Active mode: the server connects back to us (EPRT/PORT) instead of EPSV/PASV.
    #[arg(long, global = true)]
    pub active: bool,
    /// Trust the CA certificates in this PEM file instead of the system roots.
    #[arg(long, global = true, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Trust exactly the server certificate with this SHA-256 fingerprint (AB:CD:...).
    #[arg(long, global = true, value_name = "FINGERPRINT")]
    pub pin_sha256: Option<String>,
    /// Do not verify the server certificate at all (prints a warning; for testing only).
    #[arg(long, global = true)]
    pub insecure: bool,
    /// Client certificate (PEM) to present.
    #[arg(long, global = true, value_name = "FILE", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// Private key (PEM) of the client certificate.
    #[arg(long, global = true, value_name = "FILE", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// Offer TLS 1.2 only.
    #[arg(long, global = true)]
    pub tls12: bool,
    /// Read the password from standard input.
    #[arg(long, global = true)]
    pub password_stdin: bool,
    /// netrc file to read credentials from (default: $NETRC or ~/.netrc).
    #[arg(long, global = true, value_name = "FILE")]
    pub netrc_file: Option<PathBuf>,
    /// Do not read any netrc file.
    #[arg(long, global = true)]
    pub no_netrc: bool,
    /// Seconds to wait for a connection or for the server before giving up.
    #[arg(long, global = true, default_value_t = 60, value_name = "SECONDS")]
    pub timeout: u64,
    /// Machine-readable JSON on standard output (errors as JSON on standard error).
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress bars or informational messages.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Show the FTP conversation (-vv for TLS details).
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(flatten)]
    pub transfer: TransferOpts,
}

/// Bandwidth and retry options of the transfer commands (get, put, cat, mirror).
#[derive(Args, Debug, Clone, Default)]
pub struct TransferOpts {
    /// Limit file data to this many bytes per second, all connections together: a number
    /// with an optional binary suffix K, M or G (512K, 10M, 1.5M).
    #[arg(long, global = true, value_name = "RATE", value_parser = parse_rate)]
    pub limit_rate: Option<u64>,
    /// Retry a transfer this many times after a lost connection, a timeout or a 4xx reply
    /// (never after a 5xx), waiting 1 s, 2 s, 4 s... (at most 30 s, with jitter) and
    /// continuing where it stopped.
    #[arg(long, global = true, default_value_t = 0, value_name = "N")]
    pub retries: u32,
}

fn parse_rate(text: &str) -> Result<u64, String> {
    ftps_client::rate::parse_size(text).map_err(|e| e.to_string())
}

/// Selection and comparison options of `mirror`.
#[derive(Args, Debug, Clone, Default)]
pub struct MirrorRuleOpts {
    /// Take entries matching this glob (repeatable; gitignore-like, the last matching
    /// --include/--exclude wins; an --include first means only what is included).
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Leave out entries matching this glob (repeatable; PATTERN/ matches directories only,
    /// which are then not descended into; a pattern with / is anchored at the root).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Compare files of equal size by SHA-256 where the server offers HASH, else by size and
    /// modification time (the summary says which).
    #[arg(long)]
    pub checksum: bool,
    /// Only source files modified at or after this: a date (2024-05-01, 2024-05-01T12:00:00Z),
    /// an age (90m, 36h, 7d) or a local file whose modification time is used.
    #[arg(long, value_name = "WHEN")]
    pub newer_than: Option<String>,
}

/// The subcommands and their own arguments.
#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// List a directory, or the entries matching a wildcard pattern.
    Ls {
        /// ftps://host/dir, or ftps://host/dir/PATTERN with *, ? or [...] in the last part
        /// (quote it so the shell leaves it alone).
        url: String,
        /// Long format: type, size, modification time, name.
        #[arg(long, short)]
        long: bool,
    },
    /// Download a file, or every file matching a wildcard pattern.
    Get {
        /// ftps://host/path/file, or ftps://host/path/PATTERN with *, ? or [...] in the last
        /// part (quote it so the shell leaves it alone).
        url: String,
        /// Local file or directory (default: the remote file's name; a directory for a pattern).
        local: Option<PathBuf>,
        /// Continue a partial download (REST).
        #[arg(long = "continue", short = 'c')]
        resume: bool,
        /// Fetch each file over N connections at once, each a range (REST); assembled in
        /// .NAME.ftps-part and renamed when complete. One stream where the server lacks
        /// REST STREAM or SIZE.
        #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
        segments: u16,
    },
    /// Upload a file.
    Put {
        /// Local file.
        local: PathBuf,
        /// ftps://host/path/file (a URL ending in / keeps the local name).
        url: String,
        /// Continue a partial upload (REST).
        #[arg(long = "continue", short = 'c')]
        resume: bool,
    },
    /// Write a remote file to standard output.
    Cat {
        /// ftps://host/path/file
        url: String,
    },
    /// Delete a remote file, or every file matching a wildcard pattern.
    Rm {
        /// ftps://host/path/file, or ftps://host/path/PATTERN (quoted).
        url: String,
    },
    /// Create a remote directory.
    Mkdir {
        /// ftps://host/path/dir
        url: String,
        /// Create parents too; no error if it exists.
        #[arg(long, short)]
        parents: bool,
    },
    /// Remove an empty remote directory.
    Rmdir {
        /// ftps://host/path/dir
        url: String,
    },
    /// Rename or move a remote file or directory.
    Mv {
        /// ftps://host/path/old
        url: String,
        /// New path: absolute, or relative to the old one's directory.
        new_path: String,
    },
    /// Show size, type and modification time of a remote path.
    Stat {
        /// ftps://host/path
        url: String,
    },
    /// SHA-256 of a remote file: by the server (HASH) where it offers SHA-256, else computed
    /// here while streaming the file.
    Hash {
        /// ftps://host/path/file
        url: String,
        /// Always download and compute it here (checks the whole transfer path).
        #[arg(long)]
        download: bool,
    },
    /// Mirror a directory tree: upload (local -> URL) or download (URL -> local).
    Mirror {
        /// Source: a local directory or a URL.
        source: String,
        /// Destination: a URL or a local directory.
        destination: String,
        /// Transfers at once (one connection each).
        #[arg(long, short = 'P', default_value_t = 4)]
        parallel: usize,
        /// Delete what the source does not have.
        #[arg(long)]
        delete: bool,
        /// Only show what would be done.
        #[arg(long, short = 'n')]
        dry_run: bool,
        #[command(flatten)]
        rules: MirrorRuleOpts,
    },
    /// Interactive shell: ls, cd, pwd, get, put, mget, mput, rm, mkdir, rmdir, mv, lcd, !cmd,
    /// with history and tab completion of remote paths (`help` lists the commands).
    Shell {
        /// ftpes://user@host/dir to connect to and start in.
        url: String,
    },
    /// Run shell commands from a file or standard input, one a line (`#` comments); the
    /// first failed command stops with its exit code.
    Batch {
        /// ftpes://user@host/dir to connect to and start in.
        url: String,
        /// The commands; `-` or none: standard input.
        file: Option<PathBuf>,
        /// Run every command even after failures; exit with the first failure's code.
        #[arg(long, short = 'k')]
        continue_on_error: bool,
    },
    /// Generate manual pages or shell completions.
    #[command(subcommand, hide = true)]
    Generate(crate::generate::GenerateCmd),
}

/// Where each `mirror --include` and `--exclude` value was on the command line, which
/// decides their order as rules (clap keeps the two options' values apart).
#[derive(Clone, Debug, Default)]
pub struct RuleIndices {
    pub include: Vec<usize>,
    pub exclude: Vec<usize>,
}

static RULE_INDICES: std::sync::OnceLock<RuleIndices> = std::sync::OnceLock::new();

/// Records the rule positions from the parsed command line (once, at start).
pub fn record_rule_indices(matches: &clap::ArgMatches) {
    let positions = |name: &str| {
        matches
            .subcommand_matches("mirror")
            .and_then(|m| m.indices_of(name))
            .map(|i| i.collect())
            .unwrap_or_default()
    };
    let _ = RULE_INDICES.set(RuleIndices {
        include: positions("include"),
        exclude: positions("exclude"),
    });
}

/// The rule positions recorded at start (none if nothing was recorded).
pub fn rule_indices() -> RuleIndices {
    RULE_INDICES.get().cloned().unwrap_or_default()
}
