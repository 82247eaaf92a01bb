//! Every KMP test vector (testdata/vectors/kmp.tsv) as a test, with the key frames also kept here
//! as byte literals named after their source.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns; panics are the point

use kamstrup_kmp::decoder::{Decoder, Event};
use kamstrup_kmp::{
    Decimal, Direction, Error, Frame, MeterType, RegisterId, RegisterRecord, Request, Response,
    SoftwareRevision, Unit,
};

/// The vectors file, copied into the repository from the shared research folder (its `source`
/// column names where each row came from); compiled in, so no test reads outside the checkout.
const TSV: &str = include_str!("../../../testdata/vectors/kmp.tsv");

/// gertvdijk/PyKMP:tests/test_codec.py
const PYKMP_CODEC_GET_TYPE_REQ: &[u8] = &[0x80, 0x3F, 0x01, 0x05, 0x8A, 0x0D];
/// gertvdijk/PyKMP:tests/test_codec.py
const PYKMP_CODEC_GET_TYPE_RESP: &[u8] = &[
    0x40, 0x3F, 0x01, 0x00, 0x04, 0x1B, 0xF9, 0x01, 0x26, 0x99, 0x0D,
];
/// gertvdijk/PyKMP:tests/test_codec.py
const PYKMP_CODEC_GET_SERIAL_REQ: &[u8] = &[0x80, 0x3F, 0x02, 0x35, 0xE9, 0x0D];
/// gertvdijk/PyKMP:tests/test_codec.py
const PYKMP_CODEC_GET_SERIAL_RESP: &[u8] =
    &[0x40, 0x3F, 0x02, 0x01, 0x23, 0x45, 0x67, 0xE9, 0x56, 0x0D];
/// gertvdijk/PyKMP:tests/test_codec.py
const PYKMP_CODEC_GET_SERIAL_RESP_BAD_CRC: &[u8] =
    &[0x40, 0x3F, 0x02, 0x01, 0x23, 0x45, 0x67, 0xE9, 0x57, 0x0D];
/// gertvdijk/PyKMP:tests/test_codec.py
const PYKMP_CODEC_GET_REGISTER_128_REQ: &[u8] =
    &[0x80, 0x3F, 0x10, 0x01, 0x00, 0x1B, 0x7F, 0xD4, 0x08, 0x0D];
/// gertvdijk/PyKMP:tests/test_codec.py
const PYKMP_CODEC_GET_REGISTER_128_RESP: &[u8] = &[
    0x40, 0x3F, 0x10, 0x00, 0x1B, 0x7F, 0x16, 0x04, 0x11, 0x01, 0x2A, 0xF0, 0x24, 0x63, 0x03, 0x0D,
];
/// gertvdijk/PyKMP:tests/test_codec.py
const PYKMP_CODEC_STUFFING_EXAMPLE: &[u8] = &[0x80, 0x04, 0x1B, 0xF2, 0x00, 0x1B, 0xF9, 0x0D];
/// gertvdijk/PyKMP:tests/test_client.py
const PYKMP_CLIENT_GET_TYPE_REQ_3A: &[u8] = &[0x80, 0x3A, 0x01, 0xFA, 0x7F, 0x0D];
/// gertvdijk/PyKMP:tests/test_client.py
const PYKMP_CLIENT_GET_SERIAL_RESP_3A: &[u8] =
    &[0x40, 0x3A, 0x02, 0x00, 0x12, 0xD6, 0x87, 0x9E, 0xE0, 0x0D];
