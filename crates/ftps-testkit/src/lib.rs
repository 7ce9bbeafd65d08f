//! The workspace's test kit: what the integration tests of ftpsd, ftps-client and ftps, and
//! the load generator, share.
//!
//! - [`stream`]: one plain-or-TLS stream type, and [`tail`], a transport that keeps the last
//!   bytes received.
//! - [`line`]: the core of a raw-line FTPS control connection (send lines, decode replies,
//!   start TLS), under both the tests' [`client`] and the benchmark's client.
//! - [`client`]: a raw-line FTPS client for protocol-level tests that panics with a
//!   transcript on anything unexpected.
//! - [`tls`]: client TLS configurations, certificate verifiers and fingerprints.
//! - [`pki`]: throw-away certificate authorities, client and server certificates, CRLs.
//! - [`ftpsd`]: locating the ftpsd binary and running it on ports the OS picks.
//! - [`garage`]: a real S3 server (Garage) on loopback, for S3-backed users.
//! - [`postgres`]: a real PostgreSQL cluster on loopback, for users in a database.
//! - [`storage`]: the test users' files on either backend (`FTPSD_TEST_STORAGE=s3` runs the
//!   suites with every user's files in Garage).
//! - [`reference`]: vsftpd, ProFTPD, Pure-FTPd (and ftpsd) with a generated configuration.
//! - [`files`] and [`run`]: test files with known content, and running client programs.

pub mod client;
pub mod files;
pub mod ftpsd;
pub mod garage;
pub mod line;
pub mod pki;
pub mod postgres;
pub mod reference;
pub mod run;
pub mod storage;
pub mod stream;
pub mod tail;
pub mod tls;
