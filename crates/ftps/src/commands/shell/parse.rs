//! Command lines of the shell and of batch files: shell-like words (single and double quotes,
//! backslash escapes) turned into a [`Line`].

use std::fmt;

/// One command of the shell or of a batch file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// `ls [-l] [PATH|GLOB]`
    Ls { long: bool, path: Option<String> },
    /// `cd [DIR]`: without DIR, the login directory; `-` is the previous one.
    Cd(Option<String>),
    /// `pwd`
    Pwd,
    /// `get [-c] REMOTE [LOCAL]`
    Get {
        remote: String,
        local: Option<String>,
        resume: bool,
    },
    /// `put [-c] LOCAL [REMOTE]`
    Put {
        local: String,
        remote: Option<String>,
        resume: bool,
    },
    /// `mget PATH|GLOB...`
    Mget(Vec<String>),
    /// `mput PATH|GLOB...` (local)
    Mput(Vec<String>),
    /// `rm PATH|GLOB...`
    Rm(Vec<String>),
    /// `mkdir [-p] DIR...`
    Mkdir { parents: bool, dirs: Vec<String> },
    /// `rmdir DIR...`
    Rmdir(Vec<String>),
    /// `mv OLD NEW`
    Mv { from: String, to: String },
    /// `lcd [DIR]`: without DIR, the home directory.
    Lcd(Option<String>),
    /// `lpwd`
    Lpwd,
    /// `!COMMAND`: a local shell command; `!` alone starts an interactive shell.
    Local(String),
    /// `help [COMMAND]`
    Help(Option<String>),
    /// `bye`, `quit`, `exit`
    Quit,
}

impl Line {
    /// Whether the command changes remote files (so cached listings are stale after it).
    pub fn changes_remote(&self) -> bool {
        matches!(
            self,
            Line::Put { .. }
                | Line::Mput(_)
                | Line::Rm(_)
                | Line::Mkdir { .. }
                | Line::Rmdir(_)
                | Line::Mv { .. }
        )
    }
}

impl Line {
    /// Whether the command talks to the server (local ones leave the connection idle).
    pub fn uses_server(&self) -> bool {
        !matches!(
            self,
            Line::Lcd(_) | Line::Lpwd | Line::Local(_) | Line::Help(_) | Line::Quit
        )
    }
}

/// A command line that cannot be run as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError(pub String);

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for SyntaxError {}

/// A command of the shell: its names, its arguments and what it does, for `help` and for
/// completing command names.
pub struct CommandHelp {
    pub names: &'static [&'static str],
    pub usage: &'static str,
    pub about: &'static str,
}

/// Every command, in the order `help` shows them.
pub const COMMANDS: &[CommandHelp] = &[
    CommandHelp {
        names: &["ls", "dir"],
        usage: "ls [-l] [PATH|GLOB]",
        about: "list a remote directory, or the files matching GLOB (-l: type, size, time)",
    },
    CommandHelp {
        names: &["cd"],
        usage: "cd [DIR|-]",
        about: "change the remote directory (none: the login directory, -: the previous one)",
    },
    CommandHelp {
        names: &["pwd"],
        usage: "pwd",
        about: "print the remote directory",
    },
    CommandHelp {
        names: &["get"],
        usage: "get [-c] REMOTE [LOCAL]",
        about: "download a file (-c: continue a partial one)",
    },
    CommandHelp {
        names: &["put"],
        usage: "put [-c] LOCAL [REMOTE]",
        about: "upload a file (-c: continue after the remote size)",
    },
    CommandHelp {
        names: &["mget"],
        usage: "mget PATH|GLOB...",
        about: "download files into the local directory",
    },
    CommandHelp {
        names: &["mput"],
        usage: "mput PATH|GLOB...",
        about: "upload local files into the remote directory",
    },
    CommandHelp {
        names: &["rm", "delete"],
        usage: "rm PATH|GLOB...",
        about: "delete remote files",
    },
    CommandHelp {
        names: &["mkdir"],
        usage: "mkdir [-p] DIR...",
        about: "create remote directories (-p: with their parents, no error if they exist)",
    },
    CommandHelp {
        names: &["rmdir"],
        usage: "rmdir DIR...",
        about: "remove empty remote directories",
    },
    CommandHelp {
        names: &["mv", "rename"],
        usage: "mv OLD NEW",
        about: "rename or move a remote file or directory (NEW ending in /: keep the name)",
    },
    CommandHelp {
        names: &["lcd"],
        usage: "lcd [DIR]",
        about: "change the local directory (none: the home directory)",
    },
    CommandHelp {
        names: &["lpwd"],
        usage: "lpwd",
        about: "print the local directory",
    },
    CommandHelp {
        names: &["!"],
        usage: "!COMMAND",
        about: "run a local shell command (! alone: an interactive shell)",
    },
    CommandHelp {
        names: &["help", "?"],
        usage: "help [COMMAND]",
        about: "show the commands, or one command",
    },
    CommandHelp {
        names: &["bye", "quit", "exit"],
        usage: "bye",
        about: "close the connection and leave",
    },
];

