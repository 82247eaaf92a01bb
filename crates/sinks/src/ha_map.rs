//! How a meter register becomes a Home Assistant sensor: device class, state class and unit,
//! chosen from the unit the meter reported and gated by the HA release the user runs.

use std::fmt;

use kamstrup_decimal::Decimal;
use kamstrup_reading::{RegisterValue, Unit, ValueUnit};
use serde::{Deserialize, Deserializer, Serialize};

use crate::values::{shift, HA_ENERGY_UNITS};

/// The Home Assistant release to stay compatible with, written `"YYYY.M"` (a patch level such
/// as `"2024.3.3"` is accepted and ignored).
///
/// The default is **2025.11**: the first release with `temperature_delta`, current for a
/// year now. Set the version you run if it is older; each feature below is switched on only
/// from the release that accepts it:
///
/// | feature | from |
/// |---|---|
/// | `serial_number` in the device block (older HA drops the whole entity on it) | 2024.2 |
/// | device-based discovery (one config with `cmps` per meter) | 2024.11 |
/// | `device_class: volume_flow_rate` | 2024.2 |
/// | flow unit `L/h` (else the value is converted exactly to `m³/h`) | 2025.5 |
/// | no legacy `object_id` (only `default_entity_id`) | 2025.10 |
/// | `device_class: temperature_delta` for ΔT (else no device class) | 2025.11 |
/// | statistics import metadata with `mean_type`/`unit_class` (else `has_mean`) | 2025.11 |
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HaVersion {
    year: u16,
    month: u8,
}

impl HaVersion {
    /// The default target: HA 2025.11.
    pub const DEFAULT: HaVersion = HaVersion::new(2025, 11);

    /// A release.
    pub const fn new(year: u16, month: u8) -> Self {
        HaVersion { year, month }
    }

    /// Parses `"2024.3"`, `"2025.11"`, `"2025.4.4"`.
    pub fn parse(text: &str) -> Option<HaVersion> {
        let mut parts = text.trim().split('.');
        let year: u16 = parts.next()?.parse().ok()?;
        let month: u8 = parts.next()?.parse().ok()?;
        if let Some(patch) = parts.next() {
            patch.parse::<u16>().ok()?;
        }
        if parts.next().is_some() || !(2020..=2100).contains(&year) || !(1..=12).contains(&month) {
            return None;
        }
        Some(HaVersion { year, month })
    }

    fn at_least(&self, year: u16, month: u8) -> bool {
        *self >= HaVersion::new(year, month)
    }

    /// `temperature_delta` exists.
    pub fn has_temperature_delta(&self) -> bool {
        self.at_least(2025, 11)
    }

    /// `recorder/import_statistics` takes `mean_type` and `unit_class` (added in 2025.11,
    /// required from 2026.11; older schemas reject them as extra keys).
    pub fn has_statistics_mean_type(&self) -> bool {
        self.at_least(2025, 11)
    }

    /// `L/h` is a valid `volume_flow_rate` unit.
    pub fn has_litres_per_hour(&self) -> bool {
        self.at_least(2025, 5)
    }

    /// The `volume_flow_rate` device class exists.
    pub fn has_volume_flow_rate(&self) -> bool {
        self.at_least(2024, 2)
    }

    /// `object_id` should still be sent (deprecated from 2025.10 in favour of
    /// `default_entity_id`).
    pub fn wants_object_id(&self) -> bool {
        !self.at_least(2025, 10)
    }

    /// Device-based discovery (`<prefix>/device/<id>/config` with `cmps`; core PR #109030).
    pub fn has_device_discovery(&self) -> bool {
        self.at_least(2024, 11)
    }

    /// `serial_number` is accepted inside the MQTT device block (core PR #108105; before it,
    /// HA rejected the discovery message with "extra keys not allowed").
    pub fn has_device_serial_number(&self) -> bool {
        self.at_least(2024, 2)
    }
}

impl Default for HaVersion {
    fn default() -> Self {
        HaVersion::DEFAULT
    }
}

impl fmt::Display for HaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.year, self.month)
    }
}

impl<'de> Deserialize<'de> for HaVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        HaVersion::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "compat must be a Home Assistant release like \"2025.11\" or \"2024.3\", not {text:?}"
            ))
        })
    }
}

/// Which device class a volume register (m³) gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VolumeClass {
    /// `volume`: a plain volume sensor (default).
    #[default]
    Volume,
    /// `water`: selectable as a source in HA's water dashboard.
    Water,
}

