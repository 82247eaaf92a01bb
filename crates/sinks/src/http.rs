//! HTTP plumbing shared by the REST-style sinks: one reqwest client per sink, base URL checks,
//! and error classification that never puts a URL query or credentials into a message.

use std::time::Duration;

use reqwest::{Response, Url};

use crate::values::display_url;
use crate::SinkError;

/// A client with the sink's timeout (rustls, no proxies from the environment).
pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client, SinkError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .no_proxy()
        .build()
        .map_err(|e| SinkError::config(format!("HTTP client: {e}")))
}

/// Parses a sink's base URL: http or https, no credentials, no query.
pub(crate) fn base_url(text: &str, section: &str) -> Result<Url, SinkError> {
    parse_base_url(text).map_err(|e| SinkError::config(format!("[{section}] url: {e}")))
}

/// The rule behind [`base_url`], as a plain message (also used by the config validation).
pub(crate) fn parse_base_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| {
        format!("{text:?} is not a URL ({e}): write e.g. \"http://192.168.1.10:8123\"")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "must start with http:// or https://, not {}://",
            url.scheme()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "must not contain credentials; use the username/password/token fields".to_owned(),
        );
    }
    if url.query().is_some() || url.host_str().is_none_or(str::is_empty) {
        return Err("must be a base address like http://host:port".to_owned());
    }
    Ok(url)
}

/// `base` + `path` (keeping a path prefix such as `/domoticz` from the base).
pub(crate) fn join(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let prefix = base.path().trim_end_matches('/');
    url.set_path(&format!("{prefix}/{}", path.trim_start_matches('/')));
    url
}

/// A failed request: timeout, or connection trouble. The URL is left out of the text.
pub(crate) fn send_error(url: &Url, e: reqwest::Error, timeout: Duration) -> SinkError {
    let target = display_url(url);
    if e.is_timeout() {
        return SinkError::timeout(target, timeout);
    }
    // reqwest's own text hides the cause (connection refused, DNS, TLS): walk the chain.
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        causes.push(s.to_string());
        source = s.source();
    }
    let mut detail = e.without_url().to_string();
    for cause in causes {
        detail.push_str(": ");
        detail.push_str(&cause);
    }
    SinkError::connect(target, detail)
}

/// The body of an error answer, shortened for a log line.
pub(crate) async fn short_body(resp: Response) -> String {
    let text = resp.text().await.unwrap_or_default();
    let text = text.trim();
    if text.chars().count() > 300 {
        let cut: String = text.chars().take(300).collect();
        format!("{cut}…")
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert!(base_url("http://127.0.0.1:8123", "x").is_ok());
        assert!(base_url("https://ha.lan/", "x").is_ok());
        for bad in ["ftp://x", "http://u:p@x", "http://x/?token=1", "nonsense"] {
            assert_eq!(base_url(bad, "x").unwrap_err().kind(), "config", "{bad}");
        }
        let b = base_url("http://h:8080/domoticz/", "x").unwrap();
        assert_eq!(
            join(&b, "json.htm").as_str(),
            "http://h:8080/domoticz/json.htm"
        );
        let b = base_url("http://h:8080", "x").unwrap();
        assert_eq!(
            join(&b, "/api/states/sensor.x").as_str(),
            "http://h:8080/api/states/sensor.x"
        );
    }
}
