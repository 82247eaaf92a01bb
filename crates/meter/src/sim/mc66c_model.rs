//! The simulated MULTICAL 66C: every "/#n" data set, its loggers and the EN 61107 readout,
//! formatted by the protocol crate from circuit physics that is a pure function of UTC time.

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use kamstrup_decimal::Decimal;
use kamstrup_mc66c::{
    Config, CurrentCounts, DataSet, EnergyUnit, FlowUnit, InfoCode, InfoEvent, Instantaneous,
    Logger, LoggerRecord, Mc66cReadout, MeterDate, MeterTime, MonthDay, MonthlyData, MonthlyRecord,
    PowerUnit, ProgramNumber, ProgrammingData, ProgrammingParts, Record, Request, Resolution,
    Scaling, StandardData1, StandardData2, TargetData, VerificationData,
};

use super::physics::{Installation, Snapshot};

/// Largest value of a 7-character field; counters roll over past it, as on the meter.
const FIELD_LIMIT: i64 = 10_000_000;

/// [`Mc66cModel::commissioned`] as Unix seconds: 2014-02-05 08:00:00 UTC.
const COMMISSIONED_UNIX: i64 = 1_391_587_200;

/// T3 as a real 66C reports it without a T3 sensor: 218.75 °C.
const NO_T3: i64 = 21_875;

/// Logger depths, in records (TD via mc66c.md §5: `/#5` 32 lines, `/#6` 60, `/#7` 960, `/#8`
/// 36, `/#9` 15). The line counts are the TD's; that each line is one period (day, hour, month,
/// year) and that the newest comes first, as in `/#5`, is our reading — no complete real
/// logger reply has been seen.
pub mod depth {
    /// `/#5` monthly data.
    pub const MONTHLY_DATA: usize = 32;
    /// `/#6` daily logger.
    pub const DAILY: usize = 60;
    /// `/#7` hourly logger.
    pub const HOURLY: usize = 960;
    /// `/#8` monthly logger.
    pub const MONTHLY: usize = 36;
    /// `/#9` yearly logger.
    pub const YEARLY: usize = 15;
}

