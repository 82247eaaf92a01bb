//! Home Assistant MQTT discovery, the default way into HA: retained discovery configs (one per
//! meter with `cmps` on HA ≥ 2024.11, else one per entity), retained JSON states, availability
//! with a last will, re-publish on HA's birth.
//!
//! Topics (`<prefix>` = `discovery_prefix`, default `homeassistant`; `<base>` = `base_topic`,
//! default `kamstrup`; `<uid>` = `kamstrup_<serial>_<entity>`):
//!
//! | topic | retained | payload |
//! |---|---|---|
//! | `<prefix>/device/kamstrup_<serial>/config` | yes | [`DeviceConfig`]: device, origin, `cmps` (device discovery) |
//! | `<prefix>/sensor/<uid>/config`, `<prefix>/binary_sensor/<uid>/config` | yes | [`EntityConfig`] (per-entity discovery); empty = removed |
//! | `<base>/<serial>/state` | yes | `{"heat_energy":55.006,…,"info_flags":{"problem":"OFF",…},"taken_at":"…"}` |
//! | `<base>/<serial>/health` | yes | `{"last_read":"…","read_errors_24h":0}`: the bridge's view of the meter |
//! | `<base>/<serial>/availability` | yes | `online` / `offline` (meter could not be read) |
//! | `<base>/status` | yes | `online` on connect, `offline` on shutdown and as last will |
//!
//! Entities per meter: one sensor per register; for the info code one `binary_sensor`
//! (`device_class: problem`, diagnostic) for "any problem" plus one per named bit of the meter's
//! family ([`kamstrup_reading::InfoFamily`]); two diagnostic sensors for the bridge's health
//! (last successful read, read errors in the last 24 h), available whenever the bridge is, so
//! that they still tell something while the meter cannot be read. Register entities are
//! available only when both the bridge and its meter are (`availability_mode: all`).
//!
//! Switching between per-entity and device discovery (by `compat` or `discovery`) migrates:
//! `{"migrate_discovery": true}` to each of our old configs of that meter, the new config, then
//! the old topics are cleared; HA keeps the entity ids and history (same `unique_id`s). Clearing
//! the device topic after a switch back to per-entity configs is what HA's log asks for; HA
//! 2026.2 then warns once per meter "No device components to cleanup" (nothing is lost; keeping
//! the retained device config instead would bring the entities back twice at HA's next start).
//!
//! Back-filled hours: with statistics import on (a token and HA's URL known, see
//! [`HomeAssistantConfig::statistics`]) the sink takes logged records too
//! ([`Sink::accepts_logged`]); they are never published as state, but imported as hourly
//! long-term statistics of the energy and volume entities ([`crate::ha_statistics`]).
//!
//! Removal: the sink subscribes to `<prefix>/{sensor,binary_sensor,device}/+/config` and
//! remembers which retained configs are its own (`origin.name` is `kamstrup-bridge` and a state
//! topic is under `<base>/`). A config neither configured ([`crate::MeterContext`]) nor delivered
//! gets an empty retained payload; configs of other serials are removed once every configured
//! meter has delivered (so a meter that is only temporarily unreadable keeps its entities).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::Utc;
use kamstrup_reading::{InfoStatus, ModelText};
use rumqttc::{LastWill, QoS};
use serde::{Deserialize, Serialize};

use crate::ha_map::{
    map_register, DeviceClass, HaEntity, HaValue, HaVersion, StateClass, VolumeClass,
};
use crate::ha_statistics::{series_of, wait_for_ha_compile, StatisticsImporter, StatisticsTarget};
use crate::mqtt::{LinkHooks, MqttLink, MqttSettings, OutMsg};
use crate::secret::SecretRef;
use crate::validate::{self, topic_problem, ConfigProblem, Problems};
use crate::values::{slug, CounterGuard, CounterUpdates, ExactNumber};
use crate::{
    BuildContext, CheckLine, Delivered, Delivery, HomeAssistantRestConfig, MeterContext,
    MqttConfig, Sink, SinkError,
};

/// `origin.name` in every config; also how our own retained configs are recognised.
pub const ORIGIN_NAME: &str = "kamstrup-bridge";

/// The entity id discovery suggests for a register of a meter (`default_entity_id` /
/// `object_id`): `sensor.kamstrup_<meter>_<register>`.
pub fn discovered_entity_id(meter: &str, register: &str) -> String {
    format!("sensor.kamstrup_{}_{}", slug(meter), slug(register))
}

/// True if `entity_id` is in the id space discovery uses for `meter`
/// (`sensor.kamstrup_<meter>_…` or `binary_sensor.kamstrup_<meter>_…`): another sink writing
/// there would collide with a discovered entity now or after a register is added. Ids ending
/// in `_rest` are the REST sink's own (no discovered id ends so).
pub fn claims_entity_id(meter: &str, entity_id: &str) -> bool {
    let object = format!("kamstrup_{}_", slug(meter));
    entity_id.split_once('.').is_some_and(|(domain, rest)| {
        matches!(domain, "sensor" | "binary_sensor")
            && rest.starts_with(&object)
            && !rest.ends_with("_rest")
    })
}

/// Per-entity or device-based discovery.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiscoveryMode {
    /// Device discovery when `compat` ≥ 2024.11, else per entity (default).
    #[default]
    Auto,
    /// One `<prefix>/device/<id>/config` with `cmps` per meter (HA ≥ 2024.11).
    Device,
    /// One config per entity: what Domoticz' and openHAB's HA-discovery readers understand.
    Entity,
}

/// `[homeassistant]`: MQTT discovery through `[mqtt]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HomeAssistantConfig {
    /// Set `false` to keep the section but not run the sink.
    #[serde(default = "crate::yes")]
    pub enabled: bool,
    /// HA's discovery prefix (default `homeassistant`); HA's birth topic is `<prefix>/status`.
    #[serde(default = "default_prefix")]
    pub discovery_prefix: String,
    /// Root of our state and availability topics (default `kamstrup`).
    #[serde(default = "default_base")]
    pub base_topic: String,
    /// Oldest HA release to stay compatible with (default `"2025.11"`); see [`HaVersion`].
    #[serde(default)]
    pub compat: HaVersion,
    /// `auto` (default), `device` or `entity`; see [`DiscoveryMode`].
    #[serde(default)]
    pub discovery: DiscoveryMode,
    /// `volume` (default) or `water` for m³ registers.
    #[serde(default)]
    pub volume_device_class: VolumeClass,
    /// After how long HA marks a value stale (`"45m"`; sent to HA in whole seconds). Default:
    /// 3 × the meter's interval, or 3 h when the interval is unknown.
    #[serde(default, deserialize_with = "crate::duration::optional_text")]
    pub expire_after: Option<Duration>,
    /// Delay between HA's `online` birth message and our re-publish (default `"1s"`, plus a
    /// random part of up to half of it), so that many devices do not answer in the same instant.
    #[serde(
        default = "default_republish_delay",
        deserialize_with = "crate::duration::text"
    )]
    pub republish_delay: Duration,
    /// Remove our retained configs of entities that are no longer configured (default true).
    #[serde(default = "crate::yes")]
    pub remove_stale: bool,
    /// Import back-filled hours as HA long-term statistics of the energy and volume entities
    /// (websocket `recorder/import_statistics`). Default: on when a token and HA's URL are
    /// known (from here or from `[homeassistant_rest]`); `false` turns it off; `true` makes a
    /// missing token or URL a config error.
    #[serde(default)]
    pub statistics: Option<bool>,
    /// HA's base URL for the websocket API, e.g. `http://127.0.0.1:8123`. Default:
    /// `[homeassistant_rest] url`.
    #[serde(default)]
    pub url: Option<String>,
    /// Long-lived access token of an HA administrator (`"env:NAME"`, `"file:/path"` or the
    /// text). Default: `[homeassistant_rest]`'s token.
    #[serde(default)]
    pub token: Option<SecretRef>,
    /// Alternative to `token`: a file holding it.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

