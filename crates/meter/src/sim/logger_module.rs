//! The logger module of a simulated MULTICAL 601 (a 67-0B top module at address 0x7F) and the
//! logger of a simulated MULTICAL 801 (also 0x7F): an hourly interval log, a pure function of UTC
//! like the B8 loggers, answered through A0–A3 byte-exactly.
//!
//! Documented (Kamstrup 5512-447 §6.1, §6.3; kmp-loggers.md §4): a top module answers at 0x7F;
//! the request and reply layouts of A0–A3; 16-bit record ids carried with every record; NoB 4 for
//! every value ("always 4 in MC601/801"); MaxL and the module's 128-byte limit with the size rule
//! APL = 3 + 2m + 5n + 4mn + 5; the four search rules (A3: the newest record at or before Time,
//! minus Off, descending); INFO bits 0 empty, 2 out of range, 3 MaxL reached, 4 end of log;
//! registers not in the log are left out (NRtR < NRgs); log id 1 = the interval log, which in the
//! document's example holds E1 and V1 every hour.
//!
//! Assumptions (there is no public capture of any A0–A3 reply): which registers the interval log
//! holds besides E1 and V1 — the date (1003) and time (1002) registers give each record its time,
//! as the record body carries none; that those show standard time like the 3-series clocks; the
//! depth; that an empty log, an unknown log id and an id or time out of range are answered with
//! the body shortened to INFO; that A1's "last read" mark stays at the oldest record (only 0x9C
//! moves it, which a read-only bridge never sends); silence to every other command at 0x7F, and no
//! base module at 0xBF.

use chrono::{DateTime, Utc};
use kamstrup_kmp::{
    ColumnFormat, Frame, LogInfo, LogReply, LogRequest, LogSelector, LogTime, LoggerType,
    RegisterId, Request, Response,
};

use super::kmp_loggers::{LoggerSpec, Period, WRITE_DELAY_S};
use super::kmp_model::{KmpModel, MeterAction};

/// Address of a top logger module (67-0B) and of the MULTICAL 801's logger.
pub const MODULE_ADDRESS: u8 = 0x7F;

/// Log id of the interval log (the documented example's LID 1).
pub const INTERVAL_LOG: u8 = 1;

/// Largest reply the module sends, application bytes from the CID on (documented: 128).
pub const MODULE_MAX_LEN: usize = 128;

/// Value bytes of every logged register (documented for the MC601/801).
const VALUE_LEN: u8 = 4;

/// The simulated module's interval log: hourly, 1440 records = 60 days (depth: assumption),
/// holding date, time, E1, V1 (documented example) and T1, T2, power, flow (assumption).
pub const INTERVAL_LOG_SPEC: LoggerSpec = LoggerSpec {
    kind: LoggerType::Hourly,
    period: Period::Hour,
    depth: 1440,
    registers: &[1003, 1002, 60, 68, 86, 87, 80, 74],
};

