//! The lake: a directory of content-addressed sources, their fixes and rejection reports, and
//! one directory per epoch. Every file is written atomically (temp file, fsync, rename), and an
//! ingest is committed by its metadata file, written last.
//!
//! ```text
//! lake/
//!   sources/<blake3>.<nmea|gpx>   raw bytes as received
//!   sources/<blake3>.json         metadata: device, name, format, line accounting, time range
//!   fixes/<blake3>.parquet        normalized fixes
//!   rejections/<blake3>.parquet   ingest rejection report
//!   epochs/<E>/                   rewards, explain, rejections, coverage, manifest, policy, registry
//! ```

use crate::ingest::{self, Format, LineCounts};
use crate::io;
use crate::registry::valid_device_id;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Any failure touching the lake, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A file's content is not what it should be.
    #[error("{path}: {message}")]
    Data {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A bad argument (device id, epoch...).
    #[error("{0}")]
    Invalid(String),
}

/// Result alias.
pub type Result<T> = std::result::Result<T, Error>;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// SHA-256 (lowercase hex) of a file, read in a stream (never whole into memory).
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
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(io_err(dir))?;
    tmp.write_all(bytes).map_err(io_err(path))?;
    tmp.as_file().sync_all().map_err(io_err(path))?;
    tmp.persist(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        source: e.error,
    })?;
    sync_dir(dir)
}

/// Make `dest` a hard link to the (already durable) file `src`, atomically: link under a temp
/// name, rename over `dest`, fsync the directory. False when linking is not possible (other file
/// system, no support); the caller then writes a copy.
fn link_atomic(src: &Path, dest: &Path) -> bool {
    let Some(dir) = dest.parent() else { return false };
    if fs::create_dir_all(dir).is_err() {
        return false;
    }
    let tmp = dir.join(format!(
        ".tmp-link-{}",
        dest.file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default()
    ));
    let _ = fs::remove_file(&tmp);
    if fs::hard_link(src, &tmp).is_err() {
        return false;
    }
    if fs::rename(&tmp, dest).is_err() {
        let _ = fs::remove_file(&tmp);
        return false;
    }
    sync_dir(dir).is_ok()
}

/// fsync a directory so a rename in it is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir).and_then(|f| f.sync_all()).map_err(io_err(dir))
}

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
    /// Earliest fix time, UTC ms.
    pub min_time_ms: Option<i64>,
    /// Latest fix time, UTC ms.
    pub max_time_ms: Option<i64>,
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
}

/// Default visit budget of an epoch run: about 12.6 million visits held in memory (a visit map
/// of ~0.7 GiB that never needs to grow past 2^24 slots) before they spill to disk.
pub const DEFAULT_MAX_VISITS: usize = 12 << 20;

impl Lake {
    /// Open (and create) a lake; recovers an epoch replacement interrupted by a crash.
    pub fn open(root: impl Into<PathBuf>) -> Result<Lake> {
        let root = root.into();
        for d in ["sources", "fixes", "rejections", "epochs"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(io_err(&p))?;
        }
        let lake = Lake {
            root,
            batch_rows: io::BATCH_ROWS,
            max_visits: DEFAULT_MAX_VISITS,
        };
        lake.recover()?;
        Ok(lake)
    }

    /// Use record batches of `n` rows when writing and reading fixes (a memory/speed knob; no
    /// epoch output depends on it).
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

    /// The visit budget of epoch runs.
    pub fn max_visits(&self) -> usize {
        self.max_visits
    }

    /// The lake's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path of a lake-relative file.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Directory of an epoch's outputs.
    pub fn epoch_dir(&self, epoch: &crate::epoch::Epoch) -> PathBuf {
        self.root.join("epochs").join(epoch.to_string())
    }

