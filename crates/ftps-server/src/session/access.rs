//! Access control and security: `USER`, `PASS`, `QUIT` (RFC 959 §4.1.1), `AUTH`, `PBSZ`,
//! `PROT`, `CCC` (RFC 2228 §3, RFC 4217 §§4-9).

use std::sync::Arc;
use std::time::Duration;

use ftps_proto::command::{Password, ProtectionLevel};
use ftps_proto::ReplyCode;
use tokio_rustls::TlsAcceptor;
use tracing::{info, warn};

use super::state::{ControlSecurity, LoggedIn, Login, UserQuota};
use super::{canonical_ip, Flow, Result, Session};
use crate::addresses::AddressRules;
use crate::certid::CertIdentity;
use crate::folders::LOCAL_STORAGE;
use crate::limits::{Refusal, UserKey};
use crate::ops::metrics::{Channel, LoginMethod, LoginResult};
use crate::permissions::{PathPermissions, Permission, PermissionSet};
use crate::quota::Quota;
use crate::storage::guarded::GuardedStorage;
use crate::storage::local::LocalStorage;
use crate::storage::{LimitedStorage, Mount, MountedStorage, QuotaStorage, Storage};
use crate::tls::UserBinding;
use crate::users::{AuthenticatedUser, UserLimits};

