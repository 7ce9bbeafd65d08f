//! The metrics listener: `GET /metrics` (OpenMetrics text), `GET /healthz` (the process
//! answers) and `GET /readyz` (`503` once the server drains on SIGTERM, so that a load
//! balancer stops sending new clients). Off unless `[metrics] listen` is set; meant for
//! loopback or a management network, since it needs no credentials and says nothing
//! secret: counts, no user names, no addresses.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use crate::context::Shared;

/// The content type of the OpenMetrics text format.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves the metrics listener until `stop` completes.
pub async fn serve_metrics(
    listener: TcpListener,
    shared: Arc<Shared>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(shared);
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::warn!(error = %e, "metrics listener failed");
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let text = shared
        .ops
        .metrics
        .encode(shared.limiter.active_bans(), shared.passive_ports.in_use());
    ([(header::CONTENT_TYPE, OPENMETRICS)], text)
}

async fn ready(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    if *shared.shutdown.borrow() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n")
    } else {
        (StatusCode::OK, "ready\n")
    }
}
