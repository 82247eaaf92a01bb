//! Serial line settings (baud rate and character format) and the wire-time arithmetic
//! derived from them; parsing and printing in the usual "1200 8N2" notation.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::error::LinkError;

/// Number of data bits per character.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataBits {
    /// 7 data bits (MULTICAL 66C).
    Seven,
    /// 8 data bits (KMP).
    Eight,
}

impl DataBits {
    /// The number of bits.
    pub const fn count(self) -> u32 {
        match self {
            DataBits::Seven => 7,
            DataBits::Eight => 8,
        }
    }
}

/// Parity bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Parity {
    /// No parity bit.
    None,
    /// Even parity.
    Even,
    /// Odd parity.
    Odd,
}

impl Parity {
    /// The letter used in "8N2" notation.
    pub const fn letter(self) -> char {
        match self {
            Parity::None => 'N',
            Parity::Even => 'E',
            Parity::Odd => 'O',
        }
    }
}

/// Number of stop bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StopBits {
    /// One stop bit.
    One,
    /// Two stop bits.
    Two,
}

impl StopBits {
    /// The number of bits.
    pub const fn count(self) -> u32 {
        match self {
            StopBits::One => 1,
            StopBits::Two => 2,
        }
    }
}

/// Baud rate and character format of an asynchronous serial line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LineSettings {
    /// Bits per second.
    pub baud: u32,
    /// Data bits per character.
    pub data_bits: DataBits,
    /// Parity.
    pub parity: Parity,
    /// Stop bits.
    pub stop_bits: StopBits,
}

impl LineSettings {
    /// KMP on the optical eye: 1200 baud, 8 data bits, no parity, 2 stop bits.
    pub const KMP: LineSettings = LineSettings {
        baud: 1200,
        data_bits: DataBits::Eight,
        parity: Parity::None,
        stop_bits: StopBits::Two,
    };

    /// MULTICAL 66C request direction: 300 baud 7E2 (the meter's technical description).
    pub const MC66C_REQUEST: LineSettings = LineSettings {
        baud: 300,
        data_bits: DataBits::Seven,
        parity: Parity::Even,
        stop_bits: StopBits::Two,
    };

    /// MULTICAL 66C reply direction: 1200 baud 7E1 (receivable in every field report; a
    /// receiver set to one stop bit also accepts two).
    pub const MC66C_REPLY: LineSettings = LineSettings {
        baud: 1200,
        data_bits: DataBits::Seven,
        parity: Parity::Even,
        stop_bits: StopBits::One,
    };

    /// Builds settings from their parts.
    pub const fn new(baud: u32, data_bits: DataBits, parity: Parity, stop_bits: StopBits) -> Self {
        LineSettings {
            baud,
            data_bits,
            parity,
            stop_bits,
        }
    }

    /// Bits on the wire per character: start bit + data bits + parity bit + stop bits.
    pub const fn bits_per_char(&self) -> u32 {
        let parity = match self.parity {
            Parity::None => 0,
            Parity::Even | Parity::Odd => 1,
        };
        1 + self.data_bits.count() + parity + self.stop_bits.count()
    }

    /// Time one character occupies on the wire (zero for a baud rate of 0).
    pub fn char_time(&self) -> Duration {
        self.air_time(1)
    }

    /// Time `bytes` back-to-back characters occupy on the wire (zero for a baud rate of 0).
    pub fn air_time(&self, bytes: usize) -> Duration {
        if self.baud == 0 {
            return Duration::ZERO;
        }
        // Whole-call arithmetic in nanoseconds avoids accumulating per-byte rounding.
        let bits = u128::from(self.bits_per_char()).saturating_mul(bytes as u128);
        let nanos = bits.saturating_mul(1_000_000_000) / u128::from(self.baud);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

impl fmt::Display for LineSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}{}{}",
            self.baud,
            self.data_bits.count(),
            self.parity.letter(),
            self.stop_bits.count()
        )
    }
}

impl FromStr for LineSettings {
    type Err = LinkError;

