//! The Home Assistant add-on's start-up: the options the Supervisor writes to
//! `/data/options.json` (and its MQTT service, when Home Assistant has a broker) become a
//! `kamstrup.toml` for `kamstrup run`.
//!
//! Pure conversion plus one HTTP call: [`parse_options`] and [`MqttService::from_api_body`] read
//! bytes, [`convert`] writes TOML text and the secret files it refers to, and
//! [`fetch_mqtt_service`] asks the Supervisor. The `kamstrup addon-config` subcommand does the
//! file I/O and validates the result with the ordinary config checker.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::{Table, Value};

/// Port the add-on's dashboard listens on inside the container (`ingress_port` in config.yaml).
pub const INGRESS_PORT: u16 = 8099;

/// The Supervisor's ingress proxy: the only client the add-on's dashboard answers.
pub const INGRESS_PROXY: &str = "172.30.32.2";

/// What can be wrong with the add-on's start-up; each message names the option to fix.
#[derive(Debug, thiserror::Error)]
pub enum AddonError {
    /// options.json is not valid JSON or does not match the add-on's schema.
    #[error("options.json: {0}")]
    Options(String),
    /// The options are well-formed but cannot make a working config.
    #[error("option {option}: {message}")]
    Invalid {
        /// The option to fix (`meters[0].port`, `mqtt_host`, …).
        option: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// The Supervisor's services API answered something unexpected.
    #[error("Supervisor services API: {0}")]
    Supervisor(String),
}

fn invalid(option: impl Into<String>, message: impl Into<String>) -> AddonError {
    AddonError::Invalid {
        option: option.into(),
        message: message.into(),
    }
}

/// `/data/options.json`: the keys of `options`/`schema` in `addon/config.yaml`, no others.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The IR head picked in the add-on's device list (`/dev/serial/by-id/…`), for every meter
    /// that names no `port` of its own.
    #[serde(default)]
    pub device: Option<String>,
    /// The meters.
    pub meters: Vec<MeterOption>,
    /// Poll interval of meters that name none (`15m`).
    #[serde(default = "default_interval")]
    pub interval: String,
    /// Home Assistant MQTT discovery (needs a broker).
    #[serde(default = "yes")]
    pub homeassistant_discovery: bool,
    /// One JSON message per reading on `mqtt_json_topic` (needs a broker).
    #[serde(default)]
    pub mqtt_json: bool,
    /// Topic of the JSON messages (`kamstrup/{meter}`).
    #[serde(default)]
    pub mqtt_json_topic: Option<String>,
    /// Broker host when Home Assistant offers no MQTT service.
    #[serde(default)]
    pub mqtt_host: Option<String>,
    /// Broker port (1883).
    #[serde(default)]
    pub mqtt_port: Option<u16>,
    /// Broker user.
    #[serde(default)]
    pub mqtt_username: Option<String>,
    /// Broker password.
    #[serde(default)]
    pub mqtt_password: Option<String>,
    /// InfluxDB v2 base URL; turns the InfluxDB sink on.
    #[serde(default)]
    pub influxdb_url: Option<String>,
    /// InfluxDB v2 organisation.
    #[serde(default)]
    pub influxdb_org: Option<String>,
    /// InfluxDB v2 bucket.
    #[serde(default)]
    pub influxdb_bucket: Option<String>,
    /// InfluxDB v2 API token.
    #[serde(default)]
    pub influxdb_token: Option<String>,
    /// Delete stored readings older than this (`10y`); default: keep everything.
    #[serde(default)]
    pub retention: Option<String>,
}

/// One entry of `meters`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeterOption {
    /// Name in Home Assistant, topics and the dashboard.
    pub name: String,
    /// Overrides `device`: another serial device, `tcp://host:port` or `sim:MODEL`.
    #[serde(default)]
    pub port: Option<String>,
    /// `kmp`, `mc66c` or `auto`.
    #[serde(default)]
    pub protocol: Option<String>,
    /// MULTICAL 66C program number `A-B-CCC`.
    #[serde(default)]
    pub program: Option<String>,
    /// Overrides `interval`.
    #[serde(default)]
    pub interval: Option<String>,
}

fn default_interval() -> String {
    "15m".to_owned()
}
fn yes() -> bool {
    true
}

