//! One task per sink: deliver what the store holds beyond the sink's cursor, then move the cursor.
//! A sink that is down keeps its cursor, so it gets what it missed when it returns, even after a
//! restart; timestamped sinks get every reading, state sinks only the newest per meter.

use std::time::Duration;

use chrono::Utc;
use kamstrup_sinks::{Delivered, Delivery, Sink};
use kamstrup_store::{ReadingId, StoredReading};
use tokio::sync::{broadcast, watch};
use tracing::{debug, info, warn};

use crate::db::Db;
use crate::status::{Failure, StatusHandle};
use crate::SinkEvent;

/// A sink that keeps failing is logged at WARN at least this often (with the cause), so a
/// delivery problem never hides at debug level.
const WARN_EVERY: Duration = Duration::from_secs(120);

/// Most readings handed to a timestamped sink at once (a long backlog goes in several batches).
const BATCH: usize = 200;

/// Wait before retrying a sink after `failures` failed attempts: 1 s, 2 s, 4 s … at most 60 s.
pub fn sink_backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(6);
    Duration::from_secs(1u64 << exp).min(Duration::from_secs(60))
}

/// Runs one sink until shutdown; on shutdown makes one last attempt to deliver what is pending.
pub async fn run_sink(
    mut sink: Box<dyn Sink>,
    db: Db,
    status: StatusHandle,
    mut new_reading: watch::Receiver<ReadingId>,
    mut events: broadcast::Receiver<SinkEvent>,
    mut shutdown: watch::Receiver<bool>,
    retry_scale: f64,
) {
    let name = sink.name().to_string();
    let mut failures: u32 = 0;
    // A deadline, not a duration: new readings arriving during a back-off must not postpone it.
    let far = || tokio::time::Instant::now() + Duration::from_secs(3600);
    let mut retry_at = tokio::time::Instant::now();
    let mut last_warn: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(retry_at) => {}
            changed = new_reading.changed() => {
                if changed.is_err() { break; }
                if failures > 0 {
                    // Still backing off: a new reading does not make a dead broker come back sooner.
                    continue;
                }
            }
            event = events.recv() => {
                if let Ok(SinkEvent::MeterUnavailable { meter, serial: Some(serial) }) = event {
                    if let Err(e) = sink.meter_unavailable(&meter, serial).await {
                        debug!(sink = %name, error = %e, "could not mark meter unavailable");
                    }
                }
                continue;
            }
            _ = shutdown.changed() => break,
        }
        match drain(&mut *sink, &db).await {
            Ok((0, _)) => {
                failures = 0;
                retry_at = far();
            }
            Ok((count, cursor)) => {
                if failures > 0 {
                    info!(sink = %name, failed_attempts = failures, "sink reachable again; backlog delivered");
                }
                failures = 0;
                last_warn = None;
                retry_at = far();
                status.sink(&name, |s| {
                    s.delivered += count as u64;
                    s.last_ok = Some(Utc::now());
                    s.cursor = cursor;
                    s.failing_since = None;
                    s.consecutive_failures = 0;
                });
            }
            Err((kind, message)) => {
                failures += 1;
                let delay = sink_backoff(failures).mul_f64(retry_scale);
                let now = tokio::time::Instant::now();
                retry_at = now + delay;
                if last_warn.is_none_or(|at| now.duration_since(at) >= WARN_EVERY) {
                    last_warn = Some(now);
                    warn!(sink = %name, error = %message, failed_attempts = failures, retry_in_s = delay.as_secs_f64(), "delivery failed; will retry (nothing is lost)");
                } else {
                    debug!(sink = %name, error = %message, failed_attempts = failures, "delivery failed again");
                }
                status.sink(&name, |s| {
                    s.failures += 1;
                    s.consecutive_failures = failures;
                    s.failing_since.get_or_insert_with(Utc::now);
                    s.last_error = Some(Failure {
                        at: Utc::now(),
                        kind,
                        message,
                    });
                });
            }
        }
    }
    // Last chance for what is pending, bounded so that shutdown never hangs on a dead sink.
    match tokio::time::timeout(Duration::from_secs(3), drain(&mut *sink, &db)).await {
        Ok(Ok((n, _))) if n > 0 => debug!(sink = %name, delivered = n, "flushed before shutdown"),
        Ok(Err((_, message))) => {
            debug!(sink = %name, error = %message, "pending readings stay in the outbox")
        }
        _ => {}
    }
    sink.shutdown().await;
    debug!(sink = %name, "sink stopped");
}

