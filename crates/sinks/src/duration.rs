//! Durations in sink sections, written like every other duration in the config: text with a
//! unit (`"10s"`, `"500ms"`, `"3h"`). A bare number (the old seconds form) is refused with a hint.

use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};

struct DurationText;

impl Visitor<'_> for DurationText {
    type Value = Duration;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a duration such as \"10s\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        humantime::parse_duration(v.trim()).map_err(|_| {
            E::custom(format!(
                "{v:?} is not a duration: write e.g. \"10s\", \"500ms\", \"3h\""
            ))
        })
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        Err(E::custom(format!(
            "durations are text with a unit now: write \"{v}s\" instead of {v}"
        )))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        Err(E::custom(format!(
            "durations are text with a unit now: write \"{v}s\" instead of {v}"
        )))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
        Err(E::custom(format!(
            "durations are text with a unit now: write e.g. \"{v}s\" instead of {v}"
        )))
    }
}

/// `#[serde(deserialize_with = "crate::duration::text")]`.
pub(crate) fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(DurationText)
}

/// The same for an optional field (`#[serde(default, deserialize_with = …)]`).
pub(crate) fn optional_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    text(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct T {
        #[serde(deserialize_with = "text")]
        d: Duration,
    }

    #[test]
    fn text_with_a_unit_only() {
        let t: T = serde_json::from_str(r#"{"d": "1m 30s"}"#).unwrap();
        assert_eq!(t.d, Duration::from_secs(90));
        let t: T = serde_json::from_str(r#"{"d": "250ms"}"#).unwrap();
        assert_eq!(t.d, Duration::from_millis(250));
        let e = serde_json::from_str::<T>(r#"{"d": 10}"#).err().unwrap();
        assert!(e.to_string().contains("write \"10s\""), "{e}");
        let e = serde_json::from_str::<T>(r#"{"d": "soon"}"#).err().unwrap();
        assert!(e.to_string().contains("not a duration"), "{e}");
    }
}
