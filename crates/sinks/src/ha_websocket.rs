//! A small client for Home Assistant's websocket API (`/api/websocket`): log in with a
//! long-lived token, send one command at a time and read its result, with typed errors.
//!
//! HA's exchange: on connect HA sends `auth_required`; we answer `{"type":"auth","access_token"}`
//! and get `auth_ok` or `auth_invalid`. A command is `{"id":n,"type":…}`, answered by
//! `{"id":n,"type":"result","success":…,"result"|"error":{"code","message"}}`; other messages
//! (events, pongs) are skipped. The token is sent once and never logged or put in an error.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::Url;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::secret::Secret;
use crate::SinkError;

/// Why a websocket exchange with Home Assistant failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HaWsError {
    /// No connection, or the websocket handshake failed.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// HA refused the token (`auth_invalid`), or the user may not run the command
    /// (`unauthorized`: the statistics import needs an administrator).
    #[error("token refused: {0}")]
    AuthRefused(String),
    /// HA does not know the command (e.g. no `recorder:` loaded).
    #[error("Home Assistant does not know {command}: {message}")]
    UnknownCommand {
        /// The command sent.
        command: String,
        /// HA's message.
        message: String,
    },
    /// HA's schema refused the message (`invalid_format`), with HA's reason.
    #[error("Home Assistant says invalid format: {0}")]
    InvalidFormat(String),
    /// Any other error result (`home_assistant_error`, `unknown_error`, …).
    #[error("Home Assistant answered {code}: {message}")]
    Failed {
        /// HA's error code.
        code: String,
        /// HA's message.
        message: String,
    },
    /// No answer in time.
    #[error("no answer within {} s", .0.as_secs().max(1))]
    Timeout(Duration),
    /// The connection closed or broke before the answer.
    #[error("connection dropped: {0}")]
    Dropped(String),
    /// HA sent something this client does not understand.
    #[error("unexpected message: {0}")]
    Protocol(String),
}

impl HaWsError {
    /// The same failure as a [`SinkError`] about `target` (a URL without credentials).
    pub fn into_sink_error(self, target: &str) -> SinkError {
        match self {
            HaWsError::Connect(d) | HaWsError::Dropped(d) => {
                SinkError::connect(target, format!("websocket: {d}"))
            }
            HaWsError::AuthRefused(d) => SinkError::auth(target, d),
            HaWsError::Timeout(t) => SinkError::timeout(target, t),
            other => SinkError::rejected(target, other.to_string()),
        }
    }
}

/// `http(s)://host:port[/path]` → `ws(s)://host:port[/path]/api/websocket`.
pub(crate) fn websocket_url(base: &Url) -> Result<Url, SinkError> {
    let mut url = base.clone();
    let scheme = match base.scheme() {
        "http" => "ws",
        "https" => "wss",
        other => {
            return Err(SinkError::config(format!(
                "Home Assistant URL must be http or https, not {other}"
            )))
        }
    };
    url.set_scheme(scheme)
        .map_err(|()| SinkError::config("cannot make a websocket URL"))?;
    let path = format!("{}/api/websocket", base.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_query(None);
    Ok(url)
}

/// One logged-in websocket connection.
pub struct HaWebsocket {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    timeout: Duration,
    /// The HA release from `auth_ok` (e.g. `2024.3.3`).
    pub ha_version: String,
}

fn tls_connector() -> Result<tokio_tungstenite::Connector, HaWsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| HaWsError::Connect(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_tungstenite::Connector::Rustls(Arc::new(config)))
}

impl HaWebsocket {
    /// Connects to `url` (`ws://…/api/websocket`) and logs in; each step within `timeout`.
    pub async fn connect(url: &Url, token: &Secret, timeout: Duration) -> Result<Self, HaWsError> {
        let connector = if url.scheme() == "wss" {
            Some(tls_connector()?)
        } else {
            None
        };
        let connecting =
            tokio_tungstenite::connect_async_tls_with_config(url.as_str(), None, false, connector);
        let (stream, _) = tokio::time::timeout(timeout, connecting)
            .await
            .map_err(|_| HaWsError::Timeout(timeout))?
            .map_err(|e| HaWsError::Connect(e.to_string()))?;
        let mut ws = HaWebsocket {
            stream,
            next_id: 1,
            timeout,
            ha_version: String::new(),
        };
        let hello = ws.receive().await?;
        if hello["type"] != "auth_required" {
            return Err(HaWsError::Protocol(format!(
                "expected auth_required, got {}",
                hello["type"]
            )));
        }
        let auth = json!({"type": "auth", "access_token": token.expose()});
        ws.send(&auth).await?;
        let answer = ws.receive().await?;
        match answer["type"].as_str() {
            Some("auth_ok") => {
                ws.ha_version = answer["ha_version"].as_str().unwrap_or("").to_owned();
                Ok(ws)
            }
            Some("auth_invalid") => Err(HaWsError::AuthRefused(
                answer["message"]
                    .as_str()
                    .unwrap_or("auth_invalid")
                    .to_owned(),
            )),
            _ => Err(HaWsError::Protocol(format!(
                "expected auth_ok, got {}",
                answer["type"]
            ))),
        }
    }

