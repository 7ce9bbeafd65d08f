//! Wildcards in `ls`, `rm`, `mget` (remote) and `mput` (local): `*`, `?`, `[abc]`, `{a,b}`
//! in the last component of a path, matched here against a listing of its directory.
//!
//! A literal `*`, `?` or `[` in a name is written in brackets (`'report[*].txt'`) or with a
//! backslash inside quotes (`'report\*.txt'`). Names that start with a dot match only a
//! pattern that starts with one, as in a Unix shell.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ftps_client::client::{basename, join};
use ftps_client::ListEntry;
use globset::{GlobBuilder, GlobMatcher};

use crate::exit::usage;

/// Whether a word is a pattern rather than a plain path.
pub fn is_glob(word: &str) -> bool {
    word.contains(['*', '?', '[', '{'])
}

/// A compiled pattern for the names of one directory.
#[derive(Debug)]
pub struct NamePattern {
    matcher: GlobMatcher,
    dot: bool,
}

impl NamePattern {
    /// Compiles the pattern of one path component.
    pub fn new(pattern: &str) -> Result<NamePattern> {
        let glob = GlobBuilder::new(pattern)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| usage(format!("bad pattern {pattern:?}: {}", e.kind())))?;
        Ok(NamePattern {
            matcher: glob.compile_matcher(),
            dot: pattern.starts_with('.'),
        })
    }

    /// Whether `name` matches (dot files only for a pattern that starts with a dot).
    pub fn matches(&self, name: &str) -> bool {
        (self.dot || !name.starts_with('.')) && self.matcher.is_match(name)
    }
}

/// A remote pattern: a literal directory and a pattern for names in it.
#[derive(Debug)]
pub struct RemoteGlob {
    /// The directory to list, as written (`` for the current one).
    pub dir: String,
    names: NamePattern,
}

impl RemoteGlob {
    /// Splits `pattern` at its last `/`; wildcards before it are refused.
    pub fn new(pattern: &str) -> Result<RemoteGlob> {
        let (dir, name) = match pattern.rfind('/') {
            Some(i) => (parent_keep_root(pattern, i), &pattern[i + 1..]),
            None => (String::new(), pattern),
        };
        if is_glob(&dir) {
            return Err(usage(format!(
                "{pattern:?}: wildcards are allowed only in the last part of a path"
            )));
        }
        if name.is_empty() {
            return Err(usage(format!("{pattern:?} names no file")));
        }
        Ok(RemoteGlob {
            dir,
            names: NamePattern::new(name)?,
        })
    }

    /// The entries of the directory's listing that match, sorted by name, as paths to use
    /// in commands (relative to the current directory when the pattern was).
    pub fn select(&self, entries: Vec<ListEntry>) -> Vec<(String, ListEntry)> {
        let mut found: Vec<(String, ListEntry)> = entries
            .into_iter()
            .filter(|e| !e.is_self_or_parent() && self.names.matches(&e.name))
            .map(|e| (join(&self.dir, &e.name), e))
            .collect();
        found.sort_by(|a, b| a.1.name.cmp(&b.1.name));
        found
    }
}

/// The directory part of `pattern` whose last `/` is at `slash`: `/` for `/x*`.
fn parent_keep_root(pattern: &str, slash: usize) -> String {
    if slash == 0 {
        "/".to_string()
    } else {
        let dir = &pattern[..slash];
        // `a//b*` is `a/b*`.
        let trimmed = dir.trim_end_matches('/');
        if trimmed.is_empty() {
            "/".to_string()
        } else {
            trimmed.to_string()
        }
    }
}

/// The local files a word names: the regular files (or links to them) a pattern matches,
/// sorted, or the word itself when it is no pattern or matches nothing (reading it then
/// says what is wrong).
pub fn expand_local(pattern: &str) -> Result<Vec<PathBuf>> {
    if !is_glob(pattern) {
        return Ok(vec![PathBuf::from(pattern)]);
    }
    let (dir, name) = match pattern.rfind('/') {
        Some(i) => (parent_keep_root(pattern, i), &pattern[i + 1..]),
        None => (String::new(), pattern),
    };
    if is_glob(&dir) {
        return Err(usage(format!(
            "{pattern:?}: wildcards are allowed only in the last part of a path"
        )));
    }
    let names = NamePattern::new(name)?;
    let read_from = if dir.is_empty() {
        Path::new(".")
    } else {
        Path::new(&dir)
    };
    let mut found = Vec::new();
    let listing = std::fs::read_dir(read_from).with_context(|| format!("reading {dir:?}"))?;
    for entry in listing {
        let entry = entry.with_context(|| format!("reading {dir:?}"))?;
        let Some(file_name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if !names.matches(&file_name) {
            continue;
        }
        let path = if dir.is_empty() {
            PathBuf::from(&file_name)
        } else {
            Path::new(&dir).join(&file_name)
        };
        // Follows links: a link to a file is uploaded as the file.
        if std::fs::metadata(&path)
            .map(|m| m.is_file())
            .unwrap_or(false)
        {
            found.push(path);
        }
    }
    if found.is_empty() {
        return Ok(vec![PathBuf::from(pattern)]);
    }
    found.sort();
    Ok(found)
}

/// The remote name a local file keeps.
pub fn remote_name(local: &Path) -> Option<String> {
    local
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
}

/// The local name a remote file gets.
pub fn local_name(remote: &str) -> Option<String> {
    let name = basename(remote);
    (!name.is_empty() && name != "." && name != "..").then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(pattern: &str, all: &[&str]) -> Vec<String> {
        let g = RemoteGlob::new(pattern).unwrap();
        let entries = all
            .iter()
            .map(|n| {
                let mut e = ListEntry::directory(*n);
                e.kind = ftps_client::FileKind::File;
                e
            })
            .collect();
        g.select(entries).into_iter().map(|(p, _)| p).collect()
    }

    #[test]
    fn remote_patterns() {
        let all = ["a.csv", "b.csv", "c.txt", ".hidden.csv", "x*y.csv"];
        assert_eq!(names("*.csv", &all), ["a.csv", "b.csv", "x*y.csv"]);
        assert_eq!(names(".*.csv", &all), [".hidden.csv"]);
        assert_eq!(names("dir/?.csv", &all), ["dir/a.csv", "dir/b.csv"]);
        assert_eq!(names("/*.txt", &all), ["/c.txt"]);
        assert_eq!(names("x[*]y.csv", &all), ["x*y.csv"]);
        assert_eq!(names(r"x\*y.csv", &all), ["x*y.csv"]);
        assert_eq!(names("{a,c}.*", &all), ["a.csv", "c.txt"]);
        assert!(names("*.bin", &all).is_empty());
        assert!(RemoteGlob::new("*/a.csv").is_err());
        assert!(RemoteGlob::new("dir/").is_err());
        assert!(RemoteGlob::new("[").is_err());
    }

    #[test]
    fn local_patterns() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["a.bin", "b.bin", "c.txt", ".d.bin"] {
            std::fs::write(dir.path().join(n), b"x").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub.bin")).unwrap();
        let base = dir.path().to_str().unwrap();
        let found = expand_local(&format!("{base}/*.bin")).unwrap();
        let found: Vec<_> = found
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(found, ["a.bin", "b.bin"]);
        // No match: the pattern itself, which reading then refuses.
        let none = format!("{base}/*.none");
        assert_eq!(expand_local(&none).unwrap(), [PathBuf::from(&none)]);
        assert_eq!(expand_local(&format!("{base}/c.txt")).unwrap().len(), 1);
        assert!(expand_local("*/x").is_err());
    }
}
