//! The protocol-neutral result of reading a meter: who the meter is and its register values.
//! Everything downstream (CLI output, storage, sinks, web) works on these types only.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use chrono::{DateTime, Utc};
use kamstrup_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub mod info;
pub use info::{InfoFamily, InfoFlag, InfoStatus};
pub mod label;
pub mod unit;
pub use label::label;
pub use unit::{Quantity, Unit, ValueUnit};

/// Which wire protocol a meter speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Kamstrup Meter Protocol (MULTICAL 30x/40x/60x).
    Kmp,
    /// The ASCII `/#n` protocol of the MULTICAL 66C family.
    Mc66c,
}

impl core::fmt::Display for Protocol {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Protocol::Kmp => "kmp",
            Protocol::Mc66c => "mc66c",
        })
    }
}

/// What the meter said about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeterIdentity {
    /// Protocol used to read it.
    pub protocol: Protocol,
    /// The port it was read through, as the user wrote it.
    pub port: String,
    /// Serial number, when the meter reported one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<u64>,
    /// Meter type as reported (KMP GetType: type code and software revision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meter_type: Option<String>,
}

/// How a meter's model is stored (one text): the human model name when it is known for sure,
/// the raw KMP type in parentheses when the meter reported one —
/// `MULTICAL 403 (KMP type 0x0004 rev F1)`, `KMP type 0x0004 rev F1`, `MULTICAL 66C`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelText<'a> {
    /// `MULTICAL 403`; `None` when only the type code is known (its mapping is not public).
    pub model: Option<&'a str>,
    /// The raw type as reported: `KMP type 0x0004 rev F1`.
    pub hw: Option<&'a str>,
}

impl<'a> ModelText<'a> {
    const KMP: &'static str = "KMP type ";

    /// Splits a stored model text.
    pub fn parse(text: &'a str) -> Self {
        let text = text.trim();
        if text.starts_with(Self::KMP) {
            return ModelText {
                model: None,
                hw: Some(text),
            };
        }
        if let Some((model, rest)) = text.split_once(" (") {
            if let Some(hw) = rest.strip_suffix(')').filter(|h| h.starts_with(Self::KMP)) {
                return ModelText {
                    model: Some(model),
                    hw: Some(hw),
                };
            }
        }
        ModelText {
            model: (!text.is_empty()).then_some(text),
            hw: None,
        }
    }

    /// The stored form of a model name and a raw type.
    pub fn compose(model: Option<&str>, hw: Option<&str>) -> Option<String> {
        match (model, hw) {
            (Some(m), Some(h)) => Some(format!("{m} ({h})")),
            (Some(m), None) => Some(m.to_owned()),
            (None, Some(h)) => Some(h.to_owned()),
            (None, None) => None,
        }
    }

    /// The model a simulator port stands for: `sim:multical-403` → `MULTICAL 403` (the user
    /// chose that meter, so it is known, not guessed).
    pub fn of_simulator(sim_model: &str) -> Option<String> {
        let base = sim_model.split(':').next()?;
        let number = base.strip_prefix("multical-")?;
        Some(format!("MULTICAL {}", number.to_ascii_uppercase()))
    }
}

/// One register value at the meter's own resolution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterValue {
    /// Register id (KMP register id).
    pub id: u16,
    /// Stable snake_case name (`heat_energy`, `t1`, …).
    pub name: String,
    /// The name on the meter's display and in Kamstrup's tables (`E1`, `T1`).
    pub short: String,
    /// The exact value.
    pub value: Decimal,
    /// The unit, as the driver set it from the meter's reply (`GJ`, `m³`, `°C`, a date format);
    /// [`ValueUnit::None`] for plain numbers. Serialized as its symbol.
    #[serde(default)]
    pub unit: ValueUnit,
    /// The raw unit code, kept so that an unknown unit is never lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_code: Option<u8>,
    /// Human form of date/time registers (`2023-01-23`, `09:15:00`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// True when computed here rather than read (ΔT = T1 − T2).
    #[serde(default, skip_serializing_if = "core::ops::Not::not")]
    pub derived: bool,
}

