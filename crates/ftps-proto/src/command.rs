//! Command parsing: one control line in, one typed [`Command`] out (RFC 959 §4.1, §5.3).
//!
//! The parser checks syntax only. Whether a command is allowed in the session's state
//! (logged in, TLS on, after `RNFR`, ...) is the server's decision. The other direction,
//! a [`Command`] as the line a client sends, is in [`format`](mod@format).

use std::fmt;
use std::net::{SocketAddr, SocketAddrV4};

use crate::address::{self, AddressError};
use crate::reply::ReplyCode;

pub mod format;

/// A password, kept out of `Debug` output so it never reaches a log.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> Password {
        Password(password.into())
    }
    /// The password text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// `TYPE` representation types we implement (RFC 959 §3.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TransferType {
    /// `TYPE A` / `TYPE A N`: text with CRLF line endings on the wire.
    Ascii,
    /// `TYPE I` / `TYPE L 8`: bytes as they are.
    #[default]
    Image,
}

/// `PROT` data channel protection levels (RFC 2228 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtectionLevel {
    /// `C`: no protection.
    Clear,
    /// `S`: integrity only.
    Safe,
    /// `E`: confidentiality only.
    Confidential,
    /// `P`: integrity and confidentiality (TLS).
    Private,
}

/// The argument of `EPSV` (RFC 2428 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpsvArg {
    /// No argument: use the control connection's protocol.
    Default,
    /// `EPSV ALL`: from now on only EPSV sets up data connections.
    All,
    /// `EPSV 1` / `EPSV 2`: IPv4 / IPv6.
    Protocol(u8),
}

/// The arguments of `LIST`, `NLST` and `STAT` with a path.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ListArgs {
    /// `ls`-style options the client sent (`-la`), tolerated and mostly ignored.
    pub options: String,
    /// The path to list, if any.
    pub path: Option<String>,
}

impl ListArgs {
    /// Whether the options ask for hidden (dot) files.
    pub fn all(&self) -> bool {
        self.options.contains('a')
    }
}

/// One FTP command with its parsed arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Command {
    // Access control (RFC 959 §4.1.1)
    User(String),
    Pass(Password),
    Acct(String),
    Cwd(String),
    Cdup,
    Smnt(String),
    Rein,
    Quit,
    // Transfer parameters (§4.1.2)
    Port(SocketAddrV4),
    Pasv,
    Type(TransferType),
    Stru,
    Mode,
    // Service commands (§4.1.3)
    Retr(String),
    Stor(String),
    Stou,
    Appe(String),
    Allo,
    Rest(u64),
    Rnfr(String),
    Rnto(String),
    Abor,
    Dele(String),
    Rmd(String),
    Mkd(String),
    Pwd,
    List(ListArgs),
    Nlst(ListArgs),
    Site(String),
    Syst,
    Stat(Option<ListArgs>),
    Help(Option<String>),
    Noop,
    // RFC 2228 / RFC 4217
    Auth(String),
    Pbsz(u64),
    Prot(ProtectionLevel),
    Ccc,
    /// Clear Data Channel: the same as `PROT C`.
    Cdc,
    // RFC 2389
    Feat,
    Opts(String),
    // RFC 2428
    Eprt(SocketAddr),
    Epsv(EpsvArg),
    // RFC 2640
    Lang(Option<String>),
    // RFC 3659
    Size(String),
    Mdtm(String),
    Mlst(Option<String>),
    Mlsd(Option<String>),
    // RFC 7151
    Host(String),
    // Widely used extensions
    /// `CLNT name`: the client announces its software (informational).
    Clnt(String),
    /// `MFMT YYYYMMDDHHMMSS path`: set a file's modification time
    /// (draft-somers-ftp-mfxx).
    Mfmt(std::time::SystemTime, String),
    /// `HASH path`: a whole-file digest (draft-bryan-ftpext-hash).
    Hash(String),
}

