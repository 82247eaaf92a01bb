//! Info codes: the bit-sum fault register of the 66-CDE (TD p.14) and of the older 66-B
//! (MULTICAL III TD §A.1.4), decoded to named bits.

use core::fmt;

/// One documented info bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InfoFlag {
    /// The bit value (1, 2, 4, …).
    pub bit: u32,
    /// Stable snake_case name for machine output.
    pub name: &'static str,
    /// What it means.
    pub description: &'static str,
}

const fn flag(bit: u32, name: &'static str, description: &'static str) -> InfoFlag {
    InfoFlag {
        bit,
        name,
        description,
    }
}

/// MULTICAL 66-C/D/E info bits (TD p.14).
pub const MC66CDE_INFO: &[InfoFlag] = &[
    flag(
        1,
        "supply_missing",
        "primary supply missing (hour counter stops)",
    ),
    flag(4, "t2_out_of_range", "T2 (return) outside 0…165 °C"),
    flag(8, "t1_out_of_range", "T1 (flow) outside 0…165 °C"),
    flag(32, "t3_out_of_range", "T3 outside range (66-D only)"),
    flag(
        64,
        "leak_cold_water",
        "leak in the cold-water system (input A)",
    ),
    flag(256, "leak_heating", "leak in the heating system (V1 vs V2)"),
    flag(512, "burst_heating", "burst in the heating system (90 s)"),
];

/// MULTICAL III (66-B) info bits (MULTICAL III TD §A.1.4).
pub const MC66B_INFO: &[InfoFlag] = &[
    flag(
        2,
        "water_meter_fault",
        "water meter fault (no pulses for 48 h with Δt > 20 °C)",
    ),
    flag(4, "return_sensor_fault", "return temperature probe fault"),
    flag(8, "flow_sensor_fault", "flow temperature probe fault"),
    flag(
        128,
        "battery_due",
        "battery replacement due (8 years after hour counter reset)",
    ),
    flag(256, "excessive_pulses", "excessive pulses"),
];

/// Which info table applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum InfoTable {
    /// MULTICAL 66-C/D/E.
    #[default]
    Mc66Cde,
    /// MULTICAL III (66-B).
    Mc66B,
}

impl InfoTable {
    /// The documented bits of this table.
    pub const fn flags(self) -> &'static [InfoFlag] {
        match self {
            InfoTable::Mc66Cde => MC66CDE_INFO,
            InfoTable::Mc66B => MC66B_INFO,
        }
    }
}

/// An info code as the meter sends it: a sum of bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct InfoCode(pub u32);

impl InfoCode {
    /// True if no fault is reported.
    pub const fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// The documented bits that are set, in bit order.
    pub fn flags(self, table: InfoTable) -> impl Iterator<Item = &'static InfoFlag> {
        table.flags().iter().filter(move |f| self.0 & f.bit != 0)
    }

    /// Set bits that the table does not document (worth logging: a different model or a
    /// corrupt reply).
    pub fn unknown_bits(self, table: InfoTable) -> u32 {
        let known = table.flags().iter().fold(0, |acc, f| acc | f.bit);
        self.0 & !known
    }

    /// Displays the code with its decoded names: `"264 (t1_out_of_range, leak_heating)"`.
    pub fn describe(self, table: InfoTable) -> InfoDescription {
        InfoDescription { code: self, table }
    }
}

/// Display helper returned by [`InfoCode::describe`].
#[derive(Clone, Copy, Debug)]
pub struct InfoDescription {
    code: InfoCode,
    table: InfoTable,
}

impl fmt::Display for InfoDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code.0)?;
        if self.code.is_ok() {
            return Ok(());
        }
        f.write_str(" (")?;
        let mut first = true;
        for flag in self.code.flags(self.table) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            f.write_str(flag.name)?;
        }
        let unknown = self.code.unknown_bits(self.table);
        if unknown != 0 {
            if !first {
                f.write_str(", ")?;
            }
            write!(f, "unknown bits 0x{unknown:x}")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_cde() {
        let c = InfoCode(8 + 256 + 2);
        let names: Vec<_> = c.flags(InfoTable::Mc66Cde).map(|f| f.name).collect();
        assert_eq!(names, ["t1_out_of_range", "leak_heating"]);
        assert_eq!(c.unknown_bits(InfoTable::Mc66Cde), 2);
        assert_eq!(
            c.describe(InfoTable::Mc66Cde).to_string(),
            "266 (t1_out_of_range, leak_heating, unknown bits 0x2)"
        );
        assert_eq!(InfoCode(0).describe(InfoTable::Mc66Cde).to_string(), "0");
    }

    #[test]
    fn decode_b() {
        let c = InfoCode(2 + 128 + 1);
        let names: Vec<_> = c.flags(InfoTable::Mc66B).map(|f| f.name).collect();
        assert_eq!(names, ["water_meter_fault", "battery_due"]);
        assert_eq!(c.unknown_bits(InfoTable::Mc66B), 1);
    }

    #[test]
    fn bits_are_single_and_distinct() {
        for table in [InfoTable::Mc66Cde, InfoTable::Mc66B] {
            let mut all = 0;
            for f in table.flags() {
                assert_eq!(f.bit.count_ones(), 1);
                assert_eq!(all & f.bit, 0);
                all |= f.bit;
            }
        }
    }
}