    /// Parses "1200 8N2", "1200,8N2", "1200-8n2" or "300 7E2" (case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: String| {
            LinkError::BadSettings(format!(
                "bad line settings '{s}': {why} (expected BAUD DATA-PARITY-STOP like \"1200 8N2\" or \"300 7E2\")"
            ))
        };
        let trimmed = s.trim();
        if trimmed.is_empty() {
            return Err(bad("empty".into()));
        }
        let mut parts = trimmed
            .split(|c: char| c == ',' || c == '-' || c == '/' || c.is_whitespace())
            .filter(|p| !p.is_empty());
        let (Some(baud_text), Some(format_text), None) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("need exactly two parts".into()));
        };
        let baud: u32 = baud_text
            .parse()
            .map_err(|_| bad(format!("baud rate '{baud_text}' is not a number")))?;
        if baud == 0 {
            return Err(bad("baud rate must be above 0".into()));
        }
        let chars: Vec<char> = format_text.chars().collect();
        let [d, p, st] = chars.as_slice() else {
            return Err(bad(format!(
                "character format '{format_text}' must be three characters"
            )));
        };
        let data_bits = match d {
            '7' => DataBits::Seven,
            '8' => DataBits::Eight,
            other => return Err(bad(format!("data bits '{other}' must be 7 or 8"))),
        };
        let parity = match p.to_ascii_uppercase() {
            'N' => Parity::None,
            'E' => Parity::Even,
            'O' => Parity::Odd,
            other => return Err(bad(format!("parity '{other}' must be N, E or O"))),
        };
        let stop_bits = match st {
            '1' => StopBits::One,
            '2' => StopBits::Two,
            other => return Err(bad(format!("stop bits '{other}' must be 1 or 2"))),
        };
        Ok(LineSettings {
            baud,
            data_bits,
            parity,
            stop_bits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_bits() {
        assert_eq!(LineSettings::KMP.bits_per_char(), 11);
        assert_eq!(LineSettings::MC66C_REQUEST.bits_per_char(), 11);
        assert_eq!(LineSettings::MC66C_REPLY.bits_per_char(), 10);
        assert_eq!(LineSettings::KMP.to_string(), "1200 8N2");
        assert_eq!(LineSettings::MC66C_REQUEST.to_string(), "300 7E2");
        assert_eq!(LineSettings::MC66C_REPLY.to_string(), "1200 7E1");
    }

    #[test]
    fn wire_time() {
        // 11 bits at 1200 Bd = 9.1666 ms.
        assert_eq!(
            LineSettings::KMP.char_time(),
            Duration::from_nanos(9_166_666)
        );
        // "/#1" at 300 7E2 = 33 bits = 110 ms; 81 bytes at 1200 7E1 = 675 ms.
        assert_eq!(
            LineSettings::MC66C_REQUEST.air_time(3),
            Duration::from_millis(110)
        );
        assert_eq!(
            LineSettings::MC66C_REPLY.air_time(81),
            Duration::from_millis(675)
        );
        let zero = LineSettings {
            baud: 0,
            ..LineSettings::KMP
        };
        assert_eq!(zero.air_time(10), Duration::ZERO);
        assert!(LineSettings::KMP.air_time(usize::MAX) > Duration::from_secs(1));
    }

    #[test]
    fn parse_table() {
        let ok = [
            ("1200 8N2", LineSettings::KMP),
            ("1200,8N2", LineSettings::KMP),
            ("  1200   8n2 ", LineSettings::KMP),
            ("1200-8N2", LineSettings::KMP),
            ("300 7E2", LineSettings::MC66C_REQUEST),
            ("1200 7e1", LineSettings::MC66C_REPLY),
            (
                "9600 8O1",
                LineSettings::new(9600, DataBits::Eight, Parity::Odd, StopBits::One),
            ),
        ];
        for (text, want) in ok {
            assert_eq!(text.parse::<LineSettings>().unwrap(), want, "{text}");
            assert_eq!(
                want.to_string().parse::<LineSettings>().unwrap(),
                want,
                "round trip {want}"
            );
        }
        let bad = [
            ("", "empty"),
            ("1200", "two parts"),
            ("1200 8N2 x", "two parts"),
            ("fast 8N2", "not a number"),
            ("0 8N2", "above 0"),
            ("1200 8N", "three characters"),
            ("1200 6N1", "7 or 8"),
            ("1200 8X1", "N, E or O"),
            ("1200 8N3", "1 or 2"),
        ];
        for (text, needle) in bad {
            let err = text.parse::<LineSettings>().unwrap_err();
            assert_eq!(err.kind(), "bad-settings");
            assert!(err.to_string().contains(needle), "{text}: {err}");
        }
    }
}
