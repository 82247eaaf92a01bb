//! Home Assistant long-term statistics for hours back-filled from a meter's hour logger: the
//! energy and volume entities get hourly rows through `recorder/import_statistics`, so the
//! Energy dashboard books each hour's heat in the hour it was used, outage hours included.
//!
//! # What is imported, and why exactly that range
//!
//! A logged record at `T` (an hour boundary; rounded to the nearest hour, as a meter clock may
//! be a few minutes off) is the counter at `T`: it becomes the row `start = T − 1 h`,
//! `state = counter`. Rows are upserted by `(statistic_id, start)`. HA's Energy dashboard shows
//! `sum(h) − sum(previous row)`, and HA's own compile keeps `sum − state` constant along the
//! series (it adds each state increase to the last sum, continuing from its last *short-term*
//! row, a table the import never touches). So every imported row gets
//! `sum = counter + (sumA − stateA)` from an anchor row `A` that HA already has:
//!
//! 1. the newest hourly row before the first imported hour (the hour before the gap), else
//! 2. the newest 5-minute row (the entity's statistics began after the gap: HA's own compile
//!    continues from exactly this row, so the hour after the imported ones is right too), else
//! 3. the oldest hourly row after the last imported hour (short-term rows already purged), else
//! 4. the entity's first state in HA (its state history, else its current state): a new entity
//!    has no statistics yet, and HA's first compile will start its sum at 0 from that state, so
//!    the imported rows get `sum = counter − first state` and meet HA's own rows without a step
//!    (on a first start the daemon publishes its first poll before it imports), else
//! 5. none: the newest imported row gets `sum = 0`.
//!
//! Only the logged hours are written. The hour the bridge came back, which HA compiled itself
//! with the whole gap's increase, needs no rewrite: its sum is on the same basis already
//! (`sum − state` unchanged through an outage, as HA adds the jump when states resume), so once
//! the gap hours exist its change shrinks to its own hour, and HA's next compile, which
//! continues from its short-term rows, stays continuous with it. Rewriting it with any other
//! sum would instead put a step into the hour after it. The same holds when the record of that
//! hour itself is in a later back-fill: it replaces HA's row with the same basis. Re-importing
//! a batch (a retry) writes the same rows again.
//!
//! Never an hour HA has not compiled yet. HA compiles each hour itself 10 s after it ends (with
//! its 5-minute statistics) and inserts that row blindly: a row already there for that hour
//! makes the insert fail, and HA 2024.3 then drops the whole compile, every entity's 5-minute
//! and hourly rows included (seen on a real HA 2024.3.3 when a meter 9½ min ahead had logged
//! the end of the host's running hour). So a record whose hour has not ended on this host's
//! clock is not imported (the bridge is running then, so HA compiles that hour from its states),
//! and an import with an hour that ended less than [`HA_COMPILE_LEAD`] ago waits until then.
//!
//! Values are exact: counters are the meter's decimals, the offset is HA's number as HA wrote
//! it, both sent as JSON number text (never through `f64`). Rows go in the unit HA keeps the
//! statistic in (converted exactly by a power of ten, e.g. kWh → MWh, or left out with a
//! warning when no exact conversion exists, e.g. GJ → kWh), so an import never changes the
//! unit of an existing statistic.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use kamstrup_decimal::Decimal;
use kamstrup_reading::{ReadingSource, Unit};
use reqwest::Url;
use serde::Serialize;
use serde_json::{json, Value};

use crate::ha_map::{map_register, DeviceClass, HaValue, HaVersion, VolumeClass};
use crate::ha_websocket::{websocket_url, HaWebsocket, HaWsError};
use crate::homeassistant::discovered_entity_id;
use crate::secret::Secret;
use crate::values::{display_url, ExactNumber, HA_ENERGY_UNITS};
use crate::{CheckLine, Delivered, MeterContext, SinkError};

/// The hourly counter values of one entity, from logged records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Series {
    /// The entity's discovered unique id (`kamstrup_<serial>_<register>`), to find its id.
    pub unique_id: String,
    /// `sensor.kamstrup_<meter>_<register>` (what discovery suggests; used when HA's registry
    /// does not say otherwise).
    pub statistic_id: String,
    /// The HA unit of the values (`GJ`, `m³`, `L`).
    pub unit: String,
    /// HA's unit class: `energy` or `volume`.
    pub unit_class: &'static str,
    /// Hour start → the counter at the hour's end.
    pub points: BTreeMap<DateTime<Utc>, Decimal>,
}

