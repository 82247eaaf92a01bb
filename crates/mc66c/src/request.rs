//! Request telegrams ("/#1" … "/#J", "/?!") and the line timing facts the link layer needs.
//! The crate never touches a port or a clock: these are plain numbers for the caller to apply.

use core::fmt;
use core::str::FromStr;
use core::time::Duration;

use crate::error::{Error, Snippet};

/// The data sets a MULTICAL 66-CDE answers to `/#n` (TD p.34–36).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataSet {
    /// `/#1` standard data 1: energy, volume, hours, temperatures, power, flow, peak, info.
    Standard1,
    /// `/#2` standard data 2: customer number, tariffs, inputs, program number, configuration.
    Standard2,
    /// `/#3` target (billing-date) data.
    Target,
    /// `/#4` verification data (66-CDE layout; the 66-B differs).
    Verification,
    /// `/#5` monthly data, 32 lines.
    Monthly,
    /// `/#6` daily logger, 60 lines.
    DailyLog,
    /// `/#7` hourly logger, 960 lines.
    HourlyLog,
    /// `/#8` monthly logger, 36 lines (real dumps look nibble-coded; raw tokens only).
    MonthlyLog,
    /// `/#9` yearly logger, 15 lines (raw tokens only).
    YearlyLog,
    /// `/#B` current counts.
    CurrentCounts,
    /// `/#C` instantaneous values.
    Instantaneous,
    /// `/#D` programming data and timestamp.
    Programming,
    /// `/#J` info logger, 10 lines.
    InfoLog,
}

impl DataSet {
    /// Every data set, in request-code order.
    pub const ALL: [DataSet; 13] = [
        DataSet::Standard1,
        DataSet::Standard2,
        DataSet::Target,
        DataSet::Verification,
        DataSet::Monthly,
        DataSet::DailyLog,
        DataSet::HourlyLog,
        DataSet::MonthlyLog,
        DataSet::YearlyLog,
        DataSet::CurrentCounts,
        DataSet::Instantaneous,
        DataSet::Programming,
        DataSet::InfoLog,
    ];

    /// The request character after `/#` (`b'1'`, …, `b'J'`).
    pub const fn code(self) -> u8 {
        match self {
            DataSet::Standard1 => b'1',
            DataSet::Standard2 => b'2',
            DataSet::Target => b'3',
            DataSet::Verification => b'4',
            DataSet::Monthly => b'5',
            DataSet::DailyLog => b'6',
            DataSet::HourlyLog => b'7',
            DataSet::MonthlyLog => b'8',
            DataSet::YearlyLog => b'9',
            DataSet::CurrentCounts => b'B',
            DataSet::Instantaneous => b'C',
            DataSet::Programming => b'D',
            DataSet::InfoLog => b'J',
        }
    }

    /// The data set for a request character (case-insensitive for letters).
    pub const fn from_code(code: u8) -> Option<DataSet> {
        Some(match code.to_ascii_uppercase() {
            b'1' => DataSet::Standard1,
            b'2' => DataSet::Standard2,
            b'3' => DataSet::Target,
            b'4' => DataSet::Verification,
            b'5' => DataSet::Monthly,
            b'6' => DataSet::DailyLog,
            b'7' => DataSet::HourlyLog,
            b'8' => DataSet::MonthlyLog,
            b'9' => DataSet::YearlyLog,
            b'B' => DataSet::CurrentCounts,
            b'C' => DataSet::Instantaneous,
            b'D' => DataSet::Programming,
            b'J' => DataSet::InfoLog,
            _ => return None,
        })
    }

    /// Number of CR-terminated lines in the reply according to the TD. Real meters have been
    /// seen to append undocumented data to `/#J`, so for multi-line sets prefer
    /// [`crate::Expect::UntilIdle`].
    pub const fn nominal_lines(self) -> u16 {
        match self {
            DataSet::Monthly => 32,
            DataSet::DailyLog => 60,
            DataSet::HourlyLog => 960,
            DataSet::MonthlyLog => 36,
            DataSet::YearlyLog => 15,
            DataSet::InfoLog => 10,
            _ => 1,
        }
    }

