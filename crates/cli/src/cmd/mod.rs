//! One module per subcommand; each parses nothing itself (clap does) and returns an exit code.
//! Shared pieces: opening the port named by the user for the right protocol, resolving names.

pub(crate) mod addon;
pub(crate) mod check;
pub(crate) mod config_file;
pub(crate) mod decode;
pub(crate) mod decode_log;
pub(crate) mod demo;
pub(crate) mod doctor;
pub(crate) mod history;
pub(crate) mod log;
pub(crate) mod program_cache;
pub(crate) mod read;
pub(crate) mod run;
pub(crate) mod scan;
pub(crate) mod setup;
pub(crate) mod simulate;

use std::process::ExitCode;
use std::time::Duration;

use kamstrup_kmp::registers;
use kamstrup_meter::mc66c_driver::STANDARD_REGISTERS;
use kamstrup_meter::PortSpec;
use kamstrup_meter::{
    open_port, KmpMeter, KmpOptions, Mc66cMeter, Mc66cOptions, OpenError, Protocol, SimModel,
};
use kamstrup_optical::{LineSettings, Link, Timeouts};

use crate::output::{fail, EXIT_FAILED, EXIT_USAGE};
use crate::{Format, PortArgs, ProtocolArg};

/// A port opened for the protocol the user chose (or for finding out, with `auto`).
pub(crate) enum Opened {
    /// A KMP meter.
    Kmp(KmpMeter),
    /// A MULTICAL 66C.
    Mc66c(Mc66cMeter),
    /// Not known yet: try KMP, then the 66C.
    Auto(Box<dyn Link>),
}

/// The protocol to use: as given, else the simulated model's, else KMP.
fn protocol_for(args: &PortArgs, spec: &PortSpec) -> ProtocolArg {
    if let Some(p) = args.protocol {
        return p;
    }
    match spec {
        PortSpec::Sim { model } => match model.parse::<SimModel>().map(|m| m.protocol()) {
            Ok(Protocol::Mc66c) => ProtocolArg::Mc66c,
            _ => ProtocolArg::Kmp,
        },
        _ => ProtocolArg::Kmp,
    }
}

/// Opens the port named in `args` for the chosen protocol, or reports why not.
/// `default_retries` is the 66C's retry count unless `--retries` is given.
pub(crate) async fn open_meter(
    args: &PortArgs,
    format: Format,
    default_retries: u32,
    identify: bool,
) -> Result<Opened, ExitCode> {
    let spec: PortSpec = args
        .port
        .parse()
        .map_err(|e: kamstrup_optical::LinkError| {
            fail(format, e.kind(), e.to_string(), EXIT_USAGE)
        })?;
    let protocol = protocol_for(args, &spec);
    let settings = match protocol {
        ProtocolArg::Mc66c => LineSettings::MC66C_REQUEST,
        ProtocolArg::Kmp | ProtocolArg::Auto => LineSettings {
            baud: args.baud,
            ..LineSettings::KMP
        },
    };
    let link = open_port(&spec, settings, Duration::from_secs(5))
        .await
        .map_err(|e| match e {
            OpenError::Link(e) => fail(format, e.kind(), e.to_string(), EXIT_FAILED),
            OpenError::UnknownModel(e) => fail(format, "bad-port", e.to_string(), EXIT_USAGE),
        })?;
    Ok(match protocol {
        ProtocolArg::Kmp => Opened::Kmp(KmpMeter::new(link, args.port.clone(), kmp_options(args))),
        ProtocolArg::Mc66c => Opened::Mc66c(Mc66cMeter::new(
            link,
            args.port.clone(),
            mc66c_options(args, default_retries, identify),
        )),
        ProtocolArg::Auto => Opened::Auto(link),
    })
}

/// The 66C driver's options from the command line.
pub(crate) fn mc66c_options(args: &PortArgs, default_retries: u32, identify: bool) -> Mc66cOptions {
    Mc66cOptions {
        retries: args.retries.unwrap_or(default_retries),
        retry_interval: args.retry_interval,
        program: args.program,
        identify,
        ..Mc66cOptions::default()
    }
}

/// The KMP driver's options from the command line.
pub(crate) fn kmp_options(args: &PortArgs) -> KmpOptions {
    let defaults = KmpOptions::default();
    KmpOptions {
        destination: args.destination,
        timeouts: Timeouts {
            first_byte: args.timeout,
            overall: args.timeout + defaults.timeouts.overall,
            ..defaults.timeouts
        },
        ..defaults
    }
}

/// Like [`resolve_registers`], first matching the names of the 66C's `/#1` fields
/// (`peak_power`, `P.pwr` and the shared KMP names).
pub(crate) fn resolve_mc66c_registers(names: &[String]) -> Result<Vec<u16>, String> {
    let mut ids = Vec::new();
    for name in names {
        for part in name.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let known = STANDARD_REGISTERS.iter().find(|(_, _, n, short)| {
                n.eq_ignore_ascii_case(part) || short.eq_ignore_ascii_case(part)
            });
            let id = match known {
                Some(&(_, id, _, _)) => id,
                None => *resolve_registers(&[part.to_string()])?
                    .first()
                    .ok_or_else(|| format!("unknown register {part:?}"))?,
            };
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    Ok(ids)
}

/// Register names, short names or ids → ids. Unknown names are a usage error that lists hints.
pub(crate) fn resolve_registers(names: &[String]) -> Result<Vec<u16>, String> {
    let mut ids = Vec::with_capacity(names.len());
    for name in names {
        for part in name.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let id = match registers::lookup(part) {
                Some(info) => info.id,
                None => parse_register_number(part).ok_or_else(|| {
                    format!(
                        "unknown register {part:?}: use a name such as heat_energy, volume, t1, t2, power, \
                         flow, hours, info, a short name such as E1 or V1, or a numeric id (60, 0x3C); \
                         `kamstrup scan` lists what your meter answers"
                    )
                })?,
            };
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    Ok(ids)
}

fn parse_register_number(text: &str) -> Option<u16> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u16::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}
