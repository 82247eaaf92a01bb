//! KMP data-link frames: direction (start byte), destination address, CID, data and CRC.
//! `Frame::parse` checks one whole wire frame; `Frame::emit` produces the stuffed wire bytes.

use alloc::vec::Vec;

use crate::physical::{self, START_FROM_METER, START_TO_METER, STOP};
use crate::{crc::crc16, Error};

/// Which way a frame travels; the start byte tells (0x80 to the meter, 0x40 from it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum Direction {
    /// Master (us) to meter: start byte 0x80.
    ToMeter,
    /// Meter to master: start byte 0x40.
    FromMeter,
}

impl Direction {
    /// The start byte of frames going this way.
    pub const fn start_byte(self) -> u8 {
        match self {
            Direction::ToMeter => START_TO_METER,
            Direction::FromMeter => START_FROM_METER,
        }
    }

    /// The direction a start byte announces, if it is one.
    pub const fn from_start_byte(byte: u8) -> Option<Direction> {
        match byte {
            START_TO_METER => Some(Direction::ToMeter),
            START_FROM_METER => Some(Direction::FromMeter),
            _ => None,
        }
    }
}

/// Destination address of a heat meter (the only one used on the optical eye).
pub const DESTINATION_HEAT_METER: u8 = 0x3F;

/// Smallest data-link frame: destination, CID and two CRC bytes (unstuffed).
const MIN_LINK_LEN: usize = 4;

/// A CRC-checked data-link frame, held unstuffed and without its CRC.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Frame {
    /// Which way it travels.
    pub direction: Direction,
    /// Destination address (0x3F for a heat meter; replies carry the same value).
    pub destination: u8,
    /// Command id.
    pub cid: u8,
    /// Command data (unstuffed).
    pub data: Vec<u8>,
}

impl Frame {
    /// Parses exactly one whole wire frame: start byte, stuffed body with CRC, stop byte.
    ///
    /// Under `cfg(fuzzing)` (set by cargo-fuzz) a CRC mismatch is ignored so that fuzzers reach
    /// the application parsers; every other check still applies. Normal builds always check.
    pub fn parse(wire: &[u8]) -> Result<Frame, Error> {
        let (&start, rest) = wire.split_first().ok_or(Error::Truncated {
            what: "frame",
            len: 0,
        })?;
        let direction = Direction::from_start_byte(start).ok_or(Error::BadStart(start))?;
        let body = match rest.split_last() {
            Some((&STOP, body)) => body,
            _ => return Err(Error::MissingStop),
        };
        let link = physical::unstuff(body).map_err(|e| match e {
            // Report positions within the whole wire frame, start byte included.
            Error::Stuffing { offset, byte } => Error::Stuffing {
                offset: offset + 1,
                byte,
            },
            other => other,
        })?;
        if link.len() < MIN_LINK_LEN {
            return Err(Error::Truncated {
                what: "data-link frame",
                len: link.len(),
            });
        }
        let (content, crc_bytes) = link.split_at(link.len() - 2);
        let actual = match crc_bytes {
            [hi, lo] => u16::from_be_bytes([*hi, *lo]),
            _ => return Err(Error::MissingStop),
        };
        let expected = crc16(content);
        if expected != actual && !cfg!(fuzzing) {
            return Err(Error::Crc { expected, actual });
        }
        match content {
            [destination, cid, data @ ..] => Ok(Frame {
                direction,
                destination: *destination,
                cid: *cid,
                data: data.to_vec(),
            }),
            _ => Err(Error::Truncated {
                what: "data-link frame",
                len: link.len(),
            }),
        }
    }

    /// The wire bytes: start byte, stuffed destination/CID/data/CRC (big-endian), stop byte.
    pub fn emit(&self) -> Vec<u8> {
        let mut link = Vec::with_capacity(self.data.len() + MIN_LINK_LEN);
        link.push(self.destination);
        link.push(self.cid);
        link.extend_from_slice(&self.data);
        let crc = crc16(&link);
        link.extend_from_slice(&crc.to_be_bytes());

        let mut wire = Vec::with_capacity(link.len() * 2 + 2);
        wire.push(self.direction.start_byte());
        physical::stuff_into(&link, &mut wire);
        wire.push(STOP);
        wire
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_type_request_bytes() {
        let frame = Frame {
            direction: Direction::ToMeter,
            destination: DESTINATION_HEAT_METER,
            cid: 0x01,
            data: Vec::new(),
        };
        assert_eq!(frame.emit(), [0x80, 0x3F, 0x01, 0x05, 0x8A, 0x0D]);
        assert_eq!(Frame::parse(&frame.emit()).unwrap(), frame);
    }

    #[test]
    fn framing_errors() {
        assert_eq!(
            Frame::parse(&[]),
            Err(Error::Truncated {
                what: "frame",
                len: 0
            })
        );
        assert_eq!(Frame::parse(&[0x41, 0x0D]), Err(Error::BadStart(0x41)));
        assert_eq!(Frame::parse(&[0x40]), Err(Error::MissingStop));
        assert_eq!(
            Frame::parse(&[0x40, 0x3F, 0x10, 0x0D]),
            Err(Error::Truncated {
                what: "data-link frame",
                len: 2
            })
        );
        assert_eq!(
            Frame::parse(&[0x40, 0x3F, 0x1B, 0x0D]),
            Err(Error::Stuffing {
                offset: 2,
                byte: 0x1B
            })
        );
    }
}
