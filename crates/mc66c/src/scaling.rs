//! Decimal placement: the program number A-B-CCC and the TD's CCC table (mc66c.md §4).
//! The "/#n" registers carry digits only; decimals and units come from configuration.

use core::fmt;
use core::str::FromStr;

use kamstrup_decimal::Decimal;

use crate::error::{Error, Snippet};

/// The unit of a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unit {
    /// Gigajoule.
    GJ,
    /// Kilowatt-hour.
    KWh,
    /// Megawatt-hour.
    MWh,
    /// Gigacalorie.
    Gcal,
    /// Cubic metre.
    CubicMetre,
    /// Hour.
    Hour,
    /// Degree Celsius.
    Celsius,
    /// Kelvin (temperature difference).
    Kelvin,
    /// Kilowatt.
    KW,
    /// Megawatt.
    MW,
    /// Litre per hour.
    LitrePerHour,
    /// Cubic metre per hour.
    CubicMetrePerHour,
    /// Tonne (masses of water).
    Tonne,
}

impl Unit {
    /// The unit symbol: `"GJ"`, `"kWh"`, `"MWh"`, `"Gcal"`, `"m³"`, `"h"`, `"°C"`, `"K"`,
    /// `"kW"`, `"MW"`, `"l/h"`, `"m³/h"`, `"t"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Unit::GJ => "GJ",
            Unit::KWh => "kWh",
            Unit::MWh => "MWh",
            Unit::Gcal => "Gcal",
            Unit::CubicMetre => "m³",
            Unit::Hour => "h",
            Unit::Celsius => "°C",
            Unit::Kelvin => "K",
            Unit::KW => "kW",
            Unit::MW => "MW",
            Unit::LitrePerHour => "l/h",
            Unit::CubicMetrePerHour => "m³/h",
            Unit::Tonne => "t",
        }
    }

    /// The unit for a unit text as EN 61107 readouts write it (`"GJ"`, `"MWh"`, `"kWh"`,
    /// `"Gcal"`, `"m3"`, `"h"`), also accepting the symbols of [`Unit::as_str`].
    pub fn from_readout(text: &str) -> Option<Unit> {
        Some(match text {
            "GJ" => Unit::GJ,
            "kWh" | "KWH" | "kwh" => Unit::KWh,
            "MWh" | "MWH" => Unit::MWh,
            "Gcal" | "GCAL" => Unit::Gcal,
            "m3" | "M3" | "m³" => Unit::CubicMetre,
            "h" | "H" => Unit::Hour,
            "°C" | "C" => Unit::Celsius,
            "K" => Unit::Kelvin,
            "kW" | "KW" => Unit::KW,
            "MW" => Unit::MW,
            "l/h" => Unit::LitrePerHour,
            "m3/h" | "m³/h" => Unit::CubicMetrePerHour,
            "t" => Unit::Tonne,
            _ => return None,
        })
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A named, exact, scaled value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Value {
    /// Stable field name (`"energy"`, `"volume"`, `"t1"`, …).
    pub name: &'static str,
    /// The exact value at the meter's resolution.
    pub value: Decimal,
    /// The unit; `None` for dimensionless values such as the info code.
    pub unit: Option<Unit>,
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.unit {
            Some(u) => write!(f, "{}={} {}", self.name, self.value, u),
            None => write!(f, "{}={}", self.name, self.value),
        }
    }
}

/// Energy unit selected by program digit B.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EnergyUnit {
    /// B = 2.
    GJ,
    /// B = 3.
    KWh,
    /// B = 4.
    MWh,
    /// B = 5.
    Gcal,
}

impl EnergyUnit {
    /// The unit for program digit B.
    pub const fn from_b(b: u8) -> Result<EnergyUnit, Error> {
        match b {
            2 => Ok(EnergyUnit::GJ),
            3 => Ok(EnergyUnit::KWh),
            4 => Ok(EnergyUnit::MWh),
            5 => Ok(EnergyUnit::Gcal),
            other => Err(Error::EnergyUnit(other)),
        }
    }

