//! # ftps-server
//!
//! The ftpsd FTPS server as a library: configuration ([`config`]), users ([`users`]), where
//! their files live and how no path escapes them ([`storage`]), TLS ([`tls`]), the per-connection
//! protocol state machine (`session`), the state sessions share ([`context`]) and the
//! listeners ([`server`]).
//!
//! The `ftpsd` binary is a thin command line over [`server::Server`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod addresses;
pub mod bandwidth;
pub mod certid;
pub mod config;
pub mod context;
pub mod credcache;
pub mod database;
pub mod folders;
pub mod limits;
pub mod ops;
pub mod permissions;
pub mod policy;
pub mod proxy;
pub mod quota;
pub mod server;
mod session;
pub mod storage;
pub mod stream;
pub mod tls;
pub mod users;

pub use config::Config;
pub use server::{prepare_state, Server, StartError};
