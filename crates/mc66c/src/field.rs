//! One decoded field of a 66C record: its TD name, the raw integer as sent, and what it means —
//! an exact quantity with its unit (scaled by the program number), a date, a code, or raw.

use core::fmt;

use kamstrup_decimal::Decimal;

use crate::data::{Config, MeterDate, MeterTime, MonthDay};
use crate::info::{InfoCode, InfoTable};
use crate::scaling::{ProgramNumber, Unit, Value};

/// What a field means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Meaning {
    /// An exact quantity with its unit (energy, volume, mass, temperature, power, flow, hours).
    Quantity(Value),
    /// A register whose decimals or unit the TD does not give (tariff registers and limits,
    /// pulse inputs, Qsum, pre-counters, pressures, volume×temperature sums): the raw integer.
    Raw,
    /// The customer number.
    CustomerNo(u64),
    /// A date (`None`: the meter wrote 0, an empty entry).
    Date(Option<MeterDate>),
    /// A clock time.
    Time(MeterTime),
    /// The yearly target (billing) day.
    TargetDay(Option<MonthDay>),
    /// The program number A-B-CCC, and the CCC code of V2 where the field carries it (`/#D`).
    Program {
        /// A-B-CCC.
        program: ProgramNumber,
        /// CCC of V2.
        ccc_v2: Option<u16>,
    },
    /// The configuration DD-E-FF-GG, and the leak-detection digits M, N where given (`/#D`).
    Config {
        /// DD-E-FF-GG.
        config: Config,
        /// M and N.
        leak: Option<(u8, u8)>,
    },
    /// An info code (66-CDE table).
    Info(InfoCode),
}

/// One field of a record, in wire order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// The TD's field name (`energy`, `t1_avg`, `customer_no`).
    pub name: &'static str,
    /// The integer as sent.
    pub raw: i64,
    /// What it means.
    pub meaning: Meaning,
}

impl Field {
    pub(crate) const fn new(name: &'static str, raw: i64, meaning: Meaning) -> Field {
        Field { name, raw, meaning }
    }

    pub(crate) const fn quantity(value: Value, raw: i64) -> Field {
        Field {
            name: value.name,
            raw,
            meaning: Meaning::Quantity(value),
        }
    }

    pub(crate) const fn raw(name: &'static str, raw: i64) -> Field {
        Field {
            name,
            raw,
            meaning: Meaning::Raw,
        }
    }

    /// The exact value: the scaled quantity, else the number itself (raw registers, customer
    /// and info codes); `None` for dates, times and codes made of digits.
    pub fn value(&self) -> Option<Decimal> {
        match self.meaning {
            Meaning::Quantity(v) => Some(v.value),
            Meaning::Raw | Meaning::Info(_) => Some(Decimal::from_int(self.raw)),
            Meaning::CustomerNo(c) => i64::try_from(c).ok().map(Decimal::from_int),
            _ => None,
        }
    }

    /// The unit of a quantity.
    pub fn unit(&self) -> Option<Unit> {
        match self.meaning {
            Meaning::Quantity(v) => v.unit,
            _ => None,
        }
    }
}

impl fmt::Display for Meaning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Meaning::Quantity(v) => match v.unit {
                Some(u) => write!(f, "{} {u}", v.value),
                None => write!(f, "{}", v.value),
            },
            Meaning::Raw => f.write_str("raw"),
            Meaning::CustomerNo(c) => write!(f, "{c}"),
            Meaning::Date(Some(d)) => write!(f, "{d}"),
            Meaning::Date(None) | Meaning::TargetDay(None) => f.write_str("none"),
            Meaning::Time(t) => write!(f, "{t}"),
            Meaning::TargetDay(Some(d)) => write!(f, "{d}"),
            Meaning::Program { program, ccc_v2 } => match ccc_v2 {
                Some(v2) => write!(f, "program {program}, V2 code {v2:03}"),
                None => write!(f, "program {program}"),
            },
            Meaning::Config { config, leak } => {
                write!(
                    f,
                    "DD={} E={} FF={} GG={}",
                    config.dd(),
                    config.e(),
                    config.ff(),
                    config.gg()
                )?;
                match leak {
                    Some((m, n)) => write!(f, " M={m} N={n}"),
                    None => Ok(()),
                }
            }
            Meaning::Info(code) => write!(f, "{}", code.describe(InfoTable::Mc66Cde)),
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.meaning {
            Meaning::Raw => write!(f, "{}={}", self.name, self.raw),
            m => write!(f, "{}={m}", self.name),
        }
    }
}
