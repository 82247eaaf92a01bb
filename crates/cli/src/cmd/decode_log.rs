//! The logger part of `kamstrup decode`: B8 LoggerReadOut, A0–A3, event status and SetClock
//! frames as JSON values and table lines (logger, record ids, timestamps, values, flags).

use kamstrup_kmp::registers;
use kamstrup_kmp::{
    LogRecord, LogReply, LogRequest, LogSelector, LoggerReply, LoggerRequest, MeterDateTime,
    RegisterId, Request, Response,
};
use kamstrup_meter::kmp_driver::register_value;
use serde_json::{json, Value};

use crate::output::write_table;

/// Command names of the logger CIDs.
pub(crate) fn command_name(cid: u8) -> Option<&'static str> {
    Some(match cid {
        0xB8 => "LoggerReadOut",
        0xA0 => "GetLogTimePresent",
        0xA1 => "GetLogLastPresent",
        0xA2 => "GetLogIDPresent",
        0xA3 => "GetLogTimePast",
        0x9B => "GetEventStatus",
        _ => return None,
    })
}

fn named(ids: &[RegisterId]) -> Value {
    ids.iter()
        .map(|id| {
            let name = registers::by_id(id.0)
                .map_or_else(|| format!("register_{}", id.0), |i| i.name.to_string());
            json!({"id": id.0, "name": name})
        })
        .collect()
}

