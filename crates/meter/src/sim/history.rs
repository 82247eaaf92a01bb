//! Past readings of a simulated meter, to seed a history database, ending exactly where a
//! simulator started now will begin its counters.
//!
//! A KMP model's state is a function of absolute UTC time ([`KmpModel::snapshot_at`]), so its
//! history is simply that function at past times. The 66C below still counts from its start:
//!
//! The simulator's counters are a function of the time since it started ([`Installation::at`]).
//! History before that start comes from the same installation *rewound* by a whole number of
//! its cycles (so the daily-like rhythm lines up) and of hours (so the hour counter does): the
//! rewound installation at `shift + t` equals the live one at `t`, for `t` down to `-shift`.
//! Counters are also capped at the live start values, so that floating-point noise can never put
//! the last seeded value above the first live one — a plausibility check sees no step backwards.

use std::time::Duration;

use chrono::{DateTime, Utc};
use kamstrup_mc66c::{DataSet, Reply, Request};

use super::kmp_model::KmpModel;
use super::mc66c_model::Mc66cModel;
use super::physics::{Installation, Snapshot};
use crate::kmp_driver::register_value;
use crate::mc66c_driver::{standard_registers, ScalingInfo, ScalingSource};
use crate::reading::{MeterIdentity, Protocol, Reading, RegisterValue};

/// Why a history could not be made.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The step between readings is zero or longer than the span.
    #[error("the step between seeded readings must be at least 1 s and at most the span")]
    BadStep,
    /// Going back that far would take a counter below zero (the installation is "younger").
    #[error("the simulated {model} has only about {max_days} days of history; ask for less")]
    TooLong {
        /// Model name.
        model: &'static str,
        /// Whole days that can be seeded.
        max_days: u64,
    },
    /// The installation's cycle is not a whole number of seconds.
    #[error("the simulated installation's cycle is not a whole number of seconds")]
    OddCycle,
    /// The simulated 66C produced a reply its own parser refused (a bug).
    #[error("the simulated MULTICAL 66C produced an unreadable /#1 reply: {0}")]
    Mc66c(#[from] kamstrup_mc66c::Error),
}

/// Which readings to make: one every `step`, on multiples of `step` since the Unix epoch,
/// covering `span` before `end` (exclusive), for a simulator that starts at `end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistorySpec {
    /// When the live simulator starts (its elapsed time 0).
    pub end: DateTime<Utc>,
    /// How far back.
    pub span: Duration,
    /// Time between two readings (15 min in the demo).
    pub step: Duration,
}

impl HistorySpec {
    /// The reading times: multiples of `step`, at or after `end − span`, strictly before `end`.
    pub fn times(&self) -> Result<Vec<DateTime<Utc>>, HistoryError> {
        let step_ms = i64::try_from(self.step.as_millis()).map_err(|_| HistoryError::BadStep)?;
        if step_ms < 1000 || self.step > self.span {
            return Err(HistoryError::BadStep);
        }
        let span_ms = i64::try_from(self.span.as_millis()).map_err(|_| HistoryError::BadStep)?;
        let end = self.end.timestamp_millis();
        let first = (end - span_ms).div_euclid(step_ms) * step_ms + step_ms;
        let mut out = Vec::new();
        let mut t = first;
        while t < end {
            if let Some(at) = DateTime::from_timestamp_millis(t) {
                out.push(at);
            }
            t += step_ms;
        }
        Ok(out)
    }
}

/// An installation's state at any time up to a simulator's start: `at(offset)` with `offset`
/// in seconds relative to that start (negative = before it).
#[derive(Clone, Copy, Debug)]
pub struct Rewound {
    live: Installation,
    past: Installation,
    shift_s: f64,
    start: Snapshot,
}