/// gertvdijk/PyKMP:tests/test_messages.py
const PYKMP_MESSAGES_GET_REGISTER_8_REQ: &[u8] = &[
    0x80, 0x3F, 0x10, 0x08, 0x00, 0x36, 0x00, 0x37, 0x00, 0x38, 0x00, 0x39, 0x00, 0x3A, 0x00, 0x3B,
    0x00, 0x3C, 0x00, 0x3D, 0x1B, 0xF2, 0xF7, 0x0D,
];
/// gertvdijk/PyKMP:tests/test_messages.py
const PYKMP_MESSAGES_GET_REGISTER_9_REQ: &[u8] = &[
    0x80, 0x3F, 0x10, 0x09, 0x00, 0x36, 0x00, 0x37, 0x00, 0x38, 0x00, 0x39, 0x00, 0x3A, 0x00, 0x3B,
    0x00, 0x3C, 0x00, 0x3D, 0x00, 0x3E, 0xE0, 0x26, 0x0D,
];
/// golles/ha-kamstrup_403:tests/pykamstrup/test_kamstrup.py
const GOLLES_GET_REGISTER_60_REQ: &[u8] = &[0x80, 0x3F, 0x10, 0x01, 0x00, 0x3C, 0xB2, 0x5F, 0x0D];
/// golles/ha-kamstrup_403:tests/pykamstrup/test_kamstrup.py
const GOLLES_RECEIVE_SUCCESS_BAD_CRC: &[u8] = &[0x40, 0x3F, 0x10, 0x00, 0xD6, 0xE7, 0x0D];
/// golles/ha-kamstrup_403:tests/pykamstrup/test_kamstrup.py
const GOLLES_RECEIVE_CRC_ERROR: &[u8] = &[0x40, 0x3F, 0x10, 0xFF, 0xFF, 0x0D];
/// golles/ha-kamstrup_403:tests/pykamstrup/test_kamstrup.py
const GOLLES_RECEIVE_INVALID_ESCAPE: &[u8] = &[0x40, 0x1B, 0x12, 0x0D];
/// golles/ha-kamstrup_403:tests/pykamstrup/test_kamstrup.py
const GOLLES_GET_VALUES_2_RESP: &[u8] = &[
    0x40, 0x3F, 0x10, 0x00, 0x3C, 0x08, 0x02, 0x00, 0x12, 0x34, 0x00, 0x8C, 0x30, 0x03, 0x00, 0x23,
    0x01, 0x23, 0x56, 0x6A, 0x0D,
];
/// nabovarme/MeterLogger:test/kamstrup_test_reply.txt
const METERLOGGER_GET_SERIAL_RESP: &[u8] =
    &[0x40, 0x3F, 0x02, 0x00, 0x69, 0x2D, 0x32, 0xCD, 0x5D, 0x0D];
/// nabovarme/MeterLogger:test/kamstrup_test_reply.txt
const METERLOGGER_8_REGISTERS_RESP: &[u8] = &[
    0x40, 0x3F, 0x10, 0x00, 0x3C, 0x03, 0x04, 0x43, 0x00, 0x00, 0x00, 0x02, 0x00, 0x44, 0x28, 0x04,
    0x42, 0x00, 0x00, 0x00, 0x18, 0x03, 0xEC, 0x2E, 0x04, 0x00, 0x00, 0x00, 0x1B, 0xE4, 0xD6, 0x00,
    0x56, 0x25, 0x04, 0x42, 0x00, 0x00, 0x4E, 0x20, 0x00, 0x57, 0x25, 0x04, 0x42, 0x00, 0x00, 0x21,
    0xCE, 0x00, 0x59, 0x26, 0x04, 0x42, 0x00, 0x00, 0x2C, 0x52, 0x00, 0x4A, 0x29, 0x04, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x50, 0x16, 0x04, 0x41, 0x00, 0x00, 0x00, 0x00, 0xC3, 0xE8, 0x0D,
];
/// nabovarme/MeterLogger:test/kamstrup_test_reply.txt
const METERLOGGER_HOUR_COUNTER_RESP: &[u8] = &[
    0x40, 0x3F, 0x10, 0x03, 0xEC, 0x2E, 0x04, 0x00, 0x00, 0x00, 0x1B, 0xE4, 0xD7, 0x92, 0xE4, 0x0D,
];
/// nabovarme/MeterLogger:user/kamstrup/kmp_request.c
const METERLOGGER_8_REGISTERS_REQ: &[u8] = &[
    0x80, 0x3F, 0x10, 0x08, 0x00, 0x3C, 0x00, 0x44, 0x03, 0xEC, 0x00, 0x56, 0x00, 0x57, 0x00, 0x59,
    0x00, 0x4A, 0x00, 0x50, 0xB6, 0xC5, 0x0D,
];
/// mushorg/conpot:conpot/tests/test_kamstrup_decoder.py
const CONPOT_DECODER_REQ_1054: &[u8] = &[0x80, 0x3F, 0x10, 0x01, 0x04, 0x1E, 0x7A, 0xBB, 0x0D];
/// mushorg/conpot:conpot/tests/test_kamstrup_decoder.py
const CONPOT_DECODER_INVALID_CRC_1: &[u8] = &[0x80, 0x3F, 0x10, 0x02, 0x00, 0x01, 0x55, 0xA1, 0x0D];
/// mushorg/conpot:conpot/tests/test_kamstrup_decoder.py
const CONPOT_DECODER_INVALID_CRC_2: &[u8] = &[0x80, 0x3F, 0x10, 0x01, 0x00, 0x02, 0x65, 0xCF, 0x0D];
/// mushorg/conpot:conpot/tests/test_kamstrup_decoder.py
const CONPOT_DECODER_REQ_2: &[u8] = &[0x80, 0x3F, 0x10, 0x01, 0x00, 0x02, 0x65, 0xC2, 0x0D];
/// mushorg/conpot:conpot/tests/test_kamstrup_decoder.py
const CONPOT_DECODER_RESP_1: &[u8] = &[
    0x40, 0x3F, 0x10, 0x00, 0x01, 0x02, 0x04, 0x00, 0x00, 0x00, 0x00, 0x8B, 0xE1, 0x90, 0x0D,
];
/// mushorg/conpot:conpot/tests/test_kamstrup_decoder.py
const CONPOT_DECODER_RESP_2: &[u8] = &[
    0x40, 0x3F, 0x10, 0x00, 0x02, 0x02, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 0x1B, 0xF9, 0x0D,
];
/// mushorg/conpot:conpot/tests/test_kamstrup_meter.py
const CONPOT_METER_REQ_1033: &[u8] = &[0x80, 0x3F, 0x10, 0x01, 0x04, 0x09, 0x18, 0x6D, 0x0D];
/// constructed (register 64 = TariffReg2, MULTICAL 402 list)
const CONSTRUCTED_REQ_64_STUFFED_ID_AND_CRC: &[u8] = &[
    0x80, 0x3F, 0x10, 0x01, 0x00, 0x1B, 0xBF, 0x1B, 0xF2, 0x44, 0x0D,
];
/// constructed (register 13 = 382 Energy in hi-res)
const CONSTRUCTED_REQ_13_STUFFED_ID: &[u8] =
    &[0x80, 0x3F, 0x10, 0x01, 0x00, 0x1B, 0xF2, 0x94, 0x2D, 0x0D];
