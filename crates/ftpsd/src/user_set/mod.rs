//! `ftpsd user set NAME ...`: changes a user's policy settings in the users file; one flag
//! group per area, each in its own module.

mod addresses;
mod bandwidth;
mod folders;
mod permissions;
mod quota;

use clap::Args;
use ftps_server::users::UserEntry;

/// The settings `ftpsd user set` can change.
#[derive(Args)]
pub struct SetArgs {
    /// User name.
    pub name: String,
    #[command(flatten)]
    bandwidth: bandwidth::BandwidthArgs,
    #[command(flatten)]
    addresses: addresses::AddressArgs,
    #[command(flatten)]
    permissions: permissions::PermissionArgs,
    #[command(flatten)]
    quota: quota::QuotaArgs,
    #[command(flatten)]
    folders: folders::FolderArgs,
}

impl SetArgs {
    /// Applies every given flag to `entry`; an error names the flag and what is wrong.
    pub fn apply(&self, entry: &mut UserEntry) -> anyhow::Result<()> {
        self.bandwidth.apply(entry)?;
        self.addresses.apply(entry)?;
        self.permissions.apply(entry)?;
        self.quota.apply(entry)?;
        self.folders.apply(entry)?;
        Ok(())
    }
}
