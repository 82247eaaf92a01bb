//! Printing readings and failures as a table, JSON or CSV, and the exit codes scripts rely on.
//! The JSON shape is a contract: each register has `id`, `name`, `value` (exact string), `unit`.

use std::io::Write;
use std::process::ExitCode;

use kamstrup_meter::mc66c_driver::DataField;
use kamstrup_meter::{Protocol, Reading, RegisterValue};
use serde::Serialize;

use crate::Format;

/// Every asked register was read.
pub(crate) const EXIT_OK: u8 = 0;
/// Nothing usable: no reply, corrupt reply, port problem.
pub(crate) const EXIT_FAILED: u8 = 1;
/// Bad input on the command line (clap uses 2 as well).
pub(crate) const EXIT_USAGE: u8 = 2;
/// The meter answered, but without some of the asked registers.
pub(crate) const EXIT_PARTIAL: u8 = 3;

#[derive(Serialize)]
struct ErrorBody<'a> {
    kind: &'a str,
    message: String,
}

#[derive(Serialize)]
struct ErrorDoc<'a> {
    error: ErrorBody<'a>,
}

/// Reports a failure: a JSON object on stdout for `--format json` (scripts parse stdout), else
/// a line on stderr. Returns the exit code to use.
pub(crate) fn fail(format: Format, kind: &str, message: impl Into<String>, code: u8) -> ExitCode {
    let message = message.into();
    if format == Format::Json {
        let doc = ErrorDoc {
            error: ErrorBody { kind, message },
        };
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        eprintln!("error: {message}");
    }
    ExitCode::from(code)
}

/// Prints a reading in the chosen format; `model` (the label's, from `--model` or the config)
/// names the info bits of a KMP meter.
pub(crate) fn print_reading(
    reading: &Reading,
    format: Format,
    model: Option<&str>,
) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &reading_json(reading, model))?;
            writeln!(out)?;
        }
        Format::Csv => write_csv(&mut out, reading)?,
        Format::Table => {
            let who = match (reading.meter.protocol, reading.meter.serial) {
                // The 66C has no serial number; this is the utility's customer number.
                (Protocol::Mc66c, Some(s)) => {
                    format!("meter (customer no. {s}) on {}", reading.meter.port)
                }
                (_, Some(s)) => format!("meter {s} on {}", reading.meter.port),
                (_, None) => format!("meter on {}", reading.meter.port),
            };
            writeln!(
                out,
                "{who} at {}",
                reading.taken_at.format("%Y-%m-%d %H:%M:%S UTC")
            )?;
            if let Some(kind) = &reading.meter.meter_type {
                writeln!(out, "{kind}")?;
            }
            write_table(&mut out, &reading.registers)?;
            if let Some(line) = info_line(reading, model) {
                writeln!(out, "{line}")?;
            }
            if !reading.missing.is_empty() {
                let ids: Vec<String> = reading.missing.iter().map(u16::to_string).collect();
                writeln!(out, "not answered by the meter: {}", ids.join(", "))?;
            }
        }
    }
    out.flush()
}

/// A reading as JSON, with its info code decoded beside it (`info`: code, the meter family
/// whose table named the bits, the flag names), when the reading has one.
pub(crate) fn reading_json(reading: &Reading, model: Option<&str>) -> serde_json::Value {
    let mut doc = serde_json::to_value(reading).unwrap_or_default();
    if let Some(status) = info_status(reading, model) {
        doc["info"] = serde_json::json!({
            "code": status.code,
            "family": status.family.map(|f| f.label()),
            "ok": status.is_ok(),
            "flags": status.names(),
        });
    }
    doc
}

/// The info status of a reading, its bits named by the model given, or by a simulator's.
fn info_status(
    reading: &Reading,
    model: Option<&str>,
) -> Option<kamstrup_meter::reading::InfoStatus> {
    let simulated = reading
        .meter
        .port
        .strip_prefix("sim:")
        .and_then(kamstrup_meter::reading::ModelText::of_simulator);
    let model = model.or(simulated.as_deref());
    kamstrup_meter::reading::InfoStatus::of_reading(reading, model)
}

/// The info code with its problems by name (the bits mean something only per meter family:
/// known for a 66C, for a model the user gave and for a simulator named after its model;
/// otherwise the bits are listed).
pub(crate) fn info_line(reading: &Reading, model: Option<&str>) -> Option<String> {
    let status = info_status(reading, model)?;
    if status.is_ok() {
        return Some("info 0: no problems".to_owned());
    }
    let mut parts: Vec<String> = status
        .flags()
        .map(|f| format!("{} ({})", f.name, f.description))
        .collect();
    let unknown = status.unknown_bits();
    if unknown != 0 {
        let what = if status.family.is_some() {
            "undocumented bits"
        } else {
            "bits (meter family unknown, see the meter's manual)"
        };
        let bits: Vec<String> = (0..32)
            .map(|i| 1u32 << i)
            .filter(|b| unknown & b != 0)
            .map(|b| b.to_string())
            .collect();
        parts.push(format!("{what} {}", bits.join(", ")));
    }
    Some(format!("info {}: {}", status.code, parts.join("; ")))
}

