//! The add-on's files against the add-on rules (required keys, allowed architectures and option
//! types, no unknown keys — the Supervisor silently drops unknown keys, so a typo such as
//! `ingres: true` would otherwise go unnoticed), and the sample option files in
//! testdata/addon through the converter and the real config validator.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use kamstrup_addon::{convert, parse_options, AddonError, MqttService, MqttSource};
use yaml_rust2::{Yaml, YamlLoader};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn load_yaml(path: &Path) -> Yaml {
    let text = std::fs::read_to_string(path).unwrap();
    YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .next()
        .unwrap()
}

/// Every key the Supervisor's add-on config schema knows (supervisor/addons/validate.py,
/// December 2026).
const KNOWN_KEYS: &[&str] = &[
    "name",
    "version",
    "slug",
    "description",
    "arch",
    "machine",
    "url",
    "startup",
    "boot",
    "init",
    "advanced",
    "stage",
    "ports",
    "ports_description",
    "watchdog",
    "webui",
    "ingress",
    "ingress_port",
    "ingress_entry",
    "ingress_stream",
    "panel_icon",
    "panel_title",
    "panel_admin",
    "homeassistant",
    "host_network",
    "host_pid",
    "host_ipc",
    "host_uts",
    "host_dbus",
    "devices",
    "udev",
    "tmpfs",
    "map",
    "environment",
    "privileged",
    "apparmor",
    "full_access",
    "audio",
    "video",
    "gpio",
    "usb",
    "uart",
    "devicetree",
    "kernel_modules",
    "realtime",
    "hassio_api",
    "hassio_role",
    "homeassistant_api",
    "stdin",
    "legacy",
    "docker_api",
    "auth_api",
    "services",
    "discovery",
    "backup_exclude",
    "backup_pre",
    "backup_post",
    "restore_pre",
    "restore_post",
    "backup",
    "options",
    "schema",
    "image",
    "ulimits",
    "timeout",
    "journald",
    "breaking_versions",
];
const REQUIRED_KEYS: &[&str] = &["name", "version", "slug", "description", "arch"];
/// armhf, armv7 and i386 are deprecated since Supervisor 2026.03 (they warn).
const ALLOWED_ARCH: &[&str] = &["aarch64", "amd64"];

/// Whether `t` is an option type of the add-on schema: `str`, `bool`, `password`, `email`,
/// `url`, `port`, `int`/`float` with optional `(min,max)`, `match(re)`, `list(a|b)`,
/// `device` / `device(subsystem=…)`; a trailing `?` makes it optional.
fn is_option_type(t: &str) -> bool {
    let t = t.strip_suffix('?').unwrap_or(t);
    let call = |name: &str| {
        t.strip_prefix(name)
            .and_then(|r| r.strip_prefix('('))
            .and_then(|r| r.strip_suffix(')'))
    };
    let bounds = |b: &str| {
        let mut parts = b.split(',');
        let ok = |p: Option<&str>| p.is_some_and(|p| p.is_empty() || p.parse::<f64>().is_ok());
        ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
    };
    matches!(
        t,
        "str" | "bool" | "password" | "email" | "url" | "port" | "int" | "float" | "device"
    ) || call("int").is_some_and(bounds)
        || call("float").is_some_and(bounds)
        || call("match").is_some_and(|re| !re.is_empty())
        || call("list").is_some_and(|l| l.split('|').all(|v| !v.is_empty()))
        || call("device").is_some_and(|f| {
            f.split_once('=')
                .is_some_and(|(k, v)| k == "subsystem" && !v.is_empty())
        })
}

/// Problems of one add-on config.yaml; empty when it follows the rules.
fn addon_config_problems(config: &Yaml) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(map) = config.as_hash() else {
        return vec!["config.yaml is not a mapping".into()];
    };
    let keys: BTreeSet<&str> = map.keys().filter_map(Yaml::as_str).collect();
    for key in &keys {
        if !KNOWN_KEYS.contains(key) {
            problems.push(format!(
                "unknown key {key:?} (the Supervisor would drop it silently)"
            ));
        }
    }
    for key in REQUIRED_KEYS {
        if !keys.contains(key) {
            problems.push(format!("required key {key:?} is missing"));
        }
    }
    match config["arch"].as_vec() {
        Some(arch) if !arch.is_empty() => {
            for a in arch {
                if !a.as_str().is_some_and(|a| ALLOWED_ARCH.contains(&a)) {
                    problems.push(format!("arch {a:?} is not one of {ALLOWED_ARCH:?}"));
                }
            }
        }
        _ => problems.push("arch must be a non-empty list".into()),
    }
    if config["version"].as_str().is_none_or(|v| v.is_empty()) {
        problems.push("version must be a string (quote it)".into());
    }
    let slug_ok = config["slug"].as_str().is_some_and(|s| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    });
    if !slug_ok {
        problems.push("slug must be letters, digits, '-', '_' or '.'".into());
    }
    for service in config["services"].as_vec().into_iter().flatten() {
        let ok = service
            .as_str()
            .and_then(|s| s.split_once(':'))
            .is_some_and(|(s, r)| {
                ["mqtt", "mysql"].contains(&s) && ["provide", "want", "need"].contains(&r)
            });
        if !ok {
            problems.push(format!(
                "service {service:?} is not mqtt|mysql:provide|want|need"
            ));
        }
    }
    check_schema(&config["schema"], "schema", &mut problems);
    check_options(
        &config["options"],
        &config["schema"],
        "options",
        &mut problems,
    );
    problems
}

