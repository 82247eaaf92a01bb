//! Back-fill: the hours with no stored reading, read from the meter's own loggers in one IR
//! session and stored with their own (clock-corrected) time, so a bridge that was off loses nothing.
//!
//! A KMP meter's hour logger is read from the oldest missing hour it still holds on; beyond
//! it, its day logger for the meter's midnights whose hours hold no reading yet, beyond that
//! its month logger for such month starts and beyond that its year logger for year starts
//! ([`period_starts`], each read bounded by [`Selection::Between`]): a restart over a store a
//! long window filled reads none of them again. A
//! MULTICAL 66C's loggers are whole data sets (`/#7` ~11 min of IR at 1200 Bd, whatever the
//! gap), read only when a run of missing hours is at least `backfill_min_gap` ([`plan_66c`]);
//! their growths become counters in `kamstrup_meter::mc66c_logger`, and beyond `/#6` the
//! month ends of `/#5` are records of the meter's month starts.
//!
//! Which hours: every UTC hour in the window (`backfill`, bounded by the logger's depth) that holds
//! no reading of any source, and the record ending the last hour of each gap (`wanted`; when
//! a KMP meter's clock is behind and that record is not logged yet, the hour logger is read
//! once more when it is: [`gap_end_follow_up`]; a 66C's whole `/#7` is read only once its
//! clock has passed that hour). A
//! logged record's moment is the meter's stamp (its zone, standard
//! time) minus the meter clock's offset measured in the same session; its identity in the store
//! is the uncorrected stamp, so reading it again in a later session is a reported no-op.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use kamstrup_decimal::Decimal;
use kamstrup_meter::mc66c_logger::{DAY_LOG_DEPTH, HOUR_LOG_DEPTH, MONTH_END_DEPTH};
use kamstrup_meter::{
    KmpMeter, LogError, LogQuery, LogRead, LoggerType, Mc66cLog, Mc66cLogRead, MeterIdentity,
    Reading, RegisterValue, Selection,
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
    /// Missing hours no record was stored for (beyond the logger's depth, or not logged).
    pub still_missing: usize,
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

/// One logged record as read, before it is stored: the meter's stamp in UTC by its zone (not
/// corrected for the meter clock) and its values.
#[derive(Clone, Debug, PartialEq)]
pub struct LoggedRow {
    /// The record's stamp (its identity in the store).
    pub stamp: DateTime<Utc>,
    /// Its values.
    pub values: Vec<RegisterValue>,
}

/// Turns a KMP hour-logger read into the records to store ([`rows_to_store`]).
pub fn records_to_store(
    store: &Store,
    meter: MeterId,
    identity: &MeterIdentity,
    read: &LogRead,
    missing: &BTreeSet<i64>,
    plausibility: &Plausibility,
    report: &mut BackfillReport,
) -> Result<Vec<LoggedRecord>, StoreError> {
    let rows: Vec<LoggedRow> = read
        .rows
        .iter()
        .filter_map(|r| {
            Some(LoggedRow {
                stamp: r.utc?,
                values: r.values.clone(),
            })
        })
        .collect();
    rows_to_store(
        store,
        meter,
        identity,
        &rows,
        read.clock_offset_s,
        ReadingSource::HourLog,
        missing,
        plausibility,
        report,
    )
}

/// Whether a record taken at `taken_at` is wanted: it falls in a `missing` hour, or it ends one
/// — it is the counter at the start of the hour after a gap (within its first half hour: a
/// record closes the hour before the hour boundary nearest to it). That hour holds polls from
/// later in it, so without this record the gap's last hour would have no end, and its use would
/// be booked in the next hour (HA's Energy dashboard, the hourly bars). With a meter clock
/// behind the host's, the record a gap's last hour needs is always of this kind.
fn wanted(taken_at: DateTime<Utc>, missing: &BTreeSet<i64>) -> bool {
    let ms = taken_at.timestamp_millis();
    let hour = ms.div_euclid(HOUR_MS);
    let early = ms.rem_euclid(HOUR_MS) < HOUR_MS / 2;
    missing.contains(&hour) || (early && missing.contains(&(hour - 1)))
}

/// How long after the hour logger's next record is due (its stamp, corrected) the follow-up
/// read waits: a meter writes a record seconds after its hour begins.
pub const FOLLOW_UP_DELAY: Duration = Duration::from_secs(2 * 60);

/// When to read the hour logger once more, for the record that ends a gap's last hour but was
/// not logged yet at this read: the record after `newest_stamp` (the newest the read returned,
/// the meter's stamp) is due an hour after it, at its corrected time (stamp − offset). With a
/// meter clock behind the host's, a bridge that comes back within that lag after an hour began
/// (e.g. 19:03 for a clock 7 min behind) finds the gap's last hour (18:00–19:00) without an end;
/// without this read the hour's use would be booked in the next hour. `None`: the next record
/// would not be [`wanted`] (it neither fills nor ends a missing hour), or it is long overdue (the
/// meter did not log it; a follow-up would not find it either). `Some((at, hour))`: read at
/// `at`, for the missing `hour` (unix hours) the record fills or ends.
pub fn gap_end_follow_up(
    newest_stamp: DateTime<Utc>,
    clock_offset_s: Option<i64>,
    missing: &BTreeSet<i64>,
    now: DateTime<Utc>,
) -> Option<(DateTime<Utc>, i64)> {
    let next = newest_stamp + chrono::Duration::hours(1)
        - chrono::Duration::seconds(clock_offset_s.unwrap_or(0));
    let delay = chrono::Duration::from_std(FOLLOW_UP_DELAY).ok()?;
    if !wanted(next, missing) || next + delay <= now {
        return None;
    }
    let hour = next.timestamp_millis().div_euclid(HOUR_MS);
    let gap_hour = if missing.contains(&hour) {
        hour
    } else {
        hour - 1
    };
    Some((next + delay, gap_hour))
}

/// Turns logged rows into the records to store: each row whose corrected time (stamp minus the
/// meter clock's offset) falls in a missing hour or ends one ([`wanted`]), one per hour, with
/// plausibility checked against the
/// previous value (stored or in this batch). Pure apart from the store reads for the
/// plausibility baselines.
#[allow(clippy::too_many_arguments)]
pub fn rows_to_store(
    store: &Store,
    meter: MeterId,
    identity: &MeterIdentity,
    rows: &[LoggedRow],
    clock_offset_s: Option<i64>,
    source: ReadingSource,
    missing: &BTreeSet<i64>,
    plausibility: &Plausibility,
    report: &mut BackfillReport,
) -> Result<Vec<LoggedRecord>, StoreError> {
    let offset = chrono::Duration::seconds(clock_offset_s.unwrap_or(0));
    let mut out = Vec::new();
    // Per counter: the newest (time, value) accepted in this batch.
    let mut previous: HashMap<String, (DateTime<Utc>, Decimal)> = HashMap::new();
    let mut seen_hours = BTreeSet::new();
    for row in rows {
        let stamp = row.stamp;
        let taken_at = stamp - offset;
        let hour = taken_at.timestamp_millis().div_euclid(HOUR_MS);
        // One record per hour (a clock set back could log two in one UTC hour: keep the first).
        if !wanted(taken_at, missing) || !seen_hours.insert(hour) {
            report.skipped_covered += 1;
            continue;
        }
        let reading = Reading {
            meter: identity.clone(),
            taken_at,
            source,
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
    read_since(
        driver,
        LoggerType::Hourly,
        oldest_missing,
        zone_standard_offset_min,
    )
    .await
}

/// How far a clock offset may move a period record's hour ([`period_starts`]): beyond it, a
/// record lands outside the two hours around its boundary (a clock that far off is reported at
/// every back-fill, [`CLOCK_WARN`]).
const BOUNDARY_BAND_MS: i64 = HOUR_MS / 2;

/// The period of a KMP logger coarser than the hour logger: one record at the start of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogPeriod {
    /// The day logger: the meter's midnights.
    Day,
    /// The month logger: 00:00 of the 1st of each month.
    Month,
    /// The year logger: 00:00 of 1 January.
    Year,
}

impl LogPeriod {
    /// The KMP logger holding one record per period.
    pub fn logger(self) -> LoggerType {
        match self {
            LogPeriod::Day => LoggerType::Daily,
            LogPeriod::Month => LoggerType::Monthly,
            LogPeriod::Year => LoggerType::Yearly,
        }
    }

    /// Where its records are stored.
    pub fn source(self) -> ReadingSource {
        match self {
            LogPeriod::Day => ReadingSource::DayLog,
            LogPeriod::Month => ReadingSource::MonthLog,
            LogPeriod::Year => ReadingSource::YearLog,
        }
    }

    /// `day`, `month`, `year`.
    pub fn name(self) -> &'static str {
        match self {
            LogPeriod::Day => "day",
            LogPeriod::Month => "month",
            LogPeriod::Year => "year",
        }
    }

    /// The start of the period holding `local` (the meter's standard time).
    fn start_of(self, local: chrono::NaiveDateTime) -> Option<chrono::NaiveDateTime> {
        use chrono::Datelike;
        let date = local.date();
        let first = match self {
            LogPeriod::Day => date,
            LogPeriod::Month => date.with_day(1)?,
            LogPeriod::Year => date.with_day(1)?.with_month(1)?,
        };
        first.and_hms_opt(0, 0, 0)
    }

    /// The meter's period starts (00:00 of its standard time, as UTC by
    /// `zone_standard_offset_min`), oldest first, from the one at or before the start of the
    /// unix hour `first_hour` on.
    fn starts_from(
        self,
        first_hour: i64,
        zone_standard_offset_min: i32,
    ) -> impl Iterator<Item = DateTime<Utc>> {
        let zone = chrono::Duration::minutes(i64::from(zone_standard_offset_min));
        let first = DateTime::from_timestamp(first_hour * 3600, 0)
            .and_then(|t| self.start_of((t + zone).naive_utc()));
        std::iter::successors(first, move |&local| self.next(local))
            .map(move |local| local.and_utc() - zone)
    }

    /// The start of the next period after `start`, calendar-correct.
    fn next(self, start: chrono::NaiveDateTime) -> Option<chrono::NaiveDateTime> {
        match self {
            LogPeriod::Day => start.checked_add_days(chrono::Days::new(1)),
            LogPeriod::Month => start.checked_add_months(chrono::Months::new(1)),
            LogPeriod::Year => start.checked_add_months(chrono::Months::new(12)),
        }
    }
}

/// The starts of the meter's `period`s (00:00 of its standard time — a day, the 1st of a
/// month, 1 January — as UTC by `zone_standard_offset_min`) before `before_hour` whose logger
/// record is still wanted: every hour around it that the record can land in (its stamp
/// corrected by a clock offset within ±30 min) holds no reading. Only such missing hours can
/// that logger fill (one record a period, at its start); the other hours of an old period stay
/// missing for good, and a start with a reading beside it was filled already (its record, or a
/// finer logger's, is stored in one of those hours) — so a restart over a store the loggers
/// filled finds nothing here and reads none of them again. A month or year start is also a
/// midnight: where none is wanted for the day logger, none is for the coarser ones.
pub fn period_starts(
    period: LogPeriod,
    missing: &BTreeSet<i64>,
    before_hour: i64,
    zone_standard_offset_min: i32,
) -> Vec<DateTime<Utc>> {
    period_starts_for_clock(period, missing, before_hour, zone_standard_offset_min, None)
}

/// [`period_starts`] when the meter clock's offset is known (measured in this session, e.g.
/// by its hour-logger read): a record then lands at its start minus the offset (stamped at it
/// or up to three minutes after), so only the hours of that moment must be missing, not all
/// those within ±30 min. A gap that begins at a midnight hour then gets that midnight's record
/// when the meter's clock is not ahead (it lands in the missing hour); with ±30 min the covered
/// hour before ruled it out. Should a record stamped exactly at its start land a fraction of a
/// second early (the offset is measured in whole seconds) in a covered hour, it is not stored
/// and is asked for again at a later back-fill: one short bounded read.
pub fn period_starts_for_clock(
    period: LogPeriod,
    missing: &BTreeSet<i64>,
    before_hour: i64,
    zone_standard_offset_min: i32,
    clock_offset_s: Option<i64>,
) -> Vec<DateTime<Utc>> {
    let (before_ms, after_ms, shift_ms) = match clock_offset_s {
        Some(off) => (0, 180_000, off.saturating_mul(1000)),
        None => (BOUNDARY_BAND_MS, BOUNDARY_BAND_MS, 0),
    };
    let Some(&first) = missing.first() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    // From the meter's period start at or before the start of the oldest missing hour.
    for at in period.starts_from(first, zone_standard_offset_min) {
        let ms = at.timestamp_millis();
        let lands = ms - shift_ms;
        let band = (lands - before_ms).div_euclid(HOUR_MS)..=(lands + after_ms).div_euclid(HOUR_MS);
        if *band.end() >= before_hour {
            break;
        }
        if band.clone().all(|h| missing.contains(&h)) {
            out.push(at);
        }
    }
    out
}

/// Reads `period`'s logger for the records stamped from `since` (an hour earlier: a meter
/// clock running ahead) to `until` (both the meter's stamps, UTC by its zone), in this IR
/// session, starting near `until` ([`Selection::Between`]): the newer periods, which a finer
/// logger holds, are not sent at all. Its rows are then [`rows_before`] the finer logger's
/// oldest record.
pub async fn read_periods(
    driver: &mut KmpMeter,
    period: LogPeriod,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    zone_standard_offset_min: i32,
) -> Result<(LogRead, Duration, u64), LogError> {
    read_selection(
        driver,
        period.logger(),
        Selection::Between {
            since: since - chrono::Duration::hours(1),
            until,
        },
        zone_standard_offset_min,
    )
    .await
}

/// A coarser logger's rows whose corrected time lies before `floor` (the next finer logger's
/// oldest record, corrected): where two loggers hold a time, the finer one's record is kept.
pub fn rows_before(read: &LogRead, floor: DateTime<Utc>) -> Vec<LoggedRow> {
    let offset = chrono::Duration::seconds(read.clock_offset_s.unwrap_or(0));
    read.rows
        .iter()
        .filter_map(|r| {
            let stamp = r.utc?;
            (stamp - offset < floor).then(|| LoggedRow {
                stamp,
                values: r.values.clone(),
            })
        })
        .collect()
}

async fn read_since(
    driver: &mut KmpMeter,
    logger: LoggerType,
    oldest_missing: DateTime<Utc>,
    zone_standard_offset_min: i32,
) -> Result<(LogRead, Duration, u64), LogError> {
    // One hour earlier than the gap: a meter clock running ahead stamps the record that falls
    // into the first missing hour (corrected) with the hour after it.
    read_selection(
        driver,
        logger,
        Selection::Since(oldest_missing - chrono::Duration::hours(1)),
        zone_standard_offset_min,
    )
    .await
}

async fn read_selection(
    driver: &mut KmpMeter,
    logger: LoggerType,
    selection: Selection,
    zone_standard_offset_min: i32,
) -> Result<(LogRead, Duration, u64), LogError> {
    let started = Instant::now();
    let before = driver.stats().link;
    let query = LogQuery {
        logger,
        registers: Vec::new(),
        selection,
        zone_standard_offset_min,
    };
    let read = driver.read_log(&query, |_, _| {}).await?;
    let after = driver.stats().link;
    let bytes = (after.bytes_sent + after.bytes_received)
        .saturating_sub(before.bytes_sent + before.bytes_received);
    Ok((read, started.elapsed(), bytes))
}

/// The stamp (the meter's, UTC by its zone, uncorrected) of the oldest record `logger` holds,
/// in one short request ([`KmpMeter::oldest_log_record`]), with its cost: requests, bytes,
/// wall. `Ok(None)`: the logger is empty.
pub async fn oldest_stamp(
    driver: &mut KmpMeter,
    logger: LoggerType,
    zone_standard_offset_min: i32,
) -> Result<(Option<DateTime<Utc>>, u64, u64, Duration), LogError> {
    let started = Instant::now();
    let before = driver.stats();
    let oldest = driver
        .oldest_log_record(logger, zone_standard_offset_min)
        .await?;
    let after = driver.stats();
    let bytes = (after.link.bytes_sent + after.link.bytes_received)
        .saturating_sub(before.link.bytes_sent + before.link.bytes_received);
    Ok((
        oldest.and_then(|(row, _)| row.utc),
        after.requests - before.requests,
        bytes,
        started.elapsed(),
    ))
}

/// What a MULTICAL 66C back-fill reads, decided from the missing hours before any IR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mc66cPlan {
    /// No run of missing hours a logger would fill is as long as `backfill_min_gap`: nothing
    /// is read.
    TooShort {
        /// The longest such run, hours.
        longest_hours: usize,
    },
    /// Read these loggers, in this order: the hour logger (`/#7`) for missing hours within its
    /// depth, the day logger (`/#6`) for older ones.
    Read(Vec<Mc66cLog>),
}