/// Delivers everything beyond the cursor; returns how many readings were delivered and the
/// cursor after them.
async fn drain(sink: &mut dyn Sink, db: &Db) -> Result<(usize, i64), (String, String)> {
    let name = sink.name().to_string();
    let delivery = sink.delivery();
    let mut total = 0;
    let mut cursor = 0;
    // Meter models change only when a meter is (re)identified: once per drain is enough.
    let mut models: Option<Vec<kamstrup_store::MeterRecord>> = None;
    let accepts_logged = sink.accepts_logged();
    loop {
        let n = name.clone();
        let (batch, upto, more) = db
            .call(move |s| next_batch(s, &n, delivery, accepts_logged))
            .await
            .map_err(|e| ("store".to_string(), e.to_string()))?;
        let Some(last) = upto else {
            return Ok((total, cursor));
        };
        if batch.is_empty() {
            // Only logged records this sink does not take: nothing to send, move past them.
            let n = name.clone();
            db.call(move |s| s.set_cursor(&n, last))
                .await
                .map_err(|e| ("store".to_string(), e.to_string()))?;
            cursor = last.0;
            if more {
                continue;
            }
            return Ok((total, cursor));
        }
        if models.is_none() {
            models = Some(
                db.call(|s| s.meters())
                    .await
                    .map_err(|e| ("store".to_string(), e.to_string()))?,
            );
        }
        let models = models.as_deref().unwrap_or_default();
        // Bridge health for state sinks (HA shows read errors of the last 24 h per meter).
        let errors_24h = match delivery {
            Delivery::Latest => {
                let since = Utc::now() - chrono::Duration::hours(24);
                db.call(move |s| s.error_counts_since(since)).await.ok()
            }
            Delivery::Every => None,
        };
        let items: Vec<Delivered<'_>> = batch
            .iter()
            .map(|r| Delivered {
                id: r.id.0,
                meter_name: &r.meter_name,
                serial: r.serial,
                model: models
                    .iter()
                    .find(|m| m.id == r.meter)
                    .and_then(|m| m.model.as_deref()),
                read_errors_24h: errors_24h
                    .as_ref()
                    .map(|c| c.get(&r.meter_name).copied().unwrap_or(0)),
                reading: &r.reading,
            })
            .collect();
        sink.deliver(&items)
            .await
            .map_err(|e| (e.kind().to_string(), e.to_string()))?;
        total += batch.len();
        let n = name.clone();
        db.call(move |s| s.set_cursor(&n, last))
            .await
            .map_err(|e| ("store".to_string(), e.to_string()))?;
        cursor = last.0;
        if !more {
            return Ok((total, cursor));
        }
    }
}

/// What a sink gets next and how far its cursor may move after it: `(batch, cursor after it,
/// more pending)`. `Every` sinks get every deliverable reading (polled or logged) by id. `Latest`
/// sinks get the newest polled reading per meter — never a logged record as the newest value —
/// and, when they accept logged records, those beyond the cursor first (by meter and time);
/// their cursor moves past everything looked at, so logged records a sink does not take are
/// skipped once, not scanned again at every wake-up.
fn next_batch(
    s: &mut kamstrup_store::Store,
    sink: &str,
    delivery: Delivery,
    accepts_logged: bool,
) -> Result<(Vec<StoredReading>, Option<ReadingId>, bool), kamstrup_store::StoreError> {
    let cursor = s.cursor(sink)?;
    match delivery {
        Delivery::Every => {
            let batch = s.readings_after(cursor, BATCH)?;
            let upto = batch.iter().map(|r| r.id).max();
            let more = batch.len() == BATCH;
            Ok((batch, upto, more))
        }
        Delivery::Latest => {
            // Read under the same lock as the queries: nothing can be stored in between.
            let newest = s.max_reading_id()?;
            let polled = s.latest_after(cursor)?;
            let (mut batch, mut upto, mut more) = (Vec::new(), newest, false);
            if accepts_logged {
                batch = s.logged_after(cursor, BATCH)?;
                if batch.len() == BATCH {
                    more = true;
                    upto = batch.iter().map(|r| r.id).max().unwrap_or(newest);
                }
            }
            // With more logged records pending, the cursor stops at the last one sent (the
            // newest polled reading is simply sent again with the next batch).
            batch.extend(polled);
            Ok((batch, (upto > cursor).then_some(upto), more))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sink_backoff;
    use std::time::Duration;

    #[test]
    fn sink_backoff_caps_at_a_minute() {
        assert_eq!(sink_backoff(1), Duration::from_secs(1));
        assert_eq!(sink_backoff(3), Duration::from_secs(4));
        assert_eq!(sink_backoff(100), Duration::from_secs(60));
    }
}
