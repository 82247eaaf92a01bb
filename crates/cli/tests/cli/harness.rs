//! What the CLI tests share: the `kamstrup` binary, child processes that die with the test, a
//! real MQTT broker (rumqttd in a child process of this test binary) and waiting with a deadline.

use std::io::Read;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `kamstrup` binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_kamstrup");

const BROKER_PORT_ENV: &str = "KAMSTRUP_TEST_BROKER_PORT";
/// `user:password` the broker child requires, when set.
const BROKER_AUTH_ENV: &str = "KAMSTRUP_TEST_BROKER_AUTH";

/// A child process killed when the test is done with it (also when it panics).
pub(crate) struct Proc(pub(crate) Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// Sends SIGTERM and waits (at most 10 s) for the process to stop.
    pub(crate) fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.0.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "did not stop within 10 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Runs `kamstrup` with its own empty cache folder (the 66C program cache), so no test reads or
/// writes the user's `~/.cache`.
pub(crate) fn kamstrup(args: &[&str]) -> Output {
    let cache = tempfile::tempdir().unwrap();
    Command::new(BIN)
        .args(args)
        .env("XDG_CACHE_HOME", cache.path())
        .output()
        .unwrap()
}

/// The command's stdout as JSON, or a panic that shows both streams.
pub(crate) fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Polls `done` until it holds, failing the test after `timeout`.
pub(crate) fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A real MQTT broker (rumqttd) in a child process of this test binary (see `broker_child`),
/// so that a test can stop and start it like a broker that goes away.
pub(crate) struct Broker {
    pub(crate) port: u16,
    auth: Option<String>,
    child: Option<Child>,
}

impl Broker {
    /// A broker on a free loopback port that takes anyone.
    pub(crate) fn start() -> Broker {
        Broker::start_with(None)
    }

    /// A broker that requires the login `user:password` when given.
    pub(crate) fn start_with(auth: Option<&str>) -> Broker {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut b = Broker {
            port,
            auth: auth.map(str::to_owned),
            child: None,
        };
        b.restart();
        b
    }

    /// Starts it (again) on the same port.
    pub(crate) fn restart(&mut self) {
        let child = Command::new(std::env::current_exe().unwrap())
            .args([
                "harness::broker_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(BROKER_PORT_ENV, self.port.to_string())
            .env(BROKER_AUTH_ENV, self.auth.as_deref().unwrap_or(""))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        wait_for("the broker", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        });
    }

    /// Stops it; its port refuses connections afterwards.
    pub(crate) fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        wait_for("the broker to stop", Duration::from_secs(5), || {
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err()
        });
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Not a test: the body of the broker child process. Runs until the parent closes stdin.
#[test]
#[ignore = "helper process for the broker tests"]
fn broker_child() {
    let Ok(port) = std::env::var(BROKER_PORT_ENV) else {
        return;
    };
    std::thread::spawn(|| {
        let mut buf = [0u8; 16];
        while matches!(std::io::stdin().read(&mut buf), Ok(n) if n > 0) {}
        std::process::exit(0);
    });
    let mut config = serde_json::json!({
        "id": 0,
        "router": { "max_connections": 100, "max_outgoing_packet_count": 500,
                    "max_segment_size": 10485760, "max_segment_count": 10 },
        "v4": { "1": { "name": "v4-1", "listen": format!("127.0.0.1:{port}"), "next_connection_delay_ms": 1,
                       "connections": { "connection_timeout_ms": 60000, "max_payload_size": 1048576,
                                        "max_inflight_count": 200, "dynamic_filters": true } } }
    });
    if let Some((user, password)) = std::env::var(BROKER_AUTH_ENV)
        .ok()
        .as_deref()
        .and_then(|a| a.split_once(':'))
    {
        config["v4"]["1"]["connections"]["auth"] = serde_json::json!({ user: password });
    }
    let config: rumqttd::Config = serde_json::from_value(config).unwrap();
    rumqttd::Broker::new(config).start().unwrap();
}

/// A running `kamstrup -vv simulate`, killed when dropped. Its log (every request it answered)
/// goes to `sim.log` in its own folder.
pub(crate) struct Sim {
    _proc: Proc,
    /// What to configure as the meter's port: the pty's link or `tcp://127.0.0.1:N`.
    pub(crate) port: String,
    /// The line the simulator announced itself with.
    pub(crate) announce: String,
    dir: tempfile::TempDir,
}

impl Sim {
    /// `kamstrup simulate ARGS` on a new pseudo-terminal (linked from its own folder), unless
    /// ARGS choose the transport themselves (`--listen ADDR`, or `--pty --link PATH`).
    pub(crate) fn start(args: &[&str]) -> Sim {
        let dir = tempfile::tempdir().unwrap();
        let tcp = args.contains(&"--listen");
        let given_link = args
            .iter()
            .position(|a| *a == "--link")
            .and_then(|i| args.get(i + 1))
            .map(std::path::PathBuf::from);
        let link = given_link
            .clone()
            .unwrap_or_else(|| dir.path().join("meter"));
        let log = std::fs::File::create(dir.path().join("sim.log")).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["-vv", "simulate"]).args(args);
        if !tcp && given_link.is_none() {
            cmd.args(["--pty", "--link"]).arg(&link);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(log).spawn().unwrap();
        let mut announce = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut announce,
        )
        .unwrap();
        let port = if tcp {
            let addr = announce
                .split_whitespace()
                .find(|w| w.starts_with("tcp://"));
            addr.unwrap_or_else(|| panic!("no address in the announce line: {announce}"))
                .to_string()
        } else {
            assert!(announce.contains("pty"), "announce line: {announce}");
            assert!(link.exists(), "no pty link; announce line: {announce}");
            link.to_string_lossy().into_owned()
        };
        Sim {
            _proc: Proc(child),
            port,
            announce,
            dir,
        }
    }

    /// Over TCP on a free local port.
    pub(crate) fn tcp(args: &[&str]) -> Sim {
        Sim::start(&[&["--listen", "127.0.0.1:0"], args].concat())
    }

    /// Over `"pty"` or `"tcp"`, for tests that run over both.
    pub(crate) fn on(transport: &str, args: &[&str]) -> Sim {
        match transport {
            "pty" => Sim::start(args),
            "tcp" => Sim::tcp(args),
            other => panic!("no transport {other:?}"),
        }
    }

    /// The simulator's process id.
    pub(crate) fn pid(&self) -> u32 {
        self._proc.0.id()
    }

    /// What the simulator logged so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sim.log")).unwrap_or_default()
    }

    /// The requests the simulated meter answered so far, in order.
    pub(crate) fn requests(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains("simulator: replying"))
            .filter_map(|l| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix("request="))
                    .map(str::to_string)
            })
            .collect()
    }
}
