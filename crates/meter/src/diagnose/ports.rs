//! Finds IR heads on this machine and the programs holding a port, by reading `/dev` and `/proc`
//! directly (serialport's enumeration panics where `/sys/class/tty` is missing, e.g. containers).

use std::path::{Path, PathBuf};

use serde::Serialize;

/// A serial device that may be an IR head.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// The name to use: `/dev/serial/by-id/…` when one exists, else `/dev/ttyUSB0`.
    pub path: String,
    /// The kernel device it points to (`/dev/ttyUSB0`).
    pub device: String,
    /// Vendor and product, when known (`FTDI FT230X Basic UART`, `0403:6015`).
    pub description: Option<String>,
}

/// Candidate heads: every `/dev/serial/by-id/*` (with vendor/product), then `/dev/ttyUSB*` and
/// `/dev/ttyACM*` that no by-id name points to. Never fails: missing directories give nothing.
pub fn candidates() -> Vec<Candidate> {
    candidates_in(Path::new("/dev"), Path::new("/sys"))
}

/// [`candidates`] under other roots (for tests).
pub fn candidates_in(dev: &Path, sys: &Path) -> Vec<Candidate> {
    let mut found: Vec<Candidate> = Vec::new();
    let by_id = dev.join("serial").join("by-id");
    let mut links: Vec<PathBuf> = read_dir_sorted(&by_id);
    links.retain(|p| p.file_name().is_some());
    for link in links {
        let device = std::fs::canonicalize(&link).unwrap_or_else(|_| link.clone());
        let name = link
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let kernel = device
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let description = describe_by_id(&name).or_else(|| usb_ids(sys, &kernel));
        found.push(Candidate {
            path: link.to_string_lossy().into_owned(),
            device: device.to_string_lossy().into_owned(),
            description,
        });
    }
    for prefix in ["ttyUSB", "ttyACM"] {
        for path in read_dir_sorted(dev) {
            let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
                continue;
            };
            let numbered = name
                .strip_prefix(prefix)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if !numbered {
                continue;
            }
            let text = path.to_string_lossy().into_owned();
            let canonical = std::fs::canonicalize(&path)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|_| text.clone());
            if found
                .iter()
                .any(|c| c.device == canonical || c.device == text)
            {
                continue;
            }
            found.push(Candidate {
                path: text.clone(),
                device: text,
                description: usb_ids(sys, &name),
            });
        }
    }
    found
}

/// The `/dev/serial/by-id/…` name that points to `port`, if `port` is not one already.
pub fn stable_name_for(port: &str) -> Option<String> {
    stable_name_in(Path::new("/dev"), port)
}

/// [`stable_name_for`] under another `/dev` (for tests).
pub fn stable_name_in(dev: &Path, port: &str) -> Option<String> {
    let by_id = dev.join("serial").join("by-id");
    if Path::new(port).starts_with(&by_id) {
        return None;
    }
    let target = std::fs::canonicalize(port).ok()?;
    read_dir_sorted(&by_id)
        .into_iter()
        .find(|link| std::fs::canonicalize(link).ok().as_ref() == Some(&target))
        .map(|p| p.to_string_lossy().into_owned())
}

/// Other processes that have `port` open (`name (pid N)`), as far as `/proc` lets us see
/// (other users' processes are hidden from non-root users). Our own process is left out.
pub fn holders(port: &str) -> Vec<String> {
    holders_in(Path::new("/proc"), port, std::process::id())
}

/// [`holders`] under another `/proc` (for tests).
pub fn holders_in(proc_root: &Path, port: &str, own_pid: u32) -> Vec<String> {
    let Ok(target) = std::fs::canonicalize(port) else {
        return Vec::new();
    };
    let is_pty = target.starts_with("/dev/pts");
    let mut out = Vec::new();
    for entry in read_dir_sorted(proc_root) {
        let Some(pid) = entry
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == own_pid {
            continue;
        }
        let holds = read_dir_sorted(&entry.join("fd"))
            .into_iter()
            .any(|fd| std::fs::read_link(&fd).ok().as_ref() == Some(&target));
        // The program at the other end of a pseudo-terminal (a simulator, socat) holds the
        // slave too, as the meter's side of the wire: it is not a rival reader.
        if holds && is_pty && holds_ptmx(&entry) {
            continue;
        }
        if holds {
            let name = std::fs::read_to_string(entry.join("comm"))
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "?".to_string());
            out.push(format!("{name} (pid {pid})"));
        }
    }
    out
}

fn holds_ptmx(proc_entry: &Path) -> bool {
    read_dir_sorted(&proc_entry.join("fd"))
        .into_iter()
        .any(|fd| {
            std::fs::read_link(&fd)
                .is_ok_and(|t| t == Path::new("/dev/ptmx") || t == Path::new("/dev/pts/ptmx"))
        })
}

fn read_dir_sorted(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    paths
}

/// `usb-FTDI_FT230X_Basic_UART_D30A1B2C-if00-port0` → `FTDI FT230X Basic UART (D30A1B2C)`.
fn describe_by_id(name: &str) -> Option<String> {
    let rest = name
        .strip_prefix("usb-")
        .or_else(|| name.strip_prefix("pci-"))?;
    // Strip the interface suffix (-if00, -if00-port0).
    let core = match rest.find("-if") {
        Some(i) => rest.get(..i).unwrap_or(rest),
        None => rest,
    };
    let mut words: Vec<&str> = core.split('_').filter(|w| !w.is_empty()).collect();
    // The last word is the adapter's serial number when there is more than vendor + product.
    let serial = if words.len() > 2 { words.pop() } else { None };
    if words.is_empty() {
        return None;
    }
    let mut text = words.join(" ");
    if let Some(s) = serial {
        text.push_str(&format!(" (serial {s})"));
    }
    Some(text)
}

