//! Exact conversions between a meter register and what a Domoticz device shows: the device's
//! unit (a kWh counter gets kWh), a counter's integer count from its divider and meter offset.

use kamstrup_decimal::Decimal;
use kamstrup_reading::RegisterValue;

use super::api::{CounterInfo, DeviceKind};
use crate::values::{energy_to_wh, floor_times, plain, shift};

/// Why a value cannot be written.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// Arithmetic left the representable range.
    OutOfRange,
    /// A counter would go below zero (Domoticz would accept it and its history would be wrong).
    NegativeCount {
        /// The value that was to be shown.
        value: Decimal,
        /// The device's meter offset.
        offset: Decimal,
    },
    /// The divider is not a whole number of counts.
    Divider(Decimal),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::OutOfRange => f.write_str("value out of range"),
            Refusal::NegativeCount { value, offset } if offset.is_zero() => write!(
                f,
                "refusing to send a negative count for {value}: Domoticz accepts it silently and the counter's history breaks (check the mode's idx2)"
            ),
            Refusal::NegativeCount { value, offset } => write!(
                f,
                "refusing to send a negative count: {value} is below the device's meter offset {offset} (Domoticz shows offset + count; lower the offset in the device's settings)"
            ),
            Refusal::Divider(d) => write!(
                f,
                "the counter's divider {d} is not a whole number; set a whole divider in Domoticz"
            ),
        }
    }
}

/// The register value in the unit the device shows: a counter of type Energy shows kWh, so an
/// energy register in GJ/MWh/Wh is converted (joules to the Wh, as for General kWh); everything
/// else keeps the meter's unit.
pub(super) fn in_device_unit(reg: &RegisterValue, kind: Option<&DeviceKind>) -> Decimal {
    if let Some(DeviceKind::Counter(c)) = kind {
        if c.meter_type.is_energy() {
            if let Some(wh) = energy_to_wh(&reg.value, &reg.unit) {
                if let Some(kwh) = shift(&wh, -3) {
                    return kwh;
                }
            }
        }
    }
    reg.value
}

/// A counter's svalue: `floor((value − offset) × divider)` counts, never negative. Also returns
/// what Domoticz will then show (`offset + count ÷ divider`), exactly when the divider is a
/// power of ten, else the value asked for.
pub(super) fn counter_svalue(
    value: &Decimal,
    counter: &CounterInfo,
) -> Result<(String, Decimal), Refusal> {
    let divider = whole(&counter.divider).ok_or(Refusal::Divider(counter.divider))?;
    let counted = value
        .checked_sub(&counter.offset)
        .ok_or(Refusal::OutOfRange)?;
    let count = floor_times(&counted, divider).ok_or(Refusal::OutOfRange)?;
    if count < 0 {
        return Err(Refusal::NegativeCount {
            value: *value,
            offset: counter.offset,
        });
    }
    let shown = power_of_ten(divider)
        .and_then(|p| Decimal::new(count, -p).ok())
        .and_then(|c| c.checked_add(&counter.offset))
        .unwrap_or(*value);
    Ok((count.to_string(), shown))
}

/// The svalue of a device that takes the value as text (Custom Sensor, Temperature).
pub(super) fn text_svalue(value: &Decimal) -> String {
    plain(value)
}

fn whole(d: &Decimal) -> Option<u64> {
    if d.is_negative() || d.is_zero() {
        return None;
    }
    let m = u64::try_from(d.mantissa()).ok()?;
    if d.exponent() >= 0 {
        return m.checked_mul(10u64.checked_pow(u32::from(d.exponent().unsigned_abs()))?);
    }
    let div = 10u64.checked_pow(u32::from(d.exponent().unsigned_abs()))?;
    (m % div == 0).then_some(m / div)
}

fn power_of_ten(n: u64) -> Option<i16> {
    let mut p = 0;
    let mut v = n;
    while v > 1 {
        if v % 10 != 0 {
            return None;
        }
        v /= 10;
        p += 1;
    }
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::super::api::CounterType;
    use super::*;

    fn counter(meter_type: CounterType, divider: &str, offset: &str) -> CounterInfo {
        CounterInfo {
            meter_type,
            divider: divider.parse().unwrap(),
            offset: offset.parse().unwrap(),
            units: String::new(),
        }
    }

    #[test]
    fn counts_follow_the_devices_divider_and_offset() {
        let v: Decimal = "951.33".parse().unwrap();
        let water = counter(CounterType::Water, "100.0", "0");
        assert_eq!(
            counter_svalue(&v, &water).unwrap(),
            ("95133".to_owned(), "951.33".parse().unwrap())
        );
        let energy = counter(CounterType::Energy, "1000", "0");
        assert_eq!(counter_svalue(&v, &energy).unwrap().0, "951330");
        let with_offset = counter(CounterType::Water, "100", "900");
        let (sv, shown) = counter_svalue(&v, &with_offset).unwrap();
        assert_eq!((sv.as_str(), shown.to_string()), ("5133", "951.33".into()));
        assert!(matches!(
            counter_svalue(&"-0.5".parse().unwrap(), &water),
            Err(Refusal::NegativeCount { .. })
        ));
        assert!(matches!(
            counter_svalue(&v, &counter(CounterType::Water, "2.5", "0")),
            Err(Refusal::Divider(_))
        ));
        // A divider that is not a power of ten still counts exactly.
        assert_eq!(
            counter_svalue(&v, &counter(CounterType::Counter, "3", "0"))
                .unwrap()
                .0,
            "2853"
        );
    }

    #[test]
    fn energy_counters_show_kwh() {
        let reg = |v: &str, unit: &str| RegisterValue {
            id: 60,
            name: "heat_energy".into(),
            short: "E1".into(),
            value: v.parse().unwrap(),
            unit: unit.into(),
            unit_code: None,
            text: None,
            derived: false,
        };
        let energy = DeviceKind::Counter(counter(CounterType::Energy, "1000", "0"));
        let gas = DeviceKind::Counter(counter(CounterType::Gas, "100", "0"));
        assert_eq!(
            in_device_unit(&reg("55.006", "MWh"), Some(&energy)).to_string(),
            "55006"
        );
        assert_eq!(
            in_device_unit(&reg("84.817", "GJ"), Some(&energy)).to_string(),
            "23560.278"
        );
        assert_eq!(
            in_device_unit(&reg("55.006", "MWh"), Some(&gas)).to_string(),
            "55.006"
        );
        assert_eq!(
            in_device_unit(&reg("951.33", "m³"), Some(&energy)).to_string(),
            "951.33"
        );
    }
}
