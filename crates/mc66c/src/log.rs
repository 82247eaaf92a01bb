//! Multi-line "/#n" replies: `/#5` monthly data ([`MonthlyData`]), the `/#6`–`/#9` loggers
//! ([`Logger`], TD layouts) and the `/#J` info logger ([`InfoEvent`]), typed, scaled, dated.
//!
//! The TD layouts of the loggers were not checked against complete real replies (the one dump
//! found overflowed its buffer; `/#8`/`/#9` looked nibble-coded, `/#J` had undocumented trailing
//! data): [`Logger`] parses the TD layout strictly, and [`parse_lines`] keeps any reply's tokens
//! as text with the TD's names by position, for looking at what a meter really sent.

use alloc::string::String;
use alloc::vec::Vec;

use crate::data::{MeterDate, MeterTime};
use crate::error::{Error, FieldProblem, Snippet};
use crate::field::{Field, Meaning};
use crate::info::InfoCode;
use crate::line::{digits, field, parse_tokens, s7, strip_terminator, tokens, Spec};
use crate::request::DataSet;
use crate::scaling::Scaling;

/// One token of a multi-line reply, as sent.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LogToken {
    /// Field name by position from the TD, or `""` past the documented fields.
    pub name: &'static str,
    /// The text (printable ASCII, no spaces).
    pub text: String,
    /// The value if the text is `-?digits` (at most 18 digits).
    pub value: Option<i64>,
}

/// One line of a multi-line reply.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct LogLine {
    /// The tokens in order.
    pub tokens: Vec<LogToken>,
}

impl LogLine {
    /// The token with this TD field name.
    pub fn get(&self, name: &str) -> Option<&LogToken> {
        self.tokens
            .iter()
            .find(|t| !t.name.is_empty() && t.name == name)
    }
}

/// A multi-line reply split into lines and tokens.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LogReply {
    /// The request answered.
    pub data_set: DataSet,
    /// The lines in order.
    pub lines: Vec<LogLine>,
}

const MONTHLY_FIRST: &[&str] = &[
    "customer_no",
    "date",
    "energy",
    "volume",
    "ta2",
    "ta3",
    "in_a",
    "in_b",
    "peak_power",
];
const DAILY: &[&str] = &[
    "date", "energy", "mass1", "mass2", "in_a", "in_b", "p1_avg", "p2_avg", "t1_avg", "t3_avg",
    "t2_avg", "info",
];
const MONTHLY_LOG: &[&str] = &[
    "date",
    "energy",
    "volume1",
    "ta2",
    "ta3",
    "in_a",
    "in_b",
    "peak_power_eff",
    "peak_flow",
    "volume2",
    "energy_cold",
    "info",
];
const YEARLY_LOG: &[&str] = &[
    "date",
    "energy",
    "volume1",
    "ta2",
    "ta3",
    "in_a",
    "in_b",
    "peak_power",
    "peak_date",
    "peak_flow",
    "volume2",
    "energy_cold",
    "info",
];
const INFO_LOG: &[&str] = &["info", "date", "clock", "energy"];

/// The TD's field names for a line of a data set (0-based `line`). Empty for single-line sets.
/// For `/#6` and `/#7`, the TD gives widths of 7 for date and info and 5 for the others.
pub fn field_names(data_set: DataSet, line: usize) -> &'static [&'static str] {
    match data_set {
        DataSet::Monthly if line == 0 => MONTHLY_FIRST,
        DataSet::Monthly => MONTHLY_FIRST.get(1..).unwrap_or(&[]),
        DataSet::DailyLog | DataSet::HourlyLog => DAILY,
        DataSet::MonthlyLog => MONTHLY_LOG,
        DataSet::YearlyLog => YEARLY_LOG,
        DataSet::InfoLog => INFO_LOG,
        _ => &[],
    }
}

