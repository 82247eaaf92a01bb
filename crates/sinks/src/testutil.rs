//! Fixtures for the unit tests: a full MULTICAL 403 reading with the units meters report.
//! Compiled only for tests.

use kamstrup_reading::{MeterIdentity, Protocol, Reading, RegisterValue};

use crate::Delivered;

pub(crate) fn reg(name: &str, short: &str, value: &str, unit: &str) -> RegisterValue {
    RegisterValue {
        id: 0,
        name: name.into(),
        short: short.into(),
        value: value.parse().unwrap(),
        unit: unit.into(),
        unit_code: None,
        text: None,
        derived: false,
    }
}

pub(crate) fn reading_with(registers: Vec<RegisterValue>) -> Reading {
    Reading {
        source: Default::default(),
        meter: MeterIdentity {
            protocol: Protocol::Kmp,
            port: "sim:multical-403".into(),
            serial: Some(67_123_456),
            meter_type: Some("type 0x0403, software revision 7".into()),
        },
        taken_at: chrono::DateTime::from_timestamp(1_779_400_000, 0).unwrap(),
        registers,
        missing: vec![],
    }
}

pub(crate) fn full_reading() -> Reading {
    reading_with(vec![
        reg("heat_energy", "E1", "84.817", "GJ"),
        reg("volume", "V1", "520.410", "m³"),
        reg("t1", "T1", "76.85", "°C"),
        reg("t2", "T2", "25.26", "°C"),
        reg("t1_t2", "T1-T2", "51.59", "K"),
        reg("power", "Power1", "15.5", "kW"),
        reg("flow", "Flow1", "267", "l/h"),
        reg("hours", "HourCounter", "12345", "h"),
        reg("info", "InfoCode", "0", ""),
    ])
}

pub(crate) fn delivered_fixture(reading: &Reading) -> Delivered<'_> {
    Delivered {
        id: 1,
        meter_name: "heat",
        serial: 67_123_456,
        model: Some("MULTICAL 403"),
        read_errors_24h: None,
        reading,
    }
}
