//! Benchmark: read the standard 8-register set from a paced simulator (1200 Bd 8N2, 50 ms reply
//! latency) over a real pseudo-terminal, and compare the wall time with the wire-time bound.
//!
//! Run: `cargo bench -p kamstrup-meter --bench read_wire_time`. Prints its figures; the target is
//! one request and wall ≤ 1.10 × bound. Also shows the one-request-per-register way for contrast.

use std::time::{Duration, Instant};

use kamstrup_kmp::registers::DEFAULT_SET;
use kamstrup_meter::sim::{self, SimModel, SimOptions};
use kamstrup_meter::{KmpMeter, KmpOptions};
use kamstrup_optical::{open_pty, open_serial, LineSettings};

const LATENCY: Duration = Duration::from_millis(50);
const ROUNDS: usize = 7;

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
        loop {
            if sim::serve(&mut meter_end, model, &mut options)
                .await
                .is_err()
            {
                break;
            }
        }
    });
    let link = open_serial(&slave.to_string_lossy(), LineSettings::KMP)?;
    let mut meter = KmpMeter::new(
        Box::new(link),
        slave.to_string_lossy(),
        KmpOptions::default(),
    );
    let line = LineSettings::KMP;

    println!("read_wire_time: standard set of {} registers, MULTICAL 403 simulator, {line}, {} ms latency, pty", DEFAULT_SET.len(), LATENCY.as_millis());
    let mut ratios = Vec::new();
    let mut walls = Vec::new();
    let mut last = None;
    for round in 0..ROUNDS {
        let before = meter.stats();
        let started = Instant::now();
        let reading = meter.read(&DEFAULT_SET, false).await?;
        let wall = started.elapsed();
        let after = meter.stats();
        let sent = (after.link.bytes_sent - before.link.bytes_sent) as usize;
        let received = (after.link.bytes_received - before.link.bytes_received) as usize;
        let requests = after.requests - before.requests;
        let bound = line.air_time(sent) + LATENCY * requests as u32 + line.air_time(received);
        let ratio = wall.as_secs_f64() / bound.as_secs_f64();
        if round > 0 {
            // The first round includes the runtime's and the pty's warm-up.
            ratios.push(ratio);
            walls.push(wall.as_secs_f64() * 1000.0);
        }
        assert_eq!(
            reading.registers.len(),
            DEFAULT_SET.len() + 1,
            "all registers plus derived ΔT"
        );
        last = Some((requests, sent, received, bound));
        println!(
            "  round {round}: wall {:7.1} ms  bound {:7.1} ms  ratio {ratio:.3}  requests {requests}  bytes tx {sent} rx {received}",
            wall.as_secs_f64() * 1000.0,
            bound.as_secs_f64() * 1000.0
        );
    }
    if let Some((requests, sent, received, bound)) = last {
        let ratio = median(ratios);
        println!(
            "batched: requests {requests}, bytes on the wire {} (tx {sent} + rx {received}), bound {:.1} ms, median wall {:.1} ms, median ratio {ratio:.3} (target <= 1.10) {}",
            sent + received,
            bound.as_secs_f64() * 1000.0,
            median(walls),
            if ratio <= 1.10 && requests == 1 { "PASS" } else { "FAIL" }
        );
    }

    // Contrast: the seed scripts' way, one request per register.
    let started = Instant::now();
    let before = meter.stats();
    for id in DEFAULT_SET {
        meter.get_registers(&[id]).await?;
    }
    let after = meter.stats();
    println!(
        "one-per-register (seed scripts' way): requests {}, bytes {}, wall {:.1} ms",
        after.requests - before.requests,
        (after.link.bytes_sent + after.link.bytes_received)
            - (before.link.bytes_sent + before.link.bytes_received),
        started.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}
