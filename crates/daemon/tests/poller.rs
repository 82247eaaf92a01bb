//! The pollers in paused tokio time, through the daemon's own `run_with_clock`: a simulated
//! meter (in process, no real I/O) read on its schedule, stored first and delivered in order to
//! an every-reading sink and as the newest to a state sink; a meter that does not answer retried
//! with growing back-off, each failure recorded with the doctor's verdict; a back-fill window
//! longer than the hour logger filled from the day logger beyond it, and one beyond the day logger
//! from the month and year loggers; the hours a suspended host
//! slept through filled from the hour logger when it wakes (that meter, whose clock must sleep
//! with the host's, is the simulator's answers served on a loopback socket as of the test clock).
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

/// A simulated meter behind a loopback socket, back-filled over a window of `days`. While its
/// reply is on the way, paused tokio time may jump to the next timer, so the first-byte timeout
/// is long enough never to be hit.
fn backfilled_over_tcp(port: PortSpec, days: u64) -> MeterSettings {
    let mut m = meter(port);
    m.timeout = Duration::from_secs(30);
    m.backfill = Backfill {
        window: Duration::from_secs(days * 86_400),
        zone_standard_offset_min: Some(kamstrup_meter::sim::kmp_loggers::ZONE_STANDARD_OFFSET_MIN),
        ..Backfill::default()
    };
    m
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

/// One logger of the MULTICAL 403 at the other end of `link`, read as `kamstrup log` does:
/// every record since `since`, and the bytes that took.
async fn read_log(
    link: Box<dyn kamstrup_optical::Link>,
    logger: kamstrup_meter::LoggerType,
    since: DateTime<Utc>,
) -> (kamstrup_meter::LogRead, u64) {
    let mut meter =
        kamstrup_meter::KmpMeter::new(link, "multical-403", kamstrup_meter::KmpOptions::default());
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
    run_until_backfilled_at(cfg, Clock::system()).await
}

/// [`run_until_backfilled`] with the daemon's clock `clock`.
async fn run_until_backfilled_at(
    cfg: &DaemonConfig,
    clock: Clock,
) -> Vec<kamstrup_store::StoredReading> {
    let status = StatusHandle::default();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(kamstrup_daemon::run_with_clock(
        cfg.clone(),
        Vec::new(),
        status.clone(),
        async move {
            let _ = stopped.await;
        },
        clock,
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

/// A 70-day window on an empty store (the 403's hour logger holds 58 days): the days before the
/// hour logger's oldest record come from the day logger, which is asked for those days only;
/// a restart over that store asks the meter for neither logger's records again (the hours of
/// those old days the day logger cannot fill stay missing for good).
#[tokio::test(start_paused = true)]
async fn a_window_beyond_the_hour_logger_is_filled_from_the_day_logger() {
    use kamstrup_meter::LoggerType;
    use kamstrup_reading::ReadingSource;
    const HOUR: i64 = 3600;
    let dir = tempfile::tempdir().unwrap();
    // The simulated meter served on a socket, to count what it is asked (as of the system
    // clock, as the in-process `sim:` meter).
    let (port, asked) = meter_on_tcp(Clock::system()).await;
    let cfg = config(&dir, backfilled_over_tcp(port, 70));
    let window_from = Utc::now() - chrono::Duration::days(70);
    let stored = run_until_backfilled(&cfg).await;
    let first: Vec<Asked> = std::mem::take(&mut *asked.lock().unwrap());

    // What the meter's loggers hold (the simulator is a pure function of UTC time), read as
    // the daemon did before it bounded its reads: each logger from the window's start.
    let (hours, hours_asked) = read_served(Clock::system(), LoggerType::Hourly, window_from).await;
    assert!(
        hours.reached_oldest,
        "the hour logger reaches back 70 days?"
    );
    let offset = chrono::Duration::seconds(hours.clock_offset_s.unwrap());
    let hour_floor = hours.rows[0].utc.unwrap() - offset;
    let (days, days_asked) = read_served(Clock::system(), LoggerType::Daily, window_from).await;
    // The daemon's window begins with the hour `window_from` falls in (a reading earlier in
    // that hour covers it): a midnight record in that hour before `window_from` is in it too
    // (with the 403's clock 9.5 min ahead, its CET midnight lands at 22:50 UTC: a run between
    // 22:50 and 23:00 UTC has one).
    let window_hour =
        DateTime::from_timestamp(window_from.timestamp().div_euclid(HOUR) * HOUR, 0).unwrap();
    let expected_days: Vec<_> = days
        .rows
        .iter()
        .filter(|r| r.utc.unwrap() - offset < hour_floor)
        .filter(|r| r.utc.unwrap() - offset >= window_hour)
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

    // The day logger was asked for the days before the hour logger's oldest record only (and
    // its oldest record, the two newer ones the offset's margin brings, one older to end on):
    // fewer requests and bytes than the read from the window's start.
    let (day_requests, day_records, day_bytes) = asked_of(&first, LoggerType::Daily);
    let (from_start_requests, from_start_records, from_start_bytes) =
        asked_of(&days_asked, LoggerType::Daily);
    assert!(
        day_records <= expected_days.len() + 5,
        "{day_records} day records sent for {} days",
        expected_days.len()
    );
    assert!(
        day_requests < from_start_requests && day_bytes < from_start_bytes,
        "day logger: {day_requests} requests {day_bytes} B; from the window's start {from_start_requests} requests {from_start_bytes} B"
    );
    let (hour_requests, hour_records, hour_bytes) = asked_of(&first, LoggerType::Hourly);
    let (all_hour_requests, all_hour_records, all_hour_bytes) =
        asked_of(&hours_asked, LoggerType::Hourly);
    assert!(hour_records >= all_hour_records, "the whole hour logger");
    println!(
        "first start, logger requests (the clock reads not counted): hour logger {hour_requests} requests {hour_records} records {hour_bytes} B; day logger {day_requests} requests {day_records} records {day_bytes} B for {} days stored. Read from the window's start (before): hour logger {all_hour_requests} requests {all_hour_records} records {all_hour_bytes} B; day logger {from_start_requests} requests {from_start_records} records {from_start_bytes} B",
        day_logs.len()
    );

    // A second session (a restart) stores no logged record, and asks the meter for neither
    // logger again: the hour logger's oldest record (how far it reaches), nothing else — no
    // hour is missing within its reach, and every day it could fill is filled.
    let again = run_until_backfilled(&cfg).await;
    let second: Vec<Asked> = std::mem::take(&mut *asked.lock().unwrap());
    let logged = |rs: &[kamstrup_store::StoredReading]| {
        rs.iter().filter(|r| r.reading.source.is_logged()).count()
    };
    assert_eq!(
        logged(&again),
        logged(&stored),
        "a second session stored logged records"
    );
    let (requests, records, bytes) = asked_of(&second, LoggerType::Hourly);
    assert_eq!(
        (requests, records),
        (1, 1),
        "hour logger at the restart: {second:?}"
    );
    assert_eq!(
        asked_of(&second, LoggerType::Daily).0,
        0,
        "the day logger read again: {second:?}"
    );
    println!(
        "restart: hour logger {requests} request {records} record {bytes} B, day logger none (before: the whole hour logger and the day logger from the window's start again: {} requests, {} B)",
        all_hour_requests + from_start_requests,
        all_hour_bytes + from_start_bytes
    );

    // A start after 5 hours off: the hours missed since, from the hour logger, and nothing else.
    let later = Clock::following_tokio(Utc::now() + chrono::Duration::hours(5));
    let (port, asked) = meter_on_tcp(later).await;
    let mut cfg = cfg;
    cfg.meters[0].port = port;
    let newest_before = stored.iter().map(|r| r.reading.taken_at).max().unwrap();
    let after_off = run_until_backfilled_at(&cfg, later).await;
    let third: Vec<Asked> = std::mem::take(&mut *asked.lock().unwrap());
    let new_hours: Vec<_> = after_off
        .iter()
        .filter(|r| {
            r.reading.source == ReadingSource::HourLog && r.reading.taken_at > newest_before
        })
        .map(|r| r.reading.taken_at)
        .collect();
    assert!(new_hours.len() >= 4, "the hours while off: {new_hours:?}");
    let (requests, records, bytes) = asked_of(&third, LoggerType::Hourly);
    assert!(
        records <= new_hours.len() + 5,
        "{records} hour records sent for {} hours missed",
        new_hours.len()
    );
    assert_eq!(asked_of(&third, LoggerType::Daily).0, 0, "{third:?}");
    println!(
        "start after 5 h off: {} hours stored from the hour logger: {requests} requests {records} records {bytes} B, day logger none",
        new_hours.len()
    );
}

/// A window of 3 years (no upper limit) over a store that holds the polls of the last 420 days:
/// the older days the day logger still holds come from it, and the meter's month starts older
/// than the day logger's oldest record from the month logger (its year starts older than the
/// month logger's, from the year logger), each read bounded to what is wanted; a restart asks
/// the month and year loggers nothing.
#[tokio::test(start_paused = true)]
async fn a_window_beyond_the_day_logger_is_filled_from_the_month_and_year_loggers() {
    use kamstrup_meter::LoggerType;
    use kamstrup_reading::ReadingSource;
    const HOUR: i64 = 3600;
    let dir = tempfile::tempdir().unwrap();
    let (port, asked) = meter_on_tcp(Clock::system()).await;
    let cfg = config(&dir, backfilled_over_tcp(port, 3 * 365));
    let now = Utc::now();
    let window_from = now - chrono::Duration::days(3 * 365);
    // The recent hours are in the store: the polls of the last 420 days, one an hour, as the
    // simulator answered them (the day logger reaches ~460 days back).
    seed_polls(&cfg, now, 420);
    let stored = run_until_backfilled(&cfg).await;
    let first: Vec<Asked> = std::mem::take(&mut *asked.lock().unwrap());

    // What the meter's loggers hold: the oldest day record, and the month and year loggers
    // read whole from the window's start, as `kamstrup log` does.
    let (months, _) = read_served(Clock::system(), LoggerType::Monthly, window_from).await;
    let (years, _) = read_served(Clock::system(), LoggerType::Yearly, window_from).await;
    let offset = chrono::Duration::seconds(months.clock_offset_s.unwrap());
    let day_floor = oldest_served(LoggerType::Daily).await - offset;
    let month_floor = months.rows[0].utc.unwrap() - offset;
    let expected = |read: &kamstrup_meter::LogRead, floor: DateTime<Utc>| -> Vec<_> {
        read.rows
            .iter()
            .filter(|r| r.utc.unwrap() - offset < floor && r.utc.unwrap() - offset >= window_from)
            .map(|r| (r.utc.unwrap() - offset, values(&r.values)))
            .collect()
    };
    let expected_months = expected(&months, day_floor);
    let expected_years = if months.reached_oldest {
        expected(&years, month_floor)
    } else {
        Vec::new()
    };
    // The simulated meter was commissioned on 2025-06-01: its month logger holds the month
    // starts from July 2025 on, and the day logger's 460 days leave at least two older.
    assert!(
        expected_months.len() >= 2,
        "month starts older than the day logger's oldest record {day_floor}: {expected_months:?}"
    );
    let of = |source: ReadingSource| -> Vec<_> {
        stored
            .iter()
            .filter(|r| r.reading.source == source)
            .map(|r| (r.reading.taken_at, values(&r.reading.registers)))
            .collect()
    };
    // Each month start older than the day logger's reach: exactly one month record, at its
    // corrected stamp, with the month logger's values; the year starts likewise.
    assert_eq!(
        of(ReadingSource::MonthLog),
        expected_months,
        "month records"
    );
    assert_eq!(of(ReadingSource::YearLog), expected_years, "year records");
    // The days the day logger holds before the polls: day records, none older than its
    // oldest record, no month record among them.
    let days = of(ReadingSource::DayLog);
    assert!(days.len() >= 30, "{} day records", days.len());
    assert!(days.iter().all(|(at, _)| *at >= day_floor));
    assert!(
        of(ReadingSource::HourLog).is_empty(),
        "the polls cover the hour logger"
    );
    // No hour holds two logged records, nor a logged record and a poll.
    let hour = |r: &&kamstrup_store::StoredReading| r.reading.taken_at.timestamp().div_euclid(HOUR);
    let polled: std::collections::BTreeSet<i64> = stored
        .iter()
        .filter(|r| !r.reading.source.is_logged())
        .map(|r| hour(&r))
        .collect();
    let mut per_hour = std::collections::BTreeMap::<i64, usize>::new();
    for r in stored.iter().filter(|r| r.reading.source.is_logged()) {
        assert!(
            !polled.contains(&hour(&r)),
            "{:?} in a polled hour",
            r.reading
        );
        *per_hour.entry(hour(&r)).or_default() += 1;
    }
    assert!(per_hour.values().all(|&n| n == 1), "an hour stored twice");

    // The month logger was asked for the wanted months only (its oldest record, the read from
    // near the newest wanted one, the offset estimate's margin); the year logger's oldest
    // record tells whether any wanted year start is in it.
    let (month_requests, month_records, month_bytes) = asked_of(&first, LoggerType::Monthly);
    let (year_requests, year_records, year_bytes) = asked_of(&first, LoggerType::Yearly);
    assert!(
        month_records <= expected_months.len() + 5,
        "{month_records} month records sent for {} months",
        expected_months.len()
    );
    assert!(year_records <= expected_years.len() + 5);
    let (day_requests, day_records, day_bytes) = asked_of(&first, LoggerType::Daily);
    println!(
        "3-year window over 420 days of polls: {} day, {} month, {} year records stored; day logger {day_requests} requests {day_records} records {day_bytes} B; month logger {month_requests} requests {month_records} records {month_bytes} B; year logger {year_requests} requests {year_records} records {year_bytes} B",
        days.len(),
        expected_months.len(),
        expected_years.len()
    );

    // A restart stores nothing and reads no record of the day, month or year logger: every
    // start they could fill is filled. The month starts before the meter was commissioned stay
    // missing, so each logger's oldest record is asked again (one short request each) to tell
    // that none of them is in it.
    let again = run_until_backfilled(&cfg).await;
    let second: Vec<Asked> = std::mem::take(&mut *asked.lock().unwrap());
    let logged = |rs: &[kamstrup_store::StoredReading]| {
        rs.iter().filter(|r| r.reading.source.is_logged()).count()
    };
    assert_eq!(
        logged(&again),
        logged(&stored),
        "a second session stored logged records"
    );
    for logger in [
        LoggerType::Hourly,
        LoggerType::Daily,
        LoggerType::Monthly,
        LoggerType::Yearly,
    ] {
        let (requests, records, _) = asked_of(&second, logger);
        assert!(requests <= 1 && records <= 1, "{logger:?}: {second:?}");
    }
    let (requests, bytes) = second.iter().fold((0, 0), |(n, b), a| (n + 1, b + a.bytes));
    println!("restart: {requests} logger requests (each logger's oldest record), {bytes} B");
}

/// Hourly polls of the last `days` before `now` in the store of `cfg`, exactly as the simulated
/// MULTICAL 403 answered them.
fn seed_polls(cfg: &DaemonConfig, now: DateTime<Utc>, days: u64) {
    use kamstrup_meter::sim::history::{kmp_history, HistorySpec};
    let model = kamstrup_meter::sim::KmpModel::Multical403;
    let polls = kmp_history(
        model,
        &[60, 68, 86, 87, 80, 74, 1004, 99],
        "sim:multical-403",
        &HistorySpec {
            end: now,
            span: Duration::from_secs(days * 86_400),
            step: Duration::from_secs(3600),
        },
    )
    .unwrap();
    let mut store = Store::open(&cfg.store_path).unwrap();
    let heat = store
        .upsert_meter(
            u64::from(model.serial()),
            "heat",
            kamstrup_meter::Protocol::Kmp,
            None,
            "sim:multical-403",
            polls[0].taken_at,
        )
        .unwrap();
    let items: Vec<_> = polls.iter().map(|r| (heat, r.clone(), None)).collect();
    store.insert_readings(&items).unwrap();
}

/// A meter that keeps an hour and a year logger but no day or month logger (silent to B8 for
/// them, as the simulator is for a logger a model does not keep; what a real meter answers is
/// not known): a 3-year window over the polls of the last 60 days passes over the two and
/// fills the year starts older than the hour logger's oldest record that its year logger
/// holds (the simulated meter's history starts on 2025-06-01, so the 403's own month logger
/// leaves no year start to its year logger); a restart reads no year record again.
#[tokio::test(start_paused = true)]
async fn a_meter_without_day_and_month_loggers_fills_year_starts_from_its_year_logger() {
    use kamstrup_meter::LoggerType;
    use kamstrup_reading::ReadingSource;
    let dir = tempfile::tempdir().unwrap();
    let (port, asked) = meter_on_tcp_without(
        kamstrup_meter::sim::kmp_model::KmpModel::Multical403,
        Clock::system(),
        &[LoggerType::Daily, LoggerType::Monthly],
    )
    .await;
    let cfg = config(&dir, backfilled_over_tcp(port, 3 * 365));
    let now = Utc::now();
    let window_from = now - chrono::Duration::days(3 * 365);
    seed_polls(&cfg, now, 60);
    let stored = run_until_backfilled(&cfg).await;
    let first: Vec<Asked> = std::mem::take(&mut *asked.lock().unwrap());

    let (years, _) = read_served(Clock::system(), LoggerType::Yearly, window_from).await;
    let offset = chrono::Duration::seconds(years.clock_offset_s.unwrap());
    let hour_floor = oldest_served(LoggerType::Hourly).await - offset;
    let expected: Vec<_> = years
        .rows
        .iter()
        .map(|r| (r.utc.unwrap() - offset, values(&r.values)))
        .filter(|(at, _)| *at < hour_floor && *at >= window_from)
        .collect();
    assert!(
        !expected.is_empty(),
        "no year start in the year logger before {hour_floor}"
    );
    let of = |source: ReadingSource| -> Vec<_> {
        stored
            .iter()
            .filter(|r| r.reading.source == source)
            .map(|r| (r.reading.taken_at, values(&r.reading.registers)))
            .collect()
    };
    assert_eq!(of(ReadingSource::YearLog), expected, "year records");
    for source in [
        ReadingSource::HourLog,
        ReadingSource::DayLog,
        ReadingSource::MonthLog,
    ] {
        assert!(of(source).is_empty(), "{source:?}");
    }
    let (requests, records, bytes) = asked_of(&first, LoggerType::Yearly);
    assert!(records <= expected.len() + 5, "{first:?}");
    println!(
        "no day or month logger: {} year records stored; year logger {requests} requests {records} records {bytes} B",
        expected.len()
    );

    let again = run_until_backfilled(&cfg).await;
    let second: Vec<Asked> = std::mem::take(&mut *asked.lock().unwrap());
    let logged = |rs: &[kamstrup_store::StoredReading]| {
        rs.iter().filter(|r| r.reading.source.is_logged()).count()
    };
    assert_eq!(logged(&again), logged(&stored));
    let (requests, records, _) = asked_of(&second, LoggerType::Yearly);
    assert!(requests <= 1 && records <= 1, "{second:?}");
}

/// The stamp of the oldest record `logger` of the MULTICAL 403 (served as of the system clock)
/// holds.
async fn oldest_served(logger: kamstrup_meter::LoggerType) -> DateTime<Utc> {
    let (host, mut meter_end) = kamstrup_optical::memory_pair(kamstrup_meter::LineSettings::KMP);
    tokio::spawn(async move {
        serve_at_clock(&mut meter_end, Clock::system(), AskLog::default()).await
    });
    let mut meter = kamstrup_meter::KmpMeter::new(
        Box::new(host),
        "multical-403",
        kamstrup_meter::KmpOptions::default(),
    );
    let (row, _) = meter
        .oldest_log_record(
            logger,
            kamstrup_meter::sim::kmp_loggers::ZONE_STANDARD_OFFSET_MIN,
        )
        .await
        .unwrap()
        .unwrap();
    row.utc.unwrap()
}

/// A simulated MULTICAL 403 whose time is `clock`'s, served on `link`: the simulator's own
/// answers (`respond`, a pure function of the time it is given). The in-process `sim:` meter
/// answers as of the system clock; this one's clock runs on through the test host's suspend, as
/// a real meter's does. One exception: the KMP driver measures the meter's clock against the
/// system clock (`Utc::now()`), not the daemon's, so the clock register alone is answered as of
/// the system clock — the offset the driver sees is then the meter's own drift, as it would be
/// were the system clock the test's.
async fn serve_at_clock<L>(link: &mut L, clock: Clock, asked: AskLog)
where
    L: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let model = kamstrup_meter::sim::kmp_model::KmpModel::Multical403;
    serve_model_at_clock(link, model, clock, asked).await;
}

/// [`serve_at_clock`] for a simulated `model` (their clocks drift apart: the 403's runs ahead of
/// the host's, the 603's behind).
async fn serve_model_at_clock<L>(
    link: &mut L,
    model: kamstrup_meter::sim::kmp_model::KmpModel,
    clock: Clock,
    asked: AskLog,
) where
    L: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    serve_without(link, model, clock, asked, &[]).await;
}

/// [`serve_model_at_clock`], silent to B8 requests for the `silent` loggers (as the simulator
/// is for a logger a model does not keep).
async fn serve_without<L>(
    link: &mut L,
    model: kamstrup_meter::sim::kmp_model::KmpModel,
    clock: Clock,
    asked: AskLog,
    silent: &'static [kamstrup_meter::LoggerType],
) where
    L: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use kamstrup_kmp::decoder::{Decoder, Event};
    use kamstrup_kmp::{Direction, LoggerReply, RegisterId, Request};
    use kamstrup_meter::sim::kmp_model::{respond, MeterAction};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut decoder = Decoder::new(Direction::ToMeter);
    let mut buf = [0u8; 512];
    // Bytes of the request being received.
    let mut fed = 0usize;
    loop {
        let n = match link.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        for &byte in &buf[..n] {
            fed += 1;
            let Some(Ok(Event::Frame(frame))) = decoder.feed(byte) else {
                continue;
            };
            let request_bytes = std::mem::take(&mut fed);
            let clock_read = matches!(
                Request::from_frame(&frame),
                Ok(Request::GetRegister(ids)) if ids == [RegisterId(kamstrup_meter::kmp_logger::DATE_TIME_REGISTER)]
            );
            let at = if clock_read { Utc::now() } else { clock.now() };
            let action = respond(model, &frame, at);
            let reply = match &action {
                MeterAction::Reply(_) if matches!(Request::from_frame(&frame), Ok(Request::Logger(r)) if silent.contains(&r.logger())) => {
                    Vec::new()
                }
                MeterAction::Reply(reply) => reply.clone(),
                MeterAction::Silent(_) => Vec::new(),
            };
            if let Ok(Request::Logger(request)) = Request::from_frame(&frame) {
                let records = kamstrup_kmp::Frame::parse(&reply)
                    .ok()
                    .and_then(|f| kamstrup_kmp::Response::from_frame(&f).ok())
                    .map_or(0, |r| match r {
                        kamstrup_kmp::Response::Logger(LoggerReply::Records(r)) => {
                            r.valid_records().len()
                        }
                        _ => 0,
                    });
                asked.lock().unwrap().push(Asked {
                    logger: request.logger(),
                    records,
                    bytes: request_bytes + reply.len(),
                });
            }
            if !reply.is_empty() && link.write_all(&reply).await.is_err() {
                return;
            }
        }
    }
}

/// One logger request a served meter answered: which logger, the records it sent, the bytes
/// of the request and the reply.
#[derive(Clone, Debug)]
struct Asked {
    logger: kamstrup_meter::LoggerType,
    records: usize,
    bytes: usize,
}

/// The logger requests a served meter answered, in order.
type AskLog = Arc<Mutex<Vec<Asked>>>;

/// Requests, records and bytes of the logger requests in `asked` for `logger`.
fn asked_of(asked: &[Asked], logger: kamstrup_meter::LoggerType) -> (usize, usize, usize) {
    asked
        .iter()
        .filter(|a| a.logger == logger)
        .fold((0, 0, 0), |(n, r, b), a| {
            (n + 1, r + a.records, b + a.bytes)
        })
}

/// [`serve_at_clock`] on a TCP port of this host (the daemon opens meters by port name only),
/// and what it was asked.
async fn meter_on_tcp(clock: Clock) -> (PortSpec, AskLog) {
    meter_model_on_tcp(kamstrup_meter::sim::kmp_model::KmpModel::Multical403, clock).await
}

/// [`meter_on_tcp`] for a simulated `model`.
async fn meter_model_on_tcp(
    model: kamstrup_meter::sim::kmp_model::KmpModel,
    clock: Clock,
) -> (PortSpec, AskLog) {
    meter_on_tcp_without(model, clock, &[]).await
}

/// [`meter_model_on_tcp`], silent to the `silent` loggers ([`serve_without`]).
async fn meter_on_tcp_without(
    model: kamstrup_meter::sim::kmp_model::KmpModel,
    clock: Clock,
    silent: &'static [kamstrup_meter::LoggerType],
) -> (PortSpec, AskLog) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let asked = AskLog::default();
    let log = asked.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(
                async move { serve_without(&mut stream, model, clock, log, silent).await },
            );
        }
    });
    (format!("tcp://127.0.0.1:{port}").parse().unwrap(), asked)
}

