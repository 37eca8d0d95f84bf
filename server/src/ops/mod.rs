//! Operations over HTTP on `--metrics-port` (default client port + 1000, `0` = off):
//! `GET /health` for orchestrators and `GET /metrics` for Prometheus (contract section
//! 7), served with axum.
//!
//! One router, built in [`router`]; each endpoint lives in its own module, and so does
//! the recording behind the metrics ([`histogram`], [`command_stats`], [`raft_stats`]).

pub mod command_stats;
pub mod health;
pub mod histogram;
pub mod metrics;
pub mod raft_stats;

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
        .with_state(node)
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