/// Splits a reply into CR-terminated lines (an LF after a CR is tolerated). The last line
/// must end in CR.
pub(crate) fn split_lines(reply: &[u8]) -> Result<Vec<&[u8]>, Error> {
    if reply.iter().all(|b| matches!(b, b'\r' | b'\n' | b' ')) {
        return Err(Error::Empty);
    }
    if strip_terminator(reply).is_none() {
        return Err(Error::Truncated {
            received: reply.len(),
            what: "the last line does not end in CR",
        });
    }
    let mut lines = Vec::new();
    let mut rest = reply;
    while let Some(cr) = rest.iter().position(|b| *b == b'\r') {
        lines.push(rest.get(..cr).unwrap_or(&[]));
        let skip = if rest.get(cr + 1) == Some(&b'\n') {
            2
        } else {
            1
        };
        rest = rest.get(cr + skip..).unwrap_or(&[]);
    }
    Ok(lines)
}

fn number(text: &[u8]) -> Option<i64> {
    let (neg, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = digits
        .iter()
        .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'));
    Some(if neg { -v } else { v })
}

/// Splits any multi-line reply (or a single-line one) into named raw tokens. Rejects only
/// what cannot be a reply at all: no CR at the end, a line feed inside a line, control or
/// non-ASCII bytes in a token.
pub fn parse_lines(data_set: DataSet, reply: &[u8]) -> Result<LogReply, Error> {
    let mut lines = Vec::new();
    for (i, body) in split_lines(reply)?.into_iter().enumerate() {
        let names = field_names(data_set, i);
        let mut line = LogLine::default();
        for (j, tok) in tokens(body).enumerate() {
            let name = names.get(j).copied().unwrap_or("");
            if !tok.iter().all(|b| (0x21..0x7f).contains(b)) {
                return Err(Error::FieldFormat {
                    line: i + 1,
                    position: j + 1,
                    name: if name.is_empty() { "token" } else { name },
                    token: Snippet::new(tok),
                    width: tok.len(),
                    problem: FieldProblem::NotDigits,
                });
            }
            line.tokens.push(LogToken {
                name,
                // Checked printable ASCII above.
                text: String::from_utf8_lossy(tok).into_owned(),
                value: number(tok),
            });
        }
        lines.push(line);
    }
    Ok(LogReply { data_set, lines })
}

// ---------------------------------------------------------------------------------------------

/// One month of `/#5` monthly data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct MonthlyRecord {
    /// End-of-month date (`None` for an empty entry).
    pub date: Option<MeterDate>,
    /// Energy.
    pub energy: i64,
    /// Volume V1.
    pub volume: i64,
    /// Tariff register 2.
    pub ta2: i64,
    /// Tariff register 3.
    pub ta3: i64,
    /// Pulse input A.
    pub in_a: i64,
    /// Pulse input B.
    pub in_b: i64,
    /// Peak power of the month.
    pub peak_power: i64,
}

const MONTH_SPECS: [Spec; 8] = [
    digits("date", 7),
    s7("energy"),
    s7("volume"),
    s7("ta2"),
    s7("ta3"),
    s7("in_a"),
    s7("in_b"),
    s7("peak_power"),
];

impl MonthlyRecord {
    fn from_raw(raw: [i64; 8]) -> Result<Self, Error> {
        let [date, energy, volume, ta2, ta3, in_a, in_b, peak_power] = raw;
        Ok(MonthlyRecord {
            date: MeterDate::from_field(date, &MONTH_SPECS[0], 1)?,
            energy,
            volume,
            ta2,
            ta3,
            in_a,
            in_b,
            peak_power,
        })
    }

    /// Every field with its meaning: the date, energy, volume and peak power scaled by the
    /// program number; tariff registers and pulse inputs raw.
    pub fn fields(&self, scaling: &Scaling) -> Result<[Field; 8], Error> {
        Ok([
            Field::new(
                "date",
                MeterDate::to_field(self.date),
                Meaning::Date(self.date),
            ),
            Field::quantity(scaling.energy("energy", self.energy)?, self.energy),
            Field::quantity(scaling.volume("volume", self.volume)?, self.volume),
            Field::raw("ta2", self.ta2),
            Field::raw("ta3", self.ta3),
            Field::raw("in_a", self.in_a),
            Field::raw("in_b", self.in_b),
            Field::quantity(
                scaling.power("peak_power", self.peak_power)?,
                self.peak_power,
            ),
        ])
    }

