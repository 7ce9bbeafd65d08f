//! `REIN` (RFC 959 §4.1.1): back to the state right after the greeting, for a new login.
//!
//! The TLS layer of the control connection stays as it is, with `PBSZ`/`PROT`: leaving TLS
//! is what `CCC` is for, so the client keeps the protection it negotiated.

use ftps_proto::ReplyCode;

use super::state::{Login, TransferParams};
use super::{Result, Session};

impl Session {
    pub(super) async fn cmd_rein(&mut self) -> Result {
        if let Some(user) = self.login.user() {
            tracing::info!(user = %user.name(), "logged out by REIN");
        }
        self.logged_out();
        self.login = Login::Anonymous;
        self.permit.logout();
        self.restart_login_clock();
        self.params = TransferParams::default();
        self.reply(ReplyCode::READY, "Service ready for new user.")
            .await
    }
}
