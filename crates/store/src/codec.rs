//! Conversions between the domain types and SQLite columns: exact decimals, UTC milliseconds,
//! protocols, serials. Every decode checks its input, so a damaged file gives an error, not a panic.

use chrono::{DateTime, Utc};
use kamstrup_decimal::Decimal;
use kamstrup_reading::Protocol;

use crate::StoreError;

/// Unix milliseconds (UTC); sub-millisecond precision is dropped (floor).
pub(crate) fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms).ok_or(StoreError::TimeOutOfRange(ms))
}

pub(crate) fn protocol_text(p: Protocol) -> &'static str {
    match p {
        Protocol::Kmp => "kmp",
        Protocol::Mc66c => "mc66c",
    }
}

pub(crate) fn parse_protocol(s: &str) -> Result<Protocol, StoreError> {
    match s {
        "kmp" => Ok(Protocol::Kmp),
        "mc66c" => Ok(Protocol::Mc66c),
        other => Err(StoreError::Corrupt(format!("unknown protocol {other:?}"))),
    }
}

/// Serials are u64 but SQLite integers are i64: store the same 64 bits, so every serial
/// round-trips (real serials are far below 2^63 and look normal in the file).
pub(crate) fn serial_to_sql(serial: u64) -> i64 {
    i64::from_ne_bytes(serial.to_ne_bytes())
}

pub(crate) fn serial_from_sql(v: i64) -> u64 {
    u64::from_ne_bytes(v.to_ne_bytes())
}

/// The mantissa and exponent columns of a value.
pub(crate) fn decimal_to_sql(register: &str, d: &Decimal) -> Result<(i64, i64), StoreError> {
    let m = i64::try_from(d.mantissa()).map_err(|_| StoreError::ValueOutOfRange {
        register: register.to_owned(),
        value: d.to_string(),
    })?;
    Ok((m, i64::from(d.exponent())))
}

pub(crate) fn decimal_from_sql(mantissa: i64, exponent: i64) -> Result<Decimal, StoreError> {
    let e = i16::try_from(exponent)
        .map_err(|_| StoreError::Corrupt(format!("exponent {exponent} out of range")))?;
    Decimal::new(i128::from(mantissa), e)
        .map_err(|_| StoreError::Corrupt(format!("exponent {exponent} out of range")))
}

/// Missing register ids as `"3,60,1004"`; `None` for an empty list.
pub(crate) fn missing_to_sql(missing: &[u16]) -> Option<String> {
    if missing.is_empty() {
        return None;
    }
    let parts: Vec<String> = missing.iter().map(u16::to_string).collect();
    Some(parts.join(","))
}

pub(crate) fn missing_from_sql(text: Option<&str>) -> Result<Vec<u16>, StoreError> {
    match text {
        None | Some("") => Ok(Vec::new()),
        Some(t) => t
            .split(',')
            .map(|p| {
                p.parse::<u16>()
                    .map_err(|_| StoreError::Corrupt(format!("bad missing-register list {t:?}")))
            })
            .collect(),
    }
}

pub(crate) fn u16_from_sql(v: i64, what: &str) -> Result<u16, StoreError> {
    u16::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} {v} out of range")))
}

pub(crate) fn u8_from_sql(v: i64, what: &str) -> Result<u8, StoreError> {
    u8::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} {v} out of range")))
}

/// A SQL `LIMIT` from a `usize` (anything beyond i64 means "no limit").
pub(crate) fn limit_to_sql(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_round_trip_all_64_bits() {
        for s in [
            0,
            1,
            5_512_345,
            u64::from(u32::MAX),
            i64::MAX as u64,
            u64::MAX,
        ] {
            assert_eq!(serial_from_sql(serial_to_sql(s)), s);
        }
    }

    #[test]
    fn missing_lists_round_trip() {
        assert_eq!(missing_to_sql(&[]), None);
        let text = missing_to_sql(&[3, 60, 1004]).unwrap();
        assert_eq!(text, "3,60,1004");
        assert_eq!(missing_from_sql(Some(&text)).unwrap(), vec![3, 60, 1004]);
        assert!(missing_from_sql(Some("3,x")).is_err());
    }

    #[test]
    fn decimals_beyond_i64_are_refused() {
        let big = Decimal::new(i128::from(i64::MAX) + 1, 0).unwrap();
        assert!(matches!(
            decimal_to_sql("e", &big),
            Err(StoreError::ValueOutOfRange { .. })
        ));
        assert!(decimal_from_sql(1, 200).is_err());
    }
}
