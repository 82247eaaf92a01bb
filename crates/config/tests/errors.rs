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

/// `model`: what the label says, so a real KMP meter gets a model name and named info bits.
#[test]
fn model_from_the_label() {
    let config =
        ok("[[meter]]\nname = \"heat\"\nport = \"/dev/ttyUSB0\"\nmodel = \" MULTICAL 403 \"\n");
    assert_eq!(
        config.daemon.meters[0].model.as_deref(),
        Some("MULTICAL 403")
    );
    assert_eq!(ok(METER).daemon.meters[0].model, None);
    one(
        &format!("{METER}model = \"403\"\n"),
        4,
        &["label", "MULTICAL 403"],
    );
    one(&format!("{METER}model = \"\"\n"), 4, &["label"]);
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

#[test]
fn ha_statistics_keys_are_checked_where_written() {
    let ha = |keys: &str| format!("{METER}{MQTT}\n[homeassistant]\n{keys}");
    // A token with no URL anywhere (no [homeassistant_rest]).
    one_at(
        &ha("token_file = \"/etc/kamstrup/ha-token\"\n"),
        8,
        14,
        &["url", "http://127.0.0.1:8123"],
    );
    // statistics = true without a token.
    one_at(
        &ha("statistics = true\nurl = \"http://127.0.0.1:8123\"\n"),
        8,
        14,
        &["statistics", "token_file"],
    );
    one(&ha("url = \"ftp://ha\"\ntoken = \"env:HA\"\n"), 8, &["url"]);
    one(
        &ha("url = \"http://ha:8123\"\ntoken = \"env:HA\"\ntoken_file = \"/t\"\n"),
        10,
        &["either token or token_file"],
    );
    ok(&ha(
        "url = \"http://127.0.0.1:8123\"\ntoken_file = \"/etc/kamstrup/ha-token\"\n",
    ));
    ok(&ha("statistics = false\ntoken_file = \"/t\"\n"));
    // The token and URL of [homeassistant_rest] serve statistics = true.
    ok(&ha(
        "statistics = true\n\n[homeassistant_rest]\nurl = \"http://127.0.0.1:8123\"\ntoken = \"env:HA\"\n",
    ));
}

/// The single error, at `line:column`, mentioning `words`.
fn one_at(text: &str, line: usize, column: usize, words: &[&str]) {
    one(text, line, words);
    let e = &errors(text)[0];
    assert_eq!((e.line, e.column), (line, column), "{e}");
}

const MQTT: &str = "[mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\n";

/// Every static mistake in a sink section is found by `parse` (before any sink is built or
/// anything connects) and points at the key or array item as written.
#[test]
fn sink_mistakes_name_their_key() {
    // [mqtt]: scheme, credentials in the URL, no host, password without username, TLS keys.
    one_at(
        &format!("{METER}[mqtt]\nurl = \"http://broker:1883\"\n"),
        5,
        7,
        &["[mqtt] url", "mqtt://", "http://"],
    );
    one_at(
        &format!("{METER}[mqtt]\nurl = \"mqtt://u:p@broker\"\n"),
        5,
        7,
        &["credentials", "username"],
    );
    one(
        &format!("{METER}[mqtt]\nurl = \"broker:1883\"\n"),
        5,
        &["mqtt://"],
    );
    one_at(
        &format!("{METER}{MQTT}password = \"env:MQTT_PW\"\n"),
        6,
        12,
        &["[mqtt] password", "username"],
    );
    one(
        &format!("{METER}{MQTT}ca_file = \"/etc/ca.pem\"\n"),
        6,
        &["ca_file", "mqtts://"],
    );
    one(
        &format!("{METER}[mqtt]\nurl = \"mqtts://b\"\nclient_cert = \"c.pem\"\n"),
        6,
        &["client_key"],
    );
    // A sink that publishes through MQTT without [mqtt]: the sink's header.
    one_at(
        &format!("{METER}[homeassistant]\n"),
        4,
        1,
        &["[homeassistant]", "[mqtt]"],
    );
    one(
        &format!("{METER}{MQTT}[homeassistant]\nbase_topic = \"kamstrup/#\"\n"),
        7,
        &["base_topic", "not a valid MQTT topic"],
    );
    one(
        &format!("{METER}{MQTT}[homeassistant]\ndiscovery_prefix = \"homeassistant/\"\n"),
        7,
        &["must not end with /"],
    );
    // [mqtt_json]: qos range, topic syntax, unknown register names in `keys`.
    one_at(
        &format!("{METER}{MQTT}[mqtt_json]\nqos = 3\n"),
        7,
        7,
        &["qos", "0, 1 or 2"],
    );
    one(
        &format!("{METER}{MQTT}[mqtt_json]\ntopic = \"kamstrup/+/{{meter}}\"\n"),
        7,
        &["topic"],
    );
    one(
        &format!("{METER}{MQTT}[mqtt_json]\nkeys = {{ heat_energy = \"E\", warmth = \"W\" }}\n"),
        7,
        &["unknown register \"warmth\"", "kamstrup scan"],
    );
    // [homeassistant_rest]: scheme, missing token, entity ids, register and meter names.
    let rest = "[homeassistant_rest]\nurl = \"http://127.0.0.1:8123\"\n";
    one_at(
        &format!("{METER}{rest}"),
        4,
        1,
        &["needs token", "token_file"],
    );
    one(
        &format!("{METER}[homeassistant_rest]\nurl = \"ftp://ha\"\ntoken = \"t\"\n"),
        5,
        &["http://"],
    );
    one(
        &format!("{METER}{rest}token = \"t\"\ntoken_file = \"/etc/t\"\n"),
        7,
        &["not both"],
    );
    one_at(
        &format!("{METER}{rest}token = \"t\"\nentities = [\n  {{ register = \"t1\" }},\n  {{ register = \"T1\" }},\n]\n"),
        9,
        16,
        &["readings name this register \"t1\""],
    );
    one(
        &format!("{METER}{rest}token = \"t\"\nentities = [{{ register = \"t1\", entity_id = \"Sensor.T1\" }}]\n"),
        7,
        &["not a valid HA entity id"],
    );
    one(
        &format!(
            "{METER}{rest}token = \"t\"\nentities = [{{ meter = \"cold\", register = \"t1\" }}]\n"
        ),
        7,
        &["no [[meter]] is named \"cold\"", "heat"],
    );
    // [domoticz]: idx2 rules, type rules, divider, one writer per device, url, names.
    let dz = "[domoticz]\nurl = \"http://127.0.0.1:8080\"\n";
    one_at(
        &format!("{METER}{dz}devices = [\n  {{ register = \"volume\", idx = 7, mode = \"subtract\" }},\n]\n"),
        7,
        42,
        &["devices[0] mode", "needs idx2"],
    );
    one(
        &format!("{METER}{dz}devices = [{{ register = \"volume\", idx = 7, idx2 = 8 }}]\n"),
        6,
        &["idx2 is only for"],
    );
    one(
        &format!("{METER}{dz}devices = [{{ register = \"t1\", idx = 7, divider = 10 }}]\n"),
        6,
        &["divider is for type counter"],
    );
    one(
        &format!("{METER}{dz}devices = [{{ register = \"heat_energy\", idx = 7, type = \"kwh\", mode = \"subtract\", idx2 = 3 }}]\n"),
        6,
        &["kwh supports mode write only"],
    );
    one_at(
        &format!("{METER}{dz}devices = [\n  {{ register = \"t1\", idx = 7 }},\n  {{ meter = \"heat\", register = \"t2\", idx = 7 }},\n]\n"),
        8,
        44,
        &["idx 7 is already written by devices[0] (t1)", "one writer"],
    );
    one(
        &format!("{METER}{dz}devices = [{{ register = \"heat_energy_week\", idx = 7 }}]\n"),
        6,
        &["unknown register \"heat_energy_week\""],
    );
    one_at(
        &format!("{METER}[domoticz]\ndevices = [{{ register = \"t1\", idx = 7 }}]\n"),
        4,
        1,
        &["needs url"],
    );
    one(
        &format!("{METER}{dz}username = \"\"\npassword = \"p\"\npassword_file = \"/p\"\ndevices = [{{ register = \"t1\", idx = 7 }}]\n"),
        8,
        &["not both"],
    );
    one(&format!("{METER}{dz}"), 4, &["devices is empty"]);
    // Array-of-tables form: the item is found just as well.
    one_at(
        &format!("{METER}{dz}\n[[domoticz.devices]]\nregister = \"volume\"\nidx = 7\nmode = \"add-delta\"\n"),
        10,
        8,
        &["needs idx2"],
    );
    // [influxdb]: version, v1/v2 keys.
    let influx = "[influxdb]\nurl = \"http://127.0.0.1:8086\"\n";
    one_at(
        &format!("{METER}{influx}version = 3\n"),
        6,
        11,
        &["version must be 1 or 2"],
    );
    one_at(
        &format!("{METER}{influx}token = \"t\"\n"),
        4,
        1,
        &["version 2 needs org and bucket"],
    );
    one(
        &format!("{METER}{influx}org = \"o\"\nbucket = \"b\"\n"),
        4,
        &["needs token"],
    );
    one(
        &format!("{METER}{influx}org = \"o\"\nbucket = \"b\"\ntoken = \"t\"\ndatabase = \"d\"\n"),
        9,
        &["database is for version 1"],
    );
    one(
        &format!("{METER}{influx}version = 1\n"),
        4,
        &["needs database"],
    );
    one(
        &format!("{METER}{influx}version = 1\ndatabase = \"d\"\nbucket = \"b\"\n"),
        8,
        &["bucket is for version 2"],
    );
    one(
        &format!("{METER}{influx}version = 1\ndatabase = \"d\"\npassword = \"p\"\n"),
        8,
        &["needs a username"],
    );
    one(
        &format!(
            "{METER}[influxdb]\nurl = \"http://u:p@influx:8086\"\nversion = 1\ndatabase = \"d\"\n"
        ),
        5,
        &["credentials"],
    );
    // [file]
    one_at(
        &format!("{METER}[file]\npath = \"\"\n"),
        5,
        8,
        &["[file] path", "\"-\""],
    );
}

/// Good sink mappings pass: derived usage names, `register_<id>`, the 66C's own names; a
/// disabled section is not checked (it does not run).
#[test]
fn sink_names_that_readings_carry_pass() {
    let config = ok(&format!(
        "{METER}[domoticz]\nurl = \"http://127.0.0.1:8080\"\ndevices = [\n  {{ register = \"heat_energy_today\", idx = 1 }},\n  {{ register = \"volume_year\", idx = 2 }},\n  {{ register = \"register_1234\", idx = 3 }},\n  {{ register = \"peak_power\", idx = 4 }},\n  {{ register = \"t1_t2\", idx = 5 }},\n  {{ meter = \"heat\", register = \"heat_energy\", idx = 6, type = \"kwh\", power_register = \"power\" }},\n]\n[influxdb]\nenabled = false\nurl = \"ftp://nowhere\"\n"
    ));
    assert_eq!(config.sinks.domoticz.unwrap().devices.len(), 6);
}

/// All sink problems come at once, in file order, beside the meter's.
#[test]
fn sink_problems_come_together_in_file_order() {
    let errs = errors(&format!(
        "{METER}interval = \"soon\"\n[mqtt]\nurl = \"http://x\"\n[file]\npath = \"\"\n"
    ));
    let lines: Vec<usize> = errs.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![4, 6, 8], "{errs:?}");
}

