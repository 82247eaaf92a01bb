//! `kamstrup decode`: turn captured KMP bytes (hex) into meaning — requests, replies, echoes —
//! or say exactly what is wrong (CRC, stuffing, missing stop byte) with a non-zero exit.

use std::process::ExitCode;

use clap::Args;
use kamstrup_kmp::decoder::{Decoder, Event};
use kamstrup_kmp::physical::{START_FROM_METER, START_TO_METER};
use kamstrup_kmp::registers;
use kamstrup_kmp::{Direction, Frame, Request, Response};
use kamstrup_meter::kmp_driver::register_value;
use kamstrup_meter::RegisterValue;
use serde::Serialize;

use crate::output::{fail, write_table, EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::Format;

pub(crate) const HELP: &str = "\
Give the bytes as hex, with or without spaces (as --trace-frames or a logic analyser shows
them). Several frames in a row are fine, e.g. an echoed request followed by the reply. Each
frame is checked completely: start and stop byte, byte stuffing, CRC-16, then the command.

Exit status: 0 every frame decoded; 1 a frame is corrupt (error.kind: crc, stuffing,
truncated, framing, protocol, value); 2 the input is not hex.

Examples:
  kamstrup decode 80 3F 10 01 00 3C B2 5F 0D
  kamstrup decode 403F1000592604C2000000396BBC0D --format json
  kamstrup decode 403F0201234567E9570D            (CRC error: says expected and actual)";

/// Arguments of `decode`.
#[derive(Args, Debug)]
pub(crate) struct DecodeArgs {
    /// Frame bytes in hex; spaces, colons and 0x prefixes are ignored.
    #[arg(required = true, value_name = "HEX")]
    hex: Vec<String>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Serialize)]
#[serde(tag = "frame", rename_all = "snake_case")]
enum Decoded {
    Request {
        destination: u8,
        command: &'static str,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        registers: Vec<RequestedRegister>,
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
    if let Some(bad) = digits.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!("{bad:?} is not a hex digit"));
    }
    if digits.len() % 2 != 0 {
        return Err(format!(
            "odd number of hex digits ({}): a byte is two digits",
            digits.len()
        ));
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            digits
                .get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| "bad hex".to_string())
        })
        .collect()
}

fn command_name(cid: u8) -> &'static str {
    match cid {
        kamstrup_kmp::cid::GET_TYPE => "GetType",
        kamstrup_kmp::cid::GET_SERIAL_NO => "GetSerialNo",
        kamstrup_kmp::cid::SET_CLOCK => "SetClock",
        kamstrup_kmp::cid::GET_REGISTER => "GetRegister",
        kamstrup_kmp::cid::PUT_REGISTER => "PutRegister",
        _ => "unknown",
    }
}

fn describe(frame: &Frame) -> Result<Decoded, kamstrup_kmp::Error> {
    let command = command_name(frame.cid);
    Ok(match frame.direction {
        Direction::ToMeter => {
            let registers = match Request::from_frame(frame)? {
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
            }
        }
        Direction::FromMeter => {
            let (mut serial, mut meter_type, mut regs) = (None, None, Vec::new());
            match Response::from_frame(frame)? {
                Response::SerialNo(s) => serial = Some(s),
                Response::Type(t) => {
                    meter_type = Some(format!(
                        "type 0x{:04X}, software revision {}",
                        t.type_code, t.revision
                    ))
                }
                Response::Registers(records) => regs = records.iter().map(register_value).collect(),
                Response::Ack => return Ok(Decoded::Ack),
            }
            Decoded::Response {
                destination: frame.destination,
                command,
                serial,
                meter_type,
                registers: regs,
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
                registers,
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
            } => {
                println!("response from 0x{destination:02X}: {command}");
                if let Some(s) = serial {
                    println!("serial number {s}");
                }
                if let Some(t) = meter_type {
                    println!("{t}");
                }
                if !registers.is_empty() {
                    let _ = write_table(&mut std::io::stdout().lock(), registers);
                } else if *command == "GetRegister" {
                    println!("(no registers: the meter knew none of the asked ids)");
                }
            }
        }
    }
}

pub(crate) fn run(args: DecodeArgs) -> ExitCode {
    let format = args.format;
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
