//! Parsing of the readings API's query string into checked parameters, with an error message
//! for every way it can be wrong (the API answers those with 400 and the message).

use chrono::{DateTime, Duration, Utc};
use kamstrup_store::Bucket;

/// The longest range of a raw (unbucketed) series: about a quarter, ~9 000 points at 15 min.
pub(crate) const MAX_RAW_SPAN_DAYS: i64 = 93;

/// The longest range of any series (a little over the default 10-year retention).
pub(crate) const MAX_SPAN_DAYS: i64 = 11 * 366;

/// Without `from`, a series covers this much before `to`.
pub(crate) const DEFAULT_SPAN_HOURS: i64 = 24;

/// How the points of a bucketed series are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Every stored value (no bucket).
    Raw,
    /// Per bucket: the exact average, with minimum and maximum (instantaneous values).
    Mean,
    /// Per bucket: the counter's increase (energy, volume, hours).
    Usage,
}

impl Mode {
    /// The name used in the API.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Mode::Raw => "raw",
            Mode::Mean => "mean",
            Mode::Usage => "usage",
        }
    }
}

/// The checked parameters of `/api/meters/{serial}/readings`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ReadingsQuery {
    /// Register name (`heat_energy`, `t1`, …).
    pub(crate) register: String,
    /// Start of the range (inclusive).
    pub(crate) from: DateTime<Utc>,
    /// End of the range (exclusive).
    pub(crate) to: DateTime<Utc>,
    /// Bucket, or `None` for every stored value.
    pub(crate) bucket: Option<Bucket>,
    /// `mean` or `usage` when asked for explicitly; `None` = decided by the register's unit.
    pub(crate) mode: Option<Mode>,
}

/// Parses the query string (without `?`); `now` is the default end of the range.
pub(crate) fn parse_readings_query(
    raw: Option<&str>,
    now: DateTime<Utc>,
) -> Result<ReadingsQuery, String> {
    let mut register = None;
    let mut from = None;
    let mut to = None;
    let mut bucket = None;
    let mut mode = None;
    for (key, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        let slot = match key.as_ref() {
            "register" => &mut register,
            "from" => &mut from,
            "to" => &mut to,
            "bucket" => &mut bucket,
            "mode" => &mut mode,
            other => {
                return Err(format!(
                    "unknown parameter {other:?}; the parameters are register, from, to, bucket and mode"
                ))
            }
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(format!("parameter {key:?} is given twice"));
        }
    }
    let register = register.ok_or_else(|| {
        "missing parameter \"register\" (a register name such as heat_energy, t1, power)"
            .to_string()
    })?;
    if register.is_empty()
        || register.len() > 64
        || !register
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(format!(
            "register {register:?} is not a register name (lowercase letters, digits and _, e.g. heat_energy)"
        ));
    }
    let to = match to {
        Some(t) => parse_time("to", &t)?,
        None => now,
    };
    let from = match from {
        Some(t) => parse_time("from", &t)?,
        None => to - Duration::hours(DEFAULT_SPAN_HOURS),
    };
    if from >= to {
        return Err(format!("\"from\" ({from}) must be before \"to\" ({to})"));
    }
    let span = to - from;
    if span > Duration::days(MAX_SPAN_DAYS) {
        return Err(format!(
            "the range is longer than {MAX_SPAN_DAYS} days; ask for a shorter one"
        ));
    }
    let bucket = match bucket.as_deref() {
        None | Some("" | "raw" | "none") => None,
        Some("hour") => Some(Bucket::Hour),
        Some("day") => Some(Bucket::Day),
        Some("week") => Some(Bucket::Week),
        Some("month") => Some(Bucket::Month),
        Some(other) => {
            return Err(format!(
                "bucket {other:?} is not one of raw, hour, day, week, month"
            ))
        }
    };
    if bucket.is_none() && span > Duration::days(MAX_RAW_SPAN_DAYS) {
        return Err(format!(
            "a raw series covers at most {MAX_RAW_SPAN_DAYS} days; ask for a bucket (hour, day, week or month)"
        ));
    }
    let mode = match mode.as_deref() {
        None | Some("" | "auto") => None,
        Some("mean") => Some(Mode::Mean),
        Some("usage") => Some(Mode::Usage),
        Some(other) => return Err(format!("mode {other:?} is not one of auto, mean, usage")),
    };
    if mode.is_some() && bucket.is_none() {
        return Err("mode needs a bucket (hour, day, week or month)".to_string());
    }
    Ok(ReadingsQuery {
        register,
        from,
        to,
        bucket,
        mode,
    })
}

fn parse_time(name: &str, text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            format!("{name}={text:?} is not an RFC 3339 time such as 2026-05-17T00:00:00Z ({e})")
        })
}

/// Parses the `{serial}` of a path: a decimal meter serial number.
pub(crate) fn parse_serial(text: &str) -> Result<u64, String> {
    if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{text:?} is not a meter serial number (decimal digits)"
        ));
    }
    text.parse()
        .map_err(|_| format!("{text:?} is not a meter serial number (too large)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-05-17T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn defaults_to_the_last_24_hours_raw() {
        let q = parse_readings_query(Some("register=t1"), now()).unwrap();
        assert_eq!(q.register, "t1");
        assert_eq!(q.to, now());
        assert_eq!(q.from, now() - Duration::hours(24));
        assert_eq!(q.bucket, None);
        assert_eq!(q.mode, None);
    }

    #[test]
    fn full_query_with_encoded_times() {
        let q = parse_readings_query(
            Some("register=heat_energy&from=2026-01-01T00%3A00%3A00%2B01%3A00&to=2026-05-01T00:00:00Z&bucket=week&mode=usage"),
            now(),
        )
        .unwrap();
        assert_eq!(
            q.from,
            "2025-12-31T23:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(q.bucket, Some(Bucket::Week));
        assert_eq!(q.mode, Some(Mode::Usage));
    }

    #[test]
    fn every_mistake_has_a_message() {
        let bad = [
            ("", "missing parameter"),
            ("register=T1", "not a register name"),
            ("register=t1&register=t2", "given twice"),
            ("register=t1&colour=red", "unknown parameter"),
            ("register=t1&from=yesterday", "RFC 3339"),
            ("register=t1&from=2026-05-18T00:00:00Z", "must be before"),
            ("register=t1&bucket=fortnight", "not one of raw"),
            ("register=t1&from=2025-01-01T00:00:00Z", "at most 93 days"),
            (
                "register=t1&from=2000-01-01T00:00:00Z&bucket=day",
                "longer than",
            ),
            ("register=t1&mode=usage", "needs a bucket"),
            ("register=t1&bucket=day&mode=max", "not one of auto"),
        ];
        for (query, expected) in bad {
            let err = parse_readings_query(Some(query), now()).unwrap_err();
            assert!(err.contains(expected), "{query}: {err}");
        }
    }

    #[test]
    fn serials_are_decimal() {
        assert_eq!(parse_serial("71234567"), Ok(71_234_567));
        assert!(parse_serial("-1").is_err());
        assert!(parse_serial("").is_err());
        assert!(parse_serial("99999999999999999999").is_err());
    }
}
