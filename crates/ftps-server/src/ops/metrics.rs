//! Prometheus metrics (the `prometheus-client` crate), served in the OpenMetrics text format
//! by the metrics listener ([`super::http`]). The names, their labels and what each counts
//! are listed in docs/operations.md.

use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// How a login ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum LoginResult {
    /// Logged in.
    Ok,
    /// Wrong credentials.
    Failed,
    /// Right credentials, refused by policy (address rules, session limits, bans, storage).
    Refused,
}

/// How a user proved who it is.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum LoginMethod {
    /// `USER` + `PASS`.
    Password,
    /// A client certificate alone (`232` at `USER`).
    Certificate,
    /// `USER anonymous`.
    Anonymous,
}

/// Which way a transfer's bytes went.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Direction {
    /// `STOR`, `STOU`, `APPE`.
    Upload,
    /// `RETR`.
    Download,
    /// `LIST`, `NLST`, `MLSD`.
    Listing,
}

/// How a transfer ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum TransferResult {
    /// `226`.
    Ok,
    /// The data connection broke, stalled, or the storage failed.
    Failed,
    /// `ABOR`.
    Aborted,
    /// A limit refused it (file size, quota).
    Refused,
}

/// Which connection a TLS handshake was on.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Channel {
    /// The control connection (`AUTH TLS`, or implicit FTPS).
    Control,
    /// A data connection.
    Data,
}

/// Why a data connection was refused by its binding to the control session.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum BindingRefusal {
    /// It came from another address than the control connection.
    Address,
    /// Its TLS session did not resume the control connection's.
    TlsSession,
    /// It presented another client certificate than the control connection.
    Certificate,
}

/// What kind of storage failure a command met.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum StorageError {
    /// The store did not answer or failed (`451 Storage unavailable`).
    Unavailable,
    /// Any other local error (`451`).
    Local,
}

/// What kind of hook ran.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum HookKind {
    /// A `[[hooks.commands]]` program.
    Command,
    /// A `[[hooks.webhooks]]` delivery.
    Webhook,
}

/// How a hook's run for one event ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum HookResult {
    /// The command exited with 0; the webhook answered 2xx.
    Ok,
    /// The command failed or could not start; the webhook answered otherwise, or could not
    /// be reached, after its retries.
    Failed,
    /// The command was killed at its timeout; the webhook's last attempt timed out.
    Timeout,
}

/// Label values in Prometheus's usual lower-case spelling.
macro_rules! label_values {
    ($($name:ident { $($variant:ident => $text:literal),* })*) => {
        $(
            impl EncodeLabelValue for $name {
                fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                    use std::fmt::Write as _;
                    encoder.write_str(match self {
                        $($name::$variant => $text),*
                    })
                }
            }
        )*
    };
}

