//! `kamstrup decode`: turn captured KMP bytes (hex) or MULTICAL 66C replies (escaped text) into
//! meaning, or say exactly what is wrong (CRC, stuffing, a garbled field) with a non-zero exit.

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use kamstrup_kmp::decoder::{Decoder, Event};
use kamstrup_kmp::physical::{START_FROM_METER, START_TO_METER};
use kamstrup_kmp::registers;
use kamstrup_kmp::{Direction, Frame, Request, Response};
use kamstrup_mc66c::{
    unescape, EnergyUnit, ProgramNumber, Provenance, Reply, Request as Mc66cRequest, Resolution,
    Scaling,
};
use kamstrup_meter::kmp_driver::register_value;
use kamstrup_meter::mc66c_driver::{
    readout_fields, reply_fields, standard_registers, DataField, ReadoutReply,
};
use kamstrup_meter::RegisterValue;
use serde::Serialize;

use crate::output::{fail, write_fields, write_table, EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::Format;

pub(crate) const HELP: &str = "\
Give the bytes as hex, with or without spaces (as --trace-frames or a logic analyser shows
them). Several frames in a row are fine, e.g. an echoed request followed by the reply. Each
frame is checked completely: start and stop byte, byte stuffing, CRC-16, then the command.

MULTICAL 66C (--protocol mc66c): give the reply as text with C-style escapes — \\r, \\n, \\xNN
(and \\x5c for a backslash), the form of the vectors file and of the driver's error messages —
and say which request it answers with --request (default /#1; /#2 … /#9, /#B, /#C, /#D, /#J,
or /?! for the EN 61107 readout). Several arguments are joined with one space. The reply is
parsed strictly (exact field count and widths, T1 − T2 = ΔT) and rejected, never salvaged.
Decimals come from --program A-B-CCC, else from the reply itself (/#2, /#D), else the CCC-119
family in GJ is assumed with a loud warning.

Exit status: 0 every frame decoded; 1 a frame is corrupt (error.kind: crc, stuffing,
truncated, framing, protocol, value; 66C: fields, field-format, garbage-prefix, dt-mismatch,
truncated, bcc, …); 2 the input is not hex (66C: a bad escape, request or program number).

Examples:
  kamstrup decode 80 3F 10 01 00 3C B2 5F 0D
  kamstrup decode 403F1000592604C2000000396BBC0D --format json
  kamstrup decode 403F0201234567E9570D            (CRC error: says expected and actual)
  kamstrup decode --protocol mc66c --program 4-4-119 '0507109 1296626 0032673 0006811 0003366 0003445 0000031 0000079 0000093 0000000 \\r'
  kamstrup decode --protocol mc66c --request /#2 '00000060017 0000000 0000000 0000000 0000000 0000000 0000000 0044119 1200000 0171028 \\r'
  kamstrup decode --protocol mc66c '\\x27n\\x5c950 7322794 0165771 0005641 0005298 0000343 0000000 0000007 0000070 0000000 \\r'
      (rejected: the start of the line was garbled by a late switch to 1200 Bd)";

/// Arguments of `decode`.
#[derive(Args, Debug)]
pub(crate) struct DecodeArgs {
    /// KMP: frame bytes in hex (spaces, colons and 0x prefixes are ignored). MULTICAL 66C: the
    /// reply as escaped text (\r, \n, \xNN); after `--` if it starts with `-`.
    #[arg(required = true, value_name = "HEX|TEXT")]
    hex: Vec<String>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    format: Format,

    /// The protocol of the captured bytes.
    #[arg(long, value_enum, default_value_t = DecodeProtocol::Kmp)]
    protocol: DecodeProtocol,

    /// MULTICAL 66C: the request the reply answers (/#1 … /#9, /#B, /#C, /#D, /#J, /?!).
    #[arg(long, value_name = "REQUEST")]
    request: Option<String>,

    /// MULTICAL 66C: the meter's program number A-B-CCC (sets the decimals and energy unit).
    #[arg(long, value_name = "A-B-CCC", value_parser = crate::parse_program)]
    program: Option<ProgramNumber>,
}

/// `--protocol` of `decode`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DecodeProtocol {
    /// KMP frames in hex.
    Kmp,
    /// A MULTICAL 66C reply as escaped text.
    Mc66c,
}

