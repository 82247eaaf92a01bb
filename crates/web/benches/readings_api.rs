//! Benchmark of the readings API the dashboard draws from: one meter with one year of 15-minute
//! readings (35 040 per register), queried over a real socket with the ranges and buckets the
//! page uses; prints p50/p99 latency per query and the SQLite bytes per meter-year.
//!
//! `cargo bench -p kamstrup-web --bench readings_api`. Without `--bench` (as `cargo test
//! --all-targets` runs it) it does a quick smoke run on a week of data.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, Utc};
use kamstrup_decimal::Decimal;
use kamstrup_reading::{MeterIdentity, Protocol, Reading, RegisterValue};
use kamstrup_store::{MeterId, Store};

const SERIAL: u64 = 71_234_567;
const STEP_MINUTES: i64 = 15;
const TARGET_P99: Duration = Duration::from_millis(50);

fn dec(m: i64, e: i16) -> Decimal {
    Decimal::new(i128::from(m), e).unwrap_or(Decimal::ZERO)
}

fn value(id: u16, name: &str, v: Decimal, unit: &str, derived: bool) -> RegisterValue {
    RegisterValue {
        id,
        name: name.to_string(),
        short: name.to_uppercase(),
        value: v,
        unit: unit.into(),
        unit_code: None,
        text: None,
        derived,
    }
}

/// The daemon's reading of a MULTICAL 403 at step `k`: the nine registers the demo reads plus
/// the six usages (today/month/year of energy and volume) the daemon adds to every reading.
fn reading(k: i64, at: DateTime<Utc>, base: &mut Baselines) -> Reading {
    let phase = (k as f64 / 96.0 * std::f64::consts::TAU).sin();
    let energy = 12_000 + k * 4 / 10; // 0.01 GJ units
    let volume = 95_000 + k * 3 / 10; // 0.01 m³ units
    base.roll(at, energy, volume);
    let t1 = 6600 + (400.0 * phase) as i64;
    let t2 = 3300 + (300.0 * phase) as i64;
    let mut registers = vec![
        value(60, "heat_energy", dec(energy, -2), "GJ", false),
        value(68, "volume", dec(volume, -2), "m³", false),
        value(86, "t1", dec(t1, -2), "°C", false),
        value(87, "t2", dec(t2, -2), "°C", false),
        value(89, "t1_t2", dec(t1 - t2, -2), "K", false),
        value(
            80,
            "power",
            dec(42 + (21.0 * phase) as i64, -1),
            "kW",
            false,
        ),
        value(
            74,
            "flow",
            dec(117 + (60.0 * phase) as i64, 0),
            "l/h",
            false,
        ),
        value(1004, "hours", dec(9872 + k / 4, 0), "h", false),
        value(99, "info", dec(0, 0), "", false),
    ];
    for (period, e0, v0) in [
        ("today", base.day.1, base.day.2),
        ("month", base.month.1, base.month.2),
        ("year", base.year.1, base.year.2),
    ] {
        registers.push(value(
            0,
            &format!("heat_energy_{period}"),
            dec(energy - e0, -2),
            "GJ",
            true,
        ));
        registers.push(value(
            0,
            &format!("volume_{period}"),
            dec(volume - v0, -2),
            "m³",
            true,
        ));
    }
    Reading {
        source: Default::default(),
        meter: MeterIdentity {
            protocol: Protocol::Kmp,
            port: "/dev/serial/by-id/usb-FTDI_FT230X_Basic_UART_D30A1B2C-if00-port0".into(),
            serial: Some(SERIAL),
            meter_type: None,
        },
        taken_at: at,
        registers,
        missing: vec![],
    }
}

/// Counter values at the start of the current day, month and year: (period key, energy, volume).
struct Baselines {
    day: (u32, i64, i64),
    month: (u32, i64, i64),
    year: (u32, i64, i64),
}

impl Baselines {
    fn roll(&mut self, at: DateTime<Utc>, energy: i64, volume: i64) {
        let keys = [at.ordinal(), at.month(), at.year().unsigned_abs()];
        for (slot, key) in [&mut self.day, &mut self.month, &mut self.year]
            .into_iter()
            .zip(keys)
        {
            if slot.0 != key {
                *slot = (key, energy, volume);
            }
        }
    }
}