    /// True for the sets answered by a single line.
    pub const fn is_single_line(self) -> bool {
        self.nominal_lines() == 1
    }

    /// The request text without terminator, e.g. `"/#1"`.
    pub const fn request_text(self) -> &'static str {
        match self {
            DataSet::Standard1 => "/#1",
            DataSet::Standard2 => "/#2",
            DataSet::Target => "/#3",
            DataSet::Verification => "/#4",
            DataSet::Monthly => "/#5",
            DataSet::DailyLog => "/#6",
            DataSet::HourlyLog => "/#7",
            DataSet::MonthlyLog => "/#8",
            DataSet::YearlyLog => "/#9",
            DataSet::CurrentCounts => "/#B",
            DataSet::Instantaneous => "/#C",
            DataSet::Programming => "/#D",
            DataSet::InfoLog => "/#J",
        }
    }
}

impl fmt::Display for DataSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.request_text())
    }
}

/// Optional line end sent after a request. The TD sends none; CR and CR LF are answered too
/// (mc66c.md §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Terminator {
    /// Nothing after the request (TD example).
    #[default]
    None,
    /// `\r`.
    Cr,
    /// `\r\n`.
    CrLf,
}

/// A request telegram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Request {
    /// `/#n` for one data set, answered at 1200 Bd.
    Data(DataSet),
    /// The EN 61107 readout `/?!`, answered at 300 Bd.
    Readout,
}

/// The acknowledgement some clients send after the EN 61107 identification line
/// (`ACK 0 0 0 CR LF`: protocol mode C, 300 Bd, data readout). The 66-CDE TD lists none;
/// send it only if no STX follows the identification line (mc66c.md §10).
pub const READOUT_ACK: &[u8] = b"\x06000\r\n";

macro_rules! request_bytes {
    ($self:expr, $suffix:literal) => {
        match $self {
            Request::Readout => concat!("/?!", $suffix).as_bytes(),
            Request::Data(d) => match d {
                DataSet::Standard1 => concat!("/#1", $suffix).as_bytes(),
                DataSet::Standard2 => concat!("/#2", $suffix).as_bytes(),
                DataSet::Target => concat!("/#3", $suffix).as_bytes(),
                DataSet::Verification => concat!("/#4", $suffix).as_bytes(),
                DataSet::Monthly => concat!("/#5", $suffix).as_bytes(),
                DataSet::DailyLog => concat!("/#6", $suffix).as_bytes(),
                DataSet::HourlyLog => concat!("/#7", $suffix).as_bytes(),
                DataSet::MonthlyLog => concat!("/#8", $suffix).as_bytes(),
                DataSet::YearlyLog => concat!("/#9", $suffix).as_bytes(),
                DataSet::CurrentCounts => concat!("/#B", $suffix).as_bytes(),
                DataSet::Instantaneous => concat!("/#C", $suffix).as_bytes(),
                DataSet::Programming => concat!("/#D", $suffix).as_bytes(),
                DataSet::InfoLog => concat!("/#J", $suffix).as_bytes(),
            },
        }
    };
}

