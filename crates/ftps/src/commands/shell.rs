//! `ftps shell`: an interactive session with the commands of ftp and lftp (`ls cd get put
//! mget mput rm mkdir rmdir mv lcd !`...), line editing, history and tab completion of
//! remote paths. `ftps batch` runs the same commands from a file.
//!
//! `parse` reads command lines, `exec` runs them (for both), `glob` expands wildcards and
//! `complete` completes words.

mod complete;
pub mod exec;
mod glob;
pub mod parse;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{CompletionType, Config, Editor};
use tokio::runtime::Handle;
use tokio::sync::Mutex;

use self::complete::ShellHelper;
use self::exec::{Executor, Flow};
use self::parse::{parse_line, Line};
use crate::args::Opts;
use crate::exit::exit_code;
use crate::output::Output;

/// Lines of history kept.
const HISTORY_LINES: usize = 1000;

/// Connects, then reads and runs commands until `bye` or end of input. A failed command
/// prints its error and the shell goes on.
pub async fn run(opts: &Opts, out: &Output, url: &str) -> Result<()> {
    let exec = Executor::connect(opts, *out, url).await?;
    out.note(&format!(
        "connected to {}; help lists the commands",
        exec.server()
    ));
    let exec = Arc::new(Mutex::new(exec));
    let runtime = Handle::current();
    let out = *out;
    // The line editor blocks; it runs beside the runtime and hands it each command.
    tokio::task::spawn_blocking(move || interact(exec, runtime, out))
        .await
        .context("the shell stopped")?
}

fn interact(exec: Arc<Mutex<Executor>>, runtime: Handle, out: Output) -> Result<()> {
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .max_history_size(HISTORY_LINES)
        .context("history size")?
        .history_ignore_dups(true)
        .context("history")?
        // A line that starts with a space is not remembered, as in bash.
        .history_ignore_space(true)
        .auto_add_history(false)
        .build();
    let mut editor: Editor<ShellHelper, FileHistory> =
        Editor::with_config(config).context("starting the line editor")?;
    editor.set_helper(Some(ShellHelper::new(exec.clone(), runtime.clone())));
    let history = history_file();
    if let Some(path) = &history {
        if path.exists() {
            if let Err(e) = editor.load_history(path) {
                out.note(&format!("cannot read history {}: {e}", path.display()));
            }
        }
    }
    loop {
        let prompt = format!("ftps:{}> ", exec.blocking_lock().cwd());
        let text = match editor.readline(&prompt) {
            Ok(text) => text,
            // Ctrl-C at the prompt drops the line, as in a shell.
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                save_history(&mut editor, history.as_deref(), &out);
                return Err(e).context("reading the command line");
            }
        };
        if !text.trim().is_empty() {
            // Ignored duplicates and space-led lines are not an error.
            let _ = editor.add_history_entry(text.as_str());
        }
        let line = match parse_line(&text) {
            Ok(Some(line)) => line,
            Ok(None) => continue,
            Err(e) => {
                out.error(&crate::exit::usage(e.to_string()), crate::exit::USAGE);
                continue;
            }
        };
        match runtime.block_on(run_interruptible(&exec, &line)) {
            Ok(Flow::Quit) => break,
            Ok(Flow::Continue) => {}
            Err(e) => out.error(&e, exit_code(&e)),
        }
    }
    save_history(&mut editor, history.as_deref(), &out);
    runtime.block_on(async { exec.lock().await.close().await });
    Ok(())
}

/// Runs a command; Ctrl-C stops it (the connection is then dropped, since the server may
/// still be in the middle of it) and the shell goes on. Local commands get Ctrl-C
/// themselves.
async fn run_interruptible(exec: &Mutex<Executor>, line: &Line) -> Result<Flow> {
    let mut exec = exec.lock().await;
    if matches!(line, Line::Local(_)) {
        return exec.execute(line).await;
    }
    let result = tokio::select! {
        r = exec.execute(line) => Some(r),
        _ = tokio::signal::ctrl_c() => None,
    };
    match result {
        Some(r) => r,
        None => {
            exec.abandon_connection();
            Err(anyhow::anyhow!("interrupted"))
        }
    }
}

/// `$XDG_STATE_HOME/ftps/history`, else `~/.local/state/ftps/history`; its directory is
/// created if needed. `None` (no history kept) when neither can be found or made.
fn history_file() -> Option<PathBuf> {
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local").join("state"))
        })?;
    let dir = state.join("ftps");
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir.join("history"))
}

fn save_history(
    editor: &mut Editor<ShellHelper, FileHistory>,
    path: Option<&std::path::Path>,
    out: &Output,
) {
    if let Some(path) = path {
        if let Err(e) = editor.append_history(path) {
            out.note(&format!("cannot save history {}: {e}", path.display()));
        }
    }
}
