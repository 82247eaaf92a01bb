//! The outbox with a recording sink over a real SQLite store and paused tokio time: delivery
//! order, the cursor moving only after success, back-off, state sinks getting the newest reading
//! per meter, the failure state shown in the status, and the store as the sinks' durable memory.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use kamstrup_daemon::db::StoreMemory;
use kamstrup_daemon::outbox::run_sink;
use kamstrup_daemon::{Db, StatusHandle};
use kamstrup_reading::{MeterIdentity, Protocol, Reading, ReadingSource, RegisterValue};
use kamstrup_sinks::{CheckLine, Delivered, Delivery, Sink, SinkError, SinkMemory};
use kamstrup_store::{LoggedRecord, ReadingId, Store};
use tokio::sync::{broadcast, watch};

/// What the fake sink saw: (reading id, meter name) per delivered reading, per attempt.
#[derive(Default)]
struct Log {
    attempts: usize,
    delivered: Vec<(i64, String)>,
    /// Per delivered reading: its id, source and time.
    sources: Vec<(i64, ReadingSource, DateTime<Utc>)>,
    /// How many more attempts fail.
    fail: usize,
}

struct Recording {
    delivery: Delivery,
    accepts_logged: bool,
    log: Arc<Mutex<Log>>,
}

#[async_trait::async_trait]
impl Sink for Recording {
    fn name(&self) -> &str {
        match (self.delivery, self.accepts_logged) {
            (Delivery::Every, _) => "every",
            (Delivery::Latest, false) => "latest",
            (Delivery::Latest, true) => "latest-with-history",
        }
    }

    fn accepts_logged(&self) -> bool {
        self.accepts_logged
    }

    fn delivery(&self) -> Delivery {
        self.delivery
    }