fn id_list(ids: &[RegisterId]) -> String {
    ids.iter()
        .map(|i| i.0.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// JSON and a one-line summary of a logger request; `None` for other requests.
pub(crate) fn request(req: &Request) -> Option<(Value, String)> {
    Some(match req {
        Request::Logger(LoggerRequest::Config { logger }) => (
            json!({"sub": "configuration", "logger": logger.name()}),
            format!("configuration of the {} logger", logger.name()),
        ),
        Request::Logger(LoggerRequest::ById {
            logger,
            log_id,
            count,
            registers,
        }) => (
            json!({"sub": "by-id", "logger": logger.name(), "log_id": log_id, "count": count,
                   "registers": named(registers)}),
            format!(
                "{count} records of the {} logger from record {log_id} toward the past; registers {}",
                logger.name(),
                id_list(registers)
            ),
        ),
        Request::Logger(LoggerRequest::ByOffset {
            logger,
            offset,
            count,
            registers,
        }) => (
            json!({"sub": "by-offset", "logger": logger.name(), "offset": offset, "count": count,
                   "registers": named(registers)}),
            format!(
                "{count} records of the {} logger starting {} toward the past; registers {}",
                logger.name(),
                if *offset == 0xFFFF {
                    "at the oldest record".to_string()
                } else {
                    format!("{offset} before the newest")
                },
                id_list(registers)
            ),
        ),
        Request::Log(LogRequest {
            log,
            registers,
            records,
            max_len,
            selector,
        }) => {
            let (key, text) = match selector {
                LogSelector::TimePresent { time } => (
                    json!({"time": time.at.to_string()}),
                    format!("from {} ascending", time.at),
                ),
                LogSelector::LastPresent => (json!({}), "after the last-read mark".to_string()),
                LogSelector::IdPresent { record_id } => (
                    json!({"record_id": record_id}),
                    format!("from record {record_id:#06X} ascending"),
                ),
                LogSelector::TimePast { time, offset } => (
                    json!({"time": time.at.to_string(), "offset": offset}),
                    format!("at or before {} minus {offset}, descending", time.at),
                ),
            };
            let mut doc = json!({"log": log, "registers": named(registers), "records": records,
                                 "max_len": max_len});
            if let (Some(d), Some(k)) = (doc.as_object_mut(), key.as_object()) {
                d.extend(k.clone());
            }
            (
                doc,
                format!(
                    "log {log}: {records} records {text}, registers {}, at most {max_len} bytes",
                    id_list(registers)
                ),
            )
        }
        Request::SetClock(s) => (
            json!({"set_clock": s.at.to_string()}),
            format!("set the meter clock to {} (a write command)", s.at),
        ),
        _ => return None,
    })
}

fn record_json(r: &LogRecord) -> Value {
    let time = r.get(348).and_then(|v| MeterDateTime::from_record(v).ok());
    json!({
        "id": r.id,
        "meter_time": time.map(|t| t.standard.to_string()),
        "dst_offset_min": time.map(|t| t.dst_offset_min),
        "registers": r.values.iter().map(register_value).collect::<Vec<_>>(),
    })
}

fn print_records(records: &[LogRecord], out: &mut Vec<String>) {
    for r in records {
        let mut buf = Vec::new();
        let values: Vec<_> = r.values.iter().map(register_value).collect();
        let _ = write_table(&mut buf, &values);
        out.push(format!("record {}:", r.id));
        out.extend(
            String::from_utf8_lossy(&buf)
                .lines()
                .map(|l| format!("  {l}")),
        );
    }
}

/// JSON and table lines of a logger reply; `None` for other replies.
pub(crate) fn response(resp: &Response) -> Option<(Value, Vec<String>)> {
    let mut lines = Vec::new();
    let doc = match resp {
        Response::EventStatus(bytes) => {
            lines.push(format!(
                "event status {:02X} {:02X} {:02X} {:02X}{}",
                bytes[0],
                bytes[1],
                bytes[2],
                bytes[3],
                if bytes[2] & 1 != 0 {
                    " (the interval log has unread records)"
                } else {
                    ""
                }
            ));
            json!({"event_status": bytes})
        }
        Response::Logger(LoggerReply::Config(c)) => {
            lines.push(format!(
                "configuration of the {} logger: depth {} records, target dates {:02X}{:02X} / {:02X}{:02X}, {} registers: {}",
                c.logger.name(),
                c.depth,
                c.date1.1[0],
                c.date1.1[1],
                c.date2.1[0],
                c.date2.1[1],
                c.registers.len(),
                id_list(&c.registers)
            ));
            json!({"sub": "configuration", "logger": c.logger.name(), "depth": c.depth,
                   "date1": c.date1.1, "date2": c.date2.1, "registers": named(&c.registers)})
        }
        Response::Logger(LoggerReply::Records(r)) => {
            let flags = [
                (r.info.is_empty(), "empty"),
                (r.info.out_of_range(), "out of range"),
                (r.info.newest_included(), "newest included"),
                (r.info.oldest_included(), "oldest included (end of log)"),
            ]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, t)| *t)
            .collect::<Vec<_>>()
            .join(", ");
            lines.push(format!(
                "{} logger: {} records from id {} toward the past; newest in the logger {}; info {:#06X}{}",
                r.logger.name(),
                r.valid_records().len(),
                r.first_id,
                r.newest_id,
                r.info.0,
                if flags.is_empty() { String::new() } else { format!(" ({flags})") }
            ));
            if r.info.is_empty() {
                lines
                    .push("(the logger is empty: the placeholder record is not shown)".to_string());
            }
            print_records(r.valid_records(), &mut lines);
            json!({"sub": if r.by_id { "by-id" } else { "by-offset" }, "logger": r.logger.name(),
                   "first_id": r.first_id, "newest_id": r.newest_id,
                   "info": {"raw": r.info.0, "empty": r.info.is_empty(),
                            "out_of_range": r.info.out_of_range(),
                            "newest_included": r.info.newest_included(),
                            "oldest_included": r.info.oldest_included()},
                   "records": r.valid_records().iter().map(record_json).collect::<Vec<_>>()})
        }
        Response::Log(LogReply {
            log,
            records,
            last_record_id,
            newest_record_id,
            info,
            ..
        }) => {
            lines.push(format!(
                "log {log}: {} records; last in reply {}, newest in the log {}; info {:#04X}{}{}{}{}",
                records.len(),
                last_record_id.map_or("-".to_string(), |i| format!("{i:#06X}")),
                newest_record_id.map_or("-".to_string(), |i| format!("{i:#06X}")),
                info.0,
                if info.is_empty() { " (empty)" } else { "" },
                if info.out_of_range() { " (out of range)" } else { "" },
                if info.max_len_reached() { " (MaxL reached: more records follow)" } else { "" },
                if info.end_of_log() { " (end of log)" } else { "" },
            ));
            print_records(records, &mut lines);
            json!({"log": log, "last_record_id": last_record_id, "newest_record_id": newest_record_id,
                   "info": {"raw": info.0, "empty": info.is_empty(), "out_of_range": info.out_of_range(),
                            "max_len_reached": info.max_len_reached(), "end_of_log": info.end_of_log()},
                   "records": records.iter().map(record_json).collect::<Vec<_>>()})
        }
        _ => return None,
    };
    Some((doc, lines))
}