impl Command {
    /// The command's verb as sent on the wire.
    pub fn verb(&self) -> &'static str {
        use Command::*;
        match self {
            User(_) => "USER",
            Pass(_) => "PASS",
            Acct(_) => "ACCT",
            Cwd(_) => "CWD",
            Cdup => "CDUP",
            Smnt(_) => "SMNT",
            Rein => "REIN",
            Quit => "QUIT",
            Port(_) => "PORT",
            Pasv => "PASV",
            Type(_) => "TYPE",
            Stru => "STRU",
            Mode => "MODE",
            Retr(_) => "RETR",
            Stor(_) => "STOR",
            Stou => "STOU",
            Appe(_) => "APPE",
            Allo => "ALLO",
            Rest(_) => "REST",
            Rnfr(_) => "RNFR",
            Rnto(_) => "RNTO",
            Abor => "ABOR",
            Dele(_) => "DELE",
            Rmd(_) => "RMD",
            Mkd(_) => "MKD",
            Pwd => "PWD",
            List(_) => "LIST",
            Nlst(_) => "NLST",
            Site(_) => "SITE",
            Syst => "SYST",
            Stat(_) => "STAT",
            Help(_) => "HELP",
            Noop => "NOOP",
            Auth(_) => "AUTH",
            Pbsz(_) => "PBSZ",
            Prot(_) => "PROT",
            Ccc => "CCC",
            Cdc => "CDC",
            Feat => "FEAT",
            Opts(_) => "OPTS",
            Eprt(_) => "EPRT",
            Epsv(_) => "EPSV",
            Lang(_) => "LANG",
            Size(_) => "SIZE",
            Mdtm(_) => "MDTM",
            Mlst(_) => "MLST",
            Mlsd(_) => "MLSD",
            Host(_) => "HOST",
            Clnt(_) => "CLNT",
            Mfmt(..) => "MFMT",
            Hash(_) => "HASH",
        }
    }
}

/// Why a line is not a valid command. Each variant maps to the reply RFC 959 prescribes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// An empty line.
    Empty,
    /// A verb we do not know or implement: 502.
    NotImplemented(String),
    /// A malformed argument, or one missing or superfluous: 501.
    Syntax(&'static str),
    /// A well-formed argument naming something we do not implement (`TYPE E`, `MODE B`): 504.
    Unsupported(&'static str),
    /// `EPRT` with a network protocol other than IPv4 or IPv6: 522 (RFC 2428 §2).
    NetworkProtocol,
}

impl ParseError {
    /// The reply code for this error.
    pub fn code(&self) -> ReplyCode {
        match self {
            ParseError::Empty => ReplyCode::SYNTAX_ERROR,
            ParseError::NotImplemented(_) => ReplyCode::NOT_IMPLEMENTED,
            ParseError::Syntax(_) => ReplyCode::PARAMETER_SYNTAX_ERROR,
            ParseError::Unsupported(_) => ReplyCode::PARAMETER_NOT_IMPLEMENTED,
            ParseError::NetworkProtocol => ReplyCode::EXTENDED_PORT_FAILURE,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Empty => f.write_str("Empty command."),
            ParseError::NotImplemented(verb) => write!(f, "Command {verb} not implemented."),
            ParseError::Syntax(msg) => write!(f, "Syntax error: {msg}."),
            ParseError::Unsupported(msg) => write!(f, "{msg}."),
            ParseError::NetworkProtocol => {
                f.write_str("Network protocol not supported, use (1,2).")
            }
        }
    }
}

impl std::error::Error for ParseError {}

/// The longest verb we accept; real verbs have three or four letters.
const MAX_VERB: usize = 8;

/// Parses one control line (without CRLF, Telnet sequences already removed).
pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    let (verb, arg) = match line.iter().position(|&b| b == b' ') {
        Some(i) => (&line[..i], Some(&line[i + 1..])),
        None => (line, None),
    };
    if verb.is_empty() {
        return Err(ParseError::Empty);
    }
    if verb.len() > MAX_VERB || !verb.iter().all(u8::is_ascii_alphabetic) {
        return Err(ParseError::NotImplemented(printable_verb(verb)));
    }
    let verb = String::from_utf8_lossy(verb).to_ascii_uppercase();
    // RFC 2640: pathnames are UTF-8. Anything else is refused rather than guessed at.
    let arg = match arg {
        Some(bytes) => Some(
            std::str::from_utf8(bytes).map_err(|_| ParseError::Syntax("argument is not UTF-8"))?,
        ),
        None => None,
    };
    if arg.is_some_and(|a| a.contains('\0')) {
        return Err(ParseError::Syntax("argument contains NUL"));
    }
    parse_verb(&verb, arg)
}

fn printable_verb(verb: &[u8]) -> String {
    verb.iter()
        .take(MAX_VERB)
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
        .collect()
}