#[derive(Serialize)]
#[serde(tag = "frame", rename_all = "snake_case")]
enum Decoded {
    Request {
        destination: u8,
        command: &'static str,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        registers: Vec<RequestedRegister>,
        /// Logger commands (B8, A0–A3, SetClock): see `decode_log`.
        #[serde(skip_serializing_if = "Option::is_none")]
        logger: Option<serde_json::Value>,
        #[serde(skip)]
        summary: Option<String>,
    },
    Response {
        destination: u8,
        command: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        serial: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        meter_type: Option<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        registers: Vec<RegisterValue>,
        /// Logger replies (B8, A0–A3, event status): see `decode_log`.
        #[serde(skip_serializing_if = "Option::is_none")]
        logger: Option<serde_json::Value>,
        #[serde(skip)]
        lines: Vec<String>,
    },
    Ack,
}

#[derive(Serialize)]
struct RequestedRegister {
    id: u16,
    name: String,
}

fn parse_hex(parts: &[String]) -> Result<Vec<u8>, String> {
    let mut digits = String::new();
    for part in parts {
        for token in part.split([' ', ':', ',', '\t', '\n']) {
            let token = token
                .strip_prefix("0x")
                .or_else(|| token.strip_prefix("0X"))
                .unwrap_or(token);
            digits.push_str(token);
        }
    }
    hex::decode(&digits).map_err(|e| match e {
        hex::FromHexError::InvalidHexCharacter { c, .. } => format!("{c:?} is not a hex digit"),
        hex::FromHexError::OddLength => format!(
            "odd number of hex digits ({}): a byte is two digits",
            digits.len()
        ),
        other => other.to_string(),
    })
}

fn command_name(cid: u8) -> &'static str {
    match cid {
        kamstrup_kmp::cid::GET_TYPE => "GetType",
        kamstrup_kmp::cid::GET_SERIAL_NO => "GetSerialNo",
        kamstrup_kmp::cid::SET_CLOCK => "SetClock",
        kamstrup_kmp::cid::GET_REGISTER => "GetRegister",
        kamstrup_kmp::cid::PUT_REGISTER => "PutRegister",
        other => super::decode_log::command_name(other).unwrap_or("unknown"),
    }
}

fn describe(frame: &Frame) -> Result<Decoded, kamstrup_kmp::Error> {
    let command = command_name(frame.cid);
    Ok(match frame.direction {
        Direction::ToMeter => {
            let request = Request::from_frame(frame)?;
            let (logger, summary) = super::decode_log::request(&request).unzip();
            let registers = match request {
                Request::GetRegister(ids) => ids
                    .iter()
                    .map(|id| RequestedRegister {
                        id: id.0,
                        name: registers::by_id(id.0)
                            .map_or_else(|| format!("register_{}", id.0), |i| i.name.to_string()),
                    })
                    .collect(),
                _ => Vec::new(),
            };
            Decoded::Request {
                destination: frame.destination,
                command,
                registers,
                logger,
                summary,
            }
        }
        Direction::FromMeter => {
            let (mut serial, mut meter_type, mut regs) = (None, None, Vec::new());
            let response = Response::from_frame(frame)?;
            let (logger, lines) = super::decode_log::response(&response).unzip();
            match response {
                Response::SerialNo(s) => serial = Some(s),
                Response::Type(t) => {
                    meter_type = Some(format!(
                        "type 0x{:04X}, software revision {}",
                        t.type_code, t.revision
                    ))
                }
                Response::Registers(records) => regs = records.iter().map(register_value).collect(),
                Response::Ack => return Ok(Decoded::Ack),
                Response::EventStatus(_) | Response::Logger(_) | Response::Log(_) => {}
            }
            Decoded::Response {
                destination: frame.destination,
                command,
                serial,
                meter_type,
                registers: regs,
                logger,
                lines: lines.unwrap_or_default(),
            }
        }
    })
}

