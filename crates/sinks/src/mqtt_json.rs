//! MQTT JSON: one JSON message per reading on a configurable topic, with configurable key names
//! and a `seed` preset that reproduces the original MULTICAL 66C script's payload
//! `{"Energy":…,"Volume":…,"Temperature_in":…,"Temperature_out":…}`.
//!
//! Presets:
//! * `full` (default): `{"meter":"heat","serial":67123456,"taken_at":"…","heat_energy":84.817,
//!   …,"units":{"heat_energy":"GJ",…}}` — every register, keys renamed by `keys`.
//! * `seed`: only the registers in the key map (default `heat_energy`→`Energy`, `volume`→
//!   `Volume`, `t1`→`Temperature_in`, `t2`→`Temperature_out`; `keys` entries are added to or
//!   override it), no metadata.
//!
//! Values are JSON numbers written from the exact decimal text (`520.410` stays `520.410`), or
//! strings with `values = "string"`. A register the meter did not return is left out (never 0);
//! a reading with none of the wanted registers publishes nothing.

use std::collections::BTreeMap;

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use crate::mqtt::{qos_from, MqttLink, MqttSettings, NoHooks, OutMsg};
use crate::validate::{self, topic_problem, ConfigProblem, Names, PathPart, Problems};
use crate::values::{plain, CounterGuard, CounterUpdates, ExactNumber};
use crate::{BuildContext, CheckLine, Delivered, Delivery, MqttConfig, Sink, SinkError};

/// `[mqtt_json]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttJsonConfig {
    /// Set `false` to keep the section but not run the sink.
    #[serde(default = "crate::yes")]
    pub enabled: bool,
    /// Topic; `{meter}` and `{serial}` are replaced (default `kamstrup/{meter}`).
    #[serde(default = "default_topic")]
    pub topic: String,
    /// `full` (default) or `seed`.
    #[serde(default)]
    pub preset: MqttJsonPreset,
    /// Register name → JSON key.
    #[serde(default)]
    pub keys: BTreeMap<String, String>,
    /// Key of the reading's time (RFC 3339). Default: `taken_at` for `full`, none for `seed`;
    /// `""` leaves it out.
    #[serde(default)]
    pub timestamp_key: Option<String>,
    /// `number` (default) or `string`.
    #[serde(default)]
    pub values: ValueStyle,
    /// 0, 1 (default) or 2.
    #[serde(default = "default_qos")]
    pub qos: u8,
    /// Retain the message (default false).
    #[serde(default)]
    pub retain: bool,
}

fn default_topic() -> String {
    "kamstrup/{meter}".to_owned()
}
fn default_qos() -> u8 {
    1
}

/// Payload layout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MqttJsonPreset {
    /// Every register plus meter, serial, time and units.
    #[default]
    Full,
    /// The original script's four keys.
    Seed,
}

/// How values are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueStyle {
    /// JSON numbers with the exact decimal text.
    #[default]
    Number,
    /// JSON strings with the exact decimal text.
    String,
}

const SEED_KEYS: [(&str, &str); 4] = [
    ("heat_energy", "Energy"),
    ("volume", "Volume"),
    ("t1", "Temperature_in"),
    ("t2", "Temperature_out"),
];

enum Field {
    Number(kamstrup_decimal::Decimal),
    Text(String),
    Int(u64),
    Map(Vec<(String, String)>),
}

struct Payload {
    fields: Vec<(String, Field)>,
    style: ValueStyle,
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.fields.len()))?;
        for (key, field) in &self.fields {
            match field {
                Field::Number(d) => match self.style {
                    ValueStyle::Number => map.serialize_entry(key, &ExactNumber(*d))?,
                    ValueStyle::String => map.serialize_entry(key, &plain(d))?,
                },
                Field::Text(t) => map.serialize_entry(key, t)?,
                Field::Int(i) => map.serialize_entry(key, i)?,
                Field::Map(entries) => {
                    let inner: BTreeMapInOrder<'_> = BTreeMapInOrder(entries);
                    map.serialize_entry(key, &inner)?
                }
            }
        }
        map.end()
    }
}

struct BTreeMapInOrder<'a>(&'a [(String, String)]);

impl Serialize for BTreeMapInOrder<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// The MQTT JSON sink.
pub struct MqttJsonSink {
    cfg: MqttJsonConfig,
    keys: BTreeMap<String, String>,
    qos: rumqttc::QoS,
    link: MqttLink,
    guard: CounterGuard,
}

impl MqttJsonConfig {
    /// The static rules of `[mqtt_json]`: a publishable topic, qos 0–2, register names in `keys`
    /// that readings can carry.
    pub fn validate(&self, names: &Names<'_>) -> Vec<ConfigProblem> {
        let mut p = Problems::new("mqtt_json");
        let sample = self.topic.replace("{meter}", "m").replace("{serial}", "1");
        if let Some(e) = topic_problem(&sample) {
            p.key("topic", e);
        }
        if self.qos > 2 {
            p.key("qos", format!("qos must be 0, 1 or 2, not {}", self.qos));
        }
        for register in self.keys.keys() {
            p.register(
                names,
                &[
                    PathPart::Key("keys".to_owned()),
                    PathPart::Key(register.clone()),
                ],
                register,
            );
        }
        p.list
    }
}

