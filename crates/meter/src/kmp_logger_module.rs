//! Reads the log of a MULTICAL 601 logger module or an 801 (commands A0–A3 at 0x7F/0xBF) in one
//! IR session: the newest records page by page with A3, or every record since a time with A0
//! and then A2 by record id. Never sends 0x9C or anything else that changes the meter.
//!
//! Every A0–A3 record carries its 16-bit id, so each page starts right after the last good
//! record (A3: one offset further; A2: the next id) and a page the link damaged is asked again
//! from there; a record seen twice (one was written meanwhile) is kept once.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use kamstrup_decimal::Decimal;
use kamstrup_kmp::{
    CivilDateTime, LogRecord, LogReply, LogRequest, LogSelector, LogTime, MeterDateTime,
    RegisterId, Request, Response, DESTINATION_HEAT_METER, MAX_REGISTERS_PER_REQUEST,
};
use serde::Serialize;
use tracing::{debug, warn};

use crate::kmp_driver::{register_value, KmpMeter};
use crate::kmp_logger::{LogRow, Selection};
use crate::MeterError;

/// The date (yymmdd) and time (hhmmss) registers: an A0–A3 record carries no time of its own
/// and its values are 4 bytes (so register 348 cannot be logged); these two give its time.
pub const MODULE_TIME_REGISTERS: [u16; 2] = [1003, 1002];

/// Registers read by default besides the time: E1, V1 (the documented example), T1, T2,
/// power, flow. Those the log does not hold are left out by the module.
pub const DEFAULT_MODULE_REGISTERS: [u16; 6] = [60, 68, 86, 87, 80, 74];

/// MaxL of every request: the module's documented limit of 128 application bytes.
const MAX_LEN: u8 = 0x80;

/// A log read through A0–A3.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleLogQuery {
    /// Log id (1: the interval log).
    pub log: u8,
    /// Registers besides 1003/1002 (empty: [`DEFAULT_MODULE_REGISTERS`]); at most 6.
    pub registers: Vec<u16>,
    /// Which records.
    pub selection: Selection,
    /// The meter's zone as its standard offset from UTC in minutes (CET: 60).
    pub zone_standard_offset_min: i32,
}

/// What an A0–A3 read returns.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModuleLogRead {
    /// The module's address (0x7F or 0xBF).
    pub address: u8,
    /// Log id.
    pub log: u8,
    /// Id of the newest record in the log when the read started.
    pub newest_id: u16,
    /// Records, oldest first.
    pub rows: Vec<LogRow>,
    /// Whether the read reached the oldest record of the log.
    pub reached_oldest: bool,
    /// Asked registers the log does not hold (the module left them out).
    pub not_logged: Vec<u16>,
    /// Meter clock minus host clock (UTC by the zone), seconds, read at 0x3F.
    pub clock_offset_s: Option<i64>,
    /// Requests sent (retries and the clock read included).
    pub requests: u64,
    /// Pages of records.
    pub pages: u32,
}

/// A logger module as `kamstrup scan` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModuleProbe {
    /// Address that answered.
    pub address: u8,
    /// Log id probed.
    pub log: u8,
    /// Oldest and newest record ids (`None`: the log is empty).
    pub ids: Option<(u16, u16)>,
    /// The registers of the probe's list that the log holds.
    pub registers: Vec<u16>,
}

