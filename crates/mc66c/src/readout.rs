//! The EN 61107 ("/?!") readout of the same meters: identification line, STX, registers
//! `ID(value*unit)`, `!`, ETX and a BCC (7-bit sum). Values keep their decimal point.

#[cfg(feature = "alloc")]
use alloc::{string::String, vec::Vec};

use kamstrup_decimal::Decimal;

use crate::error::{Error, Snippet};
use crate::scaling::{Unit, Value};

const STX: u8 = 0x02;
const ETX: u8 = 0x03;
const ACK: u8 = 0x06;

/// Block check character: the 7-bit arithmetic sum of `bytes` (all bytes after STX up to and
/// including ETX). Verified on real 66C frames; it is not the XOR of IEC 62056-21 mode C.
pub fn bcc(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |acc, b| acc.wrapping_add(*b)) & 0x7f
}

/// The identification line `/XXX[Z] ident`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ident<'a> {
    /// The whole line after `/`, without CR LF (`"KAM MC"`).
    pub line: &'a str,
    /// Three-letter manufacturer code (`"KAM"`).
    pub manufacturer: &'a str,
    /// The baud-rate character if present (`'0'` = 300 Bd in `/KAM0MC` and `/KAM 0 MC`).
    pub baud: Option<char>,
    /// The meter identification (`"MC"`).
    pub model: &'a str,
}

impl<'a> Ident<'a> {
    /// Parses the line after `/` (no CR LF). Accepts `KAM MC`, `KAM0MC`, `KAM 0 MC`.
    pub fn parse(line: &'a [u8]) -> Result<Ident<'a>, Error> {
        let bad = |reason| Error::Ident {
            line: Snippet::new(line),
            reason,
        };
        if !line.iter().all(|b| (0x20..0x7f).contains(b)) {
            return Err(bad("not printable ASCII"));
        }
        let text = core::str::from_utf8(line).map_err(|_| bad("not printable ASCII"))?;
        let manufacturer = text
            .get(..3)
            .filter(|m| m.bytes().all(|b| b.is_ascii_alphabetic()))
            .ok_or(bad("does not start with a three-letter manufacturer code"))?;
        let mut rest = text.get(3..).unwrap_or("").trim_start_matches(' ');
        let mut baud = None;
        if let Some(c) = rest.chars().next().filter(char::is_ascii_digit) {
            baud = Some(c);
            rest = rest.get(1..).unwrap_or("").trim_start_matches(' ');
        }
        let model = rest.trim_end_matches(' ');
        if model.is_empty() {
            return Err(bad("no meter identification after the manufacturer code"));
        }
        Ok(Ident {
            line: text,
            manufacturer,
            baud,
            model,
        })
    }
}

/// One data register `ID(value*unit)` or `ID(value)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Register<'a> {
    /// Register address (`"6.8"`).
    pub id: &'a str,
    /// Value text as sent (`"00433.65"`, `"00000000040"`).
    pub value: &'a str,
    /// Unit text as sent (`"GJ"`, `"m3"`), if any.
    pub unit: Option<&'a str>,
}

impl<'a> Register<'a> {
    /// The value as an exact decimal with the decimals written (`"00000.00"` → `0.00`).
    pub fn decimal(&self) -> Option<Decimal> {
        self.value.parse().ok()
    }

    /// The unit, if known.
    pub fn unit(&self) -> Option<Unit> {
        self.unit.and_then(Unit::from_readout)
    }

    /// Parses one register at the start of `text`; returns it and the rest.
    fn parse_one(text: &'a str, index: usize) -> Result<(Register<'a>, &'a str), Error> {
        let bad = |reason| Error::Register {
            index,
            text: Snippet::new(text.as_bytes()),
            reason,
        };
        let open = text.find('(').ok_or(bad("no '('"))?;
        let close = text.find(')').ok_or(bad("no ')'"))?;
        if close < open {
            return Err(bad("')' before '('"));
        }
        let id = text.get(..open).unwrap_or("");
        let inner = text.get(open + 1..close).unwrap_or("");
        let rest = text.get(close + 1..).unwrap_or("");
        if id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'-' | b'*' | b'&'))
        {
            return Err(bad("bad register address"));
        }
        let (value, unit) = match inner.split_once('*') {
            Some((v, u)) => (v, Some(u)),
            None => (inner, None),
        };
        if !is_number(value) {
            return Err(bad("value is not digits with an optional decimal point"));
        }
        if let Some(u) = unit {
            if u.is_empty() || !u.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'/') {
                return Err(bad("bad unit"));
            }
        }
        Ok((Register { id, value, unit }, rest))
    }
}

