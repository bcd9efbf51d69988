//! External partitioning of an epoch's visits, for weeks whose visits do not fit the memory
//! budget ([`crate::lake::Lake::with_max_visits`]).
//!
//! When the in-memory visit map outgrows the budget it is drained into *range buckets*: bucket
//! `i` holds the visit records of the cells in `[bounds[i-1], bounds[i])`, so every observation of
//! a cell, by every device, lands in the same bucket and the buckets, read in order, are the cells
//! in ascending order. The split points are quantiles of the cells in memory at the first spill;
//! a bucket that still comes out larger than the budget is split again the same way when it is
//! read. Split points only decide how the work is cut, never what it computes: scoring a bucket
//! sees all of each of its cells, so the outputs are the same bytes whatever the budget (tested).
//!
//! Records are fixed-size little-endian rows, `cell u64, device u32, first_ms i64, last_ms i64,
//! fixes u32, best_hdop_centi u32`; a bucket file may hold several records of the same (cell,
//! device) (one per spill), merged with the commutative [`Visit::merge`] when loaded.

use crate::cells::{Visit, VisitMap};
use crate::lake::{Error, Result};
use crate::novelty::VisitRow;
use rayon::prelude::*;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Bytes per record.
const REC: usize = 36;

/// How many buckets a spill (or the split of an oversized bucket) cuts the cells into.
pub(crate) const BUCKETS: usize = 256;

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

fn encode(cell: u64, device: u32, v: &Visit) -> [u8; REC] {
    let mut b = [0u8; REC];
    b[0..8].copy_from_slice(&cell.to_le_bytes());
    b[8..12].copy_from_slice(&device.to_le_bytes());
    b[12..20].copy_from_slice(&v.first_ms.to_le_bytes());
    b[20..28].copy_from_slice(&v.last_ms.to_le_bytes());
    b[28..32].copy_from_slice(&v.fixes.to_le_bytes());
    b[32..36].copy_from_slice(&v.best_hdop_centi.to_le_bytes());
    b
}

fn decode(b: &[u8]) -> (u64, u32, Visit) {
    let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
    let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
    (
        u64_at(0),
        u32_at(8),
        Visit {
            first_ms: u64_at(12) as i64,
            last_ms: u64_at(20) as i64,
            fixes: u32_at(28),
            best_hdop_centi: u32_at(32),
        },
    )
}

/// Split points that cut `cells` into at most `parts` ranges of about equal size: strictly
/// increasing, none of them 0 (so no range is empty by construction).
pub(crate) fn bounds_from(mut cells: Vec<u64>, parts: usize) -> Vec<u64> {
    cells.par_sort_unstable();
    cells.dedup();
    let n = cells.len();
    if n == 0 {
        return Vec::new();
    }
    let mut out: Vec<u64> = (1..parts.max(1))
        .map(|i| cells[(i * n) / parts.max(1)])
        .filter(|&c| c > 0)
        .collect::<Vec<_>>();
    out.dedup();
    out
}

/// One range of cells on disk.
#[derive(Debug)]
pub(crate) struct Bucket {
    path: PathBuf,
    /// First cell of the range (inclusive).
    pub lo: u64,
    /// End of the range (exclusive); `None`: to the last cell.
    pub hi: Option<u64>,
    /// Records in the file.
    pub records: u64,
}

/// Buckets being written.
pub(crate) struct Spill {
    dir: PathBuf,
    bounds: Vec<u64>,
    writers: Vec<Option<BufWriter<File>>>,
    counts: Vec<u64>,
}

