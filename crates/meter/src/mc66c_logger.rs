//! A MULTICAL 66C's hour (`/#7`) and day (`/#6`) loggers as counter records for back-fill: their
//! lines hold each period's growth, so counters come from the month-end counters of `/#5` —
//! which are records themselves, at the meter's month starts, 32 months deep (`Mc66cLog::Month`).
//!
//! What is documented and what is our reading (`kmp-loggers.md` §6, TD 5511-634): the lines come
//! newest first, one per period; a `/#7` line carries only its date, so its hour is found by
//! counting the lines of that date (the newest date's lines are hours 00, 01, … up to the last
//! completed hour, every older date's lines end at hour 23; a day in between with fewer than 24
//! lines ends what is used, since its hours are unknown); a `/#5` line's counters are the
//! registers at the end of its date (the month's last day). The growths are differences of the
//! truncated counters, so `energy at the end of a period = the month-end energy ± the growths
//! between` is exact — and a second month end inside the logger's span checks the line
//! positions: a meter that counts otherwise is refused, never stored with shifted hours.
//! Volume is not back-filled (the loggers hold masses, not volumes); temperatures are period
//! averages, not register values, and are left out too.

use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use kamstrup_mc66c::{DataSet, Logger, MeterDate, MonthlyData, Reply, Scaling};

use crate::error::MeterError;
use crate::mc66c_driver::Mc66cMeter;
use crate::reading::RegisterValue;

/// `/#7`'s depth in lines (hours) by the TD.
pub const HOUR_LOG_DEPTH: usize = 960;
/// `/#6`'s depth in lines (days) by the TD.
pub const DAY_LOG_DEPTH: usize = 60;
/// `/#5`'s depth in lines (month ends) by the TD.
pub const MONTH_END_DEPTH: usize = 32;

/// The 66C's counters are 7 digits and roll over past them.
const COUNTER_LIMIT: i64 = 10_000_000;

/// Which 66C logger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mc66cLog {
    /// `/#7`, one line per hour.
    Hour,
    /// `/#6`, one line per day.
    Day,
    /// `/#5`, the counters at each month's end (energy and volume): read in every session
    /// anyway, to anchor the other loggers, so asking for it costs no further data set.
    Month,
}

impl Mc66cLog {
    fn data_set(self) -> DataSet {
        match self {
            Mc66cLog::Hour => DataSet::HourlyLog,
            Mc66cLog::Day => DataSet::DailyLog,
            Mc66cLog::Month => DataSet::Monthly,
        }
    }

    /// `/#7` or `/#6`.
    pub fn request(self) -> &'static str {
        match self {
            Mc66cLog::Hour => "/#7",
            Mc66cLog::Day => "/#6",
            Mc66cLog::Month => "/#5",
        }
    }
}

/// One logged period as a counter record: the heat energy at the period's end.
#[derive(Clone, Debug, PartialEq)]
pub struct Mc66cLogRow {
    /// The end of the period by the meter's clock (its own time: no zone, no DST).
    pub meter_time: NaiveDateTime,
    /// The same moment in UTC by the given zone (the meter clock's offset not corrected).
    pub utc: DateTime<Utc>,
    /// `heat_energy` (KMP id 60, as `/#1` names it), exact at the meter's resolution; for
    /// `/#5` also `volume` (68).
    pub values: Vec<RegisterValue>,
}

/// Why the logger lines could not be turned into counters.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Mc66cLogError {
    /// No `/#5` month end falls inside the span of the logger's lines.
    #[error("no month-end counter of /#5 falls inside the {request} logger's span ({from} – {to}); its growths cannot be turned into counters")]
    NoAnchor {
        /// `/#7` or `/#6`.
        request: &'static str,
        /// The oldest period's start.
        from: NaiveDateTime,
        /// The newest period's end.
        to: NaiveDateTime,
    },
    /// The lines do not form the periods this reader assumes (dates out of order, more than 24
    /// lines in a day, or two month ends that disagree with the growths between them).
    #[error("the {request} logger's lines do not add up as expected: {what}; not back-filled")]
    Inconsistent {
        /// `/#7` or `/#6`.
        request: &'static str,
        /// What did not fit.
        what: String,
    },
}