    /// Program digit B for this unit.
    pub const fn b(self) -> u8 {
        match self {
            EnergyUnit::GJ => 2,
            EnergyUnit::KWh => 3,
            EnergyUnit::MWh => 4,
            EnergyUnit::Gcal => 5,
        }
    }

    /// As a general [`Unit`].
    pub const fn unit(self) -> Unit {
        match self {
            EnergyUnit::GJ => Unit::GJ,
            EnergyUnit::KWh => Unit::KWh,
            EnergyUnit::MWh => Unit::MWh,
            EnergyUnit::Gcal => Unit::Gcal,
        }
    }
}

/// Where the flow meter sits (program digit A).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlowMeterPosition {
    /// A = 3: flow (forward) pipe.
    FlowPipe,
    /// A = 4: return pipe.
    ReturnPipe,
    /// Any other digit (not documented).
    Other(u8),
}

/// Program number A-B-CCC (TD p.18): A = flow meter position, B = energy unit, CCC = flow-meter
/// code of V1, which selects the display decimals.
///
/// Parsed from `"4-4-119"`, `"44119"`, `"0044119"` (as `/#2` sends it), and the forms with the
/// V2 code too, `"4-4-119-119"` / `"44119119"` (as `/#D` sends it; the V2 code is dropped here,
/// see [`crate::ProgrammingData::ccc_v2`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProgramNumber {
    /// Flow meter position digit.
    pub a: u8,
    /// Energy unit digit.
    pub b: u8,
    /// Flow meter code (0–999).
    pub ccc: u16,
}

impl ProgramNumber {
    /// Flow meter position from digit A.
    pub const fn flow_meter_position(&self) -> FlowMeterPosition {
        match self.a {
            3 => FlowMeterPosition::FlowPipe,
            4 => FlowMeterPosition::ReturnPipe,
            other => FlowMeterPosition::Other(other),
        }
    }

    /// Energy unit from digit B.
    pub const fn energy_unit(&self) -> Result<EnergyUnit, Error> {
        EnergyUnit::from_b(self.b)
    }

    /// The `/#2` field value `00ABCCC` as an integer (`44119`).
    pub const fn abccc(&self) -> i64 {
        self.a as i64 * 10_000 + self.b as i64 * 1000 + self.ccc as i64
    }

    /// Builds a program number; fails unless A and B are single digits and CCC ≤ 999.
    pub fn new(a: u8, b: u8, ccc: u16) -> Result<ProgramNumber, Error> {
        if a > 9 || b > 9 || ccc > 999 {
            return Err(Error::Program {
                text: Snippet::new(b""),
                reason: "A and B must be single digits and CCC at most 999",
            });
        }
        Ok(ProgramNumber { a, b, ccc })
    }
}

impl fmt::Display for ProgramNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{:03}", self.a, self.b, self.ccc)
    }
}

impl FromStr for ProgramNumber {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        let err = |reason| Error::Program {
            text: Snippet::new(s.as_bytes()),
            reason,
        };
        let digit_str = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        let num = |p: &str| {
            p.bytes().fold(0u32, |acc, d| {
                acc.saturating_mul(10).saturating_add(u32::from(d - b'0'))
            })
        };
        let (a, b, ccc) = if text.contains('-') {
            let mut parts = text.split('-');
            let (Some(a), Some(b), Some(c)) = (parts.next(), parts.next(), parts.next()) else {
                return Err(err("expected A-B-CCC"));
            };
            let v2 = parts.next();
            if parts.next().is_some() {
                return Err(err("expected A-B-CCC or A-B-CCC-CCC"));
            }
            if a.len() != 1 || b.len() != 1 || c.len() != 3 || v2.is_some_and(|v| v.len() != 3) {
                return Err(err(
                    "expected one digit A, one digit B and three digits CCC",
                ));
            }
            if ![a, b, c].iter().all(|p| digit_str(p)) || v2.is_some_and(|v| !digit_str(v)) {
                return Err(err("not digits"));
            }
            (num(a), num(b), num(c))
        } else {
            if !digit_str(text) {
                return Err(err("not digits"));
            }
            let b = text.as_bytes();
            let core: &[u8] = match b.len() {
                5 => b,
                7 if b.starts_with(b"00") => b.get(2..).unwrap_or(&[]),
                7 => return Err(err("the 7-digit form is 00ABCCC")),
                8 => b.get(..5).unwrap_or(&[]),
                _ => return Err(err("expected ABCCC, 00ABCCC, ABCCCCCC or A-B-CCC")),
            };
            let core = core::str::from_utf8(core).unwrap_or("");
            (
                num(core.get(..1).unwrap_or("")),
                num(core.get(1..2).unwrap_or("")),
                num(core.get(2..).unwrap_or("")),
            )
        };
        // Each part has been checked to be 1, 1 and 3 digits.
        Ok(ProgramNumber {
            a: u8::try_from(a).unwrap_or(u8::MAX),
            b: u8::try_from(b).unwrap_or(u8::MAX),
            ccc: u16::try_from(ccc).unwrap_or(u16::MAX),
        })
    }
}

