//! The report: the figures measured (a column per server, a row per figure) and the markdown
//! table with ratios to the best reference server and the targets.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use crate::plan::{exe_dir, Plan, RunArgs};

/// unFTP 0.16's returning-user logins/s from the reference measurements (unFTP is
/// not run by this harness); the returning-user target must beat it.
const UNFTP_LOGINS: f64 = 1174.0;

/// One measured figure.
#[derive(Clone, Debug)]
pub enum Cell {
    /// The figure.
    Value(f64),
    /// The workload failed, and why.
    Failed(String),
    /// A count short of what was asked, and why.
    Partial(f64, String),
}

impl Cell {
    /// The figure, if the workload succeeded in full.
    pub fn value(&self) -> Option<f64> {
        match self {
            Cell::Value(v) => Some(*v),
            _ => None,
        }
    }
}

/// A row of the table: one figure, measured on each server and on raw TLS where it applies.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Row {
    /// One download, MiB/s.
    Down,
    /// Server CPU seconds per GiB downloaded.
    DownCpu,
    /// Raw TLS only: the peer sends a file read from tmpfs instead of one cached buffer.
    DownFile,
    /// Sender CPU seconds per GiB of that file.
    DownFileCpu,
    /// One upload, MiB/s.
    Up,
    /// Server CPU seconds per GiB uploaded.
    UpCpu,
    /// Parallel downloads, MiB/s in all.
    Parallel,
    /// Small-file operations per second over TLS 1.3, one file after the other.
    Small13,
    /// The same operations per session in batches: all STORs, one LIST, all RETRs, all DELEs.
    SmallBatched13,
    /// The same over TLS 1.2.
    Small12,
    /// The batched order over TLS 1.2.
    SmallBatched12,
    /// Server CPU milliseconds per small-file operation, for each of the four runs above.
    SmallCpu13,
    SmallCpuBatched13,
    SmallCpu12,
    SmallCpuBatched12,
    /// A real client (curl, lftp) run as it comes: a rate or the server's CPU for one of
    /// its workloads (see `scenarios::clients`).
    Client(RealClient, ClientWork, Measure),
    /// Scale under load: sessions held (idle and busy), see `scenarios::scale`.
    ScaleSessions,
    /// Aggregate download rate of the busy sessions, MiB/s.
    ScaleRate,
    /// 99th-percentile latency of NOOP on idle sessions while the busy ones transfer, ms.
    ScaleNoopP99,
    /// The same for LIST (EPSV, data connection, listing, 226), ms.
    ScaleListP99,
    /// Server memory (PSS of every server process) under that load, MiB.
    ScalePss,
    /// Logins per second of one account that has logged in before.
    LoginReturning,
    /// Logins per second of accounts logging in for the first time.
    LoginFirst,
    /// Server memory per idle session (KiB) with this many open.
    Mem(usize),
    /// Of this many idle sessions, how many were held without error.
    Held(usize),
    /// PSS with no session open after all the workloads (allocator high-water marks).
    Retained,
}

impl Row {
    /// Whether a higher value is better (a rate) rather than worse (CPU time, memory).
    fn higher_is_better(self) -> bool {
        !matches!(
            self,
            Row::DownCpu
                | Row::DownFileCpu
                | Row::UpCpu
                | Row::Mem(_)
                | Row::Retained
                | Row::SmallCpu13
                | Row::SmallCpuBatched13
                | Row::SmallCpu12
                | Row::SmallCpuBatched12
                | Row::Client(_, _, Measure::Cpu)
                | Row::ScaleNoopP99
                | Row::ScaleListP99
                | Row::ScalePss
        )
    }
}

/// A real FTPS client run as a subprocess.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RealClient {
    Curl,
    Lftp,
}

impl RealClient {
    /// The program's name.
    pub fn name(self) -> &'static str {
        match self {
            RealClient::Curl => "curl",
            RealClient::Lftp => "lftp",
        }
    }
}

/// What a real client does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ClientWork {
    /// One download of the big file.
    Download,
    /// One upload of the big file.
    Upload,
    /// Many small files uploaded in one client run.
    SmallUp,
    /// The same files downloaded in one client run.
    SmallDown,
}

/// Which figure of a real client's workload.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Measure {
    /// MiB/s (big file) or files/s (small files), from the client's wall time.
    Rate,
    /// Server CPU: s per GiB (big file) or ms per file (small files).
    Cpu,
    /// The client's own CPU over its run divided by its wall time: cores it kept busy.
    ClientCores,
}