fn print_table(items: &[Decoded]) {
    for item in items {
        match item {
            Decoded::Ack => println!("ACK (0x06): the meter accepted the command"),
            Decoded::Request {
                destination,
                command,
                summary: Some(summary),
                ..
            } => println!("request to 0x{destination:02X}: {command}: {summary}"),
            Decoded::Request {
                destination,
                command,
                registers,
                ..
            } => {
                let regs: Vec<String> = registers
                    .iter()
                    .map(|r| format!("{} ({})", r.id, r.name))
                    .collect();
                let line = format!(
                    "request to 0x{destination:02X}: {command} {}",
                    regs.join(", ")
                );
                println!("{}", line.trim_end());
            }
            Decoded::Response {
                destination,
                command,
                serial,
                meter_type,
                registers,
                lines,
                ..
            } => {
                println!("response from 0x{destination:02X}: {command}");
                for line in lines {
                    println!("{line}");
                }
                if let Some(s) = serial {
                    println!("serial number {s}");
                }
                if let Some(t) = meter_type {
                    println!("{t}");
                }
                if !registers.is_empty() {
                    let _ = write_table(&mut std::io::stdout().lock(), registers);
                } else if *command == "GetRegister" && lines.is_empty() {
                    println!("(no registers: the meter knew none of the asked ids)");
                }
            }
        }
    }
}

pub(crate) fn run(args: DecodeArgs) -> ExitCode {
    if args.protocol == DecodeProtocol::Mc66c {
        return run_mc66c(&args);
    }
    let format = args.format;
    if args.request.is_some() || args.program.is_some() {
        return fail(
            format,
            "usage",
            "--request and --program belong to --protocol mc66c",
            EXIT_USAGE,
        );
    }
    let bytes = match parse_hex(&args.hex) {
        Ok(b) if !b.is_empty() => b,
        Ok(_) => return fail(format, "bad-hex", "no bytes given", EXIT_USAGE),
        Err(e) => return fail(format, "bad-hex", e, EXIT_USAGE),
    };
    let mut decoder = Decoder::new(Direction::FromMeter);
    let mut decoded = Vec::new();
    let mut end_of_last = 0usize;
    for (i, &byte) in bytes.iter().enumerate() {
        let event = match decoder.feed(byte) {
            None => continue,
            Some(Ok(event)) => event,
            Some(Err(e)) => {
                return fail(
                    format,
                    e.kind(),
                    format!("frame ending at byte {}: {e}", i + 1),
                    EXIT_FAILED,
                );
            }
        };
        end_of_last = i + 1;
        let item = match event {
            Event::Ack => Ok(Decoded::Ack),
            Event::Frame(frame) | Event::Echo(frame) => describe(&frame),
        };
        match item {
            Ok(item) => decoded.push(item),
            Err(e) => return fail(format, e.kind(), e.to_string(), EXIT_FAILED),
        }
    }
    let rest = bytes.get(end_of_last..).unwrap_or_default();
    if !rest.is_empty() {
        let message = if rest
            .iter()
            .any(|&b| b == START_TO_METER || b == START_FROM_METER)
        {
            format!(
                "the last frame has no stop byte 0x0D ({} bytes after the last complete frame)",
                rest.len()
            )
        } else if decoded.is_empty() {
            "no start byte found: a KMP frame starts with 0x80 (request) or 0x40 (reply)"
                .to_string()
        } else {
            format!(
                "{} trailing bytes after the last frame are not a frame",
                rest.len()
            )
        };
        let kind = if decoded.is_empty()
            && !rest.contains(&START_TO_METER)
            && !rest.contains(&START_FROM_METER)
        {
            "framing"
        } else {
            "truncated"
        };
        return fail(format, kind, message, EXIT_FAILED);
    }
    if format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&decoded).unwrap_or_default()
        );
    } else {
        print_table(&decoded);
    }
    ExitCode::from(EXIT_OK)
}

/// The decoded 66C reply, as printed with `--format json`.
#[derive(Serialize)]
struct Mc66cDecoded {
    protocol: &'static str,
    request: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    program: Option<String>,
    scaling: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    registers: Vec<RegisterValue>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fields: Vec<DataField>,
}

