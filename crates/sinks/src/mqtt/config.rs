//! `[mqtt]`: the broker URL, login, TLS files and timeouts, validated, and turned into rumqttc
//! options for one sink's connection.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{LastWill, MqttOptions, QoS, TlsConfiguration, Transport};
use rustls::ClientConfig;
use serde::Deserialize;

use crate::secret::{Secret, SecretRef};
use crate::validate::{secret_pair, ConfigProblem, Problems};
use crate::{BuildContext, SinkError};

use super::tls::tls_config;

/// `[mqtt]`: the broker shared by the Home Assistant discovery, MQTT JSON and Domoticz-over-MQTT
/// sinks. Each of those sinks opens its own connection with client id `<client_id>-<sink>`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// `mqtt://host[:port]` (default port 1883) or `mqtts://host[:port]` (TLS, default 8883).
    pub url: String,
    /// User name, if the broker wants one.
    #[serde(default)]
    pub username: Option<String>,
    /// Password: `"env:NAME"`, `"file:/path"` or the text itself.
    #[serde(default)]
    pub password: Option<SecretRef>,
    /// Alternative to `password`: a file holding it.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Base client id (default `kamstrup-bridge`); each sink appends its own suffix.
    #[serde(default)]
    pub client_id: Option<String>,
    /// PEM file with the CA certificate(s) to trust (default: the Mozilla root set).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (needs `client_key`).
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// PEM private key for `client_cert`.
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    /// Accept any server certificate (TLS still encrypts, but no longer authenticates).
    #[serde(default)]
    pub insecure: bool,
    /// Keep-alive interval (default `"30s"`, at least 5 s).
    #[serde(
        default = "default_keep_alive",
        deserialize_with = "crate::duration::text"
    )]
    pub keep_alive: Duration,
    /// How long to wait for a connection or a broker acknowledgement (default `"10s"`).
    #[serde(
        default = "default_timeout",
        deserialize_with = "crate::duration::text"
    )]
    pub timeout: Duration,
}

