//! Command formatting: one typed [`Command`] in, the line a client sends out (RFC 959 §4.1,
//! §5.3). The inverse of [`parse`](super::parse): for every command in the form the parser
//! produces, `parse(line) == command`.
//!
//! [`Command::to_line`] gives the exact wire text; `Display` gives the same text with the
//! password of `PASS` hidden, for logs and error messages.

use std::fmt;
use std::time::SystemTime;

use super::{Command, EpsvArg, ListArgs, Password, ProtectionLevel, TransferType};
use crate::address;
use crate::listing::mdtm_time;

/// Why a command cannot be sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// An argument contains CR or LF: the line would end early and the rest would be read
    /// as another command.
    LineBreak,
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::LineBreak => f.write_str("a command argument contains CR or LF"),
        }
    }
}

impl std::error::Error for FormatError {}

impl Command {
    /// The line as sent on the wire: verb, argument, CRLF.
    ///
    /// Arguments are sent verbatim (file names may begin or end with spaces), so the only
    /// thing refused is a line break inside one. Other characters, NUL included, are the
    /// server's to judge.
    pub fn to_line(&self) -> Result<String, FormatError> {
        let mut line = String::new();
        // Writing to a String cannot fail.
        let _ = write_command(self, &mut line, Secret::Shown);
        if line.contains(['\r', '\n']) {
            return Err(FormatError::LineBreak);
        }
        line.push_str("\r\n");
        Ok(line)
    }

    /// `MDTM time path`: the two-argument form of `MDTM` that sets a file's modification
    /// time, which vsftpd and others accept where `MFMT` is missing. The parser reads it as
    /// `MDTM` of the whole argument, as servers without that form do.
    pub fn mdtm_set(time: SystemTime, path: &str) -> Command {
        Command::Mdtm(format!("{} {path}", mdtm_time(time)))
    }
}

/// The command as a person may see it: the wire text without CRLF, `PASS ****` for a
/// password.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_command(self, f, Secret::Hidden)
    }
}

/// Whether a password is written out (on the wire) or hidden (anywhere else).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Secret {
    Shown,
    Hidden,
}

fn write_command(cmd: &Command, out: &mut dyn fmt::Write, secret: Secret) -> fmt::Result {
    use Command::*;
    let verb = cmd.verb();
    match cmd {
        Cdup | Rein | Quit | Pasv | Stou | Allo | Abor | Pwd | Syst | Noop | Ccc | Cdc | Feat => {
            out.write_str(verb)
        }
        User(arg) | Acct(arg) | Cwd(arg) | Smnt(arg) | Retr(arg) | Stor(arg) | Appe(arg)
        | Rnfr(arg) | Rnto(arg) | Dele(arg) | Rmd(arg) | Mkd(arg) | Site(arg) | Auth(arg)
        | Opts(arg) | Size(arg) | Mdtm(arg) | Host(arg) | Clnt(arg) | Hash(arg) => {
            write!(out, "{verb} {arg}")
        }
        Pass(password) => write!(out, "{verb} {}", password_text(password, secret)),
        Port(addr) => write!(out, "{verb} {}", address::format_host_port(*addr)),
        Eprt(addr) => write!(out, "{verb} {}", address::format_eprt(*addr)),
        Type(TransferType::Ascii) => write!(out, "{verb} A"),
        Type(TransferType::Image) => write!(out, "{verb} I"),
        // The only structure and mode the parser accepts.
        Stru => write!(out, "{verb} F"),
        Mode => write!(out, "{verb} S"),
        Rest(n) | Pbsz(n) => write!(out, "{verb} {n}"),
        Prot(level) => write!(out, "{verb} {}", protection_letter(*level)),
        Epsv(EpsvArg::Default) => out.write_str(verb),
        Epsv(EpsvArg::All) => write!(out, "{verb} ALL"),
        Epsv(EpsvArg::Protocol(p)) => write!(out, "{verb} {p}"),
        List(args) | Nlst(args) | Stat(Some(args)) => {
            out.write_str(verb)?;
            write_list_args(args, out)
        }
        Stat(None) | Help(None) | Lang(None) | Mlst(None) | Mlsd(None) => out.write_str(verb),
        Help(Some(arg)) | Lang(Some(arg)) | Mlst(Some(arg)) | Mlsd(Some(arg)) => {
            write!(out, "{verb} {arg}")
        }
        Mfmt(time, path) => write!(out, "{verb} {} {path}", mdtm_time(*time)),
    }
}