    async fn deliver(&mut self, batch: &[Delivered<'_>]) -> Result<(), SinkError> {
        let mut log = self.log.lock().unwrap();
        log.attempts += 1;
        if log.fail > 0 {
            log.fail -= 1;
            return Err(SinkError::Connect {
                target: "fake".into(),
                detail: "connection refused".into(),
            });
        }
        for d in batch {
            log.delivered.push((d.id, d.meter_name.to_owned()));
            log.sources
                .push((d.id, d.reading.source, d.reading.taken_at));
        }
        Ok(())
    }

    async fn check(&mut self) -> Result<Vec<CheckLine>, SinkError> {
        Ok(Vec::new())
    }
}

fn reading(at: i64, energy: &str) -> Reading {
    Reading {
        source: Default::default(),
        meter: MeterIdentity {
            protocol: Protocol::Kmp,
            port: "sim:multical-403".into(),
            serial: None,
            meter_type: None,
        },
        taken_at: DateTime::<Utc>::from_timestamp(at, 0).unwrap(),
        registers: vec![RegisterValue {
            id: 60,
            name: "heat_energy".into(),
            short: "E1".into(),
            value: energy.parse().unwrap(),
            unit: "GJ".into(),
            unit_code: None,
            text: None,
            derived: false,
        }],
        missing: Vec::new(),
    }
}

/// A store with readings 1–3 of meter "heat" and 4 of meter "cold" (reading 3 implausible).
fn store(dir: &tempfile::TempDir) -> (Db, Vec<ReadingId>) {
    let mut s = Store::open(&dir.path().join("k.db")).unwrap();
    let now = Utc::now();
    let heat = s
        .upsert_meter(1, "heat", Protocol::Kmp, None, "sim:a", now)
        .unwrap();
    let cold = s
        .upsert_meter(2, "cold", Protocol::Kmp, None, "sim:b", now)
        .unwrap();
    let ids = vec![
        s.insert_reading(heat, &reading(1_779_400_000, "84.817"), None)
            .unwrap(),
        s.insert_reading(heat, &reading(1_779_400_900, "84.820"), None)
            .unwrap(),
        s.insert_reading(heat, &reading(1_779_401_800, "1.0"), Some("backwards"))
            .unwrap(),
        s.insert_reading(cold, &reading(1_779_400_000, "3.5"), None)
            .unwrap(),
    ];
    (Db::new(s), ids)
}

struct Running {
    log: Arc<Mutex<Log>>,
    status: StatusHandle,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    _new: watch::Sender<ReadingId>,
    _events: broadcast::Sender<kamstrup_daemon::SinkEvent>,
}

fn start(db: &Db, delivery: Delivery, fail: usize) -> Running {
    start_sink(db, delivery, false, fail)
}

fn start_sink(db: &Db, delivery: Delivery, accepts_logged: bool, fail: usize) -> Running {
    start_scaled(db, delivery, accepts_logged, fail, 1.0)
}

fn start_scaled(
    db: &Db,
    delivery: Delivery,
    accepts_logged: bool,
    fail: usize,
    retry_scale: f64,
) -> Running {
    let log = Arc::new(Mutex::new(Log {
        fail,
        ..Log::default()
    }));
    let sink = Box::new(Recording {
        delivery,
        accepts_logged,
        log: log.clone(),
    });
    let status = StatusHandle::default();
    let (new, new_rx) = watch::channel(ReadingId(0));
    let (events, events_rx) = broadcast::channel(4);
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(run_sink(
        sink,
        db.clone(),
        status.clone(),
        new_rx,
        events_rx,
        stop_rx,
        retry_scale,
    ));
    Running {
        log,
        status,
        stop,
        task,
        _new: new,
        _events: events,
    }
}

async fn settle() {
    // Let the store's blocking calls finish between timer steps.
    for _ in 0..20 {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn every_reading_in_order_and_the_cursor_only_after_success() {
    let dir = tempfile::tempdir().unwrap();
    let (db, ids) = store(&dir);
    let run = start(&db, Delivery::Every, 2);
    // Two failures: retried after 1 s, then 2 s; nothing delivered, the cursor stays.
    settle().await;
    assert_eq!(run.log.lock().unwrap().attempts, 1);
    assert_eq!(db.call(|s| s.cursor("every")).await.unwrap(), ReadingId(0));
    let failing = run.status.snapshot().sinks["every"].clone();
    assert_eq!(failing.consecutive_failures, 1);
    assert!(failing.failing_since.is_some());
    assert_eq!(failing.last_error.as_ref().unwrap().kind, "connect");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    settle().await;
    assert_eq!(run.log.lock().unwrap().attempts, 2);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    settle().await;
    let log = run.log.lock().unwrap().delivered.clone();
    // Oldest first; the implausible reading 3 is never delivered.
    assert_eq!(
        log,
        [
            (ids[0].0, "heat".to_owned()),
            (ids[1].0, "heat".to_owned()),
            (ids[3].0, "cold".to_owned()),
        ]
    );
    assert_eq!(db.call(|s| s.cursor("every")).await.unwrap(), ids[3]);
    let fine = run.status.snapshot().sinks["every"].clone();
    assert_eq!((fine.consecutive_failures, fine.failing_since), (0, None));
    assert_eq!((fine.failures, fine.delivered), (2, 3));
    run.stop.send(true).unwrap();
    run.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_state_sink_gets_only_the_newest_reading_of_each_meter() {
    let dir = tempfile::tempdir().unwrap();
    let (db, ids) = store(&dir);
    let run = start(&db, Delivery::Latest, 0);
    settle().await;
    let mut log = run.log.lock().unwrap().delivered.clone();
    log.sort();
    assert_eq!(
        log,
        [(ids[1].0, "heat".to_owned()), (ids[3].0, "cold".to_owned())]
    );
    assert_eq!(db.call(|s| s.cursor("latest")).await.unwrap(), ids[3]);
    run.stop.send(true).unwrap();
    run.task.await.unwrap();
}

/// The store of [`store`] plus, back-filled after it, two logged records of "heat" (of these
/// sources) older than its polls; returns their ids.
async fn with_backfill(db: &Db, sources: [ReadingSource; 2]) -> Vec<ReadingId> {
    db.call(move |s| {
        let heat = s.meter_by_serial(1)?.map(|m| m.id).unwrap();
        let records: Vec<LoggedRecord> = [(1_779_390_000, "84.700"), (1_779_393_600, "84.750")]
            .into_iter()
            .zip(sources)
            .map(|((at, energy), source)| {
                let mut reading = reading(at, energy);
                reading.source = source;
                LoggedRecord {
                    meter: heat,
                    logged_at: reading.taken_at,
                    reading,
                    implausible: None,
                }
            })
            .collect();
        Ok(s.insert_logged(&records)?
            .into_iter()
            .map(|i| i.id())
            .collect())
    })
    .await
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn back_filled_records_reach_every_sinks_in_order_and_state_sinks_only_if_they_ask() {
    back_filled_records_reach_the_sinks([ReadingSource::HourLog, ReadingSource::HourLog]).await;
}

/// Records of the month and year loggers (a window beyond the day logger) go where hour and day
/// records go: to history sinks with their own time, never to a state sink as the newest.
#[tokio::test(start_paused = true)]
async fn month_and_year_records_reach_the_sinks_as_hour_records_do() {
    back_filled_records_reach_the_sinks([ReadingSource::MonthLog, ReadingSource::YearLog]).await;
}

async fn back_filled_records_reach_the_sinks(sources: [ReadingSource; 2]) {
    let dir = tempfile::tempdir().unwrap();
    let (db, ids) = store(&dir);
    let logged = with_backfill(&db, sources).await;
    let every = start_sink(&db, Delivery::Every, false, 0);
    let latest = start_sink(&db, Delivery::Latest, false, 0);
    let history = start_sink(&db, Delivery::Latest, true, 0);
    settle().await;

    // Every: all deliverable readings by id, the logged ones with their own (older) time.
    let got = every.log.lock().unwrap().sources.clone();
    let order: Vec<i64> = got.iter().map(|(id, _, _)| *id).collect();
    assert_eq!(
        order,
        vec![ids[0].0, ids[1].0, ids[3].0, logged[0].0, logged[1].0]
    );
    assert_eq!((got[3].1, got[4].1), (sources[0], sources[1]));
    assert_eq!(got[3].2.timestamp(), 1_779_390_000);

    // A state sink that does not take history: only the newest polled reading per meter, and
    // its cursor moves past the logged records (they are not pending for it).
    let mut plain = latest.log.lock().unwrap().delivered.clone();
    plain.sort();
    assert_eq!(
        plain,
        [(ids[1].0, "heat".to_owned()), (ids[3].0, "cold".to_owned())]
    );
    assert_eq!(db.call(|s| s.cursor("latest")).await.unwrap(), logged[1]);

    // One that does: the logged records (by meter and time) beside the newest polled ones.
    let got = history.log.lock().unwrap().sources.clone();
    let logged_got: Vec<i64> = got
        .iter()
        .filter(|(_, src, _)| src.is_logged())
        .map(|(id, _, _)| *id)
        .collect();
    assert_eq!(logged_got, vec![logged[0].0, logged[1].0]);
    let mut polled: Vec<i64> = got
        .iter()
        .filter(|(_, src, _)| src.is_poll())
        .map(|(id, _, _)| *id)
        .collect();
    polled.sort();
    assert_eq!(polled, vec![ids[1].0, ids[3].0]);
    assert_eq!(
        db.call(|s| s.cursor("latest-with-history")).await.unwrap(),
        logged[1]
    );
    for run in [every, latest, history] {
        run.stop.send(true).unwrap();
        run.task.await.unwrap();
    }
}

/// The WARN lines logged on this thread while the guard lives.
struct Warnings(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Warnings {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_sink_that_keeps_failing_warns_with_its_cause_every_few_minutes() {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || Warnings(writer.clone()))
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = store(&dir);
    // Back-off × 1.5: attempts at 0, 1.5, 4.5, 10.5, 22.5, 46.5, 94.5, 184.5, 274.5, 364.5, 454.5 s.
    let run = start_scaled(&db, Delivery::Every, false, usize::MAX, 1.5);
    for _ in 0..1000 {
        if run.log.lock().unwrap().attempts >= 11 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        settle().await;
    }
    run.stop.send(true).unwrap();
    run.task.await.unwrap();
    let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
    let warned: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("delivery failed"))
        .collect();
    // The first failure, then the first attempt 2 minutes after each WARN: 184.5 s, 364.5 s;
    // the attempts between are logged at debug only.
    let attempts: Vec<&str> = warned
        .iter()
        .map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("failed_attempts="))
                .unwrap()
        })
        .collect();
    assert_eq!(attempts, ["1", "8", "10"], "{text}");
    for line in &warned {
        assert!(line.contains("WARN"), "{line}");
        assert!(line.contains("sink=every"), "{line}");
        assert!(line.contains("connection refused"), "{line}");
    }
}

#[tokio::test]
async fn the_store_is_a_sinks_memory_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    {
        let memory = StoreMemory(Db::new(Store::open(&path).unwrap()));
        assert_eq!(memory.load("domoticz", "state").await.unwrap(), None);
        memory
            .save("domoticz", "state", r#"{"written":{}}"#)
            .await
            .unwrap();
    }
    let memory = StoreMemory(Db::new(Store::open(&path).unwrap()));
    assert_eq!(
        memory.load("domoticz", "state").await.unwrap().as_deref(),
        Some(r#"{"written":{}}"#)
    );
}
