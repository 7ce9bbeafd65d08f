//! Directory listing formats: the Unix `ls -l` lines of `LIST` (the de-facto format every
//! client parses), the bare names of `NLST` (RFC 959 §4.1.3), the machine-readable facts of
//! `MLST`/`MLSD` (RFC 3659 §7), and the timestamps of `MDTM` (RFC 3659 §3).

use std::ffi::OsStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;

/// What kind of file an entry is, as MLSx's `type` fact distinguishes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// The directory being listed (`type=cdir`, MLSD only).
    CurrentDir,
    /// Its parent (`type=pdir`, MLSD only).
    ParentDir,
    /// A symbolic link that is not followed.
    Symlink,
    /// Anything else (device, socket, FIFO).
    Other,
}

impl FileKind {
    fn is_dir(self) -> bool {
        matches!(
            self,
            FileKind::Dir | FileKind::CurrentDir | FileKind::ParentDir
        )
    }
}

/// Everything a listing line can say about one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileFacts {
    /// The name to show, already made printable with [`display_name`].
    pub name: String,
    /// The file's kind.
    pub kind: FileKind,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time.
    pub modified: SystemTime,
    /// Unix permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Number of hard links.
    pub nlink: u64,
    /// Owner shown in `LIST`.
    pub owner: String,
    /// Group shown in `LIST`.
    pub group: String,
    /// A value unique to this file on the server (RFC 3659 §7.5.2), e.g. `dev.ino` in hex.
    pub unique: Option<String>,
    /// RFC 3659 §7.5.5 permission letters for this user, e.g. `adfrw`.
    pub perm: String,
    /// For symbolic links: where the link points (shown as `name -> target`).
    pub link_target: Option<String>,
}