fn default_keep_alive() -> Duration {
    Duration::from_secs(30)
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// `[mqtt]` with its secrets and TLS material resolved.
#[derive(Clone, Debug)]
pub(crate) struct MqttSettings {
    host: String,
    port: u16,
    tls: Option<Arc<ClientConfig>>,
    pub(super) username: Option<String>,
    password: Option<Secret>,
    client_id: String,
    /// Built for `kamstrup check` (see `BuildContext::probe`).
    pub(crate) probe: bool,
    keep_alive: Duration,
    pub(crate) timeout: Duration,
    /// `mqtt://host:port`, for messages.
    pub(crate) target: String,
}

impl MqttConfig {
    /// The static rules of `[mqtt]` (see [`crate::validate`]): URL scheme, host, no credentials
    /// in the URL, a password only with a username, TLS settings only with `mqtts://`.
    pub fn validate(&self) -> Vec<ConfigProblem> {
        let mut p = Problems::new("mqtt");
        match parse_url(&self.url) {
            Ok(_) => {}
            Err(e) => p.key("url", e),
        }
        secret_pair(
            &mut p,
            self.password.is_some(),
            self.password_file.is_some(),
            "password",
        );
        if self.username.is_none() {
            if self.password.is_some() {
                p.key(
                    "password",
                    "a password needs a username: add username = \"...\"",
                );
            } else if self.password_file.is_some() {
                p.key(
                    "password_file",
                    "a password needs a username: add username = \"...\"",
                );
            }
        }
        let tls = parse_url(&self.url).is_ok_and(|u| u.tls);
        if !tls {
            for (set, key) in [
                (self.ca_file.is_some(), "ca_file"),
                (self.client_cert.is_some(), "client_cert"),
                (self.insecure, "insecure"),
            ] {
                if set {
                    p.key(key, "TLS settings need an mqtts:// url");
                }
            }
        }
        match (&self.client_cert, &self.client_key) {
            (Some(_), None) => p.key(
                "client_cert",
                "client_cert and client_key go together: add client_key",
            ),
            (None, Some(_)) => p.key(
                "client_key",
                "client_cert and client_key go together: add client_cert",
            ),
            _ => {}
        }
        p.list
    }
}

/// `[mqtt] url`, taken apart.
struct BrokerUrl {
    tls: bool,
    host: String,
    port: u16,
}

fn parse_url(text: &str) -> Result<BrokerUrl, String> {
    let url = reqwest::Url::parse(text).map_err(|e| {
        format!("{text:?} is not a URL ({e}): write e.g. \"mqtt://192.168.1.10:1883\"")
    })?;
    let (tls, default_port) = match url.scheme() {
        "mqtt" | "tcp" => (false, 1883),
        "mqtts" | "ssl" => (true, 8883),
        other => {
            return Err(format!(
                "must start with mqtt:// or mqtts://, not {other}://"
            ))
        }
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials; use username and password".to_owned());
    }
    // IPv6 literals come bracketed (`[::1]`); the socket address wants them bare.
    let host = match url.host_str() {
        Some(h) if !h.is_empty() => h.trim_start_matches('[').trim_end_matches(']').to_owned(),
        _ => {
            return Err(format!(
                "{text:?} has no host: write e.g. \"mqtt://192.168.1.10:1883\""
            ))
        }
    };
    Ok(BrokerUrl {
        tls,
        host,
        port: url.port().unwrap_or(default_port),
    })
}

impl MqttSettings {
    pub(crate) fn resolve(cfg: &MqttConfig, ctx: &BuildContext<'_>) -> Result<Self, SinkError> {
        crate::validate::first(cfg.validate())?;
        let BrokerUrl { tls, host, port } =
            parse_url(&cfg.url).map_err(|e| SinkError::config(format!("[mqtt] url: {e}")))?;
        let password = match SecretRef::pick(&cfg.password, &cfg.password_file, "password")? {
            Some(s) => Some(s.resolve(ctx.env, ctx.read_file)?),
            None => None,
        };
        let tls_config = if tls {
            Some(tls_config(cfg, ctx.read_file)?)
        } else {
            None
        };
        let scheme = if tls { "mqtts" } else { "mqtt" };
        let shown_host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        Ok(MqttSettings {
            target: format!("{scheme}://{shown_host}:{port}"),
            host,
            port,
            tls: tls_config,
            username: cfg.username.clone(),
            password,
            client_id: cfg
                .client_id
                .clone()
                .unwrap_or_else(|| "kamstrup-bridge".to_owned()),
            probe: ctx.probe,
            keep_alive: cfg.keep_alive.max(Duration::from_secs(5)),
            timeout: cfg.timeout.max(Duration::from_secs(1)),
        })
    }

    pub(super) fn options(&self, suffix: &str, will: Option<LastWill>) -> MqttOptions {
        let mut opts = MqttOptions::new(
            // A check connects beside a running daemon: with the daemon's client id the broker
            // would end the daemon's session (and publish its last will).
            if self.probe {
                format!("{}-{suffix}-check", self.client_id)
            } else {
                format!("{}-{suffix}", self.client_id)
            },
            self.host.clone(),
            self.port,
        );
        opts.set_keep_alive(self.keep_alive);
        // Clean sessions: nothing unconfirmed is replayed behind our back after a reconnect.
        opts.set_clean_session(true);
        // Other integrations' discovery configs arrive on our wildcard subscription.
        opts.set_max_packet_size(1 << 20, 1 << 20);
        if let Some(user) = &self.username {
            let pass = self
                .password
                .as_ref()
                .map(|p| p.expose().to_owned())
                .unwrap_or_default();
            opts.set_credentials(user.clone(), pass);
        }
        if let Some(tls) = &self.tls {
            opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                tls.clone(),
            )));
        }
        if let Some(will) = will {
            opts.set_last_will(will);
        }
        opts
    }
}