    /// Ingest one source for a device. Idempotent: the same bytes twice is a no-op reported as a
    /// duplicate (whichever device sends them the second time).
    pub fn ingest(&self, device: &str, name: &str, bytes: &[u8]) -> Result<IngestOutcome> {
        if !valid_device_id(device) {
            return Err(Error::Invalid(format!(
                "device id {device:?} is not 1-64 characters of A-Z a-z 0-9 . _ : -"
            )));
        }
        let hash = blake3::hash(bytes).to_hex().to_string();
        let meta_path = self.root.join("sources").join(format!("{hash}.json"));
        if meta_path.exists() {
            return Ok(IngestOutcome {
                meta: self.read_meta(&meta_path)?,
                duplicate: true,
            });
        }
        let format = Format::detect(bytes);
        let parsed = ingest::parse(bytes);
        let raw_path = self.root.join("sources").join(format!("{hash}.{}", format.as_str()));
        write_atomic(&raw_path, bytes)?;
        let fixes_pq = io::to_parquet(
            &io::fixes_schema(),
            &io::fixes_to_batches_sized(device, &parsed.fixes, self.batch_rows),
        )
        .map_err(|e| Error::Data {
            path: format!("fixes/{hash}.parquet"),
            message: e.to_string(),
        })?;
        let fixes_path = self.root.join("fixes").join(format!("{hash}.parquet"));
        // A Parquet source that already is exactly the fixes file is stored once (hard link).
        if fixes_pq.as_slice() != bytes || !link_atomic(&raw_path, &fixes_path) {
            write_atomic(&fixes_path, &fixes_pq)?;
        }
        let rows: Vec<io::RejectionRow> = parsed
            .rejections
            .iter()
            .map(|r| io::RejectionRow {
                source: hash.clone(),
                device: device.to_string(),
                stage: "ingest",
                rejection: r.clone(),
            })
            .collect();
        let rej_pq =
            io::to_parquet(&io::rejections_schema(), &[io::rejections_to_batch(&rows)]).map_err(|e| Error::Data {
                path: format!("rejections/{hash}.parquet"),
                message: e.to_string(),
            })?;
        write_atomic(&self.root.join("rejections").join(format!("{hash}.parquet")), &rej_pq)?;
        let meta = SourceMeta {
            hash: hash.clone(),
            device: device.to_string(),
            name: name.to_string(),
            format,
            bytes: bytes.len() as u64,
            fixes: parsed.fixes.len() as u64,
            rejected: parsed.lines.rejected,
            rejected_by_reason: parsed.rejections.iter().fold(Default::default(), |mut m, r| {
                *m.entry(r.reason.to_string()).or_default() += 1;
                m
            }),
            lines: parsed.lines,
            min_time_ms: parsed.fixes.iter().map(|f| f.time_ms).min(),
            max_time_ms: parsed.fixes.iter().map(|f| f.time_ms).max(),
        };
        let json = serde_json::to_vec_pretty(&meta).expect("meta serializes");
        // Everything but the metadata is on disk: until it is renamed in, the source does not
        // exist for the lake (a crash here leaves only files that a rerun rewrites).
        fail::fail_point!("ingest-before-meta");
        write_atomic(&meta_path, &json)?;
        Ok(IngestOutcome { meta, duplicate: false })
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
    pub fn ingest_fixes(&self, device: &str, name: &str, fixes: &[crate::fix::Fix]) -> Result<IngestOutcome> {
        let mut rows: Vec<crate::fix::Fix> = fixes.to_vec();
        for (i, f) in rows.iter_mut().enumerate() {
            f.line = u32::try_from(i + 1).unwrap_or(u32::MAX);
        }
        let bytes = io::to_parquet(
            &io::fixes_schema(),
            &io::fixes_to_batches_sized(device, &rows, self.batch_rows),
        )
        .map_err(|e| Error::Data {
            path: name.to_string(),
            message: e.to_string(),
        })?;
        self.ingest(device, name, &bytes)
    }

    fn read_meta(&self, p: &Path) -> Result<SourceMeta> {
        let bytes = fs::read(p).map_err(io_err(p))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Data {
            path: p.display().to_string(),
            message: e.to_string(),
        })
    }

