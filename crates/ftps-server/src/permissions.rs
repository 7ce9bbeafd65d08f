//! Permissions per path: what a user may do where (`[users.NAME.permissions]`).
//!
//! ```toml
//! [users.alice.permissions]
//! "/" = ["list", "download"]
//! "/incoming" = ["upload", "mkdir"]      # write-only: no listing, no download
//! "/shared" = ["*"]                      # everything
//! "/shared/archive" = []                 # nothing
//! ```
//!
//! The rule of the longest path that is the path itself or one of its ancestors decides;
//! a path no rule covers gets what the user's `access` gives (`read-only`: `list` and
//! `download`; `read-write`: everything). Rule paths are absolute virtual paths, compared
//! component by component, so `/in` covers `/in/a` but not `/inbox`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::policy::Access;
use crate::storage::VirtualPath;

/// One thing a user may be allowed to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// List a directory's entries (`LIST`, `NLST`, `MLSD`, `STAT dir`).
    List,
    /// Read a file (`RETR`, `HASH`).
    Download,
    /// Create a file (`STOR`, `STOU`, `APPE` of a new file).
    Upload,
    /// Change an existing file (`STOR` over it, `APPE`, `REST`+`STOR`); needs `upload` too.
    Overwrite,
    /// Delete a file (`DELE`).
    Delete,
    /// Rename a file or directory, checked on both names (`RNFR`/`RNTO`).
    Rename,
    /// Create a directory (`MKD`).
    Mkdir,
    /// Remove a directory (`RMD`).
    Rmdir,
    /// Change a file's permission bits or time (`SITE CHMOD`, `MFMT`).
    Chmod,
}

impl Permission {
    /// Every permission, in the order the users file lists them.
    pub const ALL: [Permission; 9] = [
        Permission::List,
        Permission::Download,
        Permission::Upload,
        Permission::Overwrite,
        Permission::Delete,
        Permission::Rename,
        Permission::Mkdir,
        Permission::Rmdir,
        Permission::Chmod,
    ];

    /// Whether this permission changes the tree.
    pub fn writes(self) -> bool {
        !matches!(self, Permission::List | Permission::Download)
    }

    /// The name the users file uses.
    pub fn name(self) -> &'static str {
        match self {
            Permission::List => "list",
            Permission::Download => "download",
            Permission::Upload => "upload",
            Permission::Overwrite => "overwrite",
            Permission::Delete => "delete",
            Permission::Rename => "rename",
            Permission::Mkdir => "mkdir",
            Permission::Rmdir => "rmdir",
            Permission::Chmod => "chmod",
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of permissions; written as a list of names, `"*"` standing for all of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PermissionSet(u16);

impl PermissionSet {
    /// Every permission.
    pub fn all() -> PermissionSet {
        Permission::ALL.into_iter().collect()
    }

    /// What an `access` level gives where no rule applies.
    pub fn of_access(access: Access) -> PermissionSet {
        match access {
            Access::ReadOnly => [Permission::List, Permission::Download]
                .into_iter()
                .collect(),
            Access::ReadWrite => PermissionSet::all(),
        }
    }

    /// Whether `p` is in the set.
    pub fn contains(self, p: Permission) -> bool {
        self.0 & p.bit() != 0
    }

    fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .into_iter()
            .filter(move |p| self.contains(*p))
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        PermissionSet(iter.into_iter().fold(0, |bits, p| bits | p.bit()))
    }
}

impl Serialize for PermissionSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if *self == PermissionSet::all() {
            return ["*"].serialize(serializer);
        }
        let names: Vec<&str> = self.iter().map(Permission::name).collect();
        names.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for PermissionSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let names = Vec::<String>::deserialize(deserializer)?;
        let mut set = PermissionSet::default();
        for name in names {
            if name == "*" {
                set = PermissionSet::all();
                continue;
            }
            let p = Permission::ALL
                .into_iter()
                .find(|p| p.name() == name)
                .ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "unknown permission {name:?}: use list, download, upload, overwrite, \
                         delete, rename, mkdir, rmdir, chmod or \"*\""
                    ))
                })?;
            set.0 |= p.bit();
        }
        Ok(set)
    }
}

/// A user's rules: rule path (normalised, absolute) -> what is allowed there and below.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PathPermissions(BTreeMap<String, PermissionSet>);

impl PathPermissions {
    /// Whether the user has no rules (its `access` alone decides).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds or replaces the rule for `path` (an absolute virtual path such as `/in`).
    pub fn set(&mut self, path: &str, allowed: PermissionSet) -> Result<(), String> {
        self.0.insert(normalise(path)?, allowed);
        Ok(())
    }

    /// Whether a rule is set for exactly `path`.
    pub fn has_rule(&self, path: &str) -> bool {
        normalise(path).is_ok_and(|p| self.0.contains_key(&p))
    }

    /// Removes the rule for `path`; whether there was one.
    pub fn remove(&mut self, path: &str) -> bool {
        normalise(path).is_ok_and(|p| self.0.remove(&p).is_some())
    }