/// constructed (register 1001 = SerialNumber)
const CONSTRUCTED_REQ_1001: &[u8] = &[0x80, 0x3F, 0x10, 0x01, 0x03, 0xE9, 0x7C, 0xD4, 0x0D];
/// constructed (register 266 = E1HighRes)
const CONSTRUCTED_REQ_266: &[u8] = &[0x80, 0x3F, 0x10, 0x01, 0x01, 0x0A, 0xD7, 0xFB, 0x0D];
/// constructed (PyKMP codec.py replace-chain edge case)
const CONSTRUCTED_RESP_7161_1B_E4_F9: &[u8] = &[
    0x40, 0x3F, 0x10, 0x03, 0xEC, 0x2E, 0x04, 0x00, 0x00, 0x00, 0x1B, 0xE4, 0xF9, 0x57, 0x48, 0x0D,
];
/// constructed (value bytes from PyKMP tests/test_codec.py float vector 04C200000039)
const CONSTRUCTED_RESP_NEGATIVE_T1_T2: &[u8] = &[
    0x40, 0x3F, 0x10, 0x00, 0x59, 0x26, 0x04, 0xC2, 0x00, 0x00, 0x00, 0x39, 0x6B, 0xBC, 0x0D,
];
/// gertvdijk/PyKMP:tests/test_messages.py (empty GetRegister response is valid)
const PYKMP_MESSAGES_EMPTY_GET_REGISTER_RESP: &[u8] = &[0x40, 0x3F, 0x10, 0x07, 0x9A, 0x0D];
/// gertvdijk/PyKMP:src/pykmp/codec.py (ACK handling; doc 6.2.3 SetClock)
const PYKMP_ACK: &[u8] = &[0x06];

/// What a vector must decode to.
enum Expect {
    /// A valid request frame with this meaning.
    Req(u8, Request),
    /// A valid request frame that the application layer refuses.
    ReqRejected(u8, Error),
    /// A valid reply frame; `true` if our encoder reproduces the exact bytes.
    Resp(u8, Response, bool),
    /// The frame itself is refused.
    Fail(Error),
    /// The bare ACK byte.
    Ack,
}

struct Vector {
    name: &'static str,
    wire: &'static [u8],
    expect: Expect,
}

fn rec(id: u16, unit: u8, value: &str) -> RegisterRecord {
    RegisterRecord {
        id: RegisterId(id),
        unit: Unit(unit),
        value: value.parse::<Decimal>().unwrap(),
    }
}

fn get_register(ids: &[u16]) -> Request {
    Request::GetRegister(ids.iter().copied().map(RegisterId).collect())
}

fn crc(expected: u16, actual: u16) -> Error {
    Error::Crc { expected, actual }
}