impl RegisterValue {
    /// The unit as a type; `None` for a unit that is not a physical quantity (a date format, a
    /// plain number, an unknown code).
    pub fn physical_unit(&self) -> Option<Unit> {
        self.unit.physical()
    }

    /// What this value counts, if it is a counter — a value that only ever grows (energy,
    /// volume, mass, operating hours); `None` for instantaneous values, dates and values
    /// computed here (usage today restarts at midnight by design).
    pub fn counter(&self) -> Option<Quantity> {
        counter_kind(&self.name, &self.unit, self.derived || self.text.is_some())
    }

    /// What kind of value this is: a physical quantity, the info code, a date, a clock time
    /// or a plain number.
    pub fn kind(&self) -> ValueKind {
        if let Some(q) = self.unit.quantity() {
            return ValueKind::Physical(q);
        }
        if self.name == "info" {
            return ValueKind::InfoCode;
        }
        match self.unit.as_str() {
            "hh:mm:ss" => ValueKind::Clock,
            u if self.unit.is_date_or_time() && u.contains("dd") => ValueKind::Date,
            _ => ValueKind::Number,
        }
    }
}

/// What a register value is, beyond its unit: the one classification every layer uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueKind {
    /// An amount of a physical quantity (energy, volume, temperature, power, …).
    Physical(Quantity),
    /// The meter's info (status/alarm) code: a bit field, see [`info`].
    InfoCode,
    /// A calendar date written as digits (`yy:mm:dd`).
    Date,
    /// A clock time written as digits (`hh:mm:ss`).
    Clock,
    /// A plain number: a count, a type or serial number, a unit this table does not model.
    Number,
}

/// The one counter rule, for callers that hold a register's parts rather than a
/// [`RegisterValue`] (the store's rows): energy, volume and mass units count up; so does a
/// register in hours whose name says it counts hours. `computed` is true for derived values
/// and dates/times.
pub fn counter_kind(name: &str, unit: &ValueUnit, computed: bool) -> Option<Quantity> {
    if computed {
        return None;
    }
    let unit = unit.physical()?;
    match unit.quantity() {
        q @ (Quantity::Energy | Quantity::Volume | Quantity::Mass) => Some(q),
        Quantity::Duration if unit == Unit::Hour && name.contains("hour") => {
            Some(Quantity::Duration)
        }
        _ => None,
    }
}

/// Where a reading's values come from: polled now, or one record of one of the meter's own
/// loggers (back-filled; its `taken_at` is the logger's period boundary in UTC).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ReadingSource {
    /// Read from the meter's registers when `taken_at` says (the normal case).
    #[default]
    Poll,
    /// A record of the meter's hour logger.
    HourLog,
    /// A record of the meter's day logger.
    DayLog,
    /// A record of the meter's month logger.
    MonthLog,
    /// A record of the meter's year logger.
    YearLog,
}

impl ReadingSource {
    /// Every source, in storage-code order.
    pub const ALL: [ReadingSource; 5] = [
        ReadingSource::Poll,
        ReadingSource::HourLog,
        ReadingSource::DayLog,
        ReadingSource::MonthLog,
        ReadingSource::YearLog,
    ];

    /// The stable name used in the store, JSON and the dashboard (`poll`, `hour_log`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ReadingSource::Poll => "poll",
            ReadingSource::HourLog => "hour_log",
            ReadingSource::DayLog => "day_log",
            ReadingSource::MonthLog => "month_log",
            ReadingSource::YearLog => "year_log",
        }
    }

    /// Parses [`ReadingSource::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// True for a polled reading (the serde default, left out of JSON).
    pub fn is_poll(&self) -> bool {
        *self == ReadingSource::Poll
    }

    /// True for a back-filled logger record: history with its own time, never "the newest
    /// value" for state sinks.
    pub fn is_logged(&self) -> bool {
        !self.is_poll()
    }
}

