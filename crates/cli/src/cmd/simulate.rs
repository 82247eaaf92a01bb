//! `kamstrup simulate`: a virtual meter (KMP or MULTICAL 66C) on a pseudo-terminal or a TCP port
//! that answers with the real protocol bytes, paced, echoing or faulty; runs until stopped.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use kamstrup_mc66c::ProgramNumber;
use kamstrup_meter::sim::{self, FaultPlan, Mc66cModel, SimModel, SimOptions};
use kamstrup_optical::{open_pty_with, Link, TcpLink};
use tokio::net::TcpListener;

use crate::output::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};

pub(crate) const HELP: &str = "\
The simulated meter keeps consistent values that move with time: energy grows with power × time,
T1 > T2, ΔT = T1 − T2 exactly, the hour counter ticks. Like a real meter it leaves unknown
registers out of replies, says nothing to a bad CRC or another address, and ignores requests for
~1.6 s after an invalid frame.

It prints one line saying where it is (the pty path or the TCP address), then serves until
stopped. Point `kamstrup read --port` (or any KMP tool, e.g. PyKMP) at that path or address.

The MULTICAL 66C (--model multical-66c, program number set with --program, default 4-2-119)
answers /#1 … /#9, /#B, /#C, /#D, /#J and the EN 61107 readout /?! (with or without CR / CR LF
after the request) 0.3–2 s after the request's air time at 300 Bd (a fixed --latency-ms
overrides), at 1200 Bd 7E1 (the readout at 300 Bd), paced like the wire unless --no-pace. On a
pty it sees the client's baud rate: whatever it sends while the client is not yet at 1200 Bd
arrives garbled, exactly what a reader that switches late gets from a real meter. Its loggers
are short (a few lines) so that a scan stays quick.

Faults (--faults): comma-separated KIND, KIND=PROBABILITY or KIND@N (only the N-th reply), with
KIND one of drop, corrupt, truncate, delay, late-baud. E.g. \"drop@1\" drops the first reply
only (a reader that retries still succeeds); \"corrupt=0.1\" corrupts one reply in ten;
\"late-baud@1\" (66C) garbles the start of the first reply like a late switch to 1200 Bd.

Examples:
  kamstrup simulate --pty --link /tmp/meter                       then: kamstrup read --port /tmp/meter
  kamstrup simulate --model multical-602 --listen 127.0.0.1:4001  then: kamstrup read --port tcp://127.0.0.1:4001
  kamstrup simulate --pty --link /tmp/meter --pace --latency-ms 50 --echo --faults corrupt@2
  kamstrup simulate --model multical-66c --program 4-4-119 --pty --link /tmp/mc66c
                                                                  then: kamstrup read --port /tmp/mc66c --protocol mc66c";

/// Arguments of `simulate`.
#[derive(Args, Debug)]
pub(crate) struct SimulateArgs {
    /// Meter model: multical-303, -402, -403, -601 (logger module at 0x7F), -602, -603, -801
    /// (logger at 0x7F) or multical-66c.
    #[arg(short, long, default_value = "multical-403")]
    model: String,

    /// MULTICAL 66C: the program number A-B-CCC the meter reports (digit B = energy unit,
    /// CCC = flow-meter code, which sets the decimals).
    #[arg(long, value_name = "A-B-CCC", value_parser = crate::parse_program)]
    program: Option<ProgramNumber>,

    /// Serve on a new pseudo-terminal (prints its /dev/pts path).
    #[arg(long, required_unless_present = "listen", conflicts_with = "listen")]
    pty: bool,

    /// With --pty: also make PATH a symlink to the pseudo-terminal (removed on exit).
    #[arg(long, requires = "pty", value_name = "PATH")]
    link: Option<PathBuf>,

    /// Serve on a TCP address instead, like a ser2net raw port (e.g. 127.0.0.1:4001; port 0 picks one).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,

    /// Send at the real baud rate (1200 8N2 = 9.17 ms a byte) and model the request's air time
    /// (default for the 66C; off for KMP models).
    #[arg(long, conflicts_with = "no_pace")]
    pace: bool,

    /// Send replies at once instead of at the baud rate (the 66C still waits the request's air
    /// time and its latency).
    #[arg(long)]
    no_pace: bool,

    /// Delay between the end of a request and the start of the reply, in milliseconds
    /// (default: KMP 50; the 66C a random 300–2000).
    #[arg(long, value_name = "MS")]
    latency_ms: Option<u64>,

    /// Reflect every request back before the reply, as some IR heads do.
    #[arg(long)]
    echo: bool,

    /// Faults to inject into replies (see below).
    #[arg(long, value_name = "SPEC")]
    faults: Option<String>,

    /// Seed for probabilistic faults, so that a run can be repeated.
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// How long a `delay` fault holds a reply back, in milliseconds.
    #[arg(long, default_value_t = 3000, value_name = "MS")]
    fault_delay_ms: u64,

    /// Simulated seconds per real second, so that counters move visibly in a demo.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,

    /// MULTICAL 66C: its clock runs this many seconds off the real one (negative: behind), its
    /// /#D and logger lines too — to see the bridge correct logged times and wait for a clock
    /// behind to pass the hour. (KMP models drift on their own.)
    #[arg(
        long,
        default_value_t = 0,
        value_name = "SECONDS",
        allow_hyphen_values = true
    )]
    clock_offset_s: i64,
}

