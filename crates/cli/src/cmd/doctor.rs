//! `kamstrup doctor`: says in plain words why a link to a meter fails (port, exclusivity, echo,
//! bytes, frames, CRC, protocol, baud) and what to do; `--watch` helps position the head.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use kamstrup_mc66c::ProgramNumber;
use kamstrup_meter::diagnose::{
    self, kmp_attempt, mc66c_attempt, Answer, DiagnoseOptions, Diagnosis, ProbeProtocol,
};
use kamstrup_meter::PortSpec;
use kamstrup_meter::{open_port, Mc66cMeter, Mc66cOptions, OpenError, Verdict};
use kamstrup_optical::{LineSettings, Timeouts, Transceiver};

use crate::output::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};

pub(crate) const HELP: &str = "\
The doctor opens the port and asks, in order: does the port open? is it ours alone (no other
program holding the head)? does our own request come back (the head's echo: it is alive)? any
byte from the meter? a whole frame? a correct CRC? which protocol and baud rate? Then it gives
one verdict with its likely cause and the fix: turn the head, the magnet, press the meter's
button, try --protocol mc66c, use the /dev/serial/by-id/ name, join the dialout group …

It sends only read requests: KMP GetSerialNo (3 times by default), and if no KMP frame comes
back, the MULTICAL 66C's /#1 once. Exit status 0 when the meter answered as asked, 1 otherwise,
2 on a bad command line.

--watch sends one cheap request a second (KMP GetSerialNo; a 66C's /#1 every 5 s, as its
manual asks) and shows the live success rate, so that you can move the head until it reads
100 %. It stops by itself after --watch-for (default 3 minutes: every request costs the meter
battery) or at Ctrl-C.

Examples:
  kamstrup doctor --port /dev/ttyUSB0
  kamstrup doctor --port /dev/serial/by-id/usb-FTDI_FT230X_Basic_UART_D30A1B2C-if00-port0 --protocol mc66c
  kamstrup doctor --port tcp://192.168.1.20:4001 --format json
  kamstrup doctor --port /dev/ttyUSB0 --watch --watch-for 5m";

/// Output of `doctor`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DoctorFormat {
    /// Plain words.
    Text,
    /// The diagnosis as one JSON object (steps, verdict with kind/headline/cause/fix, found).
    Json,
}

/// `--protocol` of `doctor`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DoctorProtocol {
    /// Try KMP, then the 66C; either answering is fine.
    Auto,
    /// Expect KMP (MULTICAL 30x/40x/60x).
    Kmp,
    /// Expect a MULTICAL 66C.
    Mc66c,
}

/// Arguments of `doctor`.
#[derive(Args, Debug)]
pub(crate) struct DoctorArgs {
    /// Serial device, tcp://HOST:PORT, or sim:MODEL.
    #[arg(short, long, env = "KAMSTRUP_PORT")]
    port: String,

    /// Protocol the meter should speak.
    #[arg(long, value_enum, default_value_t = DoctorProtocol::Auto)]
    protocol: DoctorProtocol,

    /// KMP baud rate to try first.
    #[arg(long, default_value_t = 1200)]
    baud: u32,

    /// KMP requests to send (more give a truer success rate, and cost battery).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    attempts: u32,

    /// How long to wait for the first byte of a KMP reply.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    timeout: Duration,

    /// MULTICAL 66C program number A-B-CCC (not needed for the diagnosis itself).
    #[arg(long, value_name = "A-B-CCC", value_parser = crate::parse_program)]
    program: Option<ProgramNumber>,

    /// Repeat a cheap request and show the live success rate, to position the head.
    #[arg(long)]
    watch: bool,

    /// With --watch: stop by itself after this long (spares the meter's battery).
    #[arg(long, default_value = "3m", value_parser = humantime::parse_duration, value_name = "DURATION")]
    watch_for: Duration,

    /// With --watch: time between requests (at least 5 s for a 66C).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    interval: Duration,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = DoctorFormat::Text)]
    format: DoctorFormat,
}

