//! The typed state of a session: how far the client has got with logging in ([`Login`]),
//! what protects the control connection ([`ControlSecurity`]), and the parameters commands
//! set for the commands after them ([`TransferParams`]).
//!
//! Each type allows only the states the protocol allows: there is no PBSZ or PROT state
//! without TLS, no client certificate without a handshake, and no working directory without
//! a user.

use std::sync::Arc;

use ftps_proto::command::{ProtectionLevel, TransferType};
use ftps_proto::hash::HashAlgorithm;
use ftps_proto::listing::MlstFacts;
use rustls::pki_types::CertificateDer;
use tokio::sync::watch;

use super::data::DataSetup;
use crate::bandwidth::SessionBandwidth;
use crate::policy::{Access, SessionReuse};
use crate::storage::{Storage, VirtualPath};
use crate::tls::{BoundLogin, SessionTls};
use crate::users::{AuthenticatedUser, UserStore};

/// How far the client has got with logging in.
pub(crate) enum Login {
    /// Nothing sent yet.
    Anonymous,
    /// `USER` accepted; `PASS` expected.
    UserGiven(String),
    /// Logged in.
    LoggedIn(Box<LoggedIn>),
}

impl Login {
    /// The logged-in user, if any.
    pub(crate) fn user(&self) -> Option<&LoggedIn> {
        match self {
            Login::LoggedIn(user) => Some(user),
            _ => None,
        }
    }
}

/// A logged-in user: who it is, its storage and working directory. Handlers of commands that
/// need a user receive one, so they cannot run without.
pub(crate) struct LoggedIn {
    user: AuthenticatedUser,
    storage: Arc<dyn Storage>,
    cwd: VirtualPath,
    /// Shares this session's TLS tickets with the user's other sessions from the same
    /// address while logged in (see [`crate::tls::resumption`]); `None` without TLS.
    _tickets_shared: Option<BoundLogin>,
    /// Loads of the users file the login came from: after each, the session checks that
    /// its user still exists with the same credentials.
    user_reloads: watch::Receiver<u64>,
    /// The session's bandwidth buckets, kept from one transfer to the next.
    bandwidth: SessionBandwidth,
    /// The user's usage and quota, if it has one.
    quota: Option<UserQuota>,
}

/// A logged-in user's quota: the usage its sessions share, and its limits.
pub(crate) struct UserQuota {
    pub(crate) usage: Arc<crate::quota::QuotaUsage>,
    pub(crate) limits: crate::quota::QuotaLimits,
}

impl LoggedIn {
    /// A user just logged in, in its root directory.
    pub(crate) fn new(
        user: AuthenticatedUser,
        storage: Arc<dyn Storage>,
        tickets_shared: Option<BoundLogin>,
        user_reloads: watch::Receiver<u64>,
        quota: Option<UserQuota>,
    ) -> LoggedIn {
        LoggedIn {
            user,
            storage,
            cwd: VirtualPath::root(),
            _tickets_shared: tickets_shared,
            user_reloads,
            bandwidth: SessionBandwidth::default(),
            quota,
        }
    }

    /// The user's quota and usage, if it has a quota.
    pub(crate) fn quota(&self) -> Option<&UserQuota> {
        self.quota.as_ref()
    }

    /// The session's bandwidth buckets.
    pub(crate) fn bandwidth(&self) -> &SessionBandwidth {
        &self.bandwidth
    }

    /// The user's name.
    pub(crate) fn name(&self) -> &str {
        &self.user.name
    }

    /// What the user may do in its root.
    pub(crate) fn access(&self) -> Access {
        self.user.access
    }

    /// Whether the user may change files somewhere: its access level, or a permission rule
    /// that grants a write (the rules themselves are checked by the user's storage).
    pub(crate) fn can_write(&self) -> bool {
        self.user.access.can_write() || self.user.permissions.grants_any_write()
    }

    /// Whether this is an anonymous login.
    pub(crate) fn is_anonymous(&self) -> bool {
        self.user.anonymous
    }

    /// The user's permission rules (its folders' rights among them).
    pub(crate) fn permissions(&self) -> &Arc<crate::permissions::PathPermissions> {
        &self.user.permissions
    }

    /// Whether the user may send PORT/EPRT to other hosts than its own (FXP).
    pub(crate) fn allow_fxp(&self) -> bool {
        self.user.allow_fxp
    }

    /// The user's own data-connection session reuse policy, if it has one.
    pub(crate) fn data_session_reuse(&self) -> Option<SessionReuse> {
        self.user.data_session_reuse
    }

    /// Where the user's files are.
    pub(crate) fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// The working directory.
    pub(crate) fn cwd(&self) -> &VirtualPath {
        &self.cwd
    }

    /// Changes the working directory (to a directory that was checked to exist).
    pub(crate) fn set_cwd(&mut self, path: VirtualPath) {
        self.cwd = path;
    }

    /// The virtual path a command argument names, relative to the working directory.
    pub(crate) fn path(&self, arg: &str) -> VirtualPath {
        self.cwd.join(arg)
    }

    /// A receiver of the reloads of the users file the user came from.
    pub(crate) fn reloads(&self) -> watch::Receiver<u64> {
        self.user_reloads.clone()
    }

    /// After a reload of `users`: whether the user still exists with the credentials it
    /// logged in with. Marks the reload as seen.
    pub(crate) fn still_valid(&mut self, users: &UserStore) -> bool {
        self.user_reloads.borrow_and_update();
        users.still_valid(&self.user)
    }
}

