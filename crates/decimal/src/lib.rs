//! Exact decimal numbers as heat meters report them: an integer mantissa times a power of ten.
//! The exponent is kept, so a value prints at the meter's own resolution (`55.006`, `0.0`).
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use core::cmp::Ordering;
use core::fmt;
use core::str::FromStr;

/// Largest exponent magnitude a [`Decimal`] holds. KMP allows ±63; we leave room for arithmetic.
pub const MAX_EXPONENT: i16 = 127;

/// Positive exponents up to this print as plain integers (`255000`); larger ones in scientific
/// notation (`1.9591204e24`), which is how such values are read in protocol documents.
const PLAIN_POSITIVE_EXPONENT: i16 = 6;

/// Negative exponents down to this print as plain decimals; smaller ones in scientific notation.
const PLAIN_NEGATIVE_EXPONENT: i16 = -30;

/// An exact decimal: `mantissa × 10^exponent`.
///
/// Equality and hashing are *structural*: `1.0` and `1.00` are different values because they
/// carry a different resolution. Use [`Decimal::cmp_value`] or [`Decimal::eq_value`] to compare
/// numerically.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Decimal {
    mantissa: i128,
    exponent: i16,
}

/// Why a [`Decimal`] could not be made or computed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// The text is not a decimal number.
    #[error("not a decimal number: {0}")]
    Syntax(&'static str),
    /// The mantissa or exponent does not fit.
    #[error("decimal out of range")]
    Overflow,
}

impl Decimal {
    /// Zero with no decimals.
    pub const ZERO: Decimal = Decimal {
        mantissa: 0,
        exponent: 0,
    };

    /// `mantissa × 10^exponent`; fails if the exponent is beyond ±[`MAX_EXPONENT`].
    pub fn new(mantissa: i128, exponent: i16) -> Result<Self, DecimalError> {
        if !(-MAX_EXPONENT..=MAX_EXPONENT).contains(&exponent) {
            return Err(DecimalError::Overflow);
        }
        Ok(Decimal { mantissa, exponent })
    }

    /// An integer with no decimals.
    pub const fn from_int(value: i64) -> Self {
        Decimal {
            mantissa: value as i128,
            exponent: 0,
        }
    }

    /// The integer mantissa.
    pub const fn mantissa(&self) -> i128 {
        self.mantissa
    }

    /// The power of ten.
    pub const fn exponent(&self) -> i16 {
        self.exponent
    }

    /// Number of digits after the decimal point (0 for non-negative exponents).
    pub fn decimals(&self) -> u16 {
        if self.exponent < 0 {
            self.exponent.unsigned_abs()
        } else {
            0
        }
    }

    /// True if the value is zero (at any resolution).
    pub const fn is_zero(&self) -> bool {
        self.mantissa == 0
    }

    /// True if the value is below zero.
    pub const fn is_negative(&self) -> bool {
        self.mantissa < 0
    }

    /// The same value written with `exponent` (only to a smaller or equal exponent, which is
    /// always exact); `None` if that overflows or would need rounding.
    pub fn rescale(&self, exponent: i16) -> Option<Decimal> {
        if exponent > self.exponent {
            // Going coarser is exact only if the dropped digits are zero.
            let shift = u32::try_from(exponent - self.exponent).ok()?;
            let factor = 10i128.checked_pow(shift)?;
            if self.mantissa % factor != 0 {
                return None;
            }
            return Some(Decimal {
                mantissa: self.mantissa / factor,
                exponent,
            });
        }
        let shift = u32::try_from(self.exponent - exponent).ok()?;
        let factor = 10i128.checked_pow(shift)?;
        Some(Decimal {
            mantissa: self.mantissa.checked_mul(factor)?,
            exponent,
        })
    }

    /// Exact sum, at the finer of the two resolutions.
    pub fn checked_add(&self, other: &Decimal) -> Option<Decimal> {
        let e = self.exponent.min(other.exponent);
        let a = self.rescale(e)?;
        let b = other.rescale(e)?;
        Some(Decimal {
            mantissa: a.mantissa.checked_add(b.mantissa)?,
            exponent: e,
        })
    }

    /// Exact difference, at the finer of the two resolutions (`53.65 − 30.2 = 23.45`).
    pub fn checked_sub(&self, other: &Decimal) -> Option<Decimal> {
        self.checked_add(&other.checked_neg()?)
    }

    /// Exact product (`1.5 × 0.25 = 0.375`); `None` on overflow.
    pub fn checked_mul(&self, other: &Decimal) -> Option<Decimal> {
        let exponent = self.exponent.checked_add(other.exponent)?;
        if !(-MAX_EXPONENT..=MAX_EXPONENT).contains(&exponent) {
            return None;
        }
        Some(Decimal {
            mantissa: self.mantissa.checked_mul(other.mantissa)?,
            exponent,
        })
    }

    /// Negation.
    pub fn checked_neg(&self) -> Option<Decimal> {
        Some(Decimal {
            mantissa: self.mantissa.checked_neg()?,
            exponent: self.exponent,
        })
    }

