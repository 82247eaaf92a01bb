//! The MULTICAL 66C program numbers `kamstrup read` learned from the meters (`/#2`), one per port
//! with the meter's customer number, in a small JSON file in the user's cache directory
//! (`$XDG_CACHE_HOME/kamstrup-bridge/mc66c-programs.json`), so the next read costs one IR session.
//!
//! Losing the file costs one `/#2`; a meter swapped on the same port is noticed only when `/#2`
//! is read again (`--identify`, `--no-cache`), which then replaces the entry.

use std::path::{Path, PathBuf};

use kamstrup_mc66c::ProgramNumber;
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

const FILE_NAME: &str = "mc66c-programs.json";

#[derive(Serialize, Deserialize, Default)]
struct CacheFile {
    #[serde(default)]
    meters: Vec<Entry>,
}

/// What was learned about the meter on one port.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The port as the user named it.
    pub(crate) port: String,
    /// The customer number `/#2` gave with the program (the meter's serial).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) serial: Option<u64>,
    /// A-B-CCC.
    pub(crate) program: String,
    /// When it was learned (RFC 3339, UTC).
    pub(crate) learned_at: String,
}

impl Entry {
    /// The program number, if the entry holds a valid one.
    pub(crate) fn program(&self) -> Option<ProgramNumber> {
        self.program.parse().ok()
    }
}

/// The cache file.
pub(crate) struct ProgramCache {
    path: PathBuf,
}

impl ProgramCache {
    /// The cache in the user's cache directory; `None` when there is none (no `$HOME`).
    pub(crate) fn open_default() -> Option<ProgramCache> {
        dirs::cache_dir().map(|d| ProgramCache::at(&d.join("kamstrup-bridge").join(FILE_NAME)))
    }

    /// The cache in a given file.
    pub(crate) fn at(path: &Path) -> ProgramCache {
        ProgramCache {
            path: path.to_path_buf(),
        }
    }

    /// Where the file is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn load(&self) -> CacheFile {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                warn!(file = %self.path.display(), error = %e, "the program cache is not valid JSON; starting a new one");
                CacheFile::default()
            }),
            Err(e) => {
                debug!(file = %self.path.display(), error = %e, "no program cache");
                CacheFile::default()
            }
        }
    }

    /// What is remembered for `port`.
    pub(crate) fn lookup(&self, port: &str) -> Option<Entry> {
        self.load().meters.into_iter().find(|e| e.port == port)
    }

    /// Remembers `program` (and the customer number) for `port`, replacing what was there.
    /// Written to a temporary file and renamed, so a reader never sees half a file.
    pub(crate) fn store(
        &self,
        port: &str,
        serial: Option<u64>,
        program: ProgramNumber,
    ) -> std::io::Result<()> {
        let mut file = self.load();
        let entry = Entry {
            port: port.to_string(),
            serial,
            program: program.to_string(),
            learned_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        if file
            .meters
            .iter()
            .any(|e| e.port == entry.port && e.serial == entry.serial && e.program == entry.program)
        {
            return Ok(());
        }
        file.meters.retain(|e| e.port != entry.port);
        file.meters.push(entry);
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(&file).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_entry_per_port_and_a_broken_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ProgramCache::at(&dir.path().join("sub").join(FILE_NAME));
        assert!(cache.lookup("/dev/ttyUSB0").is_none());
        let p: ProgramNumber = "4-2-119".parse().unwrap();
        cache.store("/dev/ttyUSB0", Some(123), p).unwrap();
        cache
            .store("/dev/ttyUSB1", None, "4-4-119".parse().unwrap())
            .unwrap();
        let e = cache.lookup("/dev/ttyUSB0").unwrap();
        assert_eq!((e.serial, e.program()), (Some(123), Some(p)));
        // Another meter on the same port replaces the entry.
        cache
            .store("/dev/ttyUSB0", Some(456), "4-3-119".parse().unwrap())
            .unwrap();
        let e = cache.lookup("/dev/ttyUSB0").unwrap();
        assert_eq!(e.serial, Some(456));
        assert_eq!(cache.lookup("/dev/ttyUSB1").unwrap().program, "4-4-119");
        std::fs::write(cache.path(), "{not json").unwrap();
        assert!(cache.lookup("/dev/ttyUSB1").is_none());
        cache.store("/dev/ttyUSB1", None, p).unwrap();
        assert!(cache.lookup("/dev/ttyUSB1").is_some());
    }
}
