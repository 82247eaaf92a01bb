//! KMP unit codes (the byte after the register id in each record) and their physical quantity.
//! Unknown codes are kept as raw values: they must never abort decoding.

use core::fmt;

/// A KMP unit code as sent by the meter. The meter's unit byte is authoritative.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Unit(pub u8);

/// What kind of physical quantity a unit measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum Quantity {
    /// Energy (Wh, J, cal and multiples; GJ×10).
    Energy,
    /// Volume (l, m³, m³×10, US gal).
    Volume,
    /// Mass (ton, ton×10).
    Mass,
    /// Temperature (°C).
    Temperature,
    /// Temperature difference (K).
    TemperatureDifference,
    /// Active power (W and multiples).
    Power,
    /// Volume or mass flow (l/h, m³/h, ton/h, US gal/min).
    Flow,
    /// Pressure (bar).
    Pressure,
    /// A duration or counter of time (h, minutes, s, ms, days).
    Duration,
    /// Time of day as a decimal number hhmmss.
    TimeOfDay,
    /// A date as a decimal number (yymmdd, yyyymmdd, mmdd).
    Date,
    /// A plain number without unit (serial numbers, info codes, counters).
    Number,
    /// Electrical quantities other than active power and energy (var, VA, V, A, Hz and their
    /// energies).
    Electrical,
    /// Known code that fits none of the above (bit fields, RTC, ASCII, addresses, m³×°C ...).
    Other,
    /// A code missing from the table.
    Unknown,
}

impl Unit {
    /// Code 0x00: no unit.
    pub const NONE: Unit = Unit(0x00);
    /// Code 0x02: kWh.
    pub const KWH: Unit = Unit(0x02);
    /// Code 0x03: MWh.
    pub const MWH: Unit = Unit(0x03);
    /// Code 0x08: GJ.
    pub const GJ: Unit = Unit(0x08);
    /// Code 0x0C: Gcal.
    pub const GCAL: Unit = Unit(0x0C);
    /// Code 0x16: kW.
    pub const KW: Unit = Unit(0x16);
    /// Code 0x25: °C.
    pub const CELSIUS: Unit = Unit(0x25);
    /// Code 0x26: K (temperature difference).
    pub const KELVIN: Unit = Unit(0x26);
    /// Code 0x28: m³.
    pub const M3: Unit = Unit(0x28);
    /// Code 0x29: l/h.
    pub const L_PER_H: Unit = Unit(0x29);
    /// Code 0x2E: hours.
    pub const HOURS: Unit = Unit(0x2E);
    /// Code 0x2F: time of day hh:mm:ss (value is the decimal number hhmmss).
    pub const TIME_HHMMSS: Unit = Unit(0x2F);
    /// Code 0x30: date yy:mm:dd (value is the decimal number yymmdd).
    pub const DATE_YYMMDD: Unit = Unit(0x30);
    /// Code 0x31: date yyyy:mm:dd.
    pub const DATE_YYYYMMDD: Unit = Unit(0x31);
    /// Code 0x32: date mm:dd.
    pub const DATE_MMDD: Unit = Unit(0x32);
    /// Code 0x33: a plain number.
    pub const NUMBER: Unit = Unit(0x33);