/// The Home Assistant sensor device classes this bridge uses (HA's names, in JSON as written).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceClass {
    /// `energy`.
    Energy,
    /// `volume`.
    Volume,
    /// `water`.
    Water,
    /// `temperature` (absolute; never for a difference).
    Temperature,
    /// `temperature_delta` (HA 2025.11).
    TemperatureDelta,
    /// `power`.
    Power,
    /// `volume_flow_rate` (HA 2024.2).
    VolumeFlowRate,
    /// `duration`.
    Duration,
    /// `pressure`.
    Pressure,
    /// `problem` (binary sensors).
    Problem,
    /// `timestamp`.
    Timestamp,
}

/// The Home Assistant state classes this bridge uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StateClass {
    /// `measurement`: an instantaneous value.
    Measurement,
    /// `total_increasing`: a counter (a drop is a meter reset).
    TotalIncreasing,
    /// `total`.
    Total,
}

/// A register's value as HA sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum HaValue {
    /// A number (already converted to the HA unit).
    Number(Decimal),
    /// Text such as a date.
    Text(String),
}

/// The sensor description HA gets for one register.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HaEntity {
    pub(crate) device_class: Option<DeviceClass>,
    pub(crate) state_class: Option<StateClass>,
    pub(crate) unit: Option<String>,
    pub(crate) diagnostic: bool,
    pub(crate) value: HaValue,
}

impl HaEntity {
    /// Digits after the decimal point of a number (`suggested_display_precision`).
    pub(crate) fn precision(&self) -> Option<u16> {
        match &self.value {
            HaValue::Number(d) => Some(d.decimals()),
            HaValue::Text(_) => None,
        }
    }
}