/// One column of the table: a server's (or raw TLS's) figures, and the notes printed
/// under the table.
#[derive(Default)]
pub struct Column {
    /// The figures, in the order they were measured.
    pub cells: Vec<(Row, Cell)>,
    /// Lines printed under the table.
    pub notes: Vec<String>,
}

impl Column {
    /// The figure for `row`, if it was measured.
    pub fn get(&self, row: Row) -> Option<&Cell> {
        self.cells.iter().find(|(r, _)| *r == row).map(|(_, c)| c)
    }
    /// Records the figure for `row`.
    pub fn set(&mut self, row: Row, cell: Cell) {
        self.cells.push((row, cell));
    }
    /// How many figures failed in full or in part.
    pub fn errors(&self) -> usize {
        self.cells
            .iter()
            .filter(|(_, c)| matches!(c, Cell::Failed(_) | Cell::Partial(..)))
            .count()
    }
}

/// The rendered report, and how many of its figures count as failures (the exit status).
pub struct Report {
    /// The markdown table and the notes under it.
    pub text: String,
    /// Failed figures of ftpsd and raw TLS (a reference server's failures do not count).
    pub errors: usize,
}

/// Per row, the better of two measurements (higher rate, lower CPU).
pub fn merge_best(a: Column, b: Column) -> Column {
    let mut out = Column::default();
    for (row, cell) in a.cells {
        let better = match (cell.value(), b.get(row).and_then(Cell::value)) {
            (Some(x), Some(y)) if row.higher_is_better() => Cell::Value(x.max(y)),
            (Some(x), Some(y)) => Cell::Value(x.min(y)),
            (None, Some(y)) => Cell::Value(y),
            _ => cell,
        };
        out.set(row, better);
    }
    for (row, cell) in b.cells {
        if out.get(row).is_none() {
            out.set(row, cell);
        }
    }
    out
}

/// A figure, or the error that stopped its workload.
pub fn to_cell(r: Result<f64>) -> Cell {
    match r {
        Ok(v) => Cell::Value(v),
        Err(e) => Cell::Failed(format!("{e:#}")),
    }
}

fn fmt_value(row: Row, v: f64) -> String {
    match row {
        Row::DownCpu | Row::DownFileCpu | Row::UpCpu => format!("{v:.2}"),
        Row::SmallCpu13 | Row::SmallCpuBatched13 | Row::SmallCpu12 | Row::SmallCpuBatched12 => {
            format!("{v:.3}")
        }
        Row::Client(_, _, Measure::Cpu | Measure::ClientCores) => format!("{v:.2}"),
        Row::ScaleNoopP99 | Row::ScaleListP99 => format!("{v:.1}"),
        Row::Mem(_) | Row::Retained => format!("{v:.1}"),
        Row::Held(_) => format!("{v:.0}"),
        _ => format!("{v:.0}"),
    }
}

fn fmt_cell(row: Row, c: Option<&Cell>) -> String {
    match c {
        Some(Cell::Value(v)) => fmt_value(row, *v),
        Some(Cell::Failed(_)) => "FAILED".into(),
        Some(Cell::Partial(v, _)) => format!("{} (FAILED)", fmt_value(row, *v)),
        None => "—".into(),
    }
}