fn is_number(v: &str) -> bool {
    let body = v.strip_prefix('-').unwrap_or(v);
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

/// Iterator over the registers of a parsed [`Readout`].
#[derive(Clone, Debug)]
pub struct Registers<'a> {
    rest: &'a str,
    index: usize,
}

impl<'a> Iterator for Registers<'a> {
    type Item = Register<'a>;

    fn next(&mut self) -> Option<Register<'a>> {
        let text = self.rest.strip_prefix("\r\n").unwrap_or(self.rest);
        if text.is_empty() {
            return None;
        }
        self.index += 1;
        // Already validated by Readout::parse, so this succeeds.
        let (reg, rest) = Register::parse_one(text, self.index).ok()?;
        self.rest = rest;
        Some(reg)
    }
}

/// A checked EN 61107 readout frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Readout<'a> {
    /// The identification line.
    pub ident: Ident<'a>,
    /// True if CR LF separates the registers (66-CDE); false if they follow each other (66-B).
    pub separators: bool,
    /// The block check character (verified).
    pub bcc: u8,
    registers: &'a str,
}

impl<'a> Readout<'a> {
    /// Parses and checks a complete readout: `/` identification CR LF, an optional echoed
    /// acknowledgement line, STX, registers with or without CR LF between them, `!`,
    /// optional CR LF, ETX, BCC (7-bit sum of the bytes after STX up to ETX).
    pub fn parse(reply: &'a [u8]) -> Result<Readout<'a>, Error> {
        if reply.is_empty() {
            return Err(Error::Empty);
        }
        let framing = |offset, reason| Error::Framing { offset, reason };
        if reply.first() != Some(&b'/') {
            return Err(Error::Ident {
                line: Snippet::new(reply),
                reason: "the readout does not start with '/'",
            });
        }
        let ident_end = find(reply, b"\r\n").ok_or(Error::Truncated {
            received: reply.len(),
            what: "the identification line has no CR LF",
        })?;
        let ident = Ident::parse(reply.get(1..ident_end).unwrap_or(&[]))?;
        let mut pos = ident_end + 2;
        if reply.get(pos) == Some(&ACK) {
            // Our own acknowledgement reflected by the optical head: skip the line.
            let tail = reply.get(pos..).unwrap_or(&[]);
            let end = find(tail, b"\r\n").ok_or(framing(pos, "unterminated ACK line"))?;
            pos += end + 2;
        }
        match reply.get(pos) {
            Some(&STX) => {}
            Some(_) => return Err(framing(pos, "expected STX after the identification line")),
            None => {
                return Err(Error::Truncated {
                    received: reply.len(),
                    what: "no STX after the identification line",
                })
            }
        }
        let body_start = pos + 1;
        let etx = reply
            .get(body_start..)
            .and_then(|t| t.iter().position(|b| *b == ETX))
            .map(|i| body_start + i)
            .ok_or(Error::Truncated {
                received: reply.len(),
                what: "no ETX",
            })?;
        let found = *reply.get(etx + 1).ok_or(Error::Truncated {
            received: reply.len(),
            what: "no BCC after ETX",
        })?;
        if reply.len() > etx + 2 {
            return Err(framing(etx + 2, "bytes after the BCC"));
        }
        let computed = bcc(reply.get(body_start..=etx).unwrap_or(&[]));
        if computed != found && !cfg!(fuzzing) {
            return Err(Error::Bcc { computed, found });
        }
        let body = reply.get(body_start..etx).unwrap_or(&[]);
        let regs = body
            .strip_suffix(b"!\r\n")
            .or_else(|| body.strip_suffix(b"!"))
            .ok_or(framing(etx, "the data block does not end in '!'"))?;
        if !regs
            .iter()
            .all(|b| (0x20..0x7f).contains(b) || matches!(b, b'\r' | b'\n'))
        {
            return Err(framing(
                body_start,
                "control or non-ASCII bytes in the data block",
            ));
        }
        let text = core::str::from_utf8(regs)
            .map_err(|_| framing(body_start, "non-ASCII bytes in the data block"))?;
        let separators = check_registers(text)?;
        Ok(Readout {
            ident,
            separators,
            bcc: found,
            registers: text,
        })
    }

    /// The registers in frame order.
    pub fn registers(&self) -> Registers<'a> {
        Registers {
            rest: self.registers,
            index: 0,
        }
    }

