//! The ftpsd FTPS server as a library.

pub mod policy;
pub mod vfs;
