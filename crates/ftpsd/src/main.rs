//! `ftpsd`: a fast, secure FTPS server.
//!
//! Run with no arguments for a working local server (the embedded default), or with
//! `--config FILE`. `ftpsd user ...` manages the users file, `ftpsd check-config` checks
//! what the server would load, `ftpsd generate` writes manual pages and completions.

use std::io::{BufRead, IsTerminal};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use ftps_server::config::{self, Config};
use ftps_server::policy::{Access, SessionReuse};
use ftps_server::users::{self, UserDb, UserSource};
use ftps_server::{prepare_state, Server};

mod check;
mod ctl;
mod generate;
mod logfile;
mod user_set;

/// A fast, secure FTPS server.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    settings: Settings,
    #[command(subcommand)]
    command: Option<Cmd>,
}

/// Settings shared by the server and the user commands.
#[derive(Args)]
struct Settings {
    /// Configuration file (TOML); see docs/ftpsd.example.toml.
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    /// State directory: generated certificate, users file, default user's files.
    #[arg(long, global = true)]
    state_dir: Option<PathBuf>,
    /// Users file (default: <state-dir>/users.toml).
    #[arg(long, global = true)]
    users: Option<PathBuf>,
    /// Explicit FTPS listen address (repeatable); replaces the configured ones.
    #[arg(long)]
    listen: Vec<SocketAddr>,
    /// Implicit FTPS listen address (repeatable); replaces the configured ones.
    #[arg(long)]
    implicit_listen: Vec<SocketAddr>,
    /// Disable implicit FTPS.
    #[arg(long, conflicts_with = "implicit_listen")]
    no_implicit: bool,
    /// Passive port range, e.g. 50000-50100.
    #[arg(long, value_parser = config::parse_port_range)]
    passive_ports: Option<std::ops::RangeInclusive<u16>>,
    /// Address announced in PASV replies (IPv4 or DNS name), for servers behind NAT.
    #[arg(long)]
    advertised_address: Option<String>,
    /// PEM certificate chain.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// PEM private key.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Manage users.
    #[command(subcommand)]
    User(UserCmd),
    /// Ask the running server, through its admin API ([admin]): sessions, bans, users,
    /// reload.
    Ctl(ctl::CtlArgs),
    /// Check the configuration, users files and certificates without starting the server.
    ///
    /// Loads what the server would load at start (the configuration, every users file, the
    /// certificates and keys, the client CA, the S3 stores) without binding or creating
    /// anything. Prints a summary (listeners, users, the certificate's subject and expiry)
    /// and any warnings; if anything is wrong, prints each problem and exits with 1.
    CheckConfig,
    /// Generate manual pages or shell completions.
    #[command(subcommand, hide = true)]
    Generate(generate::GenerateCmd),
}

