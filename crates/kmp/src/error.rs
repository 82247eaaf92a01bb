//! Typed errors for every KMP layer (physical, data link, application, values).
//! `Error::kind` gives the short stable name that machine-readable outputs use.

use crate::Direction;

/// Everything that can go wrong while encoding or decoding KMP bytes.
///
/// Offsets in [`Error::Stuffing`] count bytes of the slice that was handed to the function that
/// reported it (for [`crate::Frame::parse`]: the whole wire frame, start byte at offset 0).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The CRC carried by the frame does not match its content.
    ///
    /// `expected` is the CRC computed over destination, CID and data; `actual` is the value found
    /// on the wire (so `expected: 0xE956, actual: 0xE957` for a corrupted last byte).
    #[error("CRC mismatch: frame carries {actual:#06X}, content gives {expected:#06X}")]
    Crc {
        /// CRC-16/XMODEM computed over the received destination, CID and data.
        expected: u16,
        /// CRC transmitted in the frame.
        actual: u16,
    },
    /// Byte stuffing is broken: an escape (0x1B) followed by a byte that does not encode a
    /// reserved value, an escape at the very end, or a reserved byte sent without escape.
    ///
    /// `offset` is the position of the offending escape (or raw reserved byte); `byte` is the
    /// byte after the escape (0x1B itself for a trailing escape), or the raw reserved byte.
    #[error("bad byte stuffing at offset {offset}: {byte:#04X}")]
    Stuffing {
        /// Position of the escape byte or raw reserved byte.
        offset: usize,
        /// The byte that made the sequence invalid.
        byte: u8,
    },
    /// Fewer bytes than the structure needs, or a frame cut off by the next start byte.
    #[error("truncated {what}: {len} bytes")]
    Truncated {
        /// What was cut short: `"frame"`, `"data-link frame"`, `"register record"`.
        what: &'static str,
        /// How many bytes there were.
        len: usize,
    },
    /// The first byte is neither 0x80 (to meter) nor 0x40 (from meter).
    #[error("bad start byte {0:#04X}")]
    BadStart(u8),
    /// The frame does not end with the stop byte 0x0D.
    #[error("missing stop byte 0x0D")]
    MissingStop,
    /// More wire bytes than [`crate::MAX_FRAME_LEN`] without a stop byte.
    #[error("frame longer than {max} bytes")]
    FrameTooLong {
        /// The limit that was exceeded.
        max: usize,
    },
    /// A request was handed where a response was expected, or the other way round.
    #[error("frame goes the wrong way: expected {expected:?}")]
    WrongDirection {
        /// The direction the caller needed.
        expected: Direction,
    },
    /// A command id this crate does not decode (unknown, or known but unsupported).
    #[error("unknown or unsupported CID {0:#04X}")]
    UnknownCid(u8),
    /// A GetRegister request names more than [`crate::MAX_REGISTERS_PER_REQUEST`] registers.
    #[error("{0} registers in one request; at most 8 allowed")]
    TooManyRegisters(usize),
    /// A GetRegister request names no register.
    #[error("GetRegister request without registers")]
    NoRegisters,
    /// A register record's mantissa length is outside 1..=8.
    #[error("register {register}: value length {len} outside 1..=8")]
    ValueLength {
        /// The register id of the record.
        register: u16,
        /// The length byte found.
        len: u8,
    },
    /// A value's exponent is outside the ±63 that KMP can carry.
    #[error("exponent {0} outside -63..=63")]
    ExponentRange(i16),
    /// A value's mantissa does not fit in the 8 bytes KMP can carry.
    #[error("register {register}: mantissa does not fit in 8 bytes")]
    MantissaRange {
        /// The register id of the record.
        register: u16,
    },
    /// A command with sub-commands (B8) names one this crate does not know.
    #[error("CID {cid:#04X}: unknown sub-command {sub:#04X}")]
    UnknownSubCommand {
        /// Command id.
        cid: u8,
        /// The sub-command byte.
        sub: u8,
    },
    /// A B8 logger type outside the known 0..=9.
    #[error("unknown logger type {0}")]
    UnknownLogger(u8),
    /// The command data goes on after its last field.
    #[error("CID {cid:#04X}: {count} trailing bytes after the command data")]
    TrailingBytes {
        /// Command id.
        cid: u8,
        /// Bytes left over.
        count: usize,
    },
    /// The command data is internally inconsistent (ids, counts, columns).
    #[error("CID {cid:#04X}: {what}")]
    Malformed {
        /// Command id.
        cid: u8,
        /// What does not fit.
        what: &'static str,
    },
    /// A logged value does not fit the format of its column (register, unit, exponent, sign or
    /// length).
    #[error("register {register}: value does not fit its logger column")]
    ColumnMismatch {
        /// The register id.
        register: u16,
    },
    /// A date or time field is impossible (month 13, 24:00, 30 February, a year off the wire).
    #[error("impossible date or time: bad {what}")]
    BadDateTime {
        /// Which field.
        what: &'static str,
    },
    /// The command data has a length that does not fit the command.
    #[error("CID {cid:#04X}: unexpected data length {len}")]
    UnexpectedLength {
        /// Command id of the frame.
        cid: u8,
        /// Length of its data.
        len: usize,
    },
}

impl Error {
    /// Stable short machine name of the error family, as used in JSON output:
    /// `"crc"`, `"stuffing"`, `"truncated"`, `"framing"`, `"protocol"` or `"value"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Crc { .. } => "crc",
            Error::Stuffing { .. } => "stuffing",
            Error::Truncated { .. } => "truncated",
            Error::BadStart(_)
            | Error::MissingStop
            | Error::FrameTooLong { .. }
            | Error::WrongDirection { .. } => "framing",
            Error::UnknownCid(_)
            | Error::TooManyRegisters(_)
            | Error::NoRegisters
            | Error::UnexpectedLength { .. }
            | Error::UnknownSubCommand { .. }
            | Error::UnknownLogger(_)
            | Error::TrailingBytes { .. }
            | Error::Malformed { .. } => "protocol",
            Error::ValueLength { .. }
            | Error::ExponentRange(_)
            | Error::MantissaRange { .. }
            | Error::ColumnMismatch { .. }
            | Error::BadDateTime { .. } => "value",
        }
    }
}
