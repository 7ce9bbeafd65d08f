//! Listeners, start-up and graceful shutdown.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::config::{ClientCertMode, Config, ListenerEntry};
use crate::context::{hash_permits, ListenerContext, Shared, VirtualHost};
use crate::limits::Limiter;
use crate::policy::Access;
use crate::tls::{self, CertResolver, TlsError, TlsSetup};
use crate::users::{self, UserDb, UserStore, UsersError};

/// Name of the user created by the embedded default.
pub const DEFAULT_USER: &str = "ftps";

/// A start-up problem, in one line naming what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// TLS certificate or key problem.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Users file problem.
    #[error(transparent)]
    Users(#[from] UsersError),
    /// A listener could not be opened.
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why (part of the message, so deliberately not a `source`).
        error: io::Error,
    },
    /// An S3 store of the configuration could not be set up.
    #[error("storage.s3.{name}: {error}")]
    Storage {
        /// The store's name.
        name: String,
        /// Why.
        error: io::Error,
    },
    /// The transfer log could not be opened, or a hook could not be set up (the message
    /// names the hook).
    #[error("{0}")]
    Log(io::Error),
    /// A file or directory of the state directory could not be made.
    #[error("cannot create {}: {error}", path.display())]
    State {
        /// The path.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
}

/// What `prepare_state` created, to tell the operator once.
#[derive(Debug, Default)]
pub struct StateReport {
    /// A self-signed certificate was generated.
    pub generated_certificate: bool,
    /// A default user was created with this password.
    pub created_user: Option<(String, String)>,
}

/// Creates the state directory, a self-signed certificate and a first user where the
/// configuration relies on defaults that do not exist yet (the embedded default).
pub fn prepare_state(config: &Config) -> Result<StateReport, StartError> {
    let mut report = StateReport::default();
    let state = &config.state_dir;
    let (cert, key, default_tls) = config.tls_paths();
    // Users in a database are added with `ftpsd user`, never generated.
    let default_users = config.users_file.is_none() && config.database.is_none();
    let needs_cert = default_tls && !cert.exists();
    let needs_users = default_users && !config.users_path().exists();
    if !(needs_cert || needs_users) {
        return Ok(report);
    }
    create_private_dir(state)?;
    if needs_cert {
        tls::generate_self_signed(&cert, &key)?;
        report.generated_certificate = true;
    }
    if needs_users {
        let data = state.join("data");
        create_private_dir(&data)?;
        let mut db = UserDb::load_or_empty(&config.users_path())?;
        let password = users::generate_password();
        // Stored relative to the users file, so the state directory can be moved.
        db.add(
            DEFAULT_USER,
            PathBuf::from("data"),
            Access::ReadWrite,
            &password,
        )?;
        db.save()?;
        report.created_user = Some((DEFAULT_USER.to_string(), password));
    }
    Ok(report)
}

fn create_private_dir(path: &Path) -> Result<(), StartError> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
    {
        Ok(()) => Ok(()),
        Err(error) => Err(StartError::State {
            path: path.to_path_buf(),
            error,
        }),
    }
}

/// A bound, ready-to-run server.
pub struct Server {
    shared: Arc<Shared>,
    shutdown_tx: watch::Sender<bool>,
    listeners: Vec<(TcpListener, Arc<ListenerContext>)>,
    /// The metrics listener, if configured.
    metrics: Option<TcpListener>,
    /// The admin API's listener and token, if configured.
    admin: Option<(TcpListener, String)>,
    fingerprint: String,
}

