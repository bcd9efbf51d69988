//! `tessera capture`: read NMEA from a GNSS receiver on a serial port, validate each sentence as
//! it arrives, and append it with its receive time (BlackVue framing `[unix_ms]$GP...`, which
//! ingest reads) to rotating files. Files being written end in `.part` and are renamed when
//! rotated or closed; every line is flushed as it is written, so a crash or an unplugged device
//! loses nothing already received. When the port disappears (USB unplug) capture reopens it
//! until it comes back.

use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tessera::ingest::nmea::{check_line, LineCheck};

/// Rates tried by `--baud auto`, most common first.
pub const AUTO_BAUDS: [u32; 7] = [9600, 4800, 38400, 115200, 19200, 57600, 230400];

/// What to capture and how.
#[derive(Debug, Clone)]
pub struct CaptureConfig {
    /// Serial device path.
    pub port: String,
    /// Fixed rate, or `None` for auto-detection.
    pub baud: Option<u32>,
    /// Output directory.
    pub out: PathBuf,
    /// Start a new file after this long.
    pub rotate_after: Duration,
    /// Start a new file at this size.
    pub rotate_bytes: u64,
    /// Wait between attempts to reopen a vanished port.
    pub reconnect_every: Duration,
    /// How long `--baud auto` listens at each rate.
    pub probe_for: Duration,
    /// fsync at most this often (and at every rotation and at the end).
    pub sync_every: Duration,
}

impl CaptureConfig {
    /// Defaults: rotate hourly or at 64 MiB, reconnect every second, probe 2.5 s per rate.
    pub fn new(port: &str, baud: Option<u32>, out: &Path) -> Self {
        CaptureConfig {
            port: port.to_string(),
            baud,
            out: out.to_path_buf(),
            rotate_after: Duration::from_secs(3600),
            rotate_bytes: 64 << 20,
            reconnect_every: Duration::from_secs(1),
            probe_for: Duration::from_millis(2500),
            sync_every: Duration::from_secs(5),
        }
    }
}

/// Running totals, also the final summary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CaptureStats {
    /// Lines received.
    pub lines: u64,
    /// Sentences of a used type with a good checksum.
    pub valid: u64,
    /// Rejected lines by reason.
    pub rejected: BTreeMap<String, u64>,
    /// Ignored sentence types.
    pub ignored: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Finished files.
    pub files: Vec<PathBuf>,
    /// Times the port was reopened after vanishing.
    pub reconnects: u64,
    /// Rate in use.
    pub baud: Option<u32>,
    /// Last GGA fix quality (0 = none).
    pub fix_quality: Option<u8>,
    /// Last GGA satellites.
    pub sats: Option<u32>,
    /// Last GGA HDOP.
    pub hdop: Option<f32>,
    /// The port is open now.
    pub connected: bool,
}

impl CaptureStats {
    /// One status line for people.
    pub fn line(&self) -> String {
        let fix = match self.fix_quality {
            None => "no GGA yet".to_string(),
            Some(0) => "NO FIX".to_string(),
            Some(q) => format!("fix q{q}"),
        };
        format!(
            "{} | {} sats {} hdop {} | lines {} valid {} rejected {} | {} files, {} reconnects",
            if self.connected {
                format!("{} baud", self.baud.map_or("?".into(), |b| b.to_string()))
            } else {
                "port gone, waiting".into()
            },
            fix,
            self.sats.map_or("-".into(), |s| s.to_string()),
            self.hdop.map_or("-".into(), |h| format!("{h:.1}")),
            self.lines,
            self.valid,
            self.rejected.values().sum::<u64>(),
            self.files.len(),
            self.reconnects
        )
    }
}

/// Capture failures that stop the capture (a vanished port does not: it is waited for).
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// Output could not be written.
    #[error("{path}: {source}")]
    Output {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// No rate produced valid sentences.
    #[error("--baud auto: no valid NMEA at any of {0:?} on {1}")]
    NoBaud(Vec<u32>, String),
}

struct OutFile {
    part: PathBuf,
    done: PathBuf,
    file: std::fs::File,
    opened: Instant,
    size: u64,
    last_sync: Instant,
}

