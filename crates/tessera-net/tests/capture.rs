//! Capture from real pseudo-terminal pairs replaying real receiver logs: garbage bytes, a port
//! that closes mid-stream and comes back under the same path, `--baud auto`, rotation.

#[path = "../../tessera/tests/support/corpus.rs"]
mod support;

use serialport::{SerialPort, TTYPort};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_net::capture::{capture, CaptureConfig, CaptureStats};

/// A real receiver log: gpsd's u-blox 8 capture (binary garbage on line 10, truncated last line)
/// when the shared corpus is there, else a sample trace.
fn log_bytes() -> Vec<u8> {
    let shared = support::corpus("nmea/gpsd/ublox-8.log");
    shared.and_then(|p| std::fs::read(p).ok()).unwrap_or_else(|| {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/sample/car-003/2026-W46-trip1.nmea");
        std::fs::read(p).unwrap()[..60_000].to_vec()
    })
}

/// A pty pair whose slave is reachable through `link` (like a udev symlink for a USB receiver).
fn plug(link: &Path) -> TTYPort {
    let (master, slave) = TTYPort::pair().expect("pty pair");
    let name = slave.name().expect("slave name");
    drop(slave);
    let _ = std::fs::remove_file(link);
    std::os::unix::fs::symlink(&name, link).unwrap();
    master
}

fn write_slowly(master: &mut TTYPort, bytes: &[u8]) {
    for chunk in bytes.chunks(512) {
        master.write_all(chunk).unwrap();
        master.flush().unwrap();
        std::thread::sleep(Duration::from_millis(3));
    }
}

fn wait_for(mut cond: impl FnMut() -> bool, what: &str) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < Duration::from_secs(20), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn lines_written(dir: &Path) -> (Vec<PathBuf>, Vec<Vec<u8>>) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let mut lines = Vec::new();
    for f in &files {
        for l in std::fs::read(f)
            .unwrap()
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
        {
            // Strip the `[receive_ms]` frame.
            let end = l.iter().position(|b| *b == b']').unwrap();
            assert!(l[1..end].iter().all(u8::is_ascii_digit));
            lines.push(l[end + 1..].to_vec());
        }
    }
    (files, lines)
}

fn sent_lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn capture_survives_unplug_and_keeps_every_line_in_order() {
    let d = tempfile::tempdir().unwrap();
    let link = d.path().join("ttyGNSS");
    let out = d.path().join("out");
    let log = log_bytes();
    // Split at a line boundary in the middle, and also cut a line in two across the unplug.
    let mid = log[..log.len() / 2].iter().rposition(|b| *b == b'\n').unwrap() + 1;
    let cut = mid + 20;
    let (first, second) = (&log[..cut], &log[cut..]);

    let mut master = plug(&link);
    let stop = Arc::new(AtomicBool::new(false));
    let status = Arc::new(std::sync::Mutex::new(CaptureStats::default()));
    let (cfg, stop2, status2) = {
        let mut c = CaptureConfig::new(link.to_str().unwrap(), None, &out);
        c.reconnect_every = Duration::from_millis(100);
        c.probe_for = Duration::from_millis(800);
        (c, stop.clone(), status.clone())
    };
    let worker =
        std::thread::spawn(move || capture(&cfg, &stop2, &mut |s| *status2.lock().unwrap() = s.clone()).unwrap());

    // `--baud auto` needs sentences to lock on: stream until connected, then the log.
    wait_for(|| std::fs::read_link(&link).is_ok(), "link");
    std::thread::sleep(Duration::from_millis(200));
    write_slowly(&mut master, first);
    wait_for(|| status.lock().unwrap().lines > 5, "first lines");
    std::thread::sleep(Duration::from_millis(300));
    // Unplug mid-line: the master goes away, the slave path dangles.
    drop(master);
    std::fs::remove_file(&link).unwrap();
    wait_for(|| !status.lock().unwrap().connected, "disconnect noticed");
    std::thread::sleep(Duration::from_millis(300));
    // Plug back in: a new pty under the same path.
    let mut master = plug(&link);
    wait_for(|| status.lock().unwrap().connected, "reconnect");
    std::thread::sleep(Duration::from_millis(200));
    write_slowly(&mut master, second);
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let stats = worker.join().unwrap();

    assert_eq!(stats.reconnects, 1, "{stats:?}");
    let (files, got) = lines_written(&out);
    assert!(
        files.iter().all(|f| f.extension().unwrap() == "gps"),
        "a .part file was left: {files:?}"
    );
    // Every line sent is there, in order; the line cut by the unplug is there as its two halves.
    let mut want = sent_lines(first);
    want.extend(sent_lines(second));
    assert_eq!(got.len(), want.len(), "lines written vs sent");
    assert_eq!(got, want);
    // And ingest reads the captured file as well as the original log.
    let captured: Vec<u8> = files.iter().flat_map(|f| std::fs::read(f).unwrap()).collect();
    let a = tessera::ingest::parse(&log);
    let b = tessera::ingest::parse(&captured);
    let pos = |p: &tessera::ingest::Parsed| {
        p.fixes
            .iter()
            .map(|f| (f.lat.to_bits(), f.lon.to_bits()))
            .collect::<Vec<_>>()
    };
    let (pa, pb) = (pos(&a), pos(&b));
    assert!(
        pb.len() + 2 >= pa.len(),
        "captured {} fixes, original {}",
        pb.len(),
        pa.len()
    );
    assert!(pb.iter().all(|p| pa.contains(p)));
    assert_eq!(
        stats.valid as usize
            + stats.ignored as usize
            + stats.rejected.values().sum::<u64>() as usize
            + b.lines.comment as usize
            + b.lines.blank as usize,
        stats.lines as usize
    );
}

#[test]
fn capture_rotates_files_by_size() {
    let d = tempfile::tempdir().unwrap();
    let link = d.path().join("ttyGNSS");
    let out = d.path().join("out");
    let mut master = plug(&link);
    let mut cfg = CaptureConfig::new(link.to_str().unwrap(), Some(9600), &out);
    cfg.rotate_bytes = 8 * 1024;
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let worker = std::thread::spawn(move || capture(&cfg, &s2, &mut |_| {}).unwrap());
    std::thread::sleep(Duration::from_millis(300));
    let log = log_bytes();
    let part = &log[..log.len().min(40_000)];
    write_slowly(&mut master, part);
    std::thread::sleep(Duration::from_millis(400));
    stop.store(true, Ordering::Relaxed);
    let stats = worker.join().unwrap();
    let (files, got) = lines_written(&out);
    assert!(files.len() >= 3, "{} files", files.len());
    assert_eq!(stats.files.len(), files.len());
    for f in &files[..files.len() - 1] {
        let n = std::fs::metadata(f).unwrap().len();
        assert!((8 * 1024..8 * 1024 + 4096).contains(&n), "{} bytes", n);
    }
    assert_eq!(got, sent_lines(part));
}