    /// Numeric comparison, ignoring resolution (`1.0` equals `1.00`).
    pub fn cmp_value(&self, other: &Decimal) -> Ordering {
        let e = self.exponent.min(other.exponent);
        match (self.rescale(e), other.rescale(e)) {
            (Some(a), Some(b)) => a.mantissa.cmp(&b.mantissa),
            // Rescaling overflowed: the signs and magnitudes are far apart, so compare those.
            _ => {
                let sign = self.mantissa.signum().cmp(&other.mantissa.signum());
                if sign != Ordering::Equal {
                    return sign;
                }
                let mag = self.magnitude_order().cmp(&other.magnitude_order());
                if self.mantissa < 0 {
                    mag.reverse()
                } else {
                    mag
                }
            }
        }
    }

    /// Numeric equality, ignoring resolution.
    pub fn eq_value(&self, other: &Decimal) -> bool {
        self.cmp_value(other) == Ordering::Equal
    }

    /// Approximate `f64`, for graphs and for sinks whose format is binary floating point
    /// (Prometheus). Never use it for storage.
    pub fn to_f64(&self) -> f64 {
        // Via text so that the result is the f64 closest to the exact value.
        let mut buf = TextBuf::new();
        let _ = fmt::write(
            &mut buf,
            format_args!("{}e{}", self.mantissa, self.exponent),
        );
        buf.as_str().parse::<f64>().unwrap_or(f64::NAN)
    }

    fn digit_count(mut n: u128) -> i32 {
        let mut d = 1;
        while n >= 10 {
            n /= 10;
            d += 1;
        }
        d
    }

    /// Position of the most significant digit (for comparing values too far apart to rescale).
    fn magnitude_order(&self) -> i32 {
        Self::digit_count(self.mantissa.unsigned_abs()) + i32::from(self.exponent)
    }
}

/// A small fixed buffer so that `to_f64` needs no allocation in `no_std`.
struct TextBuf {
    bytes: [u8; 96],
    len: usize,
}

impl TextBuf {
    fn new() -> Self {
        TextBuf {
            bytes: [0; 96],
            len: 0,
        }
    }
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl fmt::Write for TextBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.bytes.len() {
            return Err(fmt::Error);
        }
        self.bytes[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let negative = self.mantissa < 0;
        let digits_value = self.mantissa.unsigned_abs();
        let mut digits = [0u8; 40];
        let mut n = 0;
        let mut v = digits_value;
        loop {
            digits[n] = b'0' + (v % 10) as u8;
            n += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        digits[..n].reverse();
        let digits = &digits[..n];
        let sign = if negative { "-" } else { "" };
        let e = self.exponent;
        if (0..=PLAIN_POSITIVE_EXPONENT).contains(&e) {
            f.write_str(sign)?;
            f.write_str(text(digits))?;
            for _ in 0..e {
                f.write_str("0")?;
            }
            Ok(())
        } else if (PLAIN_NEGATIVE_EXPONENT..0).contains(&e) {
            let decimals = e.unsigned_abs() as usize;
            f.write_str(sign)?;
            if n > decimals {
                f.write_str(text(&digits[..n - decimals]))?;
                f.write_str(".")?;
                f.write_str(text(&digits[n - decimals..]))
            } else {
                f.write_str("0.")?;
                for _ in 0..decimals - n {
                    f.write_str("0")?;
                }
                f.write_str(text(digits))
            }
        } else {
            // Scientific: d.ddd e(N), keeping every mantissa digit (the meter's resolution).
            let exp10 = i32::from(e) + n as i32 - 1;
            f.write_str(sign)?;
            f.write_str(text(&digits[..1]))?;
            if n > 1 {
                f.write_str(".")?;
                f.write_str(text(&digits[1..]))?;
            }
            write!(f, "e{exp10}")
        }
    }
}

/// ASCII digits as text; they are always valid UTF-8.
fn text(digits: &[u8]) -> &str {
    core::str::from_utf8(digits).unwrap_or("?")
}

impl FromStr for Decimal {
    type Err = DecimalError;

