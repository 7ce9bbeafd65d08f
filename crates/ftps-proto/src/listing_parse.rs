//! Parsing directory listings on the client side: `MLSD`/`MLST` fact lines (RFC 3659 §7),
//! including the fact line of a 250 `MLST` reply, Unix `ls -l` lines and DOS/IIS lines of
//! `LIST` (no RFC; the formats servers actually send), and the bare names of `NLST`.
//!
//! Every parser takes untrusted text and returns `None` for a line it does not understand;
//! none of them panics (property-tested below).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use crate::listing::{parse_mdtm_time, FileKind};
use crate::reply::Reply;

/// How precise a listing's modification time is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TimePrecision {
    /// Seconds or better (`MLSD` `modify`, `MDTM`).
    Second,
    /// Minutes (`ls -l` for recent files, DOS listings).
    Minute,
    /// Days (`ls -l` for files older than six months).
    Day,
}

impl TimePrecision {
    /// The length of one unit of this precision.
    pub fn unit(self) -> Duration {
        match self {
            TimePrecision::Second => Duration::from_secs(1),
            TimePrecision::Minute => Duration::from_secs(60),
            TimePrecision::Day => Duration::from_secs(86_400),
        }
    }

    /// `t` rounded down to this precision (whole seconds since the epoch, then the unit).
    pub fn truncate(self, t: SystemTime) -> SystemTime {
        let unit = self.unit().as_secs();
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => UNIX_EPOCH + Duration::from_secs(d.as_secs() / unit * unit),
            Err(e) => {
                let back = e.duration().as_secs().div_ceil(unit) * unit;
                UNIX_EPOCH - Duration::from_secs(back)
            }
        }
    }
}

/// One entry of a directory listing, as far as the server told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListEntry {
    /// The file name (for `MLST`, the path the server gave).
    pub name: String,
    /// File, directory, link...
    pub kind: FileKind,
    /// Size in bytes, when given.
    pub size: Option<u64>,
    /// Last modification time (UTC), when given.
    pub modified: Option<SystemTime>,
    /// How precise `modified` is.
    pub precision: TimePrecision,
    /// Unix permission bits, when given.
    pub mode: Option<u32>,
    /// RFC 3659 `perm` letters, when given.
    pub perm: Option<String>,
    /// RFC 3659 `unique` fact, when given.
    pub unique: Option<String>,
    /// For symbolic links: the target, when given.
    pub link_target: Option<String>,
}

impl ListEntry {
    fn new(name: String, kind: FileKind) -> ListEntry {
        ListEntry {
            name,
            kind,
            size: None,
            modified: None,
            precision: TimePrecision::Second,
            mode: None,
            perm: None,
            unique: None,
            link_target: None,
        }
    }

    /// A directory known by its name only, such as the root or a login directory that no
    /// listing shows.
    pub fn directory(name: impl Into<String>) -> ListEntry {
        ListEntry::new(name.into(), FileKind::Dir)
    }

    /// Whether this entry is a directory (not counting `.`/`..` entries).
    pub fn is_dir(&self) -> bool {
        self.kind == FileKind::Dir
    }

    /// Whether this is the listed directory itself or its parent (`cdir`, `pdir`, `.`, `..`).
    pub fn is_self_or_parent(&self) -> bool {
        matches!(self.kind, FileKind::CurrentDir | FileKind::ParentDir)
            || self.name == "."
            || self.name == ".."
    }
}