fn vectors() -> Vec<Vector> {
    use Expect::*;
    let v = |name, wire, expect| Vector { name, wire, expect };
    let regs = |records: Vec<RegisterRecord>| Response::Registers(records);
    vec![
        v(
            "PYKMP_CODEC_GET_TYPE_REQ",
            PYKMP_CODEC_GET_TYPE_REQ,
            Req(0x3F, Request::GetType),
        ),
        v(
            "PYKMP_CODEC_GET_TYPE_RESP",
            PYKMP_CODEC_GET_TYPE_RESP,
            Resp(
                0x3F,
                Response::Type(MeterType {
                    type_code: 0x0004,
                    revision: SoftwareRevision {
                        letter: 6,
                        number: 1,
                    },
                }),
                true,
            ),
        ),
        v(
            "PYKMP_CODEC_GET_SERIAL_REQ",
            PYKMP_CODEC_GET_SERIAL_REQ,
            Req(0x3F, Request::GetSerialNo),
        ),
        v(
            "PYKMP_CODEC_GET_SERIAL_RESP",
            PYKMP_CODEC_GET_SERIAL_RESP,
            Resp(0x3F, Response::SerialNo(19_088_743), true),
        ),
        v(
            "PYKMP_CODEC_GET_SERIAL_RESP_BAD_CRC",
            PYKMP_CODEC_GET_SERIAL_RESP_BAD_CRC,
            Fail(crc(0xE956, 0xE957)),
        ),
        v(
            "PYKMP_CODEC_GET_REGISTER_128_REQ",
            PYKMP_CODEC_GET_REGISTER_128_REQ,
            Req(0x3F, get_register(&[128])),
        ),
        v(
            "PYKMP_CODEC_GET_REGISTER_128_RESP",
            PYKMP_CODEC_GET_REGISTER_128_RESP,
            Resp(0x3F, regs(vec![rec(128, 0x16, "1.9591204e24")]), true),
        ),
        v(
            "PYKMP_CODEC_STUFFING_EXAMPLE",
            PYKMP_CODEC_STUFFING_EXAMPLE,
            Fail(crc(0x1D69, 0x0006)),
        ),
        v(
            "PYKMP_CLIENT_GET_TYPE_REQ_3A",
            PYKMP_CLIENT_GET_TYPE_REQ_3A,
            Req(0x3A, Request::GetType),
        ),
        v(
            "PYKMP_CLIENT_GET_SERIAL_RESP_3A",
            PYKMP_CLIENT_GET_SERIAL_RESP_3A,
            Resp(0x3A, Response::SerialNo(1_234_567), true),
        ),
        v(
            "PYKMP_MESSAGES_GET_REGISTER_8_REQ",
            PYKMP_MESSAGES_GET_REGISTER_8_REQ,
            Req(0x3F, get_register(&[54, 55, 56, 57, 58, 59, 60, 61])),
        ),
        v(
            "PYKMP_MESSAGES_GET_REGISTER_9_REQ",
            PYKMP_MESSAGES_GET_REGISTER_9_REQ,
            ReqRejected(0x3F, Error::TooManyRegisters(9)),
        ),
        v(
            "GOLLES_GET_REGISTER_60_REQ",
            GOLLES_GET_REGISTER_60_REQ,
            Req(0x3F, get_register(&[60])),
        ),
        v(
            "GOLLES_RECEIVE_SUCCESS_BAD_CRC",
            GOLLES_RECEIVE_SUCCESS_BAD_CRC,
            Fail(crc(0xEAE7, 0xD6E7)),
        ),
        v(
            "GOLLES_RECEIVE_CRC_ERROR",
            GOLLES_RECEIVE_CRC_ERROR,
            Fail(crc(0x079A, 0xFFFF)),
        ),
        v(
            "GOLLES_RECEIVE_INVALID_ESCAPE",
            GOLLES_RECEIVE_INVALID_ESCAPE,
            Fail(Error::Stuffing {
                offset: 1,
                byte: 0x12,
            }),
        ),
        v(
            "GOLLES_GET_VALUES_2_RESP",
            GOLLES_GET_VALUES_2_RESP,
            // Lengths 2 and 3 on the wire; our encoder writes 4, so bytes differ.
            Resp(
                0x3F,
                regs(vec![rec(60, 0x08, "4660"), rec(140, 0x30, "2294051")]),
                false,
            ),
        ),
        v(
            "METERLOGGER_GET_SERIAL_RESP",
            METERLOGGER_GET_SERIAL_RESP,
            Resp(0x3F, Response::SerialNo(6_892_850), true),
        ),
        v(
            "METERLOGGER_8_REGISTERS_RESP",
            METERLOGGER_8_REGISTERS_RESP,
            Resp(
                0x3F,
                regs(vec![
                    rec(60, 0x03, "0.002"),
                    rec(68, 0x28, "0.24"),
                    rec(1004, 0x2E, "7126"),
                    rec(86, 0x25, "200.00"),
                    rec(87, 0x25, "86.54"),
                    rec(89, 0x26, "113.46"),
                    rec(74, 0x29, "0"),
                    rec(80, 0x16, "0.0"),
                ]),
                true,
            ),
        ),
        v(
            "METERLOGGER_HOUR_COUNTER_RESP",
            METERLOGGER_HOUR_COUNTER_RESP,
            Resp(0x3F, regs(vec![rec(1004, 0x2E, "7127")]), true),
        ),
        v(
            "METERLOGGER_8_REGISTERS_REQ",
            METERLOGGER_8_REGISTERS_REQ,
            Req(0x3F, get_register(&[60, 68, 1004, 86, 87, 89, 74, 80])),
        ),
        v(
            "CONPOT_DECODER_REQ_1054",
            CONPOT_DECODER_REQ_1054,
            Req(0x3F, get_register(&[1054])),
        ),
        v(
            "CONPOT_DECODER_INVALID_CRC_1",
            CONPOT_DECODER_INVALID_CRC_1,
            Fail(crc(0x0CF1, 0x55A1)),
        ),
        v(
            "CONPOT_DECODER_INVALID_CRC_2",
            CONPOT_DECODER_INVALID_CRC_2,
            Fail(crc(0x65C2, 0x65CF)),
        ),
        v(
            "CONPOT_DECODER_REQ_2",
            CONPOT_DECODER_REQ_2,
            Req(0x3F, get_register(&[2])),
        ),
        v(
            "CONPOT_DECODER_RESP_1",
            CONPOT_DECODER_RESP_1,
            Resp(0x3F, regs(vec![rec(1, 0x02, "139")]), true),
        ),
        v(
            "CONPOT_DECODER_RESP_2",
            CONPOT_DECODER_RESP_2,
            Resp(0x3F, regs(vec![rec(2, 0x02, "0")]), true),
        ),
        v(
            "CONPOT_METER_REQ_1033",
            CONPOT_METER_REQ_1033,
            Req(0x3F, get_register(&[1033])),
        ),
        v(
            "CONSTRUCTED_REQ_64_STUFFED_ID_AND_CRC",
            CONSTRUCTED_REQ_64_STUFFED_ID_AND_CRC,
            Req(0x3F, get_register(&[64])),
        ),
        v(
            "CONSTRUCTED_REQ_13_STUFFED_ID",
            CONSTRUCTED_REQ_13_STUFFED_ID,
            Req(0x3F, get_register(&[13])),
        ),
        v(
            "CONSTRUCTED_REQ_1001",
            CONSTRUCTED_REQ_1001,
            Req(0x3F, get_register(&[1001])),
        ),
        v(
            "CONSTRUCTED_REQ_266",
            CONSTRUCTED_REQ_266,
            Req(0x3F, get_register(&[266])),
        ),
        v(
            "CONSTRUCTED_RESP_7161_1B_E4_F9",
            CONSTRUCTED_RESP_7161_1B_E4_F9,
            Resp(0x3F, regs(vec![rec(1004, 0x2E, "7161")]), true),
        ),
        v(
            "CONSTRUCTED_RESP_NEGATIVE_T1_T2",
            CONSTRUCTED_RESP_NEGATIVE_T1_T2,
            Resp(0x3F, regs(vec![rec(89, 0x26, "-0.57")]), true),
        ),
        v(
            "PYKMP_MESSAGES_EMPTY_GET_REGISTER_RESP",
            PYKMP_MESSAGES_EMPTY_GET_REGISTER_RESP,
            Resp(0x3F, regs(Vec::new()), true),
        ),
        v("PYKMP_ACK", PYKMP_ACK, Ack),
    ]
}

