//! The physical units a heat meter reports, what quantity each measures, and exact conversion to
//! base units: the one unit table every layer (plausibility, sinks, dashboard, metrics) uses.
//!
//! The drivers set a [`RegisterValue`](crate::RegisterValue)'s unit as a [`ValueUnit`]: one of
//! these physical units, or a symbol this table does not model (a date format, an electrical
//! unit, a code from a newer meter) kept as sent, so nothing is lost. Conversions are exact in
//! decimal: a factor and a power of ten, never `f64`; only a division (joules to watt-hours)
//! rounds, and says so.

use kamstrup_decimal::Decimal;

/// What kind of physical quantity a unit measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Quantity {
    /// Energy; base unit J.
    Energy,
    /// Volume; base unit m³.
    Volume,
    /// Mass; base unit t (a tonne of water is about a cubic metre).
    Mass,
    /// Active power; base unit W.
    Power,
    /// Volume flow; base unit m³/h (the meters' own scale; per second would not be exact).
    Flow,
    /// Mass flow; base unit t/h.
    MassFlow,
    /// Temperature; base unit °C.
    Temperature,
    /// Temperature difference; base unit K (1 K = 1 °C as a difference).
    TemperatureDifference,
    /// A duration; base unit s.
    Duration,
}

/// A unit a Kamstrup heat meter reports for a physical quantity (KMP unit table and the
/// MULTICAL 66C's scaled fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // the variant names are the units
pub enum Unit {
    Wh,
    KWh,
    MWh,
    GWh,
    J,
    KJ,
    MJ,
    GJ,
    /// KMP code 0x39: GJ with one more digit to the left (value × 10 GJ).
    GJx10,
    /// International Table calorie (EN 1434): 4.1868 J.
    Cal,
    KCal,
    MCal,
    GCal,
    Litre,
    CubicMetre,
    /// KMP code 0x37: value × 10 m³.
    CubicMetreX10,
    /// US liquid gallon: 3.785411784 l.
    UsGallon,
    Tonne,
    /// KMP code 0x38: value × 10 t.
    TonneX10,
    W,
    KW,
    MW,
    GW,
    LitrePerHour,
    CubicMetrePerHour,
    TonnePerHour,
    UsGallonPerMinute,
    Celsius,
    Kelvin,
    Hour,
    Minute,
    Second,
    Millisecond,
    Day,
}

/// `value × factor × 10^pow10` gives the base unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Scale {
    factor: i128,
    pow10: i16,
}

const fn scale(factor: i128, pow10: i16) -> Scale {
    Scale { factor, pow10 }
}

impl Unit {
    /// Every unit, for tables and tests.
    pub const ALL: [Unit; 34] = [
        Unit::Wh,
        Unit::KWh,
        Unit::MWh,
        Unit::GWh,
        Unit::J,
        Unit::KJ,
        Unit::MJ,
        Unit::GJ,
        Unit::GJx10,
        Unit::Cal,
        Unit::KCal,
        Unit::MCal,
        Unit::GCal,
        Unit::Litre,
        Unit::CubicMetre,
        Unit::CubicMetreX10,
        Unit::UsGallon,
        Unit::Tonne,
        Unit::TonneX10,
        Unit::W,
        Unit::KW,
        Unit::MW,
        Unit::GW,
        Unit::LitrePerHour,
        Unit::CubicMetrePerHour,
        Unit::TonnePerHour,
        Unit::UsGallonPerMinute,
        Unit::Celsius,
        Unit::Kelvin,
        Unit::Hour,
        Unit::Minute,
        Unit::Second,
        Unit::Millisecond,
        Unit::Day,
    ];

