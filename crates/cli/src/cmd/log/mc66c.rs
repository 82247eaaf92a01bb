//! `kamstrup log` for a MULTICAL 66C: its hour (`/#7`) or day (`/#6`) logger, read whole, as
//! heat-energy counter records, or its month-end counters (`/#5`) — the same session and
//! records the daemon's back-fill stores.

use std::io::Write;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use kamstrup_meter::{
    Mc66cLog, Mc66cLogRead, Mc66cLogReadError, Mc66cLogRow, Mc66cMeter, Selection,
};
use serde::Serialize;

use super::{utc_text, zone_text, LogArgs, LoggerArg};
use crate::output::{csv_field, fail, EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::Format;

#[derive(Serialize)]
struct Doc<'a> {
    port: &'a str,
    logger: &'static str,
    data_sets: &'a [&'static str],
    zone_offset_min: i32,
    meter_clock_offset_s: Option<i64>,
    requests: u64,
    bytes: u64,
    records: Vec<Record<'a>>,
}

#[derive(Serialize)]
struct Record<'a> {
    /// The end of the period by the meter's clock.
    meter_time: String,
    utc: String,
    registers: &'a [kamstrup_meter::RegisterValue],
}

pub(super) async fn run(
    mut meter: Mc66cMeter,
    args: &LogArgs,
    zone: i32,
    selection: Selection,
) -> ExitCode {
    let format = args.format;
    let log = match args.logger {
        LoggerArg::Hour => Mc66cLog::Hour,
        LoggerArg::Day => Mc66cLog::Day,
        LoggerArg::Month => Mc66cLog::Month,
        LoggerArg::Year => {
            return fail(
                format,
                "usage",
                "a 66C's year logger (/#9) is not read as records (--logger month gives the counters at each of the last 32 month ends, /#5); `kamstrup scan --protocol mc66c` shows it",
                EXIT_USAGE,
            )
        }
    };
    if !args.registers.is_empty() {
        return fail(
            format,
            "usage",
            "a 66C's loggers give the heat energy only: leave out --registers",
            EXIT_USAGE,
        );
    }
    if format == Format::Table {
        match log {
            Mc66cLog::Month => eprintln!("reading the 66C's month-end counters (/#5, with /#D)"),
            Mc66cLog::Hour | Mc66cLog::Day => eprintln!(
                "reading the 66C's {} whole (with /#D and /#5): {} at 1200 Bd",
                log.request(),
                if log == Mc66cLog::Hour {
                    "about 11 min"
                } else {
                    "about 1 min"
                }
            ),
        }
    }
    let read = match meter.read_counter_logs(&[log], zone).await {
        Ok(r) => r,
        Err(e) => {
            let kind = match &e {
                Mc66cLogReadError::Meter(m) => m.kind(),
                Mc66cLogReadError::Lines(_) => "logger-lines",
            };
            return fail(format, kind, e.to_string(), EXIT_FAILED);
        }
    };
    let rows: Vec<&Mc66cLogRow> = read.logs.iter().flat_map(|(_, r)| r.iter()).collect();
    let rows: Vec<&Mc66cLogRow> = match selection {
        Selection::Since(t) => rows.into_iter().filter(|r| r.utc >= t).collect(),
        Selection::Between { since, until } => rows
            .into_iter()
            .filter(|r| r.utc >= since && r.utc <= until)
            .collect(),
        Selection::Last(n) => {
            let skip = rows.len().saturating_sub(n as usize);
            rows.into_iter().skip(skip).collect()
        }
    };
    if let Err(e) = print(&read, &rows, log, &args.port.port, zone, format) {
        eprintln!("error: cannot write output: {e}");
        return ExitCode::from(EXIT_FAILED);
    }
    ExitCode::from(EXIT_OK)
}

fn print(
    read: &Mc66cLogRead,
    rows: &[&Mc66cLogRow],
    log: Mc66cLog,
    port: &str,
    zone: i32,
    format: Format,
) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let name = match log {
        Mc66cLog::Hour => "hour",
        Mc66cLog::Day => "day",
        Mc66cLog::Month => "month",
    };
    let meter_time = |r: &Mc66cLogRow| r.meter_time.format("%Y-%m-%d %H:%M").to_string();
    let utc = |t: DateTime<Utc>| utc_text(Some(t));
    match format {
        Format::Json => {
            let doc = Doc {
                port,
                logger: name,
                data_sets: &read.data_sets,
                zone_offset_min: zone,
                meter_clock_offset_s: read.clock_offset_s,
                requests: read.requests,
                bytes: read.bytes,
                records: rows
                    .iter()
                    .map(|r| Record {
                        meter_time: meter_time(r),
                        utc: utc(r.utc),
                        registers: &r.values,
                    })
                    .collect(),
            };
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
        }
        Format::Csv => {
            writeln!(out, "utc,meter_time,register,value,unit")?;
            for r in rows {
                for v in &r.values {
                    writeln!(
                        out,
                        "{},{},{},{},{}",
                        utc(r.utc),
                        meter_time(r),
                        csv_field(&v.name),
                        v.value,
                        csv_field(v.unit.as_str())
                    )?;
                }
            }
        }
        Format::Table => {
            writeln!(
                out,
                "{name} logger ({}) of the 66C on {port}: {} records ({} at each period's end)",
                log.request(),
                rows.len(),
                if log == Mc66cLog::Month {
                    "the heat energy and volume"
                } else {
                    "the heat energy"
                }
            )?;
            if let Some(off) = read.clock_offset_s {
                let side = if off >= 0 { "ahead of" } else { "behind" };
                writeln!(
                    out,
                    "meter clock {} s {side} this host (zone UTC{}); {} requests ({}), {} bytes, {:.1} s",
                    off.abs(),
                    zone_text(zone),
                    read.requests,
                    read.data_sets.join(" "),
                    read.bytes,
                    read.wall.as_secs_f64()
                )?;
            }
            let names: Vec<&str> = rows
                .first()
                .map(|r| r.values.iter().map(|v| v.name.as_str()).collect())
                .unwrap_or_else(|| vec!["heat_energy"]);
            writeln!(
                out,
                "{:<16}  {:<20}  {}",
                "meter time",
                "UTC",
                names
                    .iter()
                    .map(|n| format!("{n:<16}"))
                    .collect::<String>()
                    .trim_end()
            )?;
            for r in rows {
                let values: String = r
                    .values
                    .iter()
                    .map(|v| format!("{:<16}", format!("{} {}", v.value, v.unit.as_str())))
                    .collect();
                writeln!(
                    out,
                    "{:<16}  {:<20}  {}",
                    meter_time(r),
                    utc(r.utc),
                    values.trim_end()
                )?;
            }
        }
    }
    out.flush()
}
