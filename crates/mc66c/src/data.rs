//! The single-line "/#n" replies (/#1, /#2, /#3, /#4, /#B, /#C, /#D): typed parse and exact
//! re-format (for the simulator). Layouts follow TD p.34–36 as summarised in mc66c.md §3, §5.

#[cfg(feature = "alloc")]
use alloc::vec::Vec;

use crate::error::Error;
use crate::info::InfoCode;
use crate::line::{digits, parse_fixed, s7, Spec};
use crate::request::DataSet;
use crate::scaling::{ProgramNumber, Scaling, Value};

fn value_error(spec: &Spec, position: usize, value: i64, reason: &'static str) -> Error {
    Error::FieldValue {
        line: 0,
        position,
        name: spec.name,
        value,
        reason,
    }
}

fn names<const N: usize>(specs: &[Spec; N]) -> [&'static str; N] {
    (*specs).map(|s| s.name)
}

/// Every raw value must fit its field (a public `from_raw` may get anything).
fn check_all(raw: &[i64], specs: &[Spec]) -> Result<(), Error> {
    for (v, s) in raw.iter().zip(specs.iter()) {
        crate::line::check_fits(*v, s)?;
    }
    Ok(())
}

fn pairs<const N: usize>(specs: &[Spec; N], raw: [i64; N]) -> [(&'static str, i64); N] {
    let mut out = [("", 0i64); N];
    for ((o, s), r) in out.iter_mut().zip(specs.iter()).zip(raw) {
        *o = (s.name, r);
    }
    out
}

fn non_negative(specs: &[Spec], raw: &[i64], positions: &[usize]) -> Result<(), Error> {
    for &p in positions {
        if let (Some(v), Some(s)) = (raw.get(p - 1), specs.get(p - 1)) {
            if *v < 0 {
                return Err(value_error(s, p, *v, "negative, but this counter never is"));
            }
        }
    }
    Ok(())
}

#[cfg(feature = "alloc")]
fn emit<const N: usize>(
    raw: [i64; N],
    specs: &[Spec; N],
    extra_spaces: usize,
) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(N * 8 + 8);
    crate::line::emit_line(&mut out, &raw, specs, extra_spaces)?;
    Ok(out)
}

/// A date as the meter writes it, `0YYMMDD`. Two-digit years are read as 1990–2089.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MeterDate {
    year: u16,
    month: u8,
    day: u8,
}

impl MeterDate {
    /// A date; `None` unless the year is 1990–2089, the month 1–12 and the day 1–31.
    pub const fn new(year: u16, month: u8, day: u8) -> Option<MeterDate> {
        if year < 1990 || year > 2089 || month < 1 || month > 12 || day < 1 || day > 31 {
            return None;
        }
        Some(MeterDate { year, month, day })
    }

    /// Full year.
    pub const fn year(&self) -> u16 {
        self.year
    }

    /// Month, 1–12.
    pub const fn month(&self) -> u8 {
        self.month
    }

    /// Day of month, 1–31.
    pub const fn day(&self) -> u8 {
        self.day
    }

    /// `0YYMMDD` as an integer; `0` stands for "no date" (empty log entries).
    pub(crate) fn from_field(
        raw: i64,
        spec: &Spec,
        position: usize,
    ) -> Result<Option<MeterDate>, Error> {
        if raw == 0 {
            return Ok(None);
        }
        let bad = |reason| value_error(spec, position, raw, reason);
        if !(0..1_000_000).contains(&raw) {
            return Err(bad("a date is written 0YYMMDD"));
        }
        let yy = (raw / 10_000) as u16;
        let month = ((raw / 100) % 100) as u8;
        let day = (raw % 100) as u8;
        let year = if yy < 90 { 2000 + yy } else { 1900 + yy };
        MeterDate::new(year, month, day)
            .map(Some)
            .ok_or_else(|| bad("month or day out of range"))
    }

    pub(crate) fn to_field(date: Option<MeterDate>) -> i64 {
        date.map_or(0, |d| {
            i64::from(d.year % 100) * 10_000 + i64::from(d.month) * 100 + i64::from(d.day)
        })
    }
}

impl core::fmt::Display for MeterDate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// A clock time as the meter writes it, `0hhmmss`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MeterTime {
    hour: u8,
    minute: u8,
    second: u8,
}

impl MeterTime {
    /// A time; `None` unless 00:00:00–23:59:59.
    pub const fn new(hour: u8, minute: u8, second: u8) -> Option<MeterTime> {
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        Some(MeterTime {
            hour,
            minute,
            second,
        })
    }

    /// Hour.
    pub const fn hour(&self) -> u8 {
        self.hour
    }

    /// Minute.
    pub const fn minute(&self) -> u8 {
        self.minute
    }

