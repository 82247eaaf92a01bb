//! Every logger vector (testdata/vectors/kmp-loggers.tsv) as a test: B8 LoggerReadOut from
//! PyKMP's real MULTICAL 603/303 frames, the A0–A3 examples of Kamstrup 5512-447 wrapped into
//! frames, 9B event status, synthetic hourly frames, and the negative frames.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns; panics are the point

use kamstrup_kmp::crc::crc16;
use kamstrup_kmp::decoder::{Decoder, Event};
use kamstrup_kmp::logger::CID_LOGGER_READOUT;
use kamstrup_kmp::physical::unstuff;
use kamstrup_kmp::{
    CivilDateTime, ColumnFormat, Decimal, Direction, Error, Frame, LogInfo, LogRecord, LogReply,
    LogRequest, LogSelector, LogTime, LoggerInfo, LoggerRecords, LoggerReply, LoggerRequest,
    LoggerType, MeterDateTime, RegisterId, RegisterRecord, Request, Response, Unit,
};

/// The logger vectors, copied into the repository (the `source` column says where each row
/// came from); compiled in, so no test reads outside the checkout.
const TSV: &str = include_str!("../../../testdata/vectors/kmp-loggers.tsv");

fn from_hex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap_or_else(|e| panic!("bad hex {s}: {e}"))
}

fn rec(id: u16, unit: u8, value: &str) -> RegisterRecord {
    RegisterRecord {
        id: RegisterId(id),
        unit: Unit(unit),
        value: value.parse::<Decimal>().unwrap(),
    }
}

fn raw(id: u16, unit: u8, mantissa: u32) -> RegisterRecord {
    rec(id, unit, &mantissa.to_string())
}

fn col(id: u16, unit: u8, len: u8, si_ex: u8) -> ColumnFormat {
    ColumnFormat {
        id: RegisterId(id),
        unit: Unit(unit),
        len,
        si_ex,
    }
}

fn ids(list: &[u16]) -> Vec<RegisterId> {
    list.iter().copied().map(RegisterId).collect()
}

fn time(y: u16, mo: u8, d: u8, h: u8, mi: u8, s: u8) -> LogTime {
    LogTime::new(CivilDateTime::new(y, mo, d, h, mi, s).unwrap())
}

fn date_time(dst: u8, bytes: [u8; 6]) -> RegisterRecord {
    let [yy, mo, d, h, mi, s] = bytes;
    MeterDateTime::from_bytes([dst, yy, mo, d, h, mi, s])
        .unwrap()
        .to_record()
        .unwrap()
}

/// What a row must decode to.
enum Expect {
    Req(u8, Request),
    ReqRejected(Error),
    Resp(u8, Response),
    RespRejected(Error),
    /// Refused by the data-link layer.
    Fail(Error),
}

fn e1_v1_regs() -> Vec<RegisterId> {
    ids(&[0x003C, 0x0044])
}

fn a_family_request(selector: LogSelector) -> Request {
    Request::Log(LogRequest {
        log: 1,
        registers: e1_v1_regs(),
        records: 3,
        max_len: 0x80,
        selector,
    })
}

/// The document's three placeholder records (E1 in GJ, V1 in litres).
fn doc_records(order: [u32; 3]) -> Vec<LogRecord> {
    let values = |id: u32| match id {
        0x10F3 => [0xFF06_8662, 0xE993_DC05],
        0x10F4 => [0xB50A_5C5E, 0x93E0_5047],
        _ => [0xCF06_5396, 0xF258_4C96],
    };
    order
        .iter()
        .map(|&id| {
            let [e1, v1] = values(id);
            LogRecord {
                id,
                values: vec![raw(0x3C, 0x08, e1), raw(0x44, 0x27, v1)],
            }
        })
        .collect()
}

