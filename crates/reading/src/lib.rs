//! The protocol-neutral result of reading a meter: who the meter is and its register values.
//! Everything downstream (CLI output, storage, sinks, web) works on these types only.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use chrono::{DateTime, Utc};
use kamstrup_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub mod info;
pub use info::{InfoFamily, InfoFlag, InfoStatus};

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
    /// Unit symbol from the meter's reply (`GJ`, `m³`, `°C`); empty for plain numbers.
    pub unit: String,
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

/// A complete reading of one meter at one moment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reading {
    /// The meter.
    pub meter: MeterIdentity,
    /// When the reply arrived.
    pub taken_at: DateTime<Utc>,
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
    fn json_round_trip_keeps_exact_values() {
        let reading = Reading {
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
