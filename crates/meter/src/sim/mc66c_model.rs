//! The simulated MULTICAL 66C: every "/#n" data set and the EN 61107 readout, formatted by the
//! protocol crate from the same circuit physics as the KMP models, scaled by its program number.

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use kamstrup_decimal::Decimal;
use kamstrup_mc66c::{
    Config, CurrentCounts, DataSet, EnergyUnit, FlowUnit, InfoCode, InfoEvent, Instantaneous,
    Mc66cReadout, MeterDate, MeterTime, MonthDay, MonthlyData, MonthlyRecord, PowerUnit,
    ProgramNumber, ProgrammingData, Request, Resolution, Scaling, StandardData1, StandardData2,
    TargetData, VerificationData,
};

use super::physics::{Installation, Snapshot};

/// Largest value of a 7-character field; counters roll over past it, as on the meter.
const FIELD_LIMIT: i64 = 10_000_000;

/// A simulated MULTICAL 66C with its program number A-B-CCC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mc66cModel {
    /// The program number the meter reports in `/#2` and `/#D`; its digit B and code CCC set
    /// the energy unit and the decimals of every register.
    pub program: ProgramNumber,
}

impl Default for Mc66cModel {
    fn default() -> Self {
        Mc66cModel {
            program: Mc66cModel::DEFAULT_PROGRAM,
        }
    }
}

impl Mc66cModel {
    /// The command-line name.
    pub const NAME: &'static str = "multical-66c";

    /// The program of `sim:multical-66c`: return pipe, GJ, ULTRAFLOW qp 1.5 m³/h (the
    /// configuration of the Dutch district-heating meters in the field reports).
    pub const DEFAULT_PROGRAM: ProgramNumber = ProgramNumber {
        a: 4,
        b: 2,
        ccc: 119,
    };

    /// The customer number in `/#2`, `/#3`, `/#5`, `/#D` and the readout.
    pub const CUSTOMER_NO: u64 = 5_310_017;

    /// A model with this program number.
    pub fn new(program: ProgramNumber) -> Self {
        Mc66cModel { program }
    }

    /// The installation it heats: a house with a 66C fitted long ago (hours above 32 000).
    pub fn installation(&self) -> Installation {
        Installation {
            energy_kwh: 125_431.0,
            volume_m3: 3_210.55,
            hours: 32_673,
            mean_power_kw: 3.4,
            power_swing_kw: 1.6,
            mean_t1: 68.0,
            mean_dt: 33.0,
            period_s: 6.0 * 3600.0,
        }
    }

    /// The decimals the meter uses: from its program number, the CCC-119 family for a code
    /// not in the table, and GJ for an energy digit B that names no unit (the reader then
    /// rejects the program number, as it should).
    pub fn scaling(&self) -> Scaling {
        match Scaling::resolve(&self.program) {
            Ok(Resolution::Known(s)) => s,
            Ok(Resolution::UnknownCcc { energy_unit, .. }) => Scaling::ccc119_fallback(energy_unit),
            Err(_) => {
                Scaling::ccc119_fallback(self.program.energy_unit().unwrap_or(EnergyUnit::GJ))
            }
        }
    }

    fn values(&self, snap: &Snapshot) -> Registers {
        let scaling = self.scaling();
        let inst = self.installation();
        let r = Registers {
            scaling,
            energy: 0,
            volume: 0,
            hours: (snap.hours as i64).rem_euclid(FIELD_LIMIT),
            t1: snap.t1_centi,
            t2: snap.t2_centi,
            power: 0,
            flow: 0,
            peak_power: 0,
            peak_power_year: 0,
        };
        let flow_lh = snap.flow_lh as f64;
        let flow_in_unit = match scaling.flow_unit {
            FlowUnit::LitrePerHour => flow_lh,
            FlowUnit::CubicMetrePerHour => flow_lh / 1000.0,
        };
        Registers {
            energy: r.energy_at(snap.energy_kwh),
            volume: r.volume_at(snap.volume_m3),
            power: r.power_at(snap.power_deci_kw as f64 / 10.0),
            flow: (to_raw(flow_in_unit, scaling.flow).round() as i64).clamp(0, FIELD_LIMIT - 1),
            peak_power: r.power_at(inst.mean_power_kw + inst.power_swing_kw),
            peak_power_year: r.power_at(inst.mean_power_kw + inst.power_swing_kw + 1.3),
            ..r
        }
    }