/// Aligned table of registers.
pub(crate) fn write_table(
    out: &mut impl Write,
    registers: &[RegisterValue],
) -> std::io::Result<()> {
    let rows: Vec<[String; 5]> = registers
        .iter()
        .map(|r| {
            let value = match &r.text {
                Some(text) => format!("{text} ({})", r.value),
                None => r.value.to_string(),
            };
            let note = if r.derived { "derived" } else { "" };
            [
                r.id.to_string(),
                format!("{} ({})", r.name, r.short),
                value,
                r.unit.to_string(),
                note.to_string(),
            ]
        })
        .collect();
    let header = ["id", "register", "value", "unit", ""];
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        // Numbers right-aligned so decimal places line up for equal resolutions.
        format!(
            "{:>w0$}  {:<w1$}  {:>w2$}  {:<w3$}  {}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            cells[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
        )
        .trim_end()
        .to_string()
    };
    writeln!(out, "{}", line(header))?;
    for row in &rows {
        writeln!(
            out,
            "{}",
            line([&row[0], &row[1], &row[2], &row[3], &row[4]])
        )?;
    }
    Ok(())
}

/// Aligned table of named 66C fields (value shown with its human form, if any).
pub(crate) fn write_fields(out: &mut impl Write, fields: &[DataField]) -> std::io::Result<()> {
    let rows: Vec<[String; 3]> = fields
        .iter()
        .map(|f| {
            let value = match (&f.value, &f.text) {
                (Some(v), Some(t)) if t != &v.to_string() => format!("{t} ({v})"),
                (Some(v), _) => v.to_string(),
                (None, Some(t)) => t.clone(),
                (None, None) => String::new(),
            };
            [f.name.clone(), value, f.unit.clone()]
        })
        .collect();
    let mut widths = [5usize, 5, 4];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    writeln!(
        out,
        "{}",
        format!(
            "  {:<w0$}  {:>w1$}  {}",
            "field",
            "value",
            "unit",
            w0 = widths[0],
            w1 = widths[1]
        )
        .trim_end()
    )?;
    for [name, value, unit] in &rows {
        writeln!(
            out,
            "{}",
            format!(
                "  {name:<w0$}  {value:>w1$}  {unit}",
                w0 = widths[0],
                w1 = widths[1]
            )
            .trim_end()
        )?;
    }
    Ok(())
}

pub(crate) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn write_csv(out: &mut impl Write, reading: &Reading) -> std::io::Result<()> {
    writeln!(out, "taken_at,serial,id,name,value,unit,derived")?;
    let serial = reading
        .meter
        .serial
        .map(|s| s.to_string())
        .unwrap_or_default();
    for r in &reading.registers {
        writeln!(
            out,
            "{},{},{},{},{},{},{}",
            reading.taken_at.to_rfc3339(),
            serial,
            r.id,
            csv_field(&r.name),
            r.value,
            csv_field(r.unit.as_str()),
            r.derived
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kamstrup_meter::reading::MeterIdentity;

    fn reading(port: &str, protocol: Protocol, info: &str) -> Reading {
        Reading {
            source: Default::default(),
            meter: MeterIdentity {
                protocol,
                port: port.into(),
                serial: Some(1),
                meter_type: None,
            },
            taken_at: chrono::DateTime::from_timestamp(1_779_400_000, 0).unwrap(),
            registers: vec![RegisterValue {
                id: 99,
                name: "info".into(),
                short: "InfoCode".into(),
                value: info.parse().unwrap(),
                unit: Default::default(),
                unit_code: None,
                text: None,
                derived: false,
            }],
            missing: vec![],
        }
    }

    #[test]
    fn info_codes_by_name_where_the_family_is_known() {
        assert_eq!(
            info_line(&reading("sim:multical-403", Protocol::Kmp, "264"), None).unwrap(),
            "info 264: t1_above_range (t1 above measuring range or disconnected); v1_air (air in flow sensor V1)"
        );
        assert_eq!(
            info_line(&reading("/dev/ttyUSB0", Protocol::Mc66c, "264"), None).unwrap(),
            "info 264: t1_out_of_range (T1 (flow) outside 0…165 °C); leak_heating (leak in the heating system (V1 vs V2))"
        );
        assert_eq!(
            info_line(&reading("/dev/ttyUSB0", Protocol::Kmp, "6"), None).unwrap(),
            "info 6: bits (meter family unknown, see the meter's manual) 2, 4"
        );
        assert_eq!(
            info_line(&reading("/dev/ttyUSB0", Protocol::Kmp, "0"), None).unwrap(),
            "info 0: no problems"
        );
        // A real KMP meter: named once the user says which model it is (`--model`, config).
        assert_eq!(
            info_line(
                &reading("/dev/ttyUSB0", Protocol::Kmp, "2"),
                Some("MULTICAL 602")
            )
            .unwrap(),
            "info 2: undocumented bits 2"
        );
        assert_eq!(
            info_line(&reading("/dev/ttyUSB0", Protocol::Kmp, "6"), Some("MULTICAL 403")).unwrap(),
            "info 6: low_battery (low battery level); external_alarm (external alarm (e.g. via KMP))"
        );
    }

    #[test]
    fn json_carries_the_decoded_info_code() {
        let doc = reading_json(&reading("sim:multical-403", Protocol::Kmp, "264"), None);
        assert_eq!(doc["info"]["code"], 264);
        assert_eq!(doc["info"]["ok"], false);
        assert_eq!(
            doc["info"]["flags"],
            serde_json::json!(["t1_above_range", "v1_air"])
        );
        assert!(doc["info"]["family"].as_str().unwrap().contains("403"));
        assert_eq!(doc["registers"][0]["name"], "info");
        let unknown = reading_json(&reading("/dev/ttyUSB0", Protocol::Kmp, "6"), None);
        assert_eq!(unknown["info"]["family"], serde_json::Value::Null);
        assert_eq!(
            unknown["info"]["flags"],
            serde_json::json!(["bit_2", "bit_4"])
        );
    }
}
