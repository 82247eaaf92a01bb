//! Property tests: format → parse round trips for every formattable reply, rejection of cut
//! replies, and no panics in the reader or any parser on arbitrary input.
#![cfg(feature = "alloc")]
// Helpers outside #[test] fns panic on purpose: a panic is a test failure.
#![allow(clippy::unwrap_used)]

use kamstrup_mc66c::{
    parse_lines, unescape, Config, CurrentCounts, DataSet, EnergyUnit, Expect, Instantaneous,
    Logger, LoggerRecord, Mc66cReadout, Meaning, MeterDate, MeterTime, MonthDay, ProgramNumber,
    ProgrammingData, ProgrammingParts, Readout, Record, Reply, ReplyReader, Request, Scaling,
    StandardData1, StandardData2, TargetData, VerificationData,
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
            |((energy, volume, hours), (t1, t2), (power, flow, peak_power, info))| {
                StandardData1::from_raw([
                    energy,
                    volume,
                    hours,
                    t1,
                    t2,
                    t1 - t2,
                    power,
                    flow,
                    peak_power,
                    info,
                ])
                .unwrap()
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
        let mut bad = d.to_raw();
        bad[5] = d.dt() + delta;
        prop_assert_eq!(StandardData1::from_raw(bad).unwrap_err().kind(), "dt-mismatch");
        // The same on the wire: the dt field is bytes 40..47.
        let mut bytes = d.emit().unwrap();
        let text = if bad[5] < 0 { format!("-{:06}", -bad[5]) } else { format!("{:07}", bad[5]) };
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
        let d = StandardData2::new(customer_no, regs, program, config, date).unwrap();
        prop_assert_eq!((d.customer_no(), d.program(), d.config(), d.date()), (customer_no, program, config, date));
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
        let d = TargetData::new(
            customer_no, date, [energy, volume, regs[0], regs[1], regs[2], regs[3], regs[4]],
        ).unwrap();
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
        let d = ProgrammingData::new(ProgrammingParts {
            customer_no, program, ccc_v2, config, leak: (leak_m, leak_n), date,
            clock: MeterTime::new(h, m, s).unwrap(),
            hours, target_date: target, info_hours,
        }).unwrap();
        prop_assert_eq!((d.program(), d.ccc_v2(), d.leak_m(), d.leak_n()), (program, ccc_v2, leak_m, leak_n));
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
    let scaling = Scaling::ccc119_fallback(EnergyUnit::MWh);
    for d in DataSet::ALL {
        match Reply::parse(d, bytes) {
            Err(e) => {
                let _ = (e.kind(), e.to_string());
            }
            Ok(Reply::Logger(l)) => {
                for r in l.records() {
                    for f in r.fields(&scaling).unwrap() {
                        let _ = f.to_string();
                    }
                }
            }
            Ok(_) => {}
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

/// One logger line's raw values for `data_set`, within the TD widths.
fn logger_line(data_set: DataSet) -> impl Strategy<Value = Vec<i64>> {
    let n = if data_set == DataSet::YearlyLog {
        13
    } else {
        12
    };
    let five = matches!(data_set, DataSet::DailyLog | DataSet::HourlyLog);
    (
        date(),
        prop::collection::vec(0i64..100_000, n - 2),
        date(),
        0i64..10_000,
    )
        .prop_map(move |(d, mut middle, peak_date, info)| {
            if !five {
                // 7-character columns: stretch to their full range.
                for v in &mut middle {
                    *v *= 99;
                }
            }
            let mut line = vec![MeterDate::to_raw(d)];
            line.append(&mut middle);
            if data_set == DataSet::YearlyLog {
                // Column 9 is the peak's date.
                line[8] = MeterDate::to_raw(peak_date);
            }
            line.push(0);
            let last = line.len() - 1;
            line[last] = info;
            line
        })
}

fn any_logger() -> impl Strategy<Value = (DataSet, Vec<Vec<i64>>)> {
    prop::sample::select(vec![
        DataSet::DailyLog,
        DataSet::HourlyLog,
        DataSet::MonthlyLog,
        DataSet::YearlyLog,
    ])
    .prop_flat_map(|d| (Just(d), prop::collection::vec(logger_line(d), 1..6)))
}

fn any_scaling() -> impl Strategy<Value = Scaling> {
    (
        prop::sample::select(vec![2u8, 3, 4, 5]),
        prop::sample::select(vec![119u16, 137, 158, 170, 171, 107, 555]),
    )
        .prop_map(|(b, ccc)| {
            let p = ProgramNumber { a: 4, b, ccc };
            match Scaling::resolve(&p) {
                Ok(r) => r
                    .known()
                    .unwrap_or(Scaling::ccc119_fallback(p.energy_unit().unwrap())),
                Err(_) => Scaling::ccc119_fallback(EnergyUnit::GJ),
            }
        })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn logger_round_trip_with_dated_scaled_fields((d, lines) in any_logger(), scaling in any_scaling()) {
        let records: Vec<LoggerRecord> = lines
            .iter()
            .map(|l| LoggerRecord::from_raw(d, l).unwrap())
            .collect();
        let logger = Logger::new(d, records).unwrap();
        let bytes = logger.emit().unwrap();
        let parsed = Logger::parse(d, &bytes).unwrap();
        prop_assert_eq!(&parsed, &logger);
        prop_assert_eq!(Reply::parse(d, &bytes).unwrap(), Reply::Logger(logger));
        for (r, raw) in parsed.records().iter().zip(&lines) {
            prop_assert_eq!(r.raw(), raw.as_slice());
            let fields = r.fields(&scaling).unwrap();
            prop_assert_eq!(fields.len(), raw.len());
            prop_assert_eq!(fields[0].meaning, Meaning::Date(r.date()));
            let energy = fields.iter().find(|f| f.name == "energy").unwrap();
            prop_assert_eq!(energy.unit(), Some(scaling.energy_unit.unit()));
            prop_assert_eq!(energy.value(), Some(kamstrup_decimal::Decimal::new(i128::from(raw[1]), scaling.energy).unwrap()));
        }
    }

    #[test]
    fn record_fields_follow_the_field_names(
        r1 in standard1(),
        r4 in prop::array::uniform9(field7()),
        rb in prop::array::uniform12(field7()),
        scaling in any_scaling(),
    ) {
        fn names<R: Record>(r: &R, scaling: &Scaling) -> (Vec<&'static str>, Vec<&'static str>, Vec<i64>, Vec<i64>) {
            let fields = r.fields(scaling).unwrap();
            let fields = fields.as_ref();
            (
                fields.iter().map(|f| f.name).collect(),
                R::field_names().to_vec(),
                fields.iter().map(|f| f.raw).collect(),
                r.to_raw().as_ref().to_vec(),
            )
        }
        for (a, b, raw_a, raw_b) in [
            names(&r1, &scaling),
            names(&VerificationData::from_raw(r4).unwrap(), &scaling),
            names(&CurrentCounts::from_raw(rb).unwrap(), &scaling),
        ] {
            prop_assert_eq!(a, b);
            prop_assert_eq!(raw_a, raw_b);
        }
    }
}
