//! Register records of GetRegister replies: id, unit, and the KMP "float" value.
//! Values are sign-magnitude mantissas with a power-of-ten exponent, kept exact as `Decimal`.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use kamstrup_decimal::Decimal;

use crate::{Error, Unit};

/// A KMP register id (big-endian u16 on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RegisterId(pub u16);

impl From<u16> for RegisterId {
    fn from(id: u16) -> Self {
        RegisterId(id)
    }
}

impl fmt::Display for RegisterId {
    /// The decimal id, as register tables list it (`60` for E1).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Largest exponent magnitude a KMP value carries (6 bits).
pub const MAX_VALUE_EXPONENT: i16 = 63;
/// Largest mantissa length in bytes this crate accepts (fits a u64).
pub const MAX_VALUE_LEN: u8 = 8;

/// Bytes before the mantissa in a record: id (2), unit, len, si_ex.
const RECORD_HEADER_LEN: usize = 5;
/// si_ex bit 7: the value is negative.
const SI_NEGATIVE: u8 = 0x80;
/// si_ex bit 6: the exponent is negative.
const SE_NEGATIVE: u8 = 0x40;
/// si_ex bits 5..0: exponent magnitude.
const EXPONENT_MASK: u8 = 0x3F;

/// Decodes a KMP value from its `si_ex` byte and big-endian unsigned mantissa (1..=8 bytes).
///
/// A negative zero (SI set, mantissa 0) comes out as zero with the same exponent.
/// `register` only labels the error for a bad length.
pub fn decode_value(register: u16, si_ex: u8, mantissa: &[u8]) -> Result<Decimal, Error> {
    let len = u8::try_from(mantissa.len()).unwrap_or(u8::MAX);
    if !(1..=MAX_VALUE_LEN).contains(&len) {
        return Err(Error::ValueLength { register, len });
    }
    let magnitude = mantissa
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    let mut value = i128::from(magnitude);
    if si_ex & SI_NEGATIVE != 0 {
        value = -value;
    }
    let mut exponent = i16::from(si_ex & EXPONENT_MASK);
    if si_ex & SE_NEGATIVE != 0 {
        exponent = -exponent;
    }
    Decimal::new(value, exponent).map_err(|_| Error::ExponentRange(exponent))
}

/// Encodes `value` as `len, si_ex, mantissa` (appended to `out`).
///
/// The mantissa takes 4 bytes when it fits (what meters send for most registers), otherwise the
/// fewest bytes up to 8. The value is written at its own exponent, never rescaled.
pub fn encode_value(register: u16, value: &Decimal, out: &mut Vec<u8>) -> Result<(), Error> {
    let exponent = value.exponent();
    if !(-MAX_VALUE_EXPONENT..=MAX_VALUE_EXPONENT).contains(&exponent) {
        return Err(Error::ExponentRange(exponent));
    }
    let magnitude = u64::try_from(value.mantissa().unsigned_abs())
        .map_err(|_| Error::MantissaRange { register })?;
    let bytes = magnitude.to_be_bytes();
    let significant = bytes.len() - (magnitude.leading_zeros() / 8) as usize;
    let len = significant.max(4);
    let mut si_ex =
        u8::try_from(exponent.unsigned_abs()).map_err(|_| Error::ExponentRange(exponent))?;
    if exponent < 0 {
        si_ex |= SE_NEGATIVE;
    }
    if value.is_negative() {
        si_ex |= SI_NEGATIVE;
    }
    let mantissa = bytes
        .get(bytes.len() - len..)
        .ok_or(Error::MantissaRange { register })?;
    out.push(u8::try_from(len).map_err(|_| Error::MantissaRange { register })?);
    out.push(si_ex);
    out.extend_from_slice(mantissa);
    Ok(())
}

/// One register of a GetRegister reply.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RegisterRecord {
    /// Register id.
    pub id: RegisterId,
    /// Unit code sent by the meter (authoritative; may be unknown).
    pub unit: Unit,
    /// Exact value at the meter's resolution.
    pub value: Decimal,
}