#[derive(Subcommand)]
enum UserCmd {
    /// Add a user (the password is read from stdin with --password-stdin, or generated and
    /// printed).
    Add {
        /// User name.
        name: String,
        /// The user's root directory (created if missing); with --storage, the key prefix
        /// of the user's objects in that store.
        #[arg(long)]
        root: PathBuf,
        /// Keep the user's files in the S3 store NAME (a `[storage.s3.NAME]` of the
        /// configuration) rather than in a local directory.
        #[arg(long, value_name = "NAME")]
        storage: Option<String>,
        /// Download and list only.
        #[arg(long)]
        read_only: bool,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
        /// Override the server's data-session-reuse policy for this user.
        #[arg(long, value_enum)]
        data_session_reuse: Option<ReuseArg>,
    },
    /// Delete a user (their files stay).
    Del {
        /// User name.
        name: String,
    },
    /// List users.
    List,
    /// Show one user's settings (the password hash is not shown).
    Show {
        /// User name.
        name: String,
    },
    /// Change a user's limits and rules (the flags given; the rest stays).
    Set(Box<user_set::SetArgs>),
    /// Set a new password.
    Passwd {
        /// User name.
        name: String,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Copy every user of a users file into the database of the configuration's
    /// `[database]` (relative local roots become absolute).
    Import {
        /// The users file (TOML) to read.
        file: PathBuf,
        /// Replace the users that are already in the database (else: an error naming them,
        /// and nothing imported).
        #[arg(long)]
        replace: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ReuseArg {
    Required,
    Optional,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ftpsd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Cmd::Generate(what)) => generate::run(what, Cli::command()),
        Some(Cmd::CheckConfig) => {
            check::run(cli.settings.config.as_deref(), load_config(&cli.settings))
        }
        Some(Cmd::User(cmd)) => user_command(&load_config(&cli.settings)?, cmd),
        Some(Cmd::Ctl(args)) => ctl::run(&load_config(&cli.settings)?, args),
        None => serve(load_config(&cli.settings)?),
    }
}

fn load_config(s: &Settings) -> anyhow::Result<Config> {
    let mut config = match &s.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(dir) = &s.state_dir {
        config.state_dir = dir.clone();
    }
    if let Some(users) = &s.users {
        config.users_file = Some(users.clone());
    }
    if !s.listen.is_empty() {
        config.listen = s.listen.iter().copied().map(Into::into).collect();
    }
    if !s.implicit_listen.is_empty() {
        config.implicit_listen = s.implicit_listen.iter().copied().map(Into::into).collect();
    }
    if s.no_implicit {
        config.implicit_listen.clear();
    }
    if let Some(range) = &s.passive_ports {
        config.passive.ports = Some(range.clone());
    }
    if let Some(addr) = &s.advertised_address {
        config.passive.advertised_address = Some(addr.clone());
    }
    if let (Some(cert), Some(key)) = (&s.cert, &s.key) {
        config.tls.certificate = Some(cert.clone());
        config.tls.private_key = Some(key.clone());
    }
    Ok(config)
}

/// Makes glibc return large allocations to the system when they are freed.
///
/// Every password check allocates argon2id's 19 MiB working memory. glibc raises its mmap
/// threshold after the first such free, so later ones come from per-thread arenas and stay
/// resident: a few hundred MiB after some logins. A fixed threshold keeps them mmapped.
fn release_large_allocations() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator parameters; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
    }
}

/// Every 30 s, gives the pages that glibc keeps free inside its arenas back to the system:
/// after a burst (thousands of sessions, parallel transfers) the arenas of the many runtime
/// and blocking threads otherwise stay at their peak.
async fn trim_memory_periodically() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        // SAFETY: malloc_trim only returns free memory to the system.
        let _ = tokio::task::spawn_blocking(|| unsafe { libc::malloc_trim(0) }).await;
    }
}

/// Descriptors one session may hold at once: its control socket, a passive listener, a data
/// socket and the file being transferred.
const DESCRIPTORS_PER_SESSION: u64 = 4;

/// Raises the soft limit on open files to the hard limit: systemd and most shells start
/// services with 1,024, which runs out long before `max_sessions` (2,000 by default). Warns
/// when even the hard limit is below what `max_sessions` needs.
fn raise_open_file_limit(config: &Config) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit with a valid pointer to a local struct.
    let raised = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return;
        }
        let wanted = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0
    };
    let now = if raised {
        limit.rlim_max
    } else {
        limit.rlim_cur
    };
    let needed = u64::from(config.limits.max_sessions) * DESCRIPTORS_PER_SESSION + 64;
    if now < needed {
        tracing::warn!(
            open_file_limit = now,
            needed,
            max_sessions = config.limits.max_sessions,
            "the open-file limit is below what max_sessions needs; raise it (systemd: \
             LimitNOFILE=) or lower limits.max_sessions"
        );
    } else {
        tracing::debug!(open_file_limit = now, "open-file limit");
    }
}

