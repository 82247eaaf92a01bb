//! The meter's info code (register 99 / the 66C's `info` field) as named problem flags, one
//! table per meter family; every layer (CLI, sinks, web) decodes through this one model.
//!
//! The bit meanings differ between families, so a code is only decoded when the family is
//! known for sure (from the protocol or a model name, never guessed); otherwise it stays a raw
//! number with "family unknown". Sources of the tables:
//!
//! * MULTICAL 403 (and 603/803, same generation): TD 403 (FILE100000166_B, §7.7.1 "bit format").
//! * MULTICAL 601/602: TD 602 (5512-931, §6.11.2 "Types of info codes").
//! * MULTICAL 66-C/D/E and MULTICAL III (66-B): the tables of `kamstrup-mc66c` (TD p.14,
//!   MULTICAL III TD §A.1.4), converted here so there is one source for them.

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::{Protocol, Reading};

/// One documented info bit: the 66C crate's type, so its tables are used as they are.
pub use kamstrup_mc66c::InfoFlag;

const fn flag(bit: u32, name: &'static str, description: &'static str) -> InfoFlag {
    InfoFlag {
        bit,
        name,
        description,
    }
}

/// MULTICAL 403 info bits (TD 403 §7.7.1, bit format). Bit 1 ("no voltage supply") is only
/// logged, never current, but is listed so that a logged code decodes too.
const MULTICAL_403: &[InfoFlag] = &[
    flag(1, "no_voltage_supply", "no voltage supply"),
    flag(2, "low_battery", "low battery level"),
    flag(4, "external_alarm", "external alarm (e.g. via KMP)"),
    flag(
        8,
        "t1_above_range",
        "t1 above measuring range or disconnected",
    ),
    flag(
        16,
        "t2_above_range",
        "t2 above measuring range or disconnected",
    ),
    flag(
        32,
        "t1_below_range",
        "t1 below measuring range or short-circuited",
    ),
    flag(
        64,
        "t2_below_range",
        "t2 below measuring range or short-circuited",
    ),
    flag(
        128,
        "invalid_delta_t",
        "invalid temperature difference (t1 − t2)",
    ),
    flag(256, "v1_air", "air in flow sensor V1"),
    flag(
        512,
        "v1_wrong_direction",
        "flow sensor V1: wrong flow direction",
    ),
    flag(2048, "v1_above_qs", "V1 above qs for more than an hour"),
    flag(4096, "in_a_leak", "pulse input A: leakage in the system"),
    flag(8192, "in_b_leak", "pulse input B: leakage in the system"),
    flag(16384, "in_a_alarm", "pulse input A: external alarm"),
    flag(32768, "in_b_alarm", "pulse input B: external alarm"),
];

/// MULTICAL 601/602 info bits (TD 602 §6.11.2; the flow-sensor bits need ULTRAFLOW X4 info on).
const MULTICAL_602: &[InfoFlag] = &[
    flag(1, "supply_interrupted", "supply voltage has been cut off"),
    flag(
        4,
        "t2_out_of_range",
        "temperature sensor T2 outside measuring range",
    ),
    flag(
        8,
        "t1_out_of_range",
        "temperature sensor T1 outside measuring range",
    ),
    flag(
        16,
        "v1_datacomm_error",
        "flow sensor V1: data communication error",
    ),
    flag(
        32,
        "t3_out_of_range",
        "temperature sensor T3 outside measuring range",
    ),
    flag(64, "leak_cold_water", "leak in the cold-water system"),
    flag(
        128,
        "v2_wrong_pulse_figure",
        "flow sensor V2: wrong pulse figure",
    ),
    flag(256, "leak_heating", "leak in the heating system"),
    flag(512, "burst_heating", "burst in the heating system"),
    flag(
        1024,
        "v2_datacomm_error",
        "flow sensor V2: data communication error",
    ),
    flag(
        2048,
        "v1_wrong_pulse_figure",
        "flow sensor V1: wrong pulse figure",
    ),
    flag(4096, "v1_air", "flow sensor V1: signal too low (air)"),
    flag(8192, "v2_air", "flow sensor V2: signal too low (air)"),
    flag(
        16384,
        "v1_wrong_direction",
        "flow sensor V1: wrong flow direction",
    ),
    flag(
        32768,
        "v2_wrong_direction",
        "flow sensor V2: wrong flow direction",
    ),
];

