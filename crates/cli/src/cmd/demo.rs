//! `kamstrup demo`: two simulated meters, the daemon, a SQLite history seeded with weeks of
//! consistent readings, and the web dashboard on 127.0.0.1 — one command, no config.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use clap::Args;
use kamstrup_daemon::{
    DaemonConfig, MeterSettings, Plausibility, ProtocolChoice, Schedule, StatusHandle,
};
use kamstrup_meter::sim::history::{kmp_history, mc66c_history, HistorySpec};
use kamstrup_meter::sim::{KmpModel, Mc66cModel};
use kamstrup_meter::PortSpec;
use kamstrup_meter::{Protocol, Reading};
use kamstrup_sinks::{FileConfig, FileFormat, FileSink, Sink};
use kamstrup_store::{MeterId, Store};
use tokio::sync::watch;

use crate::output::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};

pub(crate) const HELP: &str = "\
Starts everything with simulated meters, so you can see what kamstrup-bridge does before you
buy an IR head: a MULTICAL 403 (KMP) and a MULTICAL 66C (\"/#1\"), each simulated in-process and
speaking the real protocol bytes; the daemon reading them; a SQLite history seeded with weeks of
15-minute readings so the graphs mean something at once; and the dashboard on 127.0.0.1, whose
address is printed. Ctrl-C (or SIGTERM) stops it all cleanly.

The simulated counters carry on exactly from the seeded history. Each start begins a fresh demo
database (the simulated meters start their counters anew). With --dir the database and a
readings.jsonl file (the demo's file sink) are kept there; without it a temporary directory is
used and removed at exit.

Examples:
  kamstrup demo                           dashboard on a free port
  kamstrup demo --port 8080 --weeks 12    a fixed port and three months of history
  kamstrup demo --dir ./demo --interval 30s";

/// The registers the demo reads from the MULTICAL 403: the standard set plus ΔT.
const KMP_REGISTERS: [u16; 9] = [60, 68, 86, 87, 89, 80, 74, 1004, 99];

/// Time between two seeded readings.
const HISTORY_STEP: Duration = Duration::from_secs(15 * 60);

/// The most history the simulated MULTICAL 403's counters allow.
const MAX_WEEKS: u16 = 48;

/// How long the daemon and the web server get to finish after Ctrl-C (a 66C read in flight
/// takes up to ~4 s).
const STOP_GRACE: Duration = Duration::from_secs(10);

/// How long the demo waits for the first live reading of each meter before it prints the
/// dashboard's address (the 66C answers in 1–4 s).
const FIRST_POLL_WAIT: Duration = Duration::from_secs(15);

const DB_NAME: &str = "kamstrup-demo.db";

/// Arguments of `demo`.
#[derive(Args, Debug)]
pub(crate) struct DemoArgs {
    /// Keep the demo database and readings.jsonl in DIR (created if missing; a previous demo
    /// database there is replaced). Default: a temporary directory, removed at exit.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,

    /// Port of the dashboard on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,

    /// Weeks of 15-minute history to seed before the meters go live (0–48).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(0..=i64::from(MAX_WEEKS)))]
    weeks: u16,

    /// How often the daemon reads each simulated meter.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    interval: Duration,
}

/// The demo's meters: (name, port, protocol, KMP registers).
fn meters(interval: Duration) -> Result<Vec<MeterSettings>, String> {
    let port = |s: &str| {
        s.parse::<PortSpec>()
            .map_err(|e| format!("internal demo port {s}: {e}"))
    };
    Ok(vec![
        MeterSettings {
            name: "heat".into(),
            port: port("sim:multical-403")?,
            protocol: ProtocolChoice::Kmp,
            registers: KMP_REGISTERS.to_vec(),
            schedule: Schedule::Every(interval),
            baud: None,
            timeout: Duration::from_secs(2),
            program: None,
            model: None,
            backfill: kamstrup_daemon::Backfill::OFF,
        },
        MeterSettings {
            name: "old-heat".into(),
            port: port("sim:multical-66c")?,
            protocol: ProtocolChoice::Mc66c,
            registers: Vec::new(),
            schedule: Schedule::Every(interval),
            baud: None,
            timeout: Duration::from_secs(2),
            program: None,
            model: None,
            backfill: kamstrup_daemon::Backfill::OFF,
        },
    ])
}

/// Removes a previous demo database and its WAL files (only those: the directory may hold more).
fn remove_previous(db: &Path) -> std::io::Result<bool> {
    let mut removed = false;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::remove_file(PathBuf::from(name)) {
            Ok(()) => removed = true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

/// Seeds `weeks` of history ending now for both meters; the file sink starts after it.
fn seed(db: &Path, weeks: u16) -> Result<usize, String> {
    let mut store = Store::open(db).map_err(|e| format!("cannot create {}: {e}", db.display()))?;
    if weeks == 0 {
        return Ok(0);
    }
    let spec = HistorySpec {
        end: Utc::now(),
        span: Duration::from_secs(u64::from(weeks) * 7 * 86_400),
        step: HISTORY_STEP,
    };
    let heat = kmp_history(
        KmpModel::Multical403,
        &KMP_REGISTERS,
        "sim:multical-403",
        &spec,
    )
    .map_err(|e| e.to_string())?;
    let old = mc66c_history(Mc66cModel::default(), "sim:multical-66c", &spec)
        .map_err(|e| e.to_string())?;
    let first = heat.first().map_or_else(Utc::now, |r: &Reading| r.taken_at);
    let store_err = |e: kamstrup_store::StoreError| format!("seeding {}: {e}", db.display());
    let heat_id = store
        .upsert_meter(
            u64::from(KmpModel::Multical403.serial()),
            "heat",
            Protocol::Kmp,
            None,
            "sim:multical-403",
            first,
        )
        .map_err(store_err)?;
    let old_id = store
        .upsert_meter(
            Mc66cModel::CUSTOMER_NO,
            "old-heat",
            Protocol::Mc66c,
            Some("MULTICAL 66C"),
            "sim:multical-66c",
            first,
        )
        .map_err(store_err)?;
    let with =
        |id: MeterId, readings: Vec<Reading>| readings.into_iter().map(move |r| (id, r, None));
    let mut items: Vec<(MeterId, Reading, Option<String>)> =
        with(heat_id, heat).chain(with(old_id, old)).collect();
    items.sort_by_key(|(_, r, _)| r.taken_at);
    let ids = store.insert_readings(&items).map_err(store_err)?;
    // The file sink is for what the meters say from now on, not for the seeded past.
    if let Some(last) = ids.last() {
        store.set_cursor("file", *last).map_err(store_err)?;
    }
    Ok(items.len())
}

pub(crate) async fn run(args: DemoArgs) -> ExitCode {
    if args.interval < Duration::from_secs(1) {
        eprintln!("error: --interval must be at least 1s");
        return ExitCode::from(EXIT_USAGE);
    }
    let (dir, temporary) = match &args.dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("kamstrup-demo-{}", std::process::id())),
            true,
        ),
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!(
            "error: cannot create the demo directory {}: {e}",
            dir.display()
        );
        return ExitCode::from(EXIT_FAILED);
    }
    let code = demo(&args, &dir).await;
    if temporary {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            eprintln!("warning: could not remove {}: {e}", dir.display());
        }
    }
    code
}

