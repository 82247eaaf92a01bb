//! Benchmark: what a MULTICAL 66C back-fill costs — the session the poller runs (`/#D` clock,
//! `/#5` month ends, `/#7` hour logger, each whole) against a paced 66C simulator (300 Bd
//! requests, 1200 Bd 7E1 replies, 300 ms latency) over a real pseudo-terminal, stored into a
//! real SQLite file for a gap of a day and a gap of a week (the IR cost is the same: a 66C sends
//! a data set whole); then the session for a gap beyond the hour logger's 960 hours (`/#6`).
//!
//! Run: `cargo bench -p kamstrup-daemon --bench backfill_66c` (about 12 min: the wire time of
//! `/#7`). `KAMSTRUP_BACKFILL_66C_DAY_ONLY=1` measures only the `/#6` session (~1.5 min).
//! Bound = requests at 300 Bd 7E2 + latency per request + replies at 1200 Bd 7E1 + the 2 s of
//! silence that ends each multi-line reply; target wall ≤ 1.05 × bound.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chrono::Utc;
use kamstrup_daemon::backfill::{mc66c_batches, missing_hours, store_batches, BackfillReport};
use kamstrup_daemon::Plausibility;
use kamstrup_meter::sim::{self, Mc66cModel, SimModel, SimOptions};
use kamstrup_meter::{Mc66cLog, Mc66cMeter, Mc66cOptions, MeterIdentity, Protocol};
use kamstrup_optical::{open_pty_with, open_serial, LineSettings};
use kamstrup_store::Store;

const LATENCY: Duration = Duration::from_millis(300);
/// [`kamstrup_mc66c::timing::MULTILINE_IDLE`]: the silence that ends a multi-line reply.
const IDLE: Duration = Duration::from_secs(2);

struct Session {
    requests: u64,
    sent: u64,
    received: u64,
    wall: Duration,
    bound: Duration,
    read: kamstrup_meter::Mc66cLogRead,
}

async fn session(
    meter: &mut Mc66cMeter,
    logs: &[Mc66cLog],
) -> Result<Session, Box<dyn std::error::Error>> {
    let before = meter.stats();
    let started = Instant::now();
    let read = meter.read_counter_logs(logs, 0).await?;
    let wall = started.elapsed();
    let after = meter.stats();
    let sent = after.link.bytes_sent - before.link.bytes_sent;
    let received = after.link.bytes_received - before.link.bytes_received;
    let requests = after.requests - before.requests;
    // /#D is one line; /#5 and each logger are multi-line (ended by IDLE).
    let multiline = 1 + logs.len() as u32;
    let bound = LineSettings::MC66C_REQUEST.air_time(sent as usize)
        + LATENCY * requests as u32
        + LineSettings::MC66C_REPLY.air_time(received as usize)
        + IDLE * multiline;
    Ok(Session {
        requests,
        sent,
        received,
        wall,
        bound,
        read,
    })
}

fn print(what: &str, s: &Session) {
    let ratio = s.wall.as_secs_f64() / s.bound.as_secs_f64();
    println!(
        "{what}: data sets {}, IR sessions 1, requests {}, bytes {} (tx {} + rx {}), wall {:.1} s, bound {:.1} s, ratio {ratio:.3} (target <= 1.05) {}; meter clock offset {:?} s",
        s.read.data_sets.join(" "),
        s.requests,
        s.sent + s.received,
        s.sent,
        s.received,
        s.wall.as_secs_f64(),
        s.bound.as_secs_f64(),
        if ratio <= 1.05 { "PASS" } else { "FAIL" },
        s.read.clock_offset_s
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let program = Mc66cModel::DEFAULT_PROGRAM;
    let model = SimModel::Mc66c(Mc66cModel::new(program));
    let (mut meter_end, slave) = open_pty_with(model.line_settings())?;
    tokio::spawn(async move {
        let mut options = SimOptions {
            pace: true,
            latency: LATENCY,
            latency_jitter: Duration::ZERO,
            ..SimOptions::for_model(model)
        };
        while sim::serve(&mut meter_end, model, &mut options)
            .await
            .is_ok()
        {}
    });
    let path = slave.to_string_lossy().into_owned();
    let link = open_serial(&path, LineSettings::MC66C_REQUEST)?;
    let mut meter = Mc66cMeter::new(
        Box::new(link),
        path,
        Mc66cOptions {
            program: Some(program),
            identify: false,
            ..Mc66cOptions::default()
        },
    );
    println!(
        "backfill_66c: a paced MULTICAL 66C simulator over a pty ({} ms latency, 300 Bd 7E2 requests, 1200 Bd 7E1 replies)",
        LATENCY.as_millis()
    );
    if std::env::var_os("KAMSTRUP_BACKFILL_66C_DAY_ONLY").is_none() {
        let s = session(&mut meter, &[Mc66cLog::Hour]).await?;
        print("gap within 960 h (hour logger)", &s);
        let dir = tempfile::tempdir()?;
        let mut store = Store::open(&dir.path().join("kamstrup.db"))?;
        let now = Utc::now();
        let serial = Mc66cModel::CUSTOMER_NO;
        let meter_id = store.upsert_meter(serial, "heat", Protocol::Mc66c, None, "pty", now)?;
        let identity = MeterIdentity {
            protocol: Protocol::Mc66c,
            port: "pty".into(),
            serial: Some(serial),
            meter_type: None,
        };
        let batches = mc66c_batches(&s.read);
        for (label, hours) in [("a day", 24), ("a week", 168)] {
            let from = now - chrono::Duration::hours(hours);
            let covered = store.hours_with_readings(meter_id, from, now)?;
            let missing: BTreeSet<i64> = missing_hours(from, now, &covered).into_iter().collect();
            let mut report = BackfillReport::default();
            let started = Instant::now();
            store_batches(
                &mut store,
                meter_id,
                &identity,
                &batches,
                s.read.clock_offset_s,
                &missing,
                &Plausibility::default(),
                &mut report,
            )?;
            println!(
                "  gap of {label}: {} hours missing, {} records stored ({} implausible) in {:.1} ms; IR as above ({:.1} s — the same for any gap within 960 h)",
                missing.len(),
                report.stored,
                report.implausible,
                started.elapsed().as_secs_f64() * 1e3,
                s.wall.as_secs_f64()
            );
        }
    }
    let s = session(&mut meter, &[Mc66cLog::Day]).await?;
    print("gap beyond 960 h (day logger only)", &s);
    println!(
        "  day logger records: {}",
        s.read.logs.iter().map(|(_, r)| r.len()).sum::<usize>()
    );
    Ok(())
}