    /// What the user may do at `path`: the rule of the longest covering path, or else what
    /// `access` gives.
    pub fn allowed_at(&self, access: Access, path: &VirtualPath) -> PermissionSet {
        let mut candidate = path.as_str();
        loop {
            if let Some(set) = self.0.get(candidate) {
                return *set;
            }
            if candidate == "/" {
                return PermissionSet::of_access(access);
            }
            candidate = match candidate.rfind('/') {
                Some(0) | None => "/",
                Some(i) => &candidate[..i],
            };
        }
    }

    /// Whether some rule grants a permission that changes the tree (so a `read-only` user
    /// with such a rule is not refused before the rule is consulted).
    pub fn grants_any_write(&self) -> bool {
        self.0
            .values()
            .any(|set| set.iter().any(Permission::writes))
    }
}

impl<'de> Deserialize<'de> for PathPermissions {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = BTreeMap::<String, PermissionSet>::deserialize(deserializer)?;
        let mut rules = PathPermissions::default();
        for (path, set) in raw {
            rules.set(&path, set).map_err(serde::de::Error::custom)?;
        }
        Ok(rules)
    }
}

/// `path` as a rule key: absolute, no empty, `.` or `..` components, no trailing `/`.
fn normalise(path: &str) -> Result<String, String> {
    normalise_virtual(path, "permission path")
}

/// `path`, a virtual path of the users file (`what` names it in errors), normalised:
/// absolute, no empty, `.` or `..` components, no trailing `/`.
pub(crate) fn normalise_virtual(path: &str, what: &str) -> Result<String, String> {
    if !path.starts_with('/') {
        return Err(format!("{what} {path:?} must be absolute (start with /)"));
    }
    let mut out = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if part == "." || part == ".." {
            return Err(format!("{what} {path:?} must not contain . or .."));
        }
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(toml_text: &str) -> PathPermissions {
        #[derive(Deserialize)]
        struct Wrapper {
            permissions: PathPermissions,
        }
        toml::from_str::<Wrapper>(toml_text).unwrap().permissions
    }

    fn at(rules: &PathPermissions, access: Access, path: &str) -> PermissionSet {
        rules.allowed_at(access, &VirtualPath::root().join(path))
    }

    #[test]
    fn the_longest_covering_rule_decides_component_by_component() {
        let r = rules(
            "[permissions]\n\"/\" = [\"list\", \"download\"]\n\"/in\" = [\"upload\"]\n\
             \"/in/private\" = []\n\"/shared/\" = [\"*\"]\n",
        );
        let rw = Access::ReadWrite;
        assert!(at(&r, rw, "/a.txt").contains(Permission::Download));
        assert!(!at(&r, rw, "/a.txt").contains(Permission::Upload));
        assert!(at(&r, rw, "/in/x").contains(Permission::Upload));
        assert!(!at(&r, rw, "/in/x").contains(Permission::List));
        assert!(at(&r, rw, "/in").contains(Permission::Upload));
        assert_eq!(at(&r, rw, "/in/private/deep/f"), PermissionSet::default());
        // `/in` does not cover `/inbox`: the root rule does.
        assert!(!at(&r, rw, "/inbox/f").contains(Permission::Upload));
        assert!(at(&r, rw, "/inbox/f").contains(Permission::List));
        assert_eq!(at(&r, rw, "/shared/a/b"), PermissionSet::all());
    }

    #[test]
    fn without_a_covering_rule_access_decides() {
        let r = rules("[permissions]\n\"/drop\" = [\"upload\"]\n");
        assert_eq!(
            at(&r, Access::ReadOnly, "/f"),
            PermissionSet::of_access(Access::ReadOnly)
        );
        assert_eq!(at(&r, Access::ReadWrite, "/f"), PermissionSet::all());
        assert!(r.grants_any_write());
        assert!(!rules("[permissions]\n\"/\" = [\"list\"]\n").grants_any_write());
    }

    #[test]
    fn bad_rules_are_load_errors_that_name_them() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Wrapper {
            permissions: PathPermissions,
        }
        for (text, needle) in [
            ("\"in\" = []", "must be absolute"),
            ("\"/a/../b\" = []", "must not contain"),
            ("\"/a\" = [\"write\"]", "unknown permission \"write\""),
        ] {
            let err = toml::from_str::<Wrapper>(&format!("[permissions]\n{text}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn sets_round_trip_through_toml() {
        let mut r = PathPermissions::default();
        r.set("/", PermissionSet::all()).unwrap();
        r.set(
            "/in/",
            [Permission::Upload, Permission::Mkdir]
                .into_iter()
                .collect(),
        )
        .unwrap();
        #[derive(Serialize, Deserialize)]
        struct Wrapper {
            permissions: PathPermissions,
        }
        let text = toml::to_string(&Wrapper {
            permissions: r.clone(),
        })
        .unwrap();
        assert!(text.contains("\"/\" = [\"*\"]"), "{text}");
        assert!(text.contains("\"/in\" = [\"upload\", \"mkdir\"]"), "{text}");
        let back: Wrapper = toml::from_str(&text).unwrap();
        assert_eq!(back.permissions, r);
    }
}
