//! Presentation of 66C replies for `decode` and `scan`: every field of every data set as a
//! named, exact value with its unit (scaled by the program number), a date, a code or raw.

use kamstrup_decimal::Decimal;
use kamstrup_mc66c::{Field, InfoTable, Meaning, Record, Reply, Scaling, Unit};
use serde::Serialize;

use crate::mc66c_driver::ReadoutReply;

/// One named value of a 66C reply, for listings (`scan`, `decode`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DataField {
    /// Field name from the TD (`customer_no`, `energy`, `energy[3]` for record 3 of a log).
    pub name: String,
    /// The exact value when the field is a number (scaled where it is a quantity).
    pub value: Option<Decimal>,
    /// Unit symbol; empty when none or unknown.
    pub unit: String,
    /// Human form (dates, program number, info code bits, the text of a non-numeric token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl DataField {
    /// A listing entry for one record field; `suffix` numbers the records of a multi-line reply.
    pub fn from_field(field: &Field, suffix: &str) -> DataField {
        let text = match field.meaning {
            Meaning::Quantity(_) | Meaning::Raw | Meaning::CustomerNo(_) => None,
            Meaning::Info(code) => {
                (!code.is_ok()).then(|| code.describe(InfoTable::Mc66Cde).to_string())
            }
            other => Some(other.to_string()),
        };
        DataField {
            name: format!("{}{suffix}", field.name),
            value: field.value().or(Some(Decimal::from_int(field.raw))),
            unit: field.unit().map(Unit::as_str).unwrap_or("").to_string(),
            text,
        }
    }
}

fn listed<'a>(fields: impl IntoIterator<Item = &'a Field>, suffix: &str) -> Vec<DataField> {
    fields
        .into_iter()
        .map(|f| DataField::from_field(f, suffix))
        .collect()
}

/// The fields of any parsed 66C reply in wire order: energies, volumes, masses, powers and
/// flows scaled by `scaling` with their units, temperatures in °C, hours, dates, codes; raw
/// integers only where the TD gives no decimals. Records of a multi-line reply are numbered
/// from 1 in the meter's order (`energy[1]` is the newest).
pub fn reply_fields(
    reply: &Reply,
    scaling: &Scaling,
) -> Result<Vec<DataField>, kamstrup_mc66c::Error> {
    Ok(match reply {
        Reply::Standard1(d) => listed(&d.fields(scaling)?, ""),
        Reply::Standard2(d) => listed(&d.fields(scaling)?, ""),
        Reply::Target(d) => listed(&d.fields(scaling)?, ""),
        Reply::Verification(d) => listed(&d.fields(scaling)?, ""),
        Reply::CurrentCounts(d) => listed(&d.fields(scaling)?, ""),
        Reply::Instantaneous(d) => listed(&d.fields(scaling)?, ""),
        Reply::Programming(d) => listed(&d.fields(scaling)?, ""),
        Reply::Monthly(d) => {
            let mut fields = vec![DataField {
                name: "customer_no".to_string(),
                value: i64::try_from(d.customer_no).ok().map(Decimal::from_int),
                unit: String::new(),
                text: None,
            }];
            for (i, r) in d.records.iter().enumerate() {
                fields.extend(listed(&r.fields(scaling)?, &format!("[{}]", i + 1)));
            }
            fields
        }
        Reply::InfoLog(events) => {
            let mut fields = Vec::new();
            for (i, e) in events.iter().enumerate() {
                let suffix = format!("[{}]", i + 1);
                fields.extend(listed(&e.fields(scaling)?, &suffix));
                // Undocumented trailing tokens (seen on a real meter) are shown as sent.
                for (j, t) in e.extra.iter().enumerate() {
                    fields.push(DataField {
                        name: format!("extra{}{suffix}", j + 1),
                        value: t.value.map(Decimal::from_int),
                        unit: String::new(),
                        text: t.value.is_none().then(|| t.text.clone()),
                    });
                }
            }
            fields
        }
        Reply::Logger(log) => {
            let mut fields = Vec::new();
            for (i, r) in log.records().iter().enumerate() {
                fields.extend(listed(&r.fields(scaling)?, &format!("[{}]", i + 1)));
            }
            fields
        }
    })
}

/// The fields of an EN 61107 readout.
pub fn readout_fields(readout: &ReadoutReply) -> Vec<DataField> {
    let mut fields = vec![DataField {
        name: "ident".to_string(),
        value: None,
        unit: String::new(),
        text: Some(readout.ident.clone()),
    }];
    if let Some(c) = &readout.customer_no {
        fields.push(DataField {
            name: "customer_no".to_string(),
            value: c.parse().ok(),
            unit: String::new(),
            text: Some(c.clone()),
        });
    }
    for v in [&readout.energy, &readout.volume, &readout.hours]
        .into_iter()
        .flatten()
    {
        fields.push(DataField {
            name: v.name.to_string(),
            value: Some(v.value),
            unit: v.unit.map(Unit::as_str).unwrap_or("").to_string(),
            text: None,
        });
    }
    fields
}