fn timeouts(args: &DoctorArgs) -> Timeouts {
    Timeouts::new(
        args.timeout,
        Duration::from_millis(250),
        args.timeout + Duration::from_secs(4),
    )
}

pub(crate) async fn run(args: DoctorArgs) -> ExitCode {
    let spec: PortSpec = match args.port.parse() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if args.watch {
        return watch(&args, &spec).await;
    }
    let options = DiagnoseOptions {
        protocol: match args.protocol {
            DoctorProtocol::Auto => ProbeProtocol::Auto,
            DoctorProtocol::Kmp => ProbeProtocol::Kmp,
            DoctorProtocol::Mc66c => ProbeProtocol::Mc66c,
        },
        baud: args.baud,
        attempts: args.attempts,
        timeouts: timeouts(&args),
        mc66c: Mc66cOptions {
            program: args.program,
            ..Mc66cOptions::default()
        },
        ..DiagnoseOptions::default()
    };
    let diagnosis = diagnose::diagnose(&spec, &args.port, options).await;
    let printed = match args.format {
        DoctorFormat::Json => serde_json::to_string_pretty(&diagnosis)
            .map_err(std::io::Error::other)
            .and_then(|text| writeln!(std::io::stdout(), "{text}")),
        DoctorFormat::Text => print_text(&diagnosis),
    };
    if let Err(e) = printed {
        eprintln!("error: cannot write output: {e}");
        return ExitCode::from(EXIT_FAILED);
    }
    if diagnosis.verdict.is_ok() {
        ExitCode::from(EXIT_OK)
    } else {
        ExitCode::from(EXIT_FAILED)
    }
}

fn mark(answer: Answer) -> &'static str {
    match answer {
        Answer::Yes => "[ok]",
        Answer::No => "[!!]",
        Answer::Neutral => "[--]",
        Answer::Skipped => "[  ]",
    }
}

/// The diagnosis in plain words.
pub(crate) fn print_text(d: &Diagnosis) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(out, "kamstrup doctor: {}", d.port)?;
    let width = d.steps.iter().map(|s| s.question.len()).max().unwrap_or(0);
    for step in &d.steps {
        if step.answer == Answer::Skipped && step.detail.is_empty() {
            writeln!(out, "  {} {}", mark(step.answer), step.question)?;
        } else {
            writeln!(
                out,
                "  {} {:width$}  {}",
                mark(step.answer),
                step.question,
                step.detail
            )?;
        }
    }
    writeln!(out)?;
    print_verdict(&mut out, &d.verdict)?;
    for note in &d.notes {
        writeln!(out, "note: {note}")?;
    }
    Ok(())
}

/// Verdict, cause and fix, as `doctor` and `setup` print them.
pub(crate) fn print_verdict(out: &mut impl Write, verdict: &Verdict) -> std::io::Result<()> {
    let report = verdict.report();
    writeln!(out, "verdict ({}): {}", report.kind, report.headline)?;
    if !report.ok {
        writeln!(out, "likely cause: {}", report.cause)?;
        writeln!(out, "what to do:")?;
        for (i, step) in report.fix.iter().enumerate() {
            writeln!(out, "  {}. {step}", i + 1)?;
        }
    }
    Ok(())
}

