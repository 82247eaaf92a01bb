//! Builders shared by the store's integration tests: meters, readings and times.
//! Each test file uses a different subset, hence the dead-code allowance.
#![allow(dead_code, unreachable_pub)]

use chrono::{DateTime, Duration, Utc};
use kamstrup_decimal::Decimal;
use kamstrup_reading::{MeterIdentity, Protocol, Reading, RegisterValue};
use kamstrup_store::{MeterId, Store};

pub fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

pub fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

pub fn minutes(n: i64) -> Duration {
    Duration::minutes(n)
}

/// A register value with a plausible id, short name and unit for `name`.
pub fn reg(name: &str, value: &str) -> RegisterValue {
    let (id, short, unit, code) = match name {
        "heat_energy" => (60, "E1", "MWh", Some(3)),
        "volume" => (68, "V1", "m³", Some(39)),
        "hours" => (1004, "HR", "h", Some(6)),
        "t1" => (86, "T1", "°C", Some(23)),
        "t2" => (87, "T2", "°C", Some(23)),
        "power" => (80, "P1", "kW", Some(17)),
        "flow" => (74, "Q1", "l/h", Some(41)),
        "info" => (99, "INFO", "", Some(0)),
        _ => (9999, "X", "", None),
    };
    RegisterValue {
        id,
        name: name.into(),
        short: short.into(),
        value: d(value),
        unit: unit.into(),
        unit_code: code,
        text: None,
        derived: false,
    }
}

pub fn reading_at(taken_at: DateTime<Utc>, regs: Vec<RegisterValue>) -> Reading {
    Reading {
        source: Default::default(),
        meter: MeterIdentity {
            protocol: Protocol::Kmp,
            port: "sim:multical-603".into(),
            serial: Some(5_512_345),
            meter_type: Some("MULTICAL 603 (0x0034) rev 1.2".into()),
        },
        taken_at,
        registers: regs,
        missing: vec![],
    }
}

/// A reading with one register.
pub fn one(taken_at: DateTime<Utc>, name: &str, value: &str) -> Reading {
    reading_at(taken_at, vec![reg(name, value)])
}

pub fn meter(store: &mut Store, serial: u64, name: &str) -> MeterId {
    store
        .upsert_meter(
            serial,
            name,
            Protocol::Kmp,
            Some("MULTICAL 603"),
            "sim:multical-603",
            t("2024-01-01T00:00:00Z"),
        )
        .unwrap()
}