/// Writes the markdown table and the notes under it.
#[allow(clippy::too_many_arguments)]
pub fn render(
    out: &mut String,
    plan: &Plan,
    args: &RunArgs,
    columns: &[(String, Column)],
    raw: &Column,
    skipped: &[String],
    load: (&str, &str),
    elapsed: Duration,
    nofile: u64,
    files_on: &Path,
) {
    let big = if plan.big >= 1 << 30 {
        format!("{} GiB", plan.big >> 30)
    } else {
        format!("{} MiB", plan.big >> 20)
    };
    let mut rows: Vec<(Row, String)> = vec![
        (
            Row::Down,
            format!("1 download of {big}, MiB/s (best of {})", plan.repeats),
        ),
        (Row::DownCpu, "server CPU s per GiB downloaded".into()),
        (
            Row::Up,
            format!("1 upload of {big}, MiB/s (best of {})", plan.repeats),
        ),
        (Row::UpCpu, "server CPU s per GiB uploaded".into()),
        (
            Row::Parallel,
            format!(
                "{} parallel downloads of {} MiB, MiB/s",
                plan.parallel,
                plan.parallel_size >> 20
            ),
        ),
        (
            Row::Small13,
            format!(
                "small files, {} sessions x {} x {} KiB STOR/LIST/RETR/DELE, ops/s, TLS 1.3",
                plan.small_sessions,
                plan.small_iters,
                plan.small_size / 1024
            ),
        ),
        (
            Row::SmallBatched13,
            "same in batches per session (all STOR, LIST, all RETR, all DELE), TLS 1.3".into(),
        ),
        (Row::Small12, "same over TLS 1.2, ops/s".into()),
        (
            Row::SmallBatched12,
            "same in batches, TLS 1.2, ops/s".into(),
        ),
        (
            Row::SmallCpu13,
            "server CPU ms per small-file operation, TLS 1.3".into(),
        ),
        (
            Row::SmallCpuBatched13,
            "server CPU ms per small-file operation, TLS 1.3, batches".into(),
        ),
        (
            Row::SmallCpu12,
            "server CPU ms per small-file operation, TLS 1.2".into(),
        ),
        (
            Row::SmallCpuBatched12,
            "server CPU ms per small-file operation, TLS 1.2, batches".into(),
        ),
        (
            Row::LoginReturning,
            format!(
                "logins/s, returning user (full TLS handshake + USER/PASS + QUIT, {} at a time)",
                plan.login_concurrency
            ),
        ),
        (
            Row::LoginFirst,
            format!("logins/s, first login of {} accounts", plan.fresh_users),
        ),
    ];
    let mut all_sessions: Vec<usize> = plan.sessions.clone();
    if !all_sessions.contains(&plan.ref_sessions) {
        all_sessions.push(plan.ref_sessions);
    }
    all_sessions.sort();
    for &n in &all_sessions {
        rows.push((
            Row::Mem(n),
            format!("memory per idle TLS session at {n} sessions, KiB (PSS, all server processes)"),
        ));
    }
    for &n in &all_sessions {
        rows.push((
            Row::Held(n),
            format!("of {n} logged-in TLS sessions, held without error"),
        ));
    }
    rows.push((
        Row::Retained,
        "server memory after all workloads, no session open, MiB (PSS)".into(),
    ));

    write_table(out, plan, &rows, columns, Some(raw));
    let client_rows = client_rows(plan);
    if columns
        .iter()
        .any(|(_, c)| client_rows.iter().any(|(r, _)| c.get(*r).is_some()))
    {
        let _ = writeln!(
            out,
            "\nReal clients, run as they come (see docs/performance.md for exactly what each does):\n"
        );
        write_table(out, plan, &client_rows, columns, None);
    }
    let scale_rows = scale_rows(plan);
    if columns
        .iter()
        .any(|(_, c)| scale_rows.iter().any(|(r, _)| c.get(*r).is_some()))
    {
        let _ = writeln!(
            out,
            "\nScale under load: {} logged-in TLS 1.3 sessions (or as many as the server holds), {} of \
             them downloading {} KiB files without pause for {} s while the idle ones are probed \
             with NOOP and LIST:\n",
            plan.scale_sessions,
            plan.scale_busy,
            plan.scale_file_kib,
            plan.scale_seconds
        );
        write_table(out, plan, &scale_rows, columns, None);
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Run: `{}`{}; {:.0} s; load average before {} / after {}; {} cores; file-descriptor limit {nofile}; files on {}.",
        std::env::args().collect::<Vec<_>>().join(" ").replace(&*exe_dir().to_string_lossy(), "…"),
        if args.quick { " (quick smoke run: figures are meaningless)" } else { "" },
        elapsed.as_secs_f64(),
        load.0,
        load.1,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        files_on.display(),
    );
    let _ = writeln!(out, "Ratios compare ftpsd with the best reference server in this run (highest rate, lowest CPU or memory).");
    for s in skipped {
        let _ = writeln!(out, "- {s}");
    }
    for (name, c) in columns {
        for n in &c.notes {
            let _ = writeln!(out, "- {name}: {n}");
        }
    }
    for n in &raw.notes {
        let _ = writeln!(out, "- raw TLS: {n}");
    }
    for (row, c) in &raw.cells {
        if let Cell::Failed(e) = c {
            let _ = writeln!(out, "- raw TLS {row:?}: {e}");
        }
    }
}