/// Per websocket step of a statistics import (HA answers an import of weeks of hours at once).
const STATISTICS_TIMEOUT: Duration = Duration::from_secs(30);

fn default_prefix() -> String {
    "homeassistant".to_owned()
}
fn default_base() -> String {
    "kamstrup".to_owned()
}
fn default_republish_delay() -> Duration {
    Duration::from_secs(1)
}

impl Default for HomeAssistantConfig {
    fn default() -> Self {
        HomeAssistantConfig {
            enabled: true,
            discovery_prefix: default_prefix(),
            base_topic: default_base(),
            compat: HaVersion::default(),
            discovery: DiscoveryMode::default(),
            volume_device_class: VolumeClass::default(),
            expire_after: None,
            republish_delay: default_republish_delay(),
            remove_stale: true,
            statistics: None,
            url: None,
            token: None,
            token_file: None,
        }
    }
}

impl HomeAssistantConfig {
    /// The static rules of `[homeassistant]`: both topics publishable, without a trailing `/`.
    pub fn validate(&self) -> Vec<ConfigProblem> {
        let mut p = Problems::new("homeassistant");
        for (topic, key) in [
            (&self.discovery_prefix, "discovery_prefix"),
            (&self.base_topic, "base_topic"),
        ] {
            if let Some(e) = topic_problem(topic) {
                p.key(key, e);
            } else if topic.ends_with('/') {
                p.key(key, format!("{topic:?} must not end with /"));
            }
        }
        if let Some(url) = &self.url {
            validate::http_url(&mut p, "url", url);
        }
        validate::secret_pair(
            &mut p,
            self.token.is_some(),
            self.token_file.is_some(),
            "token",
        );
        p.list
    }

    /// [`HomeAssistantConfig::validate`] plus the statistics rules that look at
    /// `[homeassistant_rest]` (where the token and URL may come from).
    pub fn validate_with(&self, rest: Option<&HomeAssistantRestConfig>) -> Vec<ConfigProblem> {
        let mut out = self.validate();
        let mut p = Problems::new("homeassistant");
        let has_token = self.token.is_some()
            || self.token_file.is_some()
            || rest.is_some_and(|r| r.token.is_some() || r.token_file.is_some());
        let has_url = self.url.is_some() || rest.is_some();
        if self.statistics == Some(true) && !(has_token && has_url) {
            p.key(
                "statistics",
                "statistics import needs HA's url and an administrator's token: set url and token_file here, or add a [homeassistant_rest] section",
            );
        } else if self.statistics != Some(false)
            && (self.token.is_some() || self.token_file.is_some())
            && !has_url
        {
            p.key(
                if self.token.is_some() { "token" } else { "token_file" },
                "a token for statistics import needs HA's base URL: add url = \"http://127.0.0.1:8123\"",
            );
        }
        out.extend(p.list);
        out
    }

    /// Where statistics go, resolved (token read now), or `None` when import is off.
    pub(crate) fn statistics_target(
        &self,
        rest: Option<&HomeAssistantRestConfig>,
        ctx: &BuildContext<'_>,
    ) -> Result<Option<StatisticsTarget>, SinkError> {
        if self.statistics == Some(false) {
            return Ok(None);
        }
        let url = self.url.as_deref().or(rest.map(|r| r.url.as_str()));
        let token = match SecretRef::pick(&self.token, &self.token_file, "token")? {
            Some(t) => Some(t),
            None => match rest {
                Some(r) => SecretRef::pick(&r.token, &r.token_file, "token")?,
                None => None,
            },
        };
        let (Some(url), Some(token)) = (url, token) else {
            if self.statistics == Some(true) {
                return Err(SinkError::config(
                    "[homeassistant] statistics = true needs url and token_file (or a [homeassistant_rest] section)",
                ));
            }
            return Ok(None);
        };
        Ok(Some(StatisticsTarget {
            base: crate::http::base_url(url, "homeassistant")?,
            token: token.resolve(ctx.env, ctx.read_file)?,
            timeout: rest.map_or(STATISTICS_TIMEOUT, |r| r.timeout.max(STATISTICS_TIMEOUT)),
        }))
    }

    /// Whether this configuration publishes one device config per meter.
    pub fn device_discovery(&self) -> bool {
        match self.discovery {
            DiscoveryMode::Auto => self.compat.has_device_discovery(),
            DiscoveryMode::Device => true,
            DiscoveryMode::Entity => false,
        }
    }
}

/// The discovery payload of one entity (full key names; HA also accepts abbreviations). As a
/// per-entity config it carries `device` and `origin`; as a component of a [`DeviceConfig`] it
/// carries `platform` instead.
#[derive(Clone, Debug, Serialize)]
pub struct EntityConfig {
    /// `sensor` / `binary_sensor` (only inside `cmps`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<&'static str>,
    /// Entity name; HA shows `<device name> <name>`.
    pub name: String,
    /// `kamstrup_<serial>_<entity>`.
    pub unique_id: String,
    /// Legacy entity id hint, only for `compat` < 2025.10.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
    /// `sensor.kamstrup_<meter>_<register>`, `binary_sensor.kamstrup_<meter>_info_<flag>`.
    pub default_entity_id: String,
    /// The meter's JSON state (or health) topic.
    pub state_topic: String,
    /// `{{ value_json.<key> }}`.
    pub value_template: String,
    /// HA unit string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_of_measurement: Option<String>,
    /// HA device class.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_class: Option<DeviceClass>,
    /// HA state class.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_class: Option<StateClass>,
    /// `diagnostic` for info code, problems, hour counter and the bridge's health.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_category: Option<&'static str>,
    /// The meter's own resolution.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggested_display_precision: Option<u16>,
    /// Seconds until HA marks the value stale (meter values only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_after: Option<u64>,
    /// Bridge (and, for meter values, meter) availability topics.
    pub availability: Vec<AvailabilityTopic>,
    /// `all`: available only if every topic says so.
    pub availability_mode: &'static str,
    /// The meter as an HA device (per-entity configs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceBlock>,
    /// Who published this (per-entity configs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<OriginBlock>,
}