    /// The reply bytes to `request`, as the meter would send them (the readout as one frame:
    /// the simulator splits off its identification line).
    pub fn respond(
        &self,
        request: Request,
        snap: &Snapshot,
        now: NaiveDateTime,
    ) -> Result<Vec<u8>, kamstrup_mc66c::Error> {
        let r = self.values(snap);
        let today = meter_date(now.date());
        let customer_no = Mc66cModel::CUSTOMER_NO;
        // Display code 12, no tariff, no pulse inputs (as KenanV's meter).
        let config = Config::new(12, 0, 0, 0).ok_or_else(|| invalid("config"))?;
        let eight = MeterTime::new(8, 0, 0).ok_or_else(|| invalid("clock"))?;
        let data_set = match request {
            Request::Readout => return self.readout(&r, snap),
            Request::Data(d) => d,
        };
        match data_set {
            DataSet::Standard1 => StandardData1::from_raw([
                r.energy,
                r.volume,
                r.hours,
                r.t1,
                r.t2,
                r.t1 - r.t2,
                r.power,
                r.flow,
                r.peak_power,
                0,
            ])?
            .emit(),
            DataSet::Standard2 => StandardData2 {
                customer_no,
                ta2: 0,
                tl2: 0,
                ta3: 0,
                tl3: 0,
                in_a: 0,
                in_b: 0,
                program: self.program,
                config,
                date: today,
            }
            .emit(),
            DataSet::Target => {
                let target = last_target_day(now.date());
                TargetData {
                    customer_no,
                    date: meter_date(target),
                    energy: r.energy_at(snap.energy_kwh - 2_900.0),
                    volume: r.volume_at(snap.volume_m3 - 76.0),
                    ta2: 0,
                    ta3: 0,
                    in_a: 0,
                    in_b: 0,
                    peak_power_year: r.peak_power_year,
                }
                .emit()
            }
            DataSet::Verification => VerificationData {
                energy: r.energy,
                qsum1: (snap.energy_kwh * 5.1).floor() as i64 % FIELD_LIMIT,
                qsum2: 0,
                volume1: r.volume,
                volume2: 0,
                pre_counter1: 490,
                in_a: 0,
                in_b: 0,
                pre_counter2: 0,
            }
            .emit(),
            DataSet::CurrentCounts => CurrentCounts {
                energy: r.energy,
                energy_cold: 0,
                volume1: r.volume,
                volume2: 0,
                // Water is a little lighter than 1 t/m³ at heating temperatures.
                mass1: (r.volume as f64 * 0.9925).floor() as i64,
                mass2: 0,
                in_a: 0,
                in_b: 0,
                ta2: 0,
                ta3: 0,
                // Volume-weighted temperature sums: m3tf / V1 and m3tr / V1 are mean temperatures.
                m3tf: (snap.volume_m3 * 68.2).floor() as i64 % FIELD_LIMIT,
                m3tr: (snap.volume_m3 * 35.1).floor() as i64 % FIELD_LIMIT,
            }
            .emit(),
            DataSet::Instantaneous => Instantaneous {
                t1: r.t1,
                // 218.75 °C: what a real 66C reports without a T3 sensor.
                t3: 21_875,
                t2: r.t2,
                p1: 0,
                p2: 0,
                flow1: r.flow,
                flow2: 0,
                power1: r.power,
            }
            .emit(),
            DataSet::Programming => ProgrammingData {
                customer_no,
                program: self.program,
                ccc_v2: self.program.ccc,
                config,
                leak_m: 0,
                leak_n: 0,
                date: today,
                clock: MeterTime::new(
                    u8::try_from(now.hour()).unwrap_or(0),
                    u8::try_from(now.minute()).unwrap_or(0),
                    u8::try_from(now.second()).unwrap_or(0),
                )
                .ok_or_else(|| invalid("clock"))?,
                hours: r.hours,
                target_date: MonthDay::new(6, 1),
                info_hours: 1,
            }
            .emit(),
            DataSet::Monthly => {
                // The simulated meter's monthly store holds four months (a real one 32 lines);
                // short logs keep a scan of the paced simulator quick.
                let records = (0..4)
                    .map(|i| {
                        let back = f64::from(i);
                        MonthlyRecord {
                            date: meter_date(month_end(now.date(), i + 1)),
                            energy: r.energy_at(snap.energy_kwh - 800.0 * (back + 0.5)),
                            volume: r.volume_at(snap.volume_m3 - 21.0 * (back + 0.5)),
                            ta2: 0,
                            ta3: 0,
                            in_a: 0,
                            in_b: 0,
                            peak_power: r.peak_power,
                        }
                    })
                    .collect();
                MonthlyData {
                    customer_no,
                    records,
                }
                .emit()
            }
            DataSet::InfoLog => {
                let event = |info: u32, days: i64, energy_kwh: f64| InfoEvent {
                    info: InfoCode(info),
                    date: meter_date(now.date() - chrono::Duration::days(days)),
                    clock: eight,
                    energy: r.energy_at(energy_kwh),
                    extra: Vec::new(),
                };
                InfoEvent::emit_all(&[
                    event(0, 40, snap.energy_kwh - 500.0),
                    event(8, 41, snap.energy_kwh - 510.0),
                    event(1, 1_361, snap.energy_kwh - 60_000.0),
                ])
            }
            DataSet::DailyLog | DataSet::HourlyLog | DataSet::MonthlyLog | DataSet::YearlyLog => {
                Ok(self.log_lines(data_set, &r, snap, now.date()))
            }
        }
    }

