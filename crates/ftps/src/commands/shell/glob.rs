//! Wildcards in `ls`, `rm`, `mget` (remote) and `mput` (local), with the syntax of
//! `ftps_client::glob` (`*`, `?`, `[abc]`, and `{a,b}` once a pattern has one of those), in
//! the last component of a path, matched against the shell's cached listing of its
//! directory (remote) or `read_dir` (local).
//!
//! A literal `*`, `?` or `[` in a pattern is written in brackets (`'report[*]*.txt'`) or
//! with a backslash inside quotes (`'report\**.txt'`). Names that start with a dot match only a
//! pattern that starts with one, as in a Unix shell. Unlike `ftps get`, a pattern that
//! matches nothing is kept as written, as a Unix shell does.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ftps_client::client::{basename, join};
use ftps_client::glob::{has_wildcards, RemoteGlob};
use ftps_client::ListEntry;

use crate::exit::usage;

/// Whether a word is a pattern rather than a plain path.
pub fn is_glob(word: &str) -> bool {
    has_wildcards(word)
}

/// Splits a pattern into its directory and the pattern of its last component (the
/// library's rules: wildcards in the last component only).
pub fn split(pattern: &str) -> Result<RemoteGlob> {
    let glob = RemoteGlob::parse(pattern).map_err(|e| usage(e.to_string()))?;
    if glob.pattern.is_none() {
        return Err(usage(format!("{pattern:?} is no pattern")));
    }
    Ok(glob)
}

/// The entries of a listing of `glob.dir` that match, sorted by name, as paths to use in
/// commands (relative to the current directory when the pattern was).
pub fn select(glob: &RemoteGlob, entries: Vec<ListEntry>) -> Vec<(String, ListEntry)> {
    let Some(names) = &glob.pattern else {
        return Vec::new();
    };
    let mut found: Vec<(String, ListEntry)> = entries
        .into_iter()
        .filter(|e| !e.is_self_or_parent() && names.is_match(&e.name))
        .map(|e| (join(&glob.dir, &e.name), e))
        .collect();
    found.sort_by(|a, b| a.1.name.cmp(&b.1.name));
    found
}

/// The local files a word names: the regular files (or links to them) a pattern matches,
/// sorted, or the word itself when it is no pattern or matches nothing (reading it then
/// says what is wrong).
pub fn expand_local(pattern: &str) -> Result<Vec<PathBuf>> {
    if !is_glob(pattern) {
        return Ok(vec![PathBuf::from(pattern)]);
    }
    let glob = split(pattern)?;
    let dir = glob.dir.clone();
    let Some(names) = &glob.pattern else {
        return Ok(vec![PathBuf::from(pattern)]);
    };
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
        if !names.is_match(&file_name) {
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
        let g = split(pattern).unwrap();
        let entries = all
            .iter()
            .map(|n| {
                let mut e = ListEntry::directory(*n);
                e.kind = ftps_client::FileKind::File;
                e
            })
            .collect();
        select(&g, entries).into_iter().map(|(p, _)| p).collect()
    }

    #[test]
    fn remote_patterns() {
        let all = ["a.csv", "b.csv", "c.txt", ".hidden.csv", "x*y.csv"];
        assert_eq!(names("*.csv", &all), ["a.csv", "b.csv", "x*y.csv"]);
        assert_eq!(names(".*.csv", &all), [".hidden.csv"]);
        assert_eq!(names("dir/?.csv", &all), ["dir/a.csv", "dir/b.csv"]);
        assert_eq!(names("/*.txt", &all), ["/c.txt"]);
        assert_eq!(names("x[*]y.csv", &all), ["x*y.csv"]);
        // An escaped wildcard alone makes no pattern.
        assert!(!is_glob(r"x\*y.csv"));
        assert_eq!(names(r"x\*y*.csv", &all), ["x*y.csv"]);
        assert_eq!(names("{a,c}.*", &all), ["a.csv", "c.txt"]);
        assert!(names("*.bin", &all).is_empty());
        assert!(split("*/a.csv").is_err());
        assert!(split("dir/").is_err());
        assert!(split("[").is_err());
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
