//! Incremental reply reader: the link layer feeds received bytes one at a time and learns when
//! a reply is complete. No clock here: idle and deadline timeouts are the caller's.

#[cfg(feature = "alloc")]
use alloc::vec::Vec;

#[cfg(feature = "alloc")]
use crate::error::Error;
#[cfg(feature = "alloc")]
use crate::request::Request;

/// Longest single "/#n" line accepted, terminator included. The longest real reply is
/// `/#B` at 97 bytes; a 66C never sends more on one line.
pub const MAX_LINE_LEN: usize = 128;

/// Default cap for an EN 61107 readout (a 66C frame is about 85 bytes).
pub const MAX_READOUT_LEN: usize = 1024;

/// Default cap for [`Expect::UntilIdle`]: 1024 lines of [`MAX_LINE_LEN`] (the hourly logger
/// has 960 lines).
pub const MAX_MULTILINE_LEN: usize = 1024 * MAX_LINE_LEN;

/// How the reader decides that a reply is complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Expect {
    /// One CR-terminated line (`/#1`–`/#4`, `/#B`, `/#C`, `/#D`).
    Line,
    /// This many CR-terminated lines (when the caller knows the count).
    Lines(u16),
    /// CR-terminated lines until the caller sees the line go quiet (e.g.
    /// [`crate::timing::MULTILINE_IDLE`]) and calls [`ReplyReader::finish`]. The default for
    /// the logger requests `/#5`–`/#9`, `/#J`, whose real line counts are not certain.
    UntilIdle,
    /// EN 61107 readout: identification line, STX … ETX, then one BCC byte.
    Readout,
}

impl Expect {
    /// The default length cap for this kind of reply.
    pub const fn default_max_len(self) -> usize {
        match self {
            Expect::Line => MAX_LINE_LEN,
            Expect::Lines(n) => n as usize * MAX_LINE_LEN,
            Expect::UntilIdle => MAX_MULTILINE_LEN,
            Expect::Readout => MAX_READOUT_LEN,
        }
    }
}

/// Where an EN 61107 readout stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReadoutStage {
    /// Waiting for the `/` that starts the identification line.
    WaitingIdent,
    /// Inside the identification line.
    Ident,
    /// Identification line complete, no STX yet: the moment to send [`crate::READOUT_ACK`]
    /// if the meter seems to wait for one.
    AwaitingStx,
    /// Inside the data block.
    Data,
    /// ETX seen; waiting for the BCC byte.
    Bcc,
}

/// A complete reply as received, ready for the parsers.
#[cfg(feature = "alloc")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawReply {
    /// The reply bytes, from its first byte to its end marker (CR, or the BCC byte).
    pub bytes: Vec<u8>,
    /// Bytes dropped before the reply: line ends left over from a previous reply, an echo of
    /// our own request (optical heads can reflect the IR light), and for the readout anything
    /// before the `/` of the identification line.
    pub discarded: usize,
    /// CR-terminated lines in `bytes` (0 for the readout).
    pub lines: u16,
}

#[cfg(feature = "alloc")]
impl RawReply {
    /// The reply bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// Incremental reader. Feed every received byte to [`ReplyReader::feed`]: `None` means "need
/// more"; `Some(Ok(reply))` a complete reply; `Some(Err(_))` a reply that can never become
/// valid (over-long). After any `Some`, the reader is reset and ready for the next reply.
///
/// Completion:
/// - [`Expect::Line`] / [`Expect::Lines`]: at the CR ending the last expected line (an LF
///   after it, if any, is dropped as the start of the next reply).
/// - [`Expect::UntilIdle`]: never by itself; call [`ReplyReader::finish`] when the line has
///   been quiet long enough. It returns the lines read so far, or an error if the last line has
///   no CR.
/// - [`Expect::Readout`]: at the byte after ETX (the BCC).
///
/// Line ends before the first byte of a reply are dropped. With [`ReplyReader::for_request`],
/// an exact echo of the request at the start is dropped too. Nothing else is skipped: a reply
/// with a garbage start is passed on whole for the parser to reject with a reason.
#[cfg(feature = "alloc")]
#[derive(Clone, Debug)]
pub struct ReplyReader {
    expect: Expect,
    max_len: usize,
    echo: &'static [u8],
    buf: Vec<u8>,
    discarded: usize,
    lines: u16,
    line_len: usize,
    stage: ReadoutStage,
}

#[cfg(feature = "alloc")]
impl ReplyReader {
    /// A reader for replies completed as `expect` says, with its default length cap.
    pub fn new(expect: Expect) -> Self {
        ReplyReader {
            expect,
            max_len: expect.default_max_len(),
            echo: &[],
            buf: Vec::new(),
            discarded: 0,
            lines: 0,
            line_len: 0,
            stage: ReadoutStage::WaitingIdent,
        }
    }

