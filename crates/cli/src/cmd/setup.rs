//! `kamstrup setup`: first contact at the meter — finds the head, probes the meter, asks where
//! readings go and how often, writes a commented kamstrup.toml and validates it like `check`.
//!
//! Interactive in a terminal (dialoguer prompts); every answer is also a flag, so that scripts
//! can run it with `--yes` and no terminal at all.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use kamstrup_daemon::schedule::{advice, Schedule, SessionCost};
use kamstrup_kmp::registers::DEFAULT_SET;
use kamstrup_mc66c::ProgramNumber;
use kamstrup_meter::diagnose::{self, ports, DiagnoseOptions, ProbeProtocol};
use kamstrup_meter::PortSpec;
use kamstrup_meter::{
    open_port, KmpMeter, KmpOptions, Mc66cMeter, Mc66cOptions, MeterError, OpenError, Protocol,
    Reading,
};
use kamstrup_optical::LineSettings;

use super::config_file;
use crate::output::{print_reading, EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::{Format, ProtocolArg};

pub(crate) const HELP: &str = "\
Asks, in order: which head (the /dev/serial/by-id/ names with vendor and product, then
/dev/ttyUSB* and /dev/ttyACM*, or a network bridge tcp://HOST:PORT); then probes the meter
(KMP GetSerialNo, GetType and the standard registers; if KMP stays silent, the MULTICAL 66C's
/#1 and /#2) and shows what answered, with its values and units; where readings should go
(Home Assistant over MQTT — the broker and the login are tested —, Home Assistant REST,
Domoticz — its devices are listed to pick the idx from —, InfluxDB, a file, or only the
dashboard); and how often to read, with the IR sessions a day each choice costs the battery.

It writes a commented config (never over an existing file without asking, or --force), puts
passwords and tokens in files of their own with mode 0600 next to it (or, with --secrets env,
refers to environment variables), runs `kamstrup check` on the written file (the sinks are
reached again; the meter is not read a second time) and prints the next command. With
--config /etc/kamstrup/kamstrup.toml it writes for the packaged systemd service: the history in
/var/lib/kamstrup, the secret files owned by the user kamstrup, `systemctl` as the next step.

Every question is also a flag; with --yes nothing is asked and defaults fill the rest.
Exit status 0 when the written config passes the check; 1 when nothing was written, or the
config was written but the check failed; 2 on a bad command line or a missing answer.

Examples:
  kamstrup setup
  kamstrup setup --port /dev/serial/by-id/usb-FTDI_FT230X_Basic_UART_D30A1B2C-if00-port0
  kamstrup setup --port /dev/ttyUSB0 --sink homeassistant --mqtt-url mqtt://192.168.1.5:1883 \\
                 --mqtt-username kamstrup --mqtt-password secret --interval 15m --yes
  kamstrup setup --port tcp://192.168.1.20:4001 --protocol mc66c --program 4-2-119 --sink file \\
                 --file-path readings.jsonl --yes";

/// Where readings go.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SinkChoice {
    /// Home Assistant through MQTT discovery (entities appear by themselves).
    Homeassistant,
    /// Home Assistant's REST API with a long-lived token.
    HaRest,
    /// Domoticz over its HTTP API.
    Domoticz,
    /// InfluxDB (v2).
    Influxdb,
    /// A JSON-lines file.
    File,
    /// Nowhere else: only the history and the dashboard.
    None,
}

const SINKS: [(SinkChoice, &str); 6] = [
    (
        SinkChoice::Homeassistant,
        "Home Assistant over MQTT (discovery: entities appear by themselves)",
    ),
    (
        SinkChoice::HaRest,
        "Home Assistant REST API (a long-lived access token)",
    ),
    (SinkChoice::Domoticz, "Domoticz (HTTP API, devices by idx)"),
    (SinkChoice::Influxdb, "InfluxDB 2"),
    (SinkChoice::File, "a file (JSON lines)"),
    (
        SinkChoice::None,
        "only the dashboard and the stored history",
    ),
];

/// How secrets are kept out of the config file.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SecretStore {
    /// A file of its own, mode 0600, next to the config.
    File,
    /// An environment variable (`env:KAMSTRUP_…`); the value is not written anywhere.
    Env,
}

/// Arguments of `setup`.
#[derive(Args, Debug)]
pub(crate) struct SetupArgs {
    /// The head: serial device, tcp://HOST:PORT or sim:MODEL (asked when missing).
    #[arg(short, long)]
    port: Option<String>,
    /// Protocol: auto tries KMP, then the MULTICAL 66C.
    #[arg(long, value_enum, default_value_t = ProtocolArg::Auto)]
    protocol: ProtocolArg,
    /// MULTICAL 66C program number A-B-CCC (read from the meter, or asked, when missing).
    #[arg(long, value_name = "A-B-CCC", value_parser = crate::parse_program)]
    program: Option<ProgramNumber>,
    /// Name of the meter in the config, topics and the dashboard.
    #[arg(long, default_value = "heat")]
    name: String,
    /// Do not talk to the meter (write the config from the answers alone).
    #[arg(long)]
    no_probe: bool,
    /// Where readings go.
    #[arg(long, value_enum)]
    sink: Option<SinkChoice>,
    /// MQTT broker for Home Assistant (default mqtt://127.0.0.1:1883).
    #[arg(long, value_name = "URL")]
    mqtt_url: Option<String>,
    /// MQTT user name (empty: none).
    #[arg(long)]
    mqtt_username: Option<String>,
    /// MQTT password (kept out of the config: see --secrets).
    #[arg(long)]
    mqtt_password: Option<String>,
    /// Home Assistant URL for the REST API (default http://127.0.0.1:8123).
    #[arg(long, value_name = "URL")]
    ha_url: Option<String>,
    /// Home Assistant long-lived access token.
    #[arg(long)]
    ha_token: Option<String>,
    /// Domoticz URL (default http://127.0.0.1:8080).
    #[arg(long, value_name = "URL")]
    domoticz_url: Option<String>,
    /// Domoticz device idx that receives the heat energy.
    #[arg(long, value_name = "IDX")]
    domoticz_idx: Option<u64>,
    /// InfluxDB URL (default http://127.0.0.1:8086).
    #[arg(long, value_name = "URL")]
    influx_url: Option<String>,
    /// InfluxDB organisation.
    #[arg(long)]
    influx_org: Option<String>,
    /// InfluxDB bucket.
    #[arg(long)]
    influx_bucket: Option<String>,
    /// InfluxDB token.
    #[arg(long)]
    influx_token: Option<String>,
    /// File for the readings (default readings.jsonl next to the config).
    #[arg(long, value_name = "PATH")]
    file_path: Option<String>,
    /// How often to read, e.g. 15m (asked, with the battery cost of each choice, when missing).
    #[arg(long, value_name = "DURATION")]
    interval: Option<String>,
    /// Where to write the config.
    #[arg(short, long, default_value = "kamstrup.toml")]
    config: PathBuf,
    /// Keep passwords and tokens in files (mode 0600) or in environment variables.
    #[arg(long, value_enum, default_value_t = SecretStore::File)]
    secrets: SecretStore,
    /// Ask nothing: take the flags and the defaults.
    #[arg(short, long)]
    yes: bool,
    /// Overwrite an existing config file without asking.
    #[arg(long)]
    force: bool,
}

