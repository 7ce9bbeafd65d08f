//! `ftps batch`: the shell's commands from a file or standard input, without a terminal.
//! The first failed command stops the run with its exit code, unless `--continue-on-error`.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::shell::exec::{Executor, Flow};
use super::shell::parse::{parse_line, Line};
use crate::args::Opts;
use crate::exit::{exit_code, usage};
use crate::output::Output;

/// Reads and checks every line first (a typo anywhere runs nothing), then connects and runs
/// them in order.
pub async fn run(
    opts: &Opts,
    out: &Output,
    url: &str,
    file: Option<PathBuf>,
    continue_on_error: bool,
) -> Result<()> {
    let from_stdin = file.as_deref().is_none_or(|f| f == Path::new("-"));
    if from_stdin && opts.password_stdin {
        return Err(usage(
            "--password-stdin cannot be used when the commands come from standard input; \
             use FTPS_PASSWORD or ~/.netrc, or give the commands in a file",
        ));
    }
    let (name, text) = match &file {
        Some(f) if !from_stdin => (
            f.display().to_string(),
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?,
        ),
        _ => {
            let text = tokio::task::spawn_blocking(|| {
                let mut text = String::new();
                std::io::stdin().read_to_string(&mut text).map(|_| text)
            })
            .await
            .context("reading standard input")?
            .context("reading commands from standard input")?;
            ("standard input".to_string(), text)
        }
    };
    let mut lines: Vec<(usize, &str, Line)> = Vec::new();
    for (i, text) in text.lines().enumerate() {
        match parse_line(text) {
            Ok(Some(line)) => lines.push((i + 1, text.trim(), line)),
            Ok(None) => {}
            Err(e) => return Err(usage(format!("{name}, line {}: {e}", i + 1))),
        }
    }
    let mut exec = Executor::connect(opts, *out, url).await?;
    let mut first_failure: Option<anyhow::Error> = None;
    let mut failed = 0usize;
    let mut ran = 0usize;
    for (number, text, line) in &lines {
        ran += 1;
        match exec.execute(line).await {
            Ok(Flow::Continue) => {}
            Ok(Flow::Quit) => break,
            Err(e) => {
                let e = e.context(format!("line {number}: {text}"));
                if !continue_on_error {
                    exec.close().await;
                    return Err(e);
                }
                failed += 1;
                out.error(&e, exit_code(&e));
                first_failure.get_or_insert(e);
            }
        }
    }
    exec.close().await;
    match first_failure {
        // The exit code is the first failure's.
        Some(first) => Err(first.context(format!("{failed} of {ran} commands failed; the first"))),
        None => Ok(()),
    }
}
