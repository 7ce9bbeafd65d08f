//! `ftpsd check-config`: everything the server reads at start, read and checked without
//! binding a port or creating a file, so that a broken configuration is found before a
//! restart (the systemd unit runs it as `ExecStartPre=`) rather than by the restart.
//!
//! It checks the configuration file (syntax, unknown keys, values), every users file (the
//! server's and each virtual host's: names, password hashes, the S3 stores users and
//! folders name), each certificate and key (loadable, matching, valid now; a warning when
//! one expires within [`EXPIRY_WARNING_DAYS`]), the client CA and CRLs when client
//! certificates are in use, the S3 stores (built as the server builds them, but not
//! contacted) and the log files' directories. Listener addresses are checked by parsing
//! the configuration; none is bound. It prints a summary on standard output and each
//! warning and problem on standard error; any problem makes it fail.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use ftps_server::config::{ClientCertMode, Config};
use ftps_server::folders::LOCAL_STORAGE;
use ftps_server::tls;
use ftps_server::users::UserSource;
use x509_parser::prelude::{FromDer, X509Certificate};

/// A certificate that expires within this many days gets a warning.
pub const EXPIRY_WARNING_DAYS: i64 = 14;

const DAY: i64 = 24 * 60 * 60;

/// What the check found: summary lines, warnings and problems, in order.
#[derive(Default)]
struct Report {
    summary: Vec<String>,
    warnings: Vec<String>,
    problems: Vec<String>,
}

impl Report {
    fn info(&mut self, line: impl Into<String>) {
        self.summary.push(line.into());
    }

    fn warn(&mut self, line: impl Into<String>) {
        self.warnings.push(one_line(line.into()));
    }

    fn problem(&mut self, line: impl Into<String>) {
        self.problems.push(one_line(line.into()));
    }
}

/// One problem per line, whatever the message (TOML errors span two), so that each
/// journal line and each grep hit is a whole problem.
fn one_line(text: String) -> String {
    match text.contains('\n') {
        true => text.lines().map(str::trim).collect::<Vec<_>>().join("; "),
        false => text,
    }
}

/// Checks `config` (as the command line loaded it, or why it could not be loaded), prints
/// the report, and fails if there is any problem.
pub fn run(config_file: Option<&Path>, config: anyhow::Result<Config>) -> anyhow::Result<()> {
    let mut report = Report::default();
    match config_file {
        Some(path) => report.info(format!("configuration: {}", path.display())),
        None => report.info("configuration: built-in defaults (no --config)"),
    }
    match config {
        Ok(config) => check(&config, &mut report),
        Err(e) => report.problem(format!("{e:#}")),
    }
    for line in &report.summary {
        println!("{line}");
    }
    for line in &report.warnings {
        eprintln!("warning: {line}");
    }
    for line in &report.problems {
        eprintln!("error: {line}");
    }
    match report.problems.len() {
        0 => {
            println!("configuration OK");
            Ok(())
        }
        1 => anyhow::bail!("configuration check failed: 1 problem"),
        n => anyhow::bail!("configuration check failed: {n} problems"),
    }
}

fn check(config: &Config, report: &mut Report) {
    check_listeners(config, report);
    check_tls(config, report);
    check_users(config, report);
    check_storage(config, report);
    check_logs(config, report);
}

/// The addresses parsed with the configuration; here only listed, and checked for one
/// address configured twice (the second bind would fail; port 0, any free port, is never
/// the same twice).
fn check_listeners(config: &Config, report: &mut Report) {
    let mut seen: BTreeMap<SocketAddr, &str> = BTreeMap::new();
    let explicit = config.listen.iter().map(|l| ("explicit", l.address));
    let implicit = config
        .implicit_listen
        .iter()
        .map(|l| ("implicit", l.address));
    let metrics = config.metrics.listen.map(|a| ("metrics", a));
    for (kind, address) in explicit.chain(implicit).chain(metrics) {
        report.info(format!("listen {kind} {address}"));
        if address.port() == 0 {
            continue;
        }
        if let Some(other) = seen.insert(address, kind) {
            report.problem(format!(
                "{address} is configured twice ({other} and {kind}); the second cannot be bound"
            ));
        }
    }
    match &config.passive.ports {
        Some(range) => report.info(format!("passive ports {}-{}", range.start(), range.end())),
        None => report.info("passive ports: the system's ephemeral range"),
    }
    if let Some(address) = &config.passive.advertised_address {
        report.info(format!("passive advertised address {address}"));
    }
}