/// Parses one `MLSD`/`MLST` line: `fact=value;fact=value; name` (RFC 3659 §7.2).
pub fn parse_mlsx_line(line: &str) -> Option<ListEntry> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let (facts, name) = line.split_once(' ')?;
    if name.is_empty() {
        return None;
    }
    let mut entry = ListEntry::new(name.to_string(), FileKind::Other);
    let mut saw_type = false;
    for fact in facts.split(';').filter(|f| !f.is_empty()) {
        let (key, value) = fact.split_once('=')?;
        match key.to_ascii_lowercase().as_str() {
            "type" => {
                saw_type = true;
                let v = value.to_ascii_lowercase();
                entry.kind = match v.as_str() {
                    "file" => FileKind::File,
                    "dir" => FileKind::Dir,
                    "cdir" => FileKind::CurrentDir,
                    "pdir" => FileKind::ParentDir,
                    _ if v.starts_with("os.unix=symlink") || v.starts_with("os.unix=slink") => {
                        if let Some((_, target)) = value.split_once(':') {
                            entry.link_target = Some(target.to_string());
                        }
                        FileKind::Symlink
                    }
                    _ => FileKind::Other,
                };
            }
            "size" | "sizd" => entry.size = value.parse().ok(),
            "modify" => entry.modified = parse_mdtm_time(value),
            "perm" => entry.perm = Some(value.to_string()),
            "unique" => entry.unique = Some(value.to_string()),
            "unix.mode" => entry.mode = u32::from_str_radix(value, 8).ok(),
            _ => {}
        }
    }
    if !saw_type {
        // Without a type we cannot tell a file from a directory; treat it as a file, which
        // is what servers that omit the fact list.
        entry.kind = FileKind::File;
    }
    Some(entry)
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

fn month_of(token: &str) -> Option<Month> {
    let lower = token.to_ascii_lowercase();
    let i = MONTHS.iter().position(|m| *m == lower)?;
    Month::try_from(i as u8 + 1).ok()
}

