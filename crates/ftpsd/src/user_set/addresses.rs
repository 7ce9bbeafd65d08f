//! `ftpsd user set` flags for `[users.NAME.addresses]` and `[users.NAME.limits]`.

use clap::Args;
use ftps_server::addresses::AddressRule;
use ftps_server::limits::size::parse_size;
use ftps_server::users::UserEntry;

/// Address-rule and per-user limit flags.
#[derive(Args)]
pub struct AddressArgs {
    /// Allow logins only from this address or CIDR network, e.g. 192.0.2.0/24 (repeatable;
    /// replaces the user's allow list).
    #[arg(long, value_name = "CIDR", value_parser = parse_rule)]
    allow_from: Vec<AddressRule>,
    /// Refuse logins from this address or CIDR network, even if allowed (repeatable;
    /// replaces the user's deny list).
    #[arg(long, value_name = "CIDR", value_parser = parse_rule)]
    deny_from: Vec<AddressRule>,
    /// Remove the user's allow and deny lists (logins from anywhere the server admits).
    #[arg(long, conflicts_with_all = ["allow_from", "deny_from"])]
    clear_addresses: bool,
    /// Sessions logged in at once as this user, instead of limits.max_sessions_per_user
    /// (0: back to the server's limit).
    #[arg(long, value_name = "N")]
    max_sessions: Option<u32>,
    /// The largest file this user may upload: bytes, or with K, M, G or T (binary: 10M is
    /// 10 MiB), instead of limits.max_file_size (0: back to the server's limit).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_file_size: Option<u64>,
}

fn parse_rule(text: &str) -> Result<AddressRule, String> {
    text.parse().map_err(|e| format!("{e}"))
}

impl AddressArgs {
    /// Applies the given flags to `entry`.
    pub fn apply(&self, entry: &mut UserEntry) -> anyhow::Result<()> {
        if self.clear_addresses {
            entry.addresses = Default::default();
        }
        if !self.allow_from.is_empty() {
            entry.addresses.allow = self.allow_from.clone();
        }
        if !self.deny_from.is_empty() {
            entry.addresses.deny = self.deny_from.clone();
        }
        if let Some(max) = self.max_sessions {
            entry.limits.max_sessions = (max > 0).then_some(max);
        }
        if let Some(max) = self.max_file_size {
            entry.limits.max_file_size = (max > 0).then_some(max);
        }
        Ok(())
    }
}
