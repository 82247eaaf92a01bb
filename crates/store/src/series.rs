//! Per-register history: last values, usage since a time, raw and bucketed series. All
//! arithmetic is exact; only deliverable (not implausible) values are used.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use kamstrup_decimal::Decimal;
use rusqlite::OptionalExtension;

use crate::codec::{decimal_from_sql, from_ms, to_ms};
use crate::{Bucket, MeterId, Point, Store, StoreError};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
const WEEK_MS: i64 = 7 * DAY_MS;
/// 1970-01-01 was a Thursday; ISO weeks start three days earlier, on Monday 1969-12-29.
const MONDAY_OFFSET_MS: i64 = 3 * DAY_MS;

impl Bucket {
    /// Start (unix ms) of the bucket containing `ms`.
    fn start(self, ms: i64) -> Result<i64, StoreError> {
        let floor = |width: i64| Ok(ms.div_euclid(width) * width);
        match self {
            Bucket::Hour => floor(HOUR_MS),
            Bucket::Day => floor(DAY_MS),
            Bucket::Week => {
                let shifted = ms
                    .checked_add(MONDAY_OFFSET_MS)
                    .ok_or(StoreError::TimeOutOfRange(ms))?;
                Ok(shifted.div_euclid(WEEK_MS) * WEEK_MS - MONDAY_OFFSET_MS)
            }
            Bucket::Month => {
                let t = from_ms(ms)?;
                month_start(t.year(), t.month()).ok_or(StoreError::TimeOutOfRange(ms))
            }
        }
    }

    /// Start of the bucket after the one starting at `start`.
    fn next(self, start: i64) -> Result<i64, StoreError> {
        let add = |width: i64| {
            start
                .checked_add(width)
                .ok_or(StoreError::TimeOutOfRange(start))
        };
        match self {
            Bucket::Hour => add(HOUR_MS),
            Bucket::Day => add(DAY_MS),
            Bucket::Week => add(WEEK_MS),
            Bucket::Month => {
                let t = from_ms(start)?;
                let (y, m) = if t.month() == 12 {
                    (t.year() + 1, 1)
                } else {
                    (t.year(), t.month() + 1)
                };
                month_start(y, m).ok_or(StoreError::TimeOutOfRange(start))
            }
        }
    }
}