/// One row to import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Row {
    pub start: DateTime<Utc>,
    pub state: Decimal,
    pub sum: Decimal,
}

/// A row HA already has: its state and sum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Anchor {
    pub state: Decimal,
    pub sum: Decimal,
}

/// How long after an hour ends HA has surely compiled it (HA runs its compile 10 s after each
/// 5-minute period; the rest is for a busy recorder queue and a little clock skew).
pub(crate) const HA_COMPILE_LEAD: TimeDelta = TimeDelta::seconds(30);

/// How long to wait before importing `series` so that HA has compiled every hour in it first:
/// zero unless the newest hour ended less than [`HA_COMPILE_LEAD`] before `now`.
pub(crate) fn wait_for_ha_compile(series: &[Series], now: DateTime<Utc>) -> Duration {
    series
        .iter()
        .filter_map(|s| s.points.keys().next_back())
        .max()
        .and_then(|newest| {
            let compiled = *newest + TimeDelta::hours(1) + HA_COMPILE_LEAD;
            (compiled - now).to_std().ok()
        })
        .unwrap_or_default()
}

/// The start of the hour a record at `t` closes: `t` rounded to the nearest hour, minus 1 h.
pub(crate) fn hour_start(t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let end = t.duration_round(TimeDelta::hours(1)).ok()?;
    end.checked_sub_signed(TimeDelta::hours(1))
}

/// The series of every energy and volume entity in the hour-log records of `batch`.
/// Registers not configured for the meter any more are left out, as in discovery; a counter
/// that goes backwards inside a series is dropped (never imported as a reset); an hour that has
/// not ended at `now` is left to HA's own compile (see the module doc).
pub(crate) fn series_of(
    batch: &[Delivered<'_>],
    compat: HaVersion,
    volume: VolumeClass,
    meters: &[MeterContext],
    now: DateTime<Utc>,
) -> Vec<Series> {
    let mut out: BTreeMap<String, Series> = BTreeMap::new();
    for d in batch
        .iter()
        .filter(|d| d.reading.source == ReadingSource::HourLog)
    {
        let configured = meters
            .iter()
            .find(|m| m.name == d.meter_name && !m.registers.is_empty());
        let Some(start) = hour_start(d.reading.taken_at) else {
            continue;
        };
        if start + TimeDelta::hours(1) > now {
            tracing::debug!(meter = d.meter_name, %start,
                "logged hour still running on this host's clock: Home Assistant compiles it from the states");
            continue;
        }
        for reg in &d.reading.registers {
            if reg.derived || configured.is_some_and(|m| !m.registers.contains(&reg.name)) {
                continue;
            }
            let Some(entity) = map_register(reg, compat, volume) else {
                continue;
            };
            let unit_class = match entity.device_class {
                Some(DeviceClass::Energy)
                    if reg
                        .unit
                        .physical()
                        .is_some_and(|u| HA_ENERGY_UNITS.contains(&u)) =>
                {
                    "energy"
                }
                Some(DeviceClass::Volume | DeviceClass::Water) => "volume",
                _ => continue,
            };
            let (HaValue::Number(value), Some(unit)) = (&entity.value, &entity.unit) else {
                continue;
            };
            let unique_id = format!("kamstrup_{}_{}", d.serial, crate::values::slug(&reg.name));
            let s = out.entry(unique_id.clone()).or_insert_with(|| Series {
                unique_id,
                statistic_id: discovered_entity_id(d.meter_name, &reg.name),
                unit: unit.clone(),
                unit_class,
                points: BTreeMap::new(),
            });
            s.points.insert(start, *value);
        }
    }
    let mut list: Vec<Series> = out.into_values().collect();
    for s in &mut list {
        let mut last: Option<Decimal> = None;
        s.points.retain(|start, v| {
            if last.is_some_and(|l| v.cmp_value(&l).is_lt()) {
                tracing::warn!(statistic = %s.statistic_id, %start, value = %v,
                    "hour-log counter went backwards: not imported");
                return false;
            }
            last = Some(*v);
            true
        });
    }
    list.retain(|s| !s.points.is_empty());
    list
}

/// The rows of a series, continuing HA's sums from `anchor` (see the module doc for which).
pub(crate) fn rows(series: &Series, anchor: Option<Anchor>) -> Option<Vec<Row>> {
    let offset = match anchor {
        Some(a) => a.sum.checked_sub(&a.state)?,
        None => series.points.values().next_back()?.checked_neg()?,
    };
    series
        .points
        .iter()
        .map(|(start, state)| {
            Some(Row {
                start: *start,
                state: *state,
                sum: state.checked_add(&offset)?,
            })
        })
        .collect()
}

/// `value` (in HA unit `from`) in HA unit `to`, only when that is exact (`MWh` → `kWh`,
/// `m³` → `L`; not `GJ` → `kWh`), through the one unit table of `kamstrup_reading`.
pub(crate) fn convert(value: &Decimal, from: &str, to: &str) -> Option<Decimal> {
    if from == to {
        return Some(*value);
    }
    // HA writes litres `L`; the meters' table `l`.
    let unit = |s: &str| Unit::parse(if s == "L" { "l" } else { s });
    let (a, b) = (unit(from)?, unit(to)?);
    let there = a.convert(value, b, value.decimals().saturating_add(12))?;
    // Exact only if the way back, at full resolution, gives the value itself.
    let back = b.convert(&there, a, there.decimals().saturating_add(12))?;
    back.eq_value(value).then_some(there)
}

#[derive(Serialize)]
struct StatRow {
    start: String,
    state: ExactNumber,
    sum: ExactNumber,
}

#[derive(Serialize)]
struct ImportFields<'a> {
    metadata: Value,
    stats: &'a [StatRow],
}

