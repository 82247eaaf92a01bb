//! Property tests: encode/decode round trips, stuffing invariants and decoder robustness.
//! Inputs are random; the decoder must find valid frames in garbage and never panic.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns; panics are the point

use kamstrup_kmp::decoder::{Decoder, Event};
use kamstrup_kmp::physical::{self, is_reserved, ESCAPE};
use kamstrup_kmp::{
    Decimal, Direction, Frame, MeterType, RegisterId, RegisterRecord, Request, Response,
    SoftwareRevision, Unit, MAX_FRAME_LEN,
};
use proptest::prelude::*;

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        Just(Request::GetType),
        Just(Request::GetSerialNo),
        prop::collection::vec(any::<u16>().prop_map(RegisterId), 1..=8)
            .prop_map(Request::GetRegister),
    ]
}

/// A mantissa of 1..=8 significant bytes (so every length the encoder can choose occurs).
fn mantissa() -> impl Strategy<Value = u64> {
    (1u32..=8, any::<u64>()).prop_map(|(bytes, raw)| raw >> (64 - 8 * bytes))
}

fn value() -> impl Strategy<Value = Decimal> {
    (mantissa(), any::<bool>(), -63i16..=63).prop_map(|(m, neg, e)| {
        let m = i128::from(m);
        Decimal::new(if neg { -m } else { m }, e).unwrap()
    })
}

fn record() -> impl Strategy<Value = RegisterRecord> {
    (any::<u16>(), any::<u8>(), value()).prop_map(|(id, unit, value)| RegisterRecord {
        id: RegisterId(id),
        unit: Unit(unit),
        value,
    })
}

fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        (any::<u16>(), any::<u8>(), any::<u8>()).prop_map(|(type_code, letter, number)| {
            Response::Type(MeterType {
                type_code,
                revision: SoftwareRevision { letter, number },
            })
        }),
        any::<u32>().prop_map(Response::SerialNo),
        prop::collection::vec(record(), 0..=8).prop_map(Response::Registers),
    ]
}

fn feed(decoder: &mut Decoder, bytes: &[u8]) -> Vec<Result<Event, kamstrup_kmp::Error>> {
    bytes.iter().filter_map(|&b| decoder.feed(b)).collect()
}