    fn to_raw(self) -> [i64; 8] {
        [
            MeterDate::to_field(self.date),
            self.energy,
            self.volume,
            self.ta2,
            self.ta3,
            self.in_a,
            self.in_b,
            self.peak_power,
        ]
    }
}

/// `/#5` monthly data: customer number, then one record per line, newest first. The first
/// line starts with the customer number (11 digits); every line then has 8 fields of 7.
/// The TD says 32 lines; the count is not enforced.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MonthlyData {
    /// Customer number.
    pub customer_no: u64,
    /// The monthly records in line order.
    pub records: Vec<MonthlyRecord>,
}

impl MonthlyData {
    /// Parses a `/#5` reply strictly (field errors name their line).
    pub fn parse(reply: &[u8]) -> Result<Self, Error> {
        let lines = split_lines(reply)?;
        let mut customer_no = 0;
        let mut records = Vec::with_capacity(lines.len());
        for (i, body) in lines.into_iter().enumerate() {
            let at = |e: Error| e.at_line(i + 1);
            let rest = if i == 0 {
                let trimmed = trim_start(body);
                let end = trimmed
                    .iter()
                    .position(|b| *b == b' ')
                    .unwrap_or(trimmed.len());
                let (first, rest) = trimmed.split_at_checked(end).unwrap_or((trimmed, &[]));
                customer_no = field(first, &digits("customer_no", 11), 1)
                    .map_err(at)?
                    .unsigned_abs();
                rest
            } else {
                body
            };
            // Positions on the first line count the customer number too.
            let locate = |e: Error| {
                let e = at(e);
                if i == 0 {
                    shift_position(e)
                } else {
                    e
                }
            };
            let raw = parse_tokens(rest, DataSet::Monthly, &MONTH_SPECS).map_err(locate)?;
            records.push(MonthlyRecord::from_raw(raw).map_err(locate)?);
        }
        Ok(MonthlyData {
            customer_no,
            records,
        })
    }

    /// The reply bytes (each line: fields and one space each, then CR).
    pub fn emit(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(self.records.len() * 70 + 16);
        for (i, r) in self.records.iter().enumerate() {
            if i == 0 {
                let c = i64::try_from(self.customer_no).unwrap_or(i64::MAX);
                crate::line::write_field(&mut out, c, &digits("customer_no", 11))?;
                out.push(b' ');
            }
            crate::line::emit_line(&mut out, &r.to_raw(), &MONTH_SPECS, 0)?;
        }
        Ok(out)
    }
}

fn shift_position(e: Error) -> Error {
    match e {
        Error::FieldFormat {
            line,
            position,
            name,
            token,
            width,
            problem,
        } => Error::FieldFormat {
            line,
            position: position + 1,
            name,
            token,
            width,
            problem,
        },
        Error::Fields {
            line,
            data_set,
            expected,
            found,
        } => Error::Fields {
            line,
            data_set,
            expected: expected + 1,
            found: found + 1,
        },
        Error::FieldValue {
            line,
            position,
            name,
            value,
            reason,
        } => Error::FieldValue {
            line,
            position: position + 1,
            name,
            value,
            reason,
        },
        other => other,
    }
}

fn trim_start(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| **c == b' ').count();
    b.get(n..).unwrap_or(&[])
}

// ---------------------------------------------------------------------------------------------

/// One `/#J` info-logger entry: info code, date, clock, energy at the event. Tokens after the
/// four documented ones (seen on a real meter, meaning unknown) are kept raw.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InfoEvent {
    /// The info code that was set.
    pub info: InfoCode,
    /// Date of the event (`None` for an empty entry).
    pub date: Option<MeterDate>,
    /// Time of the event.
    pub clock: MeterTime,
    /// Energy register at the event.
    pub energy: i64,
    /// Undocumented trailing tokens.
    pub extra: Vec<LogToken>,
}

const INFO_SPECS: [Spec; 4] = [
    s7("info"),
    digits("date", 7),
    digits("clock", 7),
    s7("energy"),
];