impl MqttJsonSink {
    /// Starts the sink (connects in the background). Needs a Tokio runtime.
    pub fn new(
        cfg: &MqttJsonConfig,
        mqtt: &MqttConfig,
        ctx: &BuildContext<'_>,
    ) -> Result<Self, SinkError> {
        let settings = MqttSettings::resolve(mqtt, ctx)?;
        Self::start(cfg, &settings)
    }

    pub(crate) fn start(cfg: &MqttJsonConfig, settings: &MqttSettings) -> Result<Self, SinkError> {
        validate::first(cfg.validate(&Names::ANY))?;
        let qos = qos_from(cfg.qos);
        let mut keys: BTreeMap<String, String> = match cfg.preset {
            MqttJsonPreset::Seed => SEED_KEYS
                .iter()
                .map(|(r, k)| ((*r).to_owned(), (*k).to_owned()))
                .collect(),
            MqttJsonPreset::Full => BTreeMap::new(),
        };
        keys.extend(cfg.keys.clone());
        Ok(MqttJsonSink {
            cfg: cfg.clone(),
            keys,
            qos,
            link: MqttLink::start(settings, "json", None, Box::new(NoHooks)),
            guard: CounterGuard::default(),
        })
    }

    fn topic(&self, d: &Delivered<'_>) -> String {
        self.cfg
            .topic
            .replace("{meter}", d.meter_name)
            .replace("{serial}", &d.serial.to_string())
    }

    /// The payload for one reading, or `None` when it would carry no value.
    pub(crate) fn payload(
        &self,
        d: &Delivered<'_>,
        regs: &[&kamstrup_reading::RegisterValue],
    ) -> Result<Option<Vec<u8>>, SinkError> {
        let mut values = Vec::new();
        let mut units = Vec::new();
        for reg in regs {
            let key = match (self.cfg.preset, self.keys.get(&reg.name)) {
                (_, Some(k)) => k.clone(),
                (MqttJsonPreset::Full, None) => reg.name.clone(),
                (MqttJsonPreset::Seed, None) => continue,
            };
            let field = match &reg.text {
                Some(t) => Field::Text(t.clone()),
                None => Field::Number(reg.value),
            };
            if !reg.unit.is_empty() {
                units.push((key.clone(), reg.unit.to_string()));
            }
            values.push((key, field));
        }
        if values.is_empty() {
            return Ok(None);
        }
        let timestamp_key = match (&self.cfg.timestamp_key, self.cfg.preset) {
            (Some(k), _) => (!k.is_empty()).then(|| k.clone()),
            (None, MqttJsonPreset::Full) => Some("taken_at".to_owned()),
            (None, MqttJsonPreset::Seed) => None,
        };
        let mut fields = Vec::new();
        if self.cfg.preset == MqttJsonPreset::Full {
            fields.push(("meter".to_owned(), Field::Text(d.meter_name.to_owned())));
            fields.push(("serial".to_owned(), Field::Int(d.serial)));
        }
        if let Some(k) = timestamp_key {
            fields.push((
                k,
                Field::Text(
                    d.reading
                        .taken_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                ),
            ));
        }
        if self.cfg.preset == MqttJsonPreset::Full && d.reading.source.is_logged() {
            fields.push((
                "source".to_owned(),
                Field::Text(d.reading.source.as_str().to_owned()),
            ));
        }
        fields.extend(values);
        if self.cfg.preset == MqttJsonPreset::Full {
            fields.push(("units".to_owned(), Field::Map(units)));
        }
        let payload = Payload {
            fields,
            style: self.cfg.values,
        };
        serde_json::to_vec(&payload)
            .map(Some)
            .map_err(|e| SinkError::config(format!("cannot encode JSON: {e}")))
    }
}

#[async_trait::async_trait]
impl Sink for MqttJsonSink {
    fn name(&self) -> &str {
        "mqtt_json"
    }

    /// With a timestamp in the payload every reading means something on its own, so a backlog
    /// is replayed in full — records back-filled from the meter's logger too, at their logged
    /// time, never retained; without one (the seed preset) only the newest polled state matters.
    fn delivery(&self) -> Delivery {
        let timestamped = match (&self.cfg.timestamp_key, self.cfg.preset) {
            (Some(k), _) => !k.is_empty(),
            (None, MqttJsonPreset::Full) => true,
            (None, MqttJsonPreset::Seed) => false,
        };
        if timestamped {
            Delivery::Every
        } else {
            Delivery::Latest
        }
    }

