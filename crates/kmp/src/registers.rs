//! Catalogue of KMP heat-meter registers as data: id, names, meaning, typical unit, models.
//! Facts from kmp.md §8.1–§8.3; the unit byte in each reply always wins over `typical_unit`.

use core::fmt;

use crate::Unit;

/// Meter models the catalogue knows about.
///
/// MULTICAL 801 has no public register table; it is listed so callers can name it, but no
/// catalogue entry claims it ([`for_model`] yields nothing for it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum Model {
    /// MULTICAL 21 (water meter).
    Multical21,
    /// MULTICAL 302.
    Multical302,
    /// MULTICAL 402.
    Multical402,
    /// MULTICAL 403.
    Multical403,
    /// MULTICAL 601.
    Multical601,
    /// MULTICAL 602.
    Multical602,
    /// MULTICAL 603.
    Multical603,
    /// MULTICAL 62 (water meter).
    Multical62,
    /// MULTICAL 801 (no public KMP register table).
    Multical801,
}

impl Model {
    /// Every model, in catalogue order.
    pub const ALL: [Model; 9] = [
        Model::Multical21,
        Model::Multical302,
        Model::Multical402,
        Model::Multical403,
        Model::Multical601,
        Model::Multical602,
        Model::Multical603,
        Model::Multical62,
        Model::Multical801,
    ];

    /// The model number as Kamstrup writes it after "MULTICAL": `"403"`.
    pub const fn number(self) -> &'static str {
        match self {
            Model::Multical21 => "21",
            Model::Multical302 => "302",
            Model::Multical402 => "402",
            Model::Multical403 => "403",
            Model::Multical601 => "601",
            Model::Multical602 => "602",
            Model::Multical603 => "603",
            Model::Multical62 => "62",
            Model::Multical801 => "801",
        }
    }
}

impl fmt::Display for Model {
    /// `MULTICAL 403`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MULTICAL {}", self.number())
    }
}

/// One catalogued register.
#[derive(Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RegisterInfo {
    /// Register id.
    pub id: u16,
    /// Unique snake_case name for configs and JSON (`heat_energy`, `t1`, `hours`).
    pub name: &'static str,
    /// Kamstrup's short name as in the register tables (`E1`, `V1`, `T1`, `HourCounter`).
    pub short: &'static str,
    /// What the register holds, in a few words.
    pub meaning: &'static str,
    /// Unit seen in captures or implementations; the meter's unit byte wins. For energies the
    /// meter's configuration decides (GJ, kWh, MWh or Gcal); GJ is given.
    pub typical_unit: Option<Unit>,
    /// Models whose official table lists the id, or on which it was read from a real meter.
    pub models: &'static [Model],
}

use Model::{
    Multical21 as M21, Multical302 as M302, Multical402 as M402, Multical403 as M403,
    Multical601 as M601, Multical602 as M602, Multical603 as M603, Multical62 as M62,
};

// Model sets used by several rows ("60x" in the notes = 602/603 readings by golles' users).
const E1_MODELS: &[Model] = &[M302, M402, M601, M403, M602, M603];
const ONLY_601: &[Model] = &[M601];
const M302_402_601_403: &[Model] = &[M302, M402, M601, M403];
const M402_601: &[Model] = &[M402, M601];
const M402_62_601: &[Model] = &[M402, M62, M601];
const M302_402_62_601: &[Model] = &[M302, M402, M62, M601];
const M302_402_62_601_403: &[Model] = &[M302, M402, M62, M601, M403];
const M62_601: &[Model] = &[M62, M601];
const M403_603: &[Model] = &[M403, M603];
const M302_402: &[Model] = &[M302, M402];
// Statistics (§8.2): max values and averages in 302/402/601 (403 uses the same ids); min values
// not in 302; flow statistics also in 62.
const STAT_MAX_FLOW: &[Model] = &[M302, M402, M62, M601, M403];
const STAT_MIN_FLOW: &[Model] = &[M402, M62, M601, M403];
const STAT_MAX: &[Model] = &[M302, M402, M601, M403];
const STAT_MIN: &[Model] = &[M402, M601, M403];

const fn u(code: u8) -> Option<Unit> {
    Some(Unit(code))
}
const GJ: Option<Unit> = u(0x08);
const C: Option<Unit> = u(0x25);
const LH: Option<Unit> = u(0x29);
const KW: Option<Unit> = u(0x16);
const H: Option<Unit> = u(0x2E);
const NUM: Option<Unit> = u(0x33);
const DATE: Option<Unit> = u(0x30);

