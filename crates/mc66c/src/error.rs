//! The one error type of this crate, with a stable short `kind()` name per failure.
//! Messages quote the offending bytes (escaped) so a log line alone explains a rejection.

use core::fmt;

use crate::request::DataSet;

/// A short copy of offending input bytes, kept inline so errors need no allocation.
///
/// Displayed in double quotes with the escapes of [`crate::escape`]: `\r`, `\n`, `\\`, `\"`
/// and `\xNN` for every other byte outside printable ASCII. Input longer than the capacity is
/// cut and marked with `...` after the closing quote.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Snippet {
    bytes: [u8; Snippet::CAPACITY],
    len: u8,
    cut: bool,
}

impl Snippet {
    /// How many bytes a snippet keeps.
    pub const CAPACITY: usize = 24;

    /// Copies up to [`Snippet::CAPACITY`] bytes of `bytes`.
    pub fn new(bytes: &[u8]) -> Self {
        let mut out = [0u8; Self::CAPACITY];
        let n = bytes.len().min(Self::CAPACITY);
        for (dst, src) in out.iter_mut().zip(bytes.iter()) {
            *dst = *src;
        }
        Snippet {
            bytes: out,
            // n <= CAPACITY (24), so it always fits a u8.
            len: u8::try_from(n).unwrap_or(u8::MAX),
            cut: bytes.len() > Self::CAPACITY,
        }
    }

    /// The bytes kept.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// True if the original input was longer than what is kept.
    pub fn is_cut(&self) -> bool {
        self.cut
    }
}

impl fmt::Display for Snippet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", crate::escape::Escaped(self.as_bytes()))?;
        if self.cut {
            f.write_str("...")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Snippet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// What was wrong with a fixed-width field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldProblem {
    /// Characters other than digits (and a leading `-` where allowed).
    NotDigits,
    /// Only digits, but the wrong number of them.
    Width {
        /// Characters found.
        found: usize,
    },
    /// A `-` sign in a field that is never negative (customer number, dates, configuration).
    Negative,
}

/// Why an escaped text could not be turned into bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EscapeProblem {
    /// A backslash at the very end of the text.
    Dangling,
    /// A backslash followed by a character that is not a known escape.
    Unknown(char),
    /// `\x` not followed by two hex digits.
    BadHex,
    /// A literal character outside ASCII; such bytes must be written `\xNN`.
    NonAscii(char),
}

impl fmt::Display for EscapeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EscapeProblem::Dangling => f.write_str("a lone backslash ends the text"),
            EscapeProblem::Unknown(c) => write!(
                f,
                "unknown escape \\{c} (known: \\r \\n \\t \\0 \\\\ \\\" \\' \\xNN)"
            ),
            EscapeProblem::BadHex => f.write_str("\\x must be followed by two hex digits"),
            EscapeProblem::NonAscii(c) => {
                write!(f, "literal non-ASCII character {c:?}; write bytes as \\xNN")
            }
        }
    }
}