fn expectation(hex: &str) -> Option<Expect> {
    use Expect::*;
    let hourly_regs = || ids(&[348, 60, 68]);
    Some(match hex {
        "803FB8050270EE0D" => Req(
            0x3F,
            Request::Logger(LoggerRequest::Config {
                logger: LoggerType::Yearly,
            }),
        ),
        "803FB80707FFFF00010103EAB85E0D" => Req(
            0x3F,
            Request::Logger(LoggerRequest::ByOffset {
                logger: LoggerType::Minute2,
                offset: 0xFFFF,
                count: 1,
                registers: ids(&[1002]),
            }),
        ),
        "403FB807070001010000000000000000000103EA2F0400000000001F2F0D" => Resp(
            0x3F,
            Response::Logger(LoggerReply::Records(LoggerRecords {
                by_id: false,
                logger: LoggerType::Minute2,
                first_id: 0,
                newest_id: 0,
                info: LoggerInfo(0x0001),
                registers_returned: 1,
                columns: vec![col(1002, 0x2F, 4, 0)],
                records: vec![LogRecord {
                    id: 0,
                    values: vec![raw(1002, 0x2F, 0)],
                }],
            })),
        ),
        "803FB81BF9020000000200020103EB75070D" => Req(
            0x3F,
            Request::Logger(LoggerRequest::ById {
                logger: LoggerType::Yearly,
                log_id: 2,
                count: 2,
                registers: ids(&[1003]),
            }),
        ),
        "403FB81BF902000201000000020000000200C003EB3004000003F8050003D0F5AA3A0D" => Resp(
            0x3F,
            Response::Logger(LoggerReply::Records(LoggerRecords {
                by_id: true,
                logger: LoggerType::Yearly,
                first_id: 2,
                newest_id: 2,
                info: LoggerInfo(0x00C0),
                registers_returned: 1,
                columns: vec![col(1003, 0x30, 4, 0)],
                records: vec![
                    LogRecord {
                        id: 2,
                        values: vec![raw(1003, 0x30, 260_101)],
                    },
                    LogRecord {
                        id: 1,
                        values: vec![raw(1003, 0x30, 250_101)],
                    },
                ],
            })),
        ),
        "803FB8FF028CE40D" => ReqRejected(Error::UnknownSubCommand {
            cid: 0xB8,
            sub: 0xFF,
        }),
        "803FB805FF4E5C0D" => ReqRejected(Error::UnknownLogger(255)),
        // Raw 0x40 and 0x0D inside the frame: a stuffing error where the raw 0x40 sits.
        "803FB80707FFFF0001FF03EA400D0D" => Fail(Error::Stuffing {
            offset: 12,
            byte: 0x40,
        }),
        "803FB80707FFFF00010103EA0078D30D" => ReqRejected(Error::TrailingBytes {
            cid: 0xB8,
            count: 1,
        }),
        "403FB8FF60C00D" => RespRejected(Error::UnknownSubCommand {
            cid: 0xB8,
            sub: 0xFF,
        }),
        "403FB805FF4E5C0D" => RespRejected(Error::UnknownLogger(255)),
        "403FB81BF90443000B1BE47F000B0FC80D" => Fail(Error::Crc {
            expected: 0x8B0E,
            actual: 0x0FC8,
        }),
        "807FA00102003C0044031B7F0705180A1E000000AC1C0D" => Req(
            0x7F,
            a_family_request(LogSelector::TimePresent {
                time: time(2007, 5, 24, 10, 30, 0),
            }),
        ),
        "407FA0010210F3003C080400FF1BF986620044270400E993DC0510F4B50A5C5E93E0504710F5CF1BF95396F2584C9610F5110200E2AA0D" => {
            Resp(
                0x7F,
                Response::Log(LogReply {
                    cid: 0xA0,
                    log: 1,
                    registers_returned: 2,
                    columns: vec![col(0x3C, 0x08, 4, 0), col(0x44, 0x27, 4, 0)],
                    records: doc_records([0x10F3, 0x10F4, 0x10F5]),
                    last_record_id: Some(0x10F5),
                    newest_record_id: Some(0x1102),
                    info: LogInfo(0),
                }),
            )
        }
        "807FA10102003C0044031B7FDF1E0D" => Req(0x7F, a_family_request(LogSelector::LastPresent)),
        "807FA20102003C0044031B7F10F352130D" => Req(
            0x7F,
            a_family_request(LogSelector::IdPresent { record_id: 0x10F3 }),
        ),
        "807FA30102003C0044031B7F070518132D000000001BF964B30D" => Req(
            0x7F,
            a_family_request(LogSelector::TimePast {
                time: time(2007, 5, 24, 19, 45, 0),
                offset: 6,
            }),
        ),
        "407FA3010210F5003C080400CF1BF953960044270400F2584C9610F4B50A5C5E93E0504710F3FF1BF98662E993DC0510F3110200330A0D" => {
            Resp(
                0x7F,
                Response::Log(LogReply {
                    cid: 0xA3,
                    log: 1,
                    registers_returned: 2,
                    columns: vec![col(0x3C, 0x08, 4, 0), col(0x44, 0x27, 4, 0)],
                    records: doc_records([0x10F5, 0x10F4, 0x10F3]),
                    last_record_id: Some(0x10F3),
                    newest_record_id: Some(0x1102),
                    info: LogInfo(0),
                }),
            )
        }
        "807F9B2AB50D" => Req(0x7F, Request::GetEventStatus),
        "407F9B0000010079DB0D" => Resp(0x7F, Response::EventStatus([0, 0, 1, 0])),
        "803FB8050500090D" => Req(
            0x3F,
            Request::Logger(LoggerRequest::Config {
                logger: LoggerType::Hourly,
            }),
        ),
        "803FB81BF90500001BF21BBF001803015C003C00443AB30D" => Req(
            0x3F,
            Request::Logger(LoggerRequest::ById {
                logger: LoggerType::Hourly,
                log_id: 3392,
                count: 24,
                registers: hourly_regs(),
            }),
        ),
        "803FB807050000001803015C003C004437190D" => Req(
            0x3F,
            Request::Logger(LoggerRequest::ByOffset {
                logger: LoggerType::Hourly,
                offset: 0,
                count: 24,
                registers: hourly_regs(),
            }),
        ),
        "403FB81BF90500020300001BF21BBF00001BF2410000015C4F07003C18070F0A0005003C0804430005C4A600442804420001E21BF93C18070F0900050005C4A00001E1FE397B0D" => {
            Resp(
                0x3F,
                Response::Logger(LoggerReply::Records(LoggerRecords {
                    by_id: true,
                    logger: LoggerType::Hourly,
                    first_id: 3392,
                    newest_id: 3393,
                    info: LoggerInfo(0),
                        registers_returned: 3,
                    columns: vec![
                        col(348, 0x4F, 7, 0),
                        col(60, 0x08, 4, 0x43),
                        col(68, 0x28, 4, 0x42),
                    ],
                    records: vec![
                        LogRecord {
                            id: 3392,
                            values: vec![
                                date_time(60, [24, 7, 15, 10, 0, 5]),
                                rec(60, 0x08, "378.022"),
                                rec(68, 0x28, "1233.98"),
                            ],
                        },
                        LogRecord {
                            id: 3391,
                            values: vec![
                                date_time(60, [24, 7, 15, 9, 0, 5]),
                                rec(60, 0x08, "378.016"),
                                rec(68, 0x28, "1233.90"),
                            ],
                        },
                    ],
                })),
            )
        }
        _ => return None,
    })
}

