//! The config file as written: serde structs that reject unknown keys, with spans kept for the
//! values that need validating, so every error can point at its line.

use serde::Deserialize;
use toml::Spanned;

/// Top level of `kamstrup.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[storage]`.
    pub storage: Option<RawStorage>,
    /// `[web]`.
    pub web: Option<RawWeb>,
    /// `[plausibility]`.
    pub plausibility: Option<RawPlausibility>,
    /// `[[meter]]`.
    #[serde(default, rename = "meter")]
    pub meters: Vec<RawMeter>,
    /// `[mqtt]`: the broker shared by the MQTT-based sinks.
    pub mqtt: Option<kamstrup_sinks::MqttConfig>,
    /// `[homeassistant]`: MQTT discovery.
    pub homeassistant: Option<kamstrup_sinks::HomeAssistantConfig>,
    /// `[homeassistant_rest]`: REST states.
    pub homeassistant_rest: Option<kamstrup_sinks::HomeAssistantRestConfig>,
    /// `[mqtt_json]`.
    pub mqtt_json: Option<kamstrup_sinks::MqttJsonConfig>,
    /// `[domoticz]`.
    pub domoticz: Option<kamstrup_sinks::DomoticzConfig>,
    /// `[influxdb]`.
    pub influxdb: Option<kamstrup_sinks::InfluxConfig>,
    /// `[file]`.
    pub file: Option<kamstrup_sinks::FileConfig>,
}

/// `[storage]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    /// SQLite file (relative to the config file).
    pub path: Option<Spanned<String>>,
    /// Keep readings this long (`10y`).
    pub retention: Option<Spanned<String>>,
}

/// `[web]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWeb {
    /// Address to listen on.
    pub listen: Option<Spanned<String>>,
    /// Set false to turn the dashboard off.
    pub enabled: Option<bool>,
    /// Only these client addresses or networks may use it (default: whoever reaches `listen`).
    pub allow: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `[plausibility]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlausibility {
    /// Largest believable heat power, kW.
    pub max_power_kw: Option<Spanned<f64>>,
    /// Largest believable flow, m³/h.
    pub max_flow_m3h: Option<Spanned<f64>>,
}

/// A register by name or id.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RegisterName {
    /// `60`.
    Id(i64),
    /// `"heat_energy"`, `"E1"`, `"0x3C"`.
    Name(String),
}

/// `[[meter]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMeter {
    /// Unique name.
    pub name: Spanned<String>,
    /// Serial device, `tcp://host:port` or `sim:MODEL`.
    pub port: Spanned<String>,
    /// `kmp`, `mc66c` or `auto`.
    pub protocol: Option<Spanned<String>>,
    /// `15m`.
    pub interval: Option<Spanned<String>>,
    /// `["00:00", "12:00"]`.
    pub at: Option<Spanned<Vec<Spanned<String>>>>,
    /// Registers to read.
    pub registers: Option<Spanned<Vec<Spanned<RegisterName>>>>,
    /// 66C program number A-B-CCC.
    pub program: Option<Spanned<String>>,
    /// The meter's model as on its label (`MULTICAL 403`).
    pub model: Option<Spanned<String>>,
    /// Baud rate.
    pub baud: Option<u32>,
    /// First-byte timeout (`2s`).
    pub timeout: Option<Spanned<String>>,
    /// How far back gaps are filled from the meter's hour logger (`31d`; `0s` turns it off).
    pub backfill: Option<Spanned<String>>,
    /// MULTICAL 66C: the shortest gap worth reading its loggers for (`6h`); shorter gaps stay.
    pub backfill_min_gap: Option<Spanned<String>>,
    /// The meter's zone as its standard-time offset from UTC (`+01:00`).
    pub zone: Option<Spanned<String>>,
    /// `poll` (default) or `logger`: read the hour logger at the `at` times.
    pub mode: Option<Spanned<String>>,
}
