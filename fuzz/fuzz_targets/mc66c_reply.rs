//! Fuzz target: arbitrary bytes as the reply to every "/#n" request, as an EN 61107 readout and
//! as a byte stream through the reply reader. Whatever parses must re-format and parse back equal.
#![no_main]

use kamstrup_mc66c::{
    emit_readout, unescape, DataSet, EnergyUnit, Expect, InfoEvent, Readout, Record, Register,
    Reply, ReplyReader, Request, Scaling,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for data_set in DataSet::ALL {
        match Reply::parse(data_set, data) {
            Ok(reply) => check_round_trip(data_set, &reply),
            Err(e) => {
                // Messages and kinds must be producible for any input.
                let _ = (e.kind(), e.to_string());
            }
        }
    }

    match Readout::parse(data) {
        // Under cfg(fuzzing) the BCC is not checked; emit always writes a correct one.
        Ok(readout) => {
            let registers: Vec<Register<'_>> = readout.registers().collect();
            let _ = (readout.energy(), readout.volume(), readout.hours());
            let wire = emit_readout(readout.ident.line, &registers, readout.separators)
                .expect("a parsed readout re-formats");
            let again = Readout::parse(&wire).expect("a re-formatted readout parses");
            assert_eq!(again.ident, readout.ident);
            assert_eq!(again.registers().collect::<Vec<_>>(), registers);
        }
        Err(e) => {
            let _ = (e.kind(), e.to_string());
        }
    }

    for request in [
        Request::Data(DataSet::Standard1),
        Request::Data(DataSet::InfoLog),
        Request::Readout,
    ] {
        let mut reader = ReplyReader::for_request(&request);
        for &byte in data {
            if let Some(Ok(reply)) = reader.feed(byte) {
                assert!(!reply.bytes.is_empty());
                if let Request::Data(d) = request {
                    let _ = Reply::parse(d, &reply.bytes);
                }
            }
        }
        if request.expect() == Expect::UntilIdle {
            if let Ok(reply) = reader.finish() {
                let _ = Reply::parse(DataSet::InfoLog, &reply.bytes);
            }
        }
    }

    if let Ok(text) = core::str::from_utf8(data) {
        let _ = unescape(text);
        let _ = text.parse::<kamstrup_mc66c::ProgramNumber>();
    }
});

fn check_round_trip(data_set: DataSet, reply: &Reply) {
    // Every field of what parsed has a meaning and a text, at any scaling.
    for energy_unit in [EnergyUnit::GJ, EnergyUnit::MWh] {
        let scaling = Scaling::ccc119_fallback(energy_unit);
        let texts: Vec<String> = match reply {
            Reply::Standard1(d) => d
                .fields(&scaling)
                .map(|f| f.iter().map(ToString::to_string).collect()),
            Reply::Standard2(d) => d
                .fields(&scaling)
                .map(|f| f.iter().map(ToString::to_string).collect()),
            Reply::Target(d) => d
                .fields(&scaling)
                .map(|f| f.iter().map(ToString::to_string).collect()),
            Reply::Verification(d) => d
                .fields(&scaling)
                .map(|f| f.iter().map(ToString::to_string).collect()),
            Reply::CurrentCounts(d) => d
                .fields(&scaling)
                .map(|f| f.iter().map(ToString::to_string).collect()),
            Reply::Instantaneous(d) => d
                .fields(&scaling)
                .map(|f| f.iter().map(ToString::to_string).collect()),
            Reply::Programming(d) => d
                .fields(&scaling)
                .map(|f| f.iter().map(ToString::to_string).collect()),
            Reply::Logger(l) => l
                .records()
                .iter()
                .map(|r| {
                    r.fields(&scaling)
                        .map(|f| f.iter().map(ToString::to_string).collect::<Vec<_>>())
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|v| v.concat()),
            _ => Ok(Vec::new()),
        }
        .expect("a parsed record has fields");
        let _ = texts;
    }
    let wire = match reply {
        Reply::Standard1(d) => d.emit(),
        Reply::Standard2(d) => d.emit(),
        Reply::Target(d) => d.emit(),
        Reply::Verification(d) => d.emit(),
        Reply::CurrentCounts(d) => d.emit(),
        Reply::Instantaneous(d) => d.emit(),
        Reply::Programming(d) => d.emit(),
        Reply::Monthly(d) => d.emit(),
        Reply::InfoLog(events) => InfoEvent::emit_all(events),
        Reply::Logger(l) => l.emit(),
    }
    .expect("a parsed reply re-formats");
    let again = Reply::parse(data_set, &wire).expect("a re-formatted reply parses");
    assert_eq!(&again, reply);
}
