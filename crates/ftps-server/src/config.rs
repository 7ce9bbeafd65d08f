//! Server configuration: a TOML file where every key has a default and unknown keys are an
//! error. `docs/ftpsd.example.toml` documents every key; a test keeps it parseable.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::policy::SessionReuse;

/// The whole configuration of one `ftpsd` process.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where ftpsd keeps what it generates: the self-signed certificate, the users file and
    /// the default user's files. Relative paths in this file are relative to the file's
    /// directory.
    pub state_dir: PathBuf,
    /// Addresses for explicit FTPS (plain TCP until `AUTH TLS`).
    pub listen: Vec<ListenerEntry>,
    /// Addresses for implicit FTPS (TLS from the first byte).
    pub implicit_listen: Vec<ListenerEntry>,
    /// The users file; default `<state_dir>/users.toml`.
    pub users_file: Option<PathBuf>,
    /// The greeting after `220`.
    pub banner: String,
    /// TLS settings.
    pub tls: TlsConfig,
    /// Passive-mode data connections.
    pub passive: PassiveConfig,
    /// Active-mode data connections.
    pub active: ActiveConfig,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Limits.
    pub limits: Limits,
    /// Virtual hosts (RFC 7151 `HOST`, and TLS SNI), by DNS name.
    pub hosts: std::collections::BTreeMap<String, HostConfig>,
    /// Where users' files live besides local directories.
    pub storage: StorageConfig,
    /// Bandwidth limits for the whole server and defaults per session.
    pub bandwidth: crate::bandwidth::ServerBandwidth,
    /// Which client addresses may connect at all.
    pub addresses: crate::addresses::AddressRules,
    /// The quota of users whose entry sets none (`[quota]`, see [`crate::quota`]).
    pub quota: crate::quota::Quota,
    /// Anonymous logins (`[anonymous]`), off by default.
    pub anonymous: AnonymousConfig,
    /// The metrics listener (`[metrics]`), off by default.
    pub metrics: MetricsConfig,
    /// Operational logs (`[log]`).
    pub log: LogConfig,
    /// The admin API (`[admin]`), off by default.
    pub admin: AdminConfig,
    /// Load balancers that may send PROXY protocol headers (`[proxy_protocol]`).
    pub proxy_protocol: ProxyProtocolConfig,
    /// Commands and webhooks run when events happen (`[hooks]`), none by default.
    pub hooks: HooksConfig,
    /// Users and login failures in an SQL database (`[database]`, see
    /// [`crate::database`]) instead of the users file; none by default.
    pub database: Option<crate::database::DatabaseConfig>,
}

/// PROXY protocol (v1 and v2) from load balancers (docs/operations.md): the listeners
/// with `proxy_protocol = true`, and passive data connections if `passive`, take the
/// client's address from the header a trusted balancer sends first.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyProtocolConfig {
    /// The balancers' addresses or networks; a connection from anywhere else to a PROXY
    /// listener is closed.
    pub trusted: Vec<crate::addresses::AddressRule>,
    /// Passive data connections carry a header too (the balancer forwards the passive
    /// ports); the data connection's address check then uses the header's source.
    pub passive: bool,
    /// Seconds a connection may take to send its whole header.
    #[serde(default = "default_proxy_header_timeout")]
    pub header_timeout: u64,
    /// PASV announces the address the client connected to on the balancer (the header's
    /// destination) instead of this node's, for balancers that forward each node's passive
    /// range to it; `passive.advertised_address` still wins.
    pub announce_destination: bool,
}

fn default_proxy_header_timeout() -> u64 {
    5
}

impl Default for ProxyProtocolConfig {
    fn default() -> Self {
        ProxyProtocolConfig {
            trusted: Vec::new(),
            passive: false,
            header_timeout: default_proxy_header_timeout(),
            announce_destination: false,
        }
    }
}

/// The admin API: sessions, bans, users and reloads over HTTP with a token
/// (docs/operations.md).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Where to listen, e.g. `127.0.0.1:9122`; unset: no admin API.
    pub listen: Option<SocketAddr>,
    /// The file holding the token; default `<state_dir>/admin.token`, generated if missing.
    pub token_file: Option<PathBuf>,
}

/// Hooks: programs to run and URLs to call when events happen (docs/operations.md).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HooksConfig {
    /// `[[hooks.commands]]`: programs run with the event in their environment.
    pub commands: Vec<CommandHook>,
    /// `[[hooks.webhooks]]`: URLs the event is POSTed to as JSON.
    pub webhooks: Vec<WebhookHook>,
}

/// A program run for each event it subscribes to.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandHook {
    /// The events' names (`upload`, ...), or `"*"` for all.
    pub events: Vec<String>,
    /// The program (an absolute path) and its arguments; run without a shell.
    pub command: Vec<String>,
    /// Seconds a run may take before its process group is killed.
    #[serde(default = "default_command_timeout")]
    pub timeout: u64,
    /// Runs of this hook at once.
    #[serde(default = "default_max_running")]
    pub max_running: usize,
    /// Events waiting for a run at most; more are dropped and counted.
    #[serde(default = "default_hook_queue")]
    pub queue: usize,
}

