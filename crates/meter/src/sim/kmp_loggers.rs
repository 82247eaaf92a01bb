//! The simulated KMP meter's clock and its own history: hour/day/month/year loggers that agree
//! with the circuit's physics, answered through CID 0xB8 (MULTICAL 303/403/603) byte-exactly.
//!
//! Everything here is a pure function of absolute UTC time from a fixed commissioning date, so
//! every process simulating a model (the daemon's `sim:` port, `kamstrup log`, a test) agrees on
//! every register and every logged record, and a test can ask what the meter logged at 03:00
//! two days ago ([`KmpModel::logged_record`]) and compare.
//!
//! Facts vs assumptions (see the comments at each constant): the record layout, the
//! "record stamped at the start of the new period, in standard time" rule, register 348's
//! format and the yearly depth of 20 are documented or seen in real frames; the hourly depth,
//! the reply-size limit, the write delay and the behaviour for unknown ids are assumptions.

use chrono::{DateTime, Utc};
use kamstrup_decimal::Decimal;
use kamstrup_kmp::logger::logger_reply_len;
use kamstrup_kmp::{
    CivilDateTime, LogRecord, LoggerConfig, LoggerInfo, LoggerRecords, LoggerReply, LoggerRequest,
    LoggerType, MeterDateTime, RegisterId, RegisterRecord, Unit,
};

use super::kmp_model::KmpModel;
use super::physics::Snapshot;

/// Every simulated KMP meter was commissioned on 2025-06-01 00:00:00 UTC: its counters are
/// [`KmpModel::installation`]'s start values then, and its loggers start empty then.
pub const COMMISSIONED_UNIX: i64 = 1_748_736_000;

/// The simulated meters' zone: CET (UTC+1 standard time) with EU daylight saving time. Real
/// meters are configured with a GMT offset by country code; the bridge must be told the zone.
pub const ZONE_STANDARD_OFFSET_MIN: i32 = 60;

/// The meter writes a period's record this long after the boundary (the real daily log shows
/// 00:00:04 in every record; the synthetic hourly frame 10:00:05 — 4 s is the real one).
pub(crate) const WRITE_DELAY_S: i64 = 4;

/// Largest B8 reply the simulated meter sends, application bytes from the CID on, before
/// stuffing. The real limit is undocumented (kmp-loggers.md §3.5: the meter silently returns
/// fewer records, keeping those nearest the requested start); 256 is an assumption that makes a
/// day of hourly records take several pages, as readers must expect.
pub const LOGGER_REPLY_LIMIT: usize = 256;

/// The commissioning moment.
pub fn commissioned() -> DateTime<Utc> {
    DateTime::from_timestamp(COMMISSIONED_UNIX, 0).unwrap_or_default()
}

/// The length of one logging period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    /// Every hour.
    Hour,
    /// Every day at 00:00 standard time.
    Day,
    /// On the 1st of every month (target date).
    Month,
    /// On 1 January (target date 01.01, as in the real yearly configuration).
    Year,
}

impl Period {
    /// Human name: `hour`, `day`, `month`, `year`.
    pub fn name(self) -> &'static str {
        match self {
            Period::Hour => "hour",
            Period::Day => "day",
            Period::Month => "month",
            Period::Year => "year",
        }
    }
}

/// One logger a simulated meter keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoggerSpec {
    /// B8 logger type.
    pub kind: LoggerType,
    /// Its period.
    pub period: Period,
    /// Records kept. Yearly 20: real configuration frame. Daily 460 and monthly 36: inferred
    /// from a real daily reply and the MULTICAL 21 TD. Hourly 1392 (58 days): assumption.
    pub depth: u16,
    /// The registers of every record (a subset of what the real meter logs: the registers the
    /// public dumper read from a MULTICAL 603, limited to what the simulator models; the
    /// month/year min/max extremes are left out).
    pub registers: &'static [u16],
}

const HOURLY: &[u16] = &[348, 1003, 1002, 60, 68, 86, 87, 74, 80, 381, 382];
const DAILY: &[u16] = &[
    348, 1003, 1002, 60, 68, 86, 87, 74, 80, 379, 380, 1004, 369, 99, 338,
];
const MONTHLY: &[u16] = &[
    348, 1003, 1002, 60, 63, 68, 97, 110, 1004, 175, 369, 99, 338,
];
const YEARLY: &[u16] = &[
    348, 1003, 1002, 60, 63, 68, 97, 110, 1004, 175, 369, 99, 338,
];