    /// The printable symbol: `"GJ"`, `"MWh"`, `"m³"`, `"°C"`, `"l/h"`, `"h"` …
    ///
    /// Codes 0x00 (no unit) and 0x33 (number) are known and give `Some("")`; `None` means the
    /// code is unknown, so `symbol().is_some() == is_known()`. Codes 0x41..=0x4A come from a
    /// single electricity-meter source and are less certain; 0x15/0x19 are read as W/var
    /// (some tables say kW/kvar).
    pub fn symbol(&self) -> Option<&'static str> {
        Some(match self.0 {
            0x00 => "",
            0x01 => "Wh",
            0x02 => "kWh",
            0x03 => "MWh",
            0x04 => "GWh",
            0x05 => "J",
            0x06 => "kJ",
            0x07 => "MJ",
            0x08 => "GJ",
            0x09 => "cal",
            0x0A => "kcal",
            0x0B => "Mcal",
            0x0C => "Gcal",
            0x0D => "varh",
            0x0E => "kvarh",
            0x0F => "Mvarh",
            0x10 => "Gvarh",
            0x11 => "VAh",
            0x12 => "kVAh",
            0x13 => "MVAh",
            0x14 => "GVAh",
            0x15 => "W",
            0x16 => "kW",
            0x17 => "MW",
            0x18 => "GW",
            0x19 => "var",
            0x1A => "kvar",
            0x1B => "Mvar",
            0x1C => "Gvar",
            0x1D => "VA",
            0x1E => "kVA",
            0x1F => "MVA",
            0x20 => "GVA",
            0x21 => "V",
            0x22 => "A",
            0x23 => "kV",
            0x24 => "kA",
            0x25 => "°C",
            0x26 => "K",
            0x27 => "l",
            0x28 => "m³",
            0x29 => "l/h",
            0x2A => "m³/h",
            0x2B => "m³×°C",
            0x2C => "ton",
            0x2D => "ton/h",
            0x2E => "h",
            0x2F => "hh:mm:ss",
            0x30 => "yy:mm:dd",
            0x31 => "yyyy:mm:dd",
            0x32 => "mm:dd",
            0x33 => "",
            0x34 => "bar",
            0x35 => "RTC",
            0x36 => "ASCII",
            0x37 => "m³×10",
            0x38 => "ton×10",
            0x39 => "GJ×10",
            0x3A => "min",
            0x3B => "bitfield",
            0x3C => "s",
            0x3D => "ms",
            0x3E => "days",
            0x3F => "RTC-Q",
            0x40 => "datetime",
            0x41 => "imp/l",
            0x42 => "l/imp",
            0x43 => "Hz",
            0x44 => "°",
            0x45 => "%",
            0x46 => "US gal",
            0x47 => "US gal/min",
            0x48 => "Kamstrup datetime",
            0x49 => "IPv4",
            0x4A => "IPv6",
            // Register 348 (3-series): DST offset + YY MM DD hh mm ss, standard time.
            0x4F => "date-time",
            _ => return None,
        })
    }

    /// The kind of quantity; [`Quantity::Unknown`] for codes missing from the table.
    pub fn quantity(&self) -> Quantity {
        match self.0 {
            0x01..=0x0C | 0x39 => Quantity::Energy,
            0x0D..=0x14 | 0x19..=0x24 | 0x43 => Quantity::Electrical,
            0x15..=0x18 => Quantity::Power,
            0x25 => Quantity::Temperature,
            0x26 => Quantity::TemperatureDifference,
            0x27 | 0x28 | 0x37 | 0x46 => Quantity::Volume,
            0x29 | 0x2A | 0x2D | 0x47 => Quantity::Flow,
            0x2C | 0x38 => Quantity::Mass,
            0x2E | 0x3A | 0x3C | 0x3D | 0x3E => Quantity::Duration,
            0x2F => Quantity::TimeOfDay,
            0x30..=0x32 => Quantity::Date,
            0x00 | 0x33 => Quantity::Number,
            0x34 => Quantity::Pressure,
            0x2B | 0x35 | 0x36 | 0x3B | 0x3F..=0x42 | 0x44 | 0x45 | 0x48..=0x4A | 0x4F => {
                Quantity::Other
            }
            _ => Quantity::Unknown,
        }
    }

    /// True if the code is in the unit table.
    pub fn is_known(&self) -> bool {
        self.symbol().is_some()
    }
}

impl fmt::Display for Unit {
    /// The symbol (empty for 0x00 and 0x33), or `unit 0x4B` for an unknown code.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.symbol() {
            Some(s) => f.write_str(s),
            None => write!(f, "unit {:#04X}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn symbols_and_quantities() {
        assert_eq!(Unit(0x08).symbol(), Some("GJ"));
        assert_eq!(Unit(0x28).to_string(), "m³");
        assert_eq!(Unit(0x25).quantity(), Quantity::Temperature);
        assert_eq!(Unit(0x33).symbol(), Some(""));
        assert_eq!(Unit(0x4B).to_string(), "unit 0x4B");
        assert_eq!(Unit(0xFF).quantity(), Quantity::Unknown);
    }

    #[test]
    fn table_and_quantity_agree() {
        for code in 0..=u8::MAX {
            let u = Unit(code);
            assert_eq!(
                u.is_known(),
                u.quantity() != Quantity::Unknown,
                "{code:#04X}"
            );
        }
    }
}
