//! `ftpsd user set` flags for `[users.NAME.permissions]`.

use anyhow::{anyhow, Context};
use clap::Args;
use ftps_server::permissions::{Permission, PermissionSet};
use ftps_server::users::UserEntry;

/// Permission-rule flags.
#[derive(Args)]
pub struct PermissionArgs {
    /// What the user may do at PATH and below, e.g. `/incoming=upload,mkdir`, `/=list,download`,
    /// `/shared=*`, `/private=` (nothing); replaces that path's rule (repeatable). Names: list,
    /// download, upload, overwrite, delete, rename, mkdir, rmdir, chmod.
    #[arg(long = "permission", value_name = "PATH=PERMS")]
    set: Vec<String>,
    /// Removes the rule for PATH (repeatable); paths without a rule follow `access`.
    #[arg(long = "clear-permission", value_name = "PATH")]
    clear: Vec<String>,
}

impl PermissionArgs {
    /// Applies the given flags to `entry`.
    pub fn apply(&self, entry: &mut UserEntry) -> anyhow::Result<()> {
        for path in &self.clear {
            entry.permissions.remove(path);
        }
        for rule in &self.set {
            let (path, perms) = rule
                .split_once('=')
                .ok_or_else(|| anyhow!("--permission {rule:?}: expected PATH=PERMS"))?;
            let set = parse_set(perms).with_context(|| format!("--permission {rule:?}"))?;
            entry
                .permissions
                .set(path, set)
                .map_err(|e| anyhow!("--permission {rule:?}: {e}"))?;
        }
        Ok(())
    }
}

/// `upload,mkdir`, `*`, or nothing.
fn parse_set(text: &str) -> anyhow::Result<PermissionSet> {
    let mut names = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if name == "*" {
            return Ok(PermissionSet::all());
        }
        let p = Permission::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| anyhow!("unknown permission {name:?}"))?;
        names.push(p);
    }
    Ok(names.into_iter().collect())
}