fn naive(date: MeterDate) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(
        i32::from(date.year()),
        u32::from(date.month()),
        u32::from(date.day()),
    )
}

/// The periods of a logger's lines, oldest first: (start, end, energy growth), the newest
/// contiguous run only (an empty line ends the logger).
fn periods(
    log: Mc66cLog,
    logger: &Logger,
) -> Result<Vec<(NaiveDateTime, NaiveDateTime, i64)>, Mc66cLogError> {
    let request = log.request();
    let inconsistent = |what: String| Mc66cLogError::Inconsistent { request, what };
    // Newest first, as sent; `None` dates (never-written lines) end the logger.
    let mut dated: Vec<(NaiveDate, i64)> = Vec::new();
    for r in logger.records() {
        let Some(date) = r.date().and_then(naive) else {
            break;
        };
        dated.push((date, r.get("energy").unwrap_or(0)));
    }
    let mut out = Vec::with_capacity(dated.len());
    match log {
        // Counters, not growths: see `month_rows`.
        Mc66cLog::Month => return Err(inconsistent("/#5 holds counters, not growths".into())),
        Mc66cLog::Day => {
            for (date, growth) in dated {
                let start = date.and_time(chrono::NaiveTime::MIN);
                out.push((start, start + chrono::Duration::days(1), growth));
            }
        }
        Mc66cLog::Hour => {
            let mut i = 0;
            let mut first_group = true;
            let mut last_date: Option<NaiveDate> = None;
            while let Some(&(date, _)) = dated.get(i) {
                if last_date.is_some_and(|d| date >= d) {
                    return Err(inconsistent(format!(
                        "line {}: date {date} after {}",
                        i + 1,
                        last_date.unwrap_or(date)
                    )));
                }
                let n = dated[i..].iter().take_while(|(d, _)| *d == date).count();
                if n > 24 {
                    return Err(inconsistent(format!("{n} lines dated {date}")));
                }
                // A whole day with hours missing (the meter was off?): which hours its lines
                // are is unknown, and so are the older ones: only the newer lines are used.
                let oldest = i + n == dated.len();
                if !first_group && !oldest && n < 24 {
                    break;
                }
                for (k, &(_, growth)) in dated[i..i + n].iter().enumerate() {
                    // Newest date: hours n-1 … 0; older dates end at hour 23.
                    let top = if first_group { n - 1 } else { 23 };
                    let hour = u32::try_from(top - k).unwrap_or(0);
                    let start = date.and_time(chrono::NaiveTime::MIN)
                        + chrono::Duration::hours(i64::from(hour));
                    out.push((start, start + chrono::Duration::hours(1), growth));
                }
                first_group = false;
                last_date = Some(date);
                i += n;
            }
        }
    }
    // Keep the newest contiguous run.
    let keep = out
        .windows(2)
        .position(|w| w[1].1 != w[0].0)
        .map_or(out.len(), |p| p + 1);
    out.truncate(keep);
    out.reverse();
    Ok(out)
}