fn decode_all(expect: Direction, wire: &[u8]) -> Vec<Result<Event, Error>> {
    let mut d = Decoder::new(expect);
    let events: Vec<_> = wire.iter().filter_map(|&b| d.feed(b)).collect();
    assert!(!d.in_frame());
    // Nothing is skipped, except a reply's bytes on the meter side (it listens for requests).
    let replies_ignored = expect == Direction::ToMeter && wire.first() == Some(&0x40);
    assert_eq!(d.skipped(), if replies_ignored { wire.len() } else { 0 });
    events
}

/// Checks one vector through `Frame::parse`, the application layer, the encoders and both
/// decoder sides.
fn check(v: &Vector) {
    let name = v.name;
    match &v.expect {
        Expect::Req(dest, request) => {
            let frame = Frame::parse(v.wire).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(frame.direction, Direction::ToMeter, "{name}");
            assert_eq!(frame.destination, *dest, "{name}");
            assert_eq!(&Request::from_frame(&frame).unwrap(), request, "{name}");
            assert_eq!(request.encode(*dest).unwrap(), v.wire, "{name}: re-encode");
            assert_eq!(frame.emit(), v.wire, "{name}: emit");
            assert_eq!(
                decode_all(Direction::FromMeter, v.wire),
                [Ok(Event::Echo(frame.clone()))],
                "{name}"
            );
            assert_eq!(
                decode_all(Direction::ToMeter, v.wire),
                [Ok(Event::Frame(frame))],
                "{name}"
            );
        }
        Expect::ReqRejected(dest, error) => {
            let frame = Frame::parse(v.wire).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(frame.destination, *dest, "{name}");
            assert_eq!(frame.emit(), v.wire, "{name}: emit");
            assert_eq!(Request::from_frame(&frame).as_ref(), Err(error), "{name}");
        }
        Expect::Resp(dest, response, reencodes) => {
            let frame = Frame::parse(v.wire).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(frame.direction, Direction::FromMeter, "{name}");
            assert_eq!(frame.destination, *dest, "{name}");
            assert_eq!(frame.emit(), v.wire, "{name}: emit");
            let decoded = Response::from_frame(&frame).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(&decoded, response, "{name}");
            let encoded = response.encode(*dest).unwrap();
            if *reencodes {
                assert_eq!(encoded, v.wire, "{name}: re-encode");
            }
            let again = Response::from_frame(&Frame::parse(&encoded).unwrap()).unwrap();
            assert_eq!(&again, response, "{name}: round trip");
            assert_eq!(
                decode_all(Direction::FromMeter, v.wire),
                [Ok(Event::Frame(frame))],
                "{name}"
            );
            assert!(decode_all(Direction::ToMeter, v.wire).is_empty(), "{name}");
        }
        Expect::Fail(error) => {
            assert_eq!(Frame::parse(v.wire).as_ref(), Err(error), "{name}");
            assert_eq!(
                decode_all(Direction::FromMeter, v.wire),
                [Err(error.clone())],
                "{name}"
            );
        }
        Expect::Ack => {
            assert_eq!(
                decode_all(Direction::FromMeter, v.wire),
                [Ok(Event::Ack)],
                "{name}"
            );
            assert_eq!(Response::Ack.encode(0x3F).unwrap(), v.wire, "{name}");
        }
    }
}