proptest! {
    #[test]
    fn request_round_trip(req in request(), dest in any::<u8>()) {
        let wire = req.encode(dest).unwrap();
        let frame = Frame::parse(&wire).unwrap();
        prop_assert_eq!(frame.destination, dest);
        prop_assert_eq!(Request::from_frame(&frame).unwrap(), req);
    }

    #[test]
    fn response_round_trip(resp in response(), dest in any::<u8>()) {
        let wire = resp.encode(dest).unwrap();
        prop_assert!(wire.len() <= MAX_FRAME_LEN);
        let frame = Frame::parse(&wire).unwrap();
        prop_assert_eq!(Response::from_frame(&frame).unwrap(), resp);
    }

    /// Records written with any length 1..=8 decode to the same value, and re-encoding keeps it.
    #[test]
    fn record_any_length(
        id in any::<u16>(), unit in any::<u8>(), len in 1usize..=8,
        raw in any::<u64>(), si_ex in any::<u8>(),
    ) {
        let magnitude = if len == 8 { raw } else { raw & ((1u64 << (8 * len)) - 1) };
        let mut bytes = id.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[unit, len as u8, si_ex]);
        bytes.extend_from_slice(&magnitude.to_be_bytes()[8 - len..]);
        let (rec, used) = RegisterRecord::parse(&bytes).unwrap();
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(rec.value.mantissa().unsigned_abs(), u128::from(magnitude));
        let exp = i16::from(si_ex & 0x3F);
        prop_assert_eq!(rec.value.exponent(), if si_ex & 0x40 != 0 { -exp } else { exp });
        prop_assert_eq!(rec.value.is_negative(), si_ex & 0x80 != 0 && magnitude != 0);
        let mut out = Vec::new();
        rec.encode_into(&mut out).unwrap();
        let (again, _) = RegisterRecord::parse(&out).unwrap();
        prop_assert_eq!(again, rec);
    }

    #[test]
    fn stuff_unstuff_round_trip(data in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut stuffed = Vec::new();
        physical::stuff_into(&data, &mut stuffed);
        // No raw reserved byte survives; every escape is followed by an escaped reserved value.
        let mut i = 0;
        while i < stuffed.len() {
            if stuffed[i] == ESCAPE {
                prop_assert!(i + 1 < stuffed.len());
                prop_assert!(is_reserved(stuffed[i + 1] ^ 0xFF));
                i += 2;
            } else {
                prop_assert!(!is_reserved(stuffed[i]));
                i += 1;
            }
        }
        prop_assert_eq!(physical::unstuff(&stuffed).unwrap(), data);
    }

    #[test]
    fn emitted_frames_have_no_inner_reserved_bytes(resp in response()) {
        let wire = resp.encode(0x3F).unwrap();
        let inner = &wire[1..wire.len() - 1];
        prop_assert!(inner.iter().all(|&b| b == ESCAPE || !is_reserved(b)));
    }

    #[test]
    fn decoder_finds_frame_after_garbage(
        garbage in prop::collection::vec(any::<u8>(), 0..400),
        resp in response(),
    ) {
        let frame = resp.to_frame(0x3F).unwrap().unwrap();
        let mut input = garbage;
        input.extend_from_slice(&frame.emit());
        let mut d = Decoder::new(Direction::FromMeter);
        let events = feed(&mut d, &input);
        prop_assert_eq!(events.last(), Some(&Ok(Event::Frame(frame))));
        prop_assert!(!d.in_frame());
    }

    #[test]
    fn simulator_decoder_finds_request_after_garbage(
        garbage in prop::collection::vec(any::<u8>(), 0..400),
        req in request(),
    ) {
        let frame = req.to_frame(0x3F).unwrap();
        let mut input = garbage;
        input.extend_from_slice(&frame.emit());
        let mut d = Decoder::new(Direction::ToMeter);
        let events = feed(&mut d, &input);
        prop_assert_eq!(events.last(), Some(&Ok(Event::Frame(frame))));
    }

    #[test]
    fn decoder_never_panics(input in prop::collection::vec(any::<u8>(), 0..2000), to_meter in any::<bool>()) {
        let expect = if to_meter { Direction::ToMeter } else { Direction::FromMeter };
        let mut d = Decoder::new(expect);
        for ev in feed(&mut d, &input).into_iter().flatten() {
            if let Event::Frame(f) | Event::Echo(f) = ev {
                let _ = Response::from_frame(&f);
                let _ = Request::from_frame(&f);
            }
        }
        prop_assert!(d.skipped() <= input.len());
    }

    #[test]
    fn parsers_never_panic(input in prop::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(f) = Frame::parse(&input) {
            let _ = Response::from_frame(&f);
            let _ = Request::from_frame(&f);
        }
        let _ = physical::unstuff(&input);
        let _ = RegisterRecord::parse(&input);
    }

    /// Random application data in a correctly framed reply: decoding may fail, never panic, and
    /// whatever decodes re-encodes to something that decodes the same.
    #[test]
    fn random_reply_data(cid in prop_oneof![Just(1u8), Just(2u8), Just(0x10u8), any::<u8>()],
                         data in prop::collection::vec(any::<u8>(), 0..120)) {
        let frame = Frame { direction: Direction::FromMeter, destination: 0x3F, cid, data };
        let parsed = Frame::parse(&frame.emit()).unwrap();
        prop_assert_eq!(&parsed, &frame);
        if let Ok(resp) = Response::from_frame(&frame) {
            let again = Response::from_frame(&Frame::parse(&resp.encode(0x3F).unwrap()).unwrap());
            prop_assert_eq!(again.unwrap(), resp);
        }
    }
}
