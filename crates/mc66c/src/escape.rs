//! The C-style escaped text form of raw replies used by the vectors file and by logs:
//! `\r`, `\n`, `\xNN` (and `\\`); every other byte is literal printable ASCII.

use core::fmt;

#[cfg(feature = "alloc")]
use alloc::{string::String, vec::Vec};

#[cfg(feature = "alloc")]
use crate::error::{Error, EscapeProblem};

/// Displays bytes in escaped form inside error messages: `\r`, `\n`, `\\`, `\"` and `\xNN`
/// (lower-case hex) for everything outside printable ASCII.
pub(crate) struct Escaped<'a>(pub(crate) &'a [u8]);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.0, Style::Quoted)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    /// Inside double quotes: backslash and quote are escaped by a backslash.
    Quoted,
    /// As in `mc66c.tsv`: the backslash is written `\x5c`, the quote is literal.
    #[cfg_attr(not(feature = "alloc"), allow(dead_code))]
    Vectors,
}

fn write_escaped(w: &mut dyn fmt::Write, bytes: &[u8], style: Style) -> fmt::Result {
    for &b in bytes {
        match b {
            b'\r' => w.write_str("\\r")?,
            b'\n' => w.write_str("\\n")?,
            b'\\' if style == Style::Quoted => w.write_str("\\\\")?,
            b'"' if style == Style::Quoted => w.write_str("\\\"")?,
            0x20..=0x7e if b != b'\\' => w.write_char(char::from(b))?,
            _ => write!(w, "\\x{b:02x}")?,
        }
    }
    Ok(())
}

/// Writes `bytes` in the escaped form of the vectors file (`\r`, `\n`, `\xNN` for every other
/// control byte, byte ≥ 0x7F and the backslash itself); [`unescape`] reverses it.
///
/// ```
/// assert_eq!(kamstrup_mc66c::escape(b"'n\\950 \r"), "'n\\x5c950 \\r");
/// ```
#[cfg(feature = "alloc")]
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    // Writing into a String cannot fail.
    let _ = write_escaped(&mut out, bytes, Style::Vectors);
    out
}

/// Decodes escaped text into bytes.
///
/// Accepts `\r`, `\n`, `\t`, `\0`, `\\`, `\"`, `\'` and `\xNN` (two hex digits, either case);
/// every other character must be literal ASCII. Anything else is an [`Error::Escape`] naming
/// the 0-based character offset and the problem.
///
/// ```
/// let bytes = kamstrup_mc66c::unescape(r"\x020.0(1)\r\n\x5c").unwrap();
/// assert_eq!(bytes, b"\x020.0(1)\r\n\\");
/// ```
#[cfg(feature = "alloc")]
pub fn unescape(text: &str) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(text.len());
    let mut chars = text.chars().enumerate();
    while let Some((offset, c)) = chars.next() {
        if c != '\\' {
            let b = u8::try_from(c)
                .ok()
                .filter(u8::is_ascii)
                .ok_or(Error::Escape {
                    offset,
                    problem: EscapeProblem::NonAscii(c),
                })?;
            out.push(b);
            continue;
        }
        let Some((_, e)) = chars.next() else {
            return Err(Error::Escape {
                offset,
                problem: EscapeProblem::Dangling,
            });
        };
        let b = match e {
            'r' => b'\r',
            'n' => b'\n',
            't' => b'\t',
            '0' => 0,
            '\\' => b'\\',
            '"' => b'"',
            '\'' => b'\'',
            'x' => {
                let hi = chars.next().and_then(|(_, c)| c.to_digit(16));
                let lo = chars.next().and_then(|(_, c)| c.to_digit(16));
                match (hi, lo) {
                    // Two hex digits are at most 0xff, so the conversion cannot fail.
                    (Some(h), Some(l)) => u8::try_from(h * 16 + l).unwrap_or(0),
                    _ => {
                        return Err(Error::Escape {
                            offset,
                            problem: EscapeProblem::BadHex,
                        })
                    }
                }
            }
            other => {
                return Err(Error::Escape {
                    offset,
                    problem: EscapeProblem::Unknown(other),
                })
            }
        };
        out.push(b);
    }
    Ok(out)
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::*;

    #[test]
    fn round_trip_all_bytes() {
        let all: Vec<u8> = (0..=255u8).collect();
        assert_eq!(unescape(&escape(&all)).unwrap(), all);
    }

    #[test]
    fn quoted_style_reads_back() {
        let all: Vec<u8> = (0..=255u8).collect();
        let text = alloc::format!("{}", Escaped(&all));
        assert_eq!(unescape(&text).unwrap(), all);
    }

    #[test]
    fn bad_escapes_are_typed() {
        assert_eq!(
            unescape("ab\\").unwrap_err(),
            Error::Escape {
                offset: 2,
                problem: EscapeProblem::Dangling
            }
        );
        assert_eq!(
            unescape("\\q").unwrap_err(),
            Error::Escape {
                offset: 0,
                problem: EscapeProblem::Unknown('q')
            }
        );
        assert_eq!(
            unescape("x\\x4").unwrap_err(),
            Error::Escape {
                offset: 1,
                problem: EscapeProblem::BadHex
            }
        );
        assert_eq!(
            unescape("x\\xg0").unwrap_err().kind(),
            "escape",
            "non-hex digit"
        );
        assert_eq!(
            unescape("m³").unwrap_err(),
            Error::Escape {
                offset: 1,
                problem: EscapeProblem::NonAscii('³')
            }
        );
    }
}
