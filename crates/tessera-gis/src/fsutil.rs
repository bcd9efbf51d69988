//! Temporary siblings and renames for atomic output.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Error;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temporary file or directory, removed on drop unless [`Temp::keep`] was called.
pub(crate) struct Temp {
    pub(crate) path: PathBuf,
    is_dir: bool,
    armed: bool,
}

impl Temp {
    /// Disarms the cleanup (the temporary was renamed away).
    pub(crate) fn keep(mut self) {
        self.armed = false;
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if self.armed {
            // Best effort: the error that brought us here is the one worth reporting.
            let _ = if self.is_dir {
                std::fs::remove_dir_all(&self.path)
            } else {
                std::fs::remove_file(&self.path)
            };
        }
    }
}

/// The directory `path` lives in.
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The final component of `path`, or an error naming it.
pub(crate) fn file_name(path: &Path) -> Result<String, Error> {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Error::BadPath {
            path: path.to_path_buf(),
            reason: "not a file path".to_owned(),
        })
}

fn unique_name(path: &Path) -> Result<String, Error> {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    Ok(format!(".{}.tmp-{}-{n}", file_name(path)?, std::process::id()))
}

/// A not-yet-existing temporary file next to `path`, keeping its extension (some GDAL drivers
/// look at it). Nothing is created.
pub(crate) fn temp_file(path: &Path) -> Result<Temp, Error> {
    let mut name = unique_name(path)?;
    if let Some(ext) = path.extension() {
        name.push('.');
        name.push_str(&ext.to_string_lossy());
    }
    Ok(Temp {
        path: parent_dir(path).join(name),
        is_dir: false,
        armed: true,
    })
}

/// A fresh temporary directory next to `path`.
pub(crate) fn temp_dir(path: &Path) -> Result<Temp, Error> {
    let dir = parent_dir(path).join(unique_name(path)?);
    std::fs::create_dir(&dir).map_err(|source| Error::Io {
        path: dir.clone(),
        op: "create temporary directory",
        source,
    })?;
    Ok(Temp {
        path: dir,
        is_dir: true,
        armed: true,
    })
}

/// Less free space than this after writing is taken for a full file system.
pub(crate) const MIN_FREE_BYTES: u64 = 1 << 20;

/// Refuses to put `written` in place of `to` when the file system holding it is full.
///
/// GDAL's FlatGeobuf, GeoJSON and KML drivers (and `ogr2ogr` with them) ignore a short write:
/// on a full disk they leave a truncated or empty file and report success. GDAL does not say,
/// so this asks the file system: less than [`MIN_FREE_BYTES`] free (for root, counting the
/// blocks reserved for root) after writing means a write may have been cut short.
///
/// # Errors
/// [`Error::Io`] naming `to`, with `ENOSPC`, when the file system is full.
pub(crate) fn check_space(written: &Path, to: &Path) -> Result<(), Error> {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(written.as_os_str().as_bytes()) else {
        return Ok(());
    };
    // SAFETY: statvfs fills the zeroed struct from a NUL-terminated path; geteuid has no inputs.
    let (ok, st, root) = unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        (libc::statvfs(c.as_ptr(), &mut st) == 0, st, libc::geteuid() == 0)
    };
    let blocks = if root { st.f_bfree } else { st.f_bavail };
    if ok && blocks.saturating_mul(st.f_frsize) < MIN_FREE_BYTES {
        return Err(Error::Io {
            path: to.to_path_buf(),
            op: "write (the file system is full: the output would be incomplete)",
            source: std::io::Error::from_raw_os_error(libc::ENOSPC),
        });
    }
    Ok(())
}

/// Creates the directory `path` goes into (and its parents) when missing, as the GeoParquet
/// export does; errors name the directory.
pub(crate) fn create_parent(path: &Path) -> Result<(), Error> {
    let dir = parent_dir(path);
    std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
        path: dir,
        op: "create output directory",
        source,
    })
}

/// Flushes the written file `written` (or every file of the directory `written`, and the
/// directory) to disk, so that a crash after the rename cannot leave an empty or partial output
/// under the final name. Errors name `to`.
pub(crate) fn sync(written: &Path, to: &Path) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: to.to_path_buf(),
        op: "flush to disk",
        source,
    };
    if written.is_dir() {
        for entry in std::fs::read_dir(written).map_err(io)? {
            std::fs::File::open(entry.map_err(io)?.path())
                .and_then(|f| f.sync_all())
                .map_err(io)?;
        }
    }
    std::fs::File::open(written).and_then(|f| f.sync_all()).map_err(io)
}

/// `rename(from, to)`, replacing `to`; errors name `to`. [`sync_dir`] after the last rename.
pub(crate) fn rename(from: &Path, to: &Path) -> Result<(), Error> {
    std::fs::rename(from, to).map_err(|source| Error::Io {
        path: to.to_path_buf(),
        op: "rename into place",
        source,
    })
}

/// Flushes the directory holding `to` (the renames into it) to disk; errors name `to`.
pub(crate) fn sync_dir(to: &Path) -> Result<(), Error> {
    std::fs::File::open(parent_dir(to))
        .and_then(|d| d.sync_all())
        .map_err(|source| Error::Io {
            path: to.to_path_buf(),
            op: "flush the directory entry to disk",
            source,
        })
}