/// Sink durations are text with a unit, like every other duration in the file; the old number
/// forms are refused where they are written, with the new form in the message.
#[test]
fn sink_durations_are_text_and_old_forms_get_a_hint() {
    let config = ok(&format!(
        "{METER}[mqtt]\nurl = \"mqtt://127.0.0.1\"\ntimeout = \"3s\"\nkeep_alive = \"1m\"\n[homeassistant]\nrepublish_delay = \"250ms\"\nexpire_after = \"45m\"\n[influxdb]\nurl = \"http://127.0.0.1:8086\"\norg = \"o\"\nbucket = \"b\"\ntoken = \"t\"\ntimeout = \"20s\"\n"
    ));
    let mqtt = config.sinks.mqtt.unwrap();
    assert_eq!(mqtt.timeout, std::time::Duration::from_secs(3));
    assert_eq!(mqtt.keep_alive, std::time::Duration::from_secs(60));
    let ha = config.sinks.homeassistant.unwrap();
    assert_eq!(ha.republish_delay, std::time::Duration::from_millis(250));
    assert_eq!(ha.expire_after, Some(std::time::Duration::from_secs(2700)));
    assert_eq!(
        config.sinks.influxdb.unwrap().timeout,
        std::time::Duration::from_secs(20)
    );
    // Defaults.
    let config = ok(&format!(
        "{METER}[domoticz]\nurl = \"http://d\"\ndevices = [{{ register = \"t1\", idx = 1 }}]\n"
    ));
    assert_eq!(
        config.sinks.domoticz.unwrap().timeout,
        std::time::Duration::from_secs(10)
    );

    one_at(
        &format!("{METER}[mqtt]\nurl = \"mqtt://127.0.0.1\"\ntimeout = 10\n"),
        6,
        11,
        &["write \"10s\" instead of 10"],
    );
    one(
        &format!("{METER}[homeassistant_rest]\nurl = \"http://ha\"\ntoken = \"t\"\ntimeout = 5\n"),
        7,
        &["\"5s\""],
    );
    one(
        &format!("{METER}[mqtt]\nurl = \"mqtt://127.0.0.1\"\n[homeassistant]\nrepublish_delay_ms = 500\n"),
        7,
        &["republish_delay_ms", "republish_delay = \"1s\""],
    );
    one(
        &format!("{METER}[mqtt]\nurl = \"mqtt://127.0.0.1\"\nkeep_alive = \"half a minute\"\n"),
        6,
        &["not a duration", "\"10s\""],
    );
}

