//! `ftps`: a command-line FTPS client. See crates/ftps/README.md.

mod args;
mod exit;
mod session;
mod target;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use anyhow::{bail, Context};
use clap::Parser;
use ftps_client::mirror::{self, MirrorOptions, MirrorReport};
use ftps_client::{Endpoint, Error, FileKind, ListEntry, Pool};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::args::{Cli, Cmd, Opts};
use crate::exit::{exit_code, transfer_failed, usage};
use crate::session::Session;
use crate::target::is_url;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.opts.verbose {
        // The CLI prints its own --insecure warning.
        0 => "warn,ftps_client::insecure=off",
        1 => "warn,ftps_client=debug,ftps_client::insecure=off",
        _ => "debug,ftps_client::insecure=off",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FTPS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
    let json = cli.opts.json;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ftps: cannot start: {e}");
            return ExitCode::from(exit::GENERIC);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let code = exit_code(&err);
            if json {
                let reply = err
                    .chain()
                    .find_map(|c| c.downcast_ref::<Error>())
                    .and_then(|e| e.reply().cloned());
                let obj = json!({
                    "error": format!("{err:#}"),
                    "exit_code": code,
                    "reply_code": reply.as_ref().map(|r| r.code.0),
                    "reply_text": reply.as_ref().map(|r| r.text()),
                });
                eprintln!("{obj}");
            } else {
                eprintln!("ftps: {err:#}");
            }
            ExitCode::from(code)
        }
    }
}

fn show_progress(opts: &Opts) -> bool {
    !opts.quiet && !opts.json && std::io::stderr().is_terminal()
}

