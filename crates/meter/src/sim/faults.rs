//! Faults the simulator can inject into its replies: drop, corrupt, truncate, delay.
//! Given as a small text spec so that tests and users can script exactly what goes wrong.

use std::time::Duration;

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
}

impl FaultKind {
    fn parse(name: &str) -> Option<FaultKind> {
        Some(match name {
            "drop" => FaultKind::Drop,
            "corrupt" => FaultKind::Corrupt,
            "truncate" => FaultKind::Truncate,
            "delay" => FaultKind::Delay,
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
#[error("bad fault spec {entry:?}: {why}. Use e.g. \"drop@1\", \"corrupt=0.2\", \"truncate\", \"delay@2,drop=0.1\"")]
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
    /// drop, corrupt, truncate, delay. `seed` makes probabilistic faults repeatable.
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
                .ok_or_else(|| err("unknown fault (drop, corrupt, truncate, delay)"))?;
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
        for bad in ["explode", "drop=2", "drop@0", "drop@x", "corrupt=abc"] {
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
}