/// The device-based discovery payload of one meter (HA ≥ 2024.11).
#[derive(Clone, Debug, Serialize)]
pub struct DeviceConfig {
    /// The meter as an HA device.
    pub device: DeviceBlock,
    /// Who published this (mandatory for device discovery).
    pub origin: OriginBlock,
    /// The entities, by unique id.
    pub cmps: BTreeMap<String, EntityConfig>,
}

/// One availability topic (payloads are HA's defaults `online` / `offline`).
#[derive(Clone, Debug, Serialize)]
pub struct AvailabilityTopic {
    /// The topic.
    pub topic: String,
}

/// The device block: only keys HA 2024.3 accepts (an unknown key there drops the entity).
#[derive(Clone, Debug, Serialize)]
pub struct DeviceBlock {
    /// `["kamstrup_<serial>"]`.
    pub identifiers: Vec<String>,
    /// `Kamstrup <meter name>`.
    pub name: String,
    /// `Kamstrup`.
    pub manufacturer: &'static str,
    /// E.g. `MULTICAL 403`, only when known for sure (never guessed from a type code).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The raw type the meter reported (`KMP type 0x0004 rev F1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hw_version: Option<String>,
    /// The meter serial (HA ≥ 2024.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    /// The meter's software edition (KMP register 1005), when it was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sw_version: Option<String>,
}

/// The origin block.
#[derive(Clone, Debug, Serialize)]
pub struct OriginBlock {
    /// `kamstrup-bridge`.
    pub name: &'static str,
    /// This crate's version.
    pub sw_version: &'static str,
}

/// Everything acknowledged by the broker, for re-publishing, plus what we saw retained there.
#[derive(Debug, Default)]
struct Published {
    bridge_topic: String,
    configs: BTreeMap<String, Vec<u8>>,
    availability: BTreeMap<String, &'static str>,
    states: BTreeMap<String, Vec<u8>>,
    /// Config topics whose retained payload on the broker is one of ours.
    on_broker: BTreeSet<String>,
    /// The retained configs of this connection have all arrived (see [`HaHooks::sync_topic`]).
    synced: bool,
    /// When the sync message or the latest config message arrived: see [`SYNC_QUIET`].
    last_sync_traffic: Option<tokio::time::Instant>,
}

/// How long no config message must have arrived, after the sync message, before a new
/// connection's retained configs count as known. A broker sends one client's messages in
/// order per topic, and Mosquitto across topics too, but MQTT does not promise that across
/// subscriptions: rumqttd was seen to deliver the sync message before some of the retained
/// configs matching an earlier subscription (a layout switch then migrated none of them).
const SYNC_QUIET: Duration = Duration::from_millis(200);

impl Published {
    fn everything(&self) -> Vec<OutMsg> {
        let mut out = vec![OutMsg::new(self.bridge_topic.clone(), "online", true)];
        out.extend(
            self.configs
                .iter()
                .map(|(t, p)| OutMsg::new(t.clone(), p.clone(), true)),
        );
        out.extend(
            self.availability
                .iter()
                .map(|(t, p)| OutMsg::new(t.clone(), *p, true)),
        );
        out.extend(
            self.states
                .iter()
                .map(|(t, p)| OutMsg::new(t.clone(), p.clone(), true)),
        );
        out
    }
}

fn lock(shared: &Mutex<Published>) -> MutexGuard<'_, Published> {
    // A panic elsewhere cannot leave this map half-written in a harmful way: keep going.
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Deserialize)]
struct OwnerProbe {
    #[serde(default)]
    origin: Option<OriginProbe>,
    #[serde(default)]
    state_topic: Option<String>,
    #[serde(default)]
    cmps: Option<BTreeMap<String, ComponentProbe>>,
}

#[derive(Deserialize)]
struct ComponentProbe {
    #[serde(default)]
    state_topic: Option<String>,
}

#[derive(Deserialize)]
struct OriginProbe {
    #[serde(default)]
    name: Option<String>,
}

/// `delay` plus up to half of it again, so that bridges restarted together do not all answer
/// HA's birth message in the same instant.
fn jitter(delay: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let half = delay.as_millis() / 2;
    let extra = if half == 0 {
        0
    } else {
        u128::from(nanos) % half
    };
    delay + Duration::from_millis(u64::try_from(extra).unwrap_or(0))
}

/// The discovery platforms we publish under, and the device topic folder.
const CONFIG_FOLDERS: [&str; 3] = ["sensor", "binary_sensor", "device"];

struct HaHooks {
    shared: Arc<Mutex<Published>>,
    status_topic: String,
    /// A topic only this connection uses: a message published to it after subscribing comes
    /// back after every retained message of the earlier subscriptions (the broker handles one
    /// client's packets in order), so its return means "our old configs are known". A layout
    /// switch must know them before the first new config goes out.
    sync_topic: String,
    watch_configs: bool,
    prefix: String,
    base_prefix: String,
    delay: Duration,
}

impl HaHooks {
    fn is_ours(&self, payload: &[u8]) -> bool {
        let Ok(p) = serde_json::from_slice::<OwnerProbe>(payload) else {
            return false;
        };
        let under_base = |t: &Option<String>| {
            t.as_deref()
                .is_some_and(|t| t.starts_with(&self.base_prefix))
        };
        p.origin.and_then(|o| o.name).as_deref() == Some(ORIGIN_NAME)
            && (under_base(&p.state_topic)
                || p.cmps
                    .is_some_and(|c| c.values().any(|c| under_base(&c.state_topic))))
    }

    fn is_config_topic(&self, topic: &str) -> bool {
        topic.ends_with("/config")
            && CONFIG_FOLDERS
                .iter()
                .any(|f| topic.starts_with(&format!("{}/{f}/", self.prefix)))
    }
}

impl LinkHooks for HaHooks {
    fn subscriptions(&self) -> Vec<String> {
        let mut subs = vec![self.status_topic.clone(), self.sync_topic.clone()];
        if self.watch_configs {
            subs.extend(
                CONFIG_FOLDERS
                    .iter()
                    .map(|f| format!("{}/{f}/+/config", self.prefix)),
            );
        }
        subs
    }

