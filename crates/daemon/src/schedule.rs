//! When each meter is read: a fixed interval or wall-clock times, and what that costs the battery.
//! Also the start-up warnings about IR ports that fall asleep and reads that drain the battery.

use std::time::Duration;

use chrono::{DateTime, Local, NaiveTime, TimeZone, Timelike};

/// A meter's poll schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// Every so often, starting at once.
    Every(Duration),
    /// At these local wall-clock times every day (sorted, unique).
    At(Vec<NaiveTime>),
}

/// Intervals at or above this let a MULTICAL 40x switch its IR port off between reads.
pub const KMP_SLEEP_AFTER: Duration = Duration::from_secs(30 * 60);

/// Reads more often than this cost noticeable battery (every IR session wakes the optical circuit).
pub const BATTERY_FRIENDLY: Duration = Duration::from_secs(5 * 60);

impl Schedule {
    /// IR sessions a day this schedule causes.
    pub fn sessions_per_day(&self) -> f64 {
        match self {
            Schedule::Every(d) => 86_400.0 / d.as_secs_f64().max(1.0),
            Schedule::At(times) => times.len() as f64,
        }
    }

    /// The longest gap between two reads.
    pub fn longest_gap(&self) -> Duration {
        match self {
            Schedule::Every(d) => *d,
            Schedule::At(times) => {
                let secs: Vec<i64> = times
                    .iter()
                    .map(|t| i64::from(t.num_seconds_from_midnight()))
                    .collect();
                let mut gap = 0;
                for (i, s) in secs.iter().enumerate() {
                    let next = secs
                        .get(i + 1)
                        .copied()
                        .unwrap_or(secs.first().copied().unwrap_or(0) + 86_400);
                    gap = gap.max(next - s);
                }
                Duration::from_secs(gap.max(0) as u64)
            }
        }
    }

    /// The first poll time strictly after `after` (for `Every`: `after + interval`).
    pub fn next_after(&self, after: DateTime<Local>) -> DateTime<Local> {
        match self {
            Schedule::Every(d) => {
                after + chrono::Duration::from_std(*d).unwrap_or(chrono::Duration::hours(1))
            }
            Schedule::At(times) => {
                let day = after.date_naive();
                for offset in 0..3 {
                    let date = day + chrono::Days::new(offset);
                    for t in times {
                        // Around a DST change a local time may not exist or exist twice: take the earliest.
                        if let Some(candidate) =
                            Local.from_local_datetime(&date.and_time(*t)).earliest()
                        {
                            if candidate > after {
                                return candidate;
                            }
                        }
                    }
                }
                after + chrono::Duration::days(1)
            }
        }
    }
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Schedule::Every(d) => write!(f, "every {}", humanize(*d)),
            Schedule::At(times) => {
                let list: Vec<String> = times
                    .iter()
                    .map(|t| t.format("%H:%M").to_string())
                    .collect();
                write!(f, "daily at {}", list.join(", "))
            }
        }
    }
}

