//! Property tests: format → parse round trips for every formattable reply, rejection of cut
//! replies, and no panics in the reader or any parser on arbitrary input.
#![cfg(feature = "alloc")]
// Helpers outside #[test] fns panic on purpose: a panic is a test failure.
#![allow(clippy::unwrap_used)]

use kamstrup_mc66c::{
    parse_lines, unescape, Config, CurrentCounts, DataSet, EnergyUnit, Expect, Instantaneous,
    Mc66cReadout, MeterDate, MeterTime, MonthDay, ProgramNumber, ProgrammingData, Readout, Reply,
    ReplyReader, Request, StandardData1, StandardData2, TargetData, VerificationData,
};
use proptest::prelude::*;

const MAX7: i64 = 9_999_999;
const MIN7: i64 = -999_999;

fn field7() -> impl Strategy<Value = i64> {
    MIN7..=MAX7
}

fn counter7() -> impl Strategy<Value = i64> {
    0..=MAX7
}

fn standard1() -> impl Strategy<Value = StandardData1> {
    (
        (counter7(), counter7(), counter7()),
        (-99_999i64..=450_000, -99_999i64..=450_000),
        (field7(), field7(), field7(), counter7()),
    )
        .prop_map(
            |((energy, volume, hours), (t1, t2), (power, flow, peak_power, info))| StandardData1 {
                energy,
                volume,
                hours,
                t1,
                t2,
                dt: t1 - t2,
                power,
                flow,
                peak_power,
                info,
            },
        )
}

fn date() -> impl Strategy<Value = Option<MeterDate>> {
    prop_oneof![
        Just(None),
        (1990u16..=2089, 1u8..=12, 1u8..=31).prop_map(|(y, m, d)| MeterDate::new(y, m, d)),
    ]
}

fn program() -> impl Strategy<Value = ProgramNumber> {
    (0u8..=9, 0u8..=9, 0u16..=999).prop_map(|(a, b, ccc)| ProgramNumber { a, b, ccc })
}

fn meter_config() -> impl Strategy<Value = Config> {
    (0u8..=99, 0u8..=9, 0u8..=99, 0u8..=99)
        .prop_map(|(dd, e, ff, gg)| Config::new(dd, e, ff, gg).unwrap())
}

fn customer() -> impl Strategy<Value = u64> {
    0u64..=99_999_999_999
}

/// Re-spaces a reply: `lead` leading spaces, `gaps` (1–3) spaces between fields, one trailing
/// space, then CR or CR LF.
fn respace(reply: &[u8], lead: usize, gaps: &[usize], crlf: bool) -> Vec<u8> {
    let body = std::str::from_utf8(reply)
        .unwrap()
        .trim_end_matches(['\r', ' ']);
    let mut out = " ".repeat(lead);
    for (i, tok) in body.split(' ').filter(|t| !t.is_empty()).enumerate() {
        if i > 0 {
            out.push_str(&" ".repeat(gaps[i % gaps.len()]));
        }
        out.push_str(tok);
    }
    out.push(' ');
    out.push_str(if crlf { "\r\n" } else { "\r" });
    out.into_bytes()
}

