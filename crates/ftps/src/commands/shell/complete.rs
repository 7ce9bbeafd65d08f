//! Tab completion: command names, remote paths (from listings cached for the shell's life),
//! and local paths for `put`, `mput`, `lcd` and `!`.

use std::sync::Arc;

use ftps_client::FileKind;
use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};
use tokio::runtime::Handle;
use tokio::sync::Mutex;

use super::exec::Executor;
use super::parse::COMMANDS;

/// The shell's line-editor helper: completion only.
pub struct ShellHelper {
    exec: Arc<Mutex<Executor>>,
    runtime: Handle,
    files: FilenameCompleter,
}

impl ShellHelper {
    /// Completes remote paths through `exec`, whose futures run on `runtime` (the line
    /// editor runs outside it, on a blocking thread).
    pub fn new(exec: Arc<Mutex<Executor>>, runtime: Handle) -> ShellHelper {
        ShellHelper {
            exec,
            runtime,
            files: FilenameCompleter::new(),
        }
    }
}

/// The words of a line up to the cursor, quotes and escapes removed, and where the last
/// (the one being completed) starts.
#[derive(Debug, PartialEq, Eq)]
struct Words {
    done: Vec<String>,
    current: String,
    start: usize,
}

fn split_words(before: &str) -> Words {
    let mut done = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = before.char_indices();
    while let Some((i, ch)) = chars.next() {
        if !in_word {
            if ch.is_whitespace() {
                continue;
            }
            in_word = true;
            start = i;
        }
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') | (None, '\\') => {
                if let Some((_, next)) = chars.next() {
                    current.push(next);
                }
            }
            (Some(_), c) => current.push(c),
            (None, '\'' | '"') => quote = Some(ch),
            (None, c) if c.is_whitespace() => {
                done.push(std::mem::take(&mut current));
                in_word = false;
            }
            (None, c) => current.push(c),
        }
    }
    if !in_word {
        start = before.len();
    }
    Words {
        done,
        current,
        start,
    }
}

/// A path as one word of a command line: backslashes before what the line parser would
/// otherwise take as a separator, a quote, an escape or a comment.
fn escape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for (i, ch) in path.chars().enumerate() {
        if ch.is_whitespace() || matches!(ch, '\'' | '"' | '\\') || (i == 0 && ch == '#') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// What the word being completed is.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Command,
    Local,
    Remote { dirs_only: bool },
}

fn kind_of(words: &Words) -> Kind {
    let Some(command) = words.done.first() else {
        return Kind::Command;
    };
    // Which argument this is, options left out.
    let index = words.done[1..]
        .iter()
        .filter(|w| !w.starts_with('-') || w.as_str() == "-")
        .count();
    match command.to_ascii_lowercase().as_str() {
        "put" | "send" if index == 0 => Kind::Local,
        "get" | "recv" if index == 1 => Kind::Local,
        "mput" | "lcd" => Kind::Local,
        "cd" | "cwd" | "rmdir" | "mkdir" => Kind::Remote { dirs_only: true },
        _ => Kind::Remote { dirs_only: false },
    }
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        if before.trim_start().starts_with('!') {
            return self.files.complete(line, pos, ctx);
        }
        let words = split_words(before);
        match kind_of(&words) {
            Kind::Command => {
                let mut names: Vec<&str> = COMMANDS
                    .iter()
                    .flat_map(|c| c.names.iter().copied())
                    .filter(|n| *n != "!" && n.starts_with(words.current.as_str()))
                    .collect();
                names.sort_unstable();
                let pairs = names
                    .into_iter()
                    .map(|n| Pair {
                        display: n.to_string(),
                        replacement: format!("{n} "),
                    })
                    .collect();
                Ok((words.start, pairs))
            }
            Kind::Local => self.files.complete(line, pos, ctx),
            Kind::Remote { dirs_only } => {
                let (dir, partial) = match words.current.rfind('/') {
                    Some(i) => (&words.current[..=i], &words.current[i + 1..]),
                    None => ("", words.current.as_str()),
                };
                let exec = self.exec.clone();
                let list_dir = dir.to_string();
                let entries = self
                    .runtime
                    .block_on(async move { exec.lock().await.cached_listing(&list_dir).await });
                let pairs = entries
                    .into_iter()
                    .filter(|e| {
                        e.name.starts_with(partial)
                            && (partial.starts_with('.') || !e.name.starts_with('.'))
                            && (!dirs_only || e.kind != FileKind::File)
                    })
                    .map(|e| {
                        let is_dir = e.is_dir();
                        let suffix = if is_dir { "/" } else { " " };
                        Pair {
                            display: if is_dir {
                                format!("{}/", e.name)
                            } else {
                                e.name.clone()
                            },
                            replacement: format!("{}{suffix}", escape(&format!("{dir}{}", e.name))),
                        }
                    })
                    .collect();
                Ok((words.start, pairs))
            }
        }
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}
impl Highlighter for ShellHelper {}
impl Validator for ShellHelper {}
impl Helper for ShellHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        let w = split_words("get 'a b/c");
        assert_eq!(w.done, ["get"]);
        assert_eq!(w.current, "a b/c");
        assert_eq!(w.start, 4);
        let w = split_words("get a\\ b ");
        assert_eq!(w.done, ["get", "a b"]);
        assert_eq!(w.current, "");
        assert_eq!(w.start, 9);
        let w = split_words("  l");
        assert!(w.done.is_empty());
        assert_eq!((w.current.as_str(), w.start), ("l", 2));
        assert_eq!(kind_of(&split_words("ge")), Kind::Command);
        assert_eq!(kind_of(&split_words("put -c x")), Kind::Local);
        assert_eq!(
            kind_of(&split_words("put -c x y")),
            Kind::Remote { dirs_only: false }
        );
        assert_eq!(kind_of(&split_words("get x y")), Kind::Local);
        assert_eq!(
            kind_of(&split_words("cd su")),
            Kind::Remote { dirs_only: true }
        );
    }

    #[test]
    fn escapes() {
        assert_eq!(escape("a b'c\"d\\e#f"), "a\\ b\\'c\\\"d\\\\e#f");
        assert_eq!(escape("#x"), "\\#x");
        for name in ["a b", "it's", "#1", "x\\y"] {
            assert_eq!(shell_words::split(&escape(name)).unwrap(), [name]);
        }
    }
}