    /// Second.
    pub const fn second(&self) -> u8 {
        self.second
    }

    pub(crate) fn from_field(raw: i64, spec: &Spec, position: usize) -> Result<MeterTime, Error> {
        if !(0..1_000_000).contains(&raw) {
            return Err(value_error(
                spec,
                position,
                raw,
                "a time is written 0hhmmss",
            ));
        }
        MeterTime::new(
            (raw / 10_000) as u8,
            ((raw / 100) % 100) as u8,
            (raw % 100) as u8,
        )
        .ok_or_else(|| value_error(spec, position, raw, "hour, minute or second out of range"))
    }

    pub(crate) fn to_field(self) -> i64 {
        i64::from(self.hour) * 10_000 + i64::from(self.minute) * 100 + i64::from(self.second)
    }
}

impl core::fmt::Display for MeterTime {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:02}:{:02}:{:02}", self.hour, self.minute, self.second)
    }
}

/// A yearly target (billing) day, written `000MMDD` in `/#D`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MonthDay {
    month: u8,
    day: u8,
}

impl MonthDay {
    /// A month and day; `None` unless month 1–12 and day 1–31.
    pub const fn new(month: u8, day: u8) -> Option<MonthDay> {
        if month < 1 || month > 12 || day < 1 || day > 31 {
            return None;
        }
        Some(MonthDay { month, day })
    }

    /// Month.
    pub const fn month(&self) -> u8 {
        self.month
    }

    /// Day.
    pub const fn day(&self) -> u8 {
        self.day
    }

    pub(crate) fn from_field(
        raw: i64,
        spec: &Spec,
        position: usize,
    ) -> Result<Option<MonthDay>, Error> {
        if raw == 0 {
            return Ok(None);
        }
        if !(0..10_000).contains(&raw) {
            return Err(value_error(
                spec,
                position,
                raw,
                "a target date is written 000MMDD",
            ));
        }
        MonthDay::new((raw / 100) as u8, (raw % 100) as u8)
            .map(Some)
            .ok_or_else(|| value_error(spec, position, raw, "month or day out of range"))
    }

    pub(crate) fn to_field(md: Option<MonthDay>) -> i64 {
        md.map_or(0, |m| i64::from(m.month) * 100 + i64::from(m.day))
    }
}

impl core::fmt::Display for MonthDay {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:02}-{:02}", self.month, self.day)
    }
}

/// Configuration digits DD-E-FF-GG (TD p.22–29): DD display code, E tariff type, FF/GG pulse
/// input A/B configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    dd: u8,
    e: u8,
    ff: u8,
    gg: u8,
}

impl Config {
    /// Configuration digits; `None` unless DD, FF, GG ≤ 99 and E ≤ 9.
    pub const fn new(dd: u8, e: u8, ff: u8, gg: u8) -> Option<Config> {
        if dd > 99 || e > 9 || ff > 99 || gg > 99 {
            return None;
        }
        Some(Config { dd, e, ff, gg })
    }

    /// DD: display code.
    pub const fn dd(&self) -> u8 {
        self.dd
    }

    /// E: tariff type (0 = none; TA2/TL2/TA3/TL3 only meaningful when not 0).
    pub const fn e(&self) -> u8 {
        self.e
    }

    /// FF: pulse input A configuration.
    pub const fn ff(&self) -> u8 {
        self.ff
    }

    /// GG: pulse input B configuration.
    pub const fn gg(&self) -> u8 {
        self.gg
    }

    /// From the 7-digit value DDEFFGG (always < 10^7, checked by the field width).
    fn from_ddeffgg(raw: i64) -> Config {
        Config {
            dd: ((raw / 100_000) % 100) as u8,
            e: ((raw / 10_000) % 10) as u8,
            ff: ((raw / 100) % 100) as u8,
            gg: (raw % 100) as u8,
        }
    }

    fn ddeffgg(&self) -> i64 {
        i64::from(self.dd) * 100_000
            + i64::from(self.e) * 10_000
            + i64::from(self.ff) * 100
            + i64::from(self.gg)
    }
}

#[cfg(feature = "alloc")]
fn check_program(program: &ProgramNumber) -> Result<(), Error> {
    ProgramNumber::new(program.a, program.b, program.ccc).map(|_| ())
}

// ---------------------------------------------------------------------------------------------

/// `/#1` standard data 1 (raw register integers; see [`StandardData1::values`] for scaling).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct StandardData1 {
    /// Accumulated energy E1-E2 (unit from program digit B).
    pub energy: i64,
    /// Accumulated volume V1.
    pub volume: i64,
    /// Operating hours.
    pub hours: i64,
    /// Flow temperature, 0.01 °C.
    pub t1: i64,
    /// Return temperature, 0.01 °C.
    pub t2: i64,
    /// T1 − T2, 0.01 K (checked exactly on parse).
    pub dt: i64,
    /// Actual power.
    pub power: i64,
    /// Actual flow.
    pub flow: i64,
    /// Current-period peak power.
    pub peak_power: i64,
    /// Info code (bit sum).
    pub info: i64,
}