fn decode_all(expect: Direction, wire: &[u8]) -> Vec<Result<Event, Error>> {
    let mut d = Decoder::new(expect);
    wire.iter().filter_map(|&b| d.feed(b)).collect()
}

fn check(name: &str, wire: &[u8], expect: &Expect) {
    match expect {
        Expect::Req(dest, request) => {
            let frame = Frame::parse(wire).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(frame.direction, Direction::ToMeter, "{name}");
            assert_eq!(frame.destination, *dest, "{name}");
            assert_eq!(&Request::from_frame(&frame).unwrap(), request, "{name}");
            assert_eq!(request.encode(*dest).unwrap(), wire, "{name}: re-encode");
            assert_eq!(
                decode_all(Direction::ToMeter, wire),
                [Ok(Event::Frame(frame.clone()))],
                "{name}"
            );
            assert_eq!(
                decode_all(Direction::FromMeter, wire),
                [Ok(Event::Echo(frame))],
                "{name}: an echoed request"
            );
        }
        Expect::ReqRejected(error) => {
            let frame = Frame::parse(wire).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(frame.emit(), wire, "{name}");
            assert_eq!(Request::from_frame(&frame).as_ref(), Err(error), "{name}");
        }
        Expect::Resp(dest, response) => {
            let frame = Frame::parse(wire).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(frame.direction, Direction::FromMeter, "{name}");
            assert_eq!(frame.destination, *dest, "{name}");
            let decoded = Response::from_frame(&frame).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(&decoded, response, "{name}");
            assert_eq!(response.encode(*dest).unwrap(), wire, "{name}: re-encode");
            assert_eq!(
                decode_all(Direction::FromMeter, wire),
                [Ok(Event::Frame(frame))],
                "{name}"
            );
        }
        Expect::RespRejected(error) => {
            let frame = Frame::parse(wire).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(frame.emit(), wire, "{name}");
            assert_eq!(Response::from_frame(&frame).as_ref(), Err(error), "{name}");
        }
        Expect::Fail(error) => {
            assert_eq!(Frame::parse(wire).as_ref(), Err(error), "{name}");
        }
    }
}

