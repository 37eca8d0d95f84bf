//! Operations over HTTP on `--metrics-port` (default client port + 1000, `0` = off):
//! `GET /health` for orchestrators, `GET /metrics` for Prometheus, `GET /` the live cluster
//! dashboard and `GET /api/cluster` its JSON (contract section 7), served with axum.
//!
//! One router, built in [`router`]; each endpoint lives in its own module: [`health`],
//! [`metrics`] (recording in [`histogram`], [`command_stats`], [`raft_stats`]), and
//! [`dashboard`] (page and API) over [`cluster_view`] (asks every member) and
//! [`node_view`] (one node's own view, also the cluster-channel `STATUS` answer).

pub mod cluster_view;
pub mod command_stats;
pub mod dashboard;
pub mod health;
pub mod metrics;
pub mod node_view;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tracing::warn;

use crate::node::Node;

/// The HTTP routes of a node.
pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .route("/metrics", get(metrics::metrics))
        .with_state(node.clone())
        .merge(dashboard::routes(node))
}

/// Serves the routes on `listener` until the node shuts down.
pub async fn serve(node: Arc<Node>, listener: TcpListener) {
    let mut shutdown = node.shutdown.subscribe();
    let app = router(node);
    let stop = async move {
        let _ = shutdown.changed().await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        warn!(error = %e, "the metrics HTTP server stopped");
    }
}