    /// Parses `55.006`, `-0.57`, `+3`, `1.9591204e24`, `0.0`. The number of written decimals is
    /// kept, so `Display` gives back the same text for canonical inputs.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (body, exp_part) = match s.find(['e', 'E']) {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        };
        let (negative, body) = match body.as_bytes().first() {
            Some(b'-') => (true, &body[1..]),
            Some(b'+') => (false, &body[1..]),
            _ => (false, body),
        };
        let (int_part, frac_part) = match body.find('.') {
            Some(i) => (&body[..i], &body[i + 1..]),
            None => (body, ""),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(DecimalError::Syntax("no digits"));
        }
        let mut mantissa: i128 = 0;
        for c in int_part.bytes().chain(frac_part.bytes()) {
            if !c.is_ascii_digit() {
                return Err(DecimalError::Syntax("unexpected character"));
            }
            mantissa = mantissa
                .checked_mul(10)
                .and_then(|m| m.checked_add(i128::from(c - b'0')))
                .ok_or(DecimalError::Overflow)?;
        }
        let frac_len = i16::try_from(frac_part.len()).map_err(|_| DecimalError::Overflow)?;
        let mut exponent = -frac_len;
        if let Some(exp) = exp_part {
            let e: i16 = exp
                .parse()
                .map_err(|_| DecimalError::Syntax("bad exponent"))?;
            exponent = exponent.checked_add(e).ok_or(DecimalError::Overflow)?;
        }
        if negative {
            mantissa = -mantissa;
        }
        Decimal::new(mantissa, exponent)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Decimal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Decimal {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Decimal;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an exact decimal as a string, e.g. \"55.006\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Decimal, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Decimal, E> {
                Ok(Decimal::from_int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Decimal, E> {
                Decimal::new(i128::from(v), 0).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(m: i128, e: i16) -> Decimal {
        Decimal::new(m, e).unwrap()
    }

    #[test]
    fn prints_at_meter_resolution() {
        assert_eq!(d(55006, -3).to_string(), "55.006");
        assert_eq!(d(-57, -2).to_string(), "-0.57");
        assert_eq!(d(0, -1).to_string(), "0.0");
        assert_eq!(d(0, 0).to_string(), "0");
        assert_eq!(d(19591204, 17).to_string(), "1.9591204e24");
        assert_eq!(d(255, 3).to_string(), "255000");
        assert_eq!(d(87654321, 3).to_string(), "87654321000");
        assert_eq!(d(6344, -2).to_string(), "63.44");
        assert_eq!(d(251, -3).to_string(), "0.251");
        assert_eq!(d(5, -4).to_string(), "0.0005");
        assert_eq!(d(-12345, -2).to_string(), "-123.45");
        assert_eq!(d(1, -40).to_string(), "1e-40");
    }

    #[test]
    fn parses_what_it_prints() {
        for s in [
            "55.006",
            "-0.57",
            "0.0",
            "1.9591204e24",
            "255000",
            "0.0005",
            "-123.45",
        ] {
            let v: Decimal = s.parse().unwrap();
            assert!(v.eq_value(&v.to_string().parse().unwrap()), "{s}");
        }
        assert_eq!("55.006".parse::<Decimal>().unwrap(), d(55006, -3));
        assert_eq!("0.0".parse::<Decimal>().unwrap().to_string(), "0.0");
        assert!("".parse::<Decimal>().is_err());
        assert!("1.2.3".parse::<Decimal>().is_err());
        assert!("abc".parse::<Decimal>().is_err());
        assert!("1e".parse::<Decimal>().is_err());
        assert!("9".repeat(60).parse::<Decimal>().is_err());
    }

    #[test]
    fn subtraction_is_exact() {
        // 53.65 − 30.2 would be 23.449999999999996 in f64.
        assert_eq!(
            d(5365, -2).checked_sub(&d(302, -1)).unwrap().to_string(),
            "23.45"
        );
        assert_eq!(d(6811, -2).checked_sub(&d(3366, -2)).unwrap(), d(3445, -2));
    }

    #[test]
    fn multiplication_is_exact() {
        assert_eq!(
            d(15, -1).checked_mul(&d(25, -2)).unwrap().to_string(),
            "0.375"
        );
        assert_eq!(
            d(2000, 0).checked_mul(&d(900_000, 0)).unwrap(),
            d(1_800_000_000, 0)
        );
        assert!(d(i128::MAX, 0).checked_mul(&d(2, 0)).is_none());
        assert!(d(1, MAX_EXPONENT).checked_mul(&d(1, 1)).is_none());
    }

    #[test]
    fn numeric_comparison_ignores_resolution() {
        assert!(d(10, -1).eq_value(&d(100, -2)));
        assert_ne!(d(10, -1), d(100, -2));
        assert_eq!(d(1, 100).cmp_value(&d(1, -100)), Ordering::Greater);
        assert_eq!(d(-1, 100).cmp_value(&d(1, -100)), Ordering::Less);
        assert_eq!(d(-1, 100).cmp_value(&d(-1, 90)), Ordering::Less);
    }

    #[test]
    fn to_f64_is_closest() {
        assert_eq!(d(6344, -2).to_f64(), 63.44);
        assert_eq!(d(19591204, 17).to_f64(), 1.9591204e24);
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_as_string() {
        let v = d(55006, -3);
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"55.006\"");
        assert_eq!(serde_json::from_str::<Decimal>("\"55.006\"").unwrap(), v);
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(m in any::<i64>(), e in -40i16..40) {
            let v = d(i128::from(m), e);
            let back: Decimal = v.to_string().parse().unwrap();
            prop_assert!(back.eq_value(&v));
        }

        #[test]
        fn sub_then_add_is_identity(a in any::<i32>(), ea in -6i16..6, b in any::<i32>(), eb in -6i16..6) {
            let x = d(i128::from(a), ea);
            let y = d(i128::from(b), eb);
            let back = x.checked_sub(&y).unwrap().checked_add(&y).unwrap();
            prop_assert!(back.eq_value(&x));
        }
    }
}