#[test]
fn every_tsv_row() {
    let mut rows = 0;
    for line in TSV.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        let [source, direction, raw_hex, expected, verified] = cols[..] else {
            panic!("bad row: {line}")
        };
        rows += 1;
        let wire = from_hex(raw_hex);
        let expect = expectation(raw_hex)
            .unwrap_or_else(|| panic!("row without an expectation here (add it): {raw_hex}"));
        let name = format!("{raw_hex} ({source}: {expected})");
        check(&name, &wire, &expect);
        match (&expect, direction) {
            (Expect::Req(..), "req") | (Expect::Resp(..), "resp") => {
                assert!(verified.starts_with("OK"), "{name}: {verified}");
            }
            (Expect::ReqRejected(e), "req") | (Expect::RespRejected(e), "resp") => {
                assert!(verified.starts_with("EXPECTED-FAIL"), "{name}");
                // The independent checker's words for the same verdict.
                let phrase = match e {
                    Error::UnknownSubCommand { .. } => "unknown sub-command 0xFF",
                    Error::UnknownLogger(_) => "unknown logger type 255",
                    Error::TrailingBytes { .. } => "trailing bytes=1",
                    other => panic!("{name}: {other:?}"),
                };
                assert!(verified.contains(phrase), "{name}: {verified}");
            }
            (Expect::Fail(error), _) => {
                assert!(verified.starts_with("EXPECTED-FAIL"), "{name}");
                if let Error::Crc { expected, actual } = error {
                    assert!(verified.contains(&format!("got {actual:04X} calc {expected:04X}")));
                }
            }
            _ => panic!("{name}: direction {direction} does not fit"),
        }
    }
    assert_eq!(rows, 24, "row count");
}

#[test]
fn empty_logger_placeholder_is_dropped() {
    let wire = from_hex("403FB807070001010000000000000000000103EA2F0400000000001F2F0D");
    let Response::Logger(LoggerReply::Records(r)) =
        Response::from_frame(&Frame::parse(&wire).unwrap()).unwrap()
    else {
        panic!()
    };
    assert!(r.info.is_empty());
    assert_eq!(r.records.len(), 1);
    assert!(r.valid_records().is_empty());
    assert_eq!(r.last_id(), None);
}

#[test]
fn yearly_reply_spelled_out() {
    let wire = from_hex("403FB81BF902000201000000020000000200C003EB3004000003F8050003D0F5AA3A0D");
    let Response::Logger(LoggerReply::Records(r)) =
        Response::from_frame(&Frame::parse(&wire).unwrap()).unwrap()
    else {
        panic!()
    };
    assert!(r.info.oldest_included() && r.info.newest_included());
    let dates: Vec<String> = r
        .valid_records()
        .iter()
        .map(|rec| rec.get(1003).unwrap().date_time_text().unwrap())
        .collect();
    assert_eq!(dates, ["2026-01-01", "2025-01-01"]);
    assert_eq!(r.last_id(), Some(1));
}

#[test]
fn hourly_reply_timestamps_and_values() {
    let wire = from_hex("403FB81BF90500020300001BF21BBF00001BF2410000015C4F07003C18070F0A0005003C0804430005C4A600442804420001E21BF93C18070F0900050005C4A00001E1FE397B0D");
    let Response::Logger(LoggerReply::Records(r)) =
        Response::from_frame(&Frame::parse(&wire).unwrap()).unwrap()
    else {
        panic!()
    };
    let first = &r.records[0];
    let t = MeterDateTime::from_record(first.get(348).unwrap()).unwrap();
    assert_eq!(t.dst_offset_min, 60);
    assert_eq!(t.standard.to_string(), "2024-07-15 10:00:05");
    assert_eq!(t.local().unwrap().to_string(), "2024-07-15 11:00:05");
    assert_eq!(
        first.get(348).unwrap().date_time_text().as_deref(),
        Some("2024-07-15 10:00:05 standard time (DST +60 min)")
    );
    assert_eq!(first.get(60).unwrap().value.to_string(), "378.022");
    assert_eq!(first.get(60).unwrap().unit.to_string(), "GJ");
    assert_eq!(r.records[1].get(68).unwrap().value.to_string(), "1233.90");
    assert_eq!(r.records[1].id, 3391);
}