    fn on_connect(&mut self) -> Vec<OutMsg> {
        let mut p = lock(&self.shared);
        p.synced = false;
        p.last_sync_traffic = None;
        let mut out = p.everything();
        out.push(OutMsg::new(self.sync_topic.clone(), "sync", false));
        out
    }

    fn on_message(&mut self, topic: &str, payload: &[u8]) -> Option<Duration> {
        if topic == self.sync_topic {
            let mut p = lock(&self.shared);
            p.synced = true;
            p.last_sync_traffic = Some(tokio::time::Instant::now());
            return None;
        }
        if topic == self.status_topic {
            return (payload == b"online").then(|| jitter(self.delay));
        }
        if self.is_config_topic(topic) {
            let ours = !payload.is_empty() && self.is_ours(payload);
            let mut p = lock(&self.shared);
            p.last_sync_traffic = Some(tokio::time::Instant::now());
            if ours {
                p.on_broker.insert(topic.to_owned());
            } else {
                p.on_broker.remove(topic);
            }
        }
        None
    }

    fn on_republish(&mut self) -> Vec<OutMsg> {
        tracing::info!("Home Assistant came online: re-publishing discovery and states");
        lock(&self.shared).everything()
    }
}

/// One entity of a meter before it is wrapped as a per-entity config or a device component.
struct Component {
    platform: &'static str,
    config: EntityConfig,
}

/// The Home Assistant MQTT discovery sink.
pub struct HomeAssistantSink {
    cfg: HomeAssistantConfig,
    link: MqttLink,
    shared: Arc<Mutex<Published>>,
    meters: Vec<MeterContext>,
    /// Meters this bridge read before ([`BuildContext::known_serials`]).
    known_serials: BTreeSet<u64>,
    guard: CounterGuard,
    /// meter name → serial, for every meter that delivered.
    serials: HashMap<String, u64>,
    /// serial → config topics delivered since start.
    delivered: HashMap<u64, BTreeSet<String>>,
    /// serial → the health last published (for counting failed reads between deliveries).
    health: HashMap<u64, Health>,
    /// How long a delivery waits for the retained configs of a new connection.
    sync_wait: Duration,
    /// Built for `kamstrup check`: publishes no "offline" at the end.
    probe: bool,
    /// Long-term statistics for logged records, when configured.
    statistics: Option<StatisticsImporter>,
}

/// The bridge's view of one meter, published on `<base>/<serial>/health`.
#[derive(Clone, Debug, Serialize)]
struct Health {
    last_read: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    read_errors_24h: Option<u64>,
}

impl HomeAssistantSink {
    /// Starts the sink (connects in the background). Needs a Tokio runtime.
    pub fn new(
        cfg: &HomeAssistantConfig,
        mqtt: &MqttConfig,
        ctx: &BuildContext<'_>,
    ) -> Result<Self, SinkError> {
        let settings = MqttSettings::resolve(mqtt, ctx)?;
        let stats = cfg.statistics_target(None, ctx)?;
        Self::start(cfg, &settings, &ctx.meters, &ctx.known_serials, stats)
    }

    pub(crate) fn start(
        cfg: &HomeAssistantConfig,
        settings: &MqttSettings,
        meters: &[MeterContext],
        known_serials: &[u64],
        stats: Option<StatisticsTarget>,
    ) -> Result<Self, SinkError> {
        validate::first(cfg.validate())?;
        let statistics = stats
            .map(|t| StatisticsImporter::new(&t, cfg.compat))
            .transpose()?;
        let bridge_topic = format!("{}/status", cfg.base_topic);
        let shared = Arc::new(Mutex::new(Published {
            bridge_topic: bridge_topic.clone(),
            ..Published::default()
        }));
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let hooks = HaHooks {
            shared: shared.clone(),
            status_topic: format!("{}/status", cfg.discovery_prefix),
            sync_topic: format!("{}/sync/{}-{nonce}", cfg.base_topic, std::process::id()),
            // Our own retained configs are also what a discovery-mode switch migrates.
            watch_configs: true,
            prefix: cfg.discovery_prefix.clone(),
            base_prefix: format!("{}/", cfg.base_topic),
            delay: cfg.republish_delay,
        };
        // A check must not mark a running daemon's entities unavailable: no will, no "offline".
        let will = (!settings.probe)
            .then(|| LastWill::new(bridge_topic, "offline", QoS::AtLeastOnce, true));
        let link = MqttLink::start(settings, "ha", will, Box::new(hooks));
        Ok(HomeAssistantSink {
            cfg: cfg.clone(),
            link,
            shared,
            meters: meters.to_vec(),
            known_serials: known_serials.iter().copied().collect(),
            guard: CounterGuard::default(),
            serials: HashMap::new(),
            delivered: HashMap::new(),
            health: HashMap::new(),
            sync_wait: settings.timeout,
            statistics,
            probe: settings.probe,
        })
    }

    fn unique_id(serial: u64, entity: &str) -> String {
        format!("kamstrup_{serial}_{}", slug(entity))
    }

    fn entity_topic(&self, platform: &str, serial: u64, entity: &str) -> String {
        format!(
            "{}/{platform}/{}/config",
            self.cfg.discovery_prefix,
            Self::unique_id(serial, entity)
        )
    }

    fn config_topic(&self, serial: u64, register: &str) -> String {
        self.entity_topic("sensor", serial, register)
    }

    fn device_topic(&self, serial: u64) -> String {
        format!(
            "{}/device/kamstrup_{serial}/config",
            self.cfg.discovery_prefix
        )
    }

    fn state_topic(&self, serial: u64) -> String {
        format!("{}/{serial}/state", self.cfg.base_topic)
    }

    fn health_topic(&self, serial: u64) -> String {
        format!("{}/{serial}/health", self.cfg.base_topic)
    }

    fn availability_topic(&self, serial: u64) -> String {
        format!("{}/{serial}/availability", self.cfg.base_topic)
    }

    /// Our config topics of one meter in the per-entity layout start with these.
    fn entity_prefixes(&self, serial: u64) -> [String; 2] {
        ["sensor", "binary_sensor"]
            .map(|p| format!("{}/{p}/kamstrup_{serial}_", self.cfg.discovery_prefix))
    }

    fn expire_after(&self, meter_name: &str) -> u64 {
        if let Some(d) = self.cfg.expire_after {
            // HA takes whole seconds; a part second is rounded up, never to 0.
            return (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1);
        }
        self.meters
            .iter()
            .find(|m| m.name == meter_name)
            .and_then(|m| m.interval)
            .map(|i| {
                (i.as_secs() + u64::from(i.subsec_nanos() > 0))
                    .saturating_mul(3)
                    .max(60)
            })
            .unwrap_or(10_800)
    }

