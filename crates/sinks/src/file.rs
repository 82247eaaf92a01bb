//! File sink: every reading appended to a file (or stdout) as JSON lines or CSV, synced to disk
//! before the delivery counts as done.
//!
//! JSON lines, one per reading:
//! `{"id":1,"taken_at":"2026-05-21T21:46:40Z","meter":"heat","serial":67123456,"model":"MULTICAL 403",
//! "values":{"heat_energy":84.817,…},"units":{"heat_energy":"GJ",…}}` (exact numbers; date
//! registers as strings). A record back-filled from the meter's logger carries its logged time
//! and `"source":"hour_log"` (`day_log` …); polled readings have no `source` key.
//!
//! CSV, one row per register (long format, so the columns never change when registers do), with
//! a header when the file is new or empty: `taken_at,meter,serial,register,value,unit`.
//!
//! A retried delivery may append a reading twice (at least once); `id` tells duplicates apart.

use std::path::PathBuf;

use kamstrup_reading::ReadingSource;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use tokio::io::AsyncWriteExt;

use crate::validate::{ConfigProblem, Problems};
use crate::values::{plain, CounterGuard, CounterUpdates, ExactNumber};
use crate::{CheckLine, Delivered, Delivery, Sink, SinkError};

/// `[file]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Set `false` to keep the section but not run the sink.
    #[serde(default = "crate::yes")]
    pub enabled: bool,
    /// Output file (appended to, created if missing); `-` for standard output.
    pub path: PathBuf,
    /// `jsonl` (default) or `csv`.
    #[serde(default)]
    pub format: FileFormat,
}

/// Output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    /// One JSON object per reading and line.
    #[default]
    Jsonl,
    /// One CSV row per register.
    Csv,
}

const CSV_HEADER: &str = "taken_at,meter,serial,register,value,unit\n";

/// The file sink.
pub struct FileSink {
    cfg: FileConfig,
    guard: CounterGuard,
}

struct Values<'a>(&'a [&'a kamstrup_reading::RegisterValue]);

impl Serialize for Values<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for reg in self.0 {
            match &reg.text {
                Some(t) => map.serialize_entry(&reg.name, t)?,
                None => map.serialize_entry(&reg.name, &ExactNumber(reg.value))?,
            }
        }
        map.end()
    }
}

struct Units<'a>(&'a [&'a kamstrup_reading::RegisterValue]);

impl Serialize for Units<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let with_unit: Vec<_> = self
            .0
            .iter()
            .filter(|r| !r.unit.is_empty() && r.text.is_none())
            .collect();
        let mut map = s.serialize_map(Some(with_unit.len()))?;
        for reg in with_unit {
            map.serialize_entry(&reg.name, &reg.unit)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct JsonLine<'a> {
    id: i64,
    taken_at: String,
    meter: &'a str,
    serial: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a str>,
    /// Left out for polled readings; `hour_log` … for records back-filled from a logger.
    #[serde(skip_serializing_if = "ReadingSource::is_poll")]
    source: ReadingSource,
    values: Values<'a>,
    units: Units<'a>,
}

/// A CSV field, quoted when it needs to be.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

impl FileConfig {
    /// The static rules of `[file]`: a path (or `-`).
    pub fn validate(&self) -> Vec<ConfigProblem> {
        let mut p = Problems::new("file");
        if self.path.as_os_str().is_empty() {
            p.key(
                "path",
                "path is empty: write a file name, or \"-\" for standard output",
            );
        }
        p.list
    }
}

impl FileSink {
    /// Builds the sink (the file is opened at each delivery).
    pub fn new(cfg: &FileConfig) -> Result<Self, SinkError> {
        crate::validate::first(cfg.validate())?;
        Ok(FileSink {
            cfg: cfg.clone(),
            guard: CounterGuard::default(),
        })
    }

    fn to_stdout(&self) -> bool {
        self.cfg.path.as_os_str() == "-"
    }

    fn target(&self) -> String {
        self.cfg.path.display().to_string()
    }

    /// The text for one reading (without CSV header), or `None` if it has no value.
    pub(crate) fn render(
        &self,
        d: &Delivered<'_>,
        regs: &[&kamstrup_reading::RegisterValue],
    ) -> Result<Option<String>, SinkError> {
        if regs.is_empty() {
            return Ok(None);
        }
        let taken_at = d
            .reading
            .taken_at
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        match self.cfg.format {
            FileFormat::Jsonl => {
                let line = JsonLine {
                    id: d.id,
                    taken_at,
                    meter: d.meter_name,
                    serial: d.serial,
                    model: d.model,
                    source: d.reading.source,
                    values: Values(regs),
                    units: Units(regs),
                };
                let mut text = serde_json::to_string(&line)
                    .map_err(|e| SinkError::config(format!("cannot encode JSON: {e}")))?;
                text.push('\n');
                Ok(Some(text))
            }
            FileFormat::Csv => {
                let mut text = String::new();
                for reg in regs {
                    let value = reg.text.clone().unwrap_or_else(|| plain(&reg.value));
                    let unit = if reg.text.is_some() {
                        ""
                    } else {
                        reg.unit.as_str()
                    };
                    text.push_str(&format!(
                        "{},{},{},{},{},{}\n",
                        taken_at,
                        csv_field(d.meter_name),
                        d.serial,
                        csv_field(&reg.name),
                        csv_field(&value),
                        csv_field(unit)
                    ));
                }
                Ok(Some(text))
            }
        }
    }

    async fn append(&self, text: &str) -> Result<(), SinkError> {
        let io = |e: std::io::Error| SinkError::io(self.target(), e.to_string());
        if self.to_stdout() {
            let mut out = tokio::io::stdout();
            out.write_all(text.as_bytes()).await.map_err(io)?;
            return out.flush().await.map_err(io);
        }
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.cfg.path)
            .await
            .map_err(io)?;
        let empty = file.metadata().await.map_err(io)?.len() == 0;
        let mut all = String::new();
        if empty && self.cfg.format == FileFormat::Csv {
            all.push_str(CSV_HEADER);
        }
        all.push_str(text);
        file.write_all(all.as_bytes()).await.map_err(io)?;
        file.flush().await.map_err(io)?;
        file.sync_data().await.map_err(io)
    }
}

