//! Fuzz target: an arbitrary byte stream fed to the incremental KMP decoder on both sides.
//! Frames it finds go through the application decoders; decoded values must re-encode faithfully.
#![no_main]

use kamstrup_kmp::decoder::{Decoder, Event};
use kamstrup_kmp::{Direction, Frame, Request, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for expect in [Direction::FromMeter, Direction::ToMeter] {
        let mut decoder = Decoder::new(expect);
        for &byte in data {
            if let Some(Ok(Event::Frame(frame) | Event::Echo(frame))) = decoder.feed(byte) {
                check_frame(&frame);
            }
        }
        assert!(decoder.skipped() <= data.len());
        decoder.reset();
        assert_eq!(decoder.skipped(), 0);
    }
});

fn check_frame(frame: &Frame) {
    // Under cfg(fuzzing) the CRC is not checked, but emit always writes a correct one.
    assert_eq!(Frame::parse(&frame.emit()).as_ref(), Ok(frame));
    if let Ok(response) = Response::from_frame(frame) {
        let wire = response.encode(frame.destination).expect("decoded reply re-encodes");
        let again = Frame::parse(&wire).and_then(|f| Response::from_frame(&f));
        assert_eq!(again, Ok(response));
    }
    if let Ok(request) = Request::from_frame(frame) {
        let wire = request.encode(frame.destination).expect("decoded request re-encodes");
        assert_eq!(Frame::parse(&wire).as_ref(), Ok(frame));
    }
}
