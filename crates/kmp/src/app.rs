//! KMP application layer: the commands a reader sends and the replies a meter gives.
//! Both sides are implemented so a simulator can decode requests and encode replies.

use alloc::vec::Vec;
use core::fmt;

use crate::logger::{
    LogReply, LogRequest, LoggerReply, LoggerRequest, CID_LOGGER_READOUT, CID_LOG_TIME_PAST,
    CID_LOG_TIME_PRESENT,
};
use crate::time::ClockSetting;
use crate::{cid, Direction, Error, Frame, RegisterId, RegisterRecord};

/// Most register ids one GetRegister request may carry (every known implementation caps here).
pub const MAX_REGISTERS_PER_REQUEST: usize = 8;

/// A command sent to the meter.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum Request {
    /// CID 0x01: meter type and software revision.
    GetType,
    /// CID 0x02: serial number.
    GetSerialNo,
    /// CID 0x10: 1..=8 registers. Encoding and decoding reject other counts.
    GetRegister(Vec<RegisterId>),
    /// CID 0x09: set the meter clock (reply: ACK). A write: never sent unless a user asks.
    SetClock(ClockSetting),
    /// CID 0x9B: the four event-status bytes (logger modules: unread records).
    GetEventStatus,
    /// CID 0xB8: logger configuration or records (MULTICAL 303/403/603).
    Logger(LoggerRequest),
    /// CIDs 0xA0–0xA3: log records (MULTICAL 601 logger modules, MULTICAL 801).
    Log(LogRequest),
}

impl Request {
    /// The complete wire bytes (start, stuffing, CRC, stop) for `destination`.
    pub fn encode(&self, destination: u8) -> Result<Vec<u8>, Error> {
        Ok(self.to_frame(destination)?.emit())
    }

    /// The data-link frame for `destination`; errors on a register count outside 1..=8.
    pub fn to_frame(&self, destination: u8) -> Result<Frame, Error> {
        let (cid, data) = match self {
            Request::GetType => (cid::GET_TYPE, Vec::new()),
            Request::GetSerialNo => (cid::GET_SERIAL_NO, Vec::new()),
            Request::GetEventStatus => (cid::GET_EVENT_STATUS, Vec::new()),
            Request::SetClock(setting) => (cid::SET_CLOCK, setting.to_bytes()?.to_vec()),
            Request::Logger(r) => (CID_LOGGER_READOUT, r.to_data()?),
            Request::Log(r) => (r.selector.cid(), r.to_data()?),
            Request::GetRegister(ids) => {
                check_register_count(ids.len())?;
                let mut data = Vec::with_capacity(1 + 2 * ids.len());
                // Count is at most 8 after the check above.
                data.push(u8::try_from(ids.len()).map_err(|_| Error::TooManyRegisters(ids.len()))?);
                for id in ids {
                    data.extend_from_slice(&id.0.to_be_bytes());
                }
                (cid::GET_REGISTER, data)
            }
        };
        Ok(Frame {
            direction: Direction::ToMeter,
            destination,
            cid,
            data,
        })
    }

    /// Decodes a request frame (meter side). Errors on a reply frame, an unsupported CID, a
    /// register count outside 1..=8 or data of the wrong length.
    pub fn from_frame(frame: &Frame) -> Result<Request, Error> {
        if frame.direction != Direction::ToMeter {
            return Err(Error::WrongDirection {
                expected: Direction::ToMeter,
            });
        }
        let unexpected = || Error::UnexpectedLength {
            cid: frame.cid,
            len: frame.data.len(),
        };
        match frame.cid {
            cid::GET_TYPE if frame.data.is_empty() => Ok(Request::GetType),
            cid::GET_SERIAL_NO if frame.data.is_empty() => Ok(Request::GetSerialNo),
            cid::GET_EVENT_STATUS if frame.data.is_empty() => Ok(Request::GetEventStatus),
            cid::GET_TYPE | cid::GET_SERIAL_NO | cid::GET_EVENT_STATUS => Err(unexpected()),
            cid::SET_CLOCK => {
                let bytes: [u8; 8] = frame.data[..].try_into().map_err(|_| unexpected())?;
                Ok(Request::SetClock(ClockSetting::from_bytes(bytes)?))
            }
            CID_LOGGER_READOUT => Ok(Request::Logger(LoggerRequest::from_data(&frame.data)?)),
            CID_LOG_TIME_PRESENT..=CID_LOG_TIME_PAST => {
                Ok(Request::Log(LogRequest::from_data(frame.cid, &frame.data)?))
            }
            cid::GET_REGISTER => {
                let (&count, ids) = frame.data.split_first().ok_or_else(unexpected)?;
                let count = usize::from(count);
                check_register_count(count)?;
                if ids.len() != 2 * count {
                    return Err(unexpected());
                }
                Ok(Request::GetRegister(
                    ids.chunks_exact(2)
                        .map(|p| RegisterId(u16::from_be_bytes([p[0], p[1]])))
                        .collect(),
                ))
            }
            other => Err(Error::UnknownCid(other)),
        }
    }
}

