//! Benchmark: memory and CPU of the `kamstrup run` daemon with 3 simulated meters (separate
//! `kamstrup simulate` processes over TCP, so the simulators' own work is not counted).
//!
//! Run: `cargo bench -p kamstrup-cli --bench daemon_footprint`. Prints: RSS and CPU per poll over
//! 100 polls per meter (intervals shortened to 100 ms); the RSS of the daemon as installed — two
//! meters and the web server on, after the dashboard and its API have been requested — between
//! polls (target ≤ 8 MiB), split into heap (anonymous) and mapped binary (file); and the time
//! from exec to exit of `kamstrup --version` (target < 50 ms). Linux only (/proc).
//!
//! `KAMSTRUP_FOOTPRINT_BIN=target/dist/bin/x86_64-unknown-linux-musl/kamstrup` measures another
//! build of the daemon (e.g. the shipped static binary) with the same load; the simulators stay
//! this build's.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_kamstrup");
const POLLS: usize = 100;
const IDLE_TARGET_KIB: u64 = 8 * 1024;

/// The daemon under test: this build, or KAMSTRUP_FOOTPRINT_BIN.
fn daemon_bin() -> String {
    std::env::var("KAMSTRUP_FOOTPRINT_BIN").unwrap_or_else(|_| BIN.to_string())
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn simulator(model: &str) -> Result<(Proc, String), Box<dyn std::error::Error>> {
    let mut child = Command::new(BIN)
        .args([
            "simulate",
            "--model",
            model,
            "--latency-ms",
            "5",
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        BufReader::new(out).read_line(&mut line)?;
    }
    let port = line
        .split_whitespace()
        .find(|w| w.starts_with("tcp://"))
        .ok_or("simulator did not announce its address")?
        .to_string();
    Ok((Proc(child), port))
}

/// A field of /proc/PID/status, in KiB.
fn status_kib(pid: u32, name: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// (VmRSS, VmHWM) in KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    (status_kib(pid, "VmRSS:"), status_kib(pid, "VmHWM:"))
}

/// One GET over a fresh connection; the status code (0 when it failed).
fn http_get(addr: &str, path: &str) -> u16 {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return 0;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return 0;
    }
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply)
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// A port that was free a moment ago, for the daemon's web server.
fn free_port() -> Result<u16, std::io::Error> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// User + system CPU time of a process.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of stat, i.e. 11 and 12 after the name.
    let hz = 100.0; // USER_HZ on Linux
    Duration::from_secs_f64((ticks(11) + ticks(12)) as f64 / hz)
}

fn readings(db: &Path) -> usize {
    let Ok(store) = kamstrup_store::Store::open_read_only(db) else {
        return 0;
    };
    store
        .readings_after(kamstrup_store::ReadingId(0), 100_000)
        .map(|r| r.len())
        .unwrap_or(0)
}