const MC66CDE: &[InfoFlag] = kamstrup_mc66c::MC66CDE_INFO;
const MC66B: &[InfoFlag] = kamstrup_mc66c::MC66B_INFO;

/// A family of meters that share one info-code table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InfoFamily {
    /// MULTICAL 403 / 603 / 803 (32-bit "bit format" codes).
    Multical403,
    /// MULTICAL 601 / 602.
    Multical602,
    /// MULTICAL 66-C/D/E.
    Mc66Cde,
    /// MULTICAL III (66-B).
    Mc66B,
}

impl InfoFamily {
    /// Every family.
    pub const ALL: [InfoFamily; 4] = [
        InfoFamily::Multical403,
        InfoFamily::Multical602,
        InfoFamily::Mc66Cde,
        InfoFamily::Mc66B,
    ];

    /// The documented bits, in bit order.
    pub fn flags(self) -> &'static [InfoFlag] {
        match self {
            InfoFamily::Multical403 => MULTICAL_403,
            InfoFamily::Multical602 => MULTICAL_602,
            InfoFamily::Mc66Cde => MC66CDE,
            InfoFamily::Mc66B => MC66B,
        }
    }

    /// The meters it covers, for people.
    pub fn label(self) -> &'static str {
        match self {
            InfoFamily::Multical403 => "MULTICAL 403/603",
            InfoFamily::Multical602 => "MULTICAL 601/602",
            InfoFamily::Mc66Cde => "MULTICAL 66-C/D/E",
            InfoFamily::Mc66B => "MULTICAL III (66-B)",
        }
    }

    /// The family of a meter from what is known for sure: the 66C protocol, or a model name
    /// such as `MULTICAL 403` (a KMP type code alone says nothing: its mapping is not public).
    pub fn of(protocol: Protocol, model: Option<&str>) -> Option<InfoFamily> {
        if protocol == Protocol::Mc66c {
            return Some(InfoFamily::Mc66Cde);
        }
        let model = model?.to_ascii_lowercase();
        let number = model
            .strip_prefix("multical")
            .map(|m| m.trim_start_matches([' ', '-', '®']))?;
        let digits: String = number.chars().take_while(char::is_ascii_digit).collect();
        match digits.as_str() {
            "403" | "603" | "803" => Some(InfoFamily::Multical403),
            "601" | "602" => Some(InfoFamily::Multical602),
            _ => None,
        }
    }
}

/// An info code with the family that gives its bits a meaning (if known).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InfoStatus {
    /// The code as the meter sent it (a sum of bits).
    pub code: u32,
    /// Whose table applies; `None` = the bits cannot be named.
    pub family: Option<InfoFamily>,
}

impl InfoStatus {
    /// The info code of a reading (register `info`), when it was read and is a whole number.
    pub fn of_reading(reading: &Reading, model: Option<&str>) -> Option<InfoStatus> {
        let reg = reading.get("info")?;
        let code: u32 = reg.value.to_string().parse().ok()?;
        Some(InfoStatus {
            code,
            family: InfoFamily::of(reading.meter.protocol, model),
        })
    }

    /// True when the meter reports nothing.
    pub fn is_ok(&self) -> bool {
        self.code == 0
    }

    /// The named bits that are set.
    pub fn flags(&self) -> impl Iterator<Item = &'static InfoFlag> + '_ {
        self.family
            .map_or(&[][..], InfoFamily::flags)
            .iter()
            .filter(|f| self.code & f.bit != 0)
    }

