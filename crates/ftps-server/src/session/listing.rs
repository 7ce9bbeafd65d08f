//! Listings: the lines of `LIST` (`ls -l`), `NLST` (names, RFC 959 §4.1.3) and `MLSD`
//! (RFC 3659 §7) sent over a data connection, and of `STAT path` over the control
//! connection (RFC 959 §4.1.3), with the facts of `MLST` (RFC 3659 §7.5).

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use ftps_proto::command::ListArgs;
use ftps_proto::listing::{self, FileFacts, FileKind, MlstFacts};

use super::data::pump::{BlockingData, TransferError, TransferResult};
use super::state::LoggedIn;
use crate::permissions::{PathPermissions, Permission};
use crate::policy::Access;
use crate::storage::{Entry, EntryKind, Listing, VirtualPath};

/// What a user may do where, for the `perm` fact (RFC 3659 §7.5.5): its access and its
/// permission rules (its folders' rights among them), as its storage enforces them.
#[derive(Clone, Debug)]
pub(super) struct Rights {
    access: Access,
    rules: Arc<PathPermissions>,
}

impl Rights {
    /// The rights of a logged-in user.
    pub(super) fn of(user: &LoggedIn) -> Rights {
        Rights {
            access: user.access(),
            rules: user.permissions().clone(),
        }
    }

    /// The `perm` letters of an object of `kind` at `path`: for files r(etrieve)
    /// a(ppend) d(elete) f(rename) w(rite); for directories e(nter) l(ist) d(elete)
    /// f(rename) c(reate files) m(ake directories) p(urge its entries).
    fn perm(&self, kind: FileKind, path: &VirtualPath) -> String {
        let allowed = self.rules.allowed_at(self.access, path);
        let has = |p: Permission| allowed.contains(p);
        let letters: &[(char, bool)] = if kind == FileKind::Dir {
            &[
                ('e', true),
                ('l', has(Permission::List)),
                ('d', has(Permission::Rmdir)),
                ('f', has(Permission::Rename)),
                ('c', has(Permission::Upload)),
                ('m', has(Permission::Mkdir)),
                ('p', has(Permission::Delete)),
            ]
        } else {
            let write = has(Permission::Upload) && has(Permission::Overwrite);
            &[
                ('r', has(Permission::Download)),
                ('a', write),
                ('d', has(Permission::Delete)),
                ('f', has(Permission::Rename)),
                ('w', write),
            ]
        };
        letters
            .iter()
            .filter(|(_, on)| *on)
            .map(|(c, _)| c)
            .collect()
    }
}

/// The path of the entry `name` of the directory `dir`.
fn entry_path(dir: &VirtualPath, entry: &Entry) -> VirtualPath {
    dir.join(&entry.name.to_string_lossy())
}

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
    pub(super) rights: Rights,
    /// The listed directory, or the listed file.
    pub(super) path: VirtualPath,
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
        rights,
        path,
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
                _ => format_entry(&entry, ListFormat::Unix, &rights, &path, facts, now, None),
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
                        let at = if name == "." {
                            path.clone()
                        } else {
                            path.parent()
                        };
                        let mut f = entry_facts(&entry, &rights, &at);
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
                let at = entry_path(&path, &entry);
                let line =
                    format_entry(&entry, format, &rights, &at, facts, now, prefix.as_deref());
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

/// One listing line for an entry at `path`.
fn format_entry(
    entry: &Entry,
    format: ListFormat,
    rights: &Rights,
    path: &VirtualPath,
    facts: MlstFacts,
    now: SystemTime,
    prefix: Option<&str>,
) -> String {
    let f: FileFacts = entry_facts(entry, rights, path);
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
/// line of `entry` (at `path`), or, for a directory, of the first `max` of its `entries`.
pub(super) fn listing_lines(
    entry: &Entry,
    entries: Option<Listing>,
    args: &ListArgs,
    rights: &Rights,
    path: &VirtualPath,
    max: usize,
) -> io::Result<Vec<String>> {
    let now = SystemTime::now();
    let line = |entry: &Entry, at: &VirtualPath| {
        format_entry(
            entry,
            ListFormat::Unix,
            rights,
            at,
            MlstFacts::ALL,
            now,
            None,
        )
    };
    let Some(entries) = entries.filter(|_| entry.kind == EntryKind::Dir) else {
        return Ok(vec![line(entry, path)]);
    };
    let mut lines = Vec::new();
    for entry in entries {
        let entry = entry?;
        if entry.name.as_encoded_bytes().starts_with(b".") && !args.all() {
            continue;
        }
        lines.push(line(&entry, &entry_path(path, &entry)));
        if lines.len() >= max {
            break;
        }
    }
    Ok(lines)
}

/// Listing facts for one entry at `path`, as seen by a user with `rights`.
pub(super) fn entry_facts(entry: &Entry, rights: &Rights, path: &VirtualPath) -> FileFacts {
    let kind = match entry.kind {
        EntryKind::File => FileKind::File,
        EntryKind::Dir => FileKind::Dir,
        EntryKind::Symlink => FileKind::Symlink,
        EntryKind::Other => FileKind::Other,
    };
    let perm = rights.perm(kind, path);
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
        perm,
        // Only a link that is shown as a link says where it points.
        link_target: entry
            .link_target
            .as_ref()
            .filter(|_| kind == FileKind::Symlink)
            .map(|t| listing::display_name(t.as_os_str())),
    }
}