/// Turns a `/#7` or `/#6` reply into counter records (oldest first), anchored to the month ends
/// of `/#5`; `zone_standard_offset_min` maps the meter's clock to UTC.
pub fn counter_rows(
    log: Mc66cLog,
    logger: &Logger,
    months: &MonthlyData,
    scaling: &Scaling,
    zone_standard_offset_min: i32,
) -> Result<Vec<Mc66cLogRow>, Mc66cLogError> {
    let request = log.request();
    let periods = periods(log, logger)?;
    let (Some(first), Some(last)) = (periods.first(), periods.last()) else {
        return Ok(Vec::new());
    };
    // Boundaries b_0 … b_n and the growth from b_0 to each.
    let mut bounds = Vec::with_capacity(periods.len() + 1);
    bounds.push((first.0, 0i64));
    let mut sum = 0i64;
    for p in &periods {
        sum += p.2;
        bounds.push((p.1, sum));
    }
    // Month ends inside the span, newest first: (boundary index, counter).
    let anchors: Vec<(usize, i64)> = months
        .records
        .iter()
        .filter_map(|m| {
            let end = naive(m.date?)?.succ_opt()?.and_time(chrono::NaiveTime::MIN);
            let k = bounds.iter().position(|(b, _)| *b == end)?;
            Some((k, m.energy))
        })
        .collect();
    let Some(&(anchor, anchor_energy)) = anchors.first() else {
        return Err(Mc66cLogError::NoAnchor {
            request,
            from: first.0,
            to: last.1,
        });
    };
    let counter_at = |k: usize| {
        let (_, at_k) = bounds[k];
        let (_, at_anchor) = bounds[anchor];
        (anchor_energy + at_k - at_anchor).rem_euclid(COUNTER_LIMIT)
    };
    for &(k, energy) in anchors.iter().skip(1) {
        if counter_at(k) != energy.rem_euclid(COUNTER_LIMIT) {
            return Err(Mc66cLogError::Inconsistent {
                request,
                what: format!(
                    "the month end {} holds {energy}, the growths from {} give {}",
                    bounds[k].0,
                    bounds[anchor].0,
                    counter_at(k)
                ),
            });
        }
    }
    let zone = chrono::Duration::minutes(i64::from(zone_standard_offset_min));
    let mut rows = Vec::with_capacity(periods.len());
    for (k, (end, _)) in bounds.iter().enumerate().skip(1) {
        let value =
            scaling
                .energy("energy", counter_at(k))
                .map_err(|e| Mc66cLogError::Inconsistent {
                    request,
                    what: e.to_string(),
                })?;
        rows.push(Mc66cLogRow {
            meter_time: *end,
            utc: (*end - zone).and_utc(),
            values: vec![RegisterValue {
                id: 60,
                name: "heat_energy".into(),
                short: "E1".into(),
                value: value.value,
                unit: value.unit.map_or(crate::reading::ValueUnit::None, |u| {
                    crate::units::mc66c_unit(u).into()
                }),
                unit_code: None,
                text: None,
                derived: false,
            }],
        });
    }
    Ok(rows)
}

/// The month-end counters of `/#5` as counter records (oldest first): each line's energy and
/// volume V1 are the registers at the end of its date, the month's last day, so the record is
/// stamped at the meter's midnight that starts the next month. Never-written lines are left out.
pub fn month_rows(
    months: &MonthlyData,
    scaling: &Scaling,
    zone_standard_offset_min: i32,
) -> Result<Vec<Mc66cLogRow>, Mc66cLogError> {
    let request = Mc66cLog::Month.request();
    let zone = chrono::Duration::minutes(i64::from(zone_standard_offset_min));
    let mut rows = Vec::with_capacity(months.records.len());
    for m in &months.records {
        let Some(end) = m
            .date
            .and_then(naive)
            .and_then(|d| d.succ_opt())
            .map(|d| d.and_time(chrono::NaiveTime::MIN))
        else {
            continue;
        };
        let inconsistent = |e: kamstrup_mc66c::Error| Mc66cLogError::Inconsistent {
            request,
            what: e.to_string(),
        };
        let energy = scaling.energy("energy", m.energy).map_err(inconsistent)?;
        let volume = scaling.volume("volume", m.volume).map_err(inconsistent)?;
        let value =
            |(id, name, short): (u16, &str, &str), v: kamstrup_mc66c::Value| RegisterValue {
                id,
                name: name.into(),
                short: short.into(),
                value: v.value,
                unit: v.unit.map_or(crate::reading::ValueUnit::None, |u| {
                    crate::units::mc66c_unit(u).into()
                }),
                unit_code: None,
                text: None,
                derived: false,
            };
        rows.push(Mc66cLogRow {
            meter_time: end,
            utc: (end - zone).and_utc(),
            values: vec![
                value((60, "heat_energy", "E1"), energy),
                value((68, "volume", "V1"), volume),
            ],
        });
    }
    rows.sort_by_key(|r| r.meter_time);
    rows.dedup_by_key(|r| r.meter_time);
    Ok(rows)
}