fn check_schema(schema: &Yaml, at: &str, problems: &mut Vec<String>) {
    match schema {
        Yaml::String(t) => {
            if !is_option_type(t) {
                problems.push(format!("{at}: {t:?} is not an option type"));
            }
        }
        Yaml::Array(items) => {
            for item in items {
                if matches!(item, Yaml::Array(_)) {
                    problems.push(format!("{at}: a list may not hold a list"));
                }
                check_schema(item, &format!("{at}[]"), problems);
            }
        }
        Yaml::Hash(map) => {
            for (k, v) in map {
                check_schema(v, &format!("{at}.{}", k.as_str().unwrap_or("?")), problems);
            }
        }
        Yaml::BadValue => problems.push(format!("{at}: missing")),
        other => problems.push(format!("{at}: {other:?} is not a schema element")),
    }
}

/// Options must fit the schema: no key the schema lacks, and every non-optional key present.
fn check_options(options: &Yaml, schema: &Yaml, at: &str, problems: &mut Vec<String>) {
    match (options, schema) {
        (Yaml::Hash(o), Yaml::Hash(s)) => {
            for k in o.keys() {
                if !s.contains_key(k) {
                    problems.push(format!("{at}: {k:?} is not in the schema"));
                }
            }
            for (k, t) in s {
                let optional = t.as_str().is_some_and(|t| t.ends_with('?'));
                let name = k.as_str().unwrap_or("?");
                match o.get(k) {
                    Some(v) => check_options(v, t, &format!("{at}.{name}"), problems),
                    None if !optional && !matches!(t, Yaml::Array(_)) => {
                        problems.push(format!("{at}.{name}: required by the schema, no default"))
                    }
                    None => {}
                }
            }
        }
        (Yaml::Array(o), Yaml::Array(s)) => {
            if let Some(item) = s.first() {
                for v in o {
                    check_options(v, item, &format!("{at}[]"), problems);
                }
            }
        }
        (_, Yaml::String(_)) => {}
        _ => problems.push(format!("{at}: does not match the schema's shape")),
    }
}

#[test]
fn addon_config_yaml_follows_the_addon_rules() {
    let config = load_yaml(&repo().join("addon/config.yaml"));
    let problems = addon_config_problems(&config);
    assert!(
        problems.is_empty(),
        "addon/config.yaml:\n  {}",
        problems.join("\n  ")
    );
    // What this add-on promises beyond the general rules.
    assert_eq!(config["version"].as_str(), Some(env!("CARGO_PKG_VERSION")));
    assert_eq!(config["ingress"].as_bool(), Some(true));
    assert_eq!(
        config["ingress_port"].as_i64(),
        Some(i64::from(kamstrup_addon::INGRESS_PORT))
    );
    assert_eq!(
        config["schema"]["device"].as_str(),
        Some("device(subsystem=tty)?")
    );
    assert!(
        !repo().join("addon/build.yaml").exists(),
        "build.yaml is gone: the Dockerfile names its base image"
    );
}

#[test]
fn the_checker_catches_what_the_supervisor_would_drop_or_reject() {
    let bad = YamlLoader::load_from_str(
        r#"
name: x
version: 1
slug: "a b"
arch: [amd64, armv7]
ingres: true
services: ["mqtt:maybe"]
options: { interval: 5m, extra: 1 }
schema: { interval: string, meters: [{ name: str }], must: bool }
"#,
    )
    .unwrap()
    .remove(0);
    let problems = addon_config_problems(&bad).join("\n");
    for expected in [
        "unknown key \"ingres\"",
        "required key \"description\"",
        "arch String(\"armv7\")",
        "version must be a string",
        "slug must be",
        "mqtt:maybe",
        "schema.interval: \"string\" is not an option type",
        "\"extra\"",
        "options.must: required",
    ] {
        assert!(
            problems.contains(expected),
            "{expected:?} not in:\n{problems}"
        );
    }
    for good in [
        "str?",
        "int(1,10)",
        "float",
        "match(^a$)",
        "list(a|b)",
        "device(subsystem=tty)",
        "port",
    ] {
        assert!(is_option_type(good), "{good}");
    }
    for bad in ["string", "int(a,b)", "list()", "device(tty)", "str??"] {
        assert!(!is_option_type(bad), "{bad}");
    }
}