impl Request {
    /// The request bytes without terminator: `"/#1"`, `"/?!"`.
    pub const fn bytes(&self) -> &'static [u8] {
        request_bytes!(*self, "")
    }

    /// The request bytes followed by `terminator`.
    pub const fn bytes_with(&self, terminator: Terminator) -> &'static [u8] {
        match terminator {
            Terminator::None => request_bytes!(*self, ""),
            Terminator::Cr => request_bytes!(*self, "\r"),
            Terminator::CrLf => request_bytes!(*self, "\r\n"),
        }
    }

    /// The terminator the documents use: none for `/#n` (TD), CR LF for `/?!` (EN 61107).
    pub const fn usual_terminator(&self) -> Terminator {
        match self {
            Request::Data(_) => Terminator::None,
            Request::Readout => Terminator::CrLf,
        }
    }

    /// Line settings for sending the request.
    pub const fn request_line(&self) -> LineSettings {
        match self {
            Request::Data(_) => timing::REQUEST_LINE,
            Request::Readout => timing::READOUT_REQUEST_LINE,
        }
    }

    /// Line settings for receiving the reply.
    pub const fn reply_line(&self) -> LineSettings {
        match self {
            Request::Data(_) => timing::REPLY_LINE,
            Request::Readout => timing::READOUT_REPLY_LINE,
        }
    }

    /// Overall deadline for the reply, counted from the end of the request.
    pub const fn reply_deadline(&self) -> Duration {
        match self {
            Request::Data(d) if d.is_single_line() => timing::REPLY_DEADLINE,
            Request::Data(_) => timing::MULTILINE_FIRST_BYTE_DEADLINE,
            Request::Readout => timing::READOUT_DEADLINE,
        }
    }

    /// How a [`crate::ReplyReader`] should decide the reply is complete.
    pub const fn expect(&self) -> crate::reader::Expect {
        match self {
            Request::Data(d) if d.is_single_line() => crate::reader::Expect::Line,
            Request::Data(_) => crate::reader::Expect::UntilIdle,
            Request::Readout => crate::reader::Expect::Readout,
        }
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Data(d) => fmt::Display::fmt(d, f),
            Request::Readout => f.write_str("/?!"),
        }
    }
}

impl FromStr for Request {
    type Err = Error;

    /// Accepts `"1"`, `"#1"`, `"/#1"` (any of 1–9, B, C, D, J; letters in either case) and
    /// `"?!"` / `"/?!"` / `"readout"`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("readout") || t == "/?!" || t == "?!" {
            return Ok(Request::Readout);
        }
        let code = t
            .strip_prefix("/#")
            .or_else(|| t.strip_prefix('#'))
            .unwrap_or(t);
        match code.as_bytes() {
            [c] => DataSet::from_code(*c)
                .map(Request::Data)
                .ok_or(Error::UnknownRequest(Snippet::new(s.as_bytes()))),
            _ => Err(Error::UnknownRequest(Snippet::new(s.as_bytes()))),
        }
    }
}

/// Parity of a serial character.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Parity {
    /// Even parity.
    Even,
}

/// Serial character format and speed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LineSettings {
    /// Bits per second.
    pub baud: u32,
    /// Data bits per character.
    pub data_bits: u8,
    /// Parity.
    pub parity: Parity,
    /// Stop bits.
    pub stop_bits: u8,
}

impl LineSettings {
    /// Bits on the wire per character: start + data + parity + stop.
    pub const fn bits_per_char(&self) -> u32 {
        1 + self.data_bits as u32 + 1 + self.stop_bits as u32
    }

    /// Time `chars` characters take on the wire at these settings (rounded up to µs).
    pub const fn air_time(&self, chars: usize) -> Duration {
        let bits = chars as u64 * self.bits_per_char() as u64;
        let micros = (bits * 1_000_000).div_ceil(self.baud as u64);
        Duration::from_micros(micros)
    }
}

/// Timing and line facts from the TD and field reports (mc66c.md §2, §10, §11).
pub mod timing {
    use super::{LineSettings, Parity};
    use core::time::Duration;

    /// `/#n` requests: 300 Bd 7E2 (TD p.33; a 1-stop-bit receiver accepts 2 stop bits).
    pub const REQUEST_LINE: LineSettings = LineSettings {
        baud: 300,
        data_bits: 7,
        parity: Parity::Even,
        stop_bits: 2,
    };

    /// `/#n` replies: 1200 Bd, received as 7E1 (tolerates one or two stop bits; receiving
    /// with 2 stop bits failed on ESP8266).
    pub const REPLY_LINE: LineSettings = LineSettings {
        baud: 1200,
        data_bits: 7,
        parity: Parity::Even,
        stop_bits: 1,
    };

    /// EN 61107 `/?!` request and acknowledgement: 300 Bd 7E2 (TD p.36).
    pub const READOUT_REQUEST_LINE: LineSettings = REQUEST_LINE;

    /// EN 61107 readout reply: 300 Bd, received as 7E1.
    pub const READOUT_REPLY_LINE: LineSettings = LineSettings {
        baud: 300,
        data_bits: 7,
        parity: Parity::Even,
        stop_bits: 1,
    };

