//! Domoticz's JSON API as the real server behaves (integrations.md §C.6): `type=command` GETs on
//! fresh connections, errors in HTTP-200 bodies, and `getdevices` parsed into typed device facts.
//!
//! Connections: Domoticz closes the TCP connection after every response unless the request asked
//! for keep-alive, and it does not say so (no `Connection: close`). A pooling client then sends
//! its next request on a dead socket. We use no idle pool at all rather than `Connection:
//! keep-alive`: even kept alive, Domoticz ends a connection after 20 requests or 20 s idle, again
//! without notice, while a fresh connection per request costs one loopback/LAN handshake — a few
//! per poll. A GET that still meets a connection closed before its answer is sent once more: every
//! request we make is idempotent (`udevice` writes absolute values).

use std::time::Duration;

use kamstrup_decimal::Decimal;
use reqwest::{StatusCode, Url};
use serde::Deserialize;

use crate::http;
use crate::secret::Secret;
use crate::values::display_url;
use crate::SinkError;

/// How to reach one Domoticz server.
pub(super) struct Api {
    base: Url,
    client: reqwest::Client,
    auth: Option<(String, Option<Secret>)>,
    timeout: Duration,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    result: Option<Vec<serde_json::Value>>,
}

/// The fix for a 401, which depends on whether we sent credentials (integrations.md §C.3, §C.6).
fn unauthorised_hint(sent_basic: bool) -> &'static str {
    if sent_basic {
        "HTTP 401: Domoticz refused the username/password. Over plain http it accepts them only \
         with 'Allow Basic-Auth authentication over plain HTTP' ticked (Setup → Settings → \
         Security), and refused credentials also override Trusted Networks. Fix: tick that box and \
         check the password, use https, or remove username/password and add this host to \
         Trusted Networks"
    } else {
        "HTTP 401: Domoticz does not trust this host (a fresh install trusts none, not even \
         127.0.0.1). Fix: add this host's address to Setup → Settings → Security → Trusted \
         Networks, or set username/password and tick 'Allow Basic-Auth authentication over \
         plain HTTP'"
    }
}

/// True when the server closed the connection before any answer: the request can be sent again.
fn closed_before_answer(e: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() || h.is_canceled() {
                return true;
            }
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            ) {
                return true;
            }
        }
        source = s.source();
    }
    false
}

