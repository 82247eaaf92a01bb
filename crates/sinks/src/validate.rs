//! Static checks of the sink sections: pure rules on the config as written (no secrets resolved,
//! nothing connected). `kamstrup_config::parse` runs them to locate each problem in the file; every
//! sink constructor runs the same rules, so each rule exists once.

use std::fmt;

/// One step of a path into the config file: a key or an array index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathPart {
    /// A table key (`url`, `devices`, a register name in `keys`).
    Key(String),
    /// An array element (`devices[2]`).
    Index(usize),
}

/// Something wrong with a sink section, with the path of the key it is about (the section
/// alone when a key is missing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    /// From the section name down, e.g. `domoticz`, `devices`, `2`, `idx2`.
    pub path: Vec<PathPart>,
    /// What is wrong and what to write instead.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, part) in self.path.iter().enumerate() {
            match (i, part) {
                (0, PathPart::Key(k)) => write!(f, "[{k}]")?,
                (_, PathPart::Key(k)) => write!(f, " {k}")?,
                (_, PathPart::Index(n)) => write!(f, "[{n}]")?,
            }
        }
        write!(f, ": {}", self.message)
    }
}

impl From<ConfigProblem> for crate::SinkError {
    fn from(p: ConfigProblem) -> Self {
        crate::SinkError::config(p.to_string())
    }
}

/// What names a mapping may use: register names a meter can deliver, and the configured meters.
/// The sinks know no catalogue; `kamstrup_config` passes one in. Constructors use [`Names::ANY`].
#[derive(Clone, Copy)]
pub struct Names<'a> {
    /// `Ok` for a register name readings can carry; `Err` with a hint otherwise.
    pub register: &'a (dyn Fn(&str) -> Result<(), String> + Sync),
    /// The configured meter names; `None` accepts any.
    pub meters: Option<&'a [String]>,
}

fn any_register(_: &str) -> Result<(), String> {
    Ok(())
}

impl Names<'static> {
    /// Accepts every name (for sinks built without the daemon's config).
    pub const ANY: Names<'static> = Names {
        register: &any_register,
        meters: None,
    };
}

impl fmt::Debug for Names<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Names")
            .field("meters", &self.meters)
            .finish_non_exhaustive()
    }
}

/// Collects problems under a section prefix.
pub(crate) struct Problems {
    prefix: Vec<PathPart>,
    pub(crate) list: Vec<ConfigProblem>,
}

impl Problems {
    pub(crate) fn new(section: &str) -> Self {
        Problems {
            prefix: vec![PathPart::Key(section.to_owned())],
            list: Vec::new(),
        }
    }

    /// A problem with the section itself (a missing key).
    pub(crate) fn section(&mut self, message: impl Into<String>) {
        self.push(&[], message);
    }

    /// A problem at `key` of the section.
    pub(crate) fn key(&mut self, key: &str, message: impl Into<String>) {
        self.push(&[PathPart::Key(key.to_owned())], message);
    }

    /// A problem at `array[index].key` (`key` empty: the element itself).
    pub(crate) fn item(
        &mut self,
        array: &str,
        index: usize,
        key: &str,
        message: impl Into<String>,
    ) {
        let mut rel = vec![PathPart::Key(array.to_owned()), PathPart::Index(index)];
        if !key.is_empty() {
            rel.push(PathPart::Key(key.to_owned()));
        }
        self.push(&rel, message);
    }

    pub(crate) fn push(&mut self, rel: &[PathPart], message: impl Into<String>) {
        let mut path = self.prefix.clone();
        path.extend_from_slice(rel);
        self.list.push(ConfigProblem {
            path,
            message: message.into(),
        });
    }

    /// A register name in a mapping.
    pub(crate) fn register(&mut self, names: &Names<'_>, rel: &[PathPart], name: &str) {
        if let Err(hint) = (names.register)(name) {
            self.push(rel, hint);
        }
    }

    /// A meter name in a mapping.
    pub(crate) fn meter(&mut self, names: &Names<'_>, rel: &[PathPart], name: &str) {
        if let Some(meters) = names.meters {
            if !meters.iter().any(|m| m == name) {
                self.push(
                    rel,
                    format!(
                        "no [[meter]] is named {name:?} (configured: {}); leave `meter` out to mean every meter",
                        meters.join(", ")
                    ),
                );
            }
        }
    }
}

/// The first problem of a constructor's config, as a build error.
pub(crate) fn first(problems: Vec<ConfigProblem>) -> Result<(), crate::SinkError> {
    match problems.into_iter().next() {
        Some(p) => Err(p.into()),
        None => Ok(()),
    }
}

/// Checks `password`/`password_file` (or `token`/`token_file`) against each other.
pub(crate) fn secret_pair(p: &mut Problems, inline: bool, file: bool, what: &str) {
    if inline && file {
        p.key(
            &format!("{what}_file"),
            format!("set either {what} or {what}_file, not both"),
        );
    }
}

/// Checks a sink's HTTP base URL: http or https, a host, no credentials, no query.
pub(crate) fn http_url(p: &mut Problems, key: &str, text: &str) {
    if let Err(e) = crate::http::parse_base_url(text) {
        p.key(key, e);
    }
}

/// A topic we publish to: not empty, no wildcards, no NUL.
pub(crate) fn topic_problem(topic: &str) -> Option<String> {
    (topic.is_empty() || topic.contains(['+', '#', '\0']))
        .then(|| format!("{topic:?} is not a valid MQTT topic to publish to (no +, #, not empty)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FileConfig, FileSink, SinksConfig};

    fn file(path: &str) -> SinksConfig {
        SinksConfig {
            file: Some(FileConfig {
                enabled: true,
                path: path.into(),
                format: Default::default(),
            }),
            ..SinksConfig::default()
        }
    }

    /// The path reads like the file; the constructor refuses with the very same problem.
    #[test]
    fn one_rule_two_callers() {
        let config = file("");
        let problems = config.validate(&Names::ANY);
        assert_eq!(problems.len(), 1);
        assert_eq!(
            problems[0].path,
            [PathPart::Key("file".into()), PathPart::Key("path".into())]
        );
        assert!(problems[0].to_string().starts_with("[file] path: "));
        let built = FileSink::new(config.file.as_ref().unwrap()).err().unwrap();
        assert_eq!(built.to_string(), format!("configuration: {}", problems[0]));
        assert!(file("-").validate(&Names::ANY).is_empty());
    }

    #[test]
    fn paths_with_indexes_display_like_toml() {
        let p = ConfigProblem {
            path: vec![
                PathPart::Key("domoticz".into()),
                PathPart::Key("devices".into()),
                PathPart::Index(2),
                PathPart::Key("idx2".into()),
            ],
            message: "m".into(),
        };
        assert_eq!(p.to_string(), "[domoticz] devices[2] idx2: m");
    }

    #[test]
    fn names_reach_the_mappings() {
        let only_t1 = |n: &str| {
            if n == "t1" {
                Ok(())
            } else {
                Err(format!("no {n}"))
            }
        };
        let meters = ["heat".to_owned()];
        let names = Names {
            register: &only_t1,
            meters: Some(&meters),
        };
        let cfg: crate::MqttJsonConfig =
            serde_json::from_value(serde_json::json!({"keys": {"t1": "a", "t9": "b"}})).unwrap();
        let problems = cfg.validate(&names);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].message, "no t9");
        assert!(cfg.validate(&Names::ANY).is_empty());
    }
}
