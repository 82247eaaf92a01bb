//! `kamstrup addon-config`, the Home Assistant add-on's start-up, as the add-on runs it: the
//! real binary on the sample option files of testdata/addon, with the Supervisor's services API
//! played by a local HTTP server (there is no Supervisor here; the fake answers exactly the
//! documented shapes: `{"result":"ok","data":{host, port, ssl, username, password, …}}`, and a
//! 400 with "Service not enabled" when Home Assistant has no broker).

use super::harness::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::mpsc;

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/addon")
        .join(name)
}

fn addon_config(options: &Path, output: &Path, supervisor: Option<(&str, &str)>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("addon-config")
        .arg("--options")
        .arg(options)
        .arg("--output")
        .arg(output)
        .env_remove("SUPERVISOR_TOKEN");
    if let Some((url, token)) = supervisor {
        cmd.args(["--supervisor", url])
            .env("SUPERVISOR_TOKEN", token);
    }
    cmd.output().unwrap()
}

/// Answers one request with `status` and `body`; sends back the request head it received.
fn fake_supervisor(status: &str, body: &'static str) -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let status = status.to_owned();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let mut stream = stream;
        write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        tx.send(head).unwrap();
    });
    (url, rx)
}

#[test]
fn bad_options_stop_the_addon_with_one_line_naming_the_option() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("kamstrup.toml");
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
            "\"kmpp\" is not one of kmp, mc66c, auto",
        ),
        ("bad-unknown-key.json", "unknown field `intervall`"),
        ("bad-no-meters.json", "option meters: no meter configured"),
        ("bad-not-json.json", "options.json: EOF while parsing"),
        ("bad-interval.json", "must be longer than zero"),
        ("does-not-exist.json", "cannot read"),
    ] {
        let out = addon_config(&sample(file), &output, None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{file}: one log line: {stderr}");
        assert!(
            lines[0].starts_with("kamstrup addon-config: "),
            "{file}: {stderr}"
        );
        assert!(lines[0].contains(expected), "{file}: {stderr}");
        assert!(!output.exists(), "{file}: nothing written");
    }
}

#[test]
fn the_supervisors_broker_is_used_and_secrets_go_to_private_files() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("kamstrup.toml");
    let (url, seen) = fake_supervisor(
        "200 OK",
        r#"{"result":"ok","data":{"addon":"core_mosquitto","host":"core-mosquitto","port":"1883","ssl":false,"protocol":"3.1.1","username":"addons","password":"Sup3r-secret"}}"#,
    );
    let out = addon_config(
        &sample("two-meters.json"),
        &output,
        Some((&url, "t0ken-abc")),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    let head = seen.recv().unwrap();
    assert!(
        head.starts_with("GET /services/mqtt HTTP/1.1\r\n"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("authorization: bearer t0ken-abc"),
        "{head}"
    );
    assert!(
        stdout.contains("2 meter(s), sinks: homeassistant, mqtt_json, influxdb; MQTT broker core-mosquitto:1883 from Home Assistant"),
        "{stdout}"
    );
    let all_output = format!("{stdout}{stderr}");
    assert!(!all_output.contains("Sup3r-secret") && !all_output.contains("Influx-T0ken"));
    let text = std::fs::read_to_string(&output).unwrap();
    assert!(
        text.contains("url = \"mqtt://core-mosquitto:1883\""),
        "{text}"
    );
    assert!(!text.contains("Sup3r-secret"), "{text}");
    let secret = dir.path().join("secrets/mqtt-password");
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "Sup3r-secret");
    for file in [&output, &secret, &dir.path().join("secrets/influxdb-token")] {
        let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
}

#[test]
fn without_a_broker_in_home_assistant_the_options_broker_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("kamstrup.toml");
    let (url, _seen) = fake_supervisor(
        "400 Bad Request",
        r#"{"result":"error","message":"Service not enabled","data":{}}"#,
    );
    let out = addon_config(&sample("two-meters.json"), &output, Some((&url, "t")));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("MQTT broker 192.168.1.5:1884 from the options"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("secrets/mqtt-password")).unwrap(),
        "Pw-from-options"
    );
}
