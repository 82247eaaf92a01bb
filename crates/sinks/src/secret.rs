//! Secrets in configuration: a reference (`env:NAME`, `file:/path`, or inline text) that is
//! resolved through functions the caller passes in, and a value that never prints itself.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

use crate::SinkError;

/// Where a password or token comes from, exactly as written in the config.
///
/// Deserializing reads nothing: `"env:NAME"` becomes [`SecretRef::Env`], `"file:/path"`
/// becomes [`SecretRef::File`], anything else is [`SecretRef::Inline`].
#[derive(Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// An environment variable's name.
    Env(String),
    /// A file whose content (trailing newline removed) is the secret.
    File(PathBuf),
    /// The secret itself, written in the config file.
    Inline(String),
}

impl SecretRef {
    /// Parses the config text form.
    pub fn parse(text: &str) -> SecretRef {
        if let Some(name) = text.strip_prefix("env:") {
            SecretRef::Env(name.to_owned())
        } else if let Some(path) = text.strip_prefix("file:") {
            SecretRef::File(PathBuf::from(path))
        } else {
            SecretRef::Inline(text.to_owned())
        }
    }

    /// Looks the secret up. `env` answers environment variables, `read_file` reads a file;
    /// this crate never touches either itself. A file's trailing line break is dropped.
    pub fn resolve(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
        read_file: &dyn Fn(&Path) -> std::io::Result<String>,
    ) -> Result<Secret, SinkError> {
        match self {
            SecretRef::Env(name) => match env(name) {
                Some(value) if !value.is_empty() => Ok(Secret(value)),
                Some(_) => Err(SinkError::config(format!(
                    "environment variable {name} is empty"
                ))),
                None => Err(SinkError::config(format!(
                    "environment variable {name} is not set"
                ))),
            },
            SecretRef::File(path) => {
                let text = read_file(path).map_err(|e| {
                    SinkError::config(format!("cannot read secret file {}: {e}", path.display()))
                })?;
                let value = text.trim_end_matches(['\n', '\r']).to_owned();
                if value.is_empty() {
                    return Err(SinkError::config(format!(
                        "secret file {} is empty",
                        path.display()
                    )));
                }
                Ok(Secret(value))
            }
            SecretRef::Inline(value) => Ok(Secret(value.clone())),
        }
    }

    /// Combines a `password`-style field with its `password_file` sibling: at most one may be
    /// set. `what` names the field pair in the error.
    pub(crate) fn pick(
        inline: &Option<SecretRef>,
        file: &Option<PathBuf>,
        what: &str,
    ) -> Result<Option<SecretRef>, SinkError> {
        match (inline, file) {
            (Some(_), Some(_)) => Err(SinkError::config(format!(
                "set either {what} or {what}_file, not both"
            ))),
            (Some(s), None) => Ok(Some(s.clone())),
            (None, Some(path)) => Ok(Some(SecretRef::File(path.clone()))),
            (None, None) => Ok(None),
        }
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(name) => write!(f, "Env({name})"),
            SecretRef::File(path) => write!(f, "File({})", path.display()),
            SecretRef::Inline(_) => f.write_str("Inline(***)"),
        }
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(SecretRef::parse(&text))
    }
}

/// A resolved secret. `Debug` and `Display` print `***`; [`Secret::expose`] is the only way
/// to the text.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value obtained elsewhere.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret text, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }
    fn no_file(_: &Path) -> std::io::Result<String> {
        Err(std::io::Error::new(std::io::ErrorKind::NotFound, "gone"))
    }

    #[test]
    fn parse_forms() {
        assert_eq!(
            SecretRef::parse("env:TOKEN"),
            SecretRef::Env("TOKEN".into())
        );
        assert_eq!(
            SecretRef::parse("file:/etc/kamstrup/t"),
            SecretRef::File("/etc/kamstrup/t".into())
        );
        assert_eq!(
            SecretRef::parse("hunter2"),
            SecretRef::Inline("hunter2".into())
        );
        let s: SecretRef = serde_json::from_str(r#""env:X""#).unwrap();
        assert_eq!(s, SecretRef::Env("X".into()));
    }

    #[test]
    fn resolve_through_the_callers_functions() {
        let env = |name: &str| (name == "T").then(|| "tok".to_string());
        let file = |p: &Path| {
            if p == Path::new("/s") {
                Ok("pw\n".to_string())
            } else {
                no_file(p)
            }
        };
        assert_eq!(
            SecretRef::Env("T".into())
                .resolve(&env, &file)
                .unwrap()
                .expose(),
            "tok"
        );
        assert_eq!(
            SecretRef::File("/s".into())
                .resolve(&env, &file)
                .unwrap()
                .expose(),
            "pw"
        );
        let e = SecretRef::Env("U".into())
            .resolve(&no_env, &no_file)
            .unwrap_err();
        assert_eq!(e.kind(), "config");
        assert!(e.to_string().contains("U is not set"));
        let e = SecretRef::File("/x".into())
            .resolve(&no_env, &no_file)
            .unwrap_err();
        assert!(e.to_string().contains("/x"));
    }

    #[test]
    fn never_prints_the_secret() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(
            format!("{:?}", SecretRef::Inline("hunter2".into())),
            "Inline(***)"
        );
    }

    #[test]
    fn pick_refuses_both() {
        let e = SecretRef::pick(
            &Some(SecretRef::Inline("a".into())),
            &Some("/f".into()),
            "token",
        )
        .unwrap_err();
        assert!(e.to_string().contains("token or token_file"));
        assert_eq!(
            SecretRef::pick(&None, &Some("/f".into()), "token").unwrap(),
            Some(SecretRef::File("/f".into()))
        );
    }
}
