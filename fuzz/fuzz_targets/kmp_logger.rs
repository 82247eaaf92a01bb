//! Fuzz target: the logger commands (B8 LoggerReadOut, A0–A3, 9B, SetClock). Arbitrary bytes
//! as one wire frame through both application decoders, and as raw command data after a CID.
#![no_main]

use kamstrup_kmp::{
    Frame, LogReply, LogRequest, LoggerReply, LoggerRequest, MeterDateTime, Request, Response,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // As a whole frame: whatever decodes re-encodes to exactly the same frame.
    if let Ok(frame) = Frame::parse(data) {
        if let Ok(response) = Response::from_frame(&frame) {
            let again = response.to_frame(frame.destination).expect("decoded reply re-encodes");
            if let Some(again) = again {
                assert_eq!(again, frame);
            }
            if let Response::Logger(LoggerReply::Records(r)) = &response {
                for record in r.valid_records() {
                    for value in &record.values {
                        let _ = MeterDateTime::from_record(value);
                        let _ = value.date_time_text();
                    }
                }
                let _ = r.last_id();
            }
        }
        if let Ok(request) = Request::from_frame(&frame) {
            let again = request.to_frame(frame.destination).expect("decoded request re-encodes");
            assert_eq!(again, frame);
        }
    }
    // As command data after a CID (first byte): the parsers without framing or CRC.
    let Some((&cid, rest)) = data.split_first() else {
        return;
    };
    match cid {
        0xB8 => {
            if let Ok(reply) = LoggerReply::from_data(rest) {
                assert_eq!(reply.to_data().expect("re-encodes"), rest);
            }
            if let Ok(request) = LoggerRequest::from_data(rest) {
                assert_eq!(request.to_data().expect("re-encodes"), rest);
            }
        }
        0xA0..=0xA3 => {
            if let Ok(reply) = LogReply::from_data(cid, rest) {
                assert_eq!(reply.to_data().expect("re-encodes"), rest);
            }
            if let Ok(request) = LogRequest::from_data(cid, rest) {
                assert_eq!(request.to_data().expect("re-encodes"), rest);
            }
        }
        _ => {}
    }
});
