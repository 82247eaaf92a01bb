//! The kamstrup TOML config: raw serde structs → a validated [`Config`] whose every error names
//! `file:line:column` and how to fix it. Reads no files or environment itself: callers pass those.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod locate;
mod raw;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use chrono::NaiveTime;
use kamstrup_daemon::{
    Backfill, DaemonConfig, MeterSettings, Plausibility, ProtocolChoice, Schedule,
};
use kamstrup_kmp::registers;
use kamstrup_meter::PortSpec;
use kamstrup_sinks::PathPart;
use toml::Spanned;

pub use raw::RawConfig;

/// A fully commented example configuration (shipped in the repo as `kamstrup.example.toml`).
pub const EXAMPLE: &str = include_str!("../../../kamstrup.example.toml");

/// Default poll interval: often enough to keep a MULTICAL 40x IR port awake, rare enough for the battery.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// Where the web dashboard listens unless told otherwise: loopback only.
pub const DEFAULT_WEB_LISTEN: &str = "127.0.0.1:8080";

/// One thing wrong with a config file, located.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct ConfigError {
    /// The file as the user named it.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong and what to do.
    pub message: String,
}

/// The validated configuration.
#[derive(Debug)]
pub struct Config {
    /// What the daemon runs.
    pub daemon: DaemonConfig,
    /// Dashboard/metrics address, when the web server is on.
    pub web_listen: Option<SocketAddr>,
    /// Which clients the dashboard answers (`[web] allow`).
    pub web_access: kamstrup_web::Access,
    /// Sink sections, ready for `kamstrup_sinks::build` (which resolves their secrets).
    pub sinks: kamstrup_sinks::SinksConfig,
}

struct Locator<'a> {
    file: &'a str,
    text: &'a str,
}

impl Locator<'_> {
    fn at(&self, offset: usize, message: impl Into<String>) -> ConfigError {
        let before = self.text.get(..offset.min(self.text.len())).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ConfigError {
            file: self.file.to_string(),
            line,
            column,
            message: message.into(),
        }
    }

    fn span<T>(&self, value: &Spanned<T>, message: impl Into<String>) -> ConfigError {
        self.at(value.span().start, message)
    }
}

