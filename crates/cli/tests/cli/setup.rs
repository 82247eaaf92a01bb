//! End-to-end: the real `kamstrup setup` in a real pseudo-terminal, its prompts answered by the
//! test (arrow keys, typed text), against `kamstrup simulate` on a pty and on TCP and a real MQTT
//! broker (rumqttd); the config it writes must pass validation. Also the script form (--yes).

use super::harness::*;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const UP: &str = "\x1b[A";
const DOWN: &str = "\x1b[B";

/// Starts `kamstrup simulate`; returns it with its port (pty symlink or tcp://…).
fn simulator(args: &[&str], dir: &Path) -> (Sim, String) {
    let link = dir.join("meter");
    let sim = if args.contains(&"--listen") {
        Sim::start(args)
    } else {
        Sim::start(&[args, &["--pty", "--link", link.to_str().unwrap()]].concat())
    };
    let port = sim.port.clone();
    (sim, port)
}

/// `kamstrup setup` on a pseudo-terminal: its stdin, stdout and stderr are the pty's slave.
struct Terminal {
    child: Proc,
    master: std::fs::File,
    screen: Arc<Mutex<Vec<u8>>>,
    /// How much of the (cleaned) screen earlier `expect`s consumed.
    seen: usize,
}

impl Terminal {
    fn spawn(args: &[&str], dir: &Path) -> Terminal {
        use rustix::fs::{Mode, OFlags};
        use rustix::pty::OpenptFlags;
        let master = rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
        rustix::pty::grantpt(&master).unwrap();
        rustix::pty::unlockpt(&master).unwrap();
        let name = rustix::pty::ptsname(&master, Vec::new()).unwrap();
        let slave = rustix::fs::open(
            name.as_c_str(),
            OFlags::RDWR | OFlags::NOCTTY,
            Mode::empty(),
        )
        .unwrap();
        let size = rustix::termios::Winsize {
            ws_row: 50,
            ws_col: 160,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(&slave, size).unwrap();
        let child = Command::new(BIN)
            .arg("setup")
            .args(args)
            .current_dir(dir)
            .env("TERM", "xterm")
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave))
            .spawn()
            .unwrap();
        let master = std::fs::File::from(master);
        let screen = Arc::new(Mutex::new(Vec::new()));
        let mut reader = master.try_clone().unwrap();
        let sink = Arc::clone(&screen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once the child has exited and closed the slave.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Terminal {
            child: Proc(child),
            master,
            screen,
            seen: 0,
        }
    }

    /// The screen so far without escape sequences.
    fn text(&self) -> String {
        let raw = self.screen.lock().unwrap().clone();
        strip_ansi(&String::from_utf8_lossy(&raw))
    }

    /// Waits until `needle` appears after what earlier calls consumed.
    fn expect(&mut self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.text();
            if let Some(at) = text.get(self.seen..).and_then(|t| t.find(needle)) {
                self.seen += at + needle.len();
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {needle:?}; screen:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn send(&mut self, keys: &str) {
        // Give the prompt time to switch the terminal to raw mode (and a password prompt to turn
        // echo off) after drawing itself, as a person would; then keys one at a time, as typed.
        std::thread::sleep(Duration::from_millis(250));
        // An escape sequence (an arrow key) is one key: it goes in one write.
        let bytes = keys.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let len = if bytes[i] == 0x1b {
                3.min(bytes.len() - i)
            } else {
                1
            };
            self.master.write_all(&bytes[i..i + len]).unwrap();
            self.master.flush().unwrap();
            i += len;
            std::thread::sleep(Duration::from_millis(30));
        }
        self.master.flush().unwrap();
    }

    fn wait(mut self) -> (i32, String) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = self.child.0.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "setup did not finish; screen:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        std::thread::sleep(Duration::from_millis(200));
        (status.code().unwrap_or(-1), self.text())
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                // Parameters and intermediates, then one final byte.
                for f in chars.by_ref() {
                    if ('@'..='~').contains(&f) {
                        break;
                    }
                }
            } else {
                chars.next();
            }
            continue;
        }
        if c != '\r' {
            out.push(c);
        }
    }
    out
}

fn check_config(config: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(["check", "--config"])
        .arg(config)
        .args(extra)
        .output()
        .unwrap()
}

// ---- a real MQTT broker in a child process ----------------------------------------------------

// ---- the tests ----------------------------------------------------------------------------------

