//! The replay cache: every accepted signature within the timestamp window, keyed on the
//! signature's bytes (so a change of letter case is the same signature), kept in memory and in an
//! append-only log in the lake (`server/replay.log`, one `timestamp_ms signature_hex` line each)
//! so a restart does not forget it. The log is compacted to the live window on open and whenever
//! it has grown to twice the live entries; it is fsync'd by the group commit before any upload of
//! the batch is answered.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Signatures seen, with their request timestamps.
pub struct ReplayCache {
    inner: Mutex<Inner>,
    path: PathBuf,
    window_ms: i64,
}

struct Inner {
    seen: HashMap<[u8; 64], i64>,
    log: std::fs::File,
    logged: usize,
}

impl ReplayCache {
    /// Open (or create) the log at `path`, keeping entries whose timestamp is within `window_ms`
    /// of `now_ms`; the log is rewritten (atomically) with only those.
    ///
    /// # Errors
    /// I/O errors reading or rewriting the log.
    pub fn open(path: &Path, now_ms: i64, window_ms: i64) -> std::io::Result<ReplayCache> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut seen = HashMap::new();
        if let Ok(f) = std::fs::File::open(path) {
            for line in std::io::BufReader::new(f).lines() {
                let line = line?;
                let Some((ts, sig)) = line.split_once(' ') else {
                    continue;
                };
                let (Ok(ts), Some(sig)) = (ts.parse::<i64>(), crate::signing::signature_bytes(sig)) else {
                    continue; // a line cut by a crash
                };
                if ts >= now_ms - window_ms {
                    seen.insert(sig, ts);
                }
            }
        }
        let log = rewrite(path, &seen)?;
        Ok(ReplayCache {
            inner: Mutex::new(Inner {
                logged: seen.len(),
                seen,
                log,
            }),
            path: path.to_path_buf(),
            window_ms,
        })
    }

    /// Record a signature; `false` when it was already there (a replay).
    ///
    /// # Errors
    /// I/O errors appending to the log.
    pub fn insert(&self, sig: &[u8; 64], ts: i64, now_ms: i64) -> std::io::Result<bool> {
        let mut g = self.inner.lock().expect("replay lock");
        if g.seen.contains_key(sig) {
            return Ok(false);
        }
        g.seen.insert(*sig, ts);
        writeln!(g.log, "{ts} {}", hex::encode(sig))?;
        g.logged += 1;
        if g.logged > 4096 && g.logged > 2 * g.seen.len() {
            let horizon = now_ms - self.window_ms;
            g.seen.retain(|_, t| *t >= horizon);
            g.log = rewrite(&self.path, &g.seen)?;
            g.logged = g.seen.len();
        }
        Ok(true)
    }

    /// Make every recorded signature durable.
    ///
    /// # Errors
    /// I/O errors of the fsync.
    pub fn sync(&self) -> std::io::Result<()> {
        let g = self.inner.lock().expect("replay lock");
        g.log.sync_data()
    }

    /// Signatures held.
    pub fn len(&self) -> usize {
        self.inner.lock().expect("replay lock").seen.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Write `seen` (sorted, so the file is deterministic) to a temp file, fsync, rename over `path`;
/// return the file opened for appending.
fn rewrite(path: &Path, seen: &HashMap<[u8; 64], i64>) -> std::io::Result<std::fs::File> {
    let mut rows: Vec<(&i64, &[u8; 64])> = seen.iter().map(|(s, t)| (t, s)).collect();
    rows.sort();
    let text: String = rows.iter().map(|(t, s)| format!("{t} {}\n", hex::encode(s))).collect();
    tessera::lake::write_atomic(path, text.as_bytes()).map_err(std::io::Error::other)?;
    std::fs::OpenOptions::new().append(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_a_signature_is_refused_again_after_a_restart_and_forgotten_after_the_window() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("server/replay.log");
        let c = ReplayCache::open(&p, 1_000_000, 600_000).unwrap();
        assert!(c.insert(&[1; 64], 1_000_000, 1_000_000).unwrap());
        assert!(!c.insert(&[1; 64], 1_000_000, 1_000_000).unwrap());
        c.sync().unwrap();
        drop(c);
        let c = ReplayCache::open(&p, 1_100_000, 600_000).unwrap();
        assert!(
            !c.insert(&[1; 64], 1_000_000, 1_100_000).unwrap(),
            "forgotten across a restart"
        );
        drop(c);
        let c = ReplayCache::open(&p, 1_700_000, 600_000).unwrap();
        assert!(c.is_empty(), "kept past its window");
    }

    #[test]
    fn rule_a_line_cut_by_a_crash_is_skipped() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("replay.log");
        std::fs::write(&p, format!("5 {}\n6 abc", "ab".repeat(64))).unwrap();
        let c = ReplayCache::open(&p, 10, 100).unwrap();
        assert_eq!(c.len(), 1);
    }
}
