//! Faults the simulator can inject into its replies: drop, corrupt, truncate, delay, late-baud.
//! Given as a small text spec so that tests and users can script exactly what goes wrong.

use std::time::Duration;

use kamstrup_optical::{LineSettings, Parity};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One kind of damage to a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// Send nothing.
    Drop,
    /// Flip bits in one byte inside the frame, so its CRC fails.
    Corrupt,
    /// Send only the first half of the reply.
    Truncate,
    /// Answer late (by [`FaultPlan::delay`]).
    Delay,
    /// MULTICAL 66C only: garble the start of the reply as a receiver still at 300 Bd sees it
    /// (the corruption seen in the field when a reader switches to 1200 Bd too late).
    LateBaud,
}

impl FaultKind {
    fn parse(name: &str) -> Option<FaultKind> {
        Some(match name {
            "drop" => FaultKind::Drop,
            "corrupt" => FaultKind::Corrupt,
            "truncate" => FaultKind::Truncate,
            "delay" => FaultKind::Delay,
            "late-baud" => FaultKind::LateBaud,
            _ => return None,
        })
    }
}

/// When a rule fires.
#[derive(Clone, Copy, Debug, PartialEq)]
enum When {
    Always,
    Probability(f64),
    /// Only on the n-th reply (1-based).
    Nth(u64),
}

/// A parsed `--faults` spec and the state to apply it.
#[derive(Clone, Debug)]
pub struct FaultPlan {
    rules: Vec<(FaultKind, When)>,
    rng: StdRng,
    replies: u64,
    /// How long a `delay` fault holds the reply back.
    pub delay: Duration,
}

/// Why a `--faults` spec was not understood.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad fault spec {entry:?}: {why}. Use e.g. \"drop@1\", \"corrupt=0.2\", \"truncate\", \"delay@2,drop=0.1\", \"late-baud@1\"")]
pub struct FaultSpecError {
    entry: String,
    why: &'static str,
}

impl Default for FaultPlan {
    fn default() -> Self {
        FaultPlan::none()
    }
}

impl FaultPlan {
    /// No faults.
    pub fn none() -> FaultPlan {
        FaultPlan {
            rules: Vec::new(),
            rng: StdRng::seed_from_u64(0),
            replies: 0,
            delay: Duration::from_secs(3),
        }
    }

    /// Parses `KIND`, `KIND=PROBABILITY` or `KIND@N` entries, comma separated; KIND is one of
    /// drop, corrupt, truncate, delay, late-baud. `seed` makes probabilistic faults repeatable.
    pub fn parse(spec: &str, seed: u64) -> Result<FaultPlan, FaultSpecError> {
        let mut plan = FaultPlan::none();
        plan.rng = StdRng::seed_from_u64(seed);
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let err = |why| FaultSpecError {
                entry: entry.to_string(),
                why,
            };
            let (name, when) = if let Some((name, p)) = entry.split_once('=') {
                let p: f64 = p.parse().map_err(|_| err("probability is not a number"))?;
                if !(0.0..=1.0).contains(&p) {
                    return Err(err("probability must be between 0 and 1"));
                }
                (name, When::Probability(p))
            } else if let Some((name, n)) = entry.split_once('@') {
                let n: u64 = n
                    .parse()
                    .map_err(|_| err("reply number is not a whole number"))?;
                if n == 0 {
                    return Err(err("replies are counted from 1"));
                }
                (name, When::Nth(n))
            } else {
                (entry, When::Always)
            };
            let kind = FaultKind::parse(name.trim())
                .ok_or_else(|| err("unknown fault (drop, corrupt, truncate, delay, late-baud)"))?;
            plan.rules.push((kind, when));
        }
        Ok(plan)
    }

    /// True if no fault can ever fire.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The fault for the next reply, if any (first matching rule wins).
    pub fn next_reply(&mut self) -> Option<FaultKind> {
        self.replies += 1;
        let n = self.replies;
        let mut chosen = None;
        for (kind, when) in &self.rules {
            let fires = match *when {
                When::Always => true,
                When::Nth(k) => k == n,
                When::Probability(p) => self.rng.gen_bool(p),
            };
            if fires && chosen.is_none() {
                chosen = Some(*kind);
            }
        }
        chosen
    }

    /// Damages a reply in place for `Corrupt`/`Truncate`.
    pub fn damage(&mut self, kind: FaultKind, reply: &mut Vec<u8>) {
        match kind {
            FaultKind::Corrupt => {
                // Flip one bit of a plain data byte, chosen so that the result is still a
                // well-formed frame: then only the CRC check can catch it, as with light
                // interference on the eye. Reserved bytes and escaped pairs are left alone.
                let reserved = |b: u8| [0x06, 0x0D, 0x1B, 0x40, 0x80].contains(&b);
                let candidates: Vec<usize> = (1..reply.len().saturating_sub(1))
                    .filter(|&i| {
                        let b = reply.get(i).copied().unwrap_or(0x1B);
                        let escaped = reply.get(i - 1) == Some(&0x1B);
                        !escaped && !reserved(b) && !reserved(b ^ 0x01)
                    })
                    .collect();
                if candidates.is_empty() {
                    return;
                }
                let pick = candidates
                    .get(self.rng.gen_range(0..candidates.len()))
                    .copied()
                    .unwrap_or(1);
                if let Some(slot) = reply.get_mut(pick) {
                    *slot ^= 0x01;
                }
            }
            FaultKind::Truncate => {
                let keep = reply.len() / 2;
                reply.truncate(keep.max(1));
            }
            _ => {}
        }
    }
}