fn check_register_count(count: usize) -> Result<(), Error> {
    match count {
        0 => Err(Error::NoRegisters),
        1..=MAX_REGISTERS_PER_REQUEST => Ok(()),
        n => Err(Error::TooManyRegisters(n)),
    }
}

/// Software revision from GetType: a letter index (1 = A … 26 = Z) and a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SoftwareRevision {
    /// Letter index, 1 = 'A'; 0 means "not available" (register 1005 has the edition then).
    pub letter: u8,
    /// Revision number.
    pub number: u8,
}

impl fmt::Display for SoftwareRevision {
    /// `F1`; `n/a` when the letter is 0; `#27.1` for a letter index beyond Z.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.letter {
            0 => f.write_str("n/a"),
            l @ 1..=26 => write!(f, "{}{}", char::from(b'A' + l - 1), self.number),
            l => write!(f, "#{l}.{}", self.number),
        }
    }
}

/// GetType reply: meter type code (its mapping to model names is not public) and revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct MeterType {
    /// Binary meter type code.
    pub type_code: u16,
    /// Software revision.
    pub revision: SoftwareRevision,
}

/// A meter's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum Response {
    /// Reply to GetType.
    Type(MeterType),
    /// Reply to GetSerialNo.
    SerialNo(u32),
    /// Reply to GetRegister: one record per register the meter knows, in the meter's order
    /// (unknown ids are simply absent; duplicates are kept as sent). May be empty.
    Registers(Vec<RegisterRecord>),
    /// The bare acknowledge byte 0x06 (e.g. after SetClock).
    Ack,
    /// Reply to GetEventStatus: ES0..ES3 (ES2 bit 0: the interval log has unread records).
    EventStatus([u8; 4]),
    /// Reply to a B8 logger request.
    Logger(LoggerReply),
    /// Reply to an A0–A3 log request.
    Log(LogReply),
}

impl Response {
    /// Decodes a reply frame. Records are taken by the id inside each record; unknown unit codes
    /// are kept raw. Errors on a request frame, unsupported CID, wrong data length, a record
    /// length outside 1..=8 or a trailing partial record.
    pub fn from_frame(frame: &Frame) -> Result<Response, Error> {
        if frame.direction != Direction::FromMeter {
            return Err(Error::WrongDirection {
                expected: Direction::FromMeter,
            });
        }
        let unexpected = || Error::UnexpectedLength {
            cid: frame.cid,
            len: frame.data.len(),
        };
        match frame.cid {
            cid::GET_TYPE => match frame.data[..] {
                [hi, lo, letter, number] => Ok(Response::Type(MeterType {
                    type_code: u16::from_be_bytes([hi, lo]),
                    revision: SoftwareRevision { letter, number },
                })),
                _ => Err(unexpected()),
            },
            cid::GET_SERIAL_NO => match frame.data[..] {
                [a, b, c, d] => Ok(Response::SerialNo(u32::from_be_bytes([a, b, c, d]))),
                _ => Err(unexpected()),
            },
            cid::GET_EVENT_STATUS => match frame.data[..] {
                [a, b, c, d] => Ok(Response::EventStatus([a, b, c, d])),
                _ => Err(unexpected()),
            },
            CID_LOGGER_READOUT => Ok(Response::Logger(LoggerReply::from_data(&frame.data)?)),
            CID_LOG_TIME_PRESENT..=CID_LOG_TIME_PAST => {
                Ok(Response::Log(LogReply::from_data(frame.cid, &frame.data)?))
            }
            cid::GET_REGISTER => {
                let mut records = Vec::new();
                let mut rest = &frame.data[..];
                while !rest.is_empty() {
                    let (record, used) = RegisterRecord::parse(rest)?;
                    records.push(record);
                    rest = rest.get(used..).unwrap_or_default();
                }
                Ok(Response::Registers(records))
            }
            other => Err(Error::UnknownCid(other)),
        }
    }

    /// The complete wire bytes of the reply (meter side); `[0x06]` for [`Response::Ack`].
    pub fn encode(&self, destination: u8) -> Result<Vec<u8>, Error> {
        Ok(match self.to_frame(destination)? {
            Some(frame) => frame.emit(),
            None => alloc::vec![crate::physical::ACK],
        })
    }

