//! `ftps://` URLs and where the password comes from.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use ftps_client::TlsMode;

/// A parsed server URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Explicit or implicit TLS.
    pub mode: TlsMode,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// User name, if the URL has one.
    pub user: Option<String>,
    /// Password, if the URL has one (discouraged).
    pub password: Option<String>,
    /// Remote path: absolute (`/a/b`), or relative to the login directory (`` or `a/b`,
    /// written `/~/a/b` in the URL).
    pub path: String,
}

fn percent_decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .ok_or_else(|| anyhow!("bad percent escape in {s:?}"))?;
            out.push(
                u8::from_str_radix(hex, 16).map_err(|_| anyhow!("bad percent escape in {s:?}"))?,
            );
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| anyhow!("{s:?} is not UTF-8 once decoded"))
}

/// Whether `s` looks like a server URL rather than a local path.
pub fn is_url(s: &str) -> bool {
    ["ftps://", "ftpes://", "ftp://"]
        .iter()
        .any(|p| s.len() >= p.len() && s[..p.len()].eq_ignore_ascii_case(p))
}

/// Parses `ftps://user@host:990/path` (implicit TLS), `ftpes://user@host/path` (explicit),
/// or `ftp://...` (explicit: this client never sends anything in the clear). `ftps://` on
/// port 21 means explicit TLS; `force_explicit` makes any URL explicit.
pub fn parse_url(url: &str, force_explicit: bool) -> Result<Target> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| anyhow!("not a URL: {url:?} (expected ftps://host/path)"))?;
    let scheme = scheme.to_ascii_lowercase();
    let mut mode = match scheme.as_str() {
        "ftps" => TlsMode::Implicit,
        "ftpes" | "ftp" => TlsMode::Explicit,
        other => bail!(
            "unsupported scheme {other:?}: use ftps:// (implicit TLS) or ftpes:// (explicit TLS)"
        ),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        None => (None, None),
        Some(ui) => match ui.split_once(':') {
            Some((u, p)) => (Some(percent_decode(u)?), Some(percent_decode(p)?)),
            None => (Some(percent_decode(ui)?), None),
        },
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| anyhow!("unclosed [ in {url:?}"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => bail!("unexpected {after:?} after the address in {url:?}"),
        };
        (h.to_string(), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (hostport.to_string(), None),
        }
    };
    if host.is_empty() {
        bail!("no host in {url:?}");
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| anyhow!("bad port {p:?} in {url:?}"))?,
        None => {
            if force_explicit {
                mode = TlsMode::Explicit;
            }
            mode.default_port()
        }
    };
    if force_explicit || port == 21 {
        mode = TlsMode::Explicit;
    }
    let path = percent_decode(path)?;
    let path = if path == "/~" {
        String::new()
    } else if let Some(rel) = path.strip_prefix("/~/") {
        rel.to_string()
    } else if path.is_empty() {
        String::new()
    } else {
        path
    };
    if path.contains(['\r', '\n']) {
        bail!("the path in {url:?} contains a line break");
    }
    Ok(Target {
        mode,
        host,
        port,
        user,
        password,
        path,
    })
}

/// One `machine` entry of a netrc file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NetrcEntry {
    /// `login`
    pub login: Option<String>,
    /// `password`
    pub password: Option<String>,
}

