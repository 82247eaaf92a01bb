//! Home Assistant MQTT discovery, the default way into HA: one retained config per entity, one
//! retained JSON state per meter, availability with a last will, re-publish on HA's birth.
//!
//! Topics (`<prefix>` = `discovery_prefix`, default `homeassistant`; `<base>` = `base_topic`,
//! default `kamstrup`):
//!
//! | topic | retained | payload |
//! |---|---|---|
//! | `<prefix>/sensor/kamstrup_<serial>_<register>/config` | yes | [`SensorConfig`] JSON; empty = entity removed |
//! | `<base>/<serial>/state` | yes | `{"heat_energy":55.006,…,"taken_at":"…"}` (exact numbers, meter units or HA-converted) |
//! | `<base>/<serial>/availability` | yes | `online` / `offline` (meter could not be read) |
//! | `<base>/status` | yes | `online` on connect, `offline` on shutdown and as last will |
//!
//! Every entity is available only when both the bridge and its meter are (`availability_mode:
//! all`). When `<prefix>/status` says `online` (HA or Domoticz started), all configs, then
//! availability and states are published again after `republish_delay_ms`; the same happens on
//! every reconnect, in case the broker lost its retained messages.
//!
//! Removal: the sink subscribes to `<prefix>/sensor/+/config` and remembers which retained
//! configs are its own (`origin.name` is `kamstrup-bridge` and the state topic is under
//! `<base>/`). A config of a register that is neither configured ([`crate::MeterContext`]) nor
//! delivered gets an empty retained payload; configs of other serials are removed once every
//! configured meter has delivered (so a meter that is only temporarily unreadable keeps its
//! entities).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rumqttc::{LastWill, QoS};
use serde::{Deserialize, Serialize};

use crate::ha_map::{friendly_name, map_register, HaEntity, HaValue, HaVersion, VolumeClass};
use crate::mqtt::{check_topic, LinkHooks, MqttLink, MqttSettings, OutMsg};
use crate::values::{slug, CounterGuard, CounterUpdates, ExactNumber};
use crate::{
    BuildContext, CheckLine, Delivered, Delivery, MeterContext, MqttConfig, Sink, SinkError,
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
    /// `volume` (default) or `water` for m³ registers.
    #[serde(default)]
    pub volume_device_class: VolumeClass,
    /// Seconds after which HA marks a value stale. Default: 3 × the meter's interval, or
    /// 10800 (3 h) when the interval is unknown.
    #[serde(default)]
    pub expire_after: Option<u64>,
    /// Delay between HA's `online` birth message and our re-publish (default 1000 ms, plus a
    /// random part of up to half of it), so that many devices do not answer in the same instant.
    #[serde(default = "default_republish_delay")]
    pub republish_delay_ms: u64,
    /// Remove our retained configs of entities that are no longer configured (default true).
    #[serde(default = "crate::yes")]
    pub remove_stale: bool,
}

fn default_prefix() -> String {
    "homeassistant".to_owned()
}
fn default_base() -> String {
    "kamstrup".to_owned()
}
fn default_republish_delay() -> u64 {
    1000
}

impl Default for HomeAssistantConfig {
    fn default() -> Self {
        HomeAssistantConfig {
            enabled: true,
            discovery_prefix: default_prefix(),
            base_topic: default_base(),
            compat: HaVersion::default(),
            volume_device_class: VolumeClass::default(),
            expire_after: None,
            republish_delay_ms: default_republish_delay(),
            remove_stale: true,
        }
    }
}

/// The discovery payload of one sensor (full key names; HA also accepts abbreviations).
#[derive(Clone, Debug, Serialize)]
pub struct SensorConfig {
    /// Entity name; HA shows `<device name> <name>`.
    pub name: String,
    /// `kamstrup_<serial>_<register>`.
    pub unique_id: String,
    /// Legacy entity id hint, only for `compat` < 2025.10.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
    /// `sensor.kamstrup_<meter>_<register>`.
    pub default_entity_id: String,
    /// The meter's JSON state topic.
    pub state_topic: String,
    /// `{{ value_json.<register> }}`.
    pub value_template: String,
    /// HA unit string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_of_measurement: Option<String>,
    /// HA device class.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_class: Option<&'static str>,
    /// HA state class.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_class: Option<&'static str>,
    /// `diagnostic` for info code and hour counters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_category: Option<&'static str>,
    /// The meter's own resolution.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggested_display_precision: Option<u16>,
    /// Seconds until HA marks the value stale.
    pub expire_after: u64,
    /// Bridge and meter availability topics.
    pub availability: Vec<AvailabilityTopic>,
    /// `all`: available only if bridge and meter are.
    pub availability_mode: &'static str,
    /// The meter as an HA device.
    pub device: DeviceBlock,
    /// Who published this.
    pub origin: OriginBlock,
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
    /// E.g. `MULTICAL 403`, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The meter serial (HA ≥ 2024.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    /// The meter's software as it reported it, when known.
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
}

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