impl InfoEvent {
    /// Parses a `/#J` reply: one event per line.
    pub fn parse_all(reply: &[u8]) -> Result<Vec<InfoEvent>, Error> {
        let raw = parse_lines(DataSet::InfoLog, reply)?;
        let lines = split_lines(reply)?;
        let mut out = Vec::with_capacity(lines.len());
        for (i, (body, line)) in lines.into_iter().zip(raw.lines).enumerate() {
            let at = |e: Error| e.at_line(i + 1);
            let toks: Vec<&[u8]> = tokens(body).collect();
            if toks.len() < INFO_SPECS.len() {
                return Err(Error::Fields {
                    line: i + 1,
                    data_set: DataSet::InfoLog,
                    expected: INFO_SPECS.len(),
                    found: toks.len(),
                });
            }
            let mut v = [0i64; 4];
            for (j, ((t, s), o)) in toks
                .iter()
                .zip(INFO_SPECS.iter())
                .zip(v.iter_mut())
                .enumerate()
            {
                *o = field(t, s, j + 1).map_err(at)?;
            }
            let [info, date, clock, energy] = v;
            if info < 0 {
                return Err(Error::FieldValue {
                    line: i + 1,
                    position: 1,
                    name: "info",
                    value: info,
                    reason: "negative, but an info code never is",
                });
            }
            out.push(InfoEvent {
                info: InfoCode(u32::try_from(info).unwrap_or(0)),
                date: MeterDate::from_field(date, &INFO_SPECS[1], 2).map_err(at)?,
                clock: MeterTime::from_field(clock, &INFO_SPECS[2], 3).map_err(at)?,
                energy,
                extra: line.tokens.into_iter().skip(INFO_SPECS.len()).collect(),
            });
        }
        Ok(out)
    }

    /// The documented fields with their meaning: info code, date, clock, energy (scaled).
    pub fn fields(&self, scaling: &Scaling) -> Result<[Field; 4], Error> {
        Ok([
            Field::new("info", i64::from(self.info.0), Meaning::Info(self.info)),
            Field::new(
                "date",
                MeterDate::to_field(self.date),
                Meaning::Date(self.date),
            ),
            Field::new("clock", self.clock.to_field(), Meaning::Time(self.clock)),
            Field::quantity(scaling.energy("energy", self.energy)?, self.energy),
        ])
    }

