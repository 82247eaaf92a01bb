//! Home Assistant REST states (the seed's way, kept as the simple option): one
//! `POST /api/states/<entity_id>` per register with a long-lived token.
//!
//! Each state carries `unit_of_measurement`, `device_class` and `state_class` (mapped exactly as
//! for MQTT discovery, including the `compat` gates), plus the friendly name and icon from the
//! config, so the recorder compiles long-term statistics and the Energy dashboard accepts the
//! sensor. HA answers 201 for a new state and 200 for an update; 401 means a bad token or a
//! non-administrator user (HA requires an admin for this endpoint); 400 carries HA's reason.
//! REST states are not registry entities: they vanish on an HA restart until the next post.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};

use crate::ha_map::{map_register, DeviceClass, HaValue, HaVersion, StateClass, VolumeClass};
use crate::http;
use crate::secret::{Secret, SecretRef};
use crate::validate::{self, ConfigProblem, Names, PathPart, Problems};
use crate::values::{display_url, plain, slug, CounterGuard, CounterUpdates};
use crate::{BuildContext, CheckLine, Delivered, Delivery, Sink, SinkError};

/// `[homeassistant_rest]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HomeAssistantRestConfig {
    /// Set `false` to keep the section but not run the sink.
    #[serde(default = "crate::yes")]
    pub enabled: bool,
    /// HA's base URL, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    /// Long-lived access token of an administrator: `"env:NAME"`, `"file:/path"` or the text.
    #[serde(default)]
    pub token: Option<SecretRef>,
    /// Alternative to `token`: a file holding it.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Oldest HA release to stay compatible with (default `"2025.11"`).
    #[serde(default)]
    pub compat: HaVersion,
    /// `volume` (default) or `water` for m³ registers.
    #[serde(default)]
    pub volume_device_class: VolumeClass,
    /// Per request (default `"10s"`).
    #[serde(
        default = "default_timeout",
        deserialize_with = "crate::duration::text"
    )]
    pub timeout: Duration,
    /// Which registers to post, with entity id, friendly name and icon. Empty (default): every
    /// register of every meter as `sensor.kamstrup_<meter>_<register>_rest`.
    #[serde(default)]
    pub entities: Vec<RestEntity>,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// One posted register (the seed's `*_entity_id`, `*_friendly_name`, `*_icon`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RestEntity {
    /// Meter name; absent = any meter.
    #[serde(default)]
    pub meter: Option<String>,
    /// Register name (`heat_energy`, `volume`, `t1`, ...).
    pub register: String,
    /// E.g. `sensor.stadsverwarming_energy`. Default `sensor.kamstrup_<meter>_<register>_rest`:
    /// never the id MQTT discovery gives the same register ([`default_entity_id`]).
    #[serde(default)]
    pub entity_id: Option<String>,
    /// Default: `Kamstrup <meter> <register name>`.
    #[serde(default)]
    pub friendly_name: Option<String>,
    /// E.g. `mdi:gauge`.
    #[serde(default)]
    pub icon: Option<String>,
}

/// The body of `POST /api/states/<entity_id>`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct StateBody {
    /// The exact value as text (or `unavailable`).
    pub state: String,
    /// Unit, classes, name, icon.
    pub attributes: StateAttributes,
}

/// The attributes HA uses for statistics and display.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct StateAttributes {
    /// HA unit string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_of_measurement: Option<String>,
    /// HA device class.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_class: Option<DeviceClass>,
    /// HA state class.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_class: Option<StateClass>,
    /// Display name.
    pub friendly_name: String,
    /// Icon, if configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
}

/// The Home Assistant REST sink.
pub struct HomeAssistantRestSink {
    cfg: HomeAssistantRestConfig,
    base: Url,
    token: Secret,
    client: reqwest::Client,
    timeout: Duration,
    guard: CounterGuard,
    /// meter name → the states last posted, to mark them unavailable.
    posted: HashMap<String, Vec<(String, StateBody)>>,
}

