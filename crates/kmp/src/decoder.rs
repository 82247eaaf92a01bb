//! Incremental, byte-at-a-time KMP receiver: finds frames, ACKs and echoed requests in a stream.
//! It resynchronises on start bytes after garbage and caps frame length; it never reads a clock.

use alloc::vec::Vec;

use crate::physical::{ACK, START_FROM_METER, START_TO_METER, STOP};
use crate::{Direction, Error, Frame, MAX_FRAME_LEN};

/// What the decoder found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A CRC-checked frame going the expected way.
    Frame(Frame),
    /// The bare acknowledge byte 0x06, seen between frames (only when expecting replies).
    Ack,
    /// A complete, CRC-checked request frame while expecting replies: some IR heads send our own
    /// request back before the meter answers.
    Echo(Frame),
}

/// Byte-at-a-time frame finder.
///
/// While hunting it skips anything that is not a start byte (counted by [`Decoder::skipped`]).
/// A start byte inside a frame abandons the partial frame ([`Error::Truncated`]) and starts the
/// new one. A frame growing past [`MAX_FRAME_LEN`] yields [`Error::FrameTooLong`] and the rest of
/// it is skipped. After every event or error the decoder hunts again and stays usable.
///
/// Expecting [`Direction::FromMeter`] (the reader): 0x40 frames are [`Event::Frame`], 0x80
/// frames [`Event::Echo`], a lone 0x06 is [`Event::Ack`]. Expecting [`Direction::ToMeter`] (a
/// simulated meter): 0x80 frames are [`Event::Frame`]; 0x40 frames and 0x06 are skipped.
#[derive(Clone, Debug)]
pub struct Decoder {
    expect: Direction,
    /// Wire bytes of the frame being collected, start byte first; empty while hunting.
    buf: Vec<u8>,
    skipped: usize,
}

impl Decoder {
    /// A decoder for frames going `expect`'s way.
    pub fn new(expect: Direction) -> Self {
        Decoder {
            expect,
            buf: Vec::new(),
            skipped: 0,
        }
    }

    /// Forgets any partial frame and the skipped-byte count.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.skipped = 0;
    }

    /// Garbage bytes skipped while hunting for a start byte since [`Decoder::new`] or
    /// [`Decoder::reset`] (includes the rest of an over-long frame and, when expecting requests,
    /// reply frames).
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// True while a frame has been started but not finished.
    pub fn in_frame(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Takes one byte. `None` means "need more bytes".
    pub fn feed(&mut self, byte: u8) -> Option<Result<Event, Error>> {
        if self.buf.is_empty() {
            return self.hunt(byte);
        }
        match byte {
            START_FROM_METER | START_TO_METER => {
                let len = self.buf.len();
                self.buf.clear();
                // The new start byte begins the next frame (if it is one we listen for).
                let _ = self.hunt(byte);
                Some(Err(Error::Truncated { what: "frame", len }))
            }
            STOP => {
                self.buf.push(STOP);
                let result = Frame::parse(&self.buf);
                self.buf.clear();
                Some(result.map(|frame| self.classify(frame)))
            }
            _ => {
                self.buf.push(byte);
                // Leave room for the stop byte within the cap.
                if self.buf.len() >= MAX_FRAME_LEN {
                    self.buf.clear();
                    Some(Err(Error::FrameTooLong { max: MAX_FRAME_LEN }))
                } else {
                    None
                }
            }
        }
    }

    fn hunt(&mut self, byte: u8) -> Option<Result<Event, Error>> {
        match (byte, self.expect) {
            (START_FROM_METER, Direction::FromMeter) | (START_TO_METER, _) => {
                self.buf.push(byte);
                None
            }
            (ACK, Direction::FromMeter) => Some(Ok(Event::Ack)),
            _ => {
                self.skipped = self.skipped.saturating_add(1);
                None
            }
        }
    }

    fn classify(&self, frame: Frame) -> Event {
        if frame.direction == self.expect {
            Event::Frame(frame)
        } else {
            Event::Echo(frame)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(d: &mut Decoder, bytes: &[u8]) -> Vec<Result<Event, Error>> {
        bytes.iter().filter_map(|&b| d.feed(b)).collect()
    }

    const GET_SERIAL_REQ: [u8; 6] = [0x80, 0x3F, 0x02, 0x35, 0xE9, 0x0D];
    const GET_SERIAL_RESP: [u8; 10] = [0x40, 0x3F, 0x02, 0x01, 0x23, 0x45, 0x67, 0xE9, 0x56, 0x0D];

    #[test]
    fn garbage_then_frame() {
        let mut d = Decoder::new(Direction::FromMeter);
        let mut input = alloc::vec![0x00, 0xFF, 0x0D, 0x12];
        input.extend_from_slice(&GET_SERIAL_RESP);
        let events = feed_all(&mut d, &input);
        assert_eq!(events.len(), 1);
        let Ok(Event::Frame(f)) = &events[0] else {
            panic!("{events:?}")
        };
        assert_eq!(f.data, [0x01, 0x23, 0x45, 0x67]);
        assert_eq!(d.skipped(), 4);
        d.reset();
        assert_eq!(d.skipped(), 0);
    }

    #[test]
    fn restart_on_start_byte() {
        let mut d = Decoder::new(Direction::FromMeter);
        let mut input = alloc::vec![0x40, 0x3F, 0x02];
        input.extend_from_slice(&GET_SERIAL_RESP);
        let events = feed_all(&mut d, &input);
        assert_eq!(
            events[0],
            Err(Error::Truncated {
                what: "frame",
                len: 3
            })
        );
        assert!(matches!(events[1], Ok(Event::Frame(_))));
    }

    #[test]
    fn simulator_side_skips_replies() {
        let mut d = Decoder::new(Direction::ToMeter);
        let mut input = GET_SERIAL_RESP.to_vec();
        input.push(ACK);
        input.extend_from_slice(&GET_SERIAL_REQ);
        let events = feed_all(&mut d, &input);
        assert_eq!(events.len(), 1);
        assert!(matches!(&events[0], Ok(Event::Frame(f)) if f.cid == 0x02));
        assert_eq!(d.skipped(), GET_SERIAL_RESP.len() + 1);
    }

    #[test]
    fn overlong_frame_then_recovery() {
        let mut d = Decoder::new(Direction::FromMeter);
        let mut input = alloc::vec![0x40];
        input.resize(MAX_FRAME_LEN + 10, 0x11);
        input.push(STOP);
        input.extend_from_slice(&GET_SERIAL_RESP);
        let events = feed_all(&mut d, &input);
        assert_eq!(events[0], Err(Error::FrameTooLong { max: MAX_FRAME_LEN }));
        assert_eq!(events.len(), 2);
        assert!(matches!(events[1], Ok(Event::Frame(_))));
    }

    #[test]
    fn longest_allowed_frame_passes() {
        // A frame of exactly MAX_FRAME_LEN wire bytes (start + body + stop) is accepted.
        let data_len = MAX_FRAME_LEN - 6;
        let frame = Frame {
            direction: Direction::FromMeter,
            destination: 0x3F,
            cid: 0x10,
            data: alloc::vec![0x11; data_len],
        };
        let wire = frame.emit();
        assert_eq!(wire.len(), MAX_FRAME_LEN);
        let mut d = Decoder::new(Direction::FromMeter);
        let events = feed_all(&mut d, &wire);
        assert_eq!(events, [Ok(Event::Frame(frame))]);
    }
}