impl Spill {
    /// A spill into `dir` (created) with ranges cut at `bounds`.
    pub fn new(dir: &Path, bounds: Vec<u64>) -> Result<Spill> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let n = bounds.len() + 1;
        Ok(Spill {
            dir: dir.to_path_buf(),
            bounds,
            writers: (0..n).map(|_| None).collect(),
            counts: vec![0; n],
        })
    }

    fn bucket_of(&self, cell: u64) -> usize {
        self.bounds.partition_point(|&b| b <= cell)
    }

    fn path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("bucket-{i:05}.bin"))
    }

    /// Append one record.
    pub fn push(&mut self, cell: u64, device: u32, v: &Visit) -> Result<()> {
        let i = self.bucket_of(cell);
        if self.writers[i].is_none() {
            let p = self.path(i);
            let f = File::create(&p).map_err(io_err(&p))?;
            self.writers[i] = Some(BufWriter::with_capacity(1 << 16, f));
        }
        // The path is only formatted for an error: this runs once per spilled visit.
        let w = self.writers[i].as_mut().expect("opened above");
        if let Err(e) = w.write_all(&encode(cell, device, v)) {
            return Err(io_err(&self.path(i))(e));
        }
        self.counts[i] += 1;
        Ok(())
    }

    /// Move every visit of `rows` to the buckets (a (cell, device) may repeat: loading merges
    /// them); `rows` is left empty, its memory kept.
    pub fn drain(&mut self, rows: &mut Vec<VisitRow>) -> Result<()> {
        for r in rows.drain(..) {
            self.push(r.cell, r.device, &r.visit)?;
        }
        Ok(())
    }

    /// Close the files; the non-empty buckets in cell order.
    pub fn finish(self) -> Result<Vec<Bucket>> {
        let mut out = Vec::new();
        for (i, w) in self.writers.into_iter().enumerate() {
            let Some(w) = w else { continue };
            let p = self.dir.join(format!("bucket-{i:05}.bin"));
            w.into_inner().map_err(|e| io_err(&p)(e.into_error()))?;
            out.push(Bucket {
                lo: if i == 0 { 0 } else { self.bounds[i - 1] },
                hi: self.bounds.get(i).copied(),
                records: self.counts[i],
                path: p,
            });
        }
        Ok(out)
    }
}

fn for_each_record(b: &Bucket, mut f: impl FnMut(u64, u32, Visit) -> Result<()>) -> Result<()> {
    let file = File::open(&b.path).map_err(io_err(&b.path))?;
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut buf = vec![0u8; REC * 4096];
    let mut seen = 0u64;
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            let n = r.read(&mut buf[filled..]).map_err(io_err(&b.path))?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled % REC != 0 {
            return Err(Error::Data {
                path: b.path.display().to_string(),
                message: format!("spill file ends inside a record ({filled} bytes in the last block)"),
            });
        }
        for rec in buf[..filled].chunks_exact(REC) {
            let (cell, device, v) = decode(rec);
            f(cell, device, v)?;
            seen += 1;
        }
        if filled < buf.len() {
            break;
        }
    }
    if seen != b.records {
        return Err(Error::Data {
            path: b.path.display().to_string(),
            message: format!("spill file holds {seen} records, {} were written", b.records),
        });
    }
    Ok(())
}

/// Read a bucket: its visits merged per (cell, device) and sorted by (cell, device). The file
/// is removed.
pub(crate) fn load(b: &Bucket) -> Result<Vec<VisitRow>> {
    let mut map = VisitMap::default();
    map.reserve(b.records as usize);
    for_each_record(b, |cell, device, v| {
        map.entry((cell, device)).and_modify(|e| *e = e.merge(v)).or_insert(v);
        Ok(())
    })?;
    let _ = std::fs::remove_file(&b.path);
    let mut rows: Vec<VisitRow> = map
        .into_iter()
        .map(|((cell, device), visit)| VisitRow { cell, device, visit })
        .collect();
    rows.par_sort_unstable_by_key(|r| (r.cell, r.device)); // keys are unique: unstable is exact
    Ok(rows)
}