/// Parses and validates config text. `file` is how errors name it; a relative storage path is
/// resolved against `base_dir` (the config file's folder).
pub fn parse(text: &str, file: &str, base_dir: &Path) -> Result<Config, Vec<ConfigError>> {
    let loc = Locator { file, text };
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        let message = e.message().replace('\n', " ");
        vec![loc.at(offset, hint_for_toml_error(&message))]
    })?;
    let mut errors = Vec::new();

    let store_path = match &raw.storage.as_ref().and_then(|s| s.path.clone()) {
        Some(p) => base_dir.join(p.get_ref()),
        None => base_dir.join("kamstrup.db"),
    };
    let retention = match raw.storage.as_ref().and_then(|s| s.retention.as_ref()) {
        Some(r) => match parse_duration(r.get_ref()) {
            Ok(d) => Some(d),
            Err(e) => {
                errors.push(loc.span(r, format!("retention {e}")));
                None
            }
        },
        None => None,
    };

    let web_listen = match &raw.web {
        Some(web) if web.enabled.unwrap_or(true) => {
            let text = web
                .listen
                .as_ref()
                .map_or(DEFAULT_WEB_LISTEN, |l| l.get_ref().as_str());
            match text.parse::<SocketAddr>() {
                Ok(addr) => Some(addr),
                Err(_) => {
                    let at = web.listen.as_ref().map_or(0, |l| l.span().start);
                    errors.push(loc.at(
                        at,
                        format!("web.listen {text:?} is not an address: write e.g. \"127.0.0.1:8080\" (use 0.0.0.0 only if the dashboard may be seen from your network)"),
                    ));
                    None
                }
            }
        }
        _ => None,
    };

    let web_access = {
        let mut allow = Vec::new();
        if let Some(list) = raw.web.as_ref().and_then(|w| w.allow.as_ref()) {
            if list.get_ref().is_empty() {
                errors.push(loc.span(
                    list,
                    "web.allow is empty, which would lock everyone out: list the addresses that may use the dashboard, or remove the key to allow everyone who reaches web.listen",
                ));
            }
            for entry in list.get_ref() {
                match kamstrup_web::Access::parse_entry(entry.get_ref()) {
                    Ok(net) => allow.push(net),
                    Err(e) => errors.push(loc.span(entry, format!("web.allow: {e}"))),
                }
            }
        }
        kamstrup_web::Access::only(allow)
    };

    let plausibility = {
        let defaults = Plausibility::default();
        let p = raw.plausibility.as_ref();
        let mut checked = |v: Option<&Spanned<f64>>, default: f64, what: &str| match v {
            Some(v) if !(v.get_ref().is_finite() && *v.get_ref() > 0.0) => {
                errors.push(loc.span(v, format!("plausibility.{what} must be a positive number")));
                default
            }
            Some(v) => *v.get_ref(),
            None => default,
        };
        Plausibility {
            max_power_kw: checked(
                p.and_then(|p| p.max_power_kw.as_ref()),
                defaults.max_power_kw,
                "max_power_kw",
            ),
            max_flow_m3h: checked(
                p.and_then(|p| p.max_flow_m3h.as_ref()),
                defaults.max_flow_m3h,
                "max_flow_m3h",
            ),
        }
    };

    if raw.meters.is_empty() {
        errors.push(loc.at(
            text.len(),
            "no [[meter]] section: add one with at least `name` and `port` (see kamstrup.example.toml)",
        ));
    }
    let mut meters = Vec::new();
    for m in &raw.meters {
        match validate_meter(&loc, m) {
            Ok(meter) => {
                if meters.iter().any(|x: &MeterSettings| x.name == meter.name) {
                    errors.push(loc.span(
                        &m.name,
                        format!(
                            "meter name {:?} is used twice; names must be unique",
                            meter.name
                        ),
                    ));
                }
                meters.push(meter);
            }
            Err(mut e) => errors.append(&mut e),
        }
    }

    check_rest_beside_discovery(&loc, &raw, &meters, &mut errors);
    let mut sinks = kamstrup_sinks::SinksConfig {
        mqtt: raw.mqtt,
        homeassistant: raw.homeassistant,
        homeassistant_rest: raw.homeassistant_rest,
        mqtt_json: raw.mqtt_json,
        domoticz: raw.domoticz,
        influxdb: raw.influxdb,
        file: raw.file,
    };
    // The sinks' own rules, located; the meter names only when every meter section was valid
    // (otherwise a mapping would be blamed for a meter whose section has the mistake).
    let meter_names: Vec<String> = meters.iter().map(|m| m.name.clone()).collect();
    let names = kamstrup_sinks::Names {
        register: &register_name,
        meters: (meters.len() == raw.meters.len()).then_some(meter_names.as_slice()),
    };
    for problem in sinks.validate(&names) {
        let at = locate::locate(text, &problem.path).unwrap_or(0);
        errors.push(loc.at(at, problem.to_string()));
    }
    // Relative paths in the file are relative to the file, wherever the daemon was started from.
    if let Some(f) = sinks.file.as_mut() {
        if f.path != Path::new("-") && f.path.is_relative() {
            f.path = base_dir.join(&f.path);
        }
    }
    errors.sort_by_key(|e| (e.line, e.column));

    match (errors.is_empty(), sinks) {
        (true, sinks) => Ok(Config {
            daemon: DaemonConfig {
                store_path,
                retention,
                meters,
                plausibility,
                retry_scale: 1.0,
            },
            web_listen,
            web_access,
            sinks,
        }),
        _ => Err(errors),
    }
}

/// With both `[homeassistant]` and `[homeassistant_rest]` on, a REST `entity_id` in the id space
/// of discovered entities would give HA two writers for one entity (or a `_2` suffix on the
/// discovered one): refuse it where it is written.
fn check_rest_beside_discovery(
    loc: &Locator<'_>,
    raw: &RawConfig,
    meters: &[MeterSettings],
    errors: &mut Vec<ConfigError>,
) {
    let discovery_on = raw.homeassistant.as_ref().is_some_and(|h| h.enabled);
    let Some(rest) = raw.homeassistant_rest.as_ref().filter(|r| r.enabled) else {
        return;
    };
    if !discovery_on {
        return;
    }
    for (i, e) in rest.entities.iter().enumerate() {
        let Some(id) = &e.entity_id else { continue };
        let Some(meter) = meters
            .iter()
            .find(|m| kamstrup_sinks::homeassistant::claims_entity_id(&m.name, id))
        else {
            continue;
        };
        let path = [
            PathPart::Key("homeassistant_rest".into()),
            PathPart::Key("entities".into()),
            PathPart::Index(i),
            PathPart::Key("entity_id".into()),
        ];
        let at = locate::locate(loc.text, &path).unwrap_or(0);
        let register = e.register.as_str();
        errors.push(loc.at(
            at,
            format!(
                "homeassistant_rest entity_id {id:?} is the id MQTT discovery ([homeassistant]) uses for meter {:?}: HA would get two writers for one entity. Leave entity_id out (the REST sink then posts to {:?}) or pick another id such as \"sensor.{}_{}\"",
                meter.name,
                kamstrup_sinks::homeassistant_rest::default_entity_id(&meter.name, register),
                meter.name.replace('-', "_").to_lowercase(),
                register,
            ),
        ));
    }
}

