//! The prior coverage state: the latest earlier epoch's `coverage.parquet`, read in cell order a
//! batch at a time.

use crate::epoch::Epoch;
use crate::lake::{sha256_file, Error, Lake, Result};
use crate::novelty::freshness::CellState;
use crate::tables;
use std::path::Path;

/// The prior coverage state, read in cell order a batch at a time (it is never held whole: at
/// 10^8 cells it would not fit the memory budget).
pub(super) struct PriorCursor {
    reader: Option<parquet::arrow::arrow_reader::ParquetRecordBatchReader>,
    buf: std::collections::VecDeque<(u64, CellState)>,
    last: Option<u64>,
    path: String,
}

impl PriorCursor {
    pub(super) fn empty() -> PriorCursor {
        PriorCursor {
            reader: None,
            buf: Default::default(),
            last: None,
            path: String::new(),
        }
    }

    fn open(p: &Path) -> Result<PriorCursor> {
        let path = p.display().to_string();
        let f = std::fs::File::open(p).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        // Only the state's columns: `cell_id` (two thirds of the file's bytes) is neither
        // decompressed nor decoded. The whole file is hashed ([`prior_epoch`]: the manifest
        // records the prior state's SHA-256), so damage to that column is not unnoticed.
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
            .and_then(|b| {
                let mask = parquet::arrow::ProjectionMask::columns(
                    b.parquet_schema(),
                    tables::COVERAGE_STATE_COLUMNS.iter().copied(),
                );
                b.with_projection(mask).with_batch_size(tables::BATCH_ROWS).build()
            })
            .map_err(|e| Error::Data {
                path: path.clone(),
                message: e.to_string(),
            })?;
        Ok(PriorCursor {
            reader: Some(reader),
            buf: Default::default(),
            last: None,
            path,
        })
    }

    /// Refill the buffer; false at the end of the file.
    fn refill(&mut self) -> Result<bool> {
        let Some(r) = self.reader.as_mut() else {
            return Ok(false);
        };
        let data = |message: String| Error::Data {
            path: self.path.clone(),
            message,
        };
        match r.next() {
            None => {
                self.reader = None;
                Ok(false)
            }
            Some(b) => {
                let b = b.map_err(|e| data(e.to_string()))?;
                for (c, st) in tables::coverage_rows(&b).map_err(data)? {
                    if self.last.is_some_and(|l| c <= l) {
                        return Err(data(format!("cells not in ascending order at cell {c:x}")));
                    }
                    self.last = Some(c);
                    self.buf.push_back((c, st));
                }
                Ok(true)
            }
        }
    }

    /// Every remaining entry with cell < `hi` (all of them for `None`), in cell order.
    pub fn take_below(&mut self, hi: Option<u64>) -> Result<Vec<(u64, CellState)>> {
        let mut out = Vec::new();
        loop {
            while let Some(&(c, st)) = self.buf.front() {
                if hi.is_some_and(|h| c >= h) {
                    return Ok(out);
                }
                out.push((c, st));
                self.buf.pop_front();
            }
            if !self.refill()? {
                return Ok(out);
            }
        }
    }
}

/// The latest epoch before `epoch` with outputs in the lake, and the SHA-256 of its coverage
/// state.
pub(super) fn prior_epoch(lake: &Lake, epoch: &Epoch) -> Result<Option<(Epoch, String)>> {
    let Some(prev) = lake.epochs()?.into_iter().rev().find(|e| e < epoch) else {
        return Ok(None);
    };
    let sha = sha256_file(&coverage_path(lake, &prev))?;
    Ok(Some((prev, sha)))
}

/// The prior state's file.
pub(super) fn coverage_path(lake: &Lake, prev: &Epoch) -> std::path::PathBuf {
    lake.epoch_dir(prev).join("coverage.parquet")
}

/// A cursor over the prior state (empty without a prior epoch).
pub(super) fn cursor(lake: &Lake, prev: Option<&(Epoch, String)>) -> Result<PriorCursor> {
    match prev {
        None => Ok(PriorCursor::empty()),
        Some((p, _)) => PriorCursor::open(&coverage_path(lake, p)),
    }
}

/// Bounty pools rolled over into `epoch`: the `carried_out` of each bounty in the manifest of
/// `prev` when `prev` is the epoch just before (a gap breaks the rollover: the earlier epoch
/// returned nothing it did not record).
pub(super) fn bounty_carry(
    lake: &Lake,
    epoch: &Epoch,
    prev: Option<&(Epoch, String)>,
) -> Result<std::collections::BTreeMap<String, u128>> {
    let mut out = std::collections::BTreeMap::new();
    let Some((p, _)) = prev.filter(|(p, _)| p.index() + 1 == epoch.index()) else {
        return Ok(out);
    };
    let path = lake.epoch_dir(p).join("manifest.json");
    let bytes = std::fs::read(&path).map_err(|source| crate::lake::Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    let m = crate::manifest::Manifest::from_slice(&bytes)
        .map_err(|e| crate::lake::Error::Invalid(format!("{}: {e}", path.display())))?;
    for b in m.bounties {
        out.insert(b.id.clone(), b.carried_out_amount());
    }
    Ok(out)
}