/// The `recorder/import_statistics` fields for `rows`, as JSON text whose numbers are the exact
/// decimals (never through `f64`). HA 2025.11 added `mean_type` and `unit_class` (required
/// from 2026.11; 2024.3's schema rejects them as extra keys) and made `has_mean` optional;
/// older HA requires `has_mean`.
pub(crate) fn import_fields(
    statistic_id: &str,
    unit: &str,
    unit_class: &str,
    rows: &[Row],
    compat: HaVersion,
) -> Result<String, SinkError> {
    let mut metadata = json!({
        "has_sum": true,
        "name": null,
        "source": "recorder",
        "statistic_id": statistic_id,
        "unit_of_measurement": unit,
    });
    if compat.has_statistics_mean_type() {
        metadata["mean_type"] = json!(0);
        metadata["unit_class"] = json!(unit_class);
    } else {
        metadata["has_mean"] = json!(false);
    }
    let stats: Vec<StatRow> = rows
        .iter()
        .map(|r| StatRow {
            start: r.start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            state: ExactNumber(r.state),
            sum: ExactNumber(r.sum),
        })
        .collect();
    serde_json::to_string(&ImportFields {
        metadata,
        stats: &stats,
    })
    .map_err(|e| SinkError::config(format!("cannot encode statistics: {e}")))
}

/// A number HA sent (a JSON float) as the decimal it prints as (shortest round-trip text).
fn decimal_of(v: &Value) -> Option<Decimal> {
    let f = v.as_f64()?;
    if !f.is_finite() {
        return None;
    }
    format!("{f}").parse().ok()
}

/// A row's `start` as HA sends it: milliseconds since the epoch (2023.3+) or ISO text.
fn start_of(row: &Value) -> Option<DateTime<Utc>> {
    match &row["start"] {
        Value::Number(n) => {
            let ms = n.as_f64()?;
            DateTime::from_timestamp_millis(ms as i64)
        }
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        _ => None,
    }
}

/// Which existing rows to look at for an anchor: `[from, to)` of one period.
#[derive(Clone, Copy)]
struct Query {
    period: &'static str,
    from: DateTime<Utc>,
    to: Option<DateTime<Utc>>,
    newest: bool,
}

/// Where statistics go: HA's base URL and an administrator's long-lived token.
#[derive(Clone)]
pub(crate) struct StatisticsTarget {
    pub base: Url,
    pub token: Secret,
    pub timeout: Duration,
}

