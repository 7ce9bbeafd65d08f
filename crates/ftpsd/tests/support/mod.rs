//! What every ftpsd integration test uses: the test kit, and the ftpsd binary cargo built
//! for this test run.
//!
//! Each test binary uses a different part of it.
#![allow(dead_code, unused_imports)]

pub use ftps_testkit::files::*;
pub use ftps_testkit::ftpsd::{Ftpsd, Server, RUST_LOG};
pub use ftps_testkit::run::*;
pub use ftps_testkit::{client, pki};

use client::Control;

/// The binary under test, built by cargo for this test run.
pub const FTPSD: &str = env!("CARGO_BIN_EXE_ftpsd");

/// [`FTPSD`], to start servers with.
pub fn ftpsd() -> Ftpsd {
    Ftpsd::at(FTPSD)
}

/// Starts a server and logs in as `ftps` with PBSZ 0 / PROT P.
pub async fn logged_in() -> (Server, Control) {
    let server = ftpsd().start();
    let control = Control::login_default(&server).await;
    (server, control)
}

/// [`logged_in`] with a file `name` holding `content` in the root.
pub async fn logged_in_with(name: &str, content: &[u8]) -> (Server, Control) {
    let server = ftpsd().start();
    server.put(name, content);
    let control = Control::login_default(&server).await;
    (server, control)
}