/// The MULTICAL 403 at `clock`'s time read through [`serve_at_clock`] as `kamstrup log` does
/// (every record of `logger` since `since`), and what that asked of the meter.
async fn read_served(
    clock: Clock,
    logger: kamstrup_meter::LoggerType,
    since: DateTime<Utc>,
) -> (kamstrup_meter::LogRead, Vec<Asked>) {
    let (host, mut meter_end) = kamstrup_optical::memory_pair(kamstrup_meter::LineSettings::KMP);
    let asked = AskLog::default();
    let log = asked.clone();
    tokio::spawn(async move { serve_at_clock(&mut meter_end, clock, log).await });
    let (read, _) = read_log(Box::new(host), logger, since).await;
    let asked = asked.lock().unwrap().clone();
    (read, asked)
}

/// What the daemon did around a suspend of the host.
struct AroundSleep {
    stored: Vec<kamstrup_store::StoredReading>,
    delivered: Vec<(i64, DateTime<Utc>)>,
    clock: Clock,
    /// Polls that failed (a failure is also a reason to look for gaps).
    failures: u64,
}

/// A meter with back-fill on, polled every 15 min: the start-up back-fill, polls at 0 and 15 min
/// of tokio time; at 20 min, while the poller sleeps, the host sleeps for `suspend` (its wall
/// clock and the meter's jump on, tokio's monotonic clock does not); the poll at 30 min; stop
/// at 40 min.
async fn run_around_a_suspend(suspend: Option<Duration>) -> AroundSleep {
    let dir = tempfile::tempdir().unwrap();
    // Near the system clock (the meter's clock register is answered as of it, see
    // `serve_at_clock`), five minutes into the hour: polls at :05 and :20, the suspend at :25.
    let now = Utc::now().timestamp();
    let start = DateTime::from_timestamp(now.div_euclid(3600) * 3600 + 300, 0).unwrap();
    let (clock, host) = Clock::following_tokio_with_suspend(start);
    let cfg = config(&dir, backfilled_over_tcp(meter_on_tcp(clock).await.0, 2));
    let (every, every_got) = recording("every", Delivery::Every);
    let status = StatusHandle::default();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let t0 = tokio::time::Instant::now();
    let daemon = tokio::spawn(kamstrup_daemon::run_with_clock(
        cfg.clone(),
        vec![every],
        status.clone(),
        async move {
            let _ = stopped.await;
        },
        clock,
    ));
    let backfilled = || {
        status
            .snapshot()
            .meters
            .get("heat")
            .and_then(|m| m.logger.as_ref())
            .and_then(|l| l.last_backfill)
    };
    let mut waited = 0;
    while backfilled().is_none() {
        waited += 1;
        assert!(
            waited < 600,
            "no start-up back-fill within 10 min of tokio time"
        );
        pass(Duration::from_secs(1)).await;
    }
    let minutes = |m: u64| {
        (t0 + Duration::from_secs(m * 60)).saturating_duration_since(tokio::time::Instant::now())
    };
    pass(minutes(20)).await;
    if let Some(slept) = suspend {
        host.suspend(slept);
    }
    pass(minutes(40)).await;
    stop.send(()).unwrap();
    daemon.await.unwrap().unwrap();
    let store = Store::open(&cfg.store_path).unwrap();
    let stored = store
        .readings_after(kamstrup_store::ReadingId(0), 100_000)
        .unwrap();
    let delivered = every_got.lock().unwrap().clone();
    AroundSleep {
        stored,
        delivered,
        clock,
        failures: status.snapshot().meters["heat"].failures,
    }
}