/// Cut an oversized bucket into smaller ones (in `dir`, in cell order), by quantiles of a sample
/// of its cells. Returns the bucket itself when it cannot be cut (all one cell). The file is
/// removed once split.
pub(crate) fn split(b: Bucket, dir: &Path, parts: usize) -> Result<Vec<Bucket>> {
    let stride = (b.records / (1 << 20)).max(1);
    let mut sample = Vec::new();
    let mut i = 0u64;
    for_each_record(&b, |cell, _, _| {
        if i.is_multiple_of(stride) {
            sample.push(cell);
        }
        i += 1;
        Ok(())
    })?;
    let bounds: Vec<u64> = bounds_from(sample, parts)
        .into_iter()
        .filter(|&c| c > b.lo && b.hi.is_none_or(|h| c < h))
        .collect();
    if bounds.is_empty() {
        return Ok(vec![b]);
    }
    let mut s = Spill::new(dir, bounds)?;
    for_each_record(&b, |cell, device, v| s.push(cell, device, &v))?;
    let mut out = s.finish()?;
    let _ = std::fs::remove_file(&b.path);
    // The sub-ranges are cut inside the parent's range.
    if let Some(first) = out.first_mut() {
        first.lo = first.lo.max(b.lo);
    }
    if let Some(last) = out.last_mut()
        && last.hi.is_none()
    {
        last.hi = b.hi;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(t: i64) -> Visit {
        Visit {
            first_ms: t,
            last_ms: t + 1,
            fixes: 1,
            best_hdop_centi: 100 + t as u32,
        }
    }

    #[test]
    fn record_encoding_round_trips() {
        let x = Visit {
            first_ms: -5,
            last_ms: i64::MAX,
            fixes: u32::MAX,
            best_hdop_centi: 7,
        };
        assert_eq!(decode(&encode(u64::MAX - 1, 42, &x)), (u64::MAX - 1, 42, x));
    }

    #[test]
    fn bounds_cut_cells_into_equal_ranges_without_empty_or_zero_cuts() {
        let b = bounds_from((0..1000u64).rev().collect(), 4);
        assert_eq!(b, vec![250, 500, 750]);
        assert_eq!(bounds_from(vec![9, 9, 9], 4), vec![9]);
        assert!(bounds_from(vec![0, 0], 4).is_empty());
        assert!(bounds_from(vec![], 4).is_empty());
    }

    #[test]
    fn buckets_hold_whole_cells_in_order_and_merge_repeated_visits_on_load() {
        let d = tempfile::tempdir().unwrap();
        let mut s = Spill::new(d.path(), vec![10, 20]).unwrap();
        let mut m: Vec<VisitRow> = [(25u64, 0u32, 5i64), (5, 1, 1), (10, 0, 2), (19, 1, 3)]
            .into_iter()
            .map(|(cell, device, t)| VisitRow {
                cell,
                device,
                visit: v(t),
            })
            .collect();
        s.drain(&mut m).unwrap();
        assert!(m.is_empty());
        s.push(5, 1, &v(0)).unwrap(); // a second pass of the same (cell, device)
        let buckets = s.finish().unwrap();
        let ranges: Vec<_> = buckets.iter().map(|b| (b.lo, b.hi, b.records)).collect();
        assert_eq!(ranges, vec![(0, Some(10), 2), (10, Some(20), 2), (20, None, 1)]);
        let first = load(&buckets[0]).unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].visit, v(1).merge(v(0)));
        let mut cells = vec![first[0].cell];
        cells.extend(buckets[1..].iter().flat_map(|b| load(b).unwrap()).map(|r| r.cell));
        assert_eq!(cells, vec![5, 10, 19, 25]);
    }

    #[test]
    fn an_oversized_bucket_splits_into_ordered_sub_ranges_of_its_own_range() {
        let d = tempfile::tempdir().unwrap();
        let mut s = Spill::new(&d.path().join("a"), vec![100]).unwrap();
        for c in 100..200u64 {
            s.push(c, 0, &v(1)).unwrap();
        }
        let b = s.finish().unwrap().pop().unwrap();
        assert_eq!((b.lo, b.hi), (100, None));
        let parts = split(b, &d.path().join("b"), 4).unwrap();
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[0].lo, 100);
        assert!(parts.windows(2).all(|w| w[0].hi == Some(w[1].lo)));
        let cells: Vec<u64> = parts.iter().flat_map(|b| load(b).unwrap()).map(|r| r.cell).collect();
        assert_eq!(cells, (100..200).collect::<Vec<_>>());
    }

    #[test]
    fn a_bucket_of_one_cell_cannot_be_split_and_is_returned_whole() {
        let d = tempfile::tempdir().unwrap();
        let mut s = Spill::new(d.path(), vec![]).unwrap();
        for dev in 0..10 {
            s.push(7, dev, &v(1)).unwrap();
        }
        let b = s.finish().unwrap().pop().unwrap();
        let parts = split(b, &d.path().join("x"), 4).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(load(&parts[0]).unwrap().len(), 10);
    }

    #[test]
    fn a_truncated_spill_file_is_an_error_naming_it() {
        let d = tempfile::tempdir().unwrap();
        let mut s = Spill::new(d.path(), vec![]).unwrap();
        s.push(7, 0, &v(1)).unwrap();
        let b = s.finish().unwrap().pop().unwrap();
        let bytes = std::fs::read(&b.path).unwrap();
        std::fs::write(&b.path, &bytes[..REC - 3]).unwrap();
        let e = load(&b).unwrap_err().to_string();
        assert!(e.contains("bucket-00000.bin") && e.contains("inside a record"), "{e}");
    }
}