impl Rewound {
    /// Rewinds `live` by at least `span`; `model` names it in errors.
    pub fn new(
        live: Installation,
        span: Duration,
        model: &'static str,
    ) -> Result<Rewound, HistoryError> {
        let cycle = cycle_seconds(&live)?;
        let cycles = span.as_secs().div_ceil(cycle).max(1);
        let shift = cycles * cycle;
        let shift_s = shift as f64;
        let start = live.at(0.0);
        // Counters grow by the same amount over any whole number of cycles, so the growth over
        // the first `shift` seconds is the growth over the `shift` seconds before the start.
        let ahead = live.at(shift_s);
        let past = Installation {
            energy_kwh: 2.0 * start.energy_kwh - ahead.energy_kwh,
            volume_m3: 2.0 * start.volume_m3 - ahead.volume_m3,
            hours: live.hours.checked_sub(ahead.hours - start.hours).ok_or(
                HistoryError::TooLong {
                    model,
                    max_days: live.hours / 24,
                },
            )?,
            ..live
        };
        if past.energy_kwh < 0.0 || past.volume_m3 < 0.0 {
            let per_day = (ahead.energy_kwh - start.energy_kwh) / (shift_s / 86_400.0);
            return Err(HistoryError::TooLong {
                model,
                max_days: (start.energy_kwh / per_day.max(f64::MIN_POSITIVE)) as u64,
            });
        }
        Ok(Rewound {
            live,
            past,
            shift_s,
            start,
        })
    }

    /// The circuit `offset_s` seconds after the simulator's start (negative: before it). Counters
    /// before the start never exceed their start values.
    pub fn at(&self, offset_s: f64) -> Snapshot {
        if offset_s >= 0.0 {
            return self.live.at(offset_s);
        }
        let mut snap = self.past.at(self.shift_s + offset_s);
        snap.energy_kwh = snap.energy_kwh.min(self.start.energy_kwh);
        snap.volume_m3 = snap.volume_m3.min(self.start.volume_m3);
        snap.hours = snap.hours.min(self.start.hours);
        snap
    }
}

