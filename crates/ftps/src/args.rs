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
}

/// The subcommands and their own arguments.
#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// List a directory.
    Ls {
        /// ftps://host/dir
        url: String,
        /// Long format: type, size, modification time, name.
        #[arg(long, short)]
        long: bool,
    },
    /// Download a file.
    Get {
        /// ftps://host/path/file
        url: String,
        /// Local file or directory (default: the remote file's name).
        local: Option<PathBuf>,
        /// Continue a partial download (REST).
        #[arg(long = "continue", short = 'c')]
        resume: bool,
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
    /// Delete a remote file.
    Rm {
        /// ftps://host/path/file
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
