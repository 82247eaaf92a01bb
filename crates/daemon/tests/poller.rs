//! The pollers in paused tokio time, through the daemon's own `run_with_clock`: a simulated
//! meter (in process, no real I/O) read on its schedule, stored first and delivered in order to
//! an every-reading sink and as the newest to a state sink; a meter that does not answer retried
//! with growing back-off, each failure recorded with the doctor's verdict; a back-fill window
//! longer than the hour logger filled from the day logger beyond it.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use kamstrup_daemon::{
    Backfill, Clock, DaemonConfig, MeterSettings, Plausibility, ProtocolChoice, Schedule,
    StatusHandle,
};
use kamstrup_meter::PortSpec;
use kamstrup_sinks::{CheckLine, Delivered, Delivery, Sink, SinkError};
use kamstrup_store::Store;

/// What a recording sink was given: (reading id, taken at) per delivered reading.
type Got = Arc<Mutex<Vec<(i64, DateTime<Utc>)>>>;

/// A sink that records what it was given.
struct Recording {
    name: &'static str,
    delivery: Delivery,
    got: Got,
}

#[async_trait::async_trait]
impl Sink for Recording {
    fn name(&self) -> &str {
        self.name
    }

    fn delivery(&self) -> Delivery {
        self.delivery
    }

    async fn deliver(&mut self, batch: &[Delivered<'_>]) -> Result<(), SinkError> {
        let mut got = self.got.lock().unwrap();
        got.extend(batch.iter().map(|d| (d.id, d.reading.taken_at)));
        Ok(())
    }

    async fn check(&mut self) -> Result<Vec<CheckLine>, SinkError> {
        Ok(Vec::new())
    }
}

fn recording(name: &'static str, delivery: Delivery) -> (Box<dyn Sink>, Got) {
    let got = Got::default();
    let sink = Recording {
        name,
        delivery,
        got: got.clone(),
    };
    (Box::new(sink), got)
}

fn meter(port: PortSpec) -> MeterSettings {
    MeterSettings {
        name: "heat".into(),
        port,
        protocol: ProtocolChoice::Kmp,
        // The standard set: energy, volume, hours, T1, T2, power, flow, info.
        registers: vec![60, 68, 86, 87, 80, 74, 1004, 99],
        schedule: Schedule::Every(Duration::from_secs(15 * 60)),
        baud: None,
        timeout: Duration::from_secs(2),
        program: None,
        model: None,
        backfill: Backfill::OFF,
    }
}

fn config(dir: &tempfile::TempDir, meter: MeterSettings) -> DaemonConfig {
    DaemonConfig {
        store_path: dir.path().join("kamstrup.db"),
        retention: None,
        meters: vec![meter],
        plausibility: Plausibility::default(),
        retry_scale: 1.0,
    }
}

/// Lets virtual time pass in one-second steps. While the store works on a blocking thread,
/// tokio sees an idle runtime and jumps to the next timer (this loop's): a millisecond of real
/// time per step lets that work finish first, so the pollers' clock stays within seconds.
async fn pass(duration: Duration) {
    let end = tokio::time::Instant::now() + duration;
    while tokio::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(1));
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// Seconds from the clock's start, rounded to whole seconds.
fn offset(at: DateTime<Utc>) -> i64 {
    (at - start()).num_milliseconds().div_euclid(1000)
}

#[tokio::test(start_paused = true)]
async fn a_meter_is_read_on_its_schedule_stored_first_and_delivered_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &dir,
        meter(PortSpec::Sim {
            model: "multical-403".into(),
        }),
    );
    let (every, every_got) = recording("every", Delivery::Every);
    let (latest, latest_got) = recording("latest", Delivery::Latest);
    let status = StatusHandle::default();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(kamstrup_daemon::run_with_clock(
        cfg.clone(),
        vec![every, latest],
        status.clone(),
        async move {
            let _ = stopped.await;
        },
        Clock::following_tokio(start()),
    ));
    // Polls at 0, 15, 30 and 45 minutes; stop before the fifth.
    pass(Duration::from_secs(50 * 60)).await;
    stop.send(()).unwrap();
    daemon.await.unwrap().unwrap();

    let store = Store::open(&cfg.store_path).unwrap();
    let stored: Vec<(i64, DateTime<Utc>)> = store
        .readings_after(kamstrup_store::ReadingId(0), 100)
        .unwrap()
        .into_iter()
        .map(|r| (r.id.0, r.reading.taken_at))
        .collect();
    let minutes: Vec<i64> = stored.iter().map(|(_, at)| offset(*at) / 60).collect();
    assert_eq!(minutes, [0, 15, 30, 45], "reading times: {stored:?}");
    // Each read takes the simulated meter's reply time, a few seconds at most.
    for (_, at) in &stored {
        assert!(offset(*at) % 60 < 10, "{at}");
    }
    // The every-reading sink got each stored reading once, oldest first.
    assert_eq!(*every_got.lock().unwrap(), stored);
    // The state sink was woken after each poll and never went back to an older reading.
    let latest = latest_got.lock().unwrap().clone();
    assert_eq!(latest.last(), stored.last());
    assert!(latest.windows(2).all(|w| w[0].0 < w[1].0), "{latest:?}");
    let snapshot = status.snapshot();
    let heat = &snapshot.meters["heat"];
    assert_eq!((heat.polls, heat.failures, heat.failure_streak), (4, 0, 0));
    assert_eq!(
        heat.last_ok.map(offset),
        stored.last().map(|(_, at)| offset(*at))
    );
}

