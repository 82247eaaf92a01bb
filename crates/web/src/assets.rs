//! The dashboard's files, compiled into the binary so that it works offline and needs nothing
//! installed beside the executable: one HTML page, its script, its style sheet and an icon.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const STYLE_CSS: &str = include_str!("../assets/style.css");
const FAVICON_SVG: &str = include_str!("../assets/favicon.svg");

/// Only our own files, no inline script, nothing from elsewhere, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn file(content_type: &'static str, body: &'static str) -> Response {
    let mut response = (
        [
            (CONTENT_TYPE, HeaderValue::from_static(content_type)),
            // Revalidated on every load, so an upgraded binary never serves a stale script.
            (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response();
    if content_type.starts_with("text/html") {
        response
            .headers_mut()
            .insert("content-security-policy", HeaderValue::from_static(CSP));
    }
    response
}

pub(crate) async fn index() -> Response {
    file("text/html; charset=utf-8", INDEX_HTML)
}

pub(crate) async fn app_js() -> Response {
    file("text/javascript; charset=utf-8", APP_JS)
}

pub(crate) async fn style_css() -> Response {
    file("text/css; charset=utf-8", STYLE_CSS)
}

pub(crate) async fn favicon() -> Response {
    file("image/svg+xml", FAVICON_SVG)
}