/// QoS from a config number (0..=2, checked by the sinks' `validate`).
pub(crate) fn qos_from(n: u8) -> QoS {
    match n {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn ctx_files(
        files: &'static [(&'static str, &'static str)],
    ) -> impl Fn(&Path) -> std::io::Result<String> + Sync {
        move |p: &Path| {
            files
                .iter()
                .find(|(name, _)| Path::new(name) == p)
                .map(|(_, text)| (*text).to_owned())
                .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"))
        }
    }

    fn cfg(url: &str) -> MqttConfig {
        serde_json::from_value(serde_json::json!({ "url": url })).unwrap()
    }

    #[test]
    fn urls() {
        let env = |_: &str| -> Option<String> { None };
        let files = ctx_files(&[]);
        let ctx = BuildContext::new(&env, &files);
        let s = MqttSettings::resolve(&cfg("mqtt://broker.lan"), &ctx).unwrap();
        assert_eq!(s.target, "mqtt://broker.lan:1883");
        let s = MqttSettings::resolve(&cfg("mqtt://[::1]:1884"), &ctx).unwrap();
        assert_eq!((s.host.as_str(), s.port), ("::1", 1884));
        let s = MqttSettings::resolve(&cfg("mqtts://broker.lan"), &ctx).unwrap();
        assert_eq!(s.target, "mqtts://broker.lan:8883");
        assert!(s.tls.is_some());
        for bad in ["http://x", "mqtt://u:p@x", "not a url"] {
            assert_eq!(
                MqttSettings::resolve(&cfg(bad), &ctx).unwrap_err().kind(),
                "config",
                "{bad}"
            );
        }
    }

    #[test]
    fn tls_settings() {
        let env = |_: &str| -> Option<String> { None };
        let files = ctx_files(&[("/ca.pem", "not a pem")]);
        let ctx = BuildContext::new(&env, &files);
        let mut c = cfg("mqtts://x");
        c.ca_file = Some("/ca.pem".into());
        let e = MqttSettings::resolve(&c, &ctx).unwrap_err();
        assert!(e.to_string().contains("holds no certificate"), "{e}");
        c.ca_file = Some("/missing.pem".into());
        let e = MqttSettings::resolve(&c, &ctx).unwrap_err();
        assert!(e.to_string().contains("/missing.pem"), "{e}");
        let mut c = cfg("mqtts://x");
        c.client_cert = Some("/c.pem".into());
        assert!(MqttSettings::resolve(&c, &ctx)
            .unwrap_err()
            .to_string()
            .contains("go together"));
        let mut c = cfg("mqtts://x");
        c.insecure = true;
        assert!(MqttSettings::resolve(&c, &ctx).is_ok());
        let mut c = cfg("mqtt://x");
        c.insecure = true;
        assert!(MqttSettings::resolve(&c, &ctx).is_err());
    }

    #[test]
    fn password_is_resolved_never_shown() {
        let env = |n: &str| (n == "PW").then(|| "s3cret".to_string());
        let files = ctx_files(&[]);
        let ctx = BuildContext::new(&env, &files);
        let c: MqttConfig = serde_json::from_value(serde_json::json!({
            "url": "mqtt://x", "username": "u", "password": "env:PW"
        }))
        .unwrap();
        let s = MqttSettings::resolve(&c, &ctx).unwrap();
        assert_eq!(s.password.as_ref().unwrap().expose(), "s3cret");
        assert!(!format!("{c:?}").contains("s3cret"));
        let c: MqttConfig = serde_json::from_value(serde_json::json!({
            "url": "mqtt://x", "password": "env:PW"
        }))
        .unwrap();
        assert!(MqttSettings::resolve(&c, &ctx).is_err());
    }

    #[test]
    fn unknown_fields_refused() {
        let r: Result<MqttConfig, _> =
            serde_json::from_value(serde_json::json!({ "url": "mqtt://x", "pasword": "y" }));
        assert!(r.is_err());
    }
}
