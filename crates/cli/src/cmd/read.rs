//! `kamstrup read`: one reading of the asked registers (default: the standard set of 8, in one
//! request), printed as a table, JSON or CSV; the exit code says whether everything was read.

use std::process::ExitCode;

use clap::Args;
use kamstrup_kmp::registers::DEFAULT_SET;

use crate::output::{fail, print_reading, EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE};
use crate::{Format, PortArgs};

pub(crate) const HELP: &str = "\
Without REGISTER arguments the standard set is read in ONE request: heat energy E1 (60),
volume V1 (68), T1 (86), T2 (87), power (80), flow (74), hour counter (1004), info code (99);
ΔT is then derived exactly as T1 − T2 and marked \"derived\". More than 8 registers are split
into requests of at most 8. Units come from the meter's reply, never from a table.

Exit status: 0 every asked register was read; 1 no usable reply (timeout, CRC error, port
problem); 2 bad command line; 3 the meter answered but left out some asked registers.

JSON output: {\"meter\":{\"protocol\",\"port\",\"serial\"},\"taken_at\",\"registers\":[{\"id\":60,
\"name\":\"heat_energy\",\"short\":\"E1\",\"value\":\"121.89\",\"unit\":\"GJ\",\"unit_code\":8}],
\"missing\":[ids]}. value is the exact decimal as a string. On failure: {\"error\":{\"kind\":
\"timeout|crc|stuffing|truncated|echo-only|not-found|busy|...\",\"message\":\"...\"}}.

Examples:
  kamstrup read --port sim:multical-602
  kamstrup read --port /dev/ttyUSB0 heat_energy volume t1 t2 --format json
  kamstrup read --port tcp://10.0.0.5:4001 60 0x44 1004 --format csv
  kamstrup --trace-frames read --port /dev/ttyUSB0      (hex of every frame on stderr)";

/// Arguments of `read`.
#[derive(Args, Debug)]
pub(crate) struct ReadArgs {
    #[command(flatten)]
    port: PortArgs,

    /// Registers by name (heat_energy), short name (E1) or id (60, 0x3C); default: the standard 8.
    #[arg(value_name = "REGISTER")]
    registers: Vec<String>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    format: Format,

    /// Skip asking for the serial number (one request less).
    #[arg(long)]
    no_serial: bool,
}

pub(crate) async fn run(args: ReadArgs) -> ExitCode {
    let ids = if args.registers.is_empty() {
        DEFAULT_SET.to_vec()
    } else {
        match super::resolve_registers(&args.registers) {
            Ok(ids) => ids,
            Err(message) => return fail(args.format, "bad-register", message, EXIT_USAGE),
        }
    };
    let mut meter = match super::open_kmp(&args.port, args.format).await {
        Ok(m) => m,
        Err(code) => return code,
    };
    match meter.read(&ids, !args.no_serial).await {
        Ok(reading) => {
            if let Err(e) = print_reading(&reading, args.format) {
                eprintln!("error: cannot write output: {e}");
                return ExitCode::from(EXIT_FAILED);
            }
            let stats = meter.stats();
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
        Err(e) => fail(args.format, e.kind(), e.to_string(), EXIT_FAILED),
    }
}
