//! The logger reader against the in-process simulator: paged reads agree record by record with
//! what the simulated meter logged (a pure function of UTC time), faults are retried from the
//! last good record id, a 402 is reported as having no loggers.
#![allow(clippy::unwrap_used)]

use kamstrup_kmp::LoggerType;
use kamstrup_meter::sim::faults::FaultPlan;
use kamstrup_meter::sim::kmp_loggers::ZONE_STANDARD_OFFSET_MIN;
use kamstrup_meter::sim::{sim_link, KmpModel, SimModel, SimOptions};
use kamstrup_meter::{KmpMeter, KmpOptions, LogError, LogQuery, Selection};

fn meter(model: KmpModel, faults: &str) -> KmpMeter {
    let options = SimOptions {
        faults: FaultPlan::parse(faults, 7).unwrap(),
        ..SimOptions::default()
    };
    let link = sim_link(SimModel::Kmp(model), options);
    KmpMeter::new(link, format!("sim:{}", model.name()), KmpOptions::default())
}

fn query(logger: LoggerType, selection: Selection) -> LogQuery {
    LogQuery {
        logger,
        registers: Vec::new(),
        selection,
        zone_standard_offset_min: ZONE_STANDARD_OFFSET_MIN,
    }
}

async fn check_day_of_hours(model: KmpModel, faults: &str) -> kamstrup_meter::LogRead {
    let mut m = meter(model, faults);
    let mut calls = Vec::new();
    let read = m
        .read_log(
            &query(LoggerType::Hourly, Selection::Last(24)),
            |done, total| calls.push((done, total)),
        )
        .await
        .unwrap();
    assert_eq!(read.rows.len(), 24);
    assert!(
        read.pages >= 4,
        "a day of hours takes several pages: {}",
        read.pages
    );
    assert_eq!(calls.last(), Some(&(24, 24)));
    let spec = model.logger(LoggerType::Hourly).unwrap();
    let ids: Vec<u16> = [348, 60, 68, 86, 87, 80, 74].to_vec();
    for pair in read.rows.windows(2) {
        assert_eq!(pair[0].id + 1, pair[1].id);
        let (a, b) = (pair[0].utc.unwrap(), pair[1].utc.unwrap());
        assert_eq!((b - a).num_seconds(), 3600);
    }
    // Every record is exactly what the simulated meter logged under that id.
    for row in &read.rows {
        let logged = model.logged_record(spec, row.id, &ids).unwrap();
        let t = kamstrup_kmp::MeterDateTime::from_record(logged.get(348).unwrap()).unwrap();
        assert_eq!(row.meter_time, Some(t));
        for v in &row.values {
            assert_eq!(
                logged.get(v.id).unwrap().value,
                v.value,
                "register {}",
                v.id
            );
        }
        assert_eq!(row.values.len(), 6);
    }
    assert!(read.clock_offset_s.is_some());
    read
}

#[tokio::test]
async fn a_day_of_hourly_records_in_pages() {
    let read = check_day_of_hours(KmpModel::Multical403, "").await;
    // config, clock, pages.
    assert_eq!(read.requests, 2 + u64::from(read.pages));
}

#[tokio::test]
async fn a_truncated_page_is_retried_from_the_last_good_record() {
    // Reply 4 is the second page.
    let read = check_day_of_hours(KmpModel::Multical603, "truncate@4,corrupt@6").await;
    assert_eq!(read.requests, 2 + u64::from(read.pages) + 2);
}

#[tokio::test]
async fn since_reads_back_to_the_asked_time() {
    let mut m = meter(KmpModel::Multical303, "");
    let since = chrono::Utc::now() - chrono::Duration::days(3);
    let read = m
        .read_log(
            &query(LoggerType::Daily, Selection::Since(since)),
            |_, _| {},
        )
        .await
        .unwrap();
    assert!((3..=4).contains(&read.rows.len()), "{}", read.rows.len());
    assert!(read.rows.iter().all(|r| r.utc.unwrap() >= since));
}

#[tokio::test]
async fn a_402_has_no_loggers() {
    let mut m = meter(KmpModel::Multical402, "");
    let err = m
        .read_log(&query(LoggerType::Hourly, Selection::Last(3)), |_, _| {})
        .await
        .unwrap_err();
    assert!(matches!(err, LogError::NoLoggers { .. }), "{err}");
    assert_eq!(err.kind(), "no-loggers");
}

#[tokio::test]
async fn the_yearly_logger_ends_at_its_oldest_record() {
    let mut m = meter(KmpModel::Multical403, "");
    let read = m
        .read_log(&query(LoggerType::Yearly, Selection::Last(10)), |_, _| {})
        .await
        .unwrap();
    assert!(read.reached_oldest);
    assert_eq!(read.rows.first().map(|r| r.id), Some(1));
    let stamp = read.rows[0].meter_time.unwrap().standard;
    assert_eq!((stamp.month, stamp.day, stamp.hour), (1, 1, 0));
}