fn out_err(p: &Path) -> impl FnOnce(std::io::Error) -> CaptureError + '_ {
    move |source| CaptureError::Output {
        path: p.display().to_string(),
        source,
    }
}

impl OutFile {
    fn open(dir: &Path, seq: &mut u32) -> Result<OutFile, CaptureError> {
        std::fs::create_dir_all(dir).map_err(out_err(dir))?;
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        loop {
            *seq += 1;
            let done = dir.join(format!("capture-{stamp}-{:04}.gps", *seq));
            let part = done.with_extension("gps.part");
            if done.exists() || part.exists() {
                continue;
            }
            let file = std::fs::OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(&part)
                .map_err(out_err(&part))?;
            let now = Instant::now();
            return Ok(OutFile {
                part,
                done,
                file,
                opened: now,
                size: 0,
                last_sync: now,
            });
        }
    }

    fn write_line(&mut self, received_ms: i64, line: &[u8], sync_every: Duration) -> Result<u64, CaptureError> {
        let mut buf = format!("[{received_ms}]").into_bytes();
        buf.extend_from_slice(line);
        buf.push(b'\n');
        self.file.write_all(&buf).map_err(out_err(&self.part))?;
        self.size += buf.len() as u64;
        if self.last_sync.elapsed() >= sync_every {
            self.file.sync_data().map_err(out_err(&self.part))?;
            self.last_sync = Instant::now();
        }
        Ok(buf.len() as u64)
    }

    fn close(self) -> Result<PathBuf, CaptureError> {
        self.file.sync_all().map_err(out_err(&self.part))?;
        std::fs::rename(&self.part, &self.done).map_err(out_err(&self.part))?;
        if let Some(d) = self.done.parent() {
            let _ = std::fs::File::open(d).and_then(|f| f.sync_all());
        }
        Ok(self.done)
    }
}

fn handle_line(stats: &mut CaptureStats, raw: &[u8]) {
    let text = String::from_utf8_lossy(raw);
    stats.lines += 1;
    match check_line(&text) {
        LineCheck::Sentence { kind, .. } => {
            stats.valid += 1;
            if kind == "GGA" {
                let s = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
                let s = &s[s.find('$').unwrap_or(0)..];
                if let Ok(nmea::ParseResult::GGA(g)) = nmea::parse_str(s) {
                    stats.fix_quality = Some(g.fix_type.map_or(0, |f| if f.is_valid() { 1 } else { 0 }));
                    stats.sats = g.fix_satellites;
                    stats.hdop = g.hdop;
                }
            }
        }
        LineCheck::Ignored(_) => stats.ignored += 1,
        LineCheck::Rejected(r, _) => *stats.rejected.entry(r.to_string()).or_default() += 1,
        LineCheck::Blank | LineCheck::Comment => {}
    }
}

fn open_port(path: &str, baud: u32) -> Option<Port> {
    serialport::new(path, baud)
        .timeout(Duration::from_millis(100))
        .open()
        .ok()
}

type Port = Box<dyn serialport::SerialPort>;

