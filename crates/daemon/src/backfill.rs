//! Back-fill: the hours with no stored reading, read from the meter's own hour logger in one IR
//! session and stored with their own (clock-corrected) time, so a bridge that was off loses nothing.
//!
//! Which hours: every UTC hour in the window (`backfill`, bounded by the logger's depth) that holds
//! no reading of any source. A logged record's moment is the meter's stamp (its zone, standard
//! time) minus the meter clock's offset measured in the same session; its identity in the store
//! is the uncorrected stamp, so reading it again in a later session is a reported no-op.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use kamstrup_decimal::Decimal;
use kamstrup_meter::{
    KmpMeter, LogError, LogQuery, LogRead, LoggerType, MeterIdentity, Reading, Selection,
};
use kamstrup_reading::ReadingSource;
use kamstrup_store::{Inserted, LoggedRecord, MeterId, ReadingId, Store, StoreError};

use crate::plausibility::Plausibility;

/// A meter clock further off than this (either way) is reported at WARN at every back-fill: the
/// logged times are corrected, but the meter's own day and month boundaries shift with it.
pub const CLOCK_WARN: Duration = Duration::from_secs(5 * 60);

const HOUR_MS: i64 = 3_600_000;

/// The UTC hours (as unix hours) in `[from, to)` that hold no reading: the gaps to fill.
pub fn missing_hours(from: DateTime<Utc>, to: DateTime<Utc>, covered: &BTreeSet<i64>) -> Vec<i64> {
    let first = from.timestamp_millis().div_euclid(HOUR_MS);
    let end = to.timestamp_millis().div_euclid(HOUR_MS);
    (first..end).filter(|h| !covered.contains(h)).collect()
}

/// What one back-fill did and cost.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BackfillReport {
    /// Hours without a reading in the window before the read.
    pub missing_hours: usize,
    /// Records the logger returned.
    pub records_read: usize,
    /// Records stored now.
    pub stored: usize,
    /// Records that were already stored (an earlier back-fill).
    pub already_stored: usize,
    /// Records stored but flagged implausible (never delivered).
    pub implausible: usize,
    /// Records read for hours that already had a reading (not stored).
    pub skipped_covered: usize,
    /// KMP requests in the session (retries included).
    pub requests: u64,
    /// Bytes on the wire, both directions.
    pub bytes: u64,
    /// Pages of records.
    pub pages: u32,
    /// Wall time of the IR session.
    pub wall: Duration,
    /// Meter clock minus host clock, seconds (UTC by the zone), when it could be read.
    pub clock_offset_s: Option<i64>,
    /// The newest stored id, to wake the sinks.
    pub newest_id: Option<ReadingId>,
    /// Oldest and newest corrected time of the stored records.
    pub span: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// Turns a logger read into the records to store: each row whose corrected time falls in a
/// missing hour, with plausibility checked against the previous value (stored or in this batch).
/// Pure apart from the store reads for the plausibility baselines.
pub fn records_to_store(
    store: &Store,
    meter: MeterId,
    identity: &MeterIdentity,
    read: &LogRead,
    missing: &BTreeSet<i64>,
    plausibility: &Plausibility,
    report: &mut BackfillReport,
) -> Result<Vec<LoggedRecord>, StoreError> {
    let offset = chrono::Duration::seconds(read.clock_offset_s.unwrap_or(0));
    let mut out = Vec::new();
    // Per counter: the newest (time, value) accepted in this batch.
    let mut previous: HashMap<String, (DateTime<Utc>, Decimal)> = HashMap::new();
    let mut seen_hours = BTreeSet::new();
    for row in &read.rows {
        let Some(stamp) = row.utc else { continue };
        let taken_at = stamp - offset;
        let hour = taken_at.timestamp_millis().div_euclid(HOUR_MS);
        // One record per hour (a clock set back could log two in one UTC hour: keep the first).
        if !missing.contains(&hour) || !seen_hours.insert(hour) {
            report.skipped_covered += 1;
            continue;
        }
        let reading = Reading {
            meter: identity.clone(),
            taken_at,
            source: ReadingSource::HourLog,
            registers: row.values.clone(),
            missing: Vec::new(),
        };
        let mut implausible = None;
        for value in reading.registers.iter().filter(|v| v.counter().is_some()) {
            let stored = store.value_at_or_before(meter, &value.name, taken_at)?;
            let batch = previous.get(&value.name).cloned();
            let base = match (stored, batch) {
                (Some(a), Some(b)) => Some(if a.0 >= b.0 { a } else { b }),
                (a, b) => a.or(b),
            };
            if let Some((last_at, last)) = base {
                if let Some(why) = plausibility.check(value, last_at, &last, taken_at) {
                    implausible = Some(why);
                    break;
                }
            }
        }
        if implausible.is_none() {
            for value in reading.registers.iter().filter(|v| v.counter().is_some()) {
                previous.insert(value.name.clone(), (taken_at, value.value));
            }
        }
        out.push(LoggedRecord {
            meter,
            reading,
            logged_at: stamp,
            implausible,
        });
    }
    Ok(out)
}

/// Counts what an insert did into the report.
pub fn tally(report: &mut BackfillReport, records: &[LoggedRecord], inserted: &[Inserted]) {
    for (record, result) in records.iter().zip(inserted) {
        match result {
            Inserted::New(id) => {
                report.stored += 1;
                if record.implausible.is_some() {
                    report.implausible += 1;
                } else {
                    report.newest_id = Some(report.newest_id.map_or(*id, |n| n.max(*id)));
                }
                let t = record.reading.taken_at;
                report.span = Some(match report.span {
                    None => (t, t),
                    Some((a, b)) => (a.min(t), b.max(t)),
                });
            }
            Inserted::AlreadyStored(_) => report.already_stored += 1,
        }
    }
}

/// Reads the hour logger from the oldest missing hour on, in this IR session.
pub async fn read_hours(
    driver: &mut KmpMeter,
    oldest_missing: DateTime<Utc>,
    zone_standard_offset_min: i32,
) -> Result<(LogRead, Duration, u64), LogError> {
    let started = Instant::now();
    let before = driver.stats().link;
    // One hour earlier than the gap: a meter clock running ahead stamps the record that falls
    // into the first missing hour (corrected) with the hour after it.
    let query = LogQuery {
        logger: LoggerType::Hourly,
        registers: Vec::new(),
        selection: Selection::Since(oldest_missing - chrono::Duration::hours(1)),
        zone_standard_offset_min,
    };
    let read = driver.read_log(&query, |_, _| {}).await?;
    let after = driver.stats().link;
    let bytes = (after.bytes_sent + after.bytes_received)
        .saturating_sub(before.bytes_sent + before.bytes_received);
    Ok((read, started.elapsed(), bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn missing_hours_are_the_hours_without_a_reading() {
        let from = t("2026-05-01T09:30:00Z");
        let to = t("2026-05-01T13:10:00Z");
        let base = t("2026-05-01T00:00:00Z").timestamp() / 3600;
        let covered: BTreeSet<i64> = [base + 10, base + 12].into();
        assert_eq!(missing_hours(from, to, &covered), vec![base + 9, base + 11]);
        assert!(missing_hours(to, from, &covered).is_empty());
    }
}