    /// Set bits without a name (all of them when the family is unknown).
    pub fn unknown_bits(&self) -> u32 {
        let known = self
            .family
            .map_or(&[][..], InfoFamily::flags)
            .iter()
            .fold(0, |acc, f| acc | f.bit);
        self.code & !known
    }

    /// The names of the set bits (`["t1_above_range", "v1_air"]`), then `bit_<n>` for each set
    /// bit without a name.
    pub fn names(&self) -> Vec<String> {
        let mut out: Vec<String> = self.flags().map(|f| f.name.to_owned()).collect();
        let unknown = self.unknown_bits();
        out.extend(
            (0..32)
                .map(|i| 1u32 << i)
                .filter(|b| unknown & b != 0)
                .map(|b| format!("bit_{b}")),
        );
        out
    }
}

/// `0`, or `264 (t1_out_of_range, leak_heating)`.
impl fmt::Display for InfoStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if self.is_ok() {
            return Ok(());
        }
        write!(f, " ({})", self.names().join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_have_single_distinct_bits_and_unique_names() {
        for family in InfoFamily::ALL {
            let mut all = 0;
            let mut names = std::collections::BTreeSet::new();
            for f in family.flags() {
                assert_eq!(f.bit.count_ones(), 1, "{family:?} {}", f.name);
                assert_eq!(all & f.bit, 0, "{family:?} {}", f.name);
                assert!(names.insert(f.name), "{family:?} {}", f.name);
                assert!(f
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
                all |= f.bit;
            }
        }
    }

    #[test]
    fn the_66c_tables_are_the_protocol_crates() {
        let ours: Vec<_> = InfoFamily::Mc66Cde
            .flags()
            .iter()
            .map(|f| (f.bit, f.name))
            .collect();
        let theirs: Vec<_> = kamstrup_mc66c::MC66CDE_INFO
            .iter()
            .map(|f| (f.bit, f.name))
            .collect();
        assert_eq!(ours, theirs);
        assert_eq!(
            InfoFamily::Mc66B.flags().len(),
            kamstrup_mc66c::MC66B_INFO.len()
        );
    }

    #[test]
    fn family_from_protocol_and_model_never_guessed() {
        assert_eq!(
            InfoFamily::of(Protocol::Mc66c, None),
            Some(InfoFamily::Mc66Cde)
        );
        assert_eq!(
            InfoFamily::of(Protocol::Kmp, Some("MULTICAL 403")),
            Some(InfoFamily::Multical403)
        );
        assert_eq!(
            InfoFamily::of(Protocol::Kmp, Some("MULTICAL 602")),
            Some(InfoFamily::Multical602)
        );
        assert_eq!(InfoFamily::of(Protocol::Kmp, Some("MULTICAL 402")), None);
        assert_eq!(
            InfoFamily::of(Protocol::Kmp, Some("KMP type 0x0004 rev F1")),
            None
        );
        assert_eq!(InfoFamily::of(Protocol::Kmp, None), None);
    }

    #[test]
    fn decode_and_display() {
        let s = InfoStatus {
            code: 8 + 256 + 1024,
            family: Some(InfoFamily::Multical403),
        };
        assert_eq!(s.to_string(), "1288 (t1_above_range, v1_air, bit_1024)");
        let cde = InfoStatus {
            code: 264,
            family: Some(InfoFamily::Mc66Cde),
        };
        assert_eq!(cde.to_string(), "264 (t1_out_of_range, leak_heating)");
        let unknown = InfoStatus {
            code: 6,
            family: None,
        };
        assert_eq!(unknown.to_string(), "6 (bit_2, bit_4)");
        let ok = InfoStatus {
            code: 0,
            family: None,
        };
        assert_eq!(ok.to_string(), "0");
        assert!(ok.is_ok());
    }
}