    /// The reply bytes for a list of events (extra tokens written as they are).
    pub fn emit_all(events: &[InfoEvent]) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(events.len() * 40);
        for e in events {
            let raw = [
                i64::from(e.info.0),
                MeterDate::to_field(e.date),
                e.clock.to_field(),
                e.energy,
            ];
            for (v, s) in raw.iter().zip(INFO_SPECS.iter()) {
                crate::line::write_field(&mut out, *v, s)?;
                out.push(b' ');
            }
            for t in &e.extra {
                out.extend_from_slice(t.text.as_bytes());
                out.push(b' ');
            }
            out.push(b'\r');
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------

/// What a logger column holds, for scaling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Date,
    Energy,
    Volume,
    Mass,
    Temperature,
    Power,
    Flow,
    Info,
    /// Decimals not documented (tariffs, pulse inputs, pressure averages).
    Raw,
}

const fn col(name: &'static str, width: usize, kind: Kind) -> (Spec, Kind) {
    let spec = if width == 7 && !matches!(kind, Kind::Date) {
        s7(name)
    } else {
        digits(name, width)
    };
    (spec, kind)
}

/// `/#6` daily and `/#7` hourly logger lines (TD: date and info 7 characters, the rest 5):
/// the energy and masses are the period's growth, the temperatures and pressures its averages.
const DAILY_LAYOUT: [(Spec, Kind); 12] = [
    col("date", 7, Kind::Date),
    col("energy", 5, Kind::Energy),
    col("mass1", 5, Kind::Mass),
    col("mass2", 5, Kind::Mass),
    col("in_a", 5, Kind::Raw),
    col("in_b", 5, Kind::Raw),
    col("p1_avg", 5, Kind::Raw),
    col("p2_avg", 5, Kind::Raw),
    col("t1_avg", 5, Kind::Temperature),
    col("t3_avg", 5, Kind::Temperature),
    col("t2_avg", 5, Kind::Temperature),
    col("info", 7, Kind::Info),
];

/// `/#8` monthly logger lines: counters at the end of the month, the month's peaks.
const MONTHLY_LOG_LAYOUT: [(Spec, Kind); 12] = [
    col("date", 7, Kind::Date),
    col("energy", 7, Kind::Energy),
    col("volume1", 7, Kind::Volume),
    col("ta2", 7, Kind::Raw),
    col("ta3", 7, Kind::Raw),
    col("in_a", 7, Kind::Raw),
    col("in_b", 7, Kind::Raw),
    col("peak_power_eff", 7, Kind::Power),
    col("peak_flow", 7, Kind::Flow),
    col("volume2", 7, Kind::Volume),
    col("energy_cold", 7, Kind::Energy),
    col("info", 7, Kind::Info),
];

/// `/#9` yearly logger lines: counters at the end of the year, the year's peak and its date.
const YEARLY_LOG_LAYOUT: [(Spec, Kind); 13] = [
    col("date", 7, Kind::Date),
    col("energy", 7, Kind::Energy),
    col("volume1", 7, Kind::Volume),
    col("ta2", 7, Kind::Raw),
    col("ta3", 7, Kind::Raw),
    col("in_a", 7, Kind::Raw),
    col("in_b", 7, Kind::Raw),
    col("peak_power", 7, Kind::Power),
    col("peak_date", 7, Kind::Date),
    col("peak_flow", 7, Kind::Flow),
    col("volume2", 7, Kind::Volume),
    col("energy_cold", 7, Kind::Energy),
    col("info", 7, Kind::Info),
];

fn layout(data_set: DataSet) -> Option<&'static [(Spec, Kind)]> {
    match data_set {
        DataSet::DailyLog | DataSet::HourlyLog => Some(&DAILY_LAYOUT),
        DataSet::MonthlyLog => Some(&MONTHLY_LOG_LAYOUT),
        DataSet::YearlyLog => Some(&YEARLY_LOG_LAYOUT),
        _ => None,
    }
}

/// One line of a `/#6`–`/#9` logger: its date and every column, checked. Fields are private:
/// a record has passed [`LoggerRecord::from_raw`] (widths, dates, counters not negative).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LoggerRecord {
    data_set: DataSet,
    raw: Vec<i64>,
}

impl LoggerRecord {
    /// Validates one line's raw integers in wire order for a logger data set.
    pub fn from_raw(data_set: DataSet, raw: &[i64]) -> Result<LoggerRecord, Error> {
        let layout = layout(data_set).ok_or(Error::ValueRange {
            name: "data_set",
            value: 0,
            reason: "not a logger data set (/#6–/#9)",
        })?;
        if raw.len() != layout.len() {
            return Err(Error::Fields {
                line: 0,
                data_set,
                expected: layout.len(),
                found: raw.len(),
            });
        }
        for (i, (v, (spec, kind))) in raw.iter().zip(layout.iter()).enumerate() {
            crate::line::check_fits(*v, spec)?;
            let bad = |reason| Error::FieldValue {
                line: 0,
                position: i + 1,
                name: spec.name,
                value: *v,
                reason,
            };
            match kind {
                Kind::Date => {
                    MeterDate::from_field(*v, spec, i + 1)?;
                }
                Kind::Energy | Kind::Volume | Kind::Mass if *v < 0 => {
                    return Err(bad("negative, but this counter never is"))
                }
                Kind::Info if *v < 0 => return Err(bad("negative, but an info code never is")),
                _ => {}
            }
        }
        Ok(LoggerRecord {
            data_set,
            raw: raw.to_vec(),
        })
    }

    /// The logger this record is from.
    pub fn data_set(&self) -> DataSet {
        self.data_set
    }

    /// The record's date (`None` for an empty entry, date 0).
    pub fn date(&self) -> Option<MeterDate> {
        let spec = digits("date", 7);
        self.raw
            .first()
            .and_then(|v| MeterDate::from_field(*v, &spec, 1).ok().flatten())
    }

    /// The raw integers in wire order.
    pub fn raw(&self) -> &[i64] {
        &self.raw
    }