/// What protects the control connection, and with it the data channel (RFC 4217).
pub(crate) enum ControlSecurity {
    /// No TLS: the connection is as it was accepted.
    Clear,
    /// TLS protects the control connection.
    Tls(Negotiated),
    /// TLS was negotiated, then ended by `CCC`: the control connection is clear again, but
    /// `PBSZ`, `PROT` and the client certificate still apply to data connections.
    ClearAfterCcc(Negotiated),
}

/// What a TLS negotiation on the control connection settled.
pub(crate) struct Negotiated {
    /// This session's TLS configuration and resumption domain.
    tls: SessionTls,
    /// `PBSZ` was received (or implied).
    pbsz: bool,
    /// The data channel protection level.
    prot: ProtectionLevel,
    /// The client certificate of the control connection's TLS session.
    client_cert: Option<CertificateDer<'static>>,
}

impl ControlSecurity {
    /// The state after a completed handshake on the control connection.
    pub(crate) fn tls(tls: SessionTls, client_cert: Option<CertificateDer<'static>>) -> Self {
        ControlSecurity::Tls(Negotiated {
            tls,
            pbsz: false,
            prot: ProtectionLevel::Clear,
            client_cert,
        })
    }

    fn negotiated(&self) -> Option<&Negotiated> {
        match self {
            ControlSecurity::Clear => None,
            ControlSecurity::Tls(n) | ControlSecurity::ClearAfterCcc(n) => Some(n),
        }
    }

    fn negotiated_mut(&mut self) -> Option<&mut Negotiated> {
        match self {
            ControlSecurity::Clear => None,
            ControlSecurity::Tls(n) | ControlSecurity::ClearAfterCcc(n) => Some(n),
        }
    }

    /// Whether TLS protects the control connection now.
    pub(crate) fn is_tls(&self) -> bool {
        matches!(self, ControlSecurity::Tls(_))
    }

    /// This session's TLS configuration, once TLS was negotiated.
    pub(crate) fn session_tls(&self) -> Option<&SessionTls> {
        self.negotiated().map(|n| &n.tls)
    }

    /// The client certificate of the control connection's TLS session; kept after `CCC`.
    pub(crate) fn client_cert(&self) -> Option<&CertificateDer<'static>> {
        self.negotiated().and_then(|n| n.client_cert.as_ref())
    }

    /// Whether `PROT P` is in effect: data connections must use TLS.
    pub(crate) fn data_private(&self) -> bool {
        self.data_tls().is_some()
    }

    /// The TLS configuration for data connections when `PROT P` is in effect.
    pub(crate) fn data_tls(&self) -> Option<&SessionTls> {
        self.negotiated()
            .filter(|n| n.prot == ProtectionLevel::Private)
            .map(|n| &n.tls)
    }

    /// `PBSZ`: false (and no change) without TLS.
    pub(crate) fn set_pbsz(&mut self) -> bool {
        match self.negotiated_mut() {
            Some(n) => {
                n.pbsz = true;
                true
            }
            None => false,
        }
    }

    /// Whether `PROT` may be sent now: TLS and `PBSZ` came first.
    pub(crate) fn prot_allowed(&self) -> bool {
        self.negotiated().is_some_and(|n| n.pbsz)
    }

    /// `PROT`: sets the data channel protection level; no change unless
    /// [`prot_allowed`](Self::prot_allowed).
    pub(crate) fn set_prot(&mut self, level: ProtectionLevel) {
        if let Some(n) = self.negotiated_mut().filter(|n| n.pbsz) {
            n.prot = level;
        }
    }

    /// Protects the data channel from the start, as implicit FTPS and `AUTH SSL`/`TLS-P`
    /// do: `PBSZ 0` and `PROT P` implied.
    pub(crate) fn protect_data(&mut self) {
        if let Some(n) = self.negotiated_mut() {
            n.pbsz = true;
            n.prot = ProtectionLevel::Private;
        }
    }

    /// `CCC` completed: the control connection continues in the clear.
    pub(crate) fn end_control_tls(&mut self) {
        if let ControlSecurity::Tls(n) = std::mem::replace(self, ControlSecurity::Clear) {
            *self = ControlSecurity::ClearAfterCcc(n);
        }
    }
}

/// The parameters that commands set for the commands after them: the transfer type, the
/// data connection set-up, `REST`, `RNFR`, and the options of `MLST` and `HASH`. `REIN`
/// puts them all back to their [`Default`].
#[derive(Default)]
pub(crate) struct TransferParams {
    /// `TYPE`.
    pub(crate) transfer_type: TransferType,
    /// `REST` offset for the next transfer.
    pub(crate) restart: u64,
    /// Source of a pending rename.
    pub(crate) rename_from: Option<VirtualPath>,
    /// How the next data connection will be made.
    pub(crate) data: DataSetup,
    /// `EPSV ALL` was received: only EPSV may set up data connections.
    pub(crate) epsv_all: bool,
    /// The facts `MLST` and `MLSD` show, chosen with `OPTS MLST`.
    pub(crate) mlst_facts: MlstFacts,
    /// The algorithm `HASH` uses, chosen with `OPTS HASH`.
    pub(crate) hash_algorithm: HashAlgorithm,
}

impl TransferParams {
    /// Whether `TYPE A` is in effect.
    pub(crate) fn ascii(&self) -> bool {
        self.transfer_type == TransferType::Ascii
    }
}
