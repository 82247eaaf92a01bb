//! Plausibility of counters: energy, volume, mass and hours never go backwards and never jump
//! more than physics allows since the last good reading. A flagged reading is stored but never
//! delivered. The comparison is exact: the jump in base units against the bound, in decimal.

use chrono::{DateTime, Utc};
use kamstrup_decimal::Decimal;
use kamstrup_reading::{Quantity, RegisterValue};

/// Bounds for counter jumps, as the largest rate the installation can have.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plausibility {
    /// Largest heat power, kW (energy may grow at most this × elapsed time).
    pub max_power_kw: f64,
    /// Largest flow, m³/h (volume may grow at most this × elapsed time; a mass in tonnes by the
    /// same number, water being about a tonne per cubic metre).
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

/// Slack for clock skew between polls: 0.01 h.
const SLACK_MS: i64 = 36_000;
const MS_PER_HOUR: i64 = 3_600_000;

/// A configured bound as the decimal it was written as (`2000.0` → `2000`): the shortest text
/// that reads back as the same `f64`. `None` for a bound too large for the decimal type, which
/// then bounds nothing.
fn bound(value: f64) -> Option<Decimal> {
    format!("{value}").parse().ok()
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
        let kind = value.counter()?;
        let delta = value.value.checked_sub(last)?;
        if delta.is_negative() {
            return Some(format!(
                "{} went backwards from {last} to {} {}",
                value.name, value.value, value.unit
            ));
        }
        let ms = (now_at - last_at).num_milliseconds().max(0) + SLACK_MS;
        // One resolution step of the meter absorbs its rounding.
        let step = Decimal::new(1, value.value.exponent()).ok()?;
        let beyond_step = delta.checked_sub(&step)?;
        if beyond_step.is_negative() || beyond_step.is_zero() {
            return None;
        }
        let in_base = value.physical_unit()?.to_base(&beyond_step)?;
        let ms = Decimal::from_int(ms);
        // Both sides scaled so that only multiplications remain (exact).
        let (jump, limit, what) = match kind {
            // J against kW × ms (= J).
            Quantity::Energy => (
                in_base,
                bound(self.max_power_kw)?.checked_mul(&ms)?,
                format!("{} kW", self.max_power_kw),
            ),
            // m³ (t) × ms-per-hour against m³/h × ms.
            Quantity::Volume | Quantity::Mass => (
                in_base.checked_mul(&Decimal::from_int(MS_PER_HOUR))?,
                bound(self.max_flow_m3h)?.checked_mul(&ms)?,
                format!("{} m³/h", self.max_flow_m3h),
            ),
            // s × 1000 against the elapsed ms (the step above lets a whole-hour counter be a
            // tick ahead).
            _ => (
                in_base.checked_mul(&Decimal::from_int(1000))?,
                ms,
                "the time that passed".to_string(),
            ),
        };
        if jump.cmp_value(&limit).is_gt() {
            let hours = (now_at - last_at).num_milliseconds().max(0) as f64 / 3_600_000.0;
            return Some(format!(
                "{} jumped by {delta} {} in {hours:.2} h, more than {what} allows",
                value.name, value.unit
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
        // The edge, exactly: 15 min + 0.01 h at 100 kW is 0.0936 GJ, plus one step of 0.01 GJ.
        assert!(p
            .check(&reg("heat_energy", "121.99", "GJ"), at(0), &last, at(15))
            .is_none());
        assert!(p
            .check(&reg("heat_energy", "122.00", "GJ"), at(0), &last, at(15))
            .is_some());
        // The same bound in MWh (0.026 MWh + one step of 0.001): unit by unit, exactly.
        let mwh: Decimal = "55.006".parse().unwrap();
        assert!(p
            .check(&reg("heat_energy", "55.033", "MWh"), at(0), &mwh, at(15))
            .is_none());
        assert!(p
            .check(&reg("heat_energy", "55.034", "MWh"), at(0), &mwh, at(15))
            .is_some());
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
        assert_eq!(reg("power", "4.2", "kW").counter(), None);
        assert_eq!(
            reg("heat_energy", "1", "GJ").counter(),
            Some(Quantity::Energy)
        );
    }
}
