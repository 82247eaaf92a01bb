//! The single-line "/#n" replies (/#1, /#2, /#3, /#4, /#B, /#C, /#D): one [`Record`] trait for
//! strict parse, scaled fields with units and exact re-format. Layouts: TD p.34–36 (mc66c.md §3, §5).

#[cfg(feature = "alloc")]
use alloc::vec::Vec;

use crate::error::Error;
use crate::field::{Field, Meaning};
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

/// Every raw value must fit its field (a public `from_raw` may get anything).
fn check_all(raw: &[i64], specs: &[Spec]) -> Result<(), Error> {
    for (v, s) in raw.iter().zip(specs.iter()) {
        crate::line::check_fits(*v, s)?;
    }
    Ok(())
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

    /// The field value `0YYMMDD` as an integer; 0 for "no date".
    pub fn to_raw(date: Option<MeterDate>) -> i64 {
        Self::to_field(date)
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

fn check_program(program: &ProgramNumber) -> Result<(), Error> {
    ProgramNumber::new(program.a, program.b, program.ccc).map(|_| ())
}

/// What every single-line "/#n" record shares: the data set it answers, its TD field names,
/// strict parsing, raw values in wire order, every field with its meaning (scaled with units by
/// the program number), and the exact reply bytes.
///
/// The fields of a record are private: a value of a record type has passed the checks of
/// [`Record::from_raw`] (every field fits, counters are not negative, `/#1`'s T1 − T2 = ΔT,
/// dates are dates), and nothing can make it invalid afterwards.
pub trait Record: Sized + sealed::Sealed {
    /// The request this record answers.
    const DATA_SET: DataSet;
    /// The raw integers in wire order (`[i64; N]`).
    type Raw: AsRef<[i64]> + Copy;
    /// Every field with its meaning (`[Field; N]`).
    type Fields: AsRef<[Field]>;

    /// Field names in wire order, as the TD names them.
    fn field_names() -> &'static [&'static str];

    /// Validates raw integers in wire order: the checks of [`Record::parse`] after tokenising.
    fn from_raw(raw: Self::Raw) -> Result<Self, Error>;

    /// The raw integers in wire order.
    fn to_raw(&self) -> Self::Raw;

    /// Parses a reply strictly (fields separated by spaces, ending in CR or CR LF); rejects,
    /// never salvages.
    fn parse(reply: &[u8]) -> Result<Self, Error>;

    /// Every field in wire order with its meaning: energy, volumes, masses, powers and flows
    /// scaled by `scaling`, temperatures in 0.01 °C, hours, dates, codes; raw where the TD
    /// gives no decimals.
    fn fields(&self, scaling: &Scaling) -> Result<Self::Fields, Error>;

    /// The exact reply bytes a meter sends.
    #[cfg(feature = "alloc")]
    fn emit(&self) -> Result<Vec<u8>, Error>;

    /// `(name, raw value)` pairs in wire order.
    #[cfg(feature = "alloc")]
    fn raw_fields(&self) -> Vec<(&'static str, i64)> {
        Self::field_names()
            .iter()
            .copied()
            .zip(self.to_raw().as_ref().iter().copied())
            .collect()
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::StandardData1 {}
    impl Sealed for super::StandardData2 {}
    impl Sealed for super::TargetData {}
    impl Sealed for super::VerificationData {}
    impl Sealed for super::CurrentCounts {}
    impl Sealed for super::Instantaneous {}
    impl Sealed for super::ProgrammingData {}
}

/// Field names of a spec table, at compile time.
const fn names_of<const N: usize>(specs: &[Spec; N]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < N {
        out[i] = specs[i].name;
        i += 1;
    }
    out
}

/// Read-only accessors for the private fields of a record.
macro_rules! getters {
    ($t:ty { $($(#[$doc:meta])* $f:ident: $ft:ty),* $(,)? }) => {
        impl $t {
            $(
                $(#[$doc])*
                pub const fn $f(&self) -> $ft {
                    self.$f
                }
            )*
        }
    };
}

fn customer_field(raw: i64) -> Field {
    Field::new("customer_no", raw, Meaning::CustomerNo(raw.unsigned_abs()))
}

fn date_field(name: &'static str, date: Option<MeterDate>) -> Field {
    Field::new(name, MeterDate::to_field(date), Meaning::Date(date))
}

fn customer_raw(customer_no: u64) -> i64 {
    i64::try_from(customer_no).unwrap_or(i64::MAX)
}

// ---------------------------------------------------------------------------------------------

/// `/#1` standard data 1: energy, volume, hours, T1, T2, ΔT, power, flow, peak power, info.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct StandardData1 {
    energy: i64,
    volume: i64,
    hours: i64,
    t1: i64,
    t2: i64,
    dt: i64,
    power: i64,
    flow: i64,
    peak_power: i64,
    info: i64,
}

getters!(StandardData1 {
    /// Accumulated energy E1-E2 (unit from program digit B), raw.
    energy: i64,
    /// Accumulated volume V1, raw.
    volume: i64,
    /// Operating hours.
    hours: i64,
    /// Flow temperature, 0.01 °C.
    t1: i64,
    /// Return temperature, 0.01 °C.
    t2: i64,
    /// T1 − T2, 0.01 K (checked by the parser).
    dt: i64,
    /// Actual power, raw.
    power: i64,
    /// Actual flow, raw.
    flow: i64,
    /// Peak power of the current period, raw.
    peak_power: i64,
    /// Info code bit sum.
    info: i64,
});

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
const STANDARD1_NAMES: [&str; 10] = names_of(&STANDARD1);

impl StandardData1 {
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
}

impl Record for StandardData1 {
    const DATA_SET: DataSet = DataSet::Standard1;
    type Raw = [i64; 10];
    type Fields = [Field; 10];

    fn field_names() -> &'static [&'static str] {
        &STANDARD1_NAMES
    }

    /// Rejects a negative counter (energy, volume, hours, info) and T1 − T2 ≠ ΔT.
    fn from_raw(raw: [i64; 10]) -> Result<Self, Error> {
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

    fn to_raw(&self) -> [i64; 10] {
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

    /// Exactly 10 fields of 7 characters (`\d{7}` or `-\d{6}`).
    fn parse(reply: &[u8]) -> Result<Self, Error> {
        Self::from_raw(parse_fixed(reply, Self::DATA_SET, &STANDARD1)?)
    }

    fn fields(&self, scaling: &Scaling) -> Result<[Field; 10], Error> {
        let [energy, volume, hours, t1, t2, dt, power, flow, peak_power, _] =
            self.values(scaling)?;
        Ok([
            Field::quantity(energy, self.energy),
            Field::quantity(volume, self.volume),
            Field::quantity(hours, self.hours),
            Field::quantity(t1, self.t1),
            Field::quantity(t2, self.t2),
            Field::quantity(dt, self.dt),
            Field::quantity(power, self.power),
            Field::quantity(flow, self.flow),
            Field::quantity(peak_power, self.peak_power),
            Field::new("info", self.info, Meaning::Info(self.info_code())),
        ])
    }

    /// 81 bytes: each field and one space, then CR.
    #[cfg(feature = "alloc")]
    fn emit(&self) -> Result<Vec<u8>, Error> {
        emit(self.to_raw(), &STANDARD1, 0)
    }
}

// ---------------------------------------------------------------------------------------------

/// `/#2` standard data 2: customer number, tariff registers and limits, pulse inputs, program
/// number, configuration, date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StandardData2 {
    customer_no: u64,
    ta2: i64,
    tl2: i64,
    ta3: i64,
    tl3: i64,
    in_a: i64,
    in_b: i64,
    program: ProgramNumber,
    config: Config,
    date: Option<MeterDate>,
}

getters!(StandardData2 {
    /// Customer number (11 digits).
    customer_no: u64,
    /// Tariff register 2 (raw).
    ta2: i64,
    /// Tariff limit 2 (raw).
    tl2: i64,
    /// Tariff register 3 (raw).
    ta3: i64,
    /// Tariff limit 3 (raw).
    tl3: i64,
    /// Pulse input A register (raw).
    in_a: i64,
    /// Pulse input B register (raw).
    in_b: i64,
    /// Program number (field `00ABCCC`).
    program: ProgramNumber,
    /// Configuration (field `DDEFFGG`).
    config: Config,
    /// Meter date.
    date: Option<MeterDate>,
});

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
const STANDARD2_NAMES: [&str; 10] = names_of(&STANDARD2);

impl StandardData2 {
    /// A record from typed parts; `tariffs_inputs` is `[ta2, tl2, ta3, tl3, in_a, in_b]`.
    pub fn new(
        customer_no: u64,
        tariffs_inputs: [i64; 6],
        program: ProgramNumber,
        config: Config,
        date: Option<MeterDate>,
    ) -> Result<Self, Error> {
        check_program(&program)?;
        let [ta2, tl2, ta3, tl3, in_a, in_b] = tariffs_inputs;
        Self::from_raw([
            customer_raw(customer_no),
            ta2,
            tl2,
            ta3,
            tl3,
            in_a,
            in_b,
            program.abccc(),
            config.ddeffgg(),
            MeterDate::to_field(date),
        ])
    }
}

impl Record for StandardData2 {
    const DATA_SET: DataSet = DataSet::Standard2;
    type Raw = [i64; 10];
    type Fields = [Field; 10];

    fn field_names() -> &'static [&'static str] {
        &STANDARD2_NAMES
    }

    fn from_raw(raw: [i64; 10]) -> Result<Self, Error> {
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

    fn to_raw(&self) -> [i64; 10] {
        [
            customer_raw(self.customer_no),
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

    /// An 11-digit customer number, then 9 fields of 7.
    fn parse(reply: &[u8]) -> Result<Self, Error> {
        Self::from_raw(parse_fixed(reply, Self::DATA_SET, &STANDARD2)?)
    }

    /// Tariff registers and pulse inputs are raw: their decimals depend on the tariff type and
    /// the pulse-input configuration, which the TD does not tabulate.
    fn fields(&self, _scaling: &Scaling) -> Result<[Field; 10], Error> {
        let r = self.to_raw();
        Ok([
            customer_field(r[0]),
            Field::raw("ta2", self.ta2),
            Field::raw("tl2", self.tl2),
            Field::raw("ta3", self.ta3),
            Field::raw("tl3", self.tl3),
            Field::raw("in_a", self.in_a),
            Field::raw("in_b", self.in_b),
            Field::new(
                "abccc",
                r[7],
                Meaning::Program {
                    program: self.program,
                    ccc_v2: None,
                },
            ),
            Field::new(
                "ddeffgg",
                r[8],
                Meaning::Config {
                    config: self.config,
                    leak: None,
                },
            ),
            date_field("date", self.date),
        ])
    }

    /// 85 bytes.
    #[cfg(feature = "alloc")]
    fn emit(&self) -> Result<Vec<u8>, Error> {
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
    customer_no: u64,
    date: Option<MeterDate>,
    energy: i64,
    volume: i64,
    ta2: i64,
    ta3: i64,
    in_a: i64,
    in_b: i64,
    peak_power_year: i64,
}

getters!(TargetData {
    /// Customer number.
    customer_no: u64,
    /// The target date the values were frozen at.
    date: Option<MeterDate>,
    /// Energy at the target date (raw).
    energy: i64,
    /// Volume V1 at the target date (raw).
    volume: i64,
    /// Tariff register 2 (raw).
    ta2: i64,
    /// Tariff register 3 (raw).
    ta3: i64,
    /// Pulse input A (raw).
    in_a: i64,
    /// Pulse input B (raw).
    in_b: i64,
    /// Peak power of the year (raw).
    peak_power_year: i64,
});

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
const TARGET_NAMES: [&str; 9] = names_of(&TARGET);

impl TargetData {
    /// A record from typed parts; `registers` is `[energy, volume, ta2, ta3, in_a, in_b,
    /// peak_power_year]`.
    pub fn new(
        customer_no: u64,
        date: Option<MeterDate>,
        registers: [i64; 7],
    ) -> Result<Self, Error> {
        let [energy, volume, ta2, ta3, in_a, in_b, peak] = registers;
        Self::from_raw([
            customer_raw(customer_no),
            MeterDate::to_field(date),
            energy,
            volume,
            ta2,
            ta3,
            in_a,
            in_b,
            peak,
        ])
    }

    /// Scaled energy, volume and peak_power_year.
    pub fn values(&self, scaling: &Scaling) -> Result<[Value; 3], Error> {
        Ok([
            scaling.energy("energy", self.energy)?,
            scaling.volume("volume", self.volume)?,
            scaling.power("peak_power_year", self.peak_power_year)?,
        ])
    }
}

impl Record for TargetData {
    const DATA_SET: DataSet = DataSet::Target;
    type Raw = [i64; 9];
    type Fields = [Field; 9];

    fn field_names() -> &'static [&'static str] {
        &TARGET_NAMES
    }

    fn from_raw(raw: [i64; 9]) -> Result<Self, Error> {
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

    fn to_raw(&self) -> [i64; 9] {
        [
            customer_raw(self.customer_no),
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

    fn parse(reply: &[u8]) -> Result<Self, Error> {
        Self::from_raw(parse_fixed(reply, Self::DATA_SET, &TARGET)?)
    }

    fn fields(&self, scaling: &Scaling) -> Result<[Field; 9], Error> {
        let [energy, volume, peak] = self.values(scaling)?;
        Ok([
            customer_field(customer_raw(self.customer_no)),
            date_field("target_date", self.date),
            Field::quantity(energy, self.energy),
            Field::quantity(volume, self.volume),
            Field::raw("ta2", self.ta2),
            Field::raw("ta3", self.ta3),
            Field::raw("in_a", self.in_a),
            Field::raw("in_b", self.in_b),
            Field::quantity(peak, self.peak_power_year),
        ])
    }

    /// 77 bytes.
    #[cfg(feature = "alloc")]
    fn emit(&self) -> Result<Vec<u8>, Error> {
        emit(self.to_raw(), &TARGET, 0)
    }
}

// ---------------------------------------------------------------------------------------------

/// `/#4` verification data, 66-CDE layout (the 66-B sends water remainders, Δt·k, tF, tR and
/// the program number instead; not parsed here). Units of the Qsum and pre-counter registers
/// are not documented: raw only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct VerificationData {
    energy: i64,
    qsum1: i64,
    qsum2: i64,
    volume1: i64,
    volume2: i64,
    pre_counter1: i64,
    in_a: i64,
    in_b: i64,
    pre_counter2: i64,
}

getters!(VerificationData {
    /// Energy (raw).
    energy: i64,
    /// Qsum1 (raw).
    qsum1: i64,
    /// Qsum2 (raw).
    qsum2: i64,
    /// Volume V1 (raw).
    volume1: i64,
    /// Volume V2 (raw).
    volume2: i64,
    /// Pre-counter 1 (raw).
    pre_counter1: i64,
    /// Pulse input A (raw).
    in_a: i64,
    /// Pulse input B (raw).
    in_b: i64,
    /// Pre-counter 2 (raw).
    pre_counter2: i64,
});

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
const VERIFICATION_NAMES: [&str; 9] = names_of(&VERIFICATION);

impl Record for VerificationData {
    const DATA_SET: DataSet = DataSet::Verification;
    type Raw = [i64; 9];
    type Fields = [Field; 9];

    fn field_names() -> &'static [&'static str] {
        &VERIFICATION_NAMES
    }

    fn from_raw(raw: [i64; 9]) -> Result<Self, Error> {
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

    fn to_raw(&self) -> [i64; 9] {
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

    fn parse(reply: &[u8]) -> Result<Self, Error> {
        Self::from_raw(parse_fixed(reply, Self::DATA_SET, &VERIFICATION)?)
    }

    fn fields(&self, scaling: &Scaling) -> Result<[Field; 9], Error> {
        Ok([
            Field::quantity(scaling.energy("energy", self.energy)?, self.energy),
            Field::raw("qsum1", self.qsum1),
            Field::raw("qsum2", self.qsum2),
            Field::quantity(scaling.volume("volume1", self.volume1)?, self.volume1),
            Field::quantity(scaling.volume("volume2", self.volume2)?, self.volume2),
            Field::raw("pre_counter1", self.pre_counter1),
            Field::raw("in_a", self.in_a),
            Field::raw("in_b", self.in_b),
            Field::raw("pre_counter2", self.pre_counter2),
        ])
    }

    /// 74 bytes with two spaces before CR, as a real meter sent it.
    #[cfg(feature = "alloc")]
    fn emit(&self) -> Result<Vec<u8>, Error> {
        emit(self.to_raw(), &VERIFICATION, 1)
    }
}

// ---------------------------------------------------------------------------------------------

/// `/#B` current counts. Masses follow the volume's decimals (tonnes; KenanV's mass/volume
/// ratio is 0.9925); m3tf and m3tr are volume-weighted temperature sums (m3tf / V1 = mean flow
/// temperature) whose decimals are not documented: raw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct CurrentCounts {
    energy: i64,
    energy_cold: i64,
    volume1: i64,
    volume2: i64,
    mass1: i64,
    mass2: i64,
    in_a: i64,
    in_b: i64,
    ta2: i64,
    ta3: i64,
    m3tf: i64,
    m3tr: i64,
}

getters!(CurrentCounts {
    /// Energy (raw).
    energy: i64,
    /// Cooling energy (raw).
    energy_cold: i64,
    /// Volume V1 (raw).
    volume1: i64,
    /// Volume V2 (raw).
    volume2: i64,
    /// Mass 1 (raw).
    mass1: i64,
    /// Mass 2 (raw).
    mass2: i64,
    /// Pulse input A (raw).
    in_a: i64,
    /// Pulse input B (raw).
    in_b: i64,
    /// Tariff register 2 (raw).
    ta2: i64,
    /// Tariff register 3 (raw).
    ta3: i64,
    /// Volume × flow temperature sum (raw).
    m3tf: i64,
    /// Volume × return temperature sum (raw).
    m3tr: i64,
});

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
const CURRENT_NAMES: [&str; 12] = names_of(&CURRENT);

impl CurrentCounts {
    /// Scaled energy, energy_cold, volume1, volume2.
    pub fn values(&self, scaling: &Scaling) -> Result<[Value; 4], Error> {
        Ok([
            scaling.energy("energy", self.energy)?,
            scaling.energy("energy_cold", self.energy_cold)?,
            scaling.volume("volume1", self.volume1)?,
            scaling.volume("volume2", self.volume2)?,
        ])
    }
}

impl Record for CurrentCounts {
    const DATA_SET: DataSet = DataSet::CurrentCounts;
    type Raw = [i64; 12];
    type Fields = [Field; 12];

    fn field_names() -> &'static [&'static str] {
        &CURRENT_NAMES
    }

    fn from_raw(raw: [i64; 12]) -> Result<Self, Error> {
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

    fn to_raw(&self) -> [i64; 12] {
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

    fn parse(reply: &[u8]) -> Result<Self, Error> {
        Self::from_raw(parse_fixed(reply, Self::DATA_SET, &CURRENT)?)
    }

    fn fields(&self, scaling: &Scaling) -> Result<[Field; 12], Error> {
        let [energy, energy_cold, volume1, volume2] = self.values(scaling)?;
        Ok([
            Field::quantity(energy, self.energy),
            Field::quantity(energy_cold, self.energy_cold),
            Field::quantity(volume1, self.volume1),
            Field::quantity(volume2, self.volume2),
            Field::quantity(scaling.mass("mass1", self.mass1)?, self.mass1),
            Field::quantity(scaling.mass("mass2", self.mass2)?, self.mass2),
            Field::raw("in_a", self.in_a),
            Field::raw("in_b", self.in_b),
            Field::raw("ta2", self.ta2),
            Field::raw("ta3", self.ta3),
            Field::raw("m3tf", self.m3tf),
            Field::raw("m3tr", self.m3tr),
        ])
    }

    /// 97 bytes.
    #[cfg(feature = "alloc")]
    fn emit(&self) -> Result<Vec<u8>, Error> {
        emit(self.to_raw(), &CURRENT, 0)
    }
}

// ---------------------------------------------------------------------------------------------

/// `/#C` instantaneous values. T3 reads 218.75 °C when no sensor is fitted (seen on a real
/// meter). Pressure decimals are not documented: raw only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Instantaneous {
    t1: i64,
    t3: i64,
    t2: i64,
    p1: i64,
    p2: i64,
    flow1: i64,
    flow2: i64,
    power1: i64,
}

getters!(Instantaneous {
    /// Flow temperature, 0.01 °C.
    t1: i64,
    /// Third temperature, 0.01 °C.
    t3: i64,
    /// Return temperature, 0.01 °C.
    t2: i64,
    /// Pressure 1 (bar; decimals unknown).
    p1: i64,
    /// Pressure 2 (bar; decimals unknown).
    p2: i64,
    /// Flow 1 (raw).
    flow1: i64,
    /// Flow 2 (raw).
    flow2: i64,
    /// Power 1 (raw).
    power1: i64,
});

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
const INSTANT_NAMES: [&str; 8] = names_of(&INSTANT);

impl Instantaneous {
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
}

impl Record for Instantaneous {
    const DATA_SET: DataSet = DataSet::Instantaneous;
    type Raw = [i64; 8];
    type Fields = [Field; 8];

    fn field_names() -> &'static [&'static str] {
        &INSTANT_NAMES
    }

    fn from_raw(raw: [i64; 8]) -> Result<Self, Error> {
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

    fn to_raw(&self) -> [i64; 8] {
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

    fn parse(reply: &[u8]) -> Result<Self, Error> {
        Self::from_raw(parse_fixed(reply, Self::DATA_SET, &INSTANT)?)
    }

    fn fields(&self, scaling: &Scaling) -> Result<[Field; 8], Error> {
        let [t1, t3, t2, flow1, flow2, power1] = self.values(scaling)?;
        Ok([
            Field::quantity(t1, self.t1),
            Field::quantity(t3, self.t3),
            Field::quantity(t2, self.t2),
            Field::raw("p1", self.p1),
            Field::raw("p2", self.p2),
            Field::quantity(flow1, self.flow1),
            Field::quantity(flow2, self.flow2),
            Field::quantity(power1, self.power1),
        ])
    }

    /// 65 bytes.
    #[cfg(feature = "alloc")]
    fn emit(&self) -> Result<Vec<u8>, Error> {
        emit(self.to_raw(), &INSTANT, 0)
    }
}

// ---------------------------------------------------------------------------------------------

/// `/#D` programming data and timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProgrammingData {
    customer_no: u64,
    program: ProgramNumber,
    ccc_v2: u16,
    config: Config,
    leak_m: u8,
    leak_n: u8,
    date: Option<MeterDate>,
    clock: MeterTime,
    hours: i64,
    target_date: Option<MonthDay>,
    info_hours: i64,
}

getters!(ProgrammingData {
    /// Customer number.
    customer_no: u64,
    /// Program number A-B-CCC (CCC of V1).
    program: ProgramNumber,
    /// CCC code of V2 (last three digits of `ABCCCCCC`).
    ccc_v2: u16,
    /// Configuration DD-E-FF-GG.
    config: Config,
    /// Leak-detection sensitivity digit M.
    leak_m: u8,
    /// Leak-detection sensitivity digit N.
    leak_n: u8,
    /// Meter date.
    date: Option<MeterDate>,
    /// Meter clock.
    clock: MeterTime,
    /// Operating hours.
    hours: i64,
    /// Yearly target (billing) day.
    target_date: Option<MonthDay>,
    /// Hours with an info code other than 0.
    info_hours: i64,
});

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
const PROGRAMMING_NAMES: [&str; 8] = names_of(&PROGRAMMING);

/// The parts of a [`ProgrammingData`], unchecked; [`ProgrammingData::new`] checks them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgrammingParts {
    /// Customer number.
    pub customer_no: u64,
    /// Program number (CCC of V1).
    pub program: ProgramNumber,
    /// CCC of V2.
    pub ccc_v2: u16,
    /// Configuration.
    pub config: Config,
    /// Leak-detection digits M and N.
    pub leak: (u8, u8),
    /// Meter date.
    pub date: Option<MeterDate>,
    /// Meter clock.
    pub clock: MeterTime,
    /// Operating hours.
    pub hours: i64,
    /// Target day.
    pub target_date: Option<MonthDay>,
    /// Info hours.
    pub info_hours: i64,
}

impl ProgrammingData {
    /// A record from typed parts (CCC of V2 at most 999, M and N single digits).
    pub fn new(p: ProgrammingParts) -> Result<Self, Error> {
        check_program(&p.program)?;
        let (leak_m, leak_n) = p.leak;
        if p.ccc_v2 > 999 || leak_m > 9 || leak_n > 9 {
            return Err(Error::ValueRange {
                name: "ccc_v2/leak_m/leak_n",
                value: i64::from(p.ccc_v2.max(u16::from(leak_m.max(leak_n)))),
                reason: "CCC is at most 999 and M, N are single digits",
            });
        }
        Self::from_raw([
            customer_raw(p.customer_no),
            p.program.abccc() * 1000 + i64::from(p.ccc_v2),
            p.config.ddeffgg() * 100 + i64::from(leak_m) * 10 + i64::from(leak_n),
            MeterDate::to_field(p.date),
            p.clock.to_field(),
            p.hours,
            MonthDay::to_field(p.target_date),
            p.info_hours,
        ])
    }
}

impl Record for ProgrammingData {
    const DATA_SET: DataSet = DataSet::Programming;
    type Raw = [i64; 8];
    type Fields = [Field; 8];

    fn field_names() -> &'static [&'static str] {
        &PROGRAMMING_NAMES
    }

    fn from_raw(raw: [i64; 8]) -> Result<Self, Error> {
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

    fn to_raw(&self) -> [i64; 8] {
        [
            customer_raw(self.customer_no),
            self.program.abccc() * 1000 + i64::from(self.ccc_v2),
            self.config.ddeffgg() * 100 + i64::from(self.leak_m) * 10 + i64::from(self.leak_n),
            MeterDate::to_field(self.date),
            self.clock.to_field(),
            self.hours,
            MonthDay::to_field(self.target_date),
            self.info_hours,
        ]
    }

    fn parse(reply: &[u8]) -> Result<Self, Error> {
        Self::from_raw(parse_fixed(reply, Self::DATA_SET, &PROGRAMMING)?)
    }

    fn fields(&self, _scaling: &Scaling) -> Result<[Field; 8], Error> {
        let r = self.to_raw();
        Ok([
            customer_field(r[0]),
            Field::new(
                "abcccccc",
                r[1],
                Meaning::Program {
                    program: self.program,
                    ccc_v2: Some(self.ccc_v2),
                },
            ),
            Field::new(
                "ddeffggmn",
                r[2],
                Meaning::Config {
                    config: self.config,
                    leak: Some((self.leak_m, self.leak_n)),
                },
            ),
            date_field("date", self.date),
            Field::new("clock", r[4], Meaning::Time(self.clock)),
            Field::quantity(Scaling::hours("hours", self.hours)?, self.hours),
            Field::new("target_date", r[6], Meaning::TargetDay(self.target_date)),
            Field::quantity(
                Scaling::hours("info_hours", self.info_hours)?,
                self.info_hours,
            ),
        ])
    }

    /// 72 bytes.
    #[cfg(feature = "alloc")]
    fn emit(&self) -> Result<Vec<u8>, Error> {
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
        assert_eq!((d.dt(), d.power()), (-400, -12));
    }

    #[test]
    fn info_code_of_standard1() {
        let mut raw = StandardData1::parse(KENANV_1).unwrap().to_raw();
        raw[9] = 264;
        let d = StandardData1::from_raw(raw).unwrap();
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
