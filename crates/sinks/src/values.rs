//! Exact value handling shared by the sinks: plain decimal text, JSON numbers written from that
//! text, exact unit conversions, and the guard that keeps backwards counters out of every sink.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use kamstrup_decimal::Decimal;
use kamstrup_reading::{Reading, RegisterValue, Unit, ValueUnit};
use serde::{Serialize, Serializer};

/// The value as plain decimal text (`55.006`, `-0.57`, `15500`), never in scientific notation,
/// so that every sink format (JSON, line protocol, Domoticz svalue) accepts it.
pub(crate) fn plain(d: &Decimal) -> String {
    let m = d.mantissa();
    let e = d.exponent();
    let digits = m.unsigned_abs().to_string();
    let sign = if m < 0 { "-" } else { "" };
    if m == 0 {
        // Keep the resolution of a zero (`0.0`), but never `000` for a positive exponent.
        return if e < 0 {
            format!("0.{}", "0".repeat(usize::from(e.unsigned_abs())))
        } else {
            "0".to_owned()
        };
    }
    if e >= 0 {
        return format!(
            "{sign}{digits}{}",
            "0".repeat(usize::from(e.unsigned_abs()))
        );
    }
    let decimals = usize::from(e.unsigned_abs());
    if digits.len() > decimals {
        let (int, frac) = digits.split_at(digits.len() - decimals);
        format!("{sign}{int}.{frac}")
    } else {
        format!("{sign}0.{}{digits}", "0".repeat(decimals - digits.len()))
    }
}

/// Serializes a [`Decimal`] as a JSON *number* whose text is exactly [`plain`] (never via f64).
/// Only meaningful with `serde_json`, which every JSON payload here uses.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ExactNumber(pub(crate) Decimal);

impl Serialize for ExactNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw = serde_json::value::RawValue::from_string(plain(&self.0))
            .map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

/// `d × 10^k`, exactly; `None` if the exponent leaves the representable range.
pub(crate) fn shift(d: &Decimal, k: i16) -> Option<Decimal> {
    Decimal::new(d.mantissa(), d.exponent().checked_add(k)?).ok()
}

/// `floor(d × factor)` as an integer, exactly (Domoticz counters want integer counts).
pub(crate) fn floor_times(d: &Decimal, factor: u64) -> Option<i128> {
    let m = d.mantissa().checked_mul(i128::from(factor))?;
    let e = d.exponent();
    if e >= 0 {
        return m.checked_mul(10i128.checked_pow(u32::from(e.unsigned_abs()))?);
    }
    let div = 10i128.checked_pow(u32::from(e.unsigned_abs()))?;
    Some(m.div_euclid(div))
}

/// An energy register in watt-hours (Domoticz' General kWh counter), through the one unit table
/// in `kamstrup_reading::unit`: exact for Wh/kWh/MWh/GWh; joule and calorie units are rounded
/// to a whole Wh (1 GJ = 277 777.78 Wh), which is finer than any heat meter's resolution.
/// `None` for a unit that is not energy.
pub(crate) fn energy_to_wh(d: &Decimal, unit: &ValueUnit) -> Option<Decimal> {
    unit.physical()?.convert(d, Unit::Wh, 0)
}

/// A power register in watts, exactly. `None` for a unit that is not power.
pub(crate) fn power_to_w(d: &Decimal, unit: &ValueUnit) -> Option<Decimal> {
    unit.physical()?.convert(d, Unit::W, 0)
}

/// Units that Home Assistant accepts for `device_class: energy` (HA's list, not a unit table:
/// `GJ×10` is energy to us but not a unit HA knows).
pub(crate) const HA_ENERGY_UNITS: &[Unit] = &[
    Unit::J,
    Unit::KJ,
    Unit::MJ,
    Unit::GJ,
    Unit::Wh,
    Unit::KWh,
    Unit::MWh,
    Unit::GWh,
    Unit::Cal,
    Unit::KCal,
    Unit::MCal,
    Unit::GCal,
];

/// True for registers that only ever grow (the one counter rule, in `kamstrup_reading`).
pub(crate) fn is_counter(reg: &RegisterValue) -> bool {
    reg.counter().is_some()
}

type CounterKey = (u64, String, ValueUnit);