/// Unit of the flow register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlowUnit {
    /// l/h (meters up to 25 m³/h).
    LitrePerHour,
    /// m³/h (large meters).
    CubicMetrePerHour,
}

impl FlowUnit {
    /// As a general [`Unit`].
    pub const fn unit(self) -> Unit {
        match self {
            FlowUnit::LitrePerHour => Unit::LitrePerHour,
            FlowUnit::CubicMetrePerHour => Unit::CubicMetrePerHour,
        }
    }
}

/// Unit of the power registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PowerUnit {
    /// kW.
    KW,
    /// MW.
    MW,
}

impl PowerUnit {
    /// As a general [`Unit`].
    pub const fn unit(self) -> Unit {
        match self {
            PowerUnit::KW => Unit::KW,
            PowerUnit::MW => Unit::MW,
        }
    }
}

/// One flow-meter code and its nominal flow qp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CccCode {
    /// The code.
    pub code: u16,
    /// Nominal flow in m³/h as the TD writes it (`"1.5"`, `"15/25"`).
    pub qp: &'static str,
}

/// One row of the CCC decimals table (TD p.19–21, 13; mc66c.md §4). Resolutions are powers of
/// ten (`-2` = two decimals, `1` = the register counts tens). `None` = the TD lists no
/// resolution for that energy unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CccRow {
    /// The codes sharing this row.
    pub codes: &'static [CccCode],
    /// Energy exponent for kWh.
    pub kwh: Option<i16>,
    /// Energy exponent for MWh.
    pub mwh: Option<i16>,
    /// Energy exponent for GJ and Gcal.
    pub gj_gcal: Option<i16>,
    /// Volume (m³) exponent.
    pub volume: i16,
    /// Flow unit.
    pub flow_unit: FlowUnit,
    /// Flow exponent.
    pub flow: i16,
    /// Power unit.
    pub power_unit: PowerUnit,
    /// Power exponent.
    pub power: i16,
    /// Set when our reading of the TD row is not certain (said in mc66c.md §4).
    pub uncertain: Option<&'static str>,
}

const fn c(code: u16, qp: &'static str) -> CccCode {
    CccCode { code, qp }
}