impl core::fmt::Display for ReadingSource {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A complete reading of one meter at one moment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reading {
    /// The meter.
    pub meter: MeterIdentity,
    /// When the reply arrived (for a logger record: the end of its period, UTC).
    pub taken_at: DateTime<Utc>,
    /// Polled, or back-filled from a logger.
    #[serde(default, skip_serializing_if = "ReadingSource::is_poll")]
    pub source: ReadingSource,
    /// Values, in the order they were asked for (derived ones last).
    pub registers: Vec<RegisterValue>,
    /// Asked-for register ids that the meter did not return.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<u16>,
}

impl Reading {
    /// The value of a register by name.
    pub fn get(&self, name: &str) -> Option<&RegisterValue> {
        self.registers.iter().find(|r| r.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_has_a_kind() {
        let v = |name: &str, unit: &str| RegisterValue {
            id: 0,
            name: name.into(),
            short: String::new(),
            value: Decimal::from_int(1),
            unit: unit.into(),
            unit_code: None,
            text: None,
            derived: false,
        };
        assert_eq!(
            v("heat_energy", "GJ").kind(),
            ValueKind::Physical(Quantity::Energy)
        );
        assert_eq!(
            v("t1_t2", "K").kind(),
            ValueKind::Physical(Quantity::TemperatureDifference)
        );
        assert_eq!(v("info", "").kind(), ValueKind::InfoCode);
        assert_eq!(v("date", "yy:mm:dd").kind(), ValueKind::Date);
        assert_eq!(v("date", "yyyy:mm:dd").kind(), ValueKind::Date);
        assert_eq!(v("clock", "hh:mm:ss").kind(), ValueKind::Clock);
        assert_eq!(v("type", "").kind(), ValueKind::Number);
        assert_eq!(v("reactive", "kvarh").kind(), ValueKind::Number);
    }

    #[test]
    fn model_text_round_trips() {
        let both =
            ModelText::compose(Some("MULTICAL 403"), Some("KMP type 0x0004 rev F1")).unwrap();
        assert_eq!(both, "MULTICAL 403 (KMP type 0x0004 rev F1)");
        let p = ModelText::parse(&both);
        assert_eq!(
            (p.model, p.hw),
            (Some("MULTICAL 403"), Some("KMP type 0x0004 rev F1"))
        );
        let p = ModelText::parse("KMP type 0x0004 rev F1");
        assert_eq!((p.model, p.hw), (None, Some("KMP type 0x0004 rev F1")));
        let p = ModelText::parse("MULTICAL 66C");
        assert_eq!((p.model, p.hw), (Some("MULTICAL 66C"), None));
        assert_eq!(
            ModelText::of_simulator("multical-66c:4-4-119").as_deref(),
            Some("MULTICAL 66C")
        );
        assert_eq!(ModelText::of_simulator("other"), None);
    }

    #[test]
    fn json_round_trip_keeps_exact_values() {
        let reading = Reading {
            source: Default::default(),
            meter: MeterIdentity {
                protocol: Protocol::Kmp,
                port: "sim:multical-602".into(),
                serial: Some(5_512_345),
                meter_type: None,
            },
            taken_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            registers: vec![RegisterValue {
                id: 60,
                name: "heat_energy".into(),
                short: "E1".into(),
                value: "55.006".parse().unwrap(),
                unit: "MWh".into(),
                unit_code: Some(3),
                text: None,
                derived: false,
            }],
            missing: vec![],
        };
        let json = serde_json::to_string(&reading).unwrap();
        assert!(json.contains(r#""value":"55.006""#), "{json}");
        let back: Reading = serde_json::from_str(&json).unwrap();
        assert_eq!(back, reading);
        assert_eq!(back.get("heat_energy").unwrap().value.to_string(), "55.006");
    }
}
