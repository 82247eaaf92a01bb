//! Reads a KMP meter's own loggers (CID 0xB8) in one IR session: configuration, then pages of
//! records from the newest (or, for a bounded range, from near its end) toward the past until
//! enough are read or the log ends.
//! A page the meter cut short (its reply buffer) or the link truncated continues from the last
//! good record id, so a retry never re-reads or skips a record.

use std::time::Duration;

use chrono::{DateTime, Utc};
use kamstrup_kmp::{
    LogRecord, LoggerConfig, LoggerReply, LoggerRequest, LoggerType, MeterDateTime, RegisterId,
    Request, Response,
};
use serde::Serialize;
use tracing::{debug, warn};

use crate::kmp_driver::{register_value, KmpMeter};
use crate::reading::RegisterValue;
use crate::MeterError;

/// The date-time register every logger request includes (the records carry no other time).
pub const DATE_TIME_REGISTER: u16 = 348;

/// The registers read by default, when the logger holds them (the `read` standard set).
pub const STANDARD_LOG_REGISTERS: [u16; 8] = [60, 68, 86, 87, 80, 74, 1004, 99];

/// Which records to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    /// The newest `n` records.
    Last(u32),
    /// Every record stamped at or after this moment (UTC, by the meter's clock and zone).
    Since(DateTime<Utc>),
    /// Every record stamped in `[since, until]` (both by the meter's clock and zone). Paging
    /// starts near `until` (by offset from the newest record, estimated from the logger's period
    /// and the meter's clock), so the records newer than `until` are not sent at all.
    Between {
        /// The oldest stamp wanted.
        since: DateTime<Utc>,
        /// The newest stamp wanted (a record stamped exactly then is kept).
        until: DateTime<Utc>,
    },
}

impl Selection {
    /// The oldest stamp wanted, if bounded.
    pub fn since(self) -> Option<DateTime<Utc>> {
        match self {
            Selection::Last(_) => None,
            Selection::Since(t) | Selection::Between { since: t, .. } => Some(t),
        }
    }

    /// The newest stamp wanted, if bounded.
    pub fn until(self) -> Option<DateTime<Utc>> {
        match self {
            Selection::Between { until, .. } => Some(until),
            _ => None,
        }
    }
}

/// Records a [`Selection::Between`] read starts newer than the estimate of the newest record at
/// or before `until`: the estimate is off by one when the meter writes its record (seconds after
/// the boundary) and by the clock reading's whole seconds; a second one for safety. The records
/// newer than `until` that this costs are dropped.
const UNTIL_MARGIN: u32 = 2;

/// The first-page offset (records before the newest) for a read whose newest wanted record is
/// stamped at or before `until`, when the meter's clock shows `meter_now` (UTC by its zone)
/// and the logger writes one record every `period_s` seconds (the longest period, for months
/// and years: the estimate must never be too deep). `None`: start at the newest.
fn offset_for_until(meter_now: DateTime<Utc>, until: DateTime<Utc>, period_s: i64) -> Option<u16> {
    // Whole periods between `until` and the meter's now: at least that many records are newer
    // than `until` (each boundary in between wrote one), less the margin.
    let newer = (meter_now - until).num_seconds().max(0) / period_s.max(1);
    let offset = u32::try_from(newer).ok()?.checked_sub(UNTIL_MARGIN)?;
    (offset > 0).then(|| u16::try_from(offset).unwrap_or(u16::MAX))
}

/// A logger read request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogQuery {
    /// Which logger.
    pub logger: LoggerType,
    /// Registers wanted (348 is always added first); empty: the standard set the logger holds.
    pub registers: Vec<u16>,
    /// Which records.
    pub selection: Selection,
    /// The meter's zone as its standard offset from UTC in minutes (CET: 60).
    pub zone_standard_offset_min: i32,
}