impl Session {
    /// Upgrades the control connection to TLS with this session's own TLS configuration.
    /// This happens once per connection: AUTH is refused once TLS was negotiated.
    pub(super) async fn start_tls(&mut self) -> std::io::Result<()> {
        let host_cert = self.vhost.as_ref().and_then(|h| h.certificate.clone());
        let tls = self
            .listener
            .tls
            .session_config(host_cert)
            .map_err(std::io::Error::other)?;
        let mut tcp = self
            .control
            .take_plain()
            .ok_or_else(|| std::io::Error::other("the connection is not plain TCP"))?;
        tcp.set_records(true);
        let limit = Duration::from_secs(self.config().timeouts.tls_handshake);
        let stream = tokio::time::timeout(limit, TlsAcceptor::from(tls.config.clone()).accept(tcp))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out")
            })??;
        let (_, conn) = stream.get_ref();
        // RFC 7151 with TLS: the server name and HOST must name the same virtual host.
        let sni = conn.server_name().map(str::to_ascii_lowercase);
        match (&self.vhost, &sni) {
            (Some(host), Some(sni)) if *sni != host.name => {
                return Err(std::io::Error::other(format!(
                    "TLS server name {sni} does not match HOST {}",
                    host.name
                )));
            }
            (None, Some(sni)) => self.vhost = self.shared.hosts.get(sni).cloned(),
            _ => {}
        }
        info!(
            version = ?conn.protocol_version(),
            suite = ?conn.negotiated_cipher_suite().map(|s| s.suite()),
            "control connection secured"
        );
        self.registered
            .set_tls(conn.protocol_version().map(|v| format!("{v:?}")));
        let client_cert = conn
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|cert| cert.clone().into_owned());
        self.security = ControlSecurity::tls(tls, client_cert);
        self.control.secured(stream);
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
        match self.security {
            ControlSecurity::Clear => {}
            ControlSecurity::Tls(_) => {
                return self
                    .reply(ReplyCode::BAD_SEQUENCE, "TLS is already active.")
                    .await;
            }
            ControlSecurity::ClearAfterCcc(_) => {
                return self
                    .reply(
                        ReplyCode::BAD_SEQUENCE,
                        "TLS was ended by CCC on this connection; reconnect to start it again.",
                    )
                    .await;
            }
        }
        if self.login.user().is_some() && !self.config().tls.allow_auth_after_login {
            return self
                .reply(
                    ReplyCode::POLICY_REFUSED,
                    "AUTH after a plaintext login is refused; reconnect and send AUTH TLS first.",
                )
                .await;
        }
        // Bytes pipelined behind AUTH were sent in the clear: executing them inside TLS is
        // the STARTTLS command-injection bug (CVE-2011-0411 class). Refuse and close.
        if self.control.has_pipelined() {
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
            self.shared.ops.metrics.tls_failure(Channel::Control);
            return Ok(Flow::Close);
        }
        // A USER sent in the clear does not count inside TLS.
        if matches!(self.login, Login::UserGiven(_)) {
            self.login = Login::Anonymous;
        }
        if data_private {
            self.security.protect_data();
        }
        Ok(Flow::Continue)
    }

    pub(super) async fn cmd_pbsz(&mut self, _size: u64) -> Result {
        // After CCC the control connection is clear but TLS was negotiated: PBSZ still applies.
        if !self.security.set_pbsz() {
            return self
                .reply(ReplyCode::BAD_SEQUENCE, "PBSZ requires AUTH TLS first.")
                .await;
        }
        // RFC 4217 §9: TLS needs no buffer size; the reply states the size used.
        self.reply(ReplyCode::OK, "PBSZ=0").await
    }

    pub(super) async fn cmd_prot(&mut self, level: ProtectionLevel) -> Result {
        if !self.security.prot_allowed() {
            return self
                .reply(
                    ReplyCode::BAD_SEQUENCE,
                    "PROT requires AUTH TLS and PBSZ 0 first.",
                )
                .await;
        }
        match level {
            ProtectionLevel::Private => {
                self.security.set_prot(level);
                self.reply(
                    ReplyCode::OK,
                    "Data channel protection level set to P (TLS).",
                )
                .await
            }
            ProtectionLevel::Clear => {
                self.security.set_prot(level);
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
        if !self.security.is_tls() {
            return self
                .reply(
                    ReplyCode::BAD_SEQUENCE,
                    "The control connection is not protected.",
                )
                .await;
        }
        if self.login.user().is_none() {
            return self
                .reply(ReplyCode::NOT_LOGGED_IN, "Please log in first.")
                .await;
        }
        if !self.config().tls.allow_ccc {
            return self
                .reply(
                    ReplyCode::POLICY_REFUSED,
                    "CCC is refused by policy: the control connection stays protected.",
                )
                .await;
        }
        if self.control.has_pipelined() {
            warn!("data pipelined after CCC; closing");
            self.close_with(
                ReplyCode::BAD_SEQUENCE,
                "Commands pipelined after CCC are refused; closing.",
            )
            .await;
            return Ok(Flow::Close);
        }
        self.reply(
            ReplyCode::OK,
            "CCC ok; the control connection continues in the clear.",
        )
        .await?;
        match self.end_control_tls().await {
            Ok(()) => {
                info!("control connection TLS ended by CCC");
                Ok(Flow::Continue)
            }
            Err(e) => {
                info!(error = %e, "CCC shutdown failed");
                Ok(Flow::Close)
            }
        }
    }

    /// Exchanges close_notify with the client and continues on the bare TCP connection.
    /// Anything the client sent inside TLS after CCC is discarded.
    async fn end_control_tls(&mut self) -> std::io::Result<()> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Some(mut stream) = self.control.take_tls() else {
            return Err(std::io::Error::other("TLS is not on"));
        };
        stream.get_mut().1.send_close_notify();
        stream.flush().await?;
        let limit = Duration::from_secs(self.config().timeouts.tls_handshake);
        let mut discard = [0u8; 512];
        let wait = async {
            loop {
                if stream.read(&mut discard).await? == 0 {
                    return Ok::<_, std::io::Error>(());
                }
            }
        };
        tokio::time::timeout(limit, wait)
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no close_notify"))??;
        let (mut tcp, _) = stream.into_inner();
        if tcp.mid_record() {
            return Err(std::io::Error::other("TLS ended inside a record"));
        }
        // Whatever followed the client's close_notify is still in the socket: plaintext.
        tcp.set_records(false);
        self.control.unsecured(tcp);
        self.security.end_control_tls();
        Ok(())
    }

    /// The identity in the client certificate of the control connection, if any.
    fn client_identity(&self) -> Option<CertIdentity> {
        CertIdentity::from_der(self.security.client_cert()?)
    }

    pub(super) async fn cmd_user(&mut self, name: String) -> Result {
        if self.config().tls.require_for_login && !self.security.is_tls() {
            return self
                .reply(
                    ReplyCode::NOT_LOGGED_IN,
                    "This server requires TLS: send AUTH TLS before USER.",
                )
                .await;
        }
        if self.login.user().is_some() {
            return self
                .reply(ReplyCode::BAD_SEQUENCE, "Already logged in.")
                .await;
        }
        if let Some(flow) = self.refuse_if_ip_banned().await {
            return Ok(flow);
        }
        if self.anonymous_name(&name) {
            self.login = Login::UserGiven(name);
            return self
                .reply(
                    ReplyCode::NEED_PASSWORD,
                    "Anonymous login ok; send your e-mail address as the password.",
                )
                .await;
        }
        // RFC 4217 §12.2: a certificate that identifies the user logs in at USER (232).
        if let Some(identity) = self.client_identity() {
            if !self.shared.limiter.user_banned(&self.user_key(&name)) {
                if let Ok(user) = self.users().authenticate_certificate(&name, &identity) {
                    info!(user = %name, certificate = %identity.sha256, "certificate accepted");
                    return self
                        .complete_login(user, ReplyCode::LOGGED_IN_BY_CERT)
                        .await;
                }
            }
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
        if let Some(flow) = self.refuse_if_ip_banned().await {
            return Ok(flow);
        }
        if self.anonymous_name(&name) {
            // RFC 1635: the password is the user's e-mail address, by courtesy; not logged.
            return self
                .complete_login(self.anonymous_user(), ReplyCode::LOGGED_IN)
                .await;
        }
        if self.shared.limiter.user_banned(&self.user_key(&name)) {
            info!(user = %name, "login refused: name banned after failures");
            self.shared
                .ops
                .metrics
                .login(LoginResult::Refused, LoginMethod::Password);
            self.close_with(ReplyCode::SERVICE_NOT_AVAILABLE, Refusal::Banned.message())
                .await;
            return Ok(Flow::Close);
        }
        let identity = self.client_identity();
        let result = self
            .users()
            .authenticate(&name, password.expose(), identity.as_ref())
            .await;
        match result {
            Ok(user) => self.complete_login(user, ReplyCode::LOGGED_IN).await,
            Err(_) => {
                let key = self.user_key(&name);
                let mut outcome = self
                    .shared
                    .limiter
                    .record_failure(canonical_ip(self.peer.ip()), &key);
                if self.fleet_failure(&key).await {
                    outcome.banned = true;
                }
                info!(user = %name, banned = outcome.banned, "login failed");
                self.shared
                    .ops
                    .metrics
                    .login(LoginResult::Failed, LoginMethod::Password);
                tokio::time::sleep(outcome.delay).await;
                if outcome.banned {
                    self.close_with(ReplyCode::SERVICE_NOT_AVAILABLE, Refusal::Banned.message())
                        .await;
                    return Ok(Flow::Close);
                }
                self.reply(ReplyCode::NOT_LOGGED_IN, "Login incorrect.")
                    .await
            }
        }
    }

    /// Adds a failed login to the fleet's counts (see [`crate::limits::shared`]); whether the
    /// address or the name is now banned fleet-wide (then applied here at once). Without
    /// a database, or when it does not answer in time, only this node's counts decide.
    async fn fleet_failure(&self, key: &crate::limits::UserKey) -> bool {
        let Some(shared) = &self.shared.shared_failures else {
            return false;
        };
        let ip = self.shared.limiter.counted_ip(canonical_ip(self.peer.ip()));
        let recorded = tokio::time::timeout(
            crate::limits::shared::RECORD_TIMEOUT,
            shared.record_failure(ip, key),
        )
        .await;
        match recorded {
            Ok(Ok(outcome)) => {
                let ban_for = std::time::Duration::from_secs(self.config().limits.ban_seconds);
                if outcome.ip_banned {
                    self.shared.limiter.ban_ip(ip, ban_for);
                }
                if outcome.user_banned {
                    self.shared.limiter.ban_user(key, ban_for);
                }
                outcome.banned()
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "shared login failures: failure not recorded");
                false
            }
            Err(_) => {
                tracing::warn!("shared login failures: the database did not answer in time");
                false
            }
        }
    }

    /// Finishes a successful login: the user's address rules, session limits, the root
    /// directory, the reply.
    async fn complete_login(&mut self, user: AuthenticatedUser, code: ReplyCode) -> Result {
        let method = if user.anonymous {
            LoginMethod::Anonymous
        } else if code == ReplyCode::LOGGED_IN_BY_CERT {
            LoginMethod::Certificate
        } else {
            LoginMethod::Password
        };
        let flow = self.admit_login(user, code).await?;
        let result = if self.login.user().is_some() {
            LoginResult::Ok
        } else {
            LoginResult::Refused
        };
        self.shared.ops.metrics.login(result, method);
        Ok(flow)
    }

    /// [`Session::complete_login`] but for the metrics.
    async fn admit_login(&mut self, mut user: AuthenticatedUser, code: ReplyCode) -> Result {
        let name = user.name.clone();
        let key = self.user_key(&name);
        let (mut limits, addresses) = self.user_policy(&user);
        if user.anonymous {
            let anonymous = &self.config().anonymous;
            limits.max_sessions = Some(
                anonymous
                    .max_sessions
                    .unwrap_or(self.config().limits.max_sessions),
            );
        }
        // The credentials were right, so this is no failed login: nothing is counted.
        if let Err(rule) = addresses.check(canonical_ip(self.peer.ip())) {
            info!(user = %name, address = %self.peer.ip(), rule = %rule, "login refused: address not allowed for this user");
            self.login = Login::Anonymous;
            return self
                .reply(
                    ReplyCode::NOT_LOGGED_IN,
                    format!("Login refused: logins as {name} are not allowed from your address."),
                )
                .await;
        }
        if let Err(refusal) = self.permit.login_limited(&key, limits.max_sessions) {
            info!(user = %name, "login refused: too many sessions for this user");
            self.close_with(ReplyCode::SERVICE_NOT_AVAILABLE, refusal.message())
                .await;
            return Ok(Flow::Close);
        }
        let Some((storage, quota)) = self.open_storage(&mut user, &key, &limits).await else {
            self.permit.logout();
            return self
                .reply(
                    ReplyCode::NOT_LOGGED_IN,
                    "Login refused: home directory unavailable.",
                )
                .await;
        };
        self.shared.limiter.record_success(&key);
        if let Some(shared) = self.shared.shared_failures.clone() {
            // Not waited for: a login never waits for the database.
            let key = key.clone();
            tokio::spawn(async move {
                if let Err(e) = shared.record_success(&key).await {
                    tracing::debug!(error = %e, "shared login failures: reset not recorded");
                }
            });
        }
        info!(user = %name, tls = self.security.is_tls(), "login ok");
        let tickets_shared = self.security.session_tls().map(|tls| {
            tls.domain.bind(
                &self.shared.siblings,
                UserBinding {
                    host: self.vhost.as_ref().map(|h| h.name.clone()),
                    user: name.clone(),
                    ip: canonical_ip(self.peer.ip()),
                },
            )
        });
        let user_reloads = self.users().reloads();
        self.login = Login::LoggedIn(Box::new(LoggedIn::new(
            user,
            storage,
            tickets_shared,
            user_reloads,
            quota,
        )));
        if let Some(user) = self.login.user() {
            self.event(user, crate::ops::events::EventKind::Login, None, None, None);
            self.registered.set_user(
                Some(user.name().to_string()),
                self.vhost.as_ref().map(|h| h.name.clone()),
            );
        }
        // The session's first TLS 1.3 tickets, sent ahead of the reply.
        self.control.queue_tls13_tickets(crate::tls::LOGIN_TICKETS);
        self.reply(code, format!("User {name} logged in.")).await
    }

    /// The user's storage, from the backend up: its own tree (see [`Session::open_store`])
    /// under its file size limit and its quota, its virtual folders mounted into it, all
    /// behind its permissions (the folders' rights added to them, in `user`). `None`
    /// (logged) if a part cannot be opened or the usage not counted.
    async fn open_storage(
        &self,
        user: &mut AuthenticatedUser,
        key: &UserKey,
        limits: &UserLimits,
    ) -> Option<(Arc<dyn Storage>, Option<UserQuota>)> {
        let name = user.name.clone();
        let mut storage =
            self.open_store(&name, user.storage.as_deref(), &user.root, &user.key_prefix)?;
        if let Some(max) = limits.file_size_limit(self.config().limits.max_file_size) {
            storage = Arc::new(LimitedStorage::new(storage, max));
        }
        let server_quota = if user.anonymous {
            Quota::default()
        } else {
            self.config().quota
        };
        let quota_limits = user.quota.limits(&server_quota);
        let mut quota = None;
        if quota_limits.is_limited() {
            let usage = match self.shared.quotas.usage(key, storage.as_ref()).await {
                Ok(usage) => usage,
                Err(e) => {
                    warn!(user = %name, error = %e, "cannot count the user's usage for its quota");
                    return None;
                }
            };
            storage = Arc::new(QuotaStorage::new(storage, usage.clone(), quota_limits));
            quota = Some(UserQuota {
                usage,
                limits: quota_limits,
            });
        }
        if !user.folders.is_empty() {
            let mut mounts = Vec::with_capacity(user.folders.len());
            let mut rules = (*user.permissions).clone();
            for folder in &user.folders {
                let folder_storage = self.open_store(
                    &name,
                    folder.storage.as_deref(),
                    &folder.root,
                    &folder.key_prefix,
                )?;
                mounts.push(Mount {
                    at: folder.at.clone(),
                    storage: folder_storage,
                });
                // The folder's rights are a rule at its mount point, unless the user has one.
                if !rules.has_rule(folder.at.as_str()) {
                    rules
                        .set(folder.at.as_str(), PermissionSet::of_access(folder.access))
                        .ok()?;
                }
            }
            storage = Arc::new(MountedStorage::new(storage, mounts));
            user.permissions = Arc::new(rules);
        }
        if !user.permissions.is_empty() {
            storage = Arc::new(GuardedStorage::new(
                storage,
                user.permissions.clone(),
                user.access,
            ));
        }
        Some((storage, quota))
    }

    /// A tree of files for the user `name`: in the S3 store `store` (or, unset, the
    /// server's default) under `key_prefix`, or in the local directory `root` (`store`
    /// unset and no default, or `"local"`). `None` (logged) if that cannot be opened.
    fn open_store(
        &self,
        name: &str,
        store: Option<&str>,
        root: &std::path::Path,
        key_prefix: &str,
    ) -> Option<Arc<dyn Storage>> {
        let store = store.or(self.shared.config.storage.default.as_deref());
        if let Some(store) = store.filter(|s| *s != LOCAL_STORAGE) {
            #[cfg(feature = "s3")]
            if let Some(s3) = self.shared.s3_stores.get(store) {
                return Some(Arc::new(s3.user(key_prefix)));
            }
            let _ = key_prefix;
            warn!(user = %name, store = %store, "the storage is not configured");
            return None;
        }
        match self.shared.roots.open(root) {
            Ok(root) => Some(Arc::new(LocalStorage::new(root))),
            Err(e) => {
                warn!(user = %name, root = %root.display(), error = %e, "cannot open the directory");
                None
            }
        }
    }

    /// The limits and address rules of `user` as the users file says now; none for a user
    /// that is gone, or an anonymous login.
    fn user_policy(&self, user: &AuthenticatedUser) -> (UserLimits, AddressRules) {
        if user.anonymous {
            return Default::default();
        }
        self.users()
            .snapshot()
            .get(&user.name)
            .map(|entry| (entry.limits.clone(), entry.addresses.clone()))
            .unwrap_or_default()
    }

    /// Whether `name` logs in anonymously here: anonymous logins are on and `name` is one
    /// of theirs. Virtual hosts have no anonymous logins.
    fn anonymous_name(&self, name: &str) -> bool {
        self.vhost.is_none() && self.config().anonymous.is_anonymous(name)
    }

    /// The anonymous user of the configuration: read-only, with its upload folder
    /// write-only.
    fn anonymous_user(&self) -> AuthenticatedUser {
        let config = &self.config().anonymous;
        let mut rules = PathPermissions::default();
        if let Some(dir) = &config.upload_dir {
            // Validated with the configuration.
            let _ = rules.set(dir, [Permission::Upload].into_iter().collect());
        }
        AuthenticatedUser::anonymous(
            config.root.clone().unwrap_or_default(),
            config.storage.clone(),
            rules,
            config.quota,
        )
    }

    /// `name` on this session's virtual host, as the limits count users.
    fn user_key(&self, name: &str) -> UserKey {
        UserKey::new(self.vhost.as_ref().map(|h| h.name.as_str()), name)
    }

    /// Ends the session (421) when its address was banned, even after it connected: a ban
    /// must stop password guessing on connections opened before it.
    async fn refuse_if_ip_banned(&mut self) -> Option<Flow> {
        if !self.shared.limiter.ip_banned(canonical_ip(self.peer.ip())) {
            return None;
        }
        info!("login refused: address banned after failures");
        self.close_with(ReplyCode::SERVICE_NOT_AVAILABLE, Refusal::Banned.message())
            .await;
        Some(Flow::Close)
    }

    /// The users of the chosen virtual host, or the server's.
    fn users(&self) -> &crate::users::UserStore {
        match &self.vhost {
            Some(host) => &host.users,
            None => &self.shared.users,
        }
    }

    /// `HOST` (RFC 7151 §3): choose a virtual host before logging in.
    pub(super) async fn cmd_host(&mut self, name: &str) -> Result {
        if !matches!(self.login, Login::Anonymous) {
            return self
                .reply(ReplyCode::BAD_SEQUENCE, "HOST must come before USER.")
                .await;
        }
        // RFC 7151 §3.1: a bracketed IP literal, or a domain name.
        let wanted = name.to_ascii_lowercase();
        let Some(host) = self.shared.hosts.get(&wanted).cloned() else {
            if self.shared.hosts.is_empty() || wanted.starts_with('[') {
                // No virtual hosts: every name is this server.
                return self.reply(ReplyCode::READY, "Host accepted.").await;
            }
            return self
                .reply(ReplyCode::PARAMETER_NOT_IMPLEMENTED, "Unknown host.")
                .await;
        };
        if let Some(current) = &self.vhost {
            if current.name != host.name && self.security.is_tls() {
                return self
                    .reply(
                        ReplyCode::PARAMETER_NOT_IMPLEMENTED,
                        "HOST does not match the TLS server name.",
                    )
                    .await;
            }
        }
        let sni = self
            .control
            .tls_state()
            .and_then(|c| c.server_name())
            .map(str::to_ascii_lowercase);
        if sni.is_some_and(|sni| sni != host.name) {
            return self
                .reply(
                    ReplyCode::PARAMETER_NOT_IMPLEMENTED,
                    "HOST does not match the TLS server name.",
                )
                .await;
        }
        info!(host = %host.name, "virtual host selected");
        self.vhost = Some(host);
        self.reply(ReplyCode::READY, "Host accepted.").await
    }

    pub(super) async fn cmd_quit(&mut self) -> Result {
        self.reply(ReplyCode::CLOSING, "Goodbye.").await?;
        Ok(Flow::Close)
    }
}