/// Every failure of this crate: reading, parsing, scaling, formatting.
///
/// [`Error::kind`] gives a stable short name for machine output (JSON); the `Display` text is
/// for people and says exactly what was wrong. Field positions in messages are 1-based
/// ("field 1 (energy)" is the first field of the line).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Nothing but line ends (or nothing at all) was received.
    #[error("empty reply")]
    Empty,

    /// The reply stopped before its end marker (CR for "/#n", ETX + BCC for the readout).
    #[error("reply truncated after {received} bytes: {what}")]
    Truncated {
        /// Bytes received.
        received: usize,
        /// What was missing.
        what: &'static str,
    },

    /// More bytes than any valid reply of this kind can have.
    #[error("reply longer than {max} bytes without its end marker")]
    TooLong {
        /// The cap that was exceeded.
        max: usize,
    },

    /// A single-line reply contained a line break before its end, or a multi-line reply had the
    /// wrong number of lines.
    #[error("{data_set} reply has {found} lines, expected {expected}")]
    Lines {
        /// The request the reply answers.
        data_set: DataSet,
        /// Lines expected.
        expected: usize,
        /// Lines found.
        found: usize,
    },

    /// Wrong number of space-separated fields.
    #[error("{}{data_set} reply has {found} fields, expected {expected}{}", LinePrefix(*line), count_hint(*found, *expected))]
    Fields {
        /// 1-based line number in a multi-line reply; 0 for a single-line reply.
        line: usize,
        /// The request the reply answers.
        data_set: DataSet,
        /// Fields expected.
        expected: usize,
        /// Fields found.
        found: usize,
    },

    /// The expected fields are all there and well-formed, but junk tokens precede them.
    #[error(
        "{data_set} reply starts with {extra} garbage token(s) {first} before {expected} valid \
         fields — bytes decoded at the wrong baud rate before the switch"
    )]
    GarbagePrefix {
        /// The request the reply answers.
        data_set: DataSet,
        /// Number of leading junk tokens.
        extra: usize,
        /// The first junk token.
        first: Snippet,
        /// Fields expected (and found after the junk).
        expected: usize,
    },

    /// A field has the wrong width or characters.
    #[error(
        "{}field {position} ({name}) is {token}: {}{}",
        LinePrefix(*line),
        problem_text(*problem, *width),
        if *position == 1 { " — the start of the reply is corrupt, typical of a late baud switch" } else { "" }
    )]
    FieldFormat {
        /// 1-based line number in a multi-line reply; 0 for a single-line reply.
        line: usize,
        /// 1-based position in the line.
        position: usize,
        /// Field name.
        name: &'static str,
        /// The token as received.
        token: Snippet,
        /// Expected width in characters.
        width: usize,
        /// What is wrong.
        problem: FieldProblem,
    },

    /// A well-formed field whose value is impossible (negative counter, month 13, ...).
    #[error("{}field {position} ({name}) is {value}: {reason}", LinePrefix(*line))]
    FieldValue {
        /// 1-based line number in a multi-line reply; 0 for a single-line reply.
        line: usize,
        /// 1-based position in the line.
        position: usize,
        /// Field name.
        name: &'static str,
        /// The raw value.
        value: i64,
        /// Why it is impossible.
        reason: &'static str,
    },

    /// T1 − T2 differs from the ΔT field, which every real reply satisfies exactly.
    #[error(
        "t1 − t2 = {t1} − {t2} = {} but the dt field is {dt} (raw hundredths) — the reply is corrupt",
        i64::wrapping_sub(*t1, *t2)
    )]
    DtMismatch {
        /// Raw T1.
        t1: i64,
        /// Raw T2.
        t2: i64,
        /// Raw ΔT.
        dt: i64,
    },

    /// The EN 61107 identification line is malformed.
    #[error("bad identification line {line}: {reason}")]
    Ident {
        /// The line as received.
        line: Snippet,
        /// What is wrong.
        reason: &'static str,
    },

    /// The EN 61107 frame structure (STX, `!`, ETX, BCC) is wrong.
    #[error("bad readout frame at byte {offset}: {reason}")]
    Framing {
        /// Byte offset into the reply.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },

    /// An EN 61107 data register is malformed.
    #[error("readout register {index} {text}: {reason}")]
    Register {
        /// 1-based register number.
        index: usize,
        /// The register text.
        text: Snippet,
        /// What is wrong.
        reason: &'static str,
    },

    /// The EN 61107 block check character does not match.
    #[error(
        "BCC mismatch: frame carries 0x{found:02x}, 7-bit sum of the bytes after STX up to ETX \
         is 0x{computed:02x}"
    )]
    Bcc {
        /// BCC computed over the received bytes.
        computed: u8,
        /// BCC byte received.
        found: u8,
    },

    /// A program number (A-B-CCC) that cannot be read.
    #[error("bad program number {text}: {reason}")]
    Program {
        /// The text given.
        text: Snippet,
        /// What is wrong.
        reason: &'static str,
    },

    /// Program digit B is not one of 2 (GJ), 3 (kWh), 4 (MWh), 5 (Gcal).
    #[error("energy unit digit B = {0} is unknown (2 = GJ, 3 = kWh, 4 = MWh, 5 = Gcal)")]
    EnergyUnit(u8),

    /// The CCC code is known but the TD lists no display resolution for this energy unit.
    #[error("CCC {ccc} has no {unit} resolution in the TD table (the meter cannot be set up so)")]
    UnitNotAvailable {
        /// The flow-meter code.
        ccc: u16,
        /// The energy unit symbol.
        unit: &'static str,
    },

    /// A value cannot be represented (formatting) or scaled.
    #[error("{name} = {value} does not fit: {reason}")]
    ValueRange {
        /// The value's name.
        name: &'static str,
        /// The value.
        value: i64,
        /// Why it does not fit.
        reason: &'static str,
    },

    /// A request code that is not one of 1–9, B, C, D, J.
    #[error("unknown request {0}: expected one of 1-9, B, C, D, J or ?!")]
    UnknownRequest(Snippet),

    /// Escaped text (as in the vectors file) that cannot be decoded.
    #[error("bad escape at character {offset}: {problem}")]
    Escape {
        /// 0-based character offset of the backslash (or the bad character).
        offset: usize,
        /// What is wrong.
        problem: EscapeProblem,
    },
}

