//! `kamstrup log`: read the meter's own hour/day/month/year logger in one IR session, paged with
//! a progress bar, and print every record with the meter's timestamp and UTC.

use std::io::Write;
use std::process::ExitCode;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use kamstrup_kmp::{LoggerType, DESTINATION_HEAT_METER};
use kamstrup_meter::sim::kmp_loggers::ZONE_STANDARD_OFFSET_MIN;
use kamstrup_meter::PortSpec;
use kamstrup_meter::{LogQuery, LogRead, Selection, SimModel};
use serde::Serialize;

mod mc66c;
mod module;

use super::Opened;
use crate::output::{csv_field, fail, EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::{Format, PortArgs};

pub(crate) const HELP: &str = "\
Reads the history the meter keeps itself (MULTICAL 303/403/603: the logger command 0xB8) in one
IR session: first the logger's configuration and the meter's clock, then pages of records from
the newest toward the past until --last N records (or every record since --since) are read;
--since with --until reads a range, starting near its end (by offset from the newest record), so
the records newer than --until are not sent at all. The
meter sends only as many records per reply as fit its buffer; a page it cuts short, or one the
link damages, is continued from the last good record id.

Each record is printed with the meter's own timestamp (register 348: standard time, plus the DST
offset in force) and the same moment in UTC, using --zone (the meter's standard offset from UTC;
default: this host's, for sim: ports the simulator's CET). A record stamped T holds the counters
at T: the consumption of a period is the difference to the next record. The meter's clock is
compared with this host's once per session and the difference shown (meters drift).

A MULTICAL 402/602 keeps no logger readable over KMP and is reported as such (exit 4); an empty
logger exits 5.

A MULTICAL 66C (--protocol mc66c) sends its hour (/#7, 960 hours, ~11 min at 1200 Bd) and day
(/#6, 60 days, ~1 min) loggers only whole; their lines hold each period's growth, so /#5 (the
month-end counters) is read too and each record printed as the heat energy at its period's end,
with /#D for the meter's clock (--zone default: this host's; UTC for sim:multical-66c). Its
--logger month is /#5 itself: the heat energy and volume at each of the last 32 month ends (a
record at the meter's midnight that starts the next month). These are the records the daemon's
back-fill stores.

A MULTICAL 601 logger module (67-0B top module: --address 0x7F; 67-00-22 base module: 0xBF) or a
MULTICAL 801 (0x7F) keeps its log behind the commands A0–A3 instead, and is read only when
--address names it: --logger hour reads log 1, the interval log (--log-id for another). Its
records carry no time of their own, so the date and time registers (1003, 1002) are read with
every record (at most 6 more registers per request); the newest records come page by page with
A3, --since reads ascending with A0 and then A2 by record id. Pages hold at most 128 bytes (2 to
19 records, fewer with more registers). No logger module at that address exits 4, an empty log 5,
a --since after the newest record 6. Nothing that changes the meter (0x9C) is ever sent.

Examples:
  kamstrup log --port sim:multical-403 --logger hour --last 24
  kamstrup log --port /dev/ttyUSB0 --logger day --since 2026-11-01 --format csv
  kamstrup log --port /dev/ttyUSB0 --logger hour --since 2026-10-01 --until \"2026-10-02 06:00\"
  kamstrup log --port /dev/ttyUSB0 --logger month --registers heat_energy,volume --format json
  kamstrup log --port sim:multical-601 --address 0x7F --logger hour --last 24";

/// Exit code: the meter keeps no logger readable with B8.
const EXIT_NO_LOGGERS: u8 = 4;
/// Exit code: the logger holds no record yet.
const EXIT_EMPTY: u8 = 5;
/// Exit code: a logger module holds no record in the asked range.
const EXIT_OUT_OF_RANGE: u8 = 6;

/// `--logger`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LoggerArg {
    /// One record per hour.
    Hour,
    /// One record per day (00:00 standard time).
    Day,
    /// One record per month (target date).
    Month,
    /// One record per year (target date).
    Year,
}

