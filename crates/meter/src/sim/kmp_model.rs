//! Simulated KMP meters (MULTICAL 303/402/403/601/602/603/801): which registers each answers, in which
//! unit and resolution, and the sans-I/O request → reply step, including the meter's silence rules.

use std::time::Duration;

use kamstrup_decimal::Decimal;
use kamstrup_kmp::{
    Frame, MeterType, RegisterId, RegisterRecord, Request, Response, SoftwareRevision, Unit,
    DESTINATION_HEAT_METER,
};

use chrono::{DateTime, Utc};

use super::physics::{Installation, Snapshot};

/// After a frame it cannot accept, a meter ignores requests for about this long.
pub const IGNORE_AFTER_INVALID: Duration = Duration::from_millis(1600);

/// The KMP meter models the simulator can play.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KmpModel {
    /// MULTICAL 402: energy in kWh.
    Multical402,
    /// MULTICAL 403: energy in GJ.
    Multical403,
    /// MULTICAL 602: energy in MWh, temperatures with 2-byte mantissas (as seen in captures).
    Multical602,
    /// MULTICAL 603: energy in MWh; hour/day/month/year loggers read with B8.
    Multical603,
    /// MULTICAL 303: energy in kWh; hour/day/month/year loggers read with B8.
    Multical303,
    /// MULTICAL 601 with a logger module (67-0B, top) whose interval log answers A0–A3 at
    /// address 0x7F (see `sim::logger_module`); the calculator at 0x3F is silent to B8.
    Multical601,
    /// MULTICAL 801: energy in MWh; its logger answers A0–A3 at address 0x7F (as the 601's
    /// module, `sim::logger_module`); silent to B8 at 0x3F.
    Multical801,
}

impl KmpModel {
    /// All models, for help texts.
    pub const ALL: [KmpModel; 7] = [
        KmpModel::Multical402,
        KmpModel::Multical403,
        KmpModel::Multical602,
        KmpModel::Multical603,
        KmpModel::Multical303,
        KmpModel::Multical601,
        KmpModel::Multical801,
    ];