/// One record as read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogRow {
    /// Record id.
    pub id: u32,
    /// The meter's own timestamp (register 348), if it was readable.
    pub meter_time: Option<MeterDateTime>,
    /// The same moment in UTC (by the given zone; the meter's drift is not corrected).
    pub utc: Option<DateTime<Utc>>,
    /// The values, 348 excluded, in the order asked.
    pub values: Vec<RegisterValue>,
}

/// What a logger read returns.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LogRead {
    /// The logger.
    pub logger: LoggerType,
    /// Its configuration (depth, registers).
    pub config: LoggerConfig,
    /// Id of the newest record in the logger at the time of the read.
    pub newest_id: u32,
    /// Records, oldest first.
    pub rows: Vec<LogRow>,
    /// Whether the read reached the oldest record the logger holds.
    pub reached_oldest: bool,
    /// Meter clock minus host clock at the start of the read (UTC by the zone), seconds.
    pub clock_offset_s: Option<i64>,
    /// Requests sent (retries included).
    pub requests: u64,
    /// Pages of records (the first configuration request not counted).
    pub pages: u32,
}

/// Why a logger could not be read (besides link and protocol failures).
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The meter answers KMP but not the logger command.
    #[error(
        "the meter on {port} answers KMP but not the logger command (0xB8): it keeps no logger \
         readable this way (a MULTICAL 402/602 only answers GetRegister; a MULTICAL 601 logger \
         module or an 801 answers the A0–A3 commands at address 0x7F instead)"
    )]
    NoLoggers {
        /// Port description.
        port: String,
    },
    /// The meter keeps this logger but it holds no record yet.
    #[error("the {logger} logger of the meter on {port} is empty (no record written yet)")]
    Empty {
        /// Port description.
        port: String,
        /// Logger name.
        logger: &'static str,
    },
    /// None of the asked registers is in this logger.
    #[error("the {logger} logger holds none of the asked registers; it holds {holds}")]
    NoSuchRegisters {
        /// Logger name.
        logger: &'static str,
        /// Its register ids.
        holds: String,
    },
    /// The meter failed otherwise.
    #[error(transparent)]
    Meter(#[from] MeterError),
}

impl LogError {
    /// Stable machine name for JSON output.
    pub fn kind(&self) -> &'static str {
        match self {
            LogError::NoLoggers { .. } => "no-loggers",
            LogError::Empty { .. } => "empty-logger",
            LogError::NoSuchRegisters { .. } => "not-logged",
            LogError::Meter(e) => e.kind(),
        }
    }
}

/// Timeouts for logger replies: a long page at 1200 Bd takes seconds (≈ 9.2 ms a byte), so
/// the overall limit covers the longest frame the decoder accepts.
fn logger_timeouts(meter: &KmpMeter) -> kamstrup_optical::Timeouts {
    let mut t = meter.options().timeouts;
    let byte = Duration::from_micros(9_200);
    let longest = byte * u32::try_from(kamstrup_kmp::MAX_FRAME_LEN).unwrap_or(u32::MAX);
    t.overall = t.overall.max(t.first_byte + longest);
    t
}

