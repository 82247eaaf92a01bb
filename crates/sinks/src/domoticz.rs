//! Domoticz: per-register device updates by idx, over HTTP (`json.htm?type=command&param=udevice`)
//! or MQTT (`domoticz/in`), with the seed script's three modes.
//!
//! # svalue formats (nvalue is always 0)
//!
//! | `type` | Domoticz device | svalue |
//! |---|---|---|
//! | `custom` (default) | Custom Sensor | the exact value, e.g. `84.817` |
//! | `temperature` | Temperature | the exact value, e.g. `76.85` |
//! | `counter` | Counter (RFXMeter) | `floor(value × divider)` as an integer, e.g. `520410` (divider default 1000; Domoticz parses the counter as an integer) |
//! | `kwh` | General kWh / Electric (Instant+Counter) | `W;Wh`: power from the `power` register of the same reading (or `power_register`), energy converted to Wh (exact for Wh/kWh/MWh; joules ÷ 3600 rounded to 1 Wh) |
//!
//! # Modes (the seed's `idx:register:opt[:idx2]`)
//!
//! * `write` (0): the value.
//! * `subtract` (1): value − current value of device `idx2` (e.g. "usage this year" = meter −
//!   a device holding the value on 1 January).
//! * `add-delta` (2): current value of device `idx` + (value − current value of device `idx2`).
//!   This is what the seed's code did: `idx2` holds the register's previous value, normally a
//!   `write`-mode mapping of the same register, so each delivery adds the growth since then.
//!
//! Current values are read with `type=command&param=getdevices&rid=<idx>` (the seed's
//! `type=devices` answers 404 on Domoticz ≥ 2025.1), taking the number at the start of `Data`.
//! So modes 1 and 2 need `url` even with `transport = "mqtt"`.
//!
//! # Idempotency and its limit
//!
//! For each reading the sink first computes every svalue (all reads happen before any write),
//! keeps them in memory with the reading id, then writes. A retry of the same reading re-sends
//! only the devices not yet written, with the values computed the first time, so `add-delta`
//! never adds twice and never reads an `idx2` that this same reading already overwrote. If a
//! newer reading comes while an older one was only partly written, the older one is finished
//! first. What remains: these values live in memory only, so if the process dies between two
//! writes of one reading, the next start may add one delta twice or lose it. `write`,
//! `subtract`, `counter` and `kwh` devices are idempotent anyway.
//!
//! Authentication: none (Domoticz "trusted networks") or HTTP Basic with `username`/`password`
//! (Domoticz honours Basic only over HTTPS unless "Allow Basic-Auth over plain HTTP" is on).
//! Domoticz answers errors with HTTP 200 and `"status": "ERR"`: the body is always checked.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use kamstrup_decimal::Decimal;
use kamstrup_reading::RegisterValue;
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Deserializer, Serialize};

use crate::http;
use crate::mqtt::{check_topic, MqttLink, MqttSettings, NoHooks, OutMsg};
use crate::secret::{Secret, SecretRef};
use crate::values::{
    display_url, energy_to_wh, floor_times, plain, power_to_w, CounterGuard, CounterUpdates,
};
use crate::{BuildContext, CheckLine, Delivered, Delivery, MqttConfig, Sink, SinkError};

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
    /// Seconds per HTTP request (default 10).
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    /// Register → device mappings.
    #[serde(default)]
    pub devices: Vec<DomoticzDevice>,
}

fn default_topic() -> String {
    "domoticz/in".to_owned()
}
fn default_timeout() -> u64 {
    10
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
    /// Counter divider (type `counter` only; default 1000).
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

#[derive(Clone, Debug)]
struct Pending {
    reading_id: i64,
    svalue: String,
    written: bool,
}

struct HttpPart {
    base: Url,
    client: reqwest::Client,
    auth: Option<(String, Option<Secret>)>,
    timeout: Duration,
}

/// The Domoticz sink.
pub struct DomoticzSink {
    devices: Vec<DomoticzDevice>,
    http: Option<HttpPart>,
    link: Option<MqttLink>,
    topic: String,
    guard: CounterGuard,
    /// mapping index → the svalue computed for the newest reading and whether it is written.
    pending: BTreeMap<usize, Pending>,
}

/// A device as `getdevices` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// idx.
    pub idx: String,
    /// Name.
    pub name: String,
    /// The human-readable `Data` field.
    pub data: String,
}