/// Listen at each rate until a sentence with a good checksum arrives; returns the rate, the open
/// port and every byte read at that rate (nothing received at the right rate is dropped).
fn detect_baud(cfg: &CaptureConfig, stop: &AtomicBool) -> Result<Option<(u32, Port, Vec<u8>)>, CaptureError> {
    for &b in &AUTO_BAUDS {
        let Some(mut port) = open_port(&cfg.port, b) else {
            return Ok(None);
        };
        let t = Instant::now();
        let mut line = Vec::new();
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        while t.elapsed() < cfg.probe_for && !stop.load(Ordering::Relaxed) {
            match port.read(&mut buf) {
                Ok(n) => {
                    seen.extend_from_slice(&buf[..n]);
                    for &c in &buf[..n] {
                        if c == b'\n' {
                            if matches!(check_line(&String::from_utf8_lossy(&line)), LineCheck::Sentence { .. }) {
                                return Ok(Some((b, port, seen)));
                            }
                            line.clear();
                        } else if line.len() < 4096 {
                            line.push(c);
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return Ok(None),
            }
        }
    }
    Err(CaptureError::NoBaud(AUTO_BAUDS.to_vec(), cfg.port.clone()))
}

/// The rotating output files: a line opens the next file when none is open; a file past its age
/// or size is closed before the next read.
struct Output<'a> {
    cfg: &'a CaptureConfig,
    seq: u32,
    file: Option<OutFile>,
}

impl Output<'_> {
    /// Write one received line (with its receive time) and count it.
    fn line(&mut self, stats: &mut CaptureStats, raw: &[u8]) -> Result<(), CaptureError> {
        if self.file.is_none() {
            self.file = Some(OutFile::open(&self.cfg.out, &mut self.seq)?);
        }
        let f = self.file.as_mut().expect("just opened");
        stats.bytes += f.write_line(crate::now_ms(), raw, self.cfg.sync_every)?;
        handle_line(stats, raw);
        Ok(())
    }

    /// Close the current file when it is older or bigger than the rotation limits.
    fn rotate_if_due(&mut self, stats: &mut CaptureStats) -> Result<(), CaptureError> {
        let due = self
            .file
            .as_ref()
            .is_some_and(|f| f.opened.elapsed() >= self.cfg.rotate_after || f.size >= self.cfg.rotate_bytes);
        if due {
            stats.files.push(self.file.take().expect("checked").close()?);
        }
        Ok(())
    }
}

/// Capture until `stop` is set. `status` is called about once a second and at every change of
/// connection state.
pub fn capture(
    cfg: &CaptureConfig,
    stop: &AtomicBool,
    status: &mut dyn FnMut(&CaptureStats),
) -> Result<CaptureStats, CaptureError> {
    let mut stats = CaptureStats {
        baud: cfg.baud,
        ..Default::default()
    };
    let mut out = Output {
        cfg,
        seq: 0,
        file: None,
    };
    let mut line: Vec<u8> = Vec::new();
    let mut last_status = Instant::now();
    let mut first_open = true;
    let mut buf = [0u8; 4096];
    'outer: while !stop.load(Ordering::Relaxed) {
        // (Re)open the port.
        let mut pending: Vec<u8> = Vec::new();
        let opened = if stats.baud.is_none() {
            detect_baud(cfg, stop)?.map(|(b, port, seen)| {
                stats.baud = Some(b);
                pending = seen;
                port
            })
        } else {
            open_port(&cfg.port, stats.baud.unwrap_or(9600))
        };
        let Some(mut port) = opened else {
            status(&stats);
            std::thread::sleep(cfg.reconnect_every);
            continue;
        };
        if !first_open {
            stats.reconnects += 1;
        }
        first_open = false;
        stats.connected = true;
        status(&stats);
        loop {
            if stop.load(Ordering::Relaxed) {
                break 'outer;
            }
            out.rotate_if_due(&mut stats)?;
            let read = if pending.is_empty() {
                port.read(&mut buf)
            } else {
                let n = pending.len().min(buf.len());
                buf[..n].copy_from_slice(&pending[..n]);
                pending.drain(..n);
                Ok(n)
            };
            match read {
                Ok(0) => {}
                Ok(n) => {
                    for &c in &buf[..n] {
                        if c == b'\n' {
                            let raw = std::mem::take(&mut line);
                            out.line(&mut stats, raw.strip_suffix(b"\r").unwrap_or(&raw))?;
                        } else if line.len() < 1 << 16 {
                            line.push(c);
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut || e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => {
                    // The device is gone (unplugged, pty closed). A partial line is written as
                    // received (ingest will call it truncated) so it is neither lost nor glued to
                    // the first bytes after the reconnect.
                    if !line.is_empty() {
                        out.line(&mut stats, &std::mem::take(&mut line))?;
                    }
                    stats.connected = false;
                    status(&stats);
                    break;
                }
            }
            if last_status.elapsed() >= Duration::from_secs(1) {
                status(&stats);
                last_status = Instant::now();
            }
        }
        drop(port);
        std::thread::sleep(cfg.reconnect_every);
    }
    if !line.is_empty() {
        out.line(&mut stats, &line)?;
    }
    if let Some(f) = out.file.take() {
        stats.files.push(f.close()?);
    }
    stats.connected = false;
    status(&stats);
    Ok(stats)
}
