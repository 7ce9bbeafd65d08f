//! `ftpsd user set` flags for `[users.NAME.addresses]` and `[users.NAME.limits]`.

use clap::Args;
use ftps_server::users::UserEntry;

/// Address-rule and per-user limit flags.
#[derive(Args)]
pub struct AddressArgs {}

impl AddressArgs {
    /// Applies the given flags to `entry`.
    pub fn apply(&self, entry: &mut UserEntry) -> anyhow::Result<()> {
        let _ = entry;
        Ok(())
    }
}