/// Why setup stopped.
struct Stop {
    message: String,
    code: u8,
}

fn stop(message: impl Into<String>) -> Stop {
    Stop {
        message: message.into(),
        code: EXIT_FAILED,
    }
}

fn usage(message: impl Into<String>) -> Stop {
    Stop {
        message: message.into(),
        code: EXIT_USAGE,
    }
}

/// Asks in a terminal, or takes defaults and flags in a script.
struct Ask {
    interactive: bool,
    theme: dialoguer::theme::SimpleTheme,
}

impl Ask {
    fn prompt_error(e: dialoguer::Error) -> Stop {
        stop(format!("cannot read the answer: {e}"))
    }

    fn select(&self, prompt: &str, items: &[String], default: usize) -> Result<usize, Stop> {
        if !self.interactive {
            return Ok(default);
        }
        dialoguer::Select::with_theme(&self.theme)
            .with_prompt(prompt)
            .items(items)
            .default(default)
            .interact()
            .map_err(Self::prompt_error)
    }

    /// A value: the flag if given, else asked (with a default), else the default, else an error
    /// naming the flag.
    fn value(
        &self,
        given: Option<&String>,
        prompt: &str,
        default: Option<&str>,
        flag: &str,
    ) -> Result<String, Stop> {
        if let Some(v) = given {
            return Ok(v.clone());
        }
        if !self.interactive {
            return default.map(str::to_string).ok_or_else(|| {
                usage(format!(
                    "{prompt}: give {flag} (or run setup in a terminal)"
                ))
            });
        }
        let mut input = dialoguer::Input::<String>::with_theme(&self.theme).with_prompt(prompt);
        if let Some(d) = default {
            input = input.default(d.to_string());
        }
        input.interact_text().map_err(Self::prompt_error)
    }

