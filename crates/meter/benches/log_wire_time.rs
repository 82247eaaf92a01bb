//! Benchmark: a day of hourly records (24 records, the standard registers the hourly logger
//! holds) read from the meter's own logger of a paced simulated MULTICAL 403 (1200 Bd 8N2, 50 ms
//! latency) over a real pseudo-terminal, against the wire-time bound; and the same day of data
//! by polling every 15 minutes, in IR sessions and bytes per day.
//!
//! Run: `cargo bench -p kamstrup-meter --bench log_wire_time`. Prints its figures; the target is
//! one IR session and wall ≤ 1.10 × bound.

use std::time::{Duration, Instant};

use kamstrup_kmp::registers::DEFAULT_SET;
use kamstrup_kmp::LoggerType;
use kamstrup_meter::sim::kmp_loggers::ZONE_STANDARD_OFFSET_MIN;
use kamstrup_meter::sim::{self, SimModel, SimOptions};
use kamstrup_meter::{KmpMeter, KmpOptions, LogQuery, Selection};
use kamstrup_optical::{open_pty, open_serial, LineSettings};

const LATENCY: Duration = Duration::from_millis(50);
const ROUNDS: usize = 3;
const POLLS_PER_DAY: u64 = 24 * 4;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
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
    let link = open_serial(&slave.to_string_lossy(), LineSettings::KMP)?;
    let mut meter = KmpMeter::new(
        Box::new(link),
        slave.to_string_lossy(),
        KmpOptions::default(),
    );
    let line = LineSettings::KMP;
    let query = LogQuery {
        logger: LoggerType::Hourly,
        registers: Vec::new(),
        selection: Selection::Last(24),
        zone_standard_offset_min: ZONE_STANDARD_OFFSET_MIN,
    };

    println!(
        "log_wire_time: 24 hourly records from the logger (B8), MULTICAL 403 simulator, {line}, {} ms latency, pty",
        LATENCY.as_millis()
    );
    let mut ratios = Vec::new();
    let mut walls = Vec::new();
    let mut last = None;
    for round in 0..ROUNDS {
        let before = meter.stats();
        let started = Instant::now();
        let read = meter.read_log(&query, |_, _| {}).await?;
        let wall = started.elapsed();
        let after = meter.stats();
        let sent = (after.link.bytes_sent - before.link.bytes_sent) as usize;
        let received = (after.link.bytes_received - before.link.bytes_received) as usize;
        let requests = after.requests - before.requests;
        let bound = line.air_time(sent) + LATENCY * requests as u32 + line.air_time(received);
        let ratio = wall.as_secs_f64() / bound.as_secs_f64();
        assert_eq!(read.rows.len(), 24, "a whole day of hours");
        ratios.push(ratio);
        walls.push(wall.as_secs_f64());
        println!(
            "  round {round}: wall {:6.2} s  bound {:6.2} s  ratio {ratio:.3}  requests {requests} ({} pages)  bytes tx {sent} rx {received}  registers/record {}",
            wall.as_secs_f64(),
            bound.as_secs_f64(),
            read.pages,
            read.rows[0].values.len() + 1
        );
        last = Some((requests, sent, received, bound));
    }
    let ratio = median(ratios);
    let (requests, sent, received, bound) = last.ok_or("no round")?;
    println!(
        "logger: IR sessions 1, requests {requests}, bytes {} (tx {sent} + rx {received}), bound {:.2} s, median wall {:.2} s, median ratio {ratio:.3} (target <= 1.10) {}",
        sent + received,
        bound.as_secs_f64(),
        median(walls),
        if ratio <= 1.10 { "PASS" } else { "FAIL" }
    );

    // The same day by polling the standard set every 15 minutes: one IR session per poll.
    let before = meter.stats();
    let started = Instant::now();
    meter.read(&DEFAULT_SET, false).await?;
    let poll_wall = started.elapsed();
    let after = meter.stats();
    let poll_bytes = (after.link.bytes_sent + after.link.bytes_received)
        - (before.link.bytes_sent + before.link.bytes_received);
    println!(
        "polling every 15 min: IR sessions {POLLS_PER_DAY} per day ({} request each, {poll_bytes} bytes, {:.2} s of IR traffic), {} bytes and {:.1} s of IR traffic per day",
        after.requests - before.requests,
        poll_wall.as_secs_f64(),
        poll_bytes * POLLS_PER_DAY,
        poll_wall.as_secs_f64() * POLLS_PER_DAY as f64
    );
    println!(
        "logger vs polling: 1 session instead of {POLLS_PER_DAY}, {:.0} % of the bytes (hourly, not 15-min, resolution)",
        100.0 * (sent + received) as f64 / (poll_bytes * POLLS_PER_DAY) as f64
    );
    Ok(())
}