/// "line N: " for multi-line replies, nothing for single-line ones.
struct LinePrefix(usize);

impl fmt::Display for LinePrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 > 0 {
            write!(f, "line {}: ", self.0)?;
        }
        Ok(())
    }
}

fn count_hint(found: usize, expected: usize) -> &'static str {
    if found < expected {
        " — only part of the reply arrived (its start lost at the baud switch, or cut short)"
    } else {
        " — extra or split tokens"
    }
}

struct ProblemText(FieldProblem, usize);

impl fmt::Display for ProblemText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            FieldProblem::NotDigits if self.1 == 7 => {
                f.write_str("not 7 digits (nor '-' and 6 digits)")
            }
            FieldProblem::NotDigits => write!(f, "not {} digits", self.1),
            FieldProblem::Width { found } => write!(f, "{found} characters, expected {}", self.1),
            FieldProblem::Negative => f.write_str("negative, but this field never is"),
        }
    }
}

fn problem_text(problem: FieldProblem, width: usize) -> ProblemText {
    ProblemText(problem, width)
}

impl Error {
    /// The same error, located at 1-based `line` of a multi-line reply (for the field errors).
    #[cfg(feature = "alloc")]
    pub(crate) fn at_line(mut self, n: usize) -> Error {
        match &mut self {
            Error::Fields { line, .. }
            | Error::FieldFormat { line, .. }
            | Error::FieldValue { line, .. } => *line = n,
            _ => {}
        }
        self
    }

    /// Stable short name of the failure, for JSON output and metrics labels.
    ///
    /// One of `empty`, `truncated`, `too-long`, `lines`, `fields`, `garbage-prefix`,
    /// `field-format`, `field-value`, `dt-mismatch`, `ident`, `framing`, `register`, `bcc`,
    /// `program`, `energy-unit`, `unit-not-available`, `value-range`, `unknown-request`,
    /// `escape`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Empty => "empty",
            Error::Truncated { .. } => "truncated",
            Error::TooLong { .. } => "too-long",
            Error::Lines { .. } => "lines",
            Error::Fields { .. } => "fields",
            Error::GarbagePrefix { .. } => "garbage-prefix",
            Error::FieldFormat { .. } => "field-format",
            Error::FieldValue { .. } => "field-value",
            Error::DtMismatch { .. } => "dt-mismatch",
            Error::Ident { .. } => "ident",
            Error::Framing { .. } => "framing",
            Error::Register { .. } => "register",
            Error::Bcc { .. } => "bcc",
            Error::Program { .. } => "program",
            Error::EnergyUnit(_) => "energy-unit",
            Error::UnitNotAvailable { .. } => "unit-not-available",
            Error::ValueRange { .. } => "value-range",
            Error::UnknownRequest(_) => "unknown-request",
            Error::Escape { .. } => "escape",
        }
    }
}