#[test]
fn schema_keys_are_exactly_the_converters_options() {
    let config = load_yaml(&repo().join("addon/config.yaml"));
    // The defaults the add-on starts with: the converter asks for the IR head first...
    let mut defaults = yaml_to_json(&config["options"]);
    let options = parse_options(defaults.to_string().as_bytes()).unwrap();
    let service = supervisor_broker();
    let err = convert(&options, Some(&service), Path::new("/data")).unwrap_err();
    assert!(err.to_string().contains("pick the IR head"), "{err}");
    // ...and with one picked, they make a valid config.
    defaults["device"] = "/dev/serial/by-id/usb-FTDI-if00-port0".into();
    let options = parse_options(defaults.to_string().as_bytes()).unwrap();
    validate(
        &convert(&options, Some(&service), Path::new("/data"))
            .unwrap()
            .toml,
    );
    // ...and an option file with every schema key set is too (no key the converter ignores).
    let mut full = serde_json::Map::new();
    for (k, t) in config["schema"].as_hash().unwrap() {
        let k = k.as_str().unwrap();
        let v = match t {
            Yaml::Array(_) => {
                serde_json::json!([{"name": "m", "port": "tcp://h:1", "protocol": "kmp",
                "program": "4-2-119", "interval": "1h"}])
            }
            Yaml::String(t) if t.starts_with("bool") => serde_json::json!(true),
            Yaml::String(t) if t.starts_with("port") => serde_json::json!(1883),
            _ => serde_json::json!("x"),
        };
        full.insert(k.to_owned(), v);
    }
    let parsed = parse_options(serde_json::Value::Object(full).to_string().as_bytes());
    assert!(parsed.is_ok(), "{parsed:?}");
    // The translations describe exactly the schema's options.
    let tr = load_yaml(&repo().join("addon/translations/en.yaml"));
    let described: BTreeSet<&str> = tr["configuration"]
        .as_hash()
        .unwrap()
        .keys()
        .filter_map(Yaml::as_str)
        .collect();
    let schema: BTreeSet<&str> = config["schema"]
        .as_hash()
        .unwrap()
        .keys()
        .filter_map(Yaml::as_str)
        .collect();
    assert_eq!(described, schema, "translations/en.yaml vs schema");
}

#[test]
fn repository_yaml_names_the_repository() {
    let repo_yaml = load_yaml(&repo().join("repository.yaml"));
    for key in ["name", "url", "maintainer"] {
        assert!(
            repo_yaml[key].as_str().is_some_and(|v| !v.is_empty()),
            "{key}"
        );
    }
    let dockerfile = std::fs::read_to_string(repo().join("addon/Dockerfile")).unwrap();
    assert!(dockerfile.contains("FROM ghcr.io/home-assistant/base:latest"));
    assert!(dockerfile.contains("BUILD_ARCH") && dockerfile.contains("BUILD_VERSION"));
}

fn yaml_to_json(y: &Yaml) -> serde_json::Value {
    match y {
        Yaml::String(s) => s.clone().into(),
        Yaml::Integer(i) => (*i).into(),
        Yaml::Boolean(b) => (*b).into(),
        Yaml::Real(r) => r.parse::<f64>().unwrap().into(),
        Yaml::Array(a) => a.iter().map(yaml_to_json).collect(),
        Yaml::Hash(h) => h
            .iter()
            .map(|(k, v)| (k.as_str().unwrap().to_owned(), yaml_to_json(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        _ => serde_json::Value::Null,
    }
}

fn supervisor_broker() -> MqttService {
    MqttService::from_api_body(
        br#"{"result":"ok","data":{"host":"core-mosquitto","port":1883,"ssl":false,
            "protocol":"3.1.1","username":"addons","password":"Pw-from-supervisor"}}"#,
    )
    .unwrap()
    .unwrap()
}

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(repo().join("testdata/addon").join(name)).unwrap()
}