    /// The value of the column with this TD name.
    pub fn get(&self, name: &str) -> Option<i64> {
        let layout = layout(self.data_set)?;
        let i = layout.iter().position(|(s, _)| s.name == name)?;
        self.raw.get(i).copied()
    }

    /// Every column with its meaning: energies, volumes, masses, powers and flows scaled by
    /// the program number; average temperatures in 0.01 °C; dates; the info code.
    pub fn fields(&self, scaling: &Scaling) -> Result<Vec<Field>, Error> {
        let layout = layout(self.data_set).unwrap_or(&[]);
        let mut out = Vec::with_capacity(layout.len());
        for (i, ((spec, kind), v)) in layout.iter().zip(self.raw.iter()).enumerate() {
            let (name, v) = (spec.name, *v);
            out.push(match kind {
                Kind::Date => Field::new(
                    name,
                    v,
                    Meaning::Date(MeterDate::from_field(v, spec, i + 1)?),
                ),
                Kind::Energy => Field::quantity(scaling.energy(name, v)?, v),
                Kind::Volume => Field::quantity(scaling.volume(name, v)?, v),
                Kind::Mass => Field::quantity(scaling.mass(name, v)?, v),
                Kind::Temperature => Field::quantity(Scaling::temperature(name, v)?, v),
                Kind::Power => Field::quantity(scaling.power(name, v)?, v),
                Kind::Flow => Field::quantity(scaling.flow(name, v)?, v),
                Kind::Info => Field::new(
                    name,
                    v,
                    Meaning::Info(InfoCode(u32::try_from(v).unwrap_or(0))),
                ),
                Kind::Raw => Field::raw(name, v),
            });
        }
        Ok(out)
    }
}

/// A `/#6`–`/#9` logger reply: one record per line, in the meter's order (newest first). The
/// TD gives 60 daily, 960 hourly, 36 monthly and 15 yearly lines; the count is not enforced.
/// (The one real dump found of `/#8`/`/#9` looked nibble-coded; such a reply is rejected here,
/// and [`parse_lines`] still gives its raw tokens.)
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Logger {
    data_set: DataSet,
    records: Vec<LoggerRecord>,
}

impl Logger {
    /// A logger reply from checked records (all of `data_set`).
    pub fn new(data_set: DataSet, records: Vec<LoggerRecord>) -> Result<Logger, Error> {
        if layout(data_set).is_none() || records.iter().any(|r| r.data_set != data_set) {
            return Err(Error::ValueRange {
                name: "data_set",
                value: 0,
                reason: "records of one logger data set (/#6–/#9) only",
            });
        }
        Ok(Logger { data_set, records })
    }

    /// Parses a logger reply strictly (field errors name their line).
    pub fn parse(data_set: DataSet, reply: &[u8]) -> Result<Logger, Error> {
        let lines = split_lines(reply)?;
        let mut records = Vec::with_capacity(lines.len());
        for (i, body) in lines.into_iter().enumerate() {
            let at = |e: Error| e.at_line(i + 1);
            let raw = match data_set {
                DataSet::YearlyLog => {
                    parse_tokens(body, data_set, &specs(&YEARLY_LOG_LAYOUT)).map(|r| r.to_vec())
                }
                DataSet::MonthlyLog => {
                    parse_tokens(body, data_set, &specs(&MONTHLY_LOG_LAYOUT)).map(|r| r.to_vec())
                }
                _ => parse_tokens(body, data_set, &specs(&DAILY_LAYOUT)).map(|r| r.to_vec()),
            }
            .map_err(at)?;
            records.push(LoggerRecord::from_raw(data_set, &raw).map_err(at)?);
        }
        Logger::new(data_set, records)
    }

    /// The logger asked for.
    pub fn data_set(&self) -> DataSet {
        self.data_set
    }

    /// The records in line order.
    pub fn records(&self) -> &[LoggerRecord] {
        &self.records
    }

    /// The reply bytes (each line: fields and one space each, then CR).
    pub fn emit(&self) -> Result<Vec<u8>, Error> {
        let layout = layout(self.data_set).unwrap_or(&[]);
        let specs: Vec<Spec> = layout.iter().map(|(s, _)| *s).collect();
        let mut out = Vec::with_capacity(self.records.len() * 80);
        for r in &self.records {
            crate::line::emit_line(&mut out, &r.raw, &specs, 0)?;
        }
        Ok(out)
    }
}

