//! `tessera` ↔ `tessera-gdal`: GDAL runs in a helper process, so that only the commands that
//! need it pay for loading it.
//!
//! Linking GDAL into `tessera` made every start of every command load and relocate ~110 shared
//! libraries: 36 ms of CPU (`perf stat -r 20 tessera --version`: 39.7 ms against 1.8 ms without
//! GDAL), a tenth of a 10^6-fix epoch. Now `tessera` has no GDAL at all; the GIS formats (vector
//! export, GeoTIFF/COG, places from OGR sources and the GDAL release in the places cache key) are
//! requests to `tessera-gdal` (src/gdal_main.rs, the same package's second binary), started on
//! first use and kept for the rest of the command.
//!
//! **Where the helper is:** `$TESSERA_GDAL` when set, else `tessera-gdal` next to this
//! executable (where `cargo build` and `cargo install` put it), else, for cargo's test binaries
//! in `target/<profile>/deps/`, the one in `target/<profile>/`.
//!
//! **Protocol** (`PROTOCOL`, checked on both sides): the helper is started with the argument
//! `--serve-v1` and speaks first. Each message is a frame: its length as 8 bytes little-endian,
//! then the message as CBOR (RFC 8949, serde's data model through `ciborium`; floats keep their
//! exact bits). The helper sends one [`Hello`], then answers each [`Request`] on its stdin with
//! one [`Response`]; it exits when its stdin closes. Paths travel as their bytes and are
//! resolved in the helper, which inherits this process's directory and environment (GDAL itself
//! takes paths as UTF-8 text: a directory whose name is not UTF-8 fails there, with GDAL's
//! message). Its stderr is ours: GDAL's warnings appear there, its failures come back in the
//! answers (`tessera_gis::capture_gdal_messages`).
//!
//! **Failures:** a helper that does not greet within 60 s, or greets with anything but a short
//! [`Hello`] of this protocol, is refused as "not a tessera-gdal helper"; one that stops
//! answering is reported with how it ended (exit status or signal) — writing to it never ends
//! `tessera` by SIGPIPE — and the temporaries it left beside the output are removed. The helper
//! is killed when `tessera` is (`PR_SET_PDEATHSIG`), so a cancelled export writes nothing.

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use tessera::gis::raster::Grid;
use tessera::gis::{Feature, FieldKind};
use tessera::places::shapes::Shape;

/// The protocol version, in the argument the helper is started with and in its [`Hello`].
pub const PROTOCOL: u32 = 1;

/// The argument that starts the helper's request loop.
pub const SERVE_ARG: &str = "--serve-v1";

/// The helper's first message.
#[derive(Debug, Serialize, Deserialize)]
pub struct Hello {
    /// [`PROTOCOL`] of the helper's build.
    pub protocol: u32,
    /// `GDAL <release> (<date>)`, e.g. `GDAL 3.6.2 (2023-01-02)`: part of the places cache key.
    pub gdal: String,
}

/// One request. Borrowed on the sending side (a layer is not copied to be sent), owned on the
/// receiving side.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request<'a> {
    /// Write a vector layer at `path` (atomically) in `format` (not `Parquet`).
    WriteLayer {
        /// The output path's bytes.
        path: Vec<u8>,
        /// The format.
        format: crate::gis::ExportFormat,
        /// The layer name.
        name: Cow<'a, str>,
        /// The fields: name and type.
        fields: Vec<(String, FieldKind)>,
        /// The features, in order.
        features: Cow<'a, [Feature]>,
    },
    /// Write a count grid at `path` as GeoTIFF, or Cloud-Optimized GeoTIFF with `cog`.
    WriteRaster {
        /// The output path's bytes.
        path: Vec<u8>,
        /// The grid.
        grid: Cow<'a, Grid>,
        /// Cloud-Optimized GeoTIFF.
        cog: bool,
    },
    /// The BLAKE3 of the helper's own executable (with the GDAL release, what identifies how
    /// places sources were read: the places cache key; `tessera`'s own hash does not cover the
    /// helper's code).
    Build,
    /// Read the features of `layer` (`None`: the first layer) of any OGR source at `path`.
    ReadLayer {
        /// The source path's bytes.
        path: Vec<u8>,
        /// The layer.
        layer: Option<String>,
    },
}

/// One answer.
#[derive(Debug, Serialize, Deserialize)]
pub enum Response {
    /// A `WriteLayer` or `WriteRaster` was written.
    Written,
    /// The features a `ReadLayer` read.
    Shapes(Vec<Shape>),
    /// The helper executable's BLAKE3, hex.
    Build(String),
    /// The request failed; the whole message (file, layer, feature, GDAL's reason).
    Failed(String),
}

/// A path as bytes for a [`Request`].
pub fn path_bytes(p: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    p.as_os_str().as_bytes().to_vec()
}

/// A path from a [`Request`]'s bytes.
pub fn path_from(b: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(b))
}