/// A URL each event it subscribes to is POSTed to, one at a time, in order.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookHook {
    /// The events' names (`upload`, ...), or `"*"` for all.
    pub events: Vec<String>,
    /// An `http://` or `https://` URL.
    pub url: String,
    /// A file holding the HMAC-SHA256 key that signs each body (`X-Ftpsd-Signature`);
    /// read at start, trailing whitespace removed. Unset: bodies are not signed.
    pub secret_file: Option<PathBuf>,
    /// Seconds each attempt may take (connecting, sending, the answer).
    #[serde(default = "default_webhook_timeout")]
    pub timeout: u64,
    /// Attempts after the first for connection errors, timeouts, 5xx and 429.
    #[serde(default = "default_webhook_retries")]
    pub retries: u32,
    /// Events waiting for delivery at most; more are dropped and counted.
    #[serde(default = "default_hook_queue")]
    pub queue: usize,
}

fn default_command_timeout() -> u64 {
    60
}

fn default_max_running() -> usize {
    4
}

fn default_hook_queue() -> usize {
    1000
}

fn default_webhook_timeout() -> u64 {
    10
}

fn default_webhook_retries() -> u32 {
    5
}

/// The event kinds `names` subscribe to (`"*"`: all); an unknown name is an error.
pub fn parse_event_names(names: &[String]) -> Result<Vec<crate::ops::events::EventKind>, String> {
    use crate::ops::events::EventKind;
    if names.is_empty() {
        return Err("events is empty; name at least one event, or \"*\"".into());
    }
    let mut kinds = Vec::new();
    for name in names {
        if name == "*" {
            return Ok(EventKind::ALL.to_vec());
        }
        let kind = EventKind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = EventKind::ALL.iter().map(|k| k.name()).collect();
                format!(
                    "unknown event {name:?} (expected {}, or \"*\")",
                    known.join(", ")
                )
            })?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    Ok(kinds)
}

/// The metrics listener: Prometheus metrics and health checks over HTTP (docs/operations.md).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Where to listen, e.g. `127.0.0.1:9121`; unset: no metrics listener.
    pub listen: Option<SocketAddr>,
}

/// Operational logs (docs/operations.md).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// The format of the server log.
    pub format: LogFormat,
    /// The server log's file; unset: standard error. Reopened on `SIGUSR1`.
    pub file: Option<PathBuf>,
    /// The transfer log in xferlog format; unset: none. Reopened on `SIGUSR1`.
    pub xferlog: Option<PathBuf>,
}

/// The format of the server log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One line of text per event: time, level, the session's id and address, message,
    /// fields.
    #[default]
    Text,
    /// One JSON object per line, with the same fields.
    Json,
}

/// Anonymous logins: `USER anonymous` (or `ftp`) with any password, in a tree of its own,
/// downloads only unless `upload_dir` names a write-only folder in it. TLS is required as
/// for every login unless `tls.require_for_login` is off.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnonymousConfig {
    /// Whether anonymous logins are accepted.
    pub enabled: bool,
    /// The anonymous tree: a directory (relative paths: to this file's directory), or the
    /// key prefix in `storage`.
    pub root: Option<PathBuf>,
    /// The store of the tree: a `[storage.s3.NAME]`, or `"local"`; unset: `storage.default`,
    /// else a local directory.
    pub storage: Option<String>,
    /// A folder of the tree (e.g. `/incoming`) where anonymous users may upload new files,
    /// and do nothing else: no listing, no download, no overwrite.
    pub upload_dir: Option<String>,
    /// Anonymous sessions logged in at once; unset: `limits.max_sessions`.
    pub max_sessions: Option<u32>,
    /// A quota for the whole anonymous tree (the server's `[quota]` does not apply).
    pub quota: crate::quota::Quota,
}

impl AnonymousConfig {
    /// Whether `name` is an anonymous login name (`anonymous`, `ftp`, any case) and anonymous
    /// logins are on.
    pub fn is_anonymous(&self, name: &str) -> bool {
        self.enabled && (name.eq_ignore_ascii_case("anonymous") || name.eq_ignore_ascii_case("ftp"))
    }
}

/// A virtual host: its own users (and so roots) and, optionally, its own certificate.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// The host's users file.
    pub users_file: PathBuf,
    /// The host's PEM certificate chain; unset: the server's.
    pub certificate: Option<PathBuf>,
    /// The host's PEM private key.
    pub private_key: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            state_dir: PathBuf::from("ftpsd-state"),
            listen: vec![ListenerEntry::from(SocketAddr::from((
                [127, 0, 0, 1],
                2121,
            )))],
            implicit_listen: vec![ListenerEntry::from(SocketAddr::from((
                [127, 0, 0, 1],
                9990,
            )))],
            users_file: None,
            banner: "ftpsd ready".to_string(),
            tls: TlsConfig::default(),
            passive: PassiveConfig::default(),
            active: ActiveConfig::default(),
            timeouts: Timeouts::default(),
            limits: Limits::default(),
            hosts: Default::default(),
            storage: StorageConfig::default(),
            bandwidth: Default::default(),
            addresses: Default::default(),
            quota: Default::default(),
            anonymous: Default::default(),
            metrics: Default::default(),
            log: Default::default(),
            admin: Default::default(),
            proxy_protocol: Default::default(),
            hooks: Default::default(),
            database: None,
        }
    }
}