/// Remembers the last delivered value of every counter (per meter serial, register and unit)
/// with its time, so that a counter that went backwards is dropped instead of delivered. The
/// daemon checks plausibility too; this is the sinks' own line of defence. A record back-filled
/// from the meter's logger that is older than the last delivered value is history, not a step
/// backwards: it is let through and does not move the bound (a poll is always checked).
#[derive(Debug, Default)]
pub(crate) struct CounterGuard {
    last: HashMap<CounterKey, (DateTime<Utc>, Decimal)>,
}

/// Counter values accepted in one delivery attempt, committed only when it succeeded.
#[derive(Debug, Default)]
pub(crate) struct CounterUpdates {
    seen: HashMap<CounterKey, (DateTime<Utc>, Decimal)>,
}

impl CounterGuard {
    /// The registers of `reading` that may be delivered, in order. Counters below the last
    /// delivered (or earlier in this batch) value of an earlier time are left out with a
    /// warning.
    pub(crate) fn admit<'r>(
        &self,
        serial: u64,
        reading: &'r Reading,
        updates: &mut CounterUpdates,
    ) -> Vec<&'r RegisterValue> {
        let mut out = Vec::with_capacity(reading.registers.len());
        for reg in &reading.registers {
            if is_counter(reg) {
                let key = (serial, reg.name.clone(), reg.unit.clone());
                let previous = updates.seen.get(&key).or_else(|| self.last.get(&key));
                match previous {
                    Some((at, _)) if reading.source.is_logged() && reading.taken_at < *at => {
                        // Older than what was delivered: history, checked by the daemon.
                        out.push(reg);
                        continue;
                    }
                    Some((_, prev)) if reg.value.cmp_value(prev).is_lt() => {
                        tracing::warn!(
                            serial,
                            register = %reg.name,
                            value = %reg.value,
                            previous = %prev,
                            "counter went backwards; not delivered"
                        );
                        continue;
                    }
                    _ => {}
                }
                updates.seen.insert(key, (reading.taken_at, reg.value));
            }
            out.push(reg);
        }
        out
    }

    /// Makes the accepted values of a successful delivery the new lower bounds.
    pub(crate) fn commit(&mut self, updates: CounterUpdates) {
        self.last.extend(updates.seen);
    }
}