fn config(dir: &Path, ports: &[String], interval: &str, web: Option<&str>) -> std::path::PathBuf {
    let mut text = String::from("[storage]\npath = \"k.db\"\n");
    match web {
        Some(addr) => text.push_str(&format!("[web]\nlisten = \"{addr}\"\n")),
        None => text.push_str("[web]\nenabled = false\n"),
    }
    for (i, port) in ports.iter().enumerate() {
        text.push_str(&format!(
            "[[meter]]\nname = \"m{i}\"\nport = \"{port}\"\ninterval = \"{interval}\"\n"
        ));
    }
    let path = dir.join(format!("kamstrup-{interval}.toml"));
    let _ = std::fs::write(&path, text);
    path
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut sims = Vec::new();
    let mut ports = Vec::new();
    for model in ["multical-402", "multical-403", "multical-602"] {
        let (p, port) = simulator(model)?;
        sims.push(p);
        ports.push(port);
    }

    // Phase 1: 100 polls per meter, 100 ms apart.
    let dir = tempfile::tempdir()?;
    let busy = config(dir.path(), &ports, "100ms", None);
    let started = Instant::now();
    let daemon = Proc(
        Command::new(daemon_bin())
            .arg("run")
            .arg("--config")
            .arg(&busy)
            .stderr(Stdio::null())
            .spawn()?,
    );
    let pid = daemon.0.id();
    let db = dir.path().join("k.db");
    let target = POLLS * ports.len();
    let mut samples = Vec::new();
    while readings(&db) < target {
        if started.elapsed() > Duration::from_secs(120) {
            return Err("daemon did not reach 300 readings within 120 s".into());
        }
        samples.push(rss_kib(pid).0);
        std::thread::sleep(Duration::from_millis(100));
    }
    let wall = started.elapsed();
    let cpu = cpu_time(pid);
    let (rss, hwm) = rss_kib(pid);
    drop(daemon);
    let polls = readings(&db);
    println!(
        "daemon_footprint: 3 simulated meters over TCP, 100 ms interval, {polls} polls in {:.1} s",
        wall.as_secs_f64()
    );
    println!(
        "  busy: RSS {:.1} MiB (peak {:.1} MiB), CPU {:.0} ms total = {:.2} ms per poll (incl. SQLite write and plausibility/usage queries)",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
        cpu.as_secs_f64() * 1000.0,
        cpu.as_secs_f64() * 1000.0 / polls.max(1) as f64
    );

    // Phase 2: the daemon as installed — two meters, the web server on — idle between polls,
    // after the dashboard and every kind of API call have been served.
    let dir2 = tempfile::tempdir()?;
    let web = format!("127.0.0.1:{}", free_port()?);
    let idle = config(dir2.path(), &ports[..2], "1h", Some(&web));
    let daemon = Proc(
        Command::new(daemon_bin())
            .arg("run")
            .arg("--config")
            .arg(&idle)
            .stderr(Stdio::null())
            .spawn()?,
    );
    let pid = daemon.0.id();
    let db2 = dir2.path().join("k.db");
    let t = Instant::now();
    while readings(&db2) < 2 && t.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let serials: Vec<String> = kamstrup_store::Store::open_read_only(&db2)
        .ok()
        .and_then(|s| s.readings_after(kamstrup_store::ReadingId(0), 10).ok())
        .map(|rs| {
            rs.iter()
                .filter_map(|r| r.reading.meter.serial)
                .map(|s| s.to_string())
                .collect()
        })
        .unwrap_or_default();
    let mut paths = vec![
        "/".to_string(),
        "/app.js".into(),
        "/style.css".into(),
        "/api/meters".into(),
        "/api/status".into(),
        "/metrics".into(),
    ];
    for serial in &serials {
        paths.push(format!("/api/meters/{serial}"));
        for register in ["heat_energy", "t1", "power"] {
            // The last 24 h, raw and per hour, as the dashboard asks.
            paths.push(format!("/api/meters/{serial}/readings?register={register}"));
            paths.push(format!(
                "/api/meters/{serial}/readings?register={register}&bucket=hour"
            ));
        }
    }
    let mut served = 0;
    for _ in 0..5 {
        for path in &paths {
            if http_get(&web, path) == 200 {
                served += 1;
            }
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    let cpu_before = cpu_time(pid);
    std::thread::sleep(Duration::from_secs(3));
    let idle_cpu = cpu_time(pid).saturating_sub(cpu_before);
    let (idle_rss, idle_hwm) = rss_kib(pid);
    let (anon, file) = (status_kib(pid, "RssAnon:"), status_kib(pid, "RssFile:"));
    let threads = status_kib(pid, "Threads:");
    drop(daemon);
    println!(
        "  idle with web server, 2 meters, {served}/{} dashboard/API requests answered 200: RSS {:.1} MiB \
         (heap {:.1} MiB, binary and libraries {:.1} MiB; peak {:.1} MiB; {threads} threads) \
         (target <= 8 MiB) {}, CPU while idle {:.0} ms over 3 s",
        paths.len() * 5,
        idle_rss as f64 / 1024.0,
        anon as f64 / 1024.0,
        file as f64 / 1024.0,
        idle_hwm as f64 / 1024.0,
        if idle_rss <= IDLE_TARGET_KIB && served == paths.len() * 5 {
            "PASS"
        } else {
            "FAIL"
        },
        idle_cpu.as_secs_f64() * 1000.0
    );
    if std::env::var_os("KAMSTRUP_FOOTPRINT_BIN").is_some() {
        println!("  (daemon binary: {})", daemon_bin());
    }

    // Start-up: exec to exit of a trivial command.
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        Command::new(daemon_bin())
            .arg("--version")
            .stdout(Stdio::null())
            .status()?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "  start-up: `kamstrup --version` median {:.1} ms (target < 50 ms)",
        times[times.len() / 2]
    );
    Ok(())
}