impl Api {
    pub(super) fn new(
        url: &str,
        auth: Option<(String, Option<Secret>)>,
        timeout: Duration,
    ) -> Result<Api, SinkError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .no_proxy()
            // See the module docs: Domoticz drops idle connections without notice.
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| SinkError::config(format!("HTTP client: {e}")))?;
        Ok(Api {
            base: http::base_url(url, "domoticz")?,
            client,
            auth,
            timeout,
        })
    }

    /// The server, for messages (no credentials, no query).
    pub(super) fn target(&self) -> String {
        display_url(&self.base)
    }

    async fn send(
        &self,
        url: &Url,
        query: &[(&str, String)],
    ) -> Result<reqwest::Response, SinkError> {
        let mut last = None;
        for attempt in 0..2 {
            let mut req = self.client.get(url.clone()).query(query);
            if let Some((user, pass)) = &self.auth {
                req = req.basic_auth(user, pass.as_ref().map(|p| p.expose()));
            }
            match req.send().await {
                Ok(resp) => return Ok(resp),
                Err(e) if attempt == 0 && closed_before_answer(&e) => {
                    tracing::debug!(target = %display_url(url), "Domoticz closed the connection before answering; sending again");
                    last = Some(e);
                }
                Err(e) => return Err(http::send_error(url, e, self.timeout)),
            }
        }
        match last {
            Some(e) => Err(http::send_error(url, e, self.timeout)),
            None => Err(SinkError::connect(display_url(url), "no answer")),
        }
    }

    /// One `json.htm?type=command&param=…` call; `Err` for HTTP errors and for `"status":"ERR"`.
    async fn call(&self, query: &[(&str, String)]) -> Result<Answer, SinkError> {
        let url = http::join(&self.base, "json.htm");
        let resp = self.send(&url, query).await?;
        let target = display_url(&url);
        match resp.status() {
            StatusCode::OK => {}
            StatusCode::UNAUTHORIZED => {
                return Err(SinkError::auth(target, unauthorised_hint(self.auth.is_some())))
            }
            StatusCode::FORBIDDEN => {
                return Err(SinkError::auth(
                    target,
                    "HTTP 403: the Domoticz user may not change this device (viewer rights, or the device is not assigned to the user)",
                ))
            }
            StatusCode::NOT_FOUND => {
                return Err(SinkError::rejected(
                    target,
                    "HTTP 404: no type=command API here (is the url a Domoticz server, 2023.2 or newer?)",
                ))
            }
            other => {
                let body = http::short_body(resp).await;
                return Err(SinkError::rejected(
                    target,
                    format!("HTTP {}: {body}", other.as_u16()),
                ));
            }
        }
        let body = resp
            .text()
            .await
            .map_err(|e| http::send_error(&url, e, self.timeout))?;
        let answer: Answer = serde_json::from_str(&body).map_err(|e| {
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

    /// `udevice`: sets device `idx` to `svalue` (nvalue 0).
    pub(super) async fn update(&self, idx: u64, svalue: &str) -> Result<(), SinkError> {
        self.call(&[
            ("type", "command".to_owned()),
            ("param", "udevice".to_owned()),
            ("idx", idx.to_string()),
            ("nvalue", "0".to_owned()),
            ("svalue", svalue.to_owned()),
        ])
        .await
        .map(|_| ())
        .map_err(|e| match e {
            SinkError::Rejected { target, detail } => SinkError::Rejected {
                target,
                detail: format!("idx {idx}: {detail}"),
            },
            other => other,
        })
    }

    /// One device, or `None` when Domoticz has no device with that idx.
    pub(super) async fn device(&self, idx: u64) -> Result<Option<DeviceInfo>, SinkError> {
        let answer = self
            .call(&[
                ("type", "command".to_owned()),
                ("param", "getdevices".to_owned()),
                ("rid", idx.to_string()),
            ])
            .await?;
        Ok(answer
            .result
            .unwrap_or_default()
            .iter()
            .map(DeviceInfo::from_json)
            .find(|d| d.idx == idx))
    }

    /// Every used device (for `check`, so the user can pick idx values).
    pub(super) async fn all_devices(&self) -> Result<Vec<DeviceInfo>, SinkError> {
        let answer = self
            .call(&[
                ("type", "command".to_owned()),
                ("param", "getdevices".to_owned()),
                ("filter", "all".to_owned()),
                ("used", "true".to_owned()),
            ])
            .await?;
        Ok(answer
            .result
            .unwrap_or_default()
            .iter()
            .map(DeviceInfo::from_json)
            .collect())
    }
}

/// A number as Domoticz shows it, and how finely the text it came from resolves the value behind
/// it: Domoticz keeps no raw value in its answers, only display strings (`%g`, `%.3f`) and a few
/// float fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shown {
    /// The value as shown.
    pub value: Decimal,
    /// Domoticz rounded the value behind the display to a multiple of 10^`resolution`:
    /// `1.23457e+06` (`%g`) → 1, `9513.300` (`%.3f`) → −3, `80` (`%g`, which drops trailing
    /// zeros: 80.0000) → −4.
    pub resolution: i16,
}

/// Significant digits of C's `%g` as Domoticz prints a Custom Sensor (integrations.md §C.6).
const G_DIGITS: i16 = 6;
/// Significant digits a double float field (`Temp`) carries faithfully.
const FLOAT_DIGITS: i16 = 15;

impl Shown {
    /// Parses a display number printed with a fixed count of decimals, such as `9513.300` or
    /// `-4`: its last digit is its resolution. Also the safe reading of any text whose format is
    /// not known (a trimmed zero would only make the resolution look coarser).
    pub fn parse(text: &str) -> Option<Shown> {
        let value: Decimal = text.trim().parse().ok()?;
        Some(Shown {
            value,
            resolution: value.exponent(),
        })
    }

    /// Parses a number printed with `%g` to `digits` significant digits, such as `12345.7`,
    /// `1.23457e+06` or `80`: `%g` drops trailing zeros, so `80` stands for 80.0000.
    fn parse_g(text: &str, digits: i16) -> Option<Shown> {
        let s = Shown::parse(text)?;
        Some(Shown {
            resolution: s.resolution.min(s.leading_digit() - (digits - 1)),
            ..s
        })
    }

    /// A float field of the JSON answer (e.g. `Temp`), read as the shortest decimal that gives
    /// the same float, so `66.019999999999996` is `66.02`; a double resolves 15 digits.
    fn from_float(v: f64) -> Option<Shown> {
        if !v.is_finite() {
            return None;
        }
        Shown::parse_g(&format!("{v}"), FLOAT_DIGITS)
    }

    /// The exponent of the first significant digit (`1234570` → 6, `0.052` → −2).
    fn leading_digit(&self) -> i16 {
        let digits = significant_digits(&self.value);
        if self.value.is_zero() {
            // `%g` prints a zero only for zero itself: as fine as anything we compare it with.
            return -60;
        }
        self.value
            .exponent()
            .saturating_add(i16::try_from(digits).unwrap_or(i16::MAX))
            .saturating_sub(1)
    }

    /// Whether the display could have come from `exact`: Domoticz rounds to the nearest, so
    /// `exact` is at most half a unit of the resolution away.
    pub fn agrees_with(&self, exact: &Decimal) -> bool {
        let Some(diff) = exact.checked_sub(&self.value) else {
            return false;
        };
        let diff = if diff.is_negative() {
            diff.checked_neg().unwrap_or(diff)
        } else {
            diff
        };
        let (Some(twice), Ok(unit)) = (diff.checked_add(&diff), Decimal::new(1, self.resolution))
        else {
            return false;
        };
        !twice.cmp_value(&unit).is_gt()
    }

    /// Whether the display is coarser than a value whose last digit is at 10^`exponent`: the
    /// number behind it may differ in digits the meter has.
    pub fn coarser_than(&self, exponent: i16) -> bool {
        self.resolution > exponent
    }
}

/// Significant digits of a decimal's text (`0.0520` → 3, `84.817` → 5).
fn significant_digits(d: &Decimal) -> u32 {
    let digits = d.mantissa().unsigned_abs().to_string();
    let trimmed = digits.trim_start_matches('0');
    u32::try_from(trimmed.len()).unwrap_or(u32::MAX).max(1)
}

/// Domoticz's meter types of a counter (RFXMeter) device (`SwitchTypeVal`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CounterType {
    /// 0: shown in kWh (default divider 1000).
    Energy,
    /// 1: shown in m³ (default divider 100).
    Gas,
    /// 2: shown in m³ (default divider 100).
    Water,
    /// 3: free units (`ValueUnits`).
    Counter,
    /// 4: shown in kWh.
    EnergyGenerated,
    /// 5 and anything else.
    Other(i64),
}