const fn r(
    id: u16,
    name: &'static str,
    short: &'static str,
    meaning: &'static str,
    typical_unit: Option<Unit>,
    models: &'static [Model],
) -> RegisterInfo {
    RegisterInfo {
        id,
        name,
        short,
        meaning,
        typical_unit,
        models,
    }
}

/// Every heat-meter register of kmp.md §8.1–§8.3 (electricity-meter ids are left out).
#[rustfmt::skip]
pub static CATALOGUE: &[RegisterInfo] = &[
    // §8.1 instantaneous and accumulated values
    r(60, "heat_energy", "E1", "heat energy", GJ, E1_MODELS),
    r(94, "control_energy", "E2", "control energy", GJ, ONLY_601),
    r(63, "cooling_energy", "E3", "cooling energy", GJ, M302_402_601_403),
    r(61, "flow_energy", "E4", "flow(-pipe) energy", GJ, ONLY_601),
    r(62, "return_energy", "E5", "return(-pipe) energy", GJ, ONLY_601),
    r(95, "tap_water_energy", "E6", "tap water energy", GJ, ONLY_601),
    r(96, "heat_energy_y", "E7", "heat energy \"Y\"", GJ, ONLY_601),
    r(97, "m3_t1", "E8", "m³×T1 integral", u(0x2B), M302_402_601_403),
    r(110, "m3_t2", "E9", "m³×T2 integral", u(0x2B), M302_402_601_403),
    r(64, "tariff2", "TA2", "tariff register 2", GJ, M402_601),
    r(65, "tariff3", "TA3", "tariff register 3", GJ, ONLY_601),
    r(66, "tariff_limit2", "TL2", "tariff limit 2", None, M402_601),
    r(67, "tariff_limit3", "TL3", "tariff limit 3", None, M402_601),
    r(68, "volume", "V1", "volume", u(0x28), &[M302, M402, M62, M601, M403, M602, M603]),
    r(69, "volume2", "V2", "volume 2", u(0x28), ONLY_601),
    r(72, "mass", "M1", "mass register (V1)", u(0x2C), ONLY_601),
    r(73, "mass2", "M2", "mass register (V2)", u(0x2C), ONLY_601),
    r(84, "input_a", "VA", "pulse input A", None, M402_62_601),
    r(85, "input_b", "VB", "pulse input B", None, M402_62_601),
    r(86, "t1", "T1", "forward (inlet) temperature", C, M302_402_601_403),
    r(87, "t2", "T2", "return (outlet) temperature", C, M302_402_601_403),
    r(88, "t3", "T3", "temperature T3", C, ONLY_601),
    r(122, "t4", "T4", "temperature T4", C, ONLY_601),
    r(89, "t1_t2", "T1-T2", "temperature difference", u(0x26), M302_402_601_403),
    r(91, "p1", "P1", "pressure in flow", u(0x34), ONLY_601),
    r(92, "p2", "P2", "pressure in return", u(0x34), ONLY_601),
    r(74, "flow", "Flow1", "actual water flow", LH, M302_402_62_601_403),
    r(75, "flow2", "Flow2", "flow in return pipe", LH, ONLY_601),
    r(80, "power", "Power1", "actual power (from V1, T1, T2)", KW, M302_402_601_403),
    r(1004, "hours", "HourCounter", "operating hours", H, M302_402_62_601_403),
    r(175, "info_hours", "InfoHour", "error hour counter", H, M62_601),
    r(99, "info", "InfoCode", "current info code (bit field of alarms)", NUM, &[M302, M402, M62, M601, M21]),
    r(113, "info_events", "InfoEventCounter", "number of info events", NUM, &[M302, M62, M601]),
    r(155, "high_res_energy", "HighResEnergy", "high-resolution energy (test)", None, M402_601),
    r(223, "high_res_volume", "HighResVolume", "high-resolution volume (test)", None, &[M402]),
    r(239, "v1_high_res", "V1HighRes", "high-resolution volume (test)", None, &[M302, M62]),
    r(266, "e1_high_res", "E1HighRes", "high-resolution heat energy (test)", u(0x01), &[M302, M403]),
    r(267, "e3_high_res", "E3HighRes", "high-resolution cooling energy (test)", None, &[M302]),
    r(229, "t1_average_auto_int", "AutoIntT1Average", "T1 average over the last auto-integration", C, M302_402),
    r(230, "t2_average_auto_int", "AutoIntT2Average", "T2 average over the last auto-integration", C, M302_402),
    // §8.2 statistics: year (y) and month (m); dates are yymmdd numbers
    r(123, "max_flow_year_date", "MaxFlow1Date(y)", "date of this year's max flow", DATE, STAT_MAX_FLOW),
    r(124, "max_flow_year", "MaxFlow1(y)", "this year's max flow", LH, STAT_MAX_FLOW),
    r(125, "min_flow_year_date", "MinFlow1Date(y)", "date of this year's min flow", DATE, STAT_MIN_FLOW),
    r(126, "min_flow_year", "MinFlow1(y)", "this year's min flow", LH, STAT_MIN_FLOW),
    r(127, "max_power_year_date", "MaxPower1Date(y)", "date of this year's max power", DATE, STAT_MAX),
    r(128, "max_power_year", "MaxPower1(y)", "this year's max power", KW, STAT_MAX),
    r(129, "min_power_year_date", "MinPower1Date(y)", "date of this year's min power", DATE, STAT_MIN),
    r(130, "min_power_year", "MinPower1(y)", "this year's min power", KW, STAT_MIN),
    r(146, "avg_t1_year", "AvrTemp1(y)", "year-to-date average T1", C, STAT_MAX),
    r(147, "avg_t2_year", "AvrTemp2(y)", "year-to-date average T2", C, STAT_MAX),
    r(138, "max_flow_month_date", "MaxFlow1Date(m)", "date of this month's max flow", DATE, STAT_MAX_FLOW),
    r(139, "max_flow_month", "MaxFlow1(m)", "this month's max flow", LH, STAT_MAX_FLOW),
    r(140, "min_flow_month_date", "MinFlow1Date(m)", "date of this month's min flow", DATE, STAT_MIN_FLOW),
    r(141, "min_flow_month", "MinFlow1(m)", "this month's min flow", LH, STAT_MIN_FLOW),
    r(142, "max_power_month_date", "MaxPower1Date(m)", "date of this month's max power", DATE, STAT_MAX),
    r(143, "max_power_month", "MaxPower1(m)", "this month's max power", KW, STAT_MAX),
    r(144, "min_power_month_date", "MinPower1Date(m)", "date of this month's min power", DATE, STAT_MIN),
    r(145, "min_power_month", "MinPower1(m)", "this month's min power", KW, STAT_MIN),
    r(149, "avg_t1_month", "AvrTemp1(m)", "month-to-date average T1", C, STAT_MAX),
    r(150, "avg_t2_month", "AvrTemp2(m)", "month-to-date average T2", C, STAT_MAX),
    // Logger registers of the 3-series (kmp-loggers.md §2, §3.6): read by PyKMP's log dumper
    // from a MULTICAL 603/303; also answered by GetRegister (likely). 348 = DST minutes + YYMMDDhhmmss.
    r(348, "date_time", "DateTime", "date and time, standard time plus DST offset", u(0x4F), M403_603),
    r(379, "t1_avg_day", "T1avg(d)", "T1 average of the day (daily logger)", C, M403_603),
    r(380, "t2_avg_day", "T2avg(d)", "T2 average of the day (daily logger)", C, M403_603),
    r(381, "t1_avg_hour", "T1avg(h)", "T1 average of the hour (hourly logger)", C, M403_603),
    r(382, "t2_avg_hour", "T2avg(h)", "T2 average of the hour (hourly logger)", C, M403_603),
    r(369, "info_bits", "InfoBits", "info bits as logged", None, M403_603),
    r(338, "data_quality", "DataQuality", "data quality of the logged record", None, M403_603),
    // §8.3 identification and configuration
    r(1003, "date", "Date", "current date yymmdd", DATE, M302_402_62_601),
    r(1002, "clock", "Clock", "current time hhmmss", u(0x2F), &[M302, M402, M62, M601, M403]),
    r(98, "target_date", "XDAY", "target (billing) date", None, M302_402_62_601),
    r(1001, "serial_number", "SerialNumber", "unique serial number", NUM, M302_402_62_601_403),
    r(112, "customer_number_high", "MeterNo(high)", "customer number, 8 most significant digits", NUM, M302_402_62_601),
    r(1010, "customer_number_low", "MeterNo(low)", "customer number, 8 least significant digits", NUM, M302_402_62_601),
    r(114, "meter_number_a", "MeterNoVA", "meter number of input A", NUM, M402_62_601),
    r(104, "meter_number_b", "MeterNoVB", "meter number of input B", NUM, M62_601),
    r(1005, "software_edition", "MeterType", "software edition", NUM, M302_402_62_601),
    r(152, "program_number", "ProgNo", "program number", NUM, M402_62_601),
    r(153, "config_number1", "ConfNo1", "configuration number part 1", NUM, M302_402_62_601),
    r(168, "config_number2", "ConfNo2", "configuration number part 2", NUM, M302_402_62_601),
    r(154, "checksum", "CheckSum", "software checksum (CRC16)", NUM, &[M302, M62, M601]),
    r(157, "top_module_id", "TopModuleId", "top module id", NUM, M62_601),
    r(158, "base_module_id", "BaseModuleId", "base module id", NUM, M62_601),
    r(234, "litres_per_pulse_a", "l/imp VA", "litres per pulse of input A", None, M62_601),
    r(235, "litres_per_pulse_b", "l/imp VB", "litres per pulse of input B", None, M62_601),
    r(184, "mbus_primary_address", "MBusPrimary", "M-Bus primary address", NUM, &[M302]),
    r(185, "mbus_secondary_address", "MBusSecondary", "M-Bus secondary address", NUM, &[M302]),
];