/// The UTC hour (Unix hours) a time falls in.
fn hour_of(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(3600)
}

/// Issue #12: gaps are also looked for "when a meter wakes up after a sleep". The host slept
/// for hours between two polls; the poll after it finds the wall clock far ahead of the
/// monotonic one and back-fills exactly the hours slept from the meter's hour logger.
#[tokio::test(start_paused = true)]
async fn the_hours_a_suspended_host_slept_are_filled_from_the_hour_logger() {
    use kamstrup_reading::ReadingSource;
    const SLEPT: Duration = Duration::from_secs(5 * 3600);
    let run = run_around_a_suspend(Some(SLEPT)).await;
    // Every poll answered: the back-fill after the suspend was not one after failed polls.
    assert_eq!(run.failures, 0);
    let polls: Vec<_> = run
        .stored
        .iter()
        .filter(|r| r.reading.source == ReadingSource::Poll)
        .collect();
    let first_poll = polls[0].reading.taken_at;
    // The polls on either side of the suspend: over an hour of wall time apart.
    let (before, woke) = polls
        .windows(2)
        .map(|w| (w[0].reading.taken_at, w[1].reading.taken_at))
        .find(|(a, b)| *b - *a > chrono::Duration::hours(1))
        .expect("a poll after the suspend");
    let slept: Vec<i64> = (hour_of(before) + 1..hour_of(woke)).collect();
    assert!(slept.len() >= 4, "hours slept without a poll: {slept:?}");

    // Every slept hour holds exactly one reading: a record of the hour logger.
    for &h in &slept {
        let in_hour: Vec<_> = run
            .stored
            .iter()
            .filter(|r| hour_of(r.reading.taken_at) == h)
            .map(|r| (r.reading.source, r.reading.taken_at))
            .collect();
        assert_eq!(
            in_hour.len(),
            1,
            "hour {h} (slept through) holds {in_hour:?}"
        );
        assert_eq!(in_hour[0].0, ReadingSource::HourLog, "hour {h}");
    }
    // At most one logged record in any hour.
    let mut logged_per_hour = std::collections::BTreeMap::<i64, usize>::new();
    for r in run.stored.iter().filter(|r| r.reading.source.is_logged()) {
        *logged_per_hour
            .entry(hour_of(r.reading.taken_at))
            .or_default() += 1;
    }
    assert!(
        logged_per_hour.values().all(|&n| n == 1),
        "an hour back-filled twice: {logged_per_hour:?}"
    );
    // After the start-up back-fill, records of the slept hours only (and perhaps the record at
    // the start of the hour the host woke in, which that hour's poll also covers).
    let late: Vec<_> = run
        .stored
        .iter()
        .filter(|r| r.reading.source.is_logged() && r.reading.taken_at > first_poll)
        .collect();
    for r in &late {
        let h = hour_of(r.reading.taken_at);
        assert_eq!(r.reading.source, ReadingSource::HourLog);
        assert!(
            slept.contains(&h) || h == hour_of(woke),
            "a logged record at {} outside the slept hours {slept:?}",
            r.reading.taken_at
        );
    }

    // What the meter's hour logger holds for those hours, read from it directly (the same
    // simulated meter, at the same virtual time), each stamp corrected by the meter's clock.
    let (host, mut meter_end) = kamstrup_optical::memory_pair(kamstrup_meter::LineSettings::KMP);
    let clock = run.clock;
    tokio::spawn(async move { serve_at_clock(&mut meter_end, clock, AskLog::default()).await });
    let since = DateTime::from_timestamp((hour_of(before) - 1) * 3600, 0).unwrap();
    let (log, _) = read_log(Box::new(host), kamstrup_meter::LoggerType::Hourly, since).await;
    let offset = chrono::Duration::seconds(log.clock_offset_s.unwrap());
    for &h in &slept {
        let want: Vec<_> = log
            .rows
            .iter()
            .filter(|r| hour_of(r.utc.unwrap() - offset) == h)
            .collect();
        assert_eq!(want.len(), 1, "the hour logger's records for hour {h}");
        let want = want[0];
        let got = late
            .iter()
            .find(|r| hour_of(r.reading.taken_at) == h)
            .unwrap();
        // The driver's clock offset is read in whole seconds, once per session.
        let apart = (got.reading.taken_at - (want.utc.unwrap() - offset)).num_seconds();
        assert!(
            apart.abs() <= 1,
            "hour {h}: stored {}, logged {:?}",
            got.reading.taken_at,
            want.utc
        );
        assert_eq!(
            values(&got.reading.registers),
            values(&want.values),
            "hour {h}"
        );
    }
    println!(
        "polls before and after the suspend at {before} and {woke}; {} slept hours; {} logged records stored after start-up at {:?}; meter clock offset {} s",
        slept.len(),
        late.len(),
        late.iter().map(|r| r.reading.taken_at.format("%H:%M:%S").to_string()).collect::<Vec<_>>(),
        offset.num_seconds()
    );
    // Plausible, and delivered to the every-reading sink.
    for r in &late {
        assert_eq!(r.implausible, None, "{}", r.reading.taken_at);
        assert!(
            run.delivered.contains(&(r.id.0, r.reading.taken_at)),
            "record {} at {} not delivered",
            r.id.0,
            r.reading.taken_at
        );
    }
}

