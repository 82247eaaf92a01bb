//! `kamstrup check`: validate the config, then reach every meter and every sink and print a
//! verdict per item — the seed's `--test_kamstrup` and `--test_domoticz`, for the whole setup.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::config_file;
use crate::output::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};

pub(crate) const HELP: &str = "\
Checks, in order: the config file (every problem with its line and column, sink sections
included; nothing is contacted until the file is right), each meter (opens its port,
identifies it, reads it once), each sink (broker connect and login, HTTP auth, Domoticz device
list with idx, name and value). Prints ok/FAIL per item; exits 0 only when everything works.
Nothing is stored or delivered.

Examples:
  kamstrup check --config /etc/kamstrup/kamstrup.toml
  kamstrup check --config kamstrup.toml --no-meters      (only the file and the sinks)";

/// Arguments of `check`.
#[derive(Args, Debug)]
pub(crate) struct CheckArgs {
    /// Config file (default: $KAMSTRUP_CONFIG, ./kamstrup.toml, /etc/kamstrup/kamstrup.toml).
    #[arg(short, long, env = "KAMSTRUP_CONFIG")]
    config: Option<PathBuf>,

    /// Do not read the meters (no IR session, no battery cost).
    #[arg(long)]
    no_meters: bool,
}

fn verdict(ok: bool, item: &str, detail: &str) {
    println!("{:<4} {item}: {detail}", if ok { "ok" } else { "FAIL" });
}

pub(crate) async fn run(args: CheckArgs) -> ExitCode {
    let path = args.config.unwrap_or_else(config_file::default_config_path);
    let config = match config_file::load(&path) {
        Ok(c) => c,
        Err(message) => {
            verdict(false, "config", &message);
            return ExitCode::from(EXIT_USAGE);
        }
    };
    verdict(
        true,
        "config",
        &format!(
            "{} is valid ({} meter(s))",
            path.display(),
            config.daemon.meters.len()
        ),
    );
    let mut all_ok = true;
    if !args.no_meters {
        for meter in &config.daemon.meters {
            let item = format!("meter {} on {}", meter.name, meter.port);
            match kamstrup_daemon::probe(meter).await {
                Ok(detail) => verdict(true, &item, &detail),
                Err(e) => {
                    all_ok = false;
                    verdict(false, &item, &e);
                }
            }
        }
    }
    match config_file::build_sinks(&config, &path, config_file::SinkPurpose::Check) {
        Err(message) => {
            all_ok = false;
            verdict(false, "sinks", &message);
        }
        Ok(mut sinks) => {
            if sinks.is_empty() {
                verdict(
                    true,
                    "sinks",
                    "none configured (readings are only stored and shown on the dashboard)",
                );
            }
            for sink in &mut sinks {
                let name = sink.name().to_string();
                match sink.check().await {
                    Ok(lines) => {
                        for line in lines {
                            all_ok &= line.ok;
                            verdict(line.ok, &format!("{name}: {}", line.item), &line.detail);
                        }
                    }
                    Err(e) => {
                        all_ok = false;
                        verdict(false, &name, &e.to_string());
                    }
                }
                sink.shutdown().await;
            }
        }
    }
    if all_ok {
        ExitCode::from(EXIT_OK)
    } else {
        ExitCode::from(EXIT_FAILED)
    }
}
