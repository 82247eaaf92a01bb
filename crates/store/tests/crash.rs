//! Crash safety: a child process writes readings and is killed with SIGKILL mid-stream; after
//! reopening, every reading whose insert had returned is there, whole, and the file is sound.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns: a panic is the failure report

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;
use kamstrup_store::{ReadingId, Store};

const CHILD_ENV: &str = "KAMSTRUP_STORE_CRASH_CHILD_DB";

/// Runs only as the child of `committed_readings_survive_sigkill`: writes until killed and
/// prints each id after its insert returned.
#[test]
fn crash_child_writer() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let mut store = Store::open(std::path::Path::new(&path)).unwrap();
    let m = meter(&mut store, 5_512_345, "heat");
    let start = t("2024-01-01T00:00:00Z");
    for i in 0..1_000_000i64 {
        let r = reading_at(
            start + minutes(15 * i),
            vec![
                reg("heat_energy", &format!("{}.{:03}", i / 1000, i % 1000)),
                reg("t1", "55.006"),
                reg("t2", "-0.57"),
            ],
        );
        let id = store.insert_reading(m, &r, None).unwrap();
        println!("committed {} {}", id.0, i);
    }
}

#[test]
fn committed_readings_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut committed: Vec<(i64, i64)> = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        // libtest may print "test crash_child_writer ... " in front of the first line.
        if let Some(rest) = line.find("committed ").and_then(|at| line.get(at + 10..)) {
            let mut parts = rest.split(' ');
            let id: i64 = parts.next().unwrap().parse().unwrap();
            let i: i64 = parts.next().unwrap().parse().unwrap();
            committed.push((id, i));
            if committed.len() == 300 {
                // std's kill() is SIGKILL on Unix: no destructor, no clean close.
                child.kill().unwrap();
                break;
            }
        }
    }
    child.wait().unwrap();
    assert_eq!(committed.len(), 300, "the child did not get going");

    let store = Store::open(&path).unwrap();
    let integrity: String = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let stored = store.readings_after(ReadingId(0), usize::MAX).unwrap();
    // Everything reported committed is there (a few more may have committed after the last
    // line was read), intact and in order.
    assert!(stored.len() >= committed.len());
    for ((id, i), got) in committed.iter().zip(&stored) {
        assert_eq!(got.id, ReadingId(*id));
        let r = &got.reading;
        assert_eq!(r.taken_at, t("2024-01-01T00:00:00Z") + minutes(15 * i));
        assert_eq!(r.registers.len(), 3);
        assert_eq!(
            r.registers[0].value.to_string(),
            format!("{}.{:03}", i / 1000, i % 1000)
        );
        assert_eq!(r.registers[1].value.to_string(), "55.006");
        assert_eq!(r.registers[2].value.to_string(), "-0.57");
    }
    assert!(stored.iter().all(|r| r.reading.registers.len() == 3));
}