/// Storage backends besides local directories (see docs/storage.md).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// The store of users whose entry names none; unset: a local directory (the user's
    /// `root`).
    pub default: Option<String>,
    /// S3 buckets, by the name users refer to them with (`storage = "NAME"`).
    pub s3: std::collections::BTreeMap<String, S3StoreConfig>,
}

/// One S3 bucket (or a key prefix of one). A user of it has the objects under
/// `<prefix>/<the user's root>/`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3StoreConfig {
    /// The S3 endpoint, e.g. `https://s3.eu-west-1.amazonaws.com` or `http://127.0.0.1:3900`.
    pub endpoint: String,
    /// The signing region.
    #[serde(default = "default_s3_region")]
    pub region: String,
    /// The bucket.
    pub bucket: String,
    /// Key prefix of the whole store inside the bucket (empty: the bucket's root).
    #[serde(default)]
    pub prefix: String,
    /// Path-style requests (`endpoint/bucket/key`), which self-hosted stores need; false:
    /// virtual-host style (`bucket.endpoint/key`).
    #[serde(default = "yes")]
    pub path_style: bool,
    /// Where the access keys come from.
    #[serde(default)]
    pub credentials: S3Credentials,
    /// Bytes per part of a multipart upload (at least 5 MiB, S3's minimum).
    #[serde(default = "default_part_size")]
    pub part_size: u64,
    /// Parts of one upload sent at once; an upload holds at most
    /// `part_size * (parts_in_flight + 1)` bytes in memory (docs/storage.md measures it).
    #[serde(default = "default_parts_in_flight")]
    pub parts_in_flight: usize,
    /// The most objects a directory rename moves (each is a copy and a delete); a larger
    /// directory is refused with 550.
    #[serde(default = "default_max_rename_objects")]
    pub max_rename_objects: usize,
    /// Limit for each request to the store, and for each read or write of its body.
    #[serde(default = "default_s3_timeout")]
    pub request_timeout_seconds: u64,
    /// Retries of a request that failed in a way that makes repeating it safe.
    #[serde(default = "default_s3_retries")]
    pub retries: usize,
}

/// The smallest part S3 accepts in a multipart upload (but for the last), 5 MiB.
pub const S3_MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

/// Where an S3 store's access keys come from. Never logged, never in a reply.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum S3Credentials {
    /// The AWS chain: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`),
    /// then the shared files (`~/.aws/credentials`, `AWS_PROFILE`), then the instance's role.
    #[default]
    Environment,
    /// `{ file = "PATH" }`: an AWS-style credentials file, `aws_access_key_id` and
    /// `aws_secret_access_key` under `[default]` (a relative path: to the configuration
    /// file's directory).
    File(PathBuf),
    /// The role of the machine or container only (instance metadata, ECS, web identity):
    /// never keys from the environment or shared files.
    Instance,
}

fn default_s3_region() -> String {
    "us-east-1".to_string()
}

fn yes() -> bool {
    true
}

fn default_part_size() -> u64 {
    8 * 1024 * 1024
}

fn default_parts_in_flight() -> usize {
    1
}

fn default_max_rename_objects() -> usize {
    1000
}

fn default_s3_timeout() -> u64 {
    30
}

fn default_s3_retries() -> usize {
    3
}

/// One listening address, optionally with policies of its own: either `"ADDR:PORT"` or
/// `{ address = "ADDR:PORT", data_session_reuse = "optional", active = false,
/// client_certificates = "required" }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerEntry {
    /// Where to listen.
    pub address: SocketAddr,
    /// Overrides `tls.data_session_reuse` for connections to this address.
    pub data_session_reuse: Option<SessionReuse>,
    /// Overrides `active.enabled`.
    pub active: Option<bool>,
    /// Overrides `tls.client_certificates`.
    pub client_certificates: Option<ClientCertMode>,
    /// Connections start with a PROXY protocol header (v1 or v2) from a balancer of
    /// `proxy_protocol.trusted`; anything else is closed.
    pub proxy_protocol: bool,
}

impl From<SocketAddr> for ListenerEntry {
    fn from(address: SocketAddr) -> Self {
        ListenerEntry {
            address,
            data_session_reuse: None,
            active: None,
            client_certificates: None,
            proxy_protocol: false,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListenerTable {
    address: SocketAddr,
    data_session_reuse: Option<SessionReuse>,
    active: Option<bool>,
    client_certificates: Option<ClientCertMode>,
    #[serde(default)]
    proxy_protocol: bool,
}

impl<'de> Deserialize<'de> for ListenerEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> serde::de::Visitor<'de> for EntryVisitor {
            type Value = ListenerEntry;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an address like \"0.0.0.0:21\" or a table with `address`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ListenerEntry, E> {
                v.parse::<SocketAddr>()
                    .map(ListenerEntry::from)
                    .map_err(|_| E::custom(format!("invalid socket address {v:?}")))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<ListenerEntry, A::Error> {
                let t =
                    ListenerTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(ListenerEntry {
                    address: t.address,
                    data_session_reuse: t.data_session_reuse,
                    active: t.active,
                    client_certificates: t.client_certificates,
                    proxy_protocol: t.proxy_protocol,
                })
            }
        }
        d.deserialize_any(EntryVisitor)
    }
}

