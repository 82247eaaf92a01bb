//! Benchmark of the web's history queries: one meter-year of 15-minute readings (35,040 × 9
//! registers), then p50/p99 of `series` / `usage_series` over 24 h … 1 y, and bytes per year.
//!
//! Run: `cargo bench -p kamstrup-store --bench series`. Target: every p99 under 50 ms.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use kamstrup_decimal::Decimal;
use kamstrup_reading::{MeterIdentity, Protocol, Reading, RegisterValue};
use kamstrup_store::{Bucket, MeterId, Store, StoreError};

const READINGS_PER_YEAR: i64 = 365 * 96;
const TARGET_P99: Duration = Duration::from_millis(50);

fn value(id: u16, name: &str, short: &str, unit: &str, v: Decimal) -> RegisterValue {
    RegisterValue {
        id,
        name: name.into(),
        short: short.into(),
        value: v,
        unit: unit.into(),
        unit_code: Some(0),
        text: None,
        derived: false,
    }
}

fn dec(m: i64, e: i16) -> Decimal {
    Decimal::new(i128::from(m), e).unwrap_or(Decimal::ZERO)
}

/// A plausible MULTICAL 603 year: counters rise, temperatures and power vary with the hour.
fn year(meter: MeterId, start: DateTime<Utc>) -> Vec<(MeterId, Reading, Option<String>)> {
    let mut energy = 12_345_678i64; // kWh × 1000 → MWh with 3 decimals
    let mut volume = 4_567_890i64; // m³ × 100
    (0..READINGS_PER_YEAR)
        .map(|i| {
            let hour = (i / 4) % 24;
            let season = (i / (96 * 30)) % 12;
            let power = 20 + (hour * 7 + season * 13) % 90; // kW × 10
            energy += power / 4;
            volume += 1 + power / 30;
            let t1 = 600 + (hour * 3 + season) % 80; // °C × 10 (one decimal)
            let t2 = 3500 + (hour * 17) % 900; // °C × 100 (two decimals)
            let registers = vec![
                value(60, "heat_energy", "E1", "MWh", dec(energy, -3)),
                value(68, "volume", "V1", "m³", dec(volume, -2)),
                value(86, "t1", "T1", "°C", dec(t1, -1)),
                value(87, "t2", "T2", "°C", dec(t2, -2)),
                value(80, "power", "P1", "kW", dec(power, -1)),
                value(74, "flow", "Q1", "l/h", dec(power * 3, 0)),
                value(1004, "hours", "HR", "h", dec(10_000 + i / 4, 0)),
                value(99, "info", "INFO", "", dec(0, 0)),
                value(0, "delta_t", "ΔT", "K", dec(t1 * 10 - t2, -2)),
            ];
            let reading = Reading {
                source: Default::default(),
                meter: MeterIdentity {
                    protocol: Protocol::Kmp,
                    port: "/dev/serial/by-id/usb-FTDI_FT230X_Basic_UART_D30A1B2C-if00-port0".into(),
                    serial: Some(5_512_345),
                    meter_type: Some("MULTICAL 603".into()),
                },
                taken_at: start + chrono::Duration::minutes(15 * i),
                registers,
                missing: vec![],
            };
            (meter, reading, None)
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let last = sorted.len().saturating_sub(1);
    let at = ((last as f64) * p).round() as usize;
    sorted.get(at.min(last)).copied().unwrap_or_default()
}

/// Times `run` until about a second or 300 runs have passed (at least 20 runs).
fn measure(mut run: impl FnMut() -> Result<usize, StoreError>) -> (Duration, Duration, usize) {
    let mut times = Vec::new();
    let mut points = 0;
    let started = Instant::now();
    while times.len() < 20 || (times.len() < 300 && started.elapsed() < Duration::from_secs(1)) {
        let t = Instant::now();
        points = run().unwrap_or(0);
        times.push(t.elapsed());
    }
    times.sort();
    (percentile(&times, 0.5), percentile(&times, 0.99), points)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    // KAMSTRUP_BENCH_DB keeps the file for inspection (e.g. with sqlite3's dbstat).
    let path = match std::env::var_os("KAMSTRUP_BENCH_DB") {
        Some(p) => {
            let p = std::path::PathBuf::from(p);
            let _ = std::fs::remove_file(&p);
            p
        }
        None => dir.path().join("bench.db"),
    };
    let mut store = Store::open(&path)?;
    let start: DateTime<Utc> = "2024-01-01T00:00:00Z".parse()?;
    let meter = store.upsert_meter(5_512_345, "heat", Protocol::Kmp, None, "sim", start)?;

    let items = year(meter, start);
    let t = Instant::now();
    store.insert_readings(&items)?;
    let insert = t.elapsed();
    drop(items);
    let bytes = store.size_bytes()?;
    println!(
        "insert: {READINGS_PER_YEAR} readings × 9 registers in one transaction: {:.2} s \
         ({:.1} µs per reading)",
        insert.as_secs_f64(),
        insert.as_secs_f64() * 1e6 / READINGS_PER_YEAR as f64
    );
    println!(
        "size: {bytes} bytes per meter-year ({:.1} MiB, {:.1} bytes per value)",
        bytes as f64 / 1_048_576.0,
        bytes as f64 / (READINGS_PER_YEAR * 9) as f64
    );

    // The web reads through its own read-only connection while the daemon owns the writer.
    let reader = Store::open_read_only(&path)?;
    let end = start + chrono::Duration::days(365);
    let ranges = [
        ("24 h", chrono::Duration::hours(24)),
        ("7 d", chrono::Duration::days(7)),
        ("30 d", chrono::Duration::days(30)),
        ("1 y", chrono::Duration::days(365)),
    ];
    let buckets = [
        ("raw", None),
        ("hour", Some(Bucket::Hour)),
        ("day", Some(Bucket::Day)),
        ("week", Some(Bucket::Week)),
        ("month", Some(Bucket::Month)),
    ];
    let mut worst = Duration::ZERO;
    println!(
        "\n{:<13} {:<5} {:<6} {:>7} {:>10} {:>10}",
        "query", "range", "bucket", "points", "p50", "p99"
    );
    for (range_name, span) in ranges {
        let from = end - span;
        for (bucket_name, bucket) in buckets {
            let (p50, p99, n) =
                measure(|| Ok(reader.series(meter, "t1", from, end, bucket)?.len()));
            worst = worst.max(p99);
            println!(
                "{:<13} {:<5} {:<6} {:>7} {:>10.3?} {:>10.3?}",
                "series t1", range_name, bucket_name, n, p50, p99
            );
        }
        for (bucket_name, bucket) in buckets {
            let Some(bucket) = bucket else { continue };
            let (p50, p99, n) = measure(|| {
                Ok(reader
                    .usage_series(meter, "heat_energy", from, end, bucket)?
                    .len())
            });
            worst = worst.max(p99);
            println!(
                "{:<13} {:<5} {:<6} {:>7} {:>10.3?} {:>10.3?}",
                "usage energy", range_name, bucket_name, n, p50, p99
            );
        }
    }
    let (p50, p99, _) = measure(|| {
        Ok(reader
            .usage_since(meter, "heat_energy", end - chrono::Duration::days(1))?
            .map_or(0, |_| 1))
    });
    println!("usage_since (today): p50 {p50:.3?}, p99 {p99:.3?}");
    let (p50, p99, n) = measure(|| Ok(reader.latest_deliverable()?.len()));
    println!("latest_deliverable: {n} meters, p50 {p50:.3?}, p99 {p99:.3?}");

    println!(
        "\nworst p99: {worst:.3?} (target < {TARGET_P99:?}): {}",
        if worst < TARGET_P99 { "met" } else { "MISSED" }
    );
    Ok(())
}