/// The CCC table for ULTRAFLOW codes, as in mc66c.md §4. Reed-switch and vane-wheel codes
/// (000–009, 102–173 outside this list) are not included.
pub const CCC_TABLE: &[CccRow] = &[
    CccRow {
        codes: &[
            c(116, "0.6"),
            c(197, "1.0"),
            c(119, "1.5"),
            c(198, "2.5"),
            c(136, "3.0"),
        ],
        kwh: Some(0),
        mwh: Some(-3),
        gj_gcal: Some(-2),
        volume: -2,
        flow_unit: FlowUnit::LitrePerHour,
        flow: 0,
        power_unit: PowerUnit::KW,
        power: -1,
        uncertain: None,
    },
    CccRow {
        codes: &[
            c(151, "3.5"),
            c(137, "6"),
            c(178, "10"),
            c(120, "15/25"),
            c(179, "25"),
        ],
        kwh: None,
        mwh: Some(-2),
        gj_gcal: Some(-1),
        volume: -1,
        flow_unit: FlowUnit::LitrePerHour,
        flow: 0,
        power_unit: PowerUnit::KW,
        power: -1,
        uncertain: None,
    },
    CccRow {
        codes: &[c(158, "40")],
        kwh: None,
        mwh: Some(-1),
        gj_gcal: Some(0),
        volume: 0,
        flow_unit: FlowUnit::CubicMetrePerHour,
        flow: -2,
        power_unit: PowerUnit::KW,
        power: 0,
        uncertain: Some("power column reading uncertain (kW, 0 decimals)"),
    },
    CccRow {
        codes: &[c(170, "60"), c(180, "100"), c(147, "150"), c(181, "250")],
        kwh: None,
        mwh: Some(-1),
        gj_gcal: Some(0),
        volume: 0,
        flow_unit: FlowUnit::CubicMetrePerHour,
        flow: -2,
        power_unit: PowerUnit::MW,
        power: -3,
        uncertain: None,
    },
    CccRow {
        codes: &[c(171, "400"), c(172, "600/1000"), c(182, "1000")],
        kwh: None,
        mwh: Some(0),
        gj_gcal: Some(1),
        volume: 1,
        flow_unit: FlowUnit::CubicMetrePerHour,
        flow: -1,
        power_unit: PowerUnit::MW,
        power: -2,
        uncertain: None,
    },
    CccRow {
        codes: &[c(184, "0.6"), c(199, "1.0"), c(107, "1.5")],
        kwh: Some(-1),
        mwh: None,
        gj_gcal: Some(-3),
        volume: -3,
        flow_unit: FlowUnit::LitrePerHour,
        flow: 0,
        power_unit: PowerUnit::KW,
        power: -1,
        uncertain: Some(
            "high-resolution test code: energy decimals read from a 5-number TD row \
             (m³ 3 decimals confirmed); no communication at high flow",
        ),
    },
];

/// The table row for a CCC code.
pub fn ccc_row(ccc: u16) -> Option<&'static CccRow> {
    CCC_TABLE
        .iter()
        .find(|row| row.codes.iter().any(|c| c.code == ccc))
}

/// Where a [`Scaling`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Provenance {
    /// From the CCC table.
    Table,
    /// From the CCC table, but our reading of that row is marked uncertain.
    TableUncertain,
    /// The CCC-119 family assumed for an unknown code: log a loud warning.
    Fallback,
    /// Given by the user.
    Custom,
}

/// Decimal placement and units for the "/#n" registers.
///
/// Exponents are powers of ten applied to the raw integer (`-3` = three decimals). Fixed by the
/// protocol and not part of this struct: hours (integer), temperatures (0.01 °C), ΔT (0.01 K).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Scaling {
    /// Energy unit (program digit B).
    pub energy_unit: EnergyUnit,
    /// Energy exponent.
    pub energy: i16,
    /// Volume (m³) exponent.
    pub volume: i16,
    /// Flow unit.
    pub flow_unit: FlowUnit,
    /// Flow exponent.
    pub flow: i16,
    /// Power unit (power and peak power).
    pub power_unit: PowerUnit,
    /// Power exponent.
    pub power: i16,
    /// Where these numbers came from.
    pub provenance: Provenance,
}

/// Result of looking a program number up in the CCC table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// The code is in the table (check [`Scaling::provenance`] for an uncertain row).
    Known(Scaling),
    /// The code is not in the table. The caller decides: user configuration, an EN 61107
    /// readout, or [`Scaling::ccc119_fallback`] with a loud warning.
    UnknownCcc {
        /// The unknown code.
        ccc: u16,
        /// The energy unit from digit B (valid).
        energy_unit: EnergyUnit,
    },
}

impl Resolution {
    /// The scaling if the code was known.
    pub fn known(self) -> Option<Scaling> {
        match self {
            Resolution::Known(s) => Some(s),
            Resolution::UnknownCcc { .. } => None,
        }
    }

    /// True if the CCC code was in the table.
    pub fn is_known(&self) -> bool {
        matches!(self, Resolution::Known(_))
    }
}