struct HaHooks {
    shared: Arc<Mutex<Published>>,
    status_topic: String,
    config_filter: Option<String>,
    config_prefix: String,
    base_prefix: String,
    delay: Duration,
}

impl HaHooks {
    fn is_ours(&self, payload: &[u8]) -> bool {
        match serde_json::from_slice::<OwnerProbe>(payload) {
            Ok(p) => {
                p.origin.and_then(|o| o.name).as_deref() == Some(ORIGIN_NAME)
                    && p.state_topic
                        .is_some_and(|t| t.starts_with(&self.base_prefix))
            }
            Err(_) => false,
        }
    }
}

impl LinkHooks for HaHooks {
    fn subscriptions(&self) -> Vec<String> {
        let mut subs = vec![self.status_topic.clone()];
        subs.extend(self.config_filter.clone());
        subs
    }

    fn on_connect(&mut self) -> Vec<OutMsg> {
        lock(&self.shared).everything()
    }

    fn on_message(&mut self, topic: &str, payload: &[u8]) -> Option<Duration> {
        if topic == self.status_topic {
            return (payload == b"online").then(|| jitter(self.delay));
        }
        if topic.starts_with(&self.config_prefix) && topic.ends_with("/config") {
            let ours = !payload.is_empty() && self.is_ours(payload);
            let mut p = lock(&self.shared);
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

/// The Home Assistant MQTT discovery sink.
pub struct HomeAssistantSink {
    cfg: HomeAssistantConfig,
    link: MqttLink,
    shared: Arc<Mutex<Published>>,
    meters: Vec<MeterContext>,
    guard: CounterGuard,
    /// meter name → serial, for every meter that delivered.
    serials: HashMap<String, u64>,
    /// serial → config topics delivered since start.
    delivered: HashMap<u64, BTreeSet<String>>,
}

impl HomeAssistantSink {
    /// Starts the sink (connects in the background). Needs a Tokio runtime.
    pub fn new(
        cfg: &HomeAssistantConfig,
        mqtt: &MqttConfig,
        ctx: &BuildContext<'_>,
    ) -> Result<Self, SinkError> {
        let settings = MqttSettings::resolve(mqtt, ctx)?;
        Self::start(cfg, &settings, &ctx.meters)
    }

    pub(crate) fn start(
        cfg: &HomeAssistantConfig,
        settings: &MqttSettings,
        meters: &[MeterContext],
    ) -> Result<Self, SinkError> {
        for (topic, what) in [
            (&cfg.discovery_prefix, "[homeassistant] discovery_prefix"),
            (&cfg.base_topic, "[homeassistant] base_topic"),
        ] {
            check_topic(topic, what)?;
            if topic.ends_with('/') {
                return Err(SinkError::config(format!("{what} must not end with /")));
            }
        }
        let bridge_topic = format!("{}/status", cfg.base_topic);
        let shared = Arc::new(Mutex::new(Published {
            bridge_topic: bridge_topic.clone(),
            ..Published::default()
        }));
        let hooks = HaHooks {
            shared: shared.clone(),
            status_topic: format!("{}/status", cfg.discovery_prefix),
            config_filter: cfg
                .remove_stale
                .then(|| format!("{}/sensor/+/config", cfg.discovery_prefix)),
            config_prefix: format!("{}/sensor/", cfg.discovery_prefix),
            base_prefix: format!("{}/", cfg.base_topic),
            delay: Duration::from_millis(cfg.republish_delay_ms),
        };
        let will = LastWill::new(bridge_topic, "offline", QoS::AtLeastOnce, true);
        let link = MqttLink::start(settings, "ha", Some(will), Box::new(hooks));
        Ok(HomeAssistantSink {
            cfg: cfg.clone(),
            link,
            shared,
            meters: meters.to_vec(),
            guard: CounterGuard::default(),
            serials: HashMap::new(),
            delivered: HashMap::new(),
        })
    }

    fn unique_id(serial: u64, register: &str) -> String {
        format!("kamstrup_{serial}_{}", slug(register))
    }

    fn config_topic(&self, serial: u64, register: &str) -> String {
        format!(
            "{}/sensor/{}/config",
            self.cfg.discovery_prefix,
            Self::unique_id(serial, register)
        )
    }

    fn state_topic(&self, serial: u64) -> String {
        format!("{}/{serial}/state", self.cfg.base_topic)
    }

    fn availability_topic(&self, serial: u64) -> String {
        format!("{}/{serial}/availability", self.cfg.base_topic)
    }

    fn expire_after(&self, meter_name: &str) -> u64 {
        if let Some(s) = self.cfg.expire_after {
            return s;
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

    /// The discovery payload of one register of one meter.
    pub(crate) fn sensor_config(
        &self,
        d: &Delivered<'_>,
        register: &str,
        entity: &HaEntity,
    ) -> SensorConfig {
        let compat = self.cfg.compat;
        let entity_id = discovered_entity_id(d.meter_name, register);
        let object = entity_id.trim_start_matches("sensor.").to_owned();
        SensorConfig {
            name: friendly_name(register),
            unique_id: Self::unique_id(d.serial, register),
            object_id: compat.wants_object_id().then(|| object.clone()),
            default_entity_id: entity_id,
            state_topic: self.state_topic(d.serial),
            value_template: format!("{{{{ value_json.{} }}}}", slug(register)),
            unit_of_measurement: entity.unit.clone(),
            device_class: entity.device_class,
            state_class: entity.state_class,
            entity_category: entity.diagnostic.then_some("diagnostic"),
            suggested_display_precision: entity.precision(),
            expire_after: self.expire_after(d.meter_name),
            availability: vec![
                AvailabilityTopic {
                    topic: format!("{}/status", self.cfg.base_topic),
                },
                AvailabilityTopic {
                    topic: self.availability_topic(d.serial),
                },
            ],
            availability_mode: "all",
            device: DeviceBlock {
                identifiers: vec![format!("kamstrup_{}", d.serial)],
                name: format!("Kamstrup {}", d.meter_name),
                manufacturer: "Kamstrup",
                model: d.model.map(str::to_owned),
                serial_number: compat
                    .has_device_serial_number()
                    .then(|| d.serial.to_string()),
                sw_version: d.reading.meter.meter_type.clone(),
            },
            origin: OriginBlock {
                name: ORIGIN_NAME,
                sw_version: env!("CARGO_PKG_VERSION"),
            },
        }
    }

    /// Config topics we must keep: configured and delivered registers of known meters.
    fn wanted(
        &self,
        serials: &HashMap<String, u64>,
        delivered: &HashMap<u64, BTreeSet<String>>,
    ) -> BTreeSet<String> {
        let mut wanted: BTreeSet<String> = delivered.values().flatten().cloned().collect();
        for m in &self.meters {
            if let Some(serial) = serials.get(&m.name) {
                for r in &m.registers {
                    wanted.insert(self.config_topic(*serial, r));
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
        let all_meters_known =
            !self.meters.is_empty() && self.meters.iter().all(|m| serials.contains_key(&m.name));
        let prefixes: Vec<String> = serials
            .values()
            .map(|s| format!("{}/sensor/kamstrup_{s}_", self.cfg.discovery_prefix))
            .collect();
        on_broker
            .iter()
            .filter(|t| !wanted.contains(*t))
            .filter(|t| all_meters_known || prefixes.iter().any(|p| t.starts_with(p.as_str())))
            .cloned()
            .collect()
    }
}

/// A meter's state JSON: register name → exact number (or text), then `taken_at`.
struct StatePayload<'a> {
    values: Vec<(String, &'a HaValue)>,
    taken_at: String,
}

impl Serialize for StatePayload<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.values.len() + 1))?;
        for (key, value) in &self.values {
            match value {
                HaValue::Number(d) => map.serialize_entry(key, &ExactNumber(*d))?,
                HaValue::Text(t) => map.serialize_entry(key, t)?,
            }
        }
        map.serialize_entry("taken_at", &self.taken_at)?;
        map.end()
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, SinkError> {
    serde_json::to_vec(value).map_err(|e| SinkError::config(format!("cannot encode JSON: {e}")))
}

#[async_trait::async_trait]
impl Sink for HomeAssistantSink {
    fn name(&self) -> &str {
        "homeassistant"
    }

    fn delivery(&self) -> Delivery {
        Delivery::Latest
    }

    async fn deliver(&mut self, batch: &[Delivered<'_>]) -> Result<(), SinkError> {
        let mut msgs = Vec::new();
        let mut updates = CounterUpdates::default();
        let mut serials = self.serials.clone();
        let mut delivered = self.delivered.clone();
        let mut new_configs = Vec::new();
        let mut new_states = Vec::new();
        let mut new_availability = Vec::new();
        let (known_configs, known_availability, on_broker) = {
            let p = lock(&self.shared);
            (
                p.configs.clone(),
                p.availability.clone(),
                p.on_broker.clone(),
            )
        };
        for d in batch {
            let regs = self.guard.admit(d.serial, d.reading, &mut updates);
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
            for (reg, entity) in &entities {
                let topic = self.config_topic(d.serial, &reg.name);
                let payload = to_json(&self.sensor_config(d, &reg.name, entity))?;
                delivered.entry(d.serial).or_default().insert(topic.clone());
                if known_configs.get(&topic) != Some(&payload) {
                    msgs.push(OutMsg::new(topic.clone(), payload.clone(), true));
                    new_configs.push((topic, payload));
                }
            }
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
                taken_at: d
                    .reading
                    .taken_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            };
            let state_topic = self.state_topic(d.serial);
            let payload = to_json(&state)?;
            msgs.push(OutMsg::new(state_topic.clone(), payload.clone(), true));
            new_states.push((state_topic, payload));
        }
        let stale = self.stale(&on_broker, &serials, &delivered);
        for topic in &stale {
            tracing::info!(%topic, "removing Home Assistant entity that is no longer configured");
            msgs.push(OutMsg::new(topic.clone(), Vec::new(), true));
        }
        self.link.publish(msgs).await?;
        {
            let mut p = lock(&self.shared);
            p.configs.extend(new_configs);
            p.states.extend(new_states);
            p.availability.extend(new_availability);
            for topic in &stale {
                p.on_broker.remove(topic);
                p.configs.remove(topic);
            }
        }
        self.guard.commit(updates);
        self.serials = serials;
        self.delivered = delivered;
        Ok(())
    }

    async fn check(&mut self) -> Result<Vec<CheckLine>, SinkError> {
        let item = format!("homeassistant via {}", self.link.target);
        Ok(vec![match self.link.wait_ready().await {
            Ok(()) => CheckLine::ok(
                item,
                format!(
                    "connected as {}; discovery prefix {}, compat {}",
                    self.link.client_id, self.cfg.discovery_prefix, self.cfg.compat
                ),
            ),
            Err(e) => CheckLine::fail(item, &e),
        }])
    }

    async fn meter_unavailable(&mut self, _meter_name: &str, serial: u64) -> Result<(), SinkError> {
        let topic = self.availability_topic(serial);
        self.link
            .publish(vec![OutMsg::new(topic.clone(), "offline", true)])
            .await?;
        lock(&self.shared).availability.insert(topic, "offline");
        Ok(())
    }

    async fn shutdown(&mut self) {
        let bridge = format!("{}/status", self.cfg.base_topic);
        self.link
            .close(vec![OutMsg::new(bridge, "offline", true)])
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{delivered_fixture, full_reading};

    fn sink(compat: &str) -> HomeAssistantSink {
        let cfg = HomeAssistantConfig {
            compat: HaVersion::parse(compat).unwrap(),
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
        let state = StatePayload {
            values: entities
                .iter()
                .map(|(r, e)| (slug(&r.name), &e.value))
                .collect(),
            taken_at: reading
                .taken_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        insta::assert_snapshot!(serde_json::to_string_pretty(&state).unwrap());
    }
}
