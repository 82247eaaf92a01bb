//! Sinks: every place a heat-meter reading can be delivered — Home Assistant (MQTT discovery and
//! REST), MQTT JSON, Domoticz (HTTP and MQTT), InfluxDB and files — behind one [`Sink`] trait.
//!
//! # How the daemon uses this crate
//!
//! The daemon stores every reading first and keeps one outbox cursor per sink (keyed by
//! [`Sink::name`]). It calls [`build`] once (inside a Tokio runtime: MQTT sinks start their
//! connection tasks there), then for each sink repeatedly hands a batch to [`Sink::deliver`]:
//!
//! * [`Delivery::Every`] sinks (InfluxDB, file) get every reading, oldest first; each line
//!   carries the reading's own timestamp, so a backlog replays at the right times.
//! * [`Delivery::Latest`] sinks (Home Assistant discovery and REST, MQTT JSON, Domoticz) only
//!   need the newest reading per meter.
//!
//! `Ok(())` means everything in the batch was delivered at least once (MQTT: acknowledged by the
//! broker; HTTP: a success answer; file: written and synced). `Err` means nothing may be assumed;
//! the daemon retries later, with backoff, from its cursor. Deliveries are idempotent except the
//! Domoticz `add-delta` mode (see [`domoticz`]).
//!
//! Sinks never publish a value that was not read: a register missing from a reading is left out
//! (never sent as `0`), a reading with nothing to send produces no message at all, and a counter
//! (energy, volume, hours) that went backwards is dropped by each sink's own guard even if the
//! daemon's plausibility check let it through.
//!
//! Nothing here reads environment variables or configuration files: secrets are [`SecretRef`]s
//! resolved through the two functions in [`BuildContext`], and so are TLS files. The only file
//! this crate touches by itself is the file sink's output.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;

pub use kamstrup_reading::{Reading, RegisterValue};

mod duration;
mod error;
mod ha_map;
mod ha_statistics;
pub mod ha_websocket;
mod http;
mod mqtt;
mod secret;
#[cfg(test)]
mod testutil;
mod validate;
mod values;

pub mod domoticz;
pub mod file;
pub mod homeassistant;
pub mod homeassistant_rest;
pub mod influxdb;
pub mod mqtt_json;

pub use domoticz::{
    DomoticzConfig, DomoticzDevice, DomoticzMode, DomoticzSink, DomoticzTransport, DomoticzType,
};

pub use error::SinkError;
pub use file::{FileConfig, FileFormat, FileSink};
pub use ha_map::{HaVersion, VolumeClass};
pub use homeassistant::{DiscoveryMode, HomeAssistantConfig, HomeAssistantSink};
pub use homeassistant_rest::{HomeAssistantRestConfig, HomeAssistantRestSink, RestEntity};
pub use influxdb::{InfluxConfig, InfluxSink, Precision};
pub use mqtt::MqttConfig;
pub use mqtt_json::{MqttJsonConfig, MqttJsonPreset, MqttJsonSink, ValueStyle};
pub use secret::{Secret, SecretRef};
pub use validate::{ConfigProblem, Names, PathPart};

/// Which readings a sink needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Timestamped sinks (InfluxDB, file): every reading, in order.
    Every,
    /// State sinks (HA discovery, HA REST, MQTT JSON, Domoticz): only the newest reading per
    /// meter matters.
    Latest,
}

/// One reading ready for delivery (already stored; plausibility already checked by the daemon).
#[derive(Clone, Debug)]
pub struct Delivered<'a> {
    /// The reading's row id in the daemon's store (used to make retries idempotent).
    pub id: i64,
    /// The meter's name from the config (`[[meter]] name`).
    pub meter_name: &'a str,
    /// The meter's serial number.
    pub serial: u64,
    /// The stored model text ([`kamstrup_reading::ModelText`]), e.g. `MULTICAL 403`, when known.
    pub model: Option<&'a str>,
    /// Failed reads of this meter in the 24 h before delivery, when the daemon counted them
    /// (bridge health for state sinks).
    pub read_errors_24h: Option<u64>,
    /// The values.
    pub reading: &'a Reading,
}

