//! Finding, reading and validating the config file for `run` and `check`, and building the sinks
//! it names. The only place that reads the config file and the environment.

use std::path::{Path, PathBuf};

use kamstrup_config::Config;
use kamstrup_sinks::{BuildContext, MeterContext, Sink};

/// Where to look when `--config` is not given (after `$KAMSTRUP_CONFIG`).
pub(crate) fn default_config_path() -> PathBuf {
    let local = PathBuf::from("kamstrup.toml");
    if local.exists() {
        local
    } else {
        PathBuf::from("/etc/kamstrup/kamstrup.toml")
    }
}

/// Reads and validates the config; every problem is printed, located, on stderr.
pub(crate) fn load(path: &Path) -> Result<Config, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read the config file {}: {e}. Start from kamstrup.example.toml, or try \
             `kamstrup demo` to see everything work with simulated meters",
            path.display()
        )
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    kamstrup_config::parse(&text, &path.display().to_string(), &base).map_err(|errors| {
        let mut message = format!("{} has {} problem(s):", path.display(), errors.len());
        for e in errors {
            message.push_str("\n  ");
            message.push_str(&e.to_string());
        }
        message
    })
}

fn read_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// What the sinks are built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SinkPurpose {
    /// The daemon delivers through them.
    Deliver,
    /// `check` / `setup` only test them, beside a daemon that may be running.
    Check,
}

/// Builds the sinks of a validated config. Secret files are read relative to the config file.
pub(crate) fn build_sinks(
    config: &Config,
    config_path: &Path,
    purpose: SinkPurpose,
) -> Result<Vec<Box<dyn Sink>>, String> {
    let base = config_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let read_file = move |p: &Path| std::fs::read_to_string(base.join(p));
    let mut ctx = BuildContext::new(&read_env, &read_file);
    if purpose == SinkPurpose::Check {
        ctx = ctx.for_probe();
    }
    ctx.meters = config
        .daemon
        .meters
        .iter()
        .map(|m| MeterContext {
            name: m.name.clone(),
            interval: Some(m.schedule.longest_gap()),
            // The register list is KMP's; a 66C (or a meter that may turn out to be one)
            // sends its fixed /#1 set, so there is no list to hold its readings against.
            registers: if m.protocol == kamstrup_daemon::ProtocolChoice::Kmp {
                m.registers
                    .iter()
                    .map(|id| {
                        kamstrup_kmp::registers::by_id(*id)
                            .map_or_else(|| format!("register_{id}"), |r| r.name.to_string())
                    })
                    .collect()
            } else {
                Vec::new()
            },
        })
        .collect();
    if purpose == SinkPurpose::Deliver {
        ctx.known_serials = known_serials(&config.daemon.store_path);
    }
    kamstrup_sinks::build(&config.sinks, &ctx)
        .map_err(|e| format!("{}: sinks: {e}", config_path.display()))
}

/// The serials of the meters this bridge's store has read (none for a new store): HA discovery
/// clears the entities of a meter no longer configured only if it is one of these. The daemon
/// opens (and migrates) the same store right after; a store that cannot be read here is
/// reported there, so this only logs why at DEBUG.
fn known_serials(store_path: &Path) -> Vec<u64> {
    if !store_path.exists() {
        return Vec::new();
    }
    match kamstrup_store::Store::open(store_path).and_then(|s| s.meters()) {
        Ok(meters) => meters.iter().map(|m| m.serial).collect(),
        Err(e) => {
            tracing::debug!(store = %store_path.display(), error = %e, "meters of the store not known to the sinks");
            Vec::new()
        }
    }
}