/// The eight registers a reading asks for by default: E1, V1, T1, T2, power, flow, hours, info.
pub const DEFAULT_SET: [u16; 8] = [60, 68, 86, 87, 80, 74, 1004, 99];

/// The catalogue entry for `id`.
pub fn by_id(id: u16) -> Option<&'static RegisterInfo> {
    CATALOGUE.iter().find(|r| r.id == id)
}

/// Finds a register by name or short name (case-insensitive), decimal id (`60`) or hex id
/// (`0x3C`). Surrounding whitespace is ignored. Ids must be catalogued to be found.
pub fn lookup(text: &str) -> Option<&'static RegisterInfo> {
    let text = text.trim();
    let id = match text.get(..2) {
        Some(p) if p.eq_ignore_ascii_case("0x") => {
            text.get(2..).and_then(|h| u16::from_str_radix(h, 16).ok())
        }
        _ if text.bytes().all(|b| b.is_ascii_digit()) => text.parse().ok(),
        _ => None,
    };
    if let Some(id) = id {
        return by_id(id);
    }
    CATALOGUE
        .iter()
        .find(|r| r.name.eq_ignore_ascii_case(text) || r.short.eq_ignore_ascii_case(text))
}

/// The catalogue entries listed for `model`.
pub fn for_model(model: Model) -> impl Iterator<Item = &'static RegisterInfo> {
    CATALOGUE.iter().filter(move |r| r.models.contains(&model))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec::Vec;

    #[test]
    fn names_and_ids_are_unique() {
        for (i, a) in CATALOGUE.iter().enumerate() {
            for b in &CATALOGUE[i + 1..] {
                assert_ne!(a.id, b.id, "{}", a.name);
                for x in [a.name, a.short] {
                    for y in [b.name, b.short] {
                        assert!(!x.eq_ignore_ascii_case(y), "{x} / {y}");
                    }
                }
            }
            assert!(a
                .name
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_'));
            assert!(!a.models.is_empty(), "{}", a.name);
            // Names must not look like ids, or lookup would read them as numbers.
            assert!(lookup(a.short).is_some_and(|r| r.id == a.id), "{}", a.short);
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(lookup("60").map(|r| r.name), Some("heat_energy"));
        assert_eq!(lookup("0x3C").map(|r| r.name), Some("heat_energy"));
        assert_eq!(lookup("0X3c").map(|r| r.name), Some("heat_energy"));
        assert_eq!(lookup("e1").map(|r| r.id), Some(60));
        assert_eq!(lookup(" Heat_Energy ").map(|r| r.id), Some(60));
        assert_eq!(lookup("t1-t2").map(|r| r.id), Some(89));
        assert_eq!(lookup("hourcounter").map(|r| r.id), Some(1004));
        assert!(lookup("61000").is_none());
        assert!(lookup("0x").is_none());
        assert!(lookup("").is_none());
        assert!(lookup("nonsense").is_none());
    }

    #[test]
    fn default_set_is_catalogued() {
        let names: Vec<_> = DEFAULT_SET
            .iter()
            .map(|&id| by_id(id).map(|r| r.name))
            .collect();
        assert_eq!(
            names,
            [
                Some("heat_energy"),
                Some("volume"),
                Some("t1"),
                Some("t2"),
                Some("power"),
                Some("flow"),
                Some("hours"),
                Some("info")
            ]
        );
    }

    #[test]
    fn models() {
        assert_eq!(Model::Multical403.to_string(), "MULTICAL 403");
        assert!(for_model(Model::Multical403).any(|r| r.id == 60));
        assert!(!for_model(Model::Multical62).any(|r| r.id == 60));
        assert_eq!(for_model(Model::Multical801).count(), 0);
        for id in DEFAULT_SET {
            let r = by_id(id).unwrap();
            assert!(
                r.models.contains(&Model::Multical601),
                "{} not on 601",
                r.name
            );
        }
    }
}