/// Whether TLS clients must, may or cannot present a certificate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientCertMode {
    /// Certificates are not requested.
    #[default]
    Off,
    /// Requested; verified against `client_ca` when presented.
    Optional,
    /// Required and verified against `client_ca`: the handshake fails without one.
    Required,
}

/// The lowest TLS version accepted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3.
    #[default]
    #[serde(rename = "1.2")]
    Tls12,
    /// TLS 1.3 only.
    #[serde(rename = "1.3")]
    Tls13,
}

/// TLS settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain; default `<state_dir>/cert.pem`, generated (self-signed) if
    /// missing.
    pub certificate: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1); default `<state_dir>/key.pem`.
    pub private_key: Option<PathBuf>,
    /// Lowest TLS version: "1.2" or "1.3".
    pub min_version: TlsVersion,
    /// Refuse `USER` until the control connection is protected (530).
    pub require_for_login: bool,
    /// Refuse transfers over an unprotected data connection (`PROT C`: 521).
    pub require_for_data: bool,
    /// Whether data connections must resume the control connection's TLS session.
    pub data_session_reuse: SessionReuse,
    /// Cipher suites to offer, by IANA name (e.g. "TLS13_AES_256_GCM_SHA384"); unset: all
    /// of the provider's, which are AEAD only.
    pub cipher_suites: Option<Vec<String>>,
    /// Client certificates: "off", "optional" or "required".
    pub client_certificates: ClientCertMode,
    /// PEM bundle of the CAs that client certificates must chain to.
    pub client_ca: Option<PathBuf>,
    /// PEM certificate revocation lists checked for client certificates.
    pub client_crls: Vec<PathBuf>,
    /// Allow `CCC` (drop TLS on the control connection after login). Off: 534.
    pub allow_ccc: bool,
    /// Allow `AUTH TLS` after a plaintext login (only possible when `require_for_login` is
    /// off). Off: 534.
    pub allow_auth_after_login: bool,
    /// How often to check the certificate and key files for changes, in seconds (0: never;
    /// SIGHUP always reloads).
    pub reload_check_seconds: u64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            certificate: None,
            private_key: None,
            min_version: TlsVersion::Tls12,
            require_for_login: true,
            require_for_data: true,
            data_session_reuse: SessionReuse::Required,
            cipher_suites: None,
            client_certificates: ClientCertMode::Off,
            client_ca: None,
            client_crls: Vec::new(),
            allow_ccc: false,
            allow_auth_after_login: false,
            reload_check_seconds: 10,
        }
    }
}

/// Passive-mode settings.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PassiveConfig {
    /// Port range such as "50000-50100"; unset means a random port from the system's
    /// ephemeral range (`net.ipv4.ip_local_port_range`).
    #[serde(deserialize_with = "de_port_range")]
    pub ports: Option<RangeInclusive<u16>>,
    /// Address announced in 227 replies, for servers behind NAT: an IPv4 address or a DNS
    /// name (resolved when used). Unset: the address the client connected to.
    pub advertised_address: Option<String>,
}

/// Active-mode settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActiveConfig {
    /// Whether `PORT` and `EPRT` are accepted. Targets must be the client's own address and a
    /// port >= 1024 (no FTP bounce, RFC 2577).
    pub enabled: bool,
    /// For users with `allow_fxp`: whether a third-party target may be a loopback, private,
    /// link-local or other non-public address. Off, FXP cannot reach the server's own
    /// machine or its internal network (the server would be a request-forgery tool).
    pub fxp_to_internal_addresses: bool,
}

impl Default for ActiveConfig {
    fn default() -> Self {
        ActiveConfig {
            enabled: true,
            fxp_to_internal_addresses: false,
        }
    }
}

/// Timeouts, in seconds.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// A control connection with no command for this long is closed (421).
    pub idle: u64,
    /// A connection not logged in after this long is closed (421).
    pub login: u64,
    /// The TLS handshake on the control or a data connection.
    pub tls_handshake: u64,
    /// Waiting for the client to open a data connection (425).
    pub data_connect: u64,
    /// A transfer that moves no byte for this long is aborted (426).
    pub transfer_stall: u64,
    /// A reply the client does not take within this long ends the session (a client that
    /// never reads its control connection cannot hold it forever).
    pub reply_write: u64,
    /// On SIGTERM/SIGINT: how long running transfers may take to finish.
    pub shutdown_grace: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            idle: 600,
            login: 60,
            tls_handshake: 15,
            data_connect: 30,
            transfer_stall: 120,
            reply_write: 60,
            shutdown_grace: 30,
        }
    }
}

impl Timeouts {
    /// Converts a field to a `Duration`.
    pub fn secs(value: u64) -> Duration {
        Duration::from_secs(value)
    }
}

