//! Unit knowledge the web needs: which registers are counters, and exact conversion of a meter's
//! unit to the base units Prometheus asks for (joules, cubic metres, seconds, watts).

use kamstrup_decimal::Decimal;

/// A power of ten and an integer factor: `value × factor × 10^pow10`, exact in decimal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Scale {
    factor: i128,
    pow10: i16,
}

const fn scale(factor: i128, pow10: i16) -> Scale {
    Scale { factor, pow10 }
}

/// Joules in one of an energy unit. Calories are the International Table calorie of EN 1434
/// (4.1868 J).
fn joules_per(unit: &str) -> Option<Scale> {
    Some(match unit {
        "Wh" => scale(36, 2),
        "kWh" => scale(36, 5),
        "MWh" => scale(36, 8),
        "GWh" => scale(36, 11),
        "J" => scale(1, 0),
        "kJ" => scale(1, 3),
        "MJ" => scale(1, 6),
        "GJ" => scale(1, 9),
        "cal" => scale(41_868, -4),
        "kcal" => scale(41_868, -1),
        "Mcal" => scale(41_868, 2),
        "Gcal" => scale(41_868, 5),
        _ => return None,
    })
}

/// Cubic metres in one of a volume unit.
fn cubic_meters_per(unit: &str) -> Option<Scale> {
    Some(match unit {
        "m³" | "m3" => scale(1, 0),
        "l" => scale(1, -3),
        _ => return None,
    })
}

/// Watts in one of a power unit.
fn watts_per(unit: &str) -> Option<Scale> {
    Some(match unit {
        "W" => scale(1, 0),
        "kW" => scale(1, 3),
        "MW" => scale(1, 6),
        "GW" => scale(1, 9),
        _ => return None,
    })
}

/// Cubic metres per hour in one of a flow unit (the last step to per second is a division by
/// 3600, done in binary at the very end).
fn cubic_meters_per_hour_per(unit: &str) -> Option<Scale> {
    Some(match unit {
        "l/h" => scale(1, -3),
        "m³/h" | "m3/h" => scale(1, 0),
        _ => return None,
    })
}

/// `value × scale`, exactly.
fn apply(value: &Decimal, s: Scale) -> Option<Decimal> {
    let mantissa = value.mantissa().checked_mul(s.factor)?;
    let exponent = value.exponent().checked_add(s.pow10)?;
    Decimal::new(mantissa, exponent).ok()
}

/// `value / divisor` rounded to the nearest `f64`: the quotient is first taken to at least 34
/// significant digits (far beyond the 17 of a double), so the result is rounded only once in
/// effect — `360 l/h` gives exactly `0.0001` m³/s, not `9.999999999999999e-5`.
fn divide(value: &Decimal, divisor: i128) -> Option<f64> {
    const WIDE: u128 = 10u128.pow(34);
    let mut mantissa = value.mantissa();
    let mut exponent = value.exponent();
    if mantissa == 0 {
        return Some(0.0);
    }
    while mantissa.unsigned_abs() < WIDE {
        mantissa = mantissa.checked_mul(10)?;
        exponent = exponent.checked_sub(1)?;
    }
    let quotient = mantissa.checked_div(divisor)?;
    Decimal::new(quotient, exponent).ok().map(|d| d.to_f64())
}

/// A quantity exported to Prometheus, with the base unit it is exported in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Quantity {
    /// Energy counter → joules.
    Energy,
    /// Volume counter → cubic metres.
    Volume,
    /// Temperature → degrees Celsius.
    Temperature,
    /// Temperature difference (K or °C) → degrees Celsius (1 K = 1 °C as a difference).
    TemperatureDifference,
    /// Power → watts.
    Power,
    /// Flow → cubic metres per second.
    Flow,
    /// Operating time in hours → seconds.
    Hours,
}

/// `value` in `unit` expressed in the base unit of `quantity`: exact as a decimal, then rounded
/// once to the nearest `f64` (the exposition format is binary floating point). `None` for a
/// unit that is not one of the quantity's units: a value is never exported under a guessed unit.
pub(crate) fn to_base(quantity: Quantity, value: &Decimal, unit: &str) -> Option<f64> {
    let exact = match quantity {
        Quantity::Energy => apply(value, joules_per(unit)?)?,
        Quantity::Volume => apply(value, cubic_meters_per(unit)?)?,
        Quantity::Temperature => match unit {
            "°C" | "C" => *value,
            _ => return None,
        },
        Quantity::TemperatureDifference => match unit {
            "K" | "°C" | "C" => *value,
            _ => return None,
        },
        Quantity::Power => apply(value, watts_per(unit)?)?,
        Quantity::Flow => {
            let per_hour = apply(value, cubic_meters_per_hour_per(unit)?)?;
            return divide(&per_hour, 3600);
        }
        Quantity::Hours => match unit {
            "h" => apply(value, scale(3600, 0))?,
            _ => return None,
        },
    };
    Some(exact.to_f64())
}

/// Whether a register is a counter (energy, volume, operating hours) — judged by its unit as
/// the daemon's plausibility check does — so that buckets of it mean usage, not an average.
pub(crate) fn is_counter(name: &str, unit: &str, derived: bool) -> bool {
    !derived
        && (joules_per(unit).is_some()
            || cubic_meters_per(unit).is_some()
            || (unit == "h" && name.contains("hour")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn energy_units_convert_exactly_to_joules() {
        assert_eq!(
            to_base(Quantity::Energy, &d("122.79"), "GJ"),
            Some(122_790_000_000.0)
        );
        assert_eq!(
            to_base(Quantity::Energy, &d("55.006"), "MWh"),
            Some(198_021_600_000.0)
        );
        assert_eq!(
            to_base(Quantity::Energy, &d("18432"), "kWh"),
            Some(66_355_200_000.0)
        );
        assert_eq!(
            to_base(Quantity::Energy, &d("1.5"), "Gcal"),
            Some(6_280_200_000.0)
        );
        assert_eq!(to_base(Quantity::Energy, &d("1"), "m³"), None);
    }

    #[test]
    fn other_quantities() {
        assert_eq!(to_base(Quantity::Volume, &d("951.33"), "m³"), Some(951.33));
        assert_eq!(to_base(Quantity::Volume, &d("1500"), "l"), Some(1.5));
        assert_eq!(to_base(Quantity::Power, &d("15.5"), "kW"), Some(15_500.0));
        assert_eq!(
            to_base(Quantity::Hours, &d("9872"), "h"),
            Some(35_539_200.0)
        );
        assert_eq!(to_base(Quantity::Flow, &d("360"), "l/h"), Some(0.000_1));
        assert_eq!(
            to_base(Quantity::Temperature, &d("-0.57"), "°C"),
            Some(-0.57)
        );
        assert_eq!(to_base(Quantity::Temperature, &d("30"), "K"), None);
        assert_eq!(
            to_base(Quantity::TemperatureDifference, &d("30.12"), "K"),
            Some(30.12)
        );
    }

    #[test]
    fn counters_are_recognised_by_unit() {
        assert!(is_counter("heat_energy", "GJ", false));
        assert!(is_counter("volume", "m³", false));
        assert!(is_counter("hours", "h", false));
        assert!(!is_counter("heat_energy_today", "GJ", true));
        assert!(!is_counter("t1", "°C", false));
        assert!(!is_counter("power", "kW", false));
    }
}