/// Imports series into one Home Assistant over its websocket API.
pub(crate) struct StatisticsImporter {
    ws_url: Url,
    token: Secret,
    timeout: Duration,
    compat: HaVersion,
    /// The websocket URL as shown in logs and errors.
    pub(crate) target: String,
}

impl StatisticsImporter {
    pub(crate) fn new(t: &StatisticsTarget, compat: HaVersion) -> Result<Self, SinkError> {
        let ws_url = websocket_url(&t.base)?;
        Ok(StatisticsImporter {
            target: display_url(&ws_url),
            ws_url,
            token: t.token.clone(),
            timeout: t.timeout,
            compat,
        })
    }

    fn err(&self, e: HaWsError) -> SinkError {
        let e = match e {
            HaWsError::UnknownCommand { command, message } if command.starts_with("recorder/") => {
                return SinkError::rejected(
                    &self.target,
                    format!(
                        "Home Assistant has no recorder ({command}: {message}); statistics \
                         import needs `recorder:` (on by default with `default_config:`)"
                    ),
                )
            }
            other => other,
        };
        e.into_sink_error(&self.target)
    }

    async fn connect(&self) -> Result<HaWebsocket, SinkError> {
        HaWebsocket::connect(&self.ws_url, &self.token, self.timeout)
            .await
            .map_err(|e| self.err(e))
    }

    /// Imports every series; returns the number of rows written. Any failure is an error
    /// (the outbox retries the whole batch; re-importing is harmless).
    pub(crate) async fn import(&self, series: &[Series]) -> Result<usize, SinkError> {
        if series.is_empty() {
            return Ok(0);
        }
        let mut ws = self.connect().await?;
        let result = self.import_on(&mut ws, series).await;
        ws.close().await;
        result
    }

    async fn import_on(&self, ws: &mut HaWebsocket, series: &[Series]) -> Result<usize, SinkError> {
        let ids = self.entity_ids(ws).await;
        let mut written = 0;
        for s in series {
            let registered = ids.get(&s.unique_id);
            let statistic_id = registered
                .cloned()
                .unwrap_or_else(|| s.statistic_id.clone());
            let stored_unit = self.stored_unit(ws, &statistic_id).await?;
            let unit = stored_unit.clone().unwrap_or_else(|| s.unit.clone());
            let mut converted = s.clone();
            converted.unit.clone_from(&unit);
            let mut exact = true;
            for v in converted.points.values_mut() {
                match convert(v, &s.unit, &unit) {
                    Some(c) => *v = c,
                    None => exact = false,
                }
            }
            if !exact {
                tracing::warn!(statistic = %statistic_id, from = %s.unit, to = %unit,
                    "Home Assistant keeps this statistic in a unit the meter's values cannot be converted to exactly: hours not imported");
                continue;
            }
            let first = *converted
                .points
                .keys()
                .next()
                .unwrap_or(&DateTime::UNIX_EPOCH);
            let last = *converted
                .points
                .keys()
                .next_back()
                .unwrap_or(&DateTime::UNIX_EPOCH);
            let before = Query {
                period: "hour",
                from: first - TimeDelta::days(62),
                to: Some(first),
                newest: true,
            };
            let short = Query {
                period: "5minute",
                from: Utc::now() - TimeDelta::days(1),
                to: None,
                newest: true,
            };
            let after = Query {
                period: "hour",
                from: last + TimeDelta::hours(1),
                to: None,
                newest: false,
            };
            let mut anchor = None;
            let mut anchored_on = "none (the newest imported hour ends at sum 0)";
            // (Case 4 is asked only when HA has no statistics row at all.)
            for (q, what) in [
                (before, "HA's hour before the first imported one"),
                (short, "HA's newest 5-minute row"),
                (after, "HA's hour after the last imported one"),
            ] {
                anchor = self.anchor(ws, &converted, &statistic_id, &q).await?;
                if anchor.is_some() {
                    anchored_on = what;
                    break;
                }
            }
            if anchor.is_none() {
                if let Some(first) = self.first_state(ws, &statistic_id).await {
                    anchor = Some(Anchor {
                        state: first,
                        sum: Decimal::from_int(0),
                    });
                    anchored_on =
                        "the entity's first state in HA (where HA's first compile starts)";
                }
            }
            let Some(rows) = rows(&converted, anchor) else {
                tracing::warn!(statistic = %statistic_id, "statistics sums out of range: hours not imported");
                continue;
            };
            let fields = import_fields(&statistic_id, &unit, s.unit_class, &rows, self.compat)?;
            ws.command_text("recorder/import_statistics", &fields)
                .await
                .map_err(|e| self.err(e))?;
            tracing::info!(statistic = %statistic_id, rows = rows.len(),
                first = %first, last = %last, sum_continues = anchored_on,
                "imported back-filled hours into Home Assistant's statistics");
            written += rows.len();
        }
        Ok(written)
    }