/// Limits.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Delay before answering a failed login, in milliseconds; the same for unknown users and
    /// wrong passwords.
    pub login_failure_delay_ms: u64,
    /// Over-long or malformed lines tolerated before the connection is closed.
    pub max_bad_lines: u32,
    /// Connections open at once, in all (421 beyond).
    pub max_sessions: u32,
    /// Connections open at once from one IP address (for IPv6: one network of
    /// `ipv6_prefix_length` bits, since one client usually holds a whole /64).
    pub max_sessions_per_ip: u32,
    /// How many leading bits of an IPv6 address make "one address" for the per-IP session
    /// limit, failed-login counts and bans (IPv4 addresses count one by one).
    pub ipv6_prefix_length: u8,
    /// Sessions logged in at once as one user.
    pub max_sessions_per_user: u32,
    /// Failed logins from one IP within `failure_window_seconds` before it is banned.
    pub max_login_failures_per_ip: u32,
    /// Failed logins for one user name within the window before the name is banned.
    pub max_login_failures_per_user: u32,
    /// How long failures are remembered, in seconds.
    pub failure_window_seconds: u64,
    /// How long a ban lasts, in seconds (421 and close meanwhile).
    pub ban_seconds: u64,
    /// How long a successful password check is remembered so the same user with the same
    /// password skips argon2, in seconds (0: never). Stored hashes stay argon2id.
    pub credential_cache_seconds: u64,
    /// The largest file, in bytes, an upload may make (552 beyond; 0: no limit). A user's
    /// `limits.max_file_size` in the users file replaces it. Bytes, or "10M", "2G".
    #[serde(deserialize_with = "crate::limits::size::deserialize_size")]
    pub max_file_size: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            login_failure_delay_ms: 1000,
            max_bad_lines: 3,
            max_sessions: 2000,
            max_sessions_per_ip: 50,
            ipv6_prefix_length: 64,
            max_sessions_per_user: 50,
            max_login_failures_per_ip: 10,
            max_login_failures_per_user: 20,
            failure_window_seconds: 900,
            ban_seconds: 900,
            credential_cache_seconds: 600,
            max_file_size: 0,
        }
    }
}

