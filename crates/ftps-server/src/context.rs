//! What sessions share with the server and with each other: the server-wide state
//! ([`Shared`]), the listener a connection arrived on ([`ListenerContext`]) and the virtual
//! hosts ([`VirtualHost`]). The listeners ([`crate::server`]) build them; sessions only read
//! them, so neither depends on the other.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use tokio::sync::watch;

use crate::config::{ClientCertMode, Config};
use crate::limits::Limiter;
use crate::policy::SessionReuse;
use crate::storage::local::RootCache;
#[cfg(feature = "s3")]
use crate::storage::s3::S3Store;
use crate::tls::{CertResolver, Siblings, TlsSetup};
use crate::users::UserStore;

/// `HASH` digests computed at once in the whole server (each reads a file as fast as the
/// disk allows and keeps a core busy).
pub const MAX_CONCURRENT_HASHES: usize = 4;

/// The server-wide bound on running digests.
pub(crate) fn hash_permits() -> Arc<tokio::sync::Semaphore> {
    Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_HASHES))
}

/// What every session shares.
pub struct Shared {
    /// The configuration.
    pub config: Config,
    /// The users.
    pub users: UserStore,
    /// The served certificate, shared by all listeners.
    pub resolver: Arc<CertResolver>,
    /// Virtual hosts by lower-case DNS name.
    pub hosts: HashMap<String, Arc<VirtualHost>>,
    /// Every listener's context, for reloading client CAs and CRLs.
    pub(crate) listeners: Vec<Arc<ListenerContext>>,
    /// Session and login limits.
    pub limiter: Arc<Limiter>,
    /// Failed logins and bans counted in the database for the whole fleet, if configured.
    pub shared_failures: Option<Arc<crate::limits::shared::SharedFailures>>,
    /// Users' root directories, one open handle per root in use.
    pub roots: RootCache,
    /// The S3 stores of the configuration, by name.
    #[cfg(feature = "s3")]
    pub s3_stores: std::collections::BTreeMap<String, Arc<S3Store>>,
    /// Logged-in TLS sessions by user and address, whose data connections may resume each
    /// other's tickets.
    pub siblings: Arc<Siblings>,
    /// Bounds the `HASH` digests running at once.
    pub hash_permits: Arc<tokio::sync::Semaphore>,
    /// The bandwidth limits' buckets: the server's and its users'.
    pub bandwidth: crate::bandwidth::Bandwidth,
    /// The usage of the users with a quota, shared by each user's sessions.
    pub quotas: crate::quota::QuotaRegistry,
    /// Metrics and the transfer log.
    pub ops: crate::ops::Operations,
    /// The passive-mode listeners open now.
    pub passive_ports: crate::ops::PassivePorts,
    /// The sessions open now, for the admin API.
    pub sessions: Arc<crate::ops::sessions::SessionRegistry>,
    /// Becomes true when the server shuts down.
    pub shutdown: watch::Receiver<bool>,
    /// The id of the next session, for the logs.
    pub(crate) next_session: AtomicU64,
}

/// A virtual host (RFC 7151): its own users and, optionally, its own certificate.
pub struct VirtualHost {
    /// The DNS name, lower case.
    pub name: String,
    /// The host's users.
    pub users: UserStore,
    /// The host's certificate, if it has its own.
    pub certificate: Option<Arc<CertResolver>>,
    /// The host's certificate and key files, watched for changes.
    pub(crate) cert_paths: Option<(PathBuf, PathBuf)>,
}

/// What a session needs to know about the listener it arrived on.
pub struct ListenerContext {
    /// TLS from the first byte.
    pub implicit: bool,
    /// Connections start with a PROXY protocol header from a trusted balancer.
    pub proxy_protocol: bool,
    /// This listener's TLS configuration template.
    pub tls: TlsSetup,
    /// Data-connection session reuse, unless the user overrides it.
    pub data_session_reuse: SessionReuse,
    /// Whether PORT/EPRT are accepted.
    pub active_enabled: bool,
    /// Client certificate mode.
    pub client_certificates: ClientCertMode,
    /// The crypto provider, to rebuild the client verifier on reload.
    pub(crate) provider: Arc<rustls::crypto::CryptoProvider>,
}