/// `15m`, `1h`, `90s` — how durations are written in the config.
pub fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    if s > 0 && s % 3600 == 0 {
        format!("{}h", s / 3600)
    } else if s > 0 && s % 60 == 0 {
        format!("{}m", s / 60)
    } else if d.subsec_millis() == 0 {
        format!("{s}s")
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The IR sessions (request/reply exchanges, each waking the meter's optical circuit) one meter
/// costs: per scheduled read, and once per (re)connection to identify it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionCost {
    /// Requests per read.
    pub per_read: u32,
    /// Requests per (re)connection, for the meter's identity.
    pub per_connection: u32,
    /// What the per-connection requests are, for the log line.
    pub identity: &'static str,
}

impl SessionCost {
    /// A KMP meter: the registers in requests of at most 8; GetSerialNo and GetType once.
    pub fn kmp(registers: usize) -> SessionCost {
        SessionCost {
            per_read: u32::try_from(registers.max(1).div_ceil(8)).unwrap_or(u32::MAX),
            per_connection: 2,
            identity: "GetSerialNo, GetType",
        }
    }

    /// A MULTICAL 66C: `/#1` per read; `/#2` once (customer number, and the program number
    /// when the config does not give it).
    pub const MC66C: SessionCost = SessionCost {
        per_read: 1,
        per_connection: 1,
        identity: "/#2",
    };
}

/// Start-up advice for one meter: IR sessions per day, and warnings for sleep and battery.
pub fn advice(
    meter: &str,
    kmp: bool,
    schedule: &Schedule,
    cost: SessionCost,
) -> (String, Vec<String>) {
    let per_day = schedule.sessions_per_day() * f64::from(cost.per_read);
    let info = format!(
        "meter {meter}: read {schedule}, about {per_day:.0} IR sessions a day ({} per read), \
         plus {} per (re)connection for its identity ({})",
        cost.per_read, cost.per_connection, cost.identity
    );
    let mut warnings = Vec::new();
    if kmp && schedule.longest_gap() >= KMP_SLEEP_AFTER {
        warnings.push(format!(
            "meter {meter}: {} between reads; a MULTICAL 40x switches its IR port off ~30 min after \
             the last read and then needs a button press. Read more often than every 30 min, or \
             keep a magnet on the eye",
            humanize(schedule.longest_gap())
        ));
    }
    if let Schedule::Every(d) = schedule {
        if *d < BATTERY_FRIENDLY {
            warnings.push(format!(
                "meter {meter}: reading every {} means {per_day:.0} IR sessions a day, which shortens \
                 the meter battery's life; 15m or more is kinder",
                humanize(*d)
            ));
        }
    }
    (info, warnings)
}

/// Requests to read a day of hourly records from a 3-series hour logger: the configuration, the
/// clock, and pages of the standard registers (with the simulator's reply limit of 256 bytes;
/// the real limit is undocumented) — the `kamstrup log` benchmark's figure.
pub const LOGGER_DAY_REQUESTS: u32 = 6;

/// The start-up line of a meter in logger mode: its IR sessions a day for the logger reads and
/// the light polls, against polling every 15 min.
pub fn logger_advice(
    meter: &str,
    logger_at: &[NaiveTime],
    light: &Schedule,
    cost: SessionCost,
) -> String {
    let reads = logger_at.len();
    let per_day_hours = 24 / reads.max(1);
    let light_line = if logger_at.len() == light.sessions_per_day() as usize
        && matches!(light, Schedule::At(t) if t.as_slice() == logger_at)
    {
        "no light polls".to_string()
    } else {
        format!(
            "light polls {light}: about {:.0} sessions a day",
            light.sessions_per_day()
        )
    };
    let times: Vec<String> = logger_at
        .iter()
        .map(|t| t.format("%H:%M").to_string())
        .collect();
    let hours = u32::try_from(per_day_hours).unwrap_or(24);
    let logger_requests = (LOGGER_DAY_REQUESTS * hours).div_ceil(24).max(3);
    format!(
        "meter {meter}: logger mode — the hour logger is read at {} ({reads} IR session(s) a day, \
         ~{logger_requests} requests each for {per_day_hours} h of records, plus {} per read for \
         the current values); {light_line}; polling every 15m instead would be 96 sessions a day",
        times.join(", "),
        cost.per_read,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    #[test]
    fn sessions_and_gaps() {
        let every = Schedule::Every(Duration::from_secs(900));
        assert_eq!(every.sessions_per_day(), 96.0);
        let at = Schedule::At(vec![t(0, 0), t(6, 0), t(12, 0)]);
        assert_eq!(at.sessions_per_day(), 3.0);
        assert_eq!(at.longest_gap(), Duration::from_secs(12 * 3600));
    }

    #[test]
    fn next_wall_clock_time() {
        let at = Schedule::At(vec![t(0, 0), t(12, 30)]);
        let morning = Local.with_ymd_and_hms(2026, 3, 10, 9, 0, 0).unwrap();
        assert_eq!(
            at.next_after(morning),
            Local.with_ymd_and_hms(2026, 3, 10, 12, 30, 0).unwrap()
        );
        let evening = Local.with_ymd_and_hms(2026, 3, 10, 13, 0, 0).unwrap();
        assert_eq!(
            at.next_after(evening),
            Local.with_ymd_and_hms(2026, 3, 11, 0, 0, 0).unwrap()
        );
    }

    #[test]
    fn logger_mode_advice_counts_both_kinds_of_session() {
        let cost = SessionCost::kmp(8);
        let line = logger_advice(
            "heat",
            &[t(0, 30), t(12, 30)],
            &Schedule::Every(Duration::from_secs(3600)),
            cost,
        );
        assert!(
            line.contains("at 00:30, 12:30 (2 IR session(s) a day"),
            "{line}"
        );
        assert!(
            line.contains("light polls every 1h: about 24 sessions"),
            "{line}"
        );
        assert!(line.contains("96 sessions a day"), "{line}");
        let line = logger_advice("heat", &[t(0, 30)], &Schedule::At(vec![t(0, 30)]), cost);
        assert!(line.contains("no light polls"), "{line}");
        assert!(line.contains("24 h of records"), "{line}");
    }

    #[test]
    fn warns_about_sleep_and_battery() {
        let kmp = SessionCost::kmp(8);
        let (info, w) = advice(
            "heat",
            true,
            &Schedule::Every(Duration::from_secs(3600)),
            kmp,
        );
        assert!(info.contains("24 IR sessions"), "{info}");
        assert!(info.contains("plus 2 per (re)connection"), "{info}");
        assert!(w.iter().any(|w| w.contains("30 min")), "{w:?}");
        let (_, w) = advice("heat", true, &Schedule::Every(Duration::from_secs(60)), kmp);
        assert!(w.iter().any(|w| w.contains("battery")), "{w:?}");
        let (_, w) = advice(
            "heat",
            true,
            &Schedule::Every(Duration::from_secs(900)),
            kmp,
        );
        assert!(w.is_empty(), "{w:?}");
        let (info, w) = advice(
            "old",
            false,
            &Schedule::Every(Duration::from_secs(3600)),
            SessionCost::MC66C,
        );
        assert!(w.is_empty(), "the 66C has no sleeping IR port: {w:?}");
        assert!(
            info.contains("24 IR sessions a day (1 per read), plus 1 per (re)connection for its identity (/#2)"),
            "{info}"
        );
        // 20 registers take 3 KMP requests per read.
        let (info, _) = advice(
            "big",
            true,
            &Schedule::Every(Duration::from_secs(3600)),
            SessionCost::kmp(20),
        );
        assert!(info.contains("72 IR sessions a day (3 per read)"), "{info}");
    }
}