fn config(cases: u32) -> ProptestConfig {
    // No regression files: the crate has no proptest-regressions directory to keep.
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn standard1_round_trip(
        d in standard1(),
        lead in 0usize..=2,
        gaps in prop::collection::vec(1usize..=3, 1..5),
        crlf: bool,
    ) {
        let bytes = d.emit().unwrap();
        prop_assert_eq!(bytes.len(), 81);
        prop_assert_eq!(StandardData1::parse(&bytes).unwrap(), d);
        prop_assert_eq!(StandardData1::parse(&respace(&bytes, lead, &gaps, crlf)).unwrap(), d);
    }

    #[test]
    fn standard1_cut_replies_are_rejected(d in standard1(), cut in 1usize..81) {
        let bytes = d.emit().unwrap();
        // Losing the start (late baud switch) or the end (timeout) never yields a reading.
        prop_assert!(StandardData1::parse(&bytes[cut..]).is_err());
        prop_assert!(StandardData1::parse(&bytes[..cut]).is_err());
    }

    #[test]
    fn standard1_dt_mismatch_is_rejected(d in standard1(), delta in 1i64..100) {
        let mut bad = d;
        bad.dt = d.dt + delta;
        prop_assert_eq!(bad.emit().unwrap_err().kind(), "dt-mismatch");
        // The same on the wire: the dt field is bytes 40..47.
        let mut bytes = d.emit().unwrap();
        let text = if bad.dt < 0 { format!("-{:06}", -bad.dt) } else { format!("{:07}", bad.dt) };
        bytes[40..47].copy_from_slice(text.as_bytes());
        prop_assert_eq!(StandardData1::parse(&bytes).unwrap_err().kind(), "dt-mismatch");
    }

    #[test]
    fn standard2_round_trip(
        customer_no in customer(),
        regs in prop::array::uniform6(field7()),
        program in program(),
        config in meter_config(),
        date in date(),
    ) {
        let d = StandardData2 {
            customer_no,
            ta2: regs[0], tl2: regs[1], ta3: regs[2], tl3: regs[3], in_a: regs[4], in_b: regs[5],
            program, config, date,
        };
        let bytes = d.emit().unwrap();
        prop_assert_eq!(bytes.len(), 85);
        prop_assert_eq!(StandardData2::parse(&bytes).unwrap(), d);
    }

    #[test]
    fn target_round_trip(
        customer_no in customer(),
        date in date(),
        energy in counter7(),
        volume in counter7(),
        regs in prop::array::uniform5(field7()),
    ) {
        let d = TargetData {
            customer_no, date, energy, volume,
            ta2: regs[0], ta3: regs[1], in_a: regs[2], in_b: regs[3], peak_power_year: regs[4],
        };
        let bytes = d.emit().unwrap();
        prop_assert_eq!(bytes.len(), 77);
        prop_assert_eq!(TargetData::parse(&bytes).unwrap(), d);
    }

    #[test]
    fn verification_round_trip(r in prop::array::uniform9(field7())) {
        let d = VerificationData::from_raw(r).unwrap();
        let bytes = d.emit().unwrap();
        prop_assert_eq!(bytes.len(), 74);
        prop_assert_eq!(VerificationData::parse(&bytes).unwrap(), d);
    }

    #[test]
    fn current_counts_round_trip(r in prop::array::uniform12(field7())) {
        let d = CurrentCounts::from_raw(r).unwrap();
        let bytes = d.emit().unwrap();
        prop_assert_eq!(bytes.len(), 97);
        prop_assert_eq!(CurrentCounts::parse(&bytes).unwrap(), d);
    }

    #[test]
    fn instantaneous_round_trip(r in prop::array::uniform8(field7())) {
        let d = Instantaneous::from_raw(r).unwrap();
        let bytes = d.emit().unwrap();
        prop_assert_eq!(bytes.len(), 65);
        prop_assert_eq!(Instantaneous::parse(&bytes).unwrap(), d);
    }

    #[test]
    fn programming_round_trip(
        customer_no in customer(),
        program in program(),
        ccc_v2 in 0u16..=999,
        config in meter_config(),
        (leak_m, leak_n) in (0u8..=9, 0u8..=9),
        date in date(),
        (h, m, s) in (0u8..=23, 0u8..=59, 0u8..=59),
        hours in counter7(),
        target in prop_oneof![Just(None), (1u8..=12, 1u8..=31).prop_map(|(m, d)| MonthDay::new(m, d))],
        info_hours in counter7(),
    ) {
        let d = ProgrammingData {
            customer_no, program, ccc_v2, config, leak_m, leak_n, date,
            clock: MeterTime::new(h, m, s).unwrap(),
            hours, target_date: target, info_hours,
        };
        let bytes = d.emit().unwrap();
        prop_assert_eq!(bytes.len(), 72);
        prop_assert_eq!(ProgrammingData::parse(&bytes).unwrap(), d);
    }

    #[test]
    fn readout_round_trip(
        customer_no in customer(),
        (e, e_dec) in (0i128..10_000_000, 0i16..=3),
        (v, v_dec) in (0i128..10_000_000, 0i16..=3),
        hours in 0u32..10_000_000,
        unit in prop_oneof![Just(EnergyUnit::GJ), Just(EnergyUnit::KWh), Just(EnergyUnit::MWh), Just(EnergyUnit::Gcal)],
        separators: bool,
    ) {
        let r = Mc66cReadout {
            customer_no,
            energy: kamstrup_decimal::Decimal::new(e, -e_dec).unwrap(),
            energy_unit: unit,
            volume: kamstrup_decimal::Decimal::new(v, -v_dec).unwrap(),
            hours,
        };
        let bytes = r.emit(separators).unwrap();
        let parsed = Readout::parse(&bytes).unwrap();
        prop_assert_eq!(parsed.separators, separators);
        prop_assert_eq!(parsed.energy().unwrap().value, r.energy);
        prop_assert_eq!(parsed.energy().unwrap().unit, Some(unit.unit()));
        prop_assert_eq!(parsed.volume().unwrap().value, r.volume);
        prop_assert_eq!(parsed.hours().unwrap().value, kamstrup_decimal::Decimal::from_int(i64::from(hours)));
        let customer_text = format!("{customer_no:011}");
        prop_assert_eq!(parsed.customer_no(), Some(customer_text.as_str()));
        // Any flipped bit in the checked part is caught by the BCC or the structure.
        let stx = bytes.iter().position(|b| *b == 0x02).unwrap();
        let mut bad = bytes.clone();
        let i = stx + 1 + (e as usize % (bytes.len() - stx - 2));
        bad[i] ^= 0x01;
        prop_assert!(Readout::parse(&bad).is_err());
    }

    #[test]
    fn escape_round_trip(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        prop_assert_eq!(unescape(&kamstrup_mc66c::escape(&bytes)).unwrap(), bytes);
    }
}

