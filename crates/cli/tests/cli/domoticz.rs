//! End-to-end: the real `kamstrup run` delivering to a Domoticz stand-in with the mappings of the
//! seed script (add-delta with its write-mode mirror, a Water counter), `kill -9` between two
//! deliveries and a restart: every update lands, counters in the device's unit, add-delta
//! applied exactly once (the sink's memory lives in the daemon's SQLite file).

use super::harness::*;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kamstrup_decimal::Decimal;
use kamstrup_store::{ReadingId, Store};

/// C's `%g` (6 significant digits), as Domoticz prints a Custom Sensor's `Data`.
fn c_g(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let sci = format!("{v:.5e}");
    let (mantissa, exp) = sci.split_once('e').unwrap();
    let exp: i32 = exp.parse().unwrap();
    let trim = |s: &str| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s.to_owned()
        }
    };
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.abs())
    } else {
        let decimals = (5 - exp).max(0) as usize;
        trim(&format!("{v:.decimals$}"))
    }
}

/// idx → (is a Water counter, svalue); and every accepted update (idx, svalue).
#[derive(Default)]
struct Domoticz {
    devices: BTreeMap<u64, (bool, String)>,
    updates: Vec<(u64, String)>,
}

/// A Domoticz 2025.1 stand-in (no Domoticz can run here) that does what a real one was seen to
/// do: one answer per connection, then the connection is closed without `Connection: close`
/// (the sink never asks for keep-alive); `getdevices&rid=N` with display strings only (a Custom
/// Sensor's `Data` is `%g GJ`; a Water counter divides by 100 and shows `%.3f m3`); `udevice`
/// answers HTTP 200 with `"status":"OK"`, or `"ERR"` for an unknown idx.
fn domoticz(devices: &[(u64, bool, &str)]) -> (String, Arc<Mutex<Domoticz>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let state = Arc::new(Mutex::new(Domoticz {
        devices: devices
            .iter()
            .map(|(idx, water, sv)| (*idx, (*water, sv.to_string())))
            .collect(),
        updates: Vec::new(),
    }));
    let shared = Arc::clone(&state);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let line = String::from_utf8_lossy(&head)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned();
            let target = line.split(' ').nth(1).unwrap_or("/");
            // Our values are numbers: nothing in them is percent-encoded.
            let q: BTreeMap<String, String> = target
                .split_once('?')
                .map(|(_, q)| q)
                .unwrap_or("")
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            let param = q.get("param").map(String::as_str);
            let body = {
                let mut s = shared.lock().unwrap();
                match (q.get("type").map(String::as_str), param) {
                    (Some("command"), Some("getdevices")) => {
                        let rid: u64 = q["rid"].parse().unwrap();
                        match s.devices.get(&rid) {
                            Some((true, sv)) => {
                                let shown = format!("{:.3} m3", sv.parse::<f64>().unwrap() / 100.0);
                                serde_json::json!({"status": "OK", "result": [{
                                    "idx": rid.to_string(), "Name": "Water", "Type": "RFXMeter",
                                    "SubType": "RFXMeter counter", "SwitchTypeVal": 2,
                                    "Divider": 100.0, "AddjValue": 0.0, "ValueUnits": "",
                                    "Counter": shown, "Data": shown}]})
                            }
                            Some((false, sv)) => serde_json::json!({"status": "OK", "result": [{
                                "idx": rid.to_string(), "Name": "Heat", "Type": "General",
                                "SubType": "Custom Sensor", "SensorUnit": "GJ",
                                "Data": format!("{} GJ", c_g(sv.parse().unwrap_or(0.0)))}]}),
                            None => serde_json::json!({"status": "OK"}),
                        }
                    }
                    (Some("command"), Some("udevice")) => {
                        let idx: u64 = q["idx"].parse().unwrap();
                        let sv = q["svalue"].clone();
                        match s.devices.get_mut(&idx) {
                            Some(d) => {
                                d.1 = sv.clone();
                                s.updates.push((idx, sv));
                                serde_json::json!({"status": "OK", "title": "Update Device"})
                            }
                            None => serde_json::json!({"status": "ERR", "title": "Update Device"}),
                        }
                    }
                    _ => serde_json::json!({"status": "ERR"}),
                }
                .to_string()
            };
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json;charset=UTF-8\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, state)
}

