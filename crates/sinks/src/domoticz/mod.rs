//! Domoticz: per-register device updates by idx, over HTTP (`json.htm?type=command&param=udevice`)
//! or MQTT (`domoticz/in`), with the seed script's three modes, exact in the device's own units.
//!
//! # svalue formats (nvalue is always 0)
//!
//! | `type` | Domoticz device | svalue |
//! |---|---|---|
//! | `custom` (default) | Custom Sensor | the exact value, e.g. `84.817` |
//! | `temperature` | Temperature | the exact value, e.g. `76.85` |
//! | `counter` | Counter (RFXMeter) | `floor((value − meter offset) × divider)` counts, e.g. `95133` for 951.33 m³ on a Water counter (divider 100). Divider and offset are read from the device, so Energy (1000, shown in kWh: energy registers are converted to kWh), Gas and Water (100) or a user's divider all show the meter's value. A negative count is refused. |
//! | `kwh` | General kWh / Electric (Instant+Counter) | `W;Wh`: power from the `power` register of the same reading (or `power_register`), energy converted to Wh (exact for Wh/kWh/MWh; joules ÷ 3600 rounded to 1 Wh) |
//!
//! # Modes (the seed's `idx:register:opt[:idx2]`)
//!
//! * `write` (0): the value.
//! * `subtract` (1): value − current value of device `idx2` (e.g. "usage this year" = meter −
//!   a device holding the value on 1 January).
//! * `add-delta` (2): current value of device `idx` + (value − current value of device `idx2`).
//!   `idx2` holds the register's previous value, normally a `write`-mode mapping of the same
//!   register, so each delivery adds the growth since then.
//!
//! # Exact values, exactly once
//!
//! Domoticz answers only display strings (a Custom Sensor's `Data` has 6 significant digits:
//! `1.23457e+06`). So the sink never reads back a value it wrote itself: it keeps what it last
//! wrote per idx in durable memory (the daemon's store, [`crate::SinkMemory`]) and uses that
//! exact value as long as Domoticz still shows it (someone changing the device by hand is
//! detected and followed, with a warning; over MQTT, where Domoticz applies an update only after
//! the broker acknowledged it, a device written a moment ago is read again for up to 5 s before
//! it counts as changed). Values only Domoticz has (a user's baseline in
//! `idx2`) come from the numeric fields (`Temp`; a counter's `Counter` with its divider) or
//! `Data`, with a loud warning when `Data` shows fewer digits than the meter's value has.
//!
//! For each reading every svalue is computed first (all reads before any write), saved as
//! pending, then written device by device, each marked done as Domoticz confirms it. A retry —
//! also after a restart or a crash — re-sends only what is not marked done, with the saved
//! values, so `add-delta` is applied exactly once; re-sending a write that did land is harmless
//! because every svalue is an absolute value. A newer reading waits until an older pending one is
//! finished. Modes 1/2 and counters read devices over HTTP, so they need `url` even with
//! `transport = "mqtt"` (counters without `url` use `divider`, default 1000, and no offset).
//!
//! Authentication: none (Domoticz "trusted networks") or HTTP Basic with `username`/`password`
//! (Domoticz honours Basic only over HTTPS unless "Allow Basic-Auth over plain HTTP" is on).
//! Domoticz answers errors with HTTP 200 and `"status": "ERR"`: the body is always checked.
//! Connection handling: see [`api`].

mod api;
mod exact;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kamstrup_decimal::Decimal;
use kamstrup_reading::RegisterValue;
use serde::{Deserialize, Deserializer, Serialize};

use api::Api;
pub use api::{CounterInfo, CounterType, DeviceInfo, DeviceKind, Shown};
use exact::{counter_svalue, in_device_unit, text_svalue, Refusal};

use crate::mqtt::{MqttLink, MqttSettings, NoHooks, OutMsg};
use crate::secret::SecretRef;
use crate::validate::{self, secret_pair, topic_problem, ConfigProblem, Names, PathPart, Problems};
use crate::values::{energy_to_wh, plain, power_to_w, shift, CounterGuard, CounterUpdates};
use crate::{
    BuildContext, CheckLine, Delivered, Delivery, MqttConfig, Sink, SinkError, SinkMemory,
    VolatileMemory,
};

/// `[domoticz]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomoticzConfig {
    /// Set `false` to keep the section but not run the sink.
    #[serde(default = "crate::yes")]
    pub enabled: bool,
    /// Domoticz base URL, e.g. `http://127.0.0.1:8080`. Needed for `transport = "http"`, for
    /// modes 1/2 and for `kamstrup check`.
    #[serde(default)]
    pub url: Option<String>,
    /// Basic-auth user (absent: rely on Domoticz' trusted networks).
    #[serde(default)]
    pub username: Option<String>,
    /// Basic-auth password: `"env:NAME"`, `"file:/path"` or the text.
    #[serde(default)]
    pub password: Option<SecretRef>,
    /// Alternative to `password`: a file holding it.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// `http` (default) or `mqtt` (through `[mqtt]`, to `topic`).
    #[serde(default)]
    pub transport: DomoticzTransport,
    /// MQTT topic Domoticz listens on (default `domoticz/in`).
    #[serde(default = "default_topic")]
    pub topic: String,
    /// Per HTTP request (default `"10s"`).
    #[serde(
        default = "default_timeout",
        deserialize_with = "crate::duration::text"
    )]
    pub timeout: Duration,
    /// Register → device mappings.
    #[serde(default)]
    pub devices: Vec<DomoticzDevice>,
}