/// Writes one markdown table: a row per figure, a column per server (and raw TLS when
/// given), the ratio of ftpsd to the best reference server, the target and whether it is met.
fn write_table(
    out: &mut String,
    plan: &Plan,
    rows: &[(Row, String)],
    columns: &[(String, Column)],
    raw: Option<&Column>,
) {
    let _ = writeln!(
        out,
        "| figure | {}{} | ftpsd vs best reference | target | met |",
        columns
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(" | "),
        if raw.is_some() {
            " | raw TLS (rustls both ends)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "|---|{}{}---|---|---|",
        "---|".repeat(columns.len()),
        if raw.is_some() { "---|" } else { "" }
    );
    let empty = Column::default();
    let with_raw = raw.is_some();
    let raw = raw.unwrap_or(&empty);
    let ftpsd = columns.iter().find(|(n, _)| n == "ftpsd").map(|(_, c)| c);
    let refs: Vec<&Column> = columns
        .iter()
        .filter(|(n, _)| n != "ftpsd")
        .map(|(_, c)| c)
        .collect();
    for (row, label) in rows {
        let cells: Vec<String> = columns
            .iter()
            .map(|(_, c)| fmt_cell(*row, c.get(*row)))
            .collect();
        let raw_cell = match raw.get(*row) {
            Some(c) => {
                let s = fmt_cell(*row, Some(c));
                let from_file = |file_row| {
                    raw.get(file_row)
                        .and_then(Cell::value)
                        .map(|v| fmt_value(file_row, v))
                };
                match row {
                    Row::Down => match from_file(Row::DownFile) {
                        Some(f) => format!("{s}; {f} sending the file"),
                        None => s,
                    },
                    Row::DownCpu => match from_file(Row::DownFileCpu) {
                        Some(f) => format!("{s} (sender); {f} sending the file"),
                        None => format!("{s} (sender)"),
                    },
                    Row::UpCpu => format!("{s} (receiver)"),
                    Row::SmallCpu13
                    | Row::SmallCpuBatched13
                    | Row::SmallCpu12
                    | Row::SmallCpuBatched12 => format!("{s} (the data connections alone)"),
                    _ => s,
                }
            }
            None => String::new(),
        };
        let mine = ftpsd.and_then(|c| c.get(*row)).and_then(Cell::value);
        let ref_values: Vec<f64> = refs
            .iter()
            .filter_map(|c| c.get(*row).and_then(Cell::value))
            .collect();
        let best = if row.higher_is_better() {
            ref_values
                .iter()
                .copied()
                .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))))
        } else {
            ref_values
                .iter()
                .copied()
                .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.min(v))))
        };
        let ratio = match (mine, best) {
            (Some(m), Some(b))
                if b > 0.0
                    && !matches!(row, Row::Held(_) | Row::Client(_, _, Measure::ClientCores)) =>
            {
                Some(m / b)
            }
            _ => None,
        };
        let mut ratio_text = ratio
            .map(|r| format!("{r:.2}×"))
            .unwrap_or_else(|| "—".into());
        let raw_value = raw.get(*row).and_then(Cell::value);
        let (target, met): (String, Option<bool>) = match row {
            Row::Down => {
                let of_raw = match (mine, raw_value) {
                    (Some(m), Some(r)) if r > 0.0 => Some(m / r),
                    _ => None,
                };
                if let Some(f) = of_raw {
                    ratio_text += &format!("; {:.0}% of raw TLS", f * 100.0);
                }
                let raw_file = raw.get(Row::DownFile).and_then(Cell::value);
                if let (Some(m), Some(r)) = (mine, raw_file.filter(|r| *r > 0.0)) {
                    ratio_text += &format!(", {:.0}% of raw TLS sending the file", m / r * 100.0);
                }
                let met = match (ratio, of_raw) {
                    (Some(r), Some(f)) => Some(r >= 1.3 && f >= 0.85),
                    _ => None,
                };
                ("≥ 1.3× and ≥ 85% of raw TLS".into(), met)
            }
            Row::DownCpu => ("≤ 0.6×".into(), ratio.map(|r| r <= 0.6)),
            Row::Up => ("≥ 1.3×".into(), ratio.map(|r| r >= 1.3)),
            Row::UpCpu => ("≤ 0.75×".into(), ratio.map(|r| r <= 0.75)),
            Row::Small13 | Row::SmallBatched13 | Row::Small12 | Row::SmallBatched12 => {
                ("≥ 1.5×".into(), ratio.map(|r| r >= 1.5))
            }
            Row::SmallCpu13 | Row::SmallCpuBatched13 | Row::SmallCpu12 | Row::SmallCpuBatched12 => {
                ("≤ 0.5×".into(), ratio.map(|r| r <= 0.5))
            }
            Row::Client(_, ClientWork::Download | ClientWork::Upload, Measure::Rate) => {
                ("≥ 1.3×".into(), ratio.map(|r| r >= 1.3))
            }
            Row::Client(_, ClientWork::Download, Measure::Cpu) => {
                ("≤ 0.6×".into(), ratio.map(|r| r <= 0.6))
            }
            Row::Client(_, ClientWork::Upload, Measure::Cpu) => {
                ("≤ 0.75×".into(), ratio.map(|r| r <= 0.75))
            }
            Row::LoginReturning => (
                format!("≥ 3× and > unFTP's {UNFTP_LOGINS:.0} (issue figure)"),
                ratio.zip(mine).map(|(r, m)| r >= 3.0 && m > UNFTP_LOGINS),
            ),
            Row::Mem(_) => ("≤ 16 KiB".into(), mine.map(|m| m <= 16.0)),
            Row::Held(n) if plan.sessions.contains(n) && *n >= 10_000 => (
                "all, no error".into(),
                ftpsd
                    .and_then(|c| c.get(*row))
                    .map(|c| matches!(c, Cell::Value(v) if *v as usize == *n)),
            ),
            _ => (String::new(), None),
        };
        let met_text = match met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None if target.is_empty() => "",
            None => "n/a",
        };
        let raw_cell = if with_raw {
            format!(" | {raw_cell}")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "| {label} | {}{raw_cell} | {ratio_text} | {target} | {met_text} |",
            cells.join(" | ")
        );
    }
}