impl LoggerArg {
    fn kind(self) -> LoggerType {
        match self {
            LoggerArg::Hour => LoggerType::Hourly,
            LoggerArg::Day => LoggerType::Daily,
            LoggerArg::Month => LoggerType::Monthly,
            LoggerArg::Year => LoggerType::Yearly,
        }
    }

    /// Records read without --last/--since: a day of hours, a month of days, a year of months,
    /// every year.
    fn default_last(self) -> u32 {
        match self {
            LoggerArg::Hour => 24,
            LoggerArg::Day => 31,
            LoggerArg::Month => 12,
            LoggerArg::Year => 20,
        }
    }
}

/// Arguments of `log`.
#[derive(Args, Debug)]
pub(crate) struct LogArgs {
    #[command(flatten)]
    port: PortArgs,

    /// Which logger.
    #[arg(long, value_enum)]
    logger: LoggerArg,

    /// Every record from this time on: 2026-11-01, "2026-11-01 06:00" (UTC) or RFC 3339.
    #[arg(long, value_name = "TIME", value_parser = parse_since, conflicts_with = "last")]
    since: Option<DateTime<Utc>>,

    /// With --since: only the records up to this time (its record included), same forms.
    #[arg(long, value_name = "TIME", value_parser = parse_since, requires = "since")]
    until: Option<DateTime<Utc>>,

    /// The newest N records (default: 24 hours, 31 days, 12 months, 20 years).
    #[arg(long, value_name = "N")]
    last: Option<u32>,

    /// Registers to read besides the timestamp (names, short names or ids, comma separated);
    /// default: the standard set the logger holds.
    #[arg(long, value_name = "REGISTER", num_args = 1.., value_delimiter = ',')]
    registers: Vec<String>,

    /// The meter's zone as its standard-time offset from UTC, e.g. +01:00 (CET).
    #[arg(long, value_name = "±HH:MM", value_parser = parse_zone, allow_hyphen_values = true)]
    zone: Option<i32>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    format: Format,

    /// Logger module (--address 0x7F/0xBF) only: the log id to read (default with --logger
    /// hour: 1, the interval log).
    #[arg(long, value_name = "ID")]
    log_id: Option<u8>,
}

fn parse_since(s: &str) -> Result<DateTime<Utc>, String> {
    let t = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, fmt) {
            return Ok(n.and_utc());
        }
    }
    NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|n| n.and_utc())
        .ok_or_else(|| {
            format!("{s:?} is not a time: use 2026-11-01, \"2026-11-01 06:00\" or RFC 3339")
        })
}

fn parse_zone(s: &str) -> Result<i32, String> {
    let t = s.trim();
    let bad = || format!("{s:?} is not a UTC offset: use +01:00, -05:00 or +05:30");
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'+') => (1, &t[1..]),
        Some(b'-') => (-1, &t[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    let h: i32 = h.parse().map_err(|_| bad())?;
    let m: i32 = m.parse().map_err(|_| bad())?;
    if h > 14 || m > 59 {
        return Err(bad());
    }
    Ok(sign * (h * 60 + m))
}

/// This host's standard-time offset: the smaller of January's and July's (DST adds to it).
fn host_standard_offset_min() -> i32 {
    use chrono::{Local, Offset, TimeZone};
    let year = chrono::Datelike::year(&Utc::now());
    [1, 7]
        .into_iter()
        .filter_map(|month| Local.with_ymd_and_hms(year, month, 1, 12, 0, 0).single())
        .map(|t| t.offset().fix().local_minus_utc() / 60)
        .min()
        .unwrap_or(0)
}

#[derive(Serialize)]
struct LogDoc<'a> {
    port: &'a str,
    logger: &'static str,
    depth: u16,
    newest_id: u32,
    reached_oldest: bool,
    zone_offset_min: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    meter_clock_offset_s: Option<i64>,
    requests: u64,
    pages: u32,
    records: Vec<LogDocRecord<'a>>,
}

#[derive(Serialize)]
struct LogDocRecord<'a> {
    id: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    meter_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dst_offset_min: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    utc: Option<String>,
    registers: &'a [kamstrup_meter::RegisterValue],
}