/// Reads with `selection` and returns the read and the bytes it took on the link.
async fn read_counted(
    m: &mut KmpMeter,
    logger: LoggerType,
    selection: Selection,
) -> (kamstrup_meter::LogRead, u64) {
    let before = m.stats().link;
    let read = m
        .read_log(&query(logger, selection), |_, _| {})
        .await
        .unwrap();
    let after = m.stats().link;
    let bytes = after.bytes_sent + after.bytes_received - before.bytes_sent - before.bytes_received;
    (read, bytes)
}

/// `Between` starts near its end (by offset from the newest record) and returns exactly the
/// records of the unbounded read in that range, for fewer requests and bytes.
#[tokio::test]
async fn between_reads_only_the_range_and_equals_the_unbounded_read() {
    for (logger, since_days, until_days) in
        [(LoggerType::Daily, 70, 58), (LoggerType::Hourly, 5, 3)]
    {
        let now = chrono::Utc::now();
        let since = now - chrono::Duration::days(since_days);
        let until = now - chrono::Duration::days(until_days);
        let mut m = meter(KmpModel::Multical403, "");
        let (all, all_bytes) = read_counted(&mut m, logger, Selection::Since(since)).await;
        let (bounded, bytes) =
            read_counted(&mut m, logger, Selection::Between { since, until }).await;
        let want: Vec<_> = all
            .rows
            .iter()
            .filter(|r| r.utc.unwrap() <= until)
            .cloned()
            .collect();
        assert!(
            want.len() >= 2,
            "{logger:?}: {} records in range",
            want.len()
        );
        assert_eq!(bounded.rows, want, "{logger:?}");
        assert_eq!(bounded.newest_id, all.newest_id);
        assert!(
            bounded.requests < all.requests && bytes < all_bytes,
            "{logger:?}: bounded {} requests {bytes} B, unbounded {} requests {all_bytes} B",
            bounded.requests,
            all.requests
        );
        println!(
            "{logger:?} {since_days}..{until_days} days ago: {} records in {} requests, {bytes} B (unbounded from {since_days} days: {} records, {} requests, {all_bytes} B)",
            bounded.rows.len(),
            bounded.requests,
            all.rows.len(),
            all.requests
        );
    }
}

/// A record stamped exactly at `until` is kept, the next one (newer) is not; one second
/// earlier, that record is dropped too.
#[tokio::test]
async fn between_keeps_the_record_at_its_end_and_drops_a_newer_one() {
    let mut m = meter(KmpModel::Multical403, "");
    let since = chrono::Utc::now() - chrono::Duration::hours(30);
    let (all, _) = read_counted(&mut m, LoggerType::Hourly, Selection::Since(since)).await;
    // A record in the middle of the range.
    let edge = &all.rows[all.rows.len() / 2];
    let until = edge.utc.unwrap();
    let (read, _) = read_counted(
        &mut m,
        LoggerType::Hourly,
        Selection::Between { since, until },
    )
    .await;
    assert_eq!(read.rows.last().map(|r| r.id), Some(edge.id));
    assert_eq!(
        read.rows.first().map(|r| r.id),
        all.rows.first().map(|r| r.id)
    );
    let (read, _) = read_counted(
        &mut m,
        LoggerType::Hourly,
        Selection::Between {
            since,
            until: until - chrono::Duration::seconds(1),
        },
    )
    .await;
    assert_eq!(read.rows.last().map(|r| r.id), Some(edge.id - 1));
    // A range older than the logger: nothing, and the oldest record was reached.
    let long_ago = chrono::Utc::now() - chrono::Duration::days(400);
    let (read, _) = read_counted(
        &mut m,
        LoggerType::Hourly,
        Selection::Between {
            since: long_ago - chrono::Duration::days(1),
            until: long_ago,
        },
    )
    .await;
    assert!(
        read.rows.is_empty() && read.reached_oldest,
        "{:?}",
        read.rows.len()
    );
}

/// The oldest record in one short request: the same record a full read ends with.
#[tokio::test]
async fn the_oldest_record_in_one_request() {
    let mut m = meter(KmpModel::Multical403, "");
    let before = m.stats().requests;
    let (oldest, newest_id) = m
        .oldest_log_record(LoggerType::Daily, ZONE_STANDARD_OFFSET_MIN)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.stats().requests - before, 1);
    let (all, _) = read_counted(&mut m, LoggerType::Daily, Selection::Last(u32::MAX)).await;
    assert!(all.reached_oldest);
    assert_eq!(oldest.id, all.rows[0].id);
    assert_eq!(oldest.utc, all.rows[0].utc);
    assert_eq!(newest_id, all.newest_id);
    let mut silent = meter(KmpModel::Multical402, "");
    let err = silent
        .oldest_log_record(LoggerType::Hourly, ZONE_STANDARD_OFFSET_MIN)
        .await
        .unwrap_err();
    assert!(matches!(err, LogError::NoLoggers { .. }), "{err}");
}
