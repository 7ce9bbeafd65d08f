//! Listeners, start-up and graceful shutdown.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::config::Config;
use crate::policy::Access;
use crate::tls::{self, TlsError, TlsSetup};
use crate::users::{self, UserDb, UserStore, UsersError};

/// Name of the user created by the embedded default.
pub const DEFAULT_USER: &str = "ftps";

/// What every session shares.
pub struct Shared {
    /// The configuration.
    pub config: Config,
    /// The users.
    pub users: UserStore,
    /// TLS state.
    pub tls: TlsSetup,
    /// Becomes true when the server shuts down.
    pub shutdown: watch::Receiver<bool>,
    next_session: AtomicU64,
}

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
    let default_users = config.users_file.is_none();
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
    explicit: Vec<TcpListener>,
    implicit: Vec<TcpListener>,
    fingerprint: String,
}

impl Server {
    /// Loads the certificate and users and opens the listeners.
    pub async fn bind(config: Config) -> Result<Server, StartError> {
        let (cert, key, _) = config.tls_paths();
        let certified = tls::load_certified_key(&cert, &key)?;
        let fingerprint = tls::fingerprint(&certified.cert[0]);
        let tls = TlsSetup::new(certified, config.tls.min_version)?;
        let users = UserStore::open(&config.users_path())?;
        let explicit = bind_all(&config.listen).await?;
        let implicit = bind_all(&config.implicit_listen).await?;
        let (shutdown_tx, shutdown) = watch::channel(false);
        Ok(Server {
            shared: Arc::new(Shared {
                config,
                users,
                tls,
                shutdown,
                next_session: AtomicU64::new(1),
            }),
            shutdown_tx,
            explicit,
            implicit,
            fingerprint,
        })
    }

    /// The explicit-FTPS addresses actually bound (port 0 resolved).
    pub fn explicit_addrs(&self) -> Vec<SocketAddr> {
        self.explicit
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// The implicit-FTPS addresses actually bound.
    pub fn implicit_addrs(&self) -> Vec<SocketAddr> {
        self.implicit
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
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
    /// running transfers `shutdown_grace` seconds, and returns.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        let tracker = TaskTracker::new();
        let mut acceptors = Vec::new();
        for (listener, implicit) in self
            .explicit
            .into_iter()
            .map(|l| (l, false))
            .chain(self.implicit.into_iter().map(|l| (l, true)))
        {
            acceptors.push(tokio::spawn(accept_loop(
                listener,
                implicit,
                self.shared.clone(),
                tracker.clone(),
            )));
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
    }
}

async fn bind_all(addrs: &[SocketAddr]) -> Result<Vec<TcpListener>, StartError> {
    let mut listeners = Vec::new();
    for &addr in addrs {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|error| StartError::Bind { addr, error })?;
        listeners.push(listener);
    }
    Ok(listeners)
}

async fn accept_loop(
    listener: TcpListener,
    implicit: bool,
    shared: Arc<Shared>,
    tracker: TaskTracker,
) {
    loop {
        match listener.accept().await {
            Ok((tcp, _)) => {
                let id = shared.next_session.fetch_add(1, Ordering::Relaxed);
                tracker.spawn(crate::session::run(shared.clone(), tcp, implicit, id));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
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
    /// Reloads both; a broken new certificate or users file is refused and the old one kept.
    pub fn reload(&self) {
        let (cert, key, _) = self.shared.config.tls_paths();
        match tls::load_certified_key(&cert, &key) {
            Ok(new) => {
                let fp = tls::fingerprint(&new.cert[0]);
                self.shared.tls.resolver().replace(new);
                info!(fingerprint = %fp, "certificate reloaded");
            }
            Err(e) => warn!(error = %e, "certificate reload failed; keeping the current one"),
        }
        match self.shared.users.reload() {
            Ok(()) => info!("users file reloaded"),
            Err(e) => warn!(error = %e, "users file reload failed; keeping the current one"),
        }
    }
}