impl RegisterRecord {
    /// Parses one record from the front of `data`; returns it and the number of bytes used.
    ///
    /// Errors: [`Error::Truncated`] if `data` ends inside the record, [`Error::ValueLength`] for
    /// a length byte outside 1..=8.
    pub fn parse(data: &[u8]) -> Result<(RegisterRecord, usize), Error> {
        let truncated = Error::Truncated {
            what: "register record",
            len: data.len(),
        };
        let (header, rest) = data
            .split_at_checked(RECORD_HEADER_LEN)
            .ok_or(truncated.clone())?;
        let [id_hi, id_lo, unit, len, si_ex] = *header else {
            return Err(truncated);
        };
        let id = u16::from_be_bytes([id_hi, id_lo]);
        if !(1..=MAX_VALUE_LEN).contains(&len) {
            return Err(Error::ValueLength { register: id, len });
        }
        let mantissa = rest.get(..usize::from(len)).ok_or(truncated)?;
        let value = decode_value(id, si_ex, mantissa)?;
        Ok((
            RegisterRecord {
                id: RegisterId(id),
                unit: Unit(unit),
                value,
            },
            RECORD_HEADER_LEN + usize::from(len),
        ))
    }

    /// Appends the record (id, unit, len, si_ex, mantissa) to `out`; see [`encode_value`] for the
    /// length rule. Errors on an exponent beyond ±63 or a mantissa wider than 8 bytes, leaving
    /// `out` unchanged.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let mut value = Vec::with_capacity(10);
        encode_value(self.id.0, &self.value, &mut value)?;
        out.extend_from_slice(&self.id.0.to_be_bytes());
        out.push(self.unit.0);
        out.extend_from_slice(&value);
        Ok(())
    }

    /// The value as ISO-style text for date and time units, else `None`.
    ///
    /// Units 0x2F hhmmss → `"20:02:43"`, 0x30 yymmdd → `"2023-01-23"` (years 20yy),
    /// 0x31 yyyymmdd → `"2023-01-23"`, 0x32 mmdd → `"--01-23"` (ISO 8601 without year),
    /// 0x4F (register 348) → `"2024-07-15 10:00:05 standard time (DST +60 min)"`.
    /// Leading zeros vanish on the wire (09:15:00 is sent as 91500), so the number is read as if
    /// zero-padded. `None` if the value is negative, not an integer, has too many digits or
    /// names an impossible time or date (month 13, day 32, 24:00:00 ...).
    pub fn date_time_text(&self) -> Option<String> {
        if self.unit == crate::time::DATE_TIME_UNIT {
            return crate::time::MeterDateTime::from_record(self)
                .ok()
                .map(|t| alloc::format!("{t}"));
        }
        let n = u32::try_from(self.value.rescale(0)?.mantissa()).ok()?;
        let (hi, mid, lo) = (n / 10_000, n / 100 % 100, n % 100);
        match self.unit.0 {
            0x2F => {
                (hi < 24 && mid < 60 && lo < 60).then(|| alloc::format!("{hi:02}:{mid:02}:{lo:02}"))
            }
            0x30 => (hi < 100 && valid_day(mid, lo))
                .then(|| alloc::format!("20{hi:02}-{mid:02}-{lo:02}")),
            0x31 => (hi < 10_000 && valid_day(mid, lo))
                .then(|| alloc::format!("{hi:04}-{mid:02}-{lo:02}")),
            0x32 => (hi == 0 && valid_day(mid, lo)).then(|| alloc::format!("--{mid:02}-{lo:02}")),
            _ => None,
        }
    }
}

