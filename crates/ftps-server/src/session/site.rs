//! `SITE` (RFC 959 §4.1.3): `SITE HELP` and `SITE CHMOD`. Nothing else, on purpose: no
//! SITE command copies files or runs programs (ProFTPD's mod_copy, CVE-2015-3306).

use ftps_proto::{Reply, ReplyCode};

use super::state::LoggedIn;
use super::{site_subcommand, Flow, Result, Session};

/// The SITE commands, with their syntax, for `SITE HELP` and `HELP SITE`.
pub(super) const SITE_COMMANDS: &[(&str, &str)] = &[
    (
        "CHMOD",
        "SITE CHMOD <mode> <path> (octal rwx bits, e.g. 644)",
    ),
    ("HELP", "SITE HELP"),
    ("QUOTA", "SITE QUOTA (this account's usage and quota)"),
];

impl Session {
    /// The SITE commands allowed before login: all but `SITE CHMOD`.
    pub(super) async fn cmd_site(&mut self, args: &str) -> Result {
        let (sub, _) = site_subcommand(args);
        match sub.to_ascii_uppercase().as_str() {
            "HELP" => self.site_help().await,
            _ => {
                self.reply(
                    ReplyCode::PARAMETER_NOT_IMPLEMENTED,
                    format!("SITE {sub} is not supported; see SITE HELP."),
                )
                .await
            }
        }
    }

    async fn site_help(&mut self) -> Result {
        let mut lines = vec!["SITE commands:".to_string()];
        lines.extend(SITE_COMMANDS.iter().map(|(_, syntax)| format!(" {syntax}")));
        lines.push("End of SITE help.".into());
        self.send(Reply::multi(ReplyCode::HELP, lines)).await
    }

    /// The SITE commands that need a logged-in user.
    pub(super) async fn cmd_site_user(&mut self, user: &LoggedIn, args: &str) -> Result {
        match site_subcommand(args) {
            (sub, rest) if sub.eq_ignore_ascii_case("CHMOD") => self.site_chmod(user, rest).await,
            (sub, _) if sub.eq_ignore_ascii_case("QUOTA") => self.site_quota(user).await,
            _ => self.cmd_site(args).await,
        }
    }

    /// `SITE QUOTA`: the account's usage and limits (`200`), as `ftpsd user show` gives them.
    async fn site_quota(&mut self, user: &LoggedIn) -> Result {
        let Some(quota) = user.quota() else {
            return self
                .reply(ReplyCode::OK, "No quota for this account.")
                .await;
        };
        let mut lines = vec![format!("Quota for {}:", user.name())];
        lines.extend(
            crate::quota::describe(quota.usage.current(), quota.limits)
                .into_iter()
                .map(|line| format!(" {line}")),
        );
        lines.push("End of quota.".into());
        self.send(Reply::multi(ReplyCode::OK, lines)).await
    }

    /// `SITE CHMOD mode path`.
    async fn site_chmod(&mut self, user: &LoggedIn, args: &str) -> Result {
        let args = args.trim_start();
        let Some((mode, path)) = args.split_once(' ').filter(|(_, p)| !p.trim().is_empty()) else {
            return self
                .reply(
                    ReplyCode::PARAMETER_SYNTAX_ERROR,
                    "Syntax: SITE CHMOD <mode> <path>.",
                )
                .await;
        };
        let Some(mode) = parse_mode(mode) else {
            return self
                .reply(
                    ReplyCode::PARAMETER_SYNTAX_ERROR,
                    "The mode must be octal permission bits between 000 and 777.",
                )
                .await;
        };
        if !self.check_write(user).await? {
            return Ok(Flow::Continue);
        }
        let path = user.path(path);
        match user.storage().set_mode(&path, mode).await {
            Ok(()) => {
                tracing::info!(path = %path, mode = format!("{mode:o}"), "chmod");
                self.reply(ReplyCode::OK, "SITE CHMOD command successful.")
                    .await
            }
            Err(e) => self.reply_fs_error("SITE CHMOD", &path, &e).await,
        }
    }
}

/// Octal `rwx` bits, at most `777` (a leading `0` is allowed: `0644`).
fn parse_mode(text: &str) -> Option<u32> {
    let text = text.trim();
    if text.is_empty() || text.len() > 4 || !text.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    u32::from_str_radix(text, 8).ok().filter(|m| *m <= 0o777)
}

#[cfg(test)]
mod tests {
    use super::parse_mode;

    #[test]
    fn modes() {
        assert_eq!(parse_mode("644"), Some(0o644));
        assert_eq!(parse_mode("0755"), Some(0o755));
        assert_eq!(parse_mode("4755"), None);
        assert_eq!(parse_mode("8"), None);
        assert_eq!(parse_mode("u+x"), None);
        assert_eq!(parse_mode(""), None);
    }
}
