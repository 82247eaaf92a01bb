//! `kamstrup scan`: identify the meter, then probe every catalogued register in batches of 8
//! (unknown ones are simply left out of replies) and print what the meter answered.

use std::process::ExitCode;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use kamstrup_kmp::registers::CATALOGUE;
use kamstrup_kmp::MAX_REGISTERS_PER_REQUEST;
use kamstrup_meter::kmp_driver::register_value;
use kamstrup_meter::RegisterValue;
use serde::Serialize;

use crate::output::{fail, write_table, EXIT_FAILED, EXIT_OK};
use crate::{Format, PortArgs};

pub(crate) const HELP: &str = "\
Reads the meter type (GetType) and serial number (GetSerialNo), then asks for every register in
the built-in catalogue, 8 per request, and lists the ones the meter answered, with their units.
Use it once to see what your meter offers; each request costs a little meter battery.

Examples:
  kamstrup scan --port sim:multical-403
  kamstrup scan --port /dev/ttyUSB0 --format json > my-meter.json";

/// Arguments of `scan`.
#[derive(Args, Debug)]
pub(crate) struct ScanArgs {
    #[command(flatten)]
    port: PortArgs,

    /// Output format (csv is not offered: use read --format csv).
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Serialize)]
struct ScanReport {
    port: String,
    serial: u32,
    meter_type: String,
    type_code: u16,
    requests: u64,
    registers: Vec<RegisterValue>,
}

pub(crate) async fn run(args: ScanArgs) -> ExitCode {
    let format = args.format;
    let mut meter = match super::open_kmp(&args.port, format).await {
        Ok(m) => m,
        Err(code) => return code,
    };
    let meter_type = match meter.get_type().await {
        Ok(t) => t,
        Err(e) => return fail(format, e.kind(), e.to_string(), EXIT_FAILED),
    };
    let serial = match meter.get_serial().await {
        Ok(s) => s,
        Err(e) => return fail(format, e.kind(), e.to_string(), EXIT_FAILED),
    };
    let ids: Vec<u16> = CATALOGUE.iter().map(|r| r.id).collect();
    let batches = ids.chunks(MAX_REGISTERS_PER_REQUEST).count() as u64;
    let bar = ProgressBar::new(batches);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} requests ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(format!("scanning meter {serial}"));
    let mut found = Vec::new();
    for chunk in ids.chunks(MAX_REGISTERS_PER_REQUEST) {
        match meter.get_registers(chunk).await {
            Ok(records) => {
                // Keep catalogue order, whatever order the meter answered in.
                for id in chunk {
                    if let Some(r) = records.iter().find(|r| r.id.0 == *id) {
                        found.push(register_value(r));
                    }
                }
            }
            Err(e) => {
                bar.abandon();
                return fail(
                    format,
                    e.kind(),
                    format!("{e} (after {} registers)", found.len()),
                    EXIT_FAILED,
                );
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let report = ScanReport {
        port: args.port.port.clone(),
        serial,
        meter_type: format!(
            "type 0x{:04X}, software revision {}",
            meter_type.type_code, meter_type.revision
        ),
        type_code: meter_type.type_code,
        requests: meter.stats().requests,
        registers: found,
    };
    if format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        println!(
            "meter {} on {}: {}",
            report.serial, report.port, report.meter_type
        );
        println!(
            "{} of {} catalogued registers answered ({} requests)",
            report.registers.len(),
            ids.len(),
            report.requests
        );
        let stdout = std::io::stdout();
        if let Err(e) = write_table(&mut stdout.lock(), &report.registers) {
            eprintln!("error: cannot write output: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    }
    ExitCode::from(EXIT_OK)
}
