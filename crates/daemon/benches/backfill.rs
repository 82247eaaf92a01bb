//! Benchmark: the daemon's back-fill of 30 days of hourly records (720 hours with no reading)
//! from a paced simulated MULTICAL 403 (1200 Bd 8N2, 50 ms latency) over a real pseudo-terminal,
//! into a real SQLite file: IR sessions, requests, bytes, wall time against the wire-time bound,
//! and the store's insert time — the same functions the poller runs (`daemon::backfill`).
//!
//! Then the day logger for a 70-day window, beyond the hour logger's 58 days: read from the
//! window's start (as before it was bounded) against the daemon's bounded read of the days
//! before the hour logger's oldest record (`read_periods` of the day logger, after `oldest_stamp`).
//!
//! Run: `cargo bench -p kamstrup-daemon --bench backfill` (about 6 minutes: the wire time of
//! 30 days at 1200 Bd, and about a minute of day logger). `KAMSTRUP_BACKFILL_DAYS=2` for a
//! shorter run. Prints its figures; the target is one IR session and wall ≤ 1.10 × bound.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chrono::Utc;
use kamstrup_daemon::backfill::{
    missing_hours, oldest_stamp, read_hours, read_periods, records_to_store, tally, BackfillReport,
    LogPeriod,
};
use kamstrup_daemon::Plausibility;
use kamstrup_meter::sim::kmp_loggers::ZONE_STANDARD_OFFSET_MIN;
use kamstrup_meter::sim::{self, KmpModel, SimModel, SimOptions};
use kamstrup_meter::{
    KmpMeter, KmpOptions, LogQuery, LoggerType, MeterIdentity, Protocol, Selection,
};
use kamstrup_optical::{open_pty, open_serial, LineSettings};
use kamstrup_store::Store;