impl Scaling {
    /// Looks up the scaling for a program number.
    ///
    /// Fails if digit B is not an energy unit, or if the TD lists no resolution for that unit
    /// with that CCC code (e.g. kWh on a 6 m³/h meter).
    pub fn resolve(program: &ProgramNumber) -> Result<Resolution, Error> {
        let energy_unit = program.energy_unit()?;
        let Some(row) = ccc_row(program.ccc) else {
            return Ok(Resolution::UnknownCcc {
                ccc: program.ccc,
                energy_unit,
            });
        };
        let energy = match energy_unit {
            EnergyUnit::KWh => row.kwh,
            EnergyUnit::MWh => row.mwh,
            EnergyUnit::GJ | EnergyUnit::Gcal => row.gj_gcal,
        }
        .ok_or(Error::UnitNotAvailable {
            ccc: program.ccc,
            unit: energy_unit.unit().as_str(),
        })?;
        Ok(Resolution::Known(Scaling {
            energy_unit,
            energy,
            volume: row.volume,
            flow_unit: row.flow_unit,
            flow: row.flow,
            power_unit: row.power_unit,
            power: row.power,
            provenance: if row.uncertain.is_some() {
                Provenance::TableUncertain
            } else {
                Provenance::Table
            },
        }))
    }

    /// The CCC-119 family (qp 0.6–3 m³/h: energy MWh 3 / GJ and Gcal 2 / kWh 0 decimals,
    /// volume 2, flow l/h 0, power kW 1) for a meter whose code is unknown.
    ///
    /// This is a guess: callers must log a loud warning when they use it. The result is
    /// marked [`Provenance::Fallback`].
    pub const fn ccc119_fallback(energy_unit: EnergyUnit) -> Scaling {
        Scaling {
            energy_unit,
            energy: match energy_unit {
                EnergyUnit::KWh => 0,
                EnergyUnit::MWh => -3,
                EnergyUnit::GJ | EnergyUnit::Gcal => -2,
            },
            volume: -2,
            flow_unit: FlowUnit::LitrePerHour,
            flow: 0,
            power_unit: PowerUnit::KW,
            power: -1,
            provenance: Provenance::Fallback,
        }
    }

    fn quantity(
        name: &'static str,
        raw: i64,
        exponent: i16,
        unit: Option<Unit>,
    ) -> Result<Value, Error> {
        let value = Decimal::new(i128::from(raw), exponent).map_err(|_| Error::ValueRange {
            name,
            value: raw,
            reason: "scaling exponent out of range",
        })?;
        Ok(Value { name, value, unit })
    }

    /// An energy register.
    pub fn energy(&self, name: &'static str, raw: i64) -> Result<Value, Error> {
        Self::quantity(name, raw, self.energy, Some(self.energy_unit.unit()))
    }

    /// A volume register (m³).
    pub fn volume(&self, name: &'static str, raw: i64) -> Result<Value, Error> {
        Self::quantity(name, raw, self.volume, Some(Unit::CubicMetre))
    }

    /// A mass register (tonnes). The TD gives no decimals of its own for masses; they follow
    /// the volume's (a real meter's mass/volume ratio is 0.9925, and its daily logger's 1.88 t
    /// matches 1.84 m³ a day), which is an inference, not a table entry.
    pub fn mass(&self, name: &'static str, raw: i64) -> Result<Value, Error> {
        Self::quantity(name, raw, self.volume, Some(Unit::Tonne))
    }

    /// A flow register.
    pub fn flow(&self, name: &'static str, raw: i64) -> Result<Value, Error> {
        Self::quantity(name, raw, self.flow, Some(self.flow_unit.unit()))
    }

    /// A power register.
    pub fn power(&self, name: &'static str, raw: i64) -> Result<Value, Error> {
        Self::quantity(name, raw, self.power, Some(self.power_unit.unit()))
    }

    /// A temperature register (0.01 °C).
    pub fn temperature(name: &'static str, raw: i64) -> Result<Value, Error> {
        Self::quantity(name, raw, -2, Some(Unit::Celsius))
    }

