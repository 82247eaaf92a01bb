//! The meter's date and time as KMP carries it: register 348 (unit 0x4F, standard time plus the
//! DST offset), the 8-byte `Time` of the A0/A3 log commands, and the SetClock (0x09) fields.

use core::fmt;

use kamstrup_decimal::Decimal;

use crate::{Error, RegisterId, RegisterRecord, Unit};

/// Register 348: the meter's date and time, `[DST minutes][YY][MM][DD][hh][mm][ss]`.
pub const DATE_TIME_REGISTER: RegisterId = RegisterId(348);
/// The unit code register 348 is sent with.
pub const DATE_TIME_UNIT: Unit = Unit(0x4F);
/// Value bytes of a register-348 record.
pub const DATE_TIME_LEN: u8 = 7;

/// A calendar date and time of day without a zone (years 2000..=2255 on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CivilDateTime {
    /// Full year (2000 + YY on the wire).
    pub year: u16,
    /// 1..=12.
    pub month: u8,
    /// 1..=31 (checked against the month and leap years).
    pub day: u8,
    /// 0..=23.
    pub hour: u8,
    /// 0..=59.
    pub minute: u8,
    /// 0..=59.
    pub second: u8,
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl CivilDateTime {
    /// A checked date and time; `what` names the field in the error.
    pub fn new(
        year: u16,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
    ) -> Result<CivilDateTime, Error> {
        let bad = |what| Err(Error::BadDateTime { what });
        if !(1..=12).contains(&month) {
            return bad("month");
        }
        if day == 0 || day > days_in_month(i64::from(year), month) {
            return bad("day");
        }
        if hour > 23 {
            return bad("hour");
        }
        if minute > 59 {
            return bad("minute");
        }
        if second > 59 {
            return bad("second");
        }
        Ok(CivilDateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
        })
    }

    /// Seconds since 1970-01-01 00:00:00 of this date and time read as UTC.
    pub fn unix_seconds(&self) -> i64 {
        days_from_civil(i64::from(self.year), self.month, self.day) * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }

    /// The date and time `seconds` after 1970-01-01 00:00:00; `None` outside years 0..=65535.
    pub fn from_unix_seconds(seconds: i64) -> Option<CivilDateTime> {
        let days = seconds.div_euclid(86_400);
        let rem = seconds.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        Some(CivilDateTime {
            year: u16::try_from(year).ok()?,
            month,
            day,
            hour: (rem / 3600) as u8,
            minute: (rem / 60 % 60) as u8,
            second: (rem % 60) as u8,
        })
    }

    /// The same clock moved by `seconds` (negative: back); `None` outside the year range.
    pub fn plus_seconds(&self, seconds: i64) -> Option<CivilDateTime> {
        CivilDateTime::from_unix_seconds(self.unix_seconds().checked_add(seconds)?)
    }

    /// The two-digit year on the wire, if the year is 2000..=2255.
    fn yy(&self) -> Result<u8, Error> {
        self.year
            .checked_sub(2000)
            .and_then(|y| u8::try_from(y).ok())
            .ok_or(Error::BadDateTime { what: "year" })
    }
}

impl fmt::Display for CivilDateTime {
    /// `2024-07-15 10:00:05`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// Register 348: the meter's clock in standard (winter) time plus the DST offset in force.
///
/// Wall-clock local time = `standard` + `dst_offset_min`; UTC = `standard` − the zone's
/// standard offset (the meter does not know its zone; the user does). Only offsets 0 and 60
/// have been seen; the byte is read unsigned (whether it is signed is not known).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct MeterDateTime {
    /// Daylight-saving offset in force, minutes (0 in winter, 60 in a CET summer).
    pub dst_offset_min: u8,
    /// The clock in standard time.
    pub standard: CivilDateTime,
}

impl MeterDateTime {
    /// Decodes the 7 value bytes. Errors on an impossible date or time.
    pub fn from_bytes(bytes: [u8; 7]) -> Result<MeterDateTime, Error> {
        let [dst, yy, mm, dd, h, m, s] = bytes;
        Ok(MeterDateTime {
            dst_offset_min: dst,
            standard: CivilDateTime::new(2000 + u16::from(yy), mm, dd, h, m, s)?,
        })
    }

    /// The 7 value bytes. Errors on a year outside 2000..=2255.
    pub fn to_bytes(&self) -> Result<[u8; 7], Error> {
        let c = &self.standard;
        Ok([
            self.dst_offset_min,
            c.yy()?,
            c.month,
            c.day,
            c.hour,
            c.minute,
            c.second,
        ])
    }

