//! `kamstrup scan`: identify the meter, then probe every catalogued register in batches of 8
//! (unknown ones are simply left out of replies) and print what the meter answered; for a
//! MULTICAL 66C, ask every data set and the EN 61107 readout.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use kamstrup_kmp::registers::CATALOGUE;
use kamstrup_kmp::MAX_REGISTERS_PER_REQUEST;
use kamstrup_mc66c::{escape, DataSet, EnergyUnit, Request, Scaling};
use kamstrup_meter::kmp_driver::register_value;
use kamstrup_meter::mc66c_driver::{
    readout_fields, reply_fields, scaling_from_readout, standard_registers, DataField,
};
use kamstrup_meter::{KmpMeter, Mc66cMeter, MeterError, RegisterValue};
use serde::Serialize;

use super::Opened;
use crate::output::{fail, write_fields, write_table, EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::{Format, PortArgs};

pub(crate) const HELP: &str = "\
Reads the meter type (GetType) and serial number (GetSerialNo), then asks for every register in
the built-in catalogue, 8 per request, and lists the ones the meter answered, with their units.
Use it once to see what your meter offers; each request costs a little meter battery.
Then the meter's own loggers: the hour/day/month/year loggers of the logger command 0xB8
(MULTICAL 303/403/603) with depth and newest record; a meter without them is asked once at each
logger-module address (0x7F: a MULTICAL 601's 67-0B top module or an 801; 0xBF: a base module)
with one A2 request, ≤ 1.6 s each, and a module that answers is listed with its record ids and
the registers its log holds (read it with kamstrup log --address 0x7F --logger hour).

MULTICAL 66C (--protocol mc66c): asks every data set — /#1 … /#9, /#B, /#C, /#D, /#J — and the
EN 61107 readout, one after the other with a progress bar, and prints what answered: parsed
fields where the layout is known (scaled by the program number from /#2 or /#D, or --program),
raw named tokens otherwise (/#6 … /#9). A multi-line reply ends when the line stays quiet for
--line-idle. Loggers are long: the hourly one (/#7) takes minutes at 1200 Bd. A data set that
does not answer is listed as such; failed requests are retried only with --retries N.

Examples:
  kamstrup scan --port sim:multical-403
  kamstrup scan --port sim:multical-601          (a logger module at 0x7F)
  kamstrup scan --port /dev/ttyUSB0 --format json > my-meter.json
  kamstrup scan --port /dev/ttyUSB0 --protocol mc66c --format json > my-66c.json";

/// Arguments of `scan`.
#[derive(Args, Debug)]
pub(crate) struct ScanArgs {
    #[command(flatten)]
    port: PortArgs,

    /// Output format (csv is not offered: use read --format csv).
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    format: Format,

    /// MULTICAL 66C: silence that ends a multi-line reply (/#5 … /#9, /#J).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    line_idle: Duration,
}

#[derive(Serialize)]
struct ScanReport {
    port: String,
    serial: u32,
    meter_type: String,
    type_code: u16,
    requests: u64,
    registers: Vec<RegisterValue>,
    /// The meter's own loggers (B8), see `kamstrup log`.
    loggers: Vec<LoggerReport>,
    /// Logger modules answering A0–A3 at 0x7F/0xBF (probed when the meter has no B8 logger).
    logger_modules: Vec<kamstrup_meter::ModuleProbe>,
}

/// Probes the logger-module addresses (0x7F top module or MULTICAL 801, 0xBF base module)
/// with one A2 request each for the oldest record of log 1. A module answers within 1.6 s
/// (Kamstrup 5512-447 §2), so silence costs at most that per address.
async fn scan_logger_modules(
    meter: &mut KmpMeter,
) -> Result<Vec<kamstrup_meter::ModuleProbe>, MeterError> {
    let saved = meter.options();
    let mut quick = saved;
    quick.timeouts.first_byte = quick.timeouts.first_byte.min(Duration::from_millis(1600));
    meter.set_options(quick);
    let mut found = Vec::new();
    let mut result = Ok(());
    for address in [0x7F, 0xBF] {
        match meter.probe_logger_module(address, 1).await {
            Ok(Some(p)) => found.push(p),
            Ok(None) => {}
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    meter.set_options(saved);
    result.map(|()| found)
}

#[derive(Serialize)]
struct LoggerReport {
    logger: &'static str,
    interval: &'static str,
    depth: u16,
    newest_id: u32,
    registers: Vec<u16>,
}

/// Probes the hour/day/month/year loggers; a meter without them gives an empty list.
async fn scan_loggers(meter: &mut KmpMeter) -> Result<Vec<LoggerReport>, MeterError> {
    Ok(meter
        .probe_loggers()
        .await?
        .into_iter()
        .map(|(c, newest_id)| LoggerReport {
            logger: c.logger.name(),
            interval: match c.logger.name() {
                "hour" => "1 hour",
                "day" => "1 day",
                "month" => "1 month",
                "year" => "1 year",
                _ => "",
            },
            depth: c.depth,
            newest_id,
            registers: c.registers.iter().map(|r| r.0).collect(),
        })
        .collect())
}

pub(crate) async fn run(args: ScanArgs) -> ExitCode {
    let format = args.format;
    match super::open_meter(&args.port, format, 0, true).await {
        Ok(Opened::Kmp(meter)) => scan_kmp(meter, &args).await,
        Ok(Opened::Mc66c(meter)) => scan_mc66c(meter, &args).await,
        Ok(Opened::Auto(_)) => fail(
            format,
            "bad-protocol",
            "scan needs to know the protocol: use --protocol kmp or --protocol mc66c \
             (read --protocol auto finds out which one your meter speaks)",
            EXIT_USAGE,
        ),
        Err(code) => code,
    }
}

async fn scan_kmp(mut meter: KmpMeter, args: &ScanArgs) -> ExitCode {
    let format = args.format;
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
    let loggers = match scan_loggers(&mut meter).await {
        Ok(l) => l,
        Err(e) => {
            return fail(
                format,
                e.kind(),
                format!("probing the loggers: {e}"),
                EXIT_FAILED,
            )
        }
    };
    let logger_modules = if loggers.is_empty() {
        match scan_logger_modules(&mut meter).await {
            Ok(m) => m,
            Err(e) => {
                return fail(
                    format,
                    e.kind(),
                    format!("probing for a logger module: {e}"),
                    EXIT_FAILED,
                )
            }
        }
    } else {
        Vec::new()
    };
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
        loggers,
        logger_modules,
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
        if report.loggers.is_empty() && report.logger_modules.is_empty() {
            println!(
                "loggers: none readable over KMP (no answer to the logger command 0xB8, and no \
                 logger module answering A0–A3 at 0x7F or 0xBF)"
            );
        }
        for m in &report.logger_modules {
            let ids = match m.ids {
                Some((oldest, newest)) => format!(
                    "records {oldest}–{newest} ({} kept)",
                    u32::from(newest.wrapping_sub(oldest)) + 1
                ),
                None => "empty".to_string(),
            };
            let registers: Vec<String> = m.registers.iter().map(u16::to_string).collect();
            println!(
                "logger module at 0x{:02X}: log {} {ids}, holds registers {} (kamstrup log --address 0x{:02X} --logger hour)",
                m.address,
                m.log,
                registers.join(", "),
                m.address
            );
        }
        for l in &report.loggers {
            println!(
                "logger {:<5}  every {:<7}  depth {:>4} records  newest id {:>6}  {} registers (kamstrup log --logger {})",
                l.logger, l.interval, l.depth, l.newest_id, l.registers.len(), l.logger
            );
        }
    }
    ExitCode::from(EXIT_OK)
}

/// One data set of a 66C scan.
#[derive(Serialize)]
struct DataSetReport {
    request: String,
    name: &'static str,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorReport>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    registers: Vec<RegisterValue>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fields: Vec<DataField>,
    #[serde(skip_serializing_if = "Option::is_none")]
    raw: Option<String>,
}

#[derive(Serialize)]
struct ErrorReport {
    kind: &'static str,
    message: String,
}

#[derive(Serialize)]
struct Mc66cScanReport {
    port: String,
    protocol: &'static str,
    meter_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_no: Option<u64>,
    requests: u64,
    answered: usize,
    data_sets: Vec<DataSetReport>,
}

fn data_set_name(request: Request) -> &'static str {
    match request {
        Request::Readout => "EN 61107 readout",
        Request::Data(d) => match d {
            DataSet::Standard1 => "standard data 1",
            DataSet::Standard2 => "standard data 2",
            DataSet::Target => "target (billing-date) data",
            DataSet::Verification => "verification data",
            DataSet::Monthly => "monthly data",
            DataSet::DailyLog => "daily logger",
            DataSet::HourlyLog => "hourly logger",
            DataSet::MonthlyLog => "monthly logger",
            DataSet::YearlyLog => "yearly logger",
            DataSet::CurrentCounts => "current counts",
            DataSet::Instantaneous => "instantaneous values",
            DataSet::Programming => "programming data",
            DataSet::InfoLog => "info logger",
        },
    }
}

enum Answer {
    Data(kamstrup_meter::mc66c_driver::DataSetReply),
    Readout(kamstrup_meter::mc66c_driver::ReadoutReply),
}

async fn scan_mc66c(mut meter: Mc66cMeter, args: &ScanArgs) -> ExitCode {
    let format = args.format;
    let mut options = *meter.options();
    options.multiline_idle = args.line_idle;
    meter.set_options(options);
    let steps: Vec<Request> = DataSet::ALL
        .into_iter()
        .map(Request::Data)
        .chain([Request::Readout])
        .collect();
    let bar = ProgressBar::new(steps.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} data sets ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut answers: Vec<(Request, Result<Answer, MeterError>)> = Vec::new();
    for request in steps {
        bar.set_message(format!("scanning MULTICAL 66C: {request}"));
        let result = match request {
            Request::Data(d) => meter.read_data_set(d).await.map(Answer::Data),
            Request::Readout => meter.readout().await.map(Answer::Readout),
        };
        if let Err(MeterError::Link(e)) = &result {
            bar.abandon();
            return fail(format, e.kind(), e.to_string(), EXIT_FAILED);
        }
        answers.push((request, result));
        bar.inc(1);
    }
    bar.finish_and_clear();

    // Decimals: the program number (given, or learnt from /#2 or /#D during the scan: no more
    // requests), else the readout, else a loudly flagged guess.
    let program_known = args.port.program.is_some()
        || answers
            .iter()
            .any(|(_, a)| matches!(a, Ok(Answer::Data(d)) if d.reply.program().is_some()));
    let readout_scaling = answers.iter().find_map(|(_, a)| match a {
        Ok(Answer::Readout(r)) => scaling_from_readout(r),
        _ => None,
    });
    let (scaling, meter_type) = if program_known {
        match meter.scaling().await {
            Ok(info) => (info.scaling, info.describe()),
            Err(e) => return fail(format, e.kind(), e.to_string(), EXIT_USAGE),
        }
    } else if let Some(s) = readout_scaling {
        (
            s,
            "MULTICAL 66C, scaling from the EN 61107 readout".to_string(),
        )
    } else {
        tracing::warn!("!!! no program number and no readout: values scaled as the CCC-119 family in GJ, which is a GUESS; give --program A-B-CCC !!!");
        (
            Scaling::ccc119_fallback(EnergyUnit::GJ),
            "MULTICAL 66C, scaling unknown (CCC-119 family in GJ assumed)".to_string(),
        )
    };

    let mut reports = Vec::with_capacity(answers.len());
    for (request, result) in answers {
        let mut report = DataSetReport {
            request: request.to_string(),
            name: data_set_name(request),
            status: "ok",
            error: None,
            registers: Vec::new(),
            fields: Vec::new(),
            raw: None,
        };
        match result {
            Ok(Answer::Data(d)) => {
                report.raw = Some(escape(&d.raw));
                let converted = match &d.reply {
                    kamstrup_mc66c::Reply::Standard1(s) => {
                        standard_registers(s, &scaling).map(|r| report.registers = r)
                    }
                    other => reply_fields(other, &scaling).map(|f| report.fields = f),
                };
                if let Err(e) = converted {
                    report.status = "rejected";
                    report.error = Some(ErrorReport {
                        kind: e.kind(),
                        message: e.to_string(),
                    });
                }
            }
            Ok(Answer::Readout(r)) => {
                report.raw = Some(escape(&r.raw));
                report.fields = readout_fields(&r);
            }
            Err(e) => {
                report.status = if e.kind() == "timeout" {
                    "no-reply"
                } else {
                    "rejected"
                };
                report.error = Some(ErrorReport {
                    kind: e.kind(),
                    message: e.to_string(),
                });
            }
        }
        reports.push(report);
    }
    let answered = reports.iter().filter(|r| r.status == "ok").count();
    let report = Mc66cScanReport {
        port: args.port.port.clone(),
        protocol: "mc66c",
        meter_type,
        customer_no: meter.customer_no(),
        requests: meter.stats().requests,
        answered,
        data_sets: reports,
    };
    if format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else if let Err(e) = print_mc66c_table(&report) {
        eprintln!("error: cannot write output: {e}");
        return ExitCode::from(EXIT_FAILED);
    }
    if answered == 0 {
        let kind = report
            .data_sets
            .iter()
            .find_map(|d| d.error.as_ref().map(|e| e.kind))
            .unwrap_or("timeout");
        return fail(
            Format::Table,
            kind,
            format!("no data set answered on {}", report.port),
            EXIT_FAILED,
        );
    }
    ExitCode::from(EXIT_OK)
}

fn print_mc66c_table(report: &Mc66cScanReport) -> std::io::Result<()> {
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match report.customer_no {
        Some(c) => writeln!(
            out,
            "{} on {}, customer no. {c}",
            report.meter_type, report.port
        )?,
        None => writeln!(out, "{} on {}", report.meter_type, report.port)?,
    }
    writeln!(
        out,
        "{} of {} data sets answered ({} requests)",
        report.answered,
        report.data_sets.len(),
        report.requests
    )?;
    for d in &report.data_sets {
        writeln!(out)?;
        match &d.error {
            Some(e) => writeln!(
                out,
                "{} {}: {} — {}",
                d.request, d.name, d.status, e.message
            )?,
            None => writeln!(out, "{} {}", d.request, d.name)?,
        }
        if !d.registers.is_empty() {
            write_table(&mut out, &d.registers)?;
        }
        if !d.fields.is_empty() {
            write_fields(&mut out, &d.fields)?;
        }
    }
    out.flush()
}
