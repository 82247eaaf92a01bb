//! The kamstrup-bridge web server: a read-only dashboard, the JSON API it is drawn from, and
//! Prometheus `/metrics` — all served from the history database, never from a meter.
//!
//! The server opens the daemon's SQLite file read-only (WAL lets it read while the daemon
//! writes) and runs every query on the blocking thread pool. It only answers `GET` (and `HEAD`);
//! it binds nothing itself — the caller hands it a listener, normally on 127.0.0.1. The daemon's
//! live state comes in through a closure, so this crate does not depend on the daemon.
//!
#![doc = include_str!("../API.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod access;
mod api;
mod assets;
mod error;
mod metrics;
mod pool;
mod query;
mod units;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use axum::http::header::{CACHE_CONTROL, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

pub use access::Access;
pub use error::WebError;
pub use metrics::CONTENT_TYPE_OPENMETRICS;

use error::ApiError;
use pool::StorePool;

/// The daemon's live state as JSON (its `Status` serialized: `{"meters": {name: …}, "sinks":
/// {name: …}}`); called on every API request that shows it, so it must be cheap.
pub type StatusFn = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

/// A status source for when no daemon runs (tests, a dashboard over an old file).
pub fn no_daemon() -> StatusFn {
    Arc::new(|| serde_json::Value::Null)
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct App {
    pub(crate) pool: Arc<StorePool>,
    pub(crate) status: StatusFn,
}

/// The routes, for callers that serve them themselves (tests, benchmarks, a bigger router).
pub fn router(store_path: PathBuf, status: StatusFn) -> Router {
    let app = App {
        pool: StorePool::new(store_path),
        status,
    };
    Router::new()
        .route("/", get(assets::index))
        .route("/app.js", get(assets::app_js))
        .route("/style.css", get(assets::style_css))
        .route("/favicon.svg", get(assets::favicon))
        .route("/favicon.ico", get(assets::favicon))
        .route("/api/meters", get(api::meters))
        .route("/api/meters/:serial", get(api::meter))
        .route("/api/meters/:serial/readings", get(api::readings))
        .route("/api/status", get(api::status))
        .route("/metrics", get(metrics::metrics))
        .fallback(not_found)
        .layer(axum::middleware::map_response(common_headers))
        .with_state(app)
}

/// Serves the dashboard, the API and `/metrics` on `listener` until `shutdown` completes, then
/// lets requests in flight finish. `store_path` is the daemon's history database; it may not
/// exist yet (the API answers 503 until it does). Clients outside `access` get 403 before any
/// route runs.
pub async fn serve<F>(
    listener: TcpListener,
    store_path: PathBuf,
    status: StatusFn,
    access: Access,
    shutdown: F,
) -> Result<(), WebError>
where
    F: Future<Output = ()> + Send + 'static,
{
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, open = access.is_open(), "web dashboard listening");
    }
    let app = router(store_path, status)
        .layer(axum::middleware::from_fn_with_state(access, access::guard));
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    Ok(())
}

async fn not_found(uri: Uri) -> Response {
    ApiError::not_found(format!(
        "nothing at {}; the dashboard is at /, the API under /api/meters, metrics at /metrics",
        uri.path()
    ))
    .into_response()
}

async fn common_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// `Cache-Control: no-store` for answers that change with every poll.
pub(crate) fn no_store() -> [(axum::http::HeaderName, HeaderValue); 1] {
    [(CACHE_CONTROL, HeaderValue::from_static("no-store"))]
}