#[test]
fn web_allow_takes_addresses_and_networks_and_names_a_bad_entry() {
    let config = ok(&format!(
        "{METER}[web]\nlisten = \"0.0.0.0:8099\"\nallow = [\"172.30.32.2\", \"192.168.1.0/24\"]\n"
    ));
    assert!(config.web_access.allows("172.30.32.2".parse().unwrap()));
    assert!(config.web_access.allows("192.168.1.20".parse().unwrap()));
    assert!(!config.web_access.allows("10.0.0.1".parse().unwrap()));
    assert!(ok(METER).web_access.is_open(), "no allow key: open");
    one(
        &format!("{METER}[web]\nallow = [\"172.30.32.2\",\n  \"homeassistant\"]\n"),
        6,
        &["web.allow", "\"homeassistant\"", "neither an IP address"],
    );
    one(
        &format!("{METER}[web]\nallow = []\n"),
        5,
        &["web.allow is empty", "lock everyone out"],
    );
}

#[test]
fn backfill_window_and_zone() {
    use kamstrup_daemon::Backfill;
    let m = &ok(METER).daemon.meters[0];
    assert_eq!(m.backfill, Backfill::default());
    assert_eq!(
        m.backfill.window,
        std::time::Duration::from_secs(31 * 86_400)
    );
    let m = &ok(&format!("{METER}backfill = \"48h\"\nzone = \"-05:30\"\n"))
        .daemon
        .meters[0];
    assert_eq!(m.backfill.window, std::time::Duration::from_secs(48 * 3600));
    assert_eq!(m.backfill.zone_standard_offset_min, Some(-330));
    let m = &ok(&format!("{METER}backfill = \"0s\"\n")).daemon.meters[0];
    assert!(!m.backfill.enabled());
    one(
        &format!("{METER}backfill = \"10m\"\n"),
        4,
        &["backfill", "1h", "0s"],
    );
    one(
        &format!("{METER}backfill = \"a month\"\n"),
        4,
        &["not a duration", "31d"],
    );
    one(&format!("{METER}zone = \"CET\"\n"), 4, &["zone", "+01:00"]);
}