/// A configuration problem, described in one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("invalid configuration file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Reads a configuration file. Relative paths in it are made relative to its directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Config::parse(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.make_relative_to(base);
        Ok(config)
    }

    /// Parses configuration text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.message().to_string()
                + &e.span()
                    .map(|s| format!(" (at line {})", line_of(text, s.start)))
                    .unwrap_or_default(),
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.listen.is_empty() && self.implicit_listen.is_empty() {
            return Err(ConfigError::Invalid(
                "no listen or implicit_listen address".into(),
            ));
        }
        let needs_ca = self.tls.client_certificates != ClientCertMode::Off
            || self.listen.iter().chain(&self.implicit_listen).any(|l| {
                l.client_certificates
                    .is_some_and(|m| m != ClientCertMode::Off)
            });
        if needs_ca && self.tls.client_ca.is_none() {
            return Err(ConfigError::Invalid(
                "client certificates are enabled but tls.client_ca is not set".into(),
            ));
        }
        for (name, host) in &self.hosts {
            if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(ConfigError::Invalid(format!("invalid host name {name:?}")));
            }
            if host.certificate.is_some() != host.private_key.is_some() {
                return Err(ConfigError::Invalid(format!(
                    "host {name:?}: set both certificate and private_key, or neither"
                )));
            }
        }
        if self.limits.ipv6_prefix_length > 128 {
            return Err(ConfigError::Invalid(
                "limits.ipv6_prefix_length must be 0 to 128".into(),
            ));
        }
        if let Some(name) = &self.storage.default {
            if !self.storage.s3.contains_key(name) {
                return Err(ConfigError::Invalid(format!(
                    "storage.default names {name:?}, which is not a [storage.s3.{name}] store"
                )));
            }
        }
        for (name, store) in &self.storage.s3 {
            if store.bucket.is_empty() || store.endpoint.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "storage.s3.{name}: endpoint and bucket must be set"
                )));
            }
            if store.part_size < S3_MIN_PART_SIZE {
                return Err(ConfigError::Invalid(format!(
                    "storage.s3.{name}: part_size must be at least 5 MiB (5242880)"
                )));
            }
            if store.parts_in_flight == 0 {
                return Err(ConfigError::Invalid(format!(
                    "storage.s3.{name}: parts_in_flight must be at least 1"
                )));
            }
        }
        if self.anonymous.enabled && self.anonymous.root.is_none() {
            return Err(ConfigError::Invalid(
                "anonymous.enabled needs anonymous.root, the tree anonymous users see".into(),
            ));
        }
        if let Some(dir) = &self.anonymous.upload_dir {
            let normal = crate::permissions::normalise_virtual(dir, "anonymous.upload_dir")
                .map_err(ConfigError::Invalid)?;
            if normal == "/" {
                return Err(ConfigError::Invalid(
                    "anonymous.upload_dir must be a folder below the root, e.g. \"/incoming\""
                        .into(),
                ));
            }
        }
        if self.anonymous.max_sessions == Some(0) {
            return Err(ConfigError::Invalid(
                "anonymous.max_sessions must be at least 1 (set anonymous.enabled = false instead)"
                    .into(),
            ));
        }
        for name in [&self.anonymous.storage]
            .into_iter()
            .flatten()
            .filter(|n| n.as_str() != crate::folders::LOCAL_STORAGE)
        {
            if !self.storage.s3.contains_key(name) {
                return Err(ConfigError::Invalid(format!(
                    "anonymous.storage names {name:?}, which is not a [storage.s3.{name}] store"
                )));
            }
        }
        self.hooks.validate()?;
        if self.banner.chars().any(char::is_control) {
            return Err(ConfigError::Invalid(
                "banner must be one line without control characters".into(),
            ));
        }
        Ok(())
    }

    fn make_relative_to(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.state_dir);
        for p in [
            self.users_file.as_mut(),
            self.tls.certificate.as_mut(),
            self.tls.private_key.as_mut(),
            self.tls.client_ca.as_mut(),
            self.log.xferlog.as_mut(),
            self.log.file.as_mut(),
            self.admin.token_file.as_mut(),
            self.database
                .as_mut()
                .and_then(|d| d.password_file.as_mut()),
        ]
        .into_iter()
        .flatten()
        {
            fix(p);
        }
        self.tls.client_crls.iter_mut().for_each(fix);
        // In an S3 store the anonymous root is a key prefix, not a path.
        let anonymous_local = match &self.anonymous.storage {
            Some(name) => name == crate::folders::LOCAL_STORAGE,
            None => self.storage.default.is_none(),
        };
        if anonymous_local {
            self.anonymous.root.iter_mut().for_each(fix);
        }
        for host in self.hosts.values_mut() {
            fix(&mut host.users_file);
            host.certificate.iter_mut().for_each(fix);
            host.private_key.iter_mut().for_each(fix);
        }
        for store in self.storage.s3.values_mut() {
            if let S3Credentials::File(path) = &mut store.credentials {
                fix(path);
            }
        }
        for hook in &mut self.hooks.webhooks {
            hook.secret_file.iter_mut().for_each(fix);
        }
    }

    /// The admin API's token file in effect.
    pub fn admin_token_path(&self) -> PathBuf {
        self.admin
            .token_file
            .clone()
            .unwrap_or_else(|| self.state_dir.join("admin.token"))
    }

    /// The users file in effect.
    pub fn users_path(&self) -> PathBuf {
        self.users_file
            .clone()
            .unwrap_or_else(|| self.state_dir.join("users.toml"))
    }

    /// The certificate and key files in effect, and whether they are the generated defaults.
    pub fn tls_paths(&self) -> (PathBuf, PathBuf, bool) {
        match (&self.tls.certificate, &self.tls.private_key) {
            (Some(c), Some(k)) => (c.clone(), k.clone(), false),
            (Some(c), None) => (c.clone(), c.clone(), false),
            _ => (
                self.state_dir.join("cert.pem"),
                self.state_dir.join("key.pem"),
                true,
            ),
        }
    }
}

impl HooksConfig {
    /// Checks every hook; an error names the hook as `hooks.commands[INDEX]` or
    /// `hooks.webhooks[INDEX]` (counted from 0, in the file's order).
    fn validate(&self) -> Result<(), ConfigError> {
        for (i, hook) in self.commands.iter().enumerate() {
            let name = format!("hooks.commands[{i}]");
            let invalid = |what: String| ConfigError::Invalid(format!("{name}: {what}"));
            parse_event_names(&hook.events).map_err(invalid)?;
            let Some(program) = hook.command.first() else {
                return Err(invalid("command is empty".into()));
            };
            if !Path::new(program).is_absolute() {
                return Err(invalid(format!(
                    "command {program:?} must be an absolute path (commands run without a \
                     shell or a search path)"
                )));
            }
            check_hook_numbers(hook.timeout, hook.queue).map_err(invalid)?;
            if hook.max_running == 0 {
                return Err(invalid("max_running must be at least 1".into()));
            }
        }
        for (i, hook) in self.webhooks.iter().enumerate() {
            let name = format!("hooks.webhooks[{i}]");
            let invalid = |what: String| ConfigError::Invalid(format!("{name}: {what}"));
            parse_event_names(&hook.events).map_err(invalid)?;
            let url = reqwest::Url::parse(&hook.url)
                .map_err(|e| invalid(format!("invalid url {:?}: {e}", hook.url)))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(invalid(format!(
                    "url {:?} must start with http:// or https://",
                    hook.url
                )));
            }
            check_hook_numbers(hook.timeout, hook.queue).map_err(invalid)?;
        }
        Ok(())
    }
}