/// One line of `kamstrup check` output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckLine {
    /// Whether this item is fine.
    pub ok: bool,
    /// What was checked (`mqtt://host:1883`, `idx 12`, ...).
    pub item: String,
    /// The verdict or the value found.
    pub detail: String,
}

impl CheckLine {
    pub(crate) fn ok(item: impl Into<String>, detail: impl Into<String>) -> Self {
        CheckLine {
            ok: true,
            item: item.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn fail(item: impl Into<String>, err: &SinkError) -> Self {
        CheckLine {
            ok: false,
            item: item.into(),
            detail: format!("{} ({})", err, err.kind()),
        }
    }
}

/// A place readings go.
#[async_trait::async_trait]
pub trait Sink: Send {
    /// Instance name: the outbox cursor key and the name in logs (`homeassistant`,
    /// `homeassistant_rest`, `mqtt_json`, `domoticz`, `influxdb`, `file`).
    fn name(&self) -> &str;

    /// Every reading, or only the newest per meter.
    fn delivery(&self) -> Delivery;

    /// Whether a [`Delivery::Latest`] sink also wants the records back-filled from the meter's
    /// loggers (`reading.source` is not `Poll`), as history with their own times — HA discovery
    /// imports them as long-term statistics. Such records are never the newest value: a state
    /// sink that says no here never sees them; one that says yes gets them in the same batch as
    /// the newest polled reading and must not show them as current. `Every` sinks always get
    /// them, in order.
    fn accepts_logged(&self) -> bool {
        false
    }

    /// Delivers a batch. `Ok` = everything in it was delivered (at least once); `Err` = nothing
    /// may be assumed, and the daemon retries later from its cursor.
    async fn deliver(&mut self, batch: &[Delivered<'_>]) -> Result<(), SinkError>;

    /// Reachability and authorisation verdicts for `kamstrup check`; Domoticz also lists its
    /// devices (idx, name, value). Problems come back as lines with `ok == false` (with the
    /// error kind in the detail); `Err` is reserved for a check that could not run at all.
    async fn check(&mut self) -> Result<Vec<CheckLine>, SinkError>;

    /// Hands the sink durable memory (the daemon's store) before its first delivery. Sinks that
    /// must remember what they sent across restarts (Domoticz' add-delta) keep it there; the
    /// default memory lives only as long as the process.
    fn use_memory(&mut self, memory: Arc<dyn SinkMemory>) {
        let _ = memory;
    }

    /// The meter could not be read: state sinks mark it unavailable (never a 0).
    async fn meter_unavailable(&mut self, meter_name: &str, serial: u64) -> Result<(), SinkError> {
        let _ = (meter_name, serial);
        Ok(())
    }

    /// Clean stop: publish "offline" where that means something, disconnect.
    async fn shutdown(&mut self) {}
}

/// Durable key/value memory for a sink, so that what it sent survives a restart or a crash. The
/// daemon backs it with its SQLite store; a save is committed before it returns.
#[async_trait::async_trait]
pub trait SinkMemory: Send + Sync {
    /// The value saved under `key` for `sink`, if any.
    async fn load(&self, sink: &str, key: &str) -> Result<Option<String>, SinkError>;
    /// Saves `value` under `key` for `sink`, replacing what was there.
    async fn save(&self, sink: &str, key: &str, value: &str) -> Result<(), SinkError>;
}

/// [`SinkMemory`] that lives as long as the process: for `kamstrup check`, tests, and sinks used
/// without a store.
#[derive(Debug, Default)]
pub struct VolatileMemory(Mutex<HashMap<(String, String), String>>);

#[async_trait::async_trait]
impl SinkMemory for VolatileMemory {
    async fn load(&self, sink: &str, key: &str) -> Result<Option<String>, SinkError> {
        let map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(map.get(&(sink.to_owned(), key.to_owned())).cloned())
    }

    async fn save(&self, sink: &str, key: &str, value: &str) -> Result<(), SinkError> {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.insert((sink.to_owned(), key.to_owned()), value.to_owned());
        Ok(())
    }
}

/// What a configured meter looks like to the sinks, from the daemon's config.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MeterContext {
    /// `[[meter]] name`.
    pub name: String,
    /// The poll interval, when it is an interval (HA's `expire_after` is 3× this; for
    /// wall-clock schedules pass the longest gap between two reads).
    pub interval: Option<Duration>,
    /// The register names the meter is configured to read. HA discovery removes retained
    /// entities of registers no longer in this list (and of meters no longer configured).
    /// Empty: no list to hold readings against (a 66C sends its fixed `/#1` set).
    pub registers: Vec<String>,
}

/// What [`build`] needs besides the configuration: the only ways this crate reaches the
/// environment and files, and the configured meters.
pub struct BuildContext<'a> {
    /// Looks up an environment variable (for `env:NAME` secrets).
    pub env: &'a (dyn Fn(&str) -> Option<String> + Sync),
    /// Reads a text file (for `file:` secrets, `*_file` fields and TLS PEM files).
    pub read_file: &'a (dyn Fn(&Path) -> std::io::Result<String> + Sync),
    /// The configured meters.
    pub meters: Vec<MeterContext>,
    /// The serials of the meters this bridge has read before (its store's meters), configured
    /// or not. HA discovery removes retained entities of meters no longer configured only among
    /// these: another bridge on the same broker (a second head on a second meter) keeps its own.
    pub known_serials: Vec<u64>,
    /// Built only to check reachability (`kamstrup check`, `setup`): MQTT sinks connect under
    /// their own client id (`…-check`), so a running daemon keeps its broker session, and
    /// publish nothing that changes state (no last will, no "offline" at the end).
    pub probe: bool,
}

impl<'a> BuildContext<'a> {
    /// A context with no meters listed.
    pub fn new(
        env: &'a (dyn Fn(&str) -> Option<String> + Sync),
        read_file: &'a (dyn Fn(&Path) -> std::io::Result<String> + Sync),
    ) -> Self {
        BuildContext {
            env,
            read_file,
            meters: Vec::new(),
            known_serials: Vec::new(),
            probe: false,
        }
    }

    /// Sinks built only to check reachability (see [`BuildContext::probe`]).
    pub fn for_probe(mut self) -> Self {
        self.probe = true;
        self
    }

    /// Adds the configured meters.
    pub fn with_meters(mut self, meters: Vec<MeterContext>) -> Self {
        self.meters = meters;
        self
    }

    /// With the serials of the meters this bridge has read before ([`BuildContext::known_serials`]).
    pub fn with_known_serials(mut self, serials: Vec<u64>) -> Self {
        self.known_serials = serials;
        self
    }
}

/// All sink sections of the daemon's config file. Every section is optional; a present section
/// enables its sink unless it says `enabled = false`.
///
/// The daemon may embed this with `#[serde(flatten)]` (serde cannot combine `flatten` with
/// `deny_unknown_fields` on the outer struct) or copy the fields into its own config struct.
/// Each section type denies unknown fields itself.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinksConfig {
    /// `[mqtt]`: broker for `homeassistant`, `mqtt_json` and Domoticz over MQTT.
    #[serde(default)]
    pub mqtt: Option<MqttConfig>,
    /// `[homeassistant]`: HA MQTT discovery.
    #[serde(default)]
    pub homeassistant: Option<HomeAssistantConfig>,
    /// `[homeassistant_rest]`: HA REST states.
    #[serde(default)]
    pub homeassistant_rest: Option<HomeAssistantRestConfig>,
    /// `[mqtt_json]`: one JSON message per reading.
    #[serde(default)]
    pub mqtt_json: Option<MqttJsonConfig>,
    /// `[domoticz]`.
    #[serde(default)]
    pub domoticz: Option<DomoticzConfig>,
    /// `[influxdb]`.
    #[serde(default)]
    pub influxdb: Option<InfluxConfig>,
    /// `[file]`.
    #[serde(default)]
    pub file: Option<FileConfig>,
}

impl SinksConfig {
    /// Every static problem of the sink sections (enabled sinks and `[mqtt]`), each with the
    /// path of the key it is about: what `kamstrup_config` locates in the file. Resolves no
    /// secret and connects nowhere; [`build`] runs the same rules.
    pub fn validate(&self, names: &Names<'_>) -> Vec<ConfigProblem> {
        let mut out = Vec::new();
        if let Some(m) = &self.mqtt {
            out.extend(m.validate());
        }
        let mut needs_mqtt = |section: &str| {
            if self.mqtt.is_none() {
                out.push(ConfigProblem {
                    path: vec![PathPart::Key(section.to_owned())],
                    message: format!(
                        "[{section}] publishes through MQTT: add an [mqtt] section with url = \"mqtt://host:1883\""
                    ),
                });
            }
        };
        let ha = self.homeassistant.as_ref().filter(|c| c.enabled);
        let json = self.mqtt_json.as_ref().filter(|c| c.enabled);
        let domoticz = self.domoticz.as_ref().filter(|c| c.enabled);
        if ha.is_some() {
            needs_mqtt("homeassistant");
        }
        if json.is_some() {
            needs_mqtt("mqtt_json");
        }
        if domoticz.is_some_and(|d| d.transport == DomoticzTransport::Mqtt) {
            needs_mqtt("domoticz");
        }
        if let Some(c) = ha {
            out.extend(c.validate_with(self.homeassistant_rest.as_ref()));
        }
        if let Some(c) = self.homeassistant_rest.as_ref().filter(|c| c.enabled) {
            out.extend(c.validate(names));
        }
        if let Some(c) = json {
            out.extend(c.validate(names));
        }
        if let Some(c) = domoticz {
            out.extend(c.validate(names));
        }
        if let Some(c) = self.influxdb.as_ref().filter(|c| c.enabled) {
            out.extend(c.validate());
        }
        if let Some(c) = self.file.as_ref().filter(|c| c.enabled) {
            out.extend(c.validate());
        }
        out
    }
}

/// Builds every enabled sink. Must run inside a Tokio runtime (MQTT sinks spawn their
/// connection task; connecting happens in the background, so this does not wait for brokers).
/// Fails with a `config` error on anything that cannot work: a missing `[mqtt]` section,
/// an unresolvable secret, unreadable TLS files, invalid URLs or topics.
pub fn build(
    config: &SinksConfig,
    ctx: &BuildContext<'_>,
) -> Result<Vec<Box<dyn Sink>>, SinkError> {
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    let mqtt_settings = |who: &str| -> Result<mqtt::MqttSettings, SinkError> {
        match &config.mqtt {
            Some(m) => mqtt::MqttSettings::resolve(m, ctx),
            None => Err(SinkError::config(format!(
                "[{who}] needs an [mqtt] section"
            ))),
        }
    };
    if let Some(c) = config.homeassistant.as_ref().filter(|c| c.enabled) {
        let settings = mqtt_settings("homeassistant")?;
        // Statistics import may use the REST section's URL and token.
        let stats = c.statistics_target(config.homeassistant_rest.as_ref(), ctx)?;
        sinks.push(Box::new(HomeAssistantSink::start(
            c,
            &settings,
            &ctx.meters,
            &ctx.known_serials,
            stats,
        )?));
    }
    if let Some(c) = config.homeassistant_rest.as_ref().filter(|c| c.enabled) {
        sinks.push(Box::new(HomeAssistantRestSink::new(c, ctx)?));
    }
    if let Some(c) = config.mqtt_json.as_ref().filter(|c| c.enabled) {
        sinks.push(Box::new(MqttJsonSink::start(
            c,
            &mqtt_settings("mqtt_json")?,
        )?));
    }
    if let Some(c) = config.domoticz.as_ref().filter(|c| c.enabled) {
        let settings = match c.transport {
            DomoticzTransport::Mqtt => Some(mqtt_settings("domoticz")?),
            DomoticzTransport::Http => None,
        };
        sinks.push(Box::new(DomoticzSink::start(c, ctx, settings.as_ref())?));
    }
    if let Some(c) = config.influxdb.as_ref().filter(|c| c.enabled) {
        sinks.push(Box::new(InfluxSink::new(c, ctx)?));
    }
    if let Some(c) = config.file.as_ref().filter(|c| c.enabled) {
        sinks.push(Box::new(FileSink::new(c)?));
    }
    Ok(sinks)
}

pub(crate) fn yes() -> bool {
    true
}