    /// The register with this address.
    pub fn get(&self, id: &str) -> Option<Register<'a>> {
        self.registers().find(|r| r.id == id)
    }

    /// Customer number (register `0.0`), as sent.
    pub fn customer_no(&self) -> Option<&'a str> {
        self.get("0.0").map(|r| r.value)
    }

    fn value(&self, id: &str, name: &'static str) -> Option<Value> {
        let r = self.get(id)?;
        Some(Value {
            name,
            value: r.decimal()?,
            unit: r.unit(),
        })
    }

    /// Energy (register `6.8`) with its decimals and unit.
    pub fn energy(&self) -> Option<Value> {
        self.value("6.8", "energy")
    }

    /// Volume (register `6.26`).
    pub fn volume(&self) -> Option<Value> {
        self.value("6.26", "volume")
    }

    /// Operating hours (register `6.31`).
    pub fn hours(&self) -> Option<Value> {
        self.value("6.31", "hours")
    }
}

/// Validates the register list; returns whether CR LF separators are used. Mixed use is
/// rejected: a frame uses one style throughout.
fn check_registers(text: &str) -> Result<bool, Error> {
    let mut rest = text;
    let mut index = 0;
    let mut style: Option<bool> = None;
    if text.is_empty() {
        return Err(Error::Framing {
            offset: 0,
            reason: "no registers in the data block",
        });
    }
    loop {
        index += 1;
        let (_, after) = Register::parse_one(rest, index)?;
        if after.is_empty() {
            return Ok(style.unwrap_or(true));
        }
        let sep = after.starts_with("\r\n");
        if *style.get_or_insert(sep) != sep {
            return Err(Error::Register {
                index: index + 1,
                text: Snippet::new(after.as_bytes()),
                reason: "CR LF separators used for some registers only",
            });
        }
        rest = if sep {
            after.get(2..).unwrap_or("")
        } else {
            after
        };
        if rest.is_empty() {
            return Err(Error::Register {
                index: index + 1,
                text: Snippet::new(b""),
                reason: "CR LF before '!' (expected another register)",
            });
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Formats a complete readout frame with its BCC: `/` + `ident` + CR LF, STX, the registers
/// (CR LF between them if `separators`), `!` CR LF, ETX, BCC.
#[cfg(feature = "alloc")]
pub fn emit_readout(
    ident: &str,
    registers: &[Register<'_>],
    separators: bool,
) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(128);
    out.push(b'/');
    out.extend_from_slice(ident.as_bytes());
    out.extend_from_slice(b"\r\n");
    Ident::parse(out.get(1..out.len() - 2).unwrap_or(&[]))?;
    out.push(STX);
    let body_start = out.len();
    for (i, r) in registers.iter().enumerate() {
        if i > 0 && separators {
            out.extend_from_slice(b"\r\n");
        }
        let start = out.len();
        out.extend_from_slice(r.id.as_bytes());
        out.push(b'(');
        out.extend_from_slice(r.value.as_bytes());
        if let Some(u) = r.unit {
            out.push(b'*');
            out.extend_from_slice(u.as_bytes());
        }
        out.push(b')');
        let text = core::str::from_utf8(out.get(start..).unwrap_or(&[])).unwrap_or("");
        Register::parse_one(text, i + 1)?;
    }
    out.extend_from_slice(b"!\r\n");
    out.push(ETX);
    let b = bcc(out.get(body_start..).unwrap_or(&[]));
    out.push(b);
    Ok(out)
}

/// Writes `value` with `digits` digits in total and its decimal point, as the meter displays
/// it (`0.00` with 7 digits → `"00000.00"`). Fails for negative values or too many digits.
#[cfg(feature = "alloc")]
pub fn display_digits(name: &'static str, value: Decimal, digits: usize) -> Result<String, Error> {
    let range = |reason| Error::ValueRange {
        name,
        value: i64::try_from(value.mantissa()).unwrap_or(i64::MAX),
        reason,
    };
    let value = if value.exponent() > 0 {
        value.rescale(0).ok_or(range("too large"))?
    } else {
        value
    };
    if value.is_negative() {
        return Err(range("readout registers are never negative"));
    }
    let decimals = usize::from(value.decimals());
    let mut text = alloc::format!("{}", value.mantissa());
    if text.len() > digits || decimals > digits {
        return Err(range("more digits than the display has"));
    }
    while text.len() < digits {
        text.insert(0, '0');
    }
    if decimals > 0 {
        text.insert(digits - decimals, '.');
    }
    Ok(text)
}

/// The registers a MULTICAL 66-CDE sends in its readout, for the simulator.
#[cfg(feature = "alloc")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mc66cReadout {
    /// Customer number (11 digits).
    pub customer_no: u64,
    /// Energy at display resolution (7 digits).
    pub energy: Decimal,
    /// Energy unit.
    pub energy_unit: crate::scaling::EnergyUnit,
    /// Volume in m³ at display resolution (7 digits).
    pub volume: Decimal,
    /// Operating hours.
    pub hours: u32,
}

#[cfg(feature = "alloc")]
impl Mc66cReadout {
    /// The frame a 66-CDE sends (`/KAM MC`, CR LF after every register) with a correct BCC;
    /// `separators = false` gives the 66-B style without CR LF between registers.
    pub fn emit(&self, separators: bool) -> Result<Vec<u8>, Error> {
        if self.customer_no > 99_999_999_999 {
            return Err(Error::ValueRange {
                name: "customer_no",
                value: i64::try_from(self.customer_no).unwrap_or(i64::MAX),
                reason: "the customer number has 11 digits",
            });
        }
        let customer = alloc::format!("{:011}", self.customer_no);
        let energy = display_digits("energy", self.energy, 7)?;
        let volume = display_digits("volume", self.volume, 7)?;
        let hours = display_digits("hours", Decimal::from_int(i64::from(self.hours)), 7)?;
        let unit = match self.energy_unit {
            crate::scaling::EnergyUnit::GJ => "GJ",
            crate::scaling::EnergyUnit::KWh => "kWh",
            crate::scaling::EnergyUnit::MWh => "MWh",
            crate::scaling::EnergyUnit::Gcal => "Gcal",
        };
        emit_readout(
            "KAM MC",
            &[
                Register {
                    id: "0.0",
                    value: &customer,
                    unit: None,
                },
                Register {
                    id: "6.8",
                    value: &energy,
                    unit: Some(unit),
                },
                Register {
                    id: "6.26",
                    value: &volume,
                    unit: Some("m3"),
                },
                Register {
                    id: "6.31",
                    value: &hours,
                    unit: Some("h"),
                },
            ],
            separators,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // nabovarme/MeterLogger:bcc-test/bcc-test/main.c, first frame (mc66c.tsv).
    const METERLOGGER: &[u8] = b"/KAM MC\r\n\x020.0(00000000040)\r\n6.8(00000.00*MWh)\r\n\
6.26(000000.0*m3)\r\n6.31(0053189*h)!\r\n\x03\x0e";

    #[test]
    fn meterlogger_frame() {
        let r = Readout::parse(METERLOGGER).unwrap();
        assert_eq!(r.ident.manufacturer, "KAM");
        assert_eq!(r.ident.model, "MC");
        assert_eq!(r.ident.baud, None);
        assert!(r.separators);
        assert_eq!(r.bcc, 0x0e);
        assert_eq!(r.customer_no(), Some("00000000040"));
        let e = r.energy().unwrap();
        assert_eq!(
            (e.value.to_string(), e.unit),
            ("0.00".into(), Some(Unit::MWh))
        );
        let v = r.volume().unwrap();
        assert_eq!(
            (v.value.to_string(), v.unit),
            ("0.0".into(), Some(Unit::CubicMetre))
        );
        assert_eq!(r.hours().unwrap().value, Decimal::from_int(53189));
        assert_eq!(r.registers().count(), 4);
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn echoed_ack_line_is_skipped() {
        let mut v = b"/KAM MC\r\n\x06000\r\n".to_vec();
        v.extend_from_slice(METERLOGGER.get(9..).unwrap());
        let r = Readout::parse(&v).unwrap();
        assert_eq!(r.registers().count(), 4);
    }

    #[test]
    fn bcc_is_sum_not_xor() {
        let mut bad = METERLOGGER.to_vec();
        *bad.last_mut().unwrap() = 0x46; // the XOR of the same bytes
        assert_eq!(
            Readout::parse(&bad).unwrap_err(),
            Error::Bcc {
                computed: 0x0e,
                found: 0x46
            }
        );
    }

    #[test]
    fn ident_forms() {
        for (line, baud) in [
            ("KAM MC", None),
            ("KAM0MC", Some('0')),
            ("KAM 0 MC", Some('0')),
        ] {
            let i = Ident::parse(line.as_bytes()).unwrap();
            assert_eq!(
                (i.manufacturer, i.model, i.baud),
                ("KAM", "MC", baud),
                "{line}"
            );
        }
        for bad in ["", "KA", "K4M MC", "KAM", "KAM 0 ", "KAM\x01MC"] {
            assert_eq!(
                Ident::parse(bad.as_bytes()).unwrap_err().kind(),
                "ident",
                "{bad:?}"
            );
        }
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn emit_reproduces_meterlogger_frame() {
        let r = Mc66cReadout {
            customer_no: 40,
            energy: "0.00".parse().unwrap(),
            energy_unit: crate::scaling::EnergyUnit::MWh,
            volume: "0.0".parse().unwrap(),
            hours: 53189,
        };
        assert_eq!(r.emit(true).unwrap(), METERLOGGER);
        // 66-B style: no separators.
        let b = r.emit(false).unwrap();
        let parsed = Readout::parse(&b).unwrap();
        assert!(!parsed.separators);
        assert_eq!(parsed.registers().count(), 4);
        assert_eq!(parsed.energy().unwrap().value.to_string(), "0.00");
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn display_digit_widths() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(display_digits("e", d("433.65"), 7).unwrap(), "00433.65");
        assert_eq!(display_digits("e", d("456.631"), 7).unwrap(), "0456.631");
        assert_eq!(display_digits("e", d("53189"), 7).unwrap(), "0053189");
        assert_eq!(
            display_digits("e", d("12345678"), 7).unwrap_err().kind(),
            "value-range"
        );
        assert_eq!(
            display_digits("e", d("-1"), 7).unwrap_err().kind(),
            "value-range"
        );
    }

    #[test]
    fn framing_errors() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty"),
            (b"KAM MC\r\n", "ident"),
            (b"/KAM MC", "truncated"),
            (b"/KAM MC\r\nX", "framing"),
            (b"/KAM MC\r\n\x020.0(1)!\r\n", "truncated"),
            (b"/KAM MC\r\n\x020.0(1)!\r\n\x03", "truncated"),
            (b"/KAM MC\r\n\x020.0(1)\r\n\x03\x00", "bcc"),
            (b"/KAM MC\r\n\x020.0(1)!\r\n\x03\x0e\x00", "framing"),
        ];
        for (bytes, kind) in cases {
            assert_eq!(
                Readout::parse(bytes).unwrap_err().kind(),
                *kind,
                "{:?}",
                crate::escape::Escaped(bytes).to_string()
            );
        }
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn register_errors() {
        let frame = |body: &str| {
            let mut v = b"/KAM MC\r\n\x02".to_vec();
            v.extend_from_slice(body.as_bytes());
            v.push(ETX);
            let b = bcc(v.get(10..).unwrap());
            v.push(b);
            v
        };
        assert!(Readout::parse(&frame("0.0(1)!\r\n")).is_ok());
        assert!(Readout::parse(&frame("0.0(1)6.8(2.5*GJ)!")).is_ok());
        for (body, kind) in [
            ("0.0(1)\r\n!\r\n", "register"),
            ("0.0(1)6.8(2*GJ)\r\n6.26(3*m3)!\r\n", "register"),
            ("(1)!\r\n", "register"),
            ("0.0(1.)!\r\n", "register"),
            ("0.0(1*)!\r\n", "register"),
            ("0.0(1!\r\n", "register"),
            ("0.0(1)\r\n", "framing"),
            ("!\r\n", "framing"),
            ("0.0(1)\x01!\r\n", "framing"),
        ] {
            assert_eq!(
                Readout::parse(&frame(body)).unwrap_err().kind(),
                kind,
                "{body:?}"
            );
        }
    }
}