/// A name safe for MQTT topic levels and HA ids: lower-case ASCII letters, digits and `_`.
pub(crate) fn slug(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let trimmed = out.trim_matches('_');
    if trimmed.is_empty() {
        "x".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// A URL for messages: scheme, host, port and path only (no user info, no query).
pub(crate) fn display_url(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string().trim_end_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn plain_text_never_scientific() {
        for (m, e, text) in [
            (55006, -3, "55.006"),
            (-57, -2, "-0.57"),
            (0, -1, "0.0"),
            (0, 3, "0"),
            (155, 2, "15500"),
            (19591204, 17, "1959120400000000000000000"),
            (5, -4, "0.0005"),
            (-5, -35, "-0.00000000000000000000000000000000005"),
            (7, 0, "7"),
        ] {
            assert_eq!(plain(&Decimal::new(m, e).unwrap()), text);
        }
    }

    #[test]
    fn exact_json_numbers() {
        let v = serde_json::to_string(&[ExactNumber(d("520.410")), ExactNumber(d("0.0"))]).unwrap();
        assert_eq!(v, "[520.410,0.0]");
    }

    #[test]
    fn conversions_are_exact() {
        assert_eq!(plain(&shift(&d("267"), -3).unwrap()), "0.267");
        assert_eq!(
            plain(&power_to_w(&d("15.5"), &"kW".into()).unwrap()),
            "15500"
        );
        assert_eq!(
            plain(&energy_to_wh(&d("55.006"), &"MWh".into()).unwrap()),
            "55006000"
        );
        assert_eq!(
            plain(&energy_to_wh(&d("1234.5"), &"kWh".into()).unwrap()),
            "1234500"
        );
        // 1 GJ = 277 777.777… Wh → rounded to 277 778.
        assert_eq!(
            plain(&energy_to_wh(&d("1.000"), &"GJ".into()).unwrap()),
            "277778"
        );
        assert_eq!(
            plain(&energy_to_wh(&d("84.817"), &"GJ".into()).unwrap()),
            "23560278"
        );
        assert!(energy_to_wh(&d("1"), &"m³".into()).is_none());
        assert_eq!(floor_times(&d("520.41"), 1000), Some(520410));
        assert_eq!(floor_times(&d("84.8175"), 1000), Some(84817));
        assert_eq!(floor_times(&d("12"), 100), Some(1200));
    }

    fn reading(values: &[(&str, &str, &str)]) -> Reading {
        Reading {
            source: Default::default(),
            meter: kamstrup_reading::MeterIdentity {
                protocol: kamstrup_reading::Protocol::Kmp,
                port: "sim".into(),
                serial: Some(1),
                meter_type: None,
            },
            taken_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            registers: values
                .iter()
                .map(|(name, value, unit)| RegisterValue {
                    id: 0,
                    name: (*name).into(),
                    short: String::new(),
                    value: d(value),
                    unit: (*unit).into(),
                    unit_code: None,
                    text: None,
                    derived: false,
                })
                .collect(),
            missing: vec![],
        }
    }

    #[test]
    fn guard_drops_backwards_counters_only() {
        let mut guard = CounterGuard::default();
        let mut up = CounterUpdates::default();
        let r1 = reading(&[("heat_energy", "10.000", "GJ"), ("t1", "70.0", "°C")]);
        assert_eq!(guard.admit(1, &r1, &mut up).len(), 2);
        guard.commit(up);
        let mut up = CounterUpdates::default();
        let r2 = reading(&[("heat_energy", "9.999", "GJ"), ("t1", "20.0", "°C")]);
        let admitted = guard.admit(1, &r2, &mut up);
        assert_eq!(admitted.len(), 1);
        assert_eq!(admitted[0].name, "t1");
        // Equal is fine; another serial has its own history.
        let r3 = reading(&[("heat_energy", "10.00", "GJ")]);
        assert_eq!(guard.admit(1, &r3, &mut up).len(), 1);
        assert_eq!(guard.admit(2, &r2, &mut up).len(), 2);
    }

    #[test]
    fn guard_lets_older_history_through_without_moving_the_bound() {
        let mut guard = CounterGuard::default();
        let mut up = CounterUpdates::default();
        let now = reading(&[("heat_energy", "10.000", "GJ")]);
        assert_eq!(guard.admit(1, &now, &mut up).len(), 1);
        guard.commit(up);
        // A logged record of an hour earlier with a smaller counter: history, delivered.
        let mut hour_ago = reading(&[("heat_energy", "9.900", "GJ")]);
        hour_ago.taken_at -= chrono::Duration::hours(1);
        let mut up = CounterUpdates::default();
        assert!(
            guard.admit(1, &hour_ago, &mut up).is_empty(),
            "a poll is always checked"
        );
        hour_ago.source = kamstrup_reading::ReadingSource::HourLog;
        let mut up = CounterUpdates::default();
        assert_eq!(guard.admit(1, &hour_ago, &mut up).len(), 1);
        guard.commit(up);
        // The bound is still the newest value: a newer smaller one is dropped.
        let mut later = reading(&[("heat_energy", "9.950", "GJ")]);
        later.taken_at += chrono::Duration::hours(1);
        let mut up = CounterUpdates::default();
        assert!(guard.admit(1, &later, &mut up).is_empty());
    }

    #[test]
    fn guard_lets_derived_usage_restart_with_its_period() {
        let mut guard = CounterGuard::default();
        let mut up = CounterUpdates::default();
        let mut evening = reading(&[("heat_energy_today", "0.84", "GJ")]);
        evening.registers[0].derived = true;
        assert_eq!(guard.admit(1, &evening, &mut up).len(), 1);
        guard.commit(up);
        let mut up = CounterUpdates::default();
        let mut after_midnight = reading(&[("heat_energy_today", "0.01", "GJ")]);
        after_midnight.registers[0].derived = true;
        assert_eq!(guard.admit(1, &after_midnight, &mut up).len(), 1);
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("Old-Heat 2"), "old_heat_2");
        assert_eq!(slug("__"), "x");
        assert_eq!(slug("t1_t2"), "t1_t2");
    }
}