/// `backfill_min_gap`: a MULTICAL 66C's threshold for reading its whole logger data sets.
#[test]
fn backfill_min_gap_of_a_66c() {
    use kamstrup_daemon::Backfill;
    const MC66C: &str =
        "[[meter]]\nname = \"heat\"\nport = \"/dev/ttyUSB0\"\nprotocol = \"mc66c\"\n";
    let m = &ok(MC66C).daemon.meters[0];
    assert_eq!(m.backfill.min_gap, std::time::Duration::from_secs(6 * 3600));
    assert_eq!(Backfill::default().min_gap, Backfill::DEFAULT_MIN_GAP);
    let m = &ok(&format!("{MC66C}backfill_min_gap = \"1d\"\n"))
        .daemon
        .meters[0];
    assert_eq!(m.backfill.min_gap, std::time::Duration::from_secs(86_400));
    // `auto` may turn out a 66C.
    let auto = "[[meter]]\nname = \"heat\"\nport = \"/dev/ttyUSB0\"\nprotocol = \"auto\"\n";
    let m = &ok(&format!("{auto}backfill_min_gap = \"12h\"\n"))
        .daemon
        .meters[0];
    assert_eq!(
        m.backfill.min_gap,
        std::time::Duration::from_secs(12 * 3600)
    );
    one_at(
        &format!("{MC66C}backfill_min_gap = \"30m\"\n"),
        5,
        20,
        &["backfill_min_gap", "at least \"1h\""],
    );
    one_at(
        &format!("{MC66C}backfill_min_gap = \"half a day\"\n"),
        5,
        20,
        &["not a duration", "6h"],
    );
    one_at(
        &format!("{MC66C}backfill = \"2d\"\nbackfill_min_gap = \"3d\"\n"),
        6,
        20,
        &["longer than the backfill window", "2days"],
    );
    one_at(
        "[[meter]]\nname = \"heat\"\nport = \"/dev/ttyUSB0\"\nprotocol = \"kmp\"\nbackfill_min_gap = \"6h\"\n",
        5,
        20,
        &["MULTICAL 66C", "KMP"],
    );
}