pub(crate) async fn run(args: LogArgs) -> ExitCode {
    let format = args.format;
    if args.port.destination == DESTINATION_HEAT_METER && args.log_id.is_some() {
        return fail(
            format,
            "usage",
            "--log-id is for a logger module: give its --address (0x7F or 0xBF)",
            EXIT_USAGE,
        );
    }
    let registers = match super::resolve_registers(&args.registers) {
        Ok(ids) => ids,
        Err(e) => return fail(format, "bad-register", e, EXIT_USAGE),
    };
    let is_sim = matches!(
        args.port.port.parse::<PortSpec>(),
        Ok(PortSpec::Sim { model }) if model.parse::<SimModel>().is_ok()
    );
    let is_sim_66c = matches!(
        args.port.port.parse::<PortSpec>(),
        Ok(PortSpec::Sim { model }) if matches!(model.parse::<SimModel>(), Ok(SimModel::Mc66c(_)))
    );
    // The simulated KMP meters' clocks run on CET, the simulated 66C's on UTC.
    let zone = args.zone.unwrap_or(if is_sim_66c {
        0
    } else if is_sim {
        ZONE_STANDARD_OFFSET_MIN
    } else {
        host_standard_offset_min()
    });
    let selection = match (args.since, args.until, args.last) {
        (Some(since), Some(until), _) if until < since => {
            return fail(
                format,
                "usage",
                format!(
                    "--until {} is before --since {}: give the older time to --since",
                    until.format("%Y-%m-%d %H:%M"),
                    since.format("%Y-%m-%d %H:%M")
                ),
                EXIT_USAGE,
            )
        }
        (Some(since), Some(until), _) => Selection::Between { since, until },
        (Some(t), None, _) => Selection::Since(t),
        (None, _, Some(0)) => {
            return fail(format, "usage", "--last must be at least 1", EXIT_USAGE)
        }
        (None, _, Some(n)) => Selection::Last(n),
        (None, _, None) => Selection::Last(args.logger.default_last()),
    };
    if args.port.destination != DESTINATION_HEAT_METER {
        return module::run(&args, registers, zone, selection).await;
    }
    let mut meter =
        match super::open_meter(&args.port, format, 0, false).await {
            Ok(Opened::Kmp(m)) => m,
            Ok(Opened::Mc66c(m)) => return mc66c::run(m, &args, zone, selection).await,
            Ok(_) => return fail(
                format,
                "bad-protocol",
                "give --protocol kmp or --protocol mc66c (a 66C's hour and day loggers are its \
                 /#7 and /#6 data sets; kamstrup scan --protocol mc66c shows every data set)",
                EXIT_USAGE,
            ),
            Err(code) => return code,
        };
    let query = LogQuery {
        logger: args.logger.kind(),
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
    bar.set_message(format!("reading the {} logger", query.logger.name()));
    let result = meter
        .read_log(&query, |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        })
        .await;
    bar.finish_and_clear();
    let read = match result {
        Ok(r) => r,
        Err(e) => {
            let code = match &e {
                kamstrup_meter::LogError::NoLoggers { .. } => EXIT_NO_LOGGERS,
                kamstrup_meter::LogError::Empty { .. } => EXIT_EMPTY,
                kamstrup_meter::LogError::NoSuchRegisters { .. } => EXIT_USAGE,
                kamstrup_meter::LogError::Meter(_) => EXIT_FAILED,
            };
            return fail(format, e.kind(), e.to_string(), code);
        }
    };
    if let Err(e) = print(&read, &args.port.port, zone, format) {
        eprintln!("error: cannot write output: {e}");
        return ExitCode::from(EXIT_FAILED);
    }
    ExitCode::from(EXIT_OK)
}

