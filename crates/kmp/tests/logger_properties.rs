//! Property tests of the logger commands (B8, A0–A3), event status and SetClock: encode→decode
//! round trips through whole wire frames, and random command data that never panics.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns; panics are the point

use kamstrup_kmp::decode_value;
use kamstrup_kmp::{
    CivilDateTime, ClockSetting, ColumnFormat, Direction, Frame, LogInfo, LogRecord, LogReply,
    LogRequest, LogSelector, LogTime, LoggerConfig, LoggerInfo, LoggerRecords, LoggerReply,
    LoggerRequest, LoggerType, MeterDateTime, RegisterId, RegisterRecord, Request, Response, Unit,
};
use proptest::prelude::*;

fn logger_type() -> impl Strategy<Value = LoggerType> {
    prop::sample::select(LoggerType::ALL.to_vec())
}

fn ids(max: usize) -> impl Strategy<Value = Vec<RegisterId>> {
    prop::collection::vec(any::<u16>().prop_map(RegisterId), 1..=max)
}

fn civil() -> impl Strategy<Value = CivilDateTime> {
    (
        2000u16..=2099,
        1u8..=12,
        1u8..=28,
        0u8..24,
        0u8..60,
        0u8..60,
    )
        .prop_map(|(y, mo, d, h, mi, s)| CivilDateTime::new(y, mo, d, h, mi, s).unwrap())
}

fn log_time() -> impl Strategy<Value = LogTime> {
    (civil(), any::<u8>(), any::<u8>()).prop_map(|(at, weekday, info)| LogTime {
        at,
        weekday,
        info,
    })
}

fn selector() -> impl Strategy<Value = LogSelector> {
    prop_oneof![
        log_time().prop_map(|time| LogSelector::TimePresent { time }),
        Just(LogSelector::LastPresent),
        any::<u16>().prop_map(|record_id| LogSelector::IdPresent { record_id }),
        (log_time(), any::<u16>())
            .prop_map(|(time, offset)| LogSelector::TimePast { time, offset }),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        logger_type().prop_map(|logger| Request::Logger(LoggerRequest::Config { logger })),
        (logger_type(), any::<u32>(), any::<u16>(), ids(40)).prop_map(
            |(logger, log_id, count, registers)| Request::Logger(LoggerRequest::ById {
                logger,
                log_id,
                count,
                registers
            })
        ),
        (logger_type(), any::<u16>(), any::<u16>(), ids(40)).prop_map(
            |(logger, offset, count, registers)| Request::Logger(LoggerRequest::ByOffset {
                logger,
                offset,
                count,
                registers
            })
        ),
        (any::<u8>(), ids(8), any::<u8>(), any::<u8>(), selector()).prop_map(
            |(log, registers, records, max_len, selector)| Request::Log(LogRequest {
                log,
                registers,
                records,
                max_len,
                selector
            })
        ),
        Just(Request::GetEventStatus),
        civil().prop_map(|at| Request::SetClock(ClockSetting { at })),
    ]
}

fn column() -> impl Strategy<Value = ColumnFormat> {
    (any::<u16>(), any::<u8>(), 1u8..=8, any::<u8>()).prop_map(|(id, unit, len, si_ex)| {
        ColumnFormat {
            id: RegisterId(id),
            unit: Unit(unit),
            len,
            si_ex,
        }
    })
}

/// A value that fits `col`: random mantissa bytes of its length decoded with its si_ex.
fn value_for(col: &ColumnFormat, raw: u64) -> RegisterRecord {
    let len = usize::from(col.len);
    let bytes = raw.to_be_bytes();
    RegisterRecord {
        id: col.id,
        unit: col.unit,
        value: decode_value(col.id.0, col.si_ex, &bytes[8 - len..]).unwrap(),
    }
}

fn columns_and_rows(
    max_cols: usize,
    max_rows: usize,
) -> impl Strategy<Value = (Vec<ColumnFormat>, Vec<Vec<u64>>)> {
    prop::collection::vec(column(), 1..=max_cols).prop_flat_map(move |cols| {
        let n = cols.len();
        (
            Just(cols),
            prop::collection::vec(prop::collection::vec(any::<u64>(), n), 0..=max_rows),
        )
    })
}

fn records(cols: &[ColumnFormat], rows: &[Vec<u64>], ids: impl Fn(usize) -> u32) -> Vec<LogRecord> {
    rows.iter()
        .enumerate()
        .map(|(k, raws)| LogRecord {
            id: ids(k),
            values: cols
                .iter()
                .zip(raws)
                .map(|(c, &r)| value_for(c, r))
                .collect(),
        })
        .collect()
}