const STANDARD1: [Spec; 10] = [
    s7("energy"),
    s7("volume"),
    s7("hours"),
    s7("t1"),
    s7("t2"),
    s7("dt"),
    s7("power"),
    s7("flow"),
    s7("peak_power"),
    s7("info"),
];

impl StandardData1 {
    /// Field names in wire order.
    pub fn field_names() -> [&'static str; 10] {
        names(&STANDARD1)
    }

    /// Parses a `/#1` reply: exactly 10 fields of 7 characters (`\d{7}` or `-\d{6}`) separated
    /// by spaces, ending in CR or CR LF. Rejects (never salvages) anything else, a negative
    /// counter (energy, volume, hours, info) and T1 − T2 ≠ ΔT.
    pub fn parse(reply: &[u8]) -> Result<Self, Error> {
        Self::from_raw(parse_fixed(reply, DataSet::Standard1, &STANDARD1)?)
    }

    /// Validates raw values (the checks of [`StandardData1::parse`] after tokenising).
    pub fn from_raw(raw: [i64; 10]) -> Result<Self, Error> {
        check_all(&raw, &STANDARD1)?;
        non_negative(&STANDARD1, &raw, &[1, 2, 3, 10])?;
        let [energy, volume, hours, t1, t2, dt, power, flow, peak_power, info] = raw;
        if t1.checked_sub(t2) != Some(dt) {
            return Err(Error::DtMismatch { t1, t2, dt });
        }
        Ok(StandardData1 {
            energy,
            volume,
            hours,
            t1,
            t2,
            dt,
            power,
            flow,
            peak_power,
            info,
        })
    }

    /// Raw values in wire order.
    pub fn to_raw(&self) -> [i64; 10] {
        [
            self.energy,
            self.volume,
            self.hours,
            self.t1,
            self.t2,
            self.dt,
            self.power,
            self.flow,
            self.peak_power,
            self.info,
        ]
    }

    /// `(name, raw value)` pairs in wire order.
    pub fn raw_fields(&self) -> [(&'static str, i64); 10] {
        pairs(&STANDARD1, self.to_raw())
    }

    /// The info code.
    pub fn info_code(&self) -> InfoCode {
        InfoCode(u32::try_from(self.info).unwrap_or(0))
    }

    /// Scaled values: energy, volume, hours (h), t1, t2 (°C), dt (K), power, flow, peak_power,
    /// info (no unit).
    pub fn values(&self, scaling: &Scaling) -> Result<[Value; 10], Error> {
        Ok([
            scaling.energy("energy", self.energy)?,
            scaling.volume("volume", self.volume)?,
            Scaling::hours("hours", self.hours)?,
            Scaling::temperature("t1", self.t1)?,
            Scaling::temperature("t2", self.t2)?,
            Scaling::temperature_difference("dt", self.dt)?,
            scaling.power("power", self.power)?,
            scaling.flow("flow", self.flow)?,
            scaling.power("peak_power", self.peak_power)?,
            Scaling::plain("info", self.info)?,
        ])
    }

    /// The exact reply a meter sends (81 bytes: each field and one space, then CR). Fails if a
    /// value does not fit its field or breaks the checks of [`StandardData1::parse`].
    #[cfg(feature = "alloc")]
    pub fn emit(&self) -> Result<Vec<u8>, Error> {
        let raw = self.to_raw();
        Self::from_raw(raw)?;
        emit(raw, &STANDARD1, 0)
    }
}

// ---------------------------------------------------------------------------------------------

/// `/#2` standard data 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StandardData2 {
    /// Customer number (11 digits).
    pub customer_no: u64,
    /// Tariff register 2.
    pub ta2: i64,
    /// Tariff limit 2.
    pub tl2: i64,
    /// Tariff register 3.
    pub ta3: i64,
    /// Tariff limit 3.
    pub tl3: i64,
    /// Pulse input A register.
    pub in_a: i64,
    /// Pulse input B register.
    pub in_b: i64,
    /// Program number (field `00ABCCC`).
    pub program: ProgramNumber,
    /// Configuration (field `DDEFFGG`).
    pub config: Config,
    /// Meter date.
    pub date: Option<MeterDate>,
}

const STANDARD2: [Spec; 10] = [
    digits("customer_no", 11),
    s7("ta2"),
    s7("tl2"),
    s7("ta3"),
    s7("tl3"),
    s7("in_a"),
    s7("in_b"),
    digits("abccc", 7),
    digits("ddeffgg", 7),
    digits("date", 7),
];

