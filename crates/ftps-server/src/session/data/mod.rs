//! The data path, in one place: how the next data connection will be made ([`setup`]:
//! `PASV`, `EPSV`, `PORT`, `EPRT`), the transfer commands ([`transfer`]: `RETR`, `STOR`,
//! `APPE`, `STOU`, `REST` and the listings), making and securing the connection
//! ([`connect`]), the job that runs the transfer and commits an upload ([`job`]), and the
//! blocking thread that moves the bytes ([`pump`]).
//!
//! A download enters each once: `transfer` (checks, opens the file, final reply) →
//! `connect` (accept or connect, `150`, TLS) → `job` (polled while the session answers
//! `ABOR` and `STAT`, it hands the connection to a blocking thread) → `pump` (the bytes).

mod connect;
mod job;
pub(super) mod pump;
mod setup;
mod transfer;

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
    Passive(TcpListener, tokio::time::Instant, crate::ops::PortInUse),
    /// Connect to the client here.
    Active(std::net::SocketAddr),
}

/// A refusal while setting up a data connection: the reply to send.
type DataRefusal = (ReplyCode, String);