fn response() -> impl Strategy<Value = Response> {
    let config = (
        logger_type(),
        any::<[u8; 3]>(),
        any::<[u8; 3]>(),
        any::<[u8; 4]>(),
        any::<u16>(),
        ids(60),
    )
        .prop_map(|(logger, d1, d2, n, depth, registers)| {
            Response::Logger(LoggerReply::Config(LoggerConfig {
                logger,
                date1: (d1[0], [d1[1], d1[2]]),
                date2: (d2[0], [d2[1], d2[2]]),
                max_interval_records: (n[0], n[1]),
                interval: (n[2], n[3]),
                depth,
                registers,
            }))
        });
    let b8 = (
        any::<bool>(),
        logger_type(),
        40u32..=u32::MAX,
        any::<u32>(),
        any::<u16>(),
        columns_and_rows(9, 30),
    )
        .prop_map(|(by_id, logger, first_id, newest_id, info, (cols, rows))| {
            let records = records(&cols, &rows, |k| first_id - k as u32);
            let registers_returned = cols.len() as u8;
            let columns = if records.is_empty() { Vec::new() } else { cols };
            Response::Logger(LoggerReply::Records(LoggerRecords {
                by_id,
                logger,
                first_id: if records.is_empty() {
                    first_id
                } else {
                    records[0].id
                },
                newest_id,
                info: LoggerInfo(info),
                registers_returned,
                columns,
                records,
            }))
        });
    let a_family = (
        0xA0u8..=0xA3,
        any::<u8>(),
        any::<u16>(),
        any::<u16>(),
        any::<u8>(),
        columns_and_rows(8, 12),
        prop::collection::vec(any::<u16>(), 12),
    )
        .prop_map(|(cid, log, lro, newest, info, (cols, rows), rec_ids)| {
            let records = records(&cols, &rows, |k| u32::from(rec_ids[k]));
            let n = cols.len() as u8;
            Response::Log(LogReply {
                cid,
                log,
                registers_returned: n,
                columns: if records.is_empty() { Vec::new() } else { cols },
                records,
                last_record_id: Some(lro),
                newest_record_id: Some(newest),
                info: LogInfo(info),
            })
        });
    prop_oneof![
        config,
        b8,
        a_family,
        any::<[u8; 4]>().prop_map(Response::EventStatus)
    ]
}

proptest! {
    #[test]
    fn request_round_trip(req in request(), dest in any::<u8>()) {
        let wire = req.encode(dest).unwrap();
        let frame = Frame::parse(&wire).unwrap();
        prop_assert_eq!(Request::from_frame(&frame).unwrap(), req);
    }

    #[test]
    fn response_round_trip(resp in response(), dest in any::<u8>()) {
        let wire = resp.encode(dest).unwrap();
        let frame = Frame::parse(&wire).unwrap();
        let decoded = Response::from_frame(&frame).unwrap();
        prop_assert_eq!(&decoded, &resp);
        // Byte-exact: encoding what was decoded gives the same wire bytes.
        prop_assert_eq!(decoded.encode(dest).unwrap(), wire);
    }

    #[test]
    fn date_time_register_round_trip(at in civil(), dst in any::<u8>()) {
        let t = MeterDateTime { dst_offset_min: dst, standard: at };
        prop_assert_eq!(MeterDateTime::from_record(&t.to_record().unwrap()).unwrap(), t);
        prop_assert_eq!(
            CivilDateTime::from_unix_seconds(at.unix_seconds()).unwrap(),
            at
        );
    }

    /// Random data under each logger CID: decoding may fail, never panic, and whatever decodes
    /// re-encodes to the same bytes.
    #[test]
    fn random_logger_data(
        cid in prop_oneof![Just(0xB8u8), 0xA0u8..=0xA3, Just(0x9B), Just(0x09)],
        sub in prop_oneof![5u8..=7, any::<u8>()],
        logger in prop_oneof![0u8..=9, any::<u8>()],
        data in prop::collection::vec(any::<u8>(), 0..200),
        to_meter in any::<bool>(),
    ) {
        let mut body = if cid == 0xB8 { vec![sub, logger] } else { Vec::new() };
        body.extend_from_slice(&data);
        let direction = if to_meter { Direction::ToMeter } else { Direction::FromMeter };
        let frame = Frame { direction, destination: 0x3F, cid, data: body };
        if to_meter {
            if let Ok(req) = Request::from_frame(&frame) {
                prop_assert_eq!(req.to_frame(0x3F).unwrap(), frame);
            }
        } else if let Ok(resp) = Response::from_frame(&frame) {
            prop_assert_eq!(resp.to_frame(0x3F).unwrap(), Some(frame));
        }
    }
}