#[tokio::test(start_paused = true)]
async fn a_meter_that_does_not_answer_is_retried_with_growing_back_off() {
    // A port nobody listens on: every connect is refused at once (no real waiting involved).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let spec: PortSpec = format!("tcp://127.0.0.1:{port}").parse().unwrap();
    let cfg = config(&dir, meter(spec));
    let (every, every_got) = recording("every", Delivery::Every);
    let status = StatusHandle::default();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(kamstrup_daemon::run_with_clock(
        cfg.clone(),
        vec![every],
        status.clone(),
        async move {
            let _ = stopped.await;
        },
        Clock::following_tokio(start()),
    ));
    pass(Duration::from_secs(8 * 60)).await;
    stop.send(()).unwrap();
    daemon.await.unwrap().unwrap();

    let store = Store::open(&cfg.store_path).unwrap();
    let mut errors = store.recent_errors(100).unwrap();
    errors.reverse();
    let at: Vec<i64> = errors.iter().map(|e| offset(e.at)).collect();
    // Back-off 30 s, 60 s, 120 s, 240 s (then 480 s, capped at 600 s and by the schedule).
    let want = [0, 30, 90, 210, 450];
    assert_eq!(at.len(), want.len(), "failures at {at:?}");
    for (got, want) in at.iter().zip(want) {
        assert!((got - want).abs() <= 5, "failures at {at:?}, want {want:?}");
    }
    assert!(errors.iter().all(|e| e.meter_name == "heat"));
    assert!(every_got.lock().unwrap().is_empty(), "nothing to deliver");
    let snapshot = status.snapshot();
    let heat = &snapshot.meters["heat"];
    assert_eq!((heat.polls, heat.failures, heat.failure_streak), (5, 5, 5));
    let verdict = heat
        .verdict
        .as_ref()
        .expect("a failing meter has a verdict");
    assert!(!verdict.headline.is_empty() && !verdict.fix.is_empty());
    // The next attempt after 480 s (the regular 15 minutes would be later).
    let next = heat.next_poll.map(offset).unwrap();
    assert!((next - 930).abs() <= 5, "next poll at {next} s");
}

/// `model` from the config (the label) is the stored model name, beside the type the meter
/// reported; the outbox hands it to the sinks from the store (HA's device model, info bits).
#[tokio::test(start_paused = true)]
async fn a_configured_model_is_stored_beside_the_reported_type() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = meter(PortSpec::Sim {
        model: "multical-403".into(),
    });
    m.model = Some("MULTICAL 603".into());
    let cfg = config(&dir, m);
    let (latest, latest_got) = recording("latest", Delivery::Latest);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(kamstrup_daemon::run_with_clock(
        cfg.clone(),
        vec![latest],
        StatusHandle::default(),
        async move {
            let _ = stopped.await;
        },
        Clock::following_tokio(start()),
    ));
    pass(Duration::from_secs(60)).await;
    stop.send(()).unwrap();
    daemon.await.unwrap().unwrap();
    assert_eq!(latest_got.lock().unwrap().len(), 1);
    let store = Store::open(&cfg.store_path).unwrap();
    let meters = store.meters().unwrap();
    assert_eq!(meters.len(), 1);
    assert_eq!(
        meters[0].model.as_deref(),
        Some("MULTICAL 603 (KMP type 0x0403 rev F1)")
    );
}