/// What one back-fill session with a 66C read: the meter clock, and each logger asked.
#[derive(Clone, Debug, Default)]
pub struct Mc66cLogRead {
    /// Counter records per logger, oldest first.
    pub logs: Vec<(Mc66cLog, Vec<Mc66cLogRow>)>,
    /// Meter clock (`/#D`, by the zone) minus host clock, seconds; `None` if `/#D` failed.
    pub clock_offset_s: Option<i64>,
    /// Requests sent (retries included).
    pub requests: u64,
    /// Bytes on the wire, both directions.
    pub bytes: u64,
    /// Wall time of the session.
    pub wall: Duration,
    /// Data sets read, in order (`/#D`, `/#5`, `/#7` …; first `scaling` when the program number
    /// had to be read).
    pub data_sets: Vec<&'static str>,
}

/// How long after the meter's clock passed an hour its `/#7` line for the hour before is taken
/// to be written (and the clock's whole-second reading to be off at most).
pub const HOUR_LINE_MARGIN: Duration = Duration::from_secs(10);

/// A session that stopped after `/#D`: the meter's clock had not yet passed the hour whose
/// `/#7` line was asked for (it runs behind this host's), so reading the whole logger now
/// (~11 min of IR) would miss that line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mc66cNotYet {
    /// Meter clock minus host clock, seconds.
    pub clock_offset_s: i64,
    /// When (host clock) the meter will have written that line, with [`HOUR_LINE_MARGIN`].
    pub due: DateTime<Utc>,
    /// Requests and bytes the session cost (`/#D`, and the program number if unknown).
    pub requests: u64,
    /// Bytes on the wire, both directions.
    pub bytes: u64,
}

/// What a back-fill session with a 66C did: read the loggers, or found the hour logger not yet
/// holding the hour asked for.
#[derive(Clone, Debug)]
pub enum Mc66cSession {
    /// The loggers asked for, read.
    Read(Mc66cLogRead),
    /// Nothing read after `/#D`: try again at `due`.
    NotYet(Mc66cNotYet),
}