fn check_hook_numbers(timeout: u64, queue: usize) -> Result<(), String> {
    if timeout == 0 {
        return Err("timeout must be at least 1 second".into());
    }
    if queue == 0 {
        return Err("queue must be at least 1".into());
    }
    Ok(())
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Parses "50000-50100" (or a single port).
pub fn parse_port_range(text: &str) -> Result<RangeInclusive<u16>, String> {
    let (lo, hi) = text.split_once('-').unwrap_or((text, text));
    let lo: u16 = lo
        .trim()
        .parse()
        .map_err(|_| format!("bad port range {text:?}"))?;
    let hi: u16 = hi
        .trim()
        .parse()
        .map_err(|_| format!("bad port range {text:?}"))?;
    if lo == 0 || lo > hi {
        return Err(format!(
            "bad port range {text:?}: expected LOW-HIGH with 1 <= LOW <= HIGH"
        ));
    }
    Ok(lo..=hi)
}

fn de_port_range<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RangeInclusive<u16>>, D::Error> {
    let text: Option<String> = Option::deserialize(d)?;
    text.map(|t| parse_port_range(&t).map_err(serde::de::Error::custom))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_secure() {
        let c = Config::parse("").unwrap();
        assert!(c.tls.require_for_login && c.tls.require_for_data);
        assert_eq!(c.tls.data_session_reuse, SessionReuse::Required);
        assert_eq!(c.tls.min_version, TlsVersion::Tls12);
    }

    #[test]
    fn unknown_keys_are_errors_with_line() {
        let e = Config::parse("banner = \"x\"\n[tls]\nrequire_tls = false\n").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("require_tls") && msg.contains("line 3"),
            "{msg}"
        );
    }

    #[test]
    fn listeners_as_strings_or_tables() {
        let c = Config::parse(
            "listen = [\"127.0.0.1:21\", { address = \"[::1]:2121\", data_session_reuse = \"optional\", active = false }]\n",
        )
        .unwrap();
        assert_eq!(
            c.listen[0],
            ListenerEntry::from("127.0.0.1:21".parse::<SocketAddr>().unwrap())
        );
        assert_eq!(c.listen[1].data_session_reuse, Some(SessionReuse::Optional));
        assert_eq!(c.listen[1].active, Some(false));
        let e =
            Config::parse("listen = [{ address = \"127.0.0.1:21\", bogus = 1 }]\n").unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        let e = Config::parse("listen = [\"nonsense\"]\n").unwrap_err();
        assert!(e.to_string().contains("nonsense"), "{e}");
        let e = Config::parse("[tls]\nclient_certificates = \"required\"\n").unwrap_err();
        assert!(e.to_string().contains("client_ca"), "{e}");
    }

    #[test]
    fn port_ranges() {
        assert_eq!(parse_port_range("50000-50010").unwrap(), 50000..=50010);
        assert!(parse_port_range("10-5").is_err());
        assert!(parse_port_range("0-5").is_err());
        let c = Config::parse("[passive]\nports = \"40000-40009\"\n").unwrap();
        assert_eq!(c.passive.ports, Some(40000..=40009));
        assert!(Config::parse("[passive]\nports = \"x\"\n").is_err());
    }

    #[test]
    fn example_file_documents_every_default() {
        let text = include_str!("../../../docs/ftpsd.example.toml");
        let c = Config::parse(text).unwrap();
        let d = Config::default();
        assert_eq!(c.listen, d.listen);
        assert_eq!(c.implicit_listen, d.implicit_listen);
        assert_eq!(c.timeouts.idle, d.timeouts.idle);
        assert_eq!(c.timeouts.shutdown_grace, d.timeouts.shutdown_grace);
        assert_eq!(
            c.limits.login_failure_delay_ms,
            d.limits.login_failure_delay_ms
        );
        assert_eq!(c.tls.data_session_reuse, d.tls.data_session_reuse);
        assert_eq!(c.limits.max_file_size, d.limits.max_file_size);
        assert_eq!(c.addresses, d.addresses);
    }

    #[test]
    fn address_rules_and_the_file_size_limit() {
        let c = Config::parse(
            "[addresses]\nallow = [\"192.0.2.0/24\", \"::1\"]\ndeny = [\"192.0.2.9\"]\n\
             [limits]\nmax_file_size = \"2G\"\n",
        )
        .unwrap();
        assert!(c.addresses.check("192.0.2.1".parse().unwrap()).is_ok());
        assert!(c.addresses.check("192.0.2.9".parse().unwrap()).is_err());
        assert!(c.addresses.check("198.51.100.1".parse().unwrap()).is_err());
        assert_eq!(c.limits.max_file_size, 2 << 30);
        let c = Config::parse("[limits]\nmax_file_size = 4096\n").unwrap();
        assert_eq!(c.limits.max_file_size, 4096);
        for (text, message) in [
            ("[addresses]\ndeny = [\"10.0.0.300\"]\n", "\"10.0.0.300\""),
            (
                "[addresses]\nallow = [\"10.1.2.3/8\"]\n",
                "did you mean 10.0.0.0/8",
            ),
            ("[addresses]\nblock = []\n", "block"),
            ("[limits]\nmax_file_size = \"big\"\n", "\"big\""),
        ] {
            let e = Config::parse(text).unwrap_err().to_string();
            assert!(e.contains(message), "{text:?}: {e}");
        }
    }

    #[test]
    fn s3_stores_and_their_checks() {
        let c = Config::parse(
            "[storage]\ndefault = \"a\"\n[storage.s3.a]\nendpoint = \"http://127.0.0.1:3900\"\n\
             bucket = \"b\"\ncredentials = { file = \"keys\" }\n\
             [storage.s3.b]\nendpoint = \"https://s3.example\"\nbucket = \"c\"\n\
             credentials = \"instance\"\npath_style = false\n",
        )
        .unwrap();
        let a = &c.storage.s3["a"];
        assert_eq!(a.credentials, S3Credentials::File("keys".into()));
        assert!(a.path_style);
        assert_eq!((a.part_size, a.parts_in_flight), (8 << 20, 1));
        assert_eq!(a.region, "us-east-1");
        let b = &c.storage.s3["b"];
        assert_eq!(b.credentials, S3Credentials::Instance);
        assert!(!b.path_style);
        assert_eq!(
            Config::default().storage.s3.len(),
            0,
            "no object storage by default"
        );
        let refused = [
            (
                "[storage]\ndefault = \"nowhere\"\n",
                "not a [storage.s3.nowhere]",
            ),
            (
                "[storage.s3.a]\nendpoint = \"http://x\"\nbucket = \"b\"\npart_size = 1024\n",
                "part_size",
            ),
            (
                "[storage.s3.a]\nendpoint = \"http://x\"\nbucket = \"\"\n",
                "bucket must be set",
            ),
            (
                "[storage.s3.a]\nendpoint = \"http://x\"\nbucket = \"b\"\nsecret = \"s\"\n",
                "unknown field",
            ),
        ];
        for (text, message) in refused {
            let e = Config::parse(text).unwrap_err().to_string();
            assert!(e.contains(message), "{text:?}: {e}");
        }
    }

    #[test]
    fn hooks_with_their_defaults_and_the_errors_that_name_them() {
        use crate::ops::events::EventKind;
        let c = Config::parse(
            "[[hooks.commands]]\nevents = [\"upload\", \"delete\"]\n\
             command = [\"/usr/local/bin/scan\", \"--quiet\"]\n\
             [[hooks.webhooks]]\nevents = [\"*\"]\nurl = \"https://example.com/e\"\n\
             secret_file = \"webhook.secret\"\n",
        )
        .unwrap();
        let command = &c.hooks.commands[0];
        assert_eq!(
            (command.timeout, command.max_running, command.queue),
            (60, 4, 1000)
        );
        assert_eq!(
            parse_event_names(&command.events).unwrap(),
            [EventKind::Upload, EventKind::Delete]
        );
        let webhook = &c.hooks.webhooks[0];
        assert_eq!(
            (webhook.timeout, webhook.retries, webhook.queue),
            (10, 5, 1000)
        );
        assert_eq!(parse_event_names(&webhook.events).unwrap(), EventKind::ALL);
        assert!(Config::default().hooks.commands.is_empty());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ftpsd.toml");
        std::fs::write(
            &file,
            "[[hooks.webhooks]]\nevents = [\"login\"]\nurl = \"http://127.0.0.1:1/\"\n\
             secret_file = \"webhook.secret\"\n",
        )
        .unwrap();
        let loaded = Config::load(&file).unwrap();
        assert_eq!(
            loaded.hooks.webhooks[0].secret_file.as_deref(),
            Some(dir.path().join("webhook.secret").as_path())
        );

        let command = |extra: &str| {
            format!("[[hooks.commands]]\nevents = [\"*\"]\ncommand = [\"/bin/true\"]\n{extra}")
        };
        let webhook = |extra: &str| {
            format!("[[hooks.webhooks]]\nevents = [\"*\"]\nurl = \"http://h/\"\n{extra}")
        };
        let refused = [
            (
                "[[hooks.commands]]\nevents = [\"uploads\"]\ncommand = [\"/bin/true\"]\n".into(),
                "hooks.commands[0]: unknown event \"uploads\"",
            ),
            (
                command("") + "[[hooks.commands]]\nevents = [\"upload\"]\ncommand = [\"true\"]\n",
                "hooks.commands[1]: command \"true\" must be an absolute path",
            ),
            (command("timeout = 0\n"), "hooks.commands[0]: timeout"),
            (
                command("max_running = 0\n"),
                "hooks.commands[0]: max_running",
            ),
            (command("queue = 0\n"), "hooks.commands[0]: queue"),
            (command("shell = true\n"), "unknown field `shell`"),
            (
                "[[hooks.webhooks]]\nevents = [\"*\"]\nurl = \"file:///etc/passwd\"\n".into(),
                "hooks.webhooks[0]: url \"file:///etc/passwd\" must start with http",
            ),
            (
                "[[hooks.webhooks]]\nevents = [\"*\"]\nurl = \"not a url\"\n".into(),
                "hooks.webhooks[0]: invalid url",
            ),
            (webhook("queue = 0\n"), "hooks.webhooks[0]: queue"),
            (
                webhook("") + "[[hooks.webhooks]]\nevents = []\nurl = \"http://h/\"\n",
                "hooks.webhooks[1]: events is empty",
            ),
        ];
        for (text, message) in refused {
            let e = Config::parse(&text).unwrap_err().to_string();
            assert!(e.contains(message), "{text:?}: {e}");
        }
    }
}