    /// The symbol the drivers write (`GJ`, `m³`, `°C`, `l/h`, `h` …).
    pub const fn symbol(self) -> &'static str {
        match self {
            Unit::Wh => "Wh",
            Unit::KWh => "kWh",
            Unit::MWh => "MWh",
            Unit::GWh => "GWh",
            Unit::J => "J",
            Unit::KJ => "kJ",
            Unit::MJ => "MJ",
            Unit::GJ => "GJ",
            Unit::GJx10 => "GJ×10",
            Unit::Cal => "cal",
            Unit::KCal => "kcal",
            Unit::MCal => "Mcal",
            Unit::GCal => "Gcal",
            Unit::Litre => "l",
            Unit::CubicMetre => "m³",
            Unit::CubicMetreX10 => "m³×10",
            Unit::UsGallon => "US gal",
            Unit::Tonne => "ton",
            Unit::TonneX10 => "ton×10",
            Unit::W => "W",
            Unit::KW => "kW",
            Unit::MW => "MW",
            Unit::GW => "GW",
            Unit::LitrePerHour => "l/h",
            Unit::CubicMetrePerHour => "m³/h",
            Unit::TonnePerHour => "ton/h",
            Unit::UsGallonPerMinute => "US gal/min",
            Unit::Celsius => "°C",
            Unit::Kelvin => "K",
            Unit::Hour => "h",
            Unit::Minute => "min",
            Unit::Second => "s",
            Unit::Millisecond => "ms",
            Unit::Day => "days",
        }
    }

    /// The unit of a symbol as the drivers write it; also the ASCII spellings users and other
    /// tools use (`m3`, `m3/h`, `C`) and the 66C's `t`. `None`: not a physical unit this table
    /// knows (a date format, a bit field, an electrical unit, text).
    pub fn parse(symbol: &str) -> Option<Unit> {
        let symbol = symbol.trim();
        if let Some(u) = Self::ALL.into_iter().find(|u| u.symbol() == symbol) {
            return Some(u);
        }
        Some(match symbol {
            "m3" => Unit::CubicMetre,
            "m3/h" => Unit::CubicMetrePerHour,
            "C" => Unit::Celsius,
            "t" => Unit::Tonne,
            "t/h" => Unit::TonnePerHour,
            _ => return None,
        })
    }

    /// What the unit measures.
    pub const fn quantity(self) -> Quantity {
        match self {
            Unit::Wh
            | Unit::KWh
            | Unit::MWh
            | Unit::GWh
            | Unit::J
            | Unit::KJ
            | Unit::MJ
            | Unit::GJ
            | Unit::GJx10
            | Unit::Cal
            | Unit::KCal
            | Unit::MCal
            | Unit::GCal => Quantity::Energy,
            Unit::Litre | Unit::CubicMetre | Unit::CubicMetreX10 | Unit::UsGallon => {
                Quantity::Volume
            }
            Unit::Tonne | Unit::TonneX10 => Quantity::Mass,
            Unit::W | Unit::KW | Unit::MW | Unit::GW => Quantity::Power,
            Unit::LitrePerHour | Unit::CubicMetrePerHour | Unit::UsGallonPerMinute => {
                Quantity::Flow
            }
            Unit::TonnePerHour => Quantity::MassFlow,
            Unit::Celsius => Quantity::Temperature,
            Unit::Kelvin => Quantity::TemperatureDifference,
            Unit::Hour | Unit::Minute | Unit::Second | Unit::Millisecond | Unit::Day => {
                Quantity::Duration
            }
        }
    }

    /// One of this unit in the quantity's base unit.
    const fn base(self) -> Scale {
        match self {
            Unit::Wh => scale(36, 2),
            Unit::KWh => scale(36, 5),
            Unit::MWh => scale(36, 8),
            Unit::GWh => scale(36, 11),
            Unit::J => scale(1, 0),
            Unit::KJ => scale(1, 3),
            Unit::MJ => scale(1, 6),
            Unit::GJ => scale(1, 9),
            Unit::GJx10 => scale(1, 10),
            Unit::Cal => scale(41_868, -4),
            Unit::KCal => scale(41_868, -1),
            Unit::MCal => scale(41_868, 2),
            Unit::GCal => scale(41_868, 5),
            Unit::Litre => scale(1, -3),
            Unit::CubicMetre => scale(1, 0),
            Unit::CubicMetreX10 => scale(1, 1),
            Unit::UsGallon => scale(3_785_411_784, -12),
            Unit::Tonne => scale(1, 0),
            Unit::TonneX10 => scale(1, 1),
            Unit::W => scale(1, 0),
            Unit::KW => scale(1, 3),
            Unit::MW => scale(1, 6),
            Unit::GW => scale(1, 9),
            Unit::LitrePerHour => scale(1, -3),
            Unit::CubicMetrePerHour => scale(1, 0),
            Unit::TonnePerHour => scale(1, 0),
            // 3.785411784 l × 60 per hour.
            Unit::UsGallonPerMinute => scale(22_712_470_704, -11),
            Unit::Celsius | Unit::Kelvin => scale(1, 0),
            Unit::Hour => scale(3600, 0),
            Unit::Minute => scale(60, 0),
            Unit::Second => scale(1, 0),
            Unit::Millisecond => scale(1, -3),
            Unit::Day => scale(86_400, 0),
        }
    }

    /// `value` in this unit, in the base unit of its quantity (J, m³, t, W, m³/h, t/h, °C, K,
    /// s), exactly. `None` only if the digits overflow.
    pub fn to_base(self, value: &Decimal) -> Option<Decimal> {
        let s = self.base();
        Decimal::new(
            value.mantissa().checked_mul(s.factor)?,
            value.exponent().checked_add(s.pow10)?,
        )
        .ok()
    }

    /// `value` in this unit expressed in `to`: exact when the quotient is exact at the value's
    /// own resolution (`55.006 MWh` is `55006 kWh`), else rounded half away from zero to
    /// `max_decimals` digits after the point (`1 GJ` in `Wh` with 0 decimals is `277778`).
    /// `None` for units of different quantities (temperature and temperature difference
    /// included) or on overflow.
    pub fn convert(self, value: &Decimal, to: Unit, max_decimals: u16) -> Option<Decimal> {
        if self.quantity() != to.quantity() {
            return None;
        }
        let base = self.to_base(value)?;
        let s = to.base();
        // base / (factor × 10^pow10) = (base / factor) × 10^-pow10, so the quotient by `factor`
        // is rounded at exponent pow10 − max_decimals.
        let target = s.pow10.checked_sub(i16::try_from(max_decimals).ok()?)?;
        let quotient = divide(&base, s.factor, target)?;
        Decimal::new(
            quotient.mantissa(),
            quotient.exponent().checked_sub(s.pow10)?,
        )
        .ok()
    }
}