fn parse_verb(verb: &str, arg: Option<&str>) -> Result<Command, ParseError> {
    use Command::*;
    let cmd = match verb {
        "USER" => User(required(arg)?.to_string()),
        "PASS" => Pass(Password::new(arg.unwrap_or(""))),
        "ACCT" => Acct(required(arg)?.to_string()),
        "CWD" | "XCWD" => Cwd(required(arg)?.to_string()),
        "CDUP" | "XCUP" => none(arg, Cdup)?,
        "SMNT" => Smnt(required(arg)?.to_string()),
        "REIN" => none(arg, Rein)?,
        "QUIT" => none(arg, Quit)?,
        "PORT" => Port(address::parse_host_port(required(arg)?).map_err(address_error)?),
        "PASV" => none(arg, Pasv)?,
        "TYPE" => Type(parse_type(required(arg)?)?),
        "STRU" => match required(arg)?.trim().to_ascii_uppercase().as_str() {
            "F" => Stru,
            "R" | "P" => {
                return Err(ParseError::Unsupported(
                    "Only file structure (F) is supported",
                ))
            }
            _ => return Err(ParseError::Syntax("unknown structure")),
        },
        "MODE" => match required(arg)?.trim().to_ascii_uppercase().as_str() {
            "S" => Mode,
            "B" | "C" | "Z" => {
                return Err(ParseError::Unsupported("Only stream mode (S) is supported"))
            }
            _ => return Err(ParseError::Syntax("unknown mode")),
        },
        "RETR" => Retr(required(arg)?.to_string()),
        "STOR" => Stor(required(arg)?.to_string()),
        "STOU" => none(arg, Stou)?,
        "APPE" => Appe(required(arg)?.to_string()),
        "ALLO" => Allo,
        "REST" => Rest(parse_decimal(required(arg)?)?),
        "RNFR" => Rnfr(required(arg)?.to_string()),
        "RNTO" => Rnto(required(arg)?.to_string()),
        "ABOR" => none(arg, Abor)?,
        "DELE" => Dele(required(arg)?.to_string()),
        "RMD" | "XRMD" => Rmd(required(arg)?.to_string()),
        "MKD" | "XMKD" => Mkd(required(arg)?.to_string()),
        "PWD" | "XPWD" => none(arg, Pwd)?,
        "LIST" => List(parse_list_args(arg)),
        "NLST" => Nlst(parse_list_args(arg)),
        "SITE" => Site(required(arg)?.to_string()),
        "SYST" => none(arg, Syst)?,
        "STAT" => Stat(optional(arg).map(|a| parse_list_args(Some(a)))),
        "HELP" => Help(optional(arg).map(|a| a.trim().to_string())),
        "NOOP" => none(arg, Noop)?,
        "AUTH" => Auth(required(arg)?.trim().to_ascii_uppercase()),
        "PBSZ" => Pbsz(parse_decimal(required(arg)?)?),
        "PROT" => Prot(parse_prot(required(arg)?)?),
        "CCC" => none(arg, Ccc)?,
        "CDC" => none(arg, Cdc)?,
        "FEAT" => none(arg, Feat)?,
        "OPTS" => Opts(required(arg)?.trim().to_string()),
        "EPRT" => Eprt(address::parse_eprt(required(arg)?).map_err(address_error)?),
        "EPSV" => Epsv(parse_epsv(arg)?),
        "LANG" => Lang(optional(arg).map(|a| a.trim().to_string())),
        "SIZE" => Size(required(arg)?.to_string()),
        "MDTM" => Mdtm(required(arg)?.to_string()),
        "MLST" => Mlst(optional(arg).map(str::to_string)),
        "MLSD" => Mlsd(optional(arg).map(str::to_string)),
        "HOST" => Host(required(arg)?.trim().to_string()),
        "CLNT" => Clnt(required(arg)?.trim().to_string()),
        "MFMT" => parse_mfmt(required(arg)?)?,
        "HASH" => Hash(required(arg)?.to_string()),
        _ => return Err(ParseError::NotImplemented(verb.to_string())),
    };
    Ok(cmd)
}

/// A required argument: present and not blank. Kept verbatim, since file names may begin or
/// end with spaces.
fn required(arg: Option<&str>) -> Result<&str, ParseError> {
    match arg {
        Some(a) if !a.trim().is_empty() => Ok(a),
        _ => Err(ParseError::Syntax("missing argument")),
    }
}

fn optional(arg: Option<&str>) -> Option<&str> {
    arg.filter(|a| !a.trim().is_empty())
}

/// A command that takes no argument; trailing blanks are tolerated.
fn none(arg: Option<&str>, cmd: Command) -> Result<Command, ParseError> {
    match optional(arg) {
        None => Ok(cmd),
        Some(_) => Err(ParseError::Syntax("unexpected argument")),
    }
}

fn parse_decimal(arg: &str) -> Result<u64, ParseError> {
    let arg = arg.trim();
    if arg.is_empty() || !arg.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::Syntax("expected a decimal number"));
    }
    arg.parse()
        .map_err(|_| ParseError::Syntax("number too large"))
}

