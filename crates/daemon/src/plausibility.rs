//! Plausibility of counters: energy, volume and hours never go backwards and never jump more than
//! physics allows since the last good reading. A flagged reading is stored but never delivered.

use chrono::{DateTime, Utc};
use kamstrup_decimal::Decimal;
use kamstrup_reading::RegisterValue;

/// Bounds for counter jumps, as the largest rate the installation can have.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plausibility {
    /// Largest heat power, kW (energy may grow at most this × elapsed time).
    pub max_power_kw: f64,
    /// Largest flow, m³/h (volume may grow at most this × elapsed time).
    pub max_flow_m3h: f64,
}

impl Default for Plausibility {
    fn default() -> Self {
        // Generous for homes and small buildings (a 25 m³/h meter at 60 K is ~1.7 MW).
        Plausibility {
            max_power_kw: 2_000.0,
            max_flow_m3h: 50.0,
        }
    }
}

/// What kind of counter a register is, judged by its unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Energy; the factor converts one unit to kWh.
    Energy,
    /// Volume.
    Volume,
    /// Operating hours.
    Hours,
}

/// kWh in one of the unit (for bounds only; values themselves stay exact).
fn kwh_per_unit(unit: &str) -> Option<f64> {
    Some(match unit {
        "Wh" => 0.001,
        "kWh" => 1.0,
        "MWh" => 1_000.0,
        "GWh" => 1_000_000.0,
        "J" => 1.0 / 3_600_000.0,
        "kJ" => 1.0 / 3_600.0,
        "MJ" => 1.0 / 3.6,
        "GJ" => 1_000.0 / 3.6,
        "Gcal" => 1_163.0,
        "Mcal" => 1.163,
        "kcal" => 0.001_163,
        _ => return None,
    })
}

fn m3_per_unit(unit: &str) -> Option<f64> {
    Some(match unit {
        "m³" => 1.0,
        "l" => 0.001,
        _ => return None,
    })
}

/// The counter kind of a register, or `None` for instantaneous values (temperatures, power…).
pub fn counter_kind(value: &RegisterValue) -> Option<Counter> {
    if value.derived {
        return None;
    }
    if kwh_per_unit(&value.unit).is_some() {
        Some(Counter::Energy)
    } else if m3_per_unit(&value.unit).is_some() {
        Some(Counter::Volume)
    } else if value.unit == "h" && (value.name == "hours" || value.name.contains("hour")) {
        Some(Counter::Hours)
    } else {
        None
    }
}

impl Plausibility {
    /// Why `now` is implausible after `last` (taken at `last_at`), or `None` if it is fine.
    pub fn check(
        &self,
        value: &RegisterValue,
        last_at: DateTime<Utc>,
        last: &Decimal,
        now_at: DateTime<Utc>,
    ) -> Option<String> {
        let kind = counter_kind(value)?;
        let delta = value.value.checked_sub(last)?;
        if delta.is_negative() {
            return Some(format!(
                "{} went backwards from {last} to {} {}",
                value.name, value.value, value.unit
            ));
        }
        // A small slack absorbs clock skew between polls; one resolution step absorbs rounding.
        let hours = ((now_at - last_at).num_milliseconds().max(0) as f64 / 3_600_000.0) + 0.01;
        let step = 10f64.powi(i32::from(value.value.exponent()));
        let (limit, what) = match kind {
            Counter::Energy => (
                self.max_power_kw * hours / kwh_per_unit(&value.unit)? + step,
                format!("{} kW", self.max_power_kw),
            ),
            Counter::Volume => (
                self.max_flow_m3h * hours / m3_per_unit(&value.unit)? + step,
                format!("{} m³/h", self.max_flow_m3h),
            ),
            Counter::Hours => (hours + 1.0, "the time that passed".to_string()),
        };
        if delta.to_f64() > limit {
            return Some(format!(
                "{} jumped by {delta} {} in {:.2} h, more than {what} allows",
                value.name, value.unit, hours
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(name: &str, value: &str, unit: &str) -> RegisterValue {
        RegisterValue {
            id: 60,
            name: name.into(),
            short: name.into(),
            value: value.parse().unwrap(),
            unit: unit.into(),
            unit_code: None,
            text: None,
            derived: false,
        }
    }

    fn at(min: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + min * 60, 0).unwrap()
    }

    #[test]
    fn counters_going_backwards_are_flagged() {
        let p = Plausibility::default();
        let last: Decimal = "55.006".parse().unwrap();
        let why = p
            .check(&reg("heat_energy", "55.005", "MWh"), at(0), &last, at(15))
            .unwrap();
        assert!(why.contains("backwards"), "{why}");
        // The classic glitch: a failed read parsed as 0.
        assert!(p
            .check(&reg("heat_energy", "0", "MWh"), at(0), &last, at(15))
            .is_some());
        assert!(p
            .check(&reg("heat_energy", "55.006", "MWh"), at(0), &last, at(15))
            .is_none());
    }

    #[test]
    fn jumps_are_bounded_by_physics() {
        let p = Plausibility {
            max_power_kw: 100.0,
            max_flow_m3h: 5.0,
        };
        let last: Decimal = "121.89".parse().unwrap();
        // 15 min at 100 kW = 25 kWh = 0.09 GJ.
        assert!(p
            .check(&reg("heat_energy", "121.97", "GJ"), at(0), &last, at(15))
            .is_none());
        let why = p
            .check(&reg("heat_energy", "122.50", "GJ"), at(0), &last, at(15))
            .unwrap();
        assert!(why.contains("jumped"), "{why}");
        let v: Decimal = "951.33".parse().unwrap();
        assert!(p
            .check(&reg("volume", "952.50", "m³"), at(0), &v, at(15))
            .is_none());
        assert!(p
            .check(&reg("volume", "960.00", "m³"), at(0), &v, at(15))
            .is_some());
        let h: Decimal = "9872".parse().unwrap();
        assert!(p
            .check(&reg("hours", "9873", "h"), at(0), &h, at(60))
            .is_none());
        assert!(p
            .check(&reg("hours", "9900", "h"), at(0), &h, at(60))
            .is_some());
    }

    #[test]
    fn instantaneous_values_are_not_counters() {
        let p = Plausibility::default();
        let last: Decimal = "70.00".parse().unwrap();
        assert!(p
            .check(&reg("t1", "20.00", "°C"), at(0), &last, at(15))
            .is_none());
        assert_eq!(counter_kind(&reg("power", "4.2", "kW")), None);
        assert_eq!(
            counter_kind(&reg("heat_energy", "1", "GJ")),
            Some(Counter::Energy)
        );
    }
}