    /// The reply frame; `None` for [`Response::Ack`], which is not a frame.
    pub fn to_frame(&self, destination: u8) -> Result<Option<Frame>, Error> {
        let (cid, data) = match self {
            Response::Type(t) => {
                let [hi, lo] = t.type_code.to_be_bytes();
                (
                    cid::GET_TYPE,
                    alloc::vec![hi, lo, t.revision.letter, t.revision.number],
                )
            }
            Response::SerialNo(n) => (cid::GET_SERIAL_NO, n.to_be_bytes().to_vec()),
            Response::EventStatus(bytes) => (cid::GET_EVENT_STATUS, bytes.to_vec()),
            Response::Logger(r) => (CID_LOGGER_READOUT, r.to_data()?),
            Response::Log(r) => (r.cid, r.to_data()?),
            Response::Registers(records) => {
                let mut data = Vec::with_capacity(records.len() * 9);
                for r in records {
                    r.encode_into(&mut data)?;
                }
                (cid::GET_REGISTER, data)
            }
            Response::Ack => return Ok(None),
        };
        Ok(Some(Frame {
            direction: Direction::FromMeter,
            destination,
            cid,
            data,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn revision_display() {
        let r = |letter, number| SoftwareRevision { letter, number }.to_string();
        assert_eq!(r(6, 1), "F1");
        assert_eq!(r(1, 12), "A12");
        assert_eq!(r(26, 0), "Z0");
        assert_eq!(r(0, 0), "n/a");
        assert_eq!(r(0, 5), "n/a");
        assert_eq!(r(27, 1), "#27.1");
    }

    #[test]
    fn register_count_limits() {
        assert_eq!(
            Request::GetRegister(Vec::new()).encode(0x3F),
            Err(Error::NoRegisters)
        );
        let nine: Vec<_> = (54..63).map(RegisterId).collect();
        assert_eq!(
            Request::GetRegister(nine).encode(0x3F),
            Err(Error::TooManyRegisters(9))
        );
    }

    #[test]
    fn wrong_direction_and_lengths() {
        let req = Request::GetType.to_frame(0x3F).unwrap();
        assert_eq!(
            Response::from_frame(&req),
            Err(Error::WrongDirection {
                expected: Direction::FromMeter
            })
        );
        let reply = Response::SerialNo(1).to_frame(0x3F).unwrap().unwrap();
        assert_eq!(
            Request::from_frame(&reply),
            Err(Error::WrongDirection {
                expected: Direction::ToMeter
            })
        );
        let short = Frame {
            direction: Direction::FromMeter,
            destination: 0x3F,
            cid: cid::GET_SERIAL_NO,
            data: alloc::vec![1, 2, 3],
        };
        assert_eq!(
            Response::from_frame(&short),
            Err(Error::UnexpectedLength { cid: 0x02, len: 3 })
        );
        let odd = Frame {
            direction: Direction::ToMeter,
            destination: 0x3F,
            cid: cid::GET_REGISTER,
            data: alloc::vec![2, 0, 60],
        };
        assert_eq!(
            Request::from_frame(&odd),
            Err(Error::UnexpectedLength { cid: 0x10, len: 3 })
        );
        let clock = Frame {
            direction: Direction::ToMeter,
            destination: 0x3F,
            cid: cid::SET_CLOCK,
            data: Vec::new(),
        };
        assert_eq!(
            Request::from_frame(&clock),
            Err(Error::UnexpectedLength { cid: 0x09, len: 0 })
        );
        let put = Frame {
            cid: cid::PUT_REGISTER,
            ..clock
        };
        assert_eq!(Request::from_frame(&put), Err(Error::UnknownCid(0x11)));
    }

    #[test]
    fn set_clock_round_trip() {
        let at = crate::CivilDateTime::new(2026, 12, 1, 9, 30, 0).unwrap();
        let request = Request::SetClock(ClockSetting { at });
        let wire = request.encode(0x3F).unwrap();
        assert_eq!(
            Request::from_frame(&Frame::parse(&wire).unwrap()),
            Ok(request)
        );
        // The meter acknowledges with the bare ACK byte.
        assert_eq!(Response::Ack.encode(0x3F).unwrap(), [0x06]);
    }

    #[test]
    fn ack_encoding() {
        assert_eq!(Response::Ack.encode(0x3F).unwrap(), [0x06]);
        assert_eq!(Response::Ack.to_frame(0x3F).unwrap(), None);
    }
}