fn check_tls(config: &Config, report: &mut Report) {
    let provider = match tls::provider_with_suites(config.tls.cipher_suites.as_deref()) {
        Ok(provider) => Some(provider),
        Err(e) => {
            report.problem(e.to_string());
            None
        }
    };
    let (cert, key, generated) = config.tls_paths();
    if generated && !cert.exists() {
        report.info(format!(
            "certificate: none yet; a self-signed one will be generated as {} at start",
            cert.display()
        ));
    } else {
        check_certificate("", &cert, &key, report);
    }
    for (name, host) in &config.hosts {
        if let (Some(cert), Some(key)) = (&host.certificate, &host.private_key) {
            check_certificate(&format!("host {name}: "), cert, key, report);
        }
    }
    // The server reads the CA bundle and CRLs only for listeners that ask for client
    // certificates; so does the check.
    let in_use = std::iter::once(config.tls.client_certificates)
        .chain(
            config
                .listen
                .iter()
                .chain(&config.implicit_listen)
                .filter_map(|l| l.client_certificates),
        )
        .any(|mode| mode != ClientCertMode::Off);
    if let (Some(ca), true, Some(provider)) = (&config.tls.client_ca, in_use, provider) {
        match tls::client_verifier(
            ca,
            &config.tls.client_crls,
            ClientCertMode::Required,
            provider,
        ) {
            Ok(_) => report.info(format!(
                "client CA: {} ({} CRL files)",
                ca.display(),
                config.tls.client_crls.len()
            )),
            Err(e) => report.problem(e.to_string()),
        }
    }
}

/// Loads a certificate chain and its key as the server does, then checks that every
/// certificate of the chain is valid now and for the next days. `prefix` names the
/// virtual host, if the certificate is one's.
fn check_certificate(prefix: &str, cert: &Path, key: &Path, report: &mut Report) {
    let certified = match tls::load_certified_key(cert, key) {
        Ok(certified) => certified,
        Err(e) => {
            report.problem(format!("{prefix}{e}"));
            return;
        }
    };
    let now = unix_now();
    for (index, der) in certified.cert.iter().enumerate() {
        let parsed = match X509Certificate::from_der(der.as_ref()) {
            Ok((_, parsed)) => parsed,
            Err(e) => {
                report.problem(format!(
                    "{prefix}certificate file {}: certificate {} of the chain cannot be parsed: {e}",
                    cert.display(),
                    index + 1
                ));
                continue;
            }
        };
        let subject = parsed.subject().to_string();
        let validity = parsed.validity();
        let (not_before, not_after) = (
            validity.not_before.timestamp(),
            validity.not_after.timestamp(),
        );
        if index == 0 {
            report.info(format!(
                "{prefix}certificate: {} (subject {subject}, expires {}, sha256 {})",
                cert.display(),
                rfc3339(not_after),
                tls::fingerprint(der)
            ));
        }
        let which = match index {
            0 => format!("{prefix}certificate {} ({subject})", cert.display()),
            n => format!(
                "{prefix}certificate file {}: chain certificate {} ({subject})",
                cert.display(),
                n + 1
            ),
        };
        if now < not_before {
            report.problem(format!(
                "{which} is not valid before {}",
                rfc3339(not_before)
            ));
        } else if now > not_after {
            report.problem(format!("{which} expired on {}", rfc3339(not_after)));
        } else if not_after - now < EXPIRY_WARNING_DAYS * DAY {
            report.warn(format!(
                "{which} expires on {} (in {} days)",
                rfc3339(not_after),
                (not_after - now) / DAY
            ));
        }
    }
}