fn default_topic() -> String {
    "domoticz/in".to_owned()
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// How updates reach Domoticz.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DomoticzTransport {
    /// `json.htm?type=command&param=udevice`.
    #[default]
    Http,
    /// JSON on `domoticz/in`.
    Mqtt,
}

/// One register → device mapping.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DomoticzDevice {
    /// Meter name; absent = any meter.
    #[serde(default)]
    pub meter: Option<String>,
    /// Register name.
    pub register: String,
    /// The device to update.
    pub idx: u64,
    /// `write` (0, default), `subtract` (1) or `add-delta` (2).
    #[serde(default)]
    pub mode: DomoticzMode,
    /// The other device of modes 1 and 2.
    #[serde(default)]
    pub idx2: Option<u64>,
    /// `custom` (default), `temperature`, `counter` or `kwh`.
    #[serde(default, rename = "type")]
    pub kind: DomoticzType,
    /// Counter divider (type `counter` only). Domoticz's own divider (Energy 1000, Gas/Water 100,
    /// or the device's setting) is read from the device and used; a value here that disagrees
    /// is reported by `check` and logged. Used as is only over MQTT without `url` (default 1000).
    #[serde(default)]
    pub divider: Option<u64>,
    /// Register giving the W part of a `kwh` device (default `power`; `""` sends 0 W).
    #[serde(default)]
    pub power_register: Option<String>,
}

/// The seed's modes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DomoticzMode {
    /// 0: write the value.
    #[default]
    Write,
    /// 1: value − device `idx2`.
    Subtract,
    /// 2: device `idx` + (value − device `idx2`).
    AddDelta,
}

impl DomoticzMode {
    /// The config word.
    fn word(self) -> &'static str {
        match self {
            DomoticzMode::Write => "write",
            DomoticzMode::Subtract => "subtract",
            DomoticzMode::AddDelta => "add-delta",
        }
    }
}

