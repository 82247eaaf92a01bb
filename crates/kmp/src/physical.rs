//! KMP physical layer: start/stop bytes, the bare ACK byte and byte stuffing.
//! Stuffing is undone in a single left-to-right pass (a chain of replaces mis-decodes `1B E4 F9`).

use alloc::vec::Vec;

use crate::Error;

/// Start byte of a frame sent to the meter.
pub const START_TO_METER: u8 = 0x80;
/// Start byte of a frame sent by the meter.
pub const START_FROM_METER: u8 = 0x40;
/// Stop byte ending every frame, both directions.
pub const STOP: u8 = 0x0D;
/// The application acknowledge: one bare byte, without start, CRC or stop.
pub const ACK: u8 = 0x06;
/// Escape byte: the next byte is a reserved value XOR 0xFF.
pub const ESCAPE: u8 = 0x1B;

/// The five values that never appear raw between start and stop.
pub const RESERVED: [u8; 5] = [ACK, STOP, ESCAPE, START_FROM_METER, START_TO_METER];

/// True for the five values that must be escaped inside a frame.
pub const fn is_reserved(byte: u8) -> bool {
    matches!(
        byte,
        ACK | STOP | ESCAPE | START_FROM_METER | START_TO_METER
    )
}

/// Appends `data` to `out`, sending every reserved byte as `0x1B, byte ^ 0xFF`.
pub fn stuff_into(data: &[u8], out: &mut Vec<u8>) {
    out.reserve(data.len());
    for &b in data {
        if is_reserved(b) {
            out.push(ESCAPE);
            out.push(b ^ 0xFF);
        } else {
            out.push(b);
        }
    }
}

/// Undoes [`stuff_into`] in one left-to-right pass.
///
/// Fails with [`Error::Stuffing`] on an escape followed by a byte that does not XOR to a
/// reserved value, on a trailing escape, and on a raw reserved byte (a correct sender never
/// emits one between start and stop).
pub fn unstuff(data: &[u8]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(data.len());
    let mut bytes = data.iter().copied().enumerate();
    while let Some((offset, b)) = bytes.next() {
        if b == ESCAPE {
            match bytes.next() {
                Some((_, next)) if is_reserved(next ^ 0xFF) => out.push(next ^ 0xFF),
                Some((_, next)) => return Err(Error::Stuffing { offset, byte: next }),
                None => return Err(Error::Stuffing { offset, byte: b }),
            }
        } else if is_reserved(b) {
            return Err(Error::Stuffing { offset, byte: b });
        } else {
            out.push(b);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_3_1_example() {
        let mut out = Vec::new();
        stuff_into(&[0x04, 0x0D, 0x00, 0x06], &mut out);
        assert_eq!(out, [0x04, 0x1B, 0xF2, 0x00, 0x1B, 0xF9]);
        assert_eq!(unstuff(&out).unwrap(), [0x04, 0x0D, 0x00, 0x06]);
    }

    #[test]
    fn every_reserved_value() {
        for (raw, pair) in [
            (0x06, [0x1B, 0xF9]),
            (0x0D, [0x1B, 0xF2]),
            (0x1B, [0x1B, 0xE4]),
            (0x40, [0x1B, 0xBF]),
            (0x80, [0x1B, 0x7F]),
        ] {
            let mut out = Vec::new();
            stuff_into(&[raw], &mut out);
            assert_eq!(out, pair);
            assert_eq!(unstuff(&pair).unwrap(), [raw]);
        }
    }

    #[test]
    fn single_pass_keeps_escaped_escape() {
        // 1B E4 is an escaped 1B; the F9 after it is data, not part of another escape.
        assert_eq!(unstuff(&[0x1B, 0xE4, 0xF9]).unwrap(), [0x1B, 0xF9]);
    }

    #[test]
    fn bad_escapes() {
        assert_eq!(
            unstuff(&[0x3F, 0x1B, 0x12]),
            Err(Error::Stuffing {
                offset: 1,
                byte: 0x12
            })
        );
        assert_eq!(
            unstuff(&[0x3F, 0x1B]),
            Err(Error::Stuffing {
                offset: 1,
                byte: 0x1B
            })
        );
        assert_eq!(
            unstuff(&[0x3F, 0x06]),
            Err(Error::Stuffing {
                offset: 1,
                byte: 0x06
            })
        );
    }
}
