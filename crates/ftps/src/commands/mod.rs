//! One module per subcommand; `run` hands each its arguments.

mod batch;
mod cat;
mod get;
mod hash;
mod ls;
mod mirror;
mod mkdir;
mod mv;
mod put;
mod rm;
mod rmdir;
mod shell;
mod stat;

use clap::CommandFactory;

use crate::args::{Cli, Cmd};
use crate::output::Output;

/// Runs the subcommand on the command line.
pub async fn run(cli: Cli, out: &Output) -> anyhow::Result<()> {
    let opts = &cli.opts;
    match cli.command {
        Cmd::Ls { url, long } => ls::run(opts, out, &url, long).await,
        Cmd::Get {
            url,
            local,
            resume,
            segments,
        } => get::run(opts, out, &url, local, resume, segments.into()).await,
        Cmd::Put { local, url, resume } => put::run(opts, out, &local, &url, resume).await,
        Cmd::Cat { url } => cat::run(opts, &url).await,
        Cmd::Rm { url } => rm::run(opts, out, &url).await,
        Cmd::Mkdir { url, parents } => mkdir::run(opts, out, &url, parents).await,
        Cmd::Rmdir { url } => rmdir::run(opts, out, &url).await,
        Cmd::Mv { url, new_path } => mv::run(opts, out, &url, new_path).await,
        Cmd::Stat { url } => stat::run(opts, out, &url).await,
        Cmd::Hash { url, download } => hash::run(opts, out, &url, download).await,
        Cmd::Mirror {
            source,
            destination,
            parallel,
            delete,
            dry_run,
            rules,
        } => {
            mirror::run(
                opts,
                out,
                source,
                destination,
                parallel,
                delete,
                dry_run,
                &rules,
            )
            .await
        }
        Cmd::Shell { url } => shell::run(opts, out, &url).await,
        Cmd::Batch {
            url,
            file,
            continue_on_error,
        } => batch::run(opts, out, &url, file, continue_on_error).await,
        Cmd::Generate(what) => crate::generate::run(what, Cli::command()),
    }
}

/// Fails when a downloaded file does not have the size the server announced (if it did).
/// A destination that is not a regular file (`/dev/null`, a FIFO) has no size to compare.
pub(crate) fn check_downloaded(
    local: &std::path::Path,
    announced: Option<u64>,
) -> anyhow::Result<()> {
    let meta = std::fs::metadata(local).ok();
    if meta.as_ref().is_some_and(|m| !m.is_file()) {
        return Ok(());
    }
    let total = meta.map_or(0, |m| m.len());
    match announced {
        Some(sz) if total != sz => Err(crate::exit::transfer_failed(format!(
            "{} has {total} bytes but the server said {sz}",
            local.display()
        ))),
        _ => Ok(()),
    }
}

/// Fails when the server holds another size than the uploaded file's `len` (a server that
/// does not answer SIZE, `None`, cannot be checked this way).
pub(crate) fn check_uploaded(
    server_size: Option<u64>,
    remote: &str,
    local: &std::path::Path,
    len: u64,
) -> anyhow::Result<()> {
    match server_size {
        Some(sz) if sz != len => Err(crate::exit::transfer_failed(format!(
            "the server has {sz} bytes of {remote} but {} has {len}",
            local.display()
        ))),
        _ => Ok(()),
    }
}