impl<'de> Deserialize<'de> for DomoticzMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = DomoticzMode;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("\"write\", \"subtract\", \"add-delta\" or 0, 1, 2")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<DomoticzMode, E> {
                match v {
                    "write" | "0" => Ok(DomoticzMode::Write),
                    "subtract" | "1" => Ok(DomoticzMode::Subtract),
                    "add-delta" | "2" => Ok(DomoticzMode::AddDelta),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
                }
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<DomoticzMode, E> {
                match v {
                    0 => Ok(DomoticzMode::Write),
                    1 => Ok(DomoticzMode::Subtract),
                    2 => Ok(DomoticzMode::AddDelta),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Unsigned(v), &self)),
                }
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<DomoticzMode, E> {
                match u64::try_from(v) {
                    Ok(u) => self.visit_u64(u),
                    Err(_) => Err(E::invalid_value(serde::de::Unexpected::Signed(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// The Domoticz device type, which decides the svalue format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DomoticzType {
    /// Custom Sensor: the value.
    #[default]
    Custom,
    /// Temperature: the value (°C).
    Temperature,
    /// Counter: integer value × divider.
    Counter,
    /// General kWh: `W;Wh`.
    Kwh,
}

/// The JSON Domoticz expects on `domoticz/in` (integer nvalue, string svalue).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct MqttUpdate {
    /// Always `udevice`.
    pub command: &'static str,
    /// Device idx.
    pub idx: u64,
    /// Always 0 for our device types.
    pub nvalue: i64,
    /// The formatted value.
    pub svalue: String,
}

/// What the sink remembers across restarts (saved in [`SinkMemory`] under [`MEMORY_KEY`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Memory {
    /// idx → what we last wrote there, in the device's unit.
    #[serde(default)]
    written: BTreeMap<u64, Written>,
    /// The reading being written, if one is not finished.
    #[serde(default)]
    pending: Option<PendingReading>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Written {
    /// The value the device shows after our write.
    value: Decimal,
    /// The svalue sent.
    svalue: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct PendingReading {
    /// The store's reading id.
    reading: i64,
    updates: Vec<Update>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Update {
    idx: u64,
    svalue: String,
    /// What the device shows after this write (for later modes).
    value: Decimal,
    done: bool,
}

/// The key of the sink's state in its memory.
const MEMORY_KEY: &str = "state";

/// The Domoticz sink.
pub struct DomoticzSink {
    devices: Vec<DomoticzDevice>,
    api: Option<Api>,
    link: Option<MqttLink>,
    topic: String,
    guard: CounterGuard,
    store: Arc<dyn SinkMemory>,
    /// Loaded from `store` before the first delivery.
    memory: Option<Memory>,
    /// Divider disagreements already logged (idx), so they are logged once.
    told_divider: std::collections::BTreeSet<u64>,
    /// Imprecise displays already logged: idx → the `Data` that was too coarse.
    told_precision: std::sync::Mutex<HashMap<u64, String>>,
    /// When each idx was last written over MQTT (see [`DomoticzSink::current`]).
    published: HashMap<u64, std::time::Instant>,
}

/// How long Domoticz may take to apply an update it got over MQTT before a device that still
/// shows something else counts as changed by hand.
const MQTT_APPLY_WAIT: Duration = Duration::from_secs(5);

/// Device facts read during one delivery (each idx at most once).
type Seen = HashMap<u64, DeviceInfo>;

/// Whether two mappings' `meter` filters can meet (absent = every meter).
fn meters_overlap(a: &Option<String>, b: &Option<String>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

impl DomoticzConfig {
    /// The static rules of `[domoticz]`: mode/idx2/type/divider combinations, one writer per
    /// device, a `url` where one is needed, a password only with a username, register and
    /// meter names that exist.
    pub fn validate(&self, names: &Names<'_>) -> Vec<ConfigProblem> {
        let mut p = Problems::new("domoticz");
        if let Some(url) = &self.url {
            validate::http_url(&mut p, "url", url);
        }
        secret_pair(
            &mut p,
            self.password.is_some(),
            self.password_file.is_some(),
            "password",
        );
        if self.username.is_none() {
            for (set, key) in [
                (self.password.is_some(), "password"),
                (self.password_file.is_some(), "password_file"),
            ] {
                if set {
                    p.key(key, "a password needs a username: add username = \"...\"");
                }
            }
        }
        if self.transport == DomoticzTransport::Mqtt {
            if let Some(e) = topic_problem(&self.topic) {
                p.key("topic", e);
            }
        }
        if self.devices.is_empty() {
            p.section("devices is empty: map at least one register, e.g. devices = [{ register = \"heat_energy\", idx = 12 }]");
        }
        let needs_reads = self.devices.iter().any(|d| d.mode != DomoticzMode::Write);
        if self.url.is_none() && (self.transport == DomoticzTransport::Http || needs_reads) {
            p.section("needs url = \"http://host:8080\" (for transport http and for modes subtract/add-delta)");
        }
        for (i, d) in self.devices.iter().enumerate() {
            let at = |key: &str| {
                [
                    PathPart::Key("devices".to_owned()),
                    PathPart::Index(i),
                    PathPart::Key(key.to_owned()),
                ]
            };
            p.register(names, &at("register"), &d.register);
            if let Some(m) = &d.meter {
                p.meter(names, &at("meter"), m);
            }
            if let Some(r) = d.power_register.as_deref().filter(|r| !r.is_empty()) {
                p.register(names, &at("power_register"), r);
            }
            if d.mode != DomoticzMode::Write && d.idx2.is_none() {
                p.item(
                    "devices",
                    i,
                    "mode",
                    "this mode needs idx2: the device holding the value to subtract",
                );
            }
            if d.mode == DomoticzMode::Write && d.idx2.is_some() {
                p.item(
                    "devices",
                    i,
                    "idx2",
                    "idx2 is only for mode subtract and add-delta",
                );
            }
            if d.idx2 == Some(d.idx) {
                p.item("devices", i, "idx2", "idx2 must be another device than idx");
            }
            if d.kind == DomoticzType::Kwh && d.mode != DomoticzMode::Write {
                p.item("devices", i, "mode", "type kwh supports mode write only");
            }
            if d.divider.is_some() && d.kind != DomoticzType::Counter {
                p.item("devices", i, "divider", "divider is for type counter only");
            } else if d.divider == Some(0) {
                p.item("devices", i, "divider", "divider must be at least 1");
            }
            if d.power_register.is_some() && d.kind != DomoticzType::Kwh {
                p.item(
                    "devices",
                    i,
                    "power_register",
                    "power_register is for type kwh only",
                );
            }
            // The same device written by two mappings that can apply to the same meter: one
            // would overwrite the other on every reading.
            if let Some((j, other)) = self.devices[..i]
                .iter()
                .enumerate()
                .find(|(_, o)| o.idx == d.idx && meters_overlap(&o.meter, &d.meter))
            {
                p.item("devices", i, "idx", format!(
                    "idx {} is already written by devices[{j}] ({}); each Domoticz device needs one writer",
                    d.idx, other.register
                ));
            }
        }
        p.list
    }
}

impl DomoticzSink {
    /// Builds the sink; with `transport = "mqtt"` pass the `[mqtt]` section (connects in the
    /// background; needs a Tokio runtime).
    pub fn new(
        cfg: &DomoticzConfig,
        mqtt: Option<&MqttConfig>,
        ctx: &BuildContext<'_>,
    ) -> Result<Self, SinkError> {
        let settings = match (cfg.transport, mqtt) {
            (DomoticzTransport::Mqtt, Some(m)) => Some(MqttSettings::resolve(m, ctx)?),
            (DomoticzTransport::Mqtt, None) => {
                return Err(SinkError::config(
                    "[domoticz] transport = \"mqtt\" needs an [mqtt] section",
                ))
            }
            (DomoticzTransport::Http, _) => None,
        };
        Self::start(cfg, ctx, settings.as_ref())
    }

    pub(crate) fn start(
        cfg: &DomoticzConfig,
        ctx: &BuildContext<'_>,
        mqtt: Option<&MqttSettings>,
    ) -> Result<Self, SinkError> {
        validate::first(cfg.validate(&Names::ANY))?;
        for d in &cfg.devices {
            let at = format!("[domoticz] devices ({} → idx {})", d.register, d.idx);
            if d.mode == DomoticzMode::AddDelta {
                let mirrored = cfg.devices.iter().any(|o| {
                    Some(o.idx) == d.idx2
                        && o.mode == DomoticzMode::Write
                        && o.register == d.register
                });
                if !mirrored {
                    tracing::warn!(
                        "{at}: add-delta adds (value − idx2) on every delivery; idx2 should be a write-mode device of the same register"
                    );
                }
            }
        }
        let timeout = cfg.timeout.max(Duration::from_secs(1));
        let api = match &cfg.url {
            Some(url) => {
                let password = match SecretRef::pick(&cfg.password, &cfg.password_file, "password")?
                {
                    Some(s) => Some(s.resolve(ctx.env, ctx.read_file)?),
                    None => None,
                };
                Some(Api::new(
                    url,
                    cfg.username.clone().map(|u| (u, password)),
                    timeout,
                )?)
            }
            None => None,
        };
        if api.is_none() && cfg.devices.iter().any(|d| d.kind == DomoticzType::Counter) {
            tracing::warn!("[domoticz] counters over MQTT without url: the device's divider and meter offset cannot be read; using divider from the config (default 1000). Set url so a Water/Gas counter shows the right value");
        }
        let link = match (cfg.transport, mqtt) {
            (DomoticzTransport::Mqtt, Some(settings)) => Some(MqttLink::start(
                settings,
                "domoticz",
                None,
                Box::new(NoHooks),
            )),
            (DomoticzTransport::Mqtt, None) => {
                return Err(SinkError::config(
                    "[domoticz] transport = \"mqtt\" needs an [mqtt] section",
                ))
            }
            (DomoticzTransport::Http, _) => None,
        };
        Ok(DomoticzSink {
            devices: cfg.devices.clone(),
            api,
            link,
            topic: cfg.topic.clone(),
            guard: CounterGuard::default(),
            store: Arc::new(VolatileMemory::default()),
            memory: None,
            told_divider: Default::default(),
            told_precision: Default::default(),
            published: HashMap::new(),
        })
    }

    /// Lists devices (`rid = Some(idx)` for one).
    pub async fn devices(&self, rid: Option<u64>) -> Result<Vec<DeviceInfo>, SinkError> {
        let api = self.api()?;
        match rid {
            Some(idx) => Ok(api.device(idx).await?.into_iter().collect()),
            None => api.all_devices().await,
        }
    }

    fn api(&self) -> Result<&Api, SinkError> {
        self.api
            .as_ref()
            .ok_or_else(|| SinkError::config("[domoticz] url is not set"))
    }

    fn target(&self) -> String {
        self.api.as_ref().map(Api::target).unwrap_or_default()
    }

    /// A device's facts, read once per delivery.
    async fn info<'s>(&self, idx: u64, seen: &'s mut Seen) -> Result<&'s DeviceInfo, SinkError> {
        match seen.entry(idx) {
            std::collections::hash_map::Entry::Occupied(e) => Ok(e.into_mut()),
            std::collections::hash_map::Entry::Vacant(e) => {
                let api = self
                    .api
                    .as_ref()
                    .ok_or_else(|| SinkError::config("[domoticz] url is not set"))?;
                let info = api.device(idx).await?.ok_or_else(|| {
                    SinkError::rejected(
                        api.target(),
                        format!("device idx {idx} not found in Domoticz (Setup → Devices lists the idx values)"),
                    )
                })?;
                Ok(e.insert(info))
            }
        }
    }

    /// The current value of device `idx`, in its own unit: what we wrote, exactly, while
    /// Domoticz still shows it; else Domoticz's most precise number. `meter_value` is the
    /// reading's value, to warn when Domoticz's number has fewer digits than it.
    async fn current(
        &self,
        idx: u64,
        meter_value: &Decimal,
        seen: &mut Seen,
    ) -> Result<Decimal, SinkError> {
        let target = self.target();
        let no_number = |info: &DeviceInfo| {
            SinkError::rejected(
                &target,
                format!("device idx {idx} has no numeric value ({:?})", info.data),
            )
        };
        let info = self.info(idx, seen).await?;
        let mut shown = info.shown.ok_or_else(|| no_number(info))?;
        let ours = self
            .memory
            .as_ref()
            .and_then(|m| m.written.get(&idx))
            .map(|w| w.value);
        if let Some(ours) = ours {
            // Domoticz applies what arrives on `domoticz/in` when it gets to it, after the
            // broker acknowledged it to us: a device we have just written over MQTT may still
            // show its old value for a moment. That is not a hand change; read it again.
            let just_published = self
                .published
                .get(&idx)
                .is_some_and(|at| at.elapsed() < MQTT_APPLY_WAIT);
            if !shown.agrees_with(&ours) && just_published {
                let api = self.api()?;
                let until = std::time::Instant::now() + MQTT_APPLY_WAIT;
                while std::time::Instant::now() < until {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if let Some(fresh) = api.device(idx).await? {
                        let fresh_shown = fresh.shown.ok_or_else(|| no_number(&fresh))?;
                        seen.insert(idx, fresh);
                        shown = fresh_shown;
                        if shown.agrees_with(&ours) {
                            break;
                        }
                    }
                }
            }
            if shown.agrees_with(&ours) {
                return Ok(ours);
            }
            tracing::warn!(
                idx,
                written = %ours,
                shown = %shown.value,
                "Domoticz device was changed outside kamstrup; continuing from the value it shows"
            );
        }
        let Some(info) = seen.get(&idx) else {
            return Ok(shown.value);
        };
        if shown.coarser_than(meter_value.exponent()) {
            let mut told = self
                .told_precision
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Once per device and display, not at every delivery.
            if told.get(&idx) != Some(&info.data) {
                told.insert(idx, info.data.clone());
                tracing::warn!(
                    idx,
                    shown = %info.data,
                    resolution = %Decimal::new(1, shown.resolution).unwrap_or(Decimal::ZERO),
                    meter_value = %meter_value,
                    "Domoticz shows this device with fewer digits than the meter's value has (a Custom Sensor shows 6 significant digits), so the result can be off in those digits. Let kamstrup write this device (a write mapping), or use a Counter device"
                );
            }
        }
        Ok(shown.value)
    }

    /// The svalue for one mapping and the value the device will then show, or `None` when this
    /// reading cannot fill it.
    async fn compute(
        &mut self,
        dev: &DomoticzDevice,
        reg: &RegisterValue,
        regs: &HashMap<&str, &RegisterValue>,
        seen: &mut Seen,
    ) -> Result<Option<(String, Decimal)>, SinkError> {
        if reg.text.is_some() {
            return Ok(None);
        }
        let target = format!("idx {}", dev.idx);
        let overflow = || SinkError::rejected(&target, "value out of range");
        // A counter's divider and offset come from the device (when we can read it).
        let kind = match (dev.kind, &self.api) {
            (DomoticzType::Counter, Some(_)) => {
                let info = self.info(dev.idx, seen).await?;
                match &info.kind {
                    DeviceKind::Counter(c) => {
                        let c = c.clone();
                        if let Some(cfg) = dev.divider {
                            if !c.divider.eq_value(&Decimal::from_int(cfg as i64))
                                && self.told_divider.insert(dev.idx)
                            {
                                tracing::warn!(idx = dev.idx, config = cfg, domoticz = %c.divider, "divider in the config disagrees with the Domoticz device; using Domoticz's so the device shows the meter's value");
                            }
                        }
                        Some(DeviceKind::Counter(c))
                    }
                    other => {
                        return Err(SinkError::rejected(
                            &target,
                            format!("mapped as type counter, but Domoticz says it is a {other}; fix type in [domoticz] devices"),
                        ))
                    }
                }
            }
            (DomoticzType::Counter, None) => Some(DeviceKind::Counter(CounterInfo {
                meter_type: CounterType::Counter,
                divider: Decimal::from_int(dev.divider.unwrap_or(1000) as i64),
                offset: Decimal::ZERO,
                units: String::new(),
            })),
            _ => None,
        };
        let value = in_device_unit(reg, kind.as_ref());
        let value = match (dev.mode, dev.idx2) {
            (DomoticzMode::Write, _) | (_, None) => value,
            (DomoticzMode::Subtract, Some(idx2)) => {
                let other = self.current(idx2, &value, seen).await?;
                value.checked_sub(&other).ok_or_else(overflow)?
            }
            (DomoticzMode::AddDelta, Some(idx2)) => {
                let base = self.current(dev.idx, &value, seen).await?;
                let previous = self.current(idx2, &value, seen).await?;
                let delta = value.checked_sub(&previous).ok_or_else(overflow)?;
                base.checked_add(&delta).ok_or_else(overflow)?
            }
        };
        let refused = |r: Refusal| SinkError::rejected(&target, r.to_string());
        Ok(Some(match (dev.kind, kind) {
            (DomoticzType::Counter, Some(DeviceKind::Counter(c))) => {
                counter_svalue(&value, &c).map_err(refused)?
            }
            (DomoticzType::Kwh, _) => {
                let Some(wh) = energy_to_wh(&value, &reg.unit) else {
                    tracing::warn!(idx = dev.idx, unit = %reg.unit, "type kwh needs an energy register; skipped");
                    return Ok(None);
                };
                let power_name = dev.power_register.as_deref().unwrap_or("power");
                let watts = if power_name.is_empty() {
                    "0".to_owned()
                } else {
                    match regs
                        .get(power_name)
                        .and_then(|p| power_to_w(&p.value, &p.unit))
                    {
                        Some(w) => plain(&w),
                        None => {
                            // Never invent a 0 W for a power that was not read.
                            tracing::warn!(
                                idx = dev.idx,
                                register = power_name,
                                "no power in this reading; kwh device not updated"
                            );
                            return Ok(None);
                        }
                    }
                };
                let kwh = shift(&wh, -3).ok_or_else(overflow)?;
                (format!("{watts};{}", plain(&wh)), kwh)
            }
            _ => (text_svalue(&value), value),
        }))
    }

    async fn load_memory(&mut self) -> Result<(), SinkError> {
        if self.memory.is_some() {
            return Ok(());
        }
        let memory = match self.store.load("domoticz", MEMORY_KEY).await? {
            Some(text) => serde_json::from_str(&text).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "Domoticz sink memory unreadable; starting afresh");
                Memory::default()
            }),
            None => Memory::default(),
        };
        self.memory = Some(memory);
        Ok(())
    }

    async fn save_memory(&self) -> Result<(), SinkError> {
        let Some(memory) = &self.memory else {
            return Ok(());
        };
        let text = serde_json::to_string(memory)
            .map_err(|e| SinkError::config(format!("cannot encode sink memory: {e}")))?;
        self.store.save("domoticz", MEMORY_KEY, &text).await
    }

    /// Writes what is pending and not done yet, marking each write as Domoticz confirms it.
    async fn finish_pending(&mut self) -> Result<(), SinkError> {
        let todo: Vec<Update> = self
            .memory
            .as_ref()
            .and_then(|m| m.pending.as_ref())
            .map(|p| p.updates.iter().filter(|u| !u.done).cloned().collect())
            .unwrap_or_default();
        if let Some(link) = &self.link {
            if !todo.is_empty() {
                let mut msgs = Vec::with_capacity(todo.len());
                for u in &todo {
                    let body = MqttUpdate {
                        command: "udevice",
                        idx: u.idx,
                        nvalue: 0,
                        svalue: u.svalue.clone(),
                    };
                    let payload = serde_json::to_vec(&body)
                        .map_err(|e| SinkError::config(format!("cannot encode JSON: {e}")))?;
                    msgs.push(OutMsg::new(self.topic.clone(), payload, false));
                }
                link.publish(msgs).await?;
                let now = std::time::Instant::now();
                for u in &todo {
                    self.mark_done(u);
                    self.published.insert(u.idx, now);
                }
            }
        } else {
            for u in &todo {
                self.api()?.update(u.idx, &u.svalue).await?;
                self.mark_done(u);
                self.save_memory().await?;
            }
        }
        if let Some(m) = &mut self.memory {
            m.pending = None;
        }
        self.save_memory().await
    }

    fn mark_done(&mut self, u: &Update) {
        if let Some(m) = &mut self.memory {
            if let Some(p) = &mut m.pending {
                for x in p.updates.iter_mut().filter(|x| x.idx == u.idx) {
                    x.done = true;
                }
            }
            m.written.insert(
                u.idx,
                Written {
                    value: u.value,
                    svalue: u.svalue.clone(),
                },
            );
        }
    }

    fn pending_reading(&self) -> Option<i64> {
        self.memory
            .as_ref()
            .and_then(|m| m.pending.as_ref())
            .map(|p| p.reading)
    }
}

#[async_trait::async_trait]
impl Sink for DomoticzSink {
    fn name(&self) -> &str {
        "domoticz"
    }

    fn delivery(&self) -> Delivery {
        Delivery::Latest
    }

    fn use_memory(&mut self, memory: Arc<dyn SinkMemory>) {
        self.store = memory;
        self.memory = None;
    }

    async fn deliver(&mut self, batch: &[Delivered<'_>]) -> Result<(), SinkError> {
        self.load_memory().await?;
        let mut updates = CounterUpdates::default();
        for d in batch {
            // 1. Finish an older reading that was only partly written (also one from before a
            //    restart): its deltas were computed against the devices as they were then.
            if self.pending_reading().is_some_and(|r| r != d.id) {
                self.finish_pending().await?;
            }
            // 2. Compute every svalue of this reading before writing any, and save them.
            if self.pending_reading().is_none() {
                let admitted = self.guard.admit(d.serial, d.reading, &mut updates);
                let regs: HashMap<&str, &RegisterValue> =
                    admitted.iter().map(|r| (r.name.as_str(), *r)).collect();
                let mut seen = Seen::new();
                let mut computed = Vec::new();
                for dev in self.devices.clone() {
                    if dev.meter.as_deref().is_some_and(|m| m != d.meter_name) {
                        continue;
                    }
                    let Some(reg) = regs.get(dev.register.as_str()) else {
                        continue;
                    };
                    if let Some((svalue, value)) = self.compute(&dev, reg, &regs, &mut seen).await?
                    {
                        computed.push(Update {
                            idx: dev.idx,
                            svalue,
                            value,
                            done: false,
                        });
                    }
                }
                if computed.is_empty() {
                    continue;
                }
                if let Some(m) = &mut self.memory {
                    m.pending = Some(PendingReading {
                        reading: d.id,
                        updates: computed,
                    });
                }
                self.save_memory().await?;
            }
            // 3. Write what is not written yet (on a retry: only the rest, same values).
            self.finish_pending().await?;
        }
        self.guard.commit(updates);
        Ok(())
    }

    async fn check(&mut self) -> Result<Vec<CheckLine>, SinkError> {
        let mut lines = Vec::new();
        if let Some(link) = &self.link {
            let item = format!("domoticz via {} ({})", link.target, self.topic);
            lines.push(match link.wait_ready().await {
                Ok(()) => CheckLine::ok(item, format!("connected as {}", link.client_id)),
                Err(e) => CheckLine::fail(item, &e),
            });
        }
        let Some(api) = &self.api else {
            return Ok(lines);
        };
        let item = format!("domoticz {}", api.target());
        let all = match api.all_devices().await {
            Ok(all) => all,
            Err(e) => {
                lines.push(CheckLine::fail(item, &e));
                return Ok(lines);
            }
        };
        lines.push(CheckLine::ok(item, format!("{} devices", all.len())));
        for dev in &all {
            lines.push(CheckLine::ok(
                format!("idx {}", dev.idx),
                format!("{}: {}", dev.name, dev.data),
            ));
        }
        // What `run` will do: one request per device, in a row, as each delivery does.
        for (i, m) in self.devices.iter().enumerate() {
            let what = format!(
                "devices[{i}] {} → idx {}{}",
                m.register,
                m.idx,
                m.idx2.map(|i2| format!(" (idx2 {i2})")).unwrap_or_default()
            );
            let mut problems = Vec::new();
            let mut notes = Vec::new();
            let mut idx_unit = None;
            match api.device(m.idx).await {
                Err(e) => {
                    lines.push(CheckLine::fail(what, &e));
                    continue;
                }
                Ok(None) => problems.push(format!(
                    "idx {} not found in Domoticz (create the device, or fix idx)",
                    m.idx
                )),
                Ok(Some(info)) => {
                    if let Some(p) = type_problem(m, &info.kind) {
                        problems.push(p);
                    }
                    if let (DeviceKind::Counter(c), Some(cfg)) = (&info.kind, m.divider) {
                        if !c.divider.eq_value(&Decimal::from_int(cfg as i64)) {
                            problems.push(format!(
                                "divider = {cfg} in the config, but Domoticz divides this {} counter by {}: remove divider (kamstrup uses the device's), or change the device's divider",
                                c.meter_type, c.divider
                            ));
                        }
                    }
                    notes.push(format!("{}: {}, {}", info.name, info.kind, info.data));
                    idx_unit = info.kind.shown_unit();
                }
            }
            if let Some(idx2) = m.idx2 {
                match api.device(idx2).await {
                    Err(e) => problems.push(format!("idx2 {idx2}: {e}")),
                    Ok(None) => problems.push(format!("idx2 {idx2} not found in Domoticz")),
                    Ok(Some(info2)) => match info2.shown {
                        None => problems.push(format!(
                            "idx2 {idx2} ({}) has no numeric value ({:?})",
                            info2.kind, info2.data
                        )),
                        Some(_) => {
                            // The modes compute in idx's unit: idx2 must show the same one.
                            if let (Some(u1), Some(u2)) = (&idx_unit, info2.kind.shown_unit()) {
                                if !u1.eq_ignore_ascii_case(&u2) {
                                    problems.push(format!(
                                        "idx2 {idx2} ({}) shows {u2}, idx {} shows {u1}: mode {} needs both in one unit (make idx2 the same kind of device as idx)",
                                        info2.kind, m.idx, m.mode.word()
                                    ));
                                }
                            }
                            let ours = self
                                .devices
                                .iter()
                                .any(|o| o.idx == idx2 && o.mode == DomoticzMode::Write);
                            if !ours && matches!(info2.kind, DeviceKind::Custom { .. }) {
                                notes.push(format!(
                                    "note: idx2 {idx2} is a Custom Sensor kamstrup does not write; Domoticz shows custom sensors with at most 6 significant digits (now {:?}), so larger values lose precision",
                                    info2.data
                                ));
                            }
                        }
                    },
                }
            }
            lines.push(if problems.is_empty() {
                CheckLine::ok(what, notes.join("; "))
            } else {
                CheckLine {
                    ok: false,
                    item: what,
                    detail: problems.join("; "),
                }
            });
        }
        Ok(lines)
    }

    async fn shutdown(&mut self) {
        if let Some(link) = &self.link {
            link.close(Vec::new()).await;
        }
    }
}

/// Why a mapping's `type` does not fit the device Domoticz has under that idx.
fn type_problem(m: &DomoticzDevice, kind: &DeviceKind) -> Option<String> {
    let fits = matches!(
        (m.kind, kind),
        (DomoticzType::Custom, DeviceKind::Custom { .. })
            | (DomoticzType::Temperature, DeviceKind::Temperature)
            | (DomoticzType::Counter, DeviceKind::Counter(_))
            | (DomoticzType::Kwh, DeviceKind::Kwh)
    );
    if fits {
        return None;
    }
    let suggestion = match kind {
        DeviceKind::Custom { .. } => "type = \"custom\"",
        DeviceKind::Temperature => "type = \"temperature\"",
        DeviceKind::Counter(_) => "type = \"counter\"",
        DeviceKind::Kwh => "type = \"kwh\"",
        DeviceKind::Other { .. } => {
            return Some(format!(
                "idx {} is a {kind} device, which kamstrup cannot write: create a Custom Sensor, Temperature, Counter or General kWh device",
                m.idx
            ))
        }
    };
    Some(format!(
        "idx {} is a {kind} device in Domoticz, mapped as type {:?}: set {suggestion}",
        m.idx,
        format!("{:?}", m.kind).to_lowercase()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_from_words_or_numbers() {
        let d: DomoticzDevice = serde_json::from_value(serde_json::json!(
            {"register": "heat_energy", "idx": 20, "mode": 1, "idx2": 21}
        ))
        .unwrap();
        assert_eq!(d.mode, DomoticzMode::Subtract);
        let d: DomoticzDevice = serde_json::from_value(serde_json::json!(
            {"register": "heat_energy", "idx": 20, "mode": "add-delta", "idx2": 21, "type": "counter", "divider": 100}
        ))
        .unwrap();
        assert_eq!(
            (d.mode, d.kind, d.divider),
            (DomoticzMode::AddDelta, DomoticzType::Counter, Some(100))
        );
        assert!(serde_json::from_value::<DomoticzDevice>(serde_json::json!(
            {"register": "x", "idx": 1, "mode": 3}
        ))
        .is_err());
        assert!(serde_json::from_value::<DomoticzDevice>(serde_json::json!(
            {"register": "x", "idx": 1, "colour": "red"}
        ))
        .is_err());
    }

    #[test]
    fn mqtt_payload_types() {
        let body = MqttUpdate {
            command: "udevice",
            idx: 12,
            nvalue: 0,
            svalue: "84.817".into(),
        };
        insta::assert_snapshot!(serde_json::to_string(&body).unwrap(), @r#"{"command":"udevice","idx":12,"nvalue":0,"svalue":"84.817"}"#);
    }

    fn build(devices: serde_json::Value, url: Option<&str>) -> Result<DomoticzSink, SinkError> {
        let mut cfg = serde_json::json!({"devices": devices});
        if let Some(u) = url {
            cfg["url"] = serde_json::json!(u);
        }
        let cfg: DomoticzConfig = serde_json::from_value(cfg).unwrap();
        let env = |_: &str| -> Option<String> { None };
        let files =
            |_: &std::path::Path| -> std::io::Result<String> { Err(std::io::Error::other("no")) };
        DomoticzSink::new(&cfg, None, &BuildContext::new(&env, &files))
    }

    #[test]
    fn config_checks() {
        let url = Some("http://127.0.0.1:8080");
        for bad in [
            serde_json::json!([{"register": "heat_energy", "idx": 1, "mode": "subtract"}]),
            serde_json::json!([{"register": "heat_energy", "idx": 1, "idx2": 2}]),
            serde_json::json!([{"register": "heat_energy", "idx": 1, "type": "kwh", "mode": 1, "idx2": 2}]),
            serde_json::json!([{"register": "heat_energy", "idx": 1, "divider": 10}]),
            serde_json::json!([{"register": "heat_energy", "idx": 1, "type": "counter", "divider": 0}]),
            serde_json::json!([{"register": "heat_energy", "idx": 1, "mode": "subtract", "idx2": 1}]),
            serde_json::json!([{"register": "heat_energy", "idx": 1}, {"register": "volume", "idx": 1}]),
            serde_json::json!([]),
        ] {
            assert_eq!(
                build(bad.clone(), url).err().unwrap().kind(),
                "config",
                "{bad}"
            );
        }
        assert!(build(serde_json::json!([{"register": "t1", "idx": 1}]), None).is_err());
        assert!(build(serde_json::json!([{"register": "t1", "idx": 1}]), url).is_ok());
    }

    #[tokio::test]
    async fn svalue_formats() {
        let mut sink = build(
            serde_json::json!([{"register": "t1", "idx": 1}]),
            Some("http://127.0.0.1:9"),
        )
        .unwrap();
        let energy_gj = crate::testutil::reg("heat_energy", "E1", "84.817", "GJ");
        let energy_mwh = crate::testutil::reg("heat_energy", "E1", "55.006", "MWh");
        let t1 = crate::testutil::reg("t1", "T1", "76.85", "°C");
        let power = crate::testutil::reg("power", "P", "15.5", "kW");
        let dev = |kind: &str, extra: serde_json::Value| -> DomoticzDevice {
            let mut v = serde_json::json!({"register": "x", "idx": 7, "type": kind});
            if let serde_json::Value::Object(m) = extra {
                for (k, val) in m {
                    v[k] = val;
                }
            }
            serde_json::from_value(v).unwrap()
        };
        let with_power: HashMap<&str, &RegisterValue> = [("power", &power)].into_iter().collect();
        let none: HashMap<&str, &RegisterValue> = HashMap::new();
        let mut seen = Seen::new();
        let mut lines = Vec::new();
        for (label, d, reg, regs) in [
            (
                "custom GJ",
                dev("custom", serde_json::json!({})),
                &energy_gj,
                &none,
            ),
            (
                "temperature",
                dev("temperature", serde_json::json!({})),
                &t1,
                &none,
            ),
            (
                "kwh from GJ",
                dev("kwh", serde_json::json!({})),
                &energy_gj,
                &with_power,
            ),
            (
                "kwh from MWh",
                dev("kwh", serde_json::json!({})),
                &energy_mwh,
                &with_power,
            ),
            (
                "kwh without power",
                dev("kwh", serde_json::json!({})),
                &energy_mwh,
                &none,
            ),
            (
                "kwh power_register empty",
                dev("kwh", serde_json::json!({"power_register": ""})),
                &energy_mwh,
                &none,
            ),
        ] {
            let s = sink
                .compute(&d, reg, regs, &mut seen)
                .await
                .unwrap()
                .map(|(svalue, _)| svalue);
            lines.push(format!("{label}: {s:?}"));
        }
        insta::assert_snapshot!(lines.join("\n"));
    }
}