/// The loggers of the 3-series models (303/403/603), the same for the three: their TDs describe
/// the same logger system (kmp-loggers.md §1, §3.6).
const THREE_SERIES: [LoggerSpec; 4] = [
    LoggerSpec {
        kind: LoggerType::Yearly,
        period: Period::Year,
        depth: 20,
        registers: YEARLY,
    },
    LoggerSpec {
        kind: LoggerType::Monthly,
        period: Period::Month,
        depth: 36,
        registers: MONTHLY,
    },
    LoggerSpec {
        kind: LoggerType::Daily,
        period: Period::Day,
        depth: 460,
        registers: DAILY,
    },
    LoggerSpec {
        kind: LoggerType::Hourly,
        period: Period::Hour,
        depth: 1392,
        registers: HOURLY,
    },
];

/// Registers that exist only in the loggers and in GetRegister of the 3-series (T1/T2 averages,
/// info bits, data quality, the date-time register).
const LOGGER_ONLY: &[u16] = &[348, 369, 338, 379, 380, 381, 382];

/// Start of the EU daylight-saving period in `year`: last Sunday of March, 01:00 UTC.
fn last_sunday_0100_utc(year: u16, month: u8) -> i64 {
    let last_day = match month {
        3 | 10 => 31,
        _ => 30,
    };
    let day = CivilDateTime::new(year, month, last_day, 1, 0, 0)
        .map(|c| c.unix_seconds())
        .unwrap_or_default();
    // 1970-01-01 was a Thursday: weekday 0 = Monday … 6 = Sunday is (days + 3) mod 7.
    let weekday = (day.div_euclid(86_400) + 3).rem_euclid(7);
    day - ((weekday + 1) % 7) * 86_400
}

/// The DST offset in force at `utc` (EU rules: CEST from the last Sunday of March 01:00 UTC to
/// the last Sunday of October 01:00 UTC).
pub fn dst_offset_min(utc: i64) -> u8 {
    let Some(civil) = CivilDateTime::from_unix_seconds(utc) else {
        return 0;
    };
    let start = last_sunday_0100_utc(civil.year, 3);
    let end = last_sunday_0100_utc(civil.year, 10);
    if (start..end).contains(&utc) {
        60
    } else {
        0
    }
}

