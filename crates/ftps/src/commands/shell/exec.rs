//! Runs shell commands: one executor for the interactive shell and for batch mode. It keeps
//! one control connection (reconnecting when the server closed it), the remote and local
//! current directories, and cached listings for completion.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ftps_client::{ErrorKind, FileKind, FtpsClient, ListEntry};
use serde_json::json;

use super::glob::{expand_local, is_glob, local_name, remote_name, select, split};
use super::parse::{help_of, Line, COMMANDS};
use crate::args::Opts;
use crate::exit::{exit_code, usage};
use crate::output::{Output, Transfer};
use crate::session::Session;

/// What to do after a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Read the next command.
    Continue,
    /// `bye`: stop.
    Quit,
}

/// After this long without a command the connection is checked with `NOOP` before the next
/// one: servers close idle connections, and a transparent reconnection is better than an
/// error. Commands in quick succession (batch files) skip the check.
const RECHECK_AFTER: Duration = Duration::from_secs(1);

/// One server session and the state of the shell.
pub struct Executor {
    session: Session,
    /// `None` after the connection broke; the next command connects again.
    client: Option<FtpsClient>,
    out: Output,
    json: bool,
    /// The login directory (`cd` without an argument).
    home: String,
    /// The remote current directory, as the server's `PWD` gave it.
    cwd: String,
    /// For `cd -`.
    previous: Option<String>,
    last_used: Instant,
    /// Listings by absolute directory, for completion; cleared after any remote change.
    listings: HashMap<String, Vec<ListEntry>>,
}

impl Executor {
    /// Connects, logs in and changes to the URL's directory.
    pub async fn connect(opts: &Opts, out: Output, url: &str) -> Result<Executor> {
        let mut session = Session::resolve(opts, url)?;
        let mut client = session.connect().await?;
        let home = client.pwd().await?;
        let start = session.target.path.clone();
        if !start.is_empty() {
            client.cwd(&start).await?;
        }
        let cwd = client.pwd().await?;
        Ok(Executor {
            session,
            client: Some(client),
            out,
            json: opts.json,
            home,
            cwd,
            previous: None,
            last_used: Instant::now(),
            listings: HashMap::new(),
        })
    }

    /// The remote current directory.
    pub fn cwd(&self) -> &str {
        &self.cwd
    }

    /// `user@host`, for messages.
    pub fn server(&self) -> String {
        format!("{}@{}", self.session.user, self.session.target.host)
    }

    /// Runs one command. Errors are the command's; the executor stays usable after them.
    pub async fn execute(&mut self, line: &Line) -> Result<Flow> {
        let result = self.run(line).await;
        if line.changes_remote() {
            self.listings.clear();
        }
        if line.uses_server() {
            self.last_used = Instant::now();
        }
        if let Err(e) = &result {
            self.forget_broken_connection(e);
        }
        result
    }

    /// Drops the connection, as after a command interrupted half-way: the next command
    /// connects again.
    pub fn abandon_connection(&mut self) {
        self.client = None;
    }

    /// Says goodbye to the server (`QUIT`), if still connected.
    pub async fn close(&mut self) {
        if let Some(c) = self.client.take() {
            // The session is over either way.
            let _ = c.quit().await;
        }
    }

    /// The entries of a remote directory (relative to the current one), from the cache when
    /// it has them: for completion, so errors yield nothing.
    pub async fn cached_listing(&mut self, dir: &str) -> Vec<ListEntry> {
        let key = self.absolute(dir);
        if let Some(entries) = self.listings.get(&key) {
            return entries.clone();
        }
        self.list(dir).await.unwrap_or_default()
    }