impl FaultPlan {
    /// Damages a MULTICAL 66C reply (ASCII lines) in place for `Corrupt`, `Truncate` and
    /// `LateBaud`. The 66C has no checksum, so `Corrupt` turns one digit into a non-digit (a
    /// changed digit would go unnoticed by any reader, as it would on a real wire).
    pub fn damage_text(&mut self, kind: FaultKind, reply: &mut Vec<u8>, line: LineSettings) {
        match kind {
            FaultKind::Corrupt => {
                // Not the first field: late-baud already covers a damaged start.
                let candidates: Vec<usize> = reply
                    .iter()
                    .enumerate()
                    .skip(8)
                    .filter(|(_, b)| b.is_ascii_digit())
                    .map(|(i, _)| i)
                    .collect();
                if candidates.is_empty() {
                    return;
                }
                let pick = candidates
                    .get(self.rng.gen_range(0..candidates.len()))
                    .copied()
                    .unwrap_or(0);
                if let Some(slot) = reply.get_mut(pick) {
                    // A flipped high data bit: '0'..'9' become 'p'..'y'.
                    *slot ^= 0x40;
                }
            }
            FaultKind::Truncate => {
                let keep = reply.len() / 2;
                reply.truncate(keep.max(1));
            }
            FaultKind::LateBaud => {
                // The reader switched about four characters into the reply: those arrived at
                // 300 Bd and came out as one or two garbage bytes.
                let cut = LATE_BAUD_BYTES.min(reply.len());
                let garbled = misread(reply.get(..cut).unwrap_or_default(), line, 300);
                reply.splice(..cut, garbled);
            }
            FaultKind::Drop | FaultKind::Delay => {}
        }
    }
}

/// How many reply bytes a forced `late-baud` fault garbles (≈ one character time at 300 Bd).
pub const LATE_BAUD_BYTES: usize = 4;

