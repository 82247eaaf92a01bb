//! Each documented config mistake produces an error that names file:line:column and the fix.

use std::path::Path;

use kamstrup_config::{parse, Config, ConfigError, EXAMPLE};

fn errors(text: &str) -> Vec<ConfigError> {
    match parse(text, "kamstrup.toml", Path::new("/etc/kamstrup")) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => e,
    }
}

fn ok(text: &str) -> Config {
    parse(text, "kamstrup.toml", Path::new("/etc/kamstrup")).unwrap_or_else(|e| panic!("{e:?}"))
}

/// The single error, checked for its line and for words of its message.
fn one(text: &str, line: usize, words: &[&str]) {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    let e = &errs[0];
    assert_eq!(e.line, line, "{e}");
    assert_eq!(e.file, "kamstrup.toml");
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("kamstrup.toml:{line}:")),
        "{shown}"
    );
    for w in words {
        assert!(shown.contains(w), "{shown:?} should mention {w:?}");
    }
}

const METER: &str = "[[meter]]\nname = \"heat\"\nport = \"sim:multical-403\"\n";

#[test]
fn the_shipped_example_is_valid() {
    let config = ok(EXAMPLE);
    assert_eq!(config.daemon.meters.len(), 2);
    assert_eq!(
        config.daemon.store_path,
        Path::new("/etc/kamstrup/kamstrup.db")
    );
    assert!(config.web_listen.is_some());
    assert!(config.sinks.homeassistant.is_some());
}

#[test]
fn defaults_for_a_minimal_file() {
    let config = ok(METER);
    let m = &config.daemon.meters[0];
    assert_eq!(m.registers, vec![60, 68, 86, 87, 80, 74, 1004, 99]);
    assert_eq!(
        m.schedule,
        kamstrup_daemon::Schedule::Every(std::time::Duration::from_secs(900))
    );
    assert_eq!(config.web_listen, None, "no [web] section, no web server");
}

#[test]
fn unknown_keys_name_their_line() {
    one(
        &format!("{METER}intervall = \"15m\"\n"),
        4,
        &["unknown field", "intervall", "interval"],
    );
    one(
        &format!("{METER}[homeassistant]\ndiscovery_prefx = \"ha\"\n"),
        5,
        &["discovery_prefx"],
    );
    one(
        "[storage]\npath = \"x.db\"\nretension = \"1y\"\n",
        3,
        &["retension"],
    );
}

#[test]
fn bad_values_name_their_line_and_fix() {
    one(
        &format!("{METER}interval = \"15 minutes please\"\n"),
        4,
        &["not a duration", "15m"],
    );
    one(
        &format!("{METER}interval = \"0s\"\n"),
        4,
        &["longer than zero"],
    );
    one(
        &format!("{METER}protocol = \"modbus\"\n"),
        4,
        &["kmp", "mc66c", "auto"],
    );
    one(
        &format!("{METER}registers = [\"heat_energy\", \"warmth\"]\n"),
        4,
        &["unknown register", "kamstrup scan"],
    );
    one(&format!("{METER}at = [\"25:00\"]\n"), 4, &["HH:MM"]);
    one(
        &format!("{METER}interval = \"15m\"\nat = [\"00:00\"]\n"),
        4,
        &["either"],
    );
    one(
        "[[meter]]\nname = \"heat\"\nport = \"tcp://10.0.0.5\"\n",
        3,
        &["port"],
    );
    one(&format!("{METER}program = \"4-2-119\"\n"), 4, &["66C"]);
    one("[[meter]]\nname = \"old\"\nport = \"/dev/ttyUSB0\"\nprotocol = \"mc66c\"\nprogram = \"banana\"\n", 5, &["A-B-CCC"]);
    one(
        &format!("{METER}[web]\nlisten = \"localhost\"\n"),
        5,
        &["not an address", "127.0.0.1:8080"],
    );
    one(
        &format!("[storage]\nretention = \"forever\"\n{METER}"),
        2,
        &["retention", "not a duration"],
    );
    one(
        &format!("[plausibility]\nmax_power_kw = -5.0\n{METER}"),
        2,
        &["positive"],
    );
    one(
        "[[meter]]\nname = \"heat meter\"\nport = \"sim:multical-403\"\n",
        2,
        &["letters"],
    );
}

#[test]
fn structural_mistakes() {
    one(&format!("{METER}{METER}"), 5, &["used twice"]);
    one("[storage]\npath = \"x.db\"\n", 3, &["no [[meter]]"]);
    one("[[meter]]\nname = \"heat\"\n", 1, &["port"]);
    one("[[meter]\nname = \"heat\"\n", 1, &[]);
}

#[test]
fn several_errors_are_reported_at_once() {
    let errs = errors(&format!(
        "{METER}interval = \"soon\"\nregisters = [\"nope\"]\n"
    ));
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert_eq!((errs[0].line, errs[1].line), (4, 5));
}

#[test]
fn simulated_66c_defaults_to_its_protocol() {
    let config =
        ok("[[meter]]\nname = \"old\"\nport = \"sim:multical-66c\"\nprogram = \"4-4-119\"\n");
    assert_eq!(
        config.daemon.meters[0].protocol,
        kamstrup_daemon::ProtocolChoice::Mc66c
    );
}

/// REST beside discovery: an explicit REST entity_id in discovery's id space is refused where it
/// is written; the REST defaults and ids of one's own choosing pass.
#[test]
fn rest_entity_id_that_discovery_owns_is_refused() {
    let both = |entities: &str| {
        format!(
            "{METER}[mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\n\n[homeassistant]\n\n[homeassistant_rest]\nurl = \"http://127.0.0.1:8123\"\ntoken = \"env:HA\"\nentities = [\n{entities}]\n"
        )
    };
    one(
        &both("  { register = \"volume\" },\n  { meter = \"heat\", register = \"heat_energy\", entity_id = \"sensor.kamstrup_heat_heat_energy\" },\n"),
        14,
        &[
            "sensor.kamstrup_heat_heat_energy",
            "two writers",
            "sensor.kamstrup_heat_heat_energy_rest",
        ],
    );
    ok(&both(
        "  { register = \"volume\" },\n  { register = \"heat_energy\", entity_id = \"sensor.stadsverwarming_energy\" },\n  { register = \"t1\", entity_id = \"sensor.kamstrup_heat_t1_rest\" },\n",
    ));
    // Without discovery the id is free.
    let rest_only = both(
        "  { register = \"heat_energy\", entity_id = \"sensor.kamstrup_heat_heat_energy\" },\n",
    )
    .replace("[homeassistant]\n\n", "");
    ok(&rest_only);
}
