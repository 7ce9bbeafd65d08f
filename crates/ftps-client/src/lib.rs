//! # ftps-client
//!
//! An async FTPS (FTP over TLS, RFC 4217) client on tokio and rustls.
//!
//! - explicit (`AUTH TLS`) and implicit TLS; TLS 1.2 and 1.3; ALPN `ftp`;
//! - every data connection resumes the control connection's TLS session, as strict servers
//!   (vsftpd `require_ssl_reuse`, ProFTPD, ftpsd) require: each control connection has its own
//!   session cache, shared only with its own data connections;
//! - certificates checked against the system roots, a CA file, or a pinned SHA-256
//!   fingerprint; an explicit insecure mode that warns; client certificates;
//! - `EPSV` first with `PASV` fallback (and a NAT workaround), or active mode (`EPRT`/`PORT`);
//! - streaming transfers ([`Transfer`] is `AsyncRead`/`AsyncWrite`) that end with a TLS
//!   close_notify and check the final 226; `REST` resume;
//! - `MLSD` listings with `LIST` fallback (Unix and DOS formats);
//! - typed errors carrying the reply code and text, sorted by [`Error::kind`]; timeouts; a
//!   [`Pool`] of sessions and [`mirror`]ing of directory trees in parallel, with
//!   include/exclude rules and checksums;
//! - wildcard paths matched on the client ([`glob`]); [`segmented`] downloads over several
//!   sessions; a shared bandwidth limit ([`RateLimit`]); retries with backoff that resume
//!   ([`RetryPolicy`]);
//! - every command formatted and every reply read by `ftps-proto`.
//!
//! ```no_run
//! # async fn demo() -> ftps_client::Result<()> {
//! use ftps_client::{Config, Connector, Trust};
//! let config = Config { trust: Trust::System, ..Config::default() };
//! let connector = Connector::new(config)?;
//! let mut ftp = connector.connect_and_login("ftp.example.com", 21, "user", "secret").await?;
//! let mut out = tokio::fs::File::create("report.csv").await.map_err(|e| ftps_client::Error::io("create", e))?;
//! let outcome = ftp.download("/reports/report.csv", &mut out, 0, &mut |_| {}).await?;
//! assert!(outcome.resumed);
//! ftp.quit().await
//! # }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
mod commands;
pub mod config;
mod connect;
mod control;
mod data;
pub mod error;
mod features;
pub mod glob;
mod listing;
pub mod mirror;
mod path;
pub mod pool;
pub mod rate;
pub mod retry;
pub mod segmented;
mod session;
pub mod tls;
mod transfer;

pub use client::{Connector, Features, FtpsClient, TlsInfo, Transfer, TransferOutcome};
pub use config::{ClientCert, Config, DataMode, TlsMode, TlsVersions, Trust};
pub use error::{Error, ErrorKind, Result};
pub use ftps_proto::listing::FileKind;
pub use ftps_proto::listing_parse::{ListEntry, TimePrecision};
pub use ftps_proto::{Reply, ReplyCode};
pub use pool::{Endpoint, Pool, PooledClient};
pub use rate::RateLimit;
pub use retry::RetryPolicy;