/// Makes a file name safe to send: invalid UTF-8 becomes U+FFFD and control characters
/// (CR and LF above all, which would split a listing line) become `?`.
pub fn display_name(name: &OsStr) -> String {
    name.to_string_lossy()
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Half a year: `ls` shows the time of day for files newer than this, the year otherwise.
const RECENT: Duration = Duration::from_secs(182 * 24 * 3600);

fn utc(t: SystemTime) -> OffsetDateTime {
    OffsetDateTime::from(t)
}

/// One `LIST` line in the Unix `ls -l` format, without the line ending.
pub fn unix_line(facts: &FileFacts, now: SystemTime) -> String {
    let type_char = match facts.kind {
        k if k.is_dir() => 'd',
        FileKind::Symlink => 'l',
        FileKind::Other => '?',
        _ => '-',
    };
    let dt = utc(facts.modified);
    let month = MONTHS[usize::from(u8::from(dt.month())) - 1];
    let recent = match now.duration_since(facts.modified) {
        Ok(age) => age < RECENT,
        // In the future (clock skew): show the year, as ls does.
        Err(_) => false,
    };
    let when = if recent {
        format!(
            "{month} {:>2} {:02}:{:02}",
            dt.day(),
            dt.hour(),
            dt.minute()
        )
    } else {
        format!("{month} {:>2}  {}", dt.day(), dt.year())
    };
    let mut line = format!(
        "{type_char}{} {:>3} {:<8} {:<8} {:>12} {when} {}",
        mode_string(facts.mode),
        facts.nlink.max(1),
        facts.owner,
        facts.group,
        facts.size,
        facts.name
    );
    if let Some(target) = &facts.link_target {
        line.push_str(" -> ");
        line.push_str(target);
    }
    line
}

/// `rwxr-xr-x` for permission bits, with setuid, setgid and sticky shown as `ls` does.
fn mode_string(mode: u32) -> String {
    let bit = |mask: u32, c: char| if mode & mask != 0 { c } else { '-' };
    let special = |exec: bool, set: bool, lower: char, upper: char| match (exec, set) {
        (true, true) => lower,
        (false, true) => upper,
        (true, false) => 'x',
        (false, false) => '-',
    };
    [
        bit(0o400, 'r'),
        bit(0o200, 'w'),
        special(mode & 0o100 != 0, mode & 0o4000 != 0, 's', 'S'),
        bit(0o040, 'r'),
        bit(0o020, 'w'),
        special(mode & 0o010 != 0, mode & 0o2000 != 0, 's', 'S'),
        bit(0o004, 'r'),
        bit(0o002, 'w'),
        special(mode & 0o001 != 0, mode & 0o1000 != 0, 't', 'T'),
    ]
    .iter()
    .collect()
}

/// The `YYYYMMDDHHMMSS` UTC timestamp of `MDTM` and the `modify` fact.
pub fn mdtm_time(t: SystemTime) -> String {
    let dt = utc(t);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// Parses a `YYYYMMDDHHMMSS[.sss]` UTC timestamp (RFC 3659 §2.3).
pub fn parse_mdtm_time(text: &str) -> Option<SystemTime> {
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (text, None),
    };
    if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = |range: std::ops::Range<usize>| whole[range].parse::<u32>().ok();
    let month = time::Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(num(0..4)? as i32, month, num(6..8)? as u8).ok()?;
    let clock =
        time::Time::from_hms(num(8..10)? as u8, num(10..12)? as u8, num(12..14)? as u8).ok()?;
    let mut nanos = 0u32;
    if let Some(f) = fraction {
        if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        nanos = f.parse::<u32>().ok()? * 10u32.pow(9 - f.len() as u32);
    }
    let seconds = date.with_time(clock).assume_utc().unix_timestamp();
    let base = if seconds >= 0 {
        UNIX_EPOCH + Duration::from_secs(seconds as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(seconds.unsigned_abs())
    };
    Some(base + Duration::from_nanos(u64::from(nanos)))
}

/// The MLSx facts a server can send (RFC 3659 §7.5), as a set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MlstFacts(u8);

impl MlstFacts {
    /// `type`
    pub const TYPE: MlstFacts = MlstFacts(1);
    /// `size`
    pub const SIZE: MlstFacts = MlstFacts(2);
    /// `modify`
    pub const MODIFY: MlstFacts = MlstFacts(4);
    /// `perm`
    pub const PERM: MlstFacts = MlstFacts(8);
    /// `unique`
    pub const UNIQUE: MlstFacts = MlstFacts(16);
    /// `unix.mode`
    pub const UNIX_MODE: MlstFacts = MlstFacts(32);

    const NAMES: [(MlstFacts, &'static str); 6] = [
        (MlstFacts::TYPE, "type"),
        (MlstFacts::SIZE, "size"),
        (MlstFacts::MODIFY, "modify"),
        (MlstFacts::PERM, "perm"),
        (MlstFacts::UNIQUE, "unique"),
        (MlstFacts::UNIX_MODE, "unix.mode"),
    ];

    /// Every fact we support.
    pub const ALL: MlstFacts = MlstFacts(63);
    /// No fact.
    pub const NONE: MlstFacts = MlstFacts(0);

    /// Whether every fact in `other` is in `self`.
    pub fn contains(self, other: MlstFacts) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union of two sets.
    pub fn with(self, other: MlstFacts) -> MlstFacts {
        MlstFacts(self.0 | other.0)
    }

    /// Parses the argument of `OPTS MLST type;size;` (RFC 3659 §7.9). Unknown facts are
    /// ignored, as the RFC requires.
    pub fn parse_selection(text: &str) -> MlstFacts {
        let mut set = MlstFacts::NONE;
        for name in text.split(';').map(str::trim) {
            for (fact, known) in MlstFacts::NAMES {
                if name.eq_ignore_ascii_case(known) {
                    set = set.with(fact);
                }
            }
        }
        set
    }

    /// The selection as `type;size;`, as the reply to `OPTS MLST` repeats it.
    pub fn to_selection(self) -> String {
        MlstFacts::NAMES
            .iter()
            .filter(|(f, _)| self.contains(*f))
            .map(|(_, n)| format!("{n};"))
            .collect()
    }

    /// The FEAT line: every supported fact, `*` after the selected ones.
    pub fn feat_line(self) -> String {
        let facts: String = MlstFacts::NAMES
            .iter()
            .map(|(f, n)| format!("{n}{};", if self.contains(*f) { "*" } else { "" }))
            .collect();
        format!("MLST {facts}")
    }
}

impl Default for MlstFacts {
    /// What we send until the client selects: everything.
    fn default() -> Self {
        MlstFacts::ALL
    }
}

/// One MLSx entry line, `fact=value;...; name`, without the line ending (RFC 3659 §7.2).
/// For `MLST`, pass the full path as `facts.name`.
pub fn mlsx_line(facts: &FileFacts, selected: MlstFacts) -> String {
    let mut out = String::new();
    if selected.contains(MlstFacts::TYPE) {
        let t = match facts.kind {
            FileKind::File => "file",
            FileKind::Dir => "dir",
            FileKind::CurrentDir => "cdir",
            FileKind::ParentDir => "pdir",
            FileKind::Symlink => "OS.unix=symlink",
            FileKind::Other => "OS.unix=special",
        };
        out.push_str(&format!("type={t};"));
    }
    if selected.contains(MlstFacts::SIZE) && !facts.kind.is_dir() {
        out.push_str(&format!("size={};", facts.size));
    }
    if selected.contains(MlstFacts::MODIFY) {
        out.push_str(&format!("modify={};", mdtm_time(facts.modified)));
    }
    if selected.contains(MlstFacts::PERM) {
        out.push_str(&format!("perm={};", facts.perm));
    }
    if selected.contains(MlstFacts::UNIQUE) {
        if let Some(u) = &facts.unique {
            out.push_str(&format!("unique={u};"));
        }
    }
    if selected.contains(MlstFacts::UNIX_MODE) {
        out.push_str(&format!("unix.mode=0{:o};", facts.mode & 0o7777));
    }
    out.push(' ');
    out.push_str(&facts.name);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    fn facts(kind: FileKind, modified: SystemTime) -> FileFacts {
        FileFacts {
            name: "notes.txt".into(),
            kind,
            size: 1234,
            modified,
            mode: 0o644,
            nlink: 1,
            owner: "ftp".into(),
            group: "ftp".into(),
            unique: Some("803g2d".into()),
            perm: "adfrw".into(),
            link_target: None,
        }
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn unix_lines_recent_and_old() {
        // 2020-12-31 23:59:59 UTC
        let t = at(1_609_459_199);
        let recent = unix_line(&facts(FileKind::File, t), t + Duration::from_secs(60));
        assert_eq!(
            recent,
            "-rw-r--r--   1 ftp      ftp              1234 Dec 31 23:59 notes.txt"
        );
        let old = unix_line(&facts(FileKind::Dir, t), at(1_700_000_000));
        assert_eq!(
            old,
            "drw-r--r--   1 ftp      ftp              1234 Dec 31  2020 notes.txt"
        );
    }

    #[test]
    fn special_mode_bits() {
        assert_eq!(mode_string(0o4755), "rwsr-xr-x");
        assert_eq!(mode_string(0o1777), "rwxrwxrwt");
        assert_eq!(mode_string(0o2644), "rw-r-Sr--");
    }

    #[test]
    fn mlsx_lines() {
        let t = at(1_609_459_199);
        assert_eq!(
            mlsx_line(&facts(FileKind::File, t), MlstFacts::ALL),
            "type=file;size=1234;modify=20201231235959;perm=adfrw;unique=803g2d;unix.mode=0644; notes.txt"
        );
        let sel = MlstFacts::parse_selection("type;Size;bogus;");
        assert_eq!(sel.to_selection(), "type;size;");
        assert_eq!(
            mlsx_line(&facts(FileKind::CurrentDir, t), sel),
            "type=cdir; notes.txt"
        );
        assert_eq!(
            sel.feat_line(),
            "MLST type*;size*;modify;perm;unique;unix.mode;"
        );
    }

    #[test]
    fn mdtm_round_trip() {
        let t = at(1_609_459_199);
        assert_eq!(mdtm_time(t), "20201231235959");
        assert_eq!(parse_mdtm_time("20201231235959"), Some(t));
        assert_eq!(
            parse_mdtm_time("20201231235959.5"),
            Some(t + Duration::from_millis(500))
        );
        assert_eq!(parse_mdtm_time("20201331235959"), None);
        assert_eq!(parse_mdtm_time("2020123123595"), None);
        assert_eq!(
            parse_mdtm_time("19600101000000"),
            Some(UNIX_EPOCH - Duration::from_secs(315_619_200))
        );
    }

    #[test]
    fn names_are_made_printable() {
        assert_eq!(display_name(OsStr::from_bytes(b"a\r\nb")), "a??b");
        assert_eq!(display_name(OsStr::from_bytes(b"caf\xe9")), "caf\u{fffd}");
    }

    proptest::proptest! {
        #[test]
        fn mdtm_parse_never_panics(s in "\\PC{0,30}") {
            let _ = parse_mdtm_time(&s);
        }

        #[test]
        fn mdtm_round_trips_whole_seconds(secs in 0u64..253_402_300_799) {
            let t = at(secs);
            proptest::prop_assert_eq!(parse_mdtm_time(&mdtm_time(t)), Some(t));
        }
    }
}
