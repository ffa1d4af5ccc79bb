//! The operations HTTP port of every service: `GET /metrics` in the Prometheus text format and
//! `GET /healthz`, which returns 200 when every readiness check passes and 503 otherwise,
//! with a short JSON body naming each check.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

/// Named readiness checks of one service, shared by cloning. A service is ready when it has
/// at least one check and all of them pass.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    checks: Arc<Mutex<BTreeMap<&'static str, bool>>>,
}

impl Readiness {
    /// Creates readiness with the given checks, all failing until set.
    pub fn new(checks: &[&'static str]) -> Self {
        let readiness = Self::default();
        for check in checks {
            readiness.set(check, false);
        }
        readiness
    }

    /// Records whether `check` passes.
    pub fn set(&self, check: &'static str, passing: bool) {
        self.lock().insert(check, passing);
    }

    pub fn is_ready(&self) -> bool {
        let checks = self.lock();
        !checks.is_empty() && checks.values().all(|passing| *passing)
    }

    /// Returns the state of every check.
    pub fn checks(&self) -> BTreeMap<&'static str, bool> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, bool>> {
        // The map contains plain flags, so a panic elsewhere cannot leave it half-written.
        self.checks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Refreshes gauges that are cheaper to compute at scrape time than on every change.
pub type Refresh = Arc<dyn Fn() + Send + Sync>;

/// Serves `/metrics` and `/healthz` on `listener` until `shutdown` completes.
///
/// # Errors
///
/// Fails when the HTTP server fails.
pub async fn serve(
    listener: TcpListener,
    readiness: Readiness,
    refresh: Option<Refresh>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_router(listener, router(readiness, refresh), shutdown).await
}

/// Builds the router of `/metrics` and `/healthz`, for a service that merges routes of its
/// own into the same port.
pub fn router(readiness: Readiness, refresh: Option<Refresh>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let refresh = refresh.clone();
                async move {
                    if let Some(refresh) = refresh {
                        refresh();
                    }
                    (
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        crate::metrics::global().encode(),
                    )
                }
            }),
        )
        .route("/healthz", get(move || healthz(readiness.clone())))
}

/// Serves `app` on `listener` until `shutdown` completes.
///
/// # Errors
///
/// Fails when the HTTP server fails.
pub async fn serve_router(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let address = listener.local_addr().ok();
    tracing::info!(address = ?address, "HTTP server for /metrics and /healthz listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    tracing::info!(address = ?address, "HTTP server stopped");
    Ok(())
}

async fn healthz(readiness: Readiness) -> impl IntoResponse {
    let ready = readiness.is_ready();
    let body = serde_json::json!({
        "status": if ready { "ok" } else { "unavailable" },
        "checks": readiness.checks(),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
}

/// Binds the HTTP listener and serves it in a background task, stopping with `shutdown`.
///
/// # Errors
///
/// Fails naming the address when the bind fails.
pub async fn spawn(
    address: std::net::SocketAddr,
    readiness: Readiness,
    refresh: Option<Refresh>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = crate::grpc::bind(address).await?;
    Ok(tokio::spawn(async move {
        if let Err(error) = serve(listener, readiness, refresh, shutdown).await {
            tracing::error!(%error, "HTTP server for /metrics and /healthz failed");
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_needs_every_check() {
        let readiness = Readiness::new(&["kafka_broker", "kafka_group"]);
        assert!(!readiness.is_ready());
        readiness.set("kafka_broker", true);
        assert!(!readiness.is_ready());
        readiness.set("kafka_group", true);
        assert!(readiness.is_ready());
        readiness.set("kafka_broker", false);
        assert!(!readiness.is_ready());
    }

    #[test]
    fn empty_readiness_is_not_ready() {
        assert!(!Readiness::default().is_ready());
    }
}