#[test]
fn interactive_setup_with_a_meter_on_a_pty_and_home_assistant_over_mqtt() {
    let dir = tempfile::tempdir().unwrap();
    let (_sim, port) = simulator(&["--model", "multical-602"], dir.path());
    let broker = Broker::start_with(Some("kamstrup:s3cret"));
    let mut t = Terminal::spawn(&[], dir.path());
    // The head: "another path" is the last entry; Up from the first wraps to it.
    t.expect("Which IR head?");
    t.expect("another path");
    t.send(UP);
    t.send("\r");
    t.expect("Port");
    t.send(&format!("{port}\r"));
    // What answered, with its values and units.
    t.expect("Found a KMP meter");
    t.expect("heat_energy (E1)");
    t.expect("MWh");
    // Home Assistant over MQTT is the first choice.
    t.expect("Where should the readings go?");
    t.send("\r");
    // A wrong password first: the login is tested, refused, and the answers asked again.
    t.expect("MQTT broker");
    t.send(&format!("mqtt://127.0.0.1:{}\r", broker.port));
    t.expect("MQTT user name");
    t.send("kamstrup\r");
    t.expect("MQTT password");
    t.send("wrong\r");
    t.expect("FAIL homeassistant");
    t.expect("Enter the answers again?");
    t.send("y");
    t.expect("MQTT broker");
    t.send(&format!("mqtt://127.0.0.1:{}\r", broker.port));
    t.expect("MQTT user name");
    t.send("kamstrup\r");
    t.expect("MQTT password");
    t.send("s3cret\r");
    // The broker is checked with the answers before anything is written.
    t.expect("ok   homeassistant");
    t.expect("How often should the meter be read?");
    t.expect("IR sessions a day");
    t.send("\r");
    // `kamstrup check` on the written file: the meter from the probe (no second IR session),
    // the broker reached again with the login from the 0600 file beside it.
    t.expect("wrote");
    t.expect("Checking");
    t.expect("ok   meter heat on");
    t.expect("read by the probe above");
    t.expect("ok   config:");
    t.expect("ok   homeassistant");
    t.expect("Next:");
    t.expect("kamstrup run --config kamstrup.toml");
    let (code, screen) = t.wait();
    assert_eq!(code, 0, "{screen}");
    assert!(
        !screen.contains("s3cret"),
        "the password is never echoed:\n{screen}"
    );

    let config = dir.path().join("kamstrup.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains(&format!("port = \"{port}\"")), "{text}");
    assert!(text.contains("protocol = \"kmp\""), "{text}");
    assert!(text.contains("interval = \"15m\""), "{text}");
    assert!(
        text.contains(&format!("url = \"mqtt://127.0.0.1:{}\"", broker.port)),
        "{text}"
    );
    assert!(text.contains("username = \"kamstrup\""), "{text}");
    assert!(text.contains("[homeassistant]"), "{text}");
    assert!(!text.contains("s3cret"), "no secret in the config:\n{text}");
    let secret = dir.path().join("mqtt-password");
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "s3cret");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The same validation as `kamstrup check`, with the meter and the broker reached.
    let out = check_config(&config, &[]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn interactive_setup_with_a_66c_over_tcp_a_file_sink_and_an_existing_config() {
    let dir = tempfile::tempdir().unwrap();
    let (_sim, port) = simulator(
        &[
            "--model",
            "multical-66c",
            "--program",
            "4-4-119",
            "--latency-ms",
            "300",
            "--listen",
            "127.0.0.1:0",
        ],
        dir.path(),
    );
    let address = port.trim_start_matches("tcp://").to_string();
    let config = dir.path().join("kamstrup.toml");
    std::fs::write(&config, "# an older config\n").unwrap();
    let mut t = Terminal::spawn(&[], dir.path());
    t.expect("Which IR head?");
    t.expect("another path");
    // The bridge is the second-to-last entry.
    t.send(UP);
    t.send(UP);
    t.send("\r");
    t.expect("Bridge address");
    t.send(&format!("{address}\r"));
    t.expect("asking the MULTICAL 66C");
    t.expect("Found a MULTICAL 66C");
    t.expect("program 4-4-119");
    t.expect("Where should the readings go?");
    // A file is the fifth choice.
    t.send(&DOWN.repeat(4));
    t.send("\r");
    t.expect("File for the readings");
    t.send("\r");
    t.expect("How often should the meter be read?");
    t.send("\r");
    t.expect("exists already. Overwrite?");
    t.send("y");
    t.expect("Next:");
    let (code, screen) = t.wait();
    assert_eq!(code, 0, "{screen}");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains(&format!("port = \"{port}\"")), "{text}");
    assert!(text.contains("protocol = \"mc66c\""), "{text}");
    assert!(text.contains("program = \"4-4-119\""), "{text}");
    assert!(text.contains("interval = \"1h\""), "{text}");
    assert!(
        text.contains("[file]") && text.contains("readings.jsonl"),
        "{text}"
    );
    let out = check_config(&config, &["--no-meters"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn scripted_setup_with_flags_and_a_silent_meter() {
    let dir = tempfile::tempdir().unwrap();
    let (_sim, port) = simulator(&["--listen", "127.0.0.1:0"], dir.path());
    let config = dir.path().join("k.toml");
    let run = |extra: &[&str]| {
        Command::new(BIN)
            .args(["setup", "--port", &port, "--config"])
            .arg(&config)
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    // Secrets as environment references: nothing secret on disk.
    let out = run(&[
        "--sink",
        "influxdb",
        "--influx-url",
        "http://127.0.0.1:9",
        "--influx-org",
        "home",
        "--influx-token",
        "t0ken",
        "--secrets",
        "env",
        "--interval",
        "20m",
        "--yes",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Nothing listens on port 9: the config is written, the check on it fails, and a script
    // sees that in the exit status.
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("ok   config:"), "{stdout}");
    assert!(stdout.contains("FAIL influxdb"), "{stdout}");
    assert!(
        stderr.contains("is written, but the check above failed"),
        "{stderr}"
    );
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.contains("token = \"env:KAMSTRUP_INFLUX_TOKEN\""),
        "{text}"
    );
    assert!(!text.contains("t0ken"));
    assert!(!dir.path().join("influx-token").exists());
    // An existing config is never overwritten without --force.
    let out = run(&["--sink", "none", "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert!(std::fs::read_to_string(&config)
        .unwrap()
        .contains("[influxdb]"));
    let out = run(&["--sink", "none", "--yes", "--force"]);
    assert!(out.status.success());
    assert!(!std::fs::read_to_string(&config)
        .unwrap()
        .contains("[influxdb]"));
    // A script without a needed answer is told which flag to give.
    let out = run(&["--sink", "influxdb", "--yes", "--force"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--influx-org"));

    // A silent meter: the doctor's diagnosis, and no config.
    let (_silent, silent_port) = simulator(&["--faults", "drop"], dir.path());
    let fresh = dir.path().join("fresh.toml");
    let out = Command::new(BIN)
        .args([
            "setup",
            "--port",
            &silent_port,
            "--protocol",
            "kmp",
            "--yes",
            "--config",
        ])
        .arg(&fresh)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("verdict (no-reply)"), "{stdout}");
    assert!(!fresh.exists());
}

/// A Domoticz 2025.1 stand-in for `getdevices`: one answer per connection, then the connection
/// is closed (as the real server does without keep-alive). Returns its URL and the requests seen.
fn fake_domoticz() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let request = String::from_utf8_lossy(&head)
                .lines()
                .next()
                .unwrap_or("")
                .to_string();
            log.lock().unwrap().push(request);
            let body = r#"{"status":"OK","title":"getdevices","result":[
                {"idx":"12","Name":"Heat energy","Type":"General","SubType":"Custom Sensor","Data":"121.89 GJ"},
                {"idx":"13","Name":"Forward temperature","Type":"Temp","SubType":"LaCrosse TX3","Data":"66.0 C","Temp":66.0}]}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json;charset=UTF-8\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, seen)
}

#[test]
fn domoticz_devices_are_listed_to_pick_the_idx_from() {
    let dir = tempfile::tempdir().unwrap();
    let (url, seen) = fake_domoticz();
    // A script is told which devices exist.
    let out = Command::new(BIN)
        .args([
            "setup",
            "--port",
            "sim:multical-403",
            "--sink",
            "domoticz",
            "--domoticz-url",
            &url,
            "--yes",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--domoticz-idx"), "{stderr}");
    assert!(
        stderr.contains("idx 12: Heat energy: 121.89 GJ"),
        "{stderr}"
    );
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .any(|r| r.contains("type=command") && r.contains("param=getdevices")),
        "{:?}",
        seen.lock().unwrap()
    );
    // In a terminal, the list is a choice.
    let mut t = Terminal::spawn(
        &[
            "--port",
            "sim:multical-403",
            "--sink",
            "domoticz",
            "--domoticz-url",
            &url,
            "--interval",
            "15m",
        ],
        dir.path(),
    );
    t.expect("Which Domoticz device receives the heat energy?");
    t.expect("idx 13: Forward temperature");
    // Down to the temperature and back up to the energy device.
    t.send(DOWN);
    t.send(UP);
    t.send("\r");
    // The answers are checked against Domoticz before anything is written.
    t.expect("ok   domoticz: devices[0] heat_energy → idx 12");
    t.expect("Next:");
    let (code, screen) = t.wait();
    assert_eq!(code, 0, "{screen}");
    let text = std::fs::read_to_string(dir.path().join("kamstrup.toml")).unwrap();
    assert!(text.contains("idx = 12"), "{text}");
    assert!(text.contains(&format!("url = \"{url}\"")), "{text}");
}

#[test]
fn a_66c_that_does_not_tell_its_program_number_is_asked_for_it() {
    let dir = tempfile::tempdir().unwrap();
    // /#1 answers; /#2 (twice), /#D and the EN 61107 readout do not.
    let (_sim, port) = simulator(
        &[
            "--model",
            "multical-66c",
            "--program",
            "4-4-119",
            "--latency-ms",
            "300",
            "--faults",
            "drop@2,drop@3,drop@4,drop@5",
            "--listen",
            "127.0.0.1:0",
        ],
        dir.path(),
    );
    let mut t = Terminal::spawn(
        &[
            "--port",
            &port,
            "--protocol",
            "mc66c",
            "--sink",
            "none",
            "--interval",
            "1h",
        ],
        dir.path(),
    );
    t.expect("did not give its program number");
    t.expect("Program number A-B-CCC");
    // A typo is refused with the reason, and asked again.
    t.send("4-4\r");
    t.expect("write it as A-B-CCC");
    t.send("4-4-119\r");
    t.expect("Found a MULTICAL 66C");
    t.expect("program 4-4-119 (given)");
    t.expect("Next:");
    let (code, screen) = t.wait();
    assert_eq!(code, 0, "{screen}");
    let text = std::fs::read_to_string(dir.path().join("kamstrup.toml")).unwrap();
    assert!(text.contains("program = \"4-4-119\""), "{text}");
    assert!(text.contains("# No sink"), "{text}");
}

#[test]
fn setup_and_doctor_help_teach_with_examples() {
    for sub in ["setup", "doctor"] {
        let out = Command::new(BIN).args([sub, "--help"]).output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Examples:"), "{sub} --help:\n{text}");
        assert!(
            text.contains(&format!("kamstrup {sub} --port")),
            "{sub}:\n{text}"
        );
    }
}

#[test]
fn bad_input_gets_a_clear_error_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let setup = |args: &[&str]| {
        Command::new(BIN)
            .arg("setup")
            .args(args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let cases: &[(&[&str], &str)] = &[
        // A port that does not exist: named, with the heads found and the way out.
        (
            &["--port", "/dev/ttyUSB-kamstrup-none", "--yes"],
            "no such device",
        ),
        (
            &[
                "--port",
                "sim:multical-403",
                "--sink",
                "homeassitant",
                "--yes",
            ],
            "homeassistant",
        ),
        (
            &["--port", "sim:multical-403", "--interval", "15x", "--yes"],
            "--interval",
        ),
        (
            &["--port", "sim:multical-403", "--program", "4-4", "--yes"],
            "A-B-CCC",
        ),
        (
            &["--port", "sim:multical-403", "--protocol", "kmpp", "--yes"],
            "mc66c",
        ),
        (&["--port", "ftp://meter:21", "--yes"], "tcp://"),
    ];
    for (args, needle) in cases {
        let out = setup(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!dir.path().join("kamstrup.toml").exists(), "{args:?}");
    }
    let out = setup(&["--port", "/dev/ttyUSB-kamstrup-none", "--yes"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-probe"));
    // Without the head, on purpose: the config is written, and says the meter was not read.
    let out = setup(&["--port", "/dev/ttyUSB-kamstrup-none", "--no-probe", "--yes"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("not contacted (--no-probe)"), "{stdout}");
    // The doctor: a port that does not exist is a verdict, a typo'd value a usage error.
    let out = Command::new(BIN)
        .args([
            "doctor",
            "--port",
            "sim:multical-403",
            "--protocol",
            "mc66",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("mc66c"));
    let out = Command::new(BIN)
        .args(["doctor", "--port", "sim:multical-403", "--watch-for", "3x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--watch-for"));
}

#[test]
fn an_existing_secret_file_is_not_overwritten_without_asking() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("mqtt-password");
    std::fs::write(&secret, "an older password").unwrap();
    // A port nobody listens on (bound, then closed): the broker check fails, the write is refused
    // before it is tried.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = Command::new(BIN)
        .args([
            "setup",
            "--port",
            "sim:multical-403",
            "--sink",
            "homeassistant",
            "--mqtt-url",
            &format!("mqtt://{closed}"),
            "--mqtt-password",
            "new",
            "--interval",
            "15m",
            "--yes",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("mqtt-password") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        "an older password"
    );
    assert!(!dir.path().join("kamstrup.toml").exists());
}

/// A stand-in for Home Assistant's REST API as far as setup and check use it: `GET /api/` with
/// a bearer token answers 200 `{"message": "API running."}` for the right token and 401 for any
/// other, as HA does.
fn fake_home_assistant(token: &'static str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
            let good = head.starts_with("get /api/ ")
                && head.contains(&format!("authorization: bearer {token}\r\n"));
            let (status, body) = if good {
                ("200 OK", r#"{"message":"API running."}"#)
            } else {
                ("401 Unauthorized", "401: Unauthorized")
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn home_assistant_rest_token_is_tested_and_kept_in_a_0600_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = fake_home_assistant("g00d-t0ken");
    let mut t = Terminal::spawn(
        &[
            "--port",
            "sim:multical-403",
            "--sink",
            "ha-rest",
            "--interval",
            "15m",
        ],
        dir.path(),
    );
    t.expect("Home Assistant URL");
    t.send(&format!("{url}\r"));
    t.expect("Long-lived access token");
    t.send("wrong\r");
    t.expect("FAIL homeassistant_rest");
    t.expect("token refused");
    t.expect("Enter the answers again?");
    t.send("y");
    t.expect("Home Assistant URL");
    t.send(&format!("{url}\r"));
    t.expect("Long-lived access token");
    t.send("g00d-t0ken\r");
    t.expect("ok   homeassistant_rest");
    t.expect("token accepted");
    t.expect("Next:");
    let (code, screen) = t.wait();
    assert_eq!(code, 0, "{screen}");
    assert!(!screen.contains("g00d-t0ken"), "{screen}");
    let text = std::fs::read_to_string(dir.path().join("kamstrup.toml")).unwrap();
    assert!(text.contains("[homeassistant_rest]"), "{text}");
    assert!(text.contains("token_file = \"ha-token\""), "{text}");
    assert!(!text.contains("g00d-t0ken"), "{text}");
    let secret = dir.path().join("ha-token");
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "g00d-t0ken");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // A script with the token from the environment: the token given is tested before the
    // config is written and by `kamstrup check` on it, yet stored nowhere.
    let env_dir = tempfile::tempdir().unwrap();
    let scripted = |token: &str| {
        Command::new(BIN)
            .args([
                "setup",
                "--port",
                "sim:multical-403",
                "--sink",
                "ha-rest",
                "--ha-url",
                &url,
                "--ha-token",
                token,
                "--secrets",
                "env",
                "--yes",
                "--force",
            ])
            .current_dir(env_dir.path())
            .env_remove("KAMSTRUP_HA_TOKEN")
            .output()
            .unwrap()
    };
    let out = scripted("g00d-t0ken");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_eq!(stdout.matches("token accepted").count(), 2, "{stdout}");
    assert!(stdout.contains("set KAMSTRUP_HA_TOKEN"), "{stdout}");
    let text = std::fs::read_to_string(env_dir.path().join("kamstrup.toml")).unwrap();
    assert!(text.contains("token = \"env:KAMSTRUP_HA_TOKEN\""), "{text}");
    let files: Vec<String> = std::fs::read_dir(env_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, ["kamstrup.toml"], "nothing secret on disk");
    let out = scripted("wrong");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("token refused"), "{stdout}");
}
