//! `kamstrup log --address 0x7F|0xBF`: the log of a MULTICAL 601 logger module or an 801 through
//! A0–A3, printed like the B8 loggers (meter time and UTC, table/json/csv).

use std::io::Write;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use kamstrup_meter::{ModuleLogError, ModuleLogQuery, ModuleLogRead, Selection};
use serde::Serialize;

use super::{
    doc_records, write_clock, write_csv, write_table, LogArgs, LogDocRecord, LoggerArg, EXIT_EMPTY,
    EXIT_NO_LOGGERS, EXIT_OUT_OF_RANGE,
};
use crate::cmd::Opened;
use crate::output::{fail, EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::Format;

#[derive(Serialize)]
struct ModuleDoc<'a> {
    port: &'a str,
    address: String,
    log: u8,
    newest_id: u16,
    reached_oldest: bool,
    zone_offset_min: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    meter_clock_offset_s: Option<i64>,
    requests: u64,
    pages: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    not_logged: Vec<u16>,
    records: Vec<LogDocRecord<'a>>,
}

pub(super) async fn run(
    args: &LogArgs,
    registers: Vec<u16>,
    zone: i32,
    selection: Selection,
) -> ExitCode {
    let format = args.format;
    let address = args.port.destination;
    let log = match (args.log_id, args.logger) {
        (Some(id), _) => id,
        (None, LoggerArg::Hour) => 1,
        (None, other) => {
            return fail(
                format,
                "usage",
                format!(
                    "a logger module's logs are numbered, not named: log 1 is the interval log \
                     (--logger hour); which log id holds {other:?} records is not documented — \
                     give it with --log-id N"
                ),
                EXIT_USAGE,
            )
        }
    };
    let mut meter = match crate::cmd::open_meter(&args.port, format, 0, false).await {
        Ok(Opened::Kmp(m)) => m,
        Ok(_) => {
            return fail(
                format,
                "bad-protocol",
                "logger modules are read over KMP (A0–A3)",
                EXIT_USAGE,
            )
        }
        Err(code) => return code,
    };
    let query = ModuleLogQuery {
        log,
        registers,
        selection,
        zone_standard_offset_min: zone,
    };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} records ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(format!(
        "reading log {log} of the module at 0x{address:02X}"
    ));
    let result = meter
        .read_module_log(address, &query, |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        })
        .await;
    bar.finish_and_clear();
    let mut read = match result {
        Ok(r) => r,
        Err(e) => {
            let code = match &e {
                ModuleLogError::NoModule { .. } => EXIT_NO_LOGGERS,
                ModuleLogError::Empty { .. } => EXIT_EMPTY,
                ModuleLogError::OutOfRange { .. } => EXIT_OUT_OF_RANGE,
                ModuleLogError::TooManyRegisters(_) => EXIT_USAGE,
                ModuleLogError::Meter(_) => EXIT_FAILED,
            };
            return fail(format, e.kind(), e.to_string(), code);
        }
    };
    // A module's log is read by record id up to the newest: the range's end is cut here.
    if let Some(until) = selection.until() {
        read.rows.retain(|r| r.utc.is_none_or(|t| t <= until));
    }
    if let Err(e) = print(&read, &args.port.port, zone, format) {
        eprintln!("error: cannot write output: {e}");
        return ExitCode::from(EXIT_FAILED);
    }
    ExitCode::from(EXIT_OK)
}

fn print(read: &ModuleLogRead, port: &str, zone: i32, format: Format) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        Format::Json => {
            let doc = ModuleDoc {
                port,
                address: format!("0x{:02X}", read.address),
                log: read.log,
                newest_id: read.newest_id,
                reached_oldest: read.reached_oldest,
                zone_offset_min: zone,
                meter_clock_offset_s: read.clock_offset_s,
                requests: read.requests,
                pages: read.pages,
                not_logged: read.not_logged.clone(),
                records: doc_records(&read.rows),
            };
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
        }
        Format::Csv => write_csv(&mut out, &read.rows)?,
        Format::Table => {
            writeln!(
                out,
                "log {} of the logger module at 0x{:02X} on {port}: {} records (ids {}–{}), newest id {}{}",
                read.log,
                read.address,
                read.rows.len(),
                read.rows.first().map_or(0, |r| r.id),
                read.rows.last().map_or(0, |r| r.id),
                read.newest_id,
                if read.reached_oldest { ", oldest reached" } else { "" }
            )?;
            if !read.not_logged.is_empty() {
                let ids: Vec<String> = read.not_logged.iter().map(u16::to_string).collect();
                writeln!(out, "not in this log (left out): {}", ids.join(", "))?;
            }
            write_clock(
                &mut out,
                read.clock_offset_s,
                zone,
                read.requests,
                read.pages,
            )?;
            write_table(&mut out, &read.rows)?;
        }
    }
    out.flush()
}
