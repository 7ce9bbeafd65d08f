//! Virtual paths: what the FTP client sees, always absolute from the user's root.

use std::fmt;
use std::path::Path;

/// A normalised path as the FTP client sees it: always absolute from the user's root, e.g. "/", "/a/b".
///
/// Invariants: starts with '/', has no empty, "." or ".." components, and no trailing '/'
/// (except for the root itself). Only [`VirtualPath::root`] and [`VirtualPath::join`] build
/// one, so the invariants always hold.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VirtualPath(String);

impl VirtualPath {
    /// The user's root directory, "/".
    pub fn root() -> Self {
        VirtualPath("/".to_owned())
    }

    /// Resolves an FTP argument against `self` (the working directory).
    ///
    /// An argument starting with '/' starts at the root. "." and ".." are handled lexically,
    /// and ".." never climbs above the root. Repeated and trailing '/' are ignored.
    /// Backslashes are ordinary characters. This is only the client's view: the file system
    /// access itself is confined by [`super::Root`], whatever the path contains.
    pub fn join(&self, arg: &str) -> VirtualPath {
        let mut parts: Vec<&str> = if arg.starts_with('/') {
            Vec::new()
        } else {
            self.components().collect()
        };
        for part in arg.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                name => parts.push(name),
            }
        }
        Self::from_components(&parts)
    }

    /// The path as a string, e.g. "/a/b".
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last component, or `None` for the root.
    pub fn file_name(&self) -> Option<&str> {
        self.components().next_back()
    }

    /// The containing directory; the root's parent is the root.
    pub fn parent(&self) -> VirtualPath {
        let mut parts: Vec<&str> = self.components().collect();
        parts.pop();
        Self::from_components(&parts)
    }

    /// Whether this is the user's root directory.
    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }

    /// The path below `base` as a path of its own (`/a/b/c` below `/a` is `/b/c`), if
    /// `base` is this path or one of its ancestors; compared component by component.
    pub fn strip_prefix(&self, base: &VirtualPath) -> Option<VirtualPath> {
        if base.is_root() {
            return Some(self.clone());
        }
        match self.0.strip_prefix(base.as_str())? {
            "" => Some(VirtualPath::root()),
            rest if rest.starts_with('/') => Some(VirtualPath(rest.to_owned())),
            _ => None,
        }
    }

    /// The path relative to the root directory handle, as cap-std wants it: "." for the root.
    pub fn relative(&self) -> &Path {
        match self.0.strip_prefix('/') {
            Some(rest) if !rest.is_empty() => Path::new(rest),
            _ => Path::new("."),
        }
    }

    /// The non-empty components, in order.
    fn components(&self) -> impl DoubleEndedIterator<Item = &str> {
        self.0.split('/').filter(|part| !part.is_empty())
    }

    fn from_components(parts: &[&str]) -> VirtualPath {
        VirtualPath(format!("/{}", parts.join("/")))
    }
}

impl fmt::Display for VirtualPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(cwd: &str) -> VirtualPath {
        VirtualPath::root().join(cwd)
    }

    #[test]
    fn root_basics() {
        let root = VirtualPath::root();
        assert_eq!(root.as_str(), "/");
        assert!(root.is_root());
        assert_eq!(root.file_name(), None);
        assert_eq!(root.parent(), root);
        assert_eq!(root.relative(), Path::new("."));
        assert_eq!(root.to_string(), "/");
    }

    #[test]
    fn relative_and_absolute_arguments() {
        let cwd = at("/a/b");
        assert_eq!(cwd.join("c").as_str(), "/a/b/c");
        assert_eq!(cwd.join("c/d").as_str(), "/a/b/c/d");
        assert_eq!(cwd.join("/x").as_str(), "/x");
        assert_eq!(cwd.join("/").as_str(), "/");
        assert_eq!(cwd.join("").as_str(), "/a/b");
    }

    #[test]
    fn dot_dot_clamps_at_root() {
        let cwd = at("/a/b");
        assert_eq!(cwd.join("..").as_str(), "/a");
        assert_eq!(cwd.join("../..").as_str(), "/");
        assert_eq!(cwd.join("../../../../etc/passwd").as_str(), "/etc/passwd");
        assert_eq!(cwd.join("/../..").as_str(), "/");
        assert_eq!(cwd.join("c/../../d").as_str(), "/a/d");
    }

    #[test]
    fn slashes_and_dots_are_normalised() {
        let cwd = at("/a");
        assert_eq!(cwd.join("//x//y").as_str(), "/x/y");
        assert_eq!(cwd.join("x/").as_str(), "/a/x");
        assert_eq!(cwd.join("./x/./y/.").as_str(), "/a/x/y");
        assert_eq!(cwd.join(".").as_str(), "/a");
        assert_eq!(cwd.join("...").as_str(), "/a/...");
    }

    #[test]
    fn backslash_and_nul_are_ordinary() {
        let cwd = at("/a");
        assert_eq!(cwd.join("..\\..\\x").as_str(), "/a/..\\..\\x");
        assert_eq!(cwd.join("x\0y").as_str(), "/a/x\0y");
    }

    #[test]
    fn accessors() {
        let p = at("/a/b/c.txt");
        assert_eq!(p.file_name(), Some("c.txt"));
        assert_eq!(p.parent().as_str(), "/a/b");
        assert_eq!(p.parent().parent().parent(), VirtualPath::root());
        assert_eq!(p.relative(), Path::new("a/b/c.txt"));
        assert!(!p.is_root());
        assert_eq!(format!("{p}"), "/a/b/c.txt");
    }

    fn assert_normalised(p: &VirtualPath) {
        let s = p.as_str();
        assert!(s.starts_with('/'), "{s:?}");
        assert!(!s.contains("//"), "{s:?}");
        assert!(s == "/" || !s.ends_with('/'), "{s:?}");
        for part in s.split('/').skip(1) {
            assert!(part != "." && part != "..", "{s:?}");
            assert!(s == "/" || !part.is_empty(), "{s:?}");
        }
    }

    proptest! {
        #[test]
        fn join_is_always_normalised(
            cwd in "(/?[a-z.]{0,3}){0,5}/?",
            arg in "(/{0,2}(\\.|\\.\\.|[a-z\\\\]{1,3}|\\.\\.\\.)){0,8}/{0,2}",
        ) {
            let base = VirtualPath::root().join(&cwd);
            assert_normalised(&base);
            let joined = base.join(&arg);
            assert_normalised(&joined);
            // Joining a normalised path onto anything gives it back unchanged.
            prop_assert_eq!(VirtualPath::root().join(joined.as_str()), joined.clone());
            assert_normalised(&joined.parent());
        }

        #[test]
        fn join_of_any_string_is_normalised(cwd in ".*", arg in ".*") {
            let joined = VirtualPath::root().join(&cwd).join(&arg);
            assert_normalised(&joined);
        }
    }
}