    /// A temperature difference register (0.01 K).
    pub fn temperature_difference(name: &'static str, raw: i64) -> Result<Value, Error> {
        Self::quantity(name, raw, -2, Some(Unit::Kelvin))
    }

    /// An hour counter.
    pub fn hours(name: &'static str, raw: i64) -> Result<Value, Error> {
        Self::quantity(name, raw, 0, Some(Unit::Hour))
    }

    /// A dimensionless integer (info code).
    pub fn plain(name: &'static str, raw: i64) -> Result<Value, Error> {
        Self::quantity(name, raw, 0, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_number_forms() {
        let p = ProgramNumber {
            a: 4,
            b: 4,
            ccc: 119,
        };
        for s in [
            "4-4-119",
            "44119",
            "0044119",
            "44119119",
            "4-4-119-119",
            " 44119 ",
        ] {
            assert_eq!(s.parse::<ProgramNumber>().unwrap(), p, "{s}");
        }
        assert_eq!(p.to_string(), "4-4-119");
        assert_eq!(p.abccc(), 44119);
        assert_eq!(
            "4-2-119".parse::<ProgramNumber>().unwrap().energy_unit(),
            Ok(EnergyUnit::GJ)
        );
        for bad in [
            "",
            "4-4",
            "4-4-11",
            "44-4-119",
            "4-4-1x9",
            "1044119",
            "441191",
            "4-4-119-1",
        ] {
            assert_eq!(
                bad.parse::<ProgramNumber>().unwrap_err().kind(),
                "program",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn table_codes_are_unique() {
        let mut seen = [false; 1000];
        for row in CCC_TABLE {
            for c in row.codes {
                let slot = &mut seen[usize::from(c.code)];
                assert!(!*slot, "duplicate {}", c.code);
                *slot = true;
            }
        }
    }

    #[test]
    fn resolve_119_family() {
        let p: ProgramNumber = "4-4-119".parse().unwrap();
        let s = Scaling::resolve(&p).unwrap().known().unwrap();
        assert_eq!(s, {
            let mut f = Scaling::ccc119_fallback(EnergyUnit::MWh);
            f.provenance = Provenance::Table;
            f
        });
        let gj = Scaling::resolve(&"3-2-116".parse().unwrap())
            .unwrap()
            .known()
            .unwrap();
        assert_eq!((gj.energy, gj.energy_unit), (-2, EnergyUnit::GJ));
        let kwh = Scaling::resolve(&"3-3-136".parse().unwrap())
            .unwrap()
            .known()
            .unwrap();
        assert_eq!(kwh.energy, 0);
    }

    #[test]
    fn resolve_other_rows() {
        let big = Scaling::resolve(&"4-2-171".parse().unwrap())
            .unwrap()
            .known()
            .unwrap();
        assert_eq!(big.energy, 1);
        assert_eq!(big.volume, 1);
        assert_eq!((big.power_unit, big.power), (PowerUnit::MW, -2));
        assert_eq!(big.energy("energy", 123).unwrap().value.to_string(), "1230");
        let q40 = Scaling::resolve(&"4-4-158".parse().unwrap()).unwrap();
        assert_eq!(q40.known().unwrap().provenance, Provenance::TableUncertain);
        assert_eq!(
            Scaling::resolve(&"4-3-151".parse().unwrap()).unwrap_err(),
            Error::UnitNotAvailable {
                ccc: 151,
                unit: "kWh"
            }
        );
        assert_eq!(
            Scaling::resolve(&"4-7-119".parse().unwrap()).unwrap_err(),
            Error::EnergyUnit(7)
        );
        let unknown = Scaling::resolve(&"4-4-555".parse().unwrap()).unwrap();
        assert_eq!(
            unknown,
            Resolution::UnknownCcc {
                ccc: 555,
                energy_unit: EnergyUnit::MWh
            }
        );
        assert!(!unknown.is_known());
        assert_eq!(
            Scaling::ccc119_fallback(EnergyUnit::MWh).provenance,
            Provenance::Fallback
        );
    }
}
