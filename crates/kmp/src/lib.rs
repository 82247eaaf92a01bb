//! The Kamstrup Meter Protocol (KMP) spoken by MULTICAL 30x/40x/60x heat meters on the optical
//! eye: bytes in, exact values out — no I/O, no clock, `no_std` with `alloc`.
//!
//! Layers, named after the protocol:
//! - [`physical`]: start bytes (0x80 to the meter, 0x40 from it), stop byte 0x0D, the bare ACK
//!   0x06 and byte stuffing (escape 0x1B, value XOR 0xFF), undone in a single pass.
//! - Data link: [`Frame`] = destination address, CID, data and a big-endian CRC-16/XMODEM
//!   ([`crc::crc16`]). [`Frame::parse`] checks one whole wire frame, [`Frame::emit`] builds one.
//! - Application: [`Request`] (GetType, GetSerialNo, GetRegister with 1..=8 ids, SetClock,
//!   GetEventStatus, the logger commands B8 and A0–A3) and [`Response`] (type, serial, register
//!   records, ACK, event status, logger replies), both ways so a simulator can use them.
//! - [`logger`]: the meter's own history (record ids, paging flags, column formats) and
//!   [`time`]: register 348's date-time with its DST offset, the log `Time`, SetClock's fields.
//! - Values: [`RegisterRecord`] with its [`Unit`] byte (kept raw when unknown) and an exact
//!   [`Decimal`] decoded from the sign-magnitude mantissa and power-of-ten exponent.
//! - [`decoder::Decoder`]: incremental receiver that skips garbage, reports echoed requests and
//!   ACKs, caps frame length at [`MAX_FRAME_LEN`] and recovers after every error.
//! - [`registers`]: the register catalogue (ids, names, typical units, models) as data.
//!
//! ```
//! use kamstrup_kmp::{
//!     decoder::{Decoder, Event}, Direction, Frame, RegisterId, Request, Response,
//!     DESTINATION_HEAT_METER,
//! };
//!
//! // Ask a heat meter for E1 (register 60).
//! let request = Request::GetRegister(vec![RegisterId(60)]);
//! let wire = request.encode(DESTINATION_HEAT_METER)?;
//! assert_eq!(wire, [0x80, 0x3F, 0x10, 0x01, 0x00, 0x3C, 0xB2, 0x5F, 0x0D]);
//! assert_eq!(Request::from_frame(&Frame::parse(&wire)?)?, request);
//!
//! // The meter's reply arrives byte by byte: E1 = 55.006 MWh.
//! let reply = [
//!     0x40, 0x3F, 0x10, 0x00, 0x3C, 0x03, 0x04, 0x43, 0x00, 0x00, 0xD6, 0xDE, 0x03, 0x22, 0x0D,
//! ];
//! let mut decoder = Decoder::new(Direction::FromMeter);
//! let mut found = None;
//! for byte in reply {
//!     if let Some(event) = decoder.feed(byte) {
//!         found = Some(event?);
//!     }
//! }
//! let Some(Event::Frame(frame)) = found else { panic!("no frame") };
//! let Response::Registers(records) = Response::from_frame(&frame)? else { panic!() };
//! assert_eq!(records[0].id, RegisterId(60));
//! assert_eq!(records[0].unit.to_string(), "MWh");
//! assert_eq!(records[0].value.to_string(), "55.006");
//! # Ok::<(), kamstrup_kmp::Error>(())
//! ```
//!
//! Features: `std` (default; implies `alloc`), `alloc` (the crate always links `alloc`, so the
//! feature only names that need), `serde` (derives `Serialize` on the value types).
//!
//! Fuzzing: when built with `cfg(fuzzing)` (cargo-fuzz sets it), [`Frame::parse`] ignores CRC
//! mismatches so fuzzers reach the application parsers. Normal builds always check the CRC.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod app;
pub mod crc;
pub mod decoder;
mod error;
mod frame;
pub mod logger;
pub mod physical;
mod record;
pub mod registers;
pub mod time;
mod unit;

pub use app::{MeterType, Request, Response, SoftwareRevision, MAX_REGISTERS_PER_REQUEST};
pub use error::Error;
pub use frame::{Direction, Frame, DESTINATION_HEAT_METER};
pub use kamstrup_decimal::Decimal;
pub use logger::{
    ColumnFormat, LogInfo, LogRecord, LogReply, LogRequest, LogSelector, LoggerConfig, LoggerInfo,
    LoggerRecords, LoggerReply, LoggerRequest, LoggerType,
};
pub use record::{
    decode_value, encode_value, RegisterId, RegisterRecord, MAX_VALUE_EXPONENT, MAX_VALUE_LEN,
};
pub use time::{CivilDateTime, ClockSetting, LogTime, MeterDateTime};
pub use unit::{Quantity, Unit};

/// Most wire bytes (start to stop, stuffing included) the [`decoder::Decoder`] collects for one
/// frame. A GetRegister reply of 8 records is at most 218 wire bytes, but a logger (B8) reply
/// has no documented size limit: a day of hourly records with 7 registers is ≈ 800 bytes before
/// stuffing. 2048 leaves room for such a reply while bounding memory on garbage.
pub const MAX_FRAME_LEN: usize = 2048;

/// KMP command ids (CID) this crate knows by name.
pub mod cid {
    /// Meter type and software revision.
    pub const GET_TYPE: u8 = 0x01;
    /// Serial number.
    pub const GET_SERIAL_NO: u8 = 0x02;
    /// Set the meter clock (reply: bare ACK). A write: never sent unless a user asks.
    pub const SET_CLOCK: u8 = 0x09;
    /// Read up to 8 registers.
    pub const GET_REGISTER: u8 = 0x10;
    /// Write a register (layout unverified). Not encoded by this crate.
    pub const PUT_REGISTER: u8 = 0x11;
    /// The four event-status bytes of a logger module.
    pub const GET_EVENT_STATUS: u8 = 0x9B;
    /// Logger readout (MULTICAL 303/403/603).
    pub const LOGGER_READOUT: u8 = crate::logger::CID_LOGGER_READOUT;
    /// Log records from a time, ascending.
    pub const GET_LOG_TIME_PRESENT: u8 = crate::logger::CID_LOG_TIME_PRESENT;
    /// Log records after the last-read mark, ascending.
    pub const GET_LOG_LAST_PRESENT: u8 = crate::logger::CID_LOG_LAST_PRESENT;
    /// Log records from a record id, ascending.
    pub const GET_LOG_ID_PRESENT: u8 = crate::logger::CID_LOG_ID_PRESENT;
    /// Log records before a time, descending.
    pub const GET_LOG_TIME_PAST: u8 = crate::logger::CID_LOG_TIME_PAST;
}
