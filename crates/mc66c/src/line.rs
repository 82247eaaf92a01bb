//! Splitting one CR-terminated "/#n" line into fixed-width numeric fields, and back.
//! Strict: exact field count and widths; anything else is rejected with the reason.

#[cfg(feature = "alloc")]
use alloc::vec::Vec;

use crate::error::{Error, FieldProblem, Snippet};
use crate::request::DataSet;

/// The format of one field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Width {
    /// 7 characters: 7 digits, or `-` and 6 digits (the meter puts the sign in the first digit).
    Signed7,
    /// Exactly this many digits, never negative.
    Digits(usize),
}

impl Width {
    pub(crate) const fn chars(self) -> usize {
        match self {
            Width::Signed7 => 7,
            Width::Digits(n) => n,
        }
    }
}

/// Name and format of one field.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Spec {
    pub(crate) name: &'static str,
    pub(crate) width: Width,
}

pub(crate) const fn s7(name: &'static str) -> Spec {
    Spec {
        name,
        width: Width::Signed7,
    }
}

pub(crate) const fn digits(name: &'static str, n: usize) -> Spec {
    Spec {
        name,
        width: Width::Digits(n),
    }
}

/// The body of a single-line reply: without its CR (or CR LF) terminator.
pub(crate) fn single_line(reply: &[u8], data_set: DataSet) -> Result<&[u8], Error> {
    if reply.iter().all(|b| matches!(b, b'\r' | b'\n' | b' ')) {
        return Err(Error::Empty);
    }
    let body = strip_terminator(reply).ok_or(Error::Truncated {
        received: reply.len(),
        what: "the line does not end in CR",
    })?;
    let breaks = body.iter().filter(|b| **b == b'\r').count();
    if breaks > 0 || body.contains(&b'\n') {
        return Err(Error::Lines {
            data_set,
            expected: 1,
            found: breaks + 1,
        });
    }
    Ok(body)
}

/// `line` without a final CR or CR LF; `None` if it has neither.
pub(crate) fn strip_terminator(line: &[u8]) -> Option<&[u8]> {
    line.strip_suffix(b"\r\n")
        .or_else(|| line.strip_suffix(b"\r"))
}

/// Space-separated tokens (one or more spaces between; leading/trailing spaces ignored).
pub(crate) fn tokens(body: &[u8]) -> impl Iterator<Item = &[u8]> + Clone {
    body.split(|b| *b == b' ').filter(|t| !t.is_empty())
}

/// Checks one token against its spec and returns its value.
pub(crate) fn field(token: &[u8], spec: &Spec, position: usize) -> Result<i64, Error> {
    let bad = |problem| Error::FieldFormat {
        line: 0,
        position,
        name: spec.name,
        token: Snippet::new(token),
        width: spec.width.chars(),
        problem,
    };
    let (negative, digits) = match token.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, token),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(bad(FieldProblem::NotDigits));
    }
    match spec.width {
        Width::Signed7 => {
            if token.len() != 7 {
                return Err(bad(FieldProblem::Width { found: token.len() }));
            }
        }
        Width::Digits(n) => {
            if negative {
                return Err(bad(FieldProblem::Negative));
            }
            if token.len() != n {
                return Err(bad(FieldProblem::Width { found: token.len() }));
            }
        }
    }
    // At most 11 digits (customer number): no overflow in i64.
    let magnitude = digits
        .iter()
        .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'));
    Ok(if negative { -magnitude } else { magnitude })
}

/// Parses a single-line reply of exactly `N` fields.
pub(crate) fn parse_fixed<const N: usize>(
    reply: &[u8],
    data_set: DataSet,
    specs: &[Spec; N],
) -> Result<[i64; N], Error> {
    let body = single_line(reply, data_set)?;
    parse_tokens(body, data_set, specs)
}

/// Parses the tokens of one line body (no terminator) against `specs`.
pub(crate) fn parse_tokens<const N: usize>(
    body: &[u8],
    data_set: DataSet,
    specs: &[Spec; N],
) -> Result<[i64; N], Error> {
    let toks = tokens(body);
    let found = toks.clone().count();
    if found != N {
        if found > N {
            // Junk in front of a complete, valid set of fields: say so, but still reject.
            let extra = found - N;
            let tail_ok = toks
                .clone()
                .skip(extra)
                .zip(specs.iter())
                .enumerate()
                .all(|(i, (t, s))| field(t, s, i + 1).is_ok());
            if tail_ok {
                let first = toks.clone().next().unwrap_or(&[]);
                return Err(Error::GarbagePrefix {
                    data_set,
                    extra,
                    first: Snippet::new(first),
                    expected: N,
                });
            }
        }
        return Err(Error::Fields {
            line: 0,
            data_set,
            expected: N,
            found,
        });
    }
    let mut out = [0i64; N];
    for (i, ((t, s), o)) in toks.zip(specs.iter()).zip(out.iter_mut()).enumerate() {
        *o = field(t, s, i + 1)?;
    }
    Ok(out)
}

