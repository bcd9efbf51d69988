//! The lake: a directory of content-addressed sources, their fixes and rejection reports, and
//! one directory per epoch. Every file is written atomically (temp file, fsync, rename), and an
//! ingest is committed by its metadata file, written last.
//!
//! ```text
//! lake/
//!   sources/<blake3>.<nmea|gpx>   raw bytes as received
//!   sources/<blake3>.json         metadata: device, name, format, line accounting, time range
//!   fixes/<blake3>.parquet        normalized fixes
//!   rejections/<blake3>.parquet   ingest rejection report (only sources with rejected lines)
//!   imu/<blake3>.parquet          IMU readings of camera telemetry (only sources that have them)
//!   epochs/<E>/                   rewards, explain, rejections, coverage, manifest, policy, registry
//! ```

pub mod files;

use crate::ingest::{self, Format, LineCounts};
use crate::registry::valid_device_id;
use crate::tables;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

pub use crate::error::{Error, Result};

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// SHA-256 (lowercase hex) of a file, read in a stream (never whole into memory).
///
/// # Errors
/// [`Error::Io`] naming the file.
///
/// ```
/// # let d = tempfile::tempdir().unwrap();
/// let p = d.path().join("x");
/// std::fs::write(&p, b"abc").unwrap();
/// assert_eq!(tessera::lake::sha256_file(&p).unwrap(), tessera::lake::sha256_hex(b"abc"));
/// ```
pub fn sha256_file(p: &Path) -> Result<String> {
    use sha2::Digest;
    let mut f = fs::File::open(p).map_err(io_err(p))?;
    let mut h = sha2::Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(io_err(p))?;
    Ok(hex::encode(h.finalize()))
}

/// Write `bytes` to `path` atomically: a temp file in the same directory, fsync, rename, fsync of
/// the directory. Readers see the old file or the new one, never a part.
///
/// ```
/// let d = tempfile::tempdir().unwrap();
/// let p = d.path().join("x.txt");
/// tessera::lake::write_atomic(&p, b"hello").unwrap();
/// assert_eq!(std::fs::read(&p).unwrap(), b"hello");
/// ```
///
/// # Errors
/// [`Error::Io`] naming the file or directory that could not be written, synced or renamed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_with(path, bytes)?;
    fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(io_err(path))?;
    tmp.persist(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        source: e.error,
    })?;
    sync_dir(parent_dir(path))
}

/// The directory a path's file lives in: `.` for a bare file name (`Path::parent` gives `""`).
///
/// ```
/// use std::path::Path;
/// assert_eq!(tessera::lake::parent_dir(Path::new("cells.parquet")), Path::new("."));
/// assert_eq!(tessera::lake::parent_dir(Path::new("out/cells.parquet")), Path::new("out"));
/// ```
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A temp file builder whose files get the process umask, like any file a command creates
/// (`tempfile` alone makes them 0600). Secret keys are written elsewhere, with 0600.
fn temp_builder() -> tempfile::Builder<'static, 'static> {
    let mut b = tempfile::Builder::new();
    b.prefix(".tmp-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(fs::Permissions::from_mode(0o666));
    }
    b
}

/// One source to ingest: who sent it, its file name, its bytes, when the network received it.
#[derive(Debug, Clone, Copy)]
pub struct Upload<'a> {
    /// Device id.
    pub device: &'a str,
    /// File name it came from.
    pub name: &'a str,
    /// The bytes as received.
    pub bytes: &'a [u8],
    /// When the network received it (UTC ms); `None`: now, when it is ingested.
    pub received_at_ms: Option<i64>,
    /// The file `bytes` were read from, if any: the lake's raw copy is then made by the kernel
    /// from the file (`temp_early_from`) instead of written from memory.
    pub(crate) path: Option<&'a Path>,
    /// `path` is a temp file of this lake's `sources/` that `bytes` map ([`Lake::staged_copy`]):
    /// the raw copy is a hard link to it.
    pub(crate) staged: bool,
}

impl<'a> Upload<'a> {
    /// An upload received now.
    ///
    /// ```
    /// let u = tessera::lake::Upload::new("car-1", "a.nmea", b"").received_at(1_794_824_100_000);
    /// assert_eq!(u.received_at_ms, Some(1_794_824_100_000));
    /// ```
    pub fn new(device: &'a str, name: &'a str, bytes: &'a [u8]) -> Self {
        Upload {
            device,
            name,
            bytes,
            received_at_ms: None,
            path: None,
            staged: false,
        }
    }

    /// The same upload, received at `ms` (UTC).
    ///
    /// ```
    /// // see `Upload::new`
    /// ```
    pub fn received_at(self, ms: i64) -> Self {
        Upload {
            received_at_ms: Some(ms),
            ..self
        }
    }
}

/// The wall clock, UTC ms: the receipt time of an upload that names none.
fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

enum Plan {
    Stage,
    SameAs(usize),
    Done(Box<IngestOutcome>),
    Failed(Error),
}

/// Who sent a source and what it is, for staging.
struct Source<'a> {
    device: &'a str,
    name: &'a str,
    hash: &'a str,
    format: Format,
    len: u64,
    received_at_ms: i64,
}

/// Whether a file starts like an MP4 (its first box type at bytes 4..8).
pub fn is_mp4_file(path: &Path) -> bool {
    let mut head = [0u8; 8];
    fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok_and(|_| Format::detect(&head) == Format::Mp4)
}

/// A copy of the regular file `src` in a temp file beside `dest`, streamed (not fsync'd), open
/// for reading and writing. A named pipe is opened without waiting for a writer and refused,
/// like any other non-file.
fn temp_copy(src: &Path, dest: &Path) -> Result<tempfile::NamedTempFile> {
    let mut open = fs::OpenOptions::new();
    open.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut open, libc::O_NONBLOCK);
    let mut from = open.open(src).map_err(io_err(src))?;
    if !from.metadata().map_err(io_err(src))?.is_file() {
        return Err(io_err(src)(std::io::Error::other("not a regular file")));
    }
    let dir = parent_dir(dest);
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut tmp = temp_builder().tempfile_in(dir).map_err(io_err(dir))?;
    // File to file, so that std's `io::copy` can use `copy_file_range` (with the `NamedTempFile`
    // itself as the writer it fell back to a read/write loop through an 8 KiB buffer).
    std::io::copy(&mut from, tmp.as_file_mut()).map_err(io_err(dest))?;
    Ok(tmp)
}

/// A file's bytes as the lake will store them ([`Lake::staged_copy`]): a temp file in the
/// lake's `sources/`, mapped read-only.
pub(crate) struct StagedCopy {
    /// The temp file (removed when dropped).
    pub tmp: tempfile::TempPath,
    /// Its bytes.
    pub map: memmap2::Mmap,
}

/// A parsed upload whose files are written under temp names, waiting for the group commit.
struct Staged {
    meta: SourceMeta,
    data: Vec<(tempfile::TempPath, PathBuf)>,
    meta_file: (tempfile::TempPath, PathBuf),
    /// Some data file had its writeback started early ([`temp_early`]).
    early: bool,
}

/// `bytes` in a temp file beside `dest` (not fsync'd; removed if dropped before the rename).
fn temp_with(dest: &Path, bytes: &[u8]) -> Result<tempfile::TempPath> {
    Ok(temp_file(dest, bytes)?.into_temp_path())
}

/// `bytes` in an open temp file beside `dest`.
fn temp_file(dest: &Path, bytes: &[u8]) -> Result<tempfile::NamedTempFile> {
    let dir = parent_dir(dest);
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut tmp = temp_builder().tempfile_in(dir).map_err(io_err(dir))?;
    tmp.write_all(bytes).map_err(io_err(dest))?;
    Ok(tmp)
}

/// [`temp_with`] for a staged ingest file, with its writeback started at once when it is large
/// ([`start_writeback`]); `true` when it was. A commit of staged files of which any was started
/// early syncs with `syncfs` on the lake root opened *before* staging ([`Lake::sync_files`]).
fn temp_early(dest: &Path, bytes: &[u8]) -> Result<(tempfile::TempPath, bool)> {
    let tmp = temp_file(dest, bytes)?;
    let early = start_writeback(tmp.as_file(), bytes.len());
    Ok((tmp.into_temp_path(), early))
}

/// [`temp_early`] of `bytes`, which were read from the file `src`: the temp is made by the
/// kernel from `src` (`std::io::copy` of one file into another is `copy_file_range` on Linux:
/// no pass through this process's memory) and then compared with `bytes`, so that what the lake
/// stores is exactly what was hashed and parsed. If the copy fails or differs (`src` changed or
/// went away since it was read, or is not a regular file) `bytes` are written instead.
///
/// Why: on this project's 2-core VMs, `write` of a source from memory costs 3–9 s of system
/// time per 1.5 GB, against ~1 s for the copy plus the comparison (`tessera ingest --tree` of
/// the 10^7-fix NMEA fleet, alternated runs; benches/HISTORY.md, twenty-eighth round).
fn temp_early_from(src: &Path, dest: &Path, bytes: &[u8]) -> Result<(tempfile::TempPath, bool)> {
    match temp_copy(src, dest) {
        Ok(tmp) if same_bytes(tmp.as_file(), bytes).unwrap_or(false) => {
            let early = start_writeback(tmp.as_file(), bytes.len());
            Ok((tmp.into_temp_path(), early))
        }
        _ => temp_early(dest, bytes),
    }
}

/// Whether the file `f` holds exactly `bytes`, read back from its start 1 MiB at a time
/// (comparing in place through a memory map measured the same).
fn same_bytes(mut f: &fs::File, bytes: &[u8]) -> std::io::Result<bool> {
    use std::io::{Read, Seek};
    f.rewind()?;
    if f.metadata()?.len() != bytes.len() as u64 {
        return Ok(false);
    }
    let mut buf = vec![0u8; (1 << 20).min(bytes.len()).max(1)];
    let mut at = 0;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(at == bytes.len());
        }
        if bytes.get(at..at + n) != Some(&buf[..n]) {
            return Ok(false);
        }
        at += n;
    }
}

/// Files at least this large start their writeback as soon as they are written.
const EARLY_WRITEBACK_BYTES: usize = 256 << 10;

/// Ask the kernel to start writing a just-written file of `len` bytes to disk now (Linux
/// `sync_file_range(SYNC_FILE_RANGE_WRITE)`: asynchronous, no durability promise). A group commit
/// writes hundreds of MB before its one `syncfs`; left to the kernel, the dirty pages wait for
/// that call (the dirty limits of a large machine are GBs), and both cores then sit idle while
/// the disk catches up. Started early, the disk writes while the next files are parsed. Only a
/// hint: durability still comes from the commit's `syncfs`, on a descriptor of the lake root
/// opened before the files were written, which reports any writeback error since (Linux
/// `errseq`), early or not; a failure of the call itself is ignored. `true` when started.
fn start_writeback(file: &fs::File, len: usize) -> bool {
    #[cfg(target_os = "linux")]
    if len >= EARLY_WRITEBACK_BYTES {
        use std::os::fd::AsRawFd;
        // SAFETY: a descriptor we own for the duration of the call; the call only starts I/O.
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
        return true;
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, len);
    false
}

