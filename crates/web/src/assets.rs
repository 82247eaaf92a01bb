//! The dashboard's files, compiled into the binary so that it works offline and needs nothing
//! installed beside the executable: one HTML page, its script, its style sheet and an icon.
//!
//! Every URL in the page and the script is relative, so the dashboard also works below a path
//! prefix (`/some/prefix/`) of a reverse proxy that strips the prefix. A proxy that names its
//! prefix (Home Assistant ingress: `X-Ingress-Path`; others: `X-Forwarded-Prefix`) gets a
//! `<base href>` with it, so the page works there even without a trailing slash in its URL.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, VARY};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const STYLE_CSS: &str = include_str!("../assets/style.css");
const FAVICON_SVG: &str = include_str!("../assets/favicon.svg");

/// Only our own files, no inline script, nothing from elsewhere, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; base-uri 'self'; form-action 'none'; frame-ancestors 'none'";

/// Headers in which a reverse proxy tells the path prefix it serves us under, first match wins.
const PREFIX_HEADERS: [&str; 2] = ["x-ingress-path", "x-forwarded-prefix"];

/// The longest prefix accepted; ingress paths are about 60 characters.
const MAX_PREFIX: usize = 256;

/// The path prefix named by a proxy header, without its trailing slash (`/a/b`), or `None` when
/// there is none or it is not a plain absolute path. Only path characters pass: the value goes
/// into the page, and a value like `//host` would point the page at another server.
pub(crate) fn proxy_prefix(headers: &HeaderMap) -> Option<String> {
    let value = PREFIX_HEADERS
        .iter()
        .find_map(|name| headers.get(*name))?
        .to_str()
        .ok()?
        .trim();
    let prefix = value.trim_end_matches('/');
    let plain = prefix.len() <= MAX_PREFIX
        && prefix.starts_with('/')
        && !prefix.contains("//")
        && !prefix.split('/').any(|seg| seg == "." || seg == "..")
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.~%".contains(&b));
    if !plain {
        if !value.is_empty() {
            tracing::debug!(
                value,
                "ignoring a path-prefix header that is not a plain path"
            );
        }
        return None;
    }
    Some(prefix.to_string())
}

/// The page, with `<base href="PREFIX/">` when a proxy named its prefix.
fn index_html(prefix: Option<&str>) -> String {
    match prefix {
        Some(prefix) => INDEX_HTML.replacen(
            "<head>\n",
            &format!("<head>\n<base href=\"{prefix}/\">\n"),
            1,
        ),
        None => INDEX_HTML.to_string(),
    }
}

fn file(content_type: &'static str, body: impl Into<axum::body::Body>) -> Response {
    let body: axum::body::Body = body.into();
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

pub(crate) async fn index(headers: HeaderMap) -> Response {
    let prefix = proxy_prefix(&headers);
    let mut response = file("text/html; charset=utf-8", index_html(prefix.as_deref()));
    // The page differs by prefix: a cache must not hand one proxy's page to another.
    response.headers_mut().insert(
        VARY,
        HeaderValue::from_static("x-ingress-path, x-forwarded-prefix"),
    );
    response
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

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: &str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(value).expect("header value"),
        );
        h
    }

    #[test]
    fn ingress_path_becomes_the_base_of_every_relative_url() {
        let h = headers("x-ingress-path", "/api/hassio_ingress/Zx-9_aB");
        let prefix = proxy_prefix(&h);
        assert_eq!(prefix.as_deref(), Some("/api/hassio_ingress/Zx-9_aB"));
        let page = index_html(prefix.as_deref());
        assert!(page.contains("<head>\n<base href=\"/api/hassio_ingress/Zx-9_aB/\">\n"));
        assert_eq!(
            proxy_prefix(&headers("x-forwarded-prefix", "/some/prefix/")).as_deref(),
            Some("/some/prefix")
        );
    }

    #[test]
    fn page_and_script_use_only_relative_urls() {
        for (name, text) in [("index.html", INDEX_HTML), ("app.js", APP_JS)] {
            for absolute in [
                "href=\"/",
                "src=\"/",
                "\"/api",
                "`/api",
                "'/api",
                "\"/metrics",
            ] {
                assert!(
                    !text.contains(absolute),
                    "{name} has an absolute URL ({absolute}…): it breaks behind a path prefix"
                );
            }
        }
    }

    #[test]
    fn a_header_that_is_not_a_plain_path_is_ignored() {
        for bad in [
            "//evil.example/x",
            "https://evil.example/",
            "relative/path",
            "/a/../b",
            "/a\"><script>",
            "/a b",
            "",
            "/",
        ] {
            let Ok(value) = HeaderValue::from_str(bad) else {
                continue;
            };
            let mut h = HeaderMap::new();
            h.insert("x-ingress-path", value);
            let prefix = proxy_prefix(&h);
            assert!(prefix.is_none(), "{bad:?} accepted as {prefix:?}");
        }
        assert_eq!(index_html(None), INDEX_HTML);
    }
}
