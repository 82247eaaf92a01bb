//! Sans-I/O protocol for the Kamstrup MULTICAL 66C family (66-C/D/E; 66-B and 401 variants):
//! the ASCII "/#n" exchange and the EN 61107 "/?!" readout, with exact scaled values.
//!
//! No I/O and no clock: the caller owns the serial port and the timers. The crate gives
//!
//! - [`Request`]: the request bytes (`/#1`, `/?!`, optional CR / CR LF) and, in [`timing`],
//!   the line settings and timeouts the link layer must apply (300 Bd 7E2 out, 1200 Bd 7E1 in,
//!   ~3.5 s reply deadline, ≥ 5 s between retries, at most 3 retries);
//! - [`ReplyReader`] (feature `alloc`): feed received bytes one at a time; it says when a reply
//!   is complete (CR, N lines, caller-detected idle, or ETX + BCC);
//! - strict parsers: the seven single-line [`Record`]s [`StandardData1`] (`/#1`, with the
//!   T1 − T2 = ΔT check), [`StandardData2`], [`TargetData`], [`VerificationData`],
//!   [`CurrentCounts`], [`Instantaneous`], [`ProgrammingData`]; the multi-line [`MonthlyData`],
//!   [`Logger`] (`/#6`–`/#9`), [`InfoEvent`] and raw [`parse_lines`]; the EN 61107 [`Readout`].
//!   Replies are rejected, never salvaged, with an [`Error`] whose [`Error::kind`] is a stable
//!   short name. Every record gives its [`Field`]s: exact values with units, dates, codes;
//! - scaling: [`ProgramNumber`] (A-B-CCC) → [`Scaling`] through the TD's [`CCC_TABLE`], then
//!   exact [`Value`]s (`kamstrup_decimal::Decimal` + [`Unit`]), never floating point;
//! - info codes decoded to named bits for the 66-CDE and 66-B tables ([`InfoCode`]);
//! - formatting of every single-line reply and of the readout (with BCC), for a meter simulator;
//! - [`unescape`] / [`escape`] for the `\r`, `\n`, `\xNN` text form of raw replies.
//!
//! ```
//! use kamstrup_mc66c::{ProgramNumber, Record, Scaling, StandardData1};
//!
//! // KenanV's meter (program 4-4-119), reply to "/#1".
//! let reply = b"0507109 1296626 0032673 0006811 0003366 0003445 0000031 0000079 0000093 0000000 \r";
//! let data = StandardData1::parse(reply).unwrap();
//! let program: ProgramNumber = "4-4-119".parse().unwrap();
//! let scaling = Scaling::resolve(&program).unwrap().known().unwrap();
//! let values = data.values(&scaling).unwrap();
//! assert_eq!(values[0].to_string(), "energy=507.109 MWh");
//! assert_eq!(values[1].to_string(), "volume=12966.26 m³");
//! assert_eq!(values[7].to_string(), "flow=79 l/h");
//! ```
//!
//! # Features
//!
//! - `alloc`: the reply reader, multi-line parsing, reply formatting, escapes.
//! - `std` (default): implies `alloc`.
//!
//! # Fuzzing
//!
//! Under `cfg(fuzzing)` the readout BCC check always passes so that a fuzzer reaches the
//! register parsing.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;

mod data;
mod error;
mod escape;
mod field;
mod info;
mod line;
#[cfg(feature = "alloc")]
mod log;
mod reader;
mod readout;
mod request;
mod scaling;

pub use data::{
    Config, CurrentCounts, Instantaneous, MeterDate, MeterTime, MonthDay, ProgrammingData,
    ProgrammingParts, Record, StandardData1, StandardData2, TargetData, VerificationData,
};
pub use error::{Error, EscapeProblem, FieldProblem, Snippet};
#[cfg(feature = "alloc")]
pub use escape::{escape, unescape};
pub use field::{Field, Meaning};
pub use info::{InfoCode, InfoDescription, InfoFlag, InfoTable, MC66B_INFO, MC66CDE_INFO};
#[cfg(feature = "alloc")]
pub use log::{
    field_names, parse_lines, InfoEvent, LogLine, LogReply, LogToken, Logger, LoggerRecord,
    MonthlyData, MonthlyRecord,
};
pub use reader::{Expect, ReadoutStage, MAX_LINE_LEN, MAX_MULTILINE_LEN, MAX_READOUT_LEN};
#[cfg(feature = "alloc")]
pub use reader::{RawReply, ReplyReader};
pub use readout::{bcc, Ident, Readout, Register, Registers};
#[cfg(feature = "alloc")]
pub use readout::{display_digits, emit_readout, Mc66cReadout};
pub use request::{timing, DataSet, LineSettings, Parity, Request, Terminator, READOUT_ACK};
pub use scaling::{
    ccc_row, CccCode, CccRow, EnergyUnit, FlowMeterPosition, FlowUnit, PowerUnit, ProgramNumber,
    Provenance, Resolution, Scaling, Unit, Value, CCC_TABLE,
};

/// Any parsed "/#n" reply.
#[cfg(feature = "alloc")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `/#1`.
    Standard1(StandardData1),
    /// `/#2`.
    Standard2(StandardData2),
    /// `/#3`.
    Target(TargetData),
    /// `/#4`.
    Verification(VerificationData),
    /// `/#5`.
    Monthly(MonthlyData),
    /// `/#B`.
    CurrentCounts(CurrentCounts),
    /// `/#C`.
    Instantaneous(Instantaneous),
    /// `/#D`.
    Programming(ProgrammingData),
    /// `/#J`.
    InfoLog(alloc::vec::Vec<InfoEvent>),
    /// `/#6`–`/#9`: logger records in the TD layouts.
    Logger(Logger),
}

#[cfg(feature = "alloc")]
impl Reply {
    /// Parses the reply to a `/#n` request with the parser for its data set.
    pub fn parse(data_set: DataSet, reply: &[u8]) -> Result<Reply, Error> {
        Ok(match data_set {
            DataSet::Standard1 => Reply::Standard1(StandardData1::parse(reply)?),
            DataSet::Standard2 => Reply::Standard2(StandardData2::parse(reply)?),
            DataSet::Target => Reply::Target(TargetData::parse(reply)?),
            DataSet::Verification => Reply::Verification(VerificationData::parse(reply)?),
            DataSet::Monthly => Reply::Monthly(MonthlyData::parse(reply)?),
            DataSet::CurrentCounts => Reply::CurrentCounts(CurrentCounts::parse(reply)?),
            DataSet::Instantaneous => Reply::Instantaneous(Instantaneous::parse(reply)?),
            DataSet::Programming => Reply::Programming(ProgrammingData::parse(reply)?),
            DataSet::InfoLog => Reply::InfoLog(InfoEvent::parse_all(reply)?),
            DataSet::DailyLog | DataSet::HourlyLog | DataSet::MonthlyLog | DataSet::YearlyLog => {
                Reply::Logger(Logger::parse(data_set, reply)?)
            }
        })
    }

    /// The program number, if this reply carries one (`/#2`, `/#D`).
    pub fn program(&self) -> Option<ProgramNumber> {
        match self {
            Reply::Standard2(d) => Some(d.program()),
            Reply::Programming(d) => Some(d.program()),
            _ => None,
        }
    }
}