const LATENCY: Duration = Duration::from_millis(50);

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let days: i64 = std::env::var("KAMSTRUP_BACKFILL_DAYS")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(30);
    let (mut meter_end, slave) = open_pty()?;
    let model: SimModel = "multical-403".parse()?;
    tokio::spawn(async move {
        let mut options = SimOptions {
            pace: true,
            latency: LATENCY,
            ..SimOptions::default()
        };
        while sim::serve(&mut meter_end, model, &mut options)
            .await
            .is_ok()
        {}
    });
    let line = LineSettings::KMP;
    let link = open_serial(&slave.to_string_lossy(), line)?;
    let mut meter = KmpMeter::new(
        Box::new(link),
        slave.to_string_lossy(),
        KmpOptions::default(),
    );
    let dir = tempfile::tempdir()?;
    let mut store = Store::open(&dir.path().join("kamstrup.db"))?;
    let serial = u64::from(KmpModel::Multical403.serial());
    let now = Utc::now();
    let meter_id = store.upsert_meter(serial, "heat", Protocol::Kmp, None, "pty", now)?;
    let identity = MeterIdentity {
        protocol: Protocol::Kmp,
        port: "pty".into(),
        serial: Some(serial),
        meter_type: None,
    };
    let from = now - chrono::Duration::days(days);
    let covered = store.hours_with_readings(meter_id, from, now)?;
    let missing = missing_hours(from, now, &covered);
    let oldest = chrono::DateTime::from_timestamp(missing[0] * 3600, 0).ok_or("time")?;
    println!(
        "backfill: {} hours without a reading ({days} days) from the hour logger (B8) of a MULTICAL 403 simulator, {line}, {} ms latency, pty",
        missing.len(),
        LATENCY.as_millis()
    );

    let before = meter.stats();
    let (read, wall, bytes) = read_hours(&mut meter, oldest, ZONE_STANDARD_OFFSET_MIN).await?;
    let after = meter.stats();
    let sent = (after.link.bytes_sent - before.link.bytes_sent) as usize;
    let received = (after.link.bytes_received - before.link.bytes_received) as usize;
    let requests = after.requests - before.requests;
    let bound = line.air_time(sent) + LATENCY * requests as u32 + line.air_time(received);
    let ratio = wall.as_secs_f64() / bound.as_secs_f64();

    let missing_set: BTreeSet<i64> = missing.iter().copied().collect();
    let mut report = BackfillReport {
        missing_hours: missing.len(),
        records_read: read.rows.len(),
        requests: read.requests,
        bytes,
        pages: read.pages,
        wall,
        clock_offset_s: read.clock_offset_s,
        ..Default::default()
    };
    let started = Instant::now();
    let records = records_to_store(
        &store,
        meter_id,
        &identity,
        &read,
        &missing_set,
        &Plausibility::default(),
        &mut report,
    )?;
    let prepared = started.elapsed();
    let started = Instant::now();
    let inserted = store.insert_logged(&records)?;
    let insert = started.elapsed();
    tally(&mut report, &records, &inserted);
    let started = Instant::now();
    let again = store.insert_logged(&records)?;
    let repeat = started.elapsed();
    assert!(again.iter().all(|i| !i.is_new()), "a repeat stores nothing");
    assert!(
        report.stored + 1 >= missing.len(),
        "{} of {} hours filled",
        report.stored,
        missing.len()
    );

    println!(
        "IR: sessions 1, requests {requests} ({} pages), bytes {} (tx {sent} + rx {received}), records read {}, bound {:.1} s, wall {:.1} s, ratio {ratio:.3} (target <= 1.10) {}",
        read.pages,
        sent + received,
        read.rows.len(),
        bound.as_secs_f64(),
        wall.as_secs_f64(),
        if ratio <= 1.10 { "PASS" } else { "FAIL" }
    );
    println!(
        "store: {} records stored ({} implausible, {} hours still missing), plausibility baselines {:.1} ms, insert (one transaction) {:.1} ms = {:.1} µs/record, repeat insert (all already stored) {:.1} ms",
        report.stored,
        report.implausible,
        missing.len().saturating_sub(report.stored),
        prepared.as_secs_f64() * 1e3,
        insert.as_secs_f64() * 1e3,
        insert.as_secs_f64() * 1e6 / report.stored.max(1) as f64,
        repeat.as_secs_f64() * 1e3
    );
    println!(
        "vs polling every 15 min for those {days} days: {} IR sessions",
        days * 96
    );

    // The day logger for a 70-day window: the days before the hour logger's oldest record.
    let cost = |meter: &KmpMeter, before: kamstrup_meter::DriverStats| {
        let after = meter.stats();
        (
            after.requests - before.requests,
            after.link.bytes_sent + after.link.bytes_received
                - before.link.bytes_sent
                - before.link.bytes_received,
        )
    };
    let window_from = Utc::now() - chrono::Duration::days(70);
    let before = meter.stats();
    let started = Instant::now();
    let query = LogQuery {
        logger: LoggerType::Daily,
        registers: Vec::new(),
        selection: Selection::Since(window_from - chrono::Duration::hours(1)),
        zone_standard_offset_min: ZONE_STANDARD_OFFSET_MIN,
    };
    let all = meter.read_log(&query, |_, _| {}).await?;
    let (requests, bytes) = cost(&meter, before);
    println!(
        "day logger, 70-day window, read from the window's start: {} records, requests {requests}, bytes {bytes}, wall {:.1} s",
        all.rows.len(),
        started.elapsed().as_secs_f64()
    );
    let before = meter.stats();
    let started = Instant::now();
    let (floor, ..) =
        oldest_stamp(&mut meter, LoggerType::Hourly, ZONE_STANDARD_OFFSET_MIN).await?;
    let floor = floor.ok_or("empty hour logger")?;
    let (probe_requests, probe_bytes) = cost(&meter, before);
    let probe_wall = started.elapsed();
    let before = meter.stats();
    let started = Instant::now();
    let (days, ..) = read_periods(
        &mut meter,
        LogPeriod::Day,
        window_from,
        floor,
        ZONE_STANDARD_OFFSET_MIN,
    )
    .await?;
    let (requests, bytes) = cost(&meter, before);
    println!(
        "day logger, bounded by the hour logger's oldest record ({}): {} records, requests {requests}, bytes {bytes}, wall {:.1} s; the hour logger's oldest record (what a restart asks): requests {probe_requests}, bytes {probe_bytes}, wall {:.2} s",
        floor.format("%Y-%m-%d %H:%M UTC"),
        days.rows.len(),
        started.elapsed().as_secs_f64(),
        probe_wall.as_secs_f64()
    );
    Ok(())
}