/// `idVendor:idProduct` and the product string from sysfs, by walking up from the tty's device.
fn usb_ids(sys: &Path, kernel_name: &str) -> Option<String> {
    if kernel_name.is_empty() {
        return None;
    }
    let mut dir = std::fs::canonicalize(
        sys.join("class")
            .join("tty")
            .join(kernel_name)
            .join("device"),
    )
    .ok()?;
    for _ in 0..6 {
        let vendor = std::fs::read_to_string(dir.join("idVendor")).ok();
        let product = std::fs::read_to_string(dir.join("idProduct")).ok();
        if let (Some(v), Some(p)) = (vendor, product) {
            let name = std::fs::read_to_string(dir.join("product"))
                .map(|s| format!(" {}", s.trim()))
                .unwrap_or_default();
            return Some(format!("{}:{}{name}", v.trim(), p.trim()));
        }
        dir = dir.parent()?.to_path_buf();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn by_id_first_then_unnamed_devices() {
        let root = std::env::temp_dir().join(format!("kamstrup-ports-{}", std::process::id()));
        let dev = root.join("dev");
        let by_id = dev.join("serial").join("by-id");
        std::fs::create_dir_all(&by_id).unwrap();
        for name in ["ttyUSB0", "ttyUSB1", "ttyACM0", "ttyS0", "ttyUSBx"] {
            std::fs::write(dev.join(name), b"").unwrap();
        }
        symlink(
            "../../ttyUSB1",
            by_id.join("usb-FTDI_FT230X_Basic_UART_D30A1B2C-if00-port0"),
        )
        .unwrap();
        let got = candidates_in(&dev, &root.join("sys"));
        let paths: Vec<&str> = got.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths.len(), 3, "{got:?}");
        assert!(paths[0].ends_with("by-id/usb-FTDI_FT230X_Basic_UART_D30A1B2C-if00-port0"));
        assert!(paths[1].ends_with("/ttyUSB0"));
        assert!(paths[2].ends_with("/ttyACM0"));
        assert_eq!(
            got[0].description.as_deref(),
            Some("FTDI FT230X Basic UART (serial D30A1B2C)")
        );
        assert!(got[0].device.ends_with("/ttyUSB1"));
        let stable = stable_name_in(&dev, &dev.join("ttyUSB1").to_string_lossy()).unwrap();
        assert!(stable.contains("by-id"));
        assert_eq!(
            stable_name_in(&dev, &dev.join("ttyUSB0").to_string_lossy()),
            None
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn vendor_and_product_of_an_unnamed_device_from_sysfs() {
        // The layout of Linux sysfs: the tty's `device` link points into the USB interface
        // (ttyUSB: one level deeper), whose parent, the USB device, has the ids and the product.
        let root = std::env::temp_dir().join(format!("kamstrup-sysfs-{}", std::process::id()));
        let dev = root.join("dev");
        let sys = root.join("sys");
        std::fs::create_dir_all(&dev).unwrap();
        let usb = sys.join("devices/pci0000:00/usb1/1-1");
        let acm = usb.join("1-1:1.0");
        let ftdi = sys.join("devices/pci0000:00/usb1/1-2");
        let ftdi_tty = ftdi.join("1-2:1.0/ttyUSB0");
        std::fs::create_dir_all(&acm).unwrap();
        std::fs::create_dir_all(&ftdi_tty).unwrap();
        for (dir, vendor, product, name) in [
            (&usb, "2341", "0043", "Arduino Uno"),
            (&ftdi, "0403", "6001", "FT232R USB UART"),
        ] {
            std::fs::write(dir.join("idVendor"), format!("{vendor}\n")).unwrap();
            std::fs::write(dir.join("idProduct"), format!("{product}\n")).unwrap();
            std::fs::write(dir.join("product"), format!("{name}\n")).unwrap();
        }
        let class = sys.join("class/tty");
        for (tty, target) in [("ttyACM0", &acm), ("ttyUSB0", &ftdi_tty)] {
            std::fs::create_dir_all(class.join(tty)).unwrap();
            symlink(target, class.join(tty).join("device")).unwrap();
            std::fs::write(dev.join(tty), b"").unwrap();
        }
        let got = candidates_in(&dev, &sys);
        let described: Vec<(String, Option<String>)> = got
            .iter()
            .map(|c| {
                let name = Path::new(&c.path).file_name().unwrap();
                (name.to_string_lossy().into_owned(), c.description.clone())
            })
            .collect();
        assert_eq!(
            described,
            vec![
                (
                    "ttyUSB0".to_string(),
                    Some("0403:6001 FT232R USB UART".to_string())
                ),
                (
                    "ttyACM0".to_string(),
                    Some("2341:0043 Arduino Uno".to_string())
                ),
            ]
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn missing_directories_give_nothing() {
        let nowhere = Path::new("/nonexistent-kamstrup");
        assert!(candidates_in(nowhere, nowhere).is_empty());
        assert!(holders_in(nowhere, "/dev/null", 1).is_empty());
        assert_eq!(stable_name_in(nowhere, "/dev/null"), None);
    }

    #[test]
    fn finds_this_process_as_a_holder() {
        // Seen from a fake "other" pid, this test process holds the file it opened.
        let path = std::env::temp_dir().join(format!("kamstrup-holder-{}", std::process::id()));
        let file = std::fs::File::create(&path).unwrap();
        let got = holders_in(Path::new("/proc"), &path.to_string_lossy(), 0);
        assert!(
            got.iter()
                .any(|h| h.ends_with(&format!("(pid {})", std::process::id()))),
            "{got:?}"
        );
        drop(file);
        std::fs::remove_file(&path).unwrap();
    }
}
