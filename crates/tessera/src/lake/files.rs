//! Ingest of files from disk in group commits: what `tessera ingest`, the demo and Python's
//! `ingest` share.

use super::{Error, IngestOutcome, Lake, Upload};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// Files per group commit.
pub const COMMIT_FILES: usize = 512;
/// Bytes read into memory per group commit.
pub const COMMIT_BYTES: u64 = 512 << 20;

/// One file to ingest and the device it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileJob {
    /// Device id.
    pub device: String,
    /// The file.
    pub path: PathBuf,
    /// When the network received it (UTC ms); `None`: now.
    pub received_at_ms: Option<i64>,
}

/// What happened to one file.
#[derive(Debug)]
pub struct FileResult {
    /// The job.
    pub job: FileJob,
    /// Its outcome, or why it was not ingested (errors name the file).
    pub result: Result<IngestOutcome, Error>,
}

/// The jobs of a tree laid out as `DIR/<device-id>/<files>`, devices and files in name order.
///
/// # Errors
/// [`Error::Io`] when `dir` or a device directory cannot be listed.
///
/// ```
/// # let d = tempfile::tempdir().unwrap();
/// std::fs::create_dir_all(d.path().join("car-1")).unwrap();
/// std::fs::write(d.path().join("car-1/a.nmea"), b"").unwrap();
/// let jobs = tessera::lake::files::tree_jobs(d.path()).unwrap();
/// assert_eq!(jobs[0].device, "car-1");
/// ```
pub fn tree_jobs(dir: &Path) -> Result<Vec<FileJob>, Error> {
    let list = |d: &Path, want_dir: bool| -> Result<Vec<PathBuf>, Error> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(d)
            .map_err(super::io_err(d))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| if want_dir { p.is_dir() } else { p.is_file() })
            .collect();
        v.sort();
        Ok(v)
    };
    let mut jobs = Vec::new();
    for d in list(dir, true)? {
        let device = d.file_name().unwrap_or_default().to_string_lossy().to_string();
        for path in list(&d, false)? {
            jobs.push(FileJob {
                device: device.clone(),
                path,
                received_at_ms: None,
            });
        }
    }
    Ok(jobs)
}

/// Split jobs into group commits of at most [`COMMIT_FILES`] files and [`COMMIT_BYTES`] bytes
/// (videos, read from disk by seeking, count as nothing).
fn groups(jobs: &[FileJob]) -> Vec<&[FileJob]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (i, j) in jobs.iter().enumerate() {
        let len = match super::is_mp4_file(&j.path) {
            true => 0,
            false => std::fs::metadata(&j.path).map(|m| m.len()).unwrap_or(0),
        };
        if i > start && (i - start >= COMMIT_FILES || bytes + len > COMMIT_BYTES) {
            out.push(&jobs[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += len;
    }
    out.push(&jobs[start..]);
    out
}

/// A file's bytes for its group commit: read into memory, or copied into the lake and mapped
/// ([`Lake::staged_copy`]).
pub(super) enum Held {
    Memory(Vec<u8>),
    Staged(super::StagedCopy),
}

impl Held {
    fn bytes(&self) -> &[u8] {
        match self {
            Held::Memory(v) => v,
            Held::Staged(s) => &s.map,
        }
    }

    /// The lake's temp copy, when staged.
    fn path(&self) -> Option<&Path> {
        match self {
            Held::Memory(_) => None,
            Held::Staged(s) => Some(&s.tmp),
        }
    }

    /// The upload of these bytes, read or copied from the file at `path`.
    pub(super) fn upload<'a>(
        &'a self,
        device: &'a str,
        name: &'a str,
        path: &'a Path,
        received_at_ms: Option<i64>,
    ) -> Upload<'a> {
        Upload {
            device,
            name,
            bytes: self.bytes(),
            received_at_ms,
            path: Some(self.path().unwrap_or(path)),
            staged: self.path().is_some(),
        }
    }
}

/// Files at least this large are copied into the lake and mapped rather than read
/// ([`Lake::staged_copy`]); smaller ones cost less read than a temp file's link and unlink.
pub(crate) const STAGE_BYTES: u64 = 256 << 10;