/// An empty text field in the add-on's form means "not set".
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// Reads `/data/options.json`.
pub fn parse_options(bytes: &[u8]) -> Result<Options, AddonError> {
    serde_json::from_slice(bytes).map_err(|e| AddonError::Options(e.to_string()))
}

/// The broker Home Assistant offers (`GET /services/mqtt` of the Supervisor).
#[derive(Clone, PartialEq, Eq)]
pub struct MqttService {
    /// Host name (`core-mosquitto`).
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS.
    pub ssl: bool,
    /// User the Supervisor created for add-ons.
    pub username: Option<String>,
    /// Its password.
    pub password: Option<String>,
}

impl fmt::Debug for MqttService {
    // The password never prints, not even in a debug log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqttService")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("ssl", &self.ssl)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

#[derive(Deserialize)]
struct ApiReply {
    result: String,
    #[serde(default)]
    message: Option<String>,
    /// Read as [`ApiMqtt`] only when `result` is "ok" (errors carry `{}` or nothing).
    #[serde(default)]
    data: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ApiMqtt {
    host: String,
    /// A number or a string, depending on the Supervisor release (any JSON value reads into a
    /// `toml::Value`, which has the two variants to tell apart).
    port: Value,
    #[serde(default)]
    ssl: bool,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

impl MqttService {
    /// Reads the services API's answer: `Ok(None)` when Home Assistant has no MQTT service
    /// ("Service not enabled"), so the options are used instead.
    pub fn from_api_body(body: &[u8]) -> Result<Option<MqttService>, AddonError> {
        let reply: ApiReply = serde_json::from_slice(body)
            .map_err(|e| AddonError::Supervisor(format!("not the expected JSON: {e}")))?;
        if reply.result != "ok" {
            let message = reply.message.unwrap_or_default();
            if message.to_ascii_lowercase().contains("not enabled") {
                return Ok(None);
            }
            return Err(AddonError::Supervisor(format!(
                "result {:?}: {message}",
                reply.result
            )));
        }
        let data: ApiMqtt = reply
            .data
            .ok_or_else(|| AddonError::Supervisor("result ok but no data".into()))
            .and_then(|d| {
                serde_json::from_value(d)
                    .map_err(|e| AddonError::Supervisor(format!("unexpected data: {e}")))
            })?;
        let port = match &data.port {
            Value::Integer(p) => u16::try_from(*p).ok(),
            Value::String(p) => p.trim().parse().ok(),
            _ => None,
        }
        .ok_or_else(|| AddonError::Supervisor(format!("bad broker port {}", data.port)))?;
        if data.host.trim().is_empty() {
            return Err(AddonError::Supervisor("empty broker host".into()));
        }
        Ok(Some(MqttService {
            host: data.host.trim().to_owned(),
            port,
            ssl: data.ssl,
            username: data.username.filter(|u| !u.is_empty()),
            password: data.password.filter(|p| !p.is_empty()),
        }))
    }
}

/// Asks the Supervisor (`base`, normally `http://supervisor`) for its MQTT service with the
/// add-on's token. `Ok(None)`: Home Assistant has no broker.
pub async fn fetch_mqtt_service(
    base: &str,
    token: &str,
) -> Result<Option<MqttService>, AddonError> {
    let url = format!("{}/services/mqtt", base.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| AddonError::Supervisor(e.to_string()))?;
    let response = client
        .get(&url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| AddonError::Supervisor(format!("{url}: {e}")))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| AddonError::Supervisor(format!("{url}: {e}")))?;
    // The Supervisor answers "Service not enabled" with a 400 and a JSON body: read the body
    // whatever the status; only an unreadable answer is an error.
    MqttService::from_api_body(&body).map_err(|e| match e {
        AddonError::Supervisor(m) => AddonError::Supervisor(format!("{url} ({status}): {m}")),
        other => other,
    })
}

/// Where the broker of the generated config came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MqttSource {
    /// Home Assistant's MQTT service (the Mosquitto add-on).
    Supervisor(String),
    /// `mqtt_host` in the options.
    Options(String),
    /// No broker configured (no MQTT sink asked for).
    None,
}

/// A secret the config refers to by `*_file`: written beside it, readable by the add-on only.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretFile {
    /// Absolute path.
    pub path: String,
    /// Content.
    pub content: String,
}