/// Finds the entry for `host` (or the `default` entry) in netrc text. When `user` is given,
/// an entry with another login is skipped.
pub fn netrc_lookup(text: &str, host: &str, user: Option<&str>) -> Option<NetrcEntry> {
    let mut tokens = text.split_whitespace();
    let mut current: Option<(bool, NetrcEntry)> = None;
    let mut found = None;
    let mut default = None;
    let finish = |cur: Option<(bool, NetrcEntry)>,
                  found: &mut Option<NetrcEntry>,
                  default: &mut Option<NetrcEntry>| {
        if let Some((is_default, e)) = cur {
            let user_ok = match (user, &e.login) {
                (Some(u), Some(l)) => u == l,
                _ => true,
            };
            if user_ok {
                if is_default {
                    default.get_or_insert(e);
                } else {
                    found.get_or_insert(e);
                }
            }
        }
    };
    while let Some(tok) = tokens.next() {
        match tok {
            "machine" => {
                finish(current.take(), &mut found, &mut default);
                let name = tokens.next().unwrap_or("");
                if name.eq_ignore_ascii_case(host) {
                    current = Some((false, NetrcEntry::default()));
                }
            }
            "default" => {
                finish(current.take(), &mut found, &mut default);
                current = Some((true, NetrcEntry::default()));
            }
            "login" => {
                let v = tokens.next().map(str::to_string);
                if let Some((_, e)) = current.as_mut() {
                    e.login = v;
                }
            }
            "password" => {
                let v = tokens.next().map(str::to_string);
                if let Some((_, e)) = current.as_mut() {
                    e.password = v;
                }
            }
            "account" => {
                tokens.next();
            }
            "macdef" => {
                // A macro runs to the next blank line; we cannot see lines here, so stop.
                finish(current.take(), &mut found, &mut default);
                break;
            }
            _ => {}
        }
    }
    finish(current.take(), &mut found, &mut default);
    found.or(default)
}

/// The default netrc file: `$NETRC`, else `~/.netrc`.
pub fn default_netrc() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NETRC") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").map(|h| Path::new(&h).join(".netrc"))
}

/// Reads the whole of standard input as a password (one trailing newline removed).
pub fn password_from_stdin() -> Result<String> {
    let mut s = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
        .context("reading the password from standard input")?;
    if s.ends_with('\n') {
        s.pop();
        if s.ends_with('\r') {
            s.pop();
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = parse_url("ftps://alice@example.com:990/dir/file.txt", false).unwrap();
        assert_eq!(t.mode, TlsMode::Implicit);
        assert_eq!((t.host.as_str(), t.port), ("example.com", 990));
        assert_eq!(t.user.as_deref(), Some("alice"));
        assert_eq!(t.path, "/dir/file.txt");
        let t = parse_url("ftpes://bob@host/a%20b", false).unwrap();
        assert_eq!(
            (t.mode, t.port, t.path.as_str()),
            (TlsMode::Explicit, 21, "/a b")
        );
        let t = parse_url("ftps://host", false).unwrap();
        assert_eq!(
            (t.mode, t.port, t.path.as_str()),
            (TlsMode::Implicit, 990, "")
        );
        let t = parse_url("ftps://host:21/x", false).unwrap();
        assert_eq!(t.mode, TlsMode::Explicit);
        let t = parse_url("ftps://host/x", true).unwrap();
        assert_eq!((t.mode, t.port), (TlsMode::Explicit, 21));
        let t = parse_url("ftps://u%40x:p%3Aw@[::1]:2121/~/rel/f", false).unwrap();
        assert_eq!(t.user.as_deref(), Some("u@x"));
        assert_eq!(t.password.as_deref(), Some("p:w"));
        assert_eq!((t.host.as_str(), t.port), ("::1", 2121));
        assert_eq!(t.path, "rel/f");
        assert!(parse_url("http://x", false).is_err());
        assert!(parse_url("ftps://h:0/", false).is_err());
        assert!(parse_url("ftps://h/%0d%0aDELE", false).is_err());
        assert!(parse_url("ftps:///x", false).is_err());
        assert!(is_url("FTPS://x") && !is_url("./ftps"));
    }

    #[test]
    fn netrc() {
        let text = "machine a.example login al password pa\nmachine b.example login bo password pb\ndefault login anon password x\n";
        assert_eq!(
            netrc_lookup(text, "b.example", None)
                .unwrap()
                .password
                .as_deref(),
            Some("pb")
        );
        assert!(netrc_lookup(text, "b.example", Some("zz")).is_none());
        assert_eq!(
            netrc_lookup(text, "b.example", Some("bo"))
                .unwrap()
                .password
                .as_deref(),
            Some("pb")
        );
        assert_eq!(
            netrc_lookup(text, "other", None).unwrap().login.as_deref(),
            Some("anon")
        );
        assert!(netrc_lookup("machine q login x", "z", None).is_none());
    }
}