    async fn deliver(&mut self, batch: &[Delivered<'_>]) -> Result<(), SinkError> {
        let mut updates = CounterUpdates::default();
        let mut msgs = Vec::new();
        for d in batch {
            let regs = self.guard.admit(d.serial, d.reading, &mut updates);
            if let Some(payload) = self.payload(d, &regs)? {
                msgs.push(OutMsg {
                    topic: self.topic(d),
                    payload,
                    qos: self.qos,
                    // The retained message is the current state: never an old logged record.
                    retain: self.cfg.retain && d.reading.source.is_poll(),
                });
            }
        }
        self.link.publish(msgs).await?;
        self.guard.commit(updates);
        Ok(())
    }

    async fn check(&mut self) -> Result<Vec<CheckLine>, SinkError> {
        let item = format!("mqtt_json via {}", self.link.target);
        Ok(vec![match self.link.wait_ready().await {
            Ok(()) => CheckLine::ok(item, format!("connected as {}", self.link.client_id)),
            Err(e) => CheckLine::fail(item, &e),
        }])
    }

    async fn shutdown(&mut self) {
        self.link.close(Vec::new()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{delivered_fixture, full_reading, reading_with, reg};

    fn sink(extra: serde_json::Value) -> MqttJsonSink {
        let cfg: MqttJsonConfig = serde_json::from_value(extra).unwrap();
        let mqtt: MqttConfig =
            serde_json::from_value(serde_json::json!({"url": "mqtt://127.0.0.1:9"})).unwrap();
        let env = |_: &str| -> Option<String> { None };
        let files =
            |_: &std::path::Path| -> std::io::Result<String> { Err(std::io::Error::other("no")) };
        MqttJsonSink::new(&cfg, &mqtt, &BuildContext::new(&env, &files)).unwrap()
    }

    fn text(s: &MqttJsonSink, r: &kamstrup_reading::Reading) -> Option<String> {
        let d = delivered_fixture(r);
        let regs: Vec<_> = r.registers.iter().collect();
        s.payload(&d, &regs)
            .unwrap()
            .map(|p| String::from_utf8(p).unwrap())
    }

    #[tokio::test]
    async fn seed_preset() {
        let s =
            sink(serde_json::json!({"preset": "seed", "topic": "home-assistant/stadsverwarming"}));
        insta::assert_snapshot!(text(&s, &full_reading()).unwrap());
    }

    #[tokio::test]
    async fn full_preset_with_renames_and_strings() {
        let s = sink(serde_json::json!({"keys": {"heat_energy": "E1"}, "values": "string"}));
        insta::assert_snapshot!(text(&s, &full_reading()).unwrap());
    }

    #[tokio::test]
    async fn full_preset() {
        let s = sink(serde_json::json!({}));
        insta::assert_snapshot!(text(&s, &full_reading()).unwrap());
    }

    #[tokio::test]
    async fn a_logged_record_carries_its_time_and_source() {
        let s = sink(serde_json::json!({"retain": true}));
        assert_eq!(s.delivery(), Delivery::Every);
        let mut r = reading_with(vec![reg("heat_energy", "E1", "84.700", "GJ")]);
        r.source = kamstrup_reading::ReadingSource::HourLog;
        r.taken_at = chrono::DateTime::from_timestamp(1_779_390_000, 0).unwrap();
        let text = text(&s, &r).unwrap();
        assert!(
            text.contains(
                r#""taken_at":"2026-05-21T19:00:00Z","source":"hour_log","heat_energy":84.700"#
            ),
            "{text}"
        );
        // Without timestamps the sink is a state sink and never asks for logged records.
        let seed = sink(serde_json::json!({"preset": "seed"}));
        assert_eq!(seed.delivery(), Delivery::Latest);
        assert!(!seed.accepts_logged());
    }

    #[tokio::test]
    async fn nothing_to_send_sends_nothing() {
        let s = sink(serde_json::json!({"preset": "seed"}));
        let r = reading_with(vec![reg("power", "P", "1.0", "kW")]);
        assert_eq!(text(&s, &r), None);
        // Missing registers are left out, never zero.
        let r = reading_with(vec![reg("t1", "T1", "70.01", "°C")]);
        assert_eq!(text(&s, &r).unwrap(), r#"{"Temperature_in":70.01}"#);
    }

    #[tokio::test]
    async fn bad_settings() {
        let mqtt: MqttConfig =
            serde_json::from_value(serde_json::json!({"url": "mqtt://127.0.0.1:9"})).unwrap();
        let env = |_: &str| -> Option<String> { None };
        let files =
            |_: &std::path::Path| -> std::io::Result<String> { Err(std::io::Error::other("no")) };
        let ctx = BuildContext::new(&env, &files);
        for bad in [
            serde_json::json!({"qos": 3}),
            serde_json::json!({"topic": "a/#"}),
        ] {
            let cfg: MqttJsonConfig = serde_json::from_value(bad).unwrap();
            assert_eq!(
                MqttJsonSink::new(&cfg, &mqtt, &ctx).err().unwrap().kind(),
                "config"
            );
        }
        let r: Result<MqttJsonConfig, _> =
            serde_json::from_value(serde_json::json!({"preset": "x"}));
        assert!(r.is_err());
    }
}
