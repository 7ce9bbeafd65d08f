//! `ftps-bench`: runs the same FTPS workloads against ftpsd and, when installed, vsftpd and
//! Pure-FTPd on loopback, plus a raw-TLS ceiling, and prints one markdown table with ratios.
//!
//! See docs/performance.md for the method. `--quick` is a smoke run (tiny sizes) that only
//! checks that every workload completes without errors; it asserts nothing about timings.
//!
//! `plan` turns the command line into what to run, `scenarios` runs the workloads against
//! each server, and `report` renders the table.

mod client;
mod plan;
mod procfs;
mod raw;
mod report;
mod s3;
mod scenarios;
mod servers;
mod soak;
mod tickets;

use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;

use plan::{Cli, Sub, SubArgs};

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.sub {
        Some(Sub::TlsPeer { cert, key, file }) => {
            return raw::serve(&cert, &key, file.as_deref());
        }
        Some(Sub::Soak {
            idle,
            busy,
            seconds,
            file_kib,
            common,
        }) => {
            procfs::raise_nofile();
            let plan = soak::SoakPlan {
                idle,
                busy,
                duration: Duration::from_secs(seconds),
                file_size: file_kib * 1024,
                sample_every: Duration::from_secs((seconds / 60).clamp(1, 10)),
            };
            let ftpsd = common.ftpsd();
            return report(&common, soak::run(&ftpsd, &common.work_dir, &plan));
        }
        Some(Sub::S3 {
            quick,
            size_mib,
            concurrent,
            concurrent_mib,
            repeats,
            part_mib,
            parts_in_flight,
            common,
        }) => {
            let (part_size, parts_in_flight) = (part_mib.max(5) << 20, parts_in_flight.max(1));
            let plan = if quick {
                s3::S3Plan {
                    size: 12 * plan::MIB,
                    concurrent: 3,
                    concurrent_size: 12 * plan::MIB,
                    repeats: 1,
                    part_size,
                    parts_in_flight,
                }
            } else {
                s3::S3Plan {
                    size: size_mib * plan::MIB,
                    concurrent,
                    concurrent_size: concurrent_mib * plan::MIB,
                    repeats: repeats.max(1),
                    part_size,
                    parts_in_flight,
                }
            };
            let ftpsd = common.ftpsd();
            return report(&common, s3::run(&ftpsd, &common.work_dir, &plan));
        }
        None => {}
    }
    let args = cli.run;
    let nofile = procfs::raise_nofile();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(scenarios::run(&args, nofile))?;
    print!("{}", report.text);
    if let Some(out) = &args.out {
        std::fs::write(out, &report.text).with_context(|| format!("write {}", out.display()))?;
    }
    if report.errors > 0 {
        bail!("{} workload(s) failed; see the table", report.errors);
    }
    Ok(())
}

/// Runs a subcommand's `run` on a fresh runtime, prints its report and writes it to
/// `--out` when given.
fn report(common: &SubArgs, run: impl std::future::Future<Output = Result<String>>) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(run)?;
    print!("{report}");
    if let Some(out) = &common.out {
        std::fs::write(out, &report).with_context(|| format!("write {}", out.display()))?;
    }
    Ok(())
}
