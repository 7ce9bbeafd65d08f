//! `ftps`: a command-line FTPS client. See crates/ftps/README.md.
//!
//! `args` defines the command line, `commands` holds one module per subcommand, `session`
//! (with `target` for URLs and netrc) connects and logs in, `output` prints the results,
//! `exit` turns errors into the documented exit codes, `generate` writes the manual pages
//! and completions.

mod args;
mod commands;
mod exit;
mod generate;
mod output;
mod session;
mod target;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use crate::args::Cli;
use crate::output::Output;

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    args::record_rule_indices(&matches);
    init_logging(cli.opts.verbose);
    let out = Output::new(&cli.opts);
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
    match runtime.block_on(commands::run(cli, &out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let code = exit::exit_code(&err);
            out.error(&err, code);
            ExitCode::from(code)
        }
    }
}

/// Logs go to standard error; `-v` shows the client's FTP conversation, `-vv` everything,
/// and `FTPS_LOG` overrides both with a tracing filter.
fn init_logging(verbose: u8) {
    let level = match verbose {
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
}