/// HA's rule for entity ids: `domain.object_id`, lower-case letters, digits and single `_`s.
fn valid_entity_id(id: &str) -> bool {
    let Some((domain, object)) = id.split_once('.') else {
        return false;
    };
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !p.starts_with('_')
            && !p.ends_with('_')
    };
    part_ok(domain) && part_ok(object) && !domain.contains("__")
}

/// The entity id the REST sink posts a register to when the config names none:
/// `sensor.kamstrup_<meter>_<register>_rest`. MQTT discovery suggests
/// `sensor.kamstrup_<meter>_<register>` for the same register; the `_rest` suffix keeps the two
/// apart, so with both sinks configured HA has two entities with one writer each (a shared id
/// gave the discovered entity a `_2` suffix, or two writers on one entity). No register name
/// ends in `rest`, so the suffix cannot meet a discovered id either.
pub fn default_entity_id(meter: &str, register: &str) -> String {
    format!("sensor.kamstrup_{}_{}_rest", slug(meter), slug(register))
}

impl HomeAssistantRestConfig {
    /// The static rules of `[homeassistant_rest]`: an http(s) base URL, a token, valid entity
    /// ids, and register/meter names that readings can carry.
    pub fn validate(&self, names: &Names<'_>) -> Vec<ConfigProblem> {
        let mut p = Problems::new("homeassistant_rest");
        validate::http_url(&mut p, "url", &self.url);
        validate::secret_pair(
            &mut p,
            self.token.is_some(),
            self.token_file.is_some(),
            "token",
        );
        if self.token.is_none() && self.token_file.is_none() {
            p.section("needs token = \"env:HA_TOKEN\" (or token_file): a long-lived access token of an HA administrator");
        }
        for (i, e) in self.entities.iter().enumerate() {
            let at = |key: &str| {
                [
                    PathPart::Key("entities".to_owned()),
                    PathPart::Index(i),
                    PathPart::Key(key.to_owned()),
                ]
            };
            p.register(names, &at("register"), &e.register);
            if let Some(m) = &e.meter {
                p.meter(names, &at("meter"), m);
            }
            if let Some(id) = &e.entity_id {
                if !valid_entity_id(id) {
                    p.item("entities", i, "entity_id", format!(
                        "{id:?} is not a valid HA entity id: lower-case letters, digits and _, like \"sensor.heat_energy\""
                    ));
                }
            }
        }
        p.list
    }
}

impl HomeAssistantRestSink {
    /// Builds the sink (resolves the token; no request is made).
    pub fn new(cfg: &HomeAssistantRestConfig, ctx: &BuildContext<'_>) -> Result<Self, SinkError> {
        validate::first(cfg.validate(&Names::ANY))?;
        let base = http::base_url(&cfg.url, "homeassistant_rest")?;
        let token = SecretRef::pick(&cfg.token, &cfg.token_file, "token")?
            .ok_or_else(|| SinkError::config("[homeassistant_rest] needs token or token_file"))?
            .resolve(ctx.env, ctx.read_file)?;
        let timeout = cfg.timeout.max(Duration::from_secs(1));
        Ok(HomeAssistantRestSink {
            cfg: cfg.clone(),
            base,
            token,
            client: http::client(timeout)?,
            timeout,
            guard: CounterGuard::default(),
            posted: HashMap::new(),
        })
    }

    fn entity_for(&self, meter: &str, register: &str) -> Option<RestEntity> {
        if self.cfg.entities.is_empty() {
            return Some(RestEntity {
                meter: None,
                register: register.to_owned(),
                entity_id: None,
                friendly_name: None,
                icon: None,
            });
        }
        self.cfg
            .entities
            .iter()
            .find(|e| e.register == register && e.meter.as_deref().is_none_or(|m| m == meter))
            .cloned()
    }