    /// A value checked by `valid`: a flag that fails is a usage error; a typed answer that
    /// fails is asked again with the reason.
    fn valid_value<T>(
        &self,
        given: Option<&String>,
        prompt: &str,
        flag: &str,
        valid: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, Stop> {
        if let Some(v) = given {
            return valid(v).map_err(|e| usage(format!("{flag} {v:?}: {e}")));
        }
        if !self.interactive {
            return Err(usage(format!(
                "{prompt}: give {flag} (or run setup in a terminal)"
            )));
        }
        let text = dialoguer::Input::<String>::with_theme(&self.theme)
            .with_prompt(prompt)
            .validate_with(|v: &String| valid(v.trim()).map(|_| ()))
            .interact_text()
            .map_err(Self::prompt_error)?;
        valid(text.trim()).map_err(usage)
    }

    /// An optional value (empty answer: none).
    fn optional(&self, given: Option<&String>, prompt: &str) -> Result<Option<String>, Stop> {
        if let Some(v) = given {
            return Ok(Some(v.clone()).filter(|v| !v.is_empty()));
        }
        if !self.interactive {
            return Ok(None);
        }
        let v: String = dialoguer::Input::with_theme(&self.theme)
            .with_prompt(format!("{prompt} (empty: none)"))
            .allow_empty(true)
            .interact_text()
            .map_err(Self::prompt_error)?;
        Ok(Some(v.trim().to_string()).filter(|v| !v.is_empty()))
    }

    fn secret(&self, given: Option<&String>, prompt: &str) -> Result<Option<String>, Stop> {
        if let Some(v) = given {
            return Ok(Some(v.clone()).filter(|v| !v.is_empty()));
        }
        if !self.interactive {
            return Ok(None);
        }
        let v = dialoguer::Password::with_theme(&self.theme)
            .with_prompt(format!("{prompt} (hidden; empty: none)"))
            .allow_empty_password(true)
            .interact()
            .map_err(Self::prompt_error)?;
        Ok(Some(v).filter(|v| !v.is_empty()))
    }

    fn confirm(&self, prompt: &str, default: bool) -> Result<bool, Stop> {
        if !self.interactive {
            return Ok(default);
        }
        dialoguer::Confirm::with_theme(&self.theme)
            .with_prompt(prompt)
            .default(default)
            .interact()
            .map_err(Self::prompt_error)
    }
}

/// What the probe found.
struct Probed {
    protocol: Protocol,
    reading: Reading,
    program: Option<ProgramNumber>,
}

pub(crate) async fn run(args: SetupArgs) -> ExitCode {
    let interactive =
        !args.yes && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let ask = Ask {
        interactive,
        theme: dialoguer::theme::SimpleTheme,
    };
    match setup(&args, &ask).await {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(s) => {
            eprintln!("error: {}", s.message);
            ExitCode::from(s.code)
        }
    }
}

async fn setup(args: &SetupArgs, ask: &Ask) -> Result<(), Stop> {
    if !valid_name(&args.name) {
        return Err(usage(format!(
            "meter name {:?}: use letters, digits, - and _",
            args.name
        )));
    }
    // 1. The head.
    let port = choose_port(args, ask)?;
    let spec: PortSpec = port.parse().map_err(|e| usage(format!("{e}")))?;
    if !args.no_probe {
        check_device(&spec).map_err(|e| {
            usage(format!(
                "--port {port}: {e} (or give --no-probe to write the config without the head)"
            ))
        })?;
    }
    // 2. The meter.
    let probed = if args.no_probe {
        None
    } else {
        probe(args, ask, &spec, &port).await?
    };
    let protocol = match (&probed, args.protocol) {
        (Some(p), _) => p.protocol,
        (None, ProtocolArg::Mc66c) => Protocol::Mc66c,
        (None, _) => Protocol::Kmp,
    };
    let program = probed.as_ref().and_then(|p| p.program).or(args.program);
    // 3. Where readings go.
    let base = args
        .config
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    let layout = layout_of(&args.config);
    if layout == Layout::Service {
        // systemd creates the state directory at the service's first start; the file sink's
        // check needs it now. Made by root, it is given to the service's user.
        let state = Path::new(SERVICE_STATE_DIR);
        if !state.exists() && std::fs::create_dir_all(state).is_ok() {
            use std::os::unix::fs::PermissionsExt;
            // The unit's StateDirectoryMode.
            let _ = std::fs::set_permissions(state, std::fs::Permissions::from_mode(0o750));
            give_to_service_user(state)?;
        }
    }
    let sink = choose_sink(args, ask, &base, layout).await?;
    // 4. How often.
    let interval = choose_interval(args, ask, protocol)?;
    // 5. Write, validate, say what next.
    let text = config_text(
        &args.name, &port, protocol, program, &interval, &sink, layout,
    );
    // Every file that would be replaced: the config and the secret files beside it.
    let replaced: Vec<PathBuf> = std::iter::once(args.config.clone())
        .chain(sink.secret_files.iter().map(|(file, _)| base.join(file)))
        .filter(|p| p.exists())
        .collect();
    if !replaced.is_empty() && !args.force {
        let names: Vec<String> = replaced.iter().map(|p| p.display().to_string()).collect();
        let overwrite = ask.confirm(
            &format!(
                "{} {} already. Overwrite?",
                names.join(" and "),
                if names.len() == 1 { "exists" } else { "exist" }
            ),
            false,
        )?;
        if !overwrite {
            return Err(stop(format!(
                "{} left alone (use --force to overwrite, or --config another path)",
                names.join(" and ")
            )));
        }
    }
    std::fs::create_dir_all(&base)
        .map_err(|e| stop(format!("cannot create {}: {e}", base.display())))?;
    for (file, value) in &sink.secret_files {
        write_secret(&base.join(file), value, layout)?;
        println!("wrote {} (mode 0600)", base.join(file).display());
    }
    std::fs::write(&args.config, &text)
        .map_err(|e| stop(format!("cannot write {}: {e}", args.config.display())))?;
    println!("wrote {}", args.config.display());
    // `kamstrup check --no-meters` on the written file, in a process of its own with the
    // environment the daemon will have (the env: secrets from the answers). The meter is not read
    // a second time: the probe above read it with the same port and protocol a moment ago.
    let shown = args.config.display();
    println!("\nChecking {shown} with `kamstrup check`:");
    let (meter_ok, meter_detail) = match &probed {
        Some(_) => (
            true,
            "read by the probe above (not read again: every IR session costs the meter battery)",
        ),
        None if args.no_probe => (
            true,
            "not contacted (--no-probe); `kamstrup check` reads it",
        ),
        None => (false, "did not answer the probe (the diagnosis is above)"),
    };
    println!(
        "{:<4} meter {} on {port}: {meter_detail}",
        if meter_ok { "ok" } else { "FAIL" },
        args.name
    );
    let _ = std::io::stdout().flush();
    let checked = run_check(&args.config, &sink.env_vars).await?;
    if layout == Layout::Service {
        // The checks created the readings file as root: the service appends to it as kamstrup.
        for file in &sink.service_files {
            if file.exists() {
                give_to_service_user(file)?;
            }
        }
    }
    if checked == Some(EXIT_USAGE) {
        return Err(stop(format!(
            "the written config {shown} does not validate (see above)"
        )));
    }
    for secret in &sink.env_vars {
        let name = &secret.name;
        println!("note: set {name} in the daemon's environment (e.g. in the systemd unit: Environment={name}=…)");
    }
    println!("\nNext:");
    for line in next_steps(&args.config, layout) {
        println!("  {line}");
    }
    if !meter_ok || checked != Some(EXIT_OK) {
        return Err(stop(format!(
            "{shown} is written, but the check above failed: fix what it names, then `kamstrup check --config {shown}`"
        )));
    }
    Ok(())
}

/// Runs this binary's `check --no-meters` on `config`; its exit status.
async fn run_check(config: &Path, env: &[EnvSecret]) -> Result<Option<u8>, Stop> {
    let exe = std::env::current_exe().map_err(|e| {
        stop(format!(
            "cannot find this program to run `kamstrup check`: {e}"
        ))
    })?;
    let mut command = std::process::Command::new(exe);
    command
        .args(["check", "--no-meters", "--config"])
        .arg(config)
        .stdin(std::process::Stdio::null());
    for secret in env {
        command.env(&secret.name, &secret.value);
    }
    let status = tokio::task::spawn_blocking(move || command.status())
        .await
        .map_err(|e| stop(format!("cannot run `kamstrup check`: {e}")))?
        .map_err(|e| stop(format!("cannot run `kamstrup check`: {e}")))?;
    Ok(status.code().and_then(|c| u8::try_from(c).ok()))
}

/// Where the written config will be used: by hand, or by the packaged systemd unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// Anywhere: the history and the readings file next to the config.
    Here,
    /// `/etc/kamstrup/kamstrup.toml`, read by the packaged unit as user `kamstrup`, whose
    /// writable state directory is /var/lib/kamstrup (the unit's `StateDirectory`).
    Service,
}

