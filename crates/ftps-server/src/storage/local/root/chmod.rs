//! Permission bits, for `SITE CHMOD`.

use std::io;

use cap_std::fs::PermissionsExt;

use super::{Root, VirtualPath};

impl Root {
    /// Sets the permission bits of a file or directory beneath the root (following a
    /// symlink that stays inside it). Only the `rwx` bits: setuid, setgid and sticky are
    /// refused, since they would let a user hand out the server account's rights.
    pub async fn set_mode(&self, p: &VirtualPath, mode: u32) -> io::Result<()> {
        if mode & !0o777 != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "only the rwx permission bits may be set",
            ));
        }
        let p = p.clone();
        self.blocking(move |root| {
            let perms = cap_std::fs::Permissions::from_mode(mode);
            root.dir.set_permissions(p.relative(), perms)
        })
        .await
    }
}