/// Bytes biased towards the protocol's alphabet so the parsers get past their first checks.
fn protocolish() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            8 => prop::sample::select(b"0123456789".to_vec()),
            3 => Just(b' '),
            1 => prop::sample::select(b"-\r\n\x02\x03\x06/#?!()*.KAM MCm3GJh".to_vec()),
            1 => any::<u8>(),
        ],
        0..300,
    )
}

fn all_expects() -> [Expect; 5] {
    [
        Expect::Line,
        Expect::Lines(3),
        Expect::UntilIdle,
        Expect::Readout,
        Expect::Lines(0),
    ]
}

fn exercise_parsers(bytes: &[u8]) {
    for d in DataSet::ALL {
        if let Err(e) = Reply::parse(d, bytes) {
            let _ = (e.kind(), e.to_string());
        }
        let _ = parse_lines(d, bytes);
    }
    if let Ok(r) = Readout::parse(bytes) {
        for reg in r.registers() {
            let _ = (reg.decimal(), reg.unit());
        }
        let _ = (r.energy(), r.volume(), r.hours(), r.customer_no());
    } else if let Err(e) = Readout::parse(bytes) {
        let _ = e.to_string();
    }
    let text = String::from_utf8_lossy(bytes);
    let _ = text.parse::<ProgramNumber>().map_err(|e| e.to_string());
    let _ = text.parse::<Request>().map_err(|e| e.to_string());
    let _ = unescape(&text).map_err(|e| e.to_string());
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn reader_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600), max in 1usize..300) {
        for expect in all_expects() {
            let mut r = ReplyReader::new(expect).with_max_len(max);
            for b in &bytes {
                if let Some(Ok(reply)) = r.feed(*b) {
                    prop_assert!(reply.bytes.len() <= max);
                }
            }
            let _ = r.finish();
        }
    }

    #[test]
    fn reader_never_panics_protocolish(bytes in protocolish()) {
        for request in [Request::Data(DataSet::Standard1), Request::Data(DataSet::InfoLog), Request::Readout] {
            let mut r = ReplyReader::for_request(&request);
            for b in &bytes {
                let _ = r.feed(*b);
            }
            let _ = r.finish();
        }
    }

    #[test]
    fn parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        exercise_parsers(&bytes);
    }

    #[test]
    fn parsers_never_panic_protocolish(bytes in protocolish()) {
        exercise_parsers(&bytes);
    }

    #[test]
    fn parsers_never_panic_on_strings(s in "\\PC{0,200}") {
        exercise_parsers(s.as_bytes());
    }
}
