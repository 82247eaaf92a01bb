//! Benchmark: a one-shot 66C read with a known program (a fresh driver per read, as
//! `kamstrup read --program A-B-CCC` makes one) from a paced MULTICAL 66C simulator (300 Bd
//! request, 1200 Bd reply, 300 ms latency) over a real pseudo-terminal: IR sessions per read and
//! wall time beside the `/#1` air-time bound; then the same read done the seed scripts' way
//! (fixed 1 s sleep before the baud switch) for contrast.
//!
//! Run: `cargo bench -p kamstrup-meter --bench mc66c_wire_time`. Targets: exactly 1 IR session
//! (`/#1`) per read, wall ≤ 1.15 × bound, where bound = 3 B at 300 Bd 7E2 + latency + 81 B at
//! 1200 Bd 7E1 = 110 + 300 + 675 ms.

use std::time::{Duration, Instant};

use kamstrup_mc66c::{Record, StandardData1};
use kamstrup_meter::sim::{self, Mc66cModel, SimModel, SimOptions};
use kamstrup_meter::{Mc66cMeter, Mc66cOptions};
use kamstrup_optical::{
    open_pty_with, open_serial, LineSettings, LinkError, Timeouts, Transceiver,
};

const LATENCY: Duration = Duration::from_millis(300);
const ROUNDS: usize = 7;
const REPLY_LEN: usize = 81;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let model = SimModel::Mc66c(Mc66cModel::new("4-2-119".parse()?));
    let (mut meter_end, slave) = open_pty_with(model.line_settings())?;
    tokio::spawn(async move {
        let mut options = SimOptions {
            pace: true,
            latency: LATENCY,
            latency_jitter: Duration::ZERO,
            ..SimOptions::for_model(model)
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
    let path = slave.to_string_lossy().into_owned();
    let link = open_serial(&path, LineSettings::MC66C_REQUEST)?;
    // What `kamstrup read --protocol mc66c --program 4-2-119` (no --identify) builds.
    let options = Mc66cOptions {
        program: Some("4-2-119".parse()?),
        identify: false,
        ..Mc66cOptions::default()
    };
    let mut link: Box<dyn kamstrup_optical::Link> = Box::new(link);
    let bound = LineSettings::MC66C_REQUEST.air_time(3)
        + LATENCY
        + LineSettings::MC66C_REPLY.air_time(REPLY_LEN);

    println!(
        "mc66c_wire_time: /#1 from a paced MULTICAL 66C simulator over a pty, {} ms latency; bound = 3 B at 300 7E2 ({:.1} ms) + latency + {REPLY_LEN} B at 1200 7E1 ({:.1} ms) = {:.1} ms",
        LATENCY.as_millis(),
        ms(LineSettings::MC66C_REQUEST.air_time(3)),
        ms(LineSettings::MC66C_REPLY.air_time(REPLY_LEN)),
        ms(bound)
    );
    let mut ratios = Vec::new();
    let mut walls = Vec::new();
    let mut sessions = Vec::new();
    for round in 0..ROUNDS {
        // A fresh driver per read: nothing is cached from the previous one, as in a new process.
        let mut meter = Mc66cMeter::new(link, path.clone(), options);
        let before = meter.stats();
        let started = Instant::now();
        let reading = meter.read_standard().await?;
        let wall = started.elapsed();
        let after = meter.stats();
        link = meter.into_link();
        assert_eq!(reading.registers.len(), 10, "all ten /#1 fields");
        sessions.push(after.requests - before.requests);
        let ratio = wall.as_secs_f64() / bound.as_secs_f64();
        if round > 0 {
            // The first round includes the runtime's and the pty's warm-up.
            ratios.push(ratio);
            walls.push(ms(wall));
        }
        println!(
            "  round {round}: wall {:7.1} ms  bound {:7.1} ms  ratio {ratio:.3}  requests {}  retries {}  bytes rx {}",
            ms(wall),
            ms(bound),
            after.requests - before.requests,
            after.retries - before.retries,
            after.link.bytes_received - before.link.bytes_received,
        );
    }
    let ratio = median(ratios);
    let one_session = sessions.iter().all(|n| *n == 1);
    println!(
        "one-shot read with a known program: IR sessions per read {:?} (target 1: /#1 only) {}",
        sessions,
        if one_session { "PASS" } else { "FAIL" }
    );
    println!(
        "switch after the request's air time: median wall {:.1} ms, bound {:.1} ms, median ratio {ratio:.3} (target <= 1.15) {}",
        median(walls),
        ms(bound),
        if ratio <= 1.15 { "PASS" } else { "FAIL" }
    );

    // The seed scripts' way (RuntimeError123, golles, jonkerj): send "/#1" at 300 Bd, sleep a
    // fixed 1 s, switch to 1200 Bd, flush the input, read up to 87 bytes with a 2 s timeout.
    let mut tx = Transceiver::new(link);
    let mut seed_walls = Vec::new();
    for round in 0..3 {
        tx.link_mut()
            .set_line_settings(LineSettings::MC66C_REQUEST)?;
        tx.clear_input().await?;
        let started = Instant::now();
        tx.send(b"/#1").await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        tx.link_mut().set_line_settings(LineSettings::MC66C_REPLY)?;
        let flushed = tx.clear_input().await?;
        let mut got = Vec::new();
        let two_s = Duration::from_secs(2);
        let outcome = tx
            .receive(Timeouts::new(two_s, two_s, two_s), |b| {
                got.push(b);
                (got.len() >= 87).then_some(())
            })
            .await;
        let wall = started.elapsed();
        match outcome {
            Ok(()) | Err(LinkError::Timeout { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let verdict = match StandardData1::parse(&got) {
            Ok(_) => "complete, parses".to_string(),
            Err(e) => format!("INCOMPLETE, rejected ({}: {e})", e.kind()),
        };
        seed_walls.push(ms(wall));
        println!(
            "  seeds' way round {round}: wall {:7.1} ms, {flushed} garbled bytes flushed at the switch, {} of {REPLY_LEN} bytes read {:?}: {verdict}",
            ms(wall),
            got.len(),
            kamstrup_mc66c::escape(&got),
        );
    }
    println!(
        "seeds' fixed-1-s way: median wall {:.1} ms = {:.2} x bound, and the reply is lost: with a 300 ms latency it starts at {:.0} ms, 590 ms before the switch",
        median(seed_walls.clone()),
        median(seed_walls) / ms(bound),
        ms(LineSettings::MC66C_REQUEST.air_time(3) + LATENCY)
    );
    Ok(())
}