/// Month 1..=12 and a day that month can have (29 February allowed: the year may be unknown).
fn valid_day(month: u32, day: u32) -> bool {
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 => 29,
        _ => return false,
    };
    (1..=days).contains(&day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(unit: u8, value: Decimal) -> RegisterRecord {
        RegisterRecord {
            id: RegisterId(1002),
            unit: Unit(unit),
            value,
        }
    }

    #[test]
    fn date_time_texts() {
        let t = |unit, n| record(unit, Decimal::from_int(n)).date_time_text();
        assert_eq!(t(0x2F, 200243).as_deref(), Some("20:02:43"));
        assert_eq!(t(0x2F, 91500).as_deref(), Some("09:15:00"));
        assert_eq!(t(0x2F, 0).as_deref(), Some("00:00:00"));
        assert_eq!(t(0x2F, 240000), None);
        assert_eq!(t(0x2F, 1_000_000), None);
        assert_eq!(t(0x30, 230123).as_deref(), Some("2023-01-23"));
        assert_eq!(t(0x30, 50101).as_deref(), Some("2005-01-01"));
        assert_eq!(t(0x30, 2_294_051), None);
        assert_eq!(t(0x30, 231301), None);
        assert_eq!(t(0x30, 230230), None);
        assert_eq!(t(0x31, 20230123).as_deref(), Some("2023-01-23"));
        assert_eq!(t(0x32, 123).as_deref(), Some("--01-23"));
        assert_eq!(t(0x32, 10123), None);
        assert_eq!(t(0x33, 230123), None);
        assert_eq!(t(0x2F, -1), None);
        let scaled = record(0x2F, Decimal::new(2_002_430, -1).unwrap());
        assert_eq!(scaled.date_time_text().as_deref(), Some("20:02:43"));
        let fraction = record(0x2F, Decimal::new(2_002_431, -1).unwrap());
        assert_eq!(fraction.date_time_text(), None);
    }

    #[test]
    fn encode_picks_length() {
        let mut out = Vec::new();
        encode_value(1, &Decimal::new(-57, -2).unwrap(), &mut out).unwrap();
        assert_eq!(out, [0x04, 0xC2, 0x00, 0x00, 0x00, 0x39]);
        out.clear();
        encode_value(1, &Decimal::new(87_654_321, 3).unwrap(), &mut out).unwrap();
        assert_eq!(out, [0x04, 0x03, 0x05, 0x39, 0x7F, 0xB1]);
        out.clear();
        encode_value(1, &Decimal::new(1 << 40, 0).unwrap(), &mut out).unwrap();
        assert_eq!(out, [0x06, 0x00, 0x01, 0, 0, 0, 0, 0]);
        out.clear();
        let max = Decimal::new(i128::from(u64::MAX), -63).unwrap();
        encode_value(1, &max, &mut out).unwrap();
        assert_eq!(out.len(), 10);
    }

    #[test]
    fn encode_rejects_out_of_range() {
        let mut out = Vec::new();
        let big = Decimal::new(1, 64).unwrap();
        assert_eq!(
            encode_value(1, &big, &mut out),
            Err(Error::ExponentRange(64))
        );
        let wide = Decimal::new(i128::from(u64::MAX) + 1, 0).unwrap();
        assert_eq!(
            record(0x33, wide).encode_into(&mut out),
            Err(Error::MantissaRange { register: 1002 })
        );
        assert!(out.is_empty());
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            RegisterRecord::parse(&[0x00, 0x3C, 0x08]),
            Err(Error::Truncated {
                what: "register record",
                len: 3
            })
        );
        assert_eq!(
            RegisterRecord::parse(&[0x00, 0x3C, 0x08, 0x00, 0x00]),
            Err(Error::ValueLength {
                register: 60,
                len: 0
            })
        );
        assert_eq!(
            RegisterRecord::parse(&[0x00, 0x3C, 0x08, 0x09, 0x00]),
            Err(Error::ValueLength {
                register: 60,
                len: 9
            })
        );
        assert_eq!(
            RegisterRecord::parse(&[0x00, 0x3C, 0x08, 0x02, 0x00, 0x01]),
            Err(Error::Truncated {
                what: "register record",
                len: 6
            })
        );
    }
}
