//! `ftpsd user set` flags for `[users.NAME.quota]`.

use clap::Args;
use ftps_server::limits::size::parse_size;
use ftps_server::users::UserEntry;

/// Quota flags.
#[derive(Args)]
pub struct QuotaArgs {
    /// Bytes the user's files may hold in all: bytes, or with K, M, G or T (binary: 10G is
    /// 10 GiB); 0: no limit; `default`: the server's [quota].
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    quota_bytes: Option<Setting>,
    /// Files the user's tree may hold; 0: no limit; `default`: the server's [quota].
    #[arg(long, value_name = "N", value_parser = parse_files)]
    quota_files: Option<Setting>,
}

/// A quota value given on the command line.
#[derive(Clone, Copy)]
enum Setting {
    /// The user's own value (0: no limit).
    Own(u64),
    /// No value of the user's own: the server's default.
    Default,
}

impl Setting {
    fn value(self) -> Option<u64> {
        match self {
            Setting::Own(n) => Some(n),
            Setting::Default => None,
        }
    }
}

fn parse_bytes(text: &str) -> Result<Setting, String> {
    if text == "default" {
        return Ok(Setting::Default);
    }
    parse_size(text).map(Setting::Own)
}

fn parse_files(text: &str) -> Result<Setting, String> {
    if text == "default" {
        return Ok(Setting::Default);
    }
    text.parse()
        .map(Setting::Own)
        .map_err(|_| format!("{text:?} is not a number of files (or `default`)"))
}

impl QuotaArgs {
    /// Applies the given flags to `entry`.
    pub fn apply(&self, entry: &mut UserEntry) -> anyhow::Result<()> {
        if let Some(bytes) = self.quota_bytes {
            entry.quota.bytes = bytes.value();
        }
        if let Some(files) = self.quota_files {
            entry.quota.files = files.value();
        }
        Ok(())
    }
}