    /// `/#6`–`/#9`: a few lines in the TD layout (the simulator keeps short logs; real meters
    /// send 60, 960, 36 and 15 lines).
    fn log_lines(
        &self,
        data_set: DataSet,
        r: &Registers,
        snap: &Snapshot,
        today: NaiveDate,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let mut push = |tokens: &[(i64, usize)]| {
            for (v, width) in tokens {
                out.extend_from_slice(
                    format!(
                        "{:0width$} ",
                        v.rem_euclid(10i64.pow(*width as u32)),
                        width = *width
                    )
                    .as_bytes(),
                );
            }
            out.push(b'\r');
        };
        let date = |d: NaiveDate| {
            i64::from(d.year() % 100) * 10_000 + i64::from(d.month()) * 100 + i64::from(d.day())
        };
        match data_set {
            DataSet::DailyLog | DataSet::HourlyLog => {
                let lines = if data_set == DataSet::DailyLog { 3 } else { 4 };
                for i in 0..lines {
                    let day = today - chrono::Duration::days(i64::from(i) + 1);
                    let growth = if data_set == DataSet::DailyLog { 82 } else { 3 };
                    push(&[
                        (date(day), 7),
                        (growth, 5),
                        (
                            if data_set == DataSet::DailyLog {
                                214
                            } else {
                                9
                            },
                            5,
                        ),
                        (0, 5),
                        (0, 5),
                        (0, 5),
                        (34, 5),
                        (0, 5),
                        (r.t1, 5),
                        (21_875, 5),
                        (r.t2, 5),
                        (0, 7),
                    ]);
                }
            }
            DataSet::MonthlyLog | DataSet::YearlyLog => {
                let lines = if data_set == DataSet::MonthlyLog {
                    2
                } else {
                    1
                };
                for i in 0..lines {
                    let end = month_end(today, i + 1);
                    let mut tokens = vec![
                        (date(end), 7),
                        (r.energy_at(snap.energy_kwh - 800.0 * f64::from(i + 1)), 7),
                        (r.volume_at(snap.volume_m3 - 21.0 * f64::from(i + 1)), 7),
                        (0, 7),
                        (0, 7),
                        (0, 7),
                        (0, 7),
                        (r.peak_power, 7),
                    ];
                    if data_set == DataSet::YearlyLog {
                        tokens.push((date(end), 7));
                    }
                    tokens.extend([(r.flow, 7), (0, 7), (0, 7), (0, 7)]);
                    push(&tokens);
                }
            }
            _ => {}
        }
        out
    }