impl StandardData2 {
    /// Field names in wire order.
    pub fn field_names() -> [&'static str; 10] {
        names(&STANDARD2)
    }

    /// Parses a `/#2` reply (11-digit customer number, then 9 fields of 7).
    pub fn parse(reply: &[u8]) -> Result<Self, Error> {
        Self::from_raw(parse_fixed(reply, DataSet::Standard2, &STANDARD2)?)
    }

    /// Validates raw values.
    pub fn from_raw(raw: [i64; 10]) -> Result<Self, Error> {
        check_all(&raw, &STANDARD2)?;
        let [customer, ta2, tl2, ta3, tl3, in_a, in_b, abccc, ddeffgg, date] = raw;
        if !(0..100_000).contains(&abccc) {
            return Err(value_error(
                &STANDARD2[7],
                8,
                abccc,
                "the program field is 00ABCCC",
            ));
        }
        Ok(StandardData2 {
            customer_no: customer.unsigned_abs(),
            ta2,
            tl2,
            ta3,
            tl3,
            in_a,
            in_b,
            program: program_from_abccc(abccc),
            config: Config::from_ddeffgg(ddeffgg),
            date: MeterDate::from_field(date, &STANDARD2[9], 10)?,
        })
    }

    /// Raw values in wire order.
    pub fn to_raw(&self) -> [i64; 10] {
        [
            i64::try_from(self.customer_no).unwrap_or(i64::MAX),
            self.ta2,
            self.tl2,
            self.ta3,
            self.tl3,
            self.in_a,
            self.in_b,
            self.program.abccc(),
            self.config.ddeffgg(),
            MeterDate::to_field(self.date),
        ]
    }

    /// `(name, raw value)` pairs in wire order.
    pub fn raw_fields(&self) -> [(&'static str, i64); 10] {
        pairs(&STANDARD2, self.to_raw())
    }

    /// The exact reply bytes (85 bytes).
    #[cfg(feature = "alloc")]
    pub fn emit(&self) -> Result<Vec<u8>, Error> {
        check_program(&self.program)?;
        Self::from_raw(self.to_raw())?;
        emit(self.to_raw(), &STANDARD2, 0)
    }
}

/// `ABCCC` (< 100000) as a program number.
fn program_from_abccc(v: i64) -> ProgramNumber {
    ProgramNumber {
        a: ((v / 10_000) % 10) as u8,
        b: ((v / 1000) % 10) as u8,
        ccc: (v % 1000) as u16,
    }
}

// ---------------------------------------------------------------------------------------------

/// `/#3` target (billing-date) data: the registers frozen at the last target date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TargetData {
    /// Customer number.
    pub customer_no: u64,
    /// The target date the values were frozen at.
    pub date: Option<MeterDate>,
    /// Energy at the target date.
    pub energy: i64,
    /// Volume V1 at the target date.
    pub volume: i64,
    /// Tariff register 2.
    pub ta2: i64,
    /// Tariff register 3.
    pub ta3: i64,
    /// Pulse input A.
    pub in_a: i64,
    /// Pulse input B.
    pub in_b: i64,
    /// Peak power of the year.
    pub peak_power_year: i64,
}

const TARGET: [Spec; 9] = [
    digits("customer_no", 11),
    digits("target_date", 7),
    s7("energy"),
    s7("volume"),
    s7("ta2"),
    s7("ta3"),
    s7("in_a"),
    s7("in_b"),
    s7("peak_power_year"),
];

impl TargetData {
    /// Field names in wire order.
    pub fn field_names() -> [&'static str; 9] {
        names(&TARGET)
    }

    /// Parses a `/#3` reply.
    pub fn parse(reply: &[u8]) -> Result<Self, Error> {
        Self::from_raw(parse_fixed(reply, DataSet::Target, &TARGET)?)
    }

    /// Validates raw values.
    pub fn from_raw(raw: [i64; 9]) -> Result<Self, Error> {
        check_all(&raw, &TARGET)?;
        non_negative(&TARGET, &raw, &[3, 4])?;
        let [customer, date, energy, volume, ta2, ta3, in_a, in_b, peak] = raw;
        Ok(TargetData {
            customer_no: customer.unsigned_abs(),
            date: MeterDate::from_field(date, &TARGET[1], 2)?,
            energy,
            volume,
            ta2,
            ta3,
            in_a,
            in_b,
            peak_power_year: peak,
        })
    }

    /// Raw values in wire order.
    pub fn to_raw(&self) -> [i64; 9] {
        [
            i64::try_from(self.customer_no).unwrap_or(i64::MAX),
            MeterDate::to_field(self.date),
            self.energy,
            self.volume,
            self.ta2,
            self.ta3,
            self.in_a,
            self.in_b,
            self.peak_power_year,
        ]
    }

