//! End-to-end: a one-shot `kamstrup read` of a MULTICAL 66C whose program number is known — from
//! the config or remembered from an earlier `/#2` — costs exactly one IR session (`/#1`), as the
//! simulated meter (`kamstrup simulate` on a real pseudo-terminal) counts the requests it answers.

use super::harness::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

/// A running `kamstrup -vv simulate --model multical-66c --pty`, killed when dropped; its log
/// names every request it answered.
struct Sim {
    child: Child,
    port: String,
    dir: tempfile::TempDir,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sim {
    fn start() -> Sim {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("meter");
        let log = std::fs::File::create(dir.path().join("sim.log")).unwrap();
        let mut child = Command::new(BIN)
            .args([
                "-vv",
                "simulate",
                "--model",
                "multical-66c",
                "--program",
                "4-2-119",
            ])
            .args(["--latency-ms", "150", "--pty", "--link"])
            .arg(&link)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.contains("simulated multical-66c"), "announce: {line}");
        Sim {
            child,
            port: link.to_string_lossy().into_owned(),
            dir,
        }
    }

    /// The requests the simulated meter answered so far, in order.
    fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("sim.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("simulator: replying"))
            .filter_map(|l| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix("request="))
                    .map(str::to_string)
            })
            .collect()
    }
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
    let sim = Sim::start();
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