/// One logger of `sim:multical-403`, read as `kamstrup log` does: every record since `since`.
async fn read_sim_log(
    logger: kamstrup_meter::LoggerType,
    since: DateTime<Utc>,
) -> (kamstrup_meter::LogRead, u64) {
    let port = PortSpec::Sim {
        model: "multical-403".into(),
    };
    let link = kamstrup_meter::open_port(
        &port,
        kamstrup_meter::LineSettings::KMP,
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    let mut meter = kamstrup_meter::KmpMeter::new(
        link,
        "sim:multical-403",
        kamstrup_meter::KmpOptions::default(),
    );
    let before = meter.stats().link;
    let read = meter
        .read_log(
            &kamstrup_meter::LogQuery {
                logger,
                registers: Vec::new(),
                selection: kamstrup_meter::Selection::Since(since),
                zone_standard_offset_min:
                    kamstrup_meter::sim::kmp_loggers::ZONE_STANDARD_OFFSET_MIN,
            },
            |_, _| {},
        )
        .await
        .unwrap();
    let after = meter.stats().link;
    let bytes = after.bytes_sent + after.bytes_received - before.bytes_sent - before.bytes_received;
    (read, bytes)
}

/// The values of a reading or a logger row, by register name.
fn values(registers: &[kamstrup_meter::RegisterValue]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = registers
        .iter()
        .map(|r| (r.name.clone(), r.value.to_string()))
        .collect();
    v.sort();
    v
}

/// Runs the daemon (real time for the meter's clock, paused tokio time for its schedule) until
/// the meter's first back-fill is done; returns every stored reading.
async fn run_until_backfilled(cfg: &DaemonConfig) -> Vec<kamstrup_store::StoredReading> {
    let status = StatusHandle::default();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(kamstrup_daemon::run_with_clock(
        cfg.clone(),
        Vec::new(),
        status.clone(),
        async move {
            let _ = stopped.await;
        },
        Clock::system(),
    ));
    let mut waited = 0;
    while status
        .snapshot()
        .meters
        .get("heat")
        .and_then(|m| m.logger.as_ref())
        .and_then(|l| l.last_backfill)
        .is_none()
    {
        waited += 1;
        assert!(waited < 600, "no back-fill within 10 min of tokio time");
        pass(Duration::from_secs(1)).await;
    }
    stop.send(()).unwrap();
    daemon.await.unwrap().unwrap();
    let store = Store::open(&cfg.store_path).unwrap();
    store
        .readings_after(kamstrup_store::ReadingId(0), 100_000)
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_window_beyond_the_hour_logger_is_filled_from_the_day_logger() {
    use kamstrup_meter::LoggerType;
    use kamstrup_reading::ReadingSource;
    const HOUR: i64 = 3600;
    let dir = tempfile::tempdir().unwrap();
    let mut m = meter(PortSpec::Sim {
        model: "multical-403".into(),
    });
    m.backfill = Backfill {
        window: Duration::from_secs(70 * 86_400),
        ..Backfill::default()
    };
    let cfg = config(&dir, m);
    let window_from = Utc::now() - chrono::Duration::days(70);
    let stored = run_until_backfilled(&cfg).await;

    // What the meter's loggers hold (the simulator is a pure function of UTC time).
    let (hours, _) = read_sim_log(LoggerType::Hourly, window_from).await;
    assert!(
        hours.reached_oldest,
        "the hour logger reaches back 70 days?"
    );
    let offset = chrono::Duration::seconds(hours.clock_offset_s.unwrap());
    let hour_floor = hours.rows[0].utc.unwrap() - offset;
    let (days, day_bytes) = read_sim_log(LoggerType::Daily, window_from).await;
    let expected_days: Vec<_> = days
        .rows
        .iter()
        .filter(|r| r.utc.unwrap() - offset < hour_floor)
        .filter(|r| r.utc.unwrap() - offset >= window_from)
        .collect();
    assert!(
        expected_days.len() >= 10,
        "{} days before the hour logger's oldest record {hour_floor}",
        expected_days.len()
    );

    let day_logs: Vec<_> = stored
        .iter()
        .filter(|r| r.reading.source == ReadingSource::DayLog)
        .collect();
    let hour_logs: Vec<_> = stored
        .iter()
        .filter(|r| r.reading.source == ReadingSource::HourLog)
        .collect();
    // Every day older than the hour logger's oldest record: exactly one day record, at its
    // corrected stamp, with the day logger's values.
    assert_eq!(day_logs.len(), expected_days.len(), "day records");
    for (got, want) in day_logs.iter().zip(&expected_days) {
        assert_eq!(got.reading.taken_at, want.utc.unwrap() - offset);
        assert_eq!(values(&got.reading.registers), values(&want.values));
        assert!(got.reading.taken_at < hour_floor);
    }
    // Within the hour logger's depth: hour records only, one per hour.
    assert!(hour_logs.len() > 1300, "{} hour records", hour_logs.len());
    assert!(hour_logs.iter().all(|r| r.reading.taken_at >= hour_floor));
    let mut per_hour = std::collections::BTreeMap::<i64, usize>::new();
    for r in &stored {
        *per_hour
            .entry(r.reading.taken_at.timestamp().div_euclid(HOUR))
            .or_default() += 1;
    }
    assert!(per_hour.values().all(|&n| n == 1), "an hour stored twice");
    println!(
        "day part: {} day records stored; the day logger read since the window's start: {} records, {} requests, {} pages, {day_bytes} bytes",
        day_logs.len(),
        days.rows.len(),
        days.requests,
        days.pages
    );

    // A second session (a restart) stores no logged record.
    let again = run_until_backfilled(&cfg).await;
    let logged = |rs: &[kamstrup_store::StoredReading]| {
        rs.iter().filter(|r| r.reading.source.is_logged()).count()
    };
    assert_eq!(
        logged(&again),
        logged(&stored),
        "a second session stored logged records"
    );
}