impl Server {
    /// Loads the certificate and users and opens the listeners.
    pub async fn bind(config: Config) -> Result<Server, StartError> {
        let (cert, key, _) = config.tls_paths();
        let certified = tls::load_certified_key(&cert, &key)?;
        let fingerprint = tls::fingerprint(&certified.cert[0]);
        let resolver = Arc::new(CertResolver::new(certified));
        let provider = tls::provider_with_suites(config.tls.cipher_suites.as_deref())?;
        let cache = Duration::from_secs(config.limits.credential_cache_seconds);
        let users = match &config.database {
            Some(_) if config.users_file.is_some() => {
                return Err(crate::users::UsersError::TwoSources.into())
            }
            Some(database) => UserStore::open_database(database, &config.state_dir, cache).await?,
            None => UserStore::open_with_cache(&config.users_path(), cache)?,
        };
        let shared_failures = match (&config.database, users.database()) {
            (Some(settings), Some(database)) if settings.shared_login_failures => Some(Arc::new(
                crate::limits::shared::SharedFailures::new(database.clone(), config.limits.clone()),
            )),
            _ => None,
        };
        let hosts = load_hosts(&config)?;
        #[cfg(feature = "s3")]
        let s3_stores = open_s3_stores(&config)?;
        #[cfg(not(feature = "s3"))]
        if let Some(name) = config.storage.s3.keys().next() {
            return Err(StartError::Storage {
                name: name.clone(),
                error: io::Error::new(
                    io::ErrorKind::Unsupported,
                    "this ftpsd was built without the s3 feature",
                ),
            });
        }
        let cleanup_config = config.clone();
        let stores: Vec<UserStore> = std::iter::once(users.clone())
            .chain(hosts.values().map(|h| h.users.clone()))
            .collect();
        // Before any client can start an upload: nothing in flight yet can be mistaken for
        // a leftover.
        let _ =
            tokio::task::spawn_blocking(move || remove_leftover_uploads(&stores, &cleanup_config))
                .await;
        let by_sni = hosts
            .iter()
            .filter_map(|(name, h)| h.certificate.clone().map(|c| (name.clone(), c)))
            .collect();
        let sni: Arc<dyn rustls::server::ResolvesServerCert> =
            Arc::new(tls::SniResolver::new(resolver.clone(), by_sni));
        let mut listeners = Vec::new();
        for (entries, implicit) in [(&config.listen, false), (&config.implicit_listen, true)] {
            for entry in entries {
                let context = listener_context(&config, entry, implicit, &sni, &provider)?;
                let listener =
                    TcpListener::bind(entry.address)
                        .await
                        .map_err(|error| StartError::Bind {
                            addr: entry.address,
                            error,
                        })?;
                listeners.push((listener, Arc::new(context)));
            }
        }
        for (what, addr) in [
            ("metrics", config.metrics.listen),
            ("admin", config.admin.listen),
        ] {
            if addr.is_some_and(|a| !a.ip().is_loopback()) {
                warn!(listener = what, "the {what} listener is not on loopback: reachable by anyone who can reach this address, over plain HTTP");
            }
        }
        let metrics = match config.metrics.listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|error| StartError::Bind { addr, error })?,
            ),
            None => None,
        };
        let admin = match config.admin.listen {
            Some(addr) => {
                let token = admin_token(&config)?;
                let listener = TcpListener::bind(addr)
                    .await
                    .map_err(|error| StartError::Bind { addr, error })?;
                Some((listener, token))
            }
            None => None,
        };
        let ops = crate::ops::Operations::new(&config).map_err(StartError::Log)?;
        let (shutdown_tx, shutdown) = watch::channel(false);
        let limiter = Limiter::new(config.limits.clone());
        let bandwidth = crate::bandwidth::Bandwidth::new(&config.bandwidth);
        Ok(Server {
            shared: Arc::new(Shared {
                config,
                users,
                resolver,
                hosts,
                listeners: listeners.iter().map(|(_, c)| c.clone()).collect(),
                limiter,
                shared_failures,
                roots: Default::default(),
                #[cfg(feature = "s3")]
                s3_stores,
                siblings: Default::default(),
                hash_permits: hash_permits(),
                bandwidth,
                quotas: Default::default(),
                ops,
                passive_ports: Default::default(),
                sessions: Default::default(),
                shutdown,
                next_session: AtomicU64::new(1),
            }),
            shutdown_tx,
            listeners,
            metrics,
            admin,
            fingerprint,
        })
    }

    fn addrs(&self, implicit: bool) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter(|(_, c)| c.implicit == implicit)
            .filter_map(|(l, _)| l.local_addr().ok())
            .collect()
    }

    /// The explicit-FTPS addresses actually bound (port 0 resolved).
    pub fn explicit_addrs(&self) -> Vec<SocketAddr> {
        self.addrs(false)
    }

    /// The implicit-FTPS addresses actually bound.
    pub fn implicit_addrs(&self) -> Vec<SocketAddr> {
        self.addrs(true)
    }
    /// The admin API's address, if there is one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// The metrics listener's address, if there is one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// SHA-256 fingerprint of the served certificate.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// A handle to reload certificates and users while running.
    pub fn reloader(&self) -> Reloader {
        Reloader {
            shared: self.shared.clone(),
        }
    }

    /// Serves until `stop` completes, then stops accepting, tells idle sessions (421), gives
    /// running transfers `shutdown_grace` seconds, gives the hooks a few seconds to handle
    /// the events they hold, and returns.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        let hooks = self.shared.ops.start_hooks();
        let tracker = TaskTracker::new();
        let mut acceptors = Vec::new();
        for (listener, context) in self.listeners {
            acceptors.push(tokio::spawn(accept_loop(
                listener,
                context,
                self.shared.clone(),
                tracker.clone(),
            )));
        }
        if self.shared.config.tls.reload_check_seconds > 0 {
            acceptors.push(tokio::spawn(watch_certificate(self.shared.clone())));
        }
        // The metrics and admin listeners stay up while the server drains (readyz says
        // so), and stop when this returns.
        let stopped = tokio_util::sync::CancellationToken::new();
        let metrics = self.metrics.map(|listener| {
            let stopped = stopped.clone();
            tokio::spawn(crate::ops::http::serve_metrics(
                listener,
                self.shared.clone(),
                async move { stopped.cancelled().await },
            ))
        });
        let admin = self.admin.map(|(listener, token)| {
            let stopped = stopped.clone();
            tokio::spawn(crate::ops::admin::serve_admin(
                listener,
                self.shared.clone(),
                token,
                async move { stopped.cancelled().await },
            ))
        });
        if let Some(shared) = &self.shared.shared_failures {
            let every = Duration::from_secs(
                self.shared
                    .config
                    .database
                    .as_ref()
                    .map_or(2, |d| d.poll_seconds.max(1)),
            );
            tokio::spawn(shared.clone().follow(
                self.shared.limiter.clone(),
                every,
                stopped.clone(),
            ));
        }
        stop.await;
        info!("shutting down: no new connections");
        for a in &acceptors {
            a.abort();
        }
        let _ = self.shutdown_tx.send(true);
        tracker.close();
        let grace = Duration::from_secs(self.shared.config.timeouts.shutdown_grace);
        if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
            warn!(
                sessions = tracker.len(),
                "shutdown grace period over; closing remaining sessions"
            );
        } else {
            info!("all sessions closed");
        }
        // After the sessions, whose last events (uploads that finished while draining,
        // logouts) are delivered too.
        hooks.stop(crate::ops::hooks::SHUTDOWN_GRACE).await;
        stopped.cancel();
        for task in metrics.into_iter().chain(admin) {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

fn load_hosts(config: &Config) -> Result<HashMap<String, Arc<VirtualHost>>, StartError> {
    let mut hosts = HashMap::new();
    for (name, host) in &config.hosts {
        let cache = Duration::from_secs(config.limits.credential_cache_seconds);
        let users = UserStore::open_with_cache(&host.users_file, cache)?;
        let cert_paths = host.certificate.clone().zip(host.private_key.clone());
        let certificate = match &cert_paths {
            Some((cert, key)) => Some(Arc::new(CertResolver::new(tls::load_certified_key(
                cert, key,
            )?))),
            None => None,
        };
        let name = name.to_ascii_lowercase();
        hosts.insert(
            name.clone(),
            Arc::new(VirtualHost {
                name,
                users,
                certificate,
                cert_paths,
            }),
        );
    }
    Ok(hosts)
}

fn listener_context(
    config: &Config,
    entry: &ListenerEntry,
    implicit: bool,
    resolver: &Arc<dyn rustls::server::ResolvesServerCert>,
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> Result<ListenerContext, StartError> {
    let client_certificates = entry
        .client_certificates
        .unwrap_or(config.tls.client_certificates);
    let verifier = match &config.tls.client_ca {
        Some(ca) => tls::client_verifier(
            ca,
            &config.tls.client_crls,
            client_certificates,
            provider.clone(),
        )?,
        None => None,
    };
    let tls = TlsSetup::new(
        resolver.clone(),
        provider.clone(),
        config.tls.min_version,
        verifier,
    )?;
    Ok(ListenerContext {
        implicit,
        proxy_protocol: entry.proxy_protocol,
        tls,
        data_session_reuse: entry
            .data_session_reuse
            .unwrap_or(config.tls.data_session_reuse),
        active_enabled: entry.active.unwrap_or(config.active.enabled),
        client_certificates,
        provider: provider.clone(),
    })
}

/// Reloads the certificate when its files change (renewals by certbot and the like).
async fn watch_certificate(shared: Arc<Shared>) {
    let (cert, key, _) = shared.config.tls_paths();
    let mut paths = vec![cert, key];
    paths.extend(shared.config.tls.client_ca.iter().cloned());
    paths.extend(shared.config.tls.client_crls.iter().cloned());
    for host in shared.hosts.values() {
        if let Some((cert, key)) = &host.cert_paths {
            paths.extend([cert.clone(), key.clone()]);
        }
    }
    let stamps = || -> Vec<_> {
        paths
            .iter()
            .map(|p| {
                std::fs::metadata(p).ok().map(|m| {
                    use std::os::unix::fs::MetadataExt;
                    (m.mtime(), m.mtime_nsec(), m.len(), m.ino())
                })
            })
            .collect()
    };
    let mut last = stamps();
    let every = Duration::from_secs(shared.config.tls.reload_check_seconds);
    loop {
        tokio::time::sleep(every).await;
        let now = stamps();
        if now != last {
            last = now;
            reload_certificate(&shared);
        }
    }
}

fn reload_certificate(shared: &Shared) {
    let (cert, key, _) = shared.config.tls_paths();
    reload_one(&shared.resolver, &cert, &key, "");
    reload_client_verifiers(shared);
    for host in shared.hosts.values() {
        if let (Some(resolver), Some((cert, key))) = (&host.certificate, &host.cert_paths) {
            reload_one(resolver, cert, key, &host.name);
        }
    }
}

/// Re-reads the client CA bundle and CRLs (a new revocation takes effect without a restart).
fn reload_client_verifiers(shared: &Shared) {
    let Some(ca) = &shared.config.tls.client_ca else {
        return;
    };
    for listener in &shared.listeners {
        let rebuilt = tls::client_verifier(
            ca,
            &shared.config.tls.client_crls,
            listener.client_certificates,
            listener.provider.clone(),
        )
        .and_then(|verifier| listener.tls.set_client_verifier(verifier));
        match rebuilt {
            Ok(()) => {
                if listener.client_certificates != ClientCertMode::Off {
                    info!("client CA and CRLs reloaded");
                }
            }
            Err(e) => warn!(error = %e, "client CA/CRL reload failed; keeping the current ones"),
        }
    }
}

fn reload_one(resolver: &CertResolver, cert: &Path, key: &Path, host: &str) {
    match tls::load_certified_key(cert, key) {
        Ok(new) => {
            let fp = tls::fingerprint(&new.cert[0]);
            resolver.replace(new);
            info!(host, fingerprint = %fp, "certificate reloaded");
        }
        Err(e) => warn!(host, error = %e, "certificate reload failed; keeping the current one"),
    }
}

async fn accept_loop(
    listener: TcpListener,
    context: Arc<ListenerContext>,
    shared: Arc<Shared>,
    tracker: TaskTracker,
) {
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => {
                // Behind a balancer the rules apply to the client the header names, once
                // the session has read it.
                let checked = if context.proxy_protocol {
                    Ok(())
                } else {
                    shared.config.addresses.check(peer.ip())
                };
                if let Err(rule) = checked {
                    refuse_address(tcp, peer, rule, context.implicit);
                    continue;
                }
                let id = shared.next_session.fetch_add(1, Ordering::Relaxed);
                tracker.spawn(crate::session::run(
                    shared.clone(),
                    context.clone(),
                    tcp,
                    id,
                ));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Closes a connection from an address the server's `[addresses]` rules refuse, before
/// any other work: an explicit-FTPS client is told why (421); an implicit-FTPS client
/// could not read a plaintext reply, so it is only closed. Logged with the rule.
fn refuse_address(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    rule: crate::addresses::Refused,
    implicit: bool,
) {
    info!(peer = %peer, rule = %rule, implicit, "connection refused by the address rules");
    if !implicit {
        let reply = ftps_proto::Reply::new(
            ftps_proto::ReplyCode::SERVICE_NOT_AVAILABLE,
            "Service not available: connections from your address are not allowed.",
        );
        // A fresh socket's send buffer takes the line at once; never wait for a client.
        let _ = tcp.try_write(&reply.to_bytes());
    }
}

/// The S3 stores of the configuration, each checked, and cleared of what a killed server
/// left unfinished, in the background.
#[cfg(feature = "s3")]
fn open_s3_stores(
    config: &Config,
) -> Result<std::collections::BTreeMap<String, Arc<crate::storage::s3::S3Store>>, StartError> {
    let mut s3_stores = std::collections::BTreeMap::new();
    for (name, store) in &config.storage.s3 {
        let state = Some(config.state_dir.as_path());
        let store = crate::storage::s3::S3Store::new(name, store, state).map_err(|error| {
            StartError::Storage {
                name: name.clone(),
                error,
            }
        })?;
        let store = Arc::new(store);
        // In the background, and not fatal: the store may come back, and its users get
        // 451 meanwhile; nobody else waits for it. Then what a killed server left
        // unfinished there is aborted.
        let checked = store.clone();
        tokio::spawn(async move {
            match checked.check().await {
                Ok(()) => {
                    info!(store = %checked.name(), "S3 store answers");
                    checked.abort_unfinished_uploads().await;
                }
                Err(e) => {
                    warn!(store = %checked.name(), error = %e, "S3 store does not answer")
                }
            }
        });
        s3_stores.insert(name.clone(), store);
    }
    Ok(s3_stores)
}

/// Removes the temporary files of uploads that were in progress when the server last
/// stopped without finishing them (killed, or the machine lost power), from every user's
/// root. They never appear under a final name; this only frees their space and hides them.
fn remove_leftover_uploads(stores: &[UserStore], config: &Config) {
    // Only local trees: in an S3 store a root or folder is a key prefix.
    let local = |storage: Option<&str>| match storage {
        Some(name) => name == crate::folders::LOCAL_STORAGE,
        None => config.storage.default.is_none(),
    };
    let mut roots = std::collections::BTreeSet::new();
    for store in stores {
        let db = store.snapshot();
        for entry in db.names().filter_map(|name| db.get(name)) {
            if local(entry.storage.as_deref()) {
                roots.insert(db.resolve_root(entry));
            }
            for (_, folder) in entry.folders.iter() {
                if local(folder.storage.as_deref()) {
                    roots.insert(db.resolve_path(&folder.path));
                }
            }
        }
    }
    let anonymous = &config.anonymous;
    if let (true, Some(root)) = (anonymous.enabled, &anonymous.root) {
        if local(anonymous.storage.as_deref()) {
            roots.insert(root.clone());
        }
    }
    for path in roots {
        let removed =
            crate::storage::local::Root::open(&path).and_then(|r| r.remove_temp_uploads_blocking());
        match removed {
            Ok(0) => {}
            Ok(n) => {
                info!(root = %path.display(), removed = n, "removed temporary files of unfinished uploads")
            }
            Err(e) => {
                debug!(root = %path.display(), error = %e, "cannot look for unfinished uploads")
            }
        }
    }
}

/// Reloads the certificate and the users file of a running server.
#[derive(Clone)]
pub struct Reloader {
    shared: Arc<Shared>,
}

impl Reloader {
    /// The reloader of the server whose state is `shared`.
    pub(crate) fn of(shared: Arc<Shared>) -> Reloader {
        Reloader { shared }
    }

    /// Reloads both; a broken new certificate or users file is refused and the old one kept.
    pub fn reload(&self) {
        reload_certificate(&self.shared);
        let hosts = self
            .shared
            .hosts
            .values()
            .map(|h| (h.name.as_str(), &h.users));
        for (host, users) in std::iter::once(("", &self.shared.users)).chain(hosts) {
            match users.reload() {
                Ok(()) => info!(host, "users file reloaded"),
                Err(e) => {
                    warn!(host, error = %e, "users file reload failed; keeping the current one")
                }
            }
        }
    }

    /// Reopens the log files by their paths, after logrotate moved them (`SIGUSR1`).
    pub fn reopen_logs(&self) {
        self.shared.ops.reopen_logs();
        info!("log files reopened");
    }
}

/// The admin API's token: the contents of `[admin] token_file` (default
/// `<state_dir>/admin.token`), generated (32 random bytes, hex, mode 0600) if the file does
/// not exist.
fn admin_token(config: &Config) -> Result<String, StartError> {
    let path = config.admin_token_path();
    match std::fs::read_to_string(&path) {
        Ok(token) if token.trim().len() >= 16 => Ok(token.trim().to_string()),
        Ok(_) => Err(StartError::State {
            path,
            error: io::Error::new(
                io::ErrorKind::InvalidData,
                "the admin token must be at least 16 characters",
            ),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            use rand::RngCore;
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut bytes = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            // The state directory may not exist yet when nothing else was generated
            // (a given certificate, users in a database).
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                if !dir.exists() {
                    create_private_dir(dir)?;
                }
            }
            let written = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .and_then(|mut f| f.write_all(format!("{token}\n").as_bytes()));
            match written {
                Ok(()) => {
                    info!(path = %path.display(), "admin token generated");
                    Ok(token)
                }
                Err(error) => Err(StartError::State { path, error }),
            }
        }
        Err(error) => Err(StartError::State { path, error }),
    }
}