    /// A connected client: reconnects (and returns to the current directory) when there is
    /// none, the last one broke, or the server closed it while idle.
    async fn client(&mut self) -> Result<&mut FtpsClient> {
        let mut current = self.client.take();
        if let Some(c) = current.as_mut() {
            let alive = !c.is_poisoned()
                && (self.last_used.elapsed() < RECHECK_AFTER
                    || c.command("NOOP")
                        .await
                        .is_ok_and(|r| r.code.is_completion()));
            if !alive {
                current = None;
            }
        }
        let client = match current {
            Some(c) => c,
            None => {
                self.out.note(&format!(
                    "the connection to {} was closed; reconnecting",
                    self.session.target.host
                ));
                let mut c = self.session.connect().await?;
                c.cwd(&self.cwd)
                    .await
                    .with_context(|| format!("returning to {}", self.cwd))?;
                c
            }
        };
        self.last_used = Instant::now();
        Ok(self.client.insert(client))
    }

    /// After an error that left the connection unusable (closed, timed out, a broken TLS
    /// stream, an unfinished transfer), drop it so the next command reconnects.
    fn forget_broken_connection(&mut self, err: &anyhow::Error) {
        let broken = err
            .chain()
            .find_map(|c| c.downcast_ref::<ftps_client::Error>())
            .is_some_and(|e| {
                matches!(e.kind(), ErrorKind::Connect | ErrorKind::Tls)
                    || e.code().is_some_and(|c| c.0 == 421)
            });
        if broken || self.client.as_ref().is_some_and(|c| c.is_poisoned()) {
            self.client = None;
        }
    }