fn bytes_bar(opts: &Opts, len: Option<u64>, label: &str) -> ProgressBar {
    if !show_progress(opts) {
        return ProgressBar::hidden();
    }
    let bar = match len {
        Some(l) => ProgressBar::new(l),
        None => ProgressBar::no_length(),
    };
    let style = ProgressStyle::with_template(
        "{msg} {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(label.to_string());
    bar
}

fn rfc3339(t: Option<SystemTime>) -> Option<String> {
    let t = t?;
    let dt = time::OffsetDateTime::from(t);
    dt.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

fn kind_name(k: FileKind) -> &'static str {
    match k {
        FileKind::File => "file",
        FileKind::Dir | FileKind::CurrentDir | FileKind::ParentDir => "dir",
        FileKind::Symlink => "link",
        FileKind::Other => "other",
    }
}

fn entry_json(e: &ListEntry) -> serde_json::Value {
    json!({
        "name": e.name,
        "type": kind_name(e.kind),
        "size": e.size,
        "modified": rfc3339(e.modified),
        "mode": e.mode.map(|m| format!("{m:04o}")),
        "link_target": e.link_target,
    })
}

fn mib_per_s(bytes: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        bytes as f64 / 1_048_576.0 / secs
    } else {
        0.0
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let opts = cli.opts.clone();
    match cli.command {
        Cmd::Ls { url, long } => {
            let mut s = Session::resolve(&opts, &url)?;
            let mut c = s.connect().await?;
            let mut entries = c.list_dir(&s.target.path).await?;
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            if opts.json {
                let list: Vec<_> = entries.iter().map(entry_json).collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                for e in &entries {
                    if long {
                        let when = rfc3339(e.modified).unwrap_or_else(|| "-".into());
                        let size = e.size.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
                        let name = match &e.link_target {
                            Some(t) => format!("{} -> {t}", e.name),
                            None => e.name.clone(),
                        };
                        println!(
                            "{:<5} {:>14} {:<25} {}",
                            kind_name(e.kind),
                            size,
                            when,
                            name
                        );
                    } else if e.is_dir() {
                        println!("{}/", e.name);
                    } else {
                        println!("{}", e.name);
                    }
                }
            }
            c.quit().await?;
        }
        Cmd::Get { url, local, resume } => {
            let mut s = Session::resolve(&opts, &url)?;
            let remote = s.target.path.clone();
            let name = ftps_client::client::basename(&remote).to_string();
            if name.is_empty() {
                return Err(usage("the URL names no file"));
            }
            let local = match local {
                Some(p) if p.is_dir() => p.join(&name),
                Some(p) => p,
                None => PathBuf::from(&name),
            };
            let mut c = s.connect().await?;
            let size = c.size(&remote).await.ok();
            let mtime = c.mdtm(&remote).await.ok();
            let existing = if resume {
                std::fs::metadata(&local).map(|m| m.len()).unwrap_or(0)
            } else {
                0
            };
            if resume && size.is_some_and(|sz| existing >= sz) {
                if existing > size.unwrap_or(0) {
                    bail!(
                        "{} is longer ({existing} bytes) than the remote file ({} bytes); not resuming",
                        local.display(),
                        size.unwrap_or(0)
                    );
                }
                if !opts.quiet && !opts.json {
                    eprintln!("ftps: {} is already complete", local.display());
                }
                c.quit().await?;
                return Ok(());
            }
            let bar = bytes_bar(&opts, size, &name);
            bar.set_position(existing);
            let started = Instant::now();
            let outcome = c
                .download_file(&remote, &local, resume, mtime, &mut |n| bar.inc(n))
                .await?;
            bar.finish_and_clear();
            let secs = started.elapsed().as_secs_f64();
            let total = std::fs::metadata(&local).map(|m| m.len()).unwrap_or(0);
            if let Some(sz) = size {
                if total != sz {
                    return Err(transfer_failed(format!(
                        "{} has {total} bytes but the server said {sz}",
                        local.display()
                    )));
                }
            }
            report_transfer(
                &opts,
                "get",
                &remote,
                &local,
                outcome.bytes,
                existing,
                secs,
                outcome.resumed,
            );
            c.quit().await?;
        }
        Cmd::Put { local, url, resume } => {
            let mut s = Session::resolve(&opts, &url)?;
            let mut remote = s.target.path.clone();
            let name = local
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| usage(format!("{} names no file", local.display())))?;
            if remote.is_empty() || remote.ends_with('/') {
                remote.push_str(&name);
            }
            let len = std::fs::metadata(&local)
                .with_context(|| format!("reading {}", local.display()))?
                .len();
            let mut c = s.connect().await?;
            let offset = if resume {
                c.size(&remote).await.unwrap_or(0)
            } else {
                0
            };
            let bar = bytes_bar(&opts, Some(len), &name);
            bar.set_position(offset);
            let started = Instant::now();
            let outcome = c
                .upload_file(&local, &remote, resume, &mut |n| bar.inc(n))
                .await?;
            bar.finish_and_clear();
            let secs = started.elapsed().as_secs_f64();
            if let Ok(sz) = c.size(&remote).await {
                if sz != len {
                    return Err(transfer_failed(format!(
                        "the server has {sz} bytes of {remote} but {} has {len}",
                        local.display()
                    )));
                }
            }
            report_transfer(
                &opts,
                "put",
                &remote,
                &local,
                outcome.bytes,
                offset,
                secs,
                outcome.resumed,
            );
            c.quit().await?;
        }
        Cmd::Cat { url } => {
            let mut s = Session::resolve(&opts, &url)?;
            let mut c = s.connect().await?;
            let mut out = tokio::io::stdout();
            c.download(&s.target.path, &mut out, 0, &mut |_| {}).await?;
            out.flush().await?;
            c.quit().await?;
        }
        Cmd::Rm { url } => {
            let mut s = Session::resolve(&opts, &url)?;
            let mut c = s.connect().await?;
            c.delete(&s.target.path).await?;
            done(&opts, "rm", &s.target.path);
            c.quit().await?;
        }
        Cmd::Mkdir { url, parents } => {
            let mut s = Session::resolve(&opts, &url)?;
            let mut c = s.connect().await?;
            if parents {
                c.mkdir_all(&s.target.path).await?;
            } else {
                c.mkdir(&s.target.path).await?;
            }
            done(&opts, "mkdir", &s.target.path);
            c.quit().await?;
        }
        Cmd::Rmdir { url } => {
            let mut s = Session::resolve(&opts, &url)?;
            let mut c = s.connect().await?;
            c.rmdir(&s.target.path).await?;
            done(&opts, "rmdir", &s.target.path);
            c.quit().await?;
        }
        Cmd::Mv { url, new_path } => {
            let mut s = Session::resolve(&opts, &url)?;
            let to = if new_path.starts_with('/') {
                new_path
            } else {
                ftps_client::client::join(&ftps_client::client::parent(&s.target.path), &new_path)
            };
            let mut c = s.connect().await?;
            c.rename(&s.target.path, &to).await?;
            if opts.json {
                println!("{}", json!({"ok": "mv", "from": s.target.path, "to": to}));
            }
            c.quit().await?;
        }
        Cmd::Stat { url } => {
            let mut s = Session::resolve(&opts, &url)?;
            let mut c = s.connect().await?;
            let e = c.stat(&s.target.path).await?;
            if opts.json {
                println!("{}", entry_json(&e));
            } else {
                println!("path: {}", s.target.path);
                println!("type: {}", kind_name(e.kind));
                if let Some(sz) = e.size {
                    println!("size: {sz}");
                }
                if let Some(m) = rfc3339(e.modified) {
                    println!("modified: {m}");
                }
                if let Some(mode) = e.mode {
                    println!("mode: {mode:04o}");
                }
            }
            c.quit().await?;
        }
        Cmd::Hash { url, download } => {
            let mut s = Session::resolve(&opts, &url)?;
            let mut c = s.connect().await?;
            let by_server = if download {
                None
            } else {
                c.server_sha256(&s.target.path).await?
            };
            let (hex, computed_by) = match by_server {
                Some(hex) => (hex, "server"),
                None => {
                    let mut hasher = HashWriter(Sha256::new());
                    c.download(&s.target.path, &mut hasher, 0, &mut |_| {})
                        .await?;
                    (format!("{:x}", hasher.0.finalize()), "client")
                }
            };
            if opts.json {
                println!(
                    "{}",
                    json!({"path": s.target.path, "sha256": hex, "computed_by": computed_by})
                );
            } else {
                println!("{hex}  {}", s.target.path);
            }
            c.quit().await?;
        }
        Cmd::Mirror {
            source,
            destination,
            parallel,
            delete,
            dry_run,
        } => {
            let mopts = MirrorOptions {
                parallel: parallel.max(1),
                delete,
                dry_run,
            };
            let (url, local, upload) = match (is_url(&source), is_url(&destination)) {
                (true, false) => (source, PathBuf::from(destination), false),
                (false, true) => (destination, PathBuf::from(source), true),
                _ => return Err(usage("mirror needs one URL and one local directory")),
            };
            let mut s = Session::resolve(&opts, &url)?;
            // One session first: checks the certificate and the login (asking for the
            // password if needed) before starting the parallel ones.
            let probe = s.connect().await?;
            probe.quit().await?;
            let endpoint = Endpoint {
                host: s.target.host.clone(),
                port: s.target.port,
                user: s.user.clone(),
                password: s.password.clone().unwrap_or_default(),
            };
            let pool = Pool::new(s.connector.clone(), endpoint, mopts.parallel);
            let bar = if show_progress(&opts) {
                let b = ProgressBar::no_length();
                b.set_style(
                    ProgressStyle::with_template("{spinner} {pos} files, {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                b
            } else {
                ProgressBar::hidden()
            };
            let b2 = bar.clone();
            let bytes = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let bytes2 = bytes.clone();
            let progress: mirror::Progress = Arc::new(move |d: &mirror::FileDone| {
                let total =
                    bytes2.fetch_add(d.bytes, std::sync::atomic::Ordering::Relaxed) + d.bytes;
                b2.inc(1);
                b2.set_message(format!(
                    "{} transferred; {}",
                    indicatif::HumanBytes(total),
                    d.path
                ));
            });
            let started = Instant::now();
            let remote = s.target.path.clone();
            if upload && !local.is_dir() {
                return Err(usage(format!("{} is not a directory", local.display())));
            }
            let report = if upload {
                mirror::upload(&pool, &local, &remote, &mopts, Some(progress)).await?
            } else {
                mirror::download(&pool, &remote, &local, &mopts, Some(progress)).await?
            };
            bar.finish_and_clear();
            pool.close().await;
            print_mirror(
                &opts,
                &report,
                upload,
                dry_run,
                started.elapsed().as_secs_f64(),
            );
            if !report.failed.is_empty() {
                return Err(transfer_failed(format!(
                    "{} of {} transfers failed",
                    report.failed.len(),
                    report.failed.len() + report.transferred
                )));
            }
        }
    }
    Ok(())
}

fn done(opts: &Opts, what: &str, path: &str) {
    if opts.json {
        println!("{}", json!({"ok": what, "path": path}));
    }
}

#[allow(clippy::too_many_arguments)]
fn report_transfer(
    opts: &Opts,
    what: &str,
    remote: &str,
    local: &Path,
    bytes: u64,
    resumed_from: u64,
    secs: f64,
    tls_resumed: bool,
) {
    if opts.json {
        println!(
            "{}",
            json!({
                "ok": what,
                "remote": remote,
                "local": local.display().to_string(),
                "bytes": bytes,
                "resumed_from": resumed_from,
                "seconds": secs,
                "mib_per_s": mib_per_s(bytes, secs),
                "tls_session_resumed": tls_resumed,
            })
        );
    } else if !opts.quiet {
        eprintln!(
            "{what} {remote}: {bytes} bytes in {secs:.2} s ({:.1} MiB/s){}",
            mib_per_s(bytes, secs),
            if resumed_from > 0 {
                format!(", continued from byte {resumed_from}")
            } else {
                String::new()
            }
        );
    }
}

fn print_mirror(opts: &Opts, r: &MirrorReport, upload: bool, dry_run: bool, secs: f64) {
    if opts.json {
        let v = json!({
            "direction": if upload { "upload" } else { "download" },
            "dry_run": dry_run,
            "transferred": r.transferred,
            "bytes": r.bytes,
            "unchanged": r.unchanged,
            "deleted": r.deleted,
            "failed": r.failed.iter().map(|(p, e)| json!({"path": p, "error": e})).collect::<Vec<_>>(),
            "actions": if dry_run { serde_json::to_value(&r.actions).unwrap_or_default() } else { serde_json::Value::Null },
            "seconds": secs,
        });
        println!("{v}");
        return;
    }
    if dry_run {
        for a in &r.actions {
            match a {
                mirror::Action::Mkdir { path } => println!("mkdir    {path}"),
                mirror::Action::Transfer { path, size, reason } => {
                    println!(
                        "{} {path} ({size} bytes, {reason})",
                        if upload { "put     " } else { "get     " }
                    )
                }
                mirror::Action::Delete { path, dir } => {
                    println!("delete   {path}{}", if *dir { "/" } else { "" })
                }
            }
        }
    }
    for (p, e) in &r.failed {
        eprintln!("ftps: {p}: {e}");
    }
    if !opts.quiet {
        eprintln!(
            "{}{} files transferred ({} bytes), {} unchanged, {} deleted, {} failed in {secs:.1} s",
            if dry_run { "dry run: would have " } else { "" },
            if dry_run {
                r.actions
                    .iter()
                    .filter(|a| matches!(a, mirror::Action::Transfer { .. }))
                    .count()
            } else {
                r.transferred
            },
            r.bytes,
            r.unchanged,
            if dry_run {
                r.actions
                    .iter()
                    .filter(|a| matches!(a, mirror::Action::Delete { .. }))
                    .count()
            } else {
                r.deleted
            },
            r.failed.len()
        );
    }
}

/// An `AsyncWrite` that feeds a hash.
struct HashWriter(Sha256);

impl tokio::io::AsyncWrite for HashWriter {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.get_mut().0.update(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