/// The converted config passes the same validation `kamstrup run` applies.
fn validate(toml: &str) {
    if let Err(errors) = kamstrup_config::parse(toml, "/data/kamstrup.toml", Path::new("/data")) {
        panic!(
            "generated config is invalid:\n{toml}\n{}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[test]
fn good_sample_options_become_valid_configs() {
    // Home Assistant with the Mosquitto add-on: its broker wins over mqtt_host.
    let options = parse_options(&sample("two-meters.json")).unwrap();
    let out = convert(&options, Some(&supervisor_broker()), Path::new("/data")).unwrap();
    validate(&out.toml);
    let parsed: toml::Table = out.toml.parse().unwrap();
    assert_eq!(
        parsed["storage"]["path"].as_str(),
        Some("/data/kamstrup.db")
    );
    assert_eq!(parsed["web"]["listen"].as_str(), Some("0.0.0.0:8099"));
    let allow = parsed["web"]["allow"].as_array().expect("web.allow");
    assert_eq!(allow.len(), 1);
    assert_eq!(allow[0].as_str(), Some("172.30.32.2"));
    let meters = parsed["meter"].as_array().unwrap();
    assert_eq!(meters.len(), 2);
    assert_eq!(
        meters[0]["port"].as_str(),
        Some("/dev/serial/by-id/usb-FTDI_FT230X_Basic_UART_D30A1B2C-if00-port0")
    );
    assert_eq!(meters[0]["interval"].as_str(), Some("15m"));
    assert_eq!(meters[1]["port"].as_str(), Some("tcp://192.168.1.20:4001"));
    assert_eq!(meters[1]["protocol"].as_str(), Some("mc66c"));
    assert_eq!(meters[1]["program"].as_str(), Some("4-2-119"));
    assert_eq!(meters[1]["interval"].as_str(), Some("1h"));
    assert_eq!(
        parsed["mqtt"]["url"].as_str(),
        Some("mqtt://core-mosquitto:1883")
    );
    assert_eq!(parsed["mqtt"]["username"].as_str(), Some("addons"));
    assert_eq!(
        parsed["mqtt"]["password_file"].as_str(),
        Some("/data/secrets/mqtt-password")
    );
    assert!(
        !out.toml.contains("Pw-from-supervisor"),
        "secrets stay out of the TOML"
    );
    assert_eq!(out.secrets[0].content, "Pw-from-supervisor");
    assert!(
        !format!("{out:?}").contains("Pw-from-supervisor"),
        "nor in debug output"
    );
    assert_eq!(
        out.mqtt,
        MqttSource::Supervisor("core-mosquitto:1883".into())
    );
    assert!(parsed.contains_key("homeassistant"));
    assert_eq!(parsed["mqtt_json"]["topic"].as_str(), Some("heat/{meter}"));
    assert_eq!(parsed["influxdb"]["bucket"].as_str(), Some("heat"));
    assert_eq!(
        parsed["influxdb"]["token_file"].as_str(),
        Some("/data/secrets/influxdb-token")
    );
    assert_eq!(out.sinks, ["homeassistant", "mqtt_json", "influxdb"]);

    // No Supervisor broker: the mqtt_* options.
    let out = convert(&options, None, Path::new("/data")).unwrap();
    validate(&out.toml);
    assert_eq!(out.mqtt, MqttSource::Options("192.168.1.5:1884".into()));
    assert!(out.toml.contains("url = \"mqtt://192.168.1.5:1884\""));

    // The smallest options: the add-on's defaults with a device picked, no MQTT wanted.
    let options = parse_options(&sample("dashboard-only.json")).unwrap();
    let out = convert(&options, None, Path::new("/data")).unwrap();
    validate(&out.toml);
    assert_eq!(out.mqtt, MqttSource::None);
    assert!(out.sinks.is_empty() && out.secrets.is_empty());
}

#[test]
fn bad_sample_options_name_the_option_to_fix() {
    for (file, expected) in [
        (
            "bad-no-port.json",
            "option meters[0].port: meter \"heat\" has no port",
        ),
        (
            "bad-no-broker.json",
            "option homeassistant_discovery: needs an MQTT broker",
        ),
        (
            "bad-influx-incomplete.json",
            "option influxdb_bucket: missing",
        ),
        (
            "bad-protocol.json",
            "option meters[0].protocol: \"kmpp\" is not one of",
        ),
        ("bad-unknown-key.json", "unknown field `intervall`"),
        ("bad-no-meters.json", "option meters: no meter configured"),
        ("bad-not-json.json", "options.json: "),
    ] {
        let result =
            parse_options(&sample(file)).and_then(|o| convert(&o, None, Path::new("/data")));
        let err: AddonError = match result {
            Ok(out) => panic!("{file}: accepted:\n{}", out.toml),
            Err(e) => e,
        };
        let message = err.to_string();
        assert!(message.contains(expected), "{file}: {message}");
        assert!(!message.contains('\n'), "{file}: one log line: {message}");
    }
}