    /// The states to post for one reading, as `(entity_id, body)`.
    pub(crate) fn bodies(
        &self,
        d: &Delivered<'_>,
        regs: &[&kamstrup_reading::RegisterValue],
    ) -> Vec<(String, StateBody)> {
        let mut out = Vec::new();
        for reg in regs {
            let Some(entity) = self.entity_for(d.meter_name, &reg.name) else {
                continue;
            };
            let Some(mapped) = map_register(reg, self.cfg.compat, self.cfg.volume_device_class)
            else {
                continue;
            };
            let state = match &mapped.value {
                HaValue::Number(v) => plain(v),
                HaValue::Text(t) => t.clone(),
            };
            let entity_id = entity
                .entity_id
                .unwrap_or_else(|| default_entity_id(d.meter_name, &reg.name));
            let friendly = entity.friendly_name.unwrap_or_else(|| {
                format!(
                    "Kamstrup {} {}",
                    d.meter_name,
                    kamstrup_reading::label(&reg.name).to_lowercase()
                )
            });
            out.push((
                entity_id,
                StateBody {
                    state,
                    attributes: StateAttributes {
                        unit_of_measurement: mapped.unit,
                        device_class: mapped.device_class,
                        state_class: mapped.state_class,
                        friendly_name: friendly,
                        icon: entity.icon,
                    },
                },
            ));
        }
        out
    }

    async fn post(&self, entity_id: &str, body: &StateBody) -> Result<(), SinkError> {
        let url = http::join(&self.base, &format!("api/states/{entity_id}"));
        let resp = self
            .client
            .post(url.clone())
            .bearer_auth(self.token.expose())
            .json(body)
            .send()
            .await
            .map_err(|e| http::send_error(&url, e, self.timeout))?;
        let status = resp.status();
        match status {
            StatusCode::OK | StatusCode::CREATED => Ok(()),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(SinkError::auth(
                display_url(&url),
                format!(
                    "HTTP {}: Home Assistant refused the token; it must be a long-lived access token of an administrator",
                    status.as_u16()
                ),
            )),
            _ => {
                let body = http::short_body(resp).await;
                let reason = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
                    .unwrap_or(body);
                Err(SinkError::rejected(
                    display_url(&url),
                    format!("HTTP {}: {reason}", status.as_u16()),
                ))
            }
        }
    }
}

#[async_trait::async_trait]
impl Sink for HomeAssistantRestSink {
    fn name(&self) -> &str {
        "homeassistant_rest"
    }

    fn delivery(&self) -> Delivery {
        Delivery::Latest
    }