/// What a UART receiving at `read_baud` (7 data bits, even parity) makes of `bytes` sent with
/// `sent` settings: the bit stream is sampled at the wrong rate, so characters merge, split and
/// change. With equal rates the bytes come back unchanged (as 7-bit characters).
///
/// This models the corruption of a 66C reply whose reader switched to 1200 Bd too late; the
/// first bytes of the golles issue #1 capture (`'n\950 …`) look just like it.
pub fn misread(bytes: &[u8], sent: LineSettings, read_baud: u32) -> Vec<u8> {
    if sent.baud == 0 || read_baud == 0 {
        return Vec::new();
    }
    // The line as a list of bit levels, one per sent bit time; idle (1) before and after.
    let mut bits: Vec<bool> = Vec::with_capacity(bytes.len() * 11);
    for &byte in bytes {
        bits.push(false);
        let data_bits = sent.data_bits.count();
        let mut ones = 0u32;
        for k in 0..data_bits {
            let bit = (byte >> k) & 1 == 1;
            ones += u32::from(bit);
            bits.push(bit);
        }
        match sent.parity {
            Parity::None => {}
            Parity::Even => bits.push(ones % 2 == 1),
            Parity::Odd => bits.push(ones % 2 == 0),
        }
        bits.extend(std::iter::repeat_n(true, sent.stop_bits.count() as usize));
    }
    let tx_bit = 1.0 / f64::from(sent.baud);
    let rx_bit = 1.0 / f64::from(read_baud);
    let level = |t: f64| -> bool {
        if t < 0.0 {
            return true;
        }
        let i = (t / tx_bit).floor();
        if i >= bits.len() as f64 {
            return true;
        }
        bits.get(i as usize).copied().unwrap_or(true)
    };
    let end = bits.len() as f64 * tx_bit;
    let mut out = Vec::new();
    let mut t = 0.0;
    while t < end {
        // Hunt for a start bit: the next sent bit time at which the line is low.
        let next = (t / tx_bit).ceil() as usize;
        let Some(offset) = bits.iter().skip(next).position(|b| !b) else {
            break;
        };
        let start = (next + offset) as f64 * tx_bit;
        if level(start + rx_bit / 2.0) {
            // A glitch shorter than half a received bit: not a start bit.
            t = start + tx_bit;
            continue;
        }
        let mut value = 0u8;
        for k in 0..7 {
            if level(start + rx_bit * (1.5 + f64::from(k))) {
                value |= 1 << k;
            }
        }
        out.push(value);
        // Parity and stop bit are sampled but not checked (raw mode passes such characters).
        t = start + rx_bit * 9.5;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nth_rules_fire_once() {
        let mut plan = FaultPlan::parse("drop@1, corrupt@3", 1).unwrap();
        assert_eq!(plan.next_reply(), Some(FaultKind::Drop));
        assert_eq!(plan.next_reply(), None);
        assert_eq!(plan.next_reply(), Some(FaultKind::Corrupt));
        assert_eq!(plan.next_reply(), None);
    }

    #[test]
    fn always_and_probability() {
        let mut always = FaultPlan::parse("truncate", 1).unwrap();
        assert!((0..10).all(|_| always.next_reply() == Some(FaultKind::Truncate)));
        let mut never = FaultPlan::parse("drop=0", 1).unwrap();
        assert!((0..10).all(|_| never.next_reply().is_none()));
        let mut half = FaultPlan::parse("drop=0.5", 7).unwrap();
        let fired = (0..1000).filter(|_| half.next_reply().is_some()).count();
        assert!((350..650).contains(&fired), "{fired}");
    }

    #[test]
    fn bad_specs_say_why() {
        for bad in [
            "explode",
            "drop=2",
            "drop@0",
            "drop@x",
            "corrupt=abc",
            "late-baud=x",
        ] {
            let e = FaultPlan::parse(bad, 0).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn corrupt_changes_one_inner_byte() {
        let mut plan = FaultPlan::parse("corrupt", 3).unwrap();
        let original = vec![0x40, 0x3F, 0x02, 0x01, 0x23, 0x45, 0x67, 0xE9, 0x56, 0x0D];
        let mut reply = original.clone();
        plan.damage(FaultKind::Corrupt, &mut reply);
        let diffs = original.iter().zip(&reply).filter(|(a, b)| a != b).count();
        assert_eq!(diffs, 1);
        assert_eq!(reply.first(), Some(&0x40));
        assert_eq!(reply.last(), Some(&0x0D));
    }

    #[test]
    fn misread_at_the_right_baud_is_identity() {
        let reply = b"0507109 1296626 \r";
        assert_eq!(misread(reply, LineSettings::MC66C_REPLY, 1200), reply);
    }

    #[test]
    fn misread_at_300_garbles_and_shrinks() {
        let reply = b"0507109 1296626 \r";
        let got = misread(reply, LineSettings::MC66C_REPLY, 300);
        assert!(got.len() < reply.len() / 2, "{got:?}");
        assert_ne!(got.as_slice(), reply.get(..got.len()).unwrap());
    }

    #[test]
    fn late_baud_breaks_the_first_field_only() {
        let mut plan = FaultPlan::parse("late-baud", 1).unwrap();
        let original =
            b"0507109 1296626 0032673 0006811 0003366 0003445 0000031 0000079 0000093 0000000 \r";
        let mut reply = original.to_vec();
        plan.damage_text(FaultKind::LateBaud, &mut reply, LineSettings::MC66C_REPLY);
        assert!(reply.len() < original.len());
        assert!(reply.ends_with(&original[LATE_BAUD_BYTES..]));
        assert!(<kamstrup_mc66c::StandardData1 as kamstrup_mc66c::Record>::parse(&reply).is_err());
    }

    #[test]
    fn text_corruption_makes_a_non_digit() {
        let mut plan = FaultPlan::parse("corrupt", 5).unwrap();
        let original = b"0507109 1296626 0032673 \r".to_vec();
        let mut reply = original.clone();
        plan.damage_text(FaultKind::Corrupt, &mut reply, LineSettings::MC66C_REPLY);
        let diffs: Vec<usize> = (0..reply.len())
            .filter(|&i| reply[i] != original[i])
            .collect();
        assert_eq!(diffs.len(), 1);
        assert!(diffs[0] >= 8 && !reply[diffs[0]].is_ascii_digit());
    }
}