#[test]
fn literal_vectors() {
    for v in &vectors() {
        check(v);
    }
}

fn from_hex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap_or_else(|e| panic!("bad hex {s}: {e}"))
}

/// The hex number after `key` in `text` (e.g. `got E957`).
fn hex_after(text: &str, key: &str) -> u16 {
    let start = text
        .find(key)
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        + key.len();
    u16::from_str_radix(&text[start..start + 4], 16).unwrap()
}

#[test]
fn every_tsv_row() {
    let tsv = TSV;
    let vectors = vectors();
    let mut seen = vec![false; vectors.len()];
    let mut rows = 0;
    for line in tsv.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        let [source, direction, raw_hex, expected, verified] = cols[..] else {
            panic!("bad row: {line}")
        };
        rows += 1;
        let wire = from_hex(raw_hex);
        let i = vectors
            .iter()
            .position(|v| v.wire == wire.as_slice())
            .unwrap_or_else(|| {
                panic!("TSV row without literal counterpart (add it): {source} {raw_hex}")
            });
        seen[i] = true;
        let v = &vectors[i];
        check(v);
        let context = format!("{} ({source}: {expected})", v.name);
        match (&v.expect, direction) {
            (Expect::Req(..) | Expect::ReqRejected(..), "req")
            | (Expect::Resp(..) | Expect::Ack, "resp") => {
                assert!(verified.starts_with("OK"), "{context}: {verified}");
            }
            (Expect::Fail(error), _) => {
                assert!(
                    verified.starts_with("EXPECTED-FAIL"),
                    "{context}: {verified}"
                );
                // The independent checker's verdict must match ours, numbers included.
                match error {
                    Error::Crc { expected, actual } => {
                        assert!(verified.contains("CRC-FAIL"), "{context}");
                        assert_eq!(hex_after(verified, "got "), *actual, "{context}");
                        assert_eq!(hex_after(verified, "calc "), *expected, "{context}");
                    }
                    Error::Stuffing { byte, .. } => {
                        assert!(verified.contains("escape"), "{context}");
                        assert!(verified.contains(&format!("1B {byte:02X}")), "{context}");
                    }
                    other => panic!("{context}: unexpected kind {other:?}"),
                }
            }
            _ => panic!("{context}: direction {direction} does not match"),
        }
        // Tie the free-text meaning to the decoded values for the numbers the text states.
        if let Expect::Resp(_, Response::SerialNo(n), _) = &v.expect {
            assert!(expected.contains(&n.to_string()), "{context}");
        }
    }
    assert_eq!(rows, vectors.len(), "row count");
    assert!(
        seen.iter().all(|&s| s),
        "literal vector missing from the TSV"
    );
}