impl Lake {
    /// The bytes of the file at `path`: a copy in the lake, mapped, when `stage` and the file is
    /// a regular file of at least [`STAGE_BYTES`] that can be copied; else read into memory.
    pub(super) fn hold(&self, path: &Path, stage: bool) -> Result<Held, Error> {
        let big = || std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() >= STAGE_BYTES);
        if stage
            && big()
            && let Ok(s) = self.staged_copy(path)
        {
            return Ok(Held::Staged(s));
        }
        std::fs::read(path).map(Held::Memory).map_err(super::io_err(path))
    }

    /// Ingest files in group commits ([`Lake::ingest_batch`]): each group is read and parsed in
    /// parallel and made durable together. One result per job, in order; a file that cannot be
    /// read or is not a trace fails alone. `progress(done, total)` is called after each group.
    ///
    /// ```
    /// use tessera::lake::{files::FileJob, Lake};
    /// # let d = tempfile::tempdir().unwrap();
    /// let lake = Lake::open(d.path().join("lake")).unwrap();
    /// let trace = d.path().join("a.nmea");
    /// std::fs::write(&trace, b"$GPGGA,120000.00,5230.000,N,01324.000,E,1,08,0.9,35.0,M,0.0,M,,*6D\n").unwrap();
    /// let jobs = vec![
    ///     FileJob { device: "car-1".into(), path: trace, received_at_ms: None },
    ///     FileJob { device: "car-1".into(), path: d.path().join("missing.nmea"), received_at_ms: None },
    /// ];
    /// let out = lake.ingest_files(&jobs, &|_, _| {});
    /// assert!(out[0].result.is_ok());
    /// assert!(out[1].result.is_err());
    /// ```
    pub fn ingest_files(&self, jobs: &[FileJob], progress: &(dyn Fn(u64, u64) + Sync)) -> Vec<FileResult> {
        let mut results = Vec::with_capacity(jobs.len());
        let total = jobs.len() as u64;
        for group in groups(jobs) {
            // Camera videos are ingested one by one from disk, in bounded memory.
            let video: Vec<bool> = group.iter().map(|j| super::is_mp4_file(&j.path)).collect();
            // Opened before any file of the group is copied into the lake (`ingest_batch_in`).
            let root = std::fs::File::open(self.root());
            let read: Vec<Result<Held, Error>> = group
                .par_iter()
                .zip(&video)
                .map(|(j, v)| match v {
                    true => Ok(Held::Memory(Vec::new())),
                    // (A device id the batch refuses gets no copy in the lake.)
                    false => self.hold(&j.path, root.is_ok() && crate::registry::valid_device_id(&j.device)),
                })
                .collect();
            let names: Vec<String> = group
                .iter()
                .map(|j| j.path.file_name().unwrap_or_default().to_string_lossy().to_string())
                .collect();
            let uploads: Vec<Upload> = group
                .iter()
                .zip(&read)
                .zip(&names)
                .zip(&video)
                .filter(|(_, v)| !**v)
                .filter_map(|(((j, bytes), name), _)| {
                    Some(bytes.as_ref().ok()?.upload(&j.device, name, &j.path, j.received_at_ms))
                })
                .collect();
            // One outcome per file that could be read, in order.
            let mut outcomes = match &root {
                Ok(root) => self.ingest_batch_in(&uploads, root),
                Err(_) => self.ingest_batch(&uploads),
            }
            .into_iter();
            for ((job, bytes), v) in group.iter().zip(read).zip(video) {
                let result = match bytes {
                    Ok(_) if v => self.ingest_path(&job.device, &job.path, job.received_at_ms),
                    Err(e) => Err(e),
                    Ok(_) => outcomes
                        .next()
                        .unwrap_or_else(|| Err(Error::Invalid("not ingested".into()))),
                };
                results.push(FileResult {
                    job: job.clone(),
                    result,
                });
            }
            progress(results.len() as u64, total);
        }
        results
    }
}
