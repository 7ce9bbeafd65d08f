//! `ftpsd generate`: the manual pages and shell completion scripts, made from the command
//! line's own definition so that they always match it. Hidden from `--help`: packagers
//! and docs/deploy.md call it.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

/// What to generate.
#[derive(Subcommand)]
pub enum GenerateCmd {
    /// Write the manual pages into DIR (created if missing): one for the command and one
    /// per subcommand, e.g. ftpsd.1 and ftpsd-user-add.1.
    Man {
        /// Output directory, e.g. /usr/local/share/man/man1.
        dir: PathBuf,
    },
    /// Print the completion script for SHELL on standard output.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Generates what `what` asks for from `command`, the whole command line.
pub fn run(what: GenerateCmd, mut command: clap::Command) -> anyhow::Result<()> {
    match what {
        GenerateCmd::Man { dir } => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(command, &dir)
                .with_context(|| format!("cannot write the manual pages into {}", dir.display()))
        }
        GenerateCmd::Completions { shell } => {
            let name = command.get_name().to_string();
            // Into memory first: clap_complete panics on a write error (a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, name, &mut script);
            std::io::stdout()
                .write_all(&script)
                .context("cannot write the completion script")
        }
    }
}