/// Why a 66C logger read failed.
#[derive(Debug, thiserror::Error)]
pub enum Mc66cLogReadError {
    /// The meter or the link failed.
    #[error(transparent)]
    Meter(#[from] MeterError),
    /// The lines could not be turned into counters.
    #[error(transparent)]
    Lines(#[from] Mc66cLogError),
}

impl Mc66cMeter {
    /// One back-fill session: `/#D` for the meter's clock (its offset from this host), `/#5`
    /// for the month-end counters, then each logger in `logs` — whole data sets, since a 66C
    /// cannot be asked for part of one (`/#7` is ~74 kB, ~11 min at 1200 Bd). Only read
    /// requests; a logger data set is not retried (a second try would cost as long again; the
    /// caller tries after the next good poll).
    pub async fn read_counter_logs(
        &mut self,
        logs: &[Mc66cLog],
        zone_standard_offset_min: i32,
    ) -> Result<Mc66cLogRead, Mc66cLogReadError> {
        match self
            .read_counter_logs_through(logs, zone_standard_offset_min, None)
            .await?
        {
            Mc66cSession::Read(read) => Ok(read),
            // Not asked for: nothing stops a session without an hour to wait for.
            Mc66cSession::NotYet(_) => Ok(Mc66cLogRead::default()),
        }
    }

    /// [`Self::read_counter_logs`], for a `/#7` that should hold the line ending at `hour_end`
    /// (UTC, an hour boundary of the meter's clock by the zone): when `/#D` shows the meter's
    /// clock has not passed it yet (by [`HOUR_LINE_MARGIN`]; a clock behind this host's), the
    /// session stops there ([`Mc66cSession::NotYet`]) — one short data set instead of a
    /// logger read that lacks the line a gap needs to end.
    pub async fn read_counter_logs_through(
        &mut self,
        logs: &[Mc66cLog],
        zone_standard_offset_min: i32,
        hour_end: Option<DateTime<Utc>>,
    ) -> Result<Mc66cSession, Mc66cLogReadError> {
        let started = Instant::now();
        let before = self.stats();
        let mut out = Mc66cLogRead::default();
        let scaling = self.scaling().await?.scaling;
        if self.stats().requests > before.requests {
            // The program number was not known: /#2 (or /#D, /#?!) was asked for it.
            out.data_sets.push("scaling");
        }
        out.clock_offset_s = match self.read_data_set(DataSet::Programming).await {
            Ok(reply) => {
                // The meter stamped its clock (whole seconds, truncated) as it began to send:
                // compare with this host's clock then (the line's air time ago) and take the
                // middle of the meter's second. What remains is the meter's latency (0.3–2 s).
                let air = kamstrup_optical::LineSettings::MC66C_REPLY.air_time(reply.raw.len());
                let host = Utc::now() - chrono::Duration::from_std(air).unwrap_or_default();
                match reply.reply {
                    Reply::Programming(d) => d.date().and_then(naive).and_then(|date| {
                        let c = d.clock();
                        let t = date.and_hms_opt(
                            u32::from(c.hour()),
                            u32::from(c.minute()),
                            u32::from(c.second()),
                        )?;
                        let utc =
                            (t - chrono::Duration::minutes(i64::from(zone_standard_offset_min)))
                                .and_utc();
                        let ms = (utc - host).num_milliseconds() + 500;
                        Some((ms as f64 / 1000.0).round() as i64)
                    }),
                    _ => None,
                }
            }
            Err(e) if e.is_retryable() => {
                tracing::warn!(error = %e, "the 66C's clock (/#D) could not be read; its logged times are taken as they are");
                None
            }
            Err(e) => return Err(e.into()),
        };
        out.data_sets.push("/#D");
        if let (Some(end), Some(offset), true) =
            (hour_end, out.clock_offset_s, logs.contains(&Mc66cLog::Hour))
        {
            let margin = chrono::Duration::from_std(HOUR_LINE_MARGIN).unwrap_or_default();
            // The meter's clock reaches `end` when this host's shows `end − offset`.
            let due = end - chrono::Duration::seconds(offset) + margin;
            if Utc::now() < due {
                let after = self.stats();
                return Ok(Mc66cSession::NotYet(Mc66cNotYet {
                    clock_offset_s: offset,
                    due,
                    requests: after.requests.saturating_sub(before.requests),
                    bytes: (after.link.bytes_sent + after.link.bytes_received)
                        .saturating_sub(before.link.bytes_sent + before.link.bytes_received),
                }));
            }
        }
        let saved = *self.options();
        let months = self.read_data_set(DataSet::Monthly).await;
        out.data_sets.push("/#5");
        let months = match months?.reply {
            Reply::Monthly(m) => m,
            _ => MonthlyData {
                customer_no: 0,
                records: Vec::new(),
            },
        };
        let mut once = saved;
        once.retries = 0;
        self.set_options(once);
        let mut result: Result<(), Mc66cLogReadError> = Ok(());
        for &log in logs {
            if log == Mc66cLog::Month {
                // Read above already.
                match month_rows(&months, &scaling, zone_standard_offset_min) {
                    Ok(rows) => out.logs.push((log, rows)),
                    Err(e) => {
                        result = Err(e.into());
                        break;
                    }
                }
                continue;
            }
            out.data_sets.push(log.request());
            match self.read_data_set(log.data_set()).await {
                Ok(reply) => match reply.reply {
                    Reply::Logger(l) => {
                        match counter_rows(log, &l, &months, &scaling, zone_standard_offset_min) {
                            Ok(rows) => out.logs.push((log, rows)),
                            Err(e) => {
                                result = Err(e.into());
                                break;
                            }
                        }
                    }
                    _ => out.logs.push((log, Vec::new())),
                },
                Err(e) => {
                    result = Err(e.into());
                    break;
                }
            }
        }
        self.set_options(saved);
        result?;
        let after = self.stats();
        out.requests = after.requests.saturating_sub(before.requests);
        out.bytes = (after.link.bytes_sent + after.link.bytes_received)
            .saturating_sub(before.link.bytes_sent + before.link.bytes_received);
        out.wall = started.elapsed();
        Ok(Mc66cSession::Read(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mc66c_registers::standard_registers;
    use crate::sim::mc66c_model::Mc66cModel;
    use kamstrup_mc66c::{LoggerRecord, MonthlyRecord, Request};

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// `/#1`'s energy of the model at `at`: what the meter's counter said at that moment.
    fn energy_at(model: &Mc66cModel, at: DateTime<Utc>) -> kamstrup_decimal::Decimal {
        let bytes = model
            .respond_at(Request::Data(DataSet::Standard1), at)
            .unwrap();
        let Reply::Standard1(d) = Reply::parse(DataSet::Standard1, &bytes).unwrap() else {
            panic!("not /#1")
        };
        let registers = standard_registers(&d, &model.scaling()).unwrap();
        assert_eq!(registers[0].name, "heat_energy");
        registers[0].value
    }

    fn months(model: &Mc66cModel, now: DateTime<Utc>) -> MonthlyData {
        let bytes = model
            .respond_at(Request::Data(DataSet::Monthly), now)
            .unwrap();
        MonthlyData::parse(&bytes).unwrap()
    }

    fn logger(model: &Mc66cModel, log: Mc66cLog, now: DateTime<Utc>) -> Logger {
        let bytes = model
            .respond_at(Request::Data(log.data_set()), now)
            .unwrap();
        Logger::parse(log.data_set(), &bytes).unwrap()
    }

    #[test]
    fn every_month_end_of_5_is_the_counters_at_the_next_months_start() {
        let model = Mc66cModel::default();
        let now = t("2026-03-09T14:37:00Z");
        let rows = month_rows(&months(&model, now), &model.scaling(), 0).unwrap();
        assert_eq!(rows.len(), MONTH_END_DEPTH);
        // The newest: the end of February = 1 March 00:00; the oldest 32 months before.
        assert_eq!(rows.last().unwrap().utc, t("2026-03-01T00:00:00Z"));
        assert_eq!(rows[0].utc, t("2023-08-01T00:00:00Z"));
        for r in &rows {
            let bytes = model
                .respond_at(Request::Data(DataSet::Standard1), r.utc)
                .unwrap();
            let Reply::Standard1(d) = Reply::parse(DataSet::Standard1, &bytes).unwrap() else {
                panic!("not /#1")
            };
            let at = standard_registers(&d, &model.scaling()).unwrap();
            let want: Vec<_> = at
                .iter()
                .filter(|v| v.id == 60 || v.id == 68)
                .map(|v| (v.name.clone(), v.value, v.unit.clone()))
                .collect();
            let got: Vec<_> = r
                .values
                .iter()
                .map(|v| (v.name.clone(), v.value, v.unit.clone()))
                .collect();
            assert_eq!(got, want, "{}", r.meter_time);
        }
        // By the zone: CET's midnight is 23:00 UTC the day before.
        let cet = month_rows(&months(&model, now), &model.scaling(), 60).unwrap();
        assert_eq!(cet.last().unwrap().utc, t("2026-02-28T23:00:00Z"));
    }

    #[test]
    fn every_hour_of_the_hour_logger_is_the_counter_at_its_end() {
        let model = Mc66cModel::default();
        for now in [
            t("2026-03-09T14:37:00Z"),
            t("2026-03-01T00:20:00Z"),
            t("2026-02-28T23:59:00Z"),
        ] {
            let rows = counter_rows(
                Mc66cLog::Hour,
                &logger(&model, Mc66cLog::Hour, now),
                &months(&model, now),
                &model.scaling(),
                0,
            )
            .unwrap();
            assert_eq!(rows.len(), HOUR_LOG_DEPTH);
            let newest = rows.last().unwrap();
            let hour = now.timestamp() / 3600 * 3600;
            assert_eq!(newest.utc.timestamp(), hour, "{now}");
            for r in &rows {
                let v = &r.values[0];
                assert_eq!(v.name, "heat_energy");
                assert_eq!(
                    v.value,
                    energy_at(&model, r.utc),
                    "{} (read at {now})",
                    r.utc
                );
                assert_eq!(r.utc.timestamp() % 3600, 0);
            }
            assert!(rows
                .windows(2)
                .all(|w| w[1].utc - w[0].utc == chrono::Duration::hours(1)));
        }
    }

    #[test]
    fn every_day_of_the_day_logger_is_the_counter_at_its_midnight() {
        let model = Mc66cModel::default();
        let now = t("2026-03-09T14:37:00Z");
        let rows = counter_rows(
            Mc66cLog::Day,
            &logger(&model, Mc66cLog::Day, now),
            &months(&model, now),
            &model.scaling(),
            60,
        )
        .unwrap();
        assert_eq!(rows.len(), DAY_LOG_DEPTH);
        for r in &rows {
            // The meter clock runs on UTC here; a zone of +01:00 moves only the UTC stamp.
            assert_eq!(r.meter_time.and_utc().timestamp() % 86_400, 0);
            assert_eq!(r.utc, r.meter_time.and_utc() - chrono::Duration::hours(1));
            assert_eq!(r.values[0].value, energy_at(&model, r.meter_time.and_utc()));
        }
    }

    fn line(date: (u16, u8, u8), energy: i64) -> LoggerRecord {
        LoggerRecord::from_raw(
            DataSet::HourlyLog,
            &[
                MeterDate::to_raw(MeterDate::new(date.0, date.1, date.2)),
                energy,
                0,
                0,
                0,
                0,
                0,
                0,
                6800,
                21875,
                3500,
                0,
            ],
        )
        .unwrap()
    }

    fn month(date: (u16, u8, u8), energy: i64) -> MonthlyRecord {
        MonthlyRecord {
            date: MeterDate::new(date.0, date.1, date.2),
            energy,
            ..MonthlyRecord::default()
        }
    }

    #[test]
    fn hours_are_counted_within_a_date_and_anchored_at_the_month_end() {
        // 2 lines of 1 March (hours 01, 00), then the last 3 hours of 28 February.
        let lines = vec![
            line((2026, 3, 1), 4),
            line((2026, 3, 1), 3),
            line((2026, 2, 28), 2),
            line((2026, 2, 28), 1),
            line((2026, 2, 28), 5),
        ];
        let logger = Logger::new(DataSet::HourlyLog, lines).unwrap();
        let months = MonthlyData {
            customer_no: 1,
            records: vec![month((2026, 2, 28), 1000)],
        };
        let scaling = Mc66cModel::default().scaling();
        let rows = counter_rows(Mc66cLog::Hour, &logger, &months, &scaling, 0).unwrap();
        let got: Vec<(String, i64)> = rows
            .iter()
            .map(|r| {
                (
                    r.meter_time.format("%d %H:%M").to_string(),
                    i64::try_from(r.values[0].value.mantissa()).unwrap(),
                )
            })
            .collect();
        let want: Vec<(String, i64)> = [
            ("28 22:00", 1000 - 2 - 1),
            ("28 23:00", 1000 - 2),
            ("01 00:00", 1000),
            ("01 01:00", 1003),
            ("01 02:00", 1007),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), *b))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_day_with_hours_missing_ends_what_is_used() {
        // 1 March 00:00–01:00, then 28 February with only 2 lines (not a whole day), then 27.
        let lines = vec![
            line((2026, 3, 1), 4),
            line((2026, 2, 28), 2),
            line((2026, 2, 28), 1),
            line((2026, 2, 27), 7),
        ];
        let logger = Logger::new(DataSet::HourlyLog, lines).unwrap();
        let months = MonthlyData {
            customer_no: 1,
            records: vec![month((2026, 2, 28), 1000)],
        };
        let scaling = Mc66cModel::default().scaling();
        let rows = counter_rows(Mc66cLog::Hour, &logger, &months, &scaling, 0).unwrap();
        let got: Vec<String> = rows
            .iter()
            .map(|r| r.meter_time.format("%d %H:%M").to_string())
            .collect();
        assert_eq!(got, ["01 01:00"]);
        assert_eq!(
            i64::try_from(rows[0].values[0].value.mantissa()).unwrap(),
            1004
        );
    }

    #[test]
    fn lines_that_do_not_add_up_are_refused() {
        let scaling = Mc66cModel::default().scaling();
        let lines = vec![line((2026, 3, 1), 4), line((2026, 2, 28), 2)];
        let logger = Logger::new(DataSet::HourlyLog, lines).unwrap();
        // No month end in the span.
        let none = MonthlyData {
            customer_no: 1,
            records: vec![month((2026, 1, 31), 900)],
        };
        assert!(matches!(
            counter_rows(Mc66cLog::Hour, &logger, &none, &scaling, 0),
            Err(Mc66cLogError::NoAnchor { .. })
        ));
        // Dates out of order.
        let lines = vec![line((2026, 2, 28), 4), line((2026, 3, 1), 2)];
        let logger = Logger::new(DataSet::HourlyLog, lines).unwrap();
        assert!(matches!(
            counter_rows(Mc66cLog::Hour, &logger, &none, &scaling, 0),
            Err(Mc66cLogError::Inconsistent { .. })
        ));
        // Two month ends that the growths between them contradict (a meter that places its
        // hours otherwise than this reader assumes).
        let mut days = Vec::new();
        for d in (1..=31).rev() {
            days.push(
                LoggerRecord::from_raw(
                    DataSet::DailyLog,
                    &[
                        MeterDate::to_raw(MeterDate::new(2026, 1, d)),
                        10,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                    ],
                )
                .unwrap(),
            );
        }
        days.insert(
            0,
            LoggerRecord::from_raw(
                DataSet::DailyLog,
                &[
                    MeterDate::to_raw(MeterDate::new(2026, 2, 1)),
                    10,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                ],
            )
            .unwrap(),
        );
        days.push(
            LoggerRecord::from_raw(
                DataSet::DailyLog,
                &[
                    MeterDate::to_raw(MeterDate::new(2025, 12, 31)),
                    10,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                ],
            )
            .unwrap(),
        );
        let logger = Logger::new(DataSet::DailyLog, days).unwrap();
        let good = MonthlyData {
            customer_no: 1,
            records: vec![month((2026, 1, 31), 1310), month((2025, 12, 31), 1000)],
        };
        assert!(counter_rows(Mc66cLog::Day, &logger, &good, &scaling, 0).is_ok());
        let bad = MonthlyData {
            customer_no: 1,
            records: vec![month((2026, 1, 31), 1310), month((2025, 12, 31), 1001)],
        };
        assert!(matches!(
            counter_rows(Mc66cLog::Day, &logger, &bad, &scaling, 0),
            Err(Mc66cLogError::Inconsistent { .. })
        ));
    }
}