    fn readout(&self, r: &Registers, snap: &Snapshot) -> Result<Vec<u8>, kamstrup_mc66c::Error> {
        let s = self.scaling();
        let dec = |raw: i64, exponent: i16| {
            Decimal::new(i128::from(raw), exponent).map_err(|_| kamstrup_mc66c::Error::ValueRange {
                name: "readout",
                value: raw,
                reason: "exponent out of range",
            })
        };
        Mc66cReadout {
            customer_no: Mc66cModel::CUSTOMER_NO,
            energy: dec(r.energy, s.energy)?,
            energy_unit: s.energy_unit,
            volume: dec(r.volume, s.volume)?,
            hours: u32::try_from(snap.hours % 10_000_000).unwrap_or(0),
        }
        .emit(true)
    }
}

/// The `/#1`-style raw registers at one moment, and the conversion of past counter values.
struct Registers {
    scaling: Scaling,
    energy: i64,
    volume: i64,
    hours: i64,
    t1: i64,
    t2: i64,
    power: i64,
    flow: i64,
    peak_power: i64,
    peak_power_year: i64,
}

/// A value in a register's unit as the register's integer (before rounding).
fn to_raw(value: f64, exponent: i16) -> f64 {
    value * 10f64.powi(-i32::from(exponent))
}

impl Registers {
    /// The energy register for a counter state in kWh (truncated, as a meter's counter is).
    fn energy_at(&self, kwh: f64) -> i64 {
        let v = match self.scaling.energy_unit {
            EnergyUnit::KWh => kwh,
            EnergyUnit::MWh => kwh / 1000.0,
            EnergyUnit::GJ => kwh * 0.0036,
            // 1 kWh = 3.6 MJ; 1 Mcal = 4.1868 MJ.
            EnergyUnit::Gcal => kwh * 0.0036 / 4.1868,
        };
        (to_raw(v, self.scaling.energy).floor() as i64).rem_euclid(FIELD_LIMIT)
    }

    /// The volume register for a counter state in m³.
    fn volume_at(&self, m3: f64) -> i64 {
        (to_raw(m3, self.scaling.volume).floor() as i64).rem_euclid(FIELD_LIMIT)
    }

    /// A power register for a power in kW.
    fn power_at(&self, kw: f64) -> i64 {
        let v = match self.scaling.power_unit {
            PowerUnit::KW => kw,
            PowerUnit::MW => kw / 1000.0,
        };
        (to_raw(v, self.scaling.power).round() as i64).clamp(-999_999, FIELD_LIMIT - 1)
    }
}

/// An impossible-by-construction value the formatter still has to name.
fn invalid(name: &'static str) -> kamstrup_mc66c::Error {
    kamstrup_mc66c::Error::ValueRange {
        name,
        value: 0,
        reason: "not representable",
    }
}

fn meter_date(d: NaiveDate) -> Option<MeterDate> {
    MeterDate::new(
        u16::try_from(d.year()).unwrap_or(2000),
        u8::try_from(d.month()).unwrap_or(1),
        u8::try_from(d.day()).unwrap_or(1),
    )
}

