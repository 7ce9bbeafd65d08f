//! `ftpsd user set` flags for `[users.NAME.bandwidth]`.

use clap::Args;
use ftps_server::users::UserEntry;

/// Bandwidth flags.
#[derive(Args)]
pub struct BandwidthArgs {}

impl BandwidthArgs {
    /// Applies the given flags to `entry`.
    pub fn apply(&self, entry: &mut UserEntry) -> anyhow::Result<()> {
        let _ = entry;
        Ok(())
    }
}