/// The control: the same run without the suspend back-fills nothing after start-up (the polls
/// cover every hour since).
#[tokio::test(start_paused = true)]
async fn without_a_suspend_nothing_is_back_filled_after_start_up() {
    let run = run_around_a_suspend(None).await;
    assert_eq!(run.failures, 0);
    let polls: Vec<_> = run
        .stored
        .iter()
        .filter(|r| r.reading.source.is_poll())
        .map(|r| r.reading.taken_at)
        .collect();
    assert_eq!(polls.len(), 3, "polls at 0, 15 and 30 min: {polls:?}");
    let logged: Vec<_> = run
        .stored
        .iter()
        .filter(|r| r.reading.source.is_logged())
        .collect();
    assert!(!logged.is_empty(), "the start-up back-fill stored nothing");
    let late: Vec<_> = logged
        .iter()
        .filter(|r| r.reading.taken_at > polls[0])
        .map(|r| r.reading.taken_at)
        .collect();
    assert!(late.is_empty(), "back-filled after start-up: {late:?}");
}

/// Issue #12, the hour the bridge came back: a meter whose clock is behind the host's (the
/// simulated 603, ~7 min) logs the record that ends an hour minutes after the host's hour began.
/// A bridge back two minutes into an hour finds the gap's last hour without that record; it
/// reads the hour logger once more when the record is due, and stores it once.
#[tokio::test(start_paused = true)]
async fn the_record_ending_a_gap_is_read_when_a_meter_behind_the_host_logs_it() {
    use kamstrup_meter::sim::kmp_model::KmpModel;
    use kamstrup_reading::ReadingSource;
    let dir = tempfile::tempdir().unwrap();
    // Two minutes into an hour of the system clock (the meter's clock register is answered as
    // of it, see `serve_at_clock`).
    let now = Utc::now().timestamp();
    let back = DateTime::from_timestamp(now.div_euclid(3600) * 3600 + 120, 0).unwrap();
    let clock = Clock::following_tokio(back);
    let (port, asked) = meter_model_on_tcp(KmpModel::Multical603, clock).await;
    let cfg = config(&dir, backfilled_over_tcp(port, 1));
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
        clock,
    ));
    // Polls at :02 and :17; the record is due at ~:07.
    pass(Duration::from_secs(25 * 60)).await;
    stop.send(()).unwrap();
    daemon.await.unwrap().unwrap();
    let stored = Store::open(&cfg.store_path)
        .unwrap()
        .readings_after(kamstrup_store::ReadingId(0), 100_000)
        .unwrap();
    assert_eq!(status.snapshot().meters["heat"].failures, 0);

    // What the meter's hour logger holds (read directly at the end), corrected by its clock.
    let (host, mut meter_end) = kamstrup_optical::memory_pair(kamstrup_meter::LineSettings::KMP);
    tokio::spawn(async move {
        serve_model_at_clock(
            &mut meter_end,
            KmpModel::Multical603,
            clock,
            AskLog::default(),
        )
        .await
    });
    let back_hour = hour_of(back);
    let since = DateTime::from_timestamp((back_hour - 3) * 3600, 0).unwrap();
    let (log, _) = read_log(Box::new(host), kamstrup_meter::LoggerType::Hourly, since).await;
    let offset = chrono::Duration::seconds(log.clock_offset_s.unwrap());
    assert!(
        offset < -chrono::Duration::minutes(3) && offset > -chrono::Duration::minutes(28),
        "the simulated 603 runs minutes behind: {offset}"
    );
    let gap_end = log
        .rows
        .iter()
        .find(|r| hour_of(r.utc.unwrap() - offset) == back_hour)
        .expect("the 603 logged the record of the hour the bridge came back in");

    // The gap's last hour holds its own record, and the record that ends it is stored once:
    // at its corrected time, with the logger's values, delivered.
    let logged_in = |h: i64| -> Vec<&kamstrup_store::StoredReading> {
        stored
            .iter()
            .filter(|r| r.reading.source == ReadingSource::HourLog)
            .filter(|r| hour_of(r.reading.taken_at) == h)
            .collect()
    };
    assert_eq!(logged_in(back_hour - 1).len(), 1, "the gap's last hour");
    let ends = logged_in(back_hour);
    assert_eq!(
        ends.len(),
        1,
        "the record ending the gap's last hour (due {}), stored: {:?}",
        gap_end.utc.unwrap() - offset,
        stored
            .iter()
            .map(|r| (r.reading.source, r.reading.taken_at))
            .collect::<Vec<_>>()
    );
    let got = ends[0];
    let apart = (got.reading.taken_at - (gap_end.utc.unwrap() - offset)).num_seconds();
    assert!(apart.abs() <= 1, "stored at {}", got.reading.taken_at);
    assert_eq!(values(&got.reading.registers), values(&gap_end.values));
    assert_eq!(got.implausible, None);
    assert!(every_got
        .lock()
        .unwrap()
        .contains(&(got.id.0, got.reading.taken_at)));
    // Every hour of the window once, no more.
    let mut per_hour = std::collections::BTreeMap::<i64, usize>::new();
    for r in stored.iter().filter(|r| r.reading.source.is_logged()) {
        *per_hour.entry(hour_of(r.reading.taken_at)).or_default() += 1;
    }
    assert!(per_hour.values().all(|&n| n == 1), "{per_hour:?}");
    assert_eq!(
        per_hour.len(),
        25,
        "24 window hours and the gap's end: {per_hour:?}"
    );
    let (requests, records, bytes) =
        asked_of(&asked.lock().unwrap(), kamstrup_meter::LoggerType::Hourly);
    println!(
        "meter clock {} s; hour logger: {requests} requests, {records} records, {bytes} B (start-up and the follow-up); the gap's end stored at {}",
        offset.num_seconds(),
        got.reading.taken_at
    );
}