/// The longest run of consecutive hours in `missing` (sorted unix hours).
pub fn longest_run(missing: &[i64]) -> usize {
    runs(missing)
        .iter()
        .map(|(a, b)| usize::try_from(b - a + 1).unwrap_or(usize::MAX))
        .max()
        .unwrap_or(0)
}

/// The runs of consecutive hours in `missing` (sorted unix hours): (first, last).
fn runs(missing: &[i64]) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = Vec::new();
    for &h in missing {
        match out.last_mut() {
            Some((_, last)) if *last == h - 1 => *last = h,
            _ => out.push((h, h)),
        }
    }
    out
}

/// Whether the run of missing hours `first..=last` holds the start of one of the meter's
/// `period`s (its zone: `zone_standard_offset_min`) within `reach` (UTC ms), with every hour
/// within [`CLOCK_WARN`] of it: that logger's record for it would land in one of them. Once it
/// is stored, one of those hours is no longer missing, so that start does not call for the
/// logger again.
fn holds_a_start(
    period: LogPeriod,
    (first, last): (i64, i64),
    zone_standard_offset_min: i32,
    reach: std::ops::Range<i64>,
) -> bool {
    let slack = i64::try_from(CLOCK_WARN.as_millis()).unwrap_or(0);
    // From the meter's period start at or before the run's first hour began.
    period
        .starts_from(first, zone_standard_offset_min)
        .map(|at| at.timestamp_millis())
        .take_while(|&m| m < (last + 1) * HOUR_MS)
        .any(|m| {
            reach.contains(&m)
                && (m - slack).div_euclid(HOUR_MS) >= first
                && (m + slack).div_euclid(HOUR_MS) <= last
        })
}

