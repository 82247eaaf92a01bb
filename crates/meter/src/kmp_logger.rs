//! Reads a KMP meter's own loggers (CID 0xB8) in one IR session: configuration, then pages of
//! records from the newest toward the past until enough are read or the log ends.
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
        let period_s = match query.logger {
            LoggerType::Hourly => 3600,
            LoggerType::Daily => 86_400,
            LoggerType::Monthly => 31 * 86_400,
            LoggerType::Yearly => 366 * 86_400,
            _ => 60,
        };
        let mut target = match query.selection {
            Selection::Last(n) => n.min(u32::from(config.depth).max(1)),
            Selection::Since(t) => {
                let span = (Utc::now() - t).num_seconds().max(0) / period_s + 2;
                u32::try_from(span)
                    .unwrap_or(u32::MAX)
                    .min(u32::from(config.depth).max(1))
            }
        };
        let mut rows_newest_first: Vec<LogRow> = Vec::new();
        let mut next: Option<u32> = None;
        let mut newest_id = 0;
        let mut reached_oldest = false;
        let mut pages = 0u32;
        loop {
            let remaining =
                target.saturating_sub(u32::try_from(rows_newest_first.len()).unwrap_or(0));
            if remaining == 0 {
                break;
            }
            let count = u16::try_from(remaining).unwrap_or(u16::MAX);
            let request = match next {
                None => LoggerRequest::ByOffset {
                    logger: query.logger,
                    offset: 0,
                    count,
                    registers: ids.clone(),
                },
                Some(log_id) => LoggerRequest::ById {
                    logger: query.logger,
                    log_id,
                    count,
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
                if rows_newest_first.last().is_some_and(|r| r.id <= record.id) {
                    continue;
                }
                let row = log_row(record, query.zone_standard_offset_min);
                if let (Selection::Since(since), Some(utc)) = (query.selection, row.utc) {
                    if utc < since {
                        stop = true;
                        break;
                    }
                }
                rows_newest_first.push(row);
            }
            if let Selection::Since(_) = query.selection {
                // The estimate was short (drift, DST): keep going until a record is older.
                if !stop && rows_newest_first.len() as u32 >= target {
                    target = target.saturating_add(24);
                }
            }
            progress(rows_newest_first.len(), target as usize);
            reached_oldest |= page.info.oldest_included();
            let last = rows_newest_first.last().map_or(0, |r| r.id);
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