/// Why a module log could not be read (besides link and protocol failures).
#[derive(Debug, thiserror::Error)]
pub enum ModuleLogError {
    /// The meter answers at 0x3F, nothing answers the log command at the module's address.
    #[error(
        "no logger module answers at address 0x{address:02X} on {port}: the meter at 0x3F \
         answers, the log command (A0–A3) gets no reply (a MULTICAL 601 without a 67-0B/67-00-22 \
         module; a MULTICAL 303/403/603 keeps its loggers at 0x3F: leave --address out)"
    )]
    NoModule {
        /// Port description.
        port: String,
        /// The address asked.
        address: u8,
    },
    /// The log holds no record yet.
    #[error("log {log} of the logger module at 0x{address:02X} on {port} is empty (no record written yet)")]
    Empty {
        /// Port description.
        port: String,
        /// The module's address.
        address: u8,
        /// Log id.
        log: u8,
    },
    /// The module holds nothing in the asked range (a time after the newest record, a log id
    /// it does not keep).
    #[error("log {log} of the logger module at 0x{address:02X} on {port} has no record {what}")]
    OutOfRange {
        /// Port description.
        port: String,
        /// The module's address.
        address: u8,
        /// Log id.
        log: u8,
        /// What was asked.
        what: String,
    },
    /// More registers than one A0–A3 request can name.
    #[error("an A0–A3 request names at most 8 registers, 2 of them the date and time (1003, 1002); {0} asked")]
    TooManyRegisters(usize),
    /// The meter failed otherwise.
    #[error(transparent)]
    Meter(#[from] MeterError),
}

impl ModuleLogError {
    /// Stable machine name for JSON output.
    pub fn kind(&self) -> &'static str {
        match self {
            ModuleLogError::NoModule { .. } => "no-logger-module",
            ModuleLogError::Empty { .. } => "empty-logger",
            ModuleLogError::OutOfRange { .. } => "out-of-range",
            ModuleLogError::TooManyRegisters(_) => "usage",
            ModuleLogError::Meter(e) => e.kind(),
        }
    }
}

/// The meter-clock (standard time) search key for a UTC moment.
fn log_time(utc: DateTime<Utc>, zone_standard_offset_min: i32) -> Option<LogTime> {
    let standard = utc.timestamp() + i64::from(zone_standard_offset_min) * 60;
    CivilDateTime::from_unix_seconds(standard).map(LogTime::new)
}

/// An integer register value (dates yymmdd, times hhmmss).
fn whole(value: &Decimal) -> Option<u32> {
    u32::try_from(value.rescale(0)?.mantissa()).ok()
}

/// The time a module record carries in its 1003 and 1002 values, as standard time (an
/// assumption: which time the module logs is not public; the 3-series clocks run in standard).
fn record_time(record: &LogRecord) -> Option<MeterDateTime> {
    let date = whole(&record.get(1003)?.value)?;
    let time = whole(&record.get(1002)?.value)?;
    let part = |v: u32, div: u32| u8::try_from(v / div % 100).ok();
    let standard = CivilDateTime::new(
        2000 + u16::from(part(date, 10_000)?),
        part(date, 100)?,
        part(date, 1)?,
        part(time, 10_000)?,
        part(time, 100)?,
        part(time, 1)?,
    )
    .ok()?;
    Some(MeterDateTime {
        dst_offset_min: 0,
        standard,
    })
}

fn module_row(record: &LogRecord, zone_standard_offset_min: i32) -> LogRow {
    let meter_time = record_time(record);
    let utc = meter_time
        .and_then(|t| DateTime::from_timestamp(t.utc_unix_seconds(zone_standard_offset_min), 0));
    LogRow {
        id: record.id,
        meter_time,
        utc,
        values: record
            .values
            .iter()
            .filter(|v| !MODULE_TIME_REGISTERS.contains(&v.id.0))
            .map(register_value)
            .collect(),
    }
}

impl KmpMeter {
    /// Runs `f` with the destination set to `address` (and back afterwards).
    fn with_destination(&mut self, address: u8) -> crate::KmpOptions {
        let saved = self.options();
        self.set_options(crate::KmpOptions {
            destination: address,
            ..saved
        });
        saved
    }

    /// Whether a KMP meter answers at 0x3F (GetSerialNo, no retry).
    async fn meter_answers(&mut self) -> bool {
        let saved = self.with_destination(DESTINATION_HEAT_METER);
        self.set_options(crate::KmpOptions {
            retries: 0,
            ..self.options()
        });
        let ok = self.get_serial().await.is_ok();
        self.set_options(saved);
        ok
    }

