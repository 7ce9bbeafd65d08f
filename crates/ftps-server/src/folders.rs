//! Virtual folders: other directories, or key prefixes of other stores, mounted into a
//! user's tree (`[users.NAME.folders."/PATH"]`), each with its own rights.
//!
//! ```toml
//! [users.alice.folders."/shared"]
//! path = "/srv/ftp/shared"      # a directory (absolute, or relative to the users file)
//! access = "read-only"          # default: the user's own access
//!
//! [users.alice.folders."/archive"]
//! path = "archive/2026"         # with `storage`: the key prefix in that store
//! storage = "archive"           # a [storage.s3.NAME] of ftpsd.toml, or "local"
//! ```
//!
//! A folder mounted by several users is shared: what one uploads, the others see. Its
//! `access` is a permission rule at the mount point ([`crate::permissions`]): a rule of the
//! user's own at the mount point or below it decides instead. Where a folder's files live
//! follows the rule of the user's own files: `storage` if set, else the server's
//! `storage.default`, else `path` on this machine; `storage = "local"` names this machine
//! whatever the default.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize};

use crate::permissions::normalise_virtual;
use crate::policy::Access;

/// The storage name that means "a directory on this machine", whatever `storage.default`.
pub const LOCAL_STORAGE: &str = "local";

/// One virtual folder as the users file writes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Folder {
    /// The directory, absolute or relative to the users file's directory; in an S3
    /// store, the key prefix.
    pub path: PathBuf,
    /// The store of the folder's files (see the module documentation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    /// What the user may do in the folder; unset: the user's own `access`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<Access>,
}

/// A user's folders by mount point (a normalised absolute virtual path, never `/`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Folders(BTreeMap<String, Folder>);

impl Folders {
    /// Whether the user has no folders.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Mounts `folder` at `at`, replacing what was mounted there.
    pub fn set(&mut self, at: &str, folder: Folder) -> Result<(), String> {
        if folder.path.as_os_str().is_empty() {
            return Err(format!("folder {at:?}: path must not be empty"));
        }
        let at = normalise_virtual(at, "folder")?;
        if at == "/" {
            return Err("a folder cannot be mounted at / (that is the user's root)".into());
        }
        self.0.insert(at, folder);
        Ok(())
    }

    /// Unmounts the folder at `at`; whether there was one.
    pub fn remove(&mut self, at: &str) -> bool {
        normalise_virtual(at, "folder").is_ok_and(|at| self.0.remove(&at).is_some())
    }

    /// The folders with their mount points.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Folder)> {
        self.0.iter().map(|(at, folder)| (at.as_str(), folder))
    }
}

impl<'de> Deserialize<'de> for Folders {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = BTreeMap::<String, Folder>::deserialize(deserializer)?;
        let mut folders = Folders::default();
        for (at, folder) in raw {
            folders.set(&at, folder).map_err(serde::de::Error::custom)?;
        }
        Ok(folders)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize)]
    struct Wrapper {
        folders: Folders,
    }

    #[test]
    fn folders_parse_normalised_and_print_back() {
        let text = "[folders.\"/shared/\"]\npath = \"/srv/shared\"\naccess = \"read-only\"\n\n\
                    [folders.\"/a//b\"]\npath = \"p\"\nstorage = \"s3\"\n";
        let folders = toml::from_str::<Wrapper>(text).unwrap().folders;
        let listed: Vec<_> = folders.iter().map(|(at, f)| (at, f.access)).collect();
        assert_eq!(
            listed,
            [("/a/b", None), ("/shared", Some(Access::ReadOnly))]
        );
        let text = toml::to_string(&Wrapper {
            folders: folders.clone(),
        })
        .unwrap();
        let again = toml::from_str::<Wrapper>(&text).unwrap().folders;
        assert_eq!(again, folders);
    }

    #[test]
    fn bad_folders_are_errors_that_say_why() {
        for (text, message) in [
            ("[folders.\"/\"]\npath = \"x\"\n", "cannot be mounted at /"),
            ("[folders.\"rel\"]\npath = \"x\"\n", "must be absolute"),
            ("[folders.\"/a/../b\"]\npath = \"x\"\n", ". or .."),
            ("[folders.\"/a\"]\npath = \"\"\n", "must not be empty"),
            ("[folders.\"/a\"]\npath = \"x\"\nmode = 1\n", "mode"),
        ] {
            let e = toml::from_str::<Wrapper>(text).err().unwrap().to_string();
            assert!(e.contains(message), "{text:?}: {e}");
        }
    }
}