/// Whether sink mappings may name `name`: what readings carry — catalogue names, the 66C's
/// `/#1` names, `register_<id>` for uncatalogued ids, and the daemon's derived usage names.
fn register_name(name: &str) -> Result<(), String> {
    let derived = kamstrup_daemon::poller::USAGE_COUNTERS.iter().any(|c| {
        kamstrup_daemon::poller::USAGE_PERIODS
            .iter()
            .any(|p| name.strip_prefix(c).and_then(|r| r.strip_prefix('_')) == Some(p))
    });
    let known = registers::CATALOGUE.iter().any(|r| r.name == name)
        || kamstrup_meter::mc66c_registers::STANDARD_REGISTERS
            .iter()
            .any(|r| r.2 == name)
        || name
            .strip_prefix("register_")
            .is_some_and(|id| id.parse::<u16>().is_ok())
        || derived;
    if known {
        return Ok(());
    }
    Err(match registers::lookup(name) {
        // A short name, id or other spelling of a catalogued register: readings carry its name.
        Some(info) => format!(
            "register {name:?}: readings name this register {:?}; write that",
            info.name
        ),
        None => format!(
            "unknown register {name:?}: use a register name such as heat_energy, volume, t1, t2, t1_t2, power, flow, hours, info, or heat_energy_today/_month/_year (`kamstrup scan` lists what your meter has)"
        ),
    })
}

fn hint_for_toml_error(message: &str) -> String {
    if message.contains("unknown field `republish_delay_ms`") {
        format!("{message}: republish_delay_ms is the old form; write republish_delay = \"1s\" (durations are text with a unit, e.g. \"500ms\")")
    } else if message.contains("unknown field") {
        format!("{message} (check the spelling; kamstrup.example.toml lists every key)")
    } else {
        message.to_string()
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim()).map_err(|_| {
        format!("{text:?} is not a duration: write e.g. \"15m\", \"1h\", \"90s\", \"10y\"")
    })?;
    if d.is_zero() {
        return Err(format!("{text:?} must be longer than zero"));
    }
    Ok(d)
}

/// `+01:00` → 60; `-05:30` → -330.
fn parse_zone(text: &str) -> Option<i32> {
    let t = text.trim();
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'+') => (1, t.get(1..)?),
        Some(b'-') => (-1, t.get(1..)?),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 14 && (0..60).contains(&m) && h >= 0).then_some(sign * (h * 60 + m))
}

