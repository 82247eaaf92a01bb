//! The drivers' unit mapping: a KMP unit code or a 66C field unit → the domain's typed unit.
//! One explicit table per protocol, so a reading's unit is a type from the moment it is decoded.

use kamstrup_reading::{Unit, ValueUnit};

/// The unit of a KMP register value. Physical units map onto the one table; the others (date
/// and time formats, electrical units, counts per litre, …) keep the protocol's symbol; an
/// unknown code has no symbol (the value's `unit_code` keeps the code).
pub fn kmp_unit(code: kamstrup_kmp::Unit) -> ValueUnit {
    let unit = match code.0 {
        0x01 => Unit::Wh,
        0x02 => Unit::KWh,
        0x03 => Unit::MWh,
        0x04 => Unit::GWh,
        0x05 => Unit::J,
        0x06 => Unit::KJ,
        0x07 => Unit::MJ,
        0x08 => Unit::GJ,
        0x09 => Unit::Cal,
        0x0A => Unit::KCal,
        0x0B => Unit::MCal,
        0x0C => Unit::GCal,
        0x15 => Unit::W,
        0x16 => Unit::KW,
        0x17 => Unit::MW,
        0x18 => Unit::GW,
        0x25 => Unit::Celsius,
        0x26 => Unit::Kelvin,
        0x27 => Unit::Litre,
        0x28 => Unit::CubicMetre,
        0x29 => Unit::LitrePerHour,
        0x2A => Unit::CubicMetrePerHour,
        0x2C => Unit::Tonne,
        0x2D => Unit::TonnePerHour,
        0x2E => Unit::Hour,
        0x37 => Unit::CubicMetreX10,
        0x38 => Unit::TonneX10,
        0x39 => Unit::GJx10,
        0x3A => Unit::Minute,
        0x3C => Unit::Second,
        0x3D => Unit::Millisecond,
        0x3E => Unit::Day,
        0x46 => Unit::UsGallon,
        0x47 => Unit::UsGallonPerMinute,
        _ => {
            return code
                .symbol()
                .map_or(ValueUnit::None, ValueUnit::from_symbol)
        }
    };
    ValueUnit::Physical(unit)
}

/// The unit of a MULTICAL 66C field.
pub fn mc66c_unit(unit: kamstrup_mc66c::Unit) -> Unit {
    use kamstrup_mc66c::Unit as U;
    match unit {
        U::GJ => Unit::GJ,
        U::KWh => Unit::KWh,
        U::MWh => Unit::MWh,
        U::Gcal => Unit::GCal,
        U::CubicMetre => Unit::CubicMetre,
        U::Hour => Unit::Hour,
        U::Celsius => Unit::Celsius,
        U::Kelvin => Unit::Kelvin,
        U::KW => Unit::KW,
        U::MW => Unit::MW,
        U::LitrePerHour => Unit::LitrePerHour,
        U::CubicMetrePerHour => Unit::CubicMetrePerHour,
        U::Tonne => Unit::Tonne,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kmp_code_keeps_its_symbol_and_physical_ones_are_typed() {
        for code in 0..=u8::MAX {
            let kmp = kamstrup_kmp::Unit(code);
            let ours = kmp_unit(kmp);
            // The symbol is the protocol's, typed or not (`""` for a code without one).
            let symbol = kmp.symbol().unwrap_or("");
            assert_eq!(ours.as_str(), symbol, "code {code:#04x}");
            // Whatever the one table can parse is typed, and nothing else is.
            assert_eq!(
                ours.physical(),
                Unit::parse(symbol),
                "code {code:#04x} ({symbol})"
            );
        }
    }

    #[test]
    fn every_66c_unit_keeps_its_symbol() {
        use kamstrup_mc66c::Unit as U;
        for u in [
            U::GJ,
            U::KWh,
            U::MWh,
            U::Gcal,
            U::CubicMetre,
            U::Hour,
            U::Celsius,
            U::Kelvin,
            U::KW,
            U::MW,
            U::LitrePerHour,
            U::CubicMetrePerHour,
            U::Tonne,
        ] {
            assert_eq!(
                Unit::parse(u.as_str()),
                Some(mc66c_unit(u)),
                "{}",
                u.as_str()
            );
        }
    }
}