    /// Reads a register record that carries a date-time (unit 0x4F, a non-negative integer of
    /// at most 7 bytes). Errors on another unit or an impossible date.
    pub fn from_record(record: &RegisterRecord) -> Result<MeterDateTime, Error> {
        MeterDateTime::from_value(record.unit, &record.value)
    }

    /// As [`MeterDateTime::from_record`], from a unit and value.
    pub fn from_value(unit: Unit, value: &Decimal) -> Result<MeterDateTime, Error> {
        if unit != DATE_TIME_UNIT {
            return Err(Error::BadDateTime { what: "unit" });
        }
        let raw = value
            .rescale(0)
            .and_then(|d| u64::try_from(d.mantissa()).ok())
            .filter(|&n| n < 1 << 56)
            .ok_or(Error::BadDateTime { what: "value" })?;
        let b = raw.to_be_bytes();
        MeterDateTime::from_bytes([b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    /// The record the meter sends for register 348 with this value.
    pub fn to_record(&self) -> Result<RegisterRecord, Error> {
        let bytes = self.to_bytes()?;
        let mut wide = [0u8; 8];
        if let Some(tail) = wide.get_mut(1..) {
            tail.copy_from_slice(&bytes);
        }
        let value = Decimal::new(i128::from(u64::from_be_bytes(wide)), 0)
            .map_err(|_| Error::BadDateTime { what: "value" })?;
        Ok(RegisterRecord {
            id: DATE_TIME_REGISTER,
            unit: DATE_TIME_UNIT,
            value,
        })
    }

    /// Wall-clock local time (standard time plus the DST offset).
    pub fn local(&self) -> Option<CivilDateTime> {
        self.standard
            .plus_seconds(i64::from(self.dst_offset_min) * 60)
    }

    /// Unix seconds, given the meter's zone as its standard offset from UTC in minutes
    /// (CET: +60).
    pub fn utc_unix_seconds(&self, zone_standard_offset_min: i32) -> i64 {
        self.standard.unix_seconds() - i64::from(zone_standard_offset_min) * 60
    }
}

impl fmt::Display for MeterDateTime {
    /// `2024-07-15 10:00:05 standard time (DST +60 min)`; without the DST part when it is 0.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} standard time", self.standard)?;
        if self.dst_offset_min != 0 {
            write!(f, " (DST +{} min)", self.dst_offset_min)?;
        }
        Ok(())
    }
}

/// The 8-byte `Time` of A0 GetLogTimePresent and A3 GetLogTimePast:
/// `[YY][MM][DD][hh][mm][ss][weekday][info]`, year 2000 + YY (YY first on the wire: likely).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct LogTime {
    /// Date and time.
    pub at: CivilDateTime,
    /// Weekday byte (0 in every known example).
    pub weekday: u8,
    /// Info byte (0 in every known example).
    pub info: u8,
}

impl LogTime {
    /// A time with weekday and info 0, as the documented examples send.
    pub fn new(at: CivilDateTime) -> LogTime {
        LogTime {
            at,
            weekday: 0,
            info: 0,
        }
    }

    /// Decodes the 8 bytes.
    pub fn from_bytes(bytes: [u8; 8]) -> Result<LogTime, Error> {
        let [yy, mm, dd, h, m, s, weekday, info] = bytes;
        Ok(LogTime {
            at: CivilDateTime::new(2000 + u16::from(yy), mm, dd, h, m, s)?,
            weekday,
            info,
        })
    }

    /// The 8 bytes. Errors on a year outside 2000..=2255.
    pub fn to_bytes(&self) -> Result<[u8; 8], Error> {
        let c = &self.at;
        Ok([
            c.yy()?,
            c.month,
            c.day,
            c.hour,
            c.minute,
            c.second,
            self.weekday,
            self.info,
        ])
    }
}

/// SetClock (CID 0x09) data: the date as a 4-byte big-endian number whose decimal digits are
/// YYMMDD, then the time as a 4-byte number hhmmss (layout from one source: weak).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ClockSetting {
    /// The new clock (years 2000..=2099).
    pub at: CivilDateTime,
}