fn check_users(config: &Config, report: &mut Report) {
    let path = config.users_path();
    if config.database.is_some() {
        match UserSource::of(config) {
            Ok(source) => check_users_file("", &source, config, report),
            Err(e) => report.problem(e.to_string()),
        }
    } else if config.users_file.is_none() && !path.exists() {
        report.info(format!(
            "users: none yet; {} will be created with the user ftps at start",
            path.display()
        ));
    } else {
        check_users_file("", &UserSource::File(path), config, report);
    }
    for (name, host) in &config.hosts {
        let source = UserSource::File(host.users_file.clone());
        check_users_file(&format!("host {name}: "), &source, config, report);
    }
    if config.anonymous.enabled {
        if let Some(root) = &config.anonymous.root {
            if is_local(config.anonymous.storage.as_deref(), config) && !root.is_dir() {
                report.warn(format!(
                    "anonymous.root {} is not a directory: anonymous logins will be refused",
                    root.display()
                ));
            }
        }
    }
}

/// One users file or database: loaded as the server loads it (which checks names and
/// password hashes), then each user's and folder's store named in the configuration, and
/// each local root present. `prefix` names the virtual host, if the file is one's.
fn check_users_file(prefix: &str, source: &UserSource, config: &Config, report: &mut Report) {
    let path = source.location();
    let db = match source.load() {
        Ok(db) => db,
        Err(e) => {
            report.problem(format!("{prefix}{e}"));
            return;
        }
    };
    report.info(format!("{prefix}users: {} in {}", db.names().count(), path));
    for name in db.names() {
        let Some(entry) = db.get(name) else { continue };
        let mut trees = vec![("root".to_string(), entry.storage.as_deref(), &entry.root)];
        for (at, folder) in entry.folders.iter() {
            trees.push((
                format!("folder {at}"),
                folder.storage.as_deref(),
                &folder.path,
            ));
        }
        for (what, storage, tree) in trees {
            if let Some(store) = storage.filter(|s| *s != LOCAL_STORAGE) {
                if !config.storage.s3.contains_key(store) {
                    report.problem(format!(
                        "{prefix}users file {}: user {name}: {what}: storage {store:?} is not a [storage.s3.{store}] \
                         of the configuration",
                        path
                    ));
                }
            } else if is_local(storage, config) && !db.resolve_path(tree).is_dir() {
                report.warn(format!(
                    "{prefix}users file {}: user {name}: {what} {} is not a directory: the user's logins will be \
                     refused",
                    path,
                    db.resolve_path(tree).display()
                ));
            }
        }
    }
}

/// Whether a tree with this `storage` setting is a local directory.
fn is_local(storage: Option<&str>, config: &Config) -> bool {
    match storage.or(config.storage.default.as_deref()) {
        None => true,
        Some(name) => name == LOCAL_STORAGE,
    }
}

/// Each S3 store built as the server builds it (credentials files read), but not contacted:
/// the server starts without its stores and their users get 451 until they answer.
fn check_storage(config: &Config, report: &mut Report) {
    for (name, store) in &config.storage.s3 {
        match ftps_server::storage::s3::S3Store::new(name, store, None) {
            Ok(_) => report.info(format!(
                "storage.s3.{name}: bucket {} at {} (not contacted)",
                store.bucket, store.endpoint
            )),
            Err(e) => report.problem(format!("storage.s3.{name}: {e}")),
        }
    }
}

/// The log files: an existing one must open for appending (nothing is written), a new one
/// needs its directory.
fn check_logs(config: &Config, report: &mut Report) {
    for (key, file) in [
        ("log.file", &config.log.file),
        ("log.xferlog", &config.log.xferlog),
    ] {
        let Some(file) = file else { continue };
        if file.exists() {
            if let Err(e) = std::fs::OpenOptions::new().append(true).open(file) {
                report.problem(format!("{key} {}: cannot open: {e}", file.display()));
            }
        } else {
            match file.parent().filter(|d| !d.as_os_str().is_empty()) {
                Some(dir) if !dir.is_dir() => report.problem(format!(
                    "{key} {}: the directory {} does not exist",
                    file.display(),
                    dir.display()
                )),
                _ => {}
            }
        }
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A Unix time as RFC 3339, e.g. `2026-03-01T12:00:00Z`.
fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("@{unix}"))
}
