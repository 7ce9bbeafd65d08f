//! The transfer log in xferlog format (wu-ftpd's, written by vsftpd, ProFTPD and
//! Pure-FTPd, read by webalizer, awstats and most log tools): one line per finished upload,
//! download or delete, fourteen fields separated by single spaces:
//!
//! ```text
//! Sat Dec  5 14:03:05 2026 2 192.0.2.7 1048576 /reports/q1.csv b _ i r alice ftp 0 * c
//! ```
//!
//! time (UTC), seconds taken (rounded up), client address, bytes, path as the client sees
//! it (whitespace replaced by `_`, so the fields stay fourteen), `a`scii or `b`inary, `_` (no
//! special action), `i`ncoming, `o`utgoing or `d`eleted, `a`nonymous or `r`eal user, the
//! user name (`anonymous` for anonymous logins: their password is never logged), `ftp`,
//! `0` (no RFC 931 lookup), `*`, `c`omplete or `i`ncomplete.
//!
//! Lines are written by a thread of their own, so that a slow disk never holds a session;
//! if its queue is full a line is dropped and counted (`ftpsd_events_dropped_total`).
//! [`Xferlog::reopen`] starts a new file after logrotate moved the old one.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::time::{Duration, SystemTime};

use time::macros::format_description;
use time::OffsetDateTime;

/// Lines waiting for the writer at most.
const QUEUE: usize = 4096;

/// One xferlog line's facts.
#[derive(Clone, Debug)]
pub struct XferRecord {
    /// When the transfer ended.
    pub time: SystemTime,
    /// How long it took.
    pub elapsed: Duration,
    /// The client's address.
    pub client: IpAddr,
    /// Bytes moved.
    pub bytes: u64,
    /// The path as the client sees it.
    pub path: String,
    /// `TYPE A`.
    pub ascii: bool,
    /// Which way.
    pub direction: XferDirection,
    /// An anonymous login.
    pub anonymous: bool,
    /// The user name.
    pub user: String,
    /// Whether the transfer completed.
    pub complete: bool,
}

/// The xferlog direction field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XferDirection {
    /// An upload (`i`).
    Incoming,
    /// A download (`o`).
    Outgoing,
    /// A delete (`d`).
    Deleted,
}

impl XferRecord {
    /// The record as one xferlog line, with its newline.
    pub fn line(&self) -> String {
        let time = OffsetDateTime::from(self.time)
            .format(format_description!(
                "[weekday repr:short] [month repr:short] [day padding:space] [hour]:[minute]:[second] [year]"
            ))
            .unwrap_or_default();
        let seconds = self.elapsed.as_secs() + u64::from(self.elapsed.subsec_nanos() > 0);
        let path = field(&self.path);
        let user = field(&self.user);
        format!(
            "{time} {seconds} {client} {bytes} {path} {kind} _ {direction} {mode} {user} ftp 0 * {status}\n",
            client = self.client,
            bytes = self.bytes,
            kind = if self.ascii { 'a' } else { 'b' },
            direction = match self.direction {
                XferDirection::Incoming => 'i',
                XferDirection::Outgoing => 'o',
                XferDirection::Deleted => 'd',
            },
            mode = if self.anonymous { 'a' } else { 'r' },
            status = if self.complete { 'c' } else { 'i' },
        )
    }
}

/// `text` as one field: whitespace and control characters become `_`.
fn field(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

enum Message {
    Line(String),
    Reopen,
}

/// The transfer log file and its writer thread.
#[derive(Debug)]
pub struct Xferlog {
    queue: SyncSender<Message>,
}

impl Xferlog {
    /// Opens (creating, appending) `path` and starts the writer.
    pub fn open(path: &Path) -> io::Result<Xferlog> {
        let file = open_append(path)?;
        let (queue, lines) = sync_channel::<Message>(QUEUE);
        let path = path.to_path_buf();
        std::thread::Builder::new()
            .name("xferlog".into())
            .spawn(move || write_lines(path, file, lines))?;
        Ok(Xferlog { queue })
    }

    /// Queues `record`; `false` if the queue was full and it was dropped.
    pub fn write(&self, record: &XferRecord) -> bool {
        match self.queue.try_send(Message::Line(record.line())) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// Reopens the file by its path after the lines queued so far (for logrotate).
    pub fn reopen(&self) {
        let _ = self.queue.send(Message::Reopen);
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// The writer thread: writes each line as one `write` (appends stay whole with several
/// writers), and reopens on request.
fn write_lines(path: PathBuf, mut file: File, lines: std::sync::mpsc::Receiver<Message>) {
    for message in lines {
        match message {
            Message::Line(line) => {
                if let Err(e) = file.write_all(line.as_bytes()) {
                    tracing::warn!(path = %path.display(), error = %e, "cannot write the transfer log");
                }
            }
            Message::Reopen => match open_append(&path) {
                Ok(new) => file = new,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot reopen the transfer log; writing to the old file")
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> XferRecord {
        XferRecord {
            // Sat Dec  5 14:03:05 2026 UTC
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_479_385),
            elapsed: Duration::from_millis(1500),
            client: "192.0.2.7".parse().unwrap(),
            bytes: 1_048_576,
            path: "/reports/q1 2026.csv".into(),
            ascii: false,
            direction: XferDirection::Incoming,
            anonymous: false,
            user: "alice".into(),
            complete: true,
        }
    }

    #[test]
    fn a_line_has_the_fourteen_fields() {
        let line = record().line();
        assert_eq!(
            line,
            "Sat Dec  5 14:03:05 2026 2 192.0.2.7 1048576 /reports/q1_2026.csv b _ i r alice ftp 0 * c\n"
        );
        // 5 fields of the date, then 13 more.
        assert_eq!(line.split(' ').filter(|f| !f.is_empty()).count(), 18);
    }

    #[test]
    fn lines_are_appended_and_the_file_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("xferlog");
        let log = Xferlog::open(&path).unwrap();
        assert!(log.write(&record()));
        std::fs::rename(&path, dir.path().join("xferlog.1")).unwrap();
        log.reopen();
        let mut second = record();
        second.direction = XferDirection::Outgoing;
        second.complete = false;
        assert!(log.write(&second));
        drop(log);
        // The writer ends when the queue is dropped; wait for it to have written.
        for _ in 0..100 {
            if std::fs::read_to_string(&path).is_ok_and(|t| !t.is_empty()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let old = std::fs::read_to_string(dir.path().join("xferlog.1")).unwrap();
        let new = std::fs::read_to_string(&path).unwrap();
        assert!(old.ends_with(" i r alice ftp 0 * c\n"), "{old}");
        assert!(new.ends_with(" o r alice ftp 0 * i\n"), "{new}");
    }
}
