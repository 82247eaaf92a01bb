//! The `kamstrup` command: reads Kamstrup heat meters through an optical IR head (or a simulated
//! meter) and prints exact values; also decodes captured frames and runs a virtual meter.

mod cmd;
mod output;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

const ABOUT: &str =
    "Read Kamstrup heat meters (MULTICAL 30x/40x/60x over KMP) through an optical IR head, \
exactly: values keep the meter's own resolution, nothing is rounded through floating point.";

const EXAMPLES: &str = "\
Examples:
  kamstrup read --port sim:multical-403            read the standard 8 registers from a simulated meter
  kamstrup read --port /dev/ttyUSB0                read a real meter through a USB IR head
  kamstrup read --port tcp://192.168.1.20:4001 heat_energy volume --format json
  kamstrup scan --port /dev/serial/by-id/usb-FTDI_...-port0
  kamstrup decode 403F0201234567E9560D
  kamstrup simulate --model multical-403 --pty --link /tmp/meter --pace

Ports: a serial device (/dev/ttyUSB0, /dev/serial/by-id/..., COM3), tcp://HOST:PORT for a raw
TCP bridge (ser2net, esp-link), or sim:MODEL for an in-process simulated meter
(models: multical-402, multical-403, multical-602).";

/// Top-level command line.
#[derive(Parser, Debug)]
#[command(name = "kamstrup", version, about = ABOUT, after_help = EXAMPLES)]
struct Cli {
    /// More log output on stderr (-v: info, -vv: debug). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    /// Log every frame on the wire in hex, both directions (on stderr).
    #[arg(long, global = true)]
    trace_frames: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Read registers once and print them (exit 0 only if every asked register was read).
    #[command(after_help = cmd::read::HELP)]
    Read(cmd::read::ReadArgs),
    /// Identify the meter and probe every catalogued register, in batches of 8.
    #[command(after_help = cmd::scan::HELP)]
    Scan(cmd::scan::ScanArgs),
    /// Decode captured KMP frames (hex), or say exactly what is wrong with them.
    #[command(after_help = cmd::decode::HELP)]
    Decode(cmd::decode::DecodeArgs),
    /// Run a virtual meter on a pseudo-terminal or a TCP port, for trying the tool and for tests.
    #[command(after_help = cmd::simulate::HELP)]
    Simulate(cmd::simulate::SimulateArgs),
}

/// How to reach the meter; shared by `read` and `scan`.
#[derive(Args, Debug, Clone)]
pub(crate) struct PortArgs {
    /// Serial device, tcp://HOST:PORT, or sim:MODEL.
    #[arg(short, long, env = "KAMSTRUP_PORT")]
    pub(crate) port: String,

    /// Baud rate of the IR link (KMP meters: 1200; some accept 2400).
    #[arg(long, default_value_t = 1200)]
    pub(crate) baud: u32,

    /// How long to wait for the meter's first reply byte (e.g. 2s, 500ms).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub(crate) timeout: Duration,

    /// KMP destination address (0x3F = heat meter; 0x7F/0xBF = logger modules).
    #[arg(long, default_value = "0x3F", value_parser = parse_u8)]
    pub(crate) destination: u8,
}

/// Output formats of `read` and `scan`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// Aligned columns for people.
    Table,
    /// One JSON object (see --help of read for its shape).
    Json,
    /// CSV with a header line.
    Csv,
}

fn parse_u8(s: &str) -> Result<u8, String> {
    let t = s.trim();
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u8::from_str_radix(hex, 16),
        None => t.parse(),
    };
    parsed.map_err(|_| format!("{s:?} is not a byte (0..255 or 0x00..0xFF)"))
}

fn init_logging(verbose: u8, trace_frames: bool) {
    use tracing_subscriber::EnvFilter;
    let base = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(base));
    if trace_frames {
        if let Ok(directive) = "kamstrup::frames=debug".parse() {
            filter = filter.add_directive(directive);
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.trace_frames);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Read(args) => cmd::read::run(args).await,
            Command::Scan(args) => cmd::scan::run(args).await,
            Command::Decode(args) => cmd::decode::run(args),
            Command::Simulate(args) => cmd::simulate::run(args).await,
        }
    })
}