fn seed(path: &std::path::Path, days: i64, end: DateTime<Utc>) -> (usize, Duration) {
    let started = Instant::now();
    let mut store = Store::open(path).expect("open store");
    let steps = days * 24 * 60 / STEP_MINUTES;
    let first = end - chrono::Duration::minutes(STEP_MINUTES * steps);
    let meter: MeterId = store
        .upsert_meter(
            SERIAL,
            "heat",
            Protocol::Kmp,
            Some("MULTICAL 403"),
            "/dev/ttyUSB0",
            first,
        )
        .expect("meter");
    let mut base = Baselines {
        day: (0, 0, 0),
        month: (0, 0, 0),
        year: (0, 0, 0),
    };
    // One day per transaction, as a year of polls would have been many small commits.
    let mut batch = Vec::with_capacity(96);
    for k in 0..steps {
        let at = first + chrono::Duration::minutes(STEP_MINUTES * k);
        batch.push((meter, reading(k, at, &mut base), None));
        if batch.len() == 96 {
            store.insert_readings(&batch).expect("insert");
            batch.clear();
        }
    }
    if !batch.is_empty() {
        store.insert_readings(&batch).expect("insert");
    }
    (steps as usize, started.elapsed())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (days, per_query) = if full { (365, 300) } else { (7, 5) };
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("year.db");
    let end: DateTime<Utc> = "2026-05-17T12:00:00Z".parse().expect("time");

    let (readings, took) = seed(&path, days, end);
    let store = Store::open_read_only(&path).expect("reopen");
    let db_bytes = store.size_bytes().expect("size");
    drop(store);
    let values_per_reading = 15;
    println!(
        "seeded {readings} readings × {values_per_reading} values ({} days, every {STEP_MINUTES} min) in {:.1} s",
        days,
        took.as_secs_f64()
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let failed = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let status: kamstrup_web::StatusFn = Arc::new(|| serde_json::Value::Null);
        let server = tokio::spawn(kamstrup_web::serve(
            listener,
            path.clone(),
            status,
            kamstrup_web::Access::anyone(),
            async {
                let _ = stopped.await;
            },
        ));
        let client = reqwest::Client::new();
        let iso = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let ago = |d: i64| iso(end - chrono::Duration::days(d));
        let to = iso(end);
        // The page's queries: line charts per range, and the energy bars per period.
        let queries = [
            (
                "t1 24 h raw",
                format!("register=t1&from={}&to={to}", ago(1)),
            ),
            (
                "t1 7 d per hour",
                format!("register=t1&from={}&to={to}&bucket=hour", ago(7)),
            ),
            (
                "power 30 d per hour",
                format!("register=power&from={}&to={to}&bucket=hour", ago(30)),
            ),
            (
                "t1 1 y per day",
                format!("register=t1&from={}&to={to}&bucket=day", ago(365)),
            ),
            (
                "energy 30 d per day",
                format!("register=heat_energy&from={}&to={to}&bucket=day", ago(29)),
            ),
            (
                "energy 26 w per week",
                format!("register=heat_energy&from={}&to={to}&bucket=week", ago(175)),
            ),
            (
                "energy 1 y per month",
                format!(
                    "register=heat_energy&from={}&to={to}&bucket=month",
                    ago(334)
                ),
            ),
            (
                "t1 93 d raw (longest raw)",
                format!("register=t1&from={}&to={to}", ago(93)),
            ),
        ];
        println!();
        println!(
            "{:<28} {:>7} {:>9} {:>9} {:>9}",
            "GET /api/meters/{serial}/readings", "points", "p50 ms", "p99 ms", "max ms"
        );
        let mut all = Vec::new();
        let mut page = Vec::new();
        for (name, query) in &queries {
            let url = format!("http://{addr}/api/meters/{SERIAL}/readings?{query}");
            let mut times = Vec::with_capacity(per_query);
            let mut points = 0;
            // A few requests first so that every connection and prepared statement exists.
            for _ in 0..3 {
                let _ = client
                    .get(&url)
                    .send()
                    .await
                    .expect("warm-up")
                    .bytes()
                    .await;
            }
            for _ in 0..per_query {
                let t = Instant::now();
                let response = client.get(&url).send().await.expect("request");
                assert!(
                    response.status().is_success(),
                    "{name}: {}",
                    response.status()
                );
                let body = response.bytes().await.expect("body");
                times.push(t.elapsed());
                points = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["points"].as_array().map(Vec::len))
                    .unwrap_or(0);
            }
            times.sort();
            println!(
                "{name:<28} {points:>7} {:>9.2} {:>9.2} {:>9.2}",
                percentile(&times, 50.0).as_secs_f64() * 1e3,
                percentile(&times, 99.0).as_secs_f64() * 1e3,
                times.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
            );
            if !name.contains("longest raw") {
                page.extend_from_slice(&times);
            }
            all.extend(times);
        }
        page.sort();
        all.sort();
        let p99 = percentile(&page, 99.0);
        println!(
            "{:<28} {:>7} {:>9.2} {:>9.2}",
            "all the page's queries",
            "",
            percentile(&page, 50.0).as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
        let _ = stop.send(());
        let _ = server.await;
        full && p99 > TARGET_P99
    });

    let file_bytes = std::fs::metadata(dir.path().join("year.db"))
        .map(|m| m.len())
        .unwrap_or(0);
    let per_year = |b: u64| b as f64 * 365.0 / days as f64;
    println!();
    println!(
        "SQLite: {:.1} MB per meter-year ({} bytes for {days} days; file on disk {} bytes), {:.0} bytes per reading of {values_per_reading} values",
        per_year(db_bytes) / 1e6,
        db_bytes,
        file_bytes,
        db_bytes as f64 / readings as f64,
    );
    if failed {
        println!(
            "FAIL: p99 of the page's queries is above the {} ms target",
            TARGET_P99.as_millis()
        );
        std::process::exit(1);
    }
    if full {
        println!("p99 target (< {} ms): met", TARGET_P99.as_millis());
    }
}