    fn device_block(&self, d: &Delivered<'_>) -> DeviceBlock {
        let model = d.model.map(ModelText::parse);
        DeviceBlock {
            identifiers: vec![format!("kamstrup_{}", d.serial)],
            name: format!("Kamstrup {}", d.meter_name),
            manufacturer: "Kamstrup",
            model: model.and_then(|m| m.model).map(str::to_owned),
            hw_version: model.and_then(|m| m.hw).map(str::to_owned),
            serial_number: self
                .cfg
                .compat
                .has_device_serial_number()
                .then(|| d.serial.to_string()),
            sw_version: d
                .reading
                .get("software_edition")
                .map(|r| r.value.to_string()),
        }
    }

    fn origin() -> OriginBlock {
        OriginBlock {
            name: ORIGIN_NAME,
            sw_version: env!("CARGO_PKG_VERSION"),
        }
    }

    /// Bridge and meter availability (meter values), or the bridge's alone (health).
    fn availability(&self, serial: u64, with_meter: bool) -> Vec<AvailabilityTopic> {
        let mut out = vec![AvailabilityTopic {
            topic: format!("{}/status", self.cfg.base_topic),
        }];
        if with_meter {
            out.push(AvailabilityTopic {
                topic: self.availability_topic(serial),
            });
        }
        out
    }

    /// A component with the keys every entity of a meter shares filled in.
    #[allow(clippy::too_many_arguments)]
    fn component(
        &self,
        d: &Delivered<'_>,
        platform: &'static str,
        entity: &str,
        name: String,
        state_topic: String,
        value_template: String,
        meter_value: bool,
    ) -> Component {
        let object = format!("kamstrup_{}_{}", slug(d.meter_name), slug(entity));
        Component {
            platform,
            config: EntityConfig {
                platform: None,
                name,
                unique_id: Self::unique_id(d.serial, entity),
                object_id: self.cfg.compat.wants_object_id().then(|| object.clone()),
                default_entity_id: format!("{platform}.{object}"),
                state_topic,
                value_template,
                unit_of_measurement: None,
                device_class: None,
                state_class: None,
                entity_category: None,
                suggested_display_precision: None,
                expire_after: meter_value.then(|| self.expire_after(d.meter_name)),
                availability: self.availability(d.serial, meter_value),
                availability_mode: "all",
                device: None,
                origin: None,
            },
        }
    }

    /// The entity of one register.
    fn register_component(
        &self,
        d: &Delivered<'_>,
        register: &str,
        entity: &HaEntity,
    ) -> Component {
        let mut c = self.component(
            d,
            "sensor",
            register,
            kamstrup_reading::label(register),
            self.state_topic(d.serial),
            format!("{{{{ value_json.{} }}}}", slug(register)),
            true,
        );
        c.config.unit_of_measurement = entity.unit.clone();
        c.config.device_class = entity.device_class;
        c.config.state_class = entity.state_class;
        c.config.entity_category = entity.diagnostic.then_some("diagnostic");
        c.config.suggested_display_precision = entity.precision();
        c
    }

    /// The per-entity discovery payload of one register of one meter.
    #[cfg(test)]
    pub(crate) fn sensor_config(
        &self,
        d: &Delivered<'_>,
        register: &str,
        entity: &HaEntity,
    ) -> EntityConfig {
        let mut c = self.register_component(d, register, entity).config;
        c.device = Some(self.device_block(d));
        c.origin = Some(Self::origin());
        c
    }

    /// The problem binary sensors of the info code: "any problem", then one per named bit.
    fn info_components(&self, d: &Delivered<'_>, info: &InfoStatus) -> Vec<Component> {
        let problem = |c: &mut Component| {
            c.config.device_class = Some(DeviceClass::Problem);
            c.config.entity_category = Some("diagnostic");
        };
        let mut any = self.component(
            d,
            "binary_sensor",
            "info_problem",
            "Info problem".to_owned(),
            self.state_topic(d.serial),
            "{{ value_json.info_flags.problem }}".to_owned(),
            true,
        );
        problem(&mut any);
        let mut out = vec![any];
        for flag in info.family.map_or(&[][..], |f| f.flags()) {
            let mut c = self.component(
                d,
                "binary_sensor",
                &format!("info_{}", flag.name),
                format!("Info: {}", flag.description),
                self.state_topic(d.serial),
                format!("{{{{ value_json.info_flags.{} }}}}", flag.name),
                true,
            );
            problem(&mut c);
            out.push(c);
        }
        out
    }

    /// The bridge's health entities of a meter.
    fn health_components(&self, d: &Delivered<'_>) -> Vec<Component> {
        let mut last = self.component(
            d,
            "sensor",
            "last_read",
            "Last successful read".to_owned(),
            self.health_topic(d.serial),
            "{{ value_json.last_read }}".to_owned(),
            false,
        );
        last.config.device_class = Some(DeviceClass::Timestamp);
        last.config.entity_category = Some("diagnostic");
        let mut out = vec![last];
        if d.read_errors_24h.is_some() {
            let mut errors = self.component(
                d,
                "sensor",
                "read_errors_24h",
                "Read errors (24 h)".to_owned(),
                self.health_topic(d.serial),
                "{{ value_json.read_errors_24h }}".to_owned(),
                false,
            );
            errors.config.state_class = Some(StateClass::Measurement);
            errors.config.entity_category = Some("diagnostic");
            out.push(errors);
        }
        out
    }

    /// `(topic, payload)` of every discovery config of one meter, in the configured layout.
    fn discovery_messages(
        &self,
        d: &Delivered<'_>,
        components: Vec<Component>,
    ) -> Result<Vec<(String, Vec<u8>)>, SinkError> {
        if self.cfg.device_discovery() {
            let cmps = components
                .into_iter()
                .map(|mut c| {
                    c.config.platform = Some(c.platform);
                    (c.config.unique_id.clone(), c.config)
                })
                .collect();
            let device = DeviceConfig {
                device: self.device_block(d),
                origin: Self::origin(),
                cmps,
            };
            return Ok(vec![(self.device_topic(d.serial), to_json(&device)?)]);
        }
        components
            .into_iter()
            .map(|mut c| {
                let topic = format!(
                    "{}/{}/{}/config",
                    self.cfg.discovery_prefix, c.platform, c.config.unique_id
                );
                c.config.device = Some(self.device_block(d));
                c.config.origin = Some(Self::origin());
                Ok((topic, to_json(&c.config)?))
            })
            .collect()
    }

    /// Our retained configs of `serial` in the layout we no longer use: to be migrated.
    fn old_layout(&self, on_broker: &BTreeSet<String>, serial: u64) -> Vec<String> {
        if self.cfg.device_discovery() {
            let prefixes = self.entity_prefixes(serial);
            on_broker
                .iter()
                .filter(|t| prefixes.iter().any(|p| t.starts_with(p.as_str())))
                .cloned()
                .collect()
        } else {
            let device = self.device_topic(serial);
            on_broker
                .iter()
                .filter(|t| **t == device)
                .cloned()
                .collect()
        }
    }