fn serve(config: Config) -> anyhow::Result<()> {
    release_large_allocations();
    let log_file = logfile::init(&config.log)?;
    raise_open_file_limit(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Each transfer holds a blocking thread while it runs, and each session runs at most
        // one; with room for every session, transfers never leave short file-system calls
        // (stat, open, rename) waiting for a thread. Idle threads exit after 10 s.
        .max_blocking_threads(blocking_threads(&config))
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async move {
        let report = prepare_state(&config)?;
        let server = Server::bind(config).await?;
        if let Some((name, password)) = &report.created_user {
            println!("created user {name} with password: {password}");
            println!("(shown once; change it with: ftpsd user passwd {name})");
        }
        println!("certificate sha256 fingerprint: {}", server.fingerprint());
        // Before the FTPS listeners, so that a reader that stops at them has it.
        if let Some(addr) = server.metrics_addr() {
            println!("listening metrics {addr}");
        }
        if let Some(addr) = server.admin_addr() {
            println!("listening admin {addr}");
        }
        for addr in server.explicit_addrs() {
            println!("listening explicit {addr}");
        }
        for addr in server.implicit_addrs() {
            println!("listening implicit {addr}");
        }
        tokio::spawn(trim_memory_periodically());
        let reloader = server.reloader();
        tokio::spawn(async move {
            let Ok(mut hup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                return;
            };
            while hup.recv().await.is_some() {
                reloader.reload();
            }
        });
        let reopener = server.reloader();
        tokio::spawn(async move {
            let Ok(mut usr1) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
            else {
                return;
            };
            while usr1.recv().await.is_some() {
                if let Some(file) = &log_file {
                    if let Err(e) = file.reopen() {
                        tracing::warn!(error = %e, "cannot reopen the log file; writing to the old one");
                    }
                }
                reopener.reopen_logs();
            }
        });
        server.run(stop_signal()).await;
        Ok(())
    })
}

/// Blocking threads the runtime may start: one per session allowed, plus room for logins
/// (argon2) and reloads.
fn blocking_threads(config: &Config) -> usize {
    usize::try_from(config.limits.max_sessions)
        .unwrap_or(usize::MAX)
        .saturating_add(64)
}

async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers, run until killed.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