impl ClockSetting {
    /// The 8 data bytes.
    pub fn to_bytes(&self) -> Result<[u8; 8], Error> {
        let c = &self.at;
        let yy = c
            .yy()
            .ok()
            .filter(|&y| y < 100)
            .ok_or(Error::BadDateTime { what: "year" })?;
        let date = u32::from(yy) * 10_000 + u32::from(c.month) * 100 + u32::from(c.day);
        let time = u32::from(c.hour) * 10_000 + u32::from(c.minute) * 100 + u32::from(c.second);
        let mut out = [0u8; 8];
        out[..4].copy_from_slice(&date.to_be_bytes());
        out[4..].copy_from_slice(&time.to_be_bytes());
        Ok(out)
    }

    /// Decodes the 8 data bytes; errors on digits that are no date or time.
    pub fn from_bytes(bytes: [u8; 8]) -> Result<ClockSetting, Error> {
        let [a, b, c, d, e, f, g, h] = bytes;
        let date = u32::from_be_bytes([a, b, c, d]);
        let time = u32::from_be_bytes([e, f, g, h]);
        if date >= 1_000_000 {
            return Err(Error::BadDateTime { what: "date" });
        }
        if time >= 1_000_000 {
            return Err(Error::BadDateTime { what: "time" });
        }
        let two = |n: u32| (n % 100) as u8;
        Ok(ClockSetting {
            at: CivilDateTime::new(
                2000 + (date / 10_000) as u16,
                two(date / 100),
                two(date),
                (time / 10_000) as u8,
                two(time / 100),
                two(time),
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn register_348_real_and_documented_examples() {
        // Real: 2024-12-31 00:00:04, offset 0.
        let t = MeterDateTime::from_bytes([0x00, 0x18, 0x0C, 0x1F, 0x00, 0x00, 0x04]).unwrap();
        assert_eq!(t.standard.to_string(), "2024-12-31 00:00:04");
        assert_eq!(t.to_string(), "2024-12-31 00:00:04 standard time");
        // Kamstrup's example: 2016-06-30 14:48:55 standard, +60 min.
        let t = MeterDateTime::from_bytes([0x3C, 0x10, 0x06, 0x1E, 0x0E, 0x30, 0x37]).unwrap();
        assert_eq!(t.dst_offset_min, 60);
        assert_eq!(t.local().unwrap().to_string(), "2016-06-30 15:48:55");
        // LogView shows 3C 1A 04 15 0C 07 1E as 13:07:30 local.
        let t = MeterDateTime::from_bytes([0x3C, 0x1A, 0x04, 0x15, 0x0C, 0x07, 0x1E]).unwrap();
        assert_eq!(t.local().unwrap().to_string(), "2026-04-21 13:07:30");
        // CET: UTC = standard − 1 h.
        assert_eq!(
            CivilDateTime::from_unix_seconds(t.utc_unix_seconds(60))
                .unwrap()
                .to_string(),
            "2026-04-21 11:07:30"
        );
        let record = t.to_record().unwrap();
        assert_eq!(MeterDateTime::from_record(&record).unwrap(), t);
        assert!(MeterDateTime::from_bytes([0, 24, 2, 30, 0, 0, 0]).is_err());
        assert!(MeterDateTime::from_bytes([0, 24, 2, 29, 0, 0, 0]).is_ok());
        assert!(MeterDateTime::from_bytes([0, 23, 2, 29, 0, 0, 0]).is_err());
    }

    #[test]
    fn unix_round_trip() {
        for s in [0i64, 951_782_400, 1_700_000_000, 4_102_444_799, -86_401] {
            let c = CivilDateTime::from_unix_seconds(s).unwrap();
            assert_eq!(c.unix_seconds(), s);
        }
        let c = CivilDateTime::new(2000, 2, 29, 23, 59, 59).unwrap();
        assert_eq!(c.unix_seconds(), 951_868_799);
    }

    #[test]
    fn clock_setting_bytes() {
        let at = CivilDateTime::new(2026, 1, 5, 9, 15, 0).unwrap();
        let bytes = ClockSetting { at }.to_bytes().unwrap();
        // 260105 = 0x0003F809, 91500 = 0x0001656C.
        assert_eq!(bytes, [0x00, 0x03, 0xF8, 0x09, 0x00, 0x01, 0x65, 0x6C]);
        assert_eq!(ClockSetting::from_bytes(bytes).unwrap().at, at);
        assert!(ClockSetting::from_bytes([0, 0x0F, 0x42, 0x40, 0, 0, 0, 0]).is_err());
        let late = CivilDateTime::new(2100, 1, 1, 0, 0, 0).unwrap();
        assert!(ClockSetting { at: late }.to_bytes().is_err());
    }
}
