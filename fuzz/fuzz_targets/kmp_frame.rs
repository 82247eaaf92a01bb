//! Fuzz target: arbitrary bytes as one whole KMP wire frame, then both application decoders.
//! Also runs the unstuffer and the register-record parser directly on the same bytes.
#![no_main]

use kamstrup_kmp::{physical, Frame, RegisterRecord, Request, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = Frame::parse(data) {
        assert_eq!(Frame::parse(&frame.emit()).as_ref(), Ok(&frame));
        if let Ok(response) = Response::from_frame(&frame) {
            let wire = response.encode(frame.destination).expect("decoded reply re-encodes");
            let again = Frame::parse(&wire).and_then(|f| Response::from_frame(&f));
            assert_eq!(again, Ok(response));
        }
        if let Ok(request) = Request::from_frame(&frame) {
            let wire = request.encode(frame.destination).expect("decoded request re-encodes");
            assert_eq!(Frame::parse(&wire).as_ref(), Ok(&frame));
        }
    }
    if let Ok(plain) = physical::unstuff(data) {
        let mut stuffed = Vec::new();
        physical::stuff_into(&plain, &mut stuffed);
        assert_eq!(stuffed, data);
    }
    if let Ok((record, used)) = RegisterRecord::parse(data) {
        assert!(used <= data.len());
        let mut out = Vec::new();
        record.encode_into(&mut out).expect("decoded record re-encodes");
        assert_eq!(RegisterRecord::parse(&out).map(|(r, _)| r), Ok(record));
    }
});