/// The last day of the month `months_back` months before `today`'s month.
fn month_end(today: NaiveDate, months_back: u32) -> NaiveDate {
    let first_of_this = today.with_day(1).unwrap_or(today);
    let mut d = first_of_this;
    for _ in 0..months_back.saturating_sub(1) {
        d = (d - chrono::Duration::days(1)).with_day(1).unwrap_or(d);
    }
    d - chrono::Duration::days(1)
}

/// The day before the most recent 1 June: the billing values are frozen at the target date.
fn last_target_day(today: NaiveDate) -> NaiveDate {
    let this_year = NaiveDate::from_ymd_opt(today.year(), 6, 1).unwrap_or(today);
    let target = if today >= this_year {
        this_year
    } else {
        NaiveDate::from_ymd_opt(today.year() - 1, 6, 1).unwrap_or(today)
    };
    target - chrono::Duration::days(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kamstrup_mc66c::{Readout, Reply};

    fn now() -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 1, 5)
            .and_then(|d| d.and_hms_opt(9, 15, 0))
            .unwrap()
    }

    fn model(program: &str) -> Mc66cModel {
        Mc66cModel::new(program.parse().unwrap())
    }

    #[test]
    fn every_data_set_parses_with_the_strict_parsers() {
        let m = model("4-2-119");
        let snap = m.installation().at(1234.0);
        for d in DataSet::ALL {
            let bytes = m.respond(Request::Data(d), &snap, now()).unwrap();
            let reply = Reply::parse(d, &bytes).unwrap_or_else(|e| panic!("{d}: {e}"));
            if let Some(p) = reply.program() {
                assert_eq!(p, m.program);
            }
        }
        let frame = m.respond(Request::Readout, &snap, now()).unwrap();
        let readout = Readout::parse(&frame).unwrap();
        assert_eq!(readout.energy().unwrap().to_string(), {
            let Reply::Standard1(d) = Reply::parse(
                DataSet::Standard1,
                &m.respond(Request::Data(DataSet::Standard1), &snap, now())
                    .unwrap(),
            )
            .unwrap() else {
                panic!()
            };
            d.values(&m.scaling()).unwrap()[0].to_string()
        });
    }

    #[test]
    fn standard1_follows_the_program() {
        let snap = model("4-2-119").installation().at(0.0);
        let gj = model("4-2-119")
            .respond(Request::Data(DataSet::Standard1), &snap, now())
            .unwrap();
        let mwh = model("4-4-119")
            .respond(Request::Data(DataSet::Standard1), &snap, now())
            .unwrap();
        let gj = StandardData1::parse(&gj).unwrap();
        let mwh = StandardData1::parse(&mwh).unwrap();
        // 125 431 kWh = 451.55 GJ (2 decimals) = 125.431 MWh (3 decimals).
        assert_eq!(gj.energy, 45_155);
        assert_eq!(mwh.energy, 125_431);
        assert_eq!(gj.volume, 321_055);
        assert_eq!(gj.dt, gj.t1 - gj.t2);
        assert_eq!(gj.flow, mwh.flow);
    }

    #[test]
    fn dates_are_calendar_safe() {
        let d = NaiveDate::from_ymd_opt(2026, 3, 31).unwrap();
        assert_eq!(
            month_end(d, 1),
            NaiveDate::from_ymd_opt(2026, 2, 28).unwrap()
        );
        assert_eq!(
            month_end(d, 2),
            NaiveDate::from_ymd_opt(2026, 1, 31).unwrap()
        );
        assert_eq!(
            last_target_day(d),
            NaiveDate::from_ymd_opt(2025, 5, 31).unwrap()
        );
        let june = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
        assert_eq!(
            last_target_day(june),
            NaiveDate::from_ymd_opt(2026, 5, 31).unwrap()
        );
    }
}
