//! The live cluster dashboard (contract section 7): `GET /` is one self-contained
//! page — HTML, CSS and JS from `assets/`, embedded in the binary and inlined into one
//! document, no external resources — that redraws itself every second from
//! `GET /api/cluster`, the whole cluster as this node and its peers report it (shape in
//! [`ClusterView`]). Any node's page shows every member: the serving node asks the
//! others over the cluster channel.

use std::sync::{Arc, LazyLock};

use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};

use super::cluster_view::{ClusterView, Gatherer};
use crate::node::Node;

const HTML: &str = include_str!("assets/dashboard.html");
const CSS: &str = include_str!("assets/dashboard.css");
const JS: &str = include_str!("assets/dashboard.js");

/// The page: the HTML with the stylesheet and the script inlined at their markers.
static PAGE: LazyLock<String> = LazyLock::new(|| {
    HTML.replacen("/* @dashboard.css */", CSS, 1)
        .replacen("/* @dashboard.js */", JS, 1)
});

/// `GET /` and `GET /api/cluster` for `node`.
pub fn routes(node: Arc<Node>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/cluster", get(api_cluster))
        .with_state(Arc::new(Gatherer::new(node)))
}

/// `GET /`: the dashboard page (`text/html`).
async fn page() -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-cache")], Html(PAGE.as_str()))
}

/// `GET /api/cluster`: [`ClusterView`] as JSON; takes at most about 500 ms (the peers'
/// deadline), whatever the peers do.
async fn api_cluster(State(gatherer): State<Arc<Gatherer>>) -> impl IntoResponse {
    let view: ClusterView = gatherer.gather().await;
    ([(header::CACHE_CONTROL, "no-store")], Json(view))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_one_document_with_nothing_to_fetch_but_the_api() {
        let page = PAGE.as_str();
        assert!(!page.contains("/* @dashboard"), "every marker replaced");
        assert!(page.contains(".cards {"), "the stylesheet is inlined");
        assert!(page.contains("function sparkline"), "the script is inlined");
        for external in ["src=", "<link", "@import", "url(", "https://"] {
            assert!(!page.contains(external), "loads something: {external}");
        }
        // The only absolute URL is the SVG namespace, which is a name, not a download.
        assert_eq!(
            page.matches("http://").count(),
            page.matches("http://www.w3.org/2000/svg").count()
        );
        assert!(page.contains("fetch(\"api/cluster\""));
    }
}