    /// Every committed source, sorted by hash.
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
    pub fn read_fixes(&self, hash: &str) -> Result<(Vec<crate::fix::Fix>, String)> {
        let p = self.root.join("fixes").join(format!("{hash}.parquet"));
        let bytes = fs::read(&p).map_err(io_err(&p))?;
        let sha = sha256_hex(&bytes);
        let data = |message: String| Error::Data {
            path: p.display().to_string(),
            message,
        };
        let batches = io::from_parquet_batched(bytes.into(), self.batch_rows).map_err(|e| data(e.to_string()))?;
        let mut fixes = Vec::new();
        for b in &batches {
            io::batch_to_fixes(b, &mut fixes).map_err(data)?;
        }
        Ok((fixes, sha))
    }

    /// Epochs with complete outputs, sorted.
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

    /// Move a fully written staging directory into place as `epochs/E`, replacing an existing
    /// one. A crash at any point leaves either the old or the new epoch: the old one is parked
    /// as `.old-E` until the new one is in place, and [`Lake::open`] puts it back if needed.
    pub fn commit_epoch_dir(&self, staging: &Path, epoch: &crate::epoch::Epoch) -> Result<()> {
        let epochs = self.root.join("epochs");
        let dest = self.epoch_dir(epoch);
        let old = epochs.join(format!(".old-{epoch}"));
        if old.exists() {
            fs::remove_dir_all(&old).map_err(io_err(&old))?;
        }
        fail::fail_point!("commit-before-park");
        if dest.exists() {
            fs::rename(&dest, &old).map_err(io_err(&dest))?;
        }
        fail::fail_point!("commit-after-park");
        fs::rename(staging, &dest).map_err(io_err(staging))?;
        sync_dir(&epochs)?;
        fail::fail_point!("commit-after-move");
        if old.exists() {
            fs::remove_dir_all(&old).map_err(io_err(&old))?;
        }
        Ok(())
    }

    /// A fresh staging directory for an epoch's outputs.
    pub fn staging_dir(&self, epoch: &crate::epoch::Epoch) -> Result<PathBuf> {
        let epochs = self.root.join("epochs");
        let p = epochs.join(format!(".tmp-{epoch}-{}", std::process::id()));
        if p.exists() {
            fs::remove_dir_all(&p).map_err(io_err(&p))?;
        }
        fs::create_dir_all(&p).map_err(io_err(&p))?;
        Ok(p)
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
            } else if name.starts_with(".tmp-") {
                // Staging of a run that died before its commit: never visible, safe to drop.
                let _ = fs::remove_dir_all(&p);
            }
        }
        // Temp files of writes that died (killed ingest or server). Only old ones: another
        // process may be writing a fresh one right now.
        for d in ["sources", "fixes", "rejections"] {
            let dir = self.root.join(d);
            let Ok(rd) = fs::read_dir(&dir) else { continue };
            for e in rd.flatten() {
                let stale = e
                    .metadata()
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > std::time::Duration::from_secs(3600));
                if e.file_name().to_string_lossy().starts_with(".tmp-") && stale {
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

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &[u8] = b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A\n$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\n";

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
    fn ingest_refuses_bad_device_ids() {
        let d = tempfile::tempdir().unwrap();
        let lake = Lake::open(d.path()).unwrap();
        assert!(lake.ingest("../x", "a", LOG).is_err());
    }

    #[test]
    fn interrupted_epoch_replacement_is_recovered_on_open() {
        let d = tempfile::tempdir().unwrap();
        let lake = Lake::open(d.path()).unwrap();
        // Simulate a crash between parking the old epoch and moving the new one in.
        let old = d.path().join("epochs/.old-2026-W47");
        fs::create_dir_all(&old).unwrap();
        fs::write(old.join("manifest.json"), b"{}").unwrap();
        fs::create_dir_all(d.path().join("epochs/.tmp-2026-W47-1")).unwrap();
        let lake2 = Lake::open(lake.root()).unwrap();
        assert!(d.path().join("epochs/2026-W47/manifest.json").exists());
        assert!(!d.path().join("epochs/.tmp-2026-W47-1").exists());
        assert_eq!(lake2.epochs().unwrap().len(), 1);
    }
}