/// The help entry of a command name, aliases included.
pub fn help_of(name: &str) -> Option<&'static CommandHelp> {
    COMMANDS.iter().find(|c| c.names.contains(&name))
}

fn syntax(msg: impl Into<String>) -> SyntaxError {
    SyntaxError(msg.into())
}

/// Parses one line. `Ok(None)` for blank lines and comments (`#` as the first non-blank
/// character).
pub fn parse_line(line: &str) -> Result<Option<Line>, SyntaxError> {
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(None);
    }
    if let Some(command) = trimmed.strip_prefix('!') {
        return Ok(Some(Line::Local(command.trim().to_string())));
    }
    let words = shell_words::split(trimmed)
        .map_err(|_| syntax("unclosed quote (close it, or escape it with \\)"))?;
    let Some((name, args)) = words.split_first() else {
        return Ok(None);
    };
    // Command names are case-insensitive, as in ftp.
    let name = name.to_ascii_lowercase();
    let name = name.as_str();
    let usage = || {
        let usage = help_of(name).map(|c| c.usage).unwrap_or("");
        syntax(format!("usage: {usage}"))
    };
    let (flags, args) = split_flags(name, args)?;
    let allow = |allowed: &[char]| -> Result<(), SyntaxError> {
        match flags.iter().find(|f| !allowed.contains(f)) {
            Some(f) => Err(syntax(format!("{name}: unknown option -{f}"))),
            None => Ok(()),
        }
    };
    let has = |f: char| flags.contains(&f);
    let line = match name {
        "ls" | "dir" => {
            allow(&['l'])?;
            if args.len() > 1 {
                return Err(usage());
            }
            Line::Ls {
                long: has('l'),
                path: args.first().cloned(),
            }
        }
        "cd" | "cwd" => {
            allow(&[])?;
            if args.len() > 1 {
                return Err(usage());
            }
            Line::Cd(args.first().cloned())
        }
        "pwd" => no_args(&flags, &args, Line::Pwd, usage)?,
        "get" | "recv" => {
            allow(&['c'])?;
            match args.as_slice() {
                [remote] => Line::Get {
                    remote: remote.clone(),
                    local: None,
                    resume: has('c'),
                },
                [remote, local] => Line::Get {
                    remote: remote.clone(),
                    local: Some(local.clone()),
                    resume: has('c'),
                },
                _ => return Err(usage()),
            }
        }
        "put" | "send" => {
            allow(&['c'])?;
            match args.as_slice() {
                [local] => Line::Put {
                    local: local.clone(),
                    remote: None,
                    resume: has('c'),
                },
                [local, remote] => Line::Put {
                    local: local.clone(),
                    remote: Some(remote.clone()),
                    resume: has('c'),
                },
                _ => return Err(usage()),
            }
        }
        "mget" | "mput" | "rm" | "delete" | "rmdir" => {
            allow(&[])?;
            if args.is_empty() {
                return Err(usage());
            }
            match name {
                "mget" => Line::Mget(args),
                "mput" => Line::Mput(args),
                "rmdir" => Line::Rmdir(args),
                _ => Line::Rm(args),
            }
        }
        "mkdir" => {
            allow(&['p'])?;
            if args.is_empty() {
                return Err(usage());
            }
            Line::Mkdir {
                parents: has('p'),
                dirs: args,
            }
        }
        "mv" | "rename" => {
            allow(&[])?;
            match args.as_slice() {
                [from, to] => Line::Mv {
                    from: from.clone(),
                    to: to.clone(),
                },
                _ => return Err(usage()),
            }
        }
        "lcd" => {
            allow(&[])?;
            if args.len() > 1 {
                return Err(usage());
            }
            Line::Lcd(args.first().cloned())
        }
        "lpwd" => no_args(&flags, &args, Line::Lpwd, usage)?,
        "help" | "?" => {
            if args.len() > 1 || !flags.is_empty() {
                return Err(usage());
            }
            Line::Help(args.first().cloned())
        }
        "bye" | "quit" | "exit" => no_args(&flags, &args, Line::Quit, usage)?,
        other => {
            return Err(syntax(format!(
                "unknown command {other:?} (help lists the commands)"
            )))
        }
    };
    Ok(Some(line))
}

