//! The raw-TLS ceiling: the same transfers with rustls on both ends and no FTP.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;

use super::best_of;
use crate::client::TlsVersion;
use crate::plan::{Plan, GIB, MIB};
use crate::raw;
use crate::report::{Cell, Column, Row};
use crate::servers;

/// The raw-TLS figures: one stream each way (best of `plan.repeats`), one stream of `file`
/// when it exists, and parallel streams.
pub async fn raw_ceiling(plan: &Plan, certs: &servers::Certs, file: &Path) -> Result<Column> {
    let exe = std::env::current_exe()?;
    let mut raw_col = Column::default();
    let file = Some(file).filter(|f| f.exists());
    let streams_wanted = plan.runs("raw") || plan.runs("download") || plan.runs("upload");
    let raw_peer = if streams_wanted || plan.runs("small") {
        Some(raw::Peer::start(&exe, &certs.cert, &certs.key, file))
    } else {
        None
    };
    if let Some(peer) = raw_peer {
        match peer {
            Ok(peer) => {
                if plan.runs("small") {
                    small_floor(plan, &peer, &mut raw_col).await;
                }
                if !streams_wanted {
                    peer.stop();
                    return Ok(raw_col);
                }
                let mut streams = vec![
                    (Row::Down, Row::DownCpu, raw::Direction::Download),
                    (Row::Up, Row::UpCpu, raw::Direction::Upload),
                ];
                if file.is_some() {
                    streams.push((
                        Row::DownFile,
                        Row::DownFileCpu,
                        raw::Direction::DownloadFile,
                    ));
                }
                for (row, cpu_row, direction) in streams {
                    match best_of(plan.repeats, || {
                        raw::stream(peer.addr(), peer.pid(), direction, plan.big)
                    })
                    .await
                    {
                        Ok((mibs, cpu)) => {
                            raw_col.set(row, Cell::Value(mibs));
                            raw_col.set(cpu_row, Cell::Value(cpu / (plan.big as f64 / GIB)));
                        }
                        Err(e) => raw_col.set(row, Cell::Failed(format!("{e:#}"))),
                    }
                }
                let t0 = Instant::now();
                let mut tasks = Vec::new();
                for _ in 0..plan.parallel {
                    tasks.push(tokio::spawn(raw::stream(
                        peer.addr(),
                        peer.pid(),
                        raw::Direction::Download,
                        plan.parallel_size,
                    )));
                }
                let mut results = Vec::new();
                for t in tasks {
                    results.push(t.await.map_err(anyhow::Error::from).and_then(|r| r));
                }
                let secs = t0.elapsed().as_secs_f64();
                match results.into_iter().collect::<Result<Vec<_>>>() {
                    Ok(_) => raw_col.set(
                        Row::Parallel,
                        Cell::Value(
                            (plan.parallel as u64 * plan.parallel_size) as f64 / MIB as f64 / secs,
                        ),
                    ),
                    Err(e) => raw_col.set(Row::Parallel, Cell::Failed(format!("{e:#}"))),
                }
                peer.stop();
            }
            Err(e) => raw_col.set(Row::Down, Cell::Failed(format!("raw TLS peer: {e:#}"))),
        }
    }
    Ok(raw_col)
}

/// The small-file workload's data connections alone, with no FTP: the peer's CPU per
/// operation over TLS 1.3 and TLS 1.2, shown in the raw-TLS column of the small-file CPU
/// rows (the same figure for both orders: the connections do not depend on it).
async fn small_floor(plan: &Plan, peer: &raw::Peer, raw_col: &mut Column) {
    for (version, rows) in [
        (TlsVersion::V13, [Row::SmallCpu13, Row::SmallCpuBatched13]),
        (TlsVersion::V12, [Row::SmallCpu12, Row::SmallCpuBatched12]),
    ] {
        let cell = match raw::small_connections(
            peer.addr(),
            peer.pid(),
            version,
            plan.small_sessions,
            plan.small_iters,
            plan.small_size as usize,
        )
        .await
        {
            Ok(ms) => Cell::Value(ms),
            Err(e) => Cell::Failed(format!("data connections alone: {e:#}")),
        };
        for row in rows {
            raw_col.set(row, cell.clone());
        }
    }
}