/// Writes one frame (length, CBOR) and flushes.
///
/// # Errors
/// An I/O error of `w`, or a value serde cannot encode.
pub fn write_frame<T: Serialize>(w: &mut impl Write, value: &T) -> Result<()> {
    let mut body = Vec::new();
    ciborium::into_writer(value, &mut body).map_err(|e| anyhow!("encoding a message: {e}"))?;
    w.write_all(&(body.len() as u64).to_le_bytes())?;
    w.write_all(&body)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame; `None` at a clean end of the stream (before a frame's first byte).
///
/// # Errors
/// An I/O error, a stream that ends inside a frame, or a body that is not the expected message.
pub fn read_frame<T: serde::de::DeserializeOwned>(r: &mut impl Read) -> Result<Option<T>> {
    read_frame_limited(r, MAX_FRAME)
}

/// The longest frame read: 64 GiB (a length beyond it is not a frame of this protocol).
pub const MAX_FRAME: u64 = 1 << 36;

/// The longest greeting: a [`Hello`] is well under 1 KiB.
const MAX_HELLO: u64 = 1 << 16;

/// [`read_frame`] refusing a frame longer than `max` bytes before reading it.
///
/// # Errors
/// As [`read_frame`], and a length over `max`.
pub fn read_frame_limited<T: serde::de::DeserializeOwned>(r: &mut impl Read, max: u64) -> Result<Option<T>> {
    let mut len = [0u8; 8];
    let mut got = 0;
    while got < len.len() {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => bail!("the stream ended inside a frame's length"),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = u64::from_le_bytes(len);
    if len > max {
        bail!("a frame of {len} bytes, over the {max} this protocol allows");
    }
    let mut body = Vec::new();
    let read = r.take(len).read_to_end(&mut body)?;
    if read as u64 != len {
        bail!("the stream ended inside a frame ({read} of {len} bytes)");
    }
    let value = ciborium::from_reader(body.as_slice()).map_err(|e| anyhow!("decoding a message: {e}"))?;
    Ok(Some(value))
}

/// A running helper.
struct Helper {
    path: PathBuf,
    child: Child,
    /// Unbuffered (a frame is written whole from memory): nothing is left to flush into a
    /// closed pipe when a helper is dropped.
    tx: ChildStdin,
    rx: BufReader<ChildStdout>,
    gdal: String,
}

/// Helpers waiting for a request: one per request in flight at most (places sources may be
/// read in parallel), kept until the process exits (a helper exits when its stdin closes).
static IDLE: Mutex<Vec<Helper>> = Mutex::new(Vec::new());

/// Where the helper is (see the module documentation).
fn helper_path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("TESSERA_GDAL").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().context("finding tessera-gdal: this executable's path")?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    let mut tried = vec![dir.join("tessera-gdal")];
    if dir.file_name().is_some_and(|n| n == "deps") {
        tried.push(dir.parent().unwrap_or(dir).join("tessera-gdal"));
    }
    if let Some(p) = tried.iter().find(|p| p.is_file()) {
        return Ok(p.clone());
    }
    bail!(
        "GDAL's formats are read and written by tessera-gdal, which is not next to {} (looked for {}): \
         build both with `cargo build --release -p tessera-cli` (or `cargo install --path crates/tessera-cli`), \
         or name it in TESSERA_GDAL",
        exe.display(),
        tried
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

impl Helper {
    fn start() -> Result<Helper> {
        let path = helper_path()?;
        let from_env = if std::env::var_os("TESSERA_GDAL").is_some_and(|p| !p.is_empty()) {
            " (named by TESSERA_GDAL)"
        } else {
            ""
        };
        let mut command = Command::new(&path);
        command
            .arg(SERVE_ARG)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        die_with_parent(&mut command);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting the GDAL helper {}{from_env}", path.display()))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            bail!("starting the GDAL helper {}: no pipes", path.display());
        };
        let mut helper = Helper {
            path,
            child,
            tx: stdin,
            rx: BufReader::new(stdout),
            gdal: String::new(),
        };
        // It speaks first, so a helper that cannot start (no libgdal) is reported here, before
        // anything is written to a closed pipe.
        if !readable_within(helper.rx.get_ref(), GREETING_TIMEOUT_MS) {
            let secs = GREETING_TIMEOUT_MS / 1000;
            return Err(helper.ended(&format!(
                "without greeting in {secs} s{from_env}: not a tessera-gdal helper?"
            )));
        }
        let hello: Hello = match read_frame_limited(&mut helper.rx, MAX_HELLO) {
            Ok(Some(h)) => h,
            Ok(None) => return Err(helper.ended(&format!("without greeting{from_env}"))),
            Err(e) => {
                let how = format!("with a bad greeting{from_env}: not a tessera-gdal helper? ({e})");
                return Err(helper.ended(&how));
            }
        };
        if hello.protocol != PROTOCOL {
            let _ = helper.child.kill();
            let _ = helper.child.wait();
            bail!(
                "the GDAL helper {} speaks protocol {}, this tessera {PROTOCOL}: build and install both from the same source",
                helper.path.display(),
                hello.protocol
            );
        }
        helper.gdal = hello.gdal;
        Ok(helper)
    }

    /// The error for a helper that stopped answering; waits for it to report how it ended.
    fn ended(mut self, how: &str) -> anyhow::Error {
        let _ = self.child.kill();
        let status = self
            .child
            .wait()
            .map(|s| s.to_string())
            .unwrap_or_else(|e| e.to_string());
        anyhow!("the GDAL helper {} ended {how} ({status})", self.path.display())
    }

    fn exchange(mut self, req: &Request<'_>) -> Result<(Helper, Response)> {
        if let Err(e) = without_sigpipe(|| write_frame(&mut self.tx, req)) {
            return Err(self.ended(&format!("before taking the request ({e})")));
        }
        match read_frame(&mut self.rx) {
            Ok(Some(r)) => Ok((self, r)),
            Ok(None) => Err(self.ended("without an answer")),
            Err(e) => Err(self.ended(&format!("with a bad answer ({e})"))),
        }
    }
}

/// How long a starting helper may take to greet (loading GDAL takes ~40 ms; a cold disk, more).
const GREETING_TIMEOUT_MS: i32 = 60_000;

/// Whether `fd` has something to read (or has reached its end) within `ms` milliseconds.
fn readable_within(fd: &impl std::os::fd::AsRawFd, ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd for the duration of the call.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r >= 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return r > 0;
        }
    }
}

/// The helper is killed when the thread that started it ends (a cancelled or killed `tessera`
/// leaves no helper finishing its file).
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: getpid is async-signal-safe; captured before the fork.
    let parent = unsafe { libc::getpid() };
    // SAFETY: prctl, getppid and _exit are async-signal-safe, as pre_exec requires.
    unsafe {
        command.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// Runs `f` with SIGPIPE blocked in this thread, so that writing to a helper that has gone
/// returns EPIPE (reported) instead of ending `tessera` silently (`output::default_sigpipe`
/// restores SIGPIPE's default action for piped output); a SIGPIPE raised meanwhile is consumed.
fn without_sigpipe<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: signal sets are plain data initialised by sigemptyset/sigaddset; pthread_sigmask
    // and sigtimedwait act on this thread only.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        let out = f();
        let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        while libc::sigtimedwait(&set, std::ptr::null_mut(), &zero) == libc::SIGPIPE {}
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        out
    }
}