fn validate_meter(loc: &Locator<'_>, m: &raw::RawMeter) -> Result<MeterSettings, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let name = m.name.get_ref().trim().to_string();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        errors.push(loc.span(
            &m.name,
            "meter name must be letters, digits, '-' or '_' (it is used in topics and URLs)",
        ));
    }
    let port: Option<PortSpec> = match m.port.get_ref().parse() {
        Ok(p) => Some(p),
        Err(e) => {
            errors.push(loc.span(&m.port, format!("port: {e}")));
            None
        }
    };
    let simulated_66c =
        matches!(&port, Some(PortSpec::Sim { model }) if model.starts_with("multical-66c"));
    let protocol = match m.protocol.as_ref().map(|p| p.get_ref().as_str()) {
        None if simulated_66c => ProtocolChoice::Mc66c,
        None | Some("kmp") => ProtocolChoice::Kmp,
        Some("mc66c") => ProtocolChoice::Mc66c,
        Some("auto") => ProtocolChoice::Auto,
        Some(other) => {
            if let Some(p) = &m.protocol {
                errors.push(loc.span(
                    p,
                    format!("protocol {other:?} is not one of \"kmp\", \"mc66c\", \"auto\""),
                ));
            }
            ProtocolChoice::Kmp
        }
    };
    let logger_mode = match m.mode.as_ref().map(|x| x.get_ref().as_str()) {
        None | Some("poll") => false,
        Some("logger") => true,
        Some(other) => {
            if let Some(x) = &m.mode {
                errors.push(loc.span(
                    x,
                    format!("mode {other:?} is not one of \"poll\", \"logger\""),
                ));
            }
            false
        }
    };
    let schedule = match (&m.interval, &m.at) {
        _ if logger_mode => None,
        (Some(i), Some(_)) => {
            errors.push(loc.span(i, "give either `interval` or `at`, not both"));
            None
        }
        (Some(i), None) => match parse_duration(i.get_ref()) {
            Ok(d) if d < Duration::from_millis(100) => {
                errors.push(loc.span(i, "interval must be at least 100ms"));
                None
            }
            Ok(d) => Some(Schedule::Every(d)),
            Err(e) => {
                errors.push(loc.span(i, format!("interval {e}")));
                None
            }
        },
        (None, Some(at)) => {
            let mut times = Vec::new();
            for t in at.get_ref() {
                match NaiveTime::parse_from_str(t.get_ref().trim(), "%H:%M") {
                    Ok(time) => times.push(time),
                    Err(_) => errors.push(loc.span(
                        t,
                        format!(
                            "{:?} is not a time of day: write \"HH:MM\", e.g. \"00:00\"",
                            t.get_ref()
                        ),
                    )),
                }
            }
            if at.get_ref().is_empty() {
                errors.push(loc.span(at, "`at` needs at least one time, e.g. at = [\"00:00\"]"));
            }
            times.sort();
            times.dedup();
            Some(Schedule::At(times))
        }
        (None, None) => Some(Schedule::Every(DEFAULT_INTERVAL)),
    };
    let registers = match &m.registers {
        None => registers::DEFAULT_SET.to_vec(),
        Some(list) => {
            let mut ids = Vec::new();
            for r in list.get_ref() {
                let id = match r.get_ref() {
                    raw::RegisterName::Id(id) => u16::try_from(*id).ok(),
                    raw::RegisterName::Name(n) => registers::lookup(n)
                        .map(|i| i.id)
                        .or_else(|| n.parse().ok()),
                };
                match id {
                    Some(id) if !ids.contains(&id) => ids.push(id),
                    Some(_) => {}
                    None => errors.push(loc.span(r, "unknown register: use a name such as heat_energy, volume, t1, t2, power, flow, hours, info, or a numeric id (`kamstrup scan` lists what your meter has)")),
                }
            }
            if list.get_ref().is_empty() {
                errors.push(loc.span(
                    list,
                    "registers is empty; leave it out to read the standard set",
                ));
            }
            ids
        }
    };
    let timeout = match &m.timeout {
        Some(t) => match parse_duration(t.get_ref()) {
            Ok(d) => d,
            Err(e) => {
                errors.push(loc.span(t, format!("timeout {e}")));
                Duration::from_secs(2)
            }
        },
        None => Duration::from_secs(2),
    };
    let mut program = None;
    if let Some(p) = &m.program {
        if protocol == ProtocolChoice::Kmp {
            errors.push(loc.span(p, "`program` is for MULTICAL 66C meters (protocol = \"mc66c\"); a KMP meter reports its units itself"));
        } else {
            match p.get_ref().parse::<kamstrup_mc66c::ProgramNumber>() {
                Ok(number) => program = Some(number),
                Err(e) => errors.push(loc.span(p, format!("program {:?}: {e}; write the A-B-CCC number from the meter's label, e.g. \"4-2-119\"", p.get_ref()))),
            }
        }
    }
    // The model is what the user read on the label: the one way a real KMP meter gets a model
    // name (its type code's mapping is not public), and with it the names of its info bits.
    let mut model = None;
    if let Some(text) = &m.model {
        let t = text.get_ref().trim();
        let multical = t
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("multical"));
        if !multical || t.chars().count() > 40 || t.chars().any(char::is_control) {
            errors.push(loc.span(
                text,
                format!(
                    "model {:?}: write the model on the meter's label, e.g. \"MULTICAL 403\" (it names the meter in Home Assistant and the bits of its info code)",
                    text.get_ref()
                ),
            ));
        } else {
            model = Some(t.to_owned());
        }
    }
    let mut backfill = Backfill::default();
    if let Some(b) = &m.backfill {
        match humantime::parse_duration(b.get_ref().trim()) {
            Ok(d) if d.is_zero() => backfill.window = Duration::ZERO,
            Ok(d) if d < Duration::from_secs(3600) => errors.push(loc.span(
                b,
                "backfill is a window of hours to fill from the meter's hour logger: at least \"1h\" (or \"0s\" to turn it off)",
            )),
            Ok(d) => backfill.window = d,
            Err(_) => errors.push(loc.span(
                b,
                format!(
                    "backfill {:?} is not a duration: write e.g. \"31d\", \"48h\", or \"0s\" to turn it off",
                    b.get_ref()
                ),
            )),
        }
    }
    let schedule = if logger_mode {
        // `at`: when the hour logger is read (default twice a day); `interval`: optional light
        // polls for the dashboard's "now" between them.
        let mut times = Vec::new();
        match &m.at {
            Some(at) => {
                for t in at.get_ref() {
                    match NaiveTime::parse_from_str(t.get_ref().trim(), "%H:%M") {
                        Ok(time) => times.push(time),
                        Err(_) => errors.push(loc.span(
                            t,
                            format!(
                                "{:?} is not a time of day: write \"HH:MM\", e.g. \"00:30\"",
                                t.get_ref()
                            ),
                        )),
                    }
                }
                if at.get_ref().is_empty() {
                    errors.push(loc.span(
                        at,
                        "mode = \"logger\" reads the hour logger at the `at` times: give one or two, e.g. at = [\"00:30\", \"12:30\"]",
                    ));
                }
            }
            None => times.extend(
                [(0, 30), (12, 30)]
                    .into_iter()
                    .filter_map(|(h, mi)| NaiveTime::from_hms_opt(h, mi, 0)),
            ),
        }
        times.sort();
        times.dedup();
        if backfill.window.is_zero() {
            if let Some(b) = &m.backfill {
                errors.push(loc.span(
                    b,
                    "mode = \"logger\" reads the hour logger to fill the hours: backfill cannot be \"0s\" (leave it out for 31d)",
                ));
            }
        }
        let light = match &m.interval {
            Some(i) => match parse_duration(i.get_ref()) {
                Ok(d) if d < Duration::from_millis(100) => {
                    errors.push(loc.span(i, "interval must be at least 100ms"));
                    None
                }
                Ok(d) => Some(Schedule::Every(d)),
                Err(e) => {
                    errors.push(loc.span(i, format!("interval {e}")));
                    None
                }
            },
            None => Some(Schedule::At(times.clone())),
        };
        backfill.logger_at = times;
        light
    } else {
        schedule
    };
    if let Some(g) = &m.backfill_min_gap {
        match humantime::parse_duration(g.get_ref().trim()) {
            _ if protocol == ProtocolChoice::Kmp => errors.push(loc.span(
                g,
                "backfill_min_gap is for a MULTICAL 66C (protocol = \"mc66c\" or \"auto\"), whose loggers are read whole; a KMP meter's back-fill reads only the missing hours, for any gap",
            )),
            Ok(d) if d < Duration::from_secs(3600) => errors.push(loc.span(
                g,
                "backfill_min_gap is a run of missing hours: at least \"1h\" (the loggers hold hours), e.g. \"6h\"",
            )),
            Ok(d) if !backfill.window.is_zero() && d > backfill.window => errors.push(loc.span(
                g,
                format!(
                    "backfill_min_gap {:?} is longer than the backfill window ({}): no gap in it could ever be filled",
                    g.get_ref(),
                    humantime::format_duration(backfill.window)
                ),
            )),
            Ok(d) => backfill.min_gap = d,
            Err(_) => errors.push(loc.span(
                g,
                format!(
                    "backfill_min_gap {:?} is not a duration: write e.g. \"6h\" or \"1d\"",
                    g.get_ref()
                ),
            )),
        }
    }
    if let Some(z) = &m.zone {
        match parse_zone(z.get_ref()) {
            Some(min) => backfill.zone_standard_offset_min = Some(min),
            None => errors.push(loc.span(
                z,
                format!(
                    "zone {:?} is not a UTC offset: write the meter's standard-time offset, e.g. \"+01:00\" (CET, also in summer), \"-05:00\", \"+05:30\"",
                    z.get_ref()
                ),
            )),
        }
    }
    match (errors.is_empty(), port, schedule) {
        (true, Some(port), Some(schedule)) => Ok(MeterSettings {
            backfill,
            name,
            port,
            protocol,
            registers,
            schedule,
            baud: m.baud,
            timeout,
            program,
            model,
        }),
        _ => Err(errors),
    }
}
