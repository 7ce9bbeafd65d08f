//! # ftps-server
//!
//! The ftpsd FTPS server as a library: configuration ([`config`]), users ([`users`]), a
//! file system each session cannot escape ([`vfs`]), TLS ([`tls`]), the per-connection
//! protocol state machine (`session`), the state sessions share ([`context`]) and the
//! listeners ([`server`]).
//!
//! The `ftpsd` binary is a thin command line over [`server::Server`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod certid;
pub mod config;
pub mod context;
pub mod credcache;
pub mod limits;
pub mod policy;
pub mod server;
mod session;
pub mod stream;
pub mod tls;
pub mod users;
pub mod vfs;

pub use config::Config;
pub use server::{prepare_state, Server, StartError};
