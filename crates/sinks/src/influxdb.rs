//! InfluxDB: line protocol over HTTP, v1 (`/write`) or v2 (`/api/v2/write`), one line per
//! reading stamped with the reading's own time, so a backlog replays at the right times.
//!
//! Line shape (`measurement` default `kamstrup`, `precision` default `s`):
//!
//! ```text
//! kamstrup,meter=heat,serial=67123456,model=MULTICAL\ 403 heat_energy_gj=84.817,volume_m3=520.410,t1_c=76.85,flow_l_h=267 1779400000
//! ```
//!
//! Every numeric field is written as a float from the exact decimal text (never with the `i`
//! suffix, so a field's type never changes between points); date registers are string fields.
//! Field names carry the unit (`field_units = true`, default) so that a meter reconfigured from
//! GJ to MWh starts a new field instead of mixing units; `field_units = false` uses bare names.
//!
//! Auth: v2 `Authorization: Token <token>`; v1 `username`/`password` as HTTP Basic, or a
//! `token` (v1 compatibility API of InfluxDB 2/3). Success is 204 (or 200).

use std::path::PathBuf;
use std::time::Duration;

use reqwest::{StatusCode, Url};
use serde::Deserialize;

use crate::http;
use crate::secret::{Secret, SecretRef};
use crate::validate::{self, secret_pair, ConfigProblem, Problems};
use crate::values::{display_url, plain, slug, CounterGuard, CounterUpdates};
use crate::{BuildContext, CheckLine, Delivered, Delivery, Sink, SinkError};

/// `[influxdb]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfluxConfig {
    /// Set `false` to keep the section but not run the sink.
    #[serde(default = "crate::yes")]
    pub enabled: bool,
    /// Base URL, e.g. `http://127.0.0.1:8086`.
    pub url: String,
    /// API version: 1 or 2 (default 2).
    #[serde(default = "default_version")]
    pub version: u8,
    /// v2: organisation.
    #[serde(default)]
    pub org: Option<String>,
    /// v2: bucket.
    #[serde(default)]
    pub bucket: Option<String>,
    /// v2 (or v1 compatibility): API token.
    #[serde(default)]
    pub token: Option<SecretRef>,
    /// Alternative to `token`: a file holding it.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// v1: database.
    #[serde(default)]
    pub database: Option<String>,
    /// v1: retention policy (optional).
    #[serde(default)]
    pub retention_policy: Option<String>,
    /// v1: user name.
    #[serde(default)]
    pub username: Option<String>,
    /// v1: password.
    #[serde(default)]
    pub password: Option<SecretRef>,
    /// Alternative to `password`: a file holding it.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Measurement name (default `kamstrup`).
    #[serde(default = "default_measurement")]
    pub measurement: String,
    /// Timestamp precision: `s` (default), `ms`, `us` or `ns`.
    #[serde(default)]
    pub precision: Precision,
    /// Put the unit in field names (default true).
    #[serde(default = "crate::yes")]
    pub field_units: bool,
    /// Per request (default `"10s"`).
    #[serde(
        default = "default_timeout",
        deserialize_with = "crate::duration::text"
    )]
    pub timeout: Duration,
}

fn default_version() -> u8 {
    2
}
fn default_measurement() -> String {
    "kamstrup".to_owned()
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// Timestamp precision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Seconds.
    #[default]
    S,
    /// Milliseconds.
    Ms,
    /// Microseconds.
    Us,
    /// Nanoseconds.
    Ns,
}

impl Precision {
    fn as_str(self) -> &'static str {
        match self {
            Precision::S => "s",
            Precision::Ms => "ms",
            Precision::Us => "us",
            Precision::Ns => "ns",
        }
    }

    fn stamp(self, t: &chrono::DateTime<chrono::Utc>) -> Option<i64> {
        match self {
            Precision::S => Some(t.timestamp()),
            Precision::Ms => Some(t.timestamp_millis()),
            Precision::Us => Some(t.timestamp_micros()),
            Precision::Ns => t.timestamp_nanos_opt(),
        }
    }
}

enum Auth {
    None,
    Token(Secret),
    Basic(String, Option<Secret>),
}

/// The InfluxDB sink.
pub struct InfluxSink {
    cfg: InfluxConfig,
    write_url: Url,
    base: Url,
    auth: Auth,
    client: reqwest::Client,
    timeout: Duration,
    guard: CounterGuard,
}

/// Escapes a measurement name (commas and spaces).
fn escape_measurement(s: &str) -> String {
    escape(s, &[',', ' '])
}

/// Escapes a tag key, tag value or field key (commas, equals signs, spaces).
fn escape_key(s: &str) -> String {
    escape(s, &[',', '=', ' '])
}