    /// Config topics we must keep: configured and delivered entities of known meters.
    fn wanted(
        &self,
        serials: &HashMap<String, u64>,
        delivered: &HashMap<u64, BTreeSet<String>>,
    ) -> BTreeSet<String> {
        let mut wanted: BTreeSet<String> = delivered.values().flatten().cloned().collect();
        for m in &self.meters {
            if let Some(serial) = serials.get(&m.name) {
                if self.cfg.device_discovery() {
                    wanted.insert(self.device_topic(*serial));
                } else {
                    for r in &m.registers {
                        wanted.insert(self.config_topic(*serial, r));
                    }
                }
            }
        }
        wanted
    }

    /// Our retained configs to clear now.
    fn stale(
        &self,
        on_broker: &BTreeSet<String>,
        serials: &HashMap<String, u64>,
        delivered: &HashMap<u64, BTreeSet<String>>,
    ) -> Vec<String> {
        if !self.cfg.remove_stale {
            return Vec::new();
        }
        let wanted = self.wanted(serials, delivered);
        // Configs of a meter that is no longer configured go only once every configured meter
        // has shown its serial, and only of meters this bridge read before: on a shared broker
        // another bridge's meters look just like ours.
        let all_meters_known =
            !self.meters.is_empty() && self.meters.iter().all(|m| serials.contains_key(&m.name));
        let mut ours: BTreeSet<u64> = serials.values().copied().collect();
        if all_meters_known {
            ours.extend(self.known_serials.iter().copied());
        }
        let prefixes: Vec<String> = ours
            .iter()
            .flat_map(|s| {
                let [a, b] = self.entity_prefixes(*s);
                [a, b, self.device_topic(*s)]
            })
            .collect();
        on_broker
            .iter()
            .filter(|t| !wanted.contains(*t))
            .filter(|t| prefixes.iter().any(|p| t.starts_with(p.as_str())))
            .cloned()
            .collect()
    }
}

/// A meter's state JSON: register name → exact number (or text), the info flags, `taken_at`.
struct StatePayload<'a> {
    values: Vec<(String, &'a HaValue)>,
    info_flags: Option<BTreeMap<&'static str, &'static str>>,
    taken_at: String,
}

impl Serialize for StatePayload<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.values.len() + 2))?;
        for (key, value) in &self.values {
            match value {
                HaValue::Number(d) => map.serialize_entry(key, &ExactNumber(*d))?,
                HaValue::Text(t) => map.serialize_entry(key, t)?,
            }
        }
        if let Some(flags) = &self.info_flags {
            map.serialize_entry("info_flags", flags)?;
        }
        map.serialize_entry("taken_at", &self.taken_at)?;
        map.end()
    }
}

