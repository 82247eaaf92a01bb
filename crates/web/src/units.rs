//! Unit knowledge the web needs: which registers are counters, and exact conversion of a meter's
//! unit to the base units Prometheus asks for (joules, cubic metres, seconds, watts).

use kamstrup_decimal::Decimal;
use kamstrup_reading::{Quantity, ValueUnit};

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

/// `value` in `unit` expressed in the Prometheus base unit of `quantity` (joules, cubic metres,
/// degrees Celsius, watts, cubic metres per second, seconds): exact as a decimal (the unit table
/// in `kamstrup_reading::unit`), then rounded once to the nearest `f64` (the exposition format is
/// binary floating point). `None` for a unit that is not one of the quantity's units: a value is
/// never exported under a guessed unit.
pub(crate) fn to_base(quantity: Quantity, value: &Decimal, unit: &ValueUnit) -> Option<f64> {
    let unit = unit.physical()?;
    let kind = unit.quantity();
    // A difference may come in °C too (1 K = 1 °C as a difference).
    let fits = kind == quantity
        || (quantity == Quantity::TemperatureDifference && kind == Quantity::Temperature);
    if !fits {
        return None;
    }
    let exact = unit.to_base(value)?;
    if quantity == Quantity::Flow {
        // The domain's flow base is m³/h; Prometheus wants m³/s.
        return divide(&exact, 3600);
    }
    Some(exact.to_f64())
}

/// Whether a register is a counter (energy, volume, mass, operating hours) — the one rule in
/// `kamstrup_reading` — so that buckets of it mean usage, not an average.
pub(crate) fn is_counter(name: &str, unit: &ValueUnit, derived: bool) -> bool {
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
            to_base(Quantity::Energy, &d("122.79"), &"GJ".into()),
            Some(122_790_000_000.0)
        );
        assert_eq!(
            to_base(Quantity::Energy, &d("55.006"), &"MWh".into()),
            Some(198_021_600_000.0)
        );
        assert_eq!(
            to_base(Quantity::Energy, &d("18432"), &"kWh".into()),
            Some(66_355_200_000.0)
        );
        assert_eq!(
            to_base(Quantity::Energy, &d("1.5"), &"Gcal".into()),
            Some(6_280_200_000.0)
        );
        assert_eq!(to_base(Quantity::Energy, &d("1"), &"m³".into()), None);
    }

    #[test]
    fn other_quantities() {
        assert_eq!(
            to_base(Quantity::Volume, &d("951.33"), &"m³".into()),
            Some(951.33)
        );
        assert_eq!(
            to_base(Quantity::Volume, &d("1500"), &"l".into()),
            Some(1.5)
        );
        assert_eq!(
            to_base(Quantity::Power, &d("15.5"), &"kW".into()),
            Some(15_500.0)
        );
        assert_eq!(
            to_base(Quantity::Duration, &d("9872"), &"h".into()),
            Some(35_539_200.0)
        );
        assert_eq!(
            to_base(Quantity::Flow, &d("360"), &"l/h".into()),
            Some(0.000_1)
        );
        assert_eq!(
            to_base(Quantity::Temperature, &d("-0.57"), &"°C".into()),
            Some(-0.57)
        );
        assert_eq!(to_base(Quantity::Temperature, &d("30"), &"K".into()), None);
        assert_eq!(
            to_base(Quantity::TemperatureDifference, &d("30.12"), &"K".into()),
            Some(30.12)
        );
    }

    #[test]
    fn counters_are_recognised_by_unit() {
        assert!(is_counter("heat_energy", &"GJ".into(), false));
        assert!(is_counter("volume", &"m³".into(), false));
        assert!(is_counter("hours", &"h".into(), false));
        assert!(!is_counter("heat_energy_today", &"GJ".into(), true));
        assert!(!is_counter("t1", &"°C".into(), false));
        assert!(!is_counter("power", &"kW".into(), false));
    }
}
