//! A pool of logged-in sessions for parallel transfers. Each session keeps its own TLS
//! session cache, so concurrent data connections never resume each other's sessions.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::connect::Connector;
use crate::error::{Error, Result};
use crate::session::FtpsClient;

/// Where to connect and as whom.
#[derive(Clone)]
pub struct Endpoint {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

struct Inner {
    connector: Connector,
    endpoint: Endpoint,
    idle: Mutex<Vec<FtpsClient>>,
    limit: Arc<Semaphore>,
}

/// Up to `size` sessions to one server, created on demand and reused.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("endpoint", &self.inner.endpoint)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool of at most `size` sessions (at least one).
    pub fn new(connector: Connector, endpoint: Endpoint, size: usize) -> Pool {
        Pool {
            inner: Arc::new(Inner {
                connector,
                endpoint,
                idle: Mutex::new(Vec::new()),
                limit: Arc::new(Semaphore::new(size.max(1))),
            }),
        }
    }

    /// The endpoint this pool connects to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    /// A session: an idle one, or a new one once fewer than `size` are in use.
    pub async fn get(&self) -> Result<PooledClient> {
        let permit = self
            .inner
            .limit
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Protocol("connection pool closed".into()))?;
        let idle = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop();
        let client = match idle {
            Some(c) => c,
            None => {
                let e = &self.inner.endpoint;
                self.inner
                    .connector
                    .connect_and_login(&e.host, e.port, &e.user, &e.password)
                    .await?
            }
        };
        Ok(PooledClient {
            client: Some(client),
            pool: self.inner.clone(),
            _permit: permit,
        })
    }

    /// Hands the pool a session made elsewhere (with the same connector and endpoint), to be
    /// lent like the ones it makes. It counts against `size` only while lent.
    pub fn add_idle(&self, client: FtpsClient) {
        if !client.is_poisoned() {
            self.inner
                .idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(client);
        }
    }

    /// Logs out every idle session.
    pub async fn close(&self) {
        let idle: Vec<FtpsClient> =
            std::mem::take(&mut *self.inner.idle.lock().unwrap_or_else(|e| e.into_inner()));
        for c in idle {
            let _ = c.quit().await;
        }
    }
}

/// A session borrowed from a [`Pool`]; returns to it when dropped, unless it was poisoned by
/// an unfinished transfer or [`PooledClient::discard`]ed.
pub struct PooledClient {
    client: Option<FtpsClient>,
    pool: Arc<Inner>,
    _permit: OwnedSemaphorePermit,
}

impl std::fmt::Debug for PooledClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledClient").finish_non_exhaustive()
    }
}

impl PooledClient {
    /// Drops the session instead of returning it to the pool (after an error, say).
    pub fn discard(mut self) {
        self.client = None;
    }
}

impl Deref for PooledClient {
    type Target = FtpsClient;
    fn deref(&self) -> &FtpsClient {
        // Present until drop or discard, which consume self.
        self.client.as_ref().expect("pooled client present")
    }
}

impl DerefMut for PooledClient {
    fn deref_mut(&mut self) -> &mut FtpsClient {
        self.client.as_mut().expect("pooled client present")
    }
}

impl Drop for PooledClient {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            if !c.is_poisoned() {
                self.pool
                    .idle
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(c);
            }
        }
    }
}