/// The rows of the real-client table.
fn client_rows(plan: &Plan) -> Vec<(Row, String)> {
    let big = if plan.client_big >= 1 << 30 {
        format!("{} GiB", plan.client_big >> 30)
    } else {
        format!("{} MiB", plan.client_big >> 20)
    };
    let mut rows = Vec::new();
    for client in [RealClient::Curl, RealClient::Lftp] {
        let name = client.name();
        let files = crate::scenarios::small_files_for(client, plan);
        for (work, rate, cpu) in [
            (
                ClientWork::Download,
                format!("{name}: 1 download of {big}, MiB/s"),
                "server CPU s per GiB".to_string(),
            ),
            (
                ClientWork::Upload,
                format!("{name}: 1 upload of {big}, MiB/s"),
                "server CPU s per GiB".into(),
            ),
            (
                ClientWork::SmallUp,
                format!("{name}: {files} files of 4 KiB uploaded in one run, files/s"),
                "server CPU ms per file".into(),
            ),
            (
                ClientWork::SmallDown,
                format!("{name}: the same {files} files downloaded in one run, files/s"),
                "server CPU ms per file".into(),
            ),
        ] {
            rows.push((Row::Client(client, work, Measure::Rate), rate));
            rows.push((
                Row::Client(client, work, Measure::Cpu),
                format!("{name}: {cpu}"),
            ));
            if matches!(work, ClientWork::Download | ClientWork::Upload) {
                rows.push((
                    Row::Client(client, work, Measure::ClientCores),
                    format!("{name}: the client's own CPU, cores busy (CPU s / wall s)"),
                ));
            }
        }
    }
    rows
}

/// The rows of the scale table.
fn scale_rows(plan: &Plan) -> Vec<(Row, String)> {
    vec![
        (
            Row::ScaleSessions,
            format!("sessions held (of {} asked)", plan.scale_sessions),
        ),
        (
            Row::ScaleRate,
            format!(
                "aggregate download rate of the {} busy sessions, MiB/s",
                plan.scale_busy
            ),
        ),
        (Row::ScaleNoopP99, "NOOP on idle sessions, p99 ms".into()),
        (
            Row::ScaleListP99,
            "LIST on idle sessions (EPSV, data connection, 226), p99 ms".into(),
        ),
        (
            Row::ScalePss,
            "server memory under that load, MiB (PSS, all processes)".into(),
        ),
    ]
}