fn parse_type(arg: &str) -> Result<TransferType, ParseError> {
    let upper = arg.trim().to_ascii_uppercase();
    let mut words = upper.split_ascii_whitespace();
    let kind = words.next().unwrap_or("");
    let param = words.next();
    if words.next().is_some() {
        return Err(ParseError::Syntax("too many TYPE parameters"));
    }
    match (kind, param) {
        ("A", None | Some("N")) => Ok(TransferType::Ascii),
        ("A", Some("T" | "C")) => Err(ParseError::Unsupported(
            "Only non-print format is supported",
        )),
        ("I", None) | ("L", Some("8")) => Ok(TransferType::Image),
        ("L", Some(_)) => Err(ParseError::Unsupported("Only byte size 8 is supported")),
        ("E", _) => Err(ParseError::Unsupported("EBCDIC is not supported")),
        _ => Err(ParseError::Syntax("unknown type")),
    }
}

/// `MFMT time path`: the time is `YYYYMMDDHHMMSS[.sss]` in UTC (RFC 3659 §2.3); the path is
/// everything after the single space that follows it.
fn parse_mfmt(arg: &str) -> Result<Command, ParseError> {
    let (time, path) = arg
        .trim_start()
        .split_once(' ')
        .ok_or(ParseError::Syntax("MFMT takes a time and a path"))?;
    let time = crate::listing::parse_mdtm_time(time)
        .ok_or(ParseError::Syntax("time must be YYYYMMDDHHMMSS"))?;
    Ok(Command::Mfmt(time, required(Some(path))?.to_string()))
}

fn parse_prot(arg: &str) -> Result<ProtectionLevel, ParseError> {
    match arg.trim().to_ascii_uppercase().as_str() {
        "C" => Ok(ProtectionLevel::Clear),
        "S" => Ok(ProtectionLevel::Safe),
        "E" => Ok(ProtectionLevel::Confidential),
        "P" => Ok(ProtectionLevel::Private),
        // RFC 2228: an unrecognised level is 504.
        _ => Err(ParseError::Unsupported("Unknown protection level")),
    }
}

fn parse_epsv(arg: Option<&str>) -> Result<EpsvArg, ParseError> {
    match optional(arg).map(|a| a.trim().to_ascii_uppercase()) {
        None => Ok(EpsvArg::Default),
        Some(a) if a == "ALL" => Ok(EpsvArg::All),
        Some(a) => match a.parse::<u8>() {
            Ok(p) => Ok(EpsvArg::Protocol(p)),
            Err(_) => Err(ParseError::Syntax("EPSV takes ALL or a protocol number")),
        },
    }
}

fn address_error(e: AddressError) -> ParseError {
    match e {
        AddressError::Syntax => ParseError::Syntax("malformed address"),
        AddressError::UnsupportedProtocol => ParseError::NetworkProtocol,
    }
}