fn escape(s: &str, special: &[char]) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            // Line breaks cannot be escaped in line protocol: they would end the line.
            '\n' | '\r' => out.push(' '),
            '\\' => out.push_str("\\\\"),
            c if special.contains(&c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A string field value in double quotes.
fn string_field(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Unit suffix for field names: `GJ`→`gj`, `m³`→`m3`, `°C`→`c`, `l/h`→`l_h`.
fn unit_suffix(unit: &str) -> String {
    let ascii: String = unit
        .replace('³', "3")
        .replace('²', "2")
        .replace('°', "")
        .replace('×', "x");
    slug(&ascii)
}

impl InfluxConfig {
    /// The static rules of `[influxdb]`: an http(s) base URL, version 1 with `database` or
    /// version 2 with `org`, `bucket` and a token, and no keys of the other version.
    pub fn validate(&self) -> Vec<ConfigProblem> {
        let mut p = Problems::new("influxdb");
        validate::http_url(&mut p, "url", &self.url);
        if self.measurement.is_empty() {
            p.key(
                "measurement",
                "measurement is empty: leave it out for \"kamstrup\"",
            );
        }
        secret_pair(
            &mut p,
            self.token.is_some(),
            self.token_file.is_some(),
            "token",
        );
        secret_pair(
            &mut p,
            self.password.is_some(),
            self.password_file.is_some(),
            "password",
        );
        let has_token = self.token.is_some() || self.token_file.is_some();
        let has_password = self.password.is_some() || self.password_file.is_some();
        let password_key = if self.password.is_some() {
            "password"
        } else {
            "password_file"
        };
        match self.version {
            2 => {
                if self.org.is_none() || self.bucket.is_none() {
                    p.section("version 2 needs org and bucket (for InfluxDB 1.x write version = 1 and database)");
                }
                if !has_token {
                    p.section("version 2 needs token = \"env:INFLUX_TOKEN\" (or token_file)");
                }
                for (set, key) in [
                    (self.database.is_some(), "database"),
                    (self.retention_policy.is_some(), "retention_policy"),
                    (self.username.is_some(), "username"),
                    (has_password, password_key),
                ] {
                    if set {
                        p.key(
                            key,
                            format!(
                                "{key} is for version 1 (this section is version 2, the default)"
                            ),
                        );
                    }
                }
            }
            1 => {
                if self.database.is_none() {
                    p.section("version 1 needs database = \"...\"");
                }
                for (set, key) in [
                    (self.org.is_some(), "org"),
                    (self.bucket.is_some(), "bucket"),
                ] {
                    if set {
                        p.key(
                            key,
                            format!("{key} is for version 2; version 1 writes to database"),
                        );
                    }
                }
                if self.username.is_some() && has_token {
                    p.key("username", "use username/password or token, not both");
                }
                if self.username.is_none() && has_password {
                    p.key(
                        password_key,
                        "a password needs a username: add username = \"...\"",
                    );
                }
            }
            v => p.key("version", format!("version must be 1 or 2, not {v}")),
        }
        p.list
    }
}

impl InfluxSink {
    /// Builds the sink (resolves secrets; no request is made).
    pub fn new(cfg: &InfluxConfig, ctx: &BuildContext<'_>) -> Result<Self, SinkError> {
        validate::first(cfg.validate())?;
        let base = http::base_url(&cfg.url, "influxdb")?;
        let token = match SecretRef::pick(&cfg.token, &cfg.token_file, "token")? {
            Some(s) => Some(s.resolve(ctx.env, ctx.read_file)?),
            None => None,
        };
        let password = match SecretRef::pick(&cfg.password, &cfg.password_file, "password")? {
            Some(s) => Some(s.resolve(ctx.env, ctx.read_file)?),
            None => None,
        };
        let (write_url, auth) = match (cfg.version, &cfg.database, &cfg.org, &cfg.bucket, token) {
            (1, Some(db), _, _, token) => {
                let mut url = http::join(&base, "write");
                url.query_pairs_mut().append_pair("db", db);
                if let Some(rp) = &cfg.retention_policy {
                    url.query_pairs_mut().append_pair("rp", rp);
                }
                url.query_pairs_mut()
                    .append_pair("precision", cfg.precision.as_str());
                let auth = match (&cfg.username, password, token) {
                    (Some(u), p, _) => Auth::Basic(u.clone(), p),
                    (None, _, Some(t)) => Auth::Token(t),
                    (None, _, None) => Auth::None,
                };
                (url, auth)
            }
            (_, _, Some(org), Some(bucket), Some(token)) => {
                let mut url = http::join(&base, "api/v2/write");
                url.query_pairs_mut()
                    .append_pair("org", org)
                    .append_pair("bucket", bucket)
                    .append_pair("precision", cfg.precision.as_str());
                (url, Auth::Token(token))
            }
            // Every other combination is refused by `validate` above.
            _ => return Err(SinkError::config("[influxdb] incomplete settings")),
        };
        let timeout = cfg.timeout.max(Duration::from_secs(1));
        Ok(InfluxSink {
            cfg: cfg.clone(),
            write_url,
            base,
            auth,
            client: http::client(timeout)?,
            timeout,
            guard: CounterGuard::default(),
        })
    }

    /// One line for one reading, or `None` if it has no value.
    pub(crate) fn line(
        &self,
        d: &Delivered<'_>,
        regs: &[&kamstrup_reading::RegisterValue],
    ) -> Option<String> {
        let mut fields = Vec::new();
        for reg in regs {
            let name = if self.cfg.field_units && !reg.unit.is_empty() && reg.text.is_none() {
                format!("{}_{}", reg.name, unit_suffix(reg.unit.as_str()))
            } else {
                reg.name.clone()
            };
            let value = match &reg.text {
                Some(t) => string_field(t),
                None => plain(&reg.value),
            };
            fields.push(format!("{}={value}", escape_key(&name)));
        }
        if fields.is_empty() {
            return None;
        }
        let stamp = self.cfg.precision.stamp(&d.reading.taken_at)?;
        let mut line = escape_measurement(&self.cfg.measurement);
        let mut tags = vec![
            ("meter", d.meter_name.to_owned()),
            ("serial", d.serial.to_string()),
        ];
        if let Some(model) = d.model {
            tags.push(("model", model.to_owned()));
        }
        for (k, v) in tags {
            if !v.is_empty() {
                line.push(',');
                line.push_str(k);
                line.push('=');
                line.push_str(&escape_key(&v));
            }
        }
        line.push(' ');
        line.push_str(&fields.join(","));
        line.push(' ');
        line.push_str(&stamp.to_string());
        Some(line)
    }

    fn authorise(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.auth {
            Auth::None => req,
            Auth::Token(t) => req.header(
                reqwest::header::AUTHORIZATION,
                format!("Token {}", t.expose()),
            ),
            Auth::Basic(u, p) => req.basic_auth(u, p.as_ref().map(|p| p.expose())),
        }
    }
}

#[async_trait::async_trait]
impl Sink for InfluxSink {
    fn name(&self) -> &str {
        "influxdb"
    }

    fn delivery(&self) -> Delivery {
        Delivery::Every
    }

    async fn deliver(&mut self, batch: &[Delivered<'_>]) -> Result<(), SinkError> {
        let mut updates = CounterUpdates::default();
        let mut body = String::new();
        for d in batch {
            let regs = self.guard.admit(d.serial, d.reading, &mut updates);
            if let Some(line) = self.line(d, &regs) {
                body.push_str(&line);
                body.push('\n');
            }
        }
        if body.is_empty() {
            return Ok(());
        }
        let url = self.write_url.clone();
        let req = self
            .client
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(body);
        let resp = self
            .authorise(req)
            .send()
            .await
            .map_err(|e| http::send_error(&url, e, self.timeout))?;
        let status = resp.status();
        let target = display_url(&url);
        match status {
            StatusCode::NO_CONTENT | StatusCode::OK => {
                self.guard.commit(updates);
                Ok(())
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(SinkError::auth(
                target,
                format!("HTTP {}: {}", status.as_u16(), http::short_body(resp).await),
            )),
            s if s.is_server_error() => Err(SinkError::connect(
                target,
                format!("HTTP {}: {}", status.as_u16(), http::short_body(resp).await),
            )),
            _ => Err(SinkError::rejected(
                target,
                format!("HTTP {}: {}", status.as_u16(), http::short_body(resp).await),
            )),
        }
    }

    async fn check(&mut self) -> Result<Vec<CheckLine>, SinkError> {
        let item = format!("influxdb {}", display_url(&self.base));
        let url = http::join(&self.base, "ping");
        let ping = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| http::send_error(&url, e, self.timeout));
        let mut lines = vec![match ping {
            Ok(r) if r.status().is_success() => CheckLine::ok(item, "reachable"),
            Ok(r) => CheckLine::fail(
                item,
                &SinkError::rejected(display_url(&url), format!("HTTP {}", r.status().as_u16())),
            ),
            Err(e) => CheckLine::fail(item, &e),
        }];
        // Auth and target: list buckets (v2) or databases (v1); never writes anything.
        let (url, wanted) = match self.cfg.version {
            2 => {
                let mut url = http::join(&self.base, "api/v2/buckets");
                url.query_pairs_mut()
                    .append_pair("org", self.cfg.org.as_deref().unwrap_or_default())
                    .append_pair("name", self.cfg.bucket.as_deref().unwrap_or_default());
                (url, self.cfg.bucket.clone().unwrap_or_default())
            }
            _ => {
                let mut url = http::join(&self.base, "query");
                url.query_pairs_mut().append_pair("q", "SHOW DATABASES");
                (url, self.cfg.database.clone().unwrap_or_default())
            }
        };
        let item = format!("influxdb target {wanted}");
        let result = self
            .authorise(self.client.get(url.clone()))
            .send()
            .await
            .map_err(|e| http::send_error(&url, e, self.timeout));
        lines.push(match result {
            Ok(r) if r.status().is_success() => {
                let body = r.text().await.unwrap_or_default();
                let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let names: Vec<String> = if self.cfg.version == 2 {
                    json["buckets"]
                        .as_array()
                        .map(|b| {
                            b.iter()
                                .filter_map(|b| b["name"].as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default()
                } else {
                    json["results"][0]["series"][0]["values"]
                        .as_array()
                        .map(|v| {
                            v.iter()
                                .filter_map(|row| row[0].as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default()
                };
                if names.contains(&wanted) {
                    CheckLine::ok(item, "exists, credentials accepted")
                } else {
                    CheckLine::fail(
                        item,
                        &SinkError::rejected(display_url(&url), format!("{wanted} not found")),
                    )
                }
            }
            Ok(r) if matches!(r.status(), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
                CheckLine::fail(
                    item,
                    &SinkError::auth(display_url(&url), format!("HTTP {}", r.status().as_u16())),
                )
            }
            Ok(r) => {
                let status = r.status().as_u16();
                CheckLine::fail(
                    item,
                    &SinkError::rejected(
                        display_url(&url),
                        format!("HTTP {status}: {}", http::short_body(r).await),
                    ),
                )
            }
            Err(e) => CheckLine::fail(item, &e),
        });
        Ok(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{delivered_fixture, full_reading, reading_with};

    fn sink(cfg: serde_json::Value) -> Result<InfluxSink, SinkError> {
        let cfg: InfluxConfig = serde_json::from_value(cfg).unwrap();
        let env = |n: &str| (n == "T").then(|| "tok".to_string());
        let files =
            |_: &std::path::Path| -> std::io::Result<String> { Err(std::io::Error::other("no")) };
        InfluxSink::new(&cfg, &BuildContext::new(&env, &files))
    }

    #[test]
    fn line_protocol() {
        let s = sink(serde_json::json!({"url": "http://h:8086", "org": "home", "bucket": "energy", "token": "env:T"})).unwrap();
        assert_eq!(
            s.write_url.as_str(),
            "http://h:8086/api/v2/write?org=home&bucket=energy&precision=s"
        );
        let mut reading = full_reading();
        let mut date = crate::testutil::reg(
            "max_flow_year_date",
            "MaxFlow1Date(y)",
            "230123",
            "yy:mm:dd",
        );
        date.text = Some("2023-01-23".into());
        reading.registers.push(date);
        let d = delivered_fixture(&reading);
        let regs: Vec<_> = reading.registers.iter().collect();
        insta::assert_snapshot!(s.line(&d, &regs).unwrap());
        let s = sink(serde_json::json!({"url": "http://h:8086", "version": 1, "database": "db", "precision": "ms",
            "field_units": false, "measurement": "heat meter"})).unwrap();
        assert_eq!(
            s.write_url.as_str(),
            "http://h:8086/write?db=db&precision=ms"
        );
        insta::assert_snapshot!(s.line(&d, &regs).unwrap());
        assert!(s.line(&d, &[]).is_none());
        assert!(s
            .line(&delivered_fixture(&reading_with(vec![])), &[])
            .is_none());
    }

    #[test]
    fn escaping() {
        assert_eq!(escape_key("a b,c=d"), r"a\ b\,c\=d");
        assert_eq!(escape_measurement("a b,c=d"), r"a\ b\,c=d");
        assert_eq!(string_field(r#"say "hi" \o/"#), r#""say \"hi\" \\o/""#);
        assert_eq!(unit_suffix("m³"), "m3");
        assert_eq!(unit_suffix("°C"), "c");
        assert_eq!(unit_suffix("l/h"), "l_h");
    }

    #[test]
    fn config_checks() {
        for bad in [
            serde_json::json!({"url": "http://h", "org": "o", "bucket": "b"}),
            serde_json::json!({"url": "http://h", "bucket": "b", "token": "t"}),
            serde_json::json!({"url": "http://h", "version": 1}),
            serde_json::json!({"url": "http://h", "version": 3, "database": "d"}),
            serde_json::json!({"url": "http://h", "version": 1, "database": "d", "password": "p"}),
            serde_json::json!({"url": "http://h", "version": 1, "database": "d", "token": "env:NOPE"}),
        ] {
            assert_eq!(sink(bad.clone()).err().unwrap().kind(), "config", "{bad}");
        }
    }
}