/// Splits a line into whitespace-separated tokens with their byte ranges.
fn tokens(line: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices() {
        if c == ' ' || c == '\t' {
            if let Some(s) = start.take() {
                out.push((s, i));
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push((s, line.len()));
    }
    out
}

fn to_system_time(dt: PrimitiveDateTime) -> SystemTime {
    let secs = dt.assume_utc().unix_timestamp();
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

fn parse_mode(perms: &str) -> Option<u32> {
    let b = perms.as_bytes();
    if b.len() < 9 {
        return None;
    }
    let mut mode = 0u32;
    let bits = [
        0o400, 0o200, 0o100, 0o040, 0o020, 0o010, 0o004, 0o002, 0o001,
    ];
    for (i, bit) in bits.iter().enumerate() {
        match b[i] {
            b'-' => {}
            b'r' | b'w' | b'x' => mode |= bit,
            b's' | b't' => {
                mode |= bit;
                mode |= special(i);
            }
            b'S' | b'T' => mode |= special(i),
            _ => return None,
        }
    }
    Some(mode)
}

fn special(i: usize) -> u32 {
    match i {
        2 => 0o4000,
        5 => 0o2000,
        8 => 0o1000,
        _ => 0,
    }
}

/// Parses one Unix `ls -l` style `LIST` line. `now` decides the year of recent entries,
/// which `ls` shows without one.
pub fn parse_unix_line(line: &str, now: SystemTime) -> Option<ListEntry> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let toks = tokens(line);
    let first = &line[toks.first()?.0..toks.first()?.1];
    let kind = match first.as_bytes().first()? {
        b'-' => FileKind::File,
        b'd' => FileKind::Dir,
        b'l' => FileKind::Symlink,
        b'b' | b'c' | b'p' | b's' => FileKind::Other,
        _ => return None,
    };
    let mode = first.get(1..10).and_then(parse_mode);
    // Find "<size> <month> <day> <time-or-year>"; owner and group vary in number.
    let tok = |i: usize| toks.get(i).map(|&(s, e)| &line[s..e]);
    let mut found = None;
    for i in 2..toks.len() {
        let Some(month) = tok(i).and_then(month_of) else {
            continue;
        };
        let Some(size) = tok(i - 1).and_then(|t| t.parse::<u64>().ok()) else {
            continue;
        };
        let Some(day) = tok(i + 1).and_then(|t| t.parse::<u8>().ok()) else {
            continue;
        };
        let Some(when) = tok(i + 2) else { continue };
        if toks.len() <= i + 3 {
            continue;
        }
        found = Some((i, size, month, day, when));
        break;
    }
    let (i, size, month, day, when) = found?;
    let name_start = toks.get(i + 2)?.1 + 1;
    let rest = line.get(name_start..)?;
    if rest.is_empty() {
        return None;
    }
    let (name, target) = match (kind, rest.split_once(" -> ")) {
        (FileKind::Symlink, Some((n, t))) => (n.to_string(), Some(t.to_string())),
        _ => (rest.to_string(), None),
    };
    let now_dt = OffsetDateTime::from(now);
    let (modified, precision) = if let Some((h, m)) = when.split_once(':') {
        let h: u8 = h.parse().ok()?;
        let m: u8 = m.parse().ok()?;
        let clock = Time::from_hms(h, m, 0).ok()?;
        // The most recent such date not more than a day in the future.
        let limit = now + Duration::from_secs(86_400);
        let dt = (0..8)
            .filter_map(|back| Date::from_calendar_date(now_dt.year() - back, month, day).ok())
            .map(|date| to_system_time(PrimitiveDateTime::new(date, clock)))
            .find(|t| *t <= limit)?;
        (dt, TimePrecision::Minute)
    } else {
        if when.len() != 4 {
            return None;
        }
        let year: i32 = when.parse().ok()?;
        let dt = PrimitiveDateTime::new(
            Date::from_calendar_date(year, month, day).ok()?,
            Time::MIDNIGHT,
        );
        (to_system_time(dt), TimePrecision::Day)
    };
    let mut entry = ListEntry::new(name, kind);
    entry.size = Some(size);
    entry.modified = Some(modified);
    entry.precision = precision;
    entry.mode = mode;
    entry.link_target = target;
    Some(entry)
}

/// Parses one DOS/IIS style `LIST` line: `01-31-21  10:15AM  <DIR>  name` or
/// `01-31-2021  22:15  1234 name`.
pub fn parse_dos_line(line: &str) -> Option<ListEntry> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let toks = tokens(line);
    if toks.len() < 4 {
        return None;
    }
    let tok = |i: usize| &line[toks[i].0..toks[i].1];
    let mut date = tok(0).split(['-', '/']);
    let month: u8 = date.next()?.parse().ok()?;
    let day: u8 = date.next()?.parse().ok()?;
    let year_text = date.next()?;
    if date.next().is_some() {
        return None;
    }
    let mut year: i32 = year_text.parse().ok()?;
    if year_text.len() == 2 {
        year += if year < 70 { 2000 } else { 1900 };
    }
    let time_text = tok(1).to_ascii_uppercase();
    let (clock, pm, am) = if let Some(t) = time_text.strip_suffix("PM") {
        (t.to_string(), true, false)
    } else if let Some(t) = time_text.strip_suffix("AM") {
        (t.to_string(), false, true)
    } else {
        (time_text.clone(), false, false)
    };
    let (h, m) = clock.split_once(':')?;
    let mut h: u8 = h.parse().ok()?;
    let m: u8 = m.parse().ok()?;
    if pm || am {
        if h == 0 || h > 12 {
            return None;
        }
        h %= 12;
        if pm {
            h += 12;
        }
    }
    let date = Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()?;
    let dt = PrimitiveDateTime::new(date, Time::from_hms(h, m, 0).ok()?);
    let third = tok(2);
    let (kind, size) = if third.eq_ignore_ascii_case("<DIR>") {
        (FileKind::Dir, None)
    } else {
        (FileKind::File, Some(third.parse::<u64>().ok()?))
    };
    let name = line.get(toks[2].1 + 1..)?.trim_start_matches(' ');
    if name.is_empty() {
        return None;
    }
    let mut entry = ListEntry::new(name.to_string(), kind);
    entry.size = size;
    entry.modified = Some(to_system_time(dt));
    entry.precision = TimePrecision::Minute;
    Some(entry)
}

/// Reads the entry of a 250 `MLST` reply (RFC 3659 §7.2.1): the first line after the
/// opening one that starts with a space and holds facts. Its name is the path the server
/// gave.
pub fn parse_mlst_reply(reply: &Reply) -> Option<ListEntry> {
    reply
        .lines
        .iter()
        .skip(1)
        .filter_map(|line| line.strip_prefix(' '))
        .find_map(parse_mlsx_line)
}

/// The names of an `NLST` listing (RFC 959 §4.1.3): one per line, without line endings.
pub fn parse_nlst(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.trim_end_matches('\r').to_string())
        .collect()
}