    /// The name used on the command line (`multical-403`).
    pub fn name(&self) -> &'static str {
        match self {
            KmpModel::Multical402 => "multical-402",
            KmpModel::Multical403 => "multical-403",
            KmpModel::Multical602 => "multical-602",
            KmpModel::Multical603 => "multical-603",
            KmpModel::Multical303 => "multical-303",
            KmpModel::Multical601 => "multical-601",
            KmpModel::Multical801 => "multical-801",
        }
    }

    /// Looks a model up by its command-line name.
    pub fn from_name(name: &str) -> Option<KmpModel> {
        KmpModel::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name.trim()))
    }

    /// Serial number the simulated meter reports.
    pub fn serial(&self) -> u32 {
        match self {
            KmpModel::Multical402 => 6_892_850,
            KmpModel::Multical403 => 71_234_567,
            KmpModel::Multical602 => 5_512_345,
            KmpModel::Multical603 => 78_901_234,
            KmpModel::Multical303 => 69_012_345,
            KmpModel::Multical601 => 6_012_345,
            KmpModel::Multical801 => 8_012_345,
        }
    }

    /// GetType answer. Kamstrup's type-code → model table is not public, so these codes are
    /// the simulator's own; only the shape of the reply is real.
    pub fn meter_type(&self) -> MeterType {
        let type_code = match self {
            KmpModel::Multical402 => 0x0402,
            KmpModel::Multical403 => 0x0403,
            KmpModel::Multical602 => 0x0602,
            KmpModel::Multical603 => 0x0603,
            KmpModel::Multical303 => 0x0303,
            KmpModel::Multical601 => 0x0601,
            KmpModel::Multical801 => 0x0801,
        };
        MeterType {
            type_code,
            revision: SoftwareRevision {
                letter: 6,
                number: 1,
            },
        }
    }

    /// The installation this model heats, chosen to look like a real flat or house. Counters
    /// are those at the model's commissioning ([`KmpModel::commissioned`]).
    pub fn installation(&self) -> Installation {
        let (energy_kwh, volume_m3, hours, mean_power_kw) = match self {
            KmpModel::Multical402 => (18_432.0, 402.17, 21_004, 4.2),
            KmpModel::Multical403 => (33_861.0, 951.33, 9_872, 4.2),
            KmpModel::Multical602 => (55_006.0, 1_875.56, 41_260, 4.2),
            KmpModel::Multical603 => (41_250.0, 1_402.61, 12_004, 5.0),
            KmpModel::Multical303 => (9_870.0, 302.44, 8_123, 2.4),
            KmpModel::Multical601 => (48_730.0, 1_620.18, 36_512, 4.6),
            // A block of flats: an 801 is the larger installation's meter.
            KmpModel::Multical801 => (812_400.0, 21_305.7, 44_020, 38.0),
        };
        Installation {
            energy_kwh,
            volume_m3,
            hours,
            mean_power_kw,
            power_swing_kw: mean_power_kw / 2.0,
            mean_t1: 66.0,
            mean_dt: 31.0,
            period_s: 6.0 * 3600.0,
        }
    }

    /// The unit code and exponent this model uses for heat energy.
    fn energy_format(&self) -> (u8, i16) {
        match self {
            KmpModel::Multical402 => (0x02, 0),  // kWh, whole
            KmpModel::Multical403 => (0x08, -2), // GJ, 2 decimals
            KmpModel::Multical602 => (0x03, -3), // MWh, 3 decimals
            KmpModel::Multical603 => (0x03, -3), // MWh, 3 decimals
            KmpModel::Multical303 => (0x02, 0),  // kWh, whole
            KmpModel::Multical601 => (0x03, -3), // MWh, 3 decimals
            KmpModel::Multical801 => (0x03, -3), // MWh, 3 decimals
        }
    }

    /// Whether this model answers register `id` at all (unknown ids are left out of replies).
    pub fn knows(&self, id: u16) -> bool {
        const COMMON: &[u16] = &[
            60, 63, 68, 74, 80, 86, 87, 89, 97, 99, 110, 113, 1001, 1002, 1003, 1004, 1005, 123,
            124, 127, 128, 146, 147, 138, 139, 142, 143, 149, 150,
        ];
        COMMON.contains(&id)
            || match self {
                KmpModel::Multical402 => [64, 66, 84, 85, 152, 155, 223].contains(&id),
                KmpModel::Multical403 | KmpModel::Multical303 => [266, 239].contains(&id),
                KmpModel::Multical602 | KmpModel::Multical601 | KmpModel::Multical801 => {
                    [61, 62, 69, 75, 88, 94, 95, 175].contains(&id)
                }
                KmpModel::Multical603 => [266, 239, 69, 175].contains(&id),
            }
    }

    /// The record this model sends for `id` at the given moment, or `None` if it does not know it.
    pub fn record(
        &self,
        id: u16,
        snap: &Snapshot,
        now: chrono::NaiveDateTime,
    ) -> Option<RegisterRecord> {
        if !self.knows(id) {
            return None;
        }
        let (energy_unit, energy_exp) = self.energy_format();
        let energy = |kwh: f64| energy_in(kwh, energy_unit, energy_exp);
        let dec = |m: i64, e: i16| Decimal::new(i128::from(m), e).ok();
        let floor = |v: f64, decimals: i32| (v * 10f64.powi(decimals)).floor() as i64;
        use chrono::{Datelike, Timelike};
        let date_number = |d: chrono::NaiveDate| {
            i64::from(d.year() % 100) * 10_000 + i64::from(d.month()) * 100 + i64::from(d.day())
        };
        let (unit, value) = match id {
            60 => (energy_unit, energy(snap.energy_kwh)?),
            // Cooling, E2..E7: a heating-only installation keeps these at zero, with E1's format.
            63 | 94 | 95 | 96 | 64 | 65 => (energy_unit, dec(0, energy_exp)?),
            61 => (energy_unit, energy(snap.energy_kwh * 1.8)?),
            62 => (energy_unit, energy(snap.energy_kwh * 0.8)?),
            68 => (0x28, dec(floor(snap.volume_m3, 2), -2)?),
            69 => (0x28, dec(floor(snap.volume_m3 * 0.02, 2), -2)?),
            74 => (0x29, dec(snap.flow_lh, 0)?),
            75 => (0x29, dec(0, 0)?),
            80 => (0x16, dec(snap.power_deci_kw, -1)?),
            86 => (0x25, dec(snap.t1_centi, -2)?),
            87 => (0x25, dec(snap.t2_centi, -2)?),
            88 => (0x25, dec(2_187, -2)?),
            89 => (0x26, dec(snap.t1_centi - snap.t2_centi, -2)?),
            // m³·°C integrals: volume times the mean temperature of each pipe.
            97 => (0x2B, dec(floor(snap.volume_m3 * 66.0, 0), 0)?),
            110 => (0x2B, dec(floor(snap.volume_m3 * 35.0, 0), 0)?),
            99 | 113 | 175 => (0x00, dec(0, 0)?),
            66 | 84 | 85 => (0x00, dec(0, 0)?),
            152 => (0x33, dec(4_119, 0)?),
            155 | 266 => (
                0x01,
                dec(floor(snap.energy_kwh * 1000.0, 0) % 100_000_000, 0)?,
            ),
            223 | 239 => (0x28, dec(floor(snap.volume_m3, 3) % 100_000_000, -3)?),
            1001 => (0x33, dec(i64::from(self.serial()), 0)?),
            1002 => (
                0x2F,
                dec(
                    i64::from(now.hour()) * 10_000
                        + i64::from(now.minute()) * 100
                        + i64::from(now.second()),
                    0,
                )?,
            ),
            1003 => (0x30, dec(date_number(now.date()), 0)?),
            1004 => (0x2E, dec(snap.hours as i64, 0)?),
            1005 => (0x33, dec(20_401, 0)?),
            // Year/month statistics: plausible constants; dates are yymmdd numbers.
            123 | 138 => (0x30, dec(date_number(now.date().with_day(1)?), 0)?),
            124 | 139 => (0x29, dec(412, 0)?),
            127 | 142 => (0x30, dec(date_number(now.date().with_day(2)?), 0)?),
            128 | 143 => (0x16, dec(118, -1)?),
            146 | 149 => (0x25, dec(6_512, -2)?),
            147 | 150 => (0x25, dec(3_487, -2)?),
            _ => return None,
        };
        let record = RegisterRecord {
            id: RegisterId(id),
            unit: Unit(unit),
            value,
        };
        Some(record)
    }
}

