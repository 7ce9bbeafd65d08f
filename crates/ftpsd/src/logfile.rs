//! The server log: text or JSON lines (`[log] format`), to standard error or to a file
//! (`[log] file`) that `SIGUSR1` reopens, so that logrotate can move it away (with
//! `postrotate kill -USR1`) without losing a line.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ftps_server::config::{LogConfig, LogFormat};
use tracing_subscriber::fmt::MakeWriter;

/// A log file that can be reopened by its path.
#[derive(Clone, Debug)]
pub struct LogFile {
    path: PathBuf,
    file: Arc<Mutex<File>>,
}

impl LogFile {
    fn open(path: &Path) -> io::Result<LogFile> {
        Ok(LogFile {
            path: path.to_path_buf(),
            file: Arc::new(Mutex::new(open_append(path)?)),
        })
    }

    /// Opens the path again; the old file keeps what was written to it.
    pub fn reopen(&self) -> io::Result<()> {
        let new = open_append(&self.path)?;
        *self.file.lock().unwrap_or_else(|p| p.into_inner()) = new;
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// One log line's writer: the line is built in memory and written with one `write`.
pub struct LineWriter {
    file: Arc<Mutex<File>>,
    line: Vec<u8>,
}

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        // A full disk must not stop the server; the line is lost.
        let _ = file.write_all(&self.line);
    }
}

impl<'a> MakeWriter<'a> for LogFile {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter {
            file: self.file.clone(),
            line: Vec::with_capacity(256),
        }
    }
}

/// Installs the server log as `config` says; the log file, if any, for reopening.
pub fn init(config: &LogConfig) -> anyhow::Result<Option<LogFile>> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        // rustls warns about every client that sends an IP address as SNI (lftp does).
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rustls=error"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let file = match &config.file {
        Some(path) => Some(
            LogFile::open(path)
                .map_err(|e| anyhow::anyhow!("cannot open the log file {}: {e}", path.display()))?,
        ),
        None => None,
    };
    match (config.format, file.clone()) {
        (LogFormat::Text, None) => builder
            .with_ansi(io::stderr().is_terminal())
            .with_writer(io::stderr)
            .init(),
        (LogFormat::Text, Some(file)) => builder.with_ansi(false).with_writer(file).init(),
        (LogFormat::Json, None) => builder.json().with_writer(io::stderr).init(),
        (LogFormat::Json, Some(file)) => builder.json().with_writer(file).init(),
    }
    Ok(file)
}