fn registers(wire: &[u8]) -> Vec<RegisterRecord> {
    match Response::from_frame(&Frame::parse(wire).unwrap()).unwrap() {
        Response::Registers(r) => r,
        other => panic!("{other:?}"),
    }
}

#[test]
fn key_values_spelled_out() {
    let Response::Type(t) =
        Response::from_frame(&Frame::parse(PYKMP_CODEC_GET_TYPE_RESP).unwrap()).unwrap()
    else {
        panic!()
    };
    assert_eq!(t.type_code, 4);
    assert_eq!(t.revision.to_string(), "F1");

    let r = registers(PYKMP_CODEC_GET_REGISTER_128_RESP);
    assert_eq!(r[0].id, RegisterId(128));
    assert_eq!(r[0].unit.symbol(), Some("kW"));
    assert_eq!(r[0].value.to_string(), "1.9591204e24");

    let r = registers(CONSTRUCTED_RESP_7161_1B_E4_F9);
    assert_eq!(
        (r[0].id.0, r[0].unit.to_string(), r[0].value.to_string()),
        (1004, "h".into(), "7161".into())
    );

    let r = registers(CONSTRUCTED_RESP_NEGATIVE_T1_T2);
    assert_eq!(r[0].value.to_string(), "-0.57");
    assert_eq!(r[0].unit.to_string(), "K");

    let r = registers(METERLOGGER_8_REGISTERS_RESP);
    let shown: Vec<String> = r
        .iter()
        .map(|r| format!("{} {} {}", r.id, r.value, r.unit))
        .collect();
    assert_eq!(
        shown,
        [
            "60 0.002 MWh",
            "68 0.24 m³",
            "1004 7126 h",
            "86 200.00 °C",
            "87 86.54 °C",
            "89 113.46 K",
            "74 0 l/h",
            "80 0.0 kW"
        ]
    );

    // yymmdd registers are decimal numbers: 0x230123 = 2294051 is not a date.
    let r = registers(GOLLES_GET_VALUES_2_RESP);
    assert_eq!(r[1].value.to_string(), "2294051");
    assert_eq!(r[1].date_time_text(), None);

    assert!(registers(PYKMP_MESSAGES_EMPTY_GET_REGISTER_RESP).is_empty());
}

#[test]
fn naive_replace_chain_trap_is_avoided() {
    // The wire holds 1B E4 F9: escaped 1B, then data F9 (not an escaped 06).
    let frame = Frame::parse(CONSTRUCTED_RESP_7161_1B_E4_F9).unwrap();
    assert_eq!(
        frame.data,
        [0x03, 0xEC, 0x2E, 0x04, 0x00, 0x00, 0x00, 0x1B, 0xF9]
    );
}

