//! Operations: what the server tells the people who run it. Prometheus metrics
//! ([`metrics`]) served with health checks by an HTTP listener of their own ([`http`]),
//! the transfer log in xferlog format ([`xferlog`]), and the commands and webhooks run on
//! events ([`hooks`]). docs/operations.md lists every metric, log field and event.
//!
//! Sessions report what happens through [`Operations`], which the server's shared state
//! holds; nothing here blocks a session: counters are atomic, and log lines and events are
//! queued.

pub mod admin;
pub mod events;
pub mod hooks;
pub mod http;
pub mod metrics;
pub mod sessions;
pub mod xferlog;

use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::config::Config;
use metrics::{Direction, Metrics, TransferResult};
use xferlog::{XferDirection, XferRecord, Xferlog};

/// The server's metrics and operational logs.
#[derive(Debug)]
pub struct Operations {
    /// The metrics.
    pub metrics: Metrics,
    xferlog: Option<Xferlog>,
    hooks: hooks::Hooks,
}

/// A finished transfer, as the metrics and the transfer log record it.
#[derive(Debug)]
pub struct FinishedTransfer<'a> {
    /// Which way.
    pub direction: Direction,
    /// How it ended.
    pub result: TransferResult,
    /// Bytes moved.
    pub bytes: u64,
    /// How long it took.
    pub elapsed: Duration,
    /// The client.
    pub client: IpAddr,
    /// The path as the client sees it.
    pub path: &'a str,
    /// `TYPE A`.
    pub ascii: bool,
    /// The user.
    pub user: &'a str,
    /// An anonymous login.
    pub anonymous: bool,
}

impl Operations {
    /// The metrics, the transfer log if `config` names one (opened now), and the hooks
    /// (their secrets read now; their workers start with [`Operations::start_hooks`]).
    pub fn new(config: &Config) -> io::Result<Operations> {
        let xferlog = match &config.log.xferlog {
            Some(path) => Some(Xferlog::open(path).map_err(|e| {
                io::Error::new(e.kind(), format!("transfer log {}: {e}", path.display()))
            })?),
            None => None,
        };
        Ok(Operations {
            metrics: Metrics::new(),
            xferlog,
            hooks: hooks::Hooks::new(&config.hooks)?,
        })
    }

    /// A transfer ended: counted, and logged (uploads and downloads, not listings).
    pub fn transfer(&self, t: &FinishedTransfer<'_>) {
        self.metrics
            .transfer(t.direction, t.result, t.bytes, t.elapsed);
        let direction = match t.direction {
            Direction::Upload => XferDirection::Incoming,
            Direction::Download => XferDirection::Outgoing,
            Direction::Listing => return,
        };
        self.log(XferRecord {
            time: SystemTime::now(),
            elapsed: t.elapsed,
            client: t.client,
            bytes: t.bytes,
            path: t.path.to_string(),
            ascii: t.ascii,
            direction,
            anonymous: t.anonymous,
            user: t.user.to_string(),
            complete: t.result == TransferResult::Ok,
        });
    }

    /// A file was deleted (`DELE`): an xferlog line with the `d` direction.
    pub fn deleted(&self, client: IpAddr, path: &str, user: &str, anonymous: bool) {
        self.log(XferRecord {
            time: SystemTime::now(),
            elapsed: Duration::ZERO,
            client,
            bytes: 0,
            path: path.to_string(),
            ascii: false,
            direction: XferDirection::Deleted,
            anonymous,
            user: user.to_string(),
            complete: true,
        });
    }

    fn log(&self, record: XferRecord) {
        if let Some(log) = &self.xferlog {
            if !log.write(&record) {
                self.metrics.event_dropped();
            }
        }
    }

    /// Whether an event of `kind` has anyone to go to: sessions build events only then,
    /// so that a server without hooks pays nothing for them.
    pub fn wants(&self, kind: events::EventKind) -> bool {
        self.hooks.wants(kind)
    }

    /// Something happened that hooks may act on: queued for the hooks that subscribe to
    /// it, never waiting (a full queue drops it, counted).
    pub fn event(&self, event: events::Event) {
        tracing::debug!(event = event.kind.name(), path = ?event.path, "event");
        self.hooks.dispatch(event, &self.metrics);
    }

    /// Starts the hooks' workers; events queued before are handled then.
    pub fn start_hooks(&self) -> hooks::Running {
        self.hooks.start(self.metrics.hook_runs())
    }

    /// Reopens the log files by their paths (after logrotate moved them).
    pub fn reopen_logs(&self) {
        if let Some(log) = &self.xferlog {
            log.reopen();
        }
    }
}

/// Counts the passive-mode listeners open now, for `ftpsd_passive_ports_in_use`.
#[derive(Debug, Default)]
pub struct PassivePorts(Arc<AtomicUsize>);

impl PassivePorts {
    /// Listeners open now.
    pub fn in_use(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// Counts one more listener until the guard is dropped with it.
    pub(crate) fn opened(&self) -> PortInUse {
        self.0.fetch_add(1, Ordering::Relaxed);
        PortInUse(self.0.clone())
    }
}

/// One passive listener counted in [`PassivePorts`].
#[derive(Debug)]
pub(crate) struct PortInUse(Arc<AtomicUsize>);

impl Drop for PortInUse {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
