//! The data path, in one place: how the next data connection will be made ([`setup`]:
//! `PASV`, `EPSV`, `PORT`, `EPRT`), making and securing it ([`connect`]), the transfer
//! command and its job ([`job`]: `RETR`, `STOR`, `APPE`, `STOU`, `REST` and the listings),
//! and the blocking thread that moves the bytes ([`pump`]).
//!
//! A download goes `job` (checks, opens the file) → `connect` (accept or connect, `150`,
//! TLS) → `pump` (on its own thread, while the session answers `ABOR` and `STAT`) → `job`
//! (the final reply).

mod connect;
mod job;
pub(super) mod pump;
mod setup;

use ftps_proto::ReplyCode;
use tokio::net::TcpListener;

/// How the next data connection will be made.
#[derive(Default)]
pub(crate) enum DataSetup {
    /// Neither PASV/EPSV nor PORT/EPRT yet.
    #[default]
    None,
    /// Waiting for the client on this listener, opened at that instant; closed if no
    /// transfer uses it within `timeouts.data_connect`.
    Passive(TcpListener, tokio::time::Instant),
    /// Connect to the client here.
    Active(std::net::SocketAddr),
}

/// A refusal while setting up a data connection: the reply to send.
type DataRefusal = (ReplyCode, String);
