//! The `kamstrup` command: reads Kamstrup heat meters through an optical IR head (or a simulated
//! meter) and prints exact values; also decodes captured frames and runs a virtual meter.

mod cmd;
mod output;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use kamstrup_mc66c::ProgramNumber;

const ABOUT: &str =
    "Read Kamstrup heat meters (MULTICAL 30x/40x/60x over KMP, MULTICAL 66C over its \"/#1\" \
protocol) through an optical IR head, exactly: values keep the meter's own resolution, nothing \
is rounded through floating point.";

const EXAMPLES: &str = "\
Examples:
  kamstrup read --port sim:multical-403            read the standard 8 registers from a simulated meter
  kamstrup read --port /dev/ttyUSB0                read a real meter through a USB IR head
  kamstrup read --port tcp://192.168.1.20:4001 heat_energy volume --format json
  kamstrup scan --port /dev/serial/by-id/usb-FTDI_...-port0
  kamstrup decode 403F0201234567E9560D
  kamstrup log --port sim:multical-403 --logger hour --last 24   the meter's own hourly records
  kamstrup simulate --model multical-403 --pty --link /tmp/meter --pace
  kamstrup read --port sim:multical-66c            a simulated MULTICAL 66C (\"/#1\" protocol)
  kamstrup read --port /dev/ttyUSB0 --protocol mc66c --program 4-2-119
  kamstrup read --port /dev/ttyUSB0 --protocol auto   try KMP, then the 66C's /#1

Ports: a serial device (/dev/ttyUSB0, /dev/serial/by-id/..., COM3), tcp://HOST:PORT for a raw
TCP bridge (ser2net, esp-link), or sim:MODEL for an in-process simulated meter
(models: multical-303, multical-402, multical-403, multical-602, multical-603, multical-66c).";

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
    /// MULTICAL 66C: the ten fields of "/#1".
    #[command(after_help = cmd::read::HELP)]
    Read(cmd::read::ReadArgs),
    /// Identify the meter and probe every catalogued register, in batches of 8 (MULTICAL 66C:
    /// every data set and the EN 61107 readout).
    #[command(after_help = cmd::scan::HELP)]
    Scan(cmd::scan::ScanArgs),
    /// Decode captured KMP frames (hex) or MULTICAL 66C replies (text), or say exactly what is
    /// wrong with them.
    #[command(after_help = cmd::decode::HELP)]
    Decode(cmd::decode::DecodeArgs),
    /// The daemon: read every configured meter on schedule, store, deliver to every sink.
    #[command(after_help = cmd::run::HELP)]
    Run(cmd::run::RunArgs),
    /// Validate the config and reach every meter and sink; a verdict per item.
    #[command(after_help = cmd::check::HELP)]
    Check(cmd::check::CheckArgs),
    /// Stored readings: export them as CSV or JSON.
    History(cmd::history::HistoryArgs),
    /// Read the meter's own hour/day/month/year logger (MULTICAL 303/403/603) in one IR session.
    #[command(after_help = cmd::log::HELP)]
    Log(cmd::log::LogArgs),
    /// Run a virtual meter on a pseudo-terminal or a TCP port, for trying the tool and for tests.
    #[command(after_help = cmd::simulate::HELP)]
    Simulate(cmd::simulate::SimulateArgs),
    /// Diagnose a link in plain words: port, head, echo, bytes, frames, CRC, protocol, baud —
    /// with the likely cause and the fix. --watch helps position the head.
    #[command(after_help = cmd::doctor::HELP)]
    Doctor(cmd::doctor::DoctorArgs),
    /// First contact: find the head, probe the meter, choose where readings go and how often,
    /// and write a validated, commented kamstrup.toml (interactive; every answer is also a flag).
    #[command(after_help = cmd::setup::HELP)]
    Setup(Box<cmd::setup::SetupArgs>),
    /// Try it all with no meter and no config: two simulated meters, the daemon, weeks of
    /// history and the web dashboard on 127.0.0.1.
    #[command(after_help = cmd::demo::HELP)]
    Demo(cmd::demo::DemoArgs),
    /// Home Assistant add-on start-up: turn /data/options.json (and the Supervisor's MQTT
    /// broker) into the config for `kamstrup run`.
    #[command(name = "addon-config", after_help = cmd::addon::HELP)]
    AddonConfig(cmd::addon::AddonArgs),
}

/// How to reach the meter; shared by `read` and `scan`.
#[derive(Args, Debug, Clone)]
pub(crate) struct PortArgs {
    /// Serial device, tcp://HOST:PORT, or sim:MODEL.
    #[arg(short, long, env = "KAMSTRUP_PORT")]
    pub(crate) port: String,

    /// Protocol: kmp (MULTICAL 30x/40x/60x), mc66c (MULTICAL 66C "/#1"), or auto (try KMP
    /// GetSerialNo, then "/#1"). Default: the model's protocol for sim: ports, else kmp.
    #[arg(long, value_enum)]
    pub(crate) protocol: Option<ProtocolArg>,

    /// Baud rate of the IR link (KMP meters: 1200; some accept 2400). The 66C's rates are fixed.
    #[arg(long, default_value_t = 1200)]
    pub(crate) baud: u32,

    /// KMP: how long to wait for the meter's first reply byte (e.g. 2s, 500ms). The 66C's reply
    /// deadline is fixed (3.5 s after the request).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub(crate) timeout: Duration,

    /// KMP destination address (0x3F = heat meter; 0x7F/0xBF = logger modules).
    #[arg(long, visible_alias = "address", default_value = "0x3F", value_parser = parse_u8)]
    pub(crate) destination: u8,

    /// MULTICAL 66C: the program number A-B-CCC from the meter's label or display (e.g.
    /// 4-2-119). Its digit B gives the energy unit (2 GJ, 3 kWh, 4 MWh, 5 Gcal) and CCC the
    /// decimals. Without it the number is read from the meter (/#2) once.
    #[arg(long, value_name = "A-B-CCC", value_parser = parse_program)]
    pub(crate) program: Option<ProgramNumber>,

    /// MULTICAL 66C: retries after a lost or corrupt reply (default: read 3, scan 0).
    #[arg(long, value_name = "N")]
    pub(crate) retries: Option<u32>,

    /// MULTICAL 66C: least time from a failed request to its retry (the meter's manual asks
    /// for 5 s or more).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub(crate) retry_interval: Duration,
}

/// `--protocol` of `read` and `scan`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProtocolArg {
    /// Kamstrup Meter Protocol (MULTICAL 30x/40x/60x).
    Kmp,
    /// The MULTICAL 66C's "/#n" protocol.
    Mc66c,
    /// Try KMP GetSerialNo, then the 66C's "/#1"; report what answered.
    Auto,
}

pub(crate) fn parse_program(s: &str) -> Result<ProgramNumber, String> {
    s.parse::<ProgramNumber>()
        .map_err(|e| format!("{e} (write it as A-B-CCC, e.g. 4-2-119)"))
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
            Command::Demo(args) => cmd::demo::run(args).await,
            Command::Doctor(args) => cmd::doctor::run(args).await,
            Command::Setup(args) => cmd::setup::run(*args).await,
            Command::Run(args) => cmd::run::run(args).await,
            Command::Check(args) => cmd::check::run(args).await,
            Command::History(args) => cmd::history::run(args).await,
            Command::AddonConfig(args) => cmd::addon::run(args).await,
            Command::Log(args) => cmd::log::run(args).await,
        }
    })
}
