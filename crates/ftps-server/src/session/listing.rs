//! Listings: the lines of `LIST` (`ls -l`), `NLST` (names, RFC 959 §4.1.3) and `MLSD`
//! (RFC 3659 §7) sent over a data connection, and of `STAT path` over the control
//! connection (RFC 959 §4.1.3), with the facts of `MLST` (RFC 3659 §7.5).

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use ftps_proto::command::ListArgs;
use ftps_proto::listing::{self, FileFacts, FileKind, MlstFacts};

use super::data::pump::{BlockingData, TransferError, TransferResult};
use crate::policy::Access;
use crate::storage::{Entry, EntryKind, Listing};

/// A listing is sent in pieces of about this size.
const LISTING_CHUNK: usize = 16 * 1024;

/// The three listing formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ListFormat {
    /// `LIST`: `ls -l` lines.
    Unix,
    /// `NLST`: names only.
    Names,
    /// `MLSD`: RFC 3659 facts.
    Mlsd,
}

/// What a listing sends.
pub(super) struct ListJob {
    pub(super) source: ListSource,
    pub(super) args: ListArgs,
    pub(super) format: ListFormat,
    pub(super) access: Access,
    pub(super) facts: MlstFacts,
}

/// What a listing lists.
pub(super) enum ListSource {
    /// A single file rather than a directory (`LIST` and `NLST` of a file).
    File(Box<Entry>),
    /// A directory's entries, and for `MLSD` the entries of the directory itself (`.`,
    /// RFC 3659 §7.5.1 `cdir`) and of its parent (`..`, `pdir`; none for the root).
    Dir {
        entries: Listing,
        cdir: Option<Box<Entry>>,
        pdir: Option<Box<Entry>>,
    },
}

/// Sends a listing, produced as it goes; runs on the transfer's blocking thread.
pub(super) fn send_listing(
    conn: &mut BlockingData,
    job: ListJob,
    progress: &AtomicU64,
) -> TransferResult {
    let ListJob {
        source,
        args,
        format,
        access,
        facts,
    } = job;
    let now = SystemTime::now();
    let mut buf = Vec::with_capacity(LISTING_CHUNK + 1024);
    let mut total = 0u64;
    let mut failed = None;
    let mut emit = |line: String, buf: &mut Vec<u8>| -> bool {
        buf.extend_from_slice(line.as_bytes());
        buf.extend_from_slice(b"\r\n");
        if buf.len() >= LISTING_CHUNK {
            if let Err(e) = conn.write_data(buf) {
                failed = Some(e);
                return false;
            }
            total += buf.len() as u64;
            progress.store(total, Ordering::Relaxed);
            buf.clear();
        }
        true
    };
    match source {
        ListSource::File(entry) => {
            let line = match format {
                ListFormat::Names => args.path.clone().unwrap_or_default(),
                _ => format_entry(&entry, ListFormat::Unix, access, facts, now, None),
            };
            emit(line, &mut buf);
        }
        ListSource::Dir {
            entries,
            cdir,
            pdir,
        } => {
            if format == ListFormat::Mlsd {
                let dirs = [
                    (cdir, ".", FileKind::CurrentDir),
                    (pdir, "..", FileKind::ParentDir),
                ];
                for (entry, name, kind) in dirs {
                    if let Some(entry) = entry {
                        let mut f = entry_facts(&entry, access);
                        f.kind = kind;
                        f.name = name.into();
                        emit(listing::mlsx_line(&f, facts), &mut buf);
                    }
                }
            }
            let prefix = match (&args.path, format) {
                (Some(p), ListFormat::Names) => Some(p.trim_end_matches('/').to_string()),
                _ => None,
            };
            for entry in entries {
                let entry = entry.map_err(TransferError::Local)?;
                let hidden = entry.name.as_encoded_bytes().starts_with(b".");
                if hidden && !args.all() {
                    continue;
                }
                let line = format_entry(&entry, format, access, facts, now, prefix.as_deref());
                if !emit(line, &mut buf) {
                    break;
                }
            }
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    conn.write_data(&buf)?;
    total += buf.len() as u64;
    progress.store(total, Ordering::Relaxed);
    Ok(total)
}

/// One listing line for an entry.
fn format_entry(
    entry: &Entry,
    format: ListFormat,
    access: Access,
    facts: MlstFacts,
    now: SystemTime,
    prefix: Option<&str>,
) -> String {
    let f: FileFacts = entry_facts(entry, access);
    match format {
        ListFormat::Unix => listing::unix_line(&f, now),
        ListFormat::Mlsd => listing::mlsx_line(&f, facts),
        ListFormat::Names => match prefix {
            Some(p) if p != "." => format!("{p}/{}", f.name),
            _ => f.name,
        },
    }
}

/// A bounded listing held in memory, for `STAT path` over the control connection: the
/// line of `entry`, or, for a directory, of the first `max` of its `entries`.
pub(super) fn listing_lines(
    entry: &Entry,
    entries: Option<Listing>,
    args: &ListArgs,
    access: Access,
    max: usize,
) -> io::Result<Vec<String>> {
    let now = SystemTime::now();
    let line =
        |entry: &Entry| format_entry(entry, ListFormat::Unix, access, MlstFacts::ALL, now, None);
    let Some(entries) = entries.filter(|_| entry.kind == EntryKind::Dir) else {
        return Ok(vec![line(entry)]);
    };
    let mut lines = Vec::new();
    for entry in entries {
        let entry = entry?;
        if entry.name.as_encoded_bytes().starts_with(b".") && !args.all() {
            continue;
        }
        lines.push(line(&entry));
        if lines.len() >= max {
            break;
        }
    }
    Ok(lines)
}

/// Listing facts for one entry, as seen by a user with `access`.
pub(super) fn entry_facts(entry: &Entry, access: Access) -> FileFacts {
    let kind = match entry.kind {
        EntryKind::File => FileKind::File,
        EntryKind::Dir => FileKind::Dir,
        EntryKind::Symlink => FileKind::Symlink,
        EntryKind::Other => FileKind::Other,
    };
    // RFC 3659 §7.5.5 letters: files r(etrieve) a(ppend) d(elete) f(rename) w(rite);
    // directories e(nter) l(ist) c(reate) m(kdir) p(urge) d(elete) f(rename).
    let perm = match (kind, access.can_write()) {
        (FileKind::Dir, false) => "el",
        (FileKind::Dir, true) => "eldfcmp",
        (_, false) => "r",
        (_, true) => "radfw",
    };
    FileFacts {
        name: listing::display_name(&entry.name),
        kind,
        size: entry.size,
        modified: entry.modified,
        mode: entry.mode,
        nlink: entry.nlink,
        // Host account names are nobody's business.
        owner: "ftp".into(),
        group: "ftp".into(),
        unique: Some(format!("{:x}g{:x}", entry.dev, entry.ino)),
        perm: perm.into(),
        // Only a link that is shown as a link says where it points.
        link_target: entry
            .link_target
            .as_ref()
            .filter(|_| kind == FileKind::Symlink)
            .map(|t| listing::display_name(t.as_os_str())),
    }
}