/// The newest stored reading's value of `register`, as text.
fn newest(db: &std::path::Path, register: &str) -> String {
    let store = Store::open_read_only(db).unwrap();
    let all = store.readings_after(ReadingId(0), 100_000).unwrap();
    let last = all.iter().max_by_key(|r| r.id).unwrap();
    last.reading
        .registers
        .iter()
        .find(|r| r.name == register)
        .unwrap()
        .value
        .to_string()
}

#[test]
fn run_delivers_every_mapping_exactly_once_across_a_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    // A MULTICAL 403 whose counters move: one simulated hour per second.
    let sim = Sim::tcp(&["--model", "multical-403", "--speed", "3600"]);
    let port = sim.port.clone();
    let (url, dz) = domoticz(&[(30, false, "1.5"), (31, false, "100"), (14, true, "0")]);
    let config = dir.path().join("kamstrup.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\npath = \"k.db\"\n[[meter]]\nname = \"heat\"\nport = \"{port}\"\ninterval = \"1s\"\nbackfill = \"0s\"\n\
             [plausibility]\nmax_power_kw = 1000000000.0\nmax_flow_m3h = 1000000000.0\n\
             [domoticz]\nurl = \"{url}\"\ndevices = [\n\
               {{ register = \"heat_energy\", idx = 30, mode = \"add-delta\", idx2 = 31 }},\n\
               {{ register = \"heat_energy\", idx = 31 }},\n\
               {{ register = \"volume\", idx = 14, type = \"counter\" }},\n]\n"
        ),
    )
    .unwrap();
    let updates_of = |idx: u64| {
        dz.lock()
            .unwrap()
            .updates
            .iter()
            .filter(|u| u.0 == idx)
            .count()
    };
    let start = || {
        Proc(
            Command::new(BIN)
                .args(["run", "--config"])
                .arg(&config)
                .env("XDG_CACHE_HOME", dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let first = start();
    wait_for("three deliveries", Duration::from_secs(30), || {
        updates_of(31) >= 3
    });
    drop(first); // SIGKILL, wherever the delivery is
    let before = updates_of(31);
    let second = start();
    wait_for(
        "three more deliveries after the restart",
        Duration::from_secs(30),
        || updates_of(31) >= before + 3,
    );
    assert!(second.terminate().success());

    let db = dir.path().join("k.db");
    let s = dz.lock().unwrap();
    let dec = |t: &str| -> Decimal { t.parse().unwrap() };
    // The newest reading, exactly, on the mirror.
    assert_eq!(s.devices[&31].1, newest(&db, "heat_energy"));
    // The Water counter (divider 100) in hundredths of a m³: it shows the meter's volume.
    let volume = dec(&newest(&db, "volume"));
    let shown = Decimal::new(s.devices[&14].1.parse().unwrap(), -2).unwrap();
    let below = volume.checked_sub(&shown).unwrap();
    assert!(
        !below.is_negative() && below.cmp_value(&dec("0.01")).is_lt(),
        "Water counter {} for {volume} m³",
        s.devices[&14].1
    );
    // Each growth of the meter added once: sum − mirror is what it was at the start, 1.5 − 100.
    let sum = dec(&s.devices[&30].1);
    let mirror = dec(&s.devices[&31].1);
    assert!(
        sum.checked_sub(&mirror).unwrap().eq_value(&dec("-98.5")),
        "sum {sum}, mirror {mirror}; updates: {:?}",
        s.updates
    );
    // The meter moved between the deliveries, so the sum did add something.
    assert!(!sum.eq_value(&dec("1.5")));
}
