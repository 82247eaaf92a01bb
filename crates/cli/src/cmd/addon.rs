//! `kamstrup addon-config`: the Home Assistant add-on's start-up step. Turns /data/options.json
//! (and the Supervisor's MQTT service) into the config `kamstrup run` reads; bad options stop it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use kamstrup_addon::MqttSource;

use crate::output::{EXIT_OK, EXIT_USAGE};

pub(crate) const HELP: &str = "\
Run by the add-on before `kamstrup run`. Reads the options Home Assistant's Supervisor writes,
asks the Supervisor for its MQTT broker when $SUPERVISOR_TOKEN is set (else the mqtt_* options
are used), validates the result like `kamstrup check` does, and writes the config and the secret
files it refers to (mode 0600). Bad options: one log line per problem, exit 2, nothing written.

Example (what the add-on runs):
  kamstrup addon-config --options /data/options.json --output /data/kamstrup.toml";

/// Arguments of `addon-config`.
#[derive(Args, Debug)]
pub(crate) struct AddonArgs {
    /// The add-on's options, as written by the Supervisor.
    #[arg(long, default_value = "/data/options.json")]
    options: PathBuf,

    /// Where to write the config; its folder holds the database and the secrets too.
    #[arg(long, default_value = "/data/kamstrup.toml")]
    output: PathBuf,

    /// The Supervisor's API.
    #[arg(long, default_value = "http://supervisor")]
    supervisor: String,
}

fn problem(message: impl std::fmt::Display) -> ExitCode {
    // One line per problem: the add-on log shows it as the reason the add-on stopped.
    eprintln!("kamstrup addon-config: {message}");
    ExitCode::from(EXIT_USAGE)
}

pub(crate) async fn run(args: AddonArgs) -> ExitCode {
    let bytes = match std::fs::read(&args.options) {
        Ok(b) => b,
        Err(e) => return problem(format!("cannot read {}: {e}", args.options.display())),
    };
    let options = match kamstrup_addon::parse_options(&bytes) {
        Ok(o) => o,
        Err(e) => return problem(format!("{}: {e}", args.options.display())),
    };
    let service = match std::env::var("SUPERVISOR_TOKEN") {
        Ok(token) if !token.is_empty() => {
            match kamstrup_addon::fetch_mqtt_service(&args.supervisor, &token).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("{e}; using the mqtt_* options");
                    None
                }
            }
        }
        _ => None,
    };
    let dir = args
        .output
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let generated = match kamstrup_addon::convert(&options, service.as_ref(), &dir) {
        Ok(g) => g,
        Err(e) => return problem(e),
    };
    // The same validation as `run`: a value the add-on's schema let through (an interval of
    // "0s", an unknown 66C program) stops here with its reason, not in a restart loop.
    let shown = args.output.display().to_string();
    if let Err(errors) = kamstrup_config::parse(&generated.toml, &shown, &dir) {
        for e in errors {
            eprintln!("kamstrup addon-config: the options give an invalid config: {e}");
        }
        return ExitCode::from(EXIT_USAGE);
    }
    for secret in &generated.secrets {
        if let Err(e) = write_private(Path::new(&secret.path), &secret.content) {
            return problem(format!("cannot write {}: {e}", secret.path));
        }
    }
    if let Err(e) = write_private(&args.output, &generated.toml) {
        return problem(format!("cannot write {shown}: {e}"));
    }
    let broker = match &generated.mqtt {
        MqttSource::Supervisor(t) => format!("MQTT broker {t} from Home Assistant"),
        MqttSource::Options(t) => format!("MQTT broker {t} from the options"),
        MqttSource::None => "no MQTT".to_owned(),
    };
    println!(
        "kamstrup addon-config: wrote {shown}: {} meter(s), sinks: {}; {broker}",
        options.meters.len(),
        if generated.sinks.is_empty() {
            "none (dashboard only)".to_owned()
        } else {
            generated.sinks.join(", ")
        },
    );
    ExitCode::from(EXIT_OK)
}

/// Writes a file readable by its owner only (it may hold a password), replacing it whole.
fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(content.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}