impl KmpMeter {
    /// B8 sub 05 for one logger: `Ok(None)` when the meter stays silent to it but answers
    /// GetSerialNo (no loggers), an error when it answers nothing at all.
    pub async fn logger_config(
        &mut self,
        logger: LoggerType,
    ) -> Result<Option<LoggerConfig>, MeterError> {
        let request = Request::Logger(LoggerRequest::Config { logger });
        match self.transact(&request).await {
            Ok(Response::Logger(LoggerReply::Config(c))) if c.logger == logger => Ok(Some(c)),
            Ok(other) => Err(self.unexpected_reply(&other)),
            Err(MeterError::NoReply { .. } | MeterError::EchoOnly { .. }) => {
                // Silence to B8 alone means "no such logger"; silence to everything, no meter.
                self.get_serial().await?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Which of the hour/day/month/year loggers the meter keeps (B8 sub 05 for each), with
    /// their configuration and newest record id. A meter silent to the first probe but
    /// answering GetSerialNo has none (one short probe, no retry).
    pub async fn probe_loggers(&mut self) -> Result<Vec<(LoggerConfig, u32)>, MeterError> {
        let saved = self.options();
        let mut quick = saved;
        quick.retries = 0;
        self.set_options(quick);
        let first = self.logger_config(LoggerType::Hourly).await;
        self.set_options(saved);
        let mut found: Vec<LoggerConfig> = Vec::new();
        let Some(hourly) = first? else {
            return Ok(Vec::new());
        };
        found.push(hourly);
        for kind in [LoggerType::Daily, LoggerType::Monthly, LoggerType::Yearly] {
            if let Some(c) = self.logger_config(kind).await? {
                found.push(c);
            }
        }
        let mut out = Vec::with_capacity(found.len());
        for config in found {
            // The newest id: one record from the newest, the date-time register only.
            let request = Request::Logger(LoggerRequest::ByOffset {
                logger: config.logger,
                offset: 0,
                count: 1,
                registers: vec![RegisterId(DATE_TIME_REGISTER)],
            });
            let newest = match self.transact(&request).await? {
                Response::Logger(LoggerReply::Records(r)) if !r.info.is_empty() => r.newest_id,
                Response::Logger(LoggerReply::Records(_)) => 0,
                other => return Err(self.unexpected_reply(&other)),
            };
            out.push((config, newest));
        }
        Ok(out)
    }

    /// The oldest record a logger holds, its stamp only, in one short request (B8 sub 07 at
    /// offset 0xFFFF: "past the start" is answered with the oldest record, as the public
    /// dumper uses it on real meters), and the newest record's id. `Ok(None)`: the logger is
    /// empty. Tells how far back a logger reaches without reading it (no configuration, no
    /// clock: the stamp is the meter's, UTC by `zone_standard_offset_min`, uncorrected).
    pub async fn oldest_log_record(
        &mut self,
        logger: LoggerType,
        zone_standard_offset_min: i32,
    ) -> Result<Option<(LogRow, u32)>, LogError> {
        let request = Request::Logger(LoggerRequest::ByOffset {
            logger,
            offset: u16::MAX,
            count: 1,
            registers: vec![RegisterId(DATE_TIME_REGISTER)],
        });
        let saved = self.options();
        let mut options = saved;
        options.timeouts = logger_timeouts(self);
        self.set_options(options);
        let result = self.transact(&request).await;
        self.set_options(saved);
        match result {
            Ok(Response::Logger(LoggerReply::Records(r))) if r.logger == logger => Ok(r
                .valid_records()
                .last()
                .map(|record| (log_row(record, zone_standard_offset_min), r.newest_id))),
            Ok(other) => Err(self.unexpected_reply(&other).into()),
            Err(MeterError::NoReply { .. } | MeterError::EchoOnly { .. }) => {
                // Silence to B8 alone means "no loggers"; silence to everything, no meter.
                self.get_serial().await?;
                Err(LogError::NoLoggers {
                    port: self.port().to_string(),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Reads records of one logger in this IR session: the configuration, the meter's clock,
    /// then pages from the newest record toward the past. `progress(done, total)` is called
    /// after every page (`total` is an estimate for [`Selection::Since`]).
    pub async fn read_log(
        &mut self,
        query: &LogQuery,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<LogRead, LogError> {
        let requests_before = self.stats().requests;
        let saved = self.options();
        let mut options = saved;
        options.timeouts = logger_timeouts(self);
        // A logger page is long: allow one more retry than a register read.
        options.retries = saved.retries.max(2);
        self.set_options(options);
        let result = self.read_log_inner(query, &mut progress).await;
        self.set_options(saved);
        let mut read = result?;
        read.requests = self.stats().requests - requests_before;
        Ok(read)
    }

    async fn read_log_inner(
        &mut self,
        query: &LogQuery,
        progress: &mut impl FnMut(usize, usize),
    ) -> Result<LogRead, LogError> {
        let port = self.port().to_string();
        let logger_name = query.logger.name();
        let config = self
            .logger_config(query.logger)
            .await?
            .ok_or_else(|| LogError::NoLoggers { port: port.clone() })?;
        let logged = |id: u16| config.registers.contains(&RegisterId(id));
        let mut wanted: Vec<u16> = vec![DATE_TIME_REGISTER];
        let asked: Vec<u16> = if query.registers.is_empty() {
            STANDARD_LOG_REGISTERS
                .into_iter()
                .filter(|&id| logged(id))
                .collect()
        } else {
            query.registers.clone()
        };
        for id in asked {
            if !logged(id) {
                warn!(port = %port, register = id, logger = logger_name, "register not in this logger; left out");
            } else if !wanted.contains(&id) {
                wanted.push(id);
            }
        }
        if wanted.len() == 1 && !query.registers.is_empty() {
            return Err(LogError::NoSuchRegisters {
                logger: logger_name,
                holds: config
                    .registers
                    .iter()
                    .map(|r| r.0.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        // The meter's clock against ours, once per session (a real clock drifts).
        let clock_offset_s = match self.get_registers(&[DATE_TIME_REGISTER]).await {
            Ok(records) => records
                .iter()
                .find_map(|r| MeterDateTime::from_record(r).ok())
                .map(|t| {
                    t.utc_unix_seconds(query.zone_standard_offset_min) - Utc::now().timestamp()
                }),
            Err(e) => {
                debug!(error = %e, "meter clock not readable");
                None
            }
        };
        let ids: Vec<RegisterId> = wanted.iter().map(|&id| RegisterId(id)).collect();
        // Seconds per record: the longest a period can be (the offset estimate for `until`
        // must not land too deep) and the shortest (the record count for a span must not fall
        // short). Minute loggers: configurable interval, so never estimated by offset.
        let (period_s, shortest_s) = match query.logger {
            LoggerType::Hourly => (3600, 3600),
            LoggerType::Daily => (86_400, 86_400),
            LoggerType::Monthly => (31 * 86_400, 28 * 86_400),
            LoggerType::Yearly => (366 * 86_400, 365 * 86_400),
            _ => (60, 60),
        };
        let depth = u32::from(config.depth).max(1);
        let span_records = |from: DateTime<Utc>, to: DateTime<Utc>| {
            let span = (to - from).num_seconds().max(0) / shortest_s + 2;
            u32::try_from(span).unwrap_or(u32::MAX).min(depth)
        };
        // The meter's "now" in its stamps' frame: the host's now moved by the offset measured
        // above (the span estimate of `Since` uses the host's now too: same clock).
        let meter_now = clock_offset_s.map(|off| Utc::now() + chrono::Duration::seconds(off));
        let mut target = match query.selection {
            Selection::Last(n) => n.min(depth),
            Selection::Since(t) => {
                let span = (Utc::now() - t).num_seconds().max(0) / period_s + 2;
                u32::try_from(span).unwrap_or(u32::MAX).min(depth)
            }
            Selection::Between { since, until } => span_records(since, until),
        };
        // Where the first page starts: the newest record, or for `Between` (when the meter's
        // clock was read and the period is regular) a few records newer than the estimated
        // newest record at or before `until`.
        let regular = matches!(
            query.logger,
            LoggerType::Hourly | LoggerType::Daily | LoggerType::Monthly | LoggerType::Yearly
        );
        let mut first_offset = match (query.selection, meter_now) {
            (Selection::Between { until, .. }, Some(now)) if regular => {
                offset_for_until(now, until, period_s).unwrap_or(0)
            }
            _ => 0,
        };
        let until = query.selection.until();
        let mut rows_newest_first: Vec<LogRow> = Vec::new();
        let mut next: Option<u32> = None;
        // The oldest record id looked at (kept or dropped as newer than `until`): the next page
        // starts below it.
        let mut oldest_seen: Option<u32> = None;
        let mut newest_id = 0;
        let mut reached_oldest = false;
        let mut pages = 0u32;
        loop {
            let remaining =
                target.saturating_sub(u32::try_from(rows_newest_first.len()).unwrap_or(0));
            if remaining == 0 {
                break;
            }
            let request = match next {
                None => LoggerRequest::ByOffset {
                    logger: query.logger,
                    offset: first_offset,
                    // The records newer than `until` the offset margin brings are asked too.
                    count: u16::try_from(
                        remaining + if first_offset > 0 { UNTIL_MARGIN } else { 0 },
                    )
                    .unwrap_or(u16::MAX),
                    registers: ids.clone(),
                },
                Some(log_id) => LoggerRequest::ById {
                    logger: query.logger,
                    log_id,
                    count: u16::try_from(remaining).unwrap_or(u16::MAX),
                    registers: ids.clone(),
                },
            };
            let page = match self.transact(&Request::Logger(request)).await? {
                Response::Logger(LoggerReply::Records(r)) if r.logger == query.logger => r,
                other => return Err(self.unexpected_reply(&other).into()),
            };
            pages += 1;
            if next.is_none() {
                newest_id = page.newest_id;
                if page.info.is_empty() {
                    return Err(LogError::Empty {
                        port,
                        logger: logger_name,
                    });
                }
            }
            let records = page.valid_records();
            if next.is_none() && first_offset > 0 {
                // The estimate was too deep (a clock far off, a clock set, a meter younger than
                // the offset) if the page's newest record is already at or before `until` while
                // newer ones exist: one of those may be wanted too. Start again at the newest.
                let overshot = records.first().is_some_and(|r| {
                    r.id < page.newest_id
                        && log_row(r, query.zone_standard_offset_min)
                            .utc
                            .zip(until)
                            .is_some_and(|(t, u)| t <= u)
                });
                if overshot {
                    debug!(port = %port, offset = first_offset, "the first page started at or before the bound; reading from the newest record");
                    first_offset = 0;
                    continue;
                }
            }
            if records.is_empty() {
                // Nothing more (out of range, or the meter gave up on this window).
                reached_oldest |= page.info.out_of_range();
                break;
            }
            if let Some(expected) = next {
                if page.first_id != expected {
                    warn!(port = %port, expected, got = page.first_id, "the meter started the page at another record id");
                }
            }
            let mut stop = false;
            for record in records {
                // Never twice, never newer than what we already have (a page from the last good id).
                if oldest_seen.is_some_and(|id| id <= record.id) {
                    continue;
                }
                oldest_seen = Some(record.id);
                let row = log_row(record, query.zone_standard_offset_min);
                if let (Some(until), Some(utc)) = (until, row.utc) {
                    if utc > until {
                        // Newer than the bound (the offset's margin): not wanted.
                        continue;
                    }
                }
                if let (Some(since), Some(utc)) = (query.selection.since(), row.utc) {
                    if utc < since {
                        stop = true;
                        break;
                    }
                }
                rows_newest_first.push(row);
            }
            if query.selection.since().is_some() {
                // The estimate was short (drift, DST): keep going until a record is older.
                if !stop && rows_newest_first.len() as u32 >= target {
                    target = target.saturating_add(24);
                }
            }
            progress(rows_newest_first.len(), target as usize);
            reached_oldest |= page.info.oldest_included();
            let last = oldest_seen.unwrap_or(0);
            if stop || reached_oldest || last <= 1 {
                break;
            }
            next = Some(last - 1);
        }
        rows_newest_first.reverse();
        Ok(LogRead {
            logger: query.logger,
            config,
            newest_id,
            rows: rows_newest_first,
            reached_oldest,
            clock_offset_s,
            requests: 0,
            pages,
        })
    }
}

/// Names a record's values and reads its timestamp.
fn log_row(record: &LogRecord, zone_standard_offset_min: i32) -> LogRow {
    let meter_time = record
        .get(DATE_TIME_REGISTER)
        .and_then(|r| MeterDateTime::from_record(r).ok());
    let utc = meter_time
        .and_then(|t| DateTime::from_timestamp(t.utc_unix_seconds(zone_standard_offset_min), 0));
    LogRow {
        id: record.id,
        meter_time,
        utc,
        values: record
            .values
            .iter()
            .filter(|v| v.id.0 != DATE_TIME_REGISTER)
            .map(register_value)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::kmp_loggers::ZONE_STANDARD_OFFSET_MIN;
    use crate::sim::kmp_model::{respond, KmpModel, MeterAction};
    use crate::KmpOptions;
    use kamstrup_kmp::decoder::{Decoder, Event};
    use kamstrup_kmp::Direction;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn the_first_offset_is_a_margin_short_of_the_whole_periods_to_until() {
        let now = t("2026-05-10T12:30:00Z");
        // 10 days (hours 240, 240.5) before now: 240 whole periods, less the margin.
        assert_eq!(
            offset_for_until(now, now - chrono::Duration::hours(240), 3600),
            Some(238)
        );
        assert_eq!(
            offset_for_until(now, t("2026-04-30T12:00:00Z"), 3600),
            Some(238)
        );
        assert_eq!(
            offset_for_until(now, t("2026-04-30T12:00:00Z"), 86_400),
            Some(8)
        );
        // Within the margin, or after now: from the newest.
        assert_eq!(
            offset_for_until(now, now - chrono::Duration::hours(2), 3600),
            None
        );
        assert_eq!(
            offset_for_until(now, now + chrono::Duration::hours(5), 3600),
            None
        );
        // Far back: capped at the request field's width.
        assert_eq!(
            offset_for_until(now, now - chrono::Duration::days(20_000), 3600),
            Some(u16::MAX)
        );
    }

    /// A simulated 403 whose clock register shows `ahead` more than its loggers hold (a clock
    /// set forward after the records were written): the offset estimate lands too deep.
    async fn serve_with_clock_ahead(
        mut link: kamstrup_optical::MemoryLink,
        ahead: chrono::Duration,
    ) {
        let mut decoder = Decoder::new(Direction::ToMeter);
        let mut buf = [0u8; 512];
        loop {
            let n = match link.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            for &byte in &buf[..n] {
                let Some(Ok(Event::Frame(frame))) = decoder.feed(byte) else {
                    continue;
                };
                let clock_read = matches!(
                    Request::from_frame(&frame),
                    Ok(Request::GetRegister(ids)) if ids == [RegisterId(DATE_TIME_REGISTER)]
                );
                let at = if clock_read {
                    Utc::now() + ahead
                } else {
                    Utc::now()
                };
                if let MeterAction::Reply(reply) = respond(KmpModel::Multical403, &frame, at) {
                    if link.write_all(&reply).await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// The first page lands at or before `until` with newer records in the logger: the read
    /// starts again from the newest record, and no record in the range is missed.
    #[tokio::test]
    async fn an_estimate_too_deep_starts_again_from_the_newest() {
        let (host, meter_end) = kamstrup_optical::memory_pair(crate::LineSettings::KMP);
        tokio::spawn(serve_with_clock_ahead(meter_end, chrono::Duration::days(3)));
        let mut m = KmpMeter::new(Box::new(host), "sim", KmpOptions::default());
        let now = Utc::now();
        let (since, until) = (
            now - chrono::Duration::days(8),
            now - chrono::Duration::days(2),
        );
        let query = |selection| LogQuery {
            logger: LoggerType::Daily,
            registers: vec![60],
            selection,
            zone_standard_offset_min: ZONE_STANDARD_OFFSET_MIN,
        };
        let bounded = m
            .read_log(&query(Selection::Between { since, until }), |_, _| {})
            .await
            .unwrap();
        let all = m
            .read_log(&query(Selection::Since(since)), |_, _| {})
            .await
            .unwrap();
        let want: Vec<_> = all
            .rows
            .iter()
            .filter(|r| r.utc.is_some_and(|t| t <= until))
            .cloned()
            .collect();
        assert!(want.len() >= 5, "{}", want.len());
        assert_eq!(bounded.rows, want);
        // config, clock, the page that overshot, then from the newest.
        assert!(bounded.pages >= 2, "{}", bounded.pages);
    }
}