fn user_command(config: &Config, cmd: UserCmd) -> anyhow::Result<()> {
    let source = UserSource::of(config)?;
    let location = source.location();
    match cmd {
        UserCmd::List => {
            let db = source.load_or_empty()?;
            for name in db.names() {
                if let Some(entry) = db.get(name) {
                    let access = match entry.access {
                        Access::ReadOnly => "read-only",
                        Access::ReadWrite => "read-write",
                    };
                    // As the server sees it: the user's store, or else the default one.
                    let store = entry
                        .storage
                        .as_ref()
                        .or(config.storage.default.as_ref())
                        .filter(|s| s.as_str() != ftps_server::folders::LOCAL_STORAGE);
                    let root = match store {
                        Some(store) => format!("s3:{store}:{}", entry.root.display()),
                        None => db.resolve_root(entry).display().to_string(),
                    };
                    println!("{name}\t{access}\t{root}");
                }
            }
        }
        UserCmd::Add {
            name,
            root,
            read_only,
            password_stdin,
            data_session_reuse,
            storage,
        } => {
            if let UserSource::File(path) = &source {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                }
            }
            let mut db = source.load_or_empty()?;
            let (password, generated) = obtain_password(password_stdin)?;
            // The user's store: the one named, or else the server's default.
            let store = storage
                .as_ref()
                .or(config.storage.default.as_ref())
                .filter(|s| s.as_str() != ftps_server::folders::LOCAL_STORAGE);
            let root = match store {
                Some(store) => {
                    if !config.storage.s3.contains_key(store) {
                        anyhow::bail!("no [storage.s3.{store}] in the configuration");
                    }
                    // A key prefix, kept as written.
                    root
                }
                None => {
                    std::fs::create_dir_all(&root).with_context(|| {
                        format!("cannot create root directory {}", root.display())
                    })?;
                    std::fs::canonicalize(&root)
                        .with_context(|| format!("cannot resolve {}", root.display()))?
                }
            };
            let access = if read_only {
                Access::ReadOnly
            } else {
                Access::ReadWrite
            };
            db.add(&name, root, access, &password)?;
            if let Some(reuse) = data_session_reuse {
                set_reuse(&mut db, &name, reuse)?;
            }
            if storage.is_some() {
                db.set_storage(&name, storage)?;
            }
            db.save()?;
            if generated {
                println!("password for {name}: {password}");
            }
            eprintln!("added user {name} to {location}");
        }
        UserCmd::Show { name } => {
            let db = source.load()?;
            let entry = db
                .get(&name)
                .ok_or_else(|| anyhow::anyhow!("no such user: {name:?}"))?;
            print!("{}", users::show_entry(&name, entry)?);
            print!("{}", quota_lines(config, &db, &name));
        }
        UserCmd::Set(args) => {
            let mut db = source.load()?;
            let mut outcome = Ok(());
            db.update(&args.name, |entry| outcome = args.apply(entry))?;
            outcome?;
            db.save()?;
            eprintln!("updated user {}", args.name);
        }
        UserCmd::Del { name } => {
            let mut db = source.load()?;
            db.remove(&name)?;
            db.save()?;
            eprintln!("deleted user {name} (files kept)");
        }
        UserCmd::Passwd {
            name,
            password_stdin,
        } => {
            let mut db = source.load()?;
            let (password, generated) = obtain_password(password_stdin)?;
            db.set_password(&name, &password)?;
            db.save()?;
            if generated {
                println!("password for {name}: {password}");
            }
            eprintln!("password changed for {name}");
        }
        UserCmd::Import { file, replace } => {
            if config.database.is_none() {
                bail!("ftpsd user import needs a [database] in the configuration to import into");
            }
            // As the server decides it: a tree is local unless a store other than
            // "local" is named, or is the default.
            let local = |storage: Option<&str>| {
                storage
                    .or(config.storage.default.as_deref())
                    .is_none_or(|s| s == ftps_server::folders::LOCAL_STORAGE)
            };
            let imported = users::import(&file, &source, replace, local)?;
            eprintln!(
                "imported {} user(s) from {} into {location}: {} added, {} replaced",
                imported.added + imported.replaced,
                file.display(),
                imported.added,
                imported.replaced
            );
        }
    }
    Ok(())
}

/// The user's quota and usage as comments for `ftpsd user show`, counted as a login
/// counts them.
fn quota_lines(config: &Config, db: &UserDb, name: &str) -> String {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return format!("# quota: usage not counted: {e}\n"),
    };
    match runtime.block_on(ftps_server::quota::user_usage(config, db, name)) {
        Ok(None) => "# quota: none\n".to_string(),
        Ok(Some((usage, limits))) => ftps_server::quota::describe(usage, limits)
            .iter()
            .map(|line| format!("# quota: {line}\n"))
            .collect(),
        Err(e) => format!("# quota: usage not counted: {e}\n"),
    }
}

fn set_reuse(db: &mut UserDb, name: &str, reuse: ReuseArg) -> anyhow::Result<()> {
    let reuse = match reuse {
        ReuseArg::Required => SessionReuse::Required,
        ReuseArg::Optional => SessionReuse::Optional,
    };
    db.set_session_reuse(name, Some(reuse))?;
    Ok(())
}

/// The password from stdin, or a generated one.
fn obtain_password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if !from_stdin {
        return Ok((users::generate_password(), true));
    }
    if std::io::stdin().is_terminal() {
        eprint!("password: ");
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        bail!("empty passwords are refused");
    }
    Ok((password, false))
}