    /// `(name, raw value)` pairs in wire order.
    pub fn raw_fields(&self) -> [(&'static str, i64); 9] {
        pairs(&TARGET, self.to_raw())
    }

    /// Scaled energy, volume and peak_power_year.
    pub fn values(&self, scaling: &Scaling) -> Result<[Value; 3], Error> {
        Ok([
            scaling.energy("energy", self.energy)?,
            scaling.volume("volume", self.volume)?,
            scaling.power("peak_power_year", self.peak_power_year)?,
        ])
    }

    /// The exact reply bytes (77 bytes).
    #[cfg(feature = "alloc")]
    pub fn emit(&self) -> Result<Vec<u8>, Error> {
        Self::from_raw(self.to_raw())?;
        emit(self.to_raw(), &TARGET, 0)
    }
}

// ---------------------------------------------------------------------------------------------

/// `/#4` verification data, 66-CDE layout (the 66-B sends water remainders, Δt·k, tF, tR and
/// the program number instead; not parsed here). Units of the Qsum and pre-counter registers
/// are not documented: raw only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct VerificationData {
    /// Energy.
    pub energy: i64,
    /// Qsum1.
    pub qsum1: i64,
    /// Qsum2.
    pub qsum2: i64,
    /// Volume V1.
    pub volume1: i64,
    /// Volume V2.
    pub volume2: i64,
    /// Pre-counter 1.
    pub pre_counter1: i64,
    /// Pulse input A.
    pub in_a: i64,
    /// Pulse input B.
    pub in_b: i64,
    /// Pre-counter 2.
    pub pre_counter2: i64,
}

const VERIFICATION: [Spec; 9] = [
    s7("energy"),
    s7("qsum1"),
    s7("qsum2"),
    s7("volume1"),
    s7("volume2"),
    s7("pre_counter1"),
    s7("in_a"),
    s7("in_b"),
    s7("pre_counter2"),
];

impl VerificationData {
    /// Field names in wire order.
    pub fn field_names() -> [&'static str; 9] {
        names(&VERIFICATION)
    }

    /// Parses a `/#4` reply.
    pub fn parse(reply: &[u8]) -> Result<Self, Error> {
        Self::from_raw(parse_fixed(reply, DataSet::Verification, &VERIFICATION)?)
    }

    /// From raw values (each must fit its field).
    pub fn from_raw(raw: [i64; 9]) -> Result<Self, Error> {
        check_all(&raw, &VERIFICATION)?;
        let [energy, qsum1, qsum2, volume1, volume2, pre_counter1, in_a, in_b, pre_counter2] = raw;
        Ok(VerificationData {
            energy,
            qsum1,
            qsum2,
            volume1,
            volume2,
            pre_counter1,
            in_a,
            in_b,
            pre_counter2,
        })
    }

    /// Raw values in wire order.
    pub fn to_raw(&self) -> [i64; 9] {
        [
            self.energy,
            self.qsum1,
            self.qsum2,
            self.volume1,
            self.volume2,
            self.pre_counter1,
            self.in_a,
            self.in_b,
            self.pre_counter2,
        ]
    }

    /// `(name, raw value)` pairs in wire order.
    pub fn raw_fields(&self) -> [(&'static str, i64); 9] {
        pairs(&VERIFICATION, self.to_raw())
    }

    /// The exact reply bytes: 74 bytes with two spaces before CR, as a real meter sent it.
    #[cfg(feature = "alloc")]
    pub fn emit(&self) -> Result<Vec<u8>, Error> {
        emit(self.to_raw(), &VERIFICATION, 1)
    }
}

// ---------------------------------------------------------------------------------------------

/// `/#B` current counts. Mass decimals are not documented (raw only); m3tf and m3tr are
/// volume-weighted temperature sums (m3tf / V1 = mean flow temperature).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct CurrentCounts {
    /// Energy.
    pub energy: i64,
    /// Cooling energy.
    pub energy_cold: i64,
    /// Volume V1.
    pub volume1: i64,
    /// Volume V2.
    pub volume2: i64,
    /// Mass 1.
    pub mass1: i64,
    /// Mass 2.
    pub mass2: i64,
    /// Pulse input A.
    pub in_a: i64,
    /// Pulse input B.
    pub in_b: i64,
    /// Tariff register 2.
    pub ta2: i64,
    /// Tariff register 3.
    pub ta3: i64,
    /// Volume × flow temperature sum.
    pub m3tf: i64,
    /// Volume × return temperature sum.
    pub m3tr: i64,
}

