//! End-to-end: a one-shot `kamstrup read` of a MULTICAL 66C whose program number is known — from
//! the config or remembered from an earlier `/#2` — costs exactly one IR session (`/#1`), as the
//! simulated meter (`kamstrup simulate` on a real pseudo-terminal) counts the requests it answers.

use super::harness::*;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// The simulated 66C on a pseudo-terminal; its log names every request it answered.
fn start_sim() -> Sim {
    Sim::start(&[
        "--model",
        "multical-66c",
        "--program",
        "4-2-119",
        "--latency-ms",
        "150",
    ])
}

/// `kamstrup read` of the simulated 66C with the given cache directory.
fn read(sim: &Sim, cache: &Path, extra: &[&str]) -> Value {
    let out: Output = Command::new(BIN)
        .args([
            "read",
            "--port",
            &sim.port,
            "--protocol",
            "mc66c",
            "--format",
            "json",
        ])
        .args(extra)
        .env("XDG_CACHE_HOME", cache)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_remembered_or_configured_program_costs_one_ir_session() {
    let sim = start_sim();
    let cache = tempfile::tempdir().unwrap();
    // First read: the program is unknown, /#2 tells it (and the customer number).
    let doc = read(&sim, cache.path(), &[]);
    assert_eq!(doc["meter"]["serial"], 5_310_017);
    assert_eq!(sim.requests(), ["/#1", "/#2"]);
    let file = cache.path().join("kamstrup-bridge/mc66c-programs.json");
    let remembered: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(remembered["meters"][0]["port"], sim.port.as_str());
    assert_eq!(remembered["meters"][0]["program"], "4-2-119");
    assert_eq!(remembered["meters"][0]["serial"], 5_310_017);
    // Next read: /#1 only, with the remembered program's decimals (GJ, 2 decimals).
    let doc = read(&sim, cache.path(), &[]);
    assert_eq!(sim.requests(), ["/#1", "/#2", "/#1"]);
    let meter_type = doc["meter"]["meter_type"].as_str().unwrap();
    assert!(meter_type.contains("4-2-119 (remembered"), "{meter_type}");
    let energy = doc["registers"][0].clone();
    assert_eq!(energy["unit"], "GJ", "{energy}");
    assert_eq!(
        energy["value"]
            .as_str()
            .unwrap()
            .split('.')
            .nth(1)
            .unwrap()
            .len(),
        2
    );
    // --identify asks the meter (/#2 for the customer number, which also refreshes the program).
    read(&sim, cache.path(), &["--identify"]);
    assert_eq!(sim.requests(), ["/#1", "/#2", "/#1", "/#1", "/#2"]);
    // --no-cache: the program is unknown again.
    read(&sim, cache.path(), &["--no-cache"]);
    assert_eq!(sim.requests()[5..], ["/#1", "/#2"]);

    // From the config, with an empty cache: /#1 only.
    let empty = tempfile::tempdir().unwrap();
    let config = empty.path().join("kamstrup.toml");
    std::fs::write(
        &config,
        format!(
            "[[meter]]\nname = \"old\"\nport = \"{}\"\nprotocol = \"mc66c\"\nprogram = \"4-2-119\"\n",
            sim.port
        ),
    )
    .unwrap();
    let doc = read(&sim, empty.path(), &["--config", config.to_str().unwrap()]);
    assert_eq!(sim.requests()[7..], ["/#1"]);
    assert!(doc["meter"]["meter_type"]
        .as_str()
        .unwrap()
        .contains("(given)"));
    assert!(
        !empty.path().join("kamstrup-bridge").exists(),
        "nothing learned, nothing written"
    );
}
