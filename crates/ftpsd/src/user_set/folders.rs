//! `ftpsd user set` flags for `[users.NAME.folders."/PATH"]`.

use anyhow::anyhow;
use clap::Args;
use ftps_server::folders::Folder;
use ftps_server::policy::Access;
use ftps_server::users::UserEntry;

/// Virtual-folder flags.
#[derive(Args)]
pub struct FolderArgs {
    /// Mounts a directory (absolute, or relative to the users file; with --folder-storage,
    /// a key prefix) at a path of the user's tree, e.g. `/shared=/srv/ftp/shared`; replaces
    /// what was mounted there (repeatable).
    #[arg(long = "folder", value_name = "PATH=DIR")]
    mount: Vec<String>,
    /// What the user may do in the folder at PATH: read-only or read-write (repeatable);
    /// without it, the user's own access.
    #[arg(long = "folder-access", value_name = "PATH=ACCESS")]
    access: Vec<String>,
    /// The store of the folder at PATH: a [storage.s3.NAME] of the configuration, or
    /// `local` (repeatable); without it, the rule of the user's own files.
    #[arg(long = "folder-storage", value_name = "PATH=STORE")]
    storage: Vec<String>,
    /// Unmounts the folder at PATH (repeatable); its files are kept.
    #[arg(long = "remove-folder", value_name = "PATH")]
    remove: Vec<String>,
}

impl FolderArgs {
    /// Applies the given flags to `entry`: removals, then mounts, then their settings.
    pub fn apply(&self, entry: &mut UserEntry) -> anyhow::Result<()> {
        for at in &self.remove {
            if !entry.folders.remove(at) {
                return Err(anyhow!(
                    "--remove-folder {at:?}: no folder is mounted there"
                ));
            }
        }
        for flag in &self.mount {
            let (at, dir) = split("--folder", flag)?;
            let folder = Folder {
                path: dir.into(),
                storage: None,
                access: None,
            };
            entry
                .folders
                .set(at, folder)
                .map_err(|e| anyhow!("--folder {flag:?}: {e}"))?;
        }
        for flag in &self.access {
            let (at, access) = split("--folder-access", flag)?;
            let access = match access {
                "read-only" => Access::ReadOnly,
                "read-write" => Access::ReadWrite,
                other => {
                    return Err(anyhow!(
                        "--folder-access {flag:?}: {other:?} is not read-only or read-write"
                    ))
                }
            };
            change(entry, "--folder-access", at, |f| f.access = Some(access))?;
        }
        for flag in &self.storage {
            let (at, store) = split("--folder-storage", flag)?;
            let store = store.to_string();
            change(entry, "--folder-storage", at, |f| f.storage = Some(store))?;
        }
        Ok(())
    }
}

fn split<'a>(flag: &str, value: &'a str) -> anyhow::Result<(&'a str, &'a str)> {
    value
        .split_once('=')
        .filter(|(at, rest)| !at.is_empty() && !rest.is_empty())
        .ok_or_else(|| anyhow!("{flag} {value:?}: expected PATH=VALUE"))
}

/// Changes the folder mounted at `at` with `edit`.
fn change(
    entry: &mut UserEntry,
    flag: &str,
    at: &str,
    edit: impl FnOnce(&mut Folder),
) -> anyhow::Result<()> {
    let mut folder = entry
        .folders
        .iter()
        .find(|(mounted, _)| {
            ftps_server::storage::VirtualPath::root().join(at).as_str() == *mounted
        })
        .map(|(_, f)| f.clone())
        .ok_or_else(|| anyhow!("{flag}: no folder is mounted at {at:?} (add it with --folder)"))?;
    edit(&mut folder);
    entry
        .folders
        .set(at, folder)
        .map_err(|e| anyhow!("{flag}: {e}"))
}