fn no_args(
    flags: &[char],
    args: &[String],
    line: Line,
    usage: impl Fn() -> SyntaxError,
) -> Result<Line, SyntaxError> {
    if flags.is_empty() && args.is_empty() {
        Ok(line)
    } else {
        Err(usage())
    }
}

/// Splits leading `-x` options (letters may be grouped, `--` ends them) from the arguments.
/// A lone `-` is an argument (`cd -`).
fn split_flags(name: &str, args: &[String]) -> Result<(Vec<char>, Vec<String>), SyntaxError> {
    let mut flags = Vec::new();
    let mut rest = args.iter();
    let mut positional = Vec::new();
    for arg in rest.by_ref() {
        if arg == "--" {
            break;
        }
        match arg.strip_prefix('-') {
            Some(letters) if !letters.is_empty() => {
                if letters.starts_with('-') || !letters.chars().all(|c| c.is_ascii_alphabetic()) {
                    return Err(syntax(format!("{name}: unknown option {arg}")));
                }
                flags.extend(letters.chars());
            }
            _ => {
                positional.push(arg.clone());
                break;
            }
        }
    }
    positional.extend(rest.cloned());
    Ok((flags, positional))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Line {
        parse_line(s).unwrap().unwrap()
    }

    #[test]
    fn words_quotes_and_escapes() {
        assert_eq!(
            p("get 'a file.txt' \"local name\""),
            Line::Get {
                remote: "a file.txt".into(),
                local: Some("local name".into()),
                resume: false
            }
        );
        assert_eq!(
            p(r"put -c my\ file"),
            Line::Put {
                local: "my file".into(),
                remote: None,
                resume: true
            }
        );
        assert_eq!(
            p("ls -l '*.csv'"),
            Line::Ls {
                long: true,
                path: Some("*.csv".into())
            }
        );
        assert_eq!(
            p("mkdir -p a/b c"),
            Line::Mkdir {
                parents: true,
                dirs: vec!["a/b".into(), "c".into()]
            }
        );
        assert_eq!(p("rm -- -odd"), Line::Rm(vec!["-odd".into()]));
        assert_eq!(p("cd -"), Line::Cd(Some("-".into())));
        assert_eq!(
            p("  !ls -la | wc -l "),
            Line::Local("ls -la | wc -l".into())
        );
        assert_eq!(p("!"), Line::Local(String::new()));
        assert_eq!(p("QUIT"), Line::Quit);
        assert_eq!(parse_line("   ").unwrap(), None);
        assert_eq!(parse_line("  # a comment").unwrap(), None);
    }

    #[test]
    fn errors() {
        for bad in [
            "get",
            "get a b c",
            "mv a",
            "ls -x",
            "ls --long",
            "pwd x",
            "frobnicate",
            "get 'unclosed",
            "rm",
            "mkdir -q x",
        ] {
            assert!(parse_line(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_line("get").unwrap_err().0,
            "usage: get [-c] REMOTE [LOCAL]"
        );
    }

    #[test]
    fn every_command_has_help() {
        for c in COMMANDS {
            for n in c.names {
                assert!(help_of(n).is_some());
            }
        }
    }
}