impl KmpModel {
    /// Whether the model keeps loggers that answer B8 (the 3-series). The 402/602 are thought
    /// not to answer any logger command and stay silent.
    pub fn loggers(&self) -> &'static [LoggerSpec] {
        match self {
            KmpModel::Multical403 | KmpModel::Multical603 | KmpModel::Multical303 => &THREE_SERIES,
            KmpModel::Multical402
            | KmpModel::Multical602
            | KmpModel::Multical601
            | KmpModel::Multical801 => &[],
        }
    }

    /// The logger of type `kind`, if the model keeps it.
    pub fn logger(&self, kind: LoggerType) -> Option<&'static LoggerSpec> {
        self.loggers().iter().find(|l| l.kind == kind)
    }

    /// How fast the meter's clock runs off, in parts per million (a quartz clock never set
    /// after commissioning; ±20 ppm is ±10 min a year). Positive: the meter is ahead.
    pub fn clock_drift_ppm(&self) -> i64 {
        match self {
            KmpModel::Multical402 => 5,
            KmpModel::Multical403 => 12,
            KmpModel::Multical602 => -4,
            KmpModel::Multical603 => -9,
            KmpModel::Multical303 => 17,
            KmpModel::Multical601 => -6,
            KmpModel::Multical801 => 3,
        }
    }

    /// The meter's clock at `utc`, in standard time as Unix-style seconds (UTC + the zone's
    /// standard offset + drift since commissioning).
    pub(crate) fn meter_standard_seconds(&self, utc: i64) -> i64 {
        let drift = (utc - COMMISSIONED_UNIX).saturating_mul(self.clock_drift_ppm());
        utc + i64::from(ZONE_STANDARD_OFFSET_MIN) * 60 + drift.div_euclid(1_000_000)
    }

    /// The first UTC second at which the meter's clock shows at least `meter` (standard time).
    fn utc_when_meter_shows(&self, meter: i64) -> i64 {
        let ppm = self.clock_drift_ppm();
        let base = meter - i64::from(ZONE_STANDARD_OFFSET_MIN) * 60;
        let mut u = COMMISSIONED_UNIX
            + ((base - COMMISSIONED_UNIX) as i128 * 1_000_000 / (1_000_000 + i128::from(ppm)))
                as i64;
        // The clock is monotonic: step to the exact first second.
        while self.meter_standard_seconds(u) >= meter {
            u -= 1;
        }
        while self.meter_standard_seconds(u) < meter {
            u += 1;
        }
        u
    }

    /// What the meter's clock (register 348) shows at `utc`: standard time plus the DST offset.
    pub fn meter_clock(&self, utc: DateTime<Utc>) -> MeterDateTime {
        let at = utc.timestamp();
        let standard = CivilDateTime::from_unix_seconds(self.meter_standard_seconds(at)).unwrap_or(
            CivilDateTime {
                year: 2000,
                month: 1,
                day: 1,
                hour: 0,
                minute: 0,
                second: 0,
            },
        );
        MeterDateTime {
            dst_offset_min: dst_offset_min(at),
            standard,
        }
    }

    /// Seconds of simulated time since commissioning at `utc` (negative before it; the circuit
    /// stands still then).
    fn elapsed_at(&self, utc: DateTime<Utc>) -> f64 {
        (utc.timestamp_millis() - COMMISSIONED_UNIX * 1000) as f64 / 1000.0
    }

    /// The circuit at absolute time `utc`.
    pub fn snapshot_at(&self, utc: DateTime<Utc>) -> Snapshot {
        self.installation().at(self.elapsed_at(utc))
    }

    /// The record the meter sends for register `id` at `utc` (GetRegister), or `None` if it
    /// does not know it. Dates and times (1002, 1003, 348) come from the meter's own clock.
    pub fn record_at(&self, id: u16, utc: DateTime<Utc>) -> Option<RegisterRecord> {
        let clock = self.meter_clock(utc);
        if !self.loggers().is_empty() && LOGGER_ONLY.contains(&id) {
            let hour_ago = utc - chrono::Duration::hours(1);
            let day_ago = utc - chrono::Duration::days(1);
            return self.logger_only_record(id, &clock, (hour_ago, utc), (day_ago, utc));
        }
        self.record(id, &self.snapshot_at(utc), naive(&clock.standard)?)
    }

    /// Registers only the 3-series has: 348, averages (over the given UTC spans), info bits
    /// and data quality (both 0: a healthy meter).
    fn logger_only_record(
        &self,
        id: u16,
        clock: &MeterDateTime,
        hour: (DateTime<Utc>, DateTime<Utc>),
        day: (DateTime<Utc>, DateTime<Utc>),
    ) -> Option<RegisterRecord> {
        let celsius = |(from, to): (DateTime<Utc>, DateTime<Utc>), second: bool| {
            let (t1, t2) = self
                .installation()
                .mean_temperatures(self.elapsed_at(from), self.elapsed_at(to));
            let t = if second { t2 } else { t1 };
            Decimal::new(i128::from((t * 100.0).round() as i64), -2).ok()
        };
        let (unit, value) = match id {
            348 => return clock.to_record().ok(),
            379 => (0x25, celsius(day, false)?),
            380 => (0x25, celsius(day, true)?),
            381 => (0x25, celsius(hour, false)?),
            382 => (0x25, celsius(hour, true)?),
            369 | 338 => (0x00, Decimal::from_int(0)),
            _ => return None,
        };
        Some(RegisterRecord {
            id: RegisterId(id),
            unit: Unit(unit),
            value,
        })
    }

    /// The meter-clock second (standard time, Unix-style) of boundary `n` of `period`:
    /// boundary 0 is the last one at or before commissioning, record id `n` is written at
    /// boundary `n` (ids start at 1).
    pub(crate) fn boundary(&self, period: Period, n: i64) -> Option<i64> {
        let start = self.meter_standard_seconds(COMMISSIONED_UNIX);
        match period {
            Period::Hour => Some(start.div_euclid(3600) * 3600 + n * 3600),
            Period::Day => Some(start.div_euclid(86_400) * 86_400 + n * 86_400),
            Period::Month | Period::Year => {
                let c = CivilDateTime::from_unix_seconds(start)?;
                let months = if period == Period::Month { n } else { n * 12 };
                let first = if period == Period::Month {
                    i64::from(c.year) * 12 + i64::from(c.month) - 1
                } else {
                    i64::from(c.year) * 12
                };
                let index = first + months;
                let year = u16::try_from(index.div_euclid(12)).ok()?;
                let month = u8::try_from(index.rem_euclid(12) + 1).ok()?;
                Some(
                    CivilDateTime::new(year, month, 1, 0, 0, 0)
                        .ok()?
                        .unix_seconds(),
                )
            }
        }
    }

    /// The id of the newest record `logger` holds at `utc` (0: none yet).
    pub fn newest_record_id(&self, logger: &LoggerSpec, utc: DateTime<Utc>) -> u32 {
        let now = self.meter_standard_seconds(utc.timestamp()) - WRITE_DELAY_S;
        let approx = match logger.period {
            Period::Hour => (now - self.boundary(Period::Hour, 0).unwrap_or(now)) / 3600,
            Period::Day => (now - self.boundary(Period::Day, 0).unwrap_or(now)) / 86_400,
            Period::Month => (now - self.boundary(Period::Month, 0).unwrap_or(now)) / (28 * 86_400),
            Period::Year => (now - self.boundary(Period::Year, 0).unwrap_or(now)) / (365 * 86_400),
        };
        // Exact for hours and days; months and years step down from an overestimate.
        let mut n = approx.max(0);
        while n > 0 && self.boundary(logger.period, n).is_none_or(|b| b > now) {
            n -= 1;
        }
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// The oldest id still kept (records beyond the depth are overwritten).
    pub fn oldest_record_id(&self, logger: &LoggerSpec, utc: DateTime<Utc>) -> u32 {
        let newest = self.newest_record_id(logger, utc);
        if newest == 0 {
            return 0;
        }
        newest.saturating_sub(u32::from(logger.depth) - 1).max(1)
    }

    /// When record `id` is written (UTC), if it exists in principle (id ≥ 1).
    pub fn record_written_at(&self, logger: &LoggerSpec, id: u32) -> Option<DateTime<Utc>> {
        let boundary = self.boundary(logger.period, i64::from(id.checked_sub(1)? + 1))?;
        DateTime::from_timestamp(self.utc_when_meter_shows(boundary + WRITE_DELAY_S), 0)
    }

    /// The id of the record written at the boundary stamped `stamp` (meter standard time):
    /// for "what did the meter log at 03:00 two days ago".
    pub fn record_id_at(&self, logger: &LoggerSpec, stamp: CivilDateTime) -> Option<u32> {
        let target = stamp.unix_seconds();
        // Any moment after the stamp bounds the search (a year plus the clock's drift).
        let later = DateTime::from_timestamp(self.utc_when_meter_shows(target) + 400 * 86_400, 0)?;
        let (mut lo, mut hi) = (1i64, i64::from(self.newest_record_id(logger, later)));
        while lo <= hi {
            let mid = lo + (hi - lo) / 2;
            let b = self.boundary(logger.period, mid)?;
            match b.cmp(&target) {
                std::cmp::Ordering::Equal => return u32::try_from(mid).ok(),
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid - 1,
            }
        }
        None
    }

    /// Record `id` of `logger` with the given registers (those the logger does not hold are
    /// left out), exactly as the meter logs it: 348 and 1002/1003 from its clock when the record
    /// was written, counters at that moment, averages over the period that just ended.
    pub fn logged_record(
        &self,
        logger: &LoggerSpec,
        id: u32,
        registers: &[u16],
    ) -> Option<LogRecord> {
        let written = self.record_written_at(logger, id)?;
        let previous = match id {
            1 => {
                let b = self.boundary(logger.period, 0)?;
                DateTime::from_timestamp(self.utc_when_meter_shows(b + WRITE_DELAY_S), 0)?
            }
            _ => self.record_written_at(logger, id - 1)?,
        };
        let clock = self.meter_clock(written);
        let snap = self.snapshot_at(written);
        let now = naive(&clock.standard)?;
        let mut values = Vec::with_capacity(registers.len());
        for &reg in registers {
            if !logger.registers.contains(&reg) {
                continue;
            }
            let span = (previous, written);
            let value = if LOGGER_ONLY.contains(&reg) {
                self.logger_only_record(reg, &clock, span, span)?
            } else {
                self.record(reg, &snap, now)?
            };
            values.push(value);
        }
        Some(LogRecord { id, values })
    }

    /// The answer to a B8 request at `utc`, or `None` (silence) for a logger the model does not
    /// keep.
    pub fn answer_logger(
        &self,
        request: &LoggerRequest,
        utc: DateTime<Utc>,
    ) -> Option<LoggerReply> {
        let spec = self.logger(request.logger())?;
        let (by_id, registers, count) = match request {
            LoggerRequest::Config { logger } => {
                return Some(LoggerReply::Config(config_of(*logger, spec)));
            }
            LoggerRequest::ById {
                count, registers, ..
            } => (true, registers, *count),
            LoggerRequest::ByOffset {
                count, registers, ..
            } => (false, registers, *count),
        };
        let mut info = 0u16;
        let mut wanted: Vec<u16> = Vec::with_capacity(registers.len());
        for RegisterId(id) in registers {
            // Unlogged ids are left out and flagged (assumption: the real behaviour is unknown).
            if spec.registers.contains(id) {
                if !wanted.contains(id) {
                    wanted.push(*id);
                }
            } else {
                info |= LoggerInfo::UNSUPPORTED_REGISTER;
            }
        }
        let newest = self.newest_record_id(spec, utc);
        let oldest = self.oldest_record_id(spec, utc);
        let build = |records: Vec<LogRecord>, info: u16| {
            LoggerRecords::build(
                by_id,
                spec.kind,
                newest,
                LoggerInfo(info),
                records,
                value_len,
            )
            .ok()
            .map(LoggerReply::Records)
        };
        if newest == 0 {
            // As the real meter: count 1, ids 0, info "empty", and a zero placeholder record.
            let placeholder = wanted
                .iter()
                .filter_map(|&id| self.record_at(id, utc))
                .map(|r| RegisterRecord {
                    value: Decimal::new(0, r.value.exponent()).unwrap_or(Decimal::ZERO),
                    ..r
                })
                .collect();
            let records = vec![LogRecord {
                id: 0,
                values: placeholder,
            }];
            return build(records, info | LoggerInfo::EMPTY);
        }
        let start = match request {
            LoggerRequest::ById { log_id, .. } => {
                if *log_id > newest {
                    info |= LoggerInfo::OUT_OF_RANGE;
                    newest
                } else if *log_id < oldest {
                    return build(Vec::new(), info | LoggerInfo::OUT_OF_RANGE);
                } else {
                    *log_id
                }
            }
            LoggerRequest::ByOffset { offset, .. } => {
                newest.saturating_sub(u32::from(*offset)).max(oldest)
            }
            LoggerRequest::Config { .. } => return None,
        };
        if wanted.is_empty() || count == 0 {
            return build(Vec::new(), info);
        }
        let lens: Vec<u8> = wanted.iter().map(|&id| value_len(RegisterId(id))).collect();
        let mut fit = 1usize;
        while fit < usize::from(count) && logger_reply_len(&lens, fit + 1) <= LOGGER_REPLY_LIMIT {
            fit += 1;
        }
        let available = usize::try_from(start - oldest + 1).unwrap_or(usize::MAX);
        let take = fit.min(usize::from(count)).min(available);
        let mut records = Vec::with_capacity(take);
        for k in 0..take {
            let id = start - u32::try_from(k).ok()?;
            records.push(self.logged_record(spec, id, &wanted)?);
        }
        if start == newest {
            info |= LoggerInfo::NEWEST_INCLUDED;
        }
        if records.last().is_some_and(|r| r.id == oldest) {
            info |= LoggerInfo::OLDEST_INCLUDED;
        }
        build(records, info)
    }
}

