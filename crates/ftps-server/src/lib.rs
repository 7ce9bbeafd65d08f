//! The ftpsd FTPS server as a library.

pub mod config;
pub mod policy;
pub mod stream;
pub mod tls;
pub mod users;
pub mod vfs;