impl fmt::Debug for SecretFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretFile({}, ***)", self.path)
    }
}

/// The result of [`convert`].
#[derive(Debug, Clone)]
pub struct Generated {
    /// The `kamstrup.toml` text.
    pub toml: String,
    /// Files holding passwords and tokens, referenced from `toml`.
    pub secrets: Vec<SecretFile>,
    /// Where the broker came from.
    pub mqtt: MqttSource,
    /// The sinks turned on, for the start-up log line.
    pub sinks: Vec<&'static str>,
}

const PROTOCOLS: [&str; 3] = ["kmp", "mc66c", "auto"];

/// Turns the options (and the Supervisor's broker, which wins over `mqtt_host`) into a config
/// whose files live in `data_dir` (`/data`). Checks what the add-on's schema cannot: that every
/// meter has a port and that a sink that needs a broker has one.
pub fn convert(
    options: &Options,
    service: Option<&MqttService>,
    data_dir: &Path,
) -> Result<Generated, AddonError> {
    let data = |name: &str| data_dir.join(name).to_string_lossy().into_owned();
    let mut root = Table::new();
    let mut secrets = Vec::new();
    let mut sinks = Vec::new();

    let mut storage = Table::new();
    storage.insert("path".into(), data("kamstrup.db").into());
    if let Some(keep) = given(&options.retention) {
        storage.insert("retention".into(), keep.into());
    }
    root.insert("storage".into(), storage.into());

    // Ingress reaches the container on this port; the port is published nowhere else, and
    // only the Supervisor's ingress proxy may use it (other add-ons share the network).
    let mut web = Table::new();
    web.insert("listen".into(), format!("0.0.0.0:{INGRESS_PORT}").into());
    web.insert("allow".into(), Value::Array(vec![INGRESS_PROXY.into()]));
    root.insert("web".into(), web.into());

    if options.meters.is_empty() {
        return Err(invalid(
            "meters",
            "no meter configured: add one (name, and a device or port)",
        ));
    }
    let mut meters = Vec::new();
    for (i, m) in options.meters.iter().enumerate() {
        let at = |key: &str| format!("meters[{i}].{key}");
        let name = m.name.trim();
        if name.is_empty() {
            return Err(invalid(at("name"), "empty: give the meter a name"));
        }
        let port = given(&m.port).or(given(&options.device)).ok_or_else(|| {
            invalid(
                at("port"),
                format!(
                    "meter {name:?} has no port: pick the IR head under \"device\", or give this \
                     meter a port (/dev/ttyUSB0, tcp://host:port)"
                ),
            )
        })?;
        let mut meter = Table::new();
        meter.insert("name".into(), name.into());
        meter.insert("port".into(), port.into());
        if let Some(protocol) = given(&m.protocol) {
            if !PROTOCOLS.contains(&protocol) {
                return Err(invalid(
                    at("protocol"),
                    format!("{protocol:?} is not one of kmp, mc66c, auto"),
                ));
            }
            meter.insert("protocol".into(), protocol.into());
        }
        if let Some(program) = given(&m.program) {
            meter.insert("program".into(), program.into());
        }
        let interval = given(&m.interval).unwrap_or(options.interval.trim());
        meter.insert("interval".into(), interval.into());
        meters.push(Value::Table(meter));
    }
    root.insert("meter".into(), meters.into());

    let wants_mqtt = options.homeassistant_discovery || options.mqtt_json;
    let mqtt = if !wants_mqtt {
        MqttSource::None
    } else if let Some(s) = service {
        let target = format!("{}:{}", s.host, s.port);
        let mut mqtt = broker(&target, s.ssl, s.username.as_deref());
        if let Some(p) = &s.password {
            mqtt.insert("password_file".into(), data("secrets/mqtt-password").into());
            secrets.push(SecretFile {
                path: data("secrets/mqtt-password"),
                content: p.clone(),
            });
        }
        root.insert("mqtt".into(), mqtt.into());
        MqttSource::Supervisor(target)
    } else if let Some(host) = given(&options.mqtt_host) {
        let target = format!("{host}:{}", options.mqtt_port.unwrap_or(1883));
        let mut mqtt = broker(&target, false, given(&options.mqtt_username));
        if let Some(p) = given(&options.mqtt_password) {
            mqtt.insert("password_file".into(), data("secrets/mqtt-password").into());
            secrets.push(SecretFile {
                path: data("secrets/mqtt-password"),
                content: p.to_owned(),
            });
        }
        root.insert("mqtt".into(), mqtt.into());
        MqttSource::Options(target)
    } else {
        let which = if options.homeassistant_discovery {
            "homeassistant_discovery"
        } else {
            "mqtt_json"
        };
        return Err(invalid(
            which,
            "needs an MQTT broker, and Home Assistant offers none: install the Mosquitto broker \
             add-on, or set mqtt_host (and mqtt_username/mqtt_password), or turn this option off",
        ));
    };
    if options.homeassistant_discovery {
        root.insert("homeassistant".into(), Table::new().into());
        sinks.push("homeassistant");
    }
    if options.mqtt_json {
        let mut json = Table::new();
        if let Some(topic) = given(&options.mqtt_json_topic) {
            json.insert("topic".into(), topic.into());
        }
        root.insert("mqtt_json".into(), json.into());
        sinks.push("mqtt_json");
    }

    if let Some(url) = given(&options.influxdb_url) {
        let mut influx = Table::new();
        influx.insert("url".into(), url.into());
        influx.insert("version".into(), Value::Integer(2));
        for (key, value) in [
            ("org", &options.influxdb_org),
            ("bucket", &options.influxdb_bucket),
        ] {
            let value = given(value).ok_or_else(|| {
                invalid(
                    format!("influxdb_{key}"),
                    "missing: InfluxDB v2 needs influxdb_org, influxdb_bucket and influxdb_token",
                )
            })?;
            influx.insert(key.into(), value.into());
        }
        let token = given(&options.influxdb_token).ok_or_else(|| {
            invalid(
                "influxdb_token",
                "missing: InfluxDB v2 needs influxdb_org, influxdb_bucket and influxdb_token",
            )
        })?;
        influx.insert("token_file".into(), data("secrets/influxdb-token").into());
        secrets.push(SecretFile {
            path: data("secrets/influxdb-token"),
            content: token.to_owned(),
        });
        root.insert("influxdb".into(), influx.into());
        sinks.push("influxdb");
    }

    let body = toml::to_string(&root).map_err(|e| AddonError::Options(e.to_string()))?;
    let toml = format!(
        "# Written by `kamstrup addon-config` from /data/options.json at every start of the add-on:\n\
         # edit the add-on's options in Home Assistant, not this file.\n\n{body}"
    );
    Ok(Generated {
        toml,
        secrets,
        mqtt,
        sinks,
    })
}