impl CounterType {
    fn from_code(code: i64) -> CounterType {
        match code {
            0 => CounterType::Energy,
            1 => CounterType::Gas,
            2 => CounterType::Water,
            3 => CounterType::Counter,
            4 => CounterType::EnergyGenerated,
            n => CounterType::Other(n),
        }
    }

    /// Shown in kWh: an energy register is converted to kWh before counting.
    pub fn is_energy(&self) -> bool {
        matches!(self, CounterType::Energy | CounterType::EnergyGenerated)
    }
}

impl std::fmt::Display for CounterType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CounterType::Energy => f.write_str("Energy"),
            CounterType::Gas => f.write_str("Gas"),
            CounterType::Water => f.write_str("Water"),
            CounterType::Counter => f.write_str("Counter"),
            CounterType::EnergyGenerated => f.write_str("Energy Generated"),
            CounterType::Other(n) => write!(f, "meter type {n}"),
        }
    }
}

/// A counter device's conversion: Domoticz shows `offset + count / divider`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterInfo {
    /// Meter type (decides the shown unit).
    pub meter_type: CounterType,
    /// Counts per shown unit (Energy 1000, Gas/Water 100, or the user's).
    pub divider: Decimal,
    /// The device's "Meter Offset" (`AddjValue`), added to what is shown.
    pub offset: Decimal,
    /// The user's unit label of a Counter-type device.
    pub units: String,
}

/// What kind of device an idx is, as far as writing it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    /// General / Custom Sensor.
    Custom {
        /// Its axis label.
        unit: String,
    },
    /// Temp.
    Temperature,
    /// RFXMeter counter.
    Counter(CounterInfo),
    /// General / kWh.
    Kwh,
    /// Anything else (a switch, a rain sensor …): not writable by this sink.
    Other {
        /// `Type`.
        type_name: String,
        /// `SubType`.
        sub_type: String,
    },
}