impl KmpModel {
    /// The interval log of the model's logger module at 0x7F, if it has one.
    pub fn logger_module(&self) -> Option<&'static LoggerSpec> {
        match self {
            KmpModel::Multical601 | KmpModel::Multical801 => Some(&INTERVAL_LOG_SPEC),
            _ => None,
        }
    }

    /// The meter-clock second (standard time) a record of the interval log is stamped with.
    fn module_stamp(&self, spec: &LoggerSpec, id: u32) -> Option<i64> {
        Some(self.boundary(spec.period, i64::from(id))? + WRITE_DELAY_S)
    }

    /// The answer of the logger module to an A0–A3 request at `utc`.
    pub fn answer_log(
        &self,
        spec: &LoggerSpec,
        request: &LogRequest,
        utc: DateTime<Utc>,
    ) -> LogReply {
        let cid = request.selector.cid();
        let short = |info: u8| LogReply {
            cid,
            log: request.log,
            registers_returned: 0,
            columns: Vec::new(),
            records: Vec::new(),
            last_record_id: None,
            newest_record_id: None,
            info: LogInfo(info),
        };
        if request.log != INTERVAL_LOG {
            return short(LogInfo::OUT_OF_RANGE);
        }
        // 16-bit record ids: the simulated log starts at 1 on commissioning (2025-06-01) and
        // would wrap after 65535 hours (2032); the simulation stops answering then.
        let newest = self.newest_record_id(spec, utc);
        let Ok(newest16) = u16::try_from(newest) else {
            return short(LogInfo::OUT_OF_RANGE);
        };
        if newest == 0 {
            return short(LogInfo::EMPTY);
        }
        let oldest = self.oldest_record_id(spec, utc);
        let (Some(stamp0), Some(_)) = (self.module_stamp(spec, 0), self.module_stamp(spec, 1))
        else {
            return short(LogInfo::OUT_OF_RANGE);
        };
        let period_s = 3600;
        let seconds = |t: &LogTime| t.at.unix_seconds();
        // Where the reply starts and which way it runs.
        let (start, descending) = match request.selector {
            LogSelector::TimePresent { time } => {
                // The oldest record stamped at or after `time`.
                let n = (seconds(&time) - stamp0 + period_s - 1).div_euclid(period_s);
                let n = n.max(i64::from(oldest));
                if n > i64::from(newest) {
                    return short(LogInfo::OUT_OF_RANGE);
                }
                (n, false)
            }
            LogSelector::LastPresent => (i64::from(oldest), false),
            LogSelector::IdPresent { record_id } => {
                let n = i64::from(record_id);
                if n > i64::from(newest) {
                    return short(LogInfo::OUT_OF_RANGE);
                }
                (n.max(i64::from(oldest)), false)
            }
            LogSelector::TimePast { time, offset } => {
                // The newest record stamped at or before `time`, then `offset` records older.
                let hit = (seconds(&time) - stamp0)
                    .div_euclid(period_s)
                    .min(i64::from(newest));
                let n = hit - i64::from(offset);
                if n < i64::from(oldest) {
                    return short(LogInfo::OUT_OF_RANGE);
                }
                (n, true)
            }
        };
        let mut wanted: Vec<u16> = Vec::with_capacity(request.registers.len());
        for RegisterId(id) in &request.registers {
            if spec.registers.contains(id) && !wanted.contains(id) {
                wanted.push(*id);
            }
        }
        let available = if descending {
            start - i64::from(oldest) + 1
        } else {
            i64::from(newest) - start + 1
        };
        // APL = 3 + 2m + 5n + 4mn + 5 must stay within MaxL and the module's own limit.
        let limit = usize::from(request.max_len).min(MODULE_MAX_LEN);
        let n = wanted.len();
        let fits = |m: usize| 3 + 2 * m + 5 * n + 4 * m * n + 5 <= limit;
        let mut fit = 0usize;
        while fit < usize::from(request.records) && fits(fit + 1) {
            fit += 1;
        }
        let take = i64::try_from(fit).unwrap_or(0).min(available).max(0);
        let mut records = Vec::new();
        for k in 0..take {
            let id = if descending { start - k } else { start + k };
            let Some(record) = u32::try_from(id)
                .ok()
                .and_then(|id| self.logged_record(spec, id, &wanted))
            else {
                return short(LogInfo::OUT_OF_RANGE);
            };
            records.push(record);
        }
        let mut info = 0u8;
        if take < i64::from(request.records) {
            info |= if take < available {
                LogInfo::MAX_LEN_REACHED
            } else {
                LogInfo::END_OF_LOG
            };
        }
        let columns = match records.first() {
            Some(first) => first
                .values
                .iter()
                .filter_map(|v| ColumnFormat::for_value(v.id, v.unit, VALUE_LEN, &v.value).ok())
                .collect(),
            None => Vec::new(),
        };
        let last = records
            .last()
            .and_then(|r| u16::try_from(r.id).ok())
            .or_else(|| u16::try_from(start).ok())
            .unwrap_or_default();
        LogReply {
            cid,
            log: request.log,
            registers_returned: u8::try_from(columns.len()).unwrap_or(0),
            columns,
            records,
            last_record_id: Some(last),
            newest_record_id: Some(newest16),
            info: LogInfo(info),
        }
    }
}