    /// A reader for the reply to `request` ([`Request::expect`]), dropping an echo of it.
    pub fn for_request(request: &Request) -> Self {
        let mut r = Self::new(request.expect());
        r.echo = request.bytes();
        r
    }

    /// Changes the length cap (bytes of one reply, before its end marker).
    pub fn with_max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// The bytes of the reply in progress (for logging what arrived before a timeout).
    pub fn received(&self) -> &[u8] {
        &self.buf
    }

    /// Bytes dropped so far before the reply in progress.
    pub fn discarded(&self) -> usize {
        self.discarded
    }

    /// Complete lines so far in the reply in progress.
    pub fn lines(&self) -> u16 {
        self.lines
    }

    /// For [`Expect::Readout`]: how far the readout got.
    pub fn readout_stage(&self) -> ReadoutStage {
        self.stage
    }

    /// Forgets the reply in progress.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.discarded = 0;
        self.lines = 0;
        self.line_len = 0;
        self.stage = ReadoutStage::WaitingIdent;
    }

    fn take(&mut self) -> RawReply {
        let reply = RawReply {
            bytes: core::mem::take(&mut self.buf),
            discarded: self.discarded,
            lines: self.lines,
        };
        self.reset();
        reply
    }

    fn too_long(&mut self) -> Option<Result<RawReply, Error>> {
        let max = self.max_len;
        self.reset();
        Some(Err(Error::TooLong { max }))
    }

    /// Feeds one received byte. See the type docs for the contract.
    pub fn feed(&mut self, byte: u8) -> Option<Result<RawReply, Error>> {
        if self.buf.is_empty() {
            let skip = match self.expect {
                Expect::Readout => byte != b'/',
                _ => matches!(byte, b'\r' | b'\n'),
            };
            if skip {
                self.discarded = self.discarded.saturating_add(1);
                return None;
            }
        }
        if self.buf.len() >= self.max_len {
            return self.too_long();
        }
        self.buf.push(byte);
        if !self.echo.is_empty() && self.echo.starts_with(&self.buf) {
            if self.buf.len() == self.echo.len() {
                self.discarded = self.discarded.saturating_add(self.buf.len());
                self.buf.clear();
                self.stage = ReadoutStage::WaitingIdent;
            } else if self.expect == Expect::Readout {
                self.stage = ReadoutStage::Ident;
            }
            return None;
        }
        match self.expect {
            Expect::Line | Expect::Lines(_) | Expect::UntilIdle => self.feed_line(byte),
            Expect::Readout => self.feed_readout(byte),
        }
    }

    fn feed_line(&mut self, byte: u8) -> Option<Result<RawReply, Error>> {
        if byte == b'\r' {
            self.lines = self.lines.saturating_add(1);
            self.line_len = 0;
            let want = match self.expect {
                Expect::Line => 1,
                Expect::Lines(n) => n,
                _ => u16::MAX,
            };
            if self.lines >= want {
                return Some(Ok(self.take()));
            }
            return None;
        }
        if byte != b'\n' {
            self.line_len += 1;
            if self.line_len >= MAX_LINE_LEN {
                return self.too_long();
            }
        }
        None
    }

    fn feed_readout(&mut self, byte: u8) -> Option<Result<RawReply, Error>> {
        match (self.stage, byte) {
            (ReadoutStage::WaitingIdent, _) => self.stage = ReadoutStage::Ident,
            (ReadoutStage::Ident, b'\n') => self.stage = ReadoutStage::AwaitingStx,
            (ReadoutStage::AwaitingStx, 0x02) => self.stage = ReadoutStage::Data,
            (ReadoutStage::Data, 0x03) => self.stage = ReadoutStage::Bcc,
            (ReadoutStage::Bcc, _) => return Some(Ok(self.take())),
            _ => {}
        }
        None
    }