fn utc_text(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn zone_text(min: i32) -> String {
    let sign = if min < 0 { '-' } else { '+' };
    format!("{sign}{:02}:{:02}", min.abs() / 60, min.abs() % 60)
}

fn print(read: &LogRead, port: &str, zone: i32, format: Format) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        Format::Json => {
            let doc = LogDoc {
                port,
                logger: read.logger.name(),
                depth: read.config.depth,
                newest_id: read.newest_id,
                reached_oldest: read.reached_oldest,
                zone_offset_min: zone,
                meter_clock_offset_s: read.clock_offset_s,
                requests: read.requests,
                pages: read.pages,
                records: doc_records(&read.rows),
            };
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
        }
        Format::Csv => write_csv(&mut out, &read.rows)?,
        Format::Table => {
            writeln!(
                out,
                "{} logger of the meter on {port}: {} records (ids {}–{}), depth {}, newest id {}{}",
                read.logger.name(),
                read.rows.len(),
                read.rows.first().map_or(0, |r| r.id),
                read.rows.last().map_or(0, |r| r.id),
                read.config.depth,
                read.newest_id,
                if read.reached_oldest { ", oldest reached" } else { "" }
            )?;
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

/// The clock line of a table: the meter's clock against this host's, and the traffic.
fn write_clock(
    out: &mut impl Write,
    offset_s: Option<i64>,
    zone: i32,
    requests: u64,
    pages: u32,
) -> std::io::Result<()> {
    if let Some(off) = offset_s {
        let side = if off >= 0 { "ahead of" } else { "behind" };
        writeln!(
            out,
            "meter clock {} s {side} this host (zone UTC{}); {requests} requests, {pages} pages",
            off.abs(),
            zone_text(zone),
        )?;
    }
    Ok(())
}

/// One CSV line per record and register.
/// The rows of a log as JSON records (the B8 loggers and the A0–A3 modules alike).
fn doc_records(rows: &[kamstrup_meter::LogRow]) -> Vec<LogDocRecord<'_>> {
    rows.iter()
        .map(|r| LogDocRecord {
            id: r.id,
            meter_time: r.meter_time.map(|t| t.standard.to_string()),
            dst_offset_min: r.meter_time.map(|t| t.dst_offset_min),
            utc: r.utc.map(|t| utc_text(Some(t))),
            registers: &r.values,
        })
        .collect()
}

fn write_csv(out: &mut impl Write, rows: &[kamstrup_meter::LogRow]) -> std::io::Result<()> {
    writeln!(
        out,
        "record_id,meter_time,dst_offset_min,utc,id,name,value,unit"
    )?;
    for r in rows {
        for v in &r.values {
            writeln!(
                out,
                "{},{},{},{},{},{},{},{}",
                r.id,
                r.meter_time
                    .map(|t| t.standard.to_string())
                    .unwrap_or_default(),
                r.meter_time
                    .map(|t| t.dst_offset_min.to_string())
                    .unwrap_or_default(),
                utc_text(r.utc),
                v.id,
                csv_field(&v.name),
                v.value,
                csv_field(v.unit.as_str())
            )?;
        }
    }
    Ok(())
}

/// Aligned columns: id, meter time, DST, UTC, then one column per register.
fn write_table(out: &mut impl Write, records: &[kamstrup_meter::LogRow]) -> std::io::Result<()> {
    let names: Vec<String> = records
        .first()
        .map(|r| {
            r.values
                .iter()
                .map(|v| {
                    if v.unit.is_empty() {
                        v.short.clone()
                    } else {
                        format!("{} [{}]", v.short, v.unit)
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut header = vec![
        "id".to_string(),
        "meter time (standard)".to_string(),
        "DST".to_string(),
        "UTC".to_string(),
    ];
    header.extend(names);
    rows.push(header);
    for r in records {
        let mut row = vec![
            r.id.to_string(),
            r.meter_time
                .map(|t| t.standard.to_string())
                .unwrap_or_default(),
            r.meter_time
                .map(|t| format!("+{}", t.dst_offset_min))
                .unwrap_or_default(),
            utc_text(r.utc),
        ];
        row.extend(r.values.iter().map(|v| match &v.text {
            Some(t) => t.clone(),
            None => v.value.to_string(),
        }));
        rows.push(row);
    }
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                let w = widths.get(i).copied().unwrap_or(0);
                if i >= 4 {
                    format!("{cell:>w$}")
                } else {
                    format!("{cell:<w$}")
                }
            })
            .collect();
        writeln!(out, "{}", line.join("  ").trim_end())?;
    }
    Ok(())
}