#[async_trait::async_trait]
impl Sink for FileSink {
    fn name(&self) -> &str {
        "file"
    }

    fn delivery(&self) -> Delivery {
        Delivery::Every
    }

    async fn deliver(&mut self, batch: &[Delivered<'_>]) -> Result<(), SinkError> {
        let mut updates = CounterUpdates::default();
        let mut text = String::new();
        for d in batch {
            let regs = self.guard.admit(d.serial, d.reading, &mut updates);
            if let Some(t) = self.render(d, &regs)? {
                text.push_str(&t);
            }
        }
        if !text.is_empty() {
            self.append(&text).await?;
        }
        self.guard.commit(updates);
        Ok(())
    }

    async fn check(&mut self) -> Result<Vec<CheckLine>, SinkError> {
        let item = format!("file {}", self.target());
        if self.to_stdout() {
            return Ok(vec![CheckLine::ok(item, "standard output")]);
        }
        let opened = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.cfg.path)
            .await;
        Ok(vec![match opened {
            Ok(_) => CheckLine::ok(item, "writable"),
            Err(e) => CheckLine::fail(item, &SinkError::io(self.target(), e.to_string())),
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{delivered_fixture, full_reading, reading_with, reg};

    #[test]
    fn renders() {
        let mut reading = full_reading();
        let mut date = reg(
            "max_flow_year_date",
            "MaxFlow1Date(y)",
            "230123",
            "yy:mm:dd",
        );
        date.text = Some("2023-01-23".into());
        reading.registers.push(date);
        let d = delivered_fixture(&reading);
        let regs: Vec<_> = reading.registers.iter().collect();
        let json = FileSink::new(&FileConfig {
            enabled: true,
            path: "x".into(),
            format: FileFormat::Jsonl,
        })
        .unwrap();
        insta::assert_snapshot!("jsonl", json.render(&d, &regs).unwrap().unwrap());
        let csv = FileSink::new(&FileConfig {
            enabled: true,
            path: "x".into(),
            format: FileFormat::Csv,
        })
        .unwrap();
        insta::assert_snapshot!("csv", csv.render(&d, &regs).unwrap().unwrap());
        let empty = reading_with(vec![]);
        assert!(csv
            .render(&delivered_fixture(&empty), &[])
            .unwrap()
            .is_none());
        assert_eq!(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
    }
}