/// Energy in the meter's unit, truncated to its resolution as a meter's counter is.
fn energy_in(kwh: f64, unit: u8, exponent: i16) -> Option<Decimal> {
    let in_unit = match unit {
        0x02 => kwh,
        0x03 => kwh / 1000.0,
        0x08 => kwh * 0.0036,
        _ => return None,
    };
    let mantissa = (in_unit * 10f64.powi(-i32::from(exponent))).floor() as i64;
    Decimal::new(i128::from(mantissa), exponent).ok()
}

/// What the meter does with one received frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MeterAction {
    /// Answer with these wire bytes.
    Reply(Vec<u8>),
    /// Say nothing (wrong address, unknown command, or still ignoring after a bad frame).
    Silent(&'static str),
}

/// Decides the answer to a request frame at absolute time `at`, as a meter would: the meter's
/// state (counters, clock, loggers) is a function of `at` alone.
pub fn respond(model: KmpModel, frame: &Frame, at: DateTime<Utc>) -> MeterAction {
    if let Some(action) = super::logger_module::respond(model, frame, at) {
        return action;
    }
    if frame.destination != DESTINATION_HEAT_METER {
        return MeterAction::Silent("request for another address");
    }
    let request = match Request::from_frame(frame) {
        Ok(r) => r,
        Err(_) => return MeterAction::Silent("command not understood"),
    };
    let response = match request {
        Request::GetType => Response::Type(model.meter_type()),
        Request::GetSerialNo => Response::SerialNo(model.serial()),
        Request::GetRegister(ids) => Response::Registers(
            ids.iter()
                .filter_map(|RegisterId(id)| model.record_at(*id, at))
                .collect(),
        ),
        Request::Logger(request) => match model.answer_logger(&request, at) {
            Some(reply) => Response::Logger(reply),
            None => return MeterAction::Silent("no such logger on this model"),
        },
        // A0–A3 belong to logger modules at 0x7F/0xBF (`sim::logger_module`); a meter at 0x3F is
        // thought to ignore them, as a flowIQ 2200 did. SetClock: the simulator never lets its
        // clock be set (its state is a function of UTC time), so it stays silent.
        Request::Log(_) => return MeterAction::Silent("A0–A3 log commands are not for 0x3F"),
        Request::GetEventStatus => return MeterAction::Silent("no event status at 0x3F"),
        Request::SetClock(_) => return MeterAction::Silent("the simulated clock cannot be set"),
    };
    match response.encode(DESTINATION_HEAT_METER) {
        Ok(bytes) => MeterAction::Reply(bytes),
        Err(_) => MeterAction::Silent("reply could not be encoded"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kamstrup_kmp::Direction;

    /// 2026-01-05 08:15:00 UTC: the meter's clock (CET standard time, plus its drift) reads
    /// about 09:15.
    fn now() -> DateTime<Utc> {
        "2026-01-05T08:15:00Z".parse().unwrap()
    }

    fn ask(model: KmpModel, ids: &[u16]) -> Vec<RegisterRecord> {
        let req = Request::GetRegister(ids.iter().map(|&i| RegisterId(i)).collect());
        let frame = req.to_frame(DESTINATION_HEAT_METER).unwrap();
        let MeterAction::Reply(bytes) = respond(model, &frame, now()) else {
            panic!("no reply")
        };
        let reply = Frame::parse(&bytes).unwrap();
        assert_eq!(reply.direction, Direction::FromMeter);
        match Response::from_frame(&reply).unwrap() {
            Response::Registers(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_registers_are_left_out() {
        let got = ask(KmpModel::Multical403, &[60, 4242, 68]);
        let ids: Vec<u16> = got.iter().map(|r| r.id.0).collect();
        assert_eq!(ids, vec![60, 68]);
    }

    #[test]
    fn delta_t_is_t1_minus_t2_exactly() {
        let got = ask(KmpModel::Multical602, &[86, 87, 89]);
        let t1 = got[0].value;
        let t2 = got[1].value;
        assert!(got[2].value.eq_value(&t1.checked_sub(&t2).unwrap()));
        assert_eq!(got[0].unit, Unit(0x25));
    }

    #[test]
    fn energy_unit_depends_on_model() {
        assert_eq!(ask(KmpModel::Multical402, &[60])[0].unit, Unit(0x02));
        assert_eq!(ask(KmpModel::Multical403, &[60])[0].unit, Unit(0x08));
        let mwh = &ask(KmpModel::Multical602, &[60])[0];
        assert_eq!(mwh.unit, Unit(0x03));
        assert_eq!(mwh.value.exponent(), -3);
    }

    #[test]
    fn date_and_time_registers_are_yymmdd_and_hhmmss() {
        let model = KmpModel::Multical403;
        let got = ask(model, &[1002, 1003]);
        let clock = model.meter_clock(now()).standard;
        assert_eq!(clock.to_string().get(..15), Some("2026-01-05 09:1"));
        let hhmmss = u32::from(clock.hour) * 10_000
            + u32::from(clock.minute) * 100
            + u32::from(clock.second);
        assert_eq!(got[0].value.to_string(), hhmmss.to_string());
        assert!(got[0].date_time_text().unwrap().starts_with("09:1"));
        assert_eq!(got[1].value.to_string(), "260105");
    }

    #[test]
    fn silent_for_other_address() {
        let frame = Request::GetSerialNo.to_frame(0x7F).unwrap();
        assert!(matches!(
            respond(KmpModel::Multical403, &frame, now()),
            MeterAction::Silent(_)
        ));
    }
}