const CURRENT: [Spec; 12] = [
    s7("energy"),
    s7("energy_cold"),
    s7("volume1"),
    s7("volume2"),
    s7("mass1"),
    s7("mass2"),
    s7("in_a"),
    s7("in_b"),
    s7("ta2"),
    s7("ta3"),
    s7("m3tf"),
    s7("m3tr"),
];

impl CurrentCounts {
    /// Field names in wire order.
    pub fn field_names() -> [&'static str; 12] {
        names(&CURRENT)
    }

    /// Parses a `/#B` reply.
    pub fn parse(reply: &[u8]) -> Result<Self, Error> {
        Self::from_raw(parse_fixed(reply, DataSet::CurrentCounts, &CURRENT)?)
    }

    /// From raw values (each must fit its field).
    pub fn from_raw(raw: [i64; 12]) -> Result<Self, Error> {
        check_all(&raw, &CURRENT)?;
        let [energy, energy_cold, volume1, volume2, mass1, mass2, in_a, in_b, ta2, ta3, m3tf, m3tr] =
            raw;
        Ok(CurrentCounts {
            energy,
            energy_cold,
            volume1,
            volume2,
            mass1,
            mass2,
            in_a,
            in_b,
            ta2,
            ta3,
            m3tf,
            m3tr,
        })
    }

    /// Raw values in wire order.
    pub fn to_raw(&self) -> [i64; 12] {
        [
            self.energy,
            self.energy_cold,
            self.volume1,
            self.volume2,
            self.mass1,
            self.mass2,
            self.in_a,
            self.in_b,
            self.ta2,
            self.ta3,
            self.m3tf,
            self.m3tr,
        ]
    }

    /// `(name, raw value)` pairs in wire order.
    pub fn raw_fields(&self) -> [(&'static str, i64); 12] {
        pairs(&CURRENT, self.to_raw())
    }

    /// Scaled energy, energy_cold, volume1, volume2.
    pub fn values(&self, scaling: &Scaling) -> Result<[Value; 4], Error> {
        Ok([
            scaling.energy("energy", self.energy)?,
            scaling.energy("energy_cold", self.energy_cold)?,
            scaling.volume("volume1", self.volume1)?,
            scaling.volume("volume2", self.volume2)?,
        ])
    }

    /// The exact reply bytes (97 bytes).
    #[cfg(feature = "alloc")]
    pub fn emit(&self) -> Result<Vec<u8>, Error> {
        emit(self.to_raw(), &CURRENT, 0)
    }
}

// ---------------------------------------------------------------------------------------------

/// `/#C` instantaneous values. T3 reads 218.75 °C when no sensor is fitted (seen on a real
/// meter). Pressure decimals are not documented: raw only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Instantaneous {
    /// Flow temperature, 0.01 °C.
    pub t1: i64,
    /// Third temperature, 0.01 °C.
    pub t3: i64,
    /// Return temperature, 0.01 °C.
    pub t2: i64,
    /// Pressure 1 (bar; decimals unknown).
    pub p1: i64,
    /// Pressure 2 (bar; decimals unknown).
    pub p2: i64,
    /// Flow 1.
    pub flow1: i64,
    /// Flow 2.
    pub flow2: i64,
    /// Power 1.
    pub power1: i64,
}

const INSTANT: [Spec; 8] = [
    s7("t1"),
    s7("t3"),
    s7("t2"),
    s7("p1"),
    s7("p2"),
    s7("flow1"),
    s7("flow2"),
    s7("power1"),
];

impl Instantaneous {
    /// Field names in wire order.
    pub fn field_names() -> [&'static str; 8] {
        names(&INSTANT)
    }

    /// Parses a `/#C` reply.
    pub fn parse(reply: &[u8]) -> Result<Self, Error> {
        Self::from_raw(parse_fixed(reply, DataSet::Instantaneous, &INSTANT)?)
    }

    /// From raw values (each must fit its field).
    pub fn from_raw(raw: [i64; 8]) -> Result<Self, Error> {
        check_all(&raw, &INSTANT)?;
        let [t1, t3, t2, p1, p2, flow1, flow2, power1] = raw;
        Ok(Instantaneous {
            t1,
            t3,
            t2,
            p1,
            p2,
            flow1,
            flow2,
            power1,
        })
    }

    /// Raw values in wire order.
    pub fn to_raw(&self) -> [i64; 8] {
        [
            self.t1,
            self.t3,
            self.t2,
            self.p1,
            self.p2,
            self.flow1,
            self.flow2,
            self.power1,
        ]
    }