/// The packaged unit's config directory and state directory (packaging/kamstrup.service).
const SERVICE_CONFIG_DIR: &str = "/etc/kamstrup";
const SERVICE_STATE_DIR: &str = "/var/lib/kamstrup";

fn layout_of(config: &Path) -> Layout {
    let dir = match config.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(d) => std::fs::canonicalize(d).unwrap_or_else(|_| d.to_path_buf()),
        None => std::env::current_dir().unwrap_or_default(),
    };
    if dir == Path::new(SERVICE_CONFIG_DIR) {
        Layout::Service
    } else {
        Layout::Here
    }
}

/// The commands to run after setup.
fn next_steps(config: &Path, layout: Layout) -> Vec<String> {
    let shown = config.display();
    match layout {
        Layout::Service => vec![
            format!("sudo -u kamstrup kamstrup check --config {shown}   reaches the meter and every sink as the service's user"),
            "sudo systemctl enable --now kamstrup   runs the daemon as a service, now and at every boot (logs: journalctl -u kamstrup)".to_string(),
            "sudo systemctl restart kamstrup        after a change to the config, when the service runs already".to_string(),
        ],
        Layout::Here => vec![
            format!("kamstrup check --config {shown}     reaches the meter and every sink once"),
            format!("kamstrup run --config {shown}       runs the daemon in this terminal (Ctrl-C stops it)"),
            format!("as a service: sudo kamstrup setup --config {SERVICE_CONFIG_DIR}/kamstrup.toml   (the file the systemd unit kamstrup.service reads), then sudo systemctl enable --now kamstrup"),
        ],
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn choose_port(args: &SetupArgs, ask: &Ask) -> Result<String, Stop> {
    if let Some(p) = &args.port {
        return Ok(p.clone());
    }
    let candidates = ports::candidates();
    if !ask.interactive {
        return match candidates.as_slice() {
            [only] => Ok(only.path.clone()),
            [] => Err(usage(
                "no IR head found: plug it in, or give --port (a serial device or tcp://HOST:PORT)",
            )),
            many => Err(usage(format!(
                "several serial devices: give --port, one of {}",
                many.iter()
                    .map(|c| c.path.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        };
    }
    if candidates.is_empty() {
        println!("No USB serial device found (is the IR head plugged in?).");
    }
    let mut items: Vec<String> = candidates
        .iter()
        .map(|c| match &c.description {
            Some(d) => format!("{}  ({d})", c.path),
            None => c.path.clone(),
        })
        .collect();
    items.push("a network bridge: tcp://HOST:PORT (ser2net, esp-link)".to_string());
    items.push("another path".to_string());
    let pick = ask.select("Which IR head?", &items, 0)?;
    if let Some(c) = candidates.get(pick) {
        return Ok(c.path.clone());
    }
    if pick == candidates.len() {
        return ask.valid_value(None, "Bridge address (HOST:PORT)", "--port", |addr| {
            let port = if addr.contains("://") {
                addr.to_string()
            } else {
                format!("tcp://{addr}")
            };
            match port.parse::<PortSpec>() {
                Ok(PortSpec::Tcp { .. }) => Ok(port),
                Ok(_) => Err("give HOST:PORT, e.g. 192.168.1.20:4001".to_string()),
                Err(e) => Err(e.to_string()),
            }
        });
    }
    ask.valid_value(None, "Port", "--port", |p| {
        let spec: PortSpec = p.parse().map_err(|e| format!("{e}"))?;
        check_device(&spec)?;
        Ok(p.to_string())
    })
}

/// A serial device must exist before it is probed (the heads found are named in the error).
fn check_device(spec: &PortSpec) -> Result<(), String> {
    match spec {
        PortSpec::Serial { path } if !Path::new(path).exists() => {
            let found: Vec<String> = ports::candidates().into_iter().map(|c| c.path).collect();
            Err(format!(
                "no such device (is the head plugged in?); heads found: {}",
                if found.is_empty() {
                    "none".to_string()
                } else {
                    found.join(", ")
                }
            ))
        }
        _ => Ok(()),
    }
}

/// Probes the meter; on failure shows the doctor's diagnosis and asks whether to go on.
async fn probe(
    args: &SetupArgs,
    ask: &Ask,
    spec: &PortSpec,
    port: &str,
) -> Result<Option<Probed>, Stop> {
    println!("Probing {port} …");
    match probe_meter(args, ask, spec, port).await {
        Ok(p) => {
            let what = match p.protocol {
                Protocol::Kmp => "a KMP meter".to_string(),
                Protocol::Mc66c => "a MULTICAL 66C".to_string(),
            };
            println!("Found {what} on {port}:");
            print_reading(&p.reading, Format::Table, None)
                .map_err(|e| stop(format!("cannot write output: {e}")))?;
            Ok(Some(p))
        }
        Err(ProbeFailure::Stop(s)) => Err(s),
        Err(ProbeFailure::Meter(e)) => {
            println!("No reading from {port}: {e}\nDiagnosing the link …");
            let options = DiagnoseOptions {
                protocol: match args.protocol {
                    ProtocolArg::Auto => ProbeProtocol::Auto,
                    ProtocolArg::Kmp => ProbeProtocol::Kmp,
                    ProtocolArg::Mc66c => ProbeProtocol::Mc66c,
                },
                ..DiagnoseOptions::default()
            };
            let d = diagnose::diagnose(spec, port, options).await;
            let _ = super::doctor::print_text(&d);
            if ask.interactive && ask.confirm("Write the config anyway?", false)? {
                return Ok(None);
            }
            Err(stop(
                "no meter answered; fix the link (see above), or write the config without talking to the meter: --no-probe",
            ))
        }
    }
}

enum ProbeFailure {
    Meter(String),
    Stop(Stop),
}

impl From<MeterError> for ProbeFailure {
    fn from(e: MeterError) -> Self {
        ProbeFailure::Meter(e.to_string())
    }
}

async fn probe_meter(
    args: &SetupArgs,
    ask: &Ask,
    spec: &PortSpec,
    port: &str,
) -> Result<Probed, ProbeFailure> {
    let line = match args.protocol {
        ProtocolArg::Mc66c => LineSettings::MC66C_REQUEST,
        _ => LineSettings::KMP,
    };
    let link = open_port(spec, line, Duration::from_secs(5))
        .await
        .map_err(|e| match e {
            OpenError::Link(e) => ProbeFailure::Meter(e.to_string()),
            OpenError::UnknownModel(e) => ProbeFailure::Stop(usage(e.to_string())),
        })?;
    let link = if args.protocol == ProtocolArg::Mc66c {
        link
    } else {
        let quick = KmpOptions {
            retries: u32::from(args.protocol == ProtocolArg::Kmp),
            ..KmpOptions::default()
        };
        let mut meter = KmpMeter::new(link, port.to_string(), quick);
        match meter.get_serial().await {
            Ok(serial) => {
                let meter_type = meter.get_type().await.ok();
                let mut meter =
                    KmpMeter::new(meter.into_link(), port.to_string(), KmpOptions::default());
                let mut reading = meter.read(&DEFAULT_SET, false).await?;
                reading.meter.serial = Some(u64::from(serial));
                reading.meter.meter_type = meter_type.map(|t| {
                    format!(
                        "KMP meter type 0x{:04X}, software revision {}",
                        t.type_code, t.revision
                    )
                });
                return Ok(Probed {
                    protocol: Protocol::Kmp,
                    reading,
                    program: None,
                });
            }
            Err(e @ MeterError::Link(_)) => return Err(e.into()),
            Err(e) if args.protocol == ProtocolArg::Kmp => return Err(e.into()),
            Err(e) => {
                println!(
                    "No KMP reply ({}); asking the MULTICAL 66C's /#1 …",
                    e.kind()
                );
                meter.into_link()
            }
        }
    };
    let mut meter = Mc66cMeter::new(
        link,
        port.to_string(),
        Mc66cOptions {
            program: args.program,
            retries: 1,
            identify: true,
            ..Mc66cOptions::default()
        },
    );
    let reading = match meter.read_standard().await {
        Ok(r) => r,
        Err(MeterError::ScalingUnknown { .. } | MeterError::Mc66cProgram { .. }) => {
            println!(
                "The 66C answered but did not give its program number (which sets the decimals)."
            );
            let program: ProgramNumber = ask
                .valid_value(
                    None,
                    "Program number A-B-CCC from the meter's label or display",
                    "--program",
                    crate::parse_program,
                )
                .map_err(ProbeFailure::Stop)?;
            let mut options = *meter.options();
            options.program = Some(program);
            meter.set_options(options);
            meter.read_standard().await?
        }
        Err(e) => return Err(e.into()),
    };
    let program = meter
        .scaling_info()
        .and_then(|s| s.program)
        .or(args.program);
    Ok(Probed {
        protocol: Protocol::Mc66c,
        reading,
        program,
    })
}

/// The sink part of the config, and the secrets it refers to.
#[derive(Default)]
struct SinkConfig {
    toml: String,
    /// (file name relative to the config, content).
    secret_files: Vec<(String, String)>,
    /// Secrets the config takes from the environment.
    env_vars: Vec<EnvSecret>,
    /// Files the daemon writes that the checks may create first (the readings file).
    service_files: Vec<PathBuf>,
}

/// A secret written as `key = "env:NAME"`.
struct EnvSecret {
    /// The environment variable.
    name: String,
    /// The config key.
    key: String,
    /// The answer, for testing the sink (never written to a file).
    value: String,
}

impl SinkConfig {
    /// `key = "…"` for a secret: a 0600 file next to the config, or `env:NAME`.
    fn secret(
        &mut self,
        store: SecretStore,
        key: &str,
        value: &str,
        file: &str,
        env: &str,
        what: &'static str,
    ) {
        match store {
            SecretStore::File => {
                let _ = writeln!(
                    self.toml,
                    "{key}_file = \"{file}\"            # mode 0600, next to this file"
                );
                self.secret_files
                    .push((file.to_string(), value.to_string()));
            }
            SecretStore::Env => {
                let _ = writeln!(
                    self.toml,
                    "{key} = \"env:{env}\"             # {what}, from the environment"
                );
                self.env_vars.push(EnvSecret {
                    name: env.to_string(),
                    key: key.to_string(),
                    value: value.to_string(),
                });
            }
        }
    }
}

/// A TOML basic string.
fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

async fn choose_sink(
    args: &SetupArgs,
    ask: &Ask,
    base: &Path,
    layout: Layout,
) -> Result<SinkConfig, Stop> {
    let choice = match args.sink {
        Some(s) => s,
        None => {
            let items: Vec<String> = SINKS.iter().map(|(_, t)| (*t).to_string()).collect();
            let default = if ask.interactive { 0 } else { SINKS.len() - 1 };
            SINKS
                .get(ask.select("Where should the readings go?", &items, default)?)
                .map_or(SinkChoice::None, |(s, _)| *s)
        }
    };
    loop {
        let sink = sink_answers(args, ask, choice, base, layout).await?;
        if matches!(choice, SinkChoice::None | SinkChoice::File) {
            return Ok(sink);
        }
        let lines = test_sink(&sink, base, &args.name).await;
        let mut ok = true;
        for (good, line) in &lines {
            ok &= *good;
            println!("{:<4} {line}", if *good { "ok" } else { "FAIL" });
        }
        if ok || !ask.interactive {
            if !ok {
                println!("warning: the check failed; the config is written anyway — fix it and run `kamstrup check`");
            }
            return Ok(sink);
        }
        if !ask.confirm("That did not work. Enter the answers again?", true)? {
            return Ok(sink);
        }
    }
}

async fn sink_answers(
    args: &SetupArgs,
    ask: &Ask,
    choice: SinkChoice,
    base: &Path,
    layout: Layout,
) -> Result<SinkConfig, Stop> {
    let mut s = SinkConfig::default();
    let meter = &args.name;
    match choice {
        SinkChoice::None => {
            s.toml
                .push_str("# No sink: readings are stored and shown on the dashboard only.\n");
        }
        SinkChoice::Homeassistant => {
            let url = ask.value(
                args.mqtt_url.as_ref(),
                "MQTT broker",
                Some("mqtt://127.0.0.1:1883"),
                "--mqtt-url",
            )?;
            let user = ask.optional(args.mqtt_username.as_ref(), "MQTT user name")?;
            let password = ask.secret(args.mqtt_password.as_ref(), "MQTT password")?;
            s.toml.push_str(
                "[mqtt]                                  # the broker Home Assistant listens to\n",
            );
            let _ = writeln!(s.toml, "url = {}", quoted(&url));
            if let Some(u) = &user {
                let _ = writeln!(s.toml, "username = {}", quoted(u));
            }
            if let Some(p) = &password {
                s.secret(
                    args.secrets,
                    "password",
                    p,
                    "mqtt-password",
                    "KAMSTRUP_MQTT_PASSWORD",
                    "the MQTT password",
                );
            }
            s.toml.push_str(
                "\n[homeassistant]                         # MQTT discovery: entities appear in HA by themselves\n\
                 discovery_prefix = \"homeassistant\"\n\
                 # compat = \"2024.3\"                     # set to your HA version if it is older than 2025.11\n",
            );
        }
        SinkChoice::HaRest => {
            let url = ask.value(
                args.ha_url.as_ref(),
                "Home Assistant URL",
                Some("http://127.0.0.1:8123"),
                "--ha-url",
            )?;
            let token = ask
                .secret(
                    args.ha_token.as_ref(),
                    "Long-lived access token (HA profile → Security)",
                )?
                .ok_or_else(|| usage("Home Assistant REST needs a token: give --ha-token"))?;
            s.toml.push_str("[homeassistant_rest]                    # POST /api/states with a long-lived token\n");
            let _ = writeln!(s.toml, "url = {}", quoted(&url));
            s.secret(
                args.secrets,
                "token",
                &token,
                "ha-token",
                "KAMSTRUP_HA_TOKEN",
                "the Home Assistant token",
            );
            s.toml.push_str("# entities = [ { meter = \"heat\", register = \"heat_energy\", entity_id = \"sensor.heat_energy\" } ]   # default: every register\n");
        }
        SinkChoice::Domoticz => {
            let url = ask.value(
                args.domoticz_url.as_ref(),
                "Domoticz URL",
                Some("http://127.0.0.1:8080"),
                "--domoticz-url",
            )?;
            let idx = match args.domoticz_idx {
                Some(i) => i,
                None => pick_domoticz_device(ask, &url, base, meter).await?,
            };
            s.toml.push_str("[domoticz]\n");
            let _ = writeln!(s.toml, "url = {}", quoted(&url));
            s.toml.push_str("devices = [\n");
            let _ = writeln!(
                s.toml,
                "  {{ meter = {}, register = \"heat_energy\", idx = {idx}, type = \"custom\" }},   # a Custom Sensor; \"counter\" with divider for a Counter device",
                quoted(meter)
            );
            s.toml.push_str("  # { meter = \"heat\", register = \"t1\", idx = 13, type = \"temperature\" },\n]\n");
        }
        SinkChoice::Influxdb => {
            let url = ask.value(
                args.influx_url.as_ref(),
                "InfluxDB URL",
                Some("http://127.0.0.1:8086"),
                "--influx-url",
            )?;
            let org = ask.value(
                args.influx_org.as_ref(),
                "InfluxDB organisation",
                None,
                "--influx-org",
            )?;
            let bucket = ask.value(
                args.influx_bucket.as_ref(),
                "InfluxDB bucket",
                Some("energy"),
                "--influx-bucket",
            )?;
            let token = ask
                .secret(args.influx_token.as_ref(), "InfluxDB token")?
                .ok_or_else(|| usage("InfluxDB needs a token: give --influx-token"))?;
            s.toml.push_str("[influxdb]                              # line protocol with each reading's own timestamp\n");
            let _ = writeln!(
                s.toml,
                "url = {}\nversion = 2\norg = {}\nbucket = {}",
                quoted(&url),
                quoted(&org),
                quoted(&bucket)
            );
            s.secret(
                args.secrets,
                "token",
                &token,
                "influx-token",
                "KAMSTRUP_INFLUX_TOKEN",
                "the InfluxDB token",
            );
        }
        SinkChoice::File => {
            let default = match layout {
                Layout::Here => "readings.jsonl".to_string(),
                Layout::Service => format!("{SERVICE_STATE_DIR}/readings.jsonl"),
            };
            let path = ask.value(
                args.file_path.as_ref(),
                "File for the readings",
                Some(&default),
                "--file-path",
            )?;
            if path != "-" {
                s.service_files.push(base.join(&path));
            }
            s.toml.push_str("[file]\n");
            let _ = writeln!(
                s.toml,
                "path = {}                 # a relative path is taken from this file's directory; \"-\" for stdout",
                quoted(&path)
            );
            s.toml
                .push_str("format = \"jsonl\"                         # or \"csv\"\n");
        }
    }
    Ok(s)
}

/// Builds the sinks from the answers exactly as the daemon would and runs their own checks
/// (broker connect and login, HTTP auth). Secrets are written to a scratch directory first.
async fn test_sink(sink: &SinkConfig, base: &Path, meter: &str) -> Vec<(bool, String)> {
    let scratch = std::env::temp_dir().join(format!("kamstrup-setup-{}", std::process::id()));
    let result = test_sink_in(sink, base, &scratch, meter).await;
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

async fn test_sink_in(
    sink: &SinkConfig,
    base: &Path,
    scratch: &Path,
    meter: &str,
) -> Vec<(bool, String)> {
    if let Err(e) = std::fs::create_dir_all(scratch) {
        return vec![(false, format!("cannot test: {e}"))];
    }
    for (file, value) in &sink.secret_files {
        if let Err(e) = write_secret(&scratch.join(file), value, Layout::Here) {
            return vec![(false, e.message)];
        }
    }
    // Secrets from the environment are tested with the answers given, as files in the scratch
    // directory (the variables are the daemon's, not necessarily set here).
    let mut sink_toml = sink.toml.clone();
    for secret in &sink.env_vars {
        sink_toml = sink_toml.replace(
            &format!("{} = \"env:{}\"", secret.key, secret.name),
            &format!("{}_file = \"{}\"", secret.key, secret.name),
        );
        if let Err(e) = write_secret(&scratch.join(&secret.name), &secret.value, Layout::Here) {
            return vec![(false, e.message)];
        }
    }
    // A stand-in meter of the same name: discovery payloads are built per meter.
    let text = format!(
        "[storage]\npath = \"unused.db\"\n[[meter]]\nname = {}\nport = \"sim:multical-403\"\n{}",
        quoted(meter),
        sink_toml
    );
    let path = scratch.join("test.toml");
    let _ = base;
    let config = match kamstrup_config::parse(&text, "setup answers", scratch) {
        Ok(c) => c,
        Err(errors) => {
            return errors.iter().map(|e| (false, e.to_string())).collect();
        }
    };
    let mut sinks = match config_file::build_sinks(&config, &path, config_file::SinkPurpose::Check)
    {
        Ok(s) => s,
        Err(e) => return vec![(false, e)],
    };
    let mut lines = Vec::new();
    for s in &mut sinks {
        let name = s.name().to_string();
        match tokio::time::timeout(Duration::from_secs(20), s.check()).await {
            Ok(Ok(checks)) => {
                lines.extend(
                    checks
                        .into_iter()
                        .map(|l| (l.ok, format!("{name}: {}: {}", l.item, l.detail))),
                );
            }
            Ok(Err(e)) => lines.push((false, format!("{name}: {e}"))),
            Err(_) => lines.push((false, format!("{name}: no answer within 20 s"))),
        }
        s.shutdown().await;
    }
    lines
}

/// Lists Domoticz's devices (`type=command&param=getdevices`, through the sink's own check) and
/// lets the user pick the one for the heat energy.
async fn pick_domoticz_device(ask: &Ask, url: &str, base: &Path, meter: &str) -> Result<u64, Stop> {
    // The sink wants one device mapping; idx 0 is a placeholder no Domoticz device has (its
    // check line is left out below). The check lists every used device as "idx N: name: data".
    let probe = SinkConfig {
        toml: format!(
            "[domoticz]\nurl = {}\ndevices = [ {{ meter = {}, register = \"heat_energy\", idx = 0 }} ]\n",
            quoted(url),
            quoted(meter)
        ),
        ..SinkConfig::default()
    };
    let lines = test_sink(&probe, base, meter).await;
    let devices: Vec<(u64, String)> = lines
        .iter()
        .filter(|(ok, _)| *ok)
        .filter_map(|(_, l)| {
            let rest = l.strip_prefix("domoticz: idx ")?;
            let (idx, what) = rest.split_once(": ")?;
            Some((idx.trim().parse().ok()?, what.to_string()))
        })
        .collect();
    for (_, line) in lines
        .iter()
        .filter(|(ok, l)| !ok && !l.contains("devices[0]"))
    {
        println!("FAIL {line}");
    }
    if devices.is_empty() {
        println!("No Domoticz device listed (create a Custom Sensor or Counter under Setup → Hardware → Dummy → Create Virtual Sensors).");
        return ask.valid_value(
            None,
            "idx of the device for the heat energy",
            "--domoticz-idx",
            |idx| {
                idx.parse::<u64>()
                    .map_err(|_| "an idx is a number (Setup → Devices, column Idx)".to_string())
            },
        );
    }
    let items: Vec<String> = devices
        .iter()
        .map(|(idx, what)| format!("idx {idx}: {what}"))
        .collect();
    if !ask.interactive {
        return Err(usage(format!(
            "give --domoticz-idx; Domoticz has {}",
            items.join("; ")
        )));
    }
    let pick = ask.select("Which Domoticz device receives the heat energy?", &items, 0)?;
    devices
        .get(pick)
        .map(|(idx, _)| *idx)
        .ok_or_else(|| stop("no device chosen"))
}

fn choose_interval(args: &SetupArgs, ask: &Ask, protocol: Protocol) -> Result<String, Stop> {
    let kmp = protocol == Protocol::Kmp;
    if let Some(text) = &args.interval {
        let d = humantime::parse_duration(text)
            .map_err(|e| usage(format!("--interval {text:?}: {e}")))?;
        let (info, warnings) = schedule_lines(&args.name, kmp, d);
        println!("{info}");
        for line in warnings {
            println!("warning: {line}");
        }
        return Ok(text.clone());
    }
    let options: &[u64] = if kmp {
        &[10, 15, 20, 60]
    } else {
        &[30, 60, 360, 1440]
    };
    let default = 1;
    let mut items = Vec::new();
    for minutes in options {
        let d = Duration::from_secs(minutes * 60);
        let (info, warnings) = schedule_lines(&args.name, kmp, d);
        let mut item = info;
        if let Some(w) = warnings.first() {
            item.push_str(" — ");
            item.push_str(w.split_once(": ").map_or(w.as_str(), |(_, w)| w));
        }
        items.push(item);
    }
    if !kmp {
        println!("The 66C's manual warns that more than one read a day shortens its battery life; 30–60 min is the usual compromise.");
    }
    let pick = ask.select("How often should the meter be read?", &items, default)?;
    let minutes = options.get(pick).copied().unwrap_or(15);
    if !ask.interactive {
        // The choice made for a script, with its cost (a terminal showed it in the list).
        if let Some(item) = items.get(pick) {
            println!("{item}");
        }
    }
    Ok(humantime::format_duration(Duration::from_secs(minutes * 60)).to_string())
}

fn schedule_lines(name: &str, kmp: bool, every: Duration) -> (String, Vec<String>) {
    // The written config reads the standard set (KMP) or /#1 (66C).
    let cost = if kmp {
        SessionCost::kmp(DEFAULT_SET.len())
    } else {
        SessionCost::MC66C
    };
    advice(name, kmp, &Schedule::Every(every), cost)
}

fn config_text(
    name: &str,
    port: &str,
    protocol: Protocol,
    program: Option<ProgramNumber>,
    interval: &str,
    sink: &SinkConfig,
    layout: Layout,
) -> String {
    let mut t = String::new();
    t.push_str(
        "# kamstrup-bridge configuration, written by `kamstrup setup`.\n\
         # `kamstrup check --config THIS-FILE` validates it and reaches the meter and every sink;\n\
         # kamstrup.example.toml documents every key.\n\n\
         [storage]\n",
    );
    t.push_str(match layout {
        Layout::Here => {
            "path = \"kamstrup.db\"                     # SQLite history, next to this file\n\n"
        }
        Layout::Service => {
            "path = \"/var/lib/kamstrup/kamstrup.db\"   # SQLite history, in the service's state directory\n\n"
        }
    });
    t.push_str(
        "[web]\n\
         listen = \"127.0.0.1:8080\"                # the dashboard, JSON API and /metrics (loopback only)\n\n\
         [[meter]]\n",
    );
    let _ = writeln!(
        t,
        "name = {}                            # used in topics, URLs and the dashboard",
        quoted(name)
    );
    let _ = writeln!(t, "port = {}", quoted(port));
    match protocol {
        Protocol::Kmp => {
            t.push_str("protocol = \"kmp\"                         # MULTICAL 30x/40x/60x\n")
        }
        Protocol::Mc66c => {
            t.push_str("protocol = \"mc66c\"                       # the MULTICAL 66C's \"/#1\" protocol\n");
            if let Some(p) = program {
                let _ = writeln!(
                    t,
                    "program = \"{p}\"                       # A-B-CCC: energy unit and decimals"
                );
            }
        }
    }
    let _ = writeln!(
        t,
        "interval = {}                          # every read costs meter battery{}",
        quoted(interval),
        if protocol == Protocol::Kmp {
            "; a MULTICAL 40x sleeps after ~30 min without a read"
        } else {
            ""
        }
    );
    t.push_str("# registers = [\"heat_energy\", \"volume\", \"t1\", \"t2\", \"power\", \"flow\", \"hours\", \"info\"]  # the default\n\n");
    t.push_str(&sink.toml);
    t
}

fn write_secret(path: &Path, value: &str, layout: Layout) -> Result<(), Stop> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| stop(format!("cannot write {}: {e}", path.display())))?;
    // An existing file keeps its mode with `mode()`: make sure it is 0600.
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    f.write_all(value.as_bytes())
        .map_err(|e| stop(format!("cannot write {}: {e}", path.display())))?;
    if layout == Layout::Service {
        give_to_service_user(path)?;
    }
    Ok(())
}

/// A 0600 secret in /etc/kamstrup written by root must belong to the service's user, or the
/// service cannot read it (likewise a file or directory it writes). Without root (or without
/// that user) it is left as it is.
fn give_to_service_user(path: &Path) -> Result<(), Stop> {
    use std::os::unix::fs::MetadataExt;
    let written_by_root = std::fs::metadata(path).is_ok_and(|m| m.uid() == 0);
    let Some((uid, gid)) = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| passwd_ids(&text, "kamstrup"))
    else {
        return Ok(());
    };
    if !written_by_root {
        return Ok(());
    }
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(|e| {
        stop(format!(
            "cannot give {} to the user kamstrup: {e}",
            path.display()
        ))
    })
}

/// Uid and gid of `user` in /etc/passwd text.
fn passwd_ids(text: &str, user: &str) -> Option<(u32, u32)> {
    text.lines().find_map(|line| {
        let mut f = line.split(':');
        if f.next()? != user {
            return None;
        }
        let _password = f.next()?;
        Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_packaged_config_directory_is_the_service_layout() {
        assert_eq!(
            layout_of(Path::new("/etc/kamstrup/kamstrup.toml")),
            Layout::Service
        );
        assert_eq!(layout_of(Path::new("kamstrup.toml")), Layout::Here);
        assert_eq!(layout_of(Path::new("/tmp/kamstrup.toml")), Layout::Here);
    }

    #[test]
    fn a_service_config_keeps_its_history_where_the_service_may_write() {
        let sink = SinkConfig::default();
        let service = config_text(
            "heat",
            "/dev/ttyUSB0",
            Protocol::Kmp,
            None,
            "15m",
            &sink,
            Layout::Service,
        );
        assert!(
            service.contains("path = \"/var/lib/kamstrup/kamstrup.db\""),
            "{service}"
        );
        let here = config_text(
            "heat",
            "/dev/ttyUSB0",
            Protocol::Kmp,
            None,
            "15m",
            &sink,
            Layout::Here,
        );
        assert!(here.contains("path = \"kamstrup.db\""), "{here}");
        // Both are valid configs.
        for text in [service, here] {
            kamstrup_config::parse(&text, "setup", Path::new("/nonexistent"))
                .unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        }
        let next = next_steps(Path::new("/etc/kamstrup/kamstrup.toml"), Layout::Service);
        assert!(next
            .iter()
            .any(|l| l.starts_with("sudo systemctl enable --now kamstrup")));
        assert!(next
            .iter()
            .any(|l| l.starts_with("sudo -u kamstrup kamstrup check")));
        let next = next_steps(Path::new("k.toml"), Layout::Here);
        assert!(next
            .iter()
            .any(|l| l.starts_with("kamstrup run --config k.toml")));
    }

    #[test]
    fn the_service_user_from_passwd() {
        let text = "root:x:0:0:root:/root:/bin/bash\n\
                    kamstrupx:x:5:5::/:/bin/false\n\
                    kamstrup:x:998:997:kamstrup-bridge heat meter reader:/var/lib/kamstrup:/usr/sbin/nologin\n";
        assert_eq!(passwd_ids(text, "kamstrup"), Some((998, 997)));
        assert_eq!(passwd_ids(text, "nobody"), None);
        assert_eq!(passwd_ids("kamstrup:x:notanumber:1::", "kamstrup"), None);
    }
}