/// Splits `LIST`/`NLST` arguments into leading `ls`-style options and a path.
///
/// Clients send `LIST -la` or `LIST -la dir`; a word that starts with `-` and consists of
/// letters only is taken as options. Nothing is globbed.
fn parse_list_args(arg: Option<&str>) -> ListArgs {
    let mut rest = arg.unwrap_or("");
    let mut options = String::new();
    loop {
        let trimmed = rest.trim_start();
        let word_end = trimmed.find(' ').unwrap_or(trimmed.len());
        let word = &trimmed[..word_end];
        if word.len() > 1
            && word.starts_with('-')
            && word[1..].bytes().all(|b| b.is_ascii_alphabetic())
        {
            options.push_str(&word[1..]);
            rest = &trimmed[word_end..];
        } else {
            break;
        }
    }
    let path = rest.trim_start_matches(' ');
    ListArgs {
        options,
        path: (!path.is_empty()).then(|| path.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> Result<Command, ParseError> {
        parse(s.as_bytes())
    }

    #[test]
    fn verbs_are_case_insensitive_and_aliases_map() {
        assert_eq!(p("user alice"), Ok(Command::User("alice".into())));
        assert_eq!(p("XPWD"), Ok(Command::Pwd));
        assert_eq!(p("xmkd d"), Ok(Command::Mkd("d".into())));
        assert_eq!(p("noop  "), Ok(Command::Noop));
    }

    #[test]
    fn paths_are_kept_verbatim() {
        assert_eq!(
            p("RETR  spaced name "),
            Ok(Command::Retr(" spaced name ".into()))
        );
        assert_eq!(p("CWD ../x"), Ok(Command::Cwd("../x".into())));
    }

    #[test]
    fn errors_map_to_rfc_codes() {
        assert_eq!(p("").unwrap_err().code().0, 500);
        assert_eq!(p("FOO").unwrap_err().code().0, 502);
        assert_eq!(p("GET / HTTP/1.1").unwrap_err().code().0, 502);
        assert_eq!(p("RETR").unwrap_err().code().0, 501);
        assert_eq!(p("PWD x").unwrap_err().code().0, 501);
        assert_eq!(p("TYPE E").unwrap_err().code().0, 504);
        assert_eq!(p("TYPE Q").unwrap_err().code().0, 501);
        assert_eq!(p("MODE B").unwrap_err().code().0, 504);
        assert_eq!(p("STRU R").unwrap_err().code().0, 504);
        assert_eq!(p("REST -1").unwrap_err().code().0, 501);
        assert_eq!(p("PORT 1,2,3").unwrap_err().code().0, 501);
        assert_eq!(p("EPRT |3|x|1|").unwrap_err().code().0, 522);
        assert_eq!(p("PROT X").unwrap_err().code().0, 504);
        assert_eq!(parse(b"RETR \xff\xfe").unwrap_err().code().0, 501);
    }

    #[test]
    fn typed_arguments() {
        assert_eq!(p("TYPE A N"), Ok(Command::Type(TransferType::Ascii)));
        assert_eq!(p("TYPE L 8"), Ok(Command::Type(TransferType::Image)));
        assert_eq!(p("type i"), Ok(Command::Type(TransferType::Image)));
        assert_eq!(p("REST 4294967300"), Ok(Command::Rest(4_294_967_300)));
        assert_eq!(p("PROT p"), Ok(Command::Prot(ProtectionLevel::Private)));
        assert_eq!(p("AUTH tls"), Ok(Command::Auth("TLS".into())));
        assert_eq!(p("EPSV ALL"), Ok(Command::Epsv(EpsvArg::All)));
        assert_eq!(p("EPSV 2"), Ok(Command::Epsv(EpsvArg::Protocol(2))));
        assert_eq!(
            p("PORT 127,0,0,1,4,1"),
            Ok(Command::Port("127.0.0.1:1025".parse().unwrap()))
        );
    }

    #[test]
    fn list_options() {
        let la = |s| match p(s) {
            Ok(Command::List(a)) => a,
            other => panic!("{other:?}"),
        };
        assert_eq!(la("LIST"), ListArgs::default());
        assert_eq!(
            la("LIST -la"),
            ListArgs {
                options: "la".into(),
                path: None
            }
        );
        assert_eq!(
            la("LIST -l -a dir x"),
            ListArgs {
                options: "la".into(),
                path: Some("dir x".into())
            }
        );
        assert_eq!(
            la("LIST -"),
            ListArgs {
                options: "".into(),
                path: Some("-".into())
            }
        );
    }

    #[test]
    fn extensions() {
        use std::time::{Duration, UNIX_EPOCH};
        assert_eq!(
            p("MFMT 20201231235959 a file.txt"),
            Ok(Command::Mfmt(
                UNIX_EPOCH + Duration::from_secs(1_609_459_199),
                "a file.txt".into()
            ))
        );
        assert_eq!(p("MFMT 20201231235959").unwrap_err().code().0, 501);
        assert_eq!(p("MFMT 2020123123 x").unwrap_err().code().0, 501);
        assert_eq!(p("MFMT 20201231235959 ").unwrap_err().code().0, 501);
        assert_eq!(p("HASH x y"), Ok(Command::Hash("x y".into())));
        assert_eq!(p("HASH").unwrap_err().code().0, 501);
        assert_eq!(p("CLNT curl 7.88"), Ok(Command::Clnt("curl 7.88".into())));
        assert_eq!(p("CLNT").unwrap_err().code().0, 501);
    }

    #[test]
    fn password_is_redacted() {
        let c = p("PASS hunter2").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    proptest! {
        #[test]
        fn parser_never_panics(line in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&line);
        }

        #[test]
        fn known_verbs_with_text_args(verb in prop::sample::select(vec!["RETR", "STOR", "DELE", "MKD", "CWD", "RNFR"]), name in "[a-zA-Z0-9 ._-]{1,50}") {
            prop_assume!(!name.trim().is_empty());
            let cmd = parse(format!("{verb} {name}").as_bytes()).unwrap();
            prop_assert_eq!(cmd.verb(), verb);
        }
    }
}