impl core::fmt::Display for Unit {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.symbol())
    }
}

/// The unit of one register value, as its driver set it. In JSON and in the store it is the
/// symbol text (`"GJ"`, `"m³"`, `"yy:mm:dd"`, `""`), so files and payloads keep their form.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum ValueUnit {
    /// No unit: a plain number, a code, a count.
    #[default]
    None,
    /// A physical unit of the one table.
    Physical(Unit),
    /// Any other symbol the meter sent: a date or time format, an electrical unit, a unit code
    /// this table does not know (its symbol from the KMP table, or the text a 66C sent).
    Other(String),
}

impl ValueUnit {
    /// The unit a symbol names: a physical unit when the one table knows it (the ASCII
    /// spellings `m3`, `C`, `t` included), nothing for an empty symbol, else the text as is.
    pub fn from_symbol(symbol: &str) -> ValueUnit {
        if symbol.trim().is_empty() {
            return ValueUnit::None;
        }
        match Unit::parse(symbol) {
            Some(u) => ValueUnit::Physical(u),
            None => ValueUnit::Other(symbol.to_string()),
        }
    }

    /// The symbol shown to people and written to files (`""` for no unit).
    pub fn as_str(&self) -> &str {
        match self {
            ValueUnit::None => "",
            ValueUnit::Physical(u) => u.symbol(),
            ValueUnit::Other(s) => s,
        }
    }

    /// True when the value has no unit.
    pub fn is_empty(&self) -> bool {
        self.as_str().is_empty()
    }

    /// The physical unit, if it is one.
    pub fn physical(&self) -> Option<Unit> {
        match self {
            ValueUnit::Physical(u) => Some(*u),
            _ => None,
        }
    }

    /// What the unit measures, if it is physical.
    pub fn quantity(&self) -> Option<Quantity> {
        self.physical().map(Unit::quantity)
    }

    /// True for the KMP date and time formats (`yy:mm:dd`, `hh:mm:ss`, …): the value is a
    /// calendar date or a clock time written as digits, not an amount.
    pub fn is_date_or_time(&self) -> bool {
        matches!(self, ValueUnit::Other(s) if s.contains("dd") || s.contains("ss"))
    }
}

impl From<Unit> for ValueUnit {
    fn from(u: Unit) -> Self {
        ValueUnit::Physical(u)
    }
}

impl From<&str> for ValueUnit {
    fn from(symbol: &str) -> Self {
        ValueUnit::from_symbol(symbol)
    }
}