/// The simulated info logger (`/#J`): (info code, Unix seconds). Supply restored at
/// commissioning; T1 out of range for an hour some winters later (as KenanV's meter logged).
const INFO_EVENTS: [(u32, i64); 4] = [
    (1, COMMISSIONED_UNIX),
    (0, COMMISSIONED_UNIX + 3_600),
    (8, 1_611_216_000),
    (0, 1_611_219_600),
];

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
            ..r
        }
    }

    /// The moment the simulated meter was commissioned: its counters hold the
    /// [`Mc66cModel::installation`] start values then, and every register and logger record is
    /// a pure function of the time since (2014-02-05 08:00 UTC, when KenanV's real 66C logged
    /// its supply-restored event).
    pub fn commissioned() -> DateTime<Utc> {
        DateTime::from_timestamp(COMMISSIONED_UNIX, 0).unwrap_or_default()
    }

    /// The heating circuit at absolute time `t` (the same in every process).
    pub fn snapshot_at(&self, t: DateTime<Utc>) -> Snapshot {
        let since = (t - Mc66cModel::commissioned()).num_milliseconds() as f64 / 1000.0;
        self.installation().at(since)
    }

    /// The reply bytes to `request` at absolute time `t`, as the meter would send them: the
    /// registers, the loggers and the meter's clock (which runs on UTC) all follow from `t`.
    pub fn respond_at(
        &self,
        request: Request,
        t: DateTime<Utc>,
    ) -> Result<Vec<u8>, kamstrup_mc66c::Error> {
        self.respond(request, &self.snapshot_at(t), t)
    }

    /// The reply bytes to `request` for the circuit state `snap` at time `now` (the readout as
    /// one frame: the simulator splits off its identification line). Logger records and
    /// billing values come from the physics at their own times, before `now`.
    pub fn respond(
        &self,
        request: Request,
        snap: &Snapshot,
        now: DateTime<Utc>,
    ) -> Result<Vec<u8>, kamstrup_mc66c::Error> {
        let r = self.values(snap);
        let today = meter_date(now.date_naive());
        let customer_no = Mc66cModel::CUSTOMER_NO;
        // Display code 12, no tariff, no pulse inputs (as KenanV's meter).
        let config = Config::new(12, 0, 0, 0).ok_or_else(|| invalid("config"))?;
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
            DataSet::Standard2 => {
                StandardData2::new(customer_no, [0; 6], self.program, config, today)?.emit()
            }
            DataSet::Target => {
                // Frozen at the end of the day before the target date (06-01).
                let day = last_target_day(now.date_naive());
                let end = day_start(day + chrono::Duration::days(1));
                let frozen = self.registers_at(end);
                let year_start =
                    day_start(day - chrono::Duration::days(365)).max(Mc66cModel::commissioned());
                let (peak, _) = self.peaks(year_start, end);
                TargetData::new(
                    customer_no,
                    meter_date(day),
                    [frozen.energy, frozen.volume, 0, 0, 0, 0, r.power_at(peak.0)],
                )?
                .emit()
            }
            DataSet::Verification => VerificationData::from_raw([
                r.energy,
                (snap.energy_kwh * 5.1).floor() as i64 % FIELD_LIMIT,
                0,
                r.volume,
                0,
                490,
                0,
                0,
                0,
            ])?
            .emit(),
            DataSet::CurrentCounts => CurrentCounts::from_raw([
                r.energy,
                0,
                r.volume,
                0,
                r.mass_at(snap.volume_m3),
                0,
                0,
                0,
                0,
                0,
                // Volume-weighted temperature sums: m3tf / V1 and m3tr / V1 are mean temperatures.
                (snap.volume_m3 * 68.2).floor() as i64 % FIELD_LIMIT,
                (snap.volume_m3 * 35.1).floor() as i64 % FIELD_LIMIT,
            ])?
            .emit(),
            DataSet::Instantaneous => Instantaneous::from_raw([
                r.t1, // 218.75 °C: what a real 66C reports without a T3 sensor.
                NO_T3, r.t2, 0, 0, r.flow, 0, r.power,
            ])?
            .emit(),
            DataSet::Programming => ProgrammingData::new(ProgrammingParts {
                customer_no,
                program: self.program,
                ccc_v2: self.program.ccc,
                config,
                leak: (0, 0),
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
            })?
            .emit(),
            DataSet::Monthly => {
                let records = month_ends(now, depth::MONTHLY_DATA)
                    .into_iter()
                    .map(|(day, start, end)| {
                        let at_end = self.registers_at(end);
                        let (peak, _) = self.peaks(start, end);
                        MonthlyRecord {
                            date: meter_date(day),
                            energy: at_end.energy,
                            volume: at_end.volume,
                            ta2: 0,
                            ta3: 0,
                            in_a: 0,
                            in_b: 0,
                            peak_power: r.power_at(peak.0),
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
                let events: Vec<InfoEvent> = INFO_EVENTS
                    .iter()
                    .rev()
                    .filter_map(|&(info, unix)| {
                        let at = DateTime::from_timestamp(unix, 0)?;
                        (at <= now).then_some((info, at))
                    })
                    .map(|(info, at)| -> Result<InfoEvent, kamstrup_mc66c::Error> {
                        Ok(InfoEvent {
                            info: InfoCode(info),
                            date: meter_date(at.date_naive()),
                            clock: MeterTime::new(
                                u8::try_from(at.hour()).unwrap_or(0),
                                u8::try_from(at.minute()).unwrap_or(0),
                                0,
                            )
                            .ok_or_else(|| invalid("clock"))?,
                            energy: self.registers_at(at).energy,
                            extra: Vec::new(),
                        })
                    })
                    .collect::<Result<_, _>>()?;
                InfoEvent::emit_all(&events)
            }
            DataSet::DailyLog | DataSet::HourlyLog | DataSet::MonthlyLog | DataSet::YearlyLog => {
                self.logger(data_set, now)?.emit()
            }
        }
    }

    /// The `/#1`-style registers at absolute time `t`.
    fn registers_at(&self, t: DateTime<Utc>) -> Registers {
        self.values(&self.snapshot_at(t))
    }

    /// The highest power (kW) and flow (l/h) of the hourly samples in `[from, to)`, with the
    /// time of the power peak (the meter keeps peaks averaged over 60 min by default; the
    /// simulator samples on the hour).
    fn peaks(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> ((f64, DateTime<Utc>), i64) {
        let mut best = (0.0f64, from);
        let mut flow = 0i64;
        let mut t = from;
        while t < to {
            let s = self.snapshot_at(t);
            let kw = s.power_deci_kw as f64 / 10.0;
            if kw > best.0 {
                best = (kw, t);
            }
            flow = flow.max(s.flow_lh);
            t += chrono::Duration::hours(1);
        }
        (best, flow)
    }

    /// Mean T1 and T2 (0.01 °C) over `[from, to)`, sampled every 10 min as the meter does.
    fn mean_temperatures(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> (i64, i64) {
        let (mut t1, mut t2, mut n) = (0i64, 0i64, 0i64);
        let mut t = from;
        while t < to {
            let s = self.snapshot_at(t);
            t1 += s.t1_centi;
            t2 += s.t2_centi;
            n += 1;
            t += chrono::Duration::minutes(10);
        }
        let n = n.max(1);
        (t1 / n, t2 / n)
    }

    /// A logger (`/#6`–`/#9`) as the meter holds it at `now`: one record per completed period,
    /// newest first, as deep as [`depth`] says, none before commissioning.
    pub fn logger(
        &self,
        data_set: DataSet,
        now: DateTime<Utc>,
    ) -> Result<Logger, kamstrup_mc66c::Error> {
        let mut records = Vec::new();
        match data_set {
            DataSet::DailyLog | DataSet::HourlyLog => {
                let (step, count) = if data_set == DataSet::DailyLog {
                    (chrono::Duration::days(1), depth::DAILY)
                } else {
                    (chrono::Duration::hours(1), depth::HOURLY)
                };
                let mut end = if data_set == DataSet::DailyLog {
                    day_start(now.date_naive())
                } else {
                    hour_start(now)
                };
                for _ in 0..count {
                    let start = end - step;
                    if start < Mc66cModel::commissioned() {
                        break;
                    }
                    let (a, b) = (self.registers_at(start), self.registers_at(end));
                    let (a_snap, b_snap) = (self.snapshot_at(start), self.snapshot_at(end));
                    let (t1, t2) = self.mean_temperatures(start, end);
                    // Growth in the period; a 5-character column keeps the last 5 digits.
                    let five = |v: i64| v.rem_euclid(100_000);
                    records.push(LoggerRecord::from_raw(
                        data_set,
                        &[
                            MeterDate::to_raw(meter_date(start.date_naive())),
                            five(b.energy - a.energy),
                            five(b.mass_at(b_snap.volume_m3) - a.mass_at(a_snap.volume_m3)),
                            0,
                            0,
                            0,
                            0,
                            0,
                            five(t1),
                            NO_T3,
                            five(t2),
                            0,
                        ],
                    )?);
                    end = start;
                }
            }
            DataSet::MonthlyLog => {
                for (day, start, end) in month_ends(now, depth::MONTHLY) {
                    let at_end = self.registers_at(end);
                    let (peak, peak_flow) = self.peaks(start, end);
                    records.push(LoggerRecord::from_raw(
                        data_set,
                        &[
                            MeterDate::to_raw(meter_date(day)),
                            at_end.energy,
                            at_end.volume,
                            0,
                            0,
                            0,
                            0,
                            at_end.power_at(peak.0),
                            at_end.flow_at(peak_flow),
                            0,
                            0,
                            0,
                        ],
                    )?);
                }
            }
            DataSet::YearlyLog => {
                let mut day = last_target_day(now.date_naive());
                for _ in 0..depth::YEARLY {
                    let end = day_start(day + chrono::Duration::days(1));
                    if end <= Mc66cModel::commissioned() {
                        break;
                    }
                    let start = day_start(last_target_day(day) + chrono::Duration::days(1))
                        .max(Mc66cModel::commissioned());
                    let at_end = self.registers_at(end);
                    let (peak, peak_flow) = self.peaks(start, end);
                    records.push(LoggerRecord::from_raw(
                        data_set,
                        &[
                            MeterDate::to_raw(meter_date(day)),
                            at_end.energy,
                            at_end.volume,
                            0,
                            0,
                            0,
                            0,
                            at_end.power_at(peak.0),
                            MeterDate::to_raw(meter_date(peak.1.date_naive())),
                            at_end.flow_at(peak_flow),
                            0,
                            0,
                            0,
                        ],
                    )?);
                    day = last_target_day(day);
                }
            }
            _ => {}
        }
        Logger::new(data_set, records)
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

    /// The mass register for a volume in m³ (water is a little lighter than 1 t/m³ at heating
    /// temperatures; the mass follows the volume's decimals).
    fn mass_at(&self, m3: f64) -> i64 {
        (to_raw(m3 * 0.9925, self.scaling.volume).floor() as i64).rem_euclid(FIELD_LIMIT)
    }

    /// A flow register for a flow in l/h.
    fn flow_at(&self, lh: i64) -> i64 {
        let v = match self.scaling.flow_unit {
            FlowUnit::LitrePerHour => lh as f64,
            FlowUnit::CubicMetrePerHour => lh as f64 / 1000.0,
        };
        (to_raw(v, self.scaling.flow).round() as i64).clamp(0, FIELD_LIMIT - 1)
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

/// Midnight (UTC) at the start of `day`.
fn day_start(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

/// The start of the hour `t` is in.
fn hour_start(t: DateTime<Utc>) -> DateTime<Utc> {
    let secs = t.timestamp().div_euclid(3600) * 3600;
    DateTime::from_timestamp(secs, 0).unwrap_or(t)
}

/// The last `count` completed months before `now`, newest first, none before commissioning:
/// (last day, start, end) with `end` the next month's first midnight.
fn month_ends(now: DateTime<Utc>, count: usize) -> Vec<(NaiveDate, DateTime<Utc>, DateTime<Utc>)> {
    let mut out = Vec::with_capacity(count);
    for back in 1..=count {
        let last = month_end(now.date_naive(), u32::try_from(back).unwrap_or(u32::MAX));
        let end = day_start(last + chrono::Duration::days(1));
        let start = day_start(last.with_day(1).unwrap_or(last));
        if end <= Mc66cModel::commissioned() {
            break;
        }
        out.push((last, start.max(Mc66cModel::commissioned()), end));
    }
    out
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

    fn now() -> DateTime<Utc> {
        "2026-01-05T09:15:00Z".parse().unwrap()
    }

    fn model(program: &str) -> Mc66cModel {
        Mc66cModel::new(program.parse().unwrap())
    }

    fn logger(m: &Mc66cModel, d: DataSet, at: DateTime<Utc>) -> Logger {
        let bytes = m.respond_at(Request::Data(d), at).unwrap();
        match Reply::parse(d, &bytes).unwrap() {
            Reply::Logger(l) => l,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_data_set_parses_with_the_strict_parsers() {
        let m = model("4-2-119");
        for d in DataSet::ALL {
            let bytes = m.respond_at(Request::Data(d), now()).unwrap();
            let reply = Reply::parse(d, &bytes).unwrap_or_else(|e| panic!("{d}: {e}"));
            if let Some(p) = reply.program() {
                assert_eq!(p, m.program);
            }
        }
        let frame = m.respond_at(Request::Readout, now()).unwrap();
        let readout = Readout::parse(&frame).unwrap();
        assert_eq!(readout.energy().unwrap().to_string(), {
            let Reply::Standard1(d) = Reply::parse(
                DataSet::Standard1,
                &m.respond_at(Request::Data(DataSet::Standard1), now())
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
        assert_eq!(gj.energy(), 45_155);
        assert_eq!(mwh.energy(), 125_431);
        assert_eq!(gj.volume(), 321_055);
        assert_eq!(gj.dt(), gj.t1() - gj.t2());
        assert_eq!(gj.flow(), mwh.flow());
    }

    #[test]
    fn loggers_have_the_documented_depths_newest_first() {
        let m = model("4-4-119");
        for (d, depth) in [
            (DataSet::DailyLog, depth::DAILY),
            (DataSet::HourlyLog, depth::HOURLY),
            (DataSet::MonthlyLog, depth::MONTHLY),
            // Commissioned in February 2014: 12 target days (2014-05-31 … 2025-05-31) so far.
            (DataSet::YearlyLog, 12.min(depth::YEARLY)),
        ] {
            let log = logger(&m, d, now());
            assert_eq!(log.records().len(), depth, "{d}");
            let dates: Vec<_> = log.records().iter().map(|r| r.date().unwrap()).collect();
            assert!(dates.windows(2).all(|w| w[0] >= w[1]), "{d}: newest first");
        }
        // Nothing is logged before commissioning (08:00): 3 days later, 2 whole days are logged.
        let young = Mc66cModel::commissioned() + chrono::Duration::days(3);
        assert_eq!(logger(&m, DataSet::DailyLog, young).records().len(), 2);
        assert!(m
            .logger(DataSet::YearlyLog, young)
            .unwrap()
            .records()
            .is_empty());
    }

    #[test]
    fn what_the_meter_logged_at_03_two_days_ago() {
        // Any process, asked at any later time, sees the same record for 03:00–04:00.
        let m = model("4-4-119");
        let hour: DateTime<Utc> = "2026-01-03T03:00:00Z".parse().unwrap();
        let record_at = |asked: DateTime<Utc>| {
            let log = logger(&m, DataSet::HourlyLog, asked);
            let back = usize::try_from((hour_start(asked) - hour).num_hours() - 1).unwrap();
            log.records()[back].clone()
        };
        let a = record_at(now());
        let b = record_at(now() + chrono::Duration::hours(5) + chrono::Duration::minutes(7));
        assert_eq!(a, b);
        assert_eq!(a.date(), MeterDate::new(2026, 1, 3));
        // The energy logged is what /#1 showed at 04:00 minus what it showed at 03:00.
        let e1 = |t: DateTime<Utc>| {
            let bytes = m.respond_at(Request::Data(DataSet::Standard1), t).unwrap();
            StandardData1::parse(&bytes).unwrap().energy()
        };
        let growth = e1(hour + chrono::Duration::hours(1)) - e1(hour);
        assert_eq!(a.get("energy"), Some(growth));
        assert!(growth > 0);
        // Mean temperatures of the hour lie between its extremes.
        let t1 = a.get("t1_avg").unwrap();
        assert!((6000..7500).contains(&t1), "{t1}");
    }

    #[test]
    fn daily_growth_is_the_sum_of_its_hours_and_months_meet_the_counter() {
        let m = model("4-4-119");
        let daily = logger(&m, DataSet::DailyLog, now());
        let hourly = logger(&m, DataSet::HourlyLog, now());
        let yesterday = &daily.records()[0];
        assert_eq!(yesterday.date(), MeterDate::new(2026, 1, 4));
        let hours: Vec<_> = hourly
            .records()
            .iter()
            .filter(|r| r.date() == yesterday.date())
            .collect();
        assert_eq!(hours.len(), 24);
        let sum: i64 = hours.iter().map(|r| r.get("energy").unwrap()).sum();
        assert_eq!(Some(sum), yesterday.get("energy"));
        let mass: i64 = hours.iter().map(|r| r.get("mass1").unwrap()).sum();
        assert_eq!(Some(mass), yesterday.get("mass1"));
        // The monthly logger's December counter is /#1's at 1 January 00:00.
        let monthly = logger(&m, DataSet::MonthlyLog, now());
        let december = &monthly.records()[0];
        assert_eq!(december.date(), MeterDate::new(2025, 12, 31));
        let bytes = m
            .respond_at(
                Request::Data(DataSet::Standard1),
                "2026-01-01T00:00:00Z".parse().unwrap(),
            )
            .unwrap();
        let at_midnight = StandardData1::parse(&bytes).unwrap();
        assert_eq!(december.get("energy"), Some(at_midnight.energy()));
        assert_eq!(december.get("volume1"), Some(at_midnight.volume()));
        // The yearly logger closes at the day before the target date, like /#3.
        let yearly = logger(&m, DataSet::YearlyLog, now());
        assert_eq!(yearly.records()[0].date(), MeterDate::new(2025, 5, 31));
        let Reply::Target(target) = Reply::parse(
            DataSet::Target,
            &m.respond_at(Request::Data(DataSet::Target), now()).unwrap(),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(yearly.records()[0].get("energy"), Some(target.energy()));
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