fn specs<const N: usize>(layout: &[(Spec, Kind); N]) -> [Spec; N] {
    layout.map(|(s, _)| s)
}

#[cfg(test)]
mod tests {
    use super::*;

    // KenanV/KamstrupMultical66:demo_output.txt: the first /#5 line, per mc66c.md §5
    // (2017-09-30, 505.084 MWh); the volume and peak here are illustrative.
    const MONTHLY: &[u8] = b"00000060017 0170930 0505084 1292051 0000000 0000000 0000000 \
0000000 0000093 \r0170831 0504300 1289800 0000000 0000000 0000000 0000000 0000090 \r";

    #[test]
    fn monthly_typed_and_raw() {
        let m = MonthlyData::parse(MONTHLY).unwrap();
        assert_eq!(m.customer_no, 60017);
        assert_eq!(m.records.len(), 2);
        assert_eq!(m.records[0].date, MeterDate::new(2017, 9, 30));
        assert_eq!(m.records[0].energy, 505_084);
        assert_eq!(m.emit().unwrap(), MONTHLY);

        let raw = parse_lines(DataSet::Monthly, MONTHLY).unwrap();
        assert_eq!(raw.lines.len(), 2);
        assert_eq!(raw.lines[0].get("energy").unwrap().value, Some(505_084));
        assert_eq!(raw.lines[1].get("date").unwrap().text, "0170831");
        assert_eq!(raw.lines[1].get("customer_no"), None);
    }

    #[test]
    fn monthly_errors_name_the_line() {
        let bad = b"00000060017 0170930 0505084 1292051 0000000 0000000 0000000 0000000 0000093 \r\
0170831 05O4300 1289800 0000000 0000000 0000000 0000000 0000090 \r";
        let e = MonthlyData::parse(bad).unwrap_err();
        assert!(matches!(
            e,
            Error::FieldFormat {
                line: 2,
                position: 2,
                ..
            }
        ));
        assert!(e.to_string().starts_with("line 2: field 2 (energy)"), "{e}");
        let short = b"00000060017 0170930 0505084 \r";
        assert!(matches!(
            MonthlyData::parse(short).unwrap_err(),
            Error::Fields {
                line: 1,
                expected: 9,
                found: 3,
                ..
            }
        ));
    }

    #[test]
    fn nibble_coded_tokens_are_kept_raw() {
        let r = parse_lines(DataSet::MonthlyLog, b"01:;<=> 0000001 \r").unwrap();
        assert_eq!(r.lines[0].tokens[0].value, None);
        assert_eq!(r.lines[0].tokens[0].text, "01:;<=>");
        assert_eq!(r.lines[0].tokens[1].value, Some(1));
        assert_eq!(r.lines[0].tokens[1].name, "energy");
        assert_eq!(
            parse_lines(DataSet::MonthlyLog, b"01\x01 \r")
                .unwrap_err()
                .kind(),
            "field-format"
        );
        assert_eq!(
            parse_lines(DataSet::MonthlyLog, b"01 ").unwrap_err().kind(),
            "truncated"
        );
    }

    #[test]
    fn info_log() {
        // mc66c.md §5: info 12 on 2009-01-21; info 8 on 2014-02-05 08:00, then trailing data.
        let reply = b"0000012 0090121 0143000 0001234 \r0000008 0140205 0080000 0234567 0000001 \r";
        let ev = InfoEvent::parse_all(reply).unwrap();
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0].info, InfoCode(12));
        assert_eq!(ev[0].date, MeterDate::new(2009, 1, 21));
        assert_eq!(ev[1].clock, MeterTime::new(8, 0, 0).unwrap());
        assert_eq!(ev[1].extra.len(), 1);
        assert_eq!(InfoEvent::emit_all(&ev).unwrap(), reply);
        assert!(matches!(
            InfoEvent::parse_all(b"0000012 0090121 \r").unwrap_err(),
            Error::Fields { line: 1, .. }
        ));
    }
}