    /// A remote path (relative to the current directory) as an absolute one with `.` and
    /// `..` resolved: the key of cached listings.
    fn absolute(&self, path: &str) -> String {
        let joined = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("{}/{path}", self.cwd)
        };
        let mut parts: Vec<&str> = Vec::new();
        for part in joined.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                p => parts.push(p),
            }
        }
        format!("/{}", parts.join("/"))
    }

    /// Lists a directory (relative to the current one) and caches the result.
    async fn list(&mut self, dir: &str) -> Result<Vec<ListEntry>> {
        let key = self.absolute(dir);
        let mut entries = self.client().await?.list_dir(dir).await?;
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        self.listings.insert(key, entries.clone());
        Ok(entries)
    }

    /// The remote files a word names: the matches of a pattern (files and links, not
    /// directories), or the word itself. A pattern that matches nothing is kept as written,
    /// as a Unix shell does, so the server says what it thinks of it.
    async fn remote_files(&mut self, word: &str) -> Result<Vec<String>> {
        if !is_glob(word) {
            return Ok(vec![word.to_string()]);
        }
        let glob = split(word)?;
        let listing = self.list(&glob.dir).await?;
        let found: Vec<String> = select(&glob, listing)
            .into_iter()
            .filter(|(_, e)| matches!(e.kind, FileKind::File | FileKind::Symlink))
            .map(|(path, _)| path)
            .collect();
        if found.is_empty() {
            return Ok(vec![word.to_string()]);
        }
        Ok(found)
    }

    async fn run(&mut self, line: &Line) -> Result<Flow> {
        match line {
            Line::Ls { long, path } => self.ls(path.as_deref(), *long).await?,
            Line::Cd(dir) => self.cd(dir.as_deref()).await?,
            Line::Pwd => {
                if self.json {
                    println!("{}", json!({ "pwd": self.cwd }));
                } else {
                    println!("{}", self.cwd);
                }
            }
            Line::Get {
                remote,
                local,
                resume,
            } => {
                let name =
                    local_name(remote).ok_or_else(|| usage(format!("{remote:?} names no file")))?;
                let local = match local {
                    Some(l) if Path::new(l).is_dir() => Path::new(l).join(&name),
                    Some(l) => PathBuf::from(l),
                    None => PathBuf::from(&name),
                };
                self.download(remote, &local, *resume).await?;
            }
            Line::Put {
                local,
                remote,
                resume,
            } => {
                let local = Path::new(local);
                let name = remote_name(local)
                    .ok_or_else(|| usage(format!("{} names no file", local.display())))?;
                let remote = match remote {
                    None => name,
                    Some(r) if r.ends_with('/') => format!("{r}{name}"),
                    Some(r) => r.clone(),
                };
                self.upload(local, &remote, *resume).await?;
            }
            Line::Mget(words) => {
                let mut targets = Vec::new();
                for w in words {
                    targets.extend(self.remote_files(w).await?);
                }
                let mut tally = Tally::new("mget", targets.len(), self.out);
                for remote in &targets {
                    let r = match local_name(remote) {
                        Some(name) => self.download(remote, Path::new(&name), false).await,
                        None => Err(usage(format!("{remote:?} names no file"))),
                    };
                    tally.add(r);
                }
                tally.finish()?;
            }
            Line::Mput(words) => {
                let mut targets = Vec::new();
                for w in words {
                    targets.extend(expand_local(w)?);
                }
                let mut tally = Tally::new("mput", targets.len(), self.out);
                for local in &targets {
                    let r = match remote_name(local) {
                        Some(name) => self.upload(local, &name, false).await,
                        None => Err(usage(format!("{} names no file", local.display()))),
                    };
                    tally.add(r);
                }
                tally.finish()?;
            }
            Line::Rm(words) => {
                let mut targets = Vec::new();
                for w in words {
                    targets.extend(self.remote_files(w).await?);
                }
                let mut tally = Tally::new("rm", targets.len(), self.out);
                for path in &targets {
                    let r = self.remote_delete(path).await;
                    if r.is_ok() {
                        self.out.done("rm", path);
                    }
                    tally.add(r);
                }
                tally.finish()?;
            }
            Line::Mkdir { parents, dirs } => {
                let mut tally = Tally::new("mkdir", dirs.len(), self.out);
                for dir in dirs {
                    let r = if *parents {
                        self.remote_mkdir(dir, true).await
                    } else {
                        self.remote_mkdir(dir, false).await
                    };
                    if r.is_ok() {
                        self.out.done("mkdir", dir);
                    }
                    tally.add(r);
                }
                tally.finish()?;
            }
            Line::Rmdir(dirs) => {
                let mut tally = Tally::new("rmdir", dirs.len(), self.out);
                for dir in dirs {
                    let r = self.remote_rmdir(dir).await;
                    if r.is_ok() {
                        self.out.done("rmdir", dir);
                    }
                    tally.add(r);
                }
                tally.finish()?;
            }
            Line::Mv { from, to } => {
                // `mv a.txt dir/` keeps the name, as `put` does.
                let to = match (to.ends_with('/'), local_name(from)) {
                    (true, Some(name)) => format!("{to}{name}"),
                    _ => to.clone(),
                };
                self.client().await?.rename(from, &to).await?;
                self.out.moved(from, &to);
            }
            Line::Lcd(dir) => {
                let dir = match dir {
                    Some(d) => PathBuf::from(d),
                    None => std::env::var_os("HOME")
                        .map(PathBuf::from)
                        .ok_or_else(|| usage("lcd: no directory given and HOME is not set"))?,
                };
                std::env::set_current_dir(&dir)
                    .with_context(|| format!("lcd {}", dir.display()))?;
                let now = std::env::current_dir().context("lcd")?;
                self.out
                    .note(&format!("local directory now {}", now.display()));
            }
            Line::Lpwd => {
                let now = std::env::current_dir().context("lpwd")?;
                if self.json {
                    println!("{}", json!({ "lpwd": now.display().to_string() }));
                } else {
                    println!("{}", now.display());
                }
            }
            Line::Local(command) => run_local(command).await?,
            Line::Help(name) => print_help(name.as_deref())?,
            Line::Quit => {
                self.close().await;
                return Ok(Flow::Quit);
            }
        }
        Ok(Flow::Continue)
    }

    async fn remote_delete(&mut self, path: &str) -> Result<()> {
        self.client().await?.delete(path).await?;
        Ok(())
    }

    async fn remote_mkdir(&mut self, dir: &str, parents: bool) -> Result<()> {
        let c = self.client().await?;
        if parents {
            c.mkdir_all(dir).await?;
        } else {
            c.mkdir(dir).await?;
        }
        Ok(())
    }

    async fn remote_rmdir(&mut self, dir: &str) -> Result<()> {
        self.client().await?.rmdir(dir).await?;
        Ok(())
    }

    async fn ls(&mut self, path: Option<&str>, long: bool) -> Result<()> {
        let entries = match path {
            Some(p) if is_glob(p) => {
                let glob = split(p)?;
                let listing = self.list(&glob.dir).await?;
                let found: Vec<ListEntry> =
                    select(&glob, listing).into_iter().map(|(_, e)| e).collect();
                if found.is_empty() {
                    // Nothing matched: the server's answer to the name as written.
                    self.list(p).await?
                } else {
                    found
                }
            }
            _ => {
                let p = path.unwrap_or("");
                match self.list(p).await {
                    Ok(entries) => entries,
                    Err(e) if !p.is_empty() => {
                        // `ls FILE` shows the file, as ls does.
                        match self.client().await?.stat(p).await {
                            Ok(entry) if !entry.is_dir() => vec![entry],
                            _ => return Err(e),
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        self.out.listing(&entries, long);
        Ok(())
    }

    async fn cd(&mut self, dir: Option<&str>) -> Result<()> {
        let target = match dir {
            None => self.home.clone(),
            Some("-") => self
                .previous
                .clone()
                .ok_or_else(|| usage("cd -: no previous directory"))?,
            Some(d) => d.to_string(),
        };
        let c = self.client().await?;
        c.cwd(&target).await?;
        let now = c.pwd().await?;
        self.previous = Some(std::mem::replace(&mut self.cwd, now));
        Ok(())
    }

    /// Downloads one file. On failure a local file that this run created and wrote nothing
    /// to is removed; one with data is kept and said to be incomplete (`get -c` continues).
    async fn download(&mut self, remote: &str, local: &Path, resume: bool) -> Result<()> {
        let out = self.out;
        let label = local_name(remote).unwrap_or_else(|| remote.to_string());
        let existed = local.exists();
        let c = self.client().await?;
        let size = c.size(remote).await.ok();
        let mtime = c.mdtm(remote).await.ok();
        let existing = if resume {
            std::fs::metadata(local).map(|m| m.len()).unwrap_or(0)
        } else {
            0
        };
        if let (true, Some(sz)) = (resume, size) {
            if existing > sz {
                bail!(
                    "{} is longer ({existing} bytes) than the remote file ({sz} bytes); not continuing",
                    local.display()
                );
            }
            if existing == sz {
                out.note(&format!("{} is already complete", local.display()));
                return Ok(());
            }
        }
        let bar = out.bytes_bar(size, &label);
        bar.set_position(existing);
        let started = Instant::now();
        let mut received = 0u64;
        let outcome = c
            .download_file(remote, local, resume, mtime, &mut |n| {
                received += n;
                bar.inc(n)
            })
            .await;
        bar.finish_and_clear();
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                let now = std::fs::metadata(local).map(|m| m.len()).unwrap_or(0);
                if !existed && now == 0 {
                    let _ = std::fs::remove_file(local);
                    return Err(e.into());
                }
                if received > 0 {
                    return Err(anyhow::Error::new(e).context(format!(
                        "{} is incomplete ({now} bytes; get -c continues it)",
                        local.display()
                    )));
                }
                return Err(e.into());
            }
        };
        let secs = started.elapsed().as_secs_f64();
        crate::commands::check_downloaded(local, size)?;
        out.transfer(&Transfer {
            what: "get",
            remote,
            local,
            bytes: outcome.bytes,
            resumed_from: existing,
            secs,
            tls_resumed: outcome.resumed,
            // One stream on the shell's own session; no retries but the reconnect
            // before each command.
            segments: 1,
            retries: 0,
        });
        Ok(())
    }

    /// Uploads one file and checks the size the server then has.
    async fn upload(&mut self, local: &Path, remote: &str, resume: bool) -> Result<()> {
        let out = self.out;
        let meta =
            std::fs::metadata(local).with_context(|| format!("reading {}", local.display()))?;
        if !meta.is_file() {
            return Err(usage(format!("{} is not a file", local.display())));
        }
        let len = meta.len();
        let label = remote_name(local).unwrap_or_else(|| remote.to_string());
        let c = self.client().await?;
        let offset = if resume {
            c.size(remote).await.unwrap_or(0)
        } else {
            0
        };
        let bar = out.bytes_bar(Some(len), &label);
        bar.set_position(offset);
        let started = Instant::now();
        let outcome = c
            .upload_file(local, remote, resume, &mut |n| bar.inc(n))
            .await;
        bar.finish_and_clear();
        let outcome = outcome?;
        let secs = started.elapsed().as_secs_f64();
        crate::commands::check_uploaded(c.size(remote).await.ok(), remote, local, len)?;
        out.transfer(&Transfer {
            what: "put",
            remote,
            local,
            bytes: outcome.bytes,
            resumed_from: offset,
            secs,
            tls_resumed: outcome.resumed,
            // One stream on the shell's own session; no retries but the reconnect
            // before each command.
            segments: 1,
            retries: 0,
        });
        Ok(())
    }
}

/// The outcome of a command on several files: it goes through all of them, printing each
/// failure as it comes, and then fails (with the exit code of the first failure) if any did.
/// With a single file its error is simply the command's.
struct Tally {
    what: &'static str,
    total: usize,
    failed: usize,
    first: Option<anyhow::Error>,
    out: Output,
}

impl Tally {
    fn new(what: &'static str, total: usize, out: Output) -> Tally {
        Tally {
            what,
            total,
            failed: 0,
            first: None,
            out,
        }
    }

    fn add(&mut self, result: Result<()>) {
        if let Err(e) = result {
            self.failed += 1;
            if self.total > 1 {
                self.out.error(&e, exit_code(&e));
            }
            self.first.get_or_insert(e);
        }
    }

    fn finish(self) -> Result<()> {
        match self.first {
            None => Ok(()),
            Some(e) if self.total == 1 => Err(e),
            Some(e) => Err(e.context(format!(
                "{}: {} of {} failed; the first",
                self.what, self.failed, self.total
            ))),
        }
    }
}

/// `!COMMAND` through `sh -c`, or an interactive `$SHELL` for a bare `!`, with the
/// terminal; a non-zero exit is an error.
async fn run_local(command: &str) -> Result<()> {
    let mut cmd = if command.is_empty() {
        let shell = std::env::var_os("SHELL").unwrap_or_else(|| "/bin/sh".into());
        tokio::process::Command::new(shell)
    } else {
        let mut c = tokio::process::Command::new("/bin/sh");
        c.arg("-c").arg(command);
        c
    };
    let status = cmd
        .status()
        .await
        .with_context(|| format!("running {command:?}"))?;
    if !status.success() {
        bail!("local command {command:?} failed ({status})");
    }
    Ok(())
}

fn print_help(name: Option<&str>) -> Result<()> {
    match name {
        Some(n) => {
            let c = help_of(&n.to_ascii_lowercase())
                .ok_or_else(|| usage(format!("unknown command {n:?} (help lists the commands)")))?;
            println!("{:<26} {}", c.usage, c.about);
            if c.names.len() > 1 {
                println!("also: {}", c.names[1..].join(", "));
            }
        }
        None => {
            for c in COMMANDS {
                println!("{:<26} {}", c.usage, c.about);
            }
            println!();
            println!(
                "Quote names with spaces ('a b.txt' or a\\ b.txt). Wildcards (* ? [..] {{a,b}}) in"
            );
            println!("the last part of a path select files for ls, rm and mget (remote) and mput");
            println!("(local); write a literal * as [*]. Tab completes commands and paths.");
        }
    }
    Ok(())
}