#[test]
fn echo_then_reply() {
    let mut d = Decoder::new(Direction::FromMeter);
    let mut events = Vec::new();
    for &b in METERLOGGER_8_REGISTERS_REQ
        .iter()
        .chain(METERLOGGER_8_REGISTERS_RESP)
    {
        if let Some(e) = d.feed(b) {
            events.push(e.unwrap());
        }
    }
    let [Event::Echo(echo), Event::Frame(reply)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(
        Request::from_frame(echo).unwrap(),
        get_register(&[60, 68, 1004, 86, 87, 89, 74, 80])
    );
    assert_eq!(echo.emit(), METERLOGGER_8_REGISTERS_REQ);
    let Response::Registers(records) = Response::from_frame(reply).unwrap() else {
        panic!()
    };
    assert_eq!(records.len(), 8);
    assert_eq!(d.skipped(), 0);
}

/// §6 worked examples: `len si_ex mantissa` behind an id and unit, decoded as one record.
#[test]
fn float_examples_kmp_md_section_6() {
    let examples: &[(&[u8], &str)] = &[
        (&[0x04, 0xC2, 0x00, 0x00, 0x30, 0x39], "-123.45"),
        (&[0x04, 0x03, 0x05, 0x39, 0x7F, 0xB1], "87654321000"),
        (&[0x01, 0x03, 0xFF], "255000"),
        (&[0x04, 0x11, 0x01, 0x2A, 0xF0, 0x24], "1.9591204e24"),
        (&[0x04, 0x43, 0x00, 0x00, 0x00, 0xFB], "0.251"),
        (&[0x02, 0x42, 0x18, 0xC8], "63.44"),
        (&[0x04, 0xC2, 0x00, 0x00, 0x00, 0x39], "-0.57"),
        // Real captures (Tasmota issue #38): E1 MWh, V1, T1, power, flow.
        (&[0x04, 0x43, 0x00, 0x00, 0xD6, 0xDE], "55.006"),
        (&[0x04, 0x42, 0x00, 0x02, 0xDC, 0xA4], "1875.56"),
        (&[0x02, 0x42, 0x14, 0xF5], "53.65"),
        (&[0x02, 0x41, 0x00, 0x00], "0.0"),
        (&[0x02, 0x00, 0x00, 0x00], "0"),
        // Negative zero keeps its exponent and loses its sign.
        (&[0x02, 0xC2, 0x00, 0x00], "0.00"),
        // 5-byte mantissa, as in one PyKMP test; 8 bytes is the widest we take.
        (&[0x05, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00], "4294967296"),
        (
            &[0x08, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
            "18446744073709551615",
        ),
    ];
    for (value, text) in examples {
        let mut bytes = vec![0x00, 0x3C, 0x03];
        bytes.extend_from_slice(value);
        let (record, used) = RegisterRecord::parse(&bytes).unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(record.value.to_string(), *text, "{value:02X?}");
        let parsed = text.parse::<Decimal>().unwrap();
        assert!(record.value.eq_value(&parsed), "{value:02X?}");
    }
    let (neg_zero, _) = RegisterRecord::parse(&[0x00, 0x3C, 0x03, 0x02, 0xC2, 0x00, 0x00]).unwrap();
    assert_eq!(neg_zero.value.mantissa(), 0);
    assert_eq!(neg_zero.value.exponent(), -2);
}

#[test]
fn record_errors_in_frames() {
    let reply = |data: &[u8]| Frame {
        direction: Direction::FromMeter,
        destination: 0x3F,
        cid: 0x10,
        data: data.to_vec(),
    };
    // Trailing partial record.
    let mut data = vec![0x00, 0x3C, 0x03, 0x04, 0x43, 0x00, 0x00, 0xD6, 0xDE];
    data.extend_from_slice(&[0x00, 0x44, 0x28]);
    assert_eq!(
        Response::from_frame(&reply(&data)),
        Err(Error::Truncated {
            what: "register record",
            len: 3
        })
    );
    // Length byte 0 and 9.
    assert_eq!(
        Response::from_frame(&reply(&[0x00, 0x44, 0x28, 0x00, 0x00])),
        Err(Error::ValueLength {
            register: 68,
            len: 0
        })
    );
    assert_eq!(
        Response::from_frame(&reply(&[
            0x00, 0x44, 0x28, 0x09, 0x00, 1, 2, 3, 4, 5, 6, 7, 8, 9
        ])),
        Err(Error::ValueLength {
            register: 68,
            len: 9
        })
    );
    // Unknown unit code is kept, not fatal.
    let Ok(Response::Registers(r)) =
        Response::from_frame(&reply(&[0x00, 0x44, 0x4B, 0x01, 0x00, 0x07]))
    else {
        panic!()
    };
    assert_eq!(r[0].unit, Unit(0x4B));
    assert!(!r[0].unit.is_known());
    assert_eq!(r[0].unit.to_string(), "unit 0x4B");
    assert_eq!(r[0].value.to_string(), "7");
}

#[test]
fn error_kinds() {
    assert_eq!(crc(1, 2).kind(), "crc");
    assert_eq!(Error::Stuffing { offset: 0, byte: 0 }.kind(), "stuffing");
    assert_eq!(
        Error::Truncated {
            what: "frame",
            len: 0
        }
        .kind(),
        "truncated"
    );
    assert_eq!(Error::BadStart(0).kind(), "framing");
    assert_eq!(Error::MissingStop.kind(), "framing");
    assert_eq!(Error::FrameTooLong { max: 1 }.kind(), "framing");
    assert_eq!(Error::UnknownCid(0).kind(), "protocol");
    assert_eq!(Error::TooManyRegisters(9).kind(), "protocol");
    assert_eq!(Error::NoRegisters.kind(), "protocol");
    assert_eq!(
        Error::UnexpectedLength { cid: 1, len: 2 }.kind(),
        "protocol"
    );
    assert_eq!(
        Error::ValueLength {
            register: 1,
            len: 0
        }
        .kind(),
        "value"
    );
    assert_eq!(Error::ExponentRange(64).kind(), "value");
}
