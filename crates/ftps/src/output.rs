//! What the commands print: results for people or, with `--json`, for scripts on standard
//! output; messages, progress bars and errors on standard error.

use std::io::IsTerminal;
use std::path::Path;
use std::time::SystemTime;

use ftps_client::mirror::{self, MirrorReport};
use ftps_client::{FileKind, ListEntry};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::args::Opts;

/// How to print: the two global options that decide it.
#[derive(Clone, Copy, Debug)]
pub struct Output {
    json: bool,
    quiet: bool,
}

/// A finished `get` or `put`.
pub struct Transfer<'a> {
    /// `"get"` or `"put"`.
    pub what: &'a str,
    pub remote: &'a str,
    pub local: &'a Path,
    /// Bytes sent or received by this run.
    pub bytes: u64,
    /// Where a continued transfer started (0 if it did not continue).
    pub resumed_from: u64,
    pub secs: f64,
    /// Whether the data connection resumed the control connection's TLS session.
    pub tls_resumed: bool,
    /// Connections the file came over (1: one stream).
    pub segments: usize,
    /// Failed attempts that were retried.
    pub retries: u32,
}

impl Output {
    pub fn new(opts: &Opts) -> Output {
        Output {
            json: opts.json,
            quiet: opts.quiet,
        }
    }

    /// Progress bars only on a terminal, and only when nobody asked for silence or JSON.
    fn show_progress(&self) -> bool {
        !self.quiet && !self.json && std::io::stderr().is_terminal()
    }

    /// A bar for the bytes of one file (hidden when progress is not shown).
    pub fn bytes_bar(&self, len: Option<u64>, label: &str) -> ProgressBar {
        if !self.show_progress() {
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

    /// A spinner counting the files of a mirror (hidden when progress is not shown).
    pub fn files_spinner(&self) -> ProgressBar {
        if !self.show_progress() {
            return ProgressBar::hidden();
        }
        let b = ProgressBar::no_length();
        b.set_style(
            ProgressStyle::with_template("{spinner} {pos} files, {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        b
    }

    /// An informational message, for people only.
    pub fn note(&self, msg: &str) {
        if !self.quiet && !self.json {
            eprintln!("ftps: {msg}");
        }
    }

    /// A command that has no result but its success (`rm`, `mkdir`, `rmdir`).
    pub fn done(&self, what: &str, path: &str) {
        if self.json {
            println!("{}", json!({"ok": what, "path": path}));
        }
    }

    /// `mv`: silent for people.
    pub fn moved(&self, from: &str, to: &str) {
        if self.json {
            println!("{}", json!({"ok": "mv", "from": from, "to": to}));
        }
    }

    /// `ls`: names (directories with a trailing `/`), or one line per entry with `-l`.
    pub fn listing(&self, entries: &[ListEntry], long: bool) {
        if self.json {
            let list: Vec<_> = entries.iter().map(entry_json).collect();
            println!("{}", serde_json::Value::Array(list));
            return;
        }
        for e in entries {
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

    /// `stat`: one `key: value` line per known fact.
    pub fn stat(&self, path: &str, e: &ListEntry) {
        if self.json {
            println!("{}", entry_json(e));
            return;
        }
        println!("path: {path}");
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

    /// `hash`: in `sha256sum` format for people.
    pub fn hash(&self, path: &str, hex: &str, computed_by: &str) {
        if self.json {
            println!(
                "{}",
                json!({"path": path, "sha256": hex, "computed_by": computed_by})
            );
        } else {
            println!("{hex}  {path}");
        }
    }

    /// A finished `get` or `put`: a summary line on standard error for people.
    pub fn transfer(&self, t: &Transfer<'_>) {
        if self.json {
            println!(
                "{}",
                json!({
                    "ok": t.what,
                    "remote": t.remote,
                    "local": t.local.display().to_string(),
                    "bytes": t.bytes,
                    "resumed_from": t.resumed_from,
                    "seconds": t.secs,
                    "mib_per_s": mib_per_s(t.bytes, t.secs),
                    "tls_session_resumed": t.tls_resumed,
                    "segments": t.segments,
                    "retries": t.retries,
                })
            );
        } else if !self.quiet {
            eprintln!(
                "{} {}: {} bytes in {:.2} s ({:.1} MiB/s){}{}{}",
                t.what,
                t.remote,
                t.bytes,
                t.secs,
                mib_per_s(t.bytes, t.secs),
                if t.resumed_from > 0 {
                    format!(", continued from byte {}", t.resumed_from)
                } else {
                    String::new()
                },
                if t.segments > 1 {
                    format!(", {} segments", t.segments)
                } else {
                    String::new()
                },
                if t.retries > 0 {
                    format!(", {} retries", t.retries)
                } else {
                    String::new()
                }
            );
        }
    }

    /// A finished mirror: the plan of a dry run, the failures, and a summary.
    pub fn mirror(&self, r: &MirrorReport, upload: bool, dry_run: bool, secs: f64) {
        if self.json {
            let v = json!({
                "direction": if upload { "upload" } else { "download" },
                "dry_run": dry_run,
                "transferred": r.transferred,
                "bytes": r.bytes,
                "unchanged": r.unchanged,
                "deleted": r.deleted,
                "failed": r.failed.iter().map(|(p, e)| json!({"path": p, "error": e})).collect::<Vec<_>>(),
                "skipped": r.skipped_counts(),
                "skipped_entries": r.skipped.iter().filter(|s| s.reason != "unchanged").collect::<Vec<_>>(),
                "compared_by": r.compared_by,
                "retries": r.retries,
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
        if dry_run {
            for s in r.skipped.iter().filter(|s| s.reason != "unchanged") {
                println!(
                    "skip     {} ({}{})",
                    s.path,
                    s.reason,
                    s.rule
                        .as_deref()
                        .map(|rule| format!(" by {rule}"))
                        .unwrap_or_default()
                );
            }
        }
        if !self.quiet {
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
            let counts = r.skipped_counts();
            let skipped: Vec<String> = counts
                .iter()
                .filter(|(reason, _)| **reason != "unchanged")
                .map(|(reason, n)| format!("{n} {reason}"))
                .collect();
            eprintln!(
                "compared by {}{}{}",
                r.compared_by,
                if skipped.is_empty() {
                    String::new()
                } else {
                    format!("; skipped: {}", skipped.join(", "))
                },
                if r.retries > 0 {
                    format!("; {} retries", r.retries)
                } else {
                    String::new()
                }
            );
        }
    }

    /// The error that ends the program, with the exit code it gets; with `--json`, one
    /// object that also carries the server's reply if there was one.
    pub fn error(&self, err: &anyhow::Error, code: u8) {
        if self.json {
            let reply = err
                .chain()
                .find_map(|c| c.downcast_ref::<ftps_client::Error>())
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
    }
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