    /// Ends the reply in progress because the caller's idle timeout or deadline expired.
    ///
    /// For [`Expect::UntilIdle`] this is the normal way to complete: it returns the lines read
    /// if the last one ended in CR. For the other kinds it reports what was missing. Resets
    /// the reader either way.
    pub fn finish(&mut self) -> Result<RawReply, Error> {
        if self.buf.is_empty() {
            self.reset();
            return Err(Error::Empty);
        }
        let received = self.buf.len();
        let result = match self.expect {
            Expect::UntilIdle if self.line_len == 0 && self.lines > 0 => return Ok(self.take()),
            Expect::UntilIdle => Err(Error::Truncated {
                received,
                what: "the last line does not end in CR",
            }),
            Expect::Line => Err(Error::Truncated {
                received,
                what: "no CR at the end of the line",
            }),
            Expect::Lines(_) => Err(Error::Truncated {
                received,
                what: "fewer lines than expected, or the last one has no CR",
            }),
            Expect::Readout => Err(Error::Truncated {
                received,
                what: match self.stage {
                    ReadoutStage::WaitingIdent | ReadoutStage::Ident => {
                        "the identification line did not end"
                    }
                    ReadoutStage::AwaitingStx => "no STX after the identification line",
                    ReadoutStage::Data => "no ETX",
                    ReadoutStage::Bcc => "no BCC after ETX",
                },
            }),
        };
        self.reset();
        result
    }
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::*;
    use crate::request::DataSet;

    fn feed_all(r: &mut ReplyReader, bytes: &[u8]) -> Vec<Result<RawReply, Error>> {
        bytes.iter().filter_map(|b| r.feed(*b)).collect()
    }

    #[test]
    fn single_line_completes_on_cr() {
        let mut r = ReplyReader::new(Expect::Line);
        let out = feed_all(&mut r, b"\r\n0000001 0000002 \r\n0000003 \r");
        assert_eq!(out.len(), 2);
        let first = out[0].as_ref().unwrap();
        assert_eq!(first.bytes, b"0000001 0000002 \r");
        assert_eq!(first.discarded, 2);
        let second = out[1].as_ref().unwrap();
        assert_eq!(second.bytes, b"0000003 \r");
        assert_eq!(second.discarded, 1, "the LF after the first reply");
    }

    #[test]
    fn echo_is_dropped() {
        let mut r = ReplyReader::for_request(&Request::Data(DataSet::Standard1));
        let out = feed_all(&mut r, b"/#1\r\n0000001 \r");
        assert_eq!(out.len(), 1);
        let reply = out[0].as_ref().unwrap();
        assert_eq!(reply.bytes, b"0000001 \r");
        assert_eq!(reply.discarded, 5);
        // Not an echo: kept for the parser to reject.
        let out = feed_all(&mut r, b"/#2 \r");
        assert_eq!(out[0].as_ref().unwrap().bytes, b"/#2 \r");
    }

    #[test]
    fn caps_length() {
        let mut r = ReplyReader::new(Expect::Line);
        let out = feed_all(&mut r, &[b'1'; 200]);
        assert_eq!(out, vec![Err(Error::TooLong { max: MAX_LINE_LEN })]);
        let mut r = ReplyReader::new(Expect::UntilIdle).with_max_len(10);
        let out = feed_all(&mut r, b"12345\r12345\r");
        assert_eq!(out, vec![Err(Error::TooLong { max: 10 })]);
    }

    #[test]
    fn multi_line_by_count_and_by_idle() {
        let mut r = ReplyReader::new(Expect::Lines(2));
        let out = feed_all(&mut r, b"1 \r2 \r");
        assert_eq!(out[0].as_ref().unwrap().lines, 2);

        let mut r = ReplyReader::new(Expect::UntilIdle);
        assert!(feed_all(&mut r, b"1 \r2 \r3 \r").is_empty());
        let reply = r.finish().unwrap();
        assert_eq!((reply.lines, reply.bytes.len()), (3, 9));
        assert_eq!(r.finish(), Err(Error::Empty));
        feed_all(&mut r, b"1 \r2");
        assert_eq!(r.finish().unwrap_err().kind(), "truncated");
    }

    #[test]
    fn readout_completes_after_bcc() {
        let frame = b"/KAM MC\r\n\x020.0(1)!\r\n\x03\x55";
        let mut r = ReplyReader::for_request(&Request::Readout);
        let mut input = b"/?!\r\n\x06000\r\n".to_vec();
        input.extend_from_slice(frame);
        let mut stages = Vec::new();
        let mut out = Vec::new();
        for b in input {
            if let Some(x) = r.feed(b) {
                out.push(x);
            }
            stages.push(r.readout_stage());
        }
        assert!(stages.contains(&ReadoutStage::AwaitingStx));
        assert_eq!(out.len(), 1);
        let reply = out[0].as_ref().unwrap();
        assert_eq!(reply.bytes, frame);
        assert_eq!(reply.discarded, 11);
    }

    #[test]
    fn readout_timeout_says_what_is_missing() {
        let mut r = ReplyReader::new(Expect::Readout);
        feed_all(&mut r, b"/KAM MC\r\n");
        assert_eq!(r.readout_stage(), ReadoutStage::AwaitingStx);
        assert_eq!(
            r.finish(),
            Err(Error::Truncated {
                received: 9,
                what: "no STX after the identification line"
            })
        );
    }
}
