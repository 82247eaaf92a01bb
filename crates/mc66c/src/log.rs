//! Multi-line "/#n" replies (/#5 monthly data, /#6–/#9 loggers, /#J info logger): raw tokens
//! with the TD's field names for all, typed records where the layout is certain enough.
//!
//! The TD layouts of the loggers were not checked against complete real replies (the one dump
//! found overflowed its buffer; `/#8`/`/#9` looked nibble-coded, `/#J` had undocumented trailing
//! data), so [`LogReply`] keeps every token as text, with a numeric value where it is one, and
//! names tokens by position only. Typed parsing is offered for `/#5` ([`MonthlyData`]) and
//! `/#J` ([`InfoEvent`]), whose layouts match the real first lines.

use alloc::string::String;
use alloc::vec::Vec;

use crate::data::{MeterDate, MeterTime};
use crate::error::{Error, FieldProblem, Snippet};
use crate::info::InfoCode;
use crate::line::{digits, field, parse_tokens, s7, strip_terminator, tokens, Spec};
use crate::request::DataSet;

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