/// The oldest month start `/#5` holds a record for: its 32 lines are the ends of the months
/// before the meter's current one (UTC ms; its zone: `zone_standard_offset_min`).
fn month_end_reach_ms(now: DateTime<Utc>, zone_standard_offset_min: i32) -> i64 {
    let zone = chrono::Duration::minutes(i64::from(zone_standard_offset_min));
    LogPeriod::Month
        .start_of((now + zone).naive_utc())
        .and_then(|m| m.checked_sub_months(chrono::Months::new(MONTH_END_DEPTH as u32 - 1)))
        .map_or(i64::MAX, |m| (m.and_utc() - zone).timestamp_millis())
}

/// A 66C's logger data sets come whole (`/#7` ~11 min of IR at 1200 Bd, `/#6` ~42 s), so they
/// are read only for a run of at least `min_gap` missing hours that they would fill. The hour
/// logger reaches back [`HOUR_LOG_DEPTH`] hours from `now`: a run within that. The day logger
/// ([`DAY_LOG_DEPTH`] days) fills only the hours of the meter's midnights (its zone:
/// `zone_standard_offset_min`): a run of older hours holding one of them; the older hours
/// between midnights no logger holds, so they neither count as a gap nor call for a read —
/// else a store with them (a window beyond `/#7`) would read `/#6` at every start, and `/#7`
/// too for a missing hour shorter than `min_gap`. Beyond `/#6`, the month-end counters of
/// `/#5` ([`MONTH_END_DEPTH`] months, read in every session anyway: no further data set) fill
/// the meter's month starts: a run of older hours holding one.
pub fn plan_66c(
    missing: &[i64],
    now: DateTime<Utc>,
    min_gap: Duration,
    zone_standard_offset_min: i32,
) -> Mc66cPlan {
    let need = usize::try_from(min_gap.as_secs().div_ceil(3600).max(1)).unwrap_or(usize::MAX);
    let now_hour = now.timestamp_millis().div_euclid(HOUR_MS);
    // The oldest /#7 record ends HOUR_LOG_DEPTH − 1 hours before the current hour began.
    let reach = now_hour - (HOUR_LOG_DEPTH as i64 - 1);
    // /#6's oldest record ends at the meter's midnight DAY_LOG_DEPTH − 1 days before today's,
    // at or before this: a midnight not older than this is in it, whatever the zone.
    let day_reach_ms = (now_hour - (DAY_LOG_DEPTH as i64 - 1) * 24) * HOUR_MS;
    let (recent, old): (Vec<i64>, Vec<i64>) = missing.iter().partition(|&&h| h >= reach);
    let recent_longest = longest_run(&recent);
    let old_runs = runs(&old);
    let longest_holding = |period: LogPeriod, reach: std::ops::Range<i64>| {
        old_runs
            .iter()
            .filter(|&&run| holds_a_start(period, run, zone_standard_offset_min, reach.clone()))
            .map(|(a, b)| usize::try_from(b - a + 1).unwrap_or(usize::MAX))
            .max()
            .unwrap_or(0)
    };
    let old_longest = longest_holding(LogPeriod::Day, day_reach_ms..i64::MAX);
    let month_reach_ms = month_end_reach_ms(now, zone_standard_offset_min);
    let months_longest = longest_holding(LogPeriod::Month, month_reach_ms..day_reach_ms);
    let mut logs = Vec::new();
    if recent_longest >= need {
        logs.push(Mc66cLog::Hour);
    }
    if old_longest >= need {
        logs.push(Mc66cLog::Day);
    }
    if months_longest >= need {
        logs.push(Mc66cLog::Month);
    }
    if logs.is_empty() {
        return Mc66cPlan::TooShort {
            longest_hours: recent_longest.max(old_longest).max(months_longest),
        };
    }
    Mc66cPlan::Read(logs)
}