fn month_start(year: i32, month: u32) -> Option<i64> {
    let day = NaiveDate::from_ymd_opt(year, month, 1)?;
    Some(day.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

/// The span of whole buckets whose starts lie in [bucket(from), to): (first start, end).
fn bucket_span(bucket: Bucket, from: i64, to: i64) -> Result<Option<(i64, i64)>, StoreError> {
    if to <= from {
        return Ok(None);
    }
    let first = bucket.start(from)?;
    let last = bucket.start(to - 1)?;
    Ok(Some((first, bucket.next(last)?)))
}

/// Running exact average, minimum and maximum of one bucket.
struct Accumulator {
    start: i64,
    exponent: i16,
    sum: i128,
    count: i128,
    min: Decimal,
    max: Decimal,
}

impl Accumulator {
    fn new(start: i64, v: Decimal) -> Self {
        Accumulator {
            start,
            exponent: v.exponent(),
            sum: v.mantissa(),
            count: 1,
            min: v,
            max: v,
        }
    }

    fn add(&mut self, v: Decimal) -> Result<(), StoreError> {
        const WHAT: &str = "a bucket average";
        if v.exponent() < self.exponent {
            // A finer value arrived: carry the sum to its resolution.
            let sum = Decimal::new(self.sum, self.exponent)
                .ok()
                .and_then(|s| s.rescale(v.exponent()))
                .ok_or(StoreError::Overflow(WHAT))?;
            self.sum = sum.mantissa();
            self.exponent = v.exponent();
        }
        let m = v
            .rescale(self.exponent)
            .ok_or(StoreError::Overflow(WHAT))?
            .mantissa();
        self.sum = self.sum.checked_add(m).ok_or(StoreError::Overflow(WHAT))?;
        self.count += 1;
        if v.cmp_value(&self.min).is_lt() {
            self.min = v;
        }
        if v.cmp_value(&self.max).is_gt() {
            self.max = v;
        }
        Ok(())
    }

    /// The average rounded half away from zero to the bucket's finest resolution.
    fn finish(self) -> Result<Point, StoreError> {
        let mut q = self.sum / self.count;
        let r = self.sum % self.count;
        if r.unsigned_abs() * 2 >= self.count.unsigned_abs() {
            q += self.sum.signum();
        }
        let value = Decimal::new(q, self.exponent).map_err(|_| StoreError::Overflow("average"))?;
        Ok(Point {
            t: from_ms(self.start)?,
            value,
            min: Some(self.min),
            max: Some(self.max),
        })
    }
}

fn difference(later: &Decimal, earlier: &Decimal) -> Result<Decimal, StoreError> {
    later
        .checked_sub(earlier)
        .ok_or(StoreError::Overflow("a usage difference"))
}

type Sample = (i64, Decimal);

impl Store {
    /// The series id of (meter, register), if it was ever stored.
    fn series_id(&self, meter: MeterId, register: &str) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT id FROM series WHERE meter_id = ?1 AND name = ?2")?
            .query_row(rusqlite::params![meter.0, register], |row| row.get(0))
            .optional()?)
    }

    /// The first deliverable sample of a series in the order of `tail`, an SQL condition on
    /// the time `?2` plus an `ORDER BY`.
    fn one_sample(
        &self,
        meter: MeterId,
        register: &str,
        tail: &str,
        t: i64,
    ) -> Result<Option<Sample>, StoreError> {
        let Some(series) = self.series_id(meter, register)? else {
            return Ok(None);
        };
        let sql = format!(
            "SELECT taken_at, mantissa, exponent FROM reading_values
             WHERE series_id = ?1 AND deliverable = 1 {tail} LIMIT 1"
        );
        let row: Option<(i64, i64, i64)> = self
            .conn
            .prepare_cached(&sql)?
            .query_row(rusqlite::params![series, t], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        row.map(|(t, m, e)| Ok((t, decimal_from_sql(m, e)?)))
            .transpose()
    }

    fn last_sample(&self, meter: MeterId, register: &str) -> Result<Option<Sample>, StoreError> {
        self.one_sample(
            meter,
            register,
            "AND taken_at <= ?2 ORDER BY taken_at DESC, reading_id DESC, pos DESC",
            i64::MAX,
        )
    }

    fn sample_at_or_before(
        &self,
        meter: MeterId,
        register: &str,
        t: i64,
    ) -> Result<Option<Sample>, StoreError> {
        self.one_sample(
            meter,
            register,
            "AND taken_at <= ?2 ORDER BY taken_at DESC, reading_id DESC, pos DESC",
            t,
        )
    }

    fn sample_after(
        &self,
        meter: MeterId,
        register: &str,
        t: i64,
    ) -> Result<Option<Sample>, StoreError> {
        self.one_sample(
            meter,
            register,
            "AND taken_at > ?2 ORDER BY taken_at, reading_id, pos",
            t,
        )
    }

    /// Streams deliverable samples of a series with `from <= taken_at < to` in time order.
    fn samples(
        &self,
        meter: MeterId,
        register: &str,
        from: i64,
        to: i64,
        each: &mut dyn FnMut(i64, Decimal) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let Some(series) = self.series_id(meter, register)? else {
            return Ok(());
        };
        let mut stmt = self.conn.prepare_cached(
            "SELECT taken_at, mantissa, exponent FROM reading_values
             WHERE series_id = ?1 AND taken_at >= ?2 AND taken_at < ?3 AND deliverable = 1
             ORDER BY taken_at, reading_id, pos",
        )?;
        let mut rows = stmt.query(rusqlite::params![series, from, to])?;
        while let Some(row) = rows.next()? {
            each(row.get(0)?, decimal_from_sql(row.get(1)?, row.get(2)?)?)?;
        }
        Ok(())
    }

    /// The newest deliverable value of a register (the baseline of plausibility checks).
    pub fn last_value(
        &self,
        meter: MeterId,
        register: &str,
    ) -> Result<Option<(DateTime<Utc>, Decimal)>, StoreError> {
        self.last_sample(meter, register)?
            .map(|(t, v)| Ok((from_ms(t)?, v)))
            .transpose()
    }

    /// The newest deliverable value taken at or before `t`.
    pub fn value_at_or_before(
        &self,
        meter: MeterId,
        register: &str,
        t: DateTime<Utc>,
    ) -> Result<Option<(DateTime<Utc>, Decimal)>, StoreError> {
        self.sample_at_or_before(meter, register, to_ms(t))?
            .map(|(t, v)| Ok((from_ms(t)?, v)))
            .transpose()
    }

    /// Exact usage of a counter since `since`: the newest value minus the last value at or
    /// before `since` (or, if there is none, the first value after it). `None` without data.
    /// A reading exactly at `since` is the baseline, so "usage today" with a midnight reading
    /// starts from that reading.
    pub fn usage_since(
        &self,
        meter: MeterId,
        register: &str,
        since: DateTime<Utc>,
    ) -> Result<Option<Decimal>, StoreError> {
        let Some((_, latest)) = self.last_sample(meter, register)? else {
            return Ok(None);
        };
        let since = to_ms(since);
        let base = match self.sample_at_or_before(meter, register, since)? {
            Some(s) => Some(s),
            None => self.sample_after(meter, register, since)?,
        };
        base.map(|(_, b)| difference(&latest, &b)).transpose()
    }

    /// A register's values over `[from, to)`.
    ///
    /// Without a bucket: every deliverable value, exact, in time order. With a bucket: one
    /// point per UTC bucket that has values — `t` is the bucket start, `value` the exact average
    /// rounded half away from zero to the finest resolution in the bucket, plus `min` and `max`.
    /// Buckets are whole: the range selects the buckets that start in `[bucket(from), to)`, so a
    /// "last 7 days" graph does not get a partial first day. Meant for instantaneous values
    /// (temperatures, power, flow); use [`Store::usage_series`] for counters.
    pub fn series(
        &self,
        meter: MeterId,
        register: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        bucket: Option<Bucket>,
    ) -> Result<Vec<Point>, StoreError> {
        let (from, to) = (to_ms(from), to_ms(to));
        let mut out = Vec::new();
        let Some(bucket) = bucket else {
            self.samples(meter, register, from, to, &mut |t, value| {
                out.push(Point {
                    t: from_ms(t)?,
                    value,
                    min: None,
                    max: None,
                });
                Ok(())
            })?;
            return Ok(out);
        };
        let Some((first, end)) = bucket_span(bucket, from, to)? else {
            return Ok(out);
        };
        let mut current: Option<(Accumulator, i64)> = None;
        self.samples(meter, register, first, end, &mut |t, v| {
            match current.as_mut() {
                Some((acc, next)) if t < *next => acc.add(v)?,
                _ => {
                    let start = bucket.start(t)?;
                    let fresh = (Accumulator::new(start, v), bucket.next(start)?);
                    if let Some((done, _)) = current.replace(fresh) {
                        out.push(done.finish()?);
                    }
                }
            }
            Ok(())
        })?;
        if let Some((done, _)) = current {
            out.push(done.finish()?);
        }
        Ok(out)
    }

    /// A counter's exact usage per UTC bucket: for each bucket starting in
    /// `[bucket(from), to)` that has data, `value` = the last value at or before the bucket's
    /// end − the last value at or before its start; `t` is the bucket start. Without any value
    /// before the span, the first value is the baseline and the usage counts from there.
    ///
    /// A reading exactly on a boundary closes the bucket that ends there, matching
    /// [`Store::usage_since`]: the "day" point equals `usage_since(midnight)` at the end of the
    /// day, and the points add up exactly to the usage over the whole span. Usage during a gap
    /// without readings is counted in the bucket of the next reading.
    pub fn usage_series(
        &self,
        meter: MeterId,
        register: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        bucket: Bucket,
    ) -> Result<Vec<Point>, StoreError> {
        let mut out = Vec::new();
        let Some((first, end)) = bucket_span(bucket, to_ms(from), to_ms(to))? else {
            return Ok(out);
        };
        let mut base = self
            .sample_at_or_before(meter, register, first)?
            .map(|(_, v)| v);
        // (bucket start, bucket end, last value) of the bucket being filled.
        let mut current: Option<(i64, i64, Decimal)> = None;
        let mut close = |start: i64, last: Decimal, base: &mut Option<Decimal>| {
            let earlier = base.replace(last).unwrap_or(last);
            out.push(Point {
                t: from_ms(start)?,
                value: difference(&last, &earlier)?,
                min: None,
                max: None,
            });
            Ok::<(), StoreError>(())
        };
        // Samples in (first, end]: a sample at t belongs to the bucket containing t − 1 ms.
        self.samples(
            meter,
            register,
            first.saturating_add(1),
            end.saturating_add(1),
            &mut |t, v| {
                if base.is_none() {
                    // No history before the span: the first value is only the baseline (a bucket
                    // holding nothing else has no known usage, which is not zero usage).
                    base = Some(v);
                    return Ok(());
                }
                match current.as_mut() {
                    Some((_, bucket_end, last)) if t <= *bucket_end => *last = v,
                    _ => {
                        let start = bucket.start(t - 1)?;
                        if let Some((done, _, last)) =
                            current.replace((start, bucket.next(start)?, v))
                        {
                            close(done, last, &mut base)?;
                        }
                    }
                }
                Ok(())
            },
        )?;
        if let Some((done, _, last)) = current {
            close(done, last, &mut base)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        s.parse::<DateTime<Utc>>().unwrap().timestamp_millis()
    }

    #[test]
    fn bucket_boundaries_are_utc_calendar() {
        let t = ms("2024-02-29T13:45:10Z");
        assert_eq!(Bucket::Hour.start(t).unwrap(), ms("2024-02-29T13:00:00Z"));
        assert_eq!(Bucket::Day.start(t).unwrap(), ms("2024-02-29T00:00:00Z"));
        // 2024-02-29 is a Thursday; its ISO week starts Monday 2024-02-26.
        assert_eq!(Bucket::Week.start(t).unwrap(), ms("2024-02-26T00:00:00Z"));
        assert_eq!(Bucket::Month.start(t).unwrap(), ms("2024-02-01T00:00:00Z"));
        assert_eq!(
            Bucket::Month.next(ms("2024-12-01T00:00:00Z")).unwrap(),
            ms("2025-01-01T00:00:00Z")
        );
        // Before 1970 too (div_euclid, not truncation).
        let old = ms("1969-12-31T23:30:00Z");
        assert_eq!(Bucket::Day.start(old).unwrap(), ms("1969-12-31T00:00:00Z"));
        assert_eq!(Bucket::Week.start(old).unwrap(), ms("1969-12-29T00:00:00Z"));
        // A Monday at midnight starts its own week.
        let monday = ms("2024-03-04T00:00:00Z");
        assert_eq!(Bucket::Week.start(monday).unwrap(), monday);
    }

    #[test]
    fn averages_round_half_away_from_zero_at_the_finest_resolution() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        let mut acc = Accumulator::new(0, d("1.0"));
        acc.add(d("1.05")).unwrap();
        let p = acc.finish().unwrap();
        assert_eq!(p.value.to_string(), "1.03"); // 1.025 → 1.03
        let mut acc = Accumulator::new(0, d("-1.0"));
        acc.add(d("-1.05")).unwrap();
        assert_eq!(acc.finish().unwrap().value.to_string(), "-1.03");
        let mut acc = Accumulator::new(0, d("20.1"));
        acc.add(d("20.2")).unwrap();
        acc.add(d("20.2")).unwrap();
        let p = acc.finish().unwrap();
        assert_eq!(p.value.to_string(), "20.2"); // 20.1666…
        assert_eq!(p.min.unwrap().to_string(), "20.1");
        assert_eq!(p.max.unwrap().to_string(), "20.2");
    }
}