/// A temp hard link beside `dest` to the staged file `src`; `None` when the file system cannot
/// link (the caller writes a copy).
fn temp_link(src: &Path, dest: &Path) -> Option<tempfile::TempPath> {
    let dir = parent_dir(dest);
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = format!(
        ".tmp-link-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        dest.file_name()?.to_string_lossy()
    );
    let tmp = dir.join(name);
    let _ = fs::remove_file(&tmp);
    fs::hard_link(src, &tmp).ok()?;
    tempfile::TempPath::try_from_path(tmp).ok()
}

/// fsync a directory so a rename in it is durable.
///
/// # Errors
/// [`Error::Io`] naming the directory.
///
/// ```
/// # let d = tempfile::tempdir().unwrap();
/// tessera::lake::sync_dir(d.path()).unwrap();
/// assert!(tessera::lake::sync_dir(&d.path().join("missing")).is_err());
/// ```
pub fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir).and_then(|f| f.sync_all()).map_err(io_err(dir))
}

/// `f` of each item, each on a scoped thread of its own, the results in `items` order (a panic
/// in `f` is resumed here): for a few blocking calls — fsyncs, unlinks — whose waits overlap.
/// Not for CPU work (that belongs on the rayon pool) nor for many items (a thread each).
pub(crate) fn at_once<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    std::thread::scope(|s| {
        let f = &f;
        let running: Vec<_> = items.iter().map(|item| s.spawn(move || f(item))).collect();
        running
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// Remove the directory `dir` and everything in it, its entries each on a thread of their own
/// (a file's blocks and cached pages are freed by whoever unlinks it: ~4 ms one after another
/// for a 10^6-fix epoch's eleven files, ~2 ms at once); the directory itself last.
///
/// # Errors
/// [`Error::Io`] naming the first entry (in directory order) that could not be removed, or the
/// directory.
fn remove_dir_all_at_once(dir: &Path) -> Result<()> {
    let entries: Vec<(PathBuf, bool)> = fs::read_dir(dir)
        .and_then(|rd| {
            rd.map(|e| e.and_then(|e| Ok((e.path(), e.file_type()?.is_dir()))))
                .collect()
        })
        .map_err(io_err(dir))?;
    // At most 16 threads at a time (an epoch has a dozen files; anything else put there waits).
    for chunk in entries.chunks(16) {
        let removed = at_once(chunk, |(path, is_dir)| {
            let r = if *is_dir {
                fs::remove_dir_all(path)
            } else {
                fs::remove_file(path)
            };
            r.map_err(io_err(path))
        });
        removed.into_iter().collect::<Result<()>>()?;
    }
    fs::remove_dir(dir).map_err(io_err(dir))
}

/// The file in a lake's root that the lake's lock is taken on (an empty file): shared by each
/// commit of sources, exclusive by [`Lake::remove_leftovers`] while it removes.
pub const LOCK_FILE: &str = ".lock";

/// A held lake lock (`Lake::lock`): released (the file closed) when dropped.
struct LakeLock {
    _file: fs::File,
}

/// The directories of per-source files (`sources/` holds the raw bytes and the metadata).
pub const SOURCE_DIRS: [&str; 4] = ["sources", "fixes", "rejections", "imu"];

/// What the lake knows about one ingested source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceMeta {
    /// BLAKE3 of the source bytes (hex).
    pub hash: String,
    /// Device that uploaded it.
    pub device: String,
    /// File name it was ingested from.
    pub name: String,
    /// Format.
    pub format: Format,
    /// Size in bytes.
    pub bytes: u64,
    /// Line accounting.
    pub lines: LineCounts,
    /// Accepted fixes.
    pub fixes: u64,
    /// Rejected lines/points.
    pub rejected: u64,
    /// Rejected lines/points by reason.
    pub rejected_by_reason: std::collections::BTreeMap<String, u64>,
    /// When the network received the source (RFC 3339 UTC); absent in lakes written before
    /// receipt times were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at: Option<String>,
    /// IMU samples kept (`imu/<hash>.parquet`); 0 for sources without camera telemetry.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub imu: u64,
    /// How camera telemetry was read (kind, container, clock, axis convention, model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<ingest::telemetry::Telemetry>,
    /// Earliest fix time, UTC ms.
    pub min_time_ms: Option<i64>,
    /// Latest fix time, UTC ms.
    pub max_time_ms: Option<i64>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The result of ingesting one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IngestOutcome {
    /// The source's metadata (the existing one for a duplicate).
    pub meta: SourceMeta,
    /// True when the same bytes were already in the lake (nothing was written).
    pub duplicate: bool,
}

/// A lake directory.
#[derive(Debug, Clone)]
pub struct Lake {
    root: PathBuf,
    batch_rows: usize,
    max_visits: usize,
    score_rows: usize,
    receipt: crate::policy::ReceiptPolicy,
}

/// Default visit budget of an epoch run: about 12.6 million visits held in memory (a list of
/// 40-byte rows, ~0.5 GiB, that never needs to grow past 2^24 of them) before they spill to disk.
pub const DEFAULT_MAX_VISITS: usize = 12 << 20;

/// Default piece size of an epoch's scoring: visits scored at a time (cut at cell boundaries),
/// so that a 10^6-fix epoch (~250 k visits) is scored in a few pieces whose explain rows are
/// encoded while later pieces are scored.
pub const DEFAULT_SCORE_ROWS: usize = 1 << 16;

/// How long nothing must have written to a temp file or staging directory before it is taken
/// for what a killed writer left: an hour, far longer than any commit of a running writer takes
/// (a staged ingest group of 512 MB is written and committed in seconds), so a writer at work
/// on the same lake meanwhile keeps its files in flight.
pub const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);

impl Lake {
    /// Open (and create) a lake; recovers an epoch replacement interrupted by a crash, and
    /// removes the temp files (`.tmp-*`) and epoch staging directories of killed writers once
    /// [`STALE_AFTER`] old (data files renamed in before their source's metadata are left to
    /// [`Lake::remove_leftovers`]: `tessera serve` at start, `tessera ingest --remove-leftovers`).
    ///
    /// # Errors
    /// [`Error::Io`] naming the directory that could not be created or recovered.
    ///
    /// ```
    /// # let d = tempfile::tempdir().unwrap();
    /// let lake = tessera::lake::Lake::open(d.path().join("new-lake")).unwrap();
    /// assert!(lake.root().join("epochs").is_dir() && lake.sources().unwrap().is_empty());
    /// ```
    pub fn open(root: impl Into<PathBuf>) -> Result<Lake> {
        let lake = Lake::attach(root);
        for d in SOURCE_DIRS.iter().chain(&["epochs"]) {
            let p = lake.root.join(d);
            fs::create_dir_all(&p).map_err(io_err(&p))?;
        }
        lake.recover()?;
        Ok(lake)
    }

    /// Open a lake that must already exist: a mistyped path must not create an empty lake and
    /// report on it (or publish an empty epoch into it). Recovery as [`Lake::open`].
    ///
    /// # Errors
    /// [`Error::Invalid`] when `root` has no `sources/` and `epochs/`; as [`Lake::open`].
    ///
    /// ```
    /// # let d = tempfile::tempdir().unwrap();
    /// assert!(tessera::lake::Lake::open_existing(d.path().join("typo")).is_err());
    /// assert!(!d.path().join("typo").exists());
    /// ```
    pub fn open_existing(root: impl Into<PathBuf>) -> Result<Lake> {
        let dir: PathBuf = root.into();
        if !dir.join("epochs").is_dir() || !dir.join("sources").is_dir() {
            return Err(Error::Invalid(format!(
                "{} is not a tessera lake (no sources/ and epochs/ in it); `tessera ingest --lake {}` creates one",
                dir.display(),
                dir.display()
            )));
        }
        Lake::open(dir)
    }

    /// A lake another process is working on (a Spark worker reading the sources of a run its
    /// driver is staging): nothing is created or recovered.
    ///
    /// ```
    /// # let d = tempfile::tempdir().unwrap();
    /// # tessera::lake::Lake::open(d.path()).unwrap();
    /// let lake = tessera::lake::Lake::attach(d.path());
    /// assert!(lake.sources().unwrap().is_empty());
    /// ```
    pub fn attach(root: impl Into<PathBuf>) -> Lake {
        Lake {
            root: root.into(),
            batch_rows: tables::BATCH_ROWS,
            max_visits: DEFAULT_MAX_VISITS,
            score_rows: DEFAULT_SCORE_ROWS,
            receipt: crate::policy::ReceiptPolicy::default(),
        }
    }

    /// Use record batches of `n` rows when writing and reading fixes (a memory/speed knob; no
    /// epoch output depends on it).
    ///
    /// ```
    /// # let d = tempfile::tempdir().unwrap();
    /// let lake = tessera::lake::Lake::open(d.path()).unwrap().with_batch_rows(1024).with_max_visits(1 << 20);
    /// assert_eq!(lake.max_visits(), 1 << 20);
    /// ```
    pub fn with_batch_rows(mut self, n: usize) -> Lake {
        self.batch_rows = n.max(1);
        self
    }

    /// Hold at most `n` visits in memory during an epoch run; beyond that they are spilled to
    /// range buckets in the run's staging directory (a memory/speed knob; no epoch output
    /// depends on it, which the tests check byte for byte).
    ///
    /// ```
    /// let d = tempfile::tempdir().unwrap();
    /// let lake = tessera::lake::Lake::open(d.path()).unwrap().with_max_visits(1000);
    /// assert_eq!(lake.max_visits(), 1000);
    /// ```
    pub fn with_max_visits(mut self, n: usize) -> Lake {
        self.max_visits = n.max(1);
        self
    }

    /// Score an epoch's visits about `n` at a time (pieces cut at cell boundaries; default
    /// [`DEFAULT_SCORE_ROWS`]): a memory/latency knob; no epoch output depends on it, which the
    /// tests check byte for byte.
    ///
    /// ```
    /// # let d = tempfile::tempdir().unwrap();
    /// let lake = tessera::lake::Lake::open(d.path()).unwrap().with_score_rows(4096);
    /// assert_eq!(lake.score_rows(), 4096);
    /// ```
    pub fn with_score_rows(mut self, n: usize) -> Lake {
        self.score_rows = n.max(1);
        self
    }

    /// Check fix times at ingest against this receipt policy (default: the policy's default,
    /// `[receipt]` of `tessera policy`).
    ///
    /// ```
    /// let d = tempfile::tempdir().unwrap();
    /// let p = tessera::policy::ReceiptPolicy { max_future_s: 60, max_age_days: 30 };
    /// let lake = tessera::lake::Lake::open(d.path()).unwrap().with_receipt_policy(p.clone());
    /// assert_eq!(lake.receipt_policy(), &p);
    /// ```
    pub fn with_receipt_policy(mut self, p: crate::policy::ReceiptPolicy) -> Lake {
        self.receipt = p;
        self
    }

    /// The receipt policy ingest applies.
    ///
    /// ```
    /// // see `Lake::with_receipt_policy`
    /// ```
    pub fn receipt_policy(&self) -> &crate::policy::ReceiptPolicy {
        &self.receipt
    }

    /// Remove what a killed writer left behind, unchanged for at least `min_age`: temp files
    /// (`.tmp-*`) in `sources/`, `fixes/`, `rejections/` and `imu/`, and data files
    /// (`<64 hex>.<ext>`) of sources whose metadata never landed (a source exists only once its
    /// `sources/<hash>.json` does, so these were never visible and a re-upload rewrites them).
    /// Returns the paths removed, sorted.
    ///
    /// Only regular files of the lake's own naming are candidates (a subdirectory or
    /// `README.txt` there is left alone), a data file only when its metadata is certainly absent
    /// (an error looking it up keeps the file), and a file's age is from the later of its
    /// modification and (on Unix) status-change times: a new link or restored times (`rsync
    /// -a`, `cp -a`, `tar x` keep the source's old modification time), and on most Linux file
    /// systems a rename, make it young again.
    ///
    /// The removal and writers' commits exclude each other (the lake's lock: `flock` on
    /// [`LOCK_FILE`] in its root, on Linux and a local file system; exclusive here while the
    /// files found are checked again and removed, shared by each commit from its first data file
    /// renamed in to its last metadata file): a commit in flight finishes first and none starts
    /// meanwhile, so a source's data files are never taken between their rename and their
    /// metadata's, nor a file a re-upload renamed over a leftover. A writer still staging is not
    /// waited for: temp files older than `min_age` go (a `min_age` shorter than a writer's
    /// staging takes them from under it), and its commit fails with an error naming the file —
    /// in a group commit, the sources renamed in before that file are stored all the same,
    /// reported with the group's error, and found as duplicates when the client sends them
    /// again. Nothing reported stored is removed. `tessera ingest --remove-leftovers SECONDS`
    /// asks for it; the upload server runs it at start with `Limits::leftover_age`, an hour by
    /// default.
    ///
    /// # Errors
    /// [`Error::Io`] naming the directory that could not be listed or the file that could not be
    /// removed.
    ///
    /// ```
    /// # let d = tempfile::tempdir().unwrap();
    /// let lake = tessera::lake::Lake::open(d.path()).unwrap();
    /// let orphan = format!("fixes/{}.parquet", "ab".repeat(32)); // no sources/abab….json
    /// std::fs::write(d.path().join("fixes/.tmp-abc"), b"x").unwrap();
    /// std::fs::write(d.path().join(&orphan), b"x").unwrap();
    /// std::fs::write(d.path().join("fixes/README.txt"), b"not the lake's").unwrap();
    /// // Both just written: not an hour old.
    /// assert!(lake.remove_leftovers(std::time::Duration::from_secs(3600)).unwrap().is_empty());
    /// let gone = lake.remove_leftovers(std::time::Duration::ZERO).unwrap();
    /// assert_eq!(gone, [d.path().join("fixes/.tmp-abc"), d.path().join(orphan)]);
    /// assert!(d.path().join("fixes/README.txt").exists());
    /// ```
    pub fn remove_leftovers(&self, min_age: std::time::Duration) -> Result<Vec<PathBuf>> {
        // Found without the lock (a long scan holds no commit back), then each one checked
        // again and removed under it: commits in flight finish first and none starts meanwhile,
        // so a source's data files are never taken between their rename and their metadata's.
        let found: Vec<PathBuf> = SOURCE_DIRS
            .iter()
            .map(|d| self.leftovers_in(&self.root.join(d), min_age))
            .collect::<Result<Vec<_>>>()?
            .concat();
        if found.is_empty() {
            return Ok(found);
        }
        let _lock = self.lock(true)?;
        let mut gone = Vec::new();
        for p in found {
            if self.is_leftover(&p, min_age) {
                fs::remove_file(&p).map_err(io_err(&p))?;
                gone.push(p);
            }
        }
        gone.sort();
        Ok(gone)
    }

    /// The files of `dir` that [`Lake::remove_leftovers`] would remove now.
    fn leftovers_in(&self, dir: &Path, min_age: std::time::Duration) -> Result<Vec<PathBuf>> {
        let entries = fs::read_dir(dir).map_err(io_err(dir))?;
        Ok(entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| self.is_leftover(p, min_age))
            .collect())
    }

    /// Whether `p` is a temp file, or a data file whose source has no metadata, unchanged for
    /// `min_age` (a regular file only: a symbolic link is not followed).
    fn is_leftover(&self, p: &Path, min_age: std::time::Duration) -> bool {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let meta = match fs::symlink_metadata(p) {
            Ok(m) if m.is_file() => m,
            _ => return false,
        };
        let orphan = if name.starts_with(".tmp-") {
            true
        } else if let Some(hash) = data_file_hash(&name) {
            let json = self.root.join("sources").join(format!("{hash}.json"));
            matches!(json.try_exists(), Ok(false))
        } else {
            false
        };
        orphan && unchanged_for(&meta) >= min_age
    }

    /// The visit budget of epoch runs.
    ///
    /// ```
    /// // see `Lake::with_batch_rows`
    /// ```
    pub fn max_visits(&self) -> usize {
        self.max_visits
    }

    /// The scoring piece size of epoch runs.
    ///
    /// ```
    /// // see `Lake::with_score_rows`
    /// ```
    pub fn score_rows(&self) -> usize {
        self.score_rows
    }

    /// The lake's root directory.
    ///
    /// ```
    /// # let d = tempfile::tempdir().unwrap();
    /// let lake = tessera::lake::Lake::open(d.path()).unwrap();
    /// assert_eq!(lake.root(), d.path());
    /// assert_eq!(lake.path("registry.csv"), d.path().join("registry.csv"));
    /// assert_eq!(lake.epoch_dir(&"2026-W47".parse().unwrap()), d.path().join("epochs/2026-W47"));
    /// ```
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path of a lake-relative file.
    ///
    /// ```
    /// // see `Lake::root`
    /// ```
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Directory of an epoch's outputs.
    ///
    /// ```
    /// // see `Lake::root`
    /// ```
    pub fn epoch_dir(&self, epoch: &crate::epoch::Epoch) -> PathBuf {
        self.root.join("epochs").join(epoch.to_string())
    }

    /// Ingest one source for a device, received now (see [`Upload::received_at`] and
    /// [`Lake::ingest_batch`] for a given receipt time). Idempotent: the same bytes twice is a no-op reported as a
    /// duplicate (whichever device sends them the second time). Durable when it returns: every
    /// file is fsync'd and renamed in, the metadata last (what an upload server needs per
    /// request); for many sources at once, [`Lake::ingest_batch`] commits them together.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a bad device id, [`Error::NotATrace`] when nothing in the bytes is a trace, I/O errors naming the file.
    ///
    /// ```
    /// # let d = tempfile::tempdir().unwrap();
    /// let lake = tessera::lake::Lake::open(d.path()).unwrap();
    /// let rmc = b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,181126,003.1,W*68\n";
    /// let a = lake.ingest("car-1", "a.nmea", rmc).unwrap();
    /// assert_eq!((a.duplicate, a.meta.fixes), (false, 1));
    /// assert!(lake.ingest("car-2", "b.nmea", rmc).unwrap().duplicate);
    /// let (fixes, _sha) = lake.read_fixes(&a.meta.hash).unwrap();
    /// assert_eq!(fixes.len(), 1);
    /// ```
    pub fn ingest(&self, device: &str, name: &str, bytes: &[u8]) -> Result<IngestOutcome> {
        let mut out = self.ingest_batch(&[Upload::new(device, name, bytes)]);
        out.pop().unwrap_or_else(|| Err(Error::Invalid("empty batch".into())))
    }

    /// Ingest many sources with one group commit: each source is parsed and written to temp
    /// files in parallel, then all of them are made durable together (one `syncfs` on Linux
    /// instead of two fsyncs per file), renamed in, and only then their metadata files — so a
    /// crash at any point leaves each source either fully ingested or absent, exactly as with
    /// [`Lake::ingest`]. One result per upload, in order; a bad upload fails alone. Within the
    /// batch, a repeat of earlier bytes is a duplicate of the first, as if ingested in order.
    ///
    /// ```
    /// use tessera::lake::{Lake, Upload};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let lake = Lake::open(dir.path()).unwrap();
    /// let a = b"$GPGGA,120000.00,5230.000,N,01324.000,E,1,08,0.9,35.0,M,0.0,M,,*6D\n";
    /// let out = lake.ingest_batch(&[
    ///     Upload::new("car-1", "a.nmea", a),
    ///     Upload::new("car 2", "b.nmea", a),
    ///     Upload::new("car-2", "c.nmea", a),
    /// ]);
    /// assert!(!out[0].as_ref().unwrap().duplicate);
    /// assert!(out[1].is_err()); // not a valid device id
    /// assert!(out[2].as_ref().unwrap().duplicate);
    /// assert_eq!(lake.sources().unwrap().len(), 1);
    /// ```
    pub fn ingest_batch(&self, uploads: &[Upload<'_>]) -> Vec<Result<IngestOutcome>> {
        // Opened before anything is staged: its syncfs reports every writeback error from here on.
        match fs::File::open(&self.root) {
            Ok(root) => self.ingest_batch_in(uploads, &root),
            Err(e) => {
                let err = |_| Err(io_err(&self.root)(std::io::Error::new(e.kind(), e.to_string())));
                uploads.iter().map(err).collect()
            }
        }
    }

    /// [`Lake::ingest_batch`] with the lake's root directory `root` opened before anything of
    /// the uploads was written into the lake (a `syncfs` on it reports every writeback error of
    /// the file system since it was opened, Linux `errseq`).
    fn ingest_batch_in(&self, uploads: &[Upload<'_>], root: &fs::File) -> Vec<Result<IngestOutcome>> {
        use rayon::prelude::*;
        // BLAKE3 of each upload with a valid device id.
        let hashes: Vec<Option<String>> = uploads
            .par_iter()
            .map(|u| valid_device_id(u.device).then(|| blake3::hash(u.bytes).to_hex().to_string()))
            .collect();
        // The first upload of each hash not already in the lake is staged; the others are
        // duplicates (of the lake's copy, or of that first upload once it is committed).
        let mut first: std::collections::HashMap<&str, usize> = Default::default();
        let mut plan: Vec<Plan> = Vec::with_capacity(uploads.len());
        for (i, (u, h)) in uploads.iter().zip(&hashes).enumerate() {
            let Some(h) = h else {
                plan.push(Plan::Failed(Error::Invalid(format!(
                    "device id {:?} is not 1-64 characters of A-Z a-z 0-9 . _ : -",
                    u.device
                ))));
                continue;
            };
            let meta_path = self.root.join("sources").join(format!("{h}.json"));
            // An error looking the metadata up is the upload's error, never "not there": staging
            // it again would overwrite a committed source's metadata (its receipt time).
            plan.push(match meta_path.try_exists() {
                Err(e) => Plan::Failed(io_err(&meta_path)(e)),
                Ok(true) => match self.read_meta(&meta_path) {
                    Ok(meta) => Plan::Done(Box::new(IngestOutcome { meta, duplicate: true })),
                    Err(e) => Plan::Failed(e),
                },
                Ok(false) => match first.get(h.as_str()) {
                    Some(j) => Plan::SameAs(*j),
                    None => {
                        first.insert(h, i);
                        Plan::Stage
                    }
                },
            });
        }
        let staged: Vec<Option<Result<Staged>>> = plan
            .par_iter()
            .zip(uploads.par_iter().zip(hashes.par_iter()))
            .map(|(p, (u, h))| match (p, h) {
                (Plan::Stage, Some(h)) => Some(self.stage(u, h)),
                _ => None,
            })
            .collect();
        let ok: Vec<&Staged> = staged.iter().filter_map(|s| s.as_ref()?.as_ref().ok()).collect();
        let committed = self.commit_staged(&ok, root);
        let mut out: Vec<Result<IngestOutcome>> = Vec::with_capacity(uploads.len());
        for (i, (p, s)) in plan.into_iter().zip(staged).enumerate() {
            out.push(match (p, s) {
                (Plan::Done(o), _) => Ok(*o),
                (Plan::Failed(e), _) => Err(e),
                (_, Some(Err(e))) => Err(e),
                (_, Some(Ok(st))) => match &committed {
                    Ok(()) => Ok(IngestOutcome {
                        meta: st.meta,
                        duplicate: false,
                    }),
                    Err(e) => Err(Error::Io {
                        path: self.root.display().to_string(),
                        source: std::io::Error::other(format!("group commit failed: {e}")),
                    }),
                },
                (Plan::SameAs(j), None) => match &out[j] {
                    Ok(o) => Ok(IngestOutcome {
                        meta: o.meta.clone(),
                        duplicate: true,
                    }),
                    Err(e) => Err(Error::Invalid(format!(
                        "same bytes as upload {}, which failed: {e}",
                        j + 1
                    ))),
                },
                (Plan::Stage, None) => Err(Error::Invalid(format!("upload {} was not staged", i + 1))),
            });
        }
        out
    }

    /// The regular, non-empty file `src` copied by the kernel into a temp file of the lake's
    /// `sources/` ([`temp_copy`]: `copy_file_range`, no pass through this process's memory) and
    /// mapped: what is then hashed, parsed and stored (as a hard link to the temp file, see
    /// [`Upload::staged`]) is one snapshot, even if `src` changes meanwhile. Against reading
    /// `src` into memory, copying it in and reading the copy back to compare, this saves two
    /// copies of every byte and the fresh pages of the read buffer (`tessera ingest --tree` of
    /// the 10^7-fix NMEA fleet; benches/HISTORY.md, forty-fifth round). Its writeback is
    /// started only if the source is staged: a duplicate's temp is removed unwritten.
    ///
    /// # Errors
    /// [`Error::Io`] when `src` cannot be opened, is not a regular file or is empty, or the
    /// copy or the mapping fails (the caller then reads `src` into memory).
    pub(crate) fn staged_copy(&self, src: &Path) -> Result<StagedCopy> {
        // (`temp_copy` makes its temp beside a destination: any name in `sources/`.)
        let tmp = temp_copy(src, &self.root.join("sources").join("staged"))?;
        let len = tmp.as_file().metadata().map_err(io_err(src))?.len();
        if len == 0 {
            return Err(io_err(src)(std::io::Error::other("empty file")));
        }
        // SAFETY: a private, read-only mapping of a temp file this process just created in the
        // lake (`O_EXCL`, a random name in `sources/`) and never writes again: its bytes do not
        // change while mapped (a hard link to it is renamed into the lake, the temp name removed;
        // neither touches the bytes). Another program writing into the lake's temp files would
        // break that, as it would break the lake; truncating one would end the process with
        // SIGBUS, as would a read error of the lake's disk on a page of the copy written back,
        // evicted and read again while it is parsed (nothing committed is lost; the temp files
        // go when the lake is next opened an hour later, `Lake::recover`).
        let map = unsafe { memmap2::MmapOptions::new().populate().map(tmp.as_file()) }.map_err(io_err(src))?;
        Ok(StagedCopy {
            tmp: tmp.into_temp_path(),
            map,
        })
    }

    /// Parse one upload and write its files under temp names (not yet durable, not visible).
    fn stage(&self, u: &Upload<'_>, hash: &str) -> Result<Staged> {
        let format = Format::detect(u.bytes);
        let received_at_ms = u.received_at_ms.unwrap_or_else(now_ms);
        let parsed = ingest::parse_received(u.bytes, Some(&self.receipt.at(received_at_ms)));
        if let Some(detail) = ingest::not_a_trace(&parsed) {
            return Err(Error::NotATrace {
                name: u.name.to_string(),
                detail,
            });
        }
        let raw_path = self.root.join("sources").join(format!("{hash}.{}", format.as_str()));
        let (raw, early) = match u.path {
            // Written before staging: the kernel may have started its writeback already, so the
            // commit syncs with `syncfs` (`early`) whether or not it is started here.
            Some(p) if u.staged => match temp_link(p, &raw_path) {
                Some(t) => {
                    if let Ok(f) = fs::File::open(&t) {
                        start_writeback(&f, u.bytes.len());
                    }
                    (t, true)
                }
                None => temp_early(&raw_path, u.bytes)?,
            },
            Some(p) => temp_early_from(p, &raw_path, u.bytes)?,
            None => temp_early(&raw_path, u.bytes)?,
        };
        let src = Source {
            device: u.device,
            name: u.name,
            hash,
            format,
            len: u.bytes.len() as u64,
            received_at_ms,
        };
        self.stage_parsed(&src, parsed, (raw, raw_path, early), Some(u.bytes))
    }

    /// The files of a parsed source under temp names: fixes, rejections, IMU, metadata. `bytes`
    /// (when in memory) lets a Parquet source that already is the fixes file be stored once;
    /// `raw` is the staged raw file, its destination and whether its writeback started early.
    fn stage_parsed(
        &self,
        src: &Source<'_>,
        parsed: ingest::Parsed,
        raw: (tempfile::TempPath, PathBuf, bool),
        bytes: Option<&[u8]>,
    ) -> Result<Staged> {
        let (raw, mut early) = ((raw.0, raw.1), raw.2);
        let (device, hash) = (src.device, src.hash);
        let pq_err = |what: &str| {
            let path = format!("{what}/{hash}.parquet");
            move |source| Error::Parquet { path, source }
        };
        let fixes_pq = tables::to_source_parquet(
            &tables::fixes_schema(),
            &tables::fixes_to_batches_sized(device, &parsed.fixes, self.batch_rows),
        )
        .map_err(pq_err("fixes"))?;
        let fixes_path = self.root.join("fixes").join(format!("{hash}.parquet"));
        // A Parquet source that already is exactly the fixes file is stored once (hard link).
        let fixes = match (bytes == Some(fixes_pq.as_slice()))
            .then(|| temp_link(&raw.0, &fixes_path))
            .flatten()
        {
            Some(t) => t,
            None => {
                let (t, e) = temp_early(&fixes_path, &fixes_pq)?;
                early |= e;
                t
            }
        };
        let rows: Vec<tables::RejectionRow> = parsed
            .rejections
            .iter()
            .map(|r| tables::RejectionRow {
                source: hash.to_string(),
                device: device.to_string(),
                stage: "ingest",
                rejection: r.clone(),
            })
            .collect();
        let mut data = vec![raw, (fixes, fixes_path)];
        // A source without rejections has no report file (one file and one Parquet encode fewer
        // per clean upload; SQL lists the reports of sources whose metadata counts rejections).
        if !rows.is_empty() {
            let rej_pq = tables::to_source_parquet(&tables::rejections_schema(), &[tables::rejections_to_batch(&rows)])
                .map_err(pq_err("rejections"))?;
            let rej_path = self.root.join("rejections").join(format!("{hash}.parquet"));
            data.push((temp_with(&rej_path, &rej_pq)?, rej_path));
        }
        if !parsed.imu.is_empty() {
            let imu_pq = tables::to_source_parquet(&tables::imu_schema(), &tables::imu_to_batches(device, &parsed.imu))
                .map_err(pq_err("imu"))?;
            let imu_path = self.root.join("imu").join(format!("{hash}.parquet"));
            data.push((temp_with(&imu_path, &imu_pq)?, imu_path));
        }
        let meta = SourceMeta {
            hash: hash.to_string(),
            device: device.to_string(),
            name: src.name.to_string(),
            format: src.format,
            bytes: src.len,
            fixes: parsed.fixes.len() as u64,
            rejected: parsed.lines.rejected,
            rejected_by_reason: parsed.rejections.iter().fold(Default::default(), |mut m, r| {
                *m.entry(r.reason.to_string()).or_default() += 1;
                m
            }),
            lines: parsed.lines,
            received_at: Some(ingest::receipt::fmt_ms(src.received_at_ms)),
            imu: parsed.imu.len() as u64,
            telemetry: parsed.telemetry,
            min_time_ms: parsed.fixes.iter().map(|f| f.time_ms).min(),
            max_time_ms: parsed.fixes.iter().map(|f| f.time_ms).max(),
        };
        let json = serde_json::to_vec_pretty(&meta).expect("meta serializes");
        let meta_path = self.root.join("sources").join(format!("{hash}.json"));
        let meta_tmp = temp_with(&meta_path, &json)?;
        Ok(Staged {
            meta,
            data,
            meta_file: (meta_tmp, meta_path),
            early,
        })
    }

    /// Ingest one file from disk, reading a camera video in bounded memory: the file is hashed
    /// in a stream, its telemetry read by seeking ([`ingest::telemetry::parse_mp4`]), and its
    /// bytes copied into the lake in a stream — a 4 GB MP4 never sits in memory. Other formats
    /// are read whole, as [`Lake::ingest`] does — a file of 256 kB or more as a copy in the lake,
    /// mapped (`Lake::staged_copy`). Idempotent like every ingest.
    ///
    /// # Errors
    /// As [`Lake::ingest`], plus [`Error::Io`] naming the file that cannot be read.
    ///
    /// ```
    /// # let d = tempfile::tempdir().unwrap();
    /// let lake = tessera::lake::Lake::open(d.path().join("lake")).unwrap();
    /// let p = d.path().join("a.nmea");
    /// std::fs::write(&p, b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,181126,003.1,W*68\n").unwrap();
    /// let out = lake.ingest_path("car-1", &p, None).unwrap();
    /// assert_eq!(out.meta.fixes, 1);
    /// assert!(lake.ingest_path("car-1", &p, None).unwrap().duplicate);
    /// ```
    pub fn ingest_path(&self, device: &str, path: &Path, received_at_ms: Option<i64>) -> Result<IngestOutcome> {
        let name = path.file_name().unwrap_or_default().to_string_lossy().to_string();
        self.ingest_path_as(device, &name, path, received_at_ms)
    }

    /// [`Lake::ingest_path`] under another file name (an upload server's temp file holding what
    /// a device sent as `name`).
    ///
    /// # Errors
    /// As [`Lake::ingest_path`].
    ///
    /// ```
    /// # let d = tempfile::tempdir().unwrap();
    /// let lake = tessera::lake::Lake::open(d.path().join("lake")).unwrap();
    /// let p = d.path().join(".upload-1");
    /// std::fs::write(&p, b"$GPGGA,120000.00,5230.000,N,01324.000,E,1,08,0.9,35.0,M,0.0,M,,*6D\n").unwrap();
    /// assert_eq!(lake.ingest_path_as("car-1", "trip.nmea", &p, None).unwrap().meta.name, "trip.nmea");
    /// ```
    pub fn ingest_path_as(
        &self,
        device: &str,
        name: &str,
        path: &Path,
        received_at_ms: Option<i64>,
    ) -> Result<IngestOutcome> {
        let name = name.to_string();
        if !is_mp4_file(path) {
            // Opened before the file is copied into the lake (`Lake::staged_copy`).
            let root = fs::File::open(&self.root).map_err(io_err(&self.root))?;
            let held = self.hold(path, valid_device_id(device))?;
            let mut out = self.ingest_batch_in(&[held.upload(device, &name, path, received_at_ms)], &root);
            return out.pop().unwrap_or_else(|| Err(Error::Invalid("empty batch".into())));
        }
        if !valid_device_id(device) {
            return Err(Error::Invalid(format!(
                "device id {device:?} is not 1-64 characters of A-Z a-z 0-9 . _ : -"
            )));
        }
        // Opened before anything is staged: its syncfs reports every writeback error from here on.
        let root = fs::File::open(&self.root).map_err(io_err(&self.root))?;
        // The video is copied into the lake first (by the kernel: `temp_copy`) and everything
        // after reads that copy, which only this process writes: the bytes hashed, parsed and
        // stored are one file's even if `path` changes meanwhile. A duplicate's copy is dropped.
        let mut raw = temp_copy(path, &self.root.join("sources").join("upload.mp4"))?;
        let copy = raw.path().to_path_buf();
        let f = raw.as_file_mut();
        std::io::Seek::rewind(f).map_err(io_err(&copy))?;
        let mut h = blake3::Hasher::new();
        h.update_reader(&mut *f).map_err(io_err(&copy))?;
        let hash = h.finalize().to_hex().to_string();
        let meta_path = self.root.join("sources").join(format!("{hash}.json"));
        if meta_path.try_exists().map_err(io_err(&meta_path))? {
            return Ok(IngestOutcome {
                meta: self.read_meta(&meta_path)?,
                duplicate: true,
            });
        }
        let received_at_ms = received_at_ms.unwrap_or_else(now_ms);
        let parsed = ingest::telemetry::parse_mp4(
            &mut std::io::BufReader::new(&mut *f),
            Some(&self.receipt.at(received_at_ms)),
        );
        if let Some(detail) = ingest::not_a_trace(&parsed) {
            return Err(Error::NotATrace { name, detail });
        }
        let raw_path = self.root.join("sources").join(format!("{hash}.mp4"));
        let len = f.metadata().map_err(io_err(&copy))?.len();
        let src = Source {
            device,
            name: &name,
            hash: &hash,
            format: Format::Mp4,
            len,
            received_at_ms,
        };
        let staged = self.stage_parsed(&src, parsed, (raw.into_temp_path(), raw_path, false), None)?;
        self.commit_staged(&[&staged], &root)?;
        Ok(IngestOutcome {
            meta: staged.meta,
            duplicate: false,
        })
    }

    /// Make staged files durable and visible: data first, metadata last. `root`: the lake root,
    /// opened before the files were staged.
    fn commit_staged(&self, staged: &[&Staged], root: &fs::File) -> Result<()> {
        if staged.is_empty() {
            return Ok(());
        }
        let files: Vec<&tempfile::TempPath> = staged
            .iter()
            .flat_map(|s| s.data.iter().map(|d| &d.0).chain([&s.meta_file.0]))
            .collect();
        self.sync_files(&files, root, staged.iter().any(|s| s.early))?;
        let dirs = SOURCE_DIRS.map(|d| self.root.join(d));
        // From the first data file renamed in to the last metadata file: no leftover sweep.
        let _lock = self.lock(false)?;
        for s in staged {
            for (tmp, dest) in &s.data {
                fs::rename(tmp, dest).map_err(io_err(dest))?;
            }
        }
        for d in &dirs {
            sync_dir(d)?;
        }
        // Everything but the metadata is on disk: until it is renamed in, a source does not
        // exist for the lake (a crash here leaves only files that a rerun rewrites).
        fail::fail_point!("ingest-before-meta");
        for s in staged {
            fs::rename(&s.meta_file.0, &s.meta_file.1).map_err(io_err(&s.meta_file.1))?;
        }
        sync_dir(&dirs[0])
    }

    /// fsync the given files: one `syncfs` of the lake's file system on Linux for a large batch
    /// (one journal commit instead of one per file) or when some file's writeback was started
    /// early (`whole_fs`: an error of a writeback that ran before a per-file `open` + `fsync`
    /// could go unreported; `root`, opened before staging, sees every one since), else one
    /// fsync per file.
    fn sync_files(&self, files: &[&tempfile::TempPath], root: &fs::File, whole_fs: bool) -> Result<()> {
        #[cfg(target_os = "linux")]
        if files.len() > 8 || whole_fs {
            use std::os::fd::AsRawFd;
            // SAFETY: syncfs on a descriptor we own for the duration of the call.
            if unsafe { libc::syncfs(root.as_raw_fd()) } == 0 {
                return Ok(());
            }
            return Err(io_err(&self.root)(std::io::Error::last_os_error()));
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (root, whole_fs);
        for f in files {
            let p: &Path = f;
            fs::File::open(p).and_then(|h| h.sync_all()).map_err(io_err(p))?;
        }
        Ok(())
    }

    /// Store one device's fixes as a Parquet source (what `tessera simulate --scale` does at
    /// scale): the same path as [`Lake::ingest`] of the encoded file, without the text round trip.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let lake = tessera::lake::Lake::open(dir.path()).unwrap();
    /// let fixes = vec![tessera::fix::Fix::new(1_763_000_000_000, 52.5, 13.4)];
    /// let out = lake.ingest_fixes("car-1", "sim.parquet", &fixes).unwrap();
    /// assert_eq!(out.meta.fixes, 1);
    /// assert_eq!(lake.read_fixes(&out.meta.hash).unwrap().0[0].lat, 52.5);
    /// ```
    ///
    /// # Errors
    /// As [`Lake::ingest`].
    pub fn ingest_fixes(&self, device: &str, name: &str, fixes: &[crate::fix::Fix]) -> Result<IngestOutcome> {
        self.ingest(device, name, &self.fixes_source(device, name, fixes)?)
    }

    /// The Parquet source [`Lake::ingest_fixes`] ingests: the fixes (renumbered 1..n as their
    /// "line") in the lake's fixes schema, ready for [`Lake::ingest_batch`].
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let lake = tessera::lake::Lake::open(dir.path()).unwrap();
    /// let fixes = vec![tessera::fix::Fix::new(1_763_000_000_000, 52.5, 13.4)];
    /// let bytes = lake.fixes_source("car-1", "sim.parquet", &fixes).unwrap();
    /// assert_eq!(&bytes[..4], b"PAR1");
    /// ```
    ///
    /// # Errors
    /// [`Error::Data`] when the Parquet encoding fails.
    pub fn fixes_source(&self, device: &str, name: &str, fixes: &[crate::fix::Fix]) -> Result<Vec<u8>> {
        let mut rows: Vec<crate::fix::Fix> = fixes.to_vec();
        for (i, f) in rows.iter_mut().enumerate() {
            f.line = u32::try_from(i + 1).unwrap_or(u32::MAX);
        }
        tables::to_source_parquet(
            &tables::fixes_schema(),
            &tables::fixes_to_batches_sized(device, &rows, self.batch_rows),
        )
        .map_err(|source| Error::Parquet {
            path: name.to_string(),
            source,
        })
    }

    fn read_meta(&self, p: &Path) -> Result<SourceMeta> {
        let bytes = fs::read(p).map_err(io_err(p))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Data {
            path: p.display().to_string(),
            message: e.to_string(),
        })
    }

    /// Every committed source, sorted by hash.
    ///
    /// # Errors
    /// [`Error::Io`]/[`Error::Data`] naming a metadata file that cannot be read or parsed.
    ///
    /// ```
    /// // see `Lake::open`
    /// ```
    pub fn sources(&self) -> Result<Vec<SourceMeta>> {
        let dir = self.root.join("sources");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let p = e.map_err(io_err(&dir))?.path();
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            if name.ends_with(".json") && !name.starts_with('.') {
                out.push(self.read_meta(&p)?);
            }
        }
        out.sort_by(|a, b| a.hash.cmp(&b.hash));
        Ok(out)
    }

    /// The fixes of one source and the SHA-256 of its Parquet file.
    ///
    /// # Errors
    /// [`Error::Io`]/[`Error::Data`] naming the fixes file.
    ///
    /// ```
    /// // see `Lake::ingest`
    /// ```
    pub fn read_fixes(&self, hash: &str) -> Result<(Vec<crate::fix::Fix>, String)> {
        self.read_fixes_as(hash, &tables::FIX_COLUMNS, tables::batch_to_fixes)
    }

    /// [`Lake::read_fixes`] as an epoch reads them: only [`tables::EPOCH_FIX_COLUMNS`] are
    /// decoded (`alt_m` and `course_deg` come back `None`, `talker` `??`); the SHA-256 is the
    /// whole file's, as there.
    ///
    /// # Errors
    /// [`Error::Io`]/[`Error::Data`] naming the fixes file.
    ///
    /// ```
    /// # let d = tempfile::tempdir().unwrap();
    /// # let lake = tessera::lake::Lake::open(d.path()).unwrap();
    /// let mut fix = tessera::fix::Fix::new(1_763_000_000_000, 52.5, 13.4);
    /// fix.alt_m = Some(34.0);
    /// let out = lake.ingest_fixes("car-1", "sim.parquet", &[fix]).unwrap();
    /// let (all, sha) = lake.read_fixes(&out.meta.hash).unwrap();
    /// let (epoch, sha2) = lake.read_epoch_fixes(&out.meta.hash).unwrap();
    /// assert_eq!((all[0].alt_m, epoch[0].alt_m, sha), (Some(34.0), None, sha2));
    /// assert_eq!((epoch[0].time_ms, epoch[0].lat), (all[0].time_ms, all[0].lat));
    /// ```
    pub fn read_epoch_fixes(&self, hash: &str) -> Result<(Vec<crate::fix::Fix>, String)> {
        self.read_fixes_as(hash, &tables::EPOCH_FIX_COLUMNS, tables::batch_to_epoch_fixes)
    }

    /// One source's fixes file: `columns` decoded by `decode`, and the whole file's SHA-256.
    fn read_fixes_as(
        &self,
        hash: &str,
        columns: &[&str],
        decode: fn(&arrow_array::RecordBatch, &mut Vec<crate::fix::Fix>) -> std::result::Result<(), String>,
    ) -> Result<(Vec<crate::fix::Fix>, String)> {
        let p = self.fixes_path(hash);
        let bytes = fs::read(&p).map_err(io_err(&p))?;
        let sha = sha256_hex(&bytes);
        Ok((self.decode_rows(&p, bytes, Some(columns), decode)?, sha))
    }

    fn fixes_path(&self, hash: &str) -> PathBuf {
        self.root.join("fixes").join(format!("{hash}.parquet"))
    }

    /// Ask the kernel to start reading one source's fixes file into the page cache now (Linux
    /// `posix_fadvise(POSIX_FADV_WILLNEED)`: asynchronous readahead), so that a later
    /// [`Lake::read_fixes`] of it does not wait on the disk. An epoch calls it a few sources
    /// ahead of the ones being covered: on a lake larger than the page cache (a 10^9-fix week)
    /// the disk then reads while both cores compute, instead of in turn. Only a hint: a missing
    /// or unreadable file is reported by the read, not here; nothing is returned.
    ///
    /// ```
    /// # let d = tempfile::tempdir().unwrap();
    /// let lake = tessera::lake::Lake::open(d.path()).unwrap();
    /// lake.prefetch_fixes("0123"); // no such source: nothing happens
    /// ```
    pub fn prefetch_fixes(&self, hash: &str) {
        #[cfg(target_os = "linux")]
        if let Ok(f) = fs::File::open(self.fixes_path(hash)) {
            use std::os::fd::AsRawFd;
            // SAFETY: a descriptor we own for the duration of the call; the call only starts I/O.
            unsafe {
                libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_WILLNEED);
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = hash;
    }

    /// The IMU readings of one source (empty when it has none).
    ///
    /// # Errors
    /// [`Error::Io`]/[`Error::Data`] naming the IMU file.
    ///
    /// ```
    /// # let d = tempfile::tempdir().unwrap();
    /// let lake = tessera::lake::Lake::open(d.path()).unwrap();
    /// assert!(lake.read_imu("0123").unwrap().is_empty());
    /// ```
    pub fn read_imu(&self, hash: &str) -> Result<Vec<ingest::telemetry::ImuSample>> {
        let p = self.root.join("imu").join(format!("{hash}.parquet"));
        if !p.exists() {
            return Ok(Vec::new());
        }
        let bytes = fs::read(&p).map_err(io_err(&p))?;
        self.decode_rows(&p, bytes, None, tables::batch_to_imu)
    }

    /// The rows of a per-source Parquet file, decoded batch by batch; errors name the file.
    fn decode_rows<T>(
        &self,
        p: &Path,
        bytes: Vec<u8>,
        columns: Option<&[&str]>,
        decode: fn(&arrow_array::RecordBatch, &mut Vec<T>) -> std::result::Result<(), String>,
    ) -> Result<Vec<T>> {
        let data = |message: String| Error::Data {
            path: p.display().to_string(),
            message,
        };
        let batches =
            tables::from_parquet_columns(bytes.into(), self.batch_rows, columns).map_err(|e| data(e.to_string()))?;
        let mut out = Vec::new();
        for b in &batches {
            decode(b, &mut out).map_err(data)?;
        }
        Ok(out)
    }

    /// Epochs with complete outputs, sorted.
    ///
    /// # Errors
    /// [`Error::Io`] naming `epochs/`.
    ///
    /// ```
    /// # let d = tempfile::tempdir().unwrap();
    /// # let lake = tessera::lake::Lake::open(d.path()).unwrap();
    /// # let fleet = tessera::simulate::simulate(&tessera::simulate::SimConfig { drivers: 4, epochs: 1, trips: 1, minutes: 2, ..Default::default() });
    /// # for f in &fleet.files { lake.ingest(&f.device, &f.name, &f.bytes).unwrap(); }
    /// # let reg = tessera::registry::Registry::parse(fleet.registry_csv.as_bytes(), "r").unwrap();
    /// let e: tessera::epoch::Epoch = "2026-W46".parse().unwrap();
    /// tessera::pipeline::run(&lake, &tessera::pipeline::EpochInputs::new(e, 1000, reg), &tessera::pipeline::no_progress).unwrap();
    /// assert_eq!(lake.epochs().unwrap(), [e]);
    /// ```
    pub fn epochs(&self) -> Result<Vec<crate::epoch::Epoch>> {
        let dir = self.root.join("epochs");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let name = e.map_err(io_err(&dir))?.file_name().to_string_lossy().to_string();
            if let Ok(ep) = name.parse() {
                out.push(ep);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Move a fully written staging directory (each file in it fsynced; this fsyncs the
    /// directory) into place as `epochs/E`, replacing an existing one. A crash at any point
    /// leaves either the old or the new epoch: the old one is parked as `.old-E` until the new
    /// one is in place, and [`Lake::open`] puts it back if needed.
    ///
    /// # Errors
    /// [`Error::Io`] naming the directory that could not be renamed or removed.
    ///
    /// ```
    /// # let d = tempfile::tempdir().unwrap();
    /// let lake = tessera::lake::Lake::open(d.path()).unwrap();
    /// let e: tessera::epoch::Epoch = "2026-W47".parse().unwrap();
    /// let staging = lake.staging_dir(&e).unwrap();
    /// std::fs::write(staging.join("manifest.json"), b"{}").unwrap();
    /// lake.commit_epoch_dir(&staging, &e).unwrap();
    /// assert!(lake.epoch_dir(&e).join("manifest.json").is_file() && !staging.exists());
    /// ```
    pub fn commit_epoch_dir(&self, staging: &Path, epoch: &crate::epoch::Epoch) -> Result<()> {
        let epochs = self.root.join("epochs");
        let dest = self.epoch_dir(epoch);
        let old = epochs.join(format!(".old-{epoch}"));
        if old.exists() {
            fs::remove_dir_all(&old).map_err(io_err(&old))?;
        }
        // The staging directory's entries (its files were fsynced as written, not renamed in
        // one by one) are on disk before it becomes the epoch.
        sync_dir(staging)?;
        fail::fail_point!("commit-before-park");
        if dest.exists() {
            fs::rename(&dest, &old).map_err(io_err(&dest))?;
        }
        fail::fail_point!("commit-after-park");
        fs::rename(staging, &dest).map_err(io_err(staging))?;
        sync_dir(&epochs)?;
        fail::fail_point!("commit-after-move");
        if old.exists() {
            remove_dir_all_at_once(&old)?;
        }
        Ok(())
    }

    /// A fresh staging directory for an epoch's outputs.
    ///
    /// # Errors
    /// [`Error::Io`] naming the directory.
    ///
    /// ```
    /// // see `Lake::commit_epoch_dir`
    /// ```
    pub fn staging_dir(&self, epoch: &crate::epoch::Epoch) -> Result<PathBuf> {
        let epochs = self.root.join("epochs");
        // Unique per call: two runs of one epoch in one process (threads sharing a Spark
        // session) must never share a staging directory.
        static RUN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = epochs.join(format!(".tmp-{epoch}-{}-{n}", std::process::id()));
        if p.exists() {
            fs::remove_dir_all(&p).map_err(io_err(&p))?;
        }
        fs::create_dir_all(&p).map_err(io_err(&p))?;
        Ok(p)
    }

    /// The lake's advisory lock: `flock` on [`LOCK_FILE`] in its root (Linux; nothing
    /// elsewhere), held shared by each commit of sources from the renaming of its data files to
    /// that of its metadata (writers in any process commit side by side), exclusive by
    /// [`Lake::remove_leftovers`] while it removes. Released when the returned guard is dropped.
    /// Guaranteed on a local file system (on NFS, Linux emulates `flock` with POSIX locks).
    fn lock(&self, exclusive: bool) -> Result<LakeLock> {
        let path = self.root.join(LOCK_FILE);
        let opened = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path);
        // A lake this user may not write the lock file of (another user's umask, a read-only
        // mount once it exists): a read-only descriptor takes a `flock` as well.
        let file = opened
            .or_else(|e| fs::File::open(&path).map_err(|_| e))
            .map_err(io_err(&path))?;
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let op = if exclusive { libc::LOCK_EX } else { libc::LOCK_SH };
            // SAFETY: flock on a descriptor this function owns; blocks until granted.
            while unsafe { libc::flock(file.as_raw_fd(), op) } != 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(io_err(&path)(e));
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = exclusive;
        Ok(LakeLock { _file: file })
    }

    fn recover(&self) -> Result<()> {
        let epochs = self.root.join("epochs");
        for e in fs::read_dir(&epochs).map_err(io_err(&epochs))? {
            let p = e.map_err(io_err(&epochs))?.path();
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            if let Some(ep) = name.strip_prefix(".old-") {
                let dest = epochs.join(ep);
                if dest.exists() {
                    fs::remove_dir_all(&p).map_err(io_err(&p))?;
                } else {
                    fs::rename(&p, &dest).map_err(io_err(&p))?;
                }
            } else if name.starts_with(".tmp-") && stale(&p) {
                // Staging of a run that died before its commit: never visible, safe to drop once
                // nothing has written to it for an hour (a fresh one may belong to a run going on
                // right now, in this process or on another machine sharing the lake).
                let _ = fs::remove_dir_all(&p);
            }
        }
        // Temp files of writes that died (killed ingest or server). Only old ones: another
        // process may be writing a fresh one right now.
        for d in SOURCE_DIRS {
            let dir = self.root.join(d);
            let Ok(rd) = fs::read_dir(&dir) else { continue };
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(".tmp-") && stale(&e.path()) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        Ok(())
    }
}

/// SHA-256 of bytes, lowercase hex.
///
/// ```
/// assert_eq!(&tessera::lake::sha256_hex(b"")[..8], "e3b0c442");
/// ```
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The hash a data file of the lake is named by (`<64 lowercase hex>.<ext>`, the metadata
/// `.json` excluded), or `None` for any other name.
fn data_file_hash(name: &str) -> Option<&str> {
    let (hash, ext) = name.split_once('.')?;
    let ours = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (ours && !ext.is_empty() && ext != "json").then_some(hash)
}

/// How long since a file was last modified or had its status changed (a new link, restored
/// times; a rename too on most Linux file systems): from the later of its modification and, on
/// Unix, status-change times; zero when unknown, before 1970 or in the future.
fn unchanged_for(m: &fs::Metadata) -> std::time::Duration {
    let mtime = m.modified().ok();
    #[cfg(unix)]
    let last = {
        use std::os::unix::fs::MetadataExt;
        let ctime = u64::try_from(m.ctime())
            .ok()
            .zip(u32::try_from(m.ctime_nsec()).ok())
            .and_then(|(s, ns)| std::time::UNIX_EPOCH.checked_add(std::time::Duration::new(s, ns)));
        // No status-change time (or one before 1970) is zero age, not the mtime alone.
        mtime.zip(ctime).map(|(t, c)| t.max(c))
    };
    #[cfg(not(unix))]
    let last = mtime;
    last.and_then(|t| t.elapsed().ok()).unwrap_or_default()
}

/// Whether nothing has modified `p` for an hour (a temp file or staging directory whose writer
/// died, not one being written right now).
fn stale(p: &Path) -> bool {
    fs::metadata(p)
        .ok()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > STALE_AFTER)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &[u8] = b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,181126,003.1,W*68\n$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\n";

    /// Every file of a lake's source directories, by relative path, with its bytes.
    fn lake_files(root: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
        let mut out = std::collections::BTreeMap::new();
        for d in ["sources", "fixes", "rejections"] {
            for e in fs::read_dir(root.join(d)).unwrap() {
                let p = e.unwrap().path();
                let name = format!("{d}/{}", p.file_name().unwrap().to_string_lossy());
                out.insert(name, fs::read(&p).unwrap());
            }
        }
        out
    }

    #[test]
    fn rule_a_source_records_its_receipt_and_fixes_after_it_are_rejected() {
        let d = tempfile::tempdir().unwrap();
        let lake = Lake::open(d.path()).unwrap();
        // LOG is from 2026-11-18T12:35:19Z; received a day before that.
        let at = 1_795_005_000_000 - 86_400_000;
        let out = lake.ingest_batch(&[Upload::new("car-1", "a.nmea", LOG).received_at(at)]);
        let meta = &out[0].as_ref().unwrap().meta;
        assert_eq!(meta.received_at.as_deref(), Some("2026-11-17T12:30:00.000Z"));
        assert_eq!(
            (meta.fixes, meta.rejected_by_reason.get("after_receipt")),
            (0, Some(&2))
        );
        let now = lake.ingest("car-1", "b.nmea", &LOG[..LOG.len() / 2]).unwrap();
        assert!(now.meta.received_at.unwrap().starts_with("20"));
    }

    /// The compression of the first column chunk of a Parquet file.
    fn compression(path: &Path) -> parquet::basic::Compression {
        use parquet::file::reader::FileReader;
        let r = parquet::file::reader::SerializedFileReader::new(fs::File::open(path).unwrap()).unwrap();
        r.metadata().row_group(0).column(0).compression()
    }

    #[test]
    fn rule_only_a_source_with_rejected_lines_has_an_ingest_rejection_file() {
        let d = tempfile::tempdir().unwrap();
        let lake = Lake::open(d.path()).unwrap();
        let clean = lake.ingest("car-1", "clean.nmea", LOG).unwrap().meta;
        let mut dirty_bytes = LOG.to_vec();
        dirty_bytes.extend_from_slice(b"$GPGGA,garbage*00\n");
        let dirty = lake.ingest("car-1", "dirty.nmea", &dirty_bytes).unwrap().meta;
        assert!(clean.rejected_by_reason.is_empty());
        assert_eq!(dirty.rejected_by_reason.values().sum::<u64>(), 1);
        let rej = |h: &str| d.path().join(format!("rejections/{h}.parquet"));
        assert!(!rej(&clean.hash).exists());
        let rows = tables::from_parquet(fs::read(rej(&dirty.hash)).unwrap().into()).unwrap();
        assert_eq!(rows.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    }

    #[test]
    fn rule_a_small_source_is_stored_uncompressed_and_a_large_one_with_zstd() {
        let d = tempfile::tempdir().unwrap();
        let lake = Lake::open(d.path()).unwrap();
        let fleet = crate::simulate::simulate(&crate::simulate::SimConfig {
            drivers: 1,
            epochs: 1,
            trips: 1,
            minutes: 30,
            ..Default::default()
        });
        let big = lake.ingest("car-1", "big.nmea", &fleet.files[0].bytes).unwrap().meta;
        let small = lake.ingest("car-1", "small.nmea", LOG).unwrap().meta;
        assert!(big.fixes >= tables::SMALL_SOURCE_ROWS as u64, "{}", big.fixes);
        let fixes = |h: &str| d.path().join(format!("fixes/{h}.parquet"));
        assert_eq!(
            compression(&fixes(&small.hash)),
            parquet::basic::Compression::UNCOMPRESSED
        );
        assert!(matches!(
            compression(&fixes(&big.hash)),
            parquet::basic::Compression::ZSTD(_)
        ));
        // Both read back as written.
        assert_eq!(lake.read_fixes(&small.hash).unwrap().0.len() as u64, small.fixes);
        assert_eq!(lake.read_fixes(&big.hash).unwrap().0.len() as u64, big.fixes);
    }

    #[test]
    fn group_commit_writes_the_same_files_as_ingesting_one_by_one_and_leaves_no_temp_files() {
        let fleet = crate::simulate::simulate(&crate::simulate::SimConfig {
            drivers: 6,
            epochs: 1,
            trips: 2,
            minutes: 4,
            ..Default::default()
        });
        // Repeat some uploads (same bytes, other device) inside the batch: duplicates of the
        // first, as if ingested in order. Also a Parquet source (stored once, hard-linked).
        let pq = {
            let d = tempfile::tempdir().unwrap();
            let l = Lake::open(d.path()).unwrap();
            l.fixes_source(
                "car-pq",
                "x.parquet",
                &[crate::fix::Fix::new(1_763_000_000_000, 52.5, 13.4)],
            )
            .unwrap()
        };
        let at = 1_795_000_000_000; // after every simulated fix
        let mut uploads: Vec<Upload> = fleet
            .files
            .iter()
            .map(|f| Upload::new(&f.device, &f.name, &f.bytes).received_at(at))
            .collect();
        uploads.push(Upload::new("car-pq", "x.parquet", &pq).received_at(at));
        uploads.push(Upload::new("other", "again.nmea", uploads[0].bytes).received_at(at));
        assert!(uploads.len() > 8, "large enough for the syncfs path");
        let one = tempfile::tempdir().unwrap();
        let a = Lake::open(one.path()).unwrap();
        let each: Vec<IngestOutcome> = uploads
            .iter()
            .map(|u| a.ingest_batch(&[*u]).pop().unwrap().unwrap())
            .collect();
        let two = tempfile::tempdir().unwrap();
        let b = Lake::open(two.path()).unwrap();
        let batch: Vec<IngestOutcome> = b.ingest_batch(&uploads).into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(each, batch);
        assert!(batch.last().unwrap().duplicate && !batch[0].duplicate);
        let (fa, fb) = (lake_files(one.path()), lake_files(two.path()));
        assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
        assert_eq!(fa, fb);
        assert!(fb.keys().all(|k| !k.contains("/.tmp-")), "{:?}", fb.keys());
        assert_eq!(b.sources().unwrap().len(), uploads.len() - 1);
        // Everything again: all duplicates, nothing rewritten.
        let again = b.ingest_batch(&uploads);
        assert!(again.iter().all(|r| r.as_ref().unwrap().duplicate));
        assert_eq!(lake_files(two.path()), fb);
        // The Parquet source is its own fixes file.
        let h = &batch[batch.len() - 2].meta.hash;
        assert_eq!(fb[&format!("sources/{h}.parquet")], fb[&format!("fixes/{h}.parquet")]);
    }

    #[test]
    fn rule_a_raw_copy_made_from_the_file_holds_the_bytes_that_were_read() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("a.nmea");
        let dest = d.path().join("sources").join("x.nmea");
        let read = b"$GPGGA,120000.00,5230.000,N,01324.000,E,1,08,0.9,35.0,M,0.0,M,,*6D\n".to_vec();
        let copy = |bytes: &[u8]| fs::read(temp_early_from(&src, &dest, bytes).unwrap().0).unwrap();
        // Unchanged since it was read: the kernel's copy of the file.
        fs::write(&src, &read).unwrap();
        assert_eq!(copy(&read), read);
        fs::write(&src, b"").unwrap();
        assert_eq!(copy(b""), b"", "an empty file");
        // Changed since it was read (same length, longer, shorter), gone, or not a file: the
        // lake stores the bytes that were hashed and parsed, never what the path holds now.
        let mut same_len = read.clone();
        same_len[7] = b'3';
        let longer = [&read[..], b"more\n"].concat();
        for now in [&same_len[..], &longer, &read[..10], b""] {
            fs::write(&src, now).unwrap();
            assert_eq!(copy(&read), read, "{:?}", String::from_utf8_lossy(now));
        }
        fs::remove_file(&src).unwrap();
        assert_eq!(copy(&read), read);
        fs::create_dir(&src).unwrap();
        assert_eq!(copy(&read), read);
        // A named pipe with no writer: refused at once (opening it to read would wait forever).
        #[cfg(unix)]
        {
            let fifo = d.path().join("fifo");
            let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
            // SAFETY: a NUL-terminated path; mkfifo only creates the node.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
            let (t, _) = temp_early_from(&fifo, &dest, &read).unwrap();
            assert_eq!(fs::read(t).unwrap(), read);
        }
        // Every temp (the copies that differed included) is gone once dropped.
        assert_eq!(fs::read_dir(dest.parent().unwrap()).unwrap().count(), 0);
    }

    #[test]
    fn ingest_files_from_disk_writes_the_same_files_as_ingest_from_memory() {
        let fleet = crate::simulate::simulate(&crate::simulate::SimConfig {
            drivers: 3,
            epochs: 1,
            trips: 2,
            minutes: 30,
            ..Default::default()
        });
        let at = 1_795_000_000_000; // after every simulated fix

        // The fleet's sources (hundreds of kB each) and a small one.
        let mut sources: Vec<(&str, &str, &[u8])> = fleet
            .files
            .iter()
            .map(|f| (f.device.as_str(), f.name.as_str(), &f.bytes[..]))
            .collect();
        sources.push(("car-small", "small.nmea", LOG));
        let tree = tempfile::tempdir().unwrap();
        for (device, name, bytes) in &sources {
            fs::create_dir_all(tree.path().join(device)).unwrap();
            fs::write(tree.path().join(device).join(name), bytes).unwrap();
        }
        let mut jobs = files::tree_jobs(tree.path()).unwrap();
        jobs.iter_mut().for_each(|j| j.received_at_ms = Some(at));
        let disk = tempfile::tempdir().unwrap();
        let from_disk = Lake::open(disk.path()).unwrap().ingest_files(&jobs, &|_, _| {});
        assert!(from_disk.iter().all(|r| r.result.as_ref().is_ok_and(|o| !o.duplicate)));
        let mem = tempfile::tempdir().unwrap();
        let uploads: Vec<Upload> = sources
            .iter()
            .map(|(device, name, bytes)| Upload::new(device, name, bytes).received_at(at))
            .collect();
        let from_memory = Lake::open(mem.path()).unwrap().ingest_batch(&uploads);
        assert!(from_memory.iter().all(|r| r.is_ok()));
        assert!(
            fleet.files.iter().any(|f| f.bytes.len() >= EARLY_WRITEBACK_BYTES),
            "a source large enough to start its writeback early"
        );
        // Both ways of holding a file's bytes were taken: copied into the lake and mapped, and
        // read into memory.
        let probe_dir = tempfile::tempdir().unwrap();
        let probe = Lake::open(probe_dir.path()).unwrap();
        let staged: Vec<bool> = jobs
            .iter()
            .map(|j| matches!(probe.hold(&j.path, true), Ok(files::Held::Staged(_))))
            .collect();
        assert!(staged.contains(&true) && staged.contains(&false), "{staged:?}");
        let (a, b) = (lake_files(disk.path()), lake_files(mem.path()));
        assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
        assert_eq!(a, b);
        assert!(a.keys().all(|k| !k.contains("/.tmp")), "{:?}", a.keys());
        // The tree again: all duplicates, the lake unchanged, no temp copy left behind.
        let again = Lake::open(disk.path()).unwrap().ingest_files(&jobs, &|_, _| {});
        assert!(again.iter().all(|r| r.result.as_ref().is_ok_and(|o| o.duplicate)));
        assert_eq!(lake_files(disk.path()), a);
    }

    #[test]
    fn rule_a_staged_copy_is_one_snapshot_of_the_file_and_leaves_no_temp_behind() {
        let d = tempfile::tempdir().unwrap();
        let lake = Lake::open(d.path().join("lake")).unwrap();
        let src = d.path().join("a.nmea");
        let bytes = LOG.repeat(5_000);
        fs::write(&src, &bytes).unwrap();
        assert!(matches!(lake.hold(&src, true), Ok(files::Held::Staged(_))));
        assert!(matches!(lake.hold(&src, false), Ok(files::Held::Memory(_))));
        let s = lake.staged_copy(&src).unwrap();
        assert_eq!(&s.map[..], &bytes[..]);
        assert_eq!(s.tmp.parent(), Some(lake.root().join("sources").as_path()));
        // The file changes or goes away after the copy: the copy and its mapping keep what was
        // copied, so what is hashed, parsed and stored is one version of it.
        fs::write(&src, b"$GPGGA,other").unwrap();
        assert_eq!(&s.map[..], &bytes[..]);
        assert_eq!(fs::read(&s.tmp).unwrap(), bytes);
        fs::remove_file(&src).unwrap();
        assert_eq!(&s.map[..], &bytes[..]);
        drop(s);
        // One file ingested by path (`Lake::ingest_path`): stored as it was, then a duplicate.
        fs::write(&src, &bytes).unwrap();
        let a = lake.ingest_path_as("car-1", "trip.nmea", &src, None).unwrap();
        assert!(!a.duplicate && a.meta.fixes >= 1 && a.meta.bytes == bytes.len() as u64);
        assert_eq!(
            fs::read(lake.root().join(format!("sources/{}.nmea", a.meta.hash))).unwrap(),
            bytes
        );
        assert!(lake.ingest_path_as("car-2", "b.nmea", &src, None).unwrap().duplicate);
        fs::remove_file(&src).unwrap();
        // Missing, empty, or not a regular file: refused (the caller reads it into memory).
        assert!(lake.staged_copy(&src).is_err());
        fs::write(&src, b"").unwrap();
        assert!(lake.staged_copy(&src).is_err());
        assert!(lake.staged_copy(d.path()).is_err());
        assert!(
            matches!(lake.hold(&src, true), Ok(files::Held::Memory(_))),
            "an empty file is read"
        );
        let temps = fs::read_dir(lake.root().join("sources"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with(".tmp"))
            .count();
        assert_eq!(temps, 0);
    }

    #[test]
    fn group_commit_a_bad_upload_fails_alone_naming_it() {
        let d = tempfile::tempdir().unwrap();
        let lake = Lake::open(d.path()).unwrap();
        let uploads = [Upload::new("", "a.nmea", LOG), Upload::new("car-1", "b.nmea", LOG)];
        let out = lake.ingest_batch(&uploads);
        let e = out[0].as_ref().unwrap_err().to_string();
        assert!(e.contains("device id"), "{e}");
        assert!(!out[1].as_ref().unwrap().duplicate);
        assert_eq!(lake.sources().unwrap().len(), 1);
        assert!(lake.ingest_batch(&[]).is_empty());
    }

    #[test]
    fn ingest_same_bytes_twice_is_a_noop() {
        let d = tempfile::tempdir().unwrap();
        let lake = Lake::open(d.path()).unwrap();
        let a = lake.ingest("car-1", "a.nmea", LOG).unwrap();
        assert!(!a.duplicate);
        assert_eq!(a.meta.fixes, 1);
        let b = lake.ingest("car-2", "b.nmea", LOG).unwrap();
        assert!(b.duplicate);
        assert_eq!(b.meta.device, "car-1");
        assert_eq!(lake.sources().unwrap().len(), 1);
        let (fixes, _) = lake.read_fixes(&a.meta.hash).unwrap();
        assert_eq!(fixes.len(), 1);
    }

    #[test]
    fn ingest_refuses_bytes_that_are_not_a_trace_and_stores_nothing() {
        let d = tempfile::tempdir().unwrap();
        let lake = Lake::open(d.path()).unwrap();
        for (name, bytes) in [
            ("empty.nmea", &b""[..]),
            ("note.txt", b"remember the milk\n"),
            (
                "clip.mp4",
                b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom\x00\x01\x02",
            ),
        ] {
            let e = lake.ingest("car-1", name, bytes).unwrap_err();
            assert!(matches!(e, Error::NotATrace { .. }), "{name}: {e}");
            assert!(e.to_string().starts_with(&format!("{name}: not a trace")), "{e}");
        }
        assert!(lake.sources().unwrap().is_empty());
        assert_eq!(fs::read_dir(d.path().join("sources")).unwrap().count(), 0);
    }

    #[test]
    fn ingest_refuses_bad_device_ids() {
        let d = tempfile::tempdir().unwrap();
        let lake = Lake::open(d.path()).unwrap();
        assert!(lake.ingest("../x", "a", LOG).is_err());
    }

    #[test]
    fn interrupted_epoch_replacement_is_recovered_on_open_and_only_stale_staging_is_dropped() {
        let d = tempfile::tempdir().unwrap();
        let lake = Lake::open(d.path()).unwrap();
        // Simulate a crash between parking the old epoch and moving the new one in.
        let old = d.path().join("epochs/.old-2026-W47");
        fs::create_dir_all(&old).unwrap();
        fs::write(old.join("manifest.json"), b"{}").unwrap();
        // A staging directory of a run that died an hour ago, and one of a run going on now
        // (another process, or a Spark driver whose workers open the lake).
        let (dead, live) = (
            d.path().join("epochs/.tmp-2026-W47-1"),
            d.path().join("epochs/.tmp-2026-W48-2"),
        );
        fs::create_dir_all(&dead).unwrap();
        fs::create_dir_all(&live).unwrap();
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3700);
        fs::File::open(&dead).unwrap().set_modified(hour_ago).unwrap();
        let lake2 = Lake::open(lake.root()).unwrap();
        assert!(d.path().join("epochs/2026-W47/manifest.json").exists());
        assert!(!dead.exists(), "a stale staging directory is dropped");
        assert!(live.exists(), "a fresh one may belong to a running epoch");
        assert_eq!(lake2.epochs().unwrap().len(), 1);
    }

    #[test]
    fn rule_calls_at_once_give_their_results_in_item_order_whatever_finishes_first() {
        let got = at_once(&[30u64, 0, 15, 5], |&ms| {
            std::thread::sleep(std::time::Duration::from_millis(ms));
            ms * 2
        });
        assert_eq!(got, vec![60, 0, 30, 10]);
        assert!(at_once(&[] as &[u8], |&b| b).is_empty());
    }

    #[test]
    fn rule_a_replaced_epoch_directory_is_removed_whole_with_its_entries_at_once() {
        let d = tempfile::tempdir().unwrap();
        let old = d.path().join(".old-2026-W47");
        fs::create_dir_all(old.join("nested/deeper")).unwrap();
        // More entries than one round of threads, files of several sizes, a nested directory.
        for i in 0..40 {
            fs::write(old.join(format!("f{i}.parquet")), vec![i as u8; i * 10_000]).unwrap();
        }
        fs::write(old.join("nested/deeper/x"), b"x").unwrap();
        remove_dir_all_at_once(&old).unwrap();
        assert!(!old.exists());
        assert!(d.path().exists(), "only the directory named goes");
        // A directory that is not there: an error naming it, nothing else touched.
        let err = remove_dir_all_at_once(&old).unwrap_err().to_string();
        assert!(err.contains(".old-2026-W47"), "{err}");
    }

    #[test]
    fn rule_a_replaced_epoch_leaves_the_new_epoch_and_no_parked_copy() {
        let d = tempfile::tempdir().unwrap();
        let lake = Lake::open(d.path()).unwrap();
        let e: crate::epoch::Epoch = "2026-W47".parse().unwrap();
        for run in ["first", "second"] {
            let staging = lake.staging_dir(&e).unwrap();
            for name in ["manifest.json", "explain.parquet", "coverage.parquet"] {
                fs::write(staging.join(name), format!("{run} {name}")).unwrap();
            }
            lake.commit_epoch_dir(&staging, &e).unwrap();
        }
        let dir = lake.epoch_dir(&e);
        assert_eq!(
            fs::read_to_string(dir.join("explain.parquet")).unwrap(),
            "second explain.parquet"
        );
        let left: Vec<String> = fs::read_dir(d.path().join("epochs"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, vec!["2026-W47".to_string()]);
    }
}