    /// `(name, raw value)` pairs in wire order.
    pub fn raw_fields(&self) -> [(&'static str, i64); 8] {
        pairs(&INSTANT, self.to_raw())
    }

    /// Scaled t1, t3, t2 (°C), flow1, flow2, power1 (pressures are left out: decimals unknown).
    pub fn values(&self, scaling: &Scaling) -> Result<[Value; 6], Error> {
        Ok([
            Scaling::temperature("t1", self.t1)?,
            Scaling::temperature("t3", self.t3)?,
            Scaling::temperature("t2", self.t2)?,
            scaling.flow("flow1", self.flow1)?,
            scaling.flow("flow2", self.flow2)?,
            scaling.power("power1", self.power1)?,
        ])
    }

    /// The exact reply bytes (65 bytes).
    #[cfg(feature = "alloc")]
    pub fn emit(&self) -> Result<Vec<u8>, Error> {
        emit(self.to_raw(), &INSTANT, 0)
    }
}

// ---------------------------------------------------------------------------------------------

/// `/#D` programming data and timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProgrammingData {
    /// Customer number.
    pub customer_no: u64,
    /// Program number A-B-CCC (CCC of V1).
    pub program: ProgramNumber,
    /// CCC code of V2 (last three digits of `ABCCCCCC`).
    pub ccc_v2: u16,
    /// Configuration DD-E-FF-GG.
    pub config: Config,
    /// Leak-detection sensitivity digit M.
    pub leak_m: u8,
    /// Leak-detection sensitivity digit N.
    pub leak_n: u8,
    /// Meter date.
    pub date: Option<MeterDate>,
    /// Meter clock.
    pub clock: MeterTime,
    /// Operating hours.
    pub hours: i64,
    /// Yearly target (billing) day.
    pub target_date: Option<MonthDay>,
    /// Hours with an info code other than 0.
    pub info_hours: i64,
}

const PROGRAMMING: [Spec; 8] = [
    digits("customer_no", 11),
    digits("abcccccc", 8),
    digits("ddeffggmn", 9),
    digits("date", 7),
    digits("clock", 7),
    s7("hours"),
    digits("target_date", 7),
    s7("info_hours"),
];

impl ProgrammingData {
    /// Field names in wire order.
    pub fn field_names() -> [&'static str; 8] {
        names(&PROGRAMMING)
    }

    /// Parses a `/#D` reply.
    pub fn parse(reply: &[u8]) -> Result<Self, Error> {
        Self::from_raw(parse_fixed(reply, DataSet::Programming, &PROGRAMMING)?)
    }

    /// Validates raw values.
    pub fn from_raw(raw: [i64; 8]) -> Result<Self, Error> {
        check_all(&raw, &PROGRAMMING)?;
        non_negative(&PROGRAMMING, &raw, &[6, 8])?;
        let [customer, abcccccc, ddeffggmn, date, clock, hours, target, info_hours] = raw;
        Ok(ProgrammingData {
            customer_no: customer.unsigned_abs(),
            program: program_from_abccc(abcccccc / 1000),
            ccc_v2: (abcccccc % 1000) as u16,
            config: Config::from_ddeffgg(ddeffggmn / 100),
            leak_m: ((ddeffggmn / 10) % 10) as u8,
            leak_n: (ddeffggmn % 10) as u8,
            date: MeterDate::from_field(date, &PROGRAMMING[3], 4)?,
            clock: MeterTime::from_field(clock, &PROGRAMMING[4], 5)?,
            hours,
            target_date: MonthDay::from_field(target, &PROGRAMMING[6], 7)?,
            info_hours,
        })
    }

    /// Raw values in wire order.
    pub fn to_raw(&self) -> [i64; 8] {
        [
            i64::try_from(self.customer_no).unwrap_or(i64::MAX),
            self.program.abccc() * 1000 + i64::from(self.ccc_v2),
            self.config.ddeffgg() * 100 + i64::from(self.leak_m) * 10 + i64::from(self.leak_n),
            MeterDate::to_field(self.date),
            self.clock.to_field(),
            self.hours,
            MonthDay::to_field(self.target_date),
            self.info_hours,
        ]
    }