/// Value bytes per register in the logs: 7 for the date-time register, else 4.
fn value_len(id: RegisterId) -> u8 {
    if id.0 == 348 {
        7
    } else {
        4
    }
}

/// The B8 sub-05 answer. The yearly one copies the real frame (target date 01.01, date 2 off);
/// monthly target day 1; the third and fourth fields are 01 00 as in the real frame.
fn config_of(kind: LoggerType, spec: &LoggerSpec) -> LoggerConfig {
    let date1 = match spec.period {
        Period::Year => [0x01, 0x01],
        Period::Month => [0x00, 0x01],
        Period::Day | Period::Hour => [0x00, 0x00],
    };
    LoggerConfig {
        logger: kind,
        date1: (0x01, date1),
        date2: (0x01, [0x00, 0x00]),
        max_interval_records: (0x01, 0x00),
        interval: (0x01, 0x00),
        depth: spec.depth,
        registers: spec.registers.iter().map(|&id| RegisterId(id)).collect(),
    }
}

fn naive(c: &CivilDateTime) -> Option<chrono::NaiveDateTime> {
    chrono::NaiveDate::from_ymd_opt(i32::from(c.year), u32::from(c.month), u32::from(c.day))?
        .and_hms_opt(u32::from(c.hour), u32::from(c.minute), u32::from(c.second))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kamstrup_kmp::{Frame, Request, Response, DESTINATION_HEAT_METER};

    use crate::sim::kmp_model::{respond, MeterAction};

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn ask(model: KmpModel, request: LoggerRequest, when: DateTime<Utc>) -> Option<LoggerReply> {
        let frame = Request::Logger(request)
            .to_frame(DESTINATION_HEAT_METER)
            .unwrap();
        match respond(model, &frame, when) {
            MeterAction::Reply(bytes) => {
                match Response::from_frame(&Frame::parse(&bytes).unwrap()).unwrap() {
                    Response::Logger(r) => Some(r),
                    other => panic!("{other:?}"),
                }
            }
            MeterAction::Silent(_) => None,
        }
    }

    fn records(reply: Option<LoggerReply>) -> LoggerRecords {
        match reply {
            Some(LoggerReply::Records(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn dst_rules() {
        // 2026: CEST from 29 March 01:00 UTC to 25 October 01:00 UTC.
        assert_eq!(dst_offset_min(at("2026-03-29T00:59:59Z").timestamp()), 0);
        assert_eq!(dst_offset_min(at("2026-03-29T01:00:00Z").timestamp()), 60);
        assert_eq!(dst_offset_min(at("2026-10-25T00:59:59Z").timestamp()), 60);
        assert_eq!(dst_offset_min(at("2026-10-25T01:00:00Z").timestamp()), 0);
    }

    #[test]
    fn clock_drifts_and_inverts() {
        let m = KmpModel::Multical403;
        let t = at("2026-06-01T00:00:00Z");
        let clock = m.meter_clock(t);
        // 365 days × 12 ppm ≈ 378 s ahead of CET standard time.
        assert_eq!(clock.standard.to_string(), "2026-06-01 01:06:18");
        assert_eq!(clock.dst_offset_min, 60);
        let shown = clock.standard.unix_seconds();
        assert_eq!(m.utc_when_meter_shows(shown), t.timestamp());
    }

    #[test]
    fn the_402_and_602_are_silent_to_b8() {
        for model in [KmpModel::Multical402, KmpModel::Multical602] {
            let r = ask(
                model,
                LoggerRequest::Config {
                    logger: LoggerType::Hourly,
                },
                at("2026-06-01T00:00:00Z"),
            );
            assert!(r.is_none());
        }
    }

    #[test]
    fn hourly_records_agree_with_the_live_registers() {
        let m = KmpModel::Multical603;
        let spec = m.logger(LoggerType::Hourly).unwrap();
        let now = at("2026-11-30T10:30:00Z");
        let newest = m.newest_record_id(spec, now);
        // What did the meter log at 03:00 (its standard time) on 28 November?
        let stamp = CivilDateTime::new(2026, 11, 28, 3, 0, 0).unwrap();
        let id = m.record_id_at(spec, stamp).unwrap();
        assert!(id < newest);
        let record = m.logged_record(spec, id, spec.registers).unwrap();
        let clock = MeterDateTime::from_record(record.get(348).unwrap()).unwrap();
        assert_eq!(clock.standard.to_string(), "2026-11-28 03:00:04");
        // Its counters are the live registers at the moment it was written.
        let written = m.record_written_at(spec, id).unwrap();
        assert_eq!(m.meter_clock(written).standard, clock.standard);
        for reg in [60, 68] {
            assert_eq!(record.get(reg), m.record_at(reg, written).as_ref());
        }
        // The hour's energy is the difference of two consecutive records.
        let next = m.logged_record(spec, id + 1, &[60]).unwrap();
        let used = next
            .get(60)
            .unwrap()
            .value
            .checked_sub(&record.get(60).unwrap().value);
        assert!(used.unwrap().to_f64() > 0.0);
    }

    #[test]
    fn paging_and_flags() {
        let m = KmpModel::Multical403;
        let now = at("2026-11-30T10:30:00Z");
        let spec = m.logger(LoggerType::Hourly).unwrap();
        let newest = m.newest_record_id(spec, now);
        let regs: Vec<RegisterId> = [348, 60, 68, 86, 87, 74, 80].map(RegisterId).to_vec();
        let first = records(ask(
            m,
            LoggerRequest::ByOffset {
                logger: LoggerType::Hourly,
                offset: 0,
                count: 24,
                registers: regs.clone(),
            },
            now,
        ));
        assert_eq!(first.first_id, newest);
        assert_eq!(first.newest_id, newest);
        assert!(first.info.newest_included());
        // 16 + 7×5 + 31 k ≤ 256: 6 records fit.
        assert_eq!(first.records.len(), 6);
        let bytes = Request::Logger(LoggerRequest::ById {
            logger: LoggerType::Hourly,
            log_id: newest,
            count: 24,
            registers: regs.clone(),
        });
        let again = records(ask(
            m,
            match bytes {
                Request::Logger(r) => r,
                _ => unreachable!(),
            },
            now,
        ));
        assert_eq!(
            again,
            LoggerRecords {
                by_id: true,
                ..first.clone()
            }
        );
        // The oldest record: offset 0xFFFF.
        let oldest = records(ask(
            m,
            LoggerRequest::ByOffset {
                logger: LoggerType::Hourly,
                offset: 0xFFFF,
                count: 1,
                registers: vec![RegisterId(1002)],
            },
            now,
        ));
        assert_eq!(oldest.first_id, newest - 1391);
        assert!(oldest.info.oldest_included());
        // Beyond the oldest: out of range, no records.
        let gone = records(ask(
            m,
            LoggerRequest::ById {
                logger: LoggerType::Hourly,
                log_id: newest - 2000,
                count: 3,
                registers: regs,
            },
            now,
        ));
        assert!(gone.info.out_of_range());
        assert!(gone.records.is_empty());
    }

    #[test]
    fn yearly_logger_has_one_record_per_first_of_january() {
        let m = KmpModel::Multical303;
        let spec = m.logger(LoggerType::Yearly).unwrap();
        let r = records(ask(
            m,
            LoggerRequest::ById {
                logger: LoggerType::Yearly,
                log_id: 99,
                count: 5,
                registers: vec![RegisterId(1003), RegisterId(60)],
            },
            at("2026-11-30T10:30:00Z"),
        ));
        // Commissioned 2025-06-01: one new year since, 2026-01-01.
        assert_eq!(r.valid_records().len(), 1);
        assert_eq!(r.first_id, 1);
        assert!(r.info.out_of_range() && r.info.oldest_included() && r.info.newest_included());
        let date = r.records[0].get(1003).unwrap().date_time_text();
        assert_eq!(date.as_deref(), Some("2026-01-01"));
        assert_eq!(m.newest_record_id(spec, at("2025-12-31T22:00:00Z")), 0);
        // Empty: the real placeholder reply.
        let empty = records(ask(
            m,
            LoggerRequest::ByOffset {
                logger: LoggerType::Yearly,
                offset: 0xFFFF,
                count: 1,
                registers: vec![RegisterId(1002)],
            },
            at("2025-12-31T22:00:00Z"),
        ));
        assert!(empty.info.is_empty());
        assert_eq!(empty.records.len(), 1);
        assert!(empty.valid_records().is_empty());
    }

    #[test]
    fn config_reply_is_the_real_layout() {
        let Some(LoggerReply::Config(c)) = ask(
            KmpModel::Multical403,
            LoggerRequest::Config {
                logger: LoggerType::Yearly,
            },
            at("2026-11-30T10:30:00Z"),
        ) else {
            panic!()
        };
        assert_eq!(c.depth, 20);
        assert_eq!(c.date1, (1, [1, 1]));
        let wire = Response::Logger(LoggerReply::Config(c))
            .encode(DESTINATION_HEAT_METER)
            .unwrap();
        // Starts like the real frame: 40 3F B8 05 02 01 01 01 01 00 00 01 00 01 00 00 14.
        assert_eq!(
            wire[..17],
            [0x40, 0x3F, 0xB8, 0x05, 0x02, 1, 1, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0x14]
        );
    }
}