    async fn send(&mut self, value: &Value) -> Result<(), HaWsError> {
        self.send_text(value.to_string()).await
    }

    async fn send_text(&mut self, text: String) -> Result<(), HaWsError> {
        tokio::time::timeout(self.timeout, self.stream.send(Message::text(text)))
            .await
            .map_err(|_| HaWsError::Timeout(self.timeout))?
            .map_err(|e| HaWsError::Dropped(e.to_string()))
    }

    /// The next JSON text message (HA may batch several messages into one JSON array when
    /// `supported_features` asks for it; we never ask, so one message is one object).
    async fn receive(&mut self) -> Result<Value, HaWsError> {
        loop {
            let next = tokio::time::timeout(self.timeout, self.stream.next())
                .await
                .map_err(|_| HaWsError::Timeout(self.timeout))?;
            let msg = match next {
                None => return Err(HaWsError::Dropped("closed by Home Assistant".into())),
                Some(Err(e)) => return Err(HaWsError::Dropped(e.to_string())),
                Some(Ok(m)) => m,
            };
            match msg {
                Message::Text(t) => {
                    return serde_json::from_str(t.as_str())
                        .map_err(|e| HaWsError::Protocol(format!("not JSON: {e}")))
                }
                Message::Close(frame) => {
                    return Err(HaWsError::Dropped(match frame {
                        Some(f) if !f.reason.is_empty() => format!("closed: {}", f.reason),
                        _ => "closed by Home Assistant".to_owned(),
                    }))
                }
                // Pings are answered by tungstenite; binary frames are not part of this API.
                _ => continue,
            }
        }
    }

    /// Sends `{"type": command, …fields}` and returns its `result` (or HA's error, typed).
    pub async fn command(&mut self, command: &str, fields: Value) -> Result<Value, HaWsError> {
        let body = match fields {
            Value::Null => "{}".to_owned(),
            Value::Object(_) => fields.to_string(),
            other => {
                return Err(HaWsError::Protocol(format!(
                    "command fields must be an object, not {other}"
                )))
            }
        };
        self.command_text(command, &body).await
    }

    /// [`HaWebsocket::command`] with the fields as JSON object text, sent as written (exact
    /// decimal numbers stay exact).
    pub async fn command_text(&mut self, command: &str, fields: &str) -> Result<Value, HaWsError> {
        let id = self.next_id;
        self.next_id += 1;
        let inner = fields
            .trim()
            .strip_prefix('{')
            .and_then(|f| f.strip_suffix('}'))
            .ok_or_else(|| HaWsError::Protocol("command fields must be a JSON object".into()))?
            .trim();
        let head = format!("{{\"id\":{id},\"type\":{}", Value::from(command));
        let text = if inner.is_empty() {
            format!("{head}}}")
        } else {
            format!("{head},{inner}}}")
        };
        self.send_text(text).await?;
        loop {
            let answer = self.receive().await?;
            if answer["id"] != json!(id) || answer["type"] != "result" {
                continue;
            }
            if answer["success"] == json!(true) {
                return Ok(answer.get("result").cloned().unwrap_or(Value::Null));
            }
            let code = answer["error"]["code"].as_str().unwrap_or("").to_owned();
            let message = answer["error"]["message"].as_str().unwrap_or("").to_owned();
            return Err(match code.as_str() {
                "unknown_command" => HaWsError::UnknownCommand {
                    command: command.to_owned(),
                    message,
                },
                "invalid_format" => HaWsError::InvalidFormat(message),
                "unauthorized" => HaWsError::AuthRefused(format!(
                    "{command}: {message} (the token's user must be an administrator)"
                )),
                _ => HaWsError::Failed { code, message },
            });
        }
    }

    /// Closes the connection politely (errors are irrelevant at this point).
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(self.timeout, self.stream.close(None)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_urls() {
        let u = |s: &str| websocket_url(&Url::parse(s).unwrap()).unwrap().to_string();
        assert_eq!(
            u("http://127.0.0.1:8123"),
            "ws://127.0.0.1:8123/api/websocket"
        );
        assert_eq!(
            u("https://ha.example:8443/"),
            "wss://ha.example:8443/api/websocket"
        );
        assert_eq!(u("http://h/ha/"), "ws://h/ha/api/websocket");
    }

    #[test]
    fn errors_map_to_sink_kinds() {
        let t = "ws://h/api/websocket";
        assert_eq!(
            HaWsError::AuthRefused("x".into()).into_sink_error(t).kind(),
            "auth"
        );
        assert_eq!(
            HaWsError::InvalidFormat("x".into())
                .into_sink_error(t)
                .kind(),
            "rejected"
        );
        assert_eq!(
            HaWsError::Dropped("x".into()).into_sink_error(t).kind(),
            "connect"
        );
        assert_eq!(
            HaWsError::Timeout(Duration::from_secs(3))
                .into_sink_error(t)
                .kind(),
            "timeout"
        );
    }
}