    /// `(name, raw value)` pairs in wire order.
    pub fn raw_fields(&self) -> [(&'static str, i64); 8] {
        pairs(&PROGRAMMING, self.to_raw())
    }

    /// The exact reply bytes (72 bytes).
    #[cfg(feature = "alloc")]
    pub fn emit(&self) -> Result<Vec<u8>, Error> {
        check_program(&self.program)?;
        if self.ccc_v2 > 999 || self.leak_m > 9 || self.leak_n > 9 {
            return Err(Error::ValueRange {
                name: "ccc_v2/leak_m/leak_n",
                value: i64::from(self.ccc_v2.max(u16::from(self.leak_m.max(self.leak_n)))),
                reason: "CCC is at most 999 and M, N are single digits",
            });
        }
        Self::from_raw(self.to_raw())?;
        emit(self.to_raw(), &PROGRAMMING, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KENANV_1: &[u8] =
        b"0507109 1296626 0032673 0006811 0003366 0003445 0000031 0000079 0000093 0000000 \r";

    fn with_prefix(prefix: &[u8]) -> Vec<u8> {
        let mut v = prefix.to_vec();
        v.extend_from_slice(KENANV_1);
        v
    }

    #[test]
    fn standard1_rejections_say_why() {
        let e = StandardData1::parse(&with_prefix(b"\x02\x7f ")).unwrap_err();
        assert_eq!(e.kind(), "garbage-prefix");
        assert!(e.to_string().contains("\"\\x02\\x7f\""), "{e}");
        // Glued to the first field: that field is blamed.
        let e = StandardData1::parse(&with_prefix(b"\x7f")).unwrap_err();
        assert!(matches!(e, Error::FieldFormat { position: 1, .. }), "{e}");
        // A line break inside.
        let mut two = KENANV_1.to_vec();
        two.extend_from_slice(KENANV_1);
        assert_eq!(
            StandardData1::parse(&two).unwrap_err(),
            Error::Lines {
                data_set: DataSet::Standard1,
                expected: 1,
                found: 2
            }
        );
        // No CR, only LF.
        let mut lf = KENANV_1.to_vec();
        *lf.last_mut().unwrap() = b'\n';
        assert_eq!(StandardData1::parse(&lf).unwrap_err().kind(), "truncated");
        assert_eq!(StandardData1::parse(b"").unwrap_err().kind(), "empty");
        assert_eq!(StandardData1::parse(b" \r\n").unwrap_err().kind(), "empty");
        // A tab is not a separator.
        let tab = KENANV_1
            .iter()
            .map(|b| if *b == b' ' { b'\t' } else { *b })
            .collect::<Vec<_>>();
        assert_eq!(StandardData1::parse(&tab).unwrap_err().kind(), "fields");
    }

    #[test]
    fn standard1_value_checks() {
        let negative_energy =
            b"-507109 1296626 0032673 0006811 0003366 0003445 0000031 0000079 0000093 0000000 \r";
        let e = StandardData1::parse(negative_energy).unwrap_err();
        assert_eq!(e.kind(), "field-value");
        assert!(
            e.to_string().starts_with("field 1 (energy) is -507109"),
            "{e}"
        );
        let bad_dt =
            b"0507109 1296626 0032673 0006811 0003366 0003446 0000031 0000079 0000093 0000000 \r";
        let e = StandardData1::parse(bad_dt).unwrap_err();
        assert_eq!(
            e,
            Error::DtMismatch {
                t1: 6811,
                t2: 3366,
                dt: 3446
            }
        );
        assert_eq!(
            e.to_string(),
            "t1 − t2 = 6811 − 3366 = 3445 but the dt field is 3446 (raw hundredths) — the reply is corrupt"
        );
        // Cooling: negative dt and power are fine.
        let cooling =
            b"0000100 0000200 0000300 0000800 0001200 -000400 -000012 0000079 0000000 0000000 \r\n";
        let d = StandardData1::parse(cooling).unwrap();
        assert_eq!((d.dt, d.power), (-400, -12));
    }

    #[test]
    fn info_code_of_standard1() {
        let mut d = StandardData1::parse(KENANV_1).unwrap();
        d.info = 264;
        let names: Vec<_> = d
            .info_code()
            .flags(crate::InfoTable::Mc66Cde)
            .map(|f| f.name)
            .collect();
        assert_eq!(names, ["t1_out_of_range", "leak_heating"]);
    }

    #[test]
    fn dates() {
        let s = digits("date", 7);
        assert_eq!(
            MeterDate::from_field(171028, &s, 1).unwrap(),
            MeterDate::new(2017, 10, 28)
        );
        assert_eq!(
            MeterDate::from_field(991231, &s, 1).unwrap(),
            MeterDate::new(1999, 12, 31)
        );
        assert_eq!(MeterDate::from_field(0, &s, 1).unwrap(), None);
        assert_eq!(
            MeterDate::from_field(171328, &s, 1).unwrap_err().kind(),
            "field-value"
        );
        assert_eq!(
            MeterDate::from_field(1_171_028, &s, 1).unwrap_err().kind(),
            "field-value"
        );
        assert_eq!(
            MeterTime::from_field(180419, &s, 1).unwrap().to_string(),
            "18:04:19"
        );
        assert_eq!(
            MeterTime::from_field(246000, &s, 1).unwrap_err().kind(),
            "field-value"
        );
        assert_eq!(
            MonthDay::from_field(601, &s, 1).unwrap(),
            MonthDay::new(6, 1)
        );
    }
}
