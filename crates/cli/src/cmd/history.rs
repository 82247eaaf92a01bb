//! `kamstrup history export`: every stored reading (flagged ones marked) as CSV or JSON, streamed
//! straight from the SQLite file, also while the daemon is running.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Subcommand, ValueEnum};
use kamstrup_store::{Store, StoreError, StoredReading};

use super::config_file;
use crate::output::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};

pub(crate) const HELP: &str = "\
Examples:
  kamstrup history export --config /etc/kamstrup/kamstrup.toml --since 2026-01-01 > heat.csv
  kamstrup history export --db kamstrup.db --since 7d --format json
  kamstrup history export --db kamstrup.db --meter heat --format jsonl";

/// Arguments of `history`.
#[derive(Args, Debug)]
pub(crate) struct HistoryArgs {
    #[command(subcommand)]
    command: HistoryCommand,
}

#[derive(Subcommand, Debug)]
enum HistoryCommand {
    /// Write stored readings to stdout.
    #[command(after_help = HELP)]
    Export(ExportArgs),
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ExportFormat {
    /// One row per register value, with a header.
    Csv,
    /// A JSON array of readings.
    Json,
    /// One JSON reading per line.
    Jsonl,
}

#[derive(Args, Debug)]
struct ExportArgs {
    /// Config file whose [storage] path to read (default as for `run`).
    #[arg(short, long, env = "KAMSTRUP_CONFIG", conflicts_with = "db")]
    config: Option<PathBuf>,

    /// The SQLite file itself, instead of a config.
    #[arg(long)]
    db: Option<PathBuf>,

    /// Only readings from this moment: a date (2026-01-01), a time (2026-01-01T06:00:00Z) or an age (7d, 12h).
    #[arg(long)]
    since: Option<String>,

    /// Only this meter (name or serial).
    #[arg(long)]
    meter: Option<String>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = ExportFormat::Csv)]
    format: ExportFormat,
}

fn parse_since(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(d.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    let age = humantime::parse_duration(text).map_err(|_| {
        format!("--since {text:?}: write a date (2026-01-01), a time (2026-01-01T06:00:00Z) or an age (7d)")
    })?;
    chrono::Duration::from_std(age)
        .map(|age| Utc::now() - age)
        .map_err(|_| format!("--since {text:?} is too long ago"))
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub(crate) async fn run(args: HistoryArgs) -> ExitCode {
    let HistoryCommand::Export(args) = args.command;
    let db = match (&args.db, &args.config) {
        (Some(db), _) => db.clone(),
        (None, config) => {
            let path = config
                .clone()
                .unwrap_or_else(config_file::default_config_path);
            match config_file::load(&path) {
                Ok(c) => c.daemon.store_path,
                Err(message) => {
                    eprintln!("error: {message}");
                    return ExitCode::from(EXIT_USAGE);
                }
            }
        }
    };
    let since = match args.since.as_deref().map(parse_since).transpose() {
        Ok(s) => s,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let result =
        tokio::task::spawn_blocking(move || export(&db, since, args.meter.as_deref(), args.format))
            .await;
    match result {
        Ok(Ok(count)) => {
            tracing::info!(readings = count, "exported");
            ExitCode::from(EXIT_OK)
        }
        Ok(Err(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(EXIT_FAILED)
        }
        Err(e) => {
            eprintln!("error: export failed: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

fn export(
    db: &std::path::Path,
    since: Option<DateTime<Utc>>,
    meter: Option<&str>,
    format: ExportFormat,
) -> Result<usize, String> {
    let store =
        Store::open_read_only(db).map_err(|e| format!("cannot open {}: {e}", db.display()))?;
    let meter_id = match meter {
        None => None,
        Some(wanted) => {
            let meters = store.meters().map_err(|e| e.to_string())?;
            let found = meters
                .iter()
                .find(|m| m.name == wanted || m.serial.to_string() == wanted)
                .ok_or_else(|| {
                    let known: Vec<String> = meters
                        .iter()
                        .map(|m| format!("{} ({})", m.name, m.serial))
                        .collect();
                    format!(
                        "no meter {wanted:?} in {}; known: {}",
                        db.display(),
                        known.join(", ")
                    )
                })?;
            Some(found.id)
        }
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let io = |e: std::io::Error| StoreError::Callback(Box::new(e));
    let mut first = true;
    match format {
        ExportFormat::Csv => writeln!(
            out,
            "taken_at,meter,serial,id,register,value,unit,derived,implausible,source"
        )
        .map_err(|e| e.to_string())?,
        ExportFormat::Json => write!(out, "[").map_err(|e| e.to_string())?,
        ExportFormat::Jsonl => {}
    }
    let mut write = |r: &StoredReading| -> Result<(), StoreError> {
        match format {
            ExportFormat::Csv => {
                for v in &r.reading.registers {
                    writeln!(
                        out,
                        "{},{},{},{},{},{},{},{},{},{}",
                        r.reading.taken_at.to_rfc3339(),
                        csv_field(&r.meter_name),
                        r.serial,
                        v.id,
                        csv_field(&v.name),
                        v.value,
                        csv_field(v.unit.as_str()),
                        v.derived,
                        csv_field(r.implausible.as_deref().unwrap_or("")),
                        r.reading.source
                    )
                    .map_err(io)?;
                }
            }
            ExportFormat::Json | ExportFormat::Jsonl => {
                if format == ExportFormat::Json && !first {
                    write!(out, ",").map_err(io)?;
                }
                first = false;
                let line =
                    serde_json::to_string(r).map_err(|e| StoreError::Callback(Box::new(e)))?;
                if format == ExportFormat::Json {
                    write!(out, "\n{line}").map_err(io)?;
                } else {
                    writeln!(out, "{line}").map_err(io)?;
                }
            }
        }
        Ok(())
    };
    let count = store
        .export(since, meter_id, &mut write)
        .map_err(|e| e.to_string())?;
    if format == ExportFormat::Json {
        writeln!(out, "\n]").map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())?;
    Ok(count)
}