label_values! {
    LoginResult { Ok => "ok", Failed => "failed", Refused => "refused" }
    LoginMethod { Password => "password", Certificate => "certificate", Anonymous => "anonymous" }
    Direction { Upload => "upload", Download => "download", Listing => "listing" }
    TransferResult { Ok => "ok", Failed => "failed", Aborted => "aborted", Refused => "refused" }
    Channel { Control => "control", Data => "data" }
    BindingRefusal { Address => "address", TlsSession => "tls_session", Certificate => "certificate" }
    StorageError { Unavailable => "unavailable", Local => "local" }
    HookKind { Command => "command", Webhook => "webhook" }
    HookResult { Ok => "ok", Failed => "failed", Timeout => "timeout" }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    result: LoginResult,
    method: LoginMethod,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransferLabels {
    direction: Direction,
    result: TransferResult,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    direction: Direction,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabels {
    channel: Channel,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BindingLabels {
    reason: BindingRefusal,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StorageLabels {
    kind: StorageError,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HookLabels {
    kind: HookKind,
    result: HookResult,
}

/// The `ftpsd_hook_runs_total` counters, shared with the hook workers (which outlive any
/// borrow of [`Metrics`]).
#[derive(Clone, Debug, Default)]
pub struct HookRuns(Family<HookLabels, Counter>);

impl HookRuns {
    /// A hook's run for one event ended with `result`.
    pub fn record(&self, kind: HookKind, result: HookResult) {
        self.0.get_or_create(&HookLabels { kind, result }).inc();
    }
}

/// Transfer durations: 1 ms to about 4.6 hours, by factors of 4.
fn duration_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.001, 4.0, 12)
}

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    sessions_open: Gauge,
    sessions: Counter,
    logins: Family<LoginLabels, Counter>,
    transfers: Family<TransferLabels, Counter>,
    bytes: Family<DirectionLabels, Counter>,
    durations: Family<DirectionLabels, Histogram>,
    tls_failures: Family<ChannelLabels, Counter>,
    binding_refusals: Family<BindingLabels, Counter>,
    storage_errors: Family<StorageLabels, Counter>,
    bans_active: Gauge,
    passive_ports: Gauge,
    events_dropped: Counter,
    hook_runs: HookRuns,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every metric at zero, registered under the `ftpsd_` prefix.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("ftpsd");
        let metrics = Metrics {
            sessions_open: Gauge::default(),
            sessions: Counter::default(),
            logins: Family::default(),
            transfers: Family::default(),
            bytes: Family::default(),
            durations: Family::new_with_constructor(|| Histogram::new(duration_buckets())),
            tls_failures: Family::default(),
            binding_refusals: Family::default(),
            storage_errors: Family::default(),
            bans_active: Gauge::default(),
            passive_ports: Gauge::default(),
            events_dropped: Counter::default(),
            hook_runs: HookRuns::default(),
            registry: Registry::default(),
        };
        registry.register(
            "sessions_open",
            "Control connections open now",
            metrics.sessions_open.clone(),
        );
        registry.register(
            "sessions",
            "Control connections accepted",
            metrics.sessions.clone(),
        );
        registry.register(
            "logins",
            "Logins by result and method",
            metrics.logins.clone(),
        );
        registry.register(
            "transfers",
            "Transfers by direction and result",
            metrics.transfers.clone(),
        );
        registry.register(
            "transfer_bytes",
            "Bytes moved over data connections by direction (listings included)",
            metrics.bytes.clone(),
        );
        registry.register(
            "transfer_duration_seconds",
            "Durations of completed transfers by direction",
            metrics.durations.clone(),
        );
        registry.register(
            "tls_handshake_failures",
            "TLS handshakes that failed, by channel",
            metrics.tls_failures.clone(),
        );
        registry.register(
            "data_connections_refused",
            "Data connections refused by their binding to the control session, by reason",
            metrics.binding_refusals.clone(),
        );
        registry.register(
            "storage_errors",
            "Commands that failed in the storage, by kind",
            metrics.storage_errors.clone(),
        );
        registry.register(
            "bans_active",
            "Addresses and user names banned now after failed logins",
            metrics.bans_active.clone(),
        );
        registry.register(
            "passive_ports_in_use",
            "Passive-mode ports listening now",
            metrics.passive_ports.clone(),
        );
        registry.register(
            "events_dropped",
            "Events not delivered to hooks or webhooks because their queue was full",
            metrics.events_dropped.clone(),
        );
        registry.register(
            "hook_runs",
            "Hook commands and webhook deliveries by kind and result",
            metrics.hook_runs.0.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    /// A control connection was accepted; `session_ended` must follow.
    pub fn session_started(&self) {
        self.sessions.inc();
        self.sessions_open.inc();
    }

    /// A control connection ended.
    pub fn session_ended(&self) {
        self.sessions_open.dec();
    }

    /// A login ended with `result`.
    pub fn login(&self, result: LoginResult, method: LoginMethod) {
        self.logins
            .get_or_create(&LoginLabels { result, method })
            .inc();
    }

    /// A transfer ended: `bytes` moved in `elapsed`.
    pub fn transfer(
        &self,
        direction: Direction,
        result: TransferResult,
        bytes: u64,
        elapsed: Duration,
    ) {
        self.transfers
            .get_or_create(&TransferLabels { direction, result })
            .inc();
        let labels = DirectionLabels { direction };
        self.bytes.get_or_create(&labels).inc_by(bytes);
        if result == TransferResult::Ok {
            self.durations
                .get_or_create(&labels)
                .observe(elapsed.as_secs_f64());
        }
    }

    /// A TLS handshake failed.
    pub fn tls_failure(&self, channel: Channel) {
        self.tls_failures
            .get_or_create(&ChannelLabels { channel })
            .inc();
    }

    /// A data connection was refused by the session binding.
    pub fn binding_refusal(&self, reason: BindingRefusal) {
        self.binding_refusals
            .get_or_create(&BindingLabels { reason })
            .inc();
    }

    /// A command failed in the storage.
    pub fn storage_error(&self, kind: StorageError) {
        self.storage_errors
            .get_or_create(&StorageLabels { kind })
            .inc();
    }

    /// An event was dropped from a full hook or webhook queue.
    pub fn event_dropped(&self) {
        self.events_dropped.inc();
    }

    /// The hook counters, for the hook workers.
    pub fn hook_runs(&self) -> HookRuns {
        self.hook_runs.clone()
    }

    /// The metrics in the OpenMetrics text format, with the gauges that are read rather than
    /// kept (`bans`, `passive_ports`) set first.
    pub fn encode(&self, bans: usize, passive_ports: usize) -> String {
        self.bans_active
            .set(i64::try_from(bans).unwrap_or(i64::MAX));
        self.passive_ports
            .set(i64::try_from(passive_ports).unwrap_or(i64::MAX));
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_names_every_metric_with_its_labels() {
        let m = Metrics::new();
        m.session_started();
        m.login(LoginResult::Failed, LoginMethod::Password);
        m.transfer(
            Direction::Upload,
            TransferResult::Ok,
            1000,
            Duration::from_millis(20),
        );
        m.hook_runs().record(HookKind::Webhook, HookResult::Timeout);
        let text = m.encode(2, 1);
        for line in [
            "ftpsd_sessions_open 1",
            "ftpsd_sessions_total 1",
            "ftpsd_logins_total{result=\"failed\",method=\"password\"} 1",
            "ftpsd_transfers_total{direction=\"upload\",result=\"ok\"} 1",
            "ftpsd_transfer_bytes_total{direction=\"upload\"} 1000",
            "ftpsd_transfer_duration_seconds_count{direction=\"upload\"} 1",
            "ftpsd_bans_active 2",
            "ftpsd_passive_ports_in_use 1",
            "ftpsd_hook_runs_total{kind=\"webhook\",result=\"timeout\"} 1",
            "# EOF",
        ] {
            assert!(text.contains(line), "{line:?} missing from:\n{text}");
        }
    }
}
