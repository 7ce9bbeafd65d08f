//! `REIN` (RFC 959 §4.1.1): back to the state right after the greeting, for a new login.
//!
//! The TLS layer of the control connection stays as it is, with `PBSZ`/`PROT`: going back to
//! plaintext would need the TLS shutdown of `CCC`, which this server refuses by policy
//! and the client keeps the protection it negotiated.

use ftps_proto::command::TransferType;
use ftps_proto::hash::HashAlgorithm;
use ftps_proto::listing::MlstFacts;
use ftps_proto::ReplyCode;

use super::datachan::DataSetup;
use super::{Login, Result, Session};

impl Session {
    pub(super) async fn cmd_rein(&mut self) -> Result {
        if let Login::LoggedIn(l) = &self.login {
            tracing::info!(user = %l.user.name, "logged out by REIN");
        }
        self.login = Login::Anonymous;
        self.permit.logout();
        self.restart_login_clock();
        self.transfer_type = TransferType::Image;
        self.restart = 0;
        self.rename_from = None;
        self.data = DataSetup::None;
        self.epsv_all = false;
        self.mlst_facts = MlstFacts::default();
        self.hash_algorithm = HashAlgorithm::default();
        self.reply(ReplyCode::READY, "Service ready for new user.")
            .await
    }
}