/// The smallest time after which both the installation's rhythm and the hour counter repeat
/// their phase: the least common multiple of its period and one hour.
fn cycle_seconds(inst: &Installation) -> Result<u64, HistoryError> {
    let period = inst.period_s.round();
    if !(period >= 1.0 && (inst.period_s - period).abs() < 1e-9 && period < 1e9) {
        return Err(HistoryError::OddCycle);
    }
    let period = period as u64;
    Ok(period / gcd(period, 3600) * 3600)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Readings of a simulated KMP meter as the daemon stores them (the asked registers in the
/// order asked, ΔT derived from T1 and T2 when not asked for, serial filled in): exactly what
/// the simulator answered at each time. Refused before the model's commissioning.
pub fn kmp_history(
    model: KmpModel,
    register_ids: &[u16],
    port: &str,
    spec: &HistorySpec,
) -> Result<Vec<Reading>, HistoryError> {
    let span = chrono::Duration::from_std(spec.span).map_err(|_| HistoryError::BadStep)?;
    let commissioned = super::kmp_loggers::commissioned();
    if spec.end - span < commissioned {
        return Err(HistoryError::TooLong {
            model: model.name(),
            max_days: u64::try_from((spec.end - commissioned).num_days()).unwrap_or(0),
        });
    }
    let mut out = Vec::new();
    for taken_at in spec.times()? {
        let mut values: Vec<RegisterValue> = Vec::with_capacity(register_ids.len() + 1);
        let mut missing = Vec::new();
        for &id in register_ids {
            if values.iter().any(|v| v.id == id) {
                continue;
            }
            match model.record_at(id, taken_at) {
                Some(record) => values.push(register_value(&record)),
                None => missing.push(id),
            }
        }
        if let Some(dt) = crate::kmp_driver::derive_delta_t(&values) {
            values.push(dt);
        }
        out.push(Reading {
            source: Default::default(),
            meter: MeterIdentity {
                protocol: Protocol::Kmp,
                port: port.to_string(),
                serial: Some(u64::from(model.serial())),
                meter_type: None,
            },
            taken_at,
            registers: values,
            missing,
        });
    }
    Ok(out)
}

/// Readings of a simulated MULTICAL 66C as its driver makes them from `/#1` at each time: the
/// model formats each reply for that absolute time (as a live simulator then did) and the
/// protocol crate parses it back (the customer number as serial, the program's scaling).
pub fn mc66c_history(
    model: Mc66cModel,
    port: &str,
    spec: &HistorySpec,
) -> Result<Vec<Reading>, HistoryError> {
    let scaling = ScalingInfo {
        scaling: model.scaling(),
        program: Some(model.program),
        source: ScalingSource::Standard2,
    };
    let meter_type = scaling.describe();
    let mut out = Vec::new();
    let times = spec.times()?;
    if times
        .first()
        .is_some_and(|t| *t < Mc66cModel::commissioned())
    {
        return Err(HistoryError::TooLong {
            model: Mc66cModel::NAME,
            max_days: u64::try_from((spec.end - Mc66cModel::commissioned()).num_days())
                .unwrap_or(0),
        });
    }
    for taken_at in times {
        // The simulated 66C is a function of absolute time: its past is what it logged.
        let bytes = model.respond_at(Request::Data(DataSet::Standard1), taken_at)?;
        let Reply::Standard1(data) = Reply::parse(DataSet::Standard1, &bytes)? else {
            continue;
        };
        out.push(Reading {
            source: Default::default(),
            meter: MeterIdentity {
                protocol: Protocol::Mc66c,
                port: port.to_string(),
                serial: Some(Mc66cModel::CUSTOMER_NO),
                meter_type: Some(meter_type.clone()),
            },
            taken_at,
            registers: standard_registers(&data, &scaling.scaling)?,
            missing: Vec::new(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kamstrup_decimal::Decimal;

    const STANDARD: [u16; 9] = [60, 68, 86, 87, 89, 80, 74, 1004, 99];

    fn spec(days: u64) -> HistorySpec {
        HistorySpec {
            end: "2026-05-17T10:07:31Z".parse().unwrap(),
            span: Duration::from_secs(days * 86_400),
            step: Duration::from_secs(900),
        }
    }

    fn value(r: &Reading, name: &str) -> Decimal {
        r.get(name).unwrap().value
    }

    #[test]
    fn times_are_aligned_and_end_before_the_start() {
        let s = spec(1);
        let times = s.times().unwrap();
        assert_eq!(times.len(), 96);
        assert!(times.iter().all(|t| t.timestamp() % 900 == 0));
        assert!(*times.last().unwrap() < s.end);
        assert!(times[0] >= s.end - chrono::Duration::days(1));
        let bad = HistorySpec {
            step: Duration::ZERO,
            ..s
        };
        assert!(matches!(bad.times(), Err(HistoryError::BadStep)));
    }

    #[test]
    fn rewound_installation_meets_the_live_one_at_the_start() {
        let live = KmpModel::Multical403.installation();
        let r = Rewound::new(live, Duration::from_secs(28 * 86_400), "x").unwrap();
        let just_before = r.at(-0.001);
        let start = live.at(0.0);
        assert!((just_before.energy_kwh - start.energy_kwh).abs() < 1e-5);
        assert!(just_before.energy_kwh <= start.energy_kwh);
        assert_eq!(just_before.t1_centi, start.t1_centi);
        assert_eq!(just_before.hours, start.hours - 1);
        // Four weeks at a mean 4.2 kW.
        let month_ago = r.at(-28.0 * 86_400.0);
        let used = start.energy_kwh - month_ago.energy_kwh;
        assert!((used - 4.2 * 28.0 * 24.0).abs() < 1e-6, "{used}");
        assert_eq!(start.hours - month_ago.hours, 28 * 24);
    }

    #[test]
    fn kmp_history_is_monotonic_and_continues_into_the_live_simulator() {
        let model = KmpModel::Multical403;
        let s = spec(28);
        let history = kmp_history(model, &STANDARD, "sim:multical-403", &s).unwrap();
        assert_eq!(history.len(), 28 * 96);
        for pair in history.windows(2) {
            for counter in ["heat_energy", "volume", "hours"] {
                let (a, b) = (value(&pair[0], counter), value(&pair[1], counter));
                assert!(a.cmp_value(&b).is_le(), "{counter} went back: {a} → {b}");
            }
        }
        let last = history.last().unwrap();
        for (name, id) in [("heat_energy", 60), ("volume", 68), ("hours", 1004)] {
            let first_live = model.record_at(id, s.end).unwrap().value;
            assert!(
                value(last, name).cmp_value(&first_live).is_le(),
                "{name}: seeded {} > live {first_live}",
                value(last, name)
            );
        }
        assert_eq!(last.get("heat_energy").unwrap().unit, "GJ");
        assert_eq!(last.meter.serial, Some(u64::from(model.serial())));
        // T1 − T2 read as register 89, not derived.
        assert!(!last.get("t1_t2").unwrap().derived);
        // Without 89, ΔT is derived exactly as the driver does.
        let derived = kmp_history(model, &[86, 87], "sim:multical-403", &spec(1)).unwrap();
        let dt = derived[0].get("t1_t2").unwrap();
        assert!(dt.derived);
        let t1 = value(&derived[0], "t1");
        let t2 = value(&derived[0], "t2");
        assert!(dt.value.eq_value(&t1.checked_sub(&t2).unwrap()));
    }

    #[test]
    fn mc66c_history_parses_back_to_the_standard_fields() {
        let model = Mc66cModel::default();
        let history = mc66c_history(model, "sim:multical-66c", &spec(7)).unwrap();
        assert_eq!(history.len(), 7 * 96);
        let last = history.last().unwrap();
        assert_eq!(last.registers.len(), 10);
        assert_eq!(last.meter.serial, Some(Mc66cModel::CUSTOMER_NO));
        assert_eq!(last.get("heat_energy").unwrap().unit, "GJ");
        for pair in history.windows(2) {
            let (a, b) = (
                value(&pair[0], "heat_energy"),
                value(&pair[1], "heat_energy"),
            );
            assert!(a.cmp_value(&b).is_le());
        }
        let first = value(&history[0], "heat_energy");
        assert!(first.cmp_value(&value(last, "heat_energy")).is_lt());
    }

    #[test]
    fn too_much_history_is_refused() {
        let err = kmp_history(KmpModel::Multical403, &STANDARD, "sim:x", &spec(400)).unwrap_err();
        assert!(matches!(err, HistoryError::TooLong { .. }), "{err}");
    }

    /// The demo's seeded history and the meter's hour logger are one function of time: at the
    /// moment each hour record was written, the history's counters are the logged ones.
    #[test]
    fn the_seeded_history_agrees_with_the_hour_logger() {
        use kamstrup_kmp::LoggerType;
        let model = KmpModel::Multical403;
        let logger = model.logger(LoggerType::Hourly).unwrap();
        let now: DateTime<Utc> = "2026-11-30T10:30:00Z".parse().unwrap();
        let newest = model.newest_record_id(logger, now);
        for id in newest - 24..newest {
            let written = model.record_written_at(logger, id).unwrap();
            let record = model.logged_record(logger, id, &[60, 68]).unwrap();
            let history = kmp_history(
                model,
                &[60, 68],
                "sim:multical-403",
                &HistorySpec {
                    end: written + chrono::Duration::seconds(60),
                    span: Duration::from_secs(120),
                    step: Duration::from_secs(1),
                },
            )
            .unwrap();
            let reading = history.iter().find(|r| r.taken_at == written).unwrap();
            for reg in [60u16, 68] {
                let logged = &record.get(reg).unwrap().value;
                let seeded = &reading
                    .registers
                    .iter()
                    .find(|v| v.id == reg)
                    .unwrap()
                    .value;
                assert!(
                    logged.eq_value(seeded),
                    "record {id} register {reg}: {logged} vs {seeded}"
                );
            }
        }
    }
}