/// The 66C's counter rows as logged rows to store, per source, finest first (hour, day, month
/// ends: where two hold an hour, the finer record is the one kept).
pub fn mc66c_batches(read: &Mc66cLogRead) -> Vec<(ReadingSource, Vec<LoggedRow>)> {
    let mut out: Vec<(ReadingSource, Vec<LoggedRow>)> = read
        .logs
        .iter()
        .map(|(log, rows)| {
            let source = match log {
                Mc66cLog::Hour => ReadingSource::HourLog,
                Mc66cLog::Day => ReadingSource::DayLog,
                Mc66cLog::Month => ReadingSource::MonthLog,
            };
            let rows = rows
                .iter()
                .map(|r| LoggedRow {
                    stamp: r.utc,
                    values: r.values.clone(),
                })
                .collect();
            (source, rows)
        })
        .collect();
    // `ALL` is in that order (poll, hour, day, month, year).
    out.sort_by_key(|(source, _)| ReadingSource::ALL.iter().position(|s| s == source));
    out
}

/// Stores batches of logged rows in order, each hour filled once across them: the hours the
/// first batch holds (stored now or before) are no longer missing for the next, nor is an hour
/// after a gap it ended. Counts the missing hours left unfilled into the report.
#[allow(clippy::too_many_arguments)]
pub fn store_batches(
    store: &mut Store,
    meter: MeterId,
    identity: &MeterIdentity,
    batches: &[(ReadingSource, Vec<LoggedRow>)],
    clock_offset_s: Option<i64>,
    missing: &BTreeSet<i64>,
    plausibility: &Plausibility,
    report: &mut BackfillReport,
) -> Result<(), StoreError> {
    let mut left = missing.clone();
    let mut filled = BTreeSet::new();
    for (source, rows) in batches {
        let records = rows_to_store(
            store,
            meter,
            identity,
            rows,
            clock_offset_s,
            *source,
            &left,
            plausibility,
            report,
        )?;
        let (records, again): (Vec<_>, Vec<_>) = records.into_iter().partition(|r| {
            !filled.contains(&r.reading.taken_at.timestamp_millis().div_euclid(HOUR_MS))
        });
        report.skipped_covered += again.len();
        let inserted = store.insert_logged(&records)?;
        tally(report, &records, &inserted);
        for r in &records {
            let hour = r.reading.taken_at.timestamp_millis().div_euclid(HOUR_MS);
            left.remove(&hour);
            filled.insert(hour);
        }
    }
    report.still_missing = left.len();
    Ok(())
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

    /// The day logger's case of [`period_starts`].
    fn day_log_midnights(missing: &BTreeSet<i64>, before: i64, zone: i32) -> Vec<DateTime<Utc>> {
        period_starts(LogPeriod::Day, missing, before, zone)
    }

    #[test]
    fn a_gap_whose_end_is_not_logged_yet_is_read_again_when_it_is() {
        let h = |s: &str| t(s).timestamp() / 3600;
        // 18:00–19:00 UTC is the gap's last hour; the bridge came back at 19:03 (its poll
        // covers 19:00–20:00).
        let missing: BTreeSet<i64> =
            (h("2026-05-01T10:00:00Z")..=h("2026-05-01T18:00:00Z")).collect();
        let now = t("2026-05-01T19:03:00Z");
        // A meter 7 min behind: its 19:00 record (the gap's end) comes at 19:07; the newest
        // it had was 18:00 (at 18:07).
        assert_eq!(
            gap_end_follow_up(t("2026-05-01T18:00:02Z"), Some(-420), &missing, now),
            Some((t("2026-05-01T19:09:02Z"), h("2026-05-01T18:00:00Z")))
        );
        // A meter on time, read at 19:00:02 before it wrote its 19:00 record.
        assert_eq!(
            gap_end_follow_up(
                t("2026-05-01T18:00:01Z"),
                Some(0),
                &missing,
                t("2026-05-01T19:00:02Z")
            ),
            Some((t("2026-05-01T19:02:01Z"), h("2026-05-01T18:00:00Z")))
        );
        // It had the 19:00 record already: the gap has its end, the next record ends a polled hour.
        assert_eq!(
            gap_end_follow_up(t("2026-05-01T19:00:02Z"), Some(0), &missing, now),
            None
        );
        // A meter 9 min ahead: its 19:00 record came at 18:51, inside the gap (read already).
        assert_eq!(
            gap_end_follow_up(t("2026-05-01T19:00:02Z"), Some(540), &missing, now),
            None
        );
        // The gap ended hours ago and the record after the newest never came: no use asking.
        let earlier: BTreeSet<i64> =
            (h("2026-05-01T10:00:00Z")..=h("2026-05-01T12:00:00Z")).collect();
        assert_eq!(
            gap_end_follow_up(t("2026-05-01T12:00:02Z"), Some(0), &earlier, now),
            None
        );
        // The gap's last hour is an older one; the next record would end a polled hour.
        assert_eq!(
            gap_end_follow_up(t("2026-05-01T18:00:02Z"), Some(0), &earlier, now),
            None
        );
    }

    #[test]
    fn the_day_logger_is_wanted_for_midnights_whose_hours_all_lack_a_reading() {
        // CET (UTC+1 standard): the meter's midnights are at 23:00 UTC.
        let h = |s: &str| t(s).timestamp() / 3600;
        let from = h("2026-05-01T00:00:00Z");
        let floor = h("2026-05-05T12:00:00Z");
        let all: BTreeSet<i64> = (from..floor).collect();
        let midnights: Vec<String> = day_log_midnights(&all, floor, 60)
            .iter()
            .map(|m| m.format("%d %H:%M").to_string())
            .collect();
        assert_eq!(midnights, ["01 23:00", "02 23:00", "03 23:00", "04 23:00"]);
        // The record of 2 May's midnight was stored at 22:51 (a meter clock 9 min ahead), the
        // one of 3 May's at 23:02: those days are filled; the other hours stay missing for good.
        let mut after = all.clone();
        after.remove(&h("2026-05-02T22:00:00Z"));
        after.remove(&h("2026-05-03T23:00:00Z"));
        let left: Vec<String> = day_log_midnights(&after, floor, 60)
            .iter()
            .map(|m| m.format("%d %H:%M").to_string())
            .collect();
        assert_eq!(left, ["01 23:00", "04 23:00"]);
        // A midnight whose hours reach the hour logger's oldest record is left to it.
        assert_eq!(
            day_log_midnights(&all, h("2026-05-04T23:00:00Z"), 60).len(),
            3
        );
        // UTC and a half-hour zone (+05:30: midnight at 18:30 UTC, hours 18 and 19).
        assert_eq!(
            day_log_midnights(&all, floor, 0)[0],
            t("2026-05-02T00:00:00Z")
        );
        let india = day_log_midnights(&all, floor, 330);
        assert_eq!(india[0], t("2026-05-01T18:30:00Z"));
        let mut half = all.clone();
        half.remove(&h("2026-05-01T19:00:00Z"));
        assert_eq!(
            day_log_midnights(&half, floor, 330)[0],
            t("2026-05-02T18:30:00Z")
        );
        // A midnight at the very start of the missing hours is counted.
        let from_midnight: BTreeSet<i64> = (h("2026-05-01T22:00:00Z")..floor).collect();
        assert_eq!(
            day_log_midnights(&from_midnight, floor, 60)[0],
            t("2026-05-01T23:00:00Z")
        );
        assert!(day_log_midnights(&BTreeSet::new(), floor, 60).is_empty());
    }

    /// With the session's clock offset known, a gap that begins at the meter's midnight hour
    /// gets that midnight's record when it lands in the gap (a clock on time or behind), not
    /// when it lands in the polled hour before (a clock ahead); and a restart over the stored
    /// record finds nothing (its hour is no longer missing).
    #[test]
    fn a_measured_clock_offset_places_a_midnight_record_exactly() {
        let h = |s: &str| t(s).timestamp() / 3600;
        // UTC: the gap begins at 2026-05-02 00:00 (the hour before holds polls).
        let floor = h("2026-05-04T12:00:00Z");
        let gap: BTreeSet<i64> = (h("2026-05-02T00:00:00Z")..floor).collect();
        let first = |v: Vec<DateTime<Utc>>| v.first().copied();
        // Unknown offset: ±30 min, so the polled hour before rules the first midnight out.
        assert_eq!(
            first(period_starts_for_clock(
                LogPeriod::Day,
                &gap,
                floor,
                0,
                None
            )),
            Some(t("2026-05-03T00:00:00Z"))
        );
        for behind in [Some(0), Some(-3), Some(-400)] {
            assert_eq!(
                first(period_starts_for_clock(
                    LogPeriod::Day,
                    &gap,
                    floor,
                    0,
                    behind
                )),
                Some(t("2026-05-02T00:00:00Z")),
                "{behind:?}"
            );
        }
        // A clock 2 min ahead: the record lands at 23:58, in the polled hour.
        assert_eq!(
            first(period_starts_for_clock(
                LogPeriod::Day,
                &gap,
                floor,
                0,
                Some(120)
            )),
            Some(t("2026-05-03T00:00:00Z"))
        );
        // Stored (at 00:06:40 by a clock 400 s behind): asked for no more.
        let mut filled = gap.clone();
        filled.remove(&h("2026-05-02T00:00:00Z"));
        filled.remove(&h("2026-05-03T00:00:00Z"));
        assert_eq!(
            first(period_starts_for_clock(
                LogPeriod::Day,
                &filled,
                floor,
                0,
                Some(-400)
            )),
            Some(t("2026-05-04T00:00:00Z"))
        );
        // A record late in its hour (00:59 by a clock 58 min behind) filled that hour: its band
        // reaches into the next, but the hour it filled is no longer missing.
        let mut late = gap.clone();
        late.remove(&h("2026-05-02T00:00:00Z"));
        assert_ne!(
            first(period_starts_for_clock(
                LogPeriod::Day,
                &late,
                floor,
                0,
                Some(-3540)
            )),
            Some(t("2026-05-02T00:00:00Z"))
        );
    }

    #[test]
    fn month_and_year_starts_are_calendar_correct_in_the_meters_zone() {
        let h = |s: &str| t(s).timestamp() / 3600;
        let fmt = |v: Vec<DateTime<Utc>>| -> Vec<String> {
            v.iter()
                .map(|m| m.format("%Y-%m-%d %H:%M").to_string())
                .collect()
        };
        // Every hour from mid-November 2023 to March 2025 missing; CET (+1): the meter's month
        // starts at 23:00 UTC of the day before the 1st, whatever the month's length (30, 31,
        // 29 in the leap February of 2024, 28 in 2025), and its year starts on 31 Dec 23:00.
        let from = h("2023-11-15T00:00:00Z");
        let floor = h("2025-03-10T00:00:00Z");
        let all: BTreeSet<i64> = (from..floor).collect();
        let months = fmt(period_starts(LogPeriod::Month, &all, floor, 60));
        assert_eq!(months.len(), 16, "{months:?}");
        assert_eq!(months[0], "2023-11-30 23:00");
        assert_eq!(months[1], "2023-12-31 23:00");
        assert_eq!(months[2], "2024-01-31 23:00");
        assert_eq!(months[3], "2024-02-29 23:00");
        assert_eq!(months[4], "2024-03-31 23:00");
        assert_eq!(months[15], "2025-02-28 23:00");
        assert_eq!(
            fmt(period_starts(LogPeriod::Year, &all, floor, 60)),
            ["2023-12-31 23:00", "2024-12-31 23:00"]
        );
        // UTC and a zone west of it (-05:00: 05:00 UTC on the 1st).
        assert_eq!(
            fmt(period_starts(LogPeriod::Month, &all, floor, 0))[0],
            "2023-12-01 00:00"
        );
        assert_eq!(
            fmt(period_starts(LogPeriod::Year, &all, floor, -300)),
            ["2024-01-01 05:00", "2025-01-01 05:00"]
        );
        // The oldest missing hour just after a month start: that start is not wanted (its hours
        // are not all missing), the next is.
        let late: BTreeSet<i64> = (h("2024-01-31T23:00:00Z")..floor).collect();
        assert_eq!(
            fmt(period_starts(LogPeriod::Month, &late, floor, 60))[0],
            "2024-02-29 23:00"
        );
        // The band rule: a start whose hour before or after holds a reading (its record, or a
        // finer logger's, stored with a clock up to 30 min off) is filled; a start whose
        // hours reach the finer logger's oldest record is left to that logger.
        let mut filled = all.clone();
        filled.remove(&h("2024-02-29T22:00:00Z"));
        filled.remove(&h("2024-12-31T23:00:00Z"));
        let months = fmt(period_starts(LogPeriod::Month, &filled, floor, 60));
        assert_eq!(months.len(), 14, "{months:?}");
        assert!(!months.contains(&"2024-02-29 23:00".to_string()));
        assert!(!months.contains(&"2024-12-31 23:00".to_string()));
        assert_eq!(
            fmt(period_starts(LogPeriod::Year, &filled, floor, 60)),
            ["2023-12-31 23:00"]
        );
        assert_eq!(
            fmt(period_starts(
                LogPeriod::Year,
                &all,
                h("2024-12-31T23:00:00Z"),
                60
            )),
            ["2023-12-31 23:00"]
        );
        assert!(period_starts(LogPeriod::Year, &BTreeSet::new(), floor, 60).is_empty());
        // A month or year start is a midnight: each is among the day logger's wanted ones.
        let days = day_log_midnights(&filled, floor, 60);
        for p in [LogPeriod::Month, LogPeriod::Year] {
            assert!(period_starts(p, &filled, floor, 60)
                .iter()
                .all(|m| days.contains(m)));
        }
    }

    #[test]
    fn the_longest_run_of_missing_hours() {
        assert_eq!(longest_run(&[]), 0);
        assert_eq!(longest_run(&[5]), 1);
        assert_eq!(longest_run(&[1, 2, 3, 7, 8, 10, 11, 12, 13]), 4);
    }

    #[test]
    fn a_66c_reads_its_loggers_only_for_a_gap_of_at_least_min_gap() {
        let now = t("2026-05-10T12:30:00Z");
        let h = now.timestamp() / 3600;
        let six = Duration::from_secs(6 * 3600);
        // Two short gaps of 5 h: nothing read, however many hours they add up to.
        let short: Vec<i64> = (h - 20..h - 15).chain(h - 10..h - 5).collect();
        assert_eq!(
            plan_66c(&short, now, six, 0),
            Mc66cPlan::TooShort { longest_hours: 5 }
        );
        // 6 h in a row: the hour logger.
        let gap: Vec<i64> = (h - 6..h).collect();
        assert_eq!(
            plan_66c(&gap, now, six, 0),
            Mc66cPlan::Read(vec![Mc66cLog::Hour])
        );
        // A threshold that is not whole hours rounds up.
        assert_eq!(
            plan_66c(&gap, now, Duration::from_secs(5 * 3600 + 1), 0),
            Mc66cPlan::Read(vec![Mc66cLog::Hour])
        );
        assert!(matches!(
            plan_66c(&gap, now, Duration::from_secs(6 * 3600 + 1), 0),
            Mc66cPlan::TooShort { longest_hours: 6 }
        ));
        // Beyond the hour logger's 960 hours: the day logger too; only beyond: the day logger.
        let deep: Vec<i64> = (h - 1000..h).collect();
        assert_eq!(
            plan_66c(&deep, now, six, 0),
            Mc66cPlan::Read(vec![Mc66cLog::Hour, Mc66cLog::Day])
        );
        let old: Vec<i64> = (h - 1200..h - 1000).collect();
        assert_eq!(
            plan_66c(&old, now, six, 0),
            Mc66cPlan::Read(vec![Mc66cLog::Day])
        );
        // The oldest hour /#7 holds is still read from it.
        let edge: Vec<i64> = (h - 959..h - 900).collect();
        assert_eq!(
            plan_66c(&edge, now, six, 0),
            Mc66cPlan::Read(vec![Mc66cLog::Hour])
        );
    }

    /// After a day-logger back-fill the hours between the meter's old midnights stay missing
    /// (no logger holds them): they call for no read, at a restart or with a short new gap.
    #[test]
    fn a_66c_reads_its_day_logger_only_for_a_missing_midnight() {
        let now = t("2026-05-10T12:30:00Z");
        let h = now.timestamp() / 3600;
        let six = Duration::from_secs(6 * 3600);
        let midnight = |d: i64| t("2026-05-10T00:00:00Z").timestamp() / 3600 - 24 * d;
        // 45 to 50 days back, every hour missing: the day logger.
        let old: Vec<i64> = (midnight(50)..midnight(45)).collect();
        assert_eq!(
            plan_66c(&old, now, six, 0),
            Mc66cPlan::Read(vec![Mc66cLog::Day])
        );
        // Its midnights filled (a record at 00:00:01, or at 23:59:58 by a clock ahead): the
        // hours between them are not a gap to read for, nor with a 1-hour gap now.
        for ahead in [false, true] {
            let filled = |x: &i64| (*x - midnight(50)) % 24 == if ahead { 23 } else { 0 };
            let holes: Vec<i64> = old.iter().copied().filter(|x| !filled(x)).collect();
            assert_eq!(
                plan_66c(&holes, now, six, 0),
                Mc66cPlan::TooShort { longest_hours: 0 }
            );
            let with_hour: Vec<i64> = holes.iter().copied().chain([h - 3]).collect();
            assert_eq!(
                plan_66c(&with_hour, now, six, 0),
                Mc66cPlan::TooShort { longest_hours: 1 }
            );
            // A gap of 6 h now: the hour logger alone.
            let with_gap: Vec<i64> = holes.iter().copied().chain(h - 8..h - 2).collect();
            assert_eq!(
                plan_66c(&with_gap, now, six, 0),
                Mc66cPlan::Read(vec![Mc66cLog::Hour])
            );
        }
        // A meter on +01:00: its midnight is 23:00 UTC. Hours 23:00–21:00 UTC hold none (the
        // record may land in the hour before it: 22:00–23:00 must be missing too).
        let utc_day: Vec<i64> = (midnight(47) - 1..midnight(47) + 22).collect();
        assert_eq!(
            plan_66c(&utc_day, now, six, 0),
            Mc66cPlan::Read(vec![Mc66cLog::Day])
        );
        assert!(matches!(
            plan_66c(&utc_day, now, six, 60),
            Mc66cPlan::TooShort { .. }
        ));
        let cet: Vec<i64> = (midnight(47) + 20..midnight(47) + 26).collect();
        assert_eq!(
            plan_66c(&cet, now, six, 60),
            Mc66cPlan::Read(vec![Mc66cLog::Day])
        );
        // A run of old hours shorter than min_gap across a midnight: nothing.
        let short: Vec<i64> = (midnight(47) - 2..midnight(47) + 2).collect();
        assert_eq!(
            plan_66c(&short, now, six, 0),
            Mc66cPlan::TooShort { longest_hours: 4 }
        );
        // Beyond the day logger's 60 days: no midnight it holds.
        let ancient: Vec<i64> = (midnight(70)..midnight(62)).collect();
        assert!(matches!(
            plan_66c(&ancient, now, six, 0),
            Mc66cPlan::TooShort { .. }
        ));
    }

    /// Beyond `/#6`'s 60 days, the month ends of `/#5` (read in every session) fill the meter's
    /// month starts: a run holding one calls for `/#5` alone; once filled, nothing.
    #[test]
    fn a_66c_reads_its_month_ends_for_a_missing_month_start_beyond_the_day_logger() {
        let now = t("2026-05-10T12:30:00Z");
        let six = Duration::from_secs(6 * 3600);
        let hour = |s: &str| t(s).timestamp() / 3600;
        // 2026-02-20 to 2026-03-05: 1 March is beyond /#6 (60 days: from 11 March).
        let old: Vec<i64> = (hour("2026-02-20T00:00:00Z")..hour("2026-03-05T00:00:00Z")).collect();
        assert_eq!(
            plan_66c(&old, now, six, 0),
            Mc66cPlan::Read(vec![Mc66cLog::Month])
        );
        // Its month start filled (a record at 00:00:02, or 23:59:58 by a clock ahead): nothing.
        for filled in [hour("2026-03-01T00:00:00Z"), hour("2026-02-28T23:00:00Z")] {
            let holes: Vec<i64> = old.iter().copied().filter(|h| *h != filled).collect();
            assert!(
                matches!(plan_66c(&holes, now, six, 0), Mc66cPlan::TooShort { .. }),
                "{filled}"
            );
        }
        // The meter's zone: on +01:00 its 1 March is 28 Feb 23:00 UTC.
        let cet: Vec<i64> = (hour("2026-02-28T20:00:00Z")..hour("2026-03-01T02:00:00Z")).collect();
        assert_eq!(
            plan_66c(&cet, now, six, 60),
            Mc66cPlan::Read(vec![Mc66cLog::Month])
        );
        // A month start /#6 still holds (and /#7 no longer: 40 days) is the day logger's, a
        // midnight like any other.
        let later = t("2026-05-20T12:30:00Z");
        let recent: Vec<i64> =
            (hour("2026-03-30T00:00:00Z")..hour("2026-04-02T00:00:00Z")).collect();
        assert_eq!(
            plan_66c(&recent, later, six, 0),
            Mc66cPlan::Read(vec![Mc66cLog::Day])
        );
        // /#5 holds the 32 month ends before May 2026: back to the end of September 2023 =
        // 1 October 2023. 1 September 2023 is beyond it.
        let edge: Vec<i64> = (hour("2023-09-30T12:00:00Z")..hour("2023-10-01T12:00:00Z")).collect();
        assert_eq!(
            plan_66c(&edge, now, six, 0),
            Mc66cPlan::Read(vec![Mc66cLog::Month])
        );
        let beyond: Vec<i64> =
            (hour("2023-08-31T12:00:00Z")..hour("2023-09-01T12:00:00Z")).collect();
        assert!(matches!(
            plan_66c(&beyond, now, six, 0),
            Mc66cPlan::TooShort { .. }
        ));
    }

    fn energy(v: i64) -> RegisterValue {
        RegisterValue {
            id: 60,
            name: "heat_energy".into(),
            short: "E1".into(),
            value: Decimal::new(i128::from(v), -2).unwrap(),
            unit: kamstrup_reading::ValueUnit::from_symbol("GJ"),
            unit_code: None,
            text: None,
            derived: false,
        }
    }

    /// A store file with one meter in it, and that meter's identity.
    fn store_with_meter(
        protocol: kamstrup_meter::Protocol,
    ) -> (tempfile::TempDir, Store, MeterIdentity, MeterId) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("k.db")).unwrap();
        let identity = MeterIdentity {
            protocol,
            port: "sim".into(),
            serial: Some(5_310_017),
            meter_type: None,
        };
        let meter = store
            .upsert_meter(
                5_310_017,
                "heat",
                identity.protocol,
                None,
                "sim",
                t("2026-05-01T00:00:00Z"),
            )
            .unwrap();
        (dir, store, identity, meter)
    }

    #[test]
    fn day_and_hour_records_fill_each_hour_once_hour_records_first() {
        let (_dir, mut store, identity, meter) = store_with_meter(kamstrup_meter::Protocol::Mc66c);
        let at = |s: &str| t(s);
        // The day logger: midnights of 2, 3 and 4 May; the hour logger: 3 May 22:00 – 4 May 02:00.
        let row = |stamp: DateTime<Utc>, v: i64| kamstrup_meter::Mc66cLogRow {
            meter_time: stamp.naive_utc(),
            utc: stamp,
            values: vec![energy(v)],
        };
        let day = vec![
            row(at("2026-05-02T00:00:00Z"), 1000),
            row(at("2026-05-03T00:00:00Z"), 1024),
            row(at("2026-05-04T00:00:00Z"), 1048),
        ];
        let hour = (0..5)
            .map(|k| {
                row(
                    at("2026-05-03T22:00:00Z") + chrono::Duration::hours(k),
                    1046 + k,
                )
            })
            .collect::<Vec<_>>();
        let read = Mc66cLogRead {
            logs: vec![(Mc66cLog::Day, day), (Mc66cLog::Hour, hour)],
            ..Default::default()
        };
        let batches = mc66c_batches(&read);
        assert_eq!(batches[0].0, ReadingSource::HourLog);
        let from = at("2026-05-01T12:00:00Z");
        let missing: BTreeSet<i64> =
            missing_hours(from, at("2026-05-04T03:00:00Z"), &BTreeSet::new())
                .into_iter()
                .collect();
        let mut report = BackfillReport::default();
        store_batches(
            &mut store,
            meter,
            &identity,
            &batches,
            Some(0),
            &missing,
            &Plausibility::default(),
            &mut report,
        )
        .unwrap();
        // 5 hours + the midnights of 2 and 3 May; 4 May 00:00 came from the hour logger.
        assert_eq!(report.stored, 7, "{report:?}");
        assert_eq!(report.implausible, 0);
        let rows = store
            .readings_after(kamstrup_store::ReadingId(0), 100)
            .unwrap();
        let sources: Vec<(String, ReadingSource)> = rows
            .iter()
            .map(|r| {
                (
                    r.reading.taken_at.format("%d %H").to_string(),
                    r.reading.source,
                )
            })
            .collect();
        assert!(
            sources.contains(&("04 00".into(), ReadingSource::HourLog)),
            "{sources:?}"
        );
        assert!(
            sources.contains(&("03 00".into(), ReadingSource::DayLog)),
            "{sources:?}"
        );
        let hours: BTreeSet<String> = sources.iter().map(|(h, _)| h.clone()).collect();
        assert_eq!(hours.len(), rows.len(), "an hour stored twice: {sources:?}");
        // Read again (a later session): nothing new.
        let mut again = BackfillReport::default();
        store_batches(
            &mut store,
            meter,
            &identity,
            &batches,
            Some(1),
            &missing,
            &Plausibility::default(),
            &mut again,
        )
        .unwrap();
        assert_eq!((again.stored, again.already_stored), (0, 7), "{again:?}");
        assert_eq!(report.still_missing, missing.len() - 7);
    }

    #[test]
    fn a_record_is_wanted_in_a_missing_hour_or_when_it_ends_one() {
        let base = t("2026-05-01T00:00:00Z").timestamp() / 3600;
        let missing: BTreeSet<i64> = [base + 10, base + 11].into();
        for (at, want) in [
            ("2026-05-01T09:07:00Z", false), // ends hour 8, polled
            ("2026-05-01T09:54:00Z", false), // ends hour 9, polled
            ("2026-05-01T10:00:03Z", true),  // in a missing hour
            ("2026-05-01T11:54:00Z", true),  // in a missing hour
            ("2026-05-01T12:07:00Z", true),  // polled hour, ends hour 11 (clock behind)
            ("2026-05-01T12:29:59Z", true),
            ("2026-05-01T12:30:00Z", false), // ends hour 12, polled
            ("2026-05-01T13:00:00Z", false),
        ] {
            assert_eq!(wanted(t(at), &missing), want, "{at}");
        }
    }

    /// The bridge was off from 09:40 to 13:40: hours 10–12 hold nothing, 13 only the poll at
    /// 13:40. The record at 13:00 (the counter at the end of hour 12) is stored too; 14:00 (a
    /// polled hour not after a gap) is not; the hour before the logger's oldest record stays
    /// missing and is counted.
    #[test]
    fn the_record_at_the_start_of_the_hour_after_a_gap_is_stored_too() {
        let (_dir, mut store, identity, meter) = store_with_meter(kamstrup_meter::Protocol::Kmp);
        let rows: Vec<LoggedRow> = (11..=14)
            .map(|h| LoggedRow {
                stamp: t("2026-05-01T00:00:00Z") + chrono::Duration::hours(h),
                values: vec![energy(100 + h)],
            })
            .collect();
        let base = t("2026-05-01T00:00:00Z").timestamp() / 3600;
        let missing: BTreeSet<i64> = (base + 10..=base + 12).collect();
        let mut report = BackfillReport::default();
        store_batches(
            &mut store,
            meter,
            &identity,
            &[(ReadingSource::HourLog, rows)],
            Some(0),
            &missing,
            &Plausibility::default(),
            &mut report,
        )
        .unwrap();
        let stored: Vec<String> = store
            .readings_after(kamstrup_store::ReadingId(0), 100)
            .unwrap()
            .iter()
            .map(|r| r.reading.taken_at.format("%H:%M").to_string())
            .collect();
        assert_eq!(stored, ["11:00", "12:00", "13:00"]);
        assert_eq!((report.stored, report.still_missing), (3, 1), "{report:?}");
        assert_eq!(report.skipped_covered, 1, "{report:?}");
    }
}