    /// unique id → entity id of our MQTT entities, from HA's entity registry (a renamed entity
    /// keeps its unique id). Empty if the registry cannot be read: the discovered ids are used.
    async fn entity_ids(&self, ws: &mut HaWebsocket) -> BTreeMap<String, String> {
        let list = match ws.command("config/entity_registry/list", Value::Null).await {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(error = %e, "entity registry not readable; using discovered ids");
                return BTreeMap::new();
            }
        };
        list.as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["platform"] == "mqtt")
            .filter_map(|e| {
                Some((
                    e["unique_id"].as_str()?.to_owned(),
                    e["entity_id"].as_str()?.to_owned(),
                ))
            })
            .collect()
    }

    /// The unit HA keeps the statistic in, if HA has it.
    async fn stored_unit(
        &self,
        ws: &mut HaWebsocket,
        statistic_id: &str,
    ) -> Result<Option<String>, SinkError> {
        let meta = ws
            .command(
                "recorder/get_statistics_metadata",
                json!({"statistic_ids": [statistic_id]}),
            )
            .await
            .map_err(|e| self.err(e))?;
        Ok(meta
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["statistic_id"] == statistic_id)
            .and_then(|m| m["statistics_unit_of_measurement"].as_str())
            .map(str::to_owned))
    }

    /// The newest row of `q` (or the oldest, when `!q.newest`).
    async fn anchor(
        &self,
        ws: &mut HaWebsocket,
        s: &Series,
        statistic_id: &str,
        q: &Query,
    ) -> Result<Option<Anchor>, SinkError> {
        let (from, to, newest) = (q.from, q.to, q.newest);
        let iso = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut fields = json!({
            "start_time": iso(from),
            "statistic_ids": [statistic_id],
            "period": q.period,
            "types": ["sum", "state"],
            "units": {s.unit_class: s.unit},
        });
        if let Some(to) = to {
            fields["end_time"] = json!(iso(to));
        }
        let result = ws
            .command("recorder/statistics_during_period", fields)
            .await
            .map_err(|e| self.err(e))?;
        let mut found: Vec<(DateTime<Utc>, Anchor)> = result[statistic_id]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| {
                let start = start_of(r)?;
                let anchor = Anchor {
                    state: decimal_of(&r["state"])?,
                    sum: decimal_of(&r["sum"])?,
                };
                let inside = start >= from && to.is_none_or(|to| start < to);
                inside.then_some((start, anchor))
            })
            .collect();
        found.sort_by_key(|(start, _)| *start);
        let pick = if newest { found.last() } else { found.first() };
        Ok(pick.map(|(_, a)| *a))
    }

    /// The first numeric state HA recorded for `entity_id` (its history of the last day), else
    /// its current state; `None` when HA has neither (or cannot tell: the import then falls
    /// back to case 5 rather than fail). On a first start the import follows the first state's
    /// publication by milliseconds and HA is still taking it in: it creates a discovered entity
    /// asynchronously, shows it `unavailable` until the availability message arrives, and
    /// subscribes to its state topic a moment later (seen in HA 2024.3.3: registered and
    /// `unavailable` at +7 ms, the number at +350 ms). So a missing or non-numeric current
    /// state is awaited for up to 10 s; this path runs only for an entity HA has no statistics
    /// of, so the wait happens once per new entity.
    async fn first_state(&self, ws: &mut HaWebsocket, entity_id: &str) -> Option<Decimal> {
        let number = |v: &Value| v.as_str().and_then(|s| s.trim().parse::<Decimal>().ok());
        let since =
            (Utc::now() - TimeDelta::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let history = ws
            .command(
                "history/history_during_period",
                json!({
                    "start_time": since,
                    "entity_ids": [entity_id],
                    "minimal_response": true,
                    "no_attributes": true,
                    "significant_changes_only": false,
                }),
            )
            .await;
        match history {
            Ok(h) => {
                let first = h[entity_id]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find_map(|row| number(&row["s"]).or_else(|| number(&row["state"])));
                if first.is_some() {
                    return first;
                }
            }
            Err(e) => {
                tracing::debug!(entity = %entity_id, error = %e, "no state history from Home Assistant")
            }
        }
        // Not committed to HA's database yet (the recorder writes about once a second): the
        // state machine has it.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let states = ws.command("get_states", Value::Null).await.ok()?;
            let state = states
                .as_array()?
                .iter()
                .find(|e| e["entity_id"] == entity_id)
                .and_then(|e| number(&e["state"]));
            if state.is_some() || tokio::time::Instant::now() >= deadline {
                return state;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// `kamstrup check`: the token logs in, its user is an administrator, the recorder runs.
    pub(crate) async fn check(&self) -> CheckLine {
        let item = format!("homeassistant statistics via {}", self.target);
        let mut ws = match self.connect().await {
            Ok(ws) => ws,
            Err(e) => return CheckLine::fail(item, &e),
        };
        let verdict = async {
            let user = ws
                .command("auth/current_user", Value::Null)
                .await
                .map_err(|e| self.err(e))?;
            if user["is_admin"] != json!(true) {
                return Err(SinkError::auth(
                    &self.target,
                    "the token's user is not an administrator (recorder/import_statistics needs one)",
                ));
            }
            ws.command("recorder/info", Value::Null)
                .await
                .map_err(|e| self.err(e))?;
            Ok(format!(
                "logged in to Home Assistant {} as an administrator; recorder running; {} metadata",
                ws.ha_version,
                if self.compat.has_statistics_mean_type() {
                    "with mean_type/unit_class"
                } else {
                    "without mean_type/unit_class (compat < 2025.11)"
                }
            ))
        }
        .await;
        ws.close().await;
        match verdict {
            Ok(detail) => CheckLine::ok(item, detail),
            Err(e) => CheckLine::fail(item, &e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{reading_with, reg};
    use crate::Delivered;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn record_closes_the_hour_before_its_rounded_time() {
        assert_eq!(
            hour_start(t("2026-11-30T13:00:04Z")),
            Some(t("2026-11-30T12:00:00Z"))
        );
        assert_eq!(
            hour_start(t("2026-11-30T12:50:37Z")),
            Some(t("2026-11-30T12:00:00Z"))
        );
    }

    #[test]
    fn series_only_energy_and_volume_of_hour_logs() {
        let mut logged = Vec::new();
        for (h, e, v) in [
            (10, "1.00", "5.000"),
            (11, "1.25", "5.500"),
            (12, "1.20", "6.000"),
        ] {
            let mut r = reading_with(vec![
                reg("heat_energy", "E1", e, "GJ"),
                reg("volume", "V1", v, "m³"),
                reg("t1", "T1", "60.1", "°C"),
                reg("hours", "HourCounter", "100", "h"),
            ]);
            r.source = ReadingSource::HourLog;
            r.taken_at = t(&format!("2026-11-30T{h}:00:00Z"));
            logged.push(r);
        }
        let mut polled = reading_with(vec![reg("heat_energy", "E1", "9.99", "GJ")]);
        polled.taken_at = t("2026-11-30T13:10:00Z");
        let batch: Vec<Delivered<'_>> = logged
            .iter()
            .chain([&polled])
            .map(crate::testutil::delivered_fixture)
            .collect();
        let s = series_of(
            &batch,
            HaVersion::DEFAULT,
            VolumeClass::Water,
            &[],
            t("2026-12-01T00:00:00Z"),
        );
        assert_eq!(s.len(), 2, "{s:?}");
        let e = &s[0];
        assert_eq!(e.statistic_id, "sensor.kamstrup_heat_heat_energy");
        assert_eq!((e.unit.as_str(), e.unit_class), ("GJ", "energy"));
        // 1.20 after 1.25 goes backwards: dropped; the polled reading is not a row.
        assert_eq!(
            e.points
                .iter()
                .map(|(k, v)| (*k, v.to_string()))
                .collect::<Vec<_>>(),
            vec![
                (t("2026-11-30T09:00:00Z"), "1.00".to_owned()),
                (t("2026-11-30T10:00:00Z"), "1.25".to_owned())
            ]
        );
        assert_eq!((s[1].unit.as_str(), s[1].unit_class), ("m³", "volume"));
        assert_eq!(s[1].points.len(), 3);
    }

    /// A meter ahead of the host logs the end of the host's running hour early (a 403 9½ min
    /// ahead: its 12:00 record at 11:50:31). HA compiles that hour itself 10 s after it ends and
    /// fails on a row already there, so the hour is left out until it has ended here.
    #[test]
    fn an_hour_still_running_on_this_host_is_not_imported() {
        let logged: Vec<_> = ["10:00:00", "10:50:31", "11:50:31"]
            .into_iter()
            .zip(["1.00", "1.10", "1.20"])
            .map(|(at, e)| {
                let mut r = reading_with(vec![reg("heat_energy", "E1", e, "GJ")]);
                r.source = ReadingSource::HourLog;
                r.taken_at = t(&format!("2026-11-30T{at}Z"));
                r
            })
            .collect();
        let batch: Vec<Delivered<'_>> = logged
            .iter()
            .map(crate::testutil::delivered_fixture)
            .collect();
        let starts = |now: &str| -> Vec<String> {
            let s = series_of(&batch, HaVersion::DEFAULT, VolumeClass::Water, &[], t(now));
            s.iter()
                .flat_map(|s| s.points.keys().map(|k| k.format("%H:%M").to_string()))
                .collect()
        };
        assert_eq!(starts("2026-11-30T11:55:00Z"), ["09:00", "10:00"]);
        assert_eq!(starts("2026-11-30T11:59:59Z"), ["09:00", "10:00"]);
        assert_eq!(starts("2026-11-30T12:00:00Z"), ["09:00", "10:00", "11:00"]);
        assert_eq!(starts("2026-11-30T10:59:59Z"), ["09:00"]);
    }

    /// An hour that ended moments ago is imported only once HA has compiled it.
    #[test]
    fn an_import_waits_until_ha_has_compiled_its_newest_hour() {
        let series = |starts: &[&str]| Series {
            unique_id: "kamstrup_1_heat_energy".into(),
            statistic_id: "sensor.kamstrup_heat_heat_energy".into(),
            unit: "GJ".into(),
            unit_class: "energy",
            points: starts.iter().map(|h| (t(h), d("1.00"))).collect(),
        };
        let two = [
            series(&["2026-11-30T10:00:00Z", "2026-11-30T11:00:00Z"]),
            series(&["2026-11-30T09:00:00Z"]),
        ];
        let wait = |now: &str| wait_for_ha_compile(&two, t(now)).as_secs();
        assert_eq!(wait("2026-11-30T12:00:05Z"), 25);
        assert_eq!(wait("2026-11-30T12:00:00Z"), 30);
        assert_eq!(wait("2026-11-30T12:00:30Z"), 0);
        assert_eq!(wait("2026-11-30T13:00:00Z"), 0);
        assert_eq!(
            wait_for_ha_compile(&[], t("2026-11-30T12:00:05Z")).as_secs(),
            0
        );
    }

    /// Day, month and year records are no hourly statistics rows: only the hour logger's are.
    #[test]
    fn no_series_of_day_month_or_year_logs() {
        let logged: Vec<_> = [
            ReadingSource::DayLog,
            ReadingSource::MonthLog,
            ReadingSource::YearLog,
        ]
        .into_iter()
        .enumerate()
        .map(|(k, source)| {
            let mut r = reading_with(vec![
                reg("heat_energy", "E1", &format!("1.{k}0"), "GJ"),
                reg("volume", "V1", &format!("5.{k}00"), "m³"),
            ]);
            r.source = source;
            r.taken_at = t(&format!("2026-11-{:02}T23:00:00Z", 10 + k));
            r
        })
        .collect();
        let batch: Vec<Delivered<'_>> = logged
            .iter()
            .map(crate::testutil::delivered_fixture)
            .collect();
        assert!(series_of(
            &batch,
            HaVersion::DEFAULT,
            VolumeClass::Water,
            &[],
            t("2026-12-01T00:00:00Z")
        )
        .is_empty());
    }

    fn series(points: &[(&str, &str)]) -> Series {
        Series {
            unique_id: "kamstrup_1_heat_energy".into(),
            statistic_id: "sensor.x".into(),
            unit: "GJ".into(),
            unit_class: "energy",
            points: points.iter().map(|(s, v)| (t(s), d(v))).collect(),
        }
    }

    #[test]
    fn sums_continue_from_the_anchor_exactly() {
        let s = series(&[
            ("2026-11-30T09:00:00Z", "320.59"),
            ("2026-11-30T10:00:00Z", "320.61"),
        ]);
        // HA's row before the gap: state 320.50, sum 12.300000000000011 (float noise kept as HA
        // wrote it; the hourly changes stay exact).
        let before = Anchor {
            state: d("320.50"),
            sum: d("12.300000000000011"),
        };
        let r = rows(&s, Some(before)).unwrap();
        assert_eq!(r[0].sum.to_string(), "12.390000000000011");
        assert_eq!(r[1].sum.to_string(), "12.410000000000011");
        assert!(r[1]
            .sum
            .checked_sub(&r[0].sum)
            .unwrap()
            .eq_value(&d("0.02")));
        // An anchor after the range (HA's 5-minute or later hourly row): the same basis, so the
        // later row's change is its own hour.
        let after = Anchor {
            state: d("320.70"),
            sum: d("0.5"),
        };
        let r = rows(&s, Some(after)).unwrap();
        assert_eq!(r[1].sum.to_string(), "0.41");
        // Nothing in HA: the newest row ends at 0, where HA's own first compile starts.
        let r = rows(&s, None).unwrap();
        assert_eq!(
            r.iter().map(|r| r.sum.to_string()).collect::<Vec<_>>(),
            ["-0.02", "0.00"]
        );
    }

    #[test]
    fn metadata_keys_by_compat() {
        let s = series(&[("2026-11-30T09:00:00Z", "320.59")]);
        let r = rows(&s, None).unwrap();
        let parse = |text: String| serde_json::from_str::<Value>(&text).unwrap();
        let old =
            parse(import_fields("sensor.x", "GJ", "energy", &r, HaVersion::new(2024, 3)).unwrap());
        assert_eq!(old["metadata"]["has_mean"], json!(false));
        assert!(old["metadata"].get("mean_type").is_none());
        assert!(old["metadata"].get("unit_class").is_none());
        let text = import_fields("sensor.x", "GJ", "energy", &r, HaVersion::new(2025, 11)).unwrap();
        assert!(text.contains(r#""state":320.59,"sum":0.00"#), "{text}");
        let new = parse(text);
        assert_eq!(new["metadata"]["mean_type"], json!(0));
        assert_eq!(new["metadata"]["unit_class"], json!("energy"));
        assert!(new["metadata"].get("has_mean").is_none());
        assert_eq!(new["metadata"]["source"], json!("recorder"));
        assert_eq!(new["stats"][0]["start"], json!("2026-11-30T09:00:00Z"));
        assert_eq!(new["stats"][0]["state"].to_string(), "320.59");
    }

    #[test]
    fn exact_conversions_only() {
        assert_eq!(
            convert(&d("1.5"), "MWh", "kWh").unwrap().to_string(),
            "1500"
        );
        assert!(convert(&d("2482.19"), "m³", "L")
            .unwrap()
            .eq_value(&d("2482190")));
        assert_eq!(convert(&d("1"), "GJ", "kWh"), None);
        assert_eq!(convert(&d("1"), "GJ", "GJ"), Some(d("1")));
    }

    #[test]
    fn numbers_from_ha() {
        assert_eq!(
            decimal_of(&json!(0.30000000000000004)).unwrap().to_string(),
            "0.30000000000000004"
        );
        assert_eq!(
            start_of(&json!({"start": 1_796_029_200_000.0_f64})),
            Some(t("2026-11-30T09:00:00Z"))
        );
        assert_eq!(
            start_of(&json!({"start": "2026-11-30T09:00:00+00:00"})),
            Some(t("2026-11-30T09:00:00Z"))
        );
    }
}
