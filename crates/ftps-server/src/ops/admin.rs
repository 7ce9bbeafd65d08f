//! The admin API: an HTTP listener of its own (off unless `[admin] listen` is set; meant
//! for loopback) that lists and ends sessions, bans and unbans addresses, manages the users
//! of the server's users file and reloads. Every request needs `Authorization: Bearer
//! TOKEN` with the token of `[admin] token_file`. `ftpsd ctl` is its command-line client;
//! docs/operations.md lists the endpoints.
//!
//! Every change is logged with what it was (never a password).

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tracing::info;

use crate::context::Shared;
use crate::limits::shared::FailureKey;
use crate::policy::Access;
use crate::users::{generate_password, UserDb, UserSource, UsersError};

/// What the handlers share.
#[derive(Clone)]
struct Admin {
    shared: Arc<Shared>,
    /// SHA-256 of the token: compared digest to digest, so that the comparison's time says
    /// nothing about the token.
    token_digest: [u8; 32],
}

/// Serves the admin API with `token` until `stop` completes.
pub async fn serve_admin(
    listener: TcpListener,
    shared: Arc<Shared>,
    token: String,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let admin = Admin {
        shared,
        token_digest: Sha256::digest(token.trim().as_bytes()).into(),
    };
    let app = Router::new()
        .route("/v1/sessions", get(list_sessions))
        .route("/v1/sessions/{id}", delete(end_session))
        .route("/v1/bans", get(list_bans))
        .route("/v1/bans/{address}", put(ban).delete(unban))
        .route("/v1/users", get(list_users).post(add_user))
        .route("/v1/users/{name}", delete(delete_user))
        .route("/v1/users/{name}/password", put(set_password))
        .route("/v1/reload", post(reload))
        .route_layer(middleware::from_fn_with_state(admin.clone(), authorize))
        .with_state(admin);
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::warn!(error = %e, "admin listener failed");
    }
}

/// `401` unless the request carries the token.
async fn authorize(State(admin): State<Admin>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|token| <[u8; 32]>::from(Sha256::digest(token.trim().as_bytes())));
    if given != Some(admin.token_digest) {
        info!(path = %request.uri().path(), "admin API: request without the right token refused");
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(Message::new(
                "a valid token is required (Authorization: Bearer TOKEN)",
            )),
        )
            .into_response();
    }
    next.run(request).await
}

/// A reply's message.
#[derive(Serialize)]
struct Message {
    message: String,
}

impl Message {
    fn new(text: impl Into<String>) -> Message {
        Message {
            message: text.into(),
        }
    }
}

fn error(status: StatusCode, text: impl Into<String>) -> Response {
    (status, Json(Message::new(text))).into_response()
}

async fn list_sessions(State(admin): State<Admin>) -> Response {
    Json(admin.shared.sessions.list()).into_response()
}

async fn end_session(State(admin): State<Admin>, Path(id): Path<u64>) -> Response {
    if admin.shared.sessions.end(id) {
        info!(session = id, "admin API: session ended");
        Json(Message::new(format!("session {id} ended"))).into_response()
    } else {
        error(StatusCode::NOT_FOUND, format!("no session {id}"))
    }
}

/// A ban as listed.
#[derive(Serialize)]
struct Ban {
    address: IpAddr,
    seconds_left: u64,
}

async fn list_bans(State(admin): State<Admin>) -> Response {
    let bans: Vec<Ban> = admin
        .shared
        .limiter
        .banned_ips()
        .into_iter()
        .map(|(address, seconds_left)| Ban {
            address,
            seconds_left,
        })
        .collect();
    Json(bans).into_response()
}

/// The body of `PUT /v1/bans/ADDRESS`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct BanRequest {
    /// How long; default `limits.ban_seconds`.
    seconds: Option<u64>,
}

/// `text` as an address, or the `400` that says it is not one.
fn parse_address(text: &str) -> Result<IpAddr, (StatusCode, String)> {
    text.parse().map_err(|_| {
        (
            StatusCode::BAD_REQUEST,
            format!("{text:?} is not an IP address"),
        )
    })
}

async fn ban(
    State(admin): State<Admin>,
    Path(address): Path<String>,
    body: Option<Json<BanRequest>>,
) -> Response {
    let address = match parse_address(&address) {
        Ok(a) => a,
        Err((status, text)) => return error(status, text),
    };
    let seconds = body
        .and_then(|Json(b)| b.seconds)
        .unwrap_or(admin.shared.config.limits.ban_seconds);
    if seconds == 0 {
        return error(StatusCode::BAD_REQUEST, "seconds must be at least 1");
    }
    let banned = admin
        .shared
        .limiter
        .ban_ip(address, Duration::from_secs(seconds));
    if let Some(shared) = &admin.shared.shared_failures {
        // Every node applies it at its next poll.
        if let Err(e) = shared
            .ban(&FailureKey::Ip(banned), Duration::from_secs(seconds))
            .await
        {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("banned on this node only: {e}"),
            );
        }
    }
    let ended = admin
        .shared
        .sessions
        .end_from(address, &admin.shared.limiter);
    info!(address = %banned, seconds, sessions_ended = ended, "admin API: address banned");
    Json(Message::new(format!(
        "{banned} banned for {seconds} s; {ended} session(s) ended"
    )))
    .into_response()
}