    /// Earliest a reply was documented to start after the request (TD p.33): switch the
    /// receiver to 1200 Bd before this, i.e. right after the request's air time.
    pub const EARLIEST_REPLY: Duration = Duration::from_millis(300);

    /// Margin to add to the computed request air time before switching baud rate, for USB
    /// adapters that report "drained" early (mc66c.md §11: 20–50 ms).
    pub const BAUD_SWITCH_MARGIN: Duration = Duration::from_millis(30);

    /// Overall deadline for a single-line `/#n` reply, from the end of the request
    /// (0.3–2 s latency plus ~0.75 s air time).
    pub const REPLY_DEADLINE: Duration = Duration::from_millis(3500);

    /// Deadline for the first byte of a multi-line reply (`/#5`–`/#9`, `/#J`); after it,
    /// completion is by [`MULTILINE_IDLE`].
    pub const MULTILINE_FIRST_BYTE_DEADLINE: Duration = REPLY_DEADLINE;

    /// Silence after which a multi-line reply is taken as complete. Not from the TD (which
    /// gives none): our choice, well above a line's gap at 1200 Bd and below KenanV's 5 s
    /// inter-byte timeout.
    pub const MULTILINE_IDLE: Duration = Duration::from_secs(2);

    /// Deadline for a whole EN 61107 readout (~85 bytes at 300 Bd ≈ 3 s; MeterLogger allows 8 s).
    pub const READOUT_DEADLINE: Duration = Duration::from_secs(8);

    /// Minimum time between a failed request and its retry (TD p.33: "≥ 5 s").
    pub const MIN_RETRY_INTERVAL: Duration = Duration::from_secs(5);

    /// Maximum retries after the first attempt (mc66c.md §11: 2–3).
    pub const MAX_RETRIES: u8 = 3;

    /// A poll interval that respects the battery (TD p.30: more than one read per 24 h
    /// shortens battery life; field practice 15–60 min).
    pub const RECOMMENDED_POLL_INTERVAL: Duration = Duration::from_secs(30 * 60);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bytes_and_terminators() {
        let r = Request::Data(DataSet::Standard1);
        assert_eq!(r.bytes(), b"/#1");
        assert_eq!(r.bytes_with(Terminator::Cr), b"/#1\r");
        assert_eq!(r.bytes_with(Terminator::CrLf), b"/#1\r\n");
        assert_eq!(Request::Readout.bytes(), b"/?!");
        assert_eq!(
            Request::Readout.bytes_with(Request::Readout.usual_terminator()),
            b"/?!\r\n"
        );
        for d in DataSet::ALL {
            let r = Request::Data(d);
            assert_eq!(r.bytes(), d.request_text().as_bytes());
            assert_eq!(r.bytes().get(2), Some(&d.code()));
            assert_eq!(DataSet::from_code(d.code()), Some(d));
            assert_eq!(d.request_text().parse::<Request>().unwrap(), r);
        }
    }

    #[test]
    fn parse_request_names() {
        assert_eq!(
            "c".parse::<Request>().unwrap(),
            Request::Data(DataSet::Instantaneous)
        );
        assert_eq!(
            "#J".parse::<Request>().unwrap(),
            Request::Data(DataSet::InfoLog)
        );
        assert_eq!("/?!".parse::<Request>().unwrap(), Request::Readout);
        assert_eq!(
            "/#A".parse::<Request>().unwrap_err().kind(),
            "unknown-request"
        );
        assert_eq!(
            "/#10".parse::<Request>().unwrap_err().kind(),
            "unknown-request"
        );
    }

    #[test]
    fn air_times_match_the_doc() {
        // "/#1" = 3 × 11 bits / 300 Bd = 110 ms (mc66c.md §2).
        assert_eq!(timing::REQUEST_LINE.air_time(3), Duration::from_millis(110));
        // 81-byte reply at 1200 7E1 ≈ 0.68 s.
        assert_eq!(timing::REPLY_LINE.air_time(81), Duration::from_millis(675));
    }
}