/// Removes the `--link` symlink when the simulator ends, however it ends.
struct LinkGuard(Option<PathBuf>);

impl Drop for LinkGuard {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn make_symlink(link: &Path, target: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(link) {
        Ok(meta) if meta.file_type().is_symlink() => {
            std::fs::remove_file(link)
                .map_err(|e| format!("cannot replace {}: {e}", link.display()))?;
        }
        Ok(_) => {
            return Err(format!(
                "{} exists and is not a symlink; not overwriting it",
                link.display()
            ))
        }
        Err(_) => {}
    }
    std::os::unix::fs::symlink(target, link)
        .map_err(|e| format!("cannot create symlink {}: {e}", link.display()))
}

fn announce(line: &str) {
    // Tests and scripts wait for this line, so it must not sit in a buffer.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

pub(crate) async fn run(args: SimulateArgs) -> ExitCode {
    let model: SimModel = match (args.model.parse(), args.program) {
        (Ok(SimModel::Mc66c(_)), Some(program)) => SimModel::Mc66c(Mc66cModel::new(program)),
        (Ok(_), Some(_)) => {
            eprintln!("error: --program belongs to --model multical-66c");
            return ExitCode::from(EXIT_USAGE);
        }
        (Ok(m), None) => m,
        (Err(e), _) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let faults = match args
        .faults
        .as_deref()
        .map(|spec| FaultPlan::parse(spec, args.seed))
    {
        None => FaultPlan::none(),
        Some(Ok(mut plan)) => {
            plan.delay = Duration::from_millis(args.fault_delay_ms);
            plan
        }
        Some(Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if args.clock_offset_s != 0 && !matches!(model, SimModel::Mc66c(_)) {
        eprintln!("error: --clock-offset-s belongs to --model multical-66c (the KMP models' clocks drift on their own)");
        return ExitCode::from(EXIT_USAGE);
    }
    if args.clock_offset_s.unsigned_abs() > 366 * 86_400 {
        eprintln!("error: --clock-offset-s is at most a year either way");
        return ExitCode::from(EXIT_USAGE);
    }
    if !(args.speed.is_finite() && args.speed > 0.0) {
        eprintln!("error: --speed must be a positive number");
        return ExitCode::from(EXIT_USAGE);
    }
    let defaults = SimOptions::for_model(model);
    let (latency, latency_jitter) = match args.latency_ms {
        Some(ms) => (Duration::from_millis(ms), Duration::ZERO),
        None => (defaults.latency, defaults.latency_jitter),
    };
    let mut options = SimOptions {
        pace: (defaults.pace || args.pace) && !args.no_pace,
        latency,
        latency_jitter,
        echo: args.echo,
        faults,
        speed: args.speed,
        // A TCP server cannot see the client's baud rate; a pty can (see serve_tcp).
        baud_visible: true,
        mc66c_clock_offset: chrono::Duration::seconds(args.clock_offset_s),
    };
    let name = match model {
        SimModel::Mc66c(m) => format!("{} (program {})", model.name(), m.program),
        SimModel::Kmp(_) => model.name().to_string(),
    };
    let served = if let Some(addr) = args.listen {
        let listener = match TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: cannot listen on {addr}: {e}");
                return ExitCode::from(EXIT_FAILED);
            }
        };
        let local = listener
            .local_addr()
            .map_or_else(|_| addr.to_string(), |a| a.to_string());
        let shutdown = super::run::shutdown_signal();
        announce(&format!("simulated {name} listening on tcp://{local}"));
        tokio::select! {
            r = serve_tcp(listener, model, &mut options) => r,
            _ = shutdown => Ok(()),
        }
    } else {
        let (mut link, path) = match open_pty_with(model.line_settings()) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: cannot open a pseudo-terminal: {e}");
                return ExitCode::from(EXIT_FAILED);
            }
        };
        let _guard = match &args.link {
            Some(l) => match make_symlink(l, &path) {
                Ok(()) => LinkGuard(Some(l.clone())),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(EXIT_FAILED);
                }
            },
            None => LinkGuard(None),
        };
        let shown = match &args.link {
            Some(l) => format!("{} (linked at {})", path.display(), l.display()),
            None => path.display().to_string(),
        };
        let shutdown = super::run::shutdown_signal();
        announce(&format!("simulated {name} on pty {shown}"));
        tokio::select! {
            r = serve_pty(&mut link, model, &mut options) => r,
            _ = shutdown => Ok(()),
        }
    };
    match served {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(e) => {
            eprintln!("error: simulator stopped: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

async fn serve_pty(
    link: &mut dyn Link,
    model: SimModel,
    options: &mut SimOptions,
) -> Result<(), String> {
    loop {
        sim::serve(link, model, options)
            .await
            .map_err(|e| e.to_string())?;
        // A pty has no "connection"; if the read side reports an end, wait and serve again.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn serve_tcp(
    listener: TcpListener,
    model: SimModel,
    options: &mut SimOptions,
) -> Result<(), String> {
    loop {
        let (stream, peer) = listener.accept().await.map_err(|e| e.to_string())?;
        tracing::info!(%peer, "simulator: client connected");
        let mut link = TcpLink::from_stream(stream, model.line_settings());
        options.baud_visible = false;
        // One client at a time, like a ser2net port: a meter has one optical eye.
        if let Err(e) = sim::serve(&mut link, model, options).await {
            tracing::info!(%peer, error = %e, "simulator: client link ended");
        }
    }
}
