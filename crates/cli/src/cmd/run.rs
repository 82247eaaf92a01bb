//! `kamstrup run`: the daemon — reads every configured meter on its schedule, stores each reading
//! first, then delivers it to every sink; the web dashboard too when `[web]` is set.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use kamstrup_daemon::StatusHandle;

use super::config_file;
use crate::output::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};

pub(crate) const HELP: &str = "\
Reads the config (see kamstrup.example.toml; `kamstrup check` validates it), then runs until
SIGTERM or Ctrl-C. Each reading is stored in SQLite before any delivery; a sink that is down gets
what it missed when it returns, also after a restart. A failed or implausible read is never
delivered — no zeros, no empty payloads.

At start it logs each meter's IR sessions per day, and warns when a MULTICAL 40x is read less often
than every 30 min (its IR port may fall asleep) or so often that it hurts the battery.

Examples:
  kamstrup run --config /etc/kamstrup/kamstrup.toml
  kamstrup -v run                     (config from $KAMSTRUP_CONFIG, ./kamstrup.toml or /etc/kamstrup/)
  kamstrup --trace-frames run         (every frame in hex)";

/// Arguments of `run`.
#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    /// Config file (default: $KAMSTRUP_CONFIG, ./kamstrup.toml, /etc/kamstrup/kamstrup.toml).
    #[arg(short, long, env = "KAMSTRUP_CONFIG")]
    pub(crate) config: Option<PathBuf>,
}

/// Completes on SIGTERM or Ctrl-C. The SIGTERM handler is installed when this is *called*, not
/// when it is first polled: a service manager (or a test) that sends SIGTERM as soon as the
/// program has printed its start-up lines must get a clean stop, not the default kill.
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        #[cfg(unix)]
        if let Some(mut term) = term {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub(crate) async fn run(args: RunArgs) -> ExitCode {
    let shutdown = shutdown_signal();
    let path = args.config.unwrap_or_else(config_file::default_config_path);
    let config = match config_file::load(&path) {
        Ok(c) => c,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let sinks = match config_file::build_sinks(&config, &path, config_file::SinkPurpose::Deliver) {
        Ok(s) => s,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    tracing::info!(config = %path.display(), store = %config.daemon.store_path.display(), meters = config.daemon.meters.len(), sinks = sinks.len(), "starting");
    let status = StatusHandle::default();
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let web = match config.web_listen {
        None => None,
        Some(addr) => {
            let listener = match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("error: cannot listen on {addr} for the dashboard: {e}; change [web] listen, or set enabled = false");
                    return ExitCode::from(EXIT_FAILED);
                }
            };
            let status_fn: kamstrup_web::StatusFn = {
                let status = status.clone();
                std::sync::Arc::new(move || {
                    serde_json::to_value(status.snapshot()).unwrap_or_default()
                })
            };
            tracing::info!("dashboard on http://{addr}/ (metrics at /metrics)");
            Some(tokio::spawn(kamstrup_web::serve(
                listener,
                config.daemon.store_path.clone(),
                status_fn,
                config.web_access.clone(),
                until_true(stop_rx),
            )))
        }
    };
    let result = kamstrup_daemon::run(config.daemon, sinks, status, shutdown).await;
    let _ = stop.send(true);
    if let Some(web) = web {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), web).await;
    }
    match result {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// Completes when `stop` becomes true (or its sender is gone).
pub(crate) async fn until_true(mut stop: tokio::sync::watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}
