//! Access control and security: `USER`, `PASS`, `QUIT` (RFC 959 §4.1.1), `AUTH`, `PBSZ`,
//! `PROT`, `CCC` (RFC 2228 §3, RFC 4217 §§4-9).

use std::time::Duration;

use ftps_proto::command::{Password, ProtectionLevel};
use ftps_proto::ReplyCode;
use tokio_rustls::TlsAcceptor;
use tracing::{info, warn};

use super::{Flow, LoggedIn, Login, Result, Session};
use crate::stream::MaybeTls;
use crate::vfs::{Root, VirtualPath};

impl Session {
    /// Upgrades the control connection to TLS with this session's own TLS configuration.
    pub(crate) async fn start_tls(&mut self) -> std::io::Result<()> {
        let config = match &self.tls_config {
            Some(c) => c.clone(),
            None => {
                let c = self
                    .shared
                    .tls
                    .session_config()
                    .map_err(std::io::Error::other)?;
                self.tls_config = Some(c.clone());
                c
            }
        };
        let tcp = self
            .control
            .take_plain()
            .ok_or_else(|| std::io::Error::other("the connection is not plain TCP"))?;
        let limit = Duration::from_secs(self.config().timeouts.tls_handshake);
        let stream = tokio::time::timeout(limit, TlsAcceptor::from(config).accept(tcp))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out")
            })??;
        let (_, conn) = stream.get_ref();
        info!(
            version = ?conn.protocol_version(),
            suite = ?conn.negotiated_cipher_suite().map(|s| s.suite()),
            "control connection secured"
        );
        self.control = MaybeTls::Tls(Box::new(stream));
        Ok(())
    }

    pub(super) async fn cmd_auth(&mut self, mechanism: &str) -> Result {
        let data_private = match mechanism {
            "TLS" | "TLS-C" => false,
            // RFC 4217 §4: SSL and TLS-P also protect the data channel from the start.
            "SSL" | "TLS-P" => true,
            _ => {
                return self
                    .reply(
                        ReplyCode::PARAMETER_NOT_IMPLEMENTED,
                        "Unknown AUTH mechanism; use AUTH TLS.",
                    )
                    .await
            }
        };
        if self.control.is_tls() {
            return self
                .reply(ReplyCode::BAD_SEQUENCE, "TLS is already active.")
                .await;
        }
        if self.logged_in().is_some() {
            return self
                .reply(
                    ReplyCode::POLICY_REFUSED,
                    "AUTH after a plaintext login is refused; reconnect and send AUTH TLS first.",
                )
                .await;
        }
        // Bytes pipelined behind AUTH were sent in the clear: executing them inside TLS is
        // the STARTTLS command-injection bug (CVE-2011-0411 class). Refuse and close.
        if self.decoder.has_buffered() {
            warn!("data pipelined after AUTH; closing (possible command injection)");
            self.close_with(
                ReplyCode::BAD_SEQUENCE,
                "Commands sent after AUTH before the TLS handshake are refused; closing.",
            )
            .await;
            return Ok(Flow::Close);
        }
        self.reply(
            ReplyCode::AUTH_OK,
            format!("AUTH {mechanism} ok; start TLS."),
        )
        .await?;
        if let Err(e) = self.start_tls().await {
            info!(error = %e, "TLS handshake failed");
            return Ok(Flow::Close);
        }
        // A fresh start inside TLS (RFC 4217 §4: forget anything from before).
        self.login = Login::Anonymous;
        if data_private {
            self.pbsz = true;
            self.prot = ProtectionLevel::Private;
        }
        Ok(Flow::Continue)
    }

    pub(super) async fn cmd_pbsz(&mut self, _size: u64) -> Result {
        if !self.control.is_tls() {
            return self
                .reply(ReplyCode::BAD_SEQUENCE, "PBSZ requires AUTH TLS first.")
                .await;
        }
        self.pbsz = true;
        // RFC 4217 §9: TLS needs no buffer size; the reply states the size used.
        self.reply(ReplyCode::OK, "PBSZ=0").await
    }

    pub(super) async fn cmd_prot(&mut self, level: ProtectionLevel) -> Result {
        if !self.control.is_tls() || !self.pbsz {
            return self
                .reply(
                    ReplyCode::BAD_SEQUENCE,
                    "PROT requires AUTH TLS and PBSZ 0 first.",
                )
                .await;
        }
        match level {
            ProtectionLevel::Private => {
                self.prot = level;
                self.reply(
                    ReplyCode::OK,
                    "Data channel protection level set to P (TLS).",
                )
                .await
            }
            ProtectionLevel::Clear => {
                self.prot = level;
                let note = if self.config().tls.require_for_data {
                    " (transfers will be refused: this server requires PROT P)"
                } else {
                    ""
                };
                self.reply(
                    ReplyCode::OK,
                    format!("Data channel protection level set to C{note}."),
                )
                .await
            }
            ProtectionLevel::Safe | ProtectionLevel::Confidential => {
                self.reply(
                    ReplyCode::PROTECTION_NOT_SUPPORTED,
                    "Only protection levels C and P are supported.",
                )
                .await
            }
        }
    }

    pub(super) async fn cmd_ccc(&mut self) -> Result {
        if !self.control.is_tls() {
            return self
                .reply(
                    ReplyCode::BAD_SEQUENCE,
                    "The control connection is not protected.",
                )
                .await;
        }
        if self.logged_in().is_none() {
            return self
                .reply(ReplyCode::NOT_LOGGED_IN, "Please log in first.")
                .await;
        }
        self.reply(
            ReplyCode::POLICY_REFUSED,
            "CCC is refused by policy: the control connection stays protected.",
        )
        .await
    }

    pub(super) async fn cmd_user(&mut self, name: String) -> Result {
        if self.config().tls.require_for_login && !self.control.is_tls() {
            return self
                .reply(
                    ReplyCode::NOT_LOGGED_IN,
                    "This server requires TLS: send AUTH TLS before USER.",
                )
                .await;
        }
        if self.logged_in().is_some() {
            return self
                .reply(ReplyCode::BAD_SEQUENCE, "Already logged in.")
                .await;
        }
        let text = format!("Password required for {name}.");
        self.login = Login::UserGiven(name);
        self.reply(ReplyCode::NEED_PASSWORD, text).await
    }

    pub(super) async fn cmd_pass(&mut self, password: Password) -> Result {
        let name = match std::mem::replace(&mut self.login, Login::Anonymous) {
            Login::UserGiven(name) => name,
            logged @ Login::LoggedIn(_) => {
                self.login = logged;
                return self
                    .reply(ReplyCode::BAD_SEQUENCE, "Already logged in.")
                    .await;
            }
            Login::Anonymous => {
                return self
                    .reply(ReplyCode::BAD_SEQUENCE, "Send USER first.")
                    .await
            }
        };
        let user = match self
            .shared
            .users
            .authenticate(&name, password.expose())
            .await
        {
            Ok(user) => user,
            Err(_) => {
                info!(user = %name, "login failed");
                let delay = Duration::from_millis(self.config().limits.login_failure_delay_ms);
                tokio::time::sleep(delay).await;
                return self
                    .reply(ReplyCode::NOT_LOGGED_IN, "Login incorrect.")
                    .await;
            }
        };
        let root = match Root::open(&user.root) {
            Ok(root) => root,
            Err(e) => {
                warn!(user = %name, root = %user.root.display(), error = %e, "cannot open the user's root directory");
                return self
                    .reply(
                        ReplyCode::NOT_LOGGED_IN,
                        "Login refused: home directory unavailable.",
                    )
                    .await;
            }
        };
        info!(user = %name, tls = self.control.is_tls(), "login ok");
        self.login = Login::LoggedIn(Box::new(LoggedIn {
            user,
            root,
            cwd: VirtualPath::root(),
        }));
        self.reply(ReplyCode::LOGGED_IN, format!("User {name} logged in."))
            .await
    }

    pub(super) async fn cmd_quit(&mut self) -> Result {
        self.reply(ReplyCode::CLOSING, "Goodbye.").await?;
        Ok(Flow::Close)
    }
}