#[derive(Deserialize)]
struct ApiAnswer {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    result: Option<Vec<serde_json::Value>>,
}

fn field_text(v: &serde_json::Value, key: &str) -> Option<String> {
    match v.get(key)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The number at the start of a `Data` text such as `"12.345 GJ"` or `"52.8 C"`.
fn leading_number(text: &str) -> Option<Decimal> {
    text.split_whitespace().next()?.parse().ok()
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
        if cfg.devices.is_empty() {
            return Err(SinkError::config("[domoticz] devices is empty"));
        }
        let needs_reads = cfg.devices.iter().any(|d| d.mode != DomoticzMode::Write);
        for (i, d) in cfg.devices.iter().enumerate() {
            let at = format!("[domoticz] devices[{i}] ({} → idx {})", d.register, d.idx);
            if d.mode != DomoticzMode::Write && d.idx2.is_none() {
                return Err(SinkError::config(format!("{at}: this mode needs idx2")));
            }
            if d.mode == DomoticzMode::Write && d.idx2.is_some() {
                return Err(SinkError::config(format!(
                    "{at}: idx2 is only for subtract and add-delta"
                )));
            }
            if d.kind == DomoticzType::Kwh && d.mode != DomoticzMode::Write {
                return Err(SinkError::config(format!(
                    "{at}: type kwh supports mode write only"
                )));
            }
            if d.divider.is_some() && d.kind != DomoticzType::Counter {
                return Err(SinkError::config(format!(
                    "{at}: divider is for type counter only"
                )));
            }
            if d.divider == Some(0) {
                return Err(SinkError::config(format!(
                    "{at}: divider must be at least 1"
                )));
            }
            if d.power_register.is_some() && d.kind != DomoticzType::Kwh {
                return Err(SinkError::config(format!(
                    "{at}: power_register is for type kwh only"
                )));
            }
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
        let timeout = Duration::from_secs(cfg.timeout.max(1));
        let http = match &cfg.url {
            Some(url) => {
                let password = match SecretRef::pick(&cfg.password, &cfg.password_file, "password")?
                {
                    Some(s) => Some(s.resolve(ctx.env, ctx.read_file)?),
                    None => None,
                };
                if password.is_some() && cfg.username.is_none() {
                    return Err(SinkError::config("[domoticz] password needs a username"));
                }
                Some(HttpPart {
                    base: http::base_url(url, "domoticz")?,
                    client: http::client(timeout)?,
                    auth: cfg.username.clone().map(|u| (u, password)),
                    timeout,
                })
            }
            None => None,
        };
        if http.is_none() && (cfg.transport == DomoticzTransport::Http || needs_reads) {
            return Err(SinkError::config(
                "[domoticz] needs url (for transport http and for modes subtract/add-delta)",
            ));
        }
        let link = match (cfg.transport, mqtt) {
            (DomoticzTransport::Mqtt, Some(settings)) => {
                check_topic(&cfg.topic, "[domoticz] topic")?;
                Some(MqttLink::start(
                    settings,
                    "domoticz",
                    None,
                    Box::new(NoHooks),
                ))
            }
            (DomoticzTransport::Mqtt, None) => {
                return Err(SinkError::config(
                    "[domoticz] transport = \"mqtt\" needs an [mqtt] section",
                ))
            }
            (DomoticzTransport::Http, _) => None,
        };
        Ok(DomoticzSink {
            devices: cfg.devices.clone(),
            http,
            link,
            topic: cfg.topic.clone(),
            guard: CounterGuard::default(),
            pending: BTreeMap::new(),
        })
    }

    async fn api(&self, query: &[(&str, String)]) -> Result<ApiAnswer, SinkError> {
        let Some(h) = &self.http else {
            return Err(SinkError::config("[domoticz] url is not set"));
        };
        let url = http::join(&h.base, "json.htm");
        let mut req = h.client.get(url.clone()).query(query);
        if let Some((user, pass)) = &h.auth {
            req = req.basic_auth(user, pass.as_ref().map(|p| p.expose()));
        }
        let resp = req
            .send()
            .await
            .map_err(|e| http::send_error(&url, e, h.timeout))?;
        let target = display_url(&url);
        let status = resp.status();
        match status {
            StatusCode::OK => {}
            StatusCode::UNAUTHORIZED => {
                return Err(SinkError::auth(
                    target,
                    "HTTP 401: Domoticz wants credentials (add this host to its trusted networks, or set username/password and allow Basic auth)",
                ))
            }
            StatusCode::FORBIDDEN => {
                return Err(SinkError::auth(
                    target,
                    "HTTP 403: the Domoticz user may not change this device (viewer rights?)",
                ))
            }
            StatusCode::NOT_FOUND => {
                return Err(SinkError::rejected(
                    target,
                    "HTTP 404: no type=command API here (is the url a Domoticz server?)",
                ))
            }
            other => {
                let body = http::short_body(resp).await;
                return Err(SinkError::rejected(target, format!("HTTP {}: {body}", other.as_u16())));
            }
        }
        let body = resp
            .text()
            .await
            .map_err(|e| http::send_error(&url, e, h.timeout))?;
        let answer: ApiAnswer = serde_json::from_str(&body).map_err(|e| {
            SinkError::rejected(&target, format!("answer is not Domoticz JSON: {e}"))
        })?;
        if answer.status.as_deref() != Some("OK") {
            let why = answer
                .message
                .clone()
                .or_else(|| answer.title.clone())
                .unwrap_or_else(|| "no reason given".to_owned());
            return Err(SinkError::rejected(
                target,
                format!(
                    "status {}: {why}",
                    answer.status.as_deref().unwrap_or("missing")
                ),
            ));
        }
        Ok(answer)
    }

    /// Lists devices (`rid = Some(idx)` for one).
    pub async fn devices(&self, rid: Option<u64>) -> Result<Vec<DeviceInfo>, SinkError> {
        let mut query = vec![
            ("type", "command".to_owned()),
            ("param", "getdevices".to_owned()),
        ];
        match rid {
            Some(idx) => query.push(("rid", idx.to_string())),
            None => {
                query.push(("filter", "all".to_owned()));
                query.push(("used", "true".to_owned()));
            }
        }
        let answer = self.api(&query).await?;
        Ok(answer
            .result
            .unwrap_or_default()
            .iter()
            .map(|v| DeviceInfo {
                idx: field_text(v, "idx").unwrap_or_default(),
                name: field_text(v, "Name").unwrap_or_default(),
                data: field_text(v, "Data").unwrap_or_default(),
            })
            .collect())
    }

    /// The current numeric value of a device.
    async fn current(
        &self,
        idx: u64,
        cache: &mut HashMap<u64, Decimal>,
    ) -> Result<Decimal, SinkError> {
        if let Some(v) = cache.get(&idx) {
            return Ok(*v);
        }
        let target = self
            .http
            .as_ref()
            .map(|h| display_url(&http::join(&h.base, "json.htm")))
            .unwrap_or_default();
        let devices = self.devices(Some(idx)).await?;
        let device = devices
            .iter()
            .find(|d| d.idx == idx.to_string())
            .ok_or_else(|| SinkError::rejected(&target, format!("device idx {idx} not found")))?;
        let value = leading_number(&device.data).ok_or_else(|| {
            SinkError::rejected(
                &target,
                format!("device idx {idx} has no numeric value ({:?})", device.data),
            )
        })?;
        cache.insert(idx, value);
        Ok(value)
    }

    /// The svalue for one mapping, or `None` when this reading cannot fill it.
    async fn compute(
        &self,
        dev: &DomoticzDevice,
        reg: &RegisterValue,
        regs: &HashMap<&str, &RegisterValue>,
        cache: &mut HashMap<u64, Decimal>,
    ) -> Result<Option<String>, SinkError> {
        if reg.text.is_some() {
            return Ok(None);
        }
        let overflow = || SinkError::rejected(format!("idx {}", dev.idx), "value out of range");
        let value = match (dev.mode, dev.idx2) {
            (DomoticzMode::Write, _) | (_, None) => reg.value,
            (DomoticzMode::Subtract, Some(idx2)) => {
                let other = self.current(idx2, cache).await?;
                reg.value.checked_sub(&other).ok_or_else(overflow)?
            }
            (DomoticzMode::AddDelta, Some(idx2)) => {
                let base = self.current(dev.idx, cache).await?;
                let previous = self.current(idx2, cache).await?;
                let delta = reg.value.checked_sub(&previous).ok_or_else(overflow)?;
                base.checked_add(&delta).ok_or_else(overflow)?
            }
        };
        Ok(Some(match dev.kind {
            DomoticzType::Custom | DomoticzType::Temperature => plain(&value),
            DomoticzType::Counter => floor_times(&value, dev.divider.unwrap_or(1000))
                .ok_or_else(overflow)?
                .to_string(),
            DomoticzType::Kwh => {
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
                format!("{watts};{}", plain(&wh))
            }
        }))
    }

    async fn write(&self, updates: &[(usize, u64, String)]) -> Result<(), SinkError> {
        if let Some(link) = &self.link {
            let mut msgs = Vec::with_capacity(updates.len());
            for (_, idx, svalue) in updates {
                let body = MqttUpdate {
                    command: "udevice",
                    idx: *idx,
                    nvalue: 0,
                    svalue: svalue.clone(),
                };
                let payload = serde_json::to_vec(&body)
                    .map_err(|e| SinkError::config(format!("cannot encode JSON: {e}")))?;
                msgs.push(OutMsg::new(self.topic.clone(), payload, false));
            }
            return link.publish(msgs).await;
        }
        for (_, idx, svalue) in updates {
            self.api(&[
                ("type", "command".to_owned()),
                ("param", "udevice".to_owned()),
                ("idx", idx.to_string()),
                ("nvalue", "0".to_owned()),
                ("svalue", svalue.clone()),
            ])
            .await?;
        }
        Ok(())
    }

    /// Writes `updates` and marks each written as soon as Domoticz confirmed it.
    async fn write_marking(&mut self, updates: Vec<(usize, u64, String)>) -> Result<(), SinkError> {
        if self.link.is_some() {
            self.write(&updates).await?;
            for (i, _, _) in &updates {
                if let Some(p) = self.pending.get_mut(i) {
                    p.written = true;
                }
            }
            return Ok(());
        }
        for update in updates {
            self.write(std::slice::from_ref(&update)).await?;
            if let Some(p) = self.pending.get_mut(&update.0) {
                p.written = true;
            }
        }
        Ok(())
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

    async fn deliver(&mut self, batch: &[Delivered<'_>]) -> Result<(), SinkError> {
        let mut updates = CounterUpdates::default();
        for d in batch {
            // 1. Finish an older reading that was only partly written.
            let unfinished: Vec<(usize, u64, String)> = self
                .pending
                .iter()
                .filter(|(_, p)| !p.written && p.reading_id != d.id)
                .filter_map(|(i, p)| {
                    self.devices
                        .get(*i)
                        .map(|dev| (*i, dev.idx, p.svalue.clone()))
                })
                .collect();
            self.write_marking(unfinished).await?;

            // 2. Compute every svalue of this reading before writing any.
            let admitted = self.guard.admit(d.serial, d.reading, &mut updates);
            let regs: HashMap<&str, &RegisterValue> =
                admitted.iter().map(|r| (r.name.as_str(), *r)).collect();
            let mut cache = HashMap::new();
            let mut computed = Vec::new();
            for (i, dev) in self.devices.iter().enumerate() {
                if dev.meter.as_deref().is_some_and(|m| m != d.meter_name) {
                    continue;
                }
                let Some(reg) = regs.get(dev.register.as_str()) else {
                    continue;
                };
                if self.pending.get(&i).is_some_and(|p| p.reading_id == d.id) {
                    continue;
                }
                if let Some(svalue) = self.compute(dev, reg, &regs, &mut cache).await? {
                    computed.push((i, svalue));
                }
            }
            for (i, svalue) in computed {
                self.pending.insert(
                    i,
                    Pending {
                        reading_id: d.id,
                        svalue,
                        written: false,
                    },
                );
            }

            // 3. Write what is not written yet (on a retry: only the rest, same values).
            let todo: Vec<(usize, u64, String)> = self
                .pending
                .iter()
                .filter(|(_, p)| !p.written && p.reading_id == d.id)
                .filter_map(|(i, p)| {
                    self.devices
                        .get(*i)
                        .map(|dev| (*i, dev.idx, p.svalue.clone()))
                })
                .collect();
            self.write_marking(todo).await?;
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
        if let Some(h) = &self.http {
            let item = format!("domoticz {}", display_url(&h.base));
            match self.devices(None).await {
                Ok(devices) => {
                    lines.push(CheckLine::ok(item, format!("{} devices", devices.len())));
                    for dev in &devices {
                        lines.push(CheckLine::ok(
                            format!("idx {}", dev.idx),
                            format!("{}: {}", dev.name, dev.data),
                        ));
                    }
                    let mut wanted: Vec<u64> = self
                        .devices
                        .iter()
                        .flat_map(|d| std::iter::once(d.idx).chain(d.idx2))
                        .collect();
                    wanted.sort_unstable();
                    wanted.dedup();
                    for idx in wanted {
                        if !devices.iter().any(|d| d.idx == idx.to_string()) {
                            lines.push(CheckLine {
                                ok: false,
                                item: format!("idx {idx}"),
                                detail:
                                    "configured in [domoticz] devices but not found in Domoticz"
                                        .to_owned(),
                            });
                        }
                    }
                }
                Err(e) => lines.push(CheckLine::fail(item, &e)),
            }
        }
        Ok(lines)
    }

    async fn shutdown(&mut self) {
        if let Some(link) = &self.link {
            link.close(Vec::new()).await;
        }
    }
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
    fn leading_numbers() {
        assert_eq!(leading_number("12.345 GJ").unwrap().to_string(), "12.345");
        assert_eq!(leading_number("52.8 C").unwrap().to_string(), "52.8");
        assert!(leading_number("On").is_none());
        assert!(leading_number("").is_none());
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
        let sink = build(
            serde_json::json!([{"register": "t1", "idx": 1}]),
            Some("http://127.0.0.1:9"),
        )
        .unwrap();
        let energy_gj = crate::testutil::reg("heat_energy", "E1", "84.817", "GJ");
        let energy_mwh = crate::testutil::reg("heat_energy", "E1", "55.006", "MWh");
        let volume = crate::testutil::reg("volume", "V1", "520.41", "m³");
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
        let mut cache = HashMap::new();
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
                "counter m³ ÷1000",
                dev("counter", serde_json::json!({})),
                &volume,
                &none,
            ),
            (
                "counter GJ ÷100",
                dev("counter", serde_json::json!({"divider": 100})),
                &energy_gj,
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
            let s = sink.compute(&d, reg, regs, &mut cache).await.unwrap();
            lines.push(format!("{label}: {s:?}"));
        }
        insta::assert_snapshot!(lines.join("\n"));
    }
}