/// Checks that `value` can be written in `spec`'s width.
pub(crate) fn check_fits(value: i64, spec: &Spec) -> Result<(), Error> {
    let ok = match spec.width {
        Width::Signed7 => (-999_999..=9_999_999).contains(&value),
        Width::Digits(n) => {
            let limit = u32::try_from(n)
                .ok()
                .and_then(|n| 10i64.checked_pow(n))
                .unwrap_or(i64::MAX);
            (0..limit).contains(&value)
        }
    };
    if ok {
        Ok(())
    } else {
        Err(Error::ValueRange {
            name: spec.name,
            value,
            reason: match spec.width {
                Width::Signed7 => "a 7-character field holds -999999..=9999999",
                Width::Digits(_) => "more digits than the field has, or negative",
            },
        })
    }
}

/// Writes one field in its width (zero-padded; `-` in the first position if negative).
#[cfg(feature = "alloc")]
pub(crate) fn write_field(out: &mut Vec<u8>, value: i64, spec: &Spec) -> Result<(), Error> {
    check_fits(value, spec)?;
    let width = spec.width.chars();
    let (sign, magnitude, digits) = if value < 0 {
        (true, value.unsigned_abs(), width.saturating_sub(1))
    } else {
        (false, value.unsigned_abs(), width)
    };
    if sign {
        out.push(b'-');
    }
    let mut buf = [b'0'; 20];
    let mut m = magnitude;
    for slot in buf.iter_mut().rev() {
        // m % 10 < 10, so the cast is exact.
        *slot = b'0' + (m % 10) as u8;
        m /= 10;
    }
    let start = buf.len().saturating_sub(digits);
    out.extend_from_slice(buf.get(start..).unwrap_or(&[]));
    Ok(())
}

/// Writes a full line: each field followed by one space, `extra_spaces` more spaces, then CR.
#[cfg(feature = "alloc")]
pub(crate) fn emit_line(
    out: &mut Vec<u8>,
    values: &[i64],
    specs: &[Spec],
    extra_spaces: usize,
) -> Result<(), Error> {
    for (v, s) in values.iter().zip(specs.iter()) {
        write_field(out, *v, s)?;
        out.push(b' ');
    }
    out.extend(core::iter::repeat_n(b' ', extra_spaces));
    out.push(b'\r');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Spec = s7("x");

    #[test]
    fn signed_fields() {
        assert_eq!(field(b"0000000", &S, 1), Ok(0));
        assert_eq!(field(b"-002735", &S, 1), Ok(-2735));
        assert_eq!(field(b"9999999", &S, 1), Ok(9_999_999));
        assert_eq!(
            field(b"-0000001", &S, 1).unwrap_err().kind(),
            "field-format"
        );
        assert_eq!(field(b"00000-1", &S, 1).unwrap_err().kind(), "field-format");
        assert_eq!(field(b"-", &S, 1).unwrap_err().kind(), "field-format");
        assert_eq!(field(b"+000001", &S, 1).unwrap_err().kind(), "field-format");
    }

    #[test]
    fn digit_fields() {
        let c = digits("customer_no", 11);
        assert_eq!(field(b"00000060017", &c, 1), Ok(60017));
        assert!(matches!(
            field(b"-0000060017", &c, 1),
            Err(Error::FieldFormat {
                problem: FieldProblem::Negative,
                ..
            })
        ));
        assert!(matches!(
            field(b"0000060017", &c, 1),
            Err(Error::FieldFormat {
                problem: FieldProblem::Width { found: 10 },
                ..
            })
        ));
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn write_fields() {
        let mut v = Vec::new();
        write_field(&mut v, -2735, &S).unwrap();
        write_field(&mut v, 31, &S).unwrap();
        write_field(&mut v, 60017, &digits("c", 11)).unwrap();
        assert_eq!(v, b"-002735000003100000060017");
        assert_eq!(
            write_field(&mut v, -1_000_000, &S).unwrap_err().kind(),
            "value-range"
        );
        assert_eq!(
            write_field(&mut v, 10_000_000, &S).unwrap_err().kind(),
            "value-range"
        );
    }
}
