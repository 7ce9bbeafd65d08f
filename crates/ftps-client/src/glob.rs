//! Wildcard remote paths, matched on the client: `/in/*.csv` lists `/in` and keeps the
//! names that match `*.csv`. Servers disagree on wildcards in `NLST`/`LIST` arguments (some
//! expand them, some take them literally, ftpsd refuses them), so the client never sends a
//! pattern to the server.
//!
//! Syntax, in the last path component only (earlier components are literal directories):
//!
//! | pattern | matches |
//! |---|---|
//! | `*` | any run of characters, `/` excepted |
//! | `?` | any one character |
//! | `[abc]`, `[a-z]` | one character of the set or range |
//! | `[!abc]` | one character not in the set |
//! | `\*`, `\?`, `\[` | the character itself |
//!
//! A name that starts with `.` is matched only by a pattern that starts with `.` (as in a
//! shell). A path without any of `*`, `?` and `[` is not a pattern: it names one file
//! exactly, whatever the directory holds.

use globset::{GlobBuilder, GlobMatcher};

use ftps_proto::listing_parse::ListEntry;
use ftps_proto::{Reply, ReplyCode};

use crate::error::{Error, Result, SentCommand};
use crate::path::join;
use crate::session::FtpsClient;

/// Whether `text` holds an unescaped wildcard character (`*`, `?` or `[`).
pub fn has_wildcards(text: &str) -> bool {
    let mut escaped = false;
    for c in text.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

/// A compiled pattern for one path component.
#[derive(Clone, Debug)]
pub struct NamePattern {
    text: String,
    matcher: GlobMatcher,
}

impl NamePattern {
    /// Compiles a pattern for names (no `/` inside).
    pub fn new(pattern: &str) -> Result<NamePattern> {
        if pattern.contains('/') {
            return Err(Error::Config(format!(
                "{pattern:?}: a name pattern cannot contain '/'"
            )));
        }
        let glob = GlobBuilder::new(pattern)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| Error::Config(format!("bad wildcard pattern {pattern:?}: {e}")))?;
        Ok(NamePattern {
            text: pattern.to_string(),
            matcher: glob.compile_matcher(),
        })
    }

    /// Whether `name` matches. Hidden names (`.x`) match only patterns that start with `.`.
    pub fn is_match(&self, name: &str) -> bool {
        if name.starts_with('.') && !self.text.starts_with('.') {
            return false;
        }
        self.matcher.is_match(name)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// A remote path split into the directory to list and the pattern for names in it.
#[derive(Clone, Debug)]
pub struct RemoteGlob {
    /// The directory whose listing is matched (empty for the current directory).
    pub dir: String,
    /// The pattern for the last component; `None` for a path without wildcards.
    pub pattern: Option<NamePattern>,
    /// The path as given.
    pub path: String,
}

impl RemoteGlob {
    /// Splits `path`. Wildcards are allowed in the last component only.
    pub fn parse(path: &str) -> Result<RemoteGlob> {
        let trimmed = path.trim_end_matches('/');
        let (dir, last) = match trimmed.rfind('/') {
            Some(0) => ("/", &trimmed[1..]),
            Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
            None => ("", trimmed),
        };
        if has_wildcards(dir) {
            return Err(Error::Config(format!(
                "{path:?}: wildcards are allowed in the last path component only"
            )));
        }
        let pattern = if has_wildcards(last) {
            Some(NamePattern::new(last)?)
        } else {
            None
        };
        Ok(RemoteGlob {
            dir: dir.to_string(),
            pattern,
            path: path.to_string(),
        })
    }

    /// Whether the path holds wildcards.
    pub fn is_pattern(&self) -> bool {
        self.pattern.is_some()
    }
}

/// One remote entry a pattern matched: its full path and its listing entry.
#[derive(Clone, Debug)]
pub struct GlobMatch {
    /// The entry's path: the pattern's directory joined with its name.
    pub path: String,
    /// What the listing said about it.
    pub entry: ListEntry,
}

impl FtpsClient {
    /// The entries of the directory that `pattern`'s last component matches, sorted by name.
    /// A path without wildcards yields that one path (with [`FtpsClient::stat`]'s facts).
    /// No match is an error with reply code 550 and the text `no files found`, the way lftp
    /// puts it.
    pub async fn glob(&mut self, pattern: &str) -> Result<Vec<GlobMatch>> {
        let glob = RemoteGlob::parse(pattern)?;
        let Some(names) = &glob.pattern else {
            let entry = self.stat(pattern).await?;
            return Ok(vec![GlobMatch {
                path: pattern.to_string(),
                entry,
            }]);
        };
        let mut found: Vec<GlobMatch> = self
            .list_dir(&glob.dir)
            .await?
            .into_iter()
            .filter(|e| !e.name.contains('/') && names.is_match(&e.name))
            .map(|entry| GlobMatch {
                path: join(&glob.dir, &entry.name),
                entry,
            })
            .collect();
        if found.is_empty() {
            return Err(no_match(pattern));
        }
        found.sort_by(|a, b| a.entry.name.cmp(&b.entry.name));
        Ok(found)
    }
}

/// The error for a pattern that matched nothing: a `550` (so [`Error::kind`] says
/// `RemoteFile`) that [`is_no_match`] recognizes.
pub fn no_match(pattern: &str) -> Error {
    Error::Reply {
        command: SentCommand::raw(&format!("{NO_MATCH_COMMAND} {pattern}")),
        reply: Reply::new(
            ReplyCode::FILE_UNAVAILABLE,
            format!("no files found matching {pattern}"),
        ),
    }
}

/// What [`no_match`] names as the command: no command was refused, the listing just had
/// no matching name.
const NO_MATCH_COMMAND: &str = "(wildcard)";

/// Whether `e` is [`no_match`]'s error.
pub fn is_no_match(e: &Error) -> bool {
    match e {
        Error::Reply { command, .. } => command.text().starts_with(NO_MATCH_COMMAND),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_are_detected() {
        assert!(has_wildcards("*.csv"));
        assert!(has_wildcards("a?"));
        assert!(has_wildcards("[ab]"));
        assert!(!has_wildcards("plain.txt"));
        assert!(!has_wildcards(r"a\*b"));
    }

    #[test]
    fn split() {
        let g = RemoteGlob::parse("/in/*.csv").unwrap();
        assert_eq!(g.dir, "/in");
        assert!(g.pattern.as_ref().unwrap().is_match("x.csv"));
        assert!(!g.pattern.as_ref().unwrap().is_match("x.csv.bak"));
        let g = RemoteGlob::parse("/*.csv").unwrap();
        assert_eq!(g.dir, "/");
        let g = RemoteGlob::parse("*.csv").unwrap();
        assert_eq!(g.dir, "");
        let g = RemoteGlob::parse("/in/file.csv").unwrap();
        assert!(!g.is_pattern());
        assert!(RemoteGlob::parse("/i*/x.csv").is_err());
        assert!(RemoteGlob::parse("/in/[").is_err());
    }

    #[test]
    fn names() {
        let p = NamePattern::new("r?port-[0-9].*").unwrap();
        assert!(p.is_match("report-1.csv"));
        assert!(!p.is_match("report-a.csv"));
        let star = NamePattern::new("*").unwrap();
        assert!(star.is_match("a"));
        assert!(!star.is_match(".hidden"));
        assert!(NamePattern::new(".*").unwrap().is_match(".hidden"));
        assert!(NamePattern::new("[!a]*").unwrap().is_match("b1"));
        assert!(!NamePattern::new("[!a]*").unwrap().is_match("a1"));
        assert!(NamePattern::new(r"a\*").unwrap().is_match("a*"));
        assert!(!NamePattern::new(r"a\*").unwrap().is_match("ab"));
    }

    #[test]
    fn no_match_errors() {
        let e = no_match("/in/*.xml");
        assert!(is_no_match(&e));
        assert_eq!(e.kind(), crate::ErrorKind::RemoteFile);
        assert!(!is_no_match(&Error::Closed));
    }
}