async fn unban(State(admin): State<Admin>, Path(address): Path<String>) -> Response {
    let address = match parse_address(&address) {
        Ok(a) => a,
        Err((status, text)) => return error(status, text),
    };
    let counted = admin.shared.limiter.counted_ip(address);
    if let Some(shared) = &admin.shared.shared_failures {
        // Lifted on every node at its next poll.
        if let Err(e) = shared.unban(&FailureKey::Ip(counted)).await {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot lift the fleet-wide ban: {e}"),
            );
        }
    }
    if admin.shared.limiter.unban_ip(address) {
        info!(address = %address, "admin API: ban lifted");
        Json(Message::new(format!("{address} unbanned"))).into_response()
    } else {
        error(StatusCode::NOT_FOUND, format!("{address} is not banned"))
    }
}

/// A user as listed (no password hash).
#[derive(Serialize)]
struct UserInfo {
    name: String,
    access: Access,
    root: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    storage: Option<String>,
    has_password: bool,
}

async fn list_users(State(admin): State<Admin>) -> Response {
    let db = admin.shared.users.snapshot();
    let users: Vec<UserInfo> = db
        .names()
        .filter_map(|name| {
            let entry = db.get(name)?;
            Some(UserInfo {
                name: name.to_string(),
                access: entry.access,
                root: entry.root.clone(),
                storage: entry.storage.clone(),
                has_password: entry.password.is_some(),
            })
        })
        .collect();
    Json(users).into_response()
}

/// The body of `POST /v1/users`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    name: String,
    /// A local directory (created if missing), or the key prefix in the default store.
    root: PathBuf,
    #[serde(default)]
    read_only: bool,
    /// Unset: one is generated and returned.
    password: Option<String>,
}

/// A password the server generated, shown once.
#[derive(Serialize)]
struct Generated {
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<String>,
}

/// Runs `change` on the users file and saves it, then reloads the server's view of it;
/// on a blocking thread, since hashing a password takes a while.
async fn change_users(
    admin: &Admin,
    change: impl FnOnce(&mut UserDb) -> Result<(), UsersError> + Send + 'static,
) -> Result<(), (StatusCode, String)> {
    let source = UserSource::of(&admin.shared.config)
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let result = tokio::task::spawn_blocking(move || {
        let mut db = source.load()?;
        change(&mut db)?;
        db.save()
    })
    .await
    .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    match result {
        Ok(()) => {
            if let Err(e) = admin.shared.users.refresh().await {
                return Err((StatusCode::INTERNAL_SERVER_ERROR, e.to_string()));
            }
            Ok(())
        }
        Err(e) => {
            let status = match e {
                UsersError::NotFound(_) => StatusCode::NOT_FOUND,
                UsersError::Exists(_) => StatusCode::CONFLICT,
                UsersError::InvalidName(_) | UsersError::EmptyPassword => StatusCode::BAD_REQUEST,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            Err((status, e.to_string()))
        }
    }
}

async fn add_user(State(admin): State<Admin>, Json(user): Json<NewUser>) -> Response {
    let generated = user.password.is_none().then(generate_password);
    let password = user
        .password
        .clone()
        .or(generated.clone())
        .unwrap_or_default();
    let access = if user.read_only {
        Access::ReadOnly
    } else {
        Access::ReadWrite
    };
    // A local root is made and kept absolute, as `ftpsd user add` does.
    let root = if admin.shared.config.storage.default.is_none() {
        if let Err(e) = std::fs::create_dir_all(&user.root) {
            return error(
                StatusCode::BAD_REQUEST,
                format!("cannot create the root directory: {e}"),
            );
        }
        match std::fs::canonicalize(&user.root) {
            Ok(root) => root,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("root: {e}")),
        }
    } else {
        user.root.clone()
    };
    let name = user.name.clone();
    let result = change_users(&admin, move |db| db.add(&name, root, access, &password)).await;
    match result {
        Ok(()) => {
            info!(user = %user.name, "admin API: user added");
            (
                StatusCode::CREATED,
                Json(Generated {
                    message: format!("user {} added", user.name),
                    password: generated,
                }),
            )
                .into_response()
        }
        Err((status, text)) => error(status, text),
    }
}

async fn delete_user(State(admin): State<Admin>, Path(name): Path<String>) -> Response {
    let who = name.clone();
    match change_users(&admin, move |db| db.remove(&who)).await {
        Ok(()) => {
            info!(user = %name, "admin API: user deleted (files kept)");
            Json(Message::new(format!("user {name} deleted; files kept"))).into_response()
        }
        Err((status, text)) => error(status, text),
    }
}

/// The body of `PUT /v1/users/NAME/password`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NewPassword {
    /// Unset: one is generated and returned.
    password: Option<String>,
}

async fn set_password(
    State(admin): State<Admin>,
    Path(name): Path<String>,
    body: Option<Json<NewPassword>>,
) -> Response {
    let given = body.and_then(|Json(b)| b.password);
    let generated = given.is_none().then(generate_password);
    let password = given.or(generated.clone()).unwrap_or_default();
    let who = name.clone();
    match change_users(&admin, move |db| db.set_password(&who, &password)).await {
        Ok(()) => {
            info!(user = %name, "admin API: password changed");
            Json(Generated {
                message: format!("password of {name} changed"),
                password: generated,
            })
            .into_response()
        }
        Err((status, text)) => error(status, text),
    }
}

async fn reload(State(admin): State<Admin>) -> Response {
    crate::server::Reloader::of(admin.shared.clone()).reload();
    info!("admin API: reload");
    Json(Message::new("certificates and users files reloaded")).into_response()
}
