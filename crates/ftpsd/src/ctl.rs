//! `ftpsd ctl`: the command-line client of the admin API (`[admin]`, docs/operations.md).
//! It finds the API and its token in the same configuration as the server, so on the
//! server's machine `ftpsd ctl sessions` needs no other option.

use std::io::BufRead;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand};
use ftps_server::Config;
use serde_json::{json, Value};

/// Options of `ftpsd ctl`.
#[derive(Args)]
pub struct CtlArgs {
    /// The admin API's base URL; default: http:// and `[admin] listen` of the configuration.
    #[arg(long)]
    url: Option<String>,
    /// The token file; default: `[admin] token_file` of the configuration.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Print the API's JSON answer instead of a table.
    #[arg(long)]
    json: bool,
    #[command(subcommand)]
    command: CtlCmd,
}

/// What `ftpsd ctl` asks the running server.
#[derive(Subcommand)]
enum CtlCmd {
    /// List the sessions: user, address, TLS, the transfer in progress.
    Sessions,
    /// End a session (the client gets 421; a transfer in progress is stopped).
    End {
        /// The session's number (first column of `sessions`).
        id: u64,
    },
    /// List the banned addresses.
    Bans,
    /// Ban an address (and end its sessions).
    Ban {
        /// The address.
        address: IpAddr,
        /// For how long; default: `limits.ban_seconds`.
        #[arg(long)]
        seconds: Option<u64>,
    },
    /// Lift the ban of an address.
    Unban {
        /// The address.
        address: IpAddr,
    },
    /// List the users of the server's users file.
    Users,
    /// Add a user (a password is generated and printed unless --password-stdin).
    UserAdd {
        /// User name.
        name: String,
        /// Root directory (created if missing), or the key prefix in the default store.
        #[arg(long)]
        root: PathBuf,
        /// Read-only access.
        #[arg(long)]
        read_only: bool,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Delete a user (its files are kept; its sessions end at once).
    UserDel {
        /// User name.
        name: String,
    },
    /// Set a user's password (generated and printed unless --password-stdin).
    Passwd {
        /// User name.
        name: String,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Reload the certificates and the users files.
    Reload,
}

/// Runs `ftpsd ctl` against the server `config` describes.
pub fn run(config: &Config, args: CtlArgs) -> anyhow::Result<()> {
    let base = match &args.url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => {
            let addr = config.admin.listen.ok_or_else(|| {
                anyhow!("the configuration has no [admin] listen address (or give --url)")
            })?;
            format!("http://{}", reachable(addr))
        }
    };
    let token_path = args
        .token_file
        .clone()
        .unwrap_or_else(|| config.admin_token_path());
    let token = std::fs::read_to_string(&token_path)
        .with_context(|| format!("cannot read the admin token {}", token_path.display()))?;
    let client = Client {
        base,
        token: token.trim().to_string(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(command(&client, args.command, args.json))
}

/// `addr` as a client reaches it: a wildcard listener through loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

struct Client {
    base: String,
    token: String,
}

impl Client {
    /// Sends a request; the JSON answer of a success, or an error with the API's message.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut request = reqwest::Client::new()
            .request(method, &url)
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the admin API at {}", self.base))?;
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let message = value["message"].as_str().unwrap_or("no message");
            bail!("{status}: {message}");
        }
        Ok(value)
    }
}

fn read_password(from_stdin: bool) -> anyhow::Result<Option<String>> {
    if !from_stdin {
        return Ok(None);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        bail!("empty password on stdin");
    }
    Ok(Some(password))
}

async fn command(client: &Client, cmd: CtlCmd, json_out: bool) -> anyhow::Result<()> {
    use reqwest::Method;
    let answer = match cmd {
        CtlCmd::Sessions => {
            let sessions = client.send(Method::GET, "/v1/sessions", None).await?;
            if !json_out {
                print_sessions(&sessions);
                return Ok(());
            }
            sessions
        }
        CtlCmd::End { id } => {
            client
                .send(Method::DELETE, &format!("/v1/sessions/{id}"), None)
                .await?
        }
        CtlCmd::Bans => {
            let bans = client.send(Method::GET, "/v1/bans", None).await?;
            if !json_out {
                for ban in bans.as_array().into_iter().flatten() {
                    println!(
                        "{}\t{} s left",
                        ban["address"].as_str().unwrap_or("?"),
                        ban["seconds_left"]
                    );
                }
                return Ok(());
            }
            bans
        }
        CtlCmd::Ban { address, seconds } => {
            client
                .send(
                    Method::PUT,
                    &format!("/v1/bans/{address}"),
                    Some(json!({ "seconds": seconds })),
                )
                .await?
        }
        CtlCmd::Unban { address } => {
            client
                .send(Method::DELETE, &format!("/v1/bans/{address}"), None)
                .await?
        }
        CtlCmd::Users => {
            let users = client.send(Method::GET, "/v1/users", None).await?;
            if !json_out {
                for user in users.as_array().into_iter().flatten() {
                    println!(
                        "{}\t{}\t{}",
                        user["name"].as_str().unwrap_or("?"),
                        user["access"].as_str().unwrap_or("?"),
                        user["root"].as_str().unwrap_or("?")
                    );
                }
                return Ok(());
            }
            users
        }
        CtlCmd::UserAdd {
            name,
            root,
            read_only,
            password_stdin,
        } => {
            let password = read_password(password_stdin)?;
            let mut body = json!({ "name": name, "root": root, "read_only": read_only });
            if let Some(password) = password {
                body["password"] = json!(password);
            }
            client.send(Method::POST, "/v1/users", Some(body)).await?
        }
        CtlCmd::UserDel { name } => {
            client
                .send(Method::DELETE, &format!("/v1/users/{name}"), None)
                .await?
        }
        CtlCmd::Passwd {
            name,
            password_stdin,
        } => {
            let body = read_password(password_stdin)?.map(|p| json!({ "password": p }));
            client
                .send(
                    Method::PUT,
                    &format!("/v1/users/{name}/password"),
                    body.or(Some(json!({}))),
                )
                .await?
        }
        CtlCmd::Reload => client.send(Method::POST, "/v1/reload", None).await?,
    };
    if json_out {
        println!("{answer}");
    } else {
        if let Some(message) = answer["message"].as_str() {
            eprintln!("{message}");
        }
        if let Some(password) = answer["password"].as_str() {
            println!("password: {password}");
        }
    }
    Ok(())
}

/// One line per session: number, user, address, TLS, transfer and its bytes.
fn print_sessions(sessions: &Value) {
    println!("ID\tUSER\tCLIENT\tTLS\tTRANSFER");
    for s in sessions.as_array().into_iter().flatten() {
        let transfer = match &s["transfer"] {
            Value::Null => "-".to_string(),
            t => format!(
                "{} {} {} bytes",
                t["command"].as_str().unwrap_or("?"),
                t["path"].as_str().unwrap_or("?"),
                t["bytes"]
            ),
        };
        println!(
            "{}\t{}\t{}\t{}\t{}",
            s["id"],
            s["user"].as_str().unwrap_or("-"),
            s["client"].as_str().unwrap_or("?"),
            s["tls"].as_str().unwrap_or("-"),
            transfer
        );
    }
}