#[test]
fn logger_mode_reads_the_hour_logger_at_wall_clock_times() {
    use chrono::NaiveTime;
    use kamstrup_daemon::Schedule;
    let hm = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
    let m = &ok(&format!("{METER}mode = \"logger\"\n")).daemon.meters[0];
    assert_eq!(m.backfill.logger_at, vec![hm(0, 30), hm(12, 30)]);
    assert_eq!(m.schedule, Schedule::At(vec![hm(0, 30), hm(12, 30)]));
    let m = &ok(&format!(
        "{METER}mode = \"logger\"\nat = [\"06:00\"]\ninterval = \"1h\"\n"
    ))
    .daemon
    .meters[0];
    assert_eq!(m.backfill.logger_at, vec![hm(6, 0)]);
    assert_eq!(
        m.schedule,
        Schedule::Every(std::time::Duration::from_secs(3600))
    );
    assert!(ok(METER).daemon.meters[0].backfill.logger_at.is_empty());
    one(
        &format!("{METER}mode = \"logger\"\nbackfill = \"0s\"\n"),
        5,
        &["backfill", "logger"],
    );
    one(
        &format!("{METER}mode = \"hourly\"\n"),
        4,
        &["\"poll\", \"logger\""],
    );
    one(
        &format!("{METER}mode = \"logger\"\nat = [\"25:00\"]\n"),
        5,
        &["not a time of day"],
    );
}