fn password_text(password: &Password, secret: Secret) -> &str {
    match secret {
        Secret::Shown => password.expose(),
        Secret::Hidden => "****",
    }
}

fn protection_letter(level: ProtectionLevel) -> char {
    match level {
        ProtectionLevel::Clear => 'C',
        ProtectionLevel::Safe => 'S',
        ProtectionLevel::Confidential => 'E',
        ProtectionLevel::Private => 'P',
    }
}

/// ` -options path`, each part only when present.
fn write_list_args(args: &ListArgs, out: &mut dyn fmt::Write) -> fmt::Result {
    if !args.options.is_empty() {
        write!(out, " -{}", args.options)?;
    }
    if let Some(path) = &args.path {
        write!(out, " {path}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};
    use std::time::{Duration, UNIX_EPOCH};

    use proptest::prelude::*;

    use super::super::parse;
    use super::*;

    fn line(c: &Command) -> String {
        c.to_line().unwrap()
    }

    #[test]
    fn the_commands_a_client_sends() {
        use Command::*;
        let cases: Vec<(Command, &str)> = vec![
            (Auth("TLS".into()), "AUTH TLS\r\n"),
            (User("alice".into()), "USER alice\r\n"),
            (Pass(Password::new("hunter2")), "PASS hunter2\r\n"),
            (Pass(Password::new("")), "PASS \r\n"),
            (Pbsz(0), "PBSZ 0\r\n"),
            (Prot(ProtectionLevel::Private), "PROT P\r\n"),
            (Type(TransferType::Image), "TYPE I\r\n"),
            (Feat, "FEAT\r\n"),
            (Opts("UTF8 ON".into()), "OPTS UTF8 ON\r\n"),
            (Pwd, "PWD\r\n"),
            (Cwd(" spaced ".into()), "CWD  spaced \r\n"),
            (Mkd("a/b".into()), "MKD a/b\r\n"),
            (Rnfr("a".into()), "RNFR a\r\n"),
            (Rnto("b".into()), "RNTO b\r\n"),
            (Size("f".into()), "SIZE f\r\n"),
            (Mlst(Some("/x".into())), "MLST /x\r\n"),
            (Mlsd(None), "MLSD\r\n"),
            (List(ListArgs::default()), "LIST\r\n"),
            (
                List(ListArgs {
                    options: String::new(),
                    path: Some("d".into()),
                }),
                "LIST d\r\n",
            ),
            (Epsv(EpsvArg::Default), "EPSV\r\n"),
            (Pasv, "PASV\r\n"),
            (Eprt("[::1]:5282".parse().unwrap()), "EPRT |2|::1|5282|\r\n"),
            (
                Port("127.0.0.1:1025".parse().unwrap()),
                "PORT 127,0,0,1,4,1\r\n",
            ),
            (Rest(4_294_967_300), "REST 4294967300\r\n"),
            (Retr("r".into()), "RETR r\r\n"),
            (
                Mfmt(UNIX_EPOCH + Duration::from_secs(1_609_459_199), "f".into()),
                "MFMT 20201231235959 f\r\n",
            ),
            (Hash("a b".into()), "HASH a b\r\n"),
            (Abor, "ABOR\r\n"),
            (Quit, "QUIT\r\n"),
        ];
        for (command, wire) in cases {
            assert_eq!(line(&command), wire, "{command:?}");
        }
        assert_eq!(
            line(&Command::mdtm_set(
                UNIX_EPOCH + Duration::from_secs(1_609_459_199),
                "f"
            )),
            "MDTM 20201231235959 f\r\n"
        );
    }

    #[test]
    fn display_hides_the_password_and_nothing_else() {
        assert_eq!(
            Command::Pass(Password::new("hunter2")).to_string(),
            "PASS ****"
        );
        assert_eq!(Command::User("alice".into()).to_string(), "USER alice");
        assert_eq!(Command::Retr("x".into()).to_string(), "RETR x");
    }

    #[test]
    fn line_breaks_are_refused() {
        assert_eq!(
            Command::Cwd("a\r\nDELE b".into()).to_line(),
            Err(FormatError::LineBreak)
        );
        assert_eq!(
            Command::Pass(Password::new("x\n")).to_line(),
            Err(FormatError::LineBreak)
        );
        assert_eq!(
            Command::Retr("a\rb".into()).to_line(),
            Err(FormatError::LineBreak)
        );
    }

    /// A verbatim argument: not blank, no line break, no NUL (which the parser refuses).
    fn text() -> impl Strategy<Value = String> {
        "[^\r\n\0]{1,40}".prop_filter("blank", |s| !s.trim().is_empty())
    }

    /// An argument the parser trims: no surrounding white space.
    fn word() -> impl Strategy<Value = String> {
        "[!-~]([ -~]{0,20}[!-~])?"
    }

    /// `LIST`-style arguments as the parser splits them: options are letters, and a path
    /// neither starts with a blank nor looks like more options.
    fn list_args() -> impl Strategy<Value = ListArgs> {
        (
            "[a-zA-Z]{0,4}",
            proptest::option::of("[a-zA-Z0-9._/][^\r\n\0]{0,30}"),
        )
            .prop_map(|(options, path)| ListArgs { options, path })
    }

    fn socket_addr() -> impl Strategy<Value = SocketAddr> {
        (any::<bool>(), any::<u32>(), any::<u128>(), 1u16..).prop_map(|(v6, a, b, port)| {
            let ip = if v6 {
                IpAddr::V6(Ipv6Addr::from(b))
            } else {
                IpAddr::V4(Ipv4Addr::from(a))
            };
            SocketAddr::new(ip, port)
        })
    }

    /// Every command, with arguments in the form the parser produces.
    fn command() -> impl Strategy<Value = Command> {
        use Command::*;
        let bare = prop::sample::select(vec![
            Cdup, Rein, Quit, Pasv, Stru, Mode, Stou, Allo, Abor, Pwd, Syst, Noop, Ccc, Cdc, Feat,
        ]);
        let verbatim = (0..16usize, text()).prop_map(|(i, s)| match i {
            0 => User(s),
            1 => Acct(s),
            2 => Cwd(s),
            3 => Smnt(s),
            4 => Retr(s),
            5 => Stor(s),
            6 => Appe(s),
            7 => Rnfr(s),
            8 => Rnto(s),
            9 => Dele(s),
            10 => Rmd(s),
            11 => Mkd(s),
            12 => Site(s),
            13 => Size(s),
            14 => Mdtm(s),
            _ => Hash(s),
        });
        let trimmed = (0..4usize, word()).prop_map(|(i, s)| match i {
            0 => Opts(s),
            1 => Host(s),
            2 => Clnt(s),
            _ => Auth(s.to_ascii_uppercase()),
        });
        let optional = (0..4usize, proptest::option::of(word())).prop_map(|(i, s)| match i {
            0 => Help(s),
            1 => Lang(s),
            2 => Mlst(s),
            _ => Mlsd(s),
        });
        let listing = (0..3usize, list_args()).prop_map(|(i, a)| match i {
            0 => List(a),
            1 => Nlst(a),
            // `STAT` with nothing after it is `Stat(None)`.
            _ if a == ListArgs::default() => Stat(None),
            _ => Stat(Some(a)),
        });
        let typed = prop_oneof![
            "[^\r\n\0]{0,20}".prop_map(|p| Pass(Password::new(p))),
            (any::<u32>(), any::<u16>())
                .prop_map(|(ip, port)| Port(SocketAddrV4::new(Ipv4Addr::from(ip), port))),
            socket_addr().prop_map(Eprt),
            any::<bool>().prop_map(|a| Type(if a {
                TransferType::Ascii
            } else {
                TransferType::Image
            })),
            any::<u64>().prop_map(Rest),
            any::<u64>().prop_map(Pbsz),
            prop::sample::select(vec![
                ProtectionLevel::Clear,
                ProtectionLevel::Safe,
                ProtectionLevel::Confidential,
                ProtectionLevel::Private,
            ])
            .prop_map(Prot),
            prop_oneof![
                Just(EpsvArg::Default),
                Just(EpsvArg::All),
                any::<u8>().prop_map(EpsvArg::Protocol),
            ]
            .prop_map(Epsv),
            (0u64..253_402_300_799, text())
                .prop_map(|(secs, path)| Mfmt(UNIX_EPOCH + Duration::from_secs(secs), path)),
        ];
        prop_oneof![bare, verbatim, trimmed, optional, listing, typed]
    }

    proptest! {
        #[test]
        fn parse_of_format_is_identity(command in command()) {
            let wire = command.to_line().unwrap();
            let bare = wire.strip_suffix("\r\n").unwrap();
            prop_assert!(!bare.contains(['\r', '\n']));
            prop_assert_eq!(parse(bare.as_bytes()), Ok(command));
        }

        #[test]
        fn display_is_the_line_unless_it_holds_a_password(command in command()) {
            let wire = command.to_line().unwrap();
            if !matches!(command, Command::Pass(_)) {
                prop_assert_eq!(format!("{command}\r\n"), wire);
            }
        }
    }
}
