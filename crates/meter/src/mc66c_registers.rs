//! How the MULTICAL 66C's fields map onto the register model every layer speaks: the `/#1`
//! fields under KMP catalogue ids and names, and the decimals an EN 61107 readout implies.

use kamstrup_mc66c::{EnergyUnit, InfoTable, Provenance, Scaling, StandardData1, Unit};

use crate::mc66c_driver::ReadoutReply;
use crate::reading::{RegisterValue, ValueUnit};

/// One `/#1` field mapped onto the KMP catalogue: (wire position, KMP id, name, short name).
pub const STANDARD_REGISTERS: [(usize, u16, &str, &str); 10] = [
    (0, 60, "heat_energy", "E1"),
    (1, 68, "volume", "V1"),
    (2, 1004, "hours", "HourCounter"),
    (3, 86, "t1", "T1"),
    (4, 87, "t2", "T2"),
    (5, 89, "t1_t2", "T1-T2"),
    (6, 80, "power", "Power1"),
    (7, 74, "flow", "Flow1"),
    (8, 143, "peak_power", "P.pwr"),
    (9, 99, "info", "InfoCode"),
];

/// The ten `/#1` fields as [`RegisterValue`]s (wire order, KMP ids and names), exactly scaled.
/// ΔT is the meter's own field (checked against T1 − T2 by the parser), not derived.
pub fn standard_registers(
    data: &StandardData1,
    scaling: &Scaling,
) -> Result<Vec<RegisterValue>, kamstrup_mc66c::Error> {
    let values = data.values(scaling)?;
    let info = data.info_code();
    Ok(STANDARD_REGISTERS
        .iter()
        .filter_map(|&(pos, id, name, short)| {
            let v = values.get(pos)?;
            let text = (id == 99 && !info.is_ok()).then(|| {
                info.flags(InfoTable::Mc66Cde)
                    .map(|f| f.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            });
            Some(RegisterValue {
                id,
                name: name.to_string(),
                short: short.to_string(),
                value: v.value,
                unit: v
                    .unit
                    .map_or(ValueUnit::None, |u| crate::units::mc66c_unit(u).into()),
                unit_code: None,
                text: text.filter(|t| !t.is_empty()),
                derived: false,
            })
        })
        .collect())
}

/// Scaling from a readout: its energy and volume carry their decimal point and unit; flow and
/// power are not in the readout, so the CCC-119 family is assumed for them.
pub fn scaling_from_readout(readout: &ReadoutReply) -> Option<Scaling> {
    let energy = readout.energy?;
    let volume = readout.volume?;
    let energy_unit = match energy.unit? {
        Unit::GJ => EnergyUnit::GJ,
        Unit::KWh => EnergyUnit::KWh,
        Unit::MWh => EnergyUnit::MWh,
        Unit::Gcal => EnergyUnit::Gcal,
        _ => return None,
    };
    if volume.unit != Some(Unit::CubicMetre) {
        return None;
    }
    let family = Scaling::ccc119_fallback(energy_unit);
    Some(Scaling {
        energy: energy.value.exponent(),
        volume: volume.value.exponent(),
        provenance: Provenance::Custom,
        ..family
    })
}