impl PartialEq<str> for ValueUnit {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ValueUnit {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl core::fmt::Display for ValueUnit {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for ValueUnit {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for ValueUnit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let symbol = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(ValueUnit::from_symbol(&symbol))
    }
}

/// `value / divisor`: exact at the value's own exponent when it divides, else rounded half
/// away from zero at exponent `target` (never coarser than the value itself was).
fn divide(value: &Decimal, divisor: i128, target: i16) -> Option<Decimal> {
    if divisor <= 0 {
        return None;
    }
    if value.mantissa() % divisor == 0 {
        return Decimal::new(value.mantissa() / divisor, value.exponent()).ok();
    }
    let exponent = value.exponent().min(target);
    let n = value.rescale(exponent)?.mantissa();
    if n % divisor == 0 {
        return Decimal::new(n / divisor, exponent).ok();
    }
    // Inexact: n / (divisor × 10^(target − exponent)) at `target`, rounded once.
    let drop = u32::try_from(target.checked_sub(exponent)?).ok()?;
    let den = divisor.checked_mul(10i128.checked_pow(drop)?)?;
    let q = n / den;
    let r = n % den;
    let q = if r.checked_abs()?.checked_mul(2)? >= den {
        q + n.signum()
    } else {
        q
    };
    Decimal::new(q, target).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    /// Plain text (no exponent form) at the value's resolution.
    fn text(x: Decimal) -> String {
        x.rescale(x.exponent().min(0)).unwrap().to_string()
    }

    #[test]
    fn every_symbol_parses_back_to_its_unit() {
        for u in Unit::ALL {
            assert_eq!(Unit::parse(u.symbol()), Some(u), "{u}");
        }
        assert_eq!(Unit::parse("m3"), Some(Unit::CubicMetre));
        assert_eq!(Unit::parse("t"), Some(Unit::Tonne));
        assert_eq!(Unit::parse("yy:mm:dd"), None);
        assert_eq!(Unit::parse(""), None);
        assert_eq!(Unit::parse("kvarh"), None);
    }

    #[test]
    fn a_value_unit_keeps_every_symbol_and_types_the_physical_ones() {
        assert_eq!(ValueUnit::from_symbol("GJ"), ValueUnit::Physical(Unit::GJ));
        assert_eq!(ValueUnit::from_symbol("m3").as_str(), "m³");
        assert_eq!(ValueUnit::from_symbol(""), ValueUnit::None);
        let date = ValueUnit::from_symbol("yy:mm:dd");
        assert_eq!(date, ValueUnit::Other("yy:mm:dd".into()));
        assert!(date.is_date_or_time() && !ValueUnit::from_symbol("kvarh").is_date_or_time());
        assert_eq!(ValueUnit::from_symbol("kvarh").as_str(), "kvarh");
        for symbol in ["GJ", "m³/h", "", "hh:mm:ss", "V"] {
            let json = serde_json::to_string(&ValueUnit::from_symbol(symbol)).unwrap();
            assert_eq!(json, serde_json::to_string(symbol).unwrap());
            let back: ValueUnit = serde_json::from_str(&json).unwrap();
            assert_eq!(back, symbol);
        }
    }

    #[test]
    fn energy_goes_to_joules_exactly() {
        let j = |v: &str, u: Unit| text(u.to_base(&d(v)).unwrap());
        assert_eq!(j("122.79", Unit::GJ), "122790000000");
        assert_eq!(j("55.006", Unit::MWh), "198021600000");
        assert_eq!(j("1.5", Unit::GCal), "6280200000");
        assert_eq!(j("12.3", Unit::GJx10), "123000000000");
    }

    #[test]
    fn conversions_are_exact_or_rounded_once() {
        let c = |v: &str, from: Unit, to: Unit, n: u16| from.convert(&d(v), to, n).map(text);
        assert_eq!(
            c("55.006", Unit::MWh, Unit::KWh, 3).as_deref(),
            Some("55006")
        );
        assert_eq!(c("1", Unit::GJ, Unit::Wh, 0).as_deref(), Some("277778"));
        assert_eq!(c("1", Unit::GJ, Unit::KWh, 3).as_deref(), Some("277.778"));
        assert_eq!(c("3.6", Unit::GJ, Unit::MWh, 6).as_deref(), Some("1"));
        assert_eq!(
            c("1500", Unit::Litre, Unit::CubicMetre, 9).as_deref(),
            Some("1.500")
        );
        assert_eq!(c("15.5", Unit::KW, Unit::W, 0).as_deref(), Some("15500"));
        assert_eq!(c("-1", Unit::GJ, Unit::Wh, 0).as_deref(), Some("-277778"));
        assert_eq!(c("1", Unit::Celsius, Unit::Kelvin, 2), None);
        assert_eq!(c("1", Unit::GJ, Unit::CubicMetre, 2), None);
    }

    #[test]
    fn quantities() {
        assert_eq!(Unit::GJx10.quantity(), Quantity::Energy);
        assert_eq!(Unit::UsGallon.quantity(), Quantity::Volume);
        assert_eq!(Unit::TonneX10.quantity(), Quantity::Mass);
        assert_eq!(Unit::LitrePerHour.quantity(), Quantity::Flow);
        assert_eq!(Unit::Hour.quantity(), Quantity::Duration);
    }
}