/// `{"problem": "ON"|"OFF", "<flag>": "ON"|"OFF", …}` for HA's binary sensors.
fn info_flags(info: &InfoStatus) -> BTreeMap<&'static str, &'static str> {
    let on_off = |b: bool| if b { "ON" } else { "OFF" };
    let mut out = BTreeMap::new();
    out.insert("problem", on_off(!info.is_ok()));
    for flag in info.family.map_or(&[][..], |f| f.flags()) {
        out.insert(flag.name, on_off(info.code & flag.bit != 0));
    }
    out
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, SinkError> {
    serde_json::to_vec(value).map_err(|e| SinkError::config(format!("cannot encode JSON: {e}")))
}

impl HomeAssistantSink {
    /// Polled readings: discovery configs, states, health, stale removal.
    async fn deliver_states(&mut self, batch: &[Delivered<'_>]) -> Result<(), SinkError> {
        // Know our retained configs before deciding what to migrate or remove; a broker that
        // never echoes the sync message costs at most the link's timeout once per connection.
        let deadline = tokio::time::Instant::now() + self.sync_wait;
        let known = |p: &Published| {
            p.synced
                && p.last_sync_traffic
                    .is_some_and(|t| t.elapsed() >= SYNC_QUIET)
        };
        while !known(&lock(&self.shared)) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut msgs = Vec::new();
        let mut updates = CounterUpdates::default();
        let mut serials = self.serials.clone();
        let mut delivered = self.delivered.clone();
        let mut health = self.health.clone();
        let mut new_configs = Vec::new();
        let mut new_states = Vec::new();
        let mut new_availability = Vec::new();
        let mut migrated = Vec::new();
        let (known_configs, known_availability, on_broker) = {
            let p = lock(&self.shared);
            (
                p.configs.clone(),
                p.availability.clone(),
                p.on_broker.clone(),
            )
        };
        for d in batch {
            let mut regs = self.guard.admit(d.serial, d.reading, &mut updates);
            // A reading taken under an older config (stored before a restart, delivered after
            // it) may carry registers no longer configured: they are not entities any more.
            // Values computed here (ΔT, today/month/year usage) follow the registers they are
            // computed from.
            if let Some(m) = self
                .meters
                .iter()
                .find(|m| m.name == d.meter_name && !m.registers.is_empty())
            {
                regs.retain(|r| r.derived || m.registers.contains(&r.name));
            }
            let entities: Vec<_> = regs
                .iter()
                .filter_map(|r| {
                    map_register(r, self.cfg.compat, self.cfg.volume_device_class).map(|e| (*r, e))
                })
                .collect();
            if entities.is_empty() {
                // Nothing was read: publish nothing at all (never an empty or zero state).
                continue;
            }
            serials.insert(d.meter_name.to_owned(), d.serial);
            let info = regs
                .iter()
                .any(|r| r.name == "info")
                .then(|| {
                    InfoStatus::of_reading(
                        d.reading,
                        d.model.and_then(|m| ModelText::parse(m).model),
                    )
                })
                .flatten();
            let mut components: Vec<Component> = entities
                .iter()
                .map(|(reg, entity)| self.register_component(d, &reg.name, entity))
                .collect();
            if let Some(info) = &info {
                components.extend(self.info_components(d, info));
            }
            components.extend(self.health_components(d));
            // Switching layout: tell HA to migrate each old config before the new one arrives,
            // then clear the old topics (HA keeps the entities: same unique ids).
            let old = self.old_layout(&on_broker, d.serial);
            for topic in &old {
                tracing::info!(%topic, "migrating Home Assistant discovery to the new layout");
                msgs.push(OutMsg::new(
                    topic.clone(),
                    br#"{"migrate_discovery": true}"#.to_vec(),
                    true,
                ));
            }
            for (topic, payload) in self.discovery_messages(d, components)? {
                delivered.entry(d.serial).or_default().insert(topic.clone());
                if !old.is_empty() || known_configs.get(&topic) != Some(&payload) {
                    msgs.push(OutMsg::new(topic.clone(), payload.clone(), true));
                    new_configs.push((topic, payload));
                }
            }
            for topic in &old {
                msgs.push(OutMsg::new(topic.clone(), Vec::new(), true));
            }
            migrated.extend(old);
            let avail = self.availability_topic(d.serial);
            if known_availability.get(&avail) != Some(&"online") {
                msgs.push(OutMsg::new(avail.clone(), "online", true));
            }
            new_availability.push((avail, "online"));
            let state = StatePayload {
                values: entities
                    .iter()
                    .map(|(r, e)| (slug(&r.name), &e.value))
                    .collect(),
                info_flags: info.as_ref().map(info_flags),
                taken_at: d
                    .reading
                    .taken_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            };
            let state_topic = self.state_topic(d.serial);
            let payload = to_json(&state)?;
            msgs.push(OutMsg::new(state_topic.clone(), payload.clone(), true));
            new_states.push((state_topic, payload));
            let h = Health {
                last_read: state.taken_at.clone(),
                read_errors_24h: d.read_errors_24h,
            };
            let health_topic = self.health_topic(d.serial);
            let payload = to_json(&h)?;
            msgs.push(OutMsg::new(health_topic.clone(), payload.clone(), true));
            new_states.push((health_topic, payload));
            health.insert(d.serial, h);
        }
        let mut on_broker = on_broker;
        for topic in &migrated {
            on_broker.remove(topic);
        }
        let stale = self.stale(&on_broker, &serials, &delivered);
        for topic in &stale {
            tracing::info!(%topic, "removing Home Assistant entity that is no longer configured");
            msgs.push(OutMsg::new(topic.clone(), Vec::new(), true));
        }
        self.link.publish(msgs).await?;
        {
            let mut p = lock(&self.shared);
            for topic in migrated.iter().chain(&stale) {
                p.on_broker.remove(topic);
                p.configs.remove(topic);
            }
            p.configs.extend(new_configs);
            p.states.extend(new_states);
            p.availability.extend(new_availability);
        }
        self.guard.commit(updates);
        self.serials = serials;
        self.delivered = delivered;
        self.health = health;
        Ok(())
    }

    /// The MQTT verdict of `kamstrup check`.
    async fn check_mqtt(&mut self) -> Vec<CheckLine> {
        let item = format!("homeassistant via {}", self.link.target);
        vec![match self.link.wait_ready().await {
            Ok(()) => CheckLine::ok(
                item,
                format!(
                    "connected as {}; discovery prefix {}, compat {}, {} discovery",
                    self.link.client_id,
                    self.cfg.discovery_prefix,
                    self.cfg.compat,
                    if self.cfg.device_discovery() {
                        "device"
                    } else {
                        "per-entity"
                    }
                ),
            ),
            Err(e) => CheckLine::fail(item, &e),
        }]
    }
}

#[async_trait::async_trait]
impl Sink for HomeAssistantSink {
    fn name(&self) -> &str {
        "homeassistant"
    }

    fn delivery(&self) -> Delivery {
        Delivery::Latest
    }

    fn accepts_logged(&self) -> bool {
        self.statistics.is_some()
    }

    async fn deliver(&mut self, batch: &[Delivered<'_>]) -> Result<(), SinkError> {
        // Logged records are history: never a state, only statistics (after the states, so an
        // HA whose websocket fails still shows the newest values; a retry re-sends both, and
        // both are idempotent).
        let (logged, polled): (Vec<Delivered<'_>>, Vec<Delivered<'_>>) = batch
            .iter()
            .cloned()
            .partition(|d| d.reading.source.is_logged());
        if !polled.is_empty() {
            self.deliver_states(&polled).await?;
        }
        if logged.is_empty() {
            return Ok(());
        }
        let Some(importer) = &self.statistics else {
            tracing::debug!(
                records = logged.len(),
                "logged records without statistics import: not shown as states"
            );
            return Ok(());
        };
        let series = series_of(
            &logged,
            self.cfg.compat,
            self.cfg.volume_device_class,
            &self.meters,
            Utc::now(),
        );
        let wait = wait_for_ha_compile(&series, Utc::now());
        if !wait.is_zero() {
            tracing::debug!(wait_ms = wait.as_millis(),
                "the newest logged hour has just ended: waiting for Home Assistant to compile it first");
            tokio::time::sleep(wait).await;
        }
        importer.import(&series).await?;
        Ok(())
    }

    async fn check(&mut self) -> Result<Vec<CheckLine>, SinkError> {
        let mut lines = self.check_mqtt().await;
        if let Some(importer) = &self.statistics {
            lines.push(importer.check().await);
        }
        Ok(lines)
    }

    async fn meter_unavailable(&mut self, _meter_name: &str, serial: u64) -> Result<(), SinkError> {
        let topic = self.availability_topic(serial);
        let mut msgs = vec![OutMsg::new(topic.clone(), "offline", true)];
        // One more failed read: the health entities stay available and say so at once.
        let mut health = None;
        if let Some(h) = self.health.get(&serial) {
            if let Some(n) = h.read_errors_24h {
                let h = Health {
                    read_errors_24h: Some(n + 1),
                    ..h.clone()
                };
                msgs.push(OutMsg::new(self.health_topic(serial), to_json(&h)?, true));
                health = Some(h);
            }
        }
        self.link.publish(msgs).await?;
        let mut p = lock(&self.shared);
        p.availability.insert(topic, "offline");
        if let Some(h) = health {
            p.states.insert(self.health_topic(serial), to_json(&h)?);
            self.health.insert(serial, h);
        }
        Ok(())
    }

    async fn shutdown(&mut self) {
        let bridge = format!("{}/status", self.cfg.base_topic);
        let last = if self.probe {
            Vec::new()
        } else {
            vec![OutMsg::new(bridge, "offline", true)]
        };
        self.link.close(last).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{delivered_fixture, full_reading};

    fn sink_with(compat: &str, discovery: DiscoveryMode) -> HomeAssistantSink {
        let cfg = HomeAssistantConfig {
            compat: HaVersion::parse(compat).unwrap(),
            discovery,
            ..HomeAssistantConfig::default()
        };
        let env = |_: &str| -> Option<String> { None };
        let files =
            |_: &std::path::Path| -> std::io::Result<String> { Err(std::io::Error::other("no")) };
        let ctx = BuildContext::new(&env, &files).with_meters(vec![MeterContext {
            name: "heat".into(),
            interval: Some(Duration::from_secs(900)),
            registers: vec![],
        }]);
        // Port 9 (discard) on loopback: nothing listens, the link just keeps retrying.
        let mqtt: MqttConfig =
            serde_json::from_value(serde_json::json!({"url": "mqtt://127.0.0.1:9"})).unwrap();
        HomeAssistantSink::new(&cfg, &mqtt, &ctx).unwrap()
    }

    fn sink(compat: &str) -> HomeAssistantSink {
        sink_with(compat, DiscoveryMode::Auto)
    }

    /// Every discovery message of the fixture reading: a MULTICAL 403 with info code 264
    /// (t1 above range, v1 air) and a read-error count.
    fn messages(sink: &HomeAssistantSink) -> String {
        let mut reading = full_reading();
        if let Some(info) = reading.registers.iter_mut().find(|r| r.name == "info") {
            info.value = "264".parse().unwrap();
        }
        let mut d = delivered_fixture(&reading);
        d.read_errors_24h = Some(2);
        d.model = Some("MULTICAL 403 (KMP type 0x0004 rev F1)");
        let mut components: Vec<Component> = reading
            .registers
            .iter()
            .map(|r| {
                let e = map_register(r, sink.cfg.compat, sink.cfg.volume_device_class).unwrap();
                sink.register_component(&d, &r.name, &e)
            })
            .collect();
        let info = InfoStatus::of_reading(&reading, Some("MULTICAL 403")).unwrap();
        components.extend(sink.info_components(&d, &info));
        components.extend(sink.health_components(&d));
        let mut out = String::new();
        for (topic, payload) in sink.discovery_messages(&d, components).unwrap() {
            out.push_str(&topic);
            out.push('\n');
            let v: serde_json::Value = serde_json::from_slice(&payload).unwrap();
            out.push_str(&serde_json::to_string_pretty(&v).unwrap());
            out.push('\n');
        }
        out
    }

    fn configs(sink: &HomeAssistantSink) -> String {
        let reading = full_reading();
        let d = delivered_fixture(&reading);
        let mut out = String::new();
        for r in &reading.registers {
            let e = map_register(r, sink.cfg.compat, sink.cfg.volume_device_class).unwrap();
            let c = sink.sensor_config(&d, &r.name, &e);
            out.push_str(&sink.config_topic(d.serial, &r.name));
            out.push('\n');
            out.push_str(&serde_json::to_string_pretty(&c).unwrap());
            out.push('\n');
        }
        out
    }

    #[tokio::test]
    async fn discovery_payloads_current_ha() {
        insta::assert_snapshot!(configs(&sink("2025.11")));
    }

    #[tokio::test]
    async fn discovery_payloads_ha_2024_3() {
        insta::assert_snapshot!(configs(&sink("2024.3")));
    }

    #[tokio::test]
    async fn device_discovery_payload_current_ha() {
        let s = sink("2025.11");
        assert!(s.cfg.device_discovery());
        insta::assert_snapshot!(messages(&s));
    }

    #[tokio::test]
    async fn per_entity_payloads_with_problems_and_health_ha_2024_3() {
        let s = sink("2024.3");
        assert!(!s.cfg.device_discovery(), "2024.3 has no device discovery");
        insta::assert_snapshot!(messages(&s));
    }

    #[tokio::test]
    async fn device_discovery_from_2024_11_unless_told() {
        assert!(!sink("2024.10").cfg.device_discovery());
        assert!(sink("2024.11").cfg.device_discovery());
        assert!(!sink_with("2025.11", DiscoveryMode::Entity)
            .cfg
            .device_discovery());
        assert!(sink_with("2024.3", DiscoveryMode::Device)
            .cfg
            .device_discovery());
    }

    #[tokio::test]
    async fn model_only_when_known_type_code_as_hw_version() {
        let reading = full_reading();
        let s = sink("2025.11");
        for (stored, model, hw) in [
            (
                "MULTICAL 403 (KMP type 0x0004 rev F1)",
                Some("MULTICAL 403"),
                Some("KMP type 0x0004 rev F1"),
            ),
            (
                "KMP type 0x0004 rev F1",
                None,
                Some("KMP type 0x0004 rev F1"),
            ),
            ("MULTICAL 66C", Some("MULTICAL 66C"), None),
        ] {
            let mut d = delivered_fixture(&reading);
            d.model = Some(stored);
            let b = s.device_block(&d);
            assert_eq!((b.model.as_deref(), b.hw_version.as_deref()), (model, hw));
        }
    }

    #[tokio::test]
    async fn sw_version_is_the_software_edition_register_when_read() {
        let s = sink("2025.11");
        let reading = full_reading();
        let d = delivered_fixture(&reading);
        assert_eq!(
            s.device_block(&d).sw_version,
            None,
            "1005 not read: no sw_version"
        );
        let mut reading = full_reading();
        reading.registers.push(crate::testutil::reg(
            "software_edition",
            "MeterType",
            "20401",
            "",
        ));
        let d = delivered_fixture(&reading);
        let b = s.device_block(&d);
        assert_eq!(b.sw_version.as_deref(), Some("20401"));
        assert_eq!(b.model.as_deref(), Some("MULTICAL 403"));
    }

    #[tokio::test]
    async fn device_serial_number_only_from_2024_2() {
        let reading = full_reading();
        let d = delivered_fixture(&reading);
        let r = &reading.registers[0];
        for (compat, expected) in [("2024.1", None), ("2024.2", Some("67123456"))] {
            let s = sink(compat);
            let e = map_register(r, s.cfg.compat, s.cfg.volume_device_class).unwrap();
            let json = serde_json::to_value(s.sensor_config(&d, &r.name, &e)).unwrap();
            assert_eq!(
                json["device"].get("serial_number").and_then(|v| v.as_str()),
                expected
            );
        }
    }

    #[test]
    fn state_payload_is_exact() {
        let reading = full_reading();
        let entities: Vec<_> = reading
            .registers
            .iter()
            .map(|r| {
                (
                    r,
                    map_register(r, HaVersion::new(2024, 3), VolumeClass::Volume).unwrap(),
                )
            })
            .collect();
        let info = InfoStatus::of_reading(&reading, Some("MULTICAL 403")).unwrap();
        let state = StatePayload {
            values: entities
                .iter()
                .map(|(r, e)| (slug(&r.name), &e.value))
                .collect(),
            info_flags: Some(info_flags(&info)),
            taken_at: reading
                .taken_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        insta::assert_snapshot!(serde_json::to_string_pretty(&state).unwrap());
    }

    #[test]
    fn flags_on_only_for_set_bits() {
        let info = InfoStatus {
            code: 8 + 256,
            family: Some(kamstrup_reading::InfoFamily::Multical403),
        };
        let f = info_flags(&info);
        assert_eq!(f["problem"], "ON");
        assert_eq!(f["t1_above_range"], "ON");
        assert_eq!(f["v1_air"], "ON");
        assert_eq!(f["low_battery"], "OFF");
        let unknown = InfoStatus {
            code: 0,
            family: None,
        };
        assert_eq!(info_flags(&unknown).len(), 1);
    }
}