/// Removes what a helper that died while writing left: its temporaries beside the output
/// (`.<name>.tmp-<helper pid>-…`, files or directories; `tessera-gis` names them so).
fn remove_temps(req: &Request<'_>, pid: u32) {
    use std::os::unix::ffi::OsStrExt;
    let (Request::WriteLayer { path, .. } | Request::WriteRaster { path, .. }) = req else {
        return;
    };
    let path = path_from(path);
    let Some(name) = path.file_name() else { return };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut prefix = b".".to_vec();
    prefix.extend_from_slice(name.as_bytes());
    prefix.extend_from_slice(format!(".tmp-{pid}-").as_bytes());
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        if e.file_name().as_bytes().starts_with(&prefix) {
            let p = e.path();
            let _ = std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p));
        }
    }
}

/// An idle helper, or a new one.
fn take() -> Result<Helper> {
    let idle = IDLE.lock().unwrap_or_else(|p| p.into_inner()).pop();
    match idle {
        Some(h) => Ok(h),
        None => Helper::start(),
    }
}

fn give_back(h: Helper) {
    IDLE.lock().unwrap_or_else(|p| p.into_inner()).push(h);
}

/// Ends the idle helpers before this process exits: each one's stdin is closed (it exits at
/// the end of its input) and it is waited for, up to 5 s, then killed. Without this they were
/// left to exit after `tessera`, as orphans for PID 1 to reap (in a container whose PID 1 does
/// not, as zombies).
pub fn shutdown() {
    let idle = std::mem::take(&mut *IDLE.lock().unwrap_or_else(|p| p.into_inner()));
    for Helper { mut child, tx, .. } in idle {
        drop(tx);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while matches!(child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        if matches!(child.try_wait(), Ok(None)) {
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

/// Sends `req` to a helper and returns its answer; a `Failed` answer is an error carrying the
/// helper's message.
///
/// # Errors
/// The helper cannot be found or started, stops answering, or the request failed.
pub fn call(req: &Request<'_>) -> Result<Response> {
    let h = take()?;
    let pid = h.child.id();
    let (h, resp) = h.exchange(req).inspect_err(|_| remove_temps(req, pid))?;
    give_back(h);
    match resp {
        Response::Failed(message) => Err(anyhow!(message)),
        r => Ok(r),
    }
}

/// What reads places through the helper: `GDAL <release> (<date>); tessera-gdal <BLAKE3 of
/// the helper executable>`, asked once per process.
///
/// # Errors
/// The helper cannot be found, started or hashed.
pub fn reader_id() -> Result<String> {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if let Some(id) = ID.get() {
        return Ok(id.clone());
    }
    let (h, resp) = take()?.exchange(&Request::Build)?;
    let gdal = h.gdal.clone();
    give_back(h);
    let id = match resp {
        Response::Build(b) => format!("{gdal}; tessera-gdal {b}"),
        Response::Failed(m) => bail!("the GDAL helper's executable: {m}"),
        other => bail!("the GDAL helper answered {other:?} to Build"),
    };
    Ok(ID.get_or_init(|| id).clone())
}