    async fn deliver(&mut self, batch: &[Delivered<'_>]) -> Result<(), SinkError> {
        let mut updates = CounterUpdates::default();
        let mut posted = Vec::new();
        for d in batch {
            let regs = self.guard.admit(d.serial, d.reading, &mut updates);
            let bodies = self.bodies(d, &regs);
            for (entity_id, body) in &bodies {
                self.post(entity_id, body).await?;
            }
            if !bodies.is_empty() {
                posted.push((d.meter_name.to_owned(), bodies));
            }
        }
        self.guard.commit(updates);
        self.posted.extend(posted);
        Ok(())
    }

    async fn check(&mut self) -> Result<Vec<CheckLine>, SinkError> {
        let url = http::join(&self.base, "api/");
        let item = format!("homeassistant_rest {}", display_url(&self.base));
        let result = self
            .client
            .get(url.clone())
            .bearer_auth(self.token.expose())
            .send()
            .await
            .map_err(|e| http::send_error(&url, e, self.timeout));
        Ok(vec![match result {
            Ok(resp) if resp.status().is_success() => {
                CheckLine::ok(item, "API running, token accepted")
            }
            Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED => CheckLine::fail(
                item,
                &SinkError::auth(display_url(&url), "HTTP 401: token refused"),
            ),
            Ok(resp) => CheckLine::fail(
                item,
                &SinkError::rejected(
                    display_url(&url),
                    format!("HTTP {}", resp.status().as_u16()),
                ),
            ),
            Err(e) => CheckLine::fail(item, &e),
        }])
    }

    async fn meter_unavailable(&mut self, meter_name: &str, _serial: u64) -> Result<(), SinkError> {
        let Some(states) = self.posted.get(meter_name).cloned() else {
            return Ok(());
        };
        for (entity_id, mut body) in states {
            // HA's own word for "no value": statistics skip it, dashboards show it greyed out.
            body.state = "unavailable".to_owned();
            self.post(&entity_id, &body).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{delivered_fixture, full_reading};

    fn sink(entities: serde_json::Value, compat: &str) -> HomeAssistantRestSink {
        let cfg: HomeAssistantRestConfig = serde_json::from_value(serde_json::json!({
            "url": "http://127.0.0.1:8123", "token": "env:HA_TOKEN", "entities": entities, "compat": compat,
        }))
        .unwrap();
        let env = |n: &str| (n == "HA_TOKEN").then(|| "abc".to_string());
        let files =
            |_: &std::path::Path| -> std::io::Result<String> { Err(std::io::Error::other("no")) };
        HomeAssistantRestSink::new(&cfg, &BuildContext::new(&env, &files)).unwrap()
    }

    #[test]
    fn seed_style_entities() {
        let s = sink(
            serde_json::json!([
                {"register": "heat_energy", "entity_id": "sensor.stadsverwarming_energy",
                 "friendly_name": "Stadsverwarming energie", "icon": "mdi:gauge"},
                {"register": "volume", "entity_id": "sensor.stadsverwarming_volume",
                 "friendly_name": "Stadsverwarming volume", "icon": "mdi:water"},
                {"register": "t1", "entity_id": "sensor.stadsverwarming_temperature_in",
                 "friendly_name": "Stadsverwarming inkomend", "icon": "mdi:thermometer"},
                {"register": "t2", "entity_id": "sensor.stadsverwarming_temperature_out",
                 "friendly_name": "Stadsverwarming uitgaand", "icon": "mdi:thermometer"},
            ]),
            "2025.11",
        );
        let reading = full_reading();
        let d = delivered_fixture(&reading);
        let regs: Vec<_> = reading.registers.iter().collect();
        let bodies = s.bodies(&d, &regs);
        let text: Vec<String> = bodies
            .iter()
            .map(|(id, b)| {
                format!(
                    "POST /api/states/{id}\n{}",
                    serde_json::to_string_pretty(b).unwrap()
                )
            })
            .collect();
        insta::assert_snapshot!(text.join("\n"));
    }

    #[test]
    fn default_entities_old_ha() {
        let s = sink(serde_json::json!([]), "2024.3");
        let reading = full_reading();
        let d = delivered_fixture(&reading);
        let regs: Vec<_> = reading.registers.iter().collect();
        let bodies = s.bodies(&d, &regs);
        let text: Vec<String> = bodies
            .iter()
            .map(|(id, b)| {
                format!(
                    "POST /api/states/{id}\n{}",
                    serde_json::to_string(b).unwrap()
                )
            })
            .collect();
        insta::assert_snapshot!(text.join("\n"));
    }

    #[test]
    fn entity_ids_validated() {
        assert!(valid_entity_id("sensor.stadsverwarming_energy"));
        assert!(!valid_entity_id("sensor.Energy"));
        assert!(!valid_entity_id("sensor"));
        assert!(!valid_entity_id("sensor._x"));
        let cfg: HomeAssistantRestConfig = serde_json::from_value(serde_json::json!({
            "url": "http://h:1", "token": "t", "entities": [{"register": "t1", "entity_id": "bad id"}],
        }))
        .unwrap();
        let env = |_: &str| -> Option<String> { None };
        let files =
            |_: &std::path::Path| -> std::io::Result<String> { Err(std::io::Error::other("no")) };
        let e = HomeAssistantRestSink::new(&cfg, &BuildContext::new(&env, &files))
            .err()
            .unwrap();
        assert_eq!(e.kind(), "config");
        let cfg: HomeAssistantRestConfig =
            serde_json::from_value(serde_json::json!({"url": "http://h:1"})).unwrap();
        let e = HomeAssistantRestSink::new(&cfg, &BuildContext::new(&env, &files))
            .err()
            .unwrap();
        assert!(e.to_string().contains("token"));
    }
}