/// The scaling for a decoded reply: `--program`, else the reply's own program number, else a
/// loudly flagged CCC-119 guess in GJ.
fn decode_scaling(
    given: Option<ProgramNumber>,
    reply: &Reply,
) -> Result<(Scaling, Option<ProgramNumber>, &'static str), kamstrup_mc66c::Error> {
    let (program, origin) = match (given, reply.program()) {
        (Some(p), _) => (p, "given"),
        (None, Some(p)) => (p, "from the reply"),
        (None, None) => {
            tracing::warn!("!!! no --program: decimals and energy unit ASSUMED (CCC-119 family, GJ); give --program A-B-CCC from the meter's /#2 or label !!!");
            return Ok((
                Scaling::ccc119_fallback(EnergyUnit::GJ),
                None,
                "assumed (CCC-119 family, GJ)",
            ));
        }
    };
    match Scaling::resolve(&program)? {
        Resolution::Known(s) => Ok((s, Some(program), origin)),
        Resolution::UnknownCcc { ccc, energy_unit } => {
            tracing::warn!("!!! flow-meter code CCC {ccc:03} is not in the table: ASSUMING the CCC-119 family !!!");
            let s = Scaling::ccc119_fallback(energy_unit);
            debug_assert_eq!(s.provenance, Provenance::Fallback);
            Ok((s, Some(program), "assumed (CCC-119 family)"))
        }
    }
}

fn run_mc66c(args: &DecodeArgs) -> ExitCode {
    let format = args.format;
    let text = args.hex.join(" ");
    let bytes = match unescape(&text) {
        Ok(b) => b,
        Err(e) => {
            return fail(
                format,
                e.kind(),
                format!("{e}: write the reply as in the vectors file (\\r, \\n, \\xNN)"),
                EXIT_USAGE,
            )
        }
    };
    let request: Mc66cRequest = match args.request.as_deref().unwrap_or("/#1").parse() {
        Ok(r) => r,
        Err(e) => return fail(format, e.kind(), e.to_string(), EXIT_USAGE),
    };
    let mut doc = Mc66cDecoded {
        protocol: "mc66c",
        request: request.to_string(),
        program: None,
        scaling: "not needed",
        registers: Vec::new(),
        fields: Vec::new(),
    };
    match request {
        Mc66cRequest::Readout => match ReadoutReply::parse(&bytes) {
            Ok(r) => {
                doc.scaling = "in the readout";
                doc.fields = readout_fields(&r);
            }
            Err(e) => return fail(format, e.kind(), format!("{request}: {e}"), EXIT_FAILED),
        },
        Mc66cRequest::Data(data_set) => {
            let reply = match Reply::parse(data_set, &bytes) {
                Ok(r) => r,
                Err(e) => return fail(format, e.kind(), format!("{request}: {e}"), EXIT_FAILED),
            };
            let (scaling, program, origin) = match decode_scaling(args.program, &reply) {
                Ok(s) => s,
                Err(e) => return fail(format, e.kind(), e.to_string(), EXIT_USAGE),
            };
            doc.program = program.map(|p| p.to_string());
            doc.scaling = origin;
            let converted = match &reply {
                Reply::Standard1(d) => standard_registers(d, &scaling).map(|r| doc.registers = r),
                other => reply_fields(other, &scaling).map(|f| doc.fields = f),
            };
            if let Err(e) = converted {
                return fail(format, e.kind(), format!("{request}: {e}"), EXIT_FAILED);
            }
        }
    }
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        let program = doc
            .program
            .as_deref()
            .map(|p| format!(", program {p}"))
            .unwrap_or_default();
        println!(
            "MULTICAL 66C reply to {}{program} (scaling {})",
            doc.request, doc.scaling
        );
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        let written = if doc.registers.is_empty() {
            write_fields(&mut out, &doc.fields)
        } else {
            write_table(&mut out, &doc.registers)
        };
        if let Err(e) = written {
            eprintln!("error: cannot write output: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    }
    ExitCode::from(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::parse_hex;

    #[test]
    fn hex_forms() {
        let want = vec![0x80, 0x3F, 0x01, 0x05, 0x8A, 0x0D];
        assert_eq!(parse_hex(&["803F01058A0D".into()]).unwrap(), want);
        assert_eq!(
            parse_hex(&["80 3F 01".into(), "05 8A 0D".into()]).unwrap(),
            want
        );
        assert_eq!(parse_hex(&["0x80:0x3F:01:05:8a:0d".into()]).unwrap(), want);
        assert!(parse_hex(&["803".into()]).is_err());
        assert!(parse_hex(&["80zz".into()]).is_err());
    }
}