/// Maps a register by its unit (the meter's unit byte is authoritative, never the name).
/// `None` when the value cannot be expressed (a conversion out of range).
pub(crate) fn map_register(
    reg: &RegisterValue,
    compat: HaVersion,
    volume: VolumeClass,
) -> Option<HaEntity> {
    let number = |dc: Option<DeviceClass>, sc: Option<StateClass>, unit: &str| HaEntity {
        device_class: dc,
        state_class: sc,
        unit: (!unit.is_empty()).then(|| unit.to_owned()),
        diagnostic: false,
        value: HaValue::Number(reg.value),
    };
    if let Some(text) = &reg.text {
        return Some(HaEntity {
            device_class: None,
            state_class: None,
            unit: None,
            diagnostic: true,
            value: HaValue::Text(text.clone()),
        });
    }
    // The HA unit text is what HA accepts for the class (its spelling: `L`, `L/h`), so it is
    // written here; the quantity comes from the typed unit the driver set.
    let volume_class = || match volume {
        VolumeClass::Volume => DeviceClass::Volume,
        VolumeClass::Water => DeviceClass::Water,
    };
    let flow_class = || {
        compat
            .has_volume_flow_rate()
            .then_some(DeviceClass::VolumeFlowRate)
    };
    let entity = match &reg.unit {
        ValueUnit::Physical(u) if HA_ENERGY_UNITS.contains(u) => number(
            Some(DeviceClass::Energy),
            Some(StateClass::TotalIncreasing),
            u.symbol(),
        ),
        ValueUnit::Physical(Unit::CubicMetre) => number(
            Some(volume_class()),
            Some(StateClass::TotalIncreasing),
            "m³",
        ),
        ValueUnit::Physical(Unit::Litre) => {
            number(Some(volume_class()), Some(StateClass::TotalIncreasing), "L")
        }
        ValueUnit::Physical(Unit::Celsius) => number(
            Some(DeviceClass::Temperature),
            Some(StateClass::Measurement),
            "°C",
        ),
        // A temperature *difference*: never the `temperature` class, which HA would convert
        // as an absolute temperature (1 K → −272 °C).
        ValueUnit::Physical(Unit::Kelvin) if compat.has_temperature_delta() => number(
            Some(DeviceClass::TemperatureDelta),
            Some(StateClass::Measurement),
            "K",
        ),
        ValueUnit::Physical(Unit::Kelvin) => number(None, Some(StateClass::Measurement), "K"),
        ValueUnit::Physical(u @ (Unit::W | Unit::KW | Unit::MW | Unit::GW)) => number(
            Some(DeviceClass::Power),
            Some(StateClass::Measurement),
            u.symbol(),
        ),
        ValueUnit::Physical(Unit::LitrePerHour) => {
            if compat.has_litres_per_hour() {
                number(flow_class(), Some(StateClass::Measurement), "L/h")
            } else {
                // `l/h` and `L/h` are invalid before HA 2025.5: convert exactly to m³/h.
                let m3h = shift(&reg.value, -3)?;
                HaEntity {
                    value: HaValue::Number(m3h),
                    ..number(flow_class(), Some(StateClass::Measurement), "m³/h")
                }
            }
        }
        ValueUnit::Physical(Unit::CubicMetrePerHour) => {
            number(flow_class(), Some(StateClass::Measurement), "m³/h")
        }
        ValueUnit::Physical(Unit::Hour) => HaEntity {
            diagnostic: true,
            ..number(
                Some(DeviceClass::Duration),
                Some(StateClass::TotalIncreasing),
                "h",
            )
        },
        ValueUnit::Other(bar) if bar == "bar" => number(
            Some(DeviceClass::Pressure),
            Some(StateClass::Measurement),
            "bar",
        ),
        ValueUnit::None => HaEntity {
            diagnostic: true,
            ..number(None, None, "")
        },
        // Anything else keeps the meter's symbol as a plain unit, with no class to violate.
        other => number(None, None, other.as_str()),
    };
    Some(entity)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(name: &str, value: &str, unit: &str) -> RegisterValue {
        RegisterValue {
            id: 0,
            name: name.into(),
            short: String::new(),
            value: value.parse().unwrap(),
            unit: unit.into(),
            unit_code: None,
            text: None,
            derived: false,
        }
    }

    const OLD: HaVersion = HaVersion::new(2024, 3);

    #[test]
    fn versions_parse_and_order() {
        assert_eq!(HaVersion::parse("2024.3.3"), Some(OLD));
        assert_eq!(HaVersion::parse("2025.11"), Some(HaVersion::DEFAULT));
        assert!(HaVersion::parse("2025").is_none());
        assert!(HaVersion::parse("2025.13").is_none());
        assert!(HaVersion::parse("latest").is_none());
        assert!(OLD < HaVersion::DEFAULT);
        let v: HaVersion = serde_json::from_str(r#""2025.4.4""#).unwrap();
        assert_eq!(v.to_string(), "2025.4");
    }

    #[test]
    fn energy_units_all_total_increasing() {
        for unit in ["GJ", "MWh", "kWh"] {
            let e =
                map_register(&reg("heat_energy", "1.5", unit), OLD, VolumeClass::Volume).unwrap();
            assert_eq!(e.device_class, Some(DeviceClass::Energy));
            assert_eq!(e.state_class, Some(StateClass::TotalIncreasing));
            assert_eq!(e.unit.as_deref(), Some(unit));
        }
    }

    #[test]
    fn delta_t_never_temperature() {
        let new = map_register(
            &reg("t1_t2", "51.59", "K"),
            HaVersion::DEFAULT,
            VolumeClass::Volume,
        )
        .unwrap();
        assert_eq!(new.device_class, Some(DeviceClass::TemperatureDelta));
        let old = map_register(&reg("t1_t2", "51.59", "K"), OLD, VolumeClass::Volume).unwrap();
        assert_eq!(old.device_class, None);
        assert_eq!(old.unit.as_deref(), Some("K"));
        assert_eq!(old.state_class, Some(StateClass::Measurement));
    }

    #[test]
    fn flow_exact_conversion_for_old_ha() {
        let new = map_register(
            &reg("flow", "267", "l/h"),
            HaVersion::DEFAULT,
            VolumeClass::Volume,
        )
        .unwrap();
        assert_eq!(new.unit.as_deref(), Some("L/h"));
        assert_eq!(new.value, HaValue::Number("267".parse().unwrap()));
        let old = map_register(&reg("flow", "267", "l/h"), OLD, VolumeClass::Volume).unwrap();
        assert_eq!(old.unit.as_deref(), Some("m³/h"));
        assert_eq!(old.device_class, Some(DeviceClass::VolumeFlowRate));
        match old.value {
            HaValue::Number(d) => assert_eq!(crate::values::plain(&d), "0.267"),
            HaValue::Text(_) => panic!(),
        }
        let older = map_register(
            &reg("flow", "267", "l/h"),
            HaVersion::new(2023, 6),
            VolumeClass::Volume,
        )
        .unwrap();
        assert_eq!(older.device_class, None);
    }

    #[test]
    fn hours_info_and_volume() {
        let h = map_register(&reg("hours", "12345", "h"), OLD, VolumeClass::Volume).unwrap();
        assert_eq!(
            (h.device_class, h.state_class, h.diagnostic),
            (
                Some(DeviceClass::Duration),
                Some(StateClass::TotalIncreasing),
                true
            )
        );
        let i = map_register(&reg("info", "0", ""), OLD, VolumeClass::Volume).unwrap();
        assert_eq!(
            (i.device_class, i.state_class, i.unit, i.diagnostic),
            (None, None, None, true)
        );
        let v = map_register(&reg("volume", "520.41", "m³"), OLD, VolumeClass::Water).unwrap();
        assert_eq!(v.device_class, Some(DeviceClass::Water));
    }
}
