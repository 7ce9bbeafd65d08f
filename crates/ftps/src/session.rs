//! From the global options and a URL to a logged-in client: trust, TLS settings, user name
//! and password.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Context;
use ftps_client::{ClientCert, Config, Connector, DataMode, FtpsClient, TlsVersions, Trust};

use crate::args::Opts;
use crate::exit::usage;
use crate::target::{self, parse_url, Target};

/// Everything needed to open sessions to one server.
pub struct Session {
    pub connector: Connector,
    pub target: Target,
    pub user: String,
    /// `None` until asked for at the terminal, which happens once the server's certificate
    /// has been accepted (no point typing a password for a server we refuse).
    pub password: Option<String>,
}

impl Session {
    /// Checks the options and the URL and finds the credentials; connects to nothing yet.
    pub fn resolve(opts: &Opts, url: &str) -> anyhow::Result<Session> {
        let target = parse_url(url, opts.explicit).map_err(|e| usage(format!("{e:#}")))?;
        let trust = match (&opts.pin_sha256, &opts.ca_file, opts.insecure) {
            (Some(_), Some(_), _) | (Some(_), _, true) | (_, Some(_), true) => {
                return Err(usage(
                    "choose one of --pin-sha256, --ca-file and --insecure",
                ))
            }
            (Some(fp), None, false) => {
                Trust::Fingerprint(Trust::parse_fingerprint(fp).map_err(|e| usage(e.to_string()))?)
            }
            (None, Some(ca), false) => Trust::CaFile(ca.clone()),
            (None, None, true) => {
                eprintln!(
                    "ftps: warning: --insecure: the server certificate is NOT verified; anyone on \
                     the path can read and change this session"
                );
                Trust::Insecure
            }
            (None, None, false) => Trust::System,
        };
        let config = Config {
            tls_mode: target.mode,
            data_mode: if opts.active {
                DataMode::Active
            } else {
                DataMode::Passive
            },
            trust,
            client_cert: match (&opts.client_cert, &opts.client_key) {
                (Some(c), Some(k)) => Some(ClientCert {
                    cert_file: c.clone(),
                    key_file: k.clone(),
                }),
                _ => None,
            },
            tls_versions: if opts.tls12 {
                TlsVersions::Tls12Only
            } else {
                TlsVersions::Tls12And13
            },
            connect_timeout: Duration::from_secs(opts.timeout.max(1)),
            io_timeout: Duration::from_secs(opts.timeout.max(1)),
            rate_limit: opts.transfer.limit_rate.map(ftps_client::RateLimit::new),
            ..Config::default()
        };
        let (user, password) = credentials(opts, &target)?;
        let connector = Connector::new(config)?;
        Ok(Session {
            connector,
            target,
            user,
            password,
        })
    }

    /// Connects and logs in, asking for the password at the terminal the first time if no
    /// other source gave one.
    pub async fn connect(&mut self) -> anyhow::Result<FtpsClient> {
        let mut client = self
            .connector
            .connect(&self.target.host, self.target.port)
            .await?;
        let password = match &self.password {
            Some(p) => p.clone(),
            None => {
                let prompt = format!("Password for {}@{}: ", self.user, self.target.host);
                let p = tokio::task::spawn_blocking(move || rpassword::prompt_password(prompt))
                    .await
                    .context("reading the password")?
                    .context("reading the password")?;
                self.password = Some(p.clone());
                p
            }
        };
        client.login(&self.user, &password).await?;
        Ok(client)
    }
}

impl Session {
    /// A pool of up to `size` sessions like the ones [`Session::connect`] makes; call it
    /// after a first `connect`, which settles the password.
    pub fn pool(&self, size: usize) -> ftps_client::Pool {
        let endpoint = ftps_client::Endpoint {
            host: self.target.host.clone(),
            port: self.target.port,
            user: self.user.clone(),
            password: self.password.clone().unwrap_or_default(),
        };
        ftps_client::Pool::new(self.connector.clone(), endpoint, size)
    }
}

/// The retry policy the options ask for.
pub fn retry_policy(opts: &Opts) -> ftps_client::RetryPolicy {
    ftps_client::RetryPolicy::with_retries(opts.transfer.retries)
}

/// The user name and, unless it is to be asked for at the terminal, the password, in the
/// order of precedence the README documents.
fn credentials(opts: &Opts, target: &Target) -> anyhow::Result<(String, Option<String>)> {
    let netrc = if opts.no_netrc {
        None
    } else {
        let path = opts.netrc_file.clone().or_else(target::default_netrc);
        path.and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|text| target::netrc_lookup(&text, &target.host, target.user.as_deref()))
    };
    let user = target
        .user
        .clone()
        .or_else(|| netrc.as_ref().and_then(|n| n.login.clone()))
        .ok_or_else(|| {
            usage("no user name: put it in the URL (ftps://user@host/...) or in ~/.netrc")
        })?;
    if let Some(p) = &target.password {
        if !opts.quiet {
            eprintln!(
                "ftps: warning: a password in the URL is visible to other users of this machine; \
                 prefer --password-stdin, FTPS_PASSWORD or ~/.netrc"
            );
        }
        return Ok((user, Some(p.clone())));
    }
    if opts.password_stdin {
        return Ok((user, Some(target::password_from_stdin()?)));
    }
    if let Ok(p) = std::env::var("FTPS_PASSWORD") {
        return Ok((user, Some(p)));
    }
    if let Some(p) = netrc.and_then(|n| n.password) {
        return Ok((user, Some(p)));
    }
    if std::io::stdin().is_terminal() {
        return Ok((user, None));
    }
    Err(usage(
        "no password: use --password-stdin, FTPS_PASSWORD, ~/.netrc, or run on a terminal to be asked",
    ))
}
