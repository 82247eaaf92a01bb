//! `kamstrup read`: one reading of the asked registers (default: the standard set of 8, in one
//! request; MULTICAL 66C: the ten fields of "/#1"), as a table, JSON or CSV; the exit code says
//! whether everything was read.

use std::process::ExitCode;

use clap::Args;
use kamstrup_kmp::registers::DEFAULT_SET;
use kamstrup_mc66c::ProgramNumber;
use kamstrup_meter::PortSpec;
use kamstrup_meter::{
    KmpMeter, KmpOptions, Mc66cMeter, Mc66cOptions, MeterError, Reading, ScalingSource,
};

use super::program_cache::ProgramCache;

use super::Opened;
use crate::output::{fail, print_reading, EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE};
use crate::{Format, PortArgs};

pub(crate) const HELP: &str = "\
Without REGISTER arguments the standard set is read in ONE request: heat energy E1 (60),
volume V1 (68), T1 (86), T2 (87), power (80), flow (74), hour counter (1004), info code (99);
ΔT is then derived exactly as T1 − T2 and marked \"derived\". More than 8 registers are split
into requests of at most 8. Units come from the meter's reply, never from a table.

MULTICAL 66C (--protocol mc66c, or a sim:multical-66c port): one \"/#1\" request (300 Bd out,
1200 Bd back, answered 0.3–2 s later) gives ten fields under the KMP names and ids:
heat_energy (60), volume (68), hours (1004), t1 (86), t2 (87), t1_t2 (89, sent by the meter),
power (80), flow (74), peak_power (143) and info (99). The registers carry no decimal point:
the decimals and the energy unit come from the program number A-B-CCC — --program, else the
`program` of the [[meter]] with this port in --config, else the one this command remembered
from the meter on this port, else read from the meter (/#2, or /#D), else an EN 61107 readout.
With a known program a read is ONE IR session (/#1 only). A program read with /#2 is remembered
per port with the meter's customer number in $XDG_CACHE_HOME/kamstrup-bridge/mc66c-programs.json
(default ~/.cache/…), so only the first read of a meter costs two; --no-cache neither uses nor
updates that file. --identify adds /#2 for the customer number, which is the serial (shown
whenever /#2 was read), and refreshes the remembered program. Failed requests are retried at least --retry-interval (5 s) apart, --retries (3) times.

--protocol auto tries KMP GetSerialNo, then \"/#1\", and says on stderr what it found.

Exit status: 0 every asked register was read; 1 no usable reply (timeout, CRC error, corrupt
66C reply, port problem); 2 bad command line; 3 the meter answered but left out some asked
registers.

JSON output: {\"meter\":{\"protocol\",\"port\",\"serial\"},\"taken_at\",\"registers\":[{\"id\":60,
\"name\":\"heat_energy\",\"short\":\"E1\",\"value\":\"121.89\",\"unit\":\"GJ\",\"unit_code\":8}],
\"missing\":[ids]}. value is the exact decimal as a string. On failure: {\"error\":{\"kind\":
\"timeout|crc|stuffing|truncated|echo-only|field-format|fields|not-found|busy|...\",
\"message\":\"...\"}}.

Examples:
  kamstrup read --port sim:multical-602
  kamstrup read --port /dev/ttyUSB0 heat_energy volume t1 t2 --format json
  kamstrup read --port tcp://10.0.0.5:4001 60 0x44 1004 --format csv
  kamstrup read --port sim:multical-66c
  kamstrup read --port /dev/ttyUSB0 --protocol mc66c --program 4-4-119 --format json
  kamstrup read --port /dev/ttyUSB0 --protocol mc66c --program 4-4-119 --identify
  kamstrup read --port /dev/ttyUSB0 --protocol mc66c --config /etc/kamstrup/kamstrup.toml
  kamstrup read --port /dev/ttyUSB0 --protocol auto
  kamstrup --trace-frames read --port /dev/ttyUSB0      (hex of every frame on stderr)";

/// Arguments of `read`.
#[derive(Args, Debug)]
pub(crate) struct ReadArgs {
    #[command(flatten)]
    port: PortArgs,

    /// Registers by name (heat_energy), short name (E1) or id (60, 0x3C); default: the standard 8
    /// (MULTICAL 66C: the ten /#1 fields).
    #[arg(value_name = "REGISTER")]
    registers: Vec<String>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    format: Format,

    /// Skip asking for the serial number (one request less; 66C: leave the customer number out).
    #[arg(long, conflicts_with = "identify")]
    no_serial: bool,

    /// MULTICAL 66C: also read /#2 for the customer number even when the program is known (one
    /// more IR session; without it a known program costs exactly one, /#1). KMP meters report
    /// their serial anyway.
    #[arg(long)]
    identify: bool,

    /// A config file whose [[meter]] with this port gives the program number (MULTICAL 66C)
    /// and the model.
    #[arg(long, value_name = "FILE")]
    config: Option<std::path::PathBuf>,

    /// The meter's model as on its label (`MULTICAL 403`): names the bits of its info code
    /// (a KMP meter reports only a type code). Default: the `model` of the [[meter]] with this
    /// port in --config.
    #[arg(long, value_name = "TEXT")]
    model: Option<String>,

    /// MULTICAL 66C: neither use nor update the remembered program numbers (read /#2 when the
    /// program is not given).
    #[arg(long)]
    no_cache: bool,
}

pub(crate) async fn run(args: ReadArgs) -> ExitCode {
    let retries = u32::from(kamstrup_mc66c::timing::MAX_RETRIES);
    let opened = match super::open_meter(&args.port, args.format, retries, args.identify).await {
        Ok(o) => o,
        Err(code) => return code,
    };
    match opened {
        Opened::Kmp(meter) => read_kmp(meter, &args, None).await,
        Opened::Mc66c(meter) => read_mc66c(meter, &args).await,
        Opened::Auto(link) => {
            let port = args.port.port.clone();
            // One quick try: a KMP meter answers within 150 ms; a 66C never does.
            let probe_options = KmpOptions {
                retries: 0,
                ..super::kmp_options(&args.port)
            };
            let mut probe = KmpMeter::new(link, port.clone(), probe_options);
            match probe.get_serial().await {
                Ok(serial) => {
                    eprintln!("found a KMP meter, serial {serial}, on {port}");
                    let meter =
                        KmpMeter::new(probe.into_link(), port, super::kmp_options(&args.port));
                    read_kmp(meter, &args, Some(serial)).await
                }
                Err(e @ MeterError::Link(_)) => {
                    fail(args.format, e.kind(), e.to_string(), EXIT_FAILED)
                }
                Err(kmp_error) => {
                    tracing::info!(error = %kmp_error, "no KMP reply; trying the MULTICAL 66C's /#1");
                    let options = super::mc66c_options(&args.port, retries, args.identify);
                    let mut meter = Mc66cMeter::new(probe.into_link(), port.clone(), options);
                    match meter.read_standard().await {
                        Ok(reading) => {
                            eprintln!(
                                "found a MULTICAL 66C (/#1) on {port}: {}",
                                reading.meter.meter_type.as_deref().unwrap_or("")
                            );
                            finish_mc66c(&meter, reading, &args)
                        }
                        Err(e) => fail(
                            args.format,
                            e.kind(),
                            format!(
                                "no meter answered on {port}: KMP GetSerialNo: {kmp_error}; \
                                 MULTICAL 66C /#1: {e}"
                            ),
                            EXIT_FAILED,
                        ),
                    }
                }
            }
        }
    }
}

async fn read_kmp(mut meter: KmpMeter, args: &ReadArgs, known_serial: Option<u32>) -> ExitCode {
    let ids = if args.registers.is_empty() {
        DEFAULT_SET.to_vec()
    } else {
        match super::resolve_registers(&args.registers) {
            Ok(ids) => ids,
            Err(message) => return fail(args.format, "bad-register", message, EXIT_USAGE),
        }
    };
    let identify = !args.no_serial && known_serial.is_none();
    match meter.read(&ids, identify).await {
        Ok(mut reading) => {
            if !args.no_serial {
                if let Some(serial) = known_serial {
                    reading.meter.serial = Some(u64::from(serial));
                }
            }
            report(&reading, meter.stats(), args)
        }
        Err(e) => fail(args.format, e.kind(), e.to_string(), EXIT_FAILED),
    }
}

/// The config's [[meter]] on this port, if `--config` names one.
fn config_meter(args: &ReadArgs) -> Result<Option<kamstrup_daemon::MeterSettings>, String> {
    let Some(path) = &args.config else {
        return Ok(None);
    };
    let config = super::config_file::load(path)?;
    let spec: PortSpec = args.port.port.parse().map_err(|e| format!("{e}"))?;
    let Some(meter) = config.daemon.meters.into_iter().find(|m| m.port == spec) else {
        tracing::info!(config = %path.display(), port = %args.port.port, "no [[meter]] with this port in the config");
        return Ok(None);
    };
    Ok(Some(meter))
}

/// The program of the config's [[meter]] on this port, if `--config` names one.
fn config_program(args: &ReadArgs) -> Result<Option<ProgramNumber>, String> {
    Ok(config_meter(args)?.and_then(|m| m.program))
}

/// `--model`, else the model of the config's [[meter]] on this port.
fn model(args: &ReadArgs) -> Option<String> {
    if let Some(m) = &args.model {
        return Some(m.trim().to_owned());
    }
    match config_meter(args) {
        Ok(m) => m.and_then(|m| m.model),
        Err(message) => {
            tracing::warn!(%message, "no model from the config");
            None
        }
    }
}

async fn read_mc66c(mut meter: Mc66cMeter, args: &ReadArgs) -> ExitCode {
    if let Err(message) = super::resolve_mc66c_registers(&args.registers) {
        return fail(args.format, "bad-register", message, EXIT_USAGE);
    }
    if args.port.program.is_none() {
        match config_program(args) {
            Ok(Some(program)) => {
                tracing::info!(%program, "program number from the config");
                meter.set_options(Mc66cOptions {
                    program: Some(program),
                    ..*meter.options()
                });
            }
            Ok(None) => {
                let cache = (!args.no_cache && !args.identify)
                    .then(ProgramCache::open_default)
                    .flatten();
                let remembered = cache.as_ref().and_then(|c| c.lookup(&args.port.port));
                if let Some((entry, program)) = remembered.and_then(|e| e.program().map(|p| (e, p)))
                {
                    tracing::info!(%program, serial = ?entry.serial, learned_at = %entry.learned_at, "program number remembered for this port");
                    meter.remember_program(program);
                }
            }
            Err(message) => return fail(args.format, "config", message, EXIT_USAGE),
        }
    }
    match meter.read_standard().await {
        Ok(reading) => finish_mc66c(&meter, reading, args),
        Err(e) => fail(args.format, e.kind(), e.to_string(), EXIT_FAILED),
    }
}

/// Keeps the asked registers (all ten by default), prints, and picks the exit code.
fn finish_mc66c(meter: &Mc66cMeter, mut reading: Reading, args: &ReadArgs) -> ExitCode {
    remember_program(meter, args);
    if args.no_serial {
        reading.meter.serial = None;
    }
    if !args.registers.is_empty() {
        let ids = match super::resolve_mc66c_registers(&args.registers) {
            Ok(ids) => ids,
            Err(message) => return fail(args.format, "bad-register", message, EXIT_USAGE),
        };
        let mut kept = Vec::with_capacity(ids.len());
        for id in &ids {
            match reading.registers.iter().find(|r| r.id == *id) {
                Some(r) => kept.push(r.clone()),
                None => reading.missing.push(*id),
            }
        }
        reading.registers = kept;
    }
    report(&reading, meter.stats(), args)
}

/// Remembers a program number the meter told on this connection (`/#2` or `/#D`) for the
/// next read on this port.
fn remember_program(meter: &Mc66cMeter, args: &ReadArgs) {
    if args.no_cache {
        return;
    }
    let Some((program, ScalingSource::Standard2 | ScalingSource::Programming)) =
        meter.program_known()
    else {
        return;
    };
    let Some(cache) = ProgramCache::open_default() else {
        return;
    };
    match cache.store(&args.port.port, meter.customer_no(), program) {
        Ok(()) => {
            tracing::info!(%program, file = %cache.path().display(), "program number remembered")
        }
        Err(e) => {
            tracing::warn!(file = %cache.path().display(), error = %e, "could not remember the program number")
        }
    }
}

/// Prints a reading, logs the traffic it cost, and picks the exit code (3 if registers are missing).
fn report(reading: &Reading, stats: kamstrup_meter::DriverStats, args: &ReadArgs) -> ExitCode {
    let format = args.format;
    if let Err(e) = print_reading(reading, format, model(args).as_deref()) {
        eprintln!("error: cannot write output: {e}");
        return ExitCode::from(EXIT_FAILED);
    }
    tracing::info!(
        requests = stats.requests,
        retries = stats.retries,
        bytes_sent = stats.link.bytes_sent,
        bytes_received = stats.link.bytes_received,
        "read done"
    );
    if reading.missing.is_empty() {
        ExitCode::from(EXIT_OK)
    } else {
        ExitCode::from(EXIT_PARTIAL)
    }
}