/// Parses one `LIST` line in whichever format it is (Unix first, then DOS). Returns `None`
/// for lines that are not entries (`total 12`, blank lines, unknown formats).
pub fn parse_list_line(line: &str, now: SystemTime) -> Option<ListEntry> {
    let first = line.as_bytes().first()?;
    if first.is_ascii_digit() {
        parse_dos_line(line)
    } else {
        parse_unix_line(line, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listing::{mlsx_line, unix_line, FileFacts, MlstFacts};
    use proptest::prelude::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn mlst_replies() {
        use crate::reply::ReplyCode;
        let reply = Reply::multi(
            ReplyCode::FILE_ACTION_OK,
            vec![
                "Listing /a b".into(),
                "not facts".into(),
                " type=file;size=3;modify=20201231235959; /a b".into(),
                "End".into(),
            ],
        );
        let e = parse_mlst_reply(&reply).unwrap();
        assert_eq!(
            (e.name.as_str(), e.kind, e.size),
            ("/a b", FileKind::File, Some(3))
        );
        assert_eq!(e.modified, Some(at(1_609_459_199)));
        let single = Reply::new(ReplyCode::FILE_ACTION_OK, "type=dir; /x");
        assert_eq!(parse_mlst_reply(&single), None);
        assert_eq!(
            ListEntry::directory("/"),
            parse_mlsx_line("type=dir; /").unwrap()
        );
    }

    #[test]
    fn nlst_names() {
        assert_eq!(parse_nlst("a\r\nb c\nd\r\n"), vec!["a", "b c", "d"]);
        assert_eq!(parse_nlst(""), Vec::<String>::new());
    }

    #[test]
    fn mlsd_lines() {
        let e = parse_mlsx_line(
            "type=file;size=1234;modify=20201231235959;perm=adfrw;unix.mode=0644; my file.txt",
        )
        .unwrap();
        assert_eq!(e.name, "my file.txt");
        assert_eq!(e.kind, FileKind::File);
        assert_eq!(e.size, Some(1234));
        assert_eq!(e.modified, Some(at(1_609_459_199)));
        assert_eq!(e.mode, Some(0o644));
        let d = parse_mlsx_line("Type=cdir;Modify=20201231235959; /x").unwrap();
        assert_eq!(d.kind, FileKind::CurrentDir);
        assert!(d.is_self_or_parent());
        let l = parse_mlsx_line("type=OS.unix=slink:/etc/x;size=5; link").unwrap();
        assert_eq!(l.kind, FileKind::Symlink);
        assert_eq!(l.link_target.as_deref(), Some("/etc/x"));
        assert!(parse_mlsx_line("garbage").is_none());
    }

    #[test]
    fn unix_lines_from_real_servers() {
        let now = at(1_700_000_000); // 2023-11-14
                                     // vsftpd
        let e = parse_unix_line(
            "-rw-r--r--    1 1001     0               6 Nov 21 13:38 a.txt",
            now,
        );
        // Nov 21 is after now + 1 day, so it is last year's.
        let e = e.unwrap();
        assert_eq!(e.name, "a.txt");
        assert_eq!(e.size, Some(6));
        assert_eq!(e.precision, TimePrecision::Minute);
        assert_eq!(
            e.modified,
            Some(to_system_time(PrimitiveDateTime::new(
                Date::from_calendar_date(2022, Month::November, 21).unwrap(),
                Time::from_hms(13, 38, 0).unwrap()
            )))
        );
        // ProFTPD / Pure-FTPd style, old file, name with spaces
        let e = parse_unix_line(
            "drwxr-xr-x   2 ftp      ftp          4096 Jan  3  2019 my dir",
            now,
        )
        .unwrap();
        assert_eq!(e.kind, FileKind::Dir);
        assert_eq!(e.name, "my dir");
        assert_eq!(e.precision, TimePrecision::Day);
        assert_eq!(e.mode, Some(0o755));
        // no group column
        let e = parse_unix_line("-rw-r--r--   1 owner   42 Feb  1 10:00 x", now).unwrap();
        assert_eq!(e.size, Some(42));
        let e = parse_unix_line("lrwxrwxrwx 1 u g 7 Jan 01 2020 ln -> target", now).unwrap();
        assert_eq!(e.name, "ln");
        assert_eq!(e.link_target.as_deref(), Some("target"));
        assert!(parse_list_line("total 12", now).is_none());
    }

    #[test]
    fn dos_lines() {
        let e = parse_dos_line("01-31-21  10:15PM       <DIR>          some dir").unwrap();
        assert_eq!(e.kind, FileKind::Dir);
        assert_eq!(e.name, "some dir");
        let e = parse_dos_line("12-01-2020  12:05AM              1234 file.txt").unwrap();
        assert_eq!(e.size, Some(1234));
        assert_eq!(
            e.modified,
            Some(to_system_time(PrimitiveDateTime::new(
                Date::from_calendar_date(2020, Month::December, 1).unwrap(),
                Time::from_hms(0, 5, 0).unwrap()
            )))
        );
    }

    #[test]
    fn truncation() {
        assert_eq!(TimePrecision::Minute.truncate(at(119)), at(60));
        assert_eq!(TimePrecision::Day.truncate(at(86_401)), at(86_400));
    }

    fn facts(name: String, dir: bool, size: u64, secs: u64, mode: u32) -> FileFacts {
        FileFacts {
            name,
            kind: if dir { FileKind::Dir } else { FileKind::File },
            size,
            modified: at(secs),
            mode,
            nlink: 1,
            owner: "owner".into(),
            group: "group".into(),
            unique: None,
            perm: "adfrw".into(),
            link_target: None,
        }
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC{0,120}", secs in 0u64..4_000_000_000) {
            let _ = parse_mlsx_line(&s);
            let _ = parse_unix_line(&s, at(secs));
            let _ = parse_dos_line(&s);
            let _ = parse_list_line(&s, at(secs));
        }

        #[test]
        fn unix_lines_round_trip(
            name in "[a-zA-Z0-9_.][a-zA-Z0-9_. -]{0,20}",
            dir in any::<bool>(),
            size in any::<u64>(),
            secs in 0u64..4_000_000_000,
            age in 0u64..100_000_000,
            mode in 0u32..0o7777,
        ) {
            let f = facts(name.clone(), dir, size, secs, mode);
            let now = at(secs + age);
            let line = unix_line(&f, now);
            let e = parse_unix_line(&line, now).unwrap();
            prop_assert_eq!(&e.name, &name);
            prop_assert_eq!(e.is_dir(), dir);
            prop_assert_eq!(e.size, Some(size));
            prop_assert_eq!(e.mode, Some(mode));
            prop_assert_eq!(e.modified, Some(e.precision.truncate(at(secs))));
        }

        #[test]
        fn mlsx_lines_round_trip(
            name in "[a-zA-Z0-9_. ;=-]{1,30}",
            dir in any::<bool>(),
            size in any::<u64>(),
            secs in 0u64..253_402_300_799,
            mode in 0u32..0o7777,
        ) {
            let f = facts(name.clone(), dir, size, secs, mode);
            let e = parse_mlsx_line(&mlsx_line(&f, MlstFacts::ALL)).unwrap();
            prop_assert_eq!(&e.name, &name);
            prop_assert_eq!(e.is_dir(), dir);
            prop_assert_eq!(e.size, if dir { None } else { Some(size) });
            prop_assert_eq!(e.modified, Some(at(secs)));
            prop_assert_eq!(e.mode, Some(mode));
        }
    }
}