/// The module's part of [`super::kmp_model::respond`]: `None` when the frame is not for a
/// logger module of this model (the meter decides), else the module's action.
pub(crate) fn respond(model: KmpModel, frame: &Frame, at: DateTime<Utc>) -> Option<MeterAction> {
    if frame.destination != MODULE_ADDRESS {
        return None;
    }
    let Some(spec) = model.logger_module() else {
        return Some(MeterAction::Silent("no logger module at 0x7F"));
    };
    let request = match Request::from_frame(frame) {
        Ok(Request::Log(r)) => r,
        _ => return Some(MeterAction::Silent("the logger module only answers A0–A3")),
    };
    let reply = model.answer_log(spec, &request, at);
    Some(match Response::Log(reply).encode(MODULE_ADDRESS) {
        Ok(bytes) => MeterAction::Reply(bytes),
        Err(_) => MeterAction::Silent("reply could not be encoded"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kamstrup_kmp::{CivilDateTime, LogRecord, DESTINATION_HEAT_METER};

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn ask(
        model: KmpModel,
        selector: LogSelector,
        regs: &[u16],
        n: u8,
        when: DateTime<Utc>,
    ) -> Option<LogReply> {
        let request = Request::Log(LogRequest {
            log: INTERVAL_LOG,
            registers: regs.iter().map(|&r| RegisterId(r)).collect(),
            records: n,
            max_len: 0x80,
            selector,
        });
        let frame = request.to_frame(MODULE_ADDRESS).unwrap();
        match super::super::kmp_model::respond(model, &frame, when) {
            MeterAction::Reply(bytes) => {
                let reply = Frame::parse(&bytes).unwrap();
                assert_eq!(reply.destination, MODULE_ADDRESS);
                match Response::from_frame(&reply).unwrap() {
                    Response::Log(r) => Some(r),
                    other => panic!("{other:?}"),
                }
            }
            MeterAction::Silent(_) => None,
        }
    }

    fn time(y: u16, mo: u8, d: u8, h: u8, mi: u8) -> LogTime {
        LogTime::new(CivilDateTime::new(y, mo, d, h, mi, 0).unwrap())
    }

    fn ids(records: &[LogRecord]) -> Vec<u32> {
        records.iter().map(|r| r.id).collect()
    }

    #[test]
    fn only_the_601_has_a_module_and_only_a0_a3_are_answered() {
        let now = at("2026-11-30T10:30:00Z");
        let sel = LogSelector::IdPresent { record_id: 0 };
        for model in [KmpModel::Multical603, KmpModel::Multical402] {
            assert!(ask(model, sel, &[60], 1, now).is_none());
        }
        assert!(ask(KmpModel::Multical601, sel, &[60], 1, now).is_some());
        assert!(ask(KmpModel::Multical801, sel, &[60], 1, now).is_some());
        // GetSerialNo at 0x7F: silent; at 0x3F the calculator answers, B8 it ignores.
        let serial = Request::GetSerialNo.to_frame(MODULE_ADDRESS).unwrap();
        assert!(matches!(
            super::super::kmp_model::respond(KmpModel::Multical601, &serial, now),
            MeterAction::Silent(_)
        ));
        let serial = Request::GetSerialNo
            .to_frame(DESTINATION_HEAT_METER)
            .unwrap();
        assert!(matches!(
            super::super::kmp_model::respond(KmpModel::Multical601, &serial, now),
            MeterAction::Reply(_)
        ));
        // Not for 0x3F.
        let a2 = Request::Log(LogRequest {
            log: 1,
            registers: vec![RegisterId(60)],
            records: 1,
            max_len: 0x80,
            selector: sel,
        })
        .to_frame(DESTINATION_HEAT_METER)
        .unwrap();
        assert!(matches!(
            super::super::kmp_model::respond(KmpModel::Multical601, &a2, now),
            MeterAction::Silent(_)
        ));
    }

    #[test]
    fn a3_finds_the_newest_at_or_before_and_pages_by_offset() {
        let m = KmpModel::Multical601;
        let now = at("2026-11-30T10:30:00Z");
        let newest = m.newest_record_id(&INTERVAL_LOG_SPEC, now);
        // The meter's clock (standard time, drifting) reads about 11:30 now: the newest record
        // is the one of 11:00.
        let regs = [1003, 1002, 60, 68];
        let r = ask(
            m,
            LogSelector::TimePast {
                time: time(2026, 11, 30, 23, 0),
                offset: 0,
            },
            &regs,
            24,
            now,
        )
        .unwrap();
        assert_eq!(r.newest_record_id, Some(u16::try_from(newest).unwrap()));
        // 3 + 2m + 20 + 16m + 5 ≤ 128: m = 5.
        assert_eq!(
            ids(&r.records),
            (0..5).map(|k| newest - k).collect::<Vec<_>>()
        );
        assert_eq!(r.info, LogInfo(LogInfo::MAX_LEN_REACHED));
        assert_eq!(r.last_record_id, Some(u16::try_from(newest - 4).unwrap()));
        let next = ask(
            m,
            LogSelector::TimePast {
                time: time(2026, 11, 30, 23, 0),
                offset: 5,
            },
            &regs,
            24,
            now,
        )
        .unwrap();
        assert_eq!(next.records[0].id, newest - 5);
        // The records are the B8-style logged records of the same model.
        for rec in r.records.iter().chain(&next.records) {
            assert_eq!(
                Some(rec),
                m.logged_record(&INTERVAL_LOG_SPEC, rec.id, &regs).as_ref()
            );
        }
        let stamp = r.records[1].get(1002).unwrap().date_time_text();
        assert!(stamp.unwrap().ends_with(":00:04"));
        // 10:30 by the meter's clock: the 10:00 record.
        let hit = ask(
            m,
            LogSelector::TimePast {
                time: time(2026, 11, 30, 10, 30),
                offset: 0,
            },
            &regs,
            1,
            now,
        )
        .unwrap();
        assert_eq!(
            hit.records[0].get(1002).unwrap().value.to_string(),
            "100004"
        );
    }

    #[test]
    fn a0_and_a2_run_ascending_to_the_newest() {
        let m = KmpModel::Multical601;
        let now = at("2026-11-30T10:30:00Z");
        let newest = m.newest_record_id(&INTERVAL_LOG_SPEC, now);
        let r = ask(
            m,
            LogSelector::TimePresent {
                time: time(2026, 11, 30, 8, 0),
            },
            &[1002, 60],
            10,
            now,
        )
        .unwrap();
        // 08:00:04, 09:00:04, 10:00:04, 11:00:04 (the meter runs an hour ahead of UTC).
        assert_eq!(r.records[0].get(1002).unwrap().value.to_string(), "80004");
        assert_eq!(r.records.last().unwrap().id, newest);
        assert_eq!(r.records.len(), 4);
        assert_eq!(r.info, LogInfo(LogInfo::END_OF_LOG));
        let from = r.records[1].id;
        let again = ask(
            m,
            LogSelector::IdPresent {
                record_id: u16::try_from(from).unwrap(),
            },
            &[1002, 60],
            2,
            now,
        )
        .unwrap();
        assert_eq!(again.records, r.records[1..3].to_vec());
        assert_eq!(again.info, LogInfo(0));
        // Past the newest: out of range, the body shortened to INFO.
        let beyond = ask(
            m,
            LogSelector::IdPresent {
                record_id: u16::try_from(newest + 1).unwrap(),
            },
            &[60],
            2,
            now,
        )
        .unwrap();
        assert!(beyond.info.out_of_range());
        assert!(beyond.records.is_empty() && beyond.newest_record_id.is_none());
        // Before the oldest: the oldest.
        let oldest = m.oldest_record_id(&INTERVAL_LOG_SPEC, now);
        assert_eq!(newest - oldest + 1, 1440);
        let first = ask(m, LogSelector::IdPresent { record_id: 1 }, &[60], 1, now).unwrap();
        assert_eq!(first.records[0].id, oldest);
    }

    /// A sweep over requests (a fixed pseudo-random sequence): every answer encodes within
    /// MaxL and the module's 128 bytes, decodes to itself, and runs in the promised order over
    /// ids the log holds; nothing panics.
    #[test]
    fn every_answer_fits_and_round_trips() {
        let m = KmpModel::Multical601;
        let now = at("2026-11-30T10:30:00Z");
        let newest = m.newest_record_id(&INTERVAL_LOG_SPEC, now);
        let oldest = m.oldest_record_id(&INTERVAL_LOG_SPEC, now);
        let mut seed: u64 = 0x5EED;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        };
        let pool = [1003u16, 1002, 60, 68, 86, 87, 80, 74, 4242, 348];
        for _ in 0..3000 {
            let registers: Vec<RegisterId> = (0..=next(8))
                .map(|_| RegisterId(pool[next(pool.len() as u64) as usize]))
                .collect();
            let minutes = i64::try_from(next(90 * 24 * 60)).unwrap() - 70 * 24 * 60;
            let t =
                CivilDateTime::from_unix_seconds(now.timestamp() + 3600 + minutes * 60).unwrap();
            let time = LogTime::new(t);
            let selector = match next(4) {
                0 => LogSelector::TimePresent { time },
                1 => LogSelector::LastPresent,
                2 => LogSelector::IdPresent {
                    record_id: u16::try_from(next(u64::from(newest) + 50)).unwrap(),
                },
                _ => LogSelector::TimePast {
                    time,
                    offset: u16::try_from(next(2000)).unwrap(),
                },
            };
            let request = LogRequest {
                log: if next(20) == 0 { 2 } else { INTERVAL_LOG },
                registers,
                records: u8::try_from(next(256)).unwrap(),
                max_len: u8::try_from(next(256)).unwrap(),
                selector,
            };
            let reply = m.answer_log(&INTERVAL_LOG_SPEC, &request, now);
            let wire = Response::Log(reply.clone()).encode(MODULE_ADDRESS).unwrap();
            let frame = Frame::parse(&wire).unwrap();
            let apl = 1 + frame.data.len();
            assert!(apl <= MODULE_MAX_LEN, "{apl}: {request:?}");
            if !reply.records.is_empty() {
                assert!(apl <= usize::from(request.max_len), "{apl}: {request:?}");
            }
            assert_eq!(
                Response::from_frame(&frame).unwrap(),
                Response::Log(reply.clone())
            );
            assert!(reply.records.len() <= usize::from(request.records));
            let got = ids(&reply.records);
            assert!(
                got.iter().all(|id| (oldest..=newest).contains(id)),
                "{request:?}"
            );
            let descending = matches!(request.selector, LogSelector::TimePast { .. });
            for pair in got.windows(2) {
                let step = if descending {
                    pair[0] - pair[1]
                } else {
                    pair[1] - pair[0]
                };
                assert_eq!(step, 1, "{request:?}");
            }
        }
    }

    #[test]
    fn unlogged_registers_are_left_out_and_an_empty_log_says_so() {
        let m = KmpModel::Multical601;
        let now = at("2026-11-30T10:30:00Z");
        let r = ask(
            m,
            LogSelector::IdPresent { record_id: 5000 },
            &[60, 4242, 68],
            1,
            now,
        )
        .unwrap();
        assert_eq!(r.registers_returned, 2);
        assert_eq!(
            r.columns
                .iter()
                .map(|c| (c.id.0, c.len))
                .collect::<Vec<_>>(),
            vec![(60, 4), (68, 4)]
        );
        // Before the first record was written (commissioned 2025-06-01 00:00 UTC).
        let empty = ask(
            m,
            LogSelector::IdPresent { record_id: 0 },
            &[60],
            1,
            at("2025-06-01T00:30:00Z"),
        )
        .unwrap();
        assert!(empty.info.is_empty());
        assert!(empty.records.is_empty());
    }
}