impl std::fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceKind::Custom { unit } if unit.is_empty() => f.write_str("Custom Sensor"),
            DeviceKind::Custom { unit } => write!(f, "Custom Sensor ({unit})"),
            DeviceKind::Temperature => f.write_str("Temperature"),
            DeviceKind::Counter(c) => {
                write!(f, "Counter ({}, divider {}", c.meter_type, c.divider)?;
                if !c.offset.is_zero() {
                    write!(f, ", meter offset {}", c.offset)?;
                }
                f.write_str(")")
            }
            DeviceKind::Kwh => f.write_str("General kWh"),
            DeviceKind::Other {
                type_name,
                sub_type,
            } => write!(f, "{type_name} / {sub_type}"),
        }
    }
}

impl DeviceKind {
    /// The unit the device shows its value in, when known (`m³` for `m3`).
    pub fn shown_unit(&self) -> Option<String> {
        let unit = match self {
            DeviceKind::Custom { unit } => unit.as_str(),
            DeviceKind::Temperature => "°C",
            DeviceKind::Counter(c) => match c.meter_type {
                CounterType::Energy | CounterType::EnergyGenerated => "kWh",
                CounterType::Gas | CounterType::Water => "m³",
                CounterType::Counter => c.units.as_str(),
                CounterType::Other(_) => "",
            },
            DeviceKind::Kwh => "kWh",
            DeviceKind::Other { .. } => "",
        };
        let unit = unit.trim();
        if unit.is_empty() {
            return None;
        }
        Some(match unit {
            "m3" => "m³".to_owned(),
            u => u.to_owned(),
        })
    }
}

/// A device as `getdevices` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// idx.
    pub idx: u64,
    /// Name.
    pub name: String,
    /// The display string `Data`.
    pub data: String,
    /// Kind, with a counter's divider and offset.
    pub kind: DeviceKind,
    /// The current value in the device's shown unit, from the most precise field there is:
    /// `Temp` for temperatures, `Counter` for counters, else the number in `Data`.
    pub shown: Option<Shown>,
}