    /// The meter's clock at 0x3F (1003 + 1002) against ours; `None` if it did not answer.
    async fn meter_clock_offset(&mut self, zone_standard_offset_min: i32) -> Option<i64> {
        let saved = self.with_destination(DESTINATION_HEAT_METER);
        self.set_options(crate::KmpOptions {
            retries: 0,
            ..self.options()
        });
        let got = self.get_registers(&MODULE_TIME_REGISTERS).await;
        self.set_options(saved);
        let records = match got {
            Ok(r) => r,
            Err(e) => {
                debug!(error = %e, "meter clock not readable at 0x3F");
                return None;
            }
        };
        let record = LogRecord {
            id: 0,
            values: records,
        };
        let clock = record_time(&record)?;
        Some(clock.utc_unix_seconds(zone_standard_offset_min) - Utc::now().timestamp())
    }

    /// One A0–A3 request to the current destination.
    async fn log_page(&mut self, request: LogRequest) -> Result<LogReply, MeterError> {
        match self.transact(&Request::Log(request)).await? {
            Response::Log(r) => Ok(r),
            other => Err(self.unexpected_reply(&other)),
        }
    }

    /// Probes a logger module at `address` with one A2 request for the oldest record of
    /// `log` (no retry): `None` when nothing answers.
    pub async fn probe_logger_module(
        &mut self,
        address: u8,
        log: u8,
    ) -> Result<Option<ModuleProbe>, MeterError> {
        let saved = self.with_destination(address);
        self.set_options(crate::KmpOptions {
            retries: 0,
            ..self.options()
        });
        let mut registers: Vec<RegisterId> = MODULE_TIME_REGISTERS
            .iter()
            .chain(&DEFAULT_MODULE_REGISTERS)
            .map(|&id| RegisterId(id))
            .collect();
        registers.truncate(MAX_REGISTERS_PER_REQUEST);
        let reply = self
            .log_page(LogRequest {
                log,
                registers,
                records: 1,
                max_len: MAX_LEN,
                selector: LogSelector::IdPresent { record_id: 0 },
            })
            .await;
        self.set_options(saved);
        match reply {
            Ok(r) => Ok(Some(ModuleProbe {
                address,
                log,
                ids: match (r.records.first(), r.newest_record_id) {
                    (Some(first), Some(newest)) => {
                        u16::try_from(first.id).ok().map(|oldest| (oldest, newest))
                    }
                    _ => None,
                },
                registers: r.columns.iter().map(|c| c.id.0).collect(),
            })),
            Err(MeterError::NoReply { .. } | MeterError::EchoOnly { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads records of a module's log at `address` in this IR session, oldest first in the
    /// result. `progress(done, total)` after every page (`total` is an estimate for
    /// [`Selection::Since`]).
    pub async fn read_module_log(
        &mut self,
        address: u8,
        query: &ModuleLogQuery,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<ModuleLogRead, ModuleLogError> {
        let requests_before = self.stats().requests;
        let saved = self.with_destination(address);
        // A module page is short (≤ 128 bytes): the usual timeouts; one more retry than a read.
        self.set_options(crate::KmpOptions {
            retries: saved.retries.max(2),
            ..self.options()
        });
        let result = self
            .read_module_log_inner(address, query, &mut progress)
            .await;
        self.set_options(saved);
        let mut read = result?;
        read.requests = self.stats().requests - requests_before;
        Ok(read)
    }

    async fn read_module_log_inner(
        &mut self,
        address: u8,
        query: &ModuleLogQuery,
        progress: &mut impl FnMut(usize, usize),
    ) -> Result<ModuleLogRead, ModuleLogError> {
        let port = self.port().to_string();
        let zone = query.zone_standard_offset_min;
        let mut wanted: Vec<u16> = MODULE_TIME_REGISTERS.to_vec();
        let asked: &[u16] = if query.registers.is_empty() {
            &DEFAULT_MODULE_REGISTERS
        } else {
            &query.registers
        };
        for &id in asked {
            if !wanted.contains(&id) {
                wanted.push(id);
            }
        }
        if wanted.len() > MAX_REGISTERS_PER_REQUEST {
            return Err(ModuleLogError::TooManyRegisters(wanted.len() - 2));
        }
        let registers: Vec<RegisterId> = wanted.iter().map(|&id| RegisterId(id)).collect();
        // The meter's clock, once per session (the module's records are in its time).
        let clock_offset_s = self.meter_clock_offset(zone).await;
        let out_of_range = |what: String| ModuleLogError::OutOfRange {
            port: port.clone(),
            address,
            log: query.log,
            what,
        };
        let now_key = Utc::now()
            + chrono::Duration::seconds(clock_offset_s.unwrap_or(0))
            + chrono::Duration::days(1);
        let (mut selector, target) = match query.selection {
            // A3 from a time after the newest record: the newest, then older by offset.
            Selection::Last(n) => (
                LogSelector::TimePast {
                    time: log_time(now_key, zone)
                        .ok_or_else(|| out_of_range("at this time".into()))?,
                    offset: 0,
                },
                usize::try_from(n).unwrap_or(usize::MAX),
            ),
            // A0 from the time on, then A2 by record id (`Between`: the same, the records after
            // its end dropped below; these modules are read by time, not by offset).
            Selection::Since(t) | Selection::Between { since: t, .. } => (
                LogSelector::TimePresent {
                    time: log_time(t, zone)
                        .ok_or_else(|| out_of_range(format!("at or after {t}")))?,
                },
                usize::try_from((Utc::now() - t).num_hours().max(0) + 1).unwrap_or(usize::MAX),
            ),
        };
        let mut rows: BTreeMap<u32, LogRow> = BTreeMap::new();
        let mut newest_id = 0u16;
        let mut reached_oldest = false;
        let mut not_logged: Vec<u16> = Vec::new();
        let mut pages = 0u32;
        loop {
            let remaining = match query.selection {
                Selection::Last(_) => target.saturating_sub(rows.len()),
                Selection::Since(_) | Selection::Between { .. } => usize::from(u8::MAX),
            };
            if remaining == 0 {
                break;
            }
            let request = LogRequest {
                log: query.log,
                registers: registers.clone(),
                records: u8::try_from(remaining).unwrap_or(u8::MAX),
                max_len: MAX_LEN,
                selector,
            };
            let page = match self.log_page(request).await {
                Ok(p) => p,
                Err(e @ (MeterError::NoReply { .. } | MeterError::EchoOnly { .. }))
                    if pages == 0 =>
                {
                    // Silence from the module: is there a meter at all?
                    return Err(if self.meter_answers().await {
                        ModuleLogError::NoModule { port, address }
                    } else {
                        e.into()
                    });
                }
                Err(e) => return Err(e.into()),
            };
            pages += 1;
            if pages == 1 {
                if page.info.is_empty() {
                    return Err(ModuleLogError::Empty {
                        port,
                        address,
                        log: query.log,
                    });
                }
                newest_id = page.newest_record_id.unwrap_or_default();
                not_logged = wanted
                    .iter()
                    .copied()
                    .filter(|id| page.columns.iter().all(|c| c.id.0 != *id))
                    .collect();
                if !page.records.is_empty() {
                    for id in &not_logged {
                        warn!(port = %port, register = id, log = query.log, "register not in this log; left out");
                    }
                }
            }
            if page.records.is_empty() {
                if pages == 1 && page.info.out_of_range() {
                    return Err(out_of_range(match query.selection {
                        Selection::Since(t) | Selection::Between { since: t, .. } => {
                            format!("at or after {t} (by the meter's clock)")
                        }
                        Selection::Last(_) => "in range".to_string(),
                    }));
                }
                reached_oldest |= matches!(query.selection, Selection::Last(_))
                    && (page.info.end_of_log() || page.info.out_of_range());
                break;
            }
            let mut new = 0usize;
            let mut last_id = 0u32;
            for record in &page.records {
                last_id = record.id;
                if let std::collections::btree_map::Entry::Vacant(slot) = rows.entry(record.id) {
                    slot.insert(module_row(record, zone));
                    new += 1;
                }
            }
            progress(rows.len(), target.max(rows.len()));
            let sent = u16::try_from(page.records.len()).unwrap_or(u16::MAX);
            match (&mut selector, query.selection) {
                (LogSelector::TimePast { offset, .. }, _) => {
                    *offset = offset.saturating_add(sent);
                    if page.info.end_of_log() {
                        reached_oldest = true;
                        break;
                    }
                }
                (_, _) => {
                    if page.info.end_of_log() || u16::try_from(last_id).ok() == Some(newest_id) {
                        break;
                    }
                    let Some(next) = u16::try_from(last_id).ok().and_then(|id| id.checked_add(1))
                    else {
                        break;
                    };
                    selector = LogSelector::IdPresent { record_id: next };
                }
            }
            if new == 0 {
                // Nothing new in a whole page: the module is not moving forward.
                warn!(port = %port, "a page brought no new record; stopping");
                break;
            }
        }
        let mut rows: Vec<LogRow> = rows.into_values().collect();
        if let Some(until) = query.selection.until() {
            rows.retain(|r| r.utc.is_none_or(|t| t <= until));
        }
        if let Selection::Last(n) = query.selection {
            let keep = usize::try_from(n).unwrap_or(usize::MAX);
            if rows.len() > keep {
                rows.drain(..rows.len() - keep);
            }
        }
        Ok(ModuleLogRead {
            address,
            log: query.log,
            newest_id,
            rows,
            reached_oldest,
            not_logged,
            clock_offset_s,
            requests: 0,
            pages,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::kmp_loggers::ZONE_STANDARD_OFFSET_MIN;
    use crate::sim::logger_module::INTERVAL_LOG_SPEC;
    use crate::sim::{sim_link, FaultPlan, KmpModel, SimModel, SimOptions};
    use crate::KmpOptions;

    fn meter(model: KmpModel, options: SimOptions) -> KmpMeter {
        let link = sim_link(SimModel::Kmp(model), options);
        KmpMeter::new(link, format!("sim:{}", model.name()), KmpOptions::default())
    }

    fn query(selection: Selection) -> ModuleLogQuery {
        ModuleLogQuery {
            log: 1,
            registers: Vec::new(),
            selection,
            zone_standard_offset_min: ZONE_STANDARD_OFFSET_MIN,
        }
    }

    /// Every row equals the simulated module's record of that id, computed in this process.
    fn check_rows(read: &ModuleLogRead) {
        let m = KmpModel::Multical601;
        let regs: Vec<u16> = MODULE_TIME_REGISTERS
            .iter()
            .chain(&DEFAULT_MODULE_REGISTERS)
            .copied()
            .collect();
        for pair in read.rows.windows(2) {
            assert_eq!(pair[1].id, pair[0].id + 1, "consecutive ids");
            let step = pair[1].utc.unwrap() - pair[0].utc.unwrap();
            assert_eq!(step.num_seconds(), 3600);
        }
        for row in &read.rows {
            let record = m.logged_record(&INTERVAL_LOG_SPEC, row.id, &regs).unwrap();
            assert_eq!(row, &module_row(&record, ZONE_STANDARD_OFFSET_MIN));
            // The record was written 4 s after the hour by the meter's (drifting) clock.
            let written = m.record_written_at(&INTERVAL_LOG_SPEC, row.id).unwrap();
            let meter = row.meter_time.unwrap();
            assert_eq!(meter.standard, m.meter_clock(written).standard);
            assert_eq!((meter.standard.minute, meter.standard.second), (0, 4));
        }
    }

    #[tokio::test]
    async fn last_day_in_pages_from_the_newest() {
        let mut m = meter(KmpModel::Multical601, SimOptions::default());
        let mut calls = Vec::new();
        let read = m
            .read_module_log(0x7F, &query(Selection::Last(24)), |d, t| calls.push((d, t)))
            .await
            .unwrap();
        assert_eq!(read.rows.len(), 24);
        // 8 registers: 3 + 2m + 40 + 32m + 5 ≤ 128 → 2 records a page.
        assert!(read.pages >= 12, "{read:?}");
        assert_eq!(calls.last(), Some(&(24, 24)));
        let newest = KmpModel::Multical601.newest_record_id(&INTERVAL_LOG_SPEC, Utc::now());
        assert!(u32::from(read.newest_id) + 1 >= newest);
        assert!(read.not_logged.is_empty());
        assert!(read.clock_offset_s.is_some());
        check_rows(&read);
    }

    #[tokio::test]
    async fn since_runs_ascending_to_the_newest() {
        let mut m = meter(KmpModel::Multical601, SimOptions::default());
        let since = Utc::now() - chrono::Duration::hours(7);
        let read = m
            .read_module_log(0x7F, &query(Selection::Since(since)), |_, _| {})
            .await
            .unwrap();
        assert!((6..=8).contains(&read.rows.len()), "{}", read.rows.len());
        assert!(read
            .rows
            .iter()
            .all(|r| r.utc.unwrap() >= since - chrono::Duration::minutes(10)));
        assert_eq!(read.rows.last().unwrap().id, u32::from(read.newest_id));
        check_rows(&read);
        // A time after the newest record: out of range.
        let future = Utc::now() + chrono::Duration::days(3);
        let err = m
            .read_module_log(0x7F, &query(Selection::Since(future)), |_, _| {})
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "out-of-range", "{err}");
    }

    #[tokio::test]
    async fn damaged_pages_are_asked_again_from_the_last_good_record() {
        let options = SimOptions {
            faults: FaultPlan::parse("truncate@3,corrupt@5,drop@8", 1).unwrap(),
            ..SimOptions::default()
        };
        let mut m = meter(KmpModel::Multical601, options);
        let read = m
            .read_module_log(0x7F, &query(Selection::Last(12)), |_, _| {})
            .await
            .unwrap();
        assert_eq!(read.rows.len(), 12);
        assert!(m.stats().retries >= 3, "{:?}", m.stats());
        check_rows(&read);
    }

    #[tokio::test]
    async fn a_meter_without_module_is_named() {
        for model in [KmpModel::Multical603, KmpModel::Multical402] {
            let mut m = meter(model, SimOptions::default());
            let mut fast = m.options();
            fast.timeouts.first_byte = std::time::Duration::from_millis(300);
            m.set_options(fast);
            let err = m
                .read_module_log(0x7F, &query(Selection::Last(3)), |_, _| {})
                .await
                .unwrap_err();
            assert_eq!(err.kind(), "no-logger-module", "{err}");
            assert!(m.probe_logger_module(0x7F, 1).await.unwrap().is_none());
        }
        let mut m = meter(KmpModel::Multical601, SimOptions::default());
        let probe = m.probe_logger_module(0x7F, 1).await.unwrap().unwrap();
        let (oldest, newest) = probe.ids.unwrap();
        assert_eq!(newest - oldest + 1, INTERVAL_LOG_SPEC.depth);
        assert_eq!(probe.registers.len(), 8);
        // The 801's logger answers the same way at 0x7F.
        let mut m801 = meter(KmpModel::Multical801, SimOptions::default());
        let read = m801
            .read_module_log(0x7F, &query(Selection::Last(3)), |_, _| {})
            .await
            .unwrap();
        assert_eq!(read.rows.len(), 3);
        assert_eq!(read.rows[0].values[0].unit, "MWh");
        // Too many registers for one request.
        let mut q = query(Selection::Last(1));
        q.registers = vec![60, 68, 86, 87, 80, 74, 1004];
        let err = m.read_module_log(0x7F, &q, |_, _| {}).await.unwrap_err();
        assert_eq!(err.kind(), "usage");
    }
}