#[test]
fn unstuffed_crc_row_matches_the_checkers_numbers() {
    // The checker cut the frame at the first 0x0D and read the two bytes before it as the CRC:
    // EA 40, while the content before them gives 4D85. Our CRC function agrees on that number.
    let wire = from_hex("803FB80707FFFF0001FF03EA400D0D");
    let cut = wire.iter().position(|&b| b == 0x0D).unwrap();
    let content = &wire[1..cut - 2];
    assert_eq!(crc16(content), 0x4D85);
    assert_eq!(u16::from_be_bytes([wire[cut - 2], wire[cut - 1]]), 0xEA40);
    // The incremental receiver sees the raw 0x40 as a new start byte.
    let events = decode_all(Direction::ToMeter, &wire);
    assert!(
        matches!(events[0], Err(Error::Truncated { .. })),
        "{events:?}"
    );
}

#[test]
fn fragment_unstuffs_in_one_pass() {
    let fragment = from_hex("3FB81BF90443000B1BE47F000B0FC8");
    assert_eq!(
        unstuff(&fragment).unwrap(),
        from_hex("3FB8060443000B1B7F000B0FC8")
    );
}

#[test]
fn b8_counts_are_checked_before_allocating() {
    // count 0xFFFF with one 4-byte register but only one record present.
    let mut data = vec![0x06, 0x04, 0xFF, 0xFF, 0x01];
    data.extend_from_slice(&[0, 0, 0, 9, 0, 0, 0, 9, 0, 0]);
    data.extend_from_slice(&[0x03, 0xEA, 0x2F, 0x04, 0x00, 0, 0, 0, 0]);
    assert!(matches!(
        LoggerReply::from_data(&data),
        Err(Error::Truncated { .. })
    ));
    // Ids running below zero.
    let mut data = vec![0x06, 0x04, 0x00, 0x03, 0x01];
    data.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 9, 0, 0]);
    data.extend_from_slice(&[0x03, 0xEA, 0x2F, 0x01, 0x00, 1, 2, 3]);
    assert_eq!(
        LoggerReply::from_data(&data),
        Err(Error::Malformed {
            cid: CID_LOGGER_READOUT,
            what: "record ids run below 0"
        })
    );
}

#[test]
fn encoder_refuses_values_that_do_not_fit_their_column() {
    let mut records = LoggerRecords {
        by_id: true,
        logger: LoggerType::Daily,
        first_id: 5,
        newest_id: 5,
        info: LoggerInfo(0),
        registers_returned: 1,
        columns: vec![col(60, 0x08, 4, 0x42)],
        records: vec![LogRecord {
            id: 5,
            values: vec![rec(60, 0x08, "1.234")],
        }],
    };
    assert_eq!(
        LoggerReply::Records(records.clone()).to_data(),
        Err(Error::ColumnMismatch { register: 60 })
    );
    records.records[0].values[0] = rec(60, 0x08, "1.2");
    assert!(LoggerReply::Records(records.clone()).to_data().is_ok());
    records.records[0].id = 4;
    assert!(matches!(
        LoggerReply::Records(records).to_data(),
        Err(Error::Malformed { .. })
    ));
}

#[test]
fn a_family_reply_shortened_to_info() {
    // An empty log may answer just CID LID NRtR INFO.
    let reply = LogReply::from_data(0xA2, &[0x01, 0x00, LogInfo::EMPTY]).unwrap();
    assert!(reply.info.is_empty());
    assert!(reply.records.is_empty());
    assert_eq!(reply.to_data().unwrap(), [0x01, 0x00, 0x01]);
    assert!(LogReply::from_data(0xA2, &[0x01, 0x00, 0x00, 0x01]).is_err());
}