fn text_field(v: &serde_json::Value, key: &str) -> Option<String> {
    match v.get(key)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn float_field(v: &serde_json::Value, key: &str) -> Option<f64> {
    match v.get(key)? {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The number at the start of a display string such as `"12.345 GJ"`.
pub(super) fn leading_number(text: &str) -> Option<Shown> {
    Shown::parse(text.split_whitespace().next()?)
}

/// The number at the start of a Custom Sensor's `Data`, printed by Domoticz as `%g UNIT` (6
/// significant digits): `"1.23457e+06 kWh"`, `"80 GJ"`.
fn leading_g_number(text: &str) -> Option<Shown> {
    Shown::parse_g(text.split_whitespace().next()?, G_DIGITS)
}

impl DeviceInfo {
    /// Reads one entry of `getdevices`' `result`.
    pub fn from_json(v: &serde_json::Value) -> DeviceInfo {
        let type_name = text_field(v, "Type").unwrap_or_default();
        let sub_type = text_field(v, "SubType").unwrap_or_default();
        let data = text_field(v, "Data").unwrap_or_default();
        let decimal = |key: &str, default: Decimal| {
            float_field(v, key)
                .and_then(Shown::from_float)
                .map_or(default, |s| s.value)
        };
        let (kind, shown) = match (type_name.as_str(), sub_type.as_str()) {
            ("Temp", _) => (
                DeviceKind::Temperature,
                float_field(v, "Temp")
                    .and_then(Shown::from_float)
                    .or_else(|| leading_number(&data)),
            ),
            ("RFXMeter", _) => {
                let meter_type =
                    CounterType::from_code(float_field(v, "SwitchTypeVal").unwrap_or(0.0) as i64);
                let default_divider = if meter_type.is_energy() { 1000 } else { 100 };
                let info = CounterInfo {
                    meter_type,
                    divider: decimal("Divider", Decimal::from_int(default_divider)),
                    offset: decimal("AddjValue", Decimal::ZERO),
                    units: text_field(v, "ValueUnits").unwrap_or_default(),
                };
                let shown = text_field(v, "Counter")
                    .as_deref()
                    .and_then(leading_number)
                    .or_else(|| leading_number(&data));
                (DeviceKind::Counter(info), shown)
            }
            ("General", "Custom Sensor") => (
                DeviceKind::Custom {
                    unit: text_field(v, "SensorUnit").unwrap_or_default(),
                },
                leading_g_number(&data),
            ),
            ("General", "kWh") => (DeviceKind::Kwh, leading_number(&data)),
            _ => (
                DeviceKind::Other {
                    type_name,
                    sub_type,
                },
                leading_number(&data),
            ),
        };
        DeviceInfo {
            idx: text_field(v, "idx")
                .and_then(|i| i.parse().ok())
                .unwrap_or_default(),
            name: text_field(v, "Name").unwrap_or_default(),
            data,
            kind,
            shown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_numbers_and_their_resolution() {
        let g = |t: &str| Shown::parse_g(t, G_DIGITS).unwrap();
        let s = g("1.23457e+06");
        assert_eq!((s.value.to_string(), s.resolution), ("1234570".into(), 1));
        assert!(s.agrees_with(&"1234567.891".parse().unwrap()));
        assert!(s.agrees_with(&"1234565".parse().unwrap()));
        assert!(!s.agrees_with(&"1234564.999".parse().unwrap()));
        assert!(!s.agrees_with(&"1234590".parse().unwrap()));
        let s = g("12345.7");
        assert!(s.agrees_with(&"12345.678".parse().unwrap()));
        assert!(!s.agrees_with(&"12345.6".parse().unwrap()));
        assert!(s.coarser_than(-3) && !s.coarser_than(-1));
        // `%g` drops trailing zeros: "80" is 80.0000, "1.8" is 1.80000.
        let s = g("80");
        assert_eq!(s.resolution, -4);
        assert!(!s.coarser_than(-3));
        assert!(!s.agrees_with(&"80.5".parse().unwrap()));
        assert!(!g("1.8").agrees_with(&"1.817".parse().unwrap()));
        assert!(g("0").agrees_with(&Decimal::ZERO));
        assert!(!g("0").agrees_with(&"0.001".parse().unwrap()));
        // A fixed-decimals display keeps its zeros: "9513.300" resolves 0.001.
        let s = Shown::parse("9513.300").unwrap();
        assert_eq!(s.resolution, -3);
        assert!(s.agrees_with(&"9513.3".parse().unwrap()));
        assert!(!s.agrees_with(&"9513.301".parse().unwrap()));
        let t = Shown::from_float("66.019999999999996".parse().unwrap()).unwrap();
        assert_eq!(t.value.to_string(), "66.02");
        assert!(!t.coarser_than(-3));
        assert!(!Shown::from_float(20.0).unwrap().coarser_than(-2));
        assert!(leading_number("On").is_none());
        assert!(leading_number("").is_none());
        assert_eq!(leading_number("52.8 C").unwrap().value.to_string(), "52.8");
        assert_eq!(significant_digits(&"0.0520".parse().unwrap()), 3);
        assert_eq!(significant_digits(&"84.817".parse().unwrap()), 5);
    }

    #[test]
    fn devices_as_domoticz_2025_lists_them() {
        let water = DeviceInfo::from_json(&serde_json::json!({
            "idx": "14", "Name": "Water", "Type": "RFXMeter", "SubType": "RFXMeter counter",
            "SwitchTypeVal": 2, "Divider": 100.0, "AddjValue": 0.0, "ValueUnits": "",
            "Counter": "9513.300 m3", "Data": "9513.300 m3"
        }));
        assert_eq!(
            water.kind,
            DeviceKind::Counter(CounterInfo {
                meter_type: CounterType::Water,
                divider: Decimal::from_int(100),
                offset: Decimal::ZERO,
                units: String::new(),
            })
        );
        assert_eq!(water.shown.unwrap().value.to_string(), "9513.300");
        // jsoncpp writes doubles with 17 significant digits.
        let temp = DeviceInfo::from_json(
            &serde_json::from_str(
                r#"{"idx": "13", "Name": "Inlet", "Type": "Temp", "SubType": "LaCrosse TX3",
                    "Temp": 66.019999999999996, "Data": "66.0 C"}"#,
            )
            .unwrap(),
        );
        assert_eq!(
            (temp.kind, temp.shown.unwrap().value.to_string()),
            (DeviceKind::Temperature, "66.02".into())
        );
        let custom = DeviceInfo::from_json(&serde_json::json!({
            "idx": "12", "Name": "Heat", "Type": "General", "SubType": "Custom Sensor",
            "SensorUnit": "GJ", "Data": "1.23457e+06 GJ"
        }));
        assert_eq!(custom.kind.to_string(), "Custom Sensor (GJ)");
        assert_eq!(custom.shown.unwrap().resolution, 1);
    }
}
