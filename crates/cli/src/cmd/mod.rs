//! One module per subcommand; each parses nothing itself (clap does) and returns an exit code.
//! Shared pieces: opening the port named by the user and resolving register names.

pub(crate) mod decode;
pub(crate) mod read;
pub(crate) mod scan;
pub(crate) mod simulate;

use std::process::ExitCode;
use std::time::Duration;

use kamstrup_kmp::registers;
use kamstrup_meter::{open_port, KmpMeter, KmpOptions, OpenError};
use kamstrup_optical::{LineSettings, PortSpec, Timeouts};

use crate::output::{fail, EXIT_FAILED, EXIT_USAGE};
use crate::{Format, PortArgs};

/// Opens the port and wraps it in a KMP driver, or reports why not.
pub(crate) async fn open_kmp(args: &PortArgs, format: Format) -> Result<KmpMeter, ExitCode> {
    let spec: PortSpec = args
        .port
        .parse()
        .map_err(|e: kamstrup_optical::LinkError| {
            fail(format, e.kind(), e.to_string(), EXIT_USAGE)
        })?;
    let settings = LineSettings {
        baud: args.baud,
        ..LineSettings::KMP
    };
    let link = open_port(&spec, settings, Duration::from_secs(5))
        .await
        .map_err(|e| match e {
            OpenError::Link(e) => fail(format, e.kind(), e.to_string(), EXIT_FAILED),
            OpenError::UnknownModel(e) => fail(format, "bad-port", e.to_string(), EXIT_USAGE),
        })?;
    let defaults = KmpOptions::default();
    let options = KmpOptions {
        destination: args.destination,
        timeouts: Timeouts {
            first_byte: args.timeout,
            overall: args.timeout + defaults.timeouts.overall,
            ..defaults.timeouts
        },
        ..defaults
    };
    Ok(KmpMeter::new(link, args.port.clone(), options))
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