/// `[mqtt]` for `host:port`.
fn broker(target: &str, tls: bool, username: Option<&str>) -> Table {
    let mut mqtt = Table::new();
    let scheme = if tls { "mqtts" } else { "mqtt" };
    mqtt.insert("url".into(), format!("{scheme}://{target}").into());
    mqtt.insert("client_id".into(), "kamstrup-addon".into());
    if let Some(user) = username {
        mqtt.insert("username".into(), user.into());
    }
    mqtt
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_api_port_may_be_a_number_or_a_string() {
        for port in ["1883", "\"1883\""] {
            let body = format!(
                r#"{{"result":"ok","data":{{"host":"core-mosquitto","port":{port},"ssl":false,
                "protocol":"3.1.1","username":"addons","password":"s3cret","addon":"core_mosquitto"}}}}"#
            );
            let s = MqttService::from_api_body(body.as_bytes())
                .expect("parses")
                .expect("a service");
            assert_eq!((s.host.as_str(), s.port), ("core-mosquitto", 1883));
            assert!(!format!("{s:?}").contains("s3cret"));
        }
    }

    #[test]
    fn service_not_enabled_means_use_the_options() {
        let body = br#"{"result":"error","message":"Service not enabled","data":{}}"#;
        assert!(MqttService::from_api_body(body).expect("parses").is_none());
        let other = br#"{"result":"error","message":"No access to this API"}"#;
        assert!(MqttService::from_api_body(other).is_err());
        assert!(MqttService::from_api_body(b"<html>").is_err());
        let bad_port = br#"{"result":"ok","data":{"host":"h","port":"x"}}"#;
        assert!(MqttService::from_api_body(bad_port).is_err());
    }
}
