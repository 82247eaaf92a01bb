//! Unit knowledge the web needs: which registers are counters, and exact conversion of a meter's
//! unit to the base units Prometheus asks for (joules, cubic metres, seconds, watts).

use kamstrup_decimal::Decimal;
use kamstrup_reading::{Quantity as Kind, Unit};

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

/// `value` in `unit` expressed in the base unit of `quantity`: exact as a decimal (the unit
/// table in `kamstrup_reading::unit`), then rounded once to the nearest `f64` (the exposition
/// format is binary floating point). `None` for a unit that is not one of the quantity's units:
/// a value is never exported under a guessed unit.
pub(crate) fn to_base(quantity: Quantity, value: &Decimal, unit: &str) -> Option<f64> {
    let unit = Unit::parse(unit)?;
    let kind = unit.quantity();
    let fits = match quantity {
        Quantity::Energy => kind == Kind::Energy,
        Quantity::Volume => kind == Kind::Volume,
        Quantity::Temperature => kind == Kind::Temperature,
        // A difference may come in °C too (1 K = 1 °C as a difference).
        Quantity::TemperatureDifference => {
            matches!(kind, Kind::TemperatureDifference | Kind::Temperature)
        }
        Quantity::Power => kind == Kind::Power,
        Quantity::Flow => kind == Kind::Flow,
        Quantity::Hours => unit == Unit::Hour,
    };
    if !fits {
        return None;
    }
    let exact = unit.to_base(value)?;
    if quantity == Quantity::Flow {
        // m³/h → m³/s.
        return divide(&exact, 3600);
    }
    Some(exact.to_f64())
}

/// Whether a register is a counter (energy, volume, mass, operating hours) — the one rule in
/// `kamstrup_reading` — so that buckets of it mean usage, not an average.
pub(crate) fn is_counter(name: &str, unit: &str, derived: bool) -> bool {
    kamstrup_reading::counter_kind(name, unit, derived).is_some()
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