/// Live success rate of repeated cheap requests; stops by itself.
async fn watch(args: &DoctorArgs, spec: &PortSpec) -> ExitCode {
    let mc66c = args.protocol == DoctorProtocol::Mc66c;
    let line = if mc66c {
        LineSettings::MC66C_REQUEST
    } else {
        LineSettings {
            baud: args.baud,
            ..LineSettings::KMP
        }
    };
    let link = match open_port(spec, line, Duration::from_secs(5)).await {
        Ok(link) => link,
        Err(e) => {
            let verdict = match e {
                OpenError::Link(e) => Verdict::from_link_error(&e),
                OpenError::UnknownModel(e) => Verdict::CannotOpen { why: e.to_string() },
            };
            let _ = print_verdict(&mut std::io::stdout(), &verdict);
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let interval = if mc66c {
        args.interval
            .max(kamstrup_mc66c::timing::MIN_RETRY_INTERVAL)
    } else {
        args.interval
    };
    let live = std::io::stdout().is_terminal();
    println!(
        "watching {} ({}): one {} every {}, for at most {} — move the head until it reads 100 %; Ctrl-C stops",
        args.port,
        if mc66c { "MULTICAL 66C" } else { "KMP" },
        if mc66c { "/#1" } else { "GetSerialNo" },
        humantime::format_duration(interval),
        humantime::format_duration(args.watch_for),
    );
    let until = tokio::time::Instant::now() + args.watch_for;
    let mut history: Vec<bool> = Vec::new();
    let (mut kmp, mut meter66) = if mc66c {
        let meter = Mc66cMeter::new(
            link,
            args.port.clone(),
            Mc66cOptions {
                retries: 0,
                program: args.program,
                ..Mc66cOptions::default()
            },
        );
        (None, Some(meter))
    } else {
        (Some(Transceiver::new(link)), None)
    };
    let mut last_verdict: Option<Verdict> = None;
    let shutdown = tokio::signal::ctrl_c();
    tokio::pin!(shutdown);
    loop {
        let started = tokio::time::Instant::now();
        if started >= until {
            break;
        }
        let (ok, text) = tokio::select! {
            _ = &mut shutdown => break,
            r = attempt(&mut kmp, &mut meter66, timeouts(args)) => match r {
                Ok(x) => x,
                Err(v) => {
                    if live { println!(); }
                    let _ = print_verdict(&mut std::io::stdout(), &v);
                    return ExitCode::from(EXIT_FAILED);
                }
            },
        };
        if !ok.0 {
            last_verdict = ok.1;
        }
        history.push(ok.0);
        let n = history.len();
        let good = history.iter().filter(|x| **x).count();
        let recent: String = history
            .iter()
            .rev()
            .take(10)
            .rev()
            .map(|x| if *x { '#' } else { '.' })
            .collect();
        let line = format!(
            "#{n:<4} {text:<28} answered {good}/{n} ({}%)  last 10: {recent:<10}",
            good * 100 / n
        );
        if live {
            print!("\r{line}");
            let _ = std::io::stdout().flush();
        } else {
            println!("{line}");
        }
        let next = started + interval;
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep_until(next.min(until)) => {}
        }
    }
    if live {
        println!();
    }
    let n = history.len();
    let good = history.iter().filter(|x| **x).count();
    println!(
        "stopped: {good} of {n} requests answered ({}%)",
        (good * 100).checked_div(n).unwrap_or(0)
    );
    if good < n {
        if let Some(v) = last_verdict {
            let _ = print_verdict(&mut std::io::stdout(), &v);
        }
    }
    if n > 0 && good == n {
        ExitCode::from(EXIT_OK)
    } else {
        ExitCode::from(EXIT_FAILED)
    }
}

type WatchResult = ((bool, Option<Verdict>), String);

async fn attempt(
    kmp: &mut Option<Transceiver>,
    meter66: &mut Option<Mc66cMeter>,
    timeouts: Timeouts,
) -> Result<WatchResult, Verdict> {
    if let Some(tx) = kmp {
        let outcome = kmp_attempt(tx, timeouts)
            .await
            .map_err(|e| Verdict::from_link_error(&e))?;
        let ok = outcome.is_answered();
        let verdict = (!ok).then(|| outcome.verdict());
        return Ok(((ok, verdict), outcome.short()));
    }
    if let Some(meter) = meter66 {
        return Ok(match mc66c_attempt(meter).await {
            Ok(()) => ((true, None), "ok".to_string()),
            Err(v @ (Verdict::Disconnected | Verdict::Other { .. })) => return Err(v),
            Err(v) => {
                let text = v.kind().to_string();
                ((false, Some(v)), text)
            }
        });
    }
    Err(Verdict::Other {
        message: "no link".to_string(),
    })
}