async fn demo(args: &DemoArgs, dir: &Path) -> ExitCode {
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "error: cannot listen on 127.0.0.1:{}: {e}; try another --port, or 0 for any free one",
                args.port
            );
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let db = dir.join(DB_NAME);
    match remove_previous(&db) {
        Ok(true) => eprintln!("replacing the previous demo database {}", db.display()),
        Ok(false) => {}
        Err(e) => {
            eprintln!(
                "error: cannot remove the previous demo database {}: {e}",
                db.display()
            );
            return ExitCode::from(EXIT_FAILED);
        }
    }
    let weeks = args.weeks;
    let db_for_seed = db.clone();
    let seeded = match tokio::task::spawn_blocking(move || seed(&db_for_seed, weeks)).await {
        Ok(Ok(n)) => n,
        Ok(Err(message)) => {
            eprintln!("error: {message}");
            return ExitCode::from(EXIT_FAILED);
        }
        Err(e) => {
            eprintln!("error: seeding failed: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let meters = match meters(args.interval) {
        Ok(m) => m,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let sink = match FileSink::new(&FileConfig {
        enabled: true,
        path: dir.join("readings.jsonl"),
        format: FileFormat::Jsonl,
    }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let sinks: Vec<Box<dyn Sink>> = vec![Box::new(sink)];
    let config = DaemonConfig {
        store_path: db.clone(),
        retention: None,
        meters,
        plausibility: Plausibility::default(),
        retry_scale: 1.0,
    };

    let (stop, stop_rx) = watch::channel(false);
    let status = StatusHandle::default();
    let status_fn: kamstrup_web::StatusFn = {
        let status = status.clone();
        Arc::new(move || serde_json::to_value(status.snapshot()).unwrap_or_default())
    };
    let names: Vec<String> = config.meters.iter().map(|m| m.name.clone()).collect();
    let mut daemon = tokio::spawn(kamstrup_daemon::run(
        config,
        sinks,
        status.clone(),
        super::run::until_true(stop_rx.clone()),
    ));
    let mut web = tokio::spawn(kamstrup_web::serve(
        listener,
        db.clone(),
        status_fn,
        kamstrup_web::Access::anyone(),
        super::run::until_true(stop_rx),
    ));

    // Before anything is printed: a SIGTERM right after the address appears must stop cleanly.
    let shutdown = super::run::shutdown_signal();
    // The page should open on live values: wait (briefly) for each meter's first poll.
    let first_polls = async {
        while !names
            .iter()
            .all(|n| status.snapshot().meters.get(n).is_some_and(|m| m.polls > 0))
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let _ = tokio::time::timeout(FIRST_POLL_WAIT, first_polls).await;

    println!(
        "kamstrup demo: a simulated MULTICAL 403 (KMP) and MULTICAL 66C (\"/#1\"), read every {}",
        humantime::format_duration(args.interval)
    );
    println!(
        "history: {seeded} readings ({} weeks every 15 min) in {}",
        args.weeks,
        db.display()
    );
    println!("dashboard: http://{addr}/");
    println!("API:       http://{addr}/api/meters");
    println!("metrics:   http://{addr}/metrics");
    println!("Press Ctrl-C to stop.");

    let mut failed = false;
    tokio::select! {
        _ = shutdown => {}
        result = &mut daemon => {
            eprintln!("error: the daemon stopped: {}", describe(result));
            failed = true;
        }
        result = &mut web => {
            eprintln!("error: the web server stopped: {}", describe(result));
            failed = true;
        }
    }
    eprintln!("stopping…");
    let _ = stop.send(true);
    let finish = async {
        if !daemon.is_finished() {
            let _ = (&mut daemon).await;
        }
        if !web.is_finished() {
            let _ = (&mut web).await;
        }
    };
    if tokio::time::timeout(STOP_GRACE, finish).await.is_err() {
        eprintln!(
            "warning: not everything stopped within {} s",
            STOP_GRACE.as_secs()
        );
        daemon.abort();
        web.abort();
        failed = true;
    }
    eprintln!("stopped");
    ExitCode::from(if failed { EXIT_FAILED } else { EXIT_OK })
}

fn describe<E: std::fmt::Display>(result: Result<Result<(), E>, tokio::task::JoinError>) -> String {
    match result {
        Ok(Ok(())) => "it ended on its own".to_string(),
        Ok(Err(e)) => e.to_string(),
        Err(e) => e.to_string(),
    }
}
